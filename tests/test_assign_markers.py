"""The student-version builder: solution regions become `# YOUR CODE HERE` + `raise
NotImplementedError` at the right indentation, hidden tests disappear, everything else is kept
byte for byte, and unpaired markers are refused with file and line."""
import ast

import pytest

from chapters.assign.markers import MarkerError, build, student_version

SOURCE = (
    "# %% [markdown]\n"
    "# Write attention.\n"
    "\n"
    "# %%\n"
    "def f(x):\n"
    "    '''doc'''\n"
    "    ### BEGIN SOLUTION\n"
    "    y = x + 1\n"
    "    return y\n"
    "    ### END SOLUTION\n"
    "\n"
    "\n"
    "class A:\n"
    "    def g(self):\r\n"
    "        ### BEGIN SOLUTION\r\n"
    "        return 2\r\n"
    "        ### END SOLUTION\r\n"
    "\n"
    "### BEGIN HIDDEN TESTS\n"
    "assert f(1) == 2\n"
    "### END HIDDEN TESTS\n"
    "print('après', '中文')\n"
)


def test_solution_regions_are_replaced_with_correct_indentation():
    out, n = student_version(SOURCE)
    assert n == 2
    assert "    # YOUR CODE HERE\n    raise NotImplementedError\n" in out
    assert "        # YOUR CODE HERE\r\n        raise NotImplementedError\r\n" in out
    assert "x + 1" not in out and "return 2" not in out and "assert f(1)" not in out
    assert "BEGIN" not in out and "END" not in out
    ast.parse(out)  # still valid Python
    ns = {}
    exec(compile(out, "<student>", "exec"), ns)
    with pytest.raises(NotImplementedError):
        ns["f"](1)


def test_everything_outside_the_regions_is_kept_byte_for_byte():
    out, _ = student_version(SOURCE)
    lines_in = SOURCE.splitlines(keepends=True)
    kept = [l for i, l in enumerate(lines_in) if not (6 <= i <= 9 or 14 <= i <= 16 or 18 <= i <= 20)]
    inserted = ["    # YOUR CODE HERE\n", "    raise NotImplementedError\n",
                "        # YOUR CODE HERE\r\n", "        raise NotImplementedError\r\n"]
    assert [l for l in out.splitlines(keepends=True) if l not in inserted] == kept


def test_source_without_markers_is_unchanged():
    text = "x = 1\r\n# a comment ### not a marker\nprint('ok')"
    assert student_version(text) == (text, 0)


@pytest.mark.parametrize(
    "text,line,what",
    [
        ("a\n### BEGIN SOLUTION\nb\n", 2, "never closed"),
        ("a\n### END SOLUTION\n", 2, "no region is open"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n", 2, "inside the region"),
        ("### BEGIN SOLUTION\nx\n### END HIDDEN TESTS\n", 3, "expected '### END SOLUTION'"),
    ],
)
def test_unpaired_markers_are_refused_with_file_and_line(text, line, what):
    with pytest.raises(MarkerError, match=rf"ch99\.py:{line}: .*{what}"):
        student_version(text, "ch99.py")


def test_build_writes_nothing_when_any_file_is_bad(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    (src / "ch01_good.py").write_text(SOURCE)
    (src / "ch02_bad.py").write_text("### BEGIN SOLUTION\n")
    with pytest.raises(MarkerError, match="ch02_bad.py:1"):
        build(src, out)
    assert not out.exists()
    (src / "ch02_bad.py").write_text("x = 1\n")
    assert build(src, out) == {"ch01_good.py": 2, "ch02_bad.py": 0}
    assert (out / "ch02_bad.py").read_bytes() == b"x = 1\n"
