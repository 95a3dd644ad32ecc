"""A Llama / Qwen-style decoder (Llama 2/3, Qwen2 / Qwen2.5, Qwen3), built from minitransformer's parts.

What changed since GPT-2, read top to bottom:

    h_0    = W_emb[idx]                                       (B, T, C)  no position table
    a_l    = h_{l-1} + GQA(RMSNorm(h_{l-1}))                 RoPE on q, k; H_kv key/value heads
    h_l    = a_l + SwiGLU(RMSNorm(a_l))                      W_down (SiLU(W_gate x) ⊙ W_up x)
    logits = RMSNorm(h_L) W_outᵀ                              (B, T, V)  W_out = W_emb if tied

No biases anywhere, except Qwen2's on q, k, v (``qkv_bias``) and Llama's optional
``attention_bias`` (q, k, v and o). Qwen3 adds QK-norm: an RMSNorm over head_dim on every query
and key head before RoPE (``qk_norm``). Llama 3.1+ slows RoPE's long wavelengths (``rope_scaling``,
:func:`minitransformer.modern.llama3_inv_freq`). Module names are Hugging Face's (``model.embed_tokens``,
``model.layers.N.self_attn.q_proj``, ...), so a checkpoint loads without renaming
(:mod:`minigpt.llama_hf`). Generation reuses minigpt's sampling loop (:func:`minigpt.generate.generate`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from minitransformer.attention import KVCache
from minitransformer.blocks import sublayer_connection
from minitransformer.checks import check_length, check_rank, check_token_ids
from minitransformer.modern import GroupedQueryAttention, RMSNorm, SwiGLU, check_gqa_heads

from .model import next_token_loss

FAMILIES = ("llama", "qwen2", "qwen3")


@dataclass
class LlamaConfig:
    """Hyper-parameters with Hugging Face's field names. Defaults: a small Llama.

    ``num_key_value_heads`` None means H (multi-head); ``head_dim`` None means C / H.
    Qwen2 is ``qkv_bias=True``; Qwen3 is ``qk_norm=True`` (and usually head_dim ≠ C / H).
    """

    vocab_size: int = 32000
    hidden_size: int = 512  # C
    intermediate_size: int = 1376  # d_ff of SwiGLU
    num_hidden_layers: int = 8  # L
    num_attention_heads: int = 8  # H, query heads
    num_key_value_heads: int | None = None  # H_kv, key/value heads (GQA); divides H
    head_dim: int | None = None  # d per head
    max_position_embeddings: int = 2048  # longest context
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0  # RoPE base
    rope_scaling: dict | None = None  # Llama 3.1+'s frequencies: factor, low/high_freq_factor, original_max_position_embeddings
    tie_word_embeddings: bool = False  # lm_head.weight is embed_tokens.weight
    attention_bias: bool = False  # biases on q, k, v and o (Llama's flag)
    qkv_bias: bool = False  # biases on q, k, v only (Qwen2)
    qk_norm: bool = False  # RMSNorm on q and k heads before RoPE (Qwen3)
    mlp_bias: bool = False  # biases in SwiGLU (Llama's flag)
    initializer_range: float = 0.02  # std of the initial weights
    model_type: str = "llama"  # the family: llama, qwen2 or qwen3
    use_sdpa: bool = True  # attention through F.scaled_dot_product_attention (same function)

    def __post_init__(self) -> None:
        if self.num_key_value_heads is None:
            self.num_key_value_heads = self.num_attention_heads
        for name in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                     "num_key_value_heads", "max_position_embeddings"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"LlamaConfig.{name}: expected a positive integer, received {value!r}")
        check_gqa_heads(self.num_attention_heads, self.num_key_value_heads)
        if self.head_dim is None:
            if self.hidden_size % self.num_attention_heads:
                raise ValueError(f"LlamaConfig: expected hidden_size divisible by num_attention_heads (or a head_dim), "
                                 f"received hidden_size={self.hidden_size}, num_attention_heads={self.num_attention_heads}")
            self.head_dim = self.hidden_size // self.num_attention_heads
        if self.head_dim % 2:
            raise ValueError(f"LlamaConfig.head_dim: expected an even number (RoPE turns channel pairs), received {self.head_dim}")
        if self.model_type not in FAMILIES:
            raise ValueError(f"LlamaConfig.model_type: expected one of {FAMILIES}, received {self.model_type!r}")

    @property
    def block_size(self) -> int:
        """The longest context, under the name minigpt's generation loop reads."""
        return self.max_position_embeddings


# the published sizes (their config.json files); parameter counts in tests/test_llama.py
PUBLISHED = {
    "Qwen2.5-0.5B": LlamaConfig(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                                num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                                rope_theta=1e6, tie_word_embeddings=True, qkv_bias=True, model_type="qwen2"),
    "Qwen3-0.6B": LlamaConfig(vocab_size=151936, hidden_size=1024, intermediate_size=3072, num_hidden_layers=28,
                              num_attention_heads=16, num_key_value_heads=8, head_dim=128, max_position_embeddings=40960,
                              rope_theta=1e6, tie_word_embeddings=True, qk_norm=True, model_type="qwen3"),
    "Llama-3.2-1B": LlamaConfig(vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                                num_attention_heads=32, num_key_value_heads=8, head_dim=64, max_position_embeddings=131072,
                                rms_norm_eps=1e-5, rope_theta=500000.0, tie_word_embeddings=True, model_type="llama",
                                rope_scaling=dict(factor=32.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                                  original_max_position_embeddings=8192)),
}


