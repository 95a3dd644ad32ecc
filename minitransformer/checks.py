"""Input validation shared by every module: one clear ValueError naming what was
expected and what was received, raised before torch fails somewhere deep inside."""
from __future__ import annotations

import torch


def check_rank(x: torch.Tensor, rank: int | tuple[int, ...], name: str) -> None:
    """Raise ValueError unless ``x.dim()`` is ``rank`` (or one of the ranks given)."""
    ranks = (rank,) if isinstance(rank, int) else tuple(rank)
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor, received {type(x).__name__}")
    if x.dim() not in ranks:
        want = " or ".join(str(r) for r in ranks)
        raise ValueError(f"{name}: expected a tensor of rank {want}, received rank {x.dim()} with shape {tuple(x.shape)}")


def check_last_dim(x: torch.Tensor, size: int, name: str) -> None:
    """Raise ValueError unless the last dimension of ``x`` is ``size``."""
    if x.shape[-1] != size:
        raise ValueError(f"{name}: expected last dimension {size}, received shape {tuple(x.shape)}")


def check_divisible(total: int, parts: int, total_name: str, parts_name: str) -> None:
    """Raise ValueError unless ``total`` splits evenly into ``parts``."""
    if parts <= 0 or total % parts != 0:
        raise ValueError(
            f"expected {total_name} divisible by {parts_name}, received {total_name}={total}, {parts_name}={parts}"
        )


def check_token_ids(idx: torch.Tensor, vocab_size: int, name: str = "input_ids") -> None:
    """Raise ValueError unless ``idx`` is an integer tensor with values in [0, vocab_size)."""
    if idx.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8, torch.int8):
        raise ValueError(f"{name}: expected an integer tensor of token ids, received dtype {idx.dtype}")
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= vocab_size):
        raise ValueError(
            f"{name}: expected token ids in [0, {vocab_size}), received values in [{int(idx.min())}, {int(idx.max())}]"
        )


def check_length(t: int, max_len: int, name: str = "sequence") -> None:
    """Raise ValueError unless a sequence of length ``t`` fits a table of ``max_len`` positions."""
    if t > max_len:
        raise ValueError(f"{name}: expected length <= {max_len} (the positional table), received length {t}")
