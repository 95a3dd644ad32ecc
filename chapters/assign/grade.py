"""Grade a student's copy of the chapters: each exercise in its own process with a time limit,
then a table, results.csv and results.json."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .exercises import EXERCISES, Exercise

CHAPTERS_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = CHAPTERS_DIR.parent


def grade_one(ex: Exercise, student_dir: Path, timeout: float) -> dict:
    """Run one exercise's reference check against the student's function. Never raises."""
    row = {"exercise": ex.id, "chapter": ex.chapter, "points": 0, "max_points": ex.points}
    student_file = student_dir / ex.chapter
    if not student_file.is_file():
        return {**row, "status": "missing", "message": f"missing file: {student_file}", "seconds": 0.0}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "CHAPTERS_FAST": "1"}
    cmd = [sys.executable, "-m", "chapters.assign.run_one", str(student_file), str(CHAPTERS_DIR / ex.chapter), ex.function, ex.check]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=str(student_dir))
    except subprocess.TimeoutExpired:
        return {**row, "status": "timed out", "message": f"stopped after the {timeout:g} s time limit", "seconds": timeout}
    seconds = time.perf_counter() - t0
    result = next((json.loads(line[9:]) for line in proc.stdout.splitlines() if line.startswith("@@RESULT ")), None)
    if result is None:
        tail = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-1:]) or f"exit code {proc.returncode}"
        return {**row, "status": "crashed", "message": tail[:300], "seconds": seconds}
    points = ex.points if result["status"] == "passed" else 0
    return {**row, **result, "points": points, "seconds": round(seconds, 2)}


def grade_all(student_dir: Path, out_dir: Path | None = None, timeout: float = 60.0, only=None, jobs: int = 2) -> list[dict]:
    """Grade every exercise (or those named in ``only``); write results.csv and results.json to out_dir."""
    student_dir = Path(student_dir).resolve()  # the exercises run with the student's folder as working directory
    if not student_dir.is_dir():
        raise FileNotFoundError(f"student directory not found: {student_dir}")
    chosen = [e for e in EXERCISES if not only or e.id in only]
    unknown = set(only or ()) - {e.id for e in EXERCISES}
    if unknown:
        raise ValueError(f"unknown exercise(s) {sorted(unknown)}; expected some of {[e.id for e in EXERCISES]}")
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        rows = list(pool.map(lambda e: grade_one(e, student_dir, timeout), chosen))
    if out_dir is not None:
        write_results(rows, Path(out_dir))
    return rows


def write_results(rows: list[dict], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    fields = ["exercise", "chapter", "points", "max_points", "status", "message", "seconds"]
    with open(out_dir / "results.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows({k: r.get(k, "") for k in fields} for r in rows)
    total = sum(r["points"] for r in rows)
    possible = sum(r["max_points"] for r in rows)
    (out_dir / "results.json").write_text(
        json.dumps({"total": total, "max_total": possible, "exercises": rows}, ensure_ascii=False, indent=2), encoding="utf-8"
    )


def format_table(rows: list[dict]) -> str:
    lines = [f"{'exercise':<24} {'points':>7}  {'result':<10} message", "-" * 78]
    for r in rows:
        lines.append(f"{r['exercise']:<24} {r['points']:>3}/{r['max_points']:<3}  {r['status']:<10} {r['message']}")
    total, possible = sum(r["points"] for r in rows), sum(r["max_points"] for r in rows)
    lines += ["-" * 78, f"{'total':<24} {total:>3}/{possible:<3}"]
    return "\n".join(lines)
