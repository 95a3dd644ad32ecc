"""Run records: metrics as JSON lines and CSV, and the loss curve as a PNG.

Every metrics row is a flat dict such as ``{"step": 100, "split": "train", "loss": 2.31, "lr": 6e-4}``
or ``{"step": 100, "split": "val", "loss": 2.45, "perplexity": 11.6}``. ``metrics.jsonl`` gets one
row per line as training goes; ``metrics.csv`` (columns: the union of all keys) and ``loss.png``
are rewritten from the rows.

The figure is drawn with matplotlib's object API and the Agg canvas, so nothing here changes the
global pyplot backend or needs a display. A training run draws it in a helper process
(:func:`plot_loss_curves`), so the process that trains never imports matplotlib.
"""
from __future__ import annotations

import atexit
import csv
import json
import os
import subprocess
import sys
import threading
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


def draw_loss_curves(rows: list[dict], path: str | os.PathLike, title: str = "loss") -> None:
    """Plot ``loss`` against ``step`` with one line per ``split`` (train, val, ...) into a PNG, in
    this process."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # imported here: about 33 MiB and 0.5 s
    from matplotlib.figure import Figure

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


# ----------------------------------------------------------------------------- the helper process
#
# Importing matplotlib adds about 33 MiB to a process for good, and a training run's peak memory is
# that plus the steps' activations (bench/README.md, "Where the extra memory is"). So a run hands
# its rows to one long-lived helper, ``python -m minitransformer.plotting``, which reads a JSON line
# per figure from its stdin and answers "ok" once the PNG is written. The helper starts at the first
# figure (0.8 s, about 70 MiB of its own) and ends when its stdin closes, that is when the run's
# process exits, however it exits. A process that has matplotlib already draws its figures itself.
# Should anything go wrong with the helper, the figure is drawn here instead, so an error (a
# missing folder, a full disk) is the one matplotlib raises.

_helper: subprocess.Popen | None = None
_helper_pid = 0  # the process that started it (a forked child must not share its pipes)
_helper_lock = threading.Lock()
HELPER_COMMAND = [sys.executable, "-m", "minitransformer.plotting"]


def plot_loss_curves(rows: list[dict], path: str | os.PathLike, title: str = "loss") -> None:
    """:func:`draw_loss_curves`, drawn by the helper process so that this process stays without
    matplotlib; here when matplotlib is imported already (a chapter, a notebook) or when the helper
    cannot draw it."""
    if not matplotlib_imported():
        request = json.dumps({"rows": rows, "path": str(Path(path).absolute()), "title": title}) + "\n"
        with _helper_lock:
            if _draw_in_helper(request):
                return
    draw_loss_curves(rows, path, title)


def matplotlib_imported() -> bool:
    """True when this process has imported matplotlib already (drawing here then costs no memory)."""
    return "matplotlib" in sys.modules


def _draw_in_helper(request: str) -> bool:
    """Send one figure to the helper (starting it if needed); True when it answers ok."""
    global _helper, _helper_pid
    try:
        if _helper is None or _helper.poll() is not None or _helper_pid != os.getpid():
            package_root = str(Path(__file__).resolve().parents[1])
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
            _helper = subprocess.Popen(HELPER_COMMAND, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                       text=True, encoding="utf-8")
            _helper_pid = os.getpid()
        _helper.stdin.write(request)
        _helper.stdin.flush()
        return _helper.stdout.readline().strip() == "ok"
    except (OSError, ValueError):  # could not start, or it died (a broken pipe)
        return False


@atexit.register
def _stop_helper() -> None:
    if _helper is not None and _helper_pid == os.getpid() and _helper.poll() is None:
        try:
            _helper.stdin.close()  # end of input: the helper exits
            _helper.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            _helper.kill()


def serve(stdin=sys.stdin, stdout=sys.stdout) -> None:
    """The helper's loop: one JSON request per line -> draw -> "ok" (or "error <what>")."""
    for line in stdin:
        try:
            request = json.loads(line)
            draw_loss_curves(request["rows"], request["path"], request["title"])
            stdout.write("ok\n")
        except Exception as e:  # noqa: BLE001 -- reported; the caller then draws it itself and raises
            stdout.write("error " + f"{type(e).__name__}: {e}".replace("\n", " ") + "\n")
        stdout.flush()


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the run's to handle; the helper ends with its stdin
    serve()
