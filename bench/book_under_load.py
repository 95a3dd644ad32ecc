"""The book idle and while other CPU-bound processes run (issue #16).

Runs ``python -m chapters --quiet`` (default mode, the runner's own choice of jobs and threads
unless --jobs / --threads are given) on the idle machine, then again while ``--burners`` processes
spin on the CPU (``while True: pass``, one thread each: the "two other CPU-bound processes" of the
issue), alternating ``--repeats`` times, and prints each chapter's time and the whole book's wall
time in both conditions with their ratio. With 2 cores shared fairly among 2 chapters and 2
burners, 2.0× is the limit; a runner that backs off to one chapter gets a third of the CPU (3×).

    python bench/book_under_load.py                      the whole book, 2 burners, once each
    python bench/book_under_load.py --only 02 03 09      a few chapters
    python bench/book_under_load.py --jobs 1             the runner at one chapter at a time
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from minitransformer.cli import NON_NEGATIVE_INT, POSITIVE_INT  # noqa: E402

BURN = "while True:\n    pass\n"


def run_book(extra: list[str], burners: int) -> tuple[float, dict[str, float], str]:
    """(wall s, {chapter: s}, runner's last line) of one ``python -m chapters`` with ``burners`` spinning."""
    spinners = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(burners)]
    try:
        time.sleep(1.0 if burners else 0.0)  # the burners are spinning before the first chapter starts
        with tempfile.TemporaryDirectory() as tmp:
            summary = Path(tmp) / "rows.json"
            cmd = [sys.executable, "-m", "chapters", "--quiet", "--out", str(Path(tmp) / "out"), "--json", str(summary)] + extra
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            lines = [line for line in proc.stdout.splitlines() if line.strip()]
            if proc.returncode != 0:
                raise SystemExit(f"the book failed (exit {proc.returncode}):\n" + "\n".join(lines[-30:]) + proc.stderr[-2000:])
            rows = json.loads(summary.read_text(encoding="utf-8"))["chapters"]
    finally:
        for s in spinners:
            s.kill()
            s.wait()
    return wall, {r["chapter"]: r["seconds"] for r in rows}, (lines[-1] if lines else "")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", default=None, metavar="NN", help="chapters to run (default: all)")
    ap.add_argument("--burners", type=NON_NEGATIVE_INT, default=2, help="CPU-bound processes during the loaded runs (default 2)")
    ap.add_argument("--repeats", type=POSITIVE_INT, default=1, help="idle and loaded runs, alternating (default 1 each)")
    ap.add_argument("--jobs", type=POSITIVE_INT, default=None, help="the runner's --jobs (default: its own choice)")
    ap.add_argument("--threads", type=POSITIVE_INT, default=None, help="the runner's --threads (default: its own, 1)")
    args = ap.parse_args(argv)

    extra = (["--only", *args.only] if args.only else []) + (["--jobs", str(args.jobs)] if args.jobs else []) \
        + (["--threads", str(args.threads)] if args.threads else [])
    print(f"python {' '.join(sys.argv)}")
    print(f"{os.cpu_count()} CPUs, load average before {os.getloadavg()[0]:.2f}; runner options: {' '.join(extra) or '(defaults)'}")
    walls: dict[str, list[float]] = {"idle": [], "loaded": []}
    chapters: dict[str, dict[str, list[float]]] = {}
    for r in range(args.repeats):
        for condition, burners in (("idle", 0), ("loaded", args.burners)):
            wall, rows, last = run_book(extra, burners)
            walls[condition].append(wall)
            for name, s in rows.items():
                chapters.setdefault(name, {"idle": [], "loaded": []})[condition].append(s)
            print(f"run {r + 1} {condition:<6} ({burners} burners): {wall:6.1f} s — {last}", flush=True)

    print(f"\n| chapter | idle s | with {args.burners} burners s | ratio |\n|---|---|---|---|")
    for name, t in chapters.items():
        idle, loaded = statistics.median(t["idle"]), statistics.median(t["loaded"])
        print(f"| {name} | {idle:.1f} | {loaded:.1f} | {loaded / idle:.2f}× |")
    idle, loaded = statistics.median(walls["idle"]), statistics.median(walls["loaded"])
    print(f"| **the book, wall** | **{idle:.1f}** | **{loaded:.1f}** | **{loaded / idle:.2f}×** |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
