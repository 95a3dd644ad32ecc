"""get_batch functions: the data stream as a pure function of (seed, split, index).

The Trainer asks ``get_batch(split, index)`` for global micro-batch ``index`` (training:
``index = step * grad_accum + micro``; evaluation: ``0 .. eval_steps-1``). Because the answer
depends on nothing else, the data position of a run is just its step, a resumed run continues
the stream exactly, and every DDP rank can compute the same global batch and keep its own rows.

A finite get_batch (:func:`sequential_batches`, for validation sets of examples) carries
``num_batches``: the Trainer then evaluates at most that many batches, so each example is scored
exactly once. :func:`num_batches` reads it (through :func:`by_split` too).
"""
from __future__ import annotations

import hashlib
import math
from functools import lru_cache
from typing import Any, Callable, Mapping

import numpy as np
import torch

GetBatch = Callable[[str, int], Mapping[str, Any]]

def mix_seed(*parts: Any) -> int:
    """A 63-bit seed from ``parts`` (e.g. ``("window", seed, split, index)``): the first 8 bytes of
    SHA-256 of their repr. Identical in every process, unlike ``hash()`` of a str, which Python
    randomises per process. Seed a ``torch.Generator`` with it to draw one batch."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


_mix_seed = mix_seed  # the older private name, still imported elsewhere


def random_window_batches(tokens: torch.Tensor | np.ndarray, block_size: int, batch_size: int, seed: int) -> GetBatch:
    """get_batch for a causal LM over a 1-D token stream (a tensor, array or ``np.memmap``).

    Batch ``index`` of ``split`` draws ``batch_size`` start offsets ``s`` uniformly from
    ``[0, N - block_size)`` with a generator seeded by (seed, split, index), and returns::

        input_ids[b] = tokens[s_b     : s_b + T]        (B, T) int64
        labels[b]    = tokens[s_b + 1 : s_b + T + 1]    (B, T) int64, already shifted by one

    ``labels[b, t]`` is the token that follows ``input_ids[b, t]`` (nanoGPT's ``targets``); a model
    must not shift them again (Hugging Face's GPT2LMHeadModel shifts internally).
    Use one per split: ``by_split(train=random_window_batches(train_ids, ...), val=...)``.
    """
    if isinstance(tokens, np.ndarray):
        n, ndim, is_int = len(tokens), tokens.ndim, np.issubdtype(tokens.dtype, np.integer)
    elif isinstance(tokens, torch.Tensor):
        n, ndim, is_int = tokens.shape[0] if tokens.dim() else 0, tokens.dim(), not tokens.dtype.is_floating_point
    else:
        raise ValueError(f"tokens: expected a 1-D torch.Tensor or numpy array, received {type(tokens).__name__}")
    if ndim != 1 or not is_int:
        raise ValueError(f"tokens: expected a 1-D integer token stream, received {ndim}-D with dtype {tokens.dtype}")
    if block_size < 1 or batch_size < 1:
        raise ValueError(f"expected block_size >= 1 and batch_size >= 1, received {block_size} and {batch_size}")
    if n < block_size + 1:
        raise ValueError(
            f"tokens: expected at least block_size + 1 = {block_size + 1} tokens (inputs plus one shifted label), received {n}"
        )

    def window(s: int) -> torch.Tensor:
        piece = tokens[s : s + block_size + 1]
        return torch.from_numpy(np.asarray(piece, dtype=np.int64)) if isinstance(piece, np.ndarray) else piece.long()

    def get_batch(split: str, index: int) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(mix_seed("window", seed, split, index))
        starts = torch.randint(0, n - block_size, (batch_size,), generator=g).tolist()
        chunk = torch.stack([window(s) for s in starts])  # (B, T+1)
        return {"input_ids": chunk[:, :-1].contiguous(), "labels": chunk[:, 1:].contiguous()}

    return get_batch


def epoch_batches(n_examples: int, batch_size: int, seed: int, collate: Callable[[list[int]], dict]) -> GetBatch:
    """get_batch that walks examples ``0 .. n_examples-1`` epoch by epoch (fine-tuning).

    The example stream is ``perm_0 + perm_1 + ...`` where ``perm_e`` is a permutation drawn from
    (seed, split, e); batch ``index`` is ``collate(stream[index*B : (index+1)*B])``. Every example
    appears exactly once per epoch; a batch may straddle two epochs, so each has exactly B rows.
    """
    if n_examples < 1 or batch_size < 1:
        raise ValueError(f"expected n_examples >= 1 and batch_size >= 1, received {n_examples} and {batch_size}")

    @lru_cache(maxsize=4)
    def permutation(split: str, epoch: int) -> list[int]:
        g = torch.Generator().manual_seed(mix_seed("epoch", seed, split, epoch))
        return torch.randperm(n_examples, generator=g).tolist()

    def get_batch(split: str, index: int) -> dict:
        start = index * batch_size
        return collate([permutation(split, p // n_examples)[p % n_examples] for p in range(start, start + batch_size)])

    return get_batch


def sequential_batches(n_examples: int, batch_size: int, collate: Callable[[list[int]], dict]) -> GetBatch:
    """get_batch that walks examples ``0 .. n_examples-1`` once, in order, without shuffling or
    wrapping (evaluation): batch ``index`` is ``collate([index*B, ..., min((index+1)*B, n) - 1])``,
    so there are ``ceil(n / B)`` batches and the last one is short when B does not divide n.
    The function's ``num_batches`` attribute holds that count; an index past it is a ValueError.
    Every split asked for walks the same examples (use one per split with :func:`by_split`)."""
    if n_examples < 1 or batch_size < 1:
        raise ValueError(f"expected n_examples >= 1 and batch_size >= 1, received {n_examples} and {batch_size}")
    count = math.ceil(n_examples / batch_size)

    def get_batch(split: str, index: int) -> dict:
        if not 0 <= index < count:
            raise ValueError(f"index: expected 0 <= index < {count} ({n_examples} examples in batches of {batch_size}), "
                             f"received {index}")
        start = index * batch_size
        return collate(list(range(start, min(start + batch_size, n_examples))))

    get_batch.num_batches = count
    return get_batch


def num_batches(get_batch: GetBatch, split: str) -> int | None:
    """How many batches ``split`` of ``get_batch`` holds: its ``num_batches`` attribute (an int, or
    a {split: int} mapping as :func:`by_split` builds), or None for an endless stream."""
    count = getattr(get_batch, "num_batches", None)
    if isinstance(count, Mapping):
        count = count.get(split)
    return count


def by_split(**get_batches: GetBatch) -> GetBatch:
    """One get_batch from one per split: ``by_split(train=..., val=...)``. Its ``num_batches`` maps
    each finite split (see :func:`sequential_batches`) to its batch count."""

    def get_batch(split: str, index: int):
        if split not in get_batches:
            raise ValueError(f"split: expected one of {', '.join(get_batches)}, received {split!r}")
        return get_batches[split](split, index)

    get_batch.num_batches = {split: n for split, gb in get_batches.items() if (n := num_batches(gb, split)) is not None}
    return get_batch
