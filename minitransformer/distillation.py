"""Knowledge distillation: a small student learns to match a large teacher. Article §7.3 (the BERT family).

Hinton et al. (2015) train the student on the teacher's *soft targets*, its whole distribution
over the classes, softened by a temperature T; DistilBERT (Sanh et al., 2019) adds the usual MLM
loss and a cosine loss that pulls the student's hidden states towards the teacher's::

    L = α_ce · L_ce + α_mlm · L_mlm + α_cos · L_cos          DistilBERT: α_ce = 5, α_mlm = 2, α_cos = 1

    L_ce  = T² · (1/N) Σ_i KL(softmax(t_i / T) ‖ softmax(s_i / T))      :func:`soft_target_loss`
    L_cos = (1/N) Σ_i (1 − cos(h_s,i, h_t,i))                           :func:`cosine_hidden_loss`

over the N positions that count (every real token, or those a mask selects). Why T²: the
gradient of KL at temperature T with respect to the student logits is (softmax(s/T) − softmax(t/T)) / T,
so T² keeps the soft targets' gradients T times the size of a hard-label loss's, whatever T is
(Hinton et al. §2). Generic: any student and teacher, any number of leading dimensions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def check_temperature(temperature) -> float:
    """``temperature`` as a float when it is a finite number > 0; otherwise ValueError."""
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not math.isfinite(temperature):
        raise ValueError(f"temperature: expected a finite number > 0, received {temperature!r}")
    if temperature <= 0:
        raise ValueError(f"temperature: expected T > 0, received {temperature}")
    return float(temperature)


def check_pair(student: torch.Tensor, teacher: torch.Tensor, name: str) -> None:
    """The student's and the teacher's tensors must have the same shape, with at least one axis."""
    if student.shape != teacher.shape:
        raise ValueError(f"{name}: expected the teacher's shape to equal the student's {tuple(student.shape)}, "
                         f"received {tuple(teacher.shape)}")
    if student.dim() < 1:
        raise ValueError(f"{name}: expected a tensor (..., D) with a last axis, received a scalar")


def select_positions(x: torch.Tensor, mask: torch.Tensor | None, name: str) -> torch.Tensor:
    """The rows of ``x`` (..., D) that count, flattened to (N, D): every row, or those where ``mask``
    (..., the leading shape of x; bool or 0/1) is true."""
    if mask is None:
        return x.reshape(-1, x.size(-1))  # (N, D)
    if mask.shape != x.shape[:-1]:
        raise ValueError(f"{name} mask: expected shape {tuple(x.shape[:-1])} (the leading axes), received {tuple(mask.shape)}")
    return x[mask.bool()]  # (N, D)


def mean_over_positions(per_position: torch.Tensor) -> torch.Tensor:
    """(1/N) Σ_i ℓ_i over N >= 0 positions: 0 (not 0/0 = NaN), still attached to the graph, when N = 0."""
    return per_position.sum() / max(per_position.numel(), 1)


def soft_target_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 2.0,
                     mask: torch.Tensor | None = None) -> torch.Tensor:
    """L_ce = T² · (1/N) Σ_i KL(p_t,i ‖ p_s,i),  p_t = softmax(t / T),  p_s = softmax(s / T),

        KL(p ‖ q) = Σ_v p_v (log p_v − log q_v)

    Hinton et al. (2015)'s soft-target loss; DistilBERT's L_ce (T = 2). Article §7.3.
    student_logits, teacher_logits: (..., V), e.g. (B, T, V); mask: (...) True at the N positions
    that count (say the real tokens, or the masked ones), None for all. Returns a scalar. Equal to
    the soft cross-entropy −Σ p_t log p_s minus the teacher's entropy −Σ p_t log p_t (times T²);
    ∂L/∂s_i = T · (p_s,i − p_t,i) / N.
    """
    t = check_temperature(temperature)
    check_pair(student_logits, teacher_logits, "teacher_logits")
    s = select_positions(student_logits, mask, "soft_target_loss")  # (N, V)
    u = select_positions(teacher_logits, mask, "soft_target_loss")  # (N, V)
    log_p_s = torch.log_softmax(s / t, dim=-1)  # (N, V)
    log_p_t = torch.log_softmax(u / t, dim=-1)  # (N, V)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=-1)  # (N,)
    return t * t * mean_over_positions(kl)


def cosine_similarity(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """cos(a, b) = a·b / max(‖a‖ ‖b‖, eps) along the last axis. (..., H) × (..., H) -> (...)."""
    return (a * b).sum(dim=-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(eps)


def cosine_hidden_loss(student_hidden: torch.Tensor, teacher_hidden: torch.Tensor,
                       mask: torch.Tensor | None = None) -> torch.Tensor:
    """L_cos = (1/N) Σ_i (1 − cos(h_s,i, h_t,i)): DistilBERT's cosine loss, which aligns the
    *directions* of the student's and the teacher's hidden states (their lengths are free). Article §7.3.
    student_hidden, teacher_hidden: (..., H), e.g. (B, T, H) last hidden states (the same width);
    mask: (...) True at the N real tokens, None for all. Returns a scalar in [0, 2]."""
    check_pair(student_hidden, teacher_hidden, "teacher_hidden")
    s = select_positions(student_hidden, mask, "cosine_hidden_loss")  # (N, H)
    u = select_positions(teacher_hidden, mask, "cosine_hidden_loss")  # (N, H)
    return mean_over_positions(1.0 - cosine_similarity(s, u))  # mean of (N,)


@dataclass
class DistillationWeights:
    """The weights of :func:`weighted_distillation_loss`; defaults DistilBERT's α_ce = 5, α_mlm = 2,
    α_cos = 1 (Sanh et al., 2019, their training code). Each a finite number >= 0."""

    alpha_ce: float = 5.0
    alpha_mlm: float = 2.0
    alpha_cos: float = 1.0

    def __post_init__(self) -> None:
        for name in ("alpha_ce", "alpha_mlm", "alpha_cos"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"DistillationWeights.{name}: expected a finite number >= 0, received {value!r}")


def weighted_distillation_loss(l_ce: torch.Tensor, l_mlm: torch.Tensor, l_cos: torch.Tensor,
                               weights: DistillationWeights | None = None) -> torch.Tensor:
    """L = α_ce · L_ce + α_mlm · L_mlm + α_cos · L_cos (scalars -> scalar). Article §7.3."""
    w = weights or DistillationWeights()
    return w.alpha_ce * l_ce + w.alpha_mlm * l_mlm + w.alpha_cos * l_cos


__all__ = ["soft_target_loss", "cosine_hidden_loss", "cosine_similarity", "weighted_distillation_loss",
           "DistillationWeights", "check_temperature"]
