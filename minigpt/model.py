"""GPT-2, decoder-only: token + learned position embeddings, pre-LN decoder blocks, a final
LayerNorm and a language-model head that shares the token table.

    h_0   = Dropout(W_te[idx] + W_pe[0..T-1])                         (B, T, C)
    h_l   = Block_l(h_{l-1}),  l = 1..L       pre-LN, causal self-attention + MLP, GELU (tanh)
    logits = LN_f(h_L) W_teᵀ                                           (B, T, V)

Every part (attention, LayerNorm, GELU, blocks, positions) comes from ``minitransformer``;
this file only wires them. Article §3.2.4 生成任务 (the causal-LM objective), §4.2.1 自注意力机制
(the causal mask), §4.2.2 多层Transformer编码器 (the blocks, here pre-LN).
"""
from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from minitransformer.attention import KVCache
from minitransformer.blocks import DecoderBlock
from minitransformer.checks import check_length, check_rank, check_token_ids
from minitransformer.layers import LayerNorm
from minitransformer.positions import LearnedPositionalEmbedding

from .config import GPTConfig

IGNORE_INDEX = -100  # a target equal to this contributes nothing to the loss (F.cross_entropy's default)


# ----------------------------------------------------------------------------- the objective


def next_token_targets(ids: torch.Tensor, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """The shift by one, made explicit: targets[:, t] = ids[:, t + 1], and the last position,
    whose next token is not in the window, gets ``ignore_index``. ids: (B, T) -> (B, T).

    This is what Hugging Face's GPT2LMHeadModel does inside ``forward(labels=ids)``. The
    trainer's ``random_window_batches`` instead cuts T + 1 tokens and hands over
    ``labels = chunk[:, 1:]``, already shifted (nanoGPT's ``targets``): never shift twice.
    """
    check_rank(ids, 2, "ids (B, T)")
    targets = torch.full_like(ids, ignore_index)  # (B, T)
    targets[:, :-1] = ids[:, 1:]
    return targets


def next_token_loss(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Causal-LM loss: L = -(1/N) Σ_{b,t: y ≠ ignore} log softmax(logits[b, t])[y[b, t]].

    ``targets[b, t]`` is the token that follows position t (already shifted, see
    :func:`next_token_targets`); N counts the targets that are not ``ignore_index``.
    logits: (B, T, V), targets: (B, T) -> scalar. exp(L) is the perplexity. Article §3.2.4.
    """
    b, t, v = logits.shape
    if targets.shape != (b, t):
        raise ValueError(f"targets: expected shape (B, T) = {(b, t)}, received {tuple(targets.shape)}")
    valid = targets != ignore_index
    if not torch.compiler.is_compiling():
        check_token_ids(targets[valid], v, "targets")
    return F.cross_entropy(logits.reshape(b * t, v), targets.reshape(b * t), ignore_index=ignore_index)


# ----------------------------------------------------------------------------- the model


class GPT(nn.Module):
    """GPT-2 language model. ``forward(idx, targets=None) -> (logits, loss)``.

    idx: (B, T) token ids with T <= block_size; targets: (B, T) next tokens (or ``IGNORE_INDEX``),
    see :func:`next_token_loss`. Module names follow nanoGPT: ``transformer.{wte, wpe, drop, h,
    ln_f}`` and ``lm_head``, whose weight *is* ``transformer.wte.weight`` (weight tying).
    ``config.use_sdpa`` / ``config.fused`` pick PyTorch's kernels for attention / LayerNorm and GELU;
    with both False every formula runs as written in minitransformer (same function, slower).
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise ValueError(f"config: expected a GPTConfig, received {type(config).__name__}")
        self.config = config
        c = config.n_embd
        blocks = [
            DecoderBlock(c, config.n_head, 4 * c, config.dropout, activation="gelu_tanh", norm_first=True,
                         eps=config.layer_norm_epsilon, bias=config.bias, use_sdpa=config.use_sdpa, cross_attention=False,
                         fused=config.fused)
            for _ in range(config.n_layer)
        ]
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, c),
            wpe=LearnedPositionalEmbedding(config.block_size, c),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList(blocks),
            ln_f=LayerNorm(c, config.layer_norm_epsilon, config.bias, config.fused),
        ))
        self.lm_head = nn.Linear(c, config.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # one (V, C) table: embed in, un-embed out
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """GPT-2 initialisation with σ = config.init_std (GPT-2: 0.02): every Linear and Embedding
        weight ~ N(0, σ²), biases 0, LayerNorm γ = 1, β = 0; the two projections that write into
        the residual stream (attention ``out_proj`` and MLP ``fc2``) get std σ / √(2L), because each
        of the L blocks adds two such outputs to the stream and the variance of a sum grows with
        the count. GPT-2's σ = 0.02 ≈ 0.55 / √768 was set for its width; see
        :func:`minigpt.width_scaled_init_std` for narrow models."""
        std = self.config.init_std
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=std)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
            if isinstance(module, LearnedPositionalEmbedding):
                nn.init.normal_(module.weight, mean=0.0, std=std)
            if isinstance(module, LayerNorm):
                nn.init.ones_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        residual_std = std / math.sqrt(2 * self.config.n_layer)
        for block in self.transformer.h:
            nn.init.normal_(block.self_attn.out_proj.weight, mean=0.0, std=residual_std)
            nn.init.normal_(block.ff.fc2.weight, mean=0.0, std=residual_std)

    def num_parameters(self) -> int:
        """Distinct parameters (the tied table once): equals :func:`minigpt.gpt_param_count`."""
        return sum(p.numel() for p in self.parameters())

    @torch.no_grad()
    def crop_block_size(self, block_size: int) -> None:
        """Keep only the first ``block_size`` rows of the position table (e.g. fine-tune GPT-2's
        1024-position model on 256-token windows, as nanoGPT does); config.block_size follows."""
        if not 1 <= block_size <= self.config.block_size:
            raise ValueError(f"block_size: expected 1..{self.config.block_size}, received {block_size}")
        wpe = self.transformer.wpe
        wpe.weight = nn.Parameter(wpe.weight[:block_size].clone())
        wpe.max_len = block_size
        self.config = dataclasses.replace(self.config, block_size=block_size)

    def new_caches(self) -> list[KVCache]:
        """One empty KV cache per block (block_size slots each), for :meth:`hidden_states`."""
        return [KVCache(max_len=self.config.block_size) for _ in self.transformer.h]

    def hidden_states(self, idx: torch.Tensor, caches: list[KVCache] | None = None) -> torch.Tensor:
        """Final-LayerNorm output. idx: (B, T) -> (B, T, C).

        With ``caches`` (one KVCache per block, filled by earlier calls) idx holds only the new
        tokens: they sit at positions P..P+T-1 (P = tokens already cached) and attend to the cache.
        """
        check_rank(idx, 2, "idx (B, T)")
        if idx.size(1) < 1:
            raise ValueError(f"idx: expected at least one token per row, received shape {tuple(idx.shape)}")
        if not torch.compiler.is_compiling():
            check_token_ids(idx, self.config.vocab_size, "idx")
        if caches is not None and len(caches) != self.config.n_layer:
            raise ValueError(f"caches: expected one KVCache per block ({self.config.n_layer}), received {len(caches)}")
        past = len(caches[0]) if caches else 0
        check_length(past + idx.size(1), self.config.block_size, "idx (with the cached tokens)")
        tok = self.transformer.wte(idx)  # (B, T, C)
        pos = self.transformer.wpe(idx.size(1), offset=past)  # (T, C)
        x = self.transformer.drop(tok + pos)  # (B, T, C)
        for i, block in enumerate(self.transformer.h):
            x, _ = block(x, cache=None if caches is None else caches[i])  # (B, T, C)
        return self.transformer.ln_f(x)  # (B, T, C)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, caches: list[KVCache] | None = None):
        """logits = LN_f(h_L) W_teᵀ: (B, T, V); loss = :func:`next_token_loss` when ``targets``
        (B, T) is given, else None. Returns (logits, loss)."""
        x = self.hidden_states(idx, caches)  # (B, T, C)
        logits = self.lm_head(x)  # (B, T, V)
        loss = None if targets is None else next_token_loss(logits, targets)
        return logits, loss

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None, greedy: bool = False, stop_token: int | None = None,
                 use_cache: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
        """Extend idx (B, T) by up to ``max_new_tokens`` tokens -> (B, T + n). See
        :func:`minigpt.generate.generate` (sampling rules, the KV cache, prompts longer than
        block_size: cropped to the last block_size tokens with a warning)."""
        from .generate import generate

        return generate(self, idx, max_new_tokens, temperature, top_k, top_p, greedy, stop_token, use_cache, generator)

    # ------------------------------------------------------------------ checkpoints

    @classmethod
    def from_pretrained(cls, path, **overrides) -> "GPT":
        """Load a Hugging Face GPT-2 folder (config.json + model.safetensors or pytorch_model.bin);
        ``overrides`` set other GPTConfig fields (e.g. ``use_sdpa=False, fused=False, dropout=0.1``)."""
        from .hf import from_pretrained

        return from_pretrained(path, **overrides)

    def save_pretrained(self, path, tokenizer=None) -> None:
        """Write a Hugging Face GPT-2 folder that ``transformers.GPT2LMHeadModel`` loads."""
        from .hf import save_pretrained

        save_pretrained(self, path, tokenizer)

    @classmethod
    def from_checkpoint(cls, path) -> "GPT":
        """Load a checkpoint written by ``python -m minigpt train`` (config.json + model.safetensors)."""
        from minitransformer.checkpoint import load_checkpoint, read_config

        model = cls(GPTConfig.from_dict(read_config(path)))
        load_checkpoint(path, model)
        return model
