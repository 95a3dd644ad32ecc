"""Where the computation runs: device choice, bf16 autocast, and data parallelism (DDP).

Data parallel training with ``torchrun --nproc_per_node W script.py``: torchrun starts W copies
of the script and sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` in each one's environment.
Every copy (a *rank*) holds the full model, takes its own slice of each global batch, and
DistributedDataParallel averages the gradients over ranks during ``backward()``::

    grad = (1/W) * sum_r grad(loss_r)          loss_r = mean loss over rank r's B/W rows

which equals the gradient of the mean loss over the whole global batch of B rows (when every
row carries the same number of loss terms). Backend: ``gloo`` on CPU, ``nccl`` on GPUs.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any, ContextManager

import torch
import torch.distributed as dist

from .checks import check_divisible

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(device: str) -> torch.device:
    """'auto' -> cuda when a GPU is present, else cpu; 'cpu'; 'cuda' (a clear error without a GPU)."""
    if device not in DEVICE_CHOICES:
        raise ValueError(f"device: expected one of {', '.join(DEVICE_CHOICES)}, received {device!r}")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: 'cuda' was requested but no CUDA GPU is available (use --device cpu or auto)")
    return torch.device(device)


def autocast_context(device: torch.device, bf16: bool) -> ContextManager:
    """bf16 autocast on a GPU that supports it (matmuls in bfloat16, reductions in float32; no
    loss scaling needed, unlike float16); a no-op context on CPU, keeping CPU runs exact."""
    if bf16 and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job: ``rank`` of ``world_size`` processes, on ``device``."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes files and prints."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str) -> int:
    value = os.environ[name]
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}: expected an integer, received {value!r}") from None


def setup_distributed(device: str = "cpu") -> DistContext:
    """Read torchrun's ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK``; when ``WORLD_SIZE > 1`` join the
    process group (once) with gloo (CPU) or nccl (GPU ``cuda:LOCAL_RANK``). Without those
    variables this is a single process: rank 0 of 1 on :func:`resolve_device` ``(device)``."""
    dev = resolve_device(device)
    if "WORLD_SIZE" not in os.environ or _env_int("WORLD_SIZE") <= 1:
        return DistContext(device=dev)
    rank, world, local = _env_int("RANK"), _env_int("WORLD_SIZE"), _env_int("LOCAL_RANK")
    if dev.type == "cuda":
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        if dev.type == "cuda":  # device_id binds NCCL to this rank's GPU (barrier() needs to know it)
            dist.init_process_group(backend="nccl", rank=rank, world_size=world, device_id=dev)
        else:
            dist.init_process_group(backend="gloo", rank=rank, world_size=world)
    return DistContext(rank=rank, world_size=world, local_rank=local, device=dev)


def cleanup_distributed() -> None:
    """Leave the process group (call once at the end of a torchrun script)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def wrap_ddp(model: torch.nn.Module, ctx: DistContext) -> torch.nn.Module:
    """``DistributedDataParallel(model)`` under torchrun; the model itself in a single process."""
    if not ctx.is_distributed:
        return model
    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def shard_batch(batch: dict[str, Any], rank: int, world_size: int) -> dict[str, Any]:
    """Rank ``r``'s rows ``[r*B/W, (r+1)*B/W)`` of every tensor in a global batch of ``B`` rows
    (non-tensor values are passed through). ValueError when ``B`` is not divisible by ``W``."""
    if world_size == 1:
        return batch
    out = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor) and value.dim() > 0:
            rows = value.shape[0]
            check_divisible(rows, world_size, f"batch size of {key!r}", "world size")
            per = rows // world_size
            value = value[rank * per : (rank + 1) * per]
        out[key] = value
    return out


def all_reduce_mean(x: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Mean of ``x`` over all ranks (``x`` itself in a single process)."""
    if not ctx.is_distributed:
        return x
    x = x.clone()
    dist.all_reduce(x, op=dist.ReduceOp.SUM)
    return x / ctx.world_size


def gather_to_main(tensors: dict[str, torch.Tensor], ctx: DistContext) -> list[dict[str, torch.Tensor]]:
    """Every rank's copy of ``tensors`` (same keys and shapes on all ranks), as a list indexed by
    rank. Used to save each rank's RNG state. Collective: all ranks must call it."""
    if not ctx.is_distributed:
        return [tensors]
    out: list[dict[str, torch.Tensor]] = [{} for _ in range(ctx.world_size)]
    comm_device = ctx.device if ctx.device.type == "cuda" else torch.device("cpu")
    for key in sorted(tensors):
        t = tensors[key].to(comm_device).contiguous()
        parts = [torch.empty_like(t) for _ in range(ctx.world_size)]
        dist.all_gather(parts, t)
        for r, part in enumerate(parts):
            out[r][key] = part.cpu()
    return out


def barrier(ctx: DistContext) -> None:
    """Wait until every rank arrives here (a no-op in a single process)."""
    if ctx.is_distributed:
        dist.barrier()
