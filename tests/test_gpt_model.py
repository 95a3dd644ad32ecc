"""minigpt.GPT: parameter count (closed form and GPT-2's published 124,439,808), initialisation,
the shift-by-one loss against F.cross_entropy by hand, causality, the fused-attention path against
the explicit one, overfitting a short string, and bad input.

Tolerances: float32 logits 1e-5 absolute; losses 1e-6.
"""
import math

import pytest
import torch
import torch.nn.functional as F

from minigpt import GPT, IGNORE_INDEX, GPTConfig, gpt_param_count, next_token_loss, next_token_targets, width_scaled_init_std

TINY = dict(block_size=16, vocab_size=50, n_layer=2, n_head=4, n_embd=32)


def tiny(**kw) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(**{**TINY, **kw})).eval()


def test_gpt2_small_has_124_439_808_parameters(monkeypatch):
    config = GPTConfig()  # GPT-2 small: V=50257, T=1024, 12 layers, 12 heads, 768 wide
    # shapes only: on the meta device no memory is used; skipping the random init on meta
    # tensors avoids importing torch._dynamo (seconds) and changes no shape
    monkeypatch.setattr(torch.nn.init, "normal_", lambda t, *a, **k: t)
    with torch.device("meta"):
        model = GPT(config)
    assert model.num_parameters() == 124_439_808
    assert gpt_param_count(config) == 124_439_808
    assert model.lm_head.weight is model.transformer.wte.weight  # tied: counted once


@pytest.mark.parametrize("bias", [True, False])
def test_param_count_formula_matches_instantiated_model(bias):
    config = GPTConfig(**{**TINY, "n_layer": 3}, bias=bias)
    model = GPT(config)
    assert gpt_param_count(config) == sum(p.numel() for p in model.parameters())
    # the formula term by term, written independently: V·C + T·C + L(12C² + 13C or 2C) + (2C or C)
    c, per_layer = 32, 12 * 32 * 32 + (13 * 32 if bias else 2 * 32)
    assert gpt_param_count(config) == 50 * c + 16 * c + 3 * per_layer + (2 * c if bias else c)


@pytest.mark.parametrize("std", [0.02, 0.05])
def test_init_is_gpt2s_normal_with_scaled_residual_projections(std):
    # GPT-2: N(0, 0.02²) everywhere (init_std's default), out_proj and fc2 at std/√(2L); 2-3% of 65k draws
    torch.manual_seed(0)
    kw = {} if std == 0.02 else {"init_std": std}
    model = GPT(GPTConfig(block_size=64, vocab_size=512, n_layer=8, n_head=8, n_embd=256, **kw))
    residual = std / math.sqrt(2 * 8)
    for block in model.transformer.h:
        assert abs(block.self_attn.out_proj.weight.std().item() / residual - 1) < 0.03
        assert abs(block.ff.fc2.weight.std().item() / residual - 1) < 0.03
        assert abs(block.self_attn.q_proj.weight.std().item() / std - 1) < 0.03
        assert abs(block.ff.fc1.weight.std().item() / std - 1) < 0.03
        assert torch.count_nonzero(block.self_attn.q_proj.bias) == 0
        assert torch.equal(block.norm1.weight, torch.ones(256))
    assert abs(model.transformer.wte.weight.std().item() / std - 1) < 0.03
    assert abs(model.transformer.wpe.weight.std().item() / std - 1) < 0.03


def test_width_scaled_init_std_closed_form():
    # σ·√C held at GPT-2's 0.02·√768: 0.02 at 768, 0.02·√6 at 128, 0.01 at 3072
    assert width_scaled_init_std(768) == pytest.approx(0.02, rel=1e-12)
    assert width_scaled_init_std(128) == pytest.approx(0.02 * math.sqrt(6), rel=1e-12)
    assert width_scaled_init_std(3072) == pytest.approx(0.01, rel=1e-12)
    with pytest.raises(ValueError, match="n_embd: expected a positive integer"):
        width_scaled_init_std(0)
    with pytest.raises(ValueError, match="init_std: expected > 0"):
        GPTConfig(init_std=0.0)


def test_shift_by_one_loss_equals_cross_entropy_by_hand():
    model = tiny()
    idx = torch.randint(0, 50, (3, 12), generator=torch.Generator().manual_seed(1))
    logits, loss = model(idx, next_token_targets(idx))
    # position t predicts token t+1: drop the last logit row and the first token
    by_hand = F.cross_entropy(logits[:, :-1].reshape(-1, 50), idx[:, 1:].reshape(-1))
    assert abs(loss.item() - by_hand.item()) < 1e-6
    # and as an explicit mean of -log p(next token)
    logp = torch.log_softmax(logits[:, :-1], dim=-1)
    nll = -logp.gather(-1, idx[:, 1:, None]).mean()
    assert abs(loss.item() - nll.item()) < 1e-6


