"""Encoder and decoder blocks: attention and feed-forward sublayers, each wrapped in dropout,
a residual connection and LayerNorm.

Two placements of the LayerNorm (Article §4.2.2 多层Transformer编码器):

    post-LN (original Transformer, BERT):  x = LN(x + Dropout(Sublayer(x)))
    pre-LN  (GPT-2):                       x = x + Dropout(Sublayer(LN(x)))

The article's Enc(X) = MaxPool(MLP(Dropout(LayerNorm(MultiHeadAttention(X, X, X, X)))…)) is not
what BERT computes: there is no max-pooling, and each layer adds residual connections as above.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .attention import KVCache, MultiHeadAttention
from .checks import check_rank
from .layers import FeedForward, LayerNorm


def sublayer_connection(x: torch.Tensor, norm: nn.Module, sublayer, dropout: nn.Module, norm_first: bool):
    """One residual sublayer. ``sublayer(h)`` returns (output, attention weights or None).

    post-LN: x = LN(x + Dropout(f(x)));  pre-LN: x = x + Dropout(f(LN(x))).  x: (B, T, C).
    """
    if norm_first:
        y, w = sublayer(norm(x))
        return x + dropout(y), w
    y, w = sublayer(x)
    return norm(x + dropout(y)), w


def gather_positions(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """out[b, q] = x[b, index[b, q]]: the rows of each sequence at the given positions.
    x: (B, T, C), index: (B, Q) int64 -> (B, Q, C)."""
    check_rank(index, 2, "positions (B, Q)")
    if index.size(0) != x.size(0) or index.dtype != torch.int64:
        raise ValueError(f"positions: expected int64 (B={x.size(0)}, Q), received {index.dtype} {tuple(index.shape)}")
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.size(-1)))


class EncoderBlock(nn.Module):
    """Self-attention + feed-forward. x: (B, T, C) -> (B, T, C).

    ``norm_first`` False is post-LN (BERT, the original Transformer), True is pre-LN.
    ``fused`` runs LayerNorm and the activation through PyTorch's kernels (same functions, faster).
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float = 0.1, attn_dropout: float | None = None,
                 activation: str = "gelu", norm_first: bool = False, eps: float = 1e-5, bias: bool = True,
                 use_sdpa: bool = False, rotary=None, activation_dropout: float = 0.0, fused: bool = False):
        super().__init__()
        attn_dropout = dropout if attn_dropout is None else attn_dropout
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, n_heads, attn_dropout, bias, use_sdpa, rotary)
        self.norm1 = LayerNorm(d_model, eps, bias, fused)
        self.ff = FeedForward(d_model, d_ff, activation, activation_dropout, bias, fused)
        self.norm2 = LayerNorm(d_model, eps, bias, fused)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor | None = None, attn_mask: torch.Tensor | None = None,
                is_causal: bool = False, need_weights: bool = False, cache: KVCache | None = None):
        """x: (B, T, C); attention_mask: (B, T) 1 = real token. Returns (x, attention weights or None)."""
        check_rank(x, 3, "block input (B, T, C)")
        x, w = sublayer_connection(
            x, self.norm1, lambda h: self.self_attn(h, None, attention_mask, attn_mask, is_causal, need_weights, cache=cache),
            self.dropout1, self.norm_first,
        )
        x, _ = sublayer_connection(x, self.norm2, lambda h: (self.ff(h), None), self.dropout2, self.norm_first)
        return x, w

    def forward_at(self, x: torch.Tensor, positions: torch.Tensor, attention_mask: torch.Tensor | None = None):
        """The block's output at ``positions`` only: forward(x)[0] gathered there, computed so.

        Every position's row is needed as a key and a value, but each output row depends only on its
        own query: so the queries, the attention output, both residuals, both LayerNorms and the
        feed-forward run on Q rows instead of T. BERT's last layer needs just the [CLS] row and the
        masked rows (~15 %) for its pretraining losses. x: (B, T, C), positions: (B, Q) int64
        -> (B, Q, C). (Rotary positions would need each query's own position: not supported.)"""
        check_rank(x, 3, "block input (B, T, C)")
        if self.self_attn.rotary is not None:
            raise ValueError("forward_at: expected a block without rotary positions, received one with a RotaryEmbedding")
        keys = self.norm1(x) if self.norm_first else x  # (B, T, C), what the full block's attention sees
        h = gather_positions(x, positions)  # (B, Q, C)
        h, _ = sublayer_connection(h, self.norm1, lambda q: self.self_attn(q, keys, attention_mask), self.dropout1,
                                   self.norm_first)
        h, _ = sublayer_connection(h, self.norm2, lambda q: (self.ff(q), None), self.dropout2, self.norm_first)
        return h


class DecoderBlock(nn.Module):
    """Causal self-attention, then (optionally) cross-attention to the encoder's memory, then
    feed-forward — the original Transformer's decoder layer. x: (B, T, C), memory: (B, S, C).

    With ``cross_attention=False`` and ``norm_first=True`` it is the GPT-2 block (decoder-only).
    ``fused`` runs LayerNorm and the activation through PyTorch's kernels (same functions, faster).
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float = 0.1, attn_dropout: float | None = None,
                 activation: str = "gelu", norm_first: bool = False, eps: float = 1e-5, bias: bool = True,
                 use_sdpa: bool = False, cross_attention: bool = True, rotary=None, activation_dropout: float = 0.0,
                 fused: bool = False):
        super().__init__()
        attn_dropout = dropout if attn_dropout is None else attn_dropout
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, n_heads, attn_dropout, bias, use_sdpa, rotary)
        self.norm1 = LayerNorm(d_model, eps, bias, fused)
        self.cross_attn = MultiHeadAttention(d_model, n_heads, attn_dropout, bias, use_sdpa) if cross_attention else None
        self.norm2 = LayerNorm(d_model, eps, bias, fused) if cross_attention else None
        self.ff = FeedForward(d_model, d_ff, activation, activation_dropout, bias, fused)
        self.norm3 = LayerNorm(d_model, eps, bias, fused)
        self.dropout1, self.dropout2, self.dropout3 = nn.Dropout(dropout), nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                memory_mask: torch.Tensor | None = None, need_weights: bool = False, cache: KVCache | None = None):
        """x: (B, T, C) target so far; memory: (B, S, C) encoder output; attention_mask: (B, T) and
        memory_mask: (B, S) key padding, 1 = real token. Returns (x, {"self": w, "cross": w})."""
        check_rank(x, 3, "decoder input (B, T, C)")
        if self.cross_attn is not None and memory is None:
            raise ValueError("DecoderBlock: expected an encoder memory (B, S, C) for cross-attention, received None")
        x, w_self = sublayer_connection(
            x, self.norm1, lambda h: self.self_attn(h, None, attention_mask, None, True, need_weights, cache=cache),
            self.dropout1, self.norm_first,
        )
        w_cross = None
        if self.cross_attn is not None:
            x, w_cross = sublayer_connection(
                x, self.norm2, lambda h: self.cross_attn(h, memory, memory_mask, None, False, need_weights),
                self.dropout2, self.norm_first,
            )
        x, _ = sublayer_connection(x, self.norm3, lambda h: (self.ff(h), None), self.dropout3, self.norm_first)
        return x, {"self": w_self, "cross": w_cross}
