"""Write the student version of the chapters into a folder, refusing folders it must not touch.

The folder receives every ``chNN_*.py`` with its solutions replaced (``markers.py``), ``book.py``,
the students' README (``student_README.md`` here, with the exercise list filled in from the
registry) and ``.chapters-assign.json``, which marks the folder as a build so that a later build
may write into it again.
"""
from __future__ import annotations

import json
from pathlib import Path

from .exercises import EXERCISES
from .grade import CHAPTERS_DIR
from .markers import student_version

BUILD_MARKER = ".chapters-assign.json"
README_TEMPLATE = Path(__file__).with_name("student_README.md")
EXERCISES_PLACEHOLDER = "<!-- EXERCISES -->"


def source_files(src: Path = CHAPTERS_DIR) -> list[Path]:
    """The files a student version holds: the chapters and book.py."""
    return sorted(src.glob("ch[0-9][0-9]_*.py")) + [src / "book.py"]


def check_build_target(out: Path, src: Path = CHAPTERS_DIR, force: bool = False) -> Path:
    """``out`` resolved, when a student version may be written there; ValueError saying why not.

    Refused: a path that is a file; the source chapters folder or a folder inside it (the build would
    overwrite the solutions, or mix with them); a non-empty folder that is not an earlier build,
    unless ``force``."""
    out, src = Path(out).resolve(), Path(src).resolve()
    if out.exists() and not out.is_dir():
        raise ValueError(f"build: expected a folder for the student version, received the file {out}")
    if out == src or src in out.parents:
        raise ValueError(f"build: expected a folder outside the source chapters, received {out} — writing there would "
                         f"overwrite the solutions in {src}")
    if out.is_dir() and any(out.iterdir()) and not (out / BUILD_MARKER).is_file() and not force:
        raise ValueError(f"build: {out} is not empty and is not an earlier student build (no {BUILD_MARKER}); expected "
                         f"an empty or new folder — pass --force to write into it anyway")
    return out


def student_readme() -> str:
    """The students' README with the exercise list filled in."""
    return README_TEMPLATE.read_text(encoding="utf-8").replace(EXERCISES_PLACEHOLDER, exercise_list())


def exercise_list() -> str:
    """The exercises by chapter, bilingual, for the students' README."""
    lines = ["| 练习 exercise | 章 chapter | 难度 | 分 points | 约 min | 内容（中文） | statement (English) |",
             "|---|---|---|---|---|---|---|"]
    for e in EXERCISES:
        lines.append(f"| `{e.id}` (`{e.function}`) | `{e.chapter}` | {e.difficulty} | {e.points} | {e.minutes} | "
                     f"{e.zh} | {e.en} |")
    return "\n".join(lines)


def build_student_version(out: Path, force: bool = False, src: Path = CHAPTERS_DIR) -> dict[str, int]:
    """Write the student version to ``out``; {file name: solution regions replaced}.

    Every file is converted before any is written, so a marker error leaves ``out`` untouched."""
    out = check_build_target(out, src, force)
    converted = {p.name: student_version(p.read_bytes().decode("utf-8"), str(p)) for p in source_files(Path(src))}
    out.mkdir(parents=True, exist_ok=True)
    for name, (text, _) in converted.items():
        (out / name).write_bytes(text.encode("utf-8"))
    (out / "README.md").write_text(student_readme(), encoding="utf-8")
    regions = {name: n for name, (_, n) in converted.items()}
    marker = {"built_from": str(Path(src).resolve()), "files": sorted(converted) + ["README.md"],
              "exercises": sum(regions.values())}
    (out / BUILD_MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    return regions