def test_ignored_targets_do_not_count():
    model = tiny()
    idx = torch.randint(0, 50, (2, 10), generator=torch.Generator().manual_seed(2))
    targets = next_token_targets(idx)
    targets[0, :4] = IGNORE_INDEX
    logits, loss = model(idx, targets)
    keep = targets != IGNORE_INDEX
    by_hand = F.cross_entropy(logits[keep], targets[keep])
    assert abs(loss.item() - by_hand.item()) < 1e-6
    assert next_token_targets(idx)[:, -1].eq(IGNORE_INDEX).all()


EXPLICIT = dict(use_sdpa=False, fused=False)  # every formula as written in minitransformer


@pytest.mark.parametrize("paths", [{}, EXPLICIT], ids=["kernels", "explicit"])
def test_changing_future_tokens_leaves_earlier_logits_unchanged(paths):
    model = tiny(**paths)
    a = torch.randint(0, 50, (2, 16), generator=torch.Generator().manual_seed(3))
    b = a.clone()
    b[:, 9:] = (b[:, 9:] + 7) % 50  # a different future
    la, _ = model(a)
    lb, _ = model(b)
    assert (la[:, :9] - lb[:, :9]).abs().max() < 1e-6
    assert (la[:, 9:] - lb[:, 9:]).abs().max() > 1e-3  # the future itself did change


@pytest.mark.parametrize("kernels", [dict(use_sdpa=True), dict(fused=True), dict(use_sdpa=True, fused=True)])
def test_kernel_paths_equal_the_explicit_formulas(kernels):
    # the default model runs attention, LayerNorm and GELU through PyTorch's kernels; the same
    # weights with the explicit formulas must give the same logits and gradients
    fast, slow = tiny(**{**EXPLICIT, **kernels}), tiny(**EXPLICIT)
    slow.load_state_dict(fast.state_dict())
    idx = torch.randint(0, 50, (3, 16), generator=torch.Generator().manual_seed(4))
    (lf, loss_f), (ls, loss_s) = fast(idx, next_token_targets(idx)), slow(idx, next_token_targets(idx))
    assert (lf - ls).abs().max() < 1e-5
    loss_f.backward()
    loss_s.backward()
    grads = dict(slow.named_parameters())
    for name, p in fast.named_parameters():
        assert (p.grad - grads[name].grad).abs().max() < 1e-5, name
    assert GPTConfig().use_sdpa and GPTConfig().fused  # the defaults


def test_tiny_gpt_overfits_a_short_string_and_then_recites_it():
    text = "hello gpt, hello world! "
    chars = sorted(set(text))
    ids = torch.tensor([[chars.index(c) for c in text]])  # (1, 24)
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=32, vocab_size=len(chars), n_layer=2, n_head=2, n_embd=32))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    targets = next_token_targets(ids)
    first = None
    for _ in range(60):
        _, loss = model(ids, targets)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert first > 2.0  # about ln(12) at the start
    assert loss.item() < 0.05
    out = model.generate(ids[:, :8], max_new_tokens=16, greedy=True)
    assert torch.equal(out, ids)  # "hello gp" -> the rest of the string


def test_crop_block_size_keeps_the_function_on_shorter_inputs():
    model = tiny()
    idx = torch.randint(0, 50, (2, 10), generator=torch.Generator().manual_seed(5))
    before, _ = model(idx)
    model.crop_block_size(10)
    assert model.config.block_size == 10 and model.transformer.wpe.weight.shape == (10, 32)
    assert torch.equal(model(idx)[0], before)
    with pytest.raises(ValueError, match="expected length <= 10"):
        model(torch.zeros(1, 11, dtype=torch.long))
    with pytest.raises(ValueError, match="block_size"):
        model.crop_block_size(11)


def test_bad_input_is_a_clear_value_error():
    model = tiny()
    with pytest.raises(ValueError, match=r"token ids in \[0, 50\)"):
        model(torch.tensor([[1, 2, 50]]))
    with pytest.raises(ValueError, match=r"token ids in \[0, 50\)"):
        model(torch.tensor([[1, -1]]))
    with pytest.raises(ValueError, match="expected length <= 16"):
        model(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match="integer tensor"):
        model(torch.zeros(1, 4))
    with pytest.raises(ValueError, match="rank 2"):
        model(torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="targets"):
        model(torch.zeros(2, 4, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="targets"):
        model(torch.zeros(1, 4, dtype=torch.long), torch.full((1, 4), 77))


@pytest.mark.parametrize("kw, match", [
    (dict(n_embd=30, n_head=4), "divisible"),
    (dict(n_layer=0), "n_layer"),
    (dict(dropout=1.0), "dropout"),
])
def test_config_rejects_bad_values(kw, match):
    with pytest.raises(ValueError, match=match):
        GPTConfig(**{**TINY, **kw})


def test_config_from_dict_names_unknown_fields():
    with pytest.raises(ValueError, match=r"unknown fields \['hidden_size', 'num_attention_heads'\]"):
        GPTConfig.from_dict({"hidden_size": 768, "num_attention_heads": 12})
    assert GPTConfig.from_dict(GPTConfig(**TINY).to_dict()) == GPTConfig(**TINY)
