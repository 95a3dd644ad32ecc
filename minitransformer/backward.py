"""Hand-derived backward passes for softmax, LayerNorm and scaled dot-product attention.

Autograd computes these for us; here they are derived on paper and written out, then wrapped in
``torch.autograd.Function`` so ``torch.autograd.gradcheck`` can compare them with finite
differences. Notation: for a loss L, ``dy`` is ∂L/∂y (same shape as y).
"""
from __future__ import annotations

import math

import torch

from .attention import masked_softmax
from .layers import softmax

# ----------------------------------------------------------------------------- softmax


def softmax_backward(y: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    """y = softmax(x) along the last axis. The Jacobian is ∂y_i/∂x_j = y_i (δ_ij - y_j), so

        dx = y ⊙ (dy - Σ_j dy_j y_j)

    y, dy: (..., N) -> dx: (..., N). A row of all-zero y (fully masked) gets dx = 0.
    """
    return y * (dy - (dy * y).sum(dim=-1, keepdim=True))


class SoftmaxFunction(torch.autograd.Function):
    """softmax along the last axis with the hand-derived backward above."""

    @staticmethod
    def forward(ctx, x):
        y = softmax(x, dim=-1)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, dy):
        (y,) = ctx.saved_tensors
        return softmax_backward(y, dy)


# ----------------------------------------------------------------------------- LayerNorm


def layer_norm_forward(x, weight, bias, eps=1e-5):
    """y = γ x̂ + β, x̂ = (x - μ) · r, r = 1/√(σ² + ε). Returns y and what backward needs (x̂, r)."""
    mu = x.mean(dim=-1, keepdim=True)
    var = ((x - mu) ** 2).mean(dim=-1, keepdim=True)  # biased
    rstd = 1.0 / torch.sqrt(var + eps)  # (..., 1)
    xhat = (x - mu) * rstd  # (..., C)
    return xhat * weight + bias, xhat, rstd


def layer_norm_backward(dy, xhat, rstd, weight):
    """Backward of LayerNorm over the last axis of size C.

        dγ = Σ_rows dy ⊙ x̂          dβ = Σ_rows dy
        g  = dy ⊙ γ                  (gradient w.r.t. x̂)
        dx = r · (g - mean(g) - x̂ ⊙ mean(g ⊙ x̂))

    The two mean terms come from μ and σ² depending on every x_j of the row.
    dy, xhat: (..., C); rstd: (..., 1); weight: (C,). Returns dx (..., C), dγ (C,), dβ (C,).
    """
    g = dy * weight
    dx = rstd * (g - g.mean(dim=-1, keepdim=True) - xhat * (g * xhat).mean(dim=-1, keepdim=True))
    dims = tuple(range(dy.dim() - 1))
    return dx, (dy * xhat).sum(dim=dims), dy.sum(dim=dims)


class LayerNormFunction(torch.autograd.Function):
    """LayerNorm with the hand-derived backward above."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps=1e-5):
        y, xhat, rstd = layer_norm_forward(x, weight, bias, eps)
        ctx.save_for_backward(xhat, rstd, weight)
        return y

    @staticmethod
    def backward(ctx, dy):
        xhat, rstd, weight = ctx.saved_tensors
        dx, dw, db = layer_norm_backward(dy, xhat, rstd, weight)
        return dx, dw, db, None


# ----------------------------------------------------------------------------- attention


def attention_backward(q, k, v, p, do, scale):
    """Backward of O = P V, P = softmax(S), S = scale · Q Kᵀ (+ mask).

        dV = Pᵀ dO
        dP = dO Vᵀ
        dS = P ⊙ (dP - rowsum(dP ⊙ P))       (softmax backward)
        dQ = scale · dS K
        dK = scale · dSᵀ Q

    Masked entries have P = 0, so dS = 0 there: no gradient flows through a masked score.
    q: (..., T_q, d_k), k: (..., T_k, d_k), v: (..., T_k, d_v), p: (..., T_q, T_k), do: (..., T_q, d_v).
    """
    dv = p.transpose(-2, -1) @ do  # (..., T_k, d_v)
    dp = do @ v.transpose(-2, -1)  # (..., T_q, T_k)
    ds = softmax_backward(p, dp)  # (..., T_q, T_k)
    dq = scale * (ds @ k)  # (..., T_q, d_k)
    dk = scale * (ds.transpose(-2, -1) @ q)  # (..., T_k, d_k)
    return dq, dk, dv


class AttentionFunction(torch.autograd.Function):
    """softmax(Q Kᵀ/√d_k + mask) V with the hand-derived backward above (no dropout).
    mask: bool (True = attend) or additive, broadcastable to (..., T_q, T_k), or None."""

    @staticmethod
    def forward(ctx, q, k, v, mask=None):
        scale = 1.0 / math.sqrt(q.size(-1))
        p = masked_softmax(scale * (q @ k.transpose(-2, -1)), mask)  # (..., T_q, T_k)
        ctx.save_for_backward(q, k, v, p)
        ctx.scale = scale
        return p @ v

    @staticmethod
    def backward(ctx, do):
        q, k, v, p = ctx.saved_tensors
        dq, dk, dv = attention_backward(q, k, v, p, do, ctx.scale)
        return dq, dk, dv, None
