"""Checkpoints: model weights as safetensors, the model config as JSON, the tokenizer, and the
trainer state -- written atomically and read back without ever unpickling code.

A checkpoint directory looks like::

    checkpoint/
        model.safetensors          weights of the *unwrapped* model (no ``module.`` / ``_orig_mod.``)
        config.json                model config (a dict or a dataclass turned into a dict)
        tokenizer/                 whatever ``tokenizer.save(dir)`` writes (optional)
        trainer_state.json         step, optimizer hyper-parameters, ... (optional)
        trainer_state.safetensors  optimizer moments, RNG states (optional)

Atomic write: everything goes into a hidden sibling ``.checkpoint.tmp-XXXX``, each file is
fsync-ed, then ``checkpoint -> .checkpoint.old`` and ``.checkpoint.tmp-XXXX -> checkpoint`` are
renamed. A crash at any moment leaves either the old or the new checkpoint complete on disk
(if it strikes between the two renames, the readers here fall back to ``.checkpoint.old``).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import pickle
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_save
from torch import nn

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
TOKENIZER_DIR = "tokenizer"
STATE_JSON = "trainer_state.json"
STATE_TENSORS = "trainer_state.safetensors"
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


# ----------------------------------------------------------------------------- wrappers, seeds


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module that holds the weights: strips DDP / DataParallel (``.module``) and
    ``torch.compile`` (``._orig_mod``) wrappers, in any nesting order."""
    while True:
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        elif isinstance(getattr(model, "_orig_mod", None), nn.Module):
            model = model._orig_mod
        else:
            return model


def strip_wrapper_prefixes(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove leading ``module.`` / ``_orig_mod.`` from every key (checkpoints saved elsewhere
    from a wrapped model carry them)."""
    out = {}
    for key, value in state_dict.items():
        while key.startswith(_WRAPPER_PREFIXES):
            key = key.split(".", 1)[1]
        out[key] = value
    return out


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy and torch (CPU and every GPU) with ``seed``.
    Call it before building the model so that the initial weights are fixed too."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed: expected a non-negative int, received {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture_rng_state() -> dict[str, torch.Tensor]:
    """Every random generator's state as plain tensors (so it can live in safetensors).

    torch CPU: the 5056-byte Mersenne-Twister state; CUDA: the current device's Philox state;
    NumPy: 624 MT words + (pos, has_gauss) + cached gaussian; Python ``random``: 625 words
    + ``gauss_next`` (NaN standing for None).
    """
    _, keys, pos, has_gauss, cached = np.random.get_state()
    version, words, gauss_next = random.getstate()
    if version != 3:
        raise ValueError(f"python random state: expected version 3, received {version}")
    state = {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(keys.astype(np.int64)),
        "numpy_pos": torch.tensor([pos, has_gauss], dtype=torch.int64),
        "numpy_gauss": torch.tensor([cached], dtype=torch.float64),
        "python": torch.tensor(words, dtype=torch.int64),
        "python_gauss": torch.tensor([math.nan if gauss_next is None else gauss_next], dtype=torch.float64),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def restore_rng_state(state: dict[str, torch.Tensor]) -> None:
    """Inverse of :func:`capture_rng_state` (a saved CUDA state is ignored on a CPU-only host)."""
    torch.set_rng_state(state["torch"].to(torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"].to(torch.uint8))
    pos, has_gauss = (int(v) for v in state["numpy_pos"].tolist())
    keys = state["numpy_keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, pos, has_gauss, float(state["numpy_gauss"][0])))
    gauss = float(state["python_gauss"][0])
    random.setstate((3, tuple(int(v) for v in state["python"].tolist()), None if math.isnan(gauss) else gauss))


# ----------------------------------------------------------------------------- safetensors files


def save_state_dict_safetensors(state_dict: dict[str, torch.Tensor], path: str | os.PathLike) -> None:
    """Write a state dict to ``path``. Tied weights (two names, one tensor, e.g. GPT's
    ``lm_head.weight`` and ``transformer.wte.weight``) are stored once; the alias is recorded in
    the file's metadata and restored by :func:`load_state_dict_safetensors`."""
    tensors: dict[str, torch.Tensor] = {}
    tied: dict[str, str] = {}
    seen: dict[tuple, str] = {}
    for name, t in state_dict.items():
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"state_dict[{name!r}]: expected a tensor, received {type(t).__name__}")
        ident = (t.device, t.data_ptr(), t.dtype, tuple(t.shape), t.stride())
        if t.numel() and ident in seen:
            tied[name] = seen[ident]
            continue
        seen[ident] = name
        tensors[name] = t.detach().to("cpu", copy=True).contiguous()
    write_safetensors(tensors, path, {"format": "pt", "tied": json.dumps(tied, sort_keys=True)})


