"""The learning-rate schedule and AdamW parameter groups, checked against closed-form values,
torch.optim.lr_scheduler.CosineAnnealingLR and Hugging Face's cosine-with-min-lr schedule."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from transformers import get_cosine_with_min_lr_schedule_with_warmup

from minitransformer.optim import lr_at, make_optimizer, param_groups, set_lr

LR, MIN_LR, WARMUP, MAX = 6e-4, 6e-5, 10, 110


def test_lr_closed_form_values():
    # tolerance 1e-15 absolute: plain float arithmetic
    assert lr_at(0, LR, MIN_LR, WARMUP, MAX) == 0.0
    assert lr_at(5, LR, MIN_LR, WARMUP, MAX) == pytest.approx(LR / 2, abs=1e-15)
    assert lr_at(WARMUP, LR, MIN_LR, WARMUP, MAX) == pytest.approx(LR, abs=1e-15)
    assert lr_at(60, LR, MIN_LR, WARMUP, MAX) == pytest.approx((LR + MIN_LR) / 2, abs=1e-15)  # cos(pi/2) = 0
    # a quarter of the way: cos(pi/4) = sqrt(2)/2
    assert lr_at(35, LR, MIN_LR, WARMUP, MAX) == pytest.approx(MIN_LR + 0.5 * (1 + 2**-0.5) * (LR - MIN_LR), abs=1e-15)
    assert lr_at(MAX, LR, MIN_LR, WARMUP, MAX) == MIN_LR
    assert lr_at(MAX + 1000, LR, MIN_LR, WARMUP, MAX) == MIN_LR
    assert lr_at(0, LR, MIN_LR, 0, MAX) == LR  # no warmup: start at the peak


def test_lr_matches_huggingface_schedule():
    # relative tolerance 1e-12; HF's cosine goes back up after max_steps, so compare up to max_steps
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=LR)
    sched = get_cosine_with_min_lr_schedule_with_warmup(opt, WARMUP, MAX, min_lr=MIN_LR)
    for step in range(MAX + 1):
        assert lr_at(step, LR, MIN_LR, WARMUP, MAX) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12, abs=1e-18)
        opt.step()
        sched.step()


def test_lr_cosine_part_matches_torch_cosine_annealing():
    # the cosine phase is CosineAnnealingLR(T_max = max - warmup, eta_min = min_lr); rel 1e-9
    # (torch updates the lr recursively, so it drifts from the closed form by rounding only)
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=LR)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=MAX - WARMUP, eta_min=MIN_LR)
    for k in range(MAX - WARMUP + 1):
        assert lr_at(WARMUP + k, LR, MIN_LR, WARMUP, MAX) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9)
        opt.step()
        sched.step()


@settings(max_examples=50, deadline=None)
@given(warmup=st.integers(0, 50), extra=st.integers(0, 200), step=st.integers(0, 400))
def test_lr_bounds_and_monotone_decay(warmup, extra, step):
    max_steps = warmup + extra
    lr = lr_at(step, LR, MIN_LR, warmup, max_steps)
    if step < warmup:
        assert 0.0 <= lr < LR and lr == pytest.approx(LR * step / warmup, rel=1e-12)
    else:
        assert MIN_LR - 1e-18 <= lr <= LR + 1e-18
        assert lr_at(step + 1, LR, MIN_LR, warmup, max_steps) <= lr + 1e-18  # never rises after warmup


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"step": -1}, "step"),
        ({"warmup_steps": 20, "max_steps": 10}, "warmup_steps <= max_steps"),
        ({"min_lr": 1e-2}, "min_lr <= lr"),
    ],
)
def test_lr_rejects_bad_arguments(kwargs, match):
    args = {"step": 0, "lr": LR, "min_lr": MIN_LR, "warmup_steps": WARMUP, "max_steps": MAX, **kwargs}
    with pytest.raises(ValueError, match=match):
        lr_at(**args)


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(11, 4)
        self.ln = nn.LayerNorm(4)
        self.proj = nn.Linear(4, 4)
        self.head = nn.Linear(4, 11, bias=False)
        self.head.weight = self.wte.weight  # tied, as in GPT
        self.frozen = nn.Parameter(torch.zeros(3, 3), requires_grad=False)


def test_param_groups_split_by_dimension():
    model = Tied()
    decay, no_decay = param_groups(model, 0.1)
    ids = lambda ps: {id(p) for p in ps}  # noqa: E731
    assert ids(decay["params"]) == {id(model.wte.weight), id(model.proj.weight)}
    assert ids(no_decay["params"]) == {id(model.ln.weight), id(model.ln.bias), id(model.proj.bias)}
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    # each trainable parameter exactly once (the tied matrix is one parameter); the frozen one left out
    all_ids = [id(p) for g in (decay, no_decay) for p in g["params"]]
    assert len(all_ids) == len(set(all_ids)) == 5


def test_make_optimizer_is_adamw_with_groups_and_set_lr():
    model = Tied()
    opt = make_optimizer(model, lr=1e-3, weight_decay=0.1, betas=(0.9, 0.95))
    assert isinstance(opt, torch.optim.AdamW)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]
    assert all(g["betas"] == (0.9, 0.95) for g in opt.param_groups)
    set_lr(opt, 3e-4)
    assert [g["lr"] for g in opt.param_groups] == [3e-4, 3e-4]
    # decoupled decay: with zero gradient, one AdamW step shrinks a decayed weight by (1 - lr*wd) exactly
    w0 = model.proj.weight.detach().clone()
    b0 = model.proj.bias.detach().clone()
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    torch.testing.assert_close(model.proj.weight, w0 * (1 - 3e-4 * 0.1), rtol=1e-6, atol=0)
    assert torch.equal(model.proj.bias, b0)


def test_make_optimizer_fuses_on_cpu_and_updates_as_the_plain_adamw_does():
    """The fused kernel is the same AdamW: five steps with random gradients agree with
    torch.optim.AdamW's for-loop implementation within 1e-6 (float32 rounding)."""
    torch.manual_seed(0)
    a, b = Tied(), Tied()
    b.load_state_dict(a.state_dict())
    w0 = a.proj.weight.detach().clone()
    fused = make_optimizer(a, lr=1e-2, weight_decay=0.1, betas=(0.9, 0.99))
    plain = torch.optim.AdamW(param_groups(b, 0.1), lr=1e-2, betas=(0.9, 0.99), foreach=False)
    assert fused.defaults["fused"] is True and not plain.defaults["fused"]
    for _ in range(5):
        grads = [torch.randn_like(p) for p in a.parameters()]
        for model, opt in ((a, fused), (b, plain)):
            for p, g in zip(model.parameters(), grads):
                p.grad = g.clone()
            opt.step()
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6, msg=name)
    assert (a.proj.weight - w0).abs().max() > 1e-3  # the steps moved the weights


def test_param_groups_rejects_bad_input():
    with pytest.raises(ValueError, match="weight_decay"):
        param_groups(Tied(), -1.0)
    frozen = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ValueError, match="trainable"):
        param_groups(frozen, 0.1)
    assert math.isfinite(lr_at(3, 1.0, 0.0, 0, 3))
