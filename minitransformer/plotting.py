"""Run records: metrics as JSON lines and CSV, and the loss curve as a PNG.

Every metrics row is a flat dict such as ``{"step": 100, "split": "train", "loss": 2.31, "lr": 6e-4}``
or ``{"step": 100, "split": "val", "loss": 2.45, "perplexity": 11.6}``. ``metrics.jsonl`` gets one
row per line as training goes; ``metrics.csv`` (columns: the union of all keys) and ``loss.png``
are rewritten from the rows.

The figure is drawn with matplotlib's object API and the Agg canvas, so nothing here changes the
global pyplot backend or needs a display.
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path


def append_jsonl(row: dict, path: str | os.PathLike) -> None:
    """Append one row to a JSON-lines file and flush it to the OS."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """All rows of a JSON-lines file ([] when it does not exist; a torn last line is dropped)."""
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a crash mid-write leaves at most one partial line, at the end
    return rows


def write_jsonl(rows: list[dict], path: str | os.PathLike) -> None:
    """Rewrite a JSON-lines file with ``rows``."""
    Path(path).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def write_csv(rows: list[dict], path: str | os.PathLike) -> None:
    """Write rows as CSV; columns are ``step``, ``split``, ``loss`` first, then the other keys in
    order of first appearance. Missing values are left empty."""
    columns: list[str] = ["step", "split", "loss"]
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)


def plot_loss_curves(rows: list[dict], path: str | os.PathLike, title: str = "loss") -> None:
    """Plot ``loss`` against ``step`` with one line per ``split`` (train, val, ...) into a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # imported here: about 30 MB and 0.5 s that
    from matplotlib.figure import Figure  # a run pays only when it draws (TrainConfig.plot), at the end

    fig = Figure(figsize=(6.4, 4.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    splits = list(dict.fromkeys(r.get("split", "train") for r in rows if "loss" in r))
    for split in splits:
        points = [(r["step"], r["loss"]) for r in rows if r.get("split", "train") == split and "loss" in r]
        steps, losses = zip(*points)
        style = "-" if split == "train" else "o-"
        ax.plot(steps, losses, style, label=split, markersize=3)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if splits:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, format="png")
