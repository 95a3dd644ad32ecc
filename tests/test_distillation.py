"""minitransformer.distillation against references no one here wrote: torch.nn.functional.kl_div and
cosine_embedding_loss, closed forms (KL = soft cross-entropy − entropy; the gradient
T · (softmax(s/T) − softmax(t/T)) / N) and torch.autograd.gradcheck in float64.
Tolerances: 1e-6 in float32 against PyTorch, 1e-10 in float64 for the closed forms."""
import pytest
import torch
import torch.nn.functional as F

from minitransformer.distillation import (DistillationWeights, cosine_hidden_loss, soft_target_loss,
                                          weighted_distillation_loss)

B, T, V, H = 3, 5, 11, 8


def logits(seed, dtype=torch.float32, shape=(B, T, V), scale=3.0):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(shape, generator=g, dtype=torch.float64)).to(dtype)


def real_tokens():
    """(B, T) mask: row 0 full, rows 1 and 2 right-padded."""
    m = torch.ones(B, T, dtype=torch.bool)
    m[1, 3:] = False
    m[2, 1:] = False
    return m


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.5])
def test_soft_target_loss_is_torch_kl_div_batchmean_times_t_squared(temperature):
    s, t = logits(0), logits(1)
    ours = soft_target_loss(s, t, temperature)
    ref = F.kl_div(F.log_softmax(s.reshape(-1, V) / temperature, -1), F.log_softmax(t.reshape(-1, V) / temperature, -1),
                   reduction="batchmean", log_target=True) * temperature**2
    assert abs(ours.item() - ref.item()) < 1e-6
    assert ours.item() > 0.1  # far from zero: the check means something


def test_soft_target_loss_over_masked_positions_is_kl_div_sum_over_those():
    s, t, m = logits(2), logits(3), real_tokens()
    ours = soft_target_loss(s, t, 2.0, mask=m)
    ref = F.kl_div(F.log_softmax(s[m] / 2.0, -1), F.softmax(t[m] / 2.0, -1), reduction="sum") * 4.0 / m.sum()
    assert abs(ours.item() - ref.item()) < 1e-6
    # what sits at unselected positions changes nothing
    s2, t2 = s.clone(), t.clone()
    s2[~m], t2[~m] = 100.0, -7.0
    assert soft_target_loss(s2, t2, 2.0, mask=m).item() == pytest.approx(ours.item(), abs=1e-6)
    assert abs(soft_target_loss(s, t, 2.0).item() - ours.item()) > 1e-3  # the mask does select


def test_soft_target_loss_is_soft_cross_entropy_minus_teacher_entropy():
    s, t, temp = logits(4, torch.float64), logits(5, torch.float64), 3.0
    p_t = torch.softmax(t / temp, -1)
    cross_entropy = -(p_t * torch.log_softmax(s / temp, -1)).sum(-1)  # (B, T)
    entropy = -(p_t * torch.log(p_t)).sum(-1)  # (B, T)
    closed = temp**2 * (cross_entropy - entropy).mean()
    assert abs(soft_target_loss(s, t, temp).item() - closed.item()) < 1e-10


def test_soft_target_loss_gradient_is_t_times_softmax_difference_over_n():
    s, t, m, temp = logits(6, torch.float64).requires_grad_(), logits(7, torch.float64), real_tokens(), 2.0
    soft_target_loss(s, t, temp, mask=m).backward()
    n = m.sum()
    expected = temp * (torch.softmax(s.detach() / temp, -1) - torch.softmax(t / temp, -1)) / n  # (B, T, V)
    expected[~m] = 0.0  # unselected positions get no gradient
    assert (s.grad - expected).abs().max().item() < 1e-10


def test_soft_target_loss_is_zero_when_the_student_is_the_teacher():
    t = logits(8)
    assert abs(soft_target_loss(t.clone(), t, 2.0).item()) < 1e-6


