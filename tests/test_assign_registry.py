"""The exercise registry against the chapters: every solution region is a registered exercise and
every exercise has its region (one to one); each exercise's statement, hint and difficulty stand in
its chapter cell in Chinese and English; what it forbids resolves; the student version does not
import the library function an exercise re-implements before the exercise, and the code cell just
before an exercise does not call it; docs/teaching.md's table is the registry's."""
from __future__ import annotations

import ast
import re
import unicodedata
from pathlib import Path

import pytest

from chapters.assign.exercises import EXERCISES, LIBRARY_PACKAGES, Exercise, is_library_name, markdown_table
from chapters.assign.markers import BEGIN_SOLUTION
from chapters.assign.student import build_student_version
from chapters.assign.tripwire import REQUIRED_PACKAGES, resolve

REPO = Path(__file__).resolve().parents[1]
CHAPTERS = REPO / "chapters"
CHAPTER_FILES = sorted(CHAPTERS.glob("ch[0-9][0-9]_*.py"))


def solution_regions(path: Path) -> list[str]:
    """The name of the top-level function enclosing each ### BEGIN SOLUTION of ``path``, in order."""
    names, current = [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"(?:async )?def (\w+)\(", line)
        if m:
            current = m.group(1)
        elif line and not line[0].isspace() and not line.startswith(("#", "@", ")")):
            current = None
        if line.strip() == BEGIN_SOLUTION:
            names.append(current)
    return names


def cells(text: str) -> list[str]:
    """The percent-format cells of a chapter, each with its '# %%' line."""
    out: list[list[str]] = []
    for line in text.splitlines(keepends=True):
        if line.startswith("# %%") or not out:
            out.append([])
        out[-1].append(line)
    return ["".join(c) for c in out]


def exercise_cell_index(parts: list[str], ex: Exercise) -> tuple[int, int]:
    """(index of the markdown cell that states the exercise, index of the code cell that defines it)."""
    code = next(i for i, c in enumerate(parts) if re.search(rf"^def {ex.function}\(", c, re.M))
    md = max(i for i in range(code) if parts[i].startswith("# %% [markdown]") and "### Exercise" in parts[i])
    return md, code


def squeeze(text: str) -> str:
    """Markdown cell text or a statement without '# ' prefixes and without any whitespace."""
    text = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in text.splitlines())
    return "".join(ch for ch in text if not ch.isspace())


def has_cjk(text: str) -> bool:
    return any(unicodedata.east_asian_width(ch) == "W" and "CJK" in unicodedata.name(ch, "") for ch in text)


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    build_student_version(out)
    return out


# ----------------------------------------------------------------------------- one to one


def test_every_solution_region_is_a_registered_exercise_and_back():
    regions = [(p.name, name) for p in CHAPTER_FILES for name in solution_regions(p)]
    registered = [(e.chapter, e.function) for e in EXERCISES]
    assert None not in {name for _, name in regions}, "a solution region outside a top-level function"
    assert len(regions) == len(set(regions)), "a function with two solution regions"
    assert sorted(regions) == sorted(registered), (sorted(set(regions) - set(registered)), sorted(set(registered) - set(regions)))
    assert len({e.id for e in EXERCISES}) == len(EXERCISES) and len(set(registered)) == len(registered)


def test_the_one_to_one_test_would_catch_an_unregistered_region(tmp_path):
    extra = tmp_path / "ch99_extra.py"
    extra.write_text("def f(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n\n\ndef g():\n    pass\n",
                     encoding="utf-8")
    assert solution_regions(extra) == ["f"]
    assert ("ch99_extra.py", "f") not in {(e.chapter, e.function) for e in EXERCISES}


def test_at_least_28_exercises_cover_every_chapter_with_code():
    assert len(EXERCISES) >= 28
    with_code = {p.name for p in CHAPTER_FILES if re.search(r"^def \w+\(", p.read_text(encoding="utf-8"), re.M)}
    assert with_code == {e.chapter for e in EXERCISES}, with_code - {e.chapter for e in EXERCISES}
    for name in ("ch05_positions.py", "ch06_encoder.py", "ch07_seq2seq.py", "ch14_interpretability.py"):
        assert any(e.chapter == name for e in EXERCISES), name


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda e: e.id)
def test_each_exercise_is_fully_described(ex):
    assert 1 <= ex.stars <= 3 and ex.difficulty == "★" * ex.stars
    assert ex.points >= 1 and 1 <= ex.minutes <= 120
    for text in (ex.en, ex.hint_en):
        assert len(text) > 20 and not has_cjk(text), text
    for text in (ex.zh, ex.hint_zh):
        assert has_cjk(text), text
    assert ex.refused, "every exercise forbids something"
    assert all(is_library_name(n) for n in ex.replaces), ex.replaces
    assert (CHAPTERS / ex.chapter).is_file() and ex.check == f"check_{ex.function}"


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda e: e.id)
def test_what_an_exercise_forbids_resolves(ex):
    for name in ex.refused:
        found = resolve(name)
        if found is None:  # only an optional package may be missing
            assert name.split(".")[0] not in REQUIRED_PACKAGES + LIBRARY_PACKAGES, name
        else:
            assert callable(found[2]) or isinstance(found[2], (staticmethod, classmethod)), name


