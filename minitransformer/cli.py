"""Run a command-line entry point so that bad input ends with one line and a non-zero exit,
never a traceback."""
from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Callable, Sequence


class CLIError(Exception):
    """An error meant for the user of a command-line tool: printed as-is, exit code 2."""


def run_cli(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None, prog: str = "") -> int:
    """Call ``main(argv)``; turn user-facing errors into ``error: ...`` on stderr and exit code 2.

    ValueError, FileNotFoundError, IsADirectoryError, UnicodeDecodeError and CLIError are the
    errors bad input produces; anything else is a bug and keeps its traceback.
    """
    try:
        return int(main(argv) or 0)
    except (CLIError, ValueError, FileNotFoundError, IsADirectoryError, NotADirectoryError, UnicodeDecodeError) as e:
        name = prog or "error"
        print(f"{name}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def add_dataclass_args(parser: argparse.ArgumentParser, cls, defaults: dict | None = None, help: dict | None = None, title: str | None = None) -> None:
    """One ``--field-name`` option per field of the dataclass ``cls`` (e.g. ``TrainConfig``): booleans
    as ``--x / --no-x``, tuples as N numbers, everything else typed like its default. ``defaults``
    overrides the dataclass defaults, ``help`` gives per-field help. Read back with :func:`dataclass_from_args`."""
    defaults, help = defaults or {}, help or {}
    group = parser.add_argument_group(title or f"{cls.__name__} fields")
    for f in dataclasses.fields(cls):
        default = defaults.get(f.name, f.default)
        flag, text = "--" + f.name.replace("_", "-"), f"{help.get(f.name, f.name.replace('_', ' '))} (default: {default})"
        if isinstance(default, bool):
            group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=default, help=text)
        elif isinstance(default, tuple):
            group.add_argument(flag, dest=f.name, type=type(default[0]), nargs=len(default), default=default, metavar="X", help=text)
        else:
            group.add_argument(flag, dest=f.name, type=type(default), default=default, help=text)


def dataclass_from_args(cls, args, **overrides):
    """``cls(**{field: args.field})`` for the options :func:`add_dataclass_args` added, with ``overrides``."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
    return cls(**{**values, **overrides})
