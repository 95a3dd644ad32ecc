"""Option parsing shared by the chapter helper (book.py) and the runner (__main__.py); no torch
import, so the runner starts fast."""
from __future__ import annotations


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
