"""Sampling from a GPT: temperature, top-k, top-p (nucleus), greedy, and the KV cache.

Generation is a loop: feed the context, read the logits of the last position, turn them into a
distribution, draw one token, append it, repeat. Article §3.2.4 生成任务.

The KV cache: in causal attention a token's keys and values never change once computed (later
tokens cannot influence earlier ones), so each step only needs the new token's row. With the
cache a step costs O(T) instead of re-running the whole (T, T) prefix.
"""
from __future__ import annotations

import warnings
from typing import Iterator

import torch

from minitransformer.checks import check_rank, check_token_ids

# ----------------------------------------------------------------------------- one distribution


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k largest logits of each row, set the others to -inf. logits: (..., V) -> (..., V).

    A logit equal to the k-th largest is kept, so ties at the boundary may keep more than k.
    k >= V keeps everything.
    """
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"top_k: expected a positive integer, received {k!r}")
    if k >= logits.size(-1):
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (..., 1) the k-th largest
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filter: keep the smallest set of most-probable tokens whose total probability
    is >= p, set the rest to -inf. logits: (..., V) -> (..., V).

    Sort the probabilities π₁ >= π₂ >= ...; token j (in that order) is kept when the mass before
    it, Σ_{i<j} π_i, is still < p. The top token (mass before it 0) is always kept; p = 1 keeps
    everything.
    """
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0.0 < p <= 1.0:
        raise ValueError(f"top_p: expected a probability in (0, 1], received {p!r}")
    if p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)  # (..., V)
    probs = torch.softmax(sorted_logits, dim=-1)  # (..., V)
    mass_before = torch.cumsum(probs, dim=-1) - probs  # (..., V)
    drop_sorted = mass_before >= p  # (..., V), False for the top token
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)  # back to vocabulary order
    return logits.masked_fill(drop, float("-inf"))


def next_token(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
               greedy: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
    """Pick the next token from last-position logits (B, V) -> (B, 1).

    greedy: argmax. Otherwise sample from softmax(filter(logits / temperature)), the filters
    being top-k then top-p. temperature < 1 sharpens the distribution, > 1 flattens it.
    """
    check_rank(logits, 2, "logits (B, V)")
    if greedy:
        return logits.argmax(dim=-1, keepdim=True)  # (B, 1)
    if not temperature > 0:
        raise ValueError(f"temperature: expected > 0 (use greedy for argmax), received {temperature}")
    logits = logits.float() / temperature
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    probs = torch.softmax(logits, dim=-1)  # (B, V)
    return torch.multinomial(probs, num_samples=1, generator=generator)  # (B, 1)


# ----------------------------------------------------------------------------- the loop


def crop_prompt(idx: torch.Tensor, block_size: int) -> torch.Tensor:
    """A prompt longer than block_size keeps its last block_size tokens, with a warning
    (the model has no position beyond block_size - 1). idx: (B, T) -> (B, min(T, block_size))."""
    if idx.size(1) > block_size:
        warnings.warn(
            f"prompt of {idx.size(1)} tokens is longer than block_size={block_size}: "
            f"keeping its last {block_size} tokens",
            stacklevel=3,
        )
        return idx[:, -block_size:]
    return idx


def last_logits(model, idx: torch.Tensor, caches=None) -> torch.Tensor:
    """Logits of the last position only: LN_f(h_L)[:, -1] W_teᵀ. idx: (B, T) -> (B, V)."""
    h = model.hidden_states(idx, caches)  # (B, T, C)
    return model.lm_head(h[:, -1, :])  # (B, V)


def stream_tokens(model, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None, greedy: bool = False, use_cache: bool = True,
                  generator: torch.Generator | None = None) -> Iterator[torch.Tensor]:
    """Yield the new tokens one step at a time, each (B, 1). ``model`` is in eval mode.

    Without the cache every step re-runs the last block_size tokens. With it, the first step
    runs the prompt and fills one KVCache per block; each later step runs only the newest token.
    Positions are absolute (learned table), so once the sequence outgrows block_size the cached
    keys cannot slide: from then on each step re-fills fresh caches from the last block_size
    tokens, which is exactly what the uncached path computes.
    """
    block_size = model.config.block_size
    seq = crop_prompt(idx, block_size)  # (B, T)
    caches = None
    for _ in range(max_new_tokens):
        if not use_cache:
            logits = last_logits(model, seq[:, -block_size:])
        elif caches is None or len(caches[0]) >= block_size:
            caches = model.new_caches()
            logits = last_logits(model, seq[:, -block_size:], caches)
        else:
            logits = last_logits(model, seq[:, -1:], caches)
        token = next_token(logits, temperature, top_k, top_p, greedy, generator)  # (B, 1)
        seq = torch.cat([seq, token], dim=1)
        yield token


@torch.no_grad()
def generate(model, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
             top_p: float | None = None, greedy: bool = False, stop_token: int | None = None, use_cache: bool = True,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """Extend ``idx`` (B, T) by up to ``max_new_tokens`` tokens; returns (B, T' + n).

    - A prompt longer than block_size is cropped to its last block_size tokens with a
      ``warnings.warn`` (T' = block_size); otherwise T' = T.
    - ``stop_token``: stop once every row has produced it (rows that finished earlier keep
      receiving it, so all rows have the same length); the stop token is included.
    - ``use_cache`` changes only the speed: the tokens are the same as recomputing the prefix
      (greedy, and sampling under the same ``generator`` seed).
    Runs in eval mode (no dropout) and restores the previous mode afterwards.
    """
    check_rank(idx, 2, "idx (B, T)")
    check_token_ids(idx, model.config.vocab_size, "idx")
    if idx.size(1) < 1:
        raise ValueError("idx: expected a prompt of at least one token, received an empty prompt")
    if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens: expected a non-negative integer, received {max_new_tokens!r}")
    if stop_token is not None:
        check_token_ids(torch.tensor([stop_token]), model.config.vocab_size, "stop_token")
    was_training = model.training
    model.eval()
    try:
        out = crop_prompt(idx, model.config.block_size)
        done = torch.zeros(idx.size(0), dtype=torch.bool, device=idx.device)  # (B,)
        for token in stream_tokens(model, out, max_new_tokens, temperature, top_k, top_p, greedy, use_cache, generator):
            if stop_token is not None:
                token = token.masked_fill(done.unsqueeze(1), stop_token)
                done |= token.squeeze(1) == stop_token
            out = torch.cat([out, token], dim=1)
            if stop_token is not None and bool(done.all()):
                break
    finally:
        model.train(was_training)
    return out