def safetensors_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """The safetensors encoding of ``tensors``, byte for byte the same for the same tensors: the
    library writes its metadata in a random order (a Rust HashMap), so the header is re-written
    here with the metadata sorted. Layout: 8-byte little-endian header length, the JSON header
    (padded with spaces to a multiple of 8), the tensor bytes; data offsets are relative to the
    tensor bytes, so re-writing the header moves nothing."""
    blob = safetensors_save(tensors, metadata=metadata)
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + n])
    if "__metadata__" in header:
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + blob[8 + n:]


def write_safetensors(tensors: dict[str, torch.Tensor], path: str | os.PathLike, metadata: dict[str, str]) -> None:
    """Write :func:`safetensors_bytes` to ``path``."""
    Path(path).write_bytes(safetensors_bytes(tensors, metadata))


def load_state_dict_safetensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a safetensors file into a CPU state dict (re-creating tied aliases). Safetensors holds
    only raw tensor bytes and a JSON header, so loading it can never run code."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such safetensors file")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            state = {name: f.get_tensor(name) for name in f.keys()}
            tied = json.loads((f.metadata() or {}).get("tied", "{}"))
    except (SafetensorError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: expected a safetensors file, could not read it ({e})") from e
    for alias, source in tied.items():
        state[alias] = state[source]
    return state


def load_model_weights(model: nn.Module, state_dict: dict[str, torch.Tensor], strict: bool = True) -> tuple[list, list]:
    """Copy ``state_dict`` into ``model`` (its unwrapped module), checking names and shapes first.

    Raises ValueError naming the missing and unexpected keys (when ``strict``) and every shape
    mismatch with both shapes (always) -- the usual symptom of loading a checkpoint of another
    architecture or size. Returns ``(missing, unexpected)`` key lists.
    """
    target = unwrap_model(model)
    state_dict = strip_wrapper_prefixes(state_dict)
    expected = target.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected
        if k in state_dict and state_dict[k].shape != expected[k].shape
    ]
    problems = []
    if strict and missing:
        problems.append(f"missing keys {_short(missing)}")
    if strict and unexpected:
        problems.append(f"unexpected keys {_short(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatches {_short(mismatched)}")
    if problems:
        raise ValueError(
            f"checkpoint does not fit {type(target).__name__} (another architecture or size?): " + "; ".join(problems)
        )
    target.load_state_dict(state_dict, strict=False)  # names and shapes were checked above
    return missing, unexpected


def _short(items: list[str], limit: int = 10) -> str:
    shown = ", ".join(items[:limit])
    return f"[{shown}{f', ... and {len(items) - limit} more' if len(items) > limit else ''}]"


def safe_torch_load(path: str | os.PathLike) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)``: tensors, numbers, strings,
    lists, tuples and dicts only. A file whose pickle names any other object or callable (the
    way a malicious ``.pt``/``.bin`` runs code) is refused with ValueError, before anything runs."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise ValueError(
            f"{path}: refused -- the file carries Python code or objects beyond plain tensors and "
            f"containers, and loading it could run arbitrary code ({str(e).splitlines()[0]})"
        ) from e


