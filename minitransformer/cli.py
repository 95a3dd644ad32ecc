"""Run a command-line entry point so that bad input ends with one line and a non-zero exit,
never a traceback; check numeric options when they are parsed (:func:`number`) and output
paths before any work is done (:func:`check_output_file`)."""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, Sequence


class StderrHandler(logging.StreamHandler):
    """A logging handler that writes to ``sys.stderr`` as it is when a record is emitted, not as it
    was when the handler was made: a CLI ``main`` called in-process (a notebook, pytest's capture)
    may find stderr replaced, and a closed old stream would turn every later log line into a
    "Logging error" traceback."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):  # logging.StreamHandler.__init__ assigns it; the property always reads sys.stderr
        pass


class CLIError(Exception):
    """An error meant for the user of a command-line tool: printed as-is, exit code 2."""


def run_cli(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None, prog: str = "") -> int:
    """Call ``main(argv)``; turn user-facing errors into ``error: ...`` on stderr and exit code 2.

    ValueError, FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError,
    PermissionError, UnicodeDecodeError and CLIError are the errors bad input (or a path that cannot
    be written) produces; anything else is a bug and keeps its traceback.
    """
    try:
        return int(main(argv) or 0)
    except (CLIError, ValueError, FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError,
            PermissionError, UnicodeDecodeError) as e:
        name = prog or "error"
        print(f"{name}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


# ----------------------------------------------------------------------------- threads

def cpu_times(path: str = "/proc/stat") -> tuple[int, int] | None:
    """(all, idle) CPU time since boot, in clock ticks, summed over every CPU (Linux's /proc/stat:
    user nice system idle iowait irq softirq steal; idle = idle + iowait); None where unreadable."""
    try:
        with open(path, encoding="ascii") as f:
            fields = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    if len(fields) < 5:
        return None
    return sum(fields), fields[3] + fields[4]


def busy_cpus(window: float = 0.1) -> float | None:
    """CPUs busy right now: (1 − idle share over ``window`` seconds of /proc/stat) × the CPUs it counts.
    Unlike the load average (a 1-minute mean), it sees a job that started a second ago and forgets
    one that ended. None where /proc/stat is not readable (then :func:`free_cores` uses the load average)."""
    before = cpu_times()
    if before is None:
        return None
    time.sleep(window)
    after = cpu_times()
    if after is None or after[0] <= before[0]:
        return None
    total, idle = after[0] - before[0], after[1] - before[1]
    return (1.0 - idle / total) * (os.cpu_count() or 1)


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask on Linux, else os.cpu_count()), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def free_cores() -> int:
    """The CPUs this process may use minus those busy (:func:`busy_cpus`, else the 1-minute load
    average), rounded, at least 1: how many torch threads a run can use without fighting other
    processes for the cores."""
    n = usable_cpus()
    busy = busy_cpus()
    if busy is None:
        try:
            busy = os.getloadavg()[0]
        except (AttributeError, OSError):
            busy = 0.0
    return max(1, min(n, n - round(busy)))


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    """--threads N (torch's intra-op threads); default: OMP_NUM_THREADS, else :func:`free_cores`."""
    parser.add_argument("--threads", type=POSITIVE_INT, default=None, metavar="N",
                        help="torch threads (default: OMP_NUM_THREADS if set, else the free cores: the CPUs minus "
                             "those busy now, at least 1)")


def threads_from_env() -> int | None:
    """OMP_NUM_THREADS when it is one positive integer (as torch itself reads it), else None."""
    raw = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(raw) if raw.isdecimal() and int(raw) > 0 else None  # isdecimal: what int() reads


def set_threads(threads: int | None) -> int:
    """torch.set_num_threads(threads; when None, OMP_NUM_THREADS if the user set it, else
    free_cores()); returns the number set. A run's numbers depend on its thread count (matrix
    products sum in another order), so a run and its resume at one setting are bit-exact."""
    import torch

    n = threads if threads is not None else (threads_from_env() or free_cores())
    torch.set_num_threads(n)
    return n


# ----------------------------------------------------------------------------- numeric options

SEED_MAX = 2**63 - 1  # torch.manual_seed's largest signed seed
# AdamW's first step moves by lr / (1 - beta1) (float32): 1e38 overflows it ("value cannot be
# converted to type float"); 1e30 still runs, and the run stops at the first non-finite loss.
MAX_LR = 1e30


def _bound(x) -> str:
    """A bound as it reads in a message: 2**63 - 1 rather than 9223372036854775807."""
    if isinstance(x, int) and x > 2**20 and (x + 1) & x == 0:
        return f"2**{(x + 1).bit_length() - 1} - 1"
    return f"{x:g}" if isinstance(x, float) else str(x)


def describe_range(low=None, high=None, integer: bool = False, low_open: bool = False, high_open: bool = False) -> str:
    """What :func:`number` accepts, in words: 'a positive integer', 'a finite number in (0, 1)'..."""
    if integer and high is None and not low_open and low in (0, 1):
        return "a positive integer" if low == 1 else "a non-negative integer"
    kind = "an integer" if integer else "a finite number"
    if low is not None and high is not None:
        return f"{kind} in {'(' if low_open else '['}{_bound(low)}, {_bound(high)}{')' if high_open else ']'}"
    if low is not None:
        return f"{kind} {'>' if low_open else '>='} {_bound(low)}"
    if high is not None:
        return f"{kind} {'<' if high_open else '<='} {_bound(high)}"
    return kind


def number(low=None, high=None, *, integer: bool = False, low_open: bool = False, high_open: bool = False,
           why: str = "") -> Callable[[str], int | float]:
    """An argparse ``type=``: the option's text as an int (``integer``) or a finite float within
    [low, high] (``low_open`` / ``high_open`` exclude the bound; None = unbounded). Anything else
    (``nan``, ``inf``, ``1.5`` for an integer, a value out of range) is a usage error naming the
    option, what it expects and what it received::

        --lr inf  ->  argument --lr: expected a finite number in (0, 1e+30], received 'inf'

    ``why`` is added to the expectation in brackets, e.g. "[CLS] and [SEP]"."""
    expected = describe_range(low, high, integer, low_open, high_open) + (f" ({why})" if why else "")

    def parse(text: str) -> int | float:
        try:
            value = int(text) if integer else float(text)
        except (TypeError, ValueError):
            value = None
        ok = value is not None and math.isfinite(value)
        if ok and low is not None:
            ok = value > low if low_open else value >= low
        if ok and high is not None:
            ok = value < high if high_open else value <= high
        if not ok:
            raise argparse.ArgumentTypeError(f"expected {expected}, received {text!r}")
        return value

    parse.__name__ = "integer" if integer else "number"
    parse.expected = expected
    return parse


POSITIVE_INT = number(1, integer=True)
NON_NEGATIVE_INT = number(0, integer=True)
PROBABILITY = number(0.0, 1.0, high_open=True)  # dropout: [0, 1)
SEED = number(0, SEED_MAX, integer=True)

# TrainConfig's options (minitransformer.trainer.TrainConfig), checked when parsed. max_steps is only
# parsed as an integer here: TrainConfig itself refuses < 1 ("max_steps: expected a positive integer"),
# and fine-tuning reads 0 as "--epochs passes" (it overrides this entry).
TRAIN_TYPES: dict[str, Callable[[str], int | float]] = {
    "max_steps": number(integer=True),
    "batch_size": POSITIVE_INT,
    "grad_accum": POSITIVE_INT,
    "lr": number(0.0, MAX_LR, low_open=True),
    "min_lr": number(0.0, MAX_LR),
    "warmup_steps": NON_NEGATIVE_INT,
    "weight_decay": number(0.0, 1.0),
    "betas": number(0.0, 1.0, high_open=True),
    "grad_clip": number(0.0, why="0 = no clipping"),
    "eval_interval": NON_NEGATIVE_INT,
    "eval_steps": NON_NEGATIVE_INT,
    "log_interval": POSITIVE_INT,
    "checkpoint_interval": number(-1, integer=True, why="-1 = never, 0 = at evaluations"),
    "seed": SEED,
}


# ----------------------------------------------------------------------------- output paths


def check_output_file(path, flag: str) -> Path:
    """Check, before any work, that the file ``path`` (given as ``flag``) can be written: it is
    not a folder, no existing part of its parent path is a file, and the nearest existing folder
    (and the file itself, when it exists) is writable. ValueError naming the flag and the path."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{flag} {path}: expected a file to write, received a folder")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"{flag} {path}: cannot write there, {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        where = path if path.exists() else parent
        raise ValueError(f"{flag} {path}: cannot write there, {where} is read-only")
    return path


@contextlib.contextmanager
def output_errors(path, flag: str) -> Iterator[None]:
    """Turn an OSError raised while writing ``path`` (a full disk, a read-only or vanished folder)
    into a ValueError naming ``flag`` and the path, so the CLI prints one line instead of a traceback."""
    try:
        yield
    except OSError as e:
        detail = f"{e.strerror}: {e.filename}" if e.strerror and e.filename else str(e)
        raise ValueError(f"{flag} {path}: cannot write it ({detail})") from None


# ----------------------------------------------------------------------------- dataclasses


def _field_type(default, types: dict, name: str):
    """The argparse type of one dataclass field: ``types[name]``, else an integer / finite number
    for int / float defaults (so ``nan`` and ``inf`` are refused), else the default's type."""
    if name in types:
        return types[name]
    sample = default[0] if isinstance(default, tuple) else default
    if isinstance(sample, float):
        return number()
    if isinstance(sample, int) and not isinstance(sample, bool):
        return number(integer=True)
    return type(sample)


def add_dataclass_args(parser: argparse.ArgumentParser, cls, defaults: dict | None = None, help: dict | None = None,
                       title: str | None = None, types: dict | None = None) -> None:
    """One ``--field-name`` option per field of the dataclass ``cls`` (e.g. ``TrainConfig``): booleans
    as ``--x / --no-x``, tuples as N numbers, everything else typed like its default (numbers finite).
    ``defaults`` overrides the dataclass defaults, ``help`` gives per-field help, ``types`` per-field
    argparse types (e.g. :data:`TRAIN_TYPES`, built with :func:`number`). Read back with
    :func:`dataclass_from_args`."""
    defaults, help, types = defaults or {}, help or {}, types or {}
    group = parser.add_argument_group(title or f"{cls.__name__} fields")
    for f in dataclasses.fields(cls):
        default = defaults.get(f.name, f.default)
        flag, text = "--" + f.name.replace("_", "-"), f"{help.get(f.name, f.name.replace('_', ' '))} (default: {default})"
        if isinstance(default, bool):
            group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=default, help=text)
        elif isinstance(default, tuple):
            group.add_argument(flag, dest=f.name, type=_field_type(default, types, f.name), nargs=len(default), default=default,
                               metavar="X", help=text)
        else:
            group.add_argument(flag, dest=f.name, type=_field_type(default, types, f.name), default=default, help=text)


def dataclass_from_args(cls, args, **overrides):
    """``cls(**{field: args.field})`` for the options :func:`add_dataclass_args` added, with ``overrides``."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
    return cls(**{**values, **overrides})