def test_soft_target_loss_gradcheck_float64():
    s, t = logits(9, torch.float64, (2, 3, 5)).requires_grad_(), logits(10, torch.float64, (2, 3, 5)).requires_grad_()
    m = torch.tensor([[True, False, True], [True, True, False]])
    assert torch.autograd.gradcheck(lambda a, b: soft_target_loss(a, b, 2.0), (s, t))
    assert torch.autograd.gradcheck(lambda a, b: soft_target_loss(a, b, 0.7, mask=m), (s, t))


def test_cosine_hidden_loss_is_torch_cosine_embedding_loss():
    s, t, m = logits(11, shape=(B, T, H)), logits(12, shape=(B, T, H)), real_tokens()
    ones = torch.ones(int(m.sum()))
    ref = F.cosine_embedding_loss(s[m], t[m], ones, reduction="mean")
    assert abs(cosine_hidden_loss(s, t, mask=m).item() - ref.item()) < 1e-6
    ref_all = F.cosine_embedding_loss(s.reshape(-1, H), t.reshape(-1, H), torch.ones(B * T))
    assert abs(cosine_hidden_loss(s, t).item() - ref_all.item()) < 1e-6
    # only directions count: scaling either side changes nothing; the same direction gives 0
    assert cosine_hidden_loss(3.0 * s, 0.5 * t, mask=m).item() == pytest.approx(ref.item(), abs=1e-6)
    assert abs(cosine_hidden_loss(s, 2.0 * s).item()) < 1e-6


def test_cosine_hidden_loss_gradcheck_float64():
    s, t = logits(13, torch.float64, (2, 3, 4)).requires_grad_(), logits(14, torch.float64, (2, 3, 4)).requires_grad_()
    m = torch.tensor([[True, True, False], [False, True, True]])
    assert torch.autograd.gradcheck(lambda a, b: cosine_hidden_loss(a, b, mask=m), (s, t))


def test_empty_selection_gives_zero_attached_to_the_graph():
    s = logits(15).requires_grad_()
    none = torch.zeros(B, T, dtype=torch.bool)
    for loss in (soft_target_loss(s, logits(16), 2.0, mask=none), cosine_hidden_loss(s, logits(16), mask=none)):
        assert loss.item() == 0.0 and loss.requires_grad


def test_weighted_sum_uses_distilberts_weights_by_default_and_others_when_given():
    l_ce, l_mlm, l_cos = torch.tensor(0.3), torch.tensor(1.7), torch.tensor(0.2)
    assert weighted_distillation_loss(l_ce, l_mlm, l_cos).item() == pytest.approx(5 * 0.3 + 2 * 1.7 + 1 * 0.2)
    w = DistillationWeights(alpha_ce=0.5, alpha_mlm=0.0, alpha_cos=3.0)
    assert weighted_distillation_loss(l_ce, l_mlm, l_cos, w).item() == pytest.approx(0.5 * 0.3 + 3 * 0.2)


@pytest.mark.parametrize("temperature", [0, -1.0, float("nan"), float("inf"), True])
def test_bad_temperature_names_expected_and_received(temperature):
    with pytest.raises(ValueError, match=r"temperature: expected .*> 0, received"):
        soft_target_loss(logits(0), logits(1), temperature)


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"expected the teacher's shape to equal the student's \(3, 5, 11\), received \(3, 5, 12\)"):
        soft_target_loss(logits(0), logits(1, shape=(B, T, V + 1)))
    with pytest.raises(ValueError, match=r"expected the teacher's shape to equal the student's \(3, 5, 8\), received \(3, 5, 16\)"):
        cosine_hidden_loss(logits(0, shape=(B, T, H)), logits(1, shape=(B, T, 2 * H)))
    with pytest.raises(ValueError, match=r"mask: expected shape \(3, 5\).*received \(3, 4\)"):
        soft_target_loss(logits(0), logits(1), mask=torch.ones(B, T - 1, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"alpha_ce: expected a finite number >= 0, received -1"):
        DistillationWeights(alpha_ce=-1)
