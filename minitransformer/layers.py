"""LayerNorm, GELU, softmax and the position-wise feed-forward layer.

Article §4.2.2 多层Transformer编码器 names these pieces (LayerNorm, MLP, Dropout); here each is
written out as the formula it computes.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .checks import check_last_dim


def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """softmax(x)_i = exp(x_i - m) / Σ_j exp(x_j - m), m = max_j x_j.

    Subtracting the maximum changes nothing mathematically (it cancels) but keeps exp() from
    overflowing. Any shape; normalises along ``dim``.
    """
    e = torch.exp(x - x.amax(dim=dim, keepdim=True).detach())
    return e / e.sum(dim=dim, keepdim=True)


def layer_norm(x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None, eps: float = 1e-5) -> torch.Tensor:
    """LayerNorm(x) = γ ⊙ (x - μ) / √(σ² + ε) + β over the last axis.

    μ = mean(x), σ² = mean((x - μ)²) — the *biased* variance (divide by C, not C - 1), and ε sits
    inside the square root. x: (..., C); γ, β: (C,).
    """
    mu = x.mean(dim=-1, keepdim=True)  # (..., 1)
    var = ((x - mu) ** 2).mean(dim=-1, keepdim=True)  # (..., 1), biased
    y = (x - mu) / torch.sqrt(var + eps)  # (..., C)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


class LayerNorm(nn.Module):
    """Layer normalisation with learnable scale γ (``weight``, ones) and shift β (``bias``, zeros).
    ``fused=True`` computes the same formula with PyTorch's kernel ``F.layer_norm`` (one pass, faster)."""

    def __init__(self, normalized_shape: int, eps: float = 1e-5, bias: bool = True, fused: bool = False):
        super().__init__()
        self.normalized_shape, self.eps, self.fused = normalized_shape, eps, fused
        self.weight = nn.Parameter(torch.ones(normalized_shape))
        self.bias = nn.Parameter(torch.zeros(normalized_shape)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_last_dim(x, self.normalized_shape, "LayerNorm input")
        if self.fused:
            return F.layer_norm(x, (self.normalized_shape,), self.weight, self.bias, self.eps)
        return layer_norm(x, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}"


def gelu(x: torch.Tensor) -> torch.Tensor:
    """GELU(x) = x Φ(x) = x · ½ (1 + erf(x / √2)), the exact (erf) form: PyTorch's ``F.gelu`` default and
    Hugging Face's BERT (``hidden_act="gelu"``). Google's original BERT code (``modeling.py``) used the
    tanh approximation, ``gelu_tanh``; the two differ by less than 1e-3."""
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """GELU(x) ≈ ½ x (1 + tanh(√(2/π) (x + 0.044715 x³))), the tanh form: GPT-2 (Hugging Face's "gelu_new")
    and Google's original BERT code."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def relu(x: torch.Tensor) -> torch.Tensor:
    """ReLU(x) = max(0, x), the original Transformer's activation."""
    return torch.clamp_min(x, 0.0)


ACTIVATIONS = {"gelu": gelu, "gelu_tanh": gelu_tanh, "gelu_new": gelu_tanh, "relu": relu}
# the same functions through PyTorch's kernels (one op each, forward and backward)
FUSED_ACTIVATIONS = {"gelu": F.gelu, "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
                     "gelu_new": lambda x: F.gelu(x, approximate="tanh"), "relu": F.relu}


def get_activation(name: str, fused: bool = False):
    """Look up an activation by name: gelu (exact), gelu_tanh / gelu_new, relu; ``fused`` gives
    PyTorch's kernel for the same function."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation: expected one of {sorted(ACTIVATIONS)}, received {name!r}")
    return (FUSED_ACTIVATIONS if fused else ACTIVATIONS)[name]


class FeedForward(nn.Module):
    """FFN(x) = W₂ · act(W₁ x + b₁) + b₂, applied to every position independently.

    x: (B, T, C) -> (B, T, C), hidden width d_ff (4C in BERT and GPT-2). ``activation_dropout``
    drops the hidden units (nn.Transformer does; BERT and GPT-2 don't); the output dropout belongs
    to the residual wiring in the block.
    """

    def __init__(self, d_model: int, d_ff: int, activation: str = "gelu", activation_dropout: float = 0.0, bias: bool = True,
                 fused: bool = False):
        super().__init__()
        self.fc1 = nn.Linear(d_model, d_ff, bias=bias)
        self.fc2 = nn.Linear(d_ff, d_model, bias=bias)
        self.activation_name = activation
        self.act = get_activation(activation, fused)
        self.dropout = nn.Dropout(activation_dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dropout(self.act(self.fc1(x)))  # (B, T, d_ff)
        return self.fc2(h)  # (B, T, C)
