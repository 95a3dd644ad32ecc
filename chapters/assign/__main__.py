"""Classroom assignments from the chapters.

    python -m chapters.assign build OUT/            write the student version of the chapters (and its README)
    python -m chapters.assign grade STUDENT_DIR     grade a student's copy (table, CSV, JSON)
    python -m chapters.assign check ch02            a student's self-check of one chapter, in their own folder
    python -m chapters.assign list                  the exercises: points, difficulty, time, statements, hints
    python -m chapters.assign table                 the exercise table of docs/teaching.md
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from minitransformer.cli import POSITIVE_INT, number, run_cli

from .exercises import EXERCISES, markdown_table
from .grade import format_table, grade_all, self_check
from .student import build_student_version
from chapters.options import check_output_dir

SECONDS = number(0.0, low_open=True)  # a positive finite number: nan, inf, 0 and -5 are usage errors


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m chapters.assign", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="write the student version to OUT")
    b.add_argument("out", type=Path)
    b.add_argument("--force", action="store_true", help="write into a non-empty folder that is not an earlier build")
    g = sub.add_parser("grade", help="grade a student's copy of the chapters")
    g.add_argument("student_dir", type=Path)
    g.add_argument("--out", type=Path, default=None, help="where to write results.csv/json (default STUDENT_DIR/grades)")
    add_run_options(g)
    g.add_argument("--only", nargs="*", help="grade only these exercise ids")
    c = sub.add_parser("check", help="check your own work on one chapter (the grader's checks; no solutions shown)")
    c.add_argument("chapter", help="ch02, 2, ch02_attention or ch02_attention.py")
    c.add_argument("--dir", type=Path, default=Path("."), help="the folder with your chapter files (default: here)")
    add_run_options(c)
    sub.add_parser("list", help="list the exercises")
    sub.add_parser("table", help="print the Markdown table of the exercises (docs/teaching.md)")
    return ap


def add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--timeout", type=SECONDS, default=60.0, help="seconds per exercise, a positive number (default 60)")
    p.add_argument("--jobs", type=POSITIVE_INT, default=2, help="exercises graded at once (default 2)")
    p.add_argument("--isolation", choices=("fork", "process"), default=None,
                   help="each exercise in a process forked after importing torch once (Linux default), "
                        "or in a fresh Python process (elsewhere)")


def list_exercises() -> str:
    lines = []
    for e in EXERCISES:
        lines += [f"{e.id:<22} {e.difficulty:<3} {e.points} pts ~{e.minutes} min  {e.chapter}:{e.function}",
                  f"    {e.zh}", f"    {e.en}", f"    提示：{e.hint_zh}", f"    Hint: {e.hint_en}",
                  f"    不可调用 not allowed: {', '.join(e.refused)}"]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.cmd == "build":
        regions = build_student_version(args.out, force=args.force)
        n = sum(regions.values())
        print(f"wrote {len(regions)} files with {n} exercise regions and README.md to {args.out}")
        return 0
    if args.cmd == "grade":
        out = args.out or args.student_dir / "grades"
        if args.student_dir.is_dir():  # (a missing student folder is grade_all's error, before any folder is made)
            out = check_output_dir("--out", out)  # a file or read-only: exit 2, nothing graded
        rows = grade_all(args.student_dir, out, args.timeout, args.only, args.jobs, args.isolation)
        print(format_table(rows))
        return 0
    if args.cmd == "check":
        rows = self_check(args.chapter, args.dir, args.timeout, args.jobs, args.isolation)
        print(format_table(rows, hints=True))
        passed = sum(r["status"] == "passed" for r in rows)
        print(f"\n{passed} of {len(rows)} exercises pass / 通过 {passed} 道，共 {len(rows)} 道")
        return 0 if passed == len(rows) else 1
    print(markdown_table() if args.cmd == "table" else list_exercises())
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="chapters.assign"))
