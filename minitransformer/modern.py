"""The parts a modern decoder (Llama, Qwen2, Qwen3) uses in place of GPT-2's:

- RMSNorm (Zhang & Sennrich, 2019) instead of LayerNorm: no mean, no shift, only a scale;
- SwiGLU (Shazeer, 2020) instead of the GELU MLP: a gated feed-forward with three matrices;
- grouped-query attention, GQA (Ainslie et al., 2023): H query heads share H_kv key/value heads,
  so the KV cache is H / H_kv times smaller;
- Qwen3's QK-norm: an RMSNorm over head_dim on every query and key head, before RoPE.

Positions are rotary (``positions.RotaryEmbedding``, Hugging Face's rotate_half layout), applied
to the queries and keys inside attention. Every formula is written out; ``use_sdpa`` runs the
attention itself through PyTorch's fused kernel (same function).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from .attention import KVCache, merge_heads, scaled_dot_product_attention, sdpa_fast, split_heads
from .checks import check_divisible, check_last_dim, check_length, check_rank
from .positions import RotaryEmbedding, apply_rope

# ----------------------------------------------------------------------------- RMSNorm


def rms_norm(x: torch.Tensor, weight: torch.Tensor | None, eps: float = 1e-6) -> torch.Tensor:
    """RMSNorm(x) = γ ⊙ x / √(mean(x²) + ε) over the last axis.

    Unlike LayerNorm there is no mean subtracted and no shift β: only the root mean square is
    divided out. Computed in float32 at least (as Hugging Face does) and cast back.
    x: (..., C); γ: (C,).
    """
    dtype = x.dtype
    h = x.to(torch.promote_types(dtype, torch.float32))
    ms = h.pow(2).mean(dim=-1, keepdim=True)  # (..., 1) mean square
    y = (h * torch.rsqrt(ms + eps)).to(dtype)  # (..., C)
    return y if weight is None else weight * y


class RMSNorm(nn.Module):
    """Root-mean-square normalisation with a learnable scale γ (``weight``, ones)."""

    def __init__(self, normalized_shape: int, eps: float = 1e-6):
        super().__init__()
        self.normalized_shape, self.eps = normalized_shape, eps
        self.weight = nn.Parameter(torch.ones(normalized_shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_last_dim(x, self.normalized_shape, "RMSNorm input")
        return rms_norm(x, self.weight, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}"


# ----------------------------------------------------------------------------- SwiGLU


def silu(x: torch.Tensor) -> torch.Tensor:
    """SiLU(x) = Swish₁(x) = x σ(x) = x / (1 + e^{-x})."""
    return x * torch.sigmoid(x)


class SwiGLU(nn.Module):
    """FFN_SwiGLU(x) = W_down (SiLU(W_gate x) ⊙ W_up x), applied to every position.

    x: (B, T, C) -> (B, T, C) through a hidden width d_ff (intermediate_size). Three matrices
    instead of two, so at equal parameters d_ff is about 8C/3 rather than 4C. Names follow
    Hugging Face (gate_proj, up_proj, down_proj); no biases unless ``bias``.
    """

    def __init__(self, d_model: int, d_ff: int, bias: bool = False):
        super().__init__()
        self.gate_proj = nn.Linear(d_model, d_ff, bias=bias)
        self.up_proj = nn.Linear(d_model, d_ff, bias=bias)
        self.down_proj = nn.Linear(d_ff, d_model, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = silu(self.gate_proj(x)) * self.up_proj(x)  # (B, T, d_ff)
        return self.down_proj(h)  # (B, T, C)


# ----------------------------------------------------------------------------- Llama 3's scaled RoPE

LLAMA3_ROPE_KEYS = ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")


def llama3_inv_freq(head_dim: int, base: float, factor: float, low_freq_factor: float, high_freq_factor: float,
                    original_max_position_embeddings: int) -> torch.Tensor:
    """Llama 3.1+'s RoPE frequencies, for contexts longer than the L₀ it was pretrained on.

    ω_i = base^(-2i/d) has wavelength λ_i = 2π / ω_i. Short waves (λ < L₀ / high_freq_factor) are
    kept, long waves (λ > L₀ / low_freq_factor) are slowed by ``factor``, and between the two
    ω' = (1 - s) ω / factor + s ω with s = (L₀ / λ - low) / (high - low). -> (d/2,) float64."""
    inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)  # (d/2,)
    wavelen = 2 * math.pi / inv_freq  # (d/2,)
    old = original_max_position_embeddings
    slowed = torch.where(wavelen > old / low_freq_factor, inv_freq / factor, inv_freq)
    s = (old / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)  # (d/2,) in [0, 1] between
    smoothed = (1 - s) * slowed / factor + s * slowed
    medium = (wavelen >= old / high_freq_factor) & (wavelen <= old / low_freq_factor)
    return torch.where(medium, smoothed, slowed)