class LlamaBlock(nn.Module):
    """Pre-norm block: x = x + GQA(RMSNorm(x)); x = x + SwiGLU(RMSNorm(x)). x: (B, T, C)."""

    def __init__(self, config: LlamaConfig):
        super().__init__()
        c = config
        self.input_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.self_attn = GroupedQueryAttention(
            c.hidden_size, c.num_attention_heads, c.num_key_value_heads, c.head_dim, c.max_position_embeddings,
            c.rope_theta, qkv_bias=c.attention_bias or c.qkv_bias, o_bias=c.attention_bias, qk_norm=c.qk_norm,
            eps=c.rms_norm_eps, use_sdpa=c.use_sdpa, rope_scaling=c.rope_scaling)
        self.post_attention_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.mlp = SwiGLU(c.hidden_size, c.intermediate_size, bias=c.mlp_bias)
        self.no_dropout = nn.Identity()

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        x, _ = sublayer_connection(x, self.input_layernorm, lambda h: (self.self_attn(h, cache), None),
                                   self.no_dropout, norm_first=True)  # (B, T, C)
        x, _ = sublayer_connection(x, self.post_attention_layernorm, lambda h: (self.mlp(h), None),
                                   self.no_dropout, norm_first=True)  # (B, T, C)
        return x


class Llama(nn.Module):
    """Llama / Qwen causal LM. ``forward(idx, targets=None, caches=None) -> (logits, loss)``."""

    def __init__(self, config: LlamaConfig):
        super().__init__()
        if not isinstance(config, LlamaConfig):
            raise ValueError(f"config: expected a LlamaConfig, received {type(config).__name__}")
        self.config = config
        self.model = nn.ModuleDict(dict(
            embed_tokens=nn.Embedding(config.vocab_size, config.hidden_size),
            layers=nn.ModuleList(LlamaBlock(config) for _ in range(config.num_hidden_layers)),
            norm=RMSNorm(config.hidden_size, config.rms_norm_eps),
        ))
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight  # one (V, C) table
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Hugging Face's initialisation: Linear and Embedding weights ~ N(0, initializer_range²),
        biases 0, RMSNorm γ = 1."""
        std = self.config.initializer_range
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=std)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
            if isinstance(module, RMSNorm):
                nn.init.ones_(module.weight)

    def num_parameters(self) -> int:
        """Distinct parameters (a tied table once), as ``transformers``' ``num_parameters()`` counts."""
        return sum(p.numel() for p in self.parameters())

    def new_caches(self) -> list[KVCache]:
        """One empty KV cache per layer; each holds (B, H_kv, T, d), the grouped heads."""
        return [KVCache() for _ in self.model.layers]

    def layer_outputs(self, idx: torch.Tensor, caches: list[KVCache] | None = None) -> list[torch.Tensor]:
        """[h_0, h_1, …, h_L]: the embeddings and every block's output, each (B, T, C), before
        the final RMSNorm. With ``caches`` idx holds only the new tokens (see :meth:`hidden_states`)."""
        check_rank(idx, 2, "idx (B, T)")
        if idx.size(1) < 1:
            raise ValueError(f"idx: expected at least one token per row, received shape {tuple(idx.shape)}")
        check_token_ids(idx, self.config.vocab_size, "idx")
        if caches is not None and len(caches) != self.config.num_hidden_layers:
            raise ValueError(f"caches: expected one KVCache per layer ({self.config.num_hidden_layers}), "
                             f"received {len(caches)}")
        past = len(caches[0]) if caches else 0
        check_length(past + idx.size(1), self.config.max_position_embeddings, "idx (with the cached tokens)")
        x = self.model.embed_tokens(idx)  # (B, T, C)
        outs = [x]
        for i, layer in enumerate(self.model.layers):
            x = layer(x, None if caches is None else caches[i])  # (B, T, C)
            outs.append(x)
        return outs

    def hidden_states(self, idx: torch.Tensor, caches: list[KVCache] | None = None) -> torch.Tensor:
        """RMSNorm(h_L): (B, T) -> (B, T, C). With ``caches`` (one KVCache per layer, filled by
        earlier calls) idx holds only the new tokens, which RoPE places at positions P..P+T-1."""
        return self.model.norm(self.layer_outputs(idx, caches)[-1])  # (B, T, C)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, caches: list[KVCache] | None = None):
        """logits = RMSNorm(h_L) W_outᵀ: (B, T, V); loss = :func:`minigpt.next_token_loss` when
        ``targets`` (B, T, already shifted) is given, else None. Returns (logits, loss)."""
        logits = self.lm_head(self.hidden_states(idx, caches))  # (B, T, V)
        loss = None if targets is None else next_token_loss(logits, targets)
        return logits, loss

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None, greedy: bool = False, stop_token: int | None = None,
                 use_cache: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
        """Extend idx (B, T) by up to ``max_new_tokens`` tokens -> (B, T + n), through
        :func:`minigpt.generate.generate` (same sampling rules, temperature / top-k / top-p / greedy)."""
        from .generate import generate

        return generate(self, idx, max_new_tokens, temperature, top_k, top_p, greedy, stop_token, use_cache, generator)

    @classmethod
    def from_pretrained(cls, path, family: str | None = None, **overrides) -> "Llama":
        """Load a Hugging Face Llama / Qwen2 / Qwen3 folder (config.json + model.safetensors);
        ``family`` refuses a folder of another model_type. See :func:`minigpt.llama_hf.from_pretrained`."""
        from .llama_hf import from_pretrained

        return from_pretrained(path, family, **overrides)


def llama_param_count(config: LlamaConfig) -> int:
    """Parameters of :class:`Llama`, counted on the meta device (no memory is allocated)."""
    with torch.device("meta"):
        return Llama(config).num_parameters()
