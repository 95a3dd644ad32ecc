"""Run the chapters, each in its own Python process, and print a summary table.

    python -m chapters                    every chapters/chNN_*.py, in order (default mode)
    python -m chapters --fast             the same code with fewer steps (what the tests run)
    python -m chapters --only 02 05       just these chapters
    python -m chapters --list             list the chapters and exit
    python -m chapters --out DIR          figures under DIR/chNN_name/ (default out/)
    python -m chapters --seed 3           every chapter with ch.seed = 3 (each seed ch.seed_for(k) = k + 3000)
    python -m chapters --threads 2        every chapter with torch.set_num_threads(2) (default 1)
    python -m chapters --lang zh          checks, tables and these messages in Chinese (--lang en: English)
    python -m chapters --jobs 2           two chapters at a time (default: one per CPU, see below)

--seed and --threads reach each chapter as CHAPTERS_SEED and CHAPTERS_THREADS (chapters.book reads
them); without them a chapter runs with seed 0 and one thread, the numbers the book prints. A seed
must be a non-negative integer, a thread count a positive one. --lang (zh or en) reaches each chapter
as CHAPTERS_LANG; without it the language is CHAPTERS_LANG's, else the locale's (LANG=zh_CN.UTF-8
gives zh), else English. The summary rows (--json) keep their English status words either way.

--jobs N runs up to N chapters at once, each in its own process at its own thread count, so the
numbers are those of a run one at a time. The default fills the CPUs this process may use with
chapters of --threads threads each (usable CPUs // threads, at least 1): on a 2-core laptop two
one-thread chapters at a time, idle or busy. It does not back off when other programs are busy: the
chapters never oversubscribe the cores themselves, and the kernel shares the cores among all runnable
threads, so with two other CPU-bound processes on 2 cores two chapters get half the CPU (the book
takes 2× as long) where one would get a third (3×; bench/book_under_load.py measures both).
--jobs 1 leaves a busy machine a core. A chapter that reads another's
output (ch10 fine-tunes the models ch08 saves) starts after it, and chapters that others need start
first. With more than one job, each chapter's output is printed as one block when it finishes.

Exit status: 0 when every chapter finished and reported at least one check, 1 otherwise
(the failing chapter's last lines are shown), 2 for bad options (a --timeout that is not a finite number
of seconds > 0, a --lang that is not zh or en, an --out or --json that cannot be written: checked before
any chapter runs).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

from chapters.render import cells
from minitransformer.cli import usable_cpus
from chapters.options import (LANGS, check_output_dir, check_output_file, default_lang, option_count, parse_count,
                              parse_lang, parse_seconds, tr)

CHAPTERS_DIR = Path(__file__).resolve().parent
REPO_ROOT = CHAPTERS_DIR.parent
PATTERN = re.compile(r"^ch(\d+)_\w+\.py$")
SUMMARY_PREFIX = "@@CHAPTER "  # printed by chapters.book.Chapter.done()
TAIL_LINES = 25
# seconds a chapter may run before it counts as hung: ch15, the longest, takes 187 s on 2 idle cores
# and more than 300 s (the old default) beside two busy processes (bench/book_under_load.py)
DEFAULT_TIMEOUT = 1800.0
# chapters that read another chapter's --out folder, by number: ch10 §1 and §4 fine-tune the models
# ch08 §5 and §8 save, ch16 §5 distils ch08 §8's (each pretrains them itself when it finds none)
NEEDS = {10: (8,), 16: (8,)}


def find_chapters(folder: Path) -> list[Path]:
    """chNN_*.py files in ``folder``, ordered by number."""
    files = [p for p in Path(folder).iterdir() if p.is_file() and PATTERN.match(p.name)]
    return sorted(files, key=lambda p: (int(PATTERN.match(p.name).group(1)), p.name))


def chapter_number(path: Path) -> int:
    return int(PATTERN.match(path.name).group(1))


def chapter_title(path: Path, lang: str | None = None) -> str:
    """The first markdown heading of the chapter (``# # Title`` inside a markdown cell), in ``lang``
    when its markdown cells carry ``lang="zh"`` / ``lang="en"`` (cells without one count for both)."""
    return cells.title(cells.read_cells(path), lang)


def select(chapters: list[Path], only: list[str] | None) -> list[Path]:
    """Keep the chapters whose number is in ``only`` ("02", "2", "ch02" all mean chapter 2)."""
    if not only:
        return chapters
    wanted = []
    for item in only:
        m = re.fullmatch(r"(?:ch)?(\d+)(?:_\w*)?(?:\.py)?", item.strip())
        if not m:
            raise ValueError(f"--only: expected chapter numbers such as 02 or ch02, received {item!r}")
        wanted.append(int(m.group(1)))
    available = {chapter_number(p) for p in chapters}
    missing = sorted(set(wanted) - available)
    if missing:
        have = ", ".join(f"{n:02d}" for n in sorted(available)) or "none"
        raise ValueError(f"--only: no chapter numbered {', '.join(f'{n:02d}' for n in missing)}; available: {have}")
    return [p for p in chapters if chapter_number(p) in wanted]


def default_jobs(threads_per_chapter: int, cpus: int | None = None) -> int:
    """Chapters to run at once: as many as fill the usable CPUs at ``threads_per_chapter`` threads
    each, at least 1. ``cpus``: the CPU count (default :func:`minitransformer.cli.usable_cpus`)."""
    cpus = usable_cpus() if cpus is None else cpus
    return max(1, cpus // max(1, threads_per_chapter))


def run_chapter(path: Path, out: Path, fast: bool, timeout: float, stream: bool,
                seed: int | None = None, threads: int | None = None, lang: str | None = None,
                lines: list[str] | None = None) -> dict:
    """Run one chapter in a subprocess. Returns a row: chapter, status, checks, figures, seconds, tail
    (and values, the chapter's ch.check_value records). seed, threads, lang: passed as CHAPTERS_SEED,
    CHAPTERS_THREADS and CHAPTERS_LANG (None: those of this process's environment, if any).
    ``lines``: a list that receives every output line (for printing later), or None."""
    try:
        (out / path.stem).mkdir(parents=True, exist_ok=True)
    except OSError as e:  # e.g. out/chNN_name exists as a file
        return {"chapter": path.stem, "seconds": 0.0, "checks": 0, "figures": 0, "returncode": None,
                "status": f"FAILED (cannot create {out / path.stem}: {e.strerror or e})", "tail": []}
    cmd = [sys.executable, str(path), "--out", str(out / path.stem)] + (["--fast"] if fast else [])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["MPLBACKEND"] = "Agg"
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    env.pop("CHAPTERS_OUT", None)  # --out decides
    if seed is not None:
        env["CHAPTERS_SEED"] = str(seed)
    if threads is not None:
        env["CHAPTERS_THREADS"] = str(threads)
    if lang is not None:
        env["CHAPTERS_LANG"] = lang
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    summary: dict | None = None
    passed = 0  # ✓ lines seen, so a chapter that fails half-way still shows how far it got

    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=str(REPO_ROOT), env=env,
                            text=True, encoding="utf-8", errors="replace")

    def pump():
        nonlocal summary, passed
        for line in proc.stdout:
            line = line.rstrip("\n")
            passed += line.startswith("✓ ")
            if line.startswith(SUMMARY_PREFIX):
                try:
                    summary = json.loads(line[len(SUMMARY_PREFIX):])
                except json.JSONDecodeError:
                    pass
                continue
            tail.append(line)
            if lines is not None:
                lines.append(line)
            if stream:
                print(f"  {line}", flush=True)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    timed_out = False
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        proc.kill()
        rc = proc.wait()
    reader.join(timeout=5)
    seconds = time.perf_counter() - t0

    row = {"chapter": path.stem, "seconds": round(seconds, 2), "checks": passed, "figures": 0, "returncode": rc}
    if summary:
        row["checks"] = int(summary.get("checks", 0))
        row["figures"] = len(summary.get("figures", []))
        row["figure_names"] = list(summary.get("figures", []))
        row["values"] = list(summary.get("values", []))
    if timed_out:
        row["status"] = f"TIMEOUT after {timeout:g} s"
    elif rc != 0:
        row["status"] = f"FAILED (exit {rc})"
    elif summary is None:
        row["status"] = "FAILED (no @@CHAPTER line: the chapter must end with ch.done())"
    elif row["checks"] < 1:
        row["status"] = "FAILED (no checks: a chapter must verify something)"
    else:
        row["status"] = "ok"
    row["tail"] = list(tail)
    return row


def run_all(chapters: list[Path], jobs: int, run, done) -> list[dict]:
    """``run(path) -> row`` for every chapter, at most ``jobs`` at a time; a chapter starts after the
    selected chapters it NEEDS have finished; with ``jobs`` > 1 the chapters that others need start
    first (one at a time, the chapter order).
    ``done(path, row)`` is called as each finishes (one at a time). Returns the rows in chapter order."""
    number = {p: chapter_number(p) for p in chapters}
    selected = set(number.values())
    needs = {p: {n for n in NEEDS.get(number[p], ()) if n in selected} for p in chapters}
    needed = {n for ns in needs.values() for n in ns}
    rows, finished, started = {}, set(), []
    cond = threading.Condition()

    def work(p: Path) -> None:
        row = run(p)
        with cond:
            rows[p] = row
            finished.add(number[p])
            done(p, row)
            cond.notify_all()

    with cond:
        while len(rows) < len(chapters):
            ready = [p for p in chapters if p not in started and needs[p] <= finished]
            if ready and len(started) - len(rows) < jobs:
                p = min(ready, key=lambda q: (jobs > 1 and number[q] not in needed, number[q]))
                started.append(p)
                threading.Thread(target=work, args=(p,), daemon=True).start()
            else:
                cond.wait()
    return [rows[p] for p in chapters]


def status_text(status: str, lang: str = "en") -> str:
    """A row's status (always English in the rows and --json) as the runner prints it in ``lang``."""
    if lang != "zh":
        return status
    if status == "ok":
        return "通过"
    words = [("TIMEOUT after ", "超时："), (" s", " 秒"), ("FAILED (exit ", "失败（退出码 "),
             ("FAILED (no @@CHAPTER line: the chapter must end with ch.done())", "失败（没有 @@CHAPTER 行：章节必须以 ch.done() 结束）"),
             ("FAILED (no checks: a chapter must verify something)", "失败（没有检查：章节必须验证点什么）"),
             ("FAILED (cannot create ", "失败（无法创建 ")]
    for en, zh in sorted(words, key=lambda w: -len(w[0])):
        status = status.replace(en, zh)
    return status.replace(")", "）")


def _width(text: str) -> int:
    """Columns a string takes in a terminal (CJK characters take two)."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int, right: bool = False) -> str:
    fill = " " * max(0, width - _width(text))
    return fill + text if right else text + fill


def format_table(rows: list[dict], lang: str = "en") -> str:
    heads = [tr(lang, "章节", "chapter"), tr(lang, "检查", "checks"), tr(lang, "时间", "time"),
             tr(lang, "图", "figures"), tr(lang, "状态", "status")]
    unit = tr(lang, "秒", "s")
    width = max([_width(heads[0]), _width(tr(lang, "合计", "total"))] + [len(r["chapter"]) for r in rows])
    rule = "-" * (width + 40)

    def line(name, checks, seconds, figures, status):
        return (f"{_pad(name, width)}  {_pad(str(checks), 6, True)}  {_pad(seconds, 8, True)}  "
                f"{_pad(str(figures), 7, True)}  {status}")

    lines = [line(*heads), rule]
    for r in rows:
        lines.append(line(r["chapter"], r["checks"], f"{r['seconds']:.1f} {unit}", r["figures"], status_text(r["status"], lang)))
    total = sum(r["seconds"] for r in rows)
    n_ok = sum(r["status"] == "ok" for r in rows)
    lines += [rule, line(tr(lang, "合计", "total"), sum(r["checks"] for r in rows), f"{total:.1f} {unit}",
                         sum(r["figures"] for r in rows), tr(lang, f"{n_ok}/{len(rows)} 通过", f"{n_ok}/{len(rows)} ok"))]
    return "\n".join(lines)


def write_summary(path: Path, rows: list[dict], fast: bool, seed, threads, lang: str | None = None) -> bool:
    """Write the --json summary; on an OSError (the folder vanished, the disk is full) print one
    line naming the path and return False instead of raising."""
    summary = {"fast": fast, "seed": seed, "threads": threads, "lang": lang,
               "chapters": [{k: v for k, v in r.items() if k != "tail"} for r in rows]}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    except OSError as e:
        print(f"python -m chapters: error: --json {path}: cannot write it ({e.strerror or e})", file=sys.stderr)
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m chapters", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fast", action="store_true", help="fewer steps (each chapter well under 10 s)")
    ap.add_argument("--only", nargs="+", metavar="NN", help="run only these chapter numbers, e.g. --only 02 05")
    ap.add_argument("--out", type=Path, default=Path("out"), help="folder for figures, one subfolder per chapter (default out/)")
    ap.add_argument("--list", action="store_true", help="list the chapters and exit")
    ap.add_argument("--dir", type=Path, default=CHAPTERS_DIR, help="where the chNN_*.py files are (default: this package)")
    ap.add_argument("--timeout", default=None, metavar="SECONDS",
                    help=f"seconds allowed per chapter (a finite number > 0; default {DEFAULT_TIMEOUT:g})")
    ap.add_argument("--quiet", action="store_true", help="do not stream the chapters' output, only the summary")
    ap.add_argument("--json", type=Path, default=None, help="also write the summary rows to this JSON file")
    ap.add_argument("--seed", default=None, metavar="N",
                    help="run every chapter with this seed (non-negative integer; default 0, or CHAPTERS_SEED)")
    ap.add_argument("--threads", default=None, metavar="N",
                    help="torch threads per chapter (positive integer; default 1, or CHAPTERS_THREADS)")
    ap.add_argument("--jobs", default=None, metavar="N",
                    help="chapters run at once (positive integer; default: the usable CPUs // --threads, at least 1)")
    ap.add_argument("--lang", default=None, metavar="|".join(LANGS),
                    help="language of the chapters' output and of this runner's messages: zh (中文) or en "
                         "(English); default CHAPTERS_LANG, else zh when the locale (LANG) starts with zh, else en")
    args = ap.parse_args(argv)

    try:
        lang = parse_lang("--lang", args.lang) if args.lang is not None else default_lang()
        seed = None if args.seed is None else parse_count("--seed", args.seed, 0)
        threads = None if args.threads is None else parse_count("--threads", args.threads, 1)
        timeout = DEFAULT_TIMEOUT if args.timeout is None else parse_seconds("--timeout", args.timeout)
        jobs = (default_jobs(option_count(args.threads, "CHAPTERS_THREADS", "--threads", 1, 1)) if args.jobs is None
                else parse_count("--jobs", args.jobs, 1))
    except ValueError as e:
        ap.error(str(e))

    if not args.dir.is_dir():
        ap.error(f"--dir: expected a folder of chNN_*.py chapters, received {args.dir}")
    try:
        chapters = select(find_chapters(args.dir), args.only)
    except ValueError as e:
        ap.error(str(e))
    if not chapters:
        ap.error(f"no chNN_*.py chapters found in {args.dir}")

    if args.list:
        for p in chapters:
            print(f"{p.stem:<24} {chapter_title(p, lang)}")
        return 0

    try:  # before the first chapter runs: a bad --out or --json is refused now, not after an hour
        out = check_output_dir("--out", args.out).resolve()
        if args.json is not None:
            check_output_file("--json", args.json)
    except ValueError as e:
        ap.error(str(e))
    jobs = min(jobs, len(chapters))
    if jobs > 1 and not args.quiet:
        print(tr(lang, f"同时运行 {jobs} 个章节（--jobs）", f"{jobs} chapters at a time (--jobs)"), flush=True)
    header = tr(lang, '（快速模式）', '(fast)') if args.fast else ''
    buffers: dict[Path, list[str]] = {}

    def run(p: Path) -> dict:
        if jobs == 1 and not args.quiet:  # one at a time: stream the output as it comes
            print(f"\n=== {p.stem} {header}", flush=True)
            return run_chapter(p, out, args.fast, timeout, stream=True, seed=seed, threads=threads, lang=lang)
        buffers[p] = []
        return run_chapter(p, out, args.fast, timeout, stream=False, seed=seed, threads=threads, lang=lang,
                           lines=None if args.quiet else buffers[p])

    def done(p: Path, row: dict) -> None:
        if args.quiet:
            print(tr(lang, f"{row['chapter']}：{status_text(row['status'], lang)}（{row['checks']} 项检查，{row['seconds']:.1f} 秒）",
                     f"{row['chapter']}: {row['status']} ({row['checks']} checks, {row['seconds']:.1f} s)"), flush=True)
        elif jobs > 1:  # the chapter's output as one block
            print(f"\n=== {p.stem} {header}\n" + "\n".join(f"  {line}" for line in buffers.pop(p)), flush=True)

    t0 = time.perf_counter()
    rows = run_all(chapters, jobs, run, done)
    wall = time.perf_counter() - t0

    print("\n" + format_table(rows, lang))
    failed = [r for r in rows if r["status"] != "ok"]
    for r in failed:
        print(tr(lang, f"\n--- {r['chapter']}：{status_text(r['status'], lang)}；最后几行输出：",
                 f"\n--- {r['chapter']}: {r['status']}; its last lines:"))
        print("\n".join(f"    {line}" for line in r["tail"]) or tr(lang, "    （没有输出）", "    (no output)"))
    if args.json is not None and not write_summary(args.json, rows, args.fast, seed, threads, lang):
        return 2
    print(tr(lang, f"\n{len(rows) - len(failed)}/{len(rows)} 个章节通过，用时 {wall:.1f} 秒（同时 {jobs} 个）；图保存在 {out}",
             f"\n{len(rows) - len(failed)}/{len(rows)} chapters ok in {wall:.1f} s ({jobs} at a time); figures under {out}"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
