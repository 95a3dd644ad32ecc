"""The chapters' cells as the percent format writes them, read without jupytext (so the runner and
the tests need nothing beyond the standard library).

    # %% [markdown] lang="zh"      a markdown cell in Chinese (its lines start with "# ")
    # %% [markdown] lang="en"      the same text in English, right after it
    # %%                           a code cell (no lang: it is the same in both languages)

``read_cells`` gives ``Cell(kind, lang, source, line)`` for each; ``pairs_problems`` says which
markdown cells do not come as a zh/en pair; ``cjk_share`` measures how Chinese a text is.
jupytext reads the same files into notebooks for the renderer, with ``lang`` in the cell metadata.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

HEADER = re.compile(r"^# %%(?P<title>[^\[\n]*?)\s*(?:\[(?P<kind>\w+)\])?(?P<meta>.*)$")
META = re.compile(r'(\w[\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|(\S+))')


@dataclass
class Cell:
    kind: str  # "markdown" or "code"
    lang: str | None  # "zh", "en", or None (both languages)
    source: str  # the markdown without its "# " prefixes, or the code
    line: int  # 1-based line of the "# %%" header (0 for text before the first header)
    metadata: dict = field(default_factory=dict)


def _markdown_text(lines: list[str]) -> str:
    out = []
    for line in lines:
        if line.startswith("# "):
            out.append(line[2:])
        elif line.strip() == "#":
            out.append("")
        else:
            out.append(line)
    return "\n".join(out).strip("\n")


def parse_cells(text: str) -> list[Cell]:
    """The cells of a percent-format script, in order."""
    cells: list[Cell] = []
    kind, meta, start, body = "code", {}, 0, []

    def flush():
        source = _markdown_text(body) if kind == "markdown" else "\n".join(body).strip("\n")
        if start or source.strip():
            cells.append(Cell(kind, meta.get("lang"), source, start, dict(meta)))

    for number, line in enumerate(text.splitlines(), start=1):
        m = HEADER.match(line)
        if m and (line == "# %%" or line.startswith("# %% ")):
            flush()
            kind = "markdown" if (m.group("kind") or "").lower() in ("markdown", "md") else "code"
            meta = {k: (q if q is not None else v) for k, q, v in META.findall(m.group("meta") or "")}
            start, body = number, []
        else:
            body.append(line)
    flush()
    return cells


def read_cells(path) -> list[Cell]:
    return parse_cells(Path(path).read_text(encoding="utf-8"))


def title(cells: list[Cell], lang: str | None = None) -> str:
    """The first markdown heading in ``lang`` (cells without a lang count for every language)."""
    for cell in cells:
        if cell.kind != "markdown" or (lang and cell.lang not in (None, lang)):
            continue
        for line in cell.source.splitlines():
            m = re.match(r"^#+\s+(.*)", line)
            if m:
                return m.group(1).strip()
    return ""


def cjk_share(text: str) -> float:
    """CJK ideographs (and kana) among the letters of ``text``: 0 for English, near 1 for Chinese
    prose (Latin symbols such as d_k, code in backticks and formulas count against it a little)."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 0.0
    cjk = sum(1 for c in letters if unicodedata.east_asian_width(c) in "WF")
    return cjk / len(letters)


def pairs_problems(cells: list[Cell], min_share: float = 0.3) -> list[str]:
    """What breaks the rule "every markdown cell is a pair: lang="zh", then lang="en", both
    non-empty, the zh one Chinese (cjk_share ≥ min_share)". Empty when the chapter keeps it."""
    problems = []
    i = 0
    while i < len(cells):
        cell = cells[i]
        if cell.kind != "markdown":
            i += 1
            continue
        where = f"line {cell.line}"
        nxt = cells[i + 1] if i + 1 < len(cells) else None
        if cell.lang != "zh":
            problems.append(f"{where}: a markdown cell with lang={cell.lang!r}, expected lang=\"zh\" "
                            f"followed by lang=\"en\"")
            i += 1
            continue
        if nxt is None or nxt.kind != "markdown" or nxt.lang != "en":
            problems.append(f"{where}: the zh cell is not followed by its lang=\"en\" cell")
            i += 1
            continue
        if not cell.source.strip():
            problems.append(f"{where}: the zh cell is empty")
        elif cjk_share(cell.source) < min_share:
            problems.append(f"{where}: the zh cell is not Chinese (CJK share {cjk_share(cell.source):.2f} "
                            f"< {min_share})")
        if not nxt.source.strip():
            problems.append(f"line {nxt.line}: the en cell is empty")
        i += 2
    return problems
