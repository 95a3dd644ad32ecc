"""Grade a student's copy of the chapters: each exercise in its own process with a time limit,
then a table, results.csv and results.json. The same machinery serves the students' self-check
(``python -m chapters.assign check ch02``)."""
from __future__ import annotations

import ast
import csv
import json
import math
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .exercises import EXERCISES, Exercise, by_id
from .loader import say

CHAPTERS_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = CHAPTERS_DIR.parent


def check_timeout(timeout) -> float:
    """``timeout`` as a float when it is a positive finite number of seconds; ValueError otherwise."""
    try:
        value = float(timeout)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(timeout, bool) or not (math.isfinite(value) and value > 0):
        raise ValueError(f"timeout: expected a positive finite number of seconds, received {timeout!r}")
    return value


def check_jobs(jobs) -> int:
    """``jobs`` when it is a positive integer; ValueError otherwise."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs: expected a positive integer, received {jobs!r}")
    return jobs


def timed_out_message(timeout: float) -> str:
    """The message of an exercise stopped at the time limit, in the run's language."""
    return say(f"超过 {timeout:g} 秒的时限，已停止", f"stopped after the {timeout:g} s time limit")


def grade_one(ex: Exercise, student_dir: Path, timeout: float) -> dict:
    """Run one exercise's reference check against the student's function. Never raises."""
    row = {"exercise": ex.id, "chapter": ex.chapter, "points": 0, "max_points": ex.points}
    student_file = student_dir / ex.chapter
    if not student_file.is_file():
        return {**row, "status": "missing", "message": say(f"缺少文件：{student_file}", f"missing file: {student_file}"),
                "seconds": 0.0}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "CHAPTERS_FAST": "1"}
    cmd = [sys.executable, "-m", "chapters.assign.run_one", str(student_file), str(CHAPTERS_DIR / ex.chapter), ex.id]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=str(student_dir))
    except subprocess.TimeoutExpired:
        return {**row, "status": "timed out", "message": timed_out_message(timeout), "seconds": timeout}
    seconds = time.perf_counter() - t0
    result = next((json.loads(line[9:]) for line in proc.stdout.splitlines() if line.startswith("@@RESULT ")), None)
    if result is None:
        tail = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-1:]) or say(f"退出码 {proc.returncode}",
                                                                                      f"exit code {proc.returncode}")
        return {**row, "status": "crashed", "message": tail[:300], "seconds": round(seconds, 2)}
    points = ex.points if result["status"] == "passed" else 0
    return {**row, **result, "points": points, "seconds": round(seconds, 2)}


# ----------------------------------------------------------------------------- forked processes (Linux)


def preload(chosen: list[Exercise]) -> None:
    """Import, in this process, what the chosen exercises' chapters import and what they forbid, so that
    each forked child starts with torch and the libraries loaded (student code never runs here)."""
    import importlib

    from .tripwire import resolve

    for name in sorted({e.chapter for e in chosen}):
        for node in ast.parse((CHAPTERS_DIR / name).read_text(encoding="utf-8")).body:
            modules = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                       [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
            for module in modules:
                importlib.import_module(module)
    for ex in chosen:
        for forbidden in ex.refused:
            resolve(forbidden)


def _child(conn, ex_id: str, student_dir: Path, stderr_path: str) -> None:
    """In the forked process: grade one exercise as run_one does in a subprocess, send the result."""
    import torch

    from .run_one import first_line, grade

    os.chdir(student_dir)
    sys.path.insert(0, str(student_dir))
    os.environ.update(OMP_NUM_THREADS="1", CHAPTERS_FAST="1")
    torch.set_num_threads(1)
    with open(os.devnull, "w") as devnull, open(stderr_path, "w") as err:
        os.dup2(devnull.fileno(), 1)
        os.dup2(err.fileno(), 2)
    ex = by_id(ex_id)
    try:
        result = grade(str(student_dir / ex.chapter), str(CHAPTERS_DIR / ex.chapter), ex)
    except BaseException as e:  # noqa: BLE001 (the reference itself failed to load, or worse)
        result = {"status": "crashed", "message": f"{type(e).__name__}: {first_line(e)}"}
    conn.send(result)
    conn.close()


def grade_forked(chosen: list[Exercise], student_dir: Path, timeout: float, jobs: int) -> list[dict]:
    """Each exercise in its own forked process (at most ``jobs`` at once), killed at ``timeout`` seconds."""
    import multiprocessing as mp
    import tempfile
    from multiprocessing.connection import wait

    preload(chosen)
    ctx = mp.get_context("fork")
    rows: dict[str, dict] = {}
    pending = list(chosen)
    running: dict = {}  # sentinel -> (exercise, process, connection, start, stderr file)
    with tempfile.TemporaryDirectory() as tmp:
        while pending or running:
            while pending and len(running) < jobs:
                ex = pending.pop(0)
                row = {"exercise": ex.id, "chapter": ex.chapter, "points": 0, "max_points": ex.points}
                if not (student_dir / ex.chapter).is_file():
                    missing = student_dir / ex.chapter
                    rows[ex.id] = {**row, "status": "missing", "message": say(f"缺少文件：{missing}", f"missing file: {missing}"),
                                   "seconds": 0.0}
                    continue
                receive, send = ctx.Pipe(duplex=False)
                err = os.path.join(tmp, f"{ex.id}.stderr")
                proc = ctx.Process(target=_child, args=(send, ex.id, student_dir, err), daemon=True)
                proc.start()
                send.close()
                running[proc.sentinel] = (ex, proc, receive, time.perf_counter(), err, row)
            if not running:
                continue
            now = time.perf_counter()
            next_deadline = min(start + timeout for _, _, _, start, _, _ in running.values())
            done = wait(list(running), timeout=max(0.0, next_deadline - now))
            now = time.perf_counter()
            for sentinel in list(running):
                ex, proc, receive, start, err, row = running[sentinel]
                if sentinel in done:
                    try:
                        result = receive.recv() if receive.poll() else None
                    except EOFError:  # the child died before sending (poll() also reports a closed pipe)
                        result = None
                    proc.join()
                    seconds = round(now - start, 2)
                    if result is None:
                        tail = Path(err).read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:]
                        rows[ex.id] = {**row, "status": "crashed", "message": (" ".join(tail) or
                                       say(f"退出码 {proc.exitcode}", f"exit code {proc.exitcode}"))[:300], "seconds": seconds}
                    else:
                        points = ex.points if result["status"] == "passed" else 0
                        rows[ex.id] = {**row, **result, "points": points, "seconds": seconds}
                elif now - start >= timeout:
                    proc.kill()
                    proc.join()
                    rows[ex.id] = {**row, "status": "timed out", "message": timed_out_message(timeout), "seconds": timeout}
                else:
                    continue
                receive.close()
                del running[sentinel]
    return [rows[e.id] for e in chosen]


