"""minigpt: GPT-2 from scratch, built from the parts in ``minitransformer``.

- :class:`GPTConfig`, :class:`GPT` and :func:`gpt_param_count` — the model (article §3.2.2, §4.2);
- :func:`next_token_targets`, :func:`next_token_loss` — the causal-LM objective (§3.2.4);
- :func:`top_k_filter`, :func:`top_p_filter`, :func:`generate` — sampling with a KV cache;
- ``GPT.from_pretrained`` / ``GPT.save_pretrained`` — Hugging Face GPT-2 checkpoints;
- :class:`minigpt.bpe.GPT2Tokenizer` — GPT-2's byte-level BPE, written by hand;
- :class:`Llama`, :class:`LlamaConfig`, :func:`llama_param_count` — a Llama / Qwen2 / Qwen3 decoder
  (RMSNorm, SwiGLU, RoPE, grouped-query attention, QK-norm), ``Llama.from_pretrained`` for their folders.

Command line: ``python -m minigpt train ...`` and ``python -m minigpt sample ...``.
"""
from .config import GPTConfig, gpt_param_count, width_scaled_init_std
from .generate import generate, next_token, top_k_filter, top_p_filter
from .llama import Llama, LlamaConfig, llama_param_count
from .model import GPT, IGNORE_INDEX, next_token_loss, next_token_targets

__all__ = [
    "GPT", "GPTConfig", "IGNORE_INDEX", "Llama", "LlamaConfig", "generate", "gpt_param_count", "llama_param_count",
    "next_token", "next_token_loss", "next_token_targets", "top_k_filter", "top_p_filter", "width_scaled_init_std",
]
