"""Stacks of blocks, and the full encoder-decoder Transformer (Vaswani et al., 2017) for
sequence-to-sequence tasks such as translation (Article §3.2.4 生成任务, §6.3 机器翻译)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from .attention import KVCache
from .blocks import DecoderBlock, EncoderBlock
from .checks import check_rank, check_token_ids
from .layers import LayerNorm
from .positions import SinusoidalPositionalEncoding


class Encoder(nn.Module):
    """N encoder blocks, plus an optional final LayerNorm (needed after pre-LN blocks).
    x: (B, S, C) -> (B, S, C). Article §4.2.2 多层Transformer编码器."""

    def __init__(self, n_layers: int, d_model: int, n_heads: int, d_ff: int, dropout: float = 0.1,
                 activation: str = "gelu", norm_first: bool = False, final_norm: bool = False, eps: float = 1e-5, **kw):
        super().__init__()
        self.layers = nn.ModuleList(
            EncoderBlock(d_model, n_heads, d_ff, dropout, activation=activation, norm_first=norm_first, eps=eps, **kw)
            for _ in range(n_layers)
        )
        self.norm = LayerNorm(d_model, eps) if final_norm else None

    def forward(self, x, attention_mask=None, need_weights=False):
        """Returns (x, list of per-layer attention weights, or Nones)."""
        weights = []
        for layer in self.layers:
            x, w = layer(x, attention_mask, need_weights=need_weights)
            weights.append(w)
        if self.norm is not None:
            x = self.norm(x)
        return x, weights


class Decoder(nn.Module):
    """N decoder blocks (causal self-attention + cross-attention), plus an optional final LayerNorm.
    x: (B, T, C), memory: (B, S, C) -> (B, T, C)."""

    def __init__(self, n_layers: int, d_model: int, n_heads: int, d_ff: int, dropout: float = 0.1,
                 activation: str = "gelu", norm_first: bool = False, final_norm: bool = False, eps: float = 1e-5, **kw):
        super().__init__()
        self.layers = nn.ModuleList(
            DecoderBlock(d_model, n_heads, d_ff, dropout, activation=activation, norm_first=norm_first, eps=eps, **kw)
            for _ in range(n_layers)
        )
        self.norm = LayerNorm(d_model, eps) if final_norm else None

    def forward(self, x, memory, attention_mask=None, memory_mask=None, need_weights=False, caches=None):
        """caches: one KVCache per layer (generation), or None. Returns (x, per-layer weight dicts)."""
        weights = []
        for i, layer in enumerate(self.layers):
            x, w = layer(x, memory, attention_mask, memory_mask, need_weights, None if caches is None else caches[i])
            weights.append(w)
        if self.norm is not None:
            x = self.norm(x)
        return x, weights


@dataclass
class Seq2SeqConfig:
    """Sizes of the encoder-decoder Transformer. The original "base" model is d_model=512, n_heads=8,
    d_ff=2048, 6 + 6 layers, dropout 0.1, ReLU, post-LN."""

    src_vocab_size: int
    tgt_vocab_size: int
    d_model: int = 128
    n_heads: int = 4
    d_ff: int = 512
    n_encoder_layers: int = 2
    n_decoder_layers: int = 2
    dropout: float = 0.1
    activation: str = "relu"
    norm_first: bool = False
    max_len: int = 256
    pad_id: int = 0
    tie_embeddings: bool = False  # share source, target and output embeddings (needs one joint vocabulary)


class Seq2SeqTransformer(nn.Module):
    """Embeddings (scaled by √d_model) + sinusoidal positions -> Encoder -> Decoder -> linear to
    target-vocabulary logits. Teacher forcing in ``forward``; ``greedy_decode`` for inference."""

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        c = self.config = config
        self.src_embed = nn.Embedding(c.src_vocab_size, c.d_model)
        self.tgt_embed = self.src_embed if c.tie_embeddings else nn.Embedding(c.tgt_vocab_size, c.d_model)
        if c.tie_embeddings and c.src_vocab_size != c.tgt_vocab_size:
            raise ValueError(f"tie_embeddings: expected one vocabulary, received sizes {c.src_vocab_size} and {c.tgt_vocab_size}")
        self.pos = SinusoidalPositionalEncoding(c.max_len, c.d_model)
        self.dropout = nn.Dropout(c.dropout)
        common = dict(dropout=c.dropout, activation=c.activation, norm_first=c.norm_first, final_norm=c.norm_first)
        self.encoder = Encoder(c.n_encoder_layers, c.d_model, c.n_heads, c.d_ff, **common)
        self.decoder = Decoder(c.n_decoder_layers, c.d_model, c.n_heads, c.d_ff, **common)
        self.lm_head = nn.Linear(c.d_model, c.tgt_vocab_size, bias=False)
        if c.tie_embeddings:
            self.lm_head.weight = self.tgt_embed.weight
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def embed(self, ids: torch.Tensor, table: nn.Embedding, offset: int = 0) -> torch.Tensor:
        """x = Embedding(ids) · √d_model + PE. ids: (B, T) -> (B, T, C)."""
        check_rank(ids, 2, "token ids (B, T)")
        check_token_ids(ids, table.num_embeddings)
        x = table(ids) * math.sqrt(self.config.d_model) + self.pos(ids.size(1), offset)
        return self.dropout(x)

    def encode(self, src: torch.Tensor, src_mask: torch.Tensor | None = None) -> torch.Tensor:
        """src: (B, S) -> memory (B, S, C). src_mask: (B, S), 1 = real token; default src != pad."""
        src_mask = (src != self.config.pad_id) if src_mask is None else src_mask
        memory, _ = self.encoder(self.embed(src, self.src_embed), src_mask)
        return memory

    def decode(self, tgt, memory, src_mask, tgt_mask=None, caches=None, offset: int = 0):
        """tgt: (B, T) -> logits (B, T, V_tgt)."""
        x, _ = self.decoder(self.embed(tgt, self.tgt_embed, offset), memory, tgt_mask, src_mask, caches=caches)
        return self.lm_head(x)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor, labels: torch.Tensor | None = None):
        """Teacher forcing: tgt_in = [BOS] y₁ … y_{n-1}, labels = y₁ … y_n [EOS] (pad = ignored).
        Returns (logits (B, T, V), loss or None)."""
        src_mask = src != self.config.pad_id
        memory = self.encode(src, src_mask)
        logits = self.decode(tgt_in, memory, src_mask, tgt_in != self.config.pad_id)
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(
                logits.reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=self.config.pad_id
            )
        return logits, loss

    @torch.no_grad()
    def greedy_decode(self, src: torch.Tensor, bos_id: int, eos_id: int, max_new_tokens: int = 64) -> torch.Tensor:
        """Greedy decoding: y_t = argmax p(y_t | y_<t, x), one token at a time with a KV cache,
        until every sequence has produced EOS or ``max_new_tokens`` is reached.
        src: (B, S) -> (B, ≤ max_new_tokens) token ids (after BOS, EOS included; pad after EOS)."""
        was_training = self.training
        self.eval()
        src_mask = src != self.config.pad_id
        memory = self.encode(src, src_mask)
        b = src.size(0)
        caches = [KVCache() for _ in self.decoder.layers]
        token = torch.full((b, 1), bos_id, dtype=torch.long, device=src.device)
        done = torch.zeros(b, dtype=torch.bool, device=src.device)
        out = []
        for t in range(min(max_new_tokens, self.config.max_len)):
            logits = self.decode(token, memory, src_mask, caches=caches, offset=t)  # (B, 1, V)
            token = logits[:, -1].argmax(-1, keepdim=True)  # (B, 1)
            token = token.masked_fill(done.unsqueeze(1), self.config.pad_id)
            out.append(token)
            done |= token.squeeze(1) == eos_id
            if bool(done.all()):
                break
        self.train(was_training)
        return torch.cat(out, dim=1)
