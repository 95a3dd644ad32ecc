"""nbgrader-style solution markers: turn a chapter (a plain .py file or a percent-format notebook)
into its student version.

    ### BEGIN SOLUTION          ->   # YOUR CODE HERE
    ...reference code...              raise NotImplementedError
    ### END SOLUTION

    ### BEGIN HIDDEN TESTS      ->   (removed, markers included)
    ...
    ### END HIDDEN TESTS

Everything outside the regions is kept byte for byte (line endings included).
"""
from __future__ import annotations

from pathlib import Path

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
MARKERS = {BEGIN_SOLUTION: END_SOLUTION, BEGIN_HIDDEN: END_HIDDEN}


class MarkerError(ValueError):
    """Markers that do not pair up; the message names the file and line."""


def marker_of(line: str) -> str | None:
    """The marker a line holds (its text after optional indentation), or None.
    In a percent-format markdown cell the line may start with '# ' before the marker."""
    s = line.strip()
    if s.startswith("# ###"):
        s = s[2:]
    for m in (BEGIN_SOLUTION, END_SOLUTION, BEGIN_HIDDEN, END_HIDDEN):
        if s == m:
            return m
    return None


def student_version(text: str, path: str = "<text>") -> tuple[str, int]:
    """Return (student text, number of solution regions replaced). Raises MarkerError."""
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    open_marker, open_line, regions = None, 0, 0
    for no, line in enumerate(lines, start=1):
        m = marker_of(line)
        if m is None:
            if open_marker is None:
                out.append(line)
            continue
        if m in MARKERS:  # a BEGIN
            if open_marker is not None:
                raise MarkerError(f"{path}:{no}: '{m}' inside the region opened by '{open_marker}' at line {open_line}")
            open_marker, open_line = m, no
            if m == BEGIN_SOLUTION:
                indent = line[: len(line) - len(line.lstrip())]
                eol = line[len(line.rstrip("\r\n")):] or "\n"
                out.append(f"{indent}# YOUR CODE HERE{eol}{indent}raise NotImplementedError{eol}")
                regions += 1
        else:  # an END
            if open_marker is None or MARKERS[open_marker] != m:
                expected = f"'{MARKERS[open_marker]}'" if open_marker else "no END marker (no region is open)"
                raise MarkerError(f"{path}:{no}: found '{m}', expected {expected}")
            open_marker = None
    if open_marker is not None:
        raise MarkerError(f"{path}:{open_line}: '{open_marker}' is never closed by '{MARKERS[open_marker]}'")
    return "".join(out), regions


def build(src_dir: Path, out_dir: Path, patterns=("*.py", "*.md")) -> dict[str, int]:
    """Write the student version of every file matching ``patterns`` under ``src_dir`` to
    ``out_dir`` (same relative paths). Checks every file before writing any. Returns
    {relative path: regions replaced}."""
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    files = sorted({p for pat in patterns for p in src_dir.rglob(pat) if "__pycache__" not in p.parts})
    converted = {}
    for p in files:
        rel = p.relative_to(src_dir)
        text = p.read_bytes().decode("utf-8")
        converted[rel] = student_version(text, str(p))
    for rel, (text, _) in converted.items():
        dest = out_dir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(text.encode("utf-8"))
    return {str(rel): n for rel, (_, n) in converted.items()}
