"""How far each chapter's numeric checks sit from their thresholds, across seeds and thread counts.

    python bench/chapter_spread.py                                   every chapter, seeds 0-4, threads 1 and 2
    python bench/chapter_spread.py --only 07 09 --seeds 0 1 2 --threads 1 2
    python bench/chapter_spread.py --only 02 --json spread.json      also keep every run's values
    python bench/chapter_spread.py --table-from a.json b.json        the table of runs saved earlier

Each run is ``python chapters/chNN_x.py --seed S --threads T --out TMPDIR`` in default mode (not
--fast), one at a time, in its own process. The script reads the "values" of the run's
``@@CHAPTER {...}`` line (every ``ch.check_value``: name, value, low, high) and prints a markdown
table, one row per check: its bound(s), mean ± std over all runs, min, max, and the margin in
standard deviations, (min − low) / std or (high − max) / std (the smaller of the two when both
bounds are set; "∞" when the value never moved), flagged ⚠ under 3. A margin under ~3 means a
machine that rounds a little differently, or another seed, could fail the check — unless the
check only asks "clearly not zero" of a quantity that spreads over a factor of a few (then read
min / bound instead). Then one line per failed run.

Results must hold on any machine: a threshold belongs well inside the measured spread, never at
the value one run happened to give. Exit status 1 if any run failed, 2 for bad options.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from chapters.__main__ import find_chapters, parse_count, select  # noqa: E402  (no torch: the runner is light)

SUMMARY_PREFIX = "@@CHAPTER "


def run_one(path: Path, seed: int, threads: int, timeout: float) -> dict:
    """One chapter run. Returns {chapter, seed, threads, ok, values, seconds, error}."""
    with tempfile.TemporaryDirectory(prefix=f"spread_{path.stem}_") as tmp:
        cmd = [sys.executable, str(path), "--seed", str(seed), "--threads", str(threads), "--out", tmp]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        env["MPLBACKEND"] = "Agg"
        env["PYTHONIOENCODING"] = "utf-8"
        for name in ("CHAPTERS_FAST", "CHAPTERS_OUT", "CHAPTERS_SEED", "CHAPTERS_THREADS"):
            env.pop(name, None)  # the options decide
        env["CHAPTERS_LANG"] = "en"  # check names key the table: the same language in every run
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, encoding="utf-8",
                                  errors="replace", timeout=timeout)
            out, rc = proc.stdout + proc.stderr, proc.returncode
        except subprocess.TimeoutExpired as e:
            out, rc = (e.stdout or "") if isinstance(e.stdout, str) else "", None
        seconds = time.perf_counter() - t0
    summary = None
    for line in out.splitlines():
        if line.startswith(SUMMARY_PREFIX):
            try:
                summary = json.loads(line[len(SUMMARY_PREFIX):])
            except json.JSONDecodeError:
                pass
    row = {"chapter": path.stem, "seed": seed, "threads": threads, "seconds": round(seconds, 1),
           "ok": rc == 0 and summary is not None, "values": (summary or {}).get("values", []), "error": ""}
    if rc is None:
        row["error"] = f"timeout after {timeout:g} s"
    elif not row["ok"]:
        failed = [ln for ln in out.splitlines() if ln.startswith("✗ ") or ln.startswith("CheckFailed") or "Error" in ln]
        row["error"] = (failed[-1] if failed else (out.strip().splitlines() or ["(no output)"])[-1])[:300]
        row["error"] = f"exit {rc}: " + row["error"]
    return row


def _fmt(x) -> str:
    if x is None:
        return ""
    if isinstance(x, float) and math.isinf(x):
        return "∞" if x > 0 else "−∞"
    return f"{x:.4g}"


def table(runs: list[dict]) -> str:
    """Markdown: one row per (chapter, check), in the order the checks first appear."""
    rows: dict[tuple[str, str], dict] = {}
    for run in runs:
        for v in run["values"]:
            key = (run["chapter"], v["name"])
            r = rows.setdefault(key, {"low": v.get("low"), "high": v.get("high"), "values": []})
            r["values"].append(float("nan") if v.get("value") is None else float(v["value"]))
    lines = ["| chapter | check | bound | mean ± std | min | max | margin (std) | runs |",
             "|---|---|---|---|---|---|---|---|"]
    for (chapter, name), r in rows.items():
        xs = [x for x in r["values"] if not math.isnan(x)]
        n_nan = len(r["values"]) - len(xs)
        low, high = r["low"], r["high"]
        bound = (f"{_fmt(low)} … {_fmt(high)}" if low is not None and high is not None
                 else f"≥ {_fmt(low)}" if low is not None else f"≤ {_fmt(high)}")
        if not xs:
            lines.append(f"| {chapter} | {name} | {bound} | NaN | | | | {len(r['values'])} |")
            continue
        mean = sum(xs) / len(xs)
        std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
        lo, hi = min(xs), max(xs)
        gaps = ([lo - low] if low is not None else []) + ([high - hi] if high is not None else [])
        gap = min(gaps)
        if std <= 1e-12 * max(abs(mean), 1e-300):  # the same number every run, up to float rounding
            std = 0.0
        if std > 0:
            margin = f"{gap / std:.1f}"
        else:
            margin = "∞ (constant)" if gap > 0 else "0 (constant)" if gap == 0 else "−∞ (constant)"
        flag = " ⚠" if (std > 0 and gap / std < 3) or gap < 0 or n_nan else ""
        lines.append(f"| {chapter} | {name} | {bound} | {mean:.4g} ± {std:.2g} | {_fmt(lo)} | {_fmt(hi)} | {margin}{flag} | "
                     f"{len(r['values'])}{f' ({n_nan} NaN)' if n_nan else ''} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python bench/chapter_spread.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", metavar="NN", help="chapter numbers (default: all)")
    ap.add_argument("--seeds", nargs="+", default=["0", "1", "2", "3", "4"], metavar="S", help="default 0 1 2 3 4")
    ap.add_argument("--threads", nargs="+", default=["1", "2"], metavar="T", help="default 1 2")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds allowed per run (default 600)")
    ap.add_argument("--json", type=Path, default=None,
                    help="also write every run (values included) to this file, rewritten after each run")
    ap.add_argument("--table-from", nargs="+", type=Path, default=None, metavar="JSON",
                    help="run nothing: print the table (and failed runs) of runs saved by --json, merged")
    args = ap.parse_args(argv)
    if args.table_from:
        runs = [run for f in args.table_from for run in json.loads(f.read_text(encoding="utf-8"))]
        return report(runs)
    try:
        seeds = [parse_count("--seeds", s, 0) for s in args.seeds]
        threads = [parse_count("--threads", t, 1) for t in args.threads]
        chapters = select(find_chapters(REPO / "chapters"), args.only)
    except ValueError as e:
        ap.error(str(e))

    shown = ["python", "bench/chapter_spread.py"] + (["--only", *args.only] if args.only else []) \
        + ["--seeds", *map(str, seeds), "--threads", *map(str, threads)]
    print("$ " + shlex.join(shown), flush=True)
    print(f"  {len(chapters)} chapters × {len(seeds)} seeds × {len(threads)} thread counts = "
          f"{len(chapters) * len(seeds) * len(threads)} runs, default mode, one at a time; torch threads via --threads",
          flush=True)
    runs = []
    t0 = time.perf_counter()
    for path in chapters:
        for t in threads:
            for s in seeds:
                run = run_one(path, s, t, args.timeout)
                runs.append(run)
                status = "ok" if run["ok"] else f"FAILED ({run['error']})"
                print(f"  {path.stem} seed {s} threads {t}: {status}, {len(run['values'])} values, {run['seconds']:.1f} s",
                      flush=True)
                if args.json is not None:  # after every run, so an interrupted bench keeps what it measured
                    args.json.write_text(json.dumps(runs, indent=1, ensure_ascii=False), encoding="utf-8")
    print(f"\n{len(runs)} runs in {time.perf_counter() - t0:.0f} s\n")
    return report(runs)


def report(runs: list[dict]) -> int:
    """Print the table, then one line per failed run. Returns the exit status (1 if a run failed)."""
    print(table(runs))
    failed = [r for r in runs if not r["ok"]]
    if failed:
        print()
    for r in failed:
        print(f"- FAILED: {r['chapter']} --seed {r['seed']} --threads {r['threads']}: {r['error']}")
    print(f"\n{len(runs) - len(failed)}/{len(runs)} runs ok"
          f" (seeds {sorted({r['seed'] for r in runs})}, threads {sorted({r['threads'] for r in runs})})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