class Llama3RotaryEmbedding(RotaryEmbedding):
    """RoPE with :func:`llama3_inv_freq`'s frequencies: θ_{m,i} = m · ω'_i, then the same
    rotate_half rotation as :class:`~minitransformer.positions.RotaryEmbedding`.
    ``scaling``: a dict with the keys of :data:`LLAMA3_ROPE_KEYS` (config.json's rope_scaling)."""

    def __init__(self, head_dim: int, max_len: int, base: float, scaling: dict):
        super().__init__(head_dim, max_len, base)
        missing = [k for k in LLAMA3_ROPE_KEYS if k not in scaling]
        if missing:
            raise ValueError(f"llama3 rope_scaling: expected the keys {LLAMA3_ROPE_KEYS}, missing {missing}")
        self.scaling = {k: scaling[k] for k in LLAMA3_ROPE_KEYS}
        self.register_buffer("inv_freq", llama3_inv_freq(head_dim, base, **self.scaling), persistent=False)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        check_rank(x, 4, "rotary input (B, H, T, head_dim)")
        t = x.size(-2)
        check_length(offset + t, self.max_len)
        pos = torch.arange(offset, offset + t, device=x.device, dtype=torch.float64)  # (T,)
        angles = pos.unsqueeze(1) * self.inv_freq.to(x.device)  # (T, d/2)
        angles = torch.cat([angles, angles], dim=-1)  # (T, d): channel i and i + d/2 share an angle
        return apply_rope(x, angles.cos().to(x.dtype), angles.sin().to(x.dtype))


# ----------------------------------------------------------------------------- grouped-query attention


def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """Repeat each key/value head n_rep times, so query head h reads kv head ⌊h / n_rep⌋.
    x: (B, H_kv, T, d) -> (B, H_kv · n_rep, T, d). n_rep = 1 (plain multi-head) returns x."""
    if n_rep == 1:
        return x
    b, h_kv, t, d = x.shape
    return x[:, :, None].expand(b, h_kv, n_rep, t, d).reshape(b, h_kv * n_rep, t, d)  # (B, H, T, d)


def check_gqa_heads(num_attention_heads: int, num_key_value_heads: int) -> None:
    """Raise ValueError naming both numbers unless the query heads split evenly into kv groups."""
    check_divisible(num_attention_heads, num_key_value_heads, "num_attention_heads", "num_key_value_heads")


class GroupedQueryAttention(nn.Module):
    """Causal self-attention with H query heads and H_kv key/value heads (H_kv divides H):

        q_h = RoPE(norm_q(x W_q,h)),  k_g = RoPE(norm_k(x W_k,g)),  v_g = x W_v,g
        head_h = Attention(q_h, k_⌊h/r⌋, v_⌊h/r⌋),  r = H / H_kv
        out = Concat(head_1, …, head_H) W_o

    H_kv = H is multi-head attention, H_kv = 1 multi-query attention. norm_q, norm_k are the
    identity unless ``qk_norm`` (Qwen3: an RMSNorm over head_dim shared by all heads).
    ``qkv_bias``: biases on q, k, v (Qwen2); ``o_bias``: on the output projection (Llama's
    attention_bias sets both). ``rope_scaling``: Llama 3's frequencies (:class:`Llama3RotaryEmbedding`).
    The KV cache holds the H_kv grouped heads, before repetition.
    """

    def __init__(self, hidden_size: int, num_heads: int, num_kv_heads: int, head_dim: int, max_len: int,
                 rope_theta: float = 10000.0, qkv_bias: bool = False, o_bias: bool = False, qk_norm: bool = False,
                 eps: float = 1e-6, use_sdpa: bool = True, rope_scaling: dict | None = None):
        super().__init__()
        check_gqa_heads(num_heads, num_kv_heads)
        self.num_heads, self.num_kv_heads, self.head_dim = num_heads, num_kv_heads, head_dim
        self.n_rep = num_heads // num_kv_heads
        self.use_sdpa = use_sdpa
        self.q_proj = nn.Linear(hidden_size, num_heads * head_dim, bias=qkv_bias)
        self.k_proj = nn.Linear(hidden_size, num_kv_heads * head_dim, bias=qkv_bias)
        self.v_proj = nn.Linear(hidden_size, num_kv_heads * head_dim, bias=qkv_bias)
        self.o_proj = nn.Linear(num_heads * head_dim, hidden_size, bias=o_bias)
        self.q_norm = RMSNorm(head_dim, eps) if qk_norm else None
        self.k_norm = RMSNorm(head_dim, eps) if qk_norm else None
        self.rotary = (RotaryEmbedding(head_dim, max_len, rope_theta) if rope_scaling is None
                       else Llama3RotaryEmbedding(head_dim, max_len, rope_theta, rope_scaling))

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """x: (B, T, C) -> (B, T, C). cache: the layer's KVCache, extended in place; x then holds
        only the new tokens, at positions P..P+T-1 (P = tokens already cached)."""
        check_rank(x, 3, "attention input (B, T, C)")
        past = len(cache) if cache is not None else 0
        q = split_heads(self.q_proj(x), self.num_heads)  # (B, H, T, d)
        k = split_heads(self.k_proj(x), self.num_kv_heads)  # (B, H_kv, T, d)
        v = split_heads(self.v_proj(x), self.num_kv_heads)  # (B, H_kv, T, d)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)  # RMSNorm over d, before RoPE
        q = self.rotary(q, offset=past)
        k = self.rotary(k, offset=past)
        if cache is not None:
            k, v = cache.update(k, v)  # (B, H_kv, P + T, d): the cache stores the grouped heads
        k, v = repeat_kv(k, self.n_rep), repeat_kv(v, self.n_rep)  # (B, H, P + T, d)
        attend = sdpa_fast if self.use_sdpa else scaled_dot_product_attention
        y = attend(q, k, v, None, True, 0.0, False)  # (B, H, T, d), causal (bottom-right with a cache)
        return self.o_proj(merge_heads(y))  # (B, T, C)
