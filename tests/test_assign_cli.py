"""The assign command line: `build` refuses the folders it must not write to and writes the students'
README; `grade --timeout` takes only a positive finite number; `check` grades one chapter of the
student's own copy without showing a solution; both isolation modes grade alike and survive a crash."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chapters.assign.exercises import EXERCISES
from chapters.assign.grade import find_chapter, grade_all
from chapters.assign.markers import BEGIN_SOLUTION
from chapters.assign.student import BUILD_MARKER, build_student_version, check_build_target

REPO = Path(__file__).resolve().parents[1]
CHAPTERS = REPO / "chapters"
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}


def assign(*args, cwd=REPO, timeout=300):
    return subprocess.run([sys.executable, "-m", "chapters.assign", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=ENV, timeout=timeout)


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.glob("*.py")):
        h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("built") / "student"
    build_student_version(out)
    return out


# ----------------------------------------------------------------------------- build


def test_build_refuses_the_source_chapters_and_leaves_them_intact():
    before = digest(CHAPTERS)
    for target in (CHAPTERS, CHAPTERS / "student", CHAPTERS / "." ):
        proc = assign("build", target)
        assert proc.returncode == 2, proc.stdout
        assert "expected a folder outside the source chapters" in proc.stderr and "Traceback" not in proc.stderr
    proc = assign("build", CHAPTERS, "--force")  # --force never allows overwriting the solutions
    assert proc.returncode == 2 and "overwrite the solutions" in proc.stderr
    assert digest(CHAPTERS) == before
    assert all(BEGIN_SOLUTION in (CHAPTERS / e.chapter).read_text(encoding="utf-8") for e in EXERCISES)


def test_build_refuses_a_file_and_a_foreign_non_empty_folder(tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    proc = assign("build", a_file)
    assert proc.returncode == 2 and "expected a folder for the student version, received the file" in proc.stderr
    assert a_file.read_text() == "mine"
    foreign = tmp_path / "homework"
    foreign.mkdir()
    (foreign / "ch02_attention.py").write_text("# my own work\n")
    proc = assign("build", foreign)
    assert proc.returncode == 2 and "is not empty and is not an earlier student build" in proc.stderr and "--force" in proc.stderr
    assert (foreign / "ch02_attention.py").read_text() == "# my own work\n"
    proc = assign("build", foreign, "--force")
    assert proc.returncode == 0, proc.stderr
    assert "YOUR CODE HERE" in (foreign / "ch02_attention.py").read_text()


def test_build_writes_into_a_new_or_an_earlier_build_folder(tmp_path):
    out = tmp_path / "new" / "student"
    proc = assign("build", out)
    assert proc.returncode == 0, proc.stderr
    assert f"{len(EXERCISES)} exercise regions" in proc.stdout
    assert (out / BUILD_MARKER).is_file()
    (out / "ch01_tokens.py").write_text("stale")
    proc = assign("build", out)  # an earlier build may be rebuilt without --force
    assert proc.returncode == 0, proc.stderr
    assert "YOUR CODE HERE" in (out / "ch01_tokens.py").read_text()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert check_build_target(empty) == empty.resolve()


def test_build_writes_the_students_readme_not_the_instructors(student_dir):
    readme = (student_dir / "README.md").read_text(encoding="utf-8")
    instructors = (CHAPTERS / "README.md").read_text(encoding="utf-8")
    assert readme != instructors and "Writing a chapter" not in readme
    assert readme.index("## 中文") < readme.index("## English")  # Chinese first
    for term in ("词元", "注意力", "层归一化", "python -m chapters.assign check ch02", "python ch02_attention.py",
                 "评分方式", "How grading works", "NotImplementedError"):
        assert term in readme, term
    for e in EXERCISES:  # the exercise list, from the registry
        assert f"`{e.id}`" in readme and e.zh in readme and e.en in readme
    assert "<!-- EXERCISES -->" not in readme
    names = sorted(p.name for p in student_dir.iterdir())
    assert names == sorted([p.name for p in CHAPTERS.glob("ch[0-9][0-9]_*.py")] + ["book.py", "README.md", BUILD_MARKER])


# ----------------------------------------------------------------------------- grade --timeout


@pytest.mark.parametrize("value", ["nan", "0", "-5", "inf", "soon", "-inf"])
def test_grade_timeout_must_be_a_positive_finite_number(tmp_path, value):
    proc = assign("grade", tmp_path, f"--timeout={value}")
    assert proc.returncode == 2
    assert "argument --timeout: expected a finite number > 0" in proc.stderr and repr(value) in proc.stderr


def test_grade_out_that_is_a_file_exits_2_before_grading(tmp_path):
    target = tmp_path / "results"
    target.write_text("keep me", encoding="utf-8")
    proc = assign("grade", CHAPTERS, "--out", target, "--only", "split_heads")
    assert proc.returncode == 2, proc.stderr
    assert "--out: expected a writable folder" in proc.stderr and "is a file" in proc.stderr and "Traceback" not in proc.stderr
    assert target.read_text(encoding="utf-8") == "keep me"


def test_grade_all_refuses_a_bad_timeout_or_jobs_from_python(tmp_path):
    for bad in (float("nan"), 0, -5, float("inf"), "x", True):
        with pytest.raises(ValueError, match="timeout: expected a positive finite number of seconds"):
            grade_all(tmp_path, timeout=bad)
    with pytest.raises(ValueError, match="jobs: expected a positive integer, received 0"):
        grade_all(tmp_path, jobs=0)
    with pytest.raises(ValueError, match="unknown exercise 'nope'"):
        grade_all(tmp_path, only=["nope"])


# ----------------------------------------------------------------------------- check (self-check)


def test_check_on_an_untouched_copy_fails_with_hints_and_no_solution(student_dir):
    proc = assign("check", "ch02", "--dir", student_dir)
    assert proc.returncode == 1, proc.stderr
    assert "not implemented yet (raises NotImplementedError)" in proc.stdout
    assert "提示：" in proc.stdout and "Hint:" in proc.stdout and "0 of 2 exercises pass" in proc.stdout
    solution = (CHAPTERS / "ch02_attention.py").read_text(encoding="utf-8")
    body = solution.split(BEGIN_SOLUTION, 1)[1].splitlines()[1].strip()  # the reference's first solution line
    assert body and body not in proc.stdout


def test_check_runs_in_the_students_folder_and_passes_written_work(student_dir, tmp_path):
    work = tmp_path / "me"
    work.mkdir()
    (work / "ch02_attention.py").write_bytes((CHAPTERS / "ch02_attention.py").read_bytes())  # "written" = the reference
    proc = assign("check", "2", cwd=work)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 of 2 exercises pass" in proc.stdout and "passed" in proc.stdout
    proc = assign("check", "ch03", cwd=work)
    assert proc.returncode == 2 and "ch03_multihead.py not found" in proc.stderr


def test_check_names_chapters_several_ways(tmp_path):
    for target in ("ch02", "2", "02", "ch02_attention", "ch02_attention.py"):
        assert find_chapter(target, tmp_path) == (tmp_path, "ch02_attention.py"), target
    assert find_chapter(str(tmp_path / "ch14_interpretability.py"), Path(".")) == (tmp_path, "ch14_interpretability.py")
    for bad in ("ch99", "attention", "ch02_other"):
        with pytest.raises(ValueError, match="chapter: expected one with exercises"):
            find_chapter(bad, tmp_path)
    proc = assign("check", "ch99")
    assert proc.returncode == 2 and "expected one with exercises" in proc.stderr


# ----------------------------------------------------------------------------- isolation


def test_both_isolation_modes_grade_alike_and_survive_a_crash(tmp_path):
    ex = next(e for e in EXERCISES if e.id == "gelu")
    other = next(e for e in EXERCISES if e.id == "feed_forward")
    text = (CHAPTERS / ex.chapter).read_text(encoding="utf-8")
    text = text.replace("    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))\n", "    import os\n    os._exit(3)\n", 1)
    (tmp_path / ex.chapter).write_text(text, encoding="utf-8")
    results = {}
    for isolation in ("fork", "process"):
        rows = {r["exercise"]: r for r in grade_all(tmp_path, None, 30, [ex.id, other.id], 2, isolation)}
        assert rows[ex.id]["status"] == "crashed" and rows[ex.id]["points"] == 0, rows[ex.id]
        assert rows[other.id]["status"] == "passed" and rows[other.id]["points"] == other.points, rows[other.id]
        results[isolation] = {k: (r["status"], r["points"]) for k, r in rows.items()}
    assert results["fork"] == results["process"]
    with pytest.raises(ValueError, match="isolation: expected 'fork' or 'process', received 'thread'"):
        grade_all(tmp_path, isolation="thread")
