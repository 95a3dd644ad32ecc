"""Scaled dot-product attention and multi-head attention.

Article §4.2.1 自注意力机制:

    Attention(Q, K, V) = softmax(Q Kᵀ / √d_k) V

A note the article gets wrong: d_k is the dimension of the *queries and keys* (their dot product is
what gets scaled); the values may have another dimension d_v, and the output has d_v columns.

Mask convention (the same as ``torch.nn.functional.scaled_dot_product_attention``):
a boolean mask is ``True`` where a query MAY attend to a key; a floating mask is *added* to the
scores (0 to keep, -inf to drop). Masks broadcast to the score shape (B, H, T_q, T_k).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .checks import check_divisible, check_rank

# ----------------------------------------------------------------------------- masks


def causal_mask(t_q: int, t_k: int | None = None, device=None) -> torch.Tensor:
    """Boolean causal mask, True where query i may see key j: j <= i + (t_k - t_q).

    With t_k > t_q (a KV cache holding t_k - t_q earlier tokens) the mask is aligned bottom-right,
    so the last query sees every key. Shape (T_q, T_k).
    """
    t_k = t_q if t_k is None else t_k
    i = torch.arange(t_q, device=device).unsqueeze(1)  # (T_q, 1)
    j = torch.arange(t_k, device=device).unsqueeze(0)  # (1, T_k)
    return j <= i + (t_k - t_q)  # (T_q, T_k)


def padding_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Turn a (B, T_k) key-padding mask, 1/True for real tokens and 0/False for padding
    (the Hugging Face convention), into a boolean (B, 1, 1, T_k) mask that broadcasts over heads
    and queries."""
    check_rank(attention_mask, 2, "attention_mask")
    if attention_mask.dtype != torch.bool:
        if attention_mask.is_floating_point() or attention_mask.dtype in (torch.int64, torch.int32, torch.uint8, torch.int8):
            bad = (attention_mask != 0) & (attention_mask != 1)
            if bool(bad.any()):
                raise ValueError("attention_mask: expected 0/1 (or bool) values, received other values")
        else:
            raise ValueError(f"attention_mask: expected a bool or 0/1 integer tensor, received dtype {attention_mask.dtype}")
        attention_mask = attention_mask != 0
    return attention_mask[:, None, None, :]  # (B, 1, 1, T_k)


