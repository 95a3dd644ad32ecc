"""Positional information. Self-attention by itself is permutation-equivariant: shuffle the tokens
and the outputs shuffle the same way. Order enters only through positions:

- sinusoidal (Vaswani et al., 2017): a fixed table added to the embeddings;
- learned absolute (BERT, GPT-2): a trained table, one row per position;
- rotary, RoPE (Su et al., 2021): rotate each (query, key) pair of channels by an angle
  proportional to the position, so q_m · k_n depends only on m - n.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .checks import check_length, check_rank


def sinusoidal_table(max_len: int, d_model: int, base: float = 10000.0) -> torch.Tensor:
    """PE[pos, 2i] = sin(pos / base^(2i/d)), PE[pos, 2i+1] = cos(pos / base^(2i/d)). -> (max_len, d)."""
    if d_model % 2 != 0:
        raise ValueError(f"sinusoidal positions: expected an even d_model, received {d_model}")
    pos = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)  # (L, 1)
    inv_freq = base ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)  # (d/2,)
    angles = pos * inv_freq  # (L, d/2)
    pe = torch.zeros(max_len, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angles)
    pe[:, 1::2] = torch.cos(angles)
    return pe.float()


class SinusoidalPositionalEncoding(nn.Module):
    """Fixed sinusoidal table; ``forward(T)`` returns the (T, C) rows for positions offset..offset+T-1."""

    def __init__(self, max_len: int, d_model: int):
        super().__init__()
        self.max_len = max_len
        self.register_buffer("pe", sinusoidal_table(max_len, d_model), persistent=False)

    def forward(self, t: int, offset: int = 0) -> torch.Tensor:
        check_length(offset + t, self.max_len)
        return self.pe[offset : offset + t]  # (T, C)


class LearnedPositionalEmbedding(nn.Module):
    """A trained table of ``max_len`` position vectors (BERT's position_embeddings, GPT-2's wpe)."""

    def __init__(self, max_len: int, d_model: int):
        super().__init__()
        self.max_len = max_len
        self.weight = nn.Parameter(torch.empty(max_len, d_model))
        nn.init.normal_(self.weight, std=0.02)

    def forward(self, t: int, offset: int = 0) -> torch.Tensor:
        check_length(offset + t, self.max_len)
        return self.weight[offset : offset + t]  # (T, C)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(x₁, x₂) -> (-x₂, x₁) on the two halves of the last axis: a 90° turn of each channel pair."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def rope_angles(positions: torch.Tensor, head_dim: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of θ_{m,i} = m · base^(-2i/d) for positions m and pairs i, computed in float64.
    positions: (T,) -> 2 × (T, head_dim); channel i and i + d/2 share an angle."""
    if head_dim % 2 != 0:
        raise ValueError(f"rotary positions: expected an even head_dim, received {head_dim}")
    inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64, device=positions.device) / head_dim)  # (d/2,)
    angles = positions.to(torch.float64).unsqueeze(1) * inv_freq  # (T, d/2)
    angles = torch.cat([angles, angles], dim=-1)  # (T, d)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE(x)_m = x_m cos θ_m + rotate_half(x_m) sin θ_m — each channel pair (i, i + d/2) is
    rotated by the angle θ_{m,i}. x: (B, H, T, d); cos, sin: (T, d)."""
    return x * cos + rotate_half(x) * sin


class RotaryEmbedding(nn.Module):
    """Rotary position embedding applied to queries and keys inside attention (no added vectors,
    no parameters). The angles are computed per call in float64, then cast to x's dtype."""

    def __init__(self, head_dim: int, max_len: int, base: float = 10000.0):
        super().__init__()
        if head_dim % 2 != 0:
            raise ValueError(f"rotary positions: expected an even head_dim, received {head_dim}")
        self.head_dim, self.max_len, self.base = head_dim, max_len, base

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        check_rank(x, 4, "rotary input (B, H, T, head_dim)")
        t = x.size(-2)
        check_length(offset + t, self.max_len)
        cos, sin = rope_angles(torch.arange(offset, offset + t, device=x.device), self.head_dim, self.base)
        return apply_rope(x, cos.to(x.dtype), sin.to(x.dtype))