# ----------------------------------------------------------------------------- nested state <-> JSON + tensors

_MARKERS = ("__tensor__", "__tuple__", "__items__")


def flatten_state(obj: Any, tensors: dict[str, torch.Tensor], path: str = "state") -> Any:
    """Turn a nested state (dicts, lists, tuples, numbers, strings, None, tensors) into JSON plus
    a flat ``{name: tensor}`` dict. A tensor becomes ``{"__tensor__": name}``, a tuple
    ``{"__tuple__": [...]}``, a dict with non-string keys ``{"__items__": [[k, v], ...]}``
    (``optimizer.state_dict()`` has int keys). Anything else is refused: no pickle, ever."""
    if isinstance(obj, torch.Tensor):
        name = path if path not in tensors else f"{path}#{len(tensors)}"
        tensors[name] = obj.detach().to("cpu", copy=True).contiguous()
        return {"__tensor__": name}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj) and not any(k in _MARKERS for k in obj):
            return {k: flatten_state(v, tensors, f"{path}.{k}") for k, v in obj.items()}
        return {"__items__": [[flatten_state(k, tensors, path), flatten_state(v, tensors, f"{path}.{k}")] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [flatten_state(v, tensors, f"{path}.{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [flatten_state(v, tensors, f"{path}.{i}") for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise ValueError(
        f"{path}: expected tensors, numbers, strings, None, lists, tuples or dicts in the trainer state, "
        f"received {type(obj).__name__}"
    )


def unflatten_state(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`flatten_state`."""
    if isinstance(obj, list):
        return [unflatten_state(v, tensors) for v in obj]
    if isinstance(obj, dict):
        if set(obj) == {"__tensor__"}:
            return tensors[obj["__tensor__"]]
        if set(obj) == {"__tuple__"}:
            return tuple(unflatten_state(v, tensors) for v in obj["__tuple__"])
        if set(obj) == {"__items__"}:
            return {unflatten_state(k, tensors): unflatten_state(v, tensors) for k, v in obj["__items__"]}
        return {k: unflatten_state(v, tensors) for k, v in obj.items()}
    return obj


# ----------------------------------------------------------------------------- atomic directories


def _old_path(final: Path) -> Path:
    return final.with_name(f".{final.name}.old")


def resolve_checkpoint_dir(path: str | os.PathLike) -> Path:
    """``path`` itself, or its ``.NAME.old`` backup when a crash struck between the two renames."""
    path = Path(path)
    return _old_path(path) if not path.exists() and _old_path(path).is_dir() else path


def _fsync_tree(root: Path) -> None:
    """Flush every file and directory under ``root`` to disk (data first, then the names), and
    make the files world-readable (safetensors writes its files with mode 0600)."""
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o644)
            with open(os.path.join(dirpath, name), "rb") as f:
                os.fsync(f.fileno())
        _fsync_dir(Path(dirpath))


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # directories cannot be opened for fsync on Windows
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_directory(final: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary sibling of ``final``; on a clean exit swap it in as ``final``.
    On an exception the temporary directory is removed and ``final`` is left untouched."""
    final = Path(final)
    if final.exists() and not final.is_dir():
        raise ValueError(f"{final}: expected a checkpoint directory, found a file")
    final.parent.mkdir(parents=True, exist_ok=True)
    old = _old_path(final)
    if not final.exists() and old.is_dir():  # finish a swap a crash interrupted
        os.rename(old, final)
    for stale in final.parent.glob(f".{final.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    os.chmod(tmp, 0o755)
    try:
        yield tmp
        _fsync_tree(tmp)
        if final.exists():
            if old.exists():
                shutil.rmtree(old)
            os.rename(final, old)
        os.rename(tmp, final)
        _fsync_dir(final.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


# ----------------------------------------------------------------------------- checkpoints


def config_to_dict(config: Any) -> dict:
    """A model config as a JSON-able dict: a dict, a dataclass instance, or an object with
    ``to_dict()`` (Hugging Face configs). ValueError if it is none of these or not JSON-able."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    elif not isinstance(config, dict) and callable(getattr(config, "to_dict", None)):
        config = config.to_dict()
    if not isinstance(config, dict):
        raise ValueError(f"config: expected a dict, a dataclass instance or an object with to_dict(), received {type(config).__name__}")
    try:
        json.dumps(config)
    except (TypeError, ValueError) as e:
        raise ValueError(f"config: expected JSON-serialisable values ({e})") from e
    return config


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    config: dict | Any,
    tokenizer: Any = None,
    trainer_state: dict | None = None,
) -> Path:
    """Write a checkpoint directory atomically (see the module docstring) and return its path.

    ``model`` may be wrapped (DDP, torch.compile): the weights of :func:`unwrap_model` are saved,
    so the key names never change. ``config`` goes through :func:`config_to_dict`. ``tokenizer``,
    if given, must have ``save(dir)``; it writes into ``<path>/tokenizer/``. ``trainer_state`` is a
    nested dict of tensors and plain values (see :func:`flatten_state`).
    """
    config_text = json.dumps(config_to_dict(config), indent=2)
    if tokenizer is not None and not callable(getattr(tokenizer, "save", None)):
        raise ValueError(f"tokenizer: expected an object with a save(dir) method, received {type(tokenizer).__name__}")
    with atomic_directory(path) as tmp:
        save_state_dict_safetensors(unwrap_model(model).state_dict(), tmp / MODEL_FILE)
        (tmp / CONFIG_FILE).write_text(config_text + "\n", encoding="utf-8")
        if tokenizer is not None:
            (tmp / TOKENIZER_DIR).mkdir()
            tokenizer.save(str(tmp / TOKENIZER_DIR))
        if trainer_state is not None:
            tensors: dict[str, torch.Tensor] = {}
            state_json = flatten_state(trainer_state, tensors)
            write_safetensors(tensors, tmp / STATE_TENSORS, {"format": "pt"})
            (tmp / STATE_JSON).write_text(json.dumps(state_json, indent=1) + "\n", encoding="utf-8")
    return Path(path)


def read_json_object(file: Path, missing: str) -> dict:
    """Parse ``file`` as a JSON object; FileNotFoundError with ``missing`` when it is absent,
    ValueError naming the file when it is not JSON or not an object."""
    if not file.is_file():
        raise FileNotFoundError(missing)
    try:
        obj = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{file}: expected a JSON object, could not parse it ({e})") from e
    if not isinstance(obj, dict):
        raise ValueError(f"{file}: expected a JSON object, received {type(obj).__name__}")
    return obj


def read_config(path: str | os.PathLike) -> dict:
    """The model config (``config.json``) of the checkpoint directory ``path``."""
    file = resolve_checkpoint_dir(path) / CONFIG_FILE
    return config_to_dict(read_json_object(file, f"{path}: no {CONFIG_FILE} -- not a checkpoint directory"))


def load_checkpoint(path: str | os.PathLike, model: nn.Module, strict: bool = True) -> dict:
    """Load the weights of checkpoint ``path`` into ``model`` and return its config dict.
    Typical use: ``cfg = read_config(p); model = GPT(GPTConfig(**cfg)); load_checkpoint(p, model)``."""
    config = read_config(path)
    load_model_weights(model, load_state_dict_safetensors(resolve_checkpoint_dir(path) / MODEL_FILE), strict=strict)
    return config


def load_trainer_state(path: str | os.PathLike) -> dict | None:
    """The nested trainer state saved with the checkpoint ``path`` (None when there is none)."""
    root = resolve_checkpoint_dir(path)
    if not (root / STATE_JSON).is_file():
        return None
    tensors = load_state_dict_safetensors(root / STATE_TENSORS)
    try:
        state_json = json.loads((root / STATE_JSON).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{root / STATE_JSON}: expected JSON, could not parse it ({e})") from e
    return unflatten_state(state_json, tensors)