def check_attn_mask(mask: torch.Tensor, score_shape: tuple[int, ...], name: str = "attn_mask") -> None:
    """Raise ValueError unless ``mask`` is bool or floating and broadcasts to ``score_shape``."""
    if not isinstance(mask, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor, received {type(mask).__name__}")
    if mask.dtype != torch.bool and not mask.is_floating_point():
        raise ValueError(f"{name}: expected dtype torch.bool or a floating dtype, received {mask.dtype}")
    ok = mask.dim() <= len(score_shape) and all(
        m in (1, s) for m, s in zip(reversed(mask.shape), reversed(score_shape))
    )
    if not ok:
        raise ValueError(
            f"{name}: expected a shape that broadcasts to the scores {tuple(score_shape)} "
            f"(B, H, T_q, T_k), received {tuple(mask.shape)}"
        )


def merge_masks(attn_mask: torch.Tensor | None, is_causal: bool, t_q: int, t_k: int, dtype, device) -> torch.Tensor | None:
    """Combine an optional bool/additive mask with the causal mask into one mask.

    Two bool masks combine with AND; a floating mask gets -inf added where causality forbids.
    """
    if not is_causal:
        return attn_mask
    causal = causal_mask(t_q, t_k, device=device)  # (T_q, T_k)
    if attn_mask is None:
        return causal
    if attn_mask.dtype == torch.bool:
        return attn_mask & causal
    return attn_mask.to(dtype).masked_fill(~causal, float("-inf"))


# ----------------------------------------------------------------------------- attention


def attention_scores(q: torch.Tensor, k: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    """Scores S = Q Kᵀ / √d_k. q: (..., T_q, d_k), k: (..., T_k, d_k) -> (..., T_q, T_k).

    Why divide by √d_k: if the entries of q and k are independent with mean 0 and variance 1,
    q·k is a sum of d_k such products, so its variance is d_k. Dividing by √d_k brings the
    variance back to 1 and keeps the softmax out of its flat, saturated region.
    """
    scale = 1.0 / math.sqrt(q.size(-1)) if scale is None else scale
    return (q * scale) @ k.transpose(-2, -1)  # (..., T_q, T_k)


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """softmax over the last axis after applying a bool (keep) or additive mask.

    A row whose every key is masked would be 0/0 = NaN; it gets all-zero weights instead
    (so its output is the zero vector), and its gradient is zero too.
    The softmax formula itself is hand-written in ``layers.softmax``; here we call the fused kernel.
    """
    if mask is None:
        return torch.softmax(scores, dim=-1)
    if mask.dtype == torch.bool:
        scores = scores.masked_fill(~mask, float("-inf"))
    else:
        scores = scores + mask
    dead = torch.isneginf(scores.amax(dim=-1, keepdim=True))  # (..., T_q, 1) rows with nothing to see
    weights = torch.softmax(scores.masked_fill(dead, 0.0), dim=-1)
    return weights.masked_fill(dead, 0.0)


def check_qkv_dtypes(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    """Raise ValueError unless q, k and v are tensors of one floating dtype (attention multiplies
    them together and takes a softmax; torch would fail deep inside with integer or mixed inputs)."""
    for name, x in (("q", q), ("k", k), ("v", v)):
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"{name}: expected a torch.Tensor, received {type(x).__name__}")
    dtypes = (q.dtype, k.dtype, v.dtype)
    if not all(x.is_floating_point() for x in (q, k, v)) or len(set(dtypes)) != 1:
        raise ValueError(f"q, k, v: expected tensors of one floating dtype, received {', '.join(map(str, dtypes))}")


def check_dropout_p(dropout_p) -> float:
    """``dropout_p`` as a float when it is a probability in [0, 1); ValueError otherwise (NaN included)."""
    if isinstance(dropout_p, bool) or not isinstance(dropout_p, (int, float)) or not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"dropout_p: expected a probability in [0, 1), received {dropout_p!r}")
    return float(dropout_p)


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    is_causal: bool = False,
    dropout_p: float = 0.0,
    training: bool = True,
    scale: float | None = None,
    return_weights: bool = False,
):
    """Attention(Q, K, V) = softmax(Q Kᵀ / √d_k + M) V, written out step by step.

    q: (..., T_q, d_k), k: (..., T_k, d_k), v: (..., T_k, d_v) -> (..., T_q, d_v).
    attn_mask: bool (True = may attend) or additive float, broadcastable to (..., T_q, T_k).
    is_causal: also forbid keys after the query (bottom-right aligned when T_k > T_q).
    dropout_p: dropout on the attention weights (only when ``training``).
    return_weights: also return the (..., T_q, T_k) weights (after dropout).
    Article §4.2.1 自注意力机制.
    """
    check_rank(q, (3, 4), "q")
    check_rank(k, q.dim(), "k")
    check_rank(v, q.dim(), "v")
    check_qkv_dtypes(q, k, v)
    dropout_p = check_dropout_p(dropout_p)
    if q.size(-1) != k.size(-1):
        raise ValueError(f"q and k: expected the same last dimension d_k, received {q.size(-1)} and {k.size(-1)}")
    if k.size(-2) != v.size(-2):
        raise ValueError(f"k and v: expected the same length T_k, received {k.size(-2)} and {v.size(-2)}")
    t_q, t_k = q.size(-2), k.size(-2)
    if attn_mask is not None:
        check_attn_mask(attn_mask, (*q.shape[:-2], t_q, t_k))
    mask = merge_masks(attn_mask, is_causal, t_q, t_k, q.dtype, q.device)
    scores = attention_scores(q, k, scale)  # (..., T_q, T_k)
    weights = masked_softmax(scores, mask)  # (..., T_q, T_k)
    if dropout_p > 0.0 and training:
        weights = F.dropout(weights, p=dropout_p, training=True)
    out = weights @ v  # (..., T_q, d_v)
    return (out, weights) if return_weights else out


