"""Option parsing shared by the chapter helper (book.py) and the runner (__main__.py): counts,
seconds and output paths, each refused with a message naming the option, what it expects and
what it received; the languages (--lang, CHAPTERS_LANG, the locale) and ``tr``. No torch import (so not
minitransformer.cli either), so the runner starts fast."""
from __future__ import annotations

import math
import os
from pathlib import Path


def parse_count(option: str, text, minimum: int) -> int:
    """``text`` as an integer ≥ ``minimum``; otherwise ValueError naming ``option`` and what it received.

    Used for --seed (minimum 0) and --threads (minimum 1) by chapters.book and the runner."""
    kind = "a positive integer" if minimum == 1 else "a non-negative integer" if minimum == 0 else f"an integer >= {minimum}"
    try:
        value = int(str(text).strip())
    except ValueError:
        value = None
    if value is None or value < minimum:
        raise ValueError(f"{option}: expected {kind}, received {str(text)!r}")
    return value


def option_count(args_value, env: str, option: str, minimum: int, default: int) -> int:
    """The count from argv (``args_value``, named ``option``), else from the environment variable
    ``env``, else ``default``; a bad value is a ValueError naming where it came from (see
    :func:`parse_count`). chapters.book and the runner read --seed / --threads this way."""
    text = args_value if args_value is not None else os.environ.get(env, "")
    if text in (None, ""):
        return default
    return parse_count(option if args_value is not None else env, text, minimum)


LANGS = ("zh", "en")
LANG_NAMES = {"zh": "中文", "en": "English"}


def parse_lang(option: str, text) -> str:
    """``text`` as one of the book's languages (zh, en); otherwise ValueError listing them."""
    value = str(text).strip().lower()
    if value not in LANGS:
        listed = ", ".join(f"{code} ({LANG_NAMES[code]})" for code in LANGS)
        raise ValueError(f"{option}: expected one of the languages {listed}, received {str(text)!r}")
    return value


def tr(lang: str, zh: str, en: str) -> str:
    """``zh`` when ``lang`` is "zh", else ``en``: the runner's and the renderer's messages (the
    chapters use ``Chapter.tr``, which is this with the chapter's language)."""
    return zh if lang == "zh" else en


def default_lang(environ=os.environ) -> str:
    """The language when none is asked for: CHAPTERS_LANG if set, else zh when the locale
    (LC_ALL, LC_MESSAGES, LANG, in that order, the first one set) starts with zh, else en."""
    if environ.get("CHAPTERS_LANG"):
        return parse_lang("CHAPTERS_LANG", environ["CHAPTERS_LANG"])
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        if environ.get(var):
            return "zh" if environ[var].lower().startswith("zh") else "en"
    return "en"


def parse_seconds(option: str, text) -> float:
    """``text`` as a finite number of seconds > 0; otherwise ValueError naming ``option`` and what it
    received (``nan``, ``inf``, ``0`` and ``-5`` are all refused). Used for the runner's --timeout."""
    try:
        value = float(str(text).strip())
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{option}: expected a finite number of seconds > 0, received {str(text)!r}")
    return value


def _folder_problem(path: Path) -> str | None:
    """Create the folder ``path`` (and its parents); None when it exists and is writable, else why not."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{str(existing)!r} is a file, not a folder"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return f"{str(path)!r} cannot be created ({e.strerror or e})"
    if not os.access(path, os.W_OK | os.X_OK):
        return f"{str(path)!r} is read-only"
    return None


def check_output_dir(option: str, path) -> Path:
    """Create the folder ``path`` (and its parents) for the figures, or ValueError naming ``option``
    and the path when it cannot be: it or a part of it is a file, or it is read-only."""
    path = Path(path)
    problem = _folder_problem(path)
    if problem:
        raise ValueError(f"{option}: expected a writable folder, received {str(path)!r}: {problem}")
    return path


def check_output_file(option: str, path) -> Path:
    """Check that the file ``path`` can be written (creating its parent folders): not a folder, no
    part of its parent a file, not read-only. ValueError naming ``option`` and the path otherwise."""
    path = Path(path)
    problem = ("it is a folder" if path.is_dir() else _folder_problem(path.parent)
               or (f"{str(path)!r} is read-only" if path.exists() and not os.access(path, os.W_OK) else None))
    if problem:
        raise ValueError(f"{option}: expected a file in a writable folder, received {str(path)!r}: {problem}")
    return path