def test_a_name_that_does_not_resolve_is_refused_with_a_message():
    with pytest.raises(ValueError, match="torch.nn.functional has no attribute 'no_such_function'"):
        resolve("torch.nn.functional.no_such_function")
    with pytest.raises(ValueError, match="expected a dotted path"):
        resolve("torch")
    assert resolve("no_such_package_xyz.f") is None  # an optional package that is not installed


# ----------------------------------------------------------------------------- the chapter cells


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda e: e.id)
def test_the_chapter_states_the_exercise_in_both_languages(ex):
    parts = cells((CHAPTERS / ex.chapter).read_text(encoding="utf-8"))
    md, code = exercise_cell_index(parts, ex)
    # a bilingual chapter states the exercise in a pair: lang="zh" (Chinese) just before lang="en" (English)
    zh = parts[md - 1] if parts[md].startswith('# %% [markdown] lang="en"') else parts[md]
    assert zh.startswith('# %% [markdown] lang="zh"'), (ex.id, "the exercise needs its zh cell just before the en cell")
    for cell_text, texts in ((zh, (ex.zh, ex.hint_zh)), (parts[md], (ex.en, ex.hint_en))):
        cell = squeeze(cell_text)
        for what in texts:
            assert squeeze(what) in cell, (ex.id, what[:60])
        assert squeeze(f"**`{ex.function}`** · {ex.difficulty} ·") in cell
        assert f"python -m chapters.assign check {ex.chapter_key}" in cell_text


def imported_objects_before(path: Path, line: int) -> list[tuple[str, object]]:
    """(what the statement imports, the object) for every top-level import above ``line``."""
    import importlib

    found = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if node.lineno >= line:
            break
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            module = importlib.import_module(node.module)
            for alias in node.names:
                if hasattr(module, alias.name):
                    found.append((f"{node.module}.{alias.name}", getattr(module, alias.name)))
    return found


def replaced_objects(ex: Exercise) -> list[tuple[str, object]]:
    """The library functions and classes the exercise re-implements (methods excluded: their class stays)."""
    out = []
    for name in ex.replaces:
        owner, _, obj = resolve(name)
        if not isinstance(owner, type):
            out.append((name, obj))
    return out


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda e: e.id)
def test_the_student_version_does_not_import_what_an_exercise_reimplements_before_it(student_dir, ex):
    path = student_dir / ex.chapter
    line = next(i for i, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                if text.startswith(f"def {ex.function}("))
    imported = imported_objects_before(path, line)
    for name, obj in replaced_objects(ex):
        clashes = [what for what, o in imported if o is obj]
        assert not clashes, f"{ex.chapter} imports {clashes} (= {name}) before exercise {ex.id}"


def called_names(ex: Exercise) -> list[str]:
    """Patterns of a call to each forbidden library function as a chapter would write it: a bare
    'make_nsp_pair(' (not 'F.layer_norm(' for the library's layer_norm), or '.forward(' for a method."""
    out = []
    for name in ex.refused:
        if is_library_name(name):
            owner, attr, _ = resolve(name)
            out.append(rf"\.{attr}\(" if isinstance(owner, type) else rf"(?<![\w.]){attr}\(")
    return out


def calls_in_cell_before(text: str, ex: Exercise) -> list[str]:
    """The lines of the code cell just before the exercise's statement that call what it forbids."""
    parts = cells(text)
    md, _ = exercise_cell_index(parts, ex)
    before = max(i for i in range(md) if not parts[i].startswith("# %% [markdown]"))
    return [line.strip() for line in parts[before].splitlines()
            if not line.lstrip().startswith("#") and any(re.search(call, line) for call in called_names(ex))]


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda e: e.id)
def test_the_code_cell_just_before_an_exercise_does_not_call_what_it_forbids(student_dir, ex):
    hits = calls_in_cell_before((student_dir / ex.chapter).read_text(encoding="utf-8"), ex)
    assert not hits, f"{ex.chapter}: the cell before exercise {ex.id} calls what it forbids: {hits[:2]}"


def test_the_cell_test_sees_the_call_the_issue_found():
    """The layout the issue reported: the cell before Exercise 2.1 showing the library call."""
    ex = next(e for e in EXERCISES if e.id == "attention_masks")
    text = ("# %%\nfrom minitransformer.attention import scaled_dot_product_attention\n\n"
            "# %%\nout = scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=True)\n\n"
            "# %% [markdown]\n# ### Exercise 2.1 — masked attention\n\n"
            "# %%\ndef masked_attention(q, k, v, mask=None, is_causal=False):\n    raise NotImplementedError\n")
    assert calls_in_cell_before(text, ex) == ["out = scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=True)"]


# ----------------------------------------------------------------------------- docs/teaching.md


def test_teaching_md_holds_the_registrys_table():
    text = (REPO / "docs" / "teaching.md").read_text(encoding="utf-8")
    begin, end = "<!-- exercises: generated by `python -m chapters.assign table` -->", "<!-- end of exercises -->"
    assert begin in text and end in text
    table = text.split(begin, 1)[1].split(end, 1)[0].strip()
    assert table == markdown_table(), "docs/teaching.md is out of date: paste `python -m chapters.assign table`"
    for e in EXERCISES:
        assert f"| {e.id} |" in table
    assert f"**{len(EXERCISES)} exercises**" in table