def sdpa_fast(q, k, v, attn_mask=None, is_causal=False, dropout_p=0.0, training=True, scale=None):
    """The same computation through PyTorch's fused kernel ``F.scaled_dot_product_attention``.

    Our masks follow its convention, so only two adjustments are needed: causal + another mask
    are merged into one (the kernel refuses both at once), and a KV-cache query block (T_q < T_k)
    needs the bottom-right causal mask, while the kernel's ``is_causal`` aligns top-left.
    """
    check_qkv_dtypes(q, k, v)
    dropout_p = check_dropout_p(dropout_p)
    t_q, t_k = q.size(-2), k.size(-2)
    if attn_mask is not None:
        check_attn_mask(attn_mask, (*q.shape[:-2], t_q, t_k))
    if is_causal and (attn_mask is not None or t_q != t_k):
        attn_mask, is_causal = merge_masks(attn_mask, True, t_q, t_k, q.dtype, q.device), False
    if attn_mask is not None and attn_mask.dtype != torch.bool:
        attn_mask = attn_mask.to(q.dtype)
    return F.scaled_dot_product_attention(
        q, k, v, attn_mask=attn_mask, dropout_p=dropout_p if training else 0.0, is_causal=is_causal, scale=scale
    )


# ----------------------------------------------------------------------------- multi-head