def default_isolation() -> str:
    """'fork' on Linux (torch is imported once, each exercise still runs in its own process), else 'process'."""
    return "fork" if sys.platform.startswith("linux") else "process"


def choose(only=None) -> list[Exercise]:
    """The exercises named in ``only`` (all when empty), in registry order; ValueError for an unknown id."""
    for name in only or ():
        by_id(name)
    return [e for e in EXERCISES if not only or e.id in only]


def grade_all(student_dir: Path, out_dir: Path | None = None, timeout: float = 60.0, only=None, jobs: int = 2,
              isolation: str | None = None) -> list[dict]:
    """Grade every exercise (or those named in ``only``); write results.csv and results.json to out_dir.

    isolation: 'process' starts a fresh Python per exercise; 'fork' (the default on Linux) forks one
    from this process after importing torch and the chapters' libraries once — faster, equally isolated."""
    timeout, jobs = check_timeout(timeout), check_jobs(jobs)
    isolation = isolation or default_isolation()
    if isolation not in ("fork", "process"):
        raise ValueError(f"isolation: expected 'fork' or 'process', received {isolation!r}")
    student_dir = Path(student_dir).resolve()  # the exercises run with the student's folder as working directory
    if not student_dir.is_dir():
        raise FileNotFoundError(f"student directory not found: {student_dir}")
    chosen = choose(only)
    if isolation == "fork":
        rows = grade_forked(chosen, student_dir, timeout, jobs)
    else:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
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


def format_table(rows: list[dict], hints: bool = False) -> str:
    """The results as a text table; ``hints`` adds each failed exercise's hint (Chinese, then English)."""
    lines = [f"{'exercise':<24} {'points':>7}  {'result':<10} message", "-" * 78]
    for r in rows:
        lines.append(f"{r['exercise']:<24} {r['points']:>3}/{r['max_points']:<3}  {r['status']:<10} {r['message']}")
        if hints and r["status"] != "passed":
            ex = by_id(r["exercise"])
            lines += [f"{'':<38}提示：{ex.hint_zh}", f"{'':<38}Hint: {ex.hint_en}"]
    total, possible = sum(r["points"] for r in rows), sum(r["max_points"] for r in rows)
    lines += ["-" * 78, f"{'total':<24} {total:>3}/{possible:<3}"]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- the self-check


def find_chapter(target: str, folder: Path) -> tuple[Path, str]:
    """(folder, chapter file name) for what a student types: 'ch02', '2', '02', 'ch02_attention',
    'ch02_attention.py', or a path to the file. ValueError naming what was expected otherwise."""
    path = Path(target)
    if path.suffix == ".py" and (path.is_file() or path.parent != Path(".")):
        folder, target = path.parent, path.name
    key = target[:-3] if target.endswith(".py") else target
    key = key.lower().removeprefix("ch")
    number = key.split("_")[0]
    names = sorted({e.chapter for e in EXERCISES})
    matches = [n for n in names if number.isdigit() and int(n[2:4]) == int(number)
               and (key == number or n[:-3] == "ch" + key)]
    if not matches:
        raise ValueError(f"chapter: expected one with exercises ({', '.join(n[:4] for n in names)}) "
                         f"or its file name, received {target!r}")
    return Path(folder), matches[0]


def self_check(target: str, folder: Path = Path("."), timeout: float = 60.0, jobs: int = 2,
               isolation: str | None = None) -> list[dict]:
    """Grade the exercises of one chapter in the student's own copy (nothing written to disk)."""
    folder, chapter = find_chapter(target, Path(folder))
    if not (folder / chapter).is_file():
        raise FileNotFoundError(f"{chapter} not found in {folder.resolve()}: run the check in your chapters folder, "
                                f"or give --dir FOLDER")
    only = [e.id for e in EXERCISES if e.chapter == chapter]
    return grade_all(folder, None, timeout, only, jobs, isolation)
