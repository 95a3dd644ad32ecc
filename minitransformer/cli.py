"""Run a command-line entry point so that bad input ends with one line and a non-zero exit,
never a traceback."""
from __future__ import annotations

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