def split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """(B, T, C) -> (B, H, T, C/H): each head gets its own slice of the channels."""
    b, t, c = x.shape
    return x.view(b, t, n_heads, c // n_heads).transpose(1, 2)  # (B, H, T, hs)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, H, T, hs) -> (B, T, H*hs): concatenate the heads' outputs side by side."""
    b, h, t, hs = x.shape
    return x.transpose(1, 2).contiguous().view(b, t, h * hs)  # (B, T, C)


class KVCache:
    """Keys and values of the tokens seen so far, for one attention layer during generation.

    Each step writes the new tokens' (B, H, T_new, hs) keys and values after the ones already
    held, so attention for a new token costs O(T) instead of recomputing the whole (T, T) prefix.

    Storage is preallocated: ``max_len`` slots when given (a GPT passes its block_size), else a
    buffer that doubles when full. Writing in place keeps a step's cost independent of how many
    tokens are cached (``torch.cat`` would copy the whole cache every step). ``k`` and ``v`` are
    views of the filled part, (B, H, T, hs).
    """

    def __init__(self, max_len: int | None = None):
        if max_len is not None and (not isinstance(max_len, int) or max_len < 1):
            raise ValueError(f"max_len: expected a positive integer or None, received {max_len!r}")
        self.max_len = max_len
        self._k: torch.Tensor | None = None  # (B, H, capacity, hs)
        self._v: torch.Tensor | None = None
        self._len = 0

    def __len__(self) -> int:
        return self._len

    @property
    def k(self) -> torch.Tensor | None:
        """Cached keys, (B, H, T, hs), or None before the first update."""
        return None if self._k is None else self._k[:, :, : self._len]

    @property
    def v(self) -> torch.Tensor | None:
        """Cached values, (B, H, T, hs), or None before the first update."""
        return None if self._v is None else self._v[:, :, : self._len]

    def _reserve(self, k: torch.Tensor, needed: int) -> None:
        """Make room for ``needed`` time steps, keeping what is cached."""
        if self._k is not None and needed <= self._k.size(2):
            return
        if self.max_len is not None:
            if needed > self.max_len:
                raise ValueError(f"KVCache: expected at most max_len={self.max_len} tokens, received {needed}")
            capacity = self.max_len
        else:
            capacity = max(needed, 2 * (0 if self._k is None else self._k.size(2)), 16)
        b, h, _, hs = k.shape
        new_k = k.new_empty(b, h, capacity, hs)  # (B, H, capacity, hs)
        new_v = k.new_empty(b, h, capacity, hs)
        if self._len:
            new_k[:, :, : self._len] = self.k
            new_v[:, :, : self._len] = self.v
        self._k, self._v = new_k, new_v

    def update(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write new keys/values (B, H, T_new, hs) after the cached ones; return the full
        (B, H, T_past + T_new, hs) keys and values."""
        if self._k is not None and (k.shape[:2] != self._k.shape[:2] or k.size(3) != self._k.size(3)):
            raise ValueError(f"KVCache.update: expected keys of shape (B, H, T, hs) = "
                             f"({self._k.size(0)}, {self._k.size(1)}, T, {self._k.size(3)}), received {tuple(k.shape)}")
        end = self._len + k.size(2)
        self._reserve(k, end)
        self._k[:, :, self._len : end] = k
        self._v[:, :, self._len : end] = v
        self._len = end
        return self.k, self.v


class MultiHeadAttention(nn.Module):
    """MultiHead(Q, K, V) = Concat(head_1, …, head_H) W^O, head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V).

    Three inputs — query, key, value — (the article's four-argument MultiHeadAttention(X, X, X, X)
    is a typo). Self-attention: ``mha(x)``; cross-attention: ``mha(x, memory)``.
    ``use_sdpa`` picks the fused kernel (per module, or per call through ``forward(use_sdpa=...)``);
    both paths compute the same function. Article §4.2.1.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, bias: bool = True,
                 use_sdpa: bool = False, rotary=None):
        super().__init__()
        check_divisible(d_model, n_heads, "d_model", "n_heads")
        self.d_model, self.n_heads, self.head_dim = d_model, n_heads, d_model // n_heads
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)
        self.dropout = dropout
        self.use_sdpa = use_sdpa
        self.rotary = rotary  # a positions.RotaryEmbedding, or None

    def forward(
        self,
        query: torch.Tensor,
        key_value: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        attn_mask: torch.Tensor | None = None,
        is_causal: bool = False,
        need_weights: bool = False,
        use_sdpa: bool | None = None,
        cache: KVCache | None = None,
    ):
        """query: (B, T_q, C); key_value: (B, T_k, C) or None for self-attention.
        attention_mask: (B, T_k) key padding, 1 = real token. attn_mask: bool/additive, (T_q, T_k)
        or (B, H, T_q, T_k). cache: a KVCache extended in place (self-attention generation).
        Returns (output (B, T_q, C), weights (B, H, T_q, T_k) or None)."""
        check_rank(query, 3, "query")
        if query.size(-1) != self.d_model:
            raise ValueError(f"query: expected last dimension d_model={self.d_model}, received shape {tuple(query.shape)}")
        kv = query if key_value is None else key_value
        check_rank(kv, 3, "key_value")
        if kv.size(-1) != self.d_model or kv.size(0) != query.size(0):
            raise ValueError(f"key_value: expected shape (B={query.size(0)}, T_k, {self.d_model}), received {tuple(kv.shape)}")
        past = len(cache) if cache is not None else 0
        q = split_heads(self.q_proj(query), self.n_heads)  # (B, H, T_q, hs)
        k = split_heads(self.k_proj(kv), self.n_heads)  # (B, H, T_k, hs)
        v = split_heads(self.v_proj(kv), self.n_heads)  # (B, H, T_k, hs)
        if self.rotary is not None:
            q = self.rotary(q, offset=past)
            k = self.rotary(k, offset=past)
        if cache is not None:
            k, v = cache.update(k, v)  # (B, H, T_past + T_k, hs)
        mask = attn_mask
        if attention_mask is not None:
            if attention_mask.shape != (k.size(0), k.size(2)):
                raise ValueError(
                    f"attention_mask: expected shape (B, T_k) = {(k.size(0), k.size(2))}, received {tuple(attention_mask.shape)}"
                )
            pad = padding_mask(attention_mask)  # (B, 1, 1, T_k)
            if mask is None:
                mask = pad
            elif mask.dtype == torch.bool:
                mask = mask & pad
            else:
                mask = mask.masked_fill(~pad, float("-inf"))
        fast = self.use_sdpa if use_sdpa is None else use_sdpa
        p = self.dropout if self.training else 0.0
        if fast and not need_weights:
            y, w = sdpa_fast(q, k, v, mask, is_causal, p, self.training), None
        else:
            y, w = scaled_dot_product_attention(q, k, v, mask, is_causal, p, self.training, return_weights=True)
        y = self.out_proj(merge_heads(y))  # (B, T_q, C)
        return y, (w if need_weights else None)
