"""Classroom assignments from the chapters.

    python -m chapters.assign build OUT/            write the student version of the chapters
    python -m chapters.assign grade STUDENT_DIR     grade a student's copy (table, CSV, JSON)
    python -m chapters.assign list                  the exercises, points and statements
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from minitransformer.cli import run_cli

from .exercises import EXERCISES
from .grade import CHAPTERS_DIR, format_table, grade_all
from .markers import build


def build_student_version(out: Path) -> dict[str, int]:
    """Student copies of the chapter files (chNN_*.py, book.py, README.md); the assign tool stays out."""
    out = Path(out)
    regions = build(CHAPTERS_DIR, out, patterns=("ch*.py", "book.py", "README.md"))
    return {k: v for k, v in regions.items() if not k.startswith("assign")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m chapters.assign", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="write the student version to OUT")
    b.add_argument("out", type=Path)
    g = sub.add_parser("grade", help="grade a student's copy of the chapters")
    g.add_argument("student_dir", type=Path)
    g.add_argument("--out", type=Path, default=None, help="where to write results.csv/json (default STUDENT_DIR/grades)")
    g.add_argument("--timeout", type=float, default=60.0, help="seconds per exercise (default 60)")
    g.add_argument("--only", nargs="*", help="grade only these exercise ids")
    g.add_argument("--jobs", type=int, default=2, help="exercises graded at once (default 2)")
    sub.add_parser("list", help="list the exercises")
    args = ap.parse_args(argv)
    if args.cmd == "build":
        regions = build_student_version(args.out)
        n = sum(regions.values())
        print(f"wrote {len(regions)} files with {n} exercise regions to {args.out}")
        return 0
    if args.cmd == "grade":
        rows = grade_all(args.student_dir, args.out or args.student_dir / "grades", args.timeout, args.only, args.jobs)
        print(format_table(rows))
        return 0
    for e in EXERCISES:
        print(f"{e.id:<24} {e.points:>2} pts  ~{e.minutes} min  {e.chapter}:{e.function}\n    {e.en}\n    {e.zh}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="chapters.assign"))
