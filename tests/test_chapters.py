"""The chapters: every one runs in --fast mode and verifies something; the Chapter helper's checks
fail loudly; the runner reports failing chapters; and the exercise checks reject wrong solutions."""
from __future__ import annotations

import ast
import json
import math
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

from chapters.book import Chapter, CheckFailed

REPO = Path(__file__).resolve().parents[1]
CHAPTERS = REPO / "chapters"


def run_runner(*args, timeout=600):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    env.pop("CHAPTERS_FAST", None)
    env.pop("CHAPTERS_OUT", None)
    return subprocess.run([sys.executable, "-m", "chapters", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


# ----------------------------------------------------------------------------- all chapters, fast


ALL_CHAPTERS = sorted(p.stem for p in CHAPTERS.glob("ch[0-9]*_*.py"))


@pytest.mark.parametrize("chapter", ALL_CHAPTERS)
def test_every_chapter_runs_in_fast_mode_and_checks_something(tmp_path, chapter):
    """One runner call per chapter, so pytest-xdist spreads the book over the workers."""
    report = tmp_path / "report.json"
    proc = run_runner("--fast", "--quiet", "--only", chapter[2:4], "--out", tmp_path / "out", "--json", report)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    (row,) = json.loads(report.read_text())["chapters"]
    assert row["chapter"] == chapter
    assert row["status"] == "ok" and row["checks"] >= 1, row
    for name in row.get("figure_names", []):
        assert (tmp_path / "out" / chapter / name).is_file(), (chapter, name)
    assert "chapter" in proc.stdout and "checks" in proc.stdout  # the summary table


# ----------------------------------------------------------------------------- book.py


def test_check_prints_and_counts(capsys, tmp_path):
    ch = Chapter("ch99_demo.py", argv=["--out", str(tmp_path)])
    ch.check("rows sum to 1", True, "max dev 1e-7")
    ones = torch.ones(3, dtype=torch.float64)
    err = ch.check_close("matches torch.nn.LayerNorm", ones, ones + 2.4e-7, atol=1e-5)
    out = capsys.readouterr().out
    assert "✓ rows sum to 1 (max dev 1e-7)" in out
    assert "✓ matches torch.nn.LayerNorm (max abs err 2.4e-07" in out
    assert ch.n_checks == 2 and math.isclose(err, 2.4e-7, rel_tol=1e-3)


def test_failing_check_raises_checkfailed_with_its_name_and_detail(tmp_path):
    ch = Chapter("ch99_demo.py", argv=["--out", str(tmp_path)])
    with pytest.raises(CheckFailed, match=r"rows sum to 1 \(got 0\.9\)"):
        ch.check("rows sum to 1", False, "got 0.9")
    assert issubclass(CheckFailed, AssertionError)
    assert ch.n_checks == 0


@pytest.mark.parametrize(
    "a,b,match",
    [
        (torch.zeros(3), torch.full((3,), 1e-3), r"max abs err 1\.0e-03"),
        (torch.zeros(3), torch.zeros(4), r"shapes differ: \(3,\) vs \(4,\)"),
        (torch.tensor([0.0, float("nan")]), torch.zeros(2), r"NaN present"),
    ],
)
def test_check_close_fails_on_error_shape_or_nan(tmp_path, a, b, match):
    ch = Chapter("ch99_demo.py", argv=["--out", str(tmp_path)])
    with pytest.raises(CheckFailed, match=match):
        ch.check_close("close", a, b, atol=1e-5)


def test_check_close_uses_rtol(tmp_path):
    ch = Chapter("ch99_demo.py", argv=["--out", str(tmp_path)])
    ch.check_close("relative", torch.tensor([1000.0]), torch.tensor([1000.5]), atol=0, rtol=1e-3)
    with pytest.raises(CheckFailed):
        ch.check_close("relative", torch.tensor([1000.0]), torch.tensor([1002.0]), atol=0, rtol=1e-3)


def test_verify_wraps_an_exercise_check(tmp_path):
    ch = Chapter("ch99_demo.py", argv=["--out", str(tmp_path)])

    def check_double(impl):
        assert impl(2) == 4, f"double(2) should be 4, received {impl(2)}"
        return "2 cases"

    assert ch.verify(check_double, lambda x: 2 * x) == "2 cases"
    with pytest.raises(CheckFailed, match=r"check_double.*double\(2\) should be 4, received 3"):
        ch.verify(check_double, lambda x: x + 1)
    assert ch.n_checks == 1


def test_options_from_argv_and_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("CHAPTERS_FAST", raising=False)
    monkeypatch.delenv("CHAPTERS_OUT", raising=False)
    monkeypatch.chdir(tmp_path)
    ch = Chapter("/somewhere/ch07_x.py", argv=["-f", "kernel.json"])  # unknown options are ignored (Jupyter)
    assert not ch.fast and ch.steps(100, 10) == 100 and ch.out == Path("out") / "ch07_x" and ch.out.is_dir()
    ch = Chapter("ch07_x.py", argv=["--fast", "--out", str(tmp_path / "a")])
    assert ch.fast and ch.steps(100, 10) == 10 and ch.out == tmp_path / "a"
    monkeypatch.setenv("CHAPTERS_FAST", "1")
    monkeypatch.setenv("CHAPTERS_OUT", str(tmp_path / "b"))
    ch = Chapter("ch07_x.py", argv=[])
    assert ch.fast and ch.out == tmp_path / "b"


def test_seed_makes_runs_repeat(tmp_path):
    Chapter("ch99.py", seed=3, argv=["--out", str(tmp_path)])
    a = torch.randn(3)
    Chapter("ch99.py", seed=3, argv=["--out", str(tmp_path)])
    assert torch.equal(a, torch.randn(3))


def test_savefig_and_done(tmp_path, capsys):
    from chapters.book import plt

    ch = Chapter("ch99_demo.py", argv=["--out", str(tmp_path)])
    ch.check("one", True)
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    path = ch.savefig(fig, "line")
    assert path == tmp_path / "line.png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plt.get_fignums()  # closed
    summary = ch.done()
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("@@CHAPTER ")
    assert json.loads(last[len("@@CHAPTER "):]) == summary
    assert summary["checks"] == 1 and summary["figures"] == ["line.png"]


# ----------------------------------------------------------------------------- the runner

# The runner's contract is the @@CHAPTER line and the exit status; only BAD goes through
# chapters.book (the all-chapters test above covers book + runner on the success path), so these
# tiny chapters start without importing torch.
GOOD = """\
# %% [markdown]
# # A chapter that passes
# %%
print("✓ one and one make two")
print('@@CHAPTER {"chapter": "ch01_good", "checks": 1, "figures": [], "seconds": 0.0}')
"""
BAD = """\
from chapters.book import Chapter
ch = Chapter(__file__)
print("a line before the failure")
ch.check("rows sum to 1", False, "got 0.9")
ch.done()
"""
NO_DONE = """\
print("✓ fine")
"""
SLOW = """\
import time
time.sleep(30)
"""


def test_runner_reports_a_failing_chapter_and_exits_nonzero(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "ch01_good.py").write_text(GOOD, encoding="utf-8")
    (src / "ch02_bad.py").write_text(BAD, encoding="utf-8")
    (src / "ch03_no_done.py").write_text(NO_DONE, encoding="utf-8")
    (src / "helper.py").write_text("raise SystemExit(9)\n")  # not a chapter: never run
    proc = run_runner("--dir", src, "--out", tmp_path / "out", "--json", tmp_path / "r.json", timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rows = {r["chapter"]: r for r in json.loads((tmp_path / "r.json").read_text())["chapters"]}
    assert list(rows) == ["ch01_good", "ch02_bad", "ch03_no_done"]
    assert rows["ch01_good"]["status"] == "ok" and rows["ch01_good"]["checks"] == 1
    assert rows["ch02_bad"]["status"].startswith("FAILED (exit 1)")
    assert "no @@CHAPTER line" in rows["ch03_no_done"]["status"]
    out = proc.stdout
    assert "--- ch02_bad: FAILED" in out and "✗ rows sum to 1 (got 0.9)" in out and "CheckFailed" in out
    assert "1/3 chapters ok" in out
    assert (tmp_path / "out" / "ch01_good").is_dir()


def test_runner_only_list_and_timeout(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "ch01_good.py").write_text(GOOD, encoding="utf-8")
    (src / "ch02_bad.py").write_text(BAD, encoding="utf-8")
    (src / "ch03_slow.py").write_text(SLOW, encoding="utf-8")
    proc = run_runner("--dir", src, "--only", "01", "--out", tmp_path / "out", timeout=120)
    assert proc.returncode == 0 and "1/1 chapters ok" in proc.stdout, proc.stdout + proc.stderr
    proc = run_runner("--dir", src, "--list")
    assert proc.returncode == 0 and "ch01_good" in proc.stdout and "A chapter that passes" in proc.stdout
    proc = run_runner("--dir", src, "--only", "3", "--timeout", "2", "--out", tmp_path / "out", timeout=120)
    assert proc.returncode == 1 and "TIMEOUT after 2 s" in proc.stdout
    proc = run_runner("--dir", src, "--only", "09")
    assert proc.returncode == 2 and "no chapter numbered 09" in proc.stderr


# ----------------------------------------------------------------------------- exercise checks


def load_definitions(path: Path) -> types.ModuleType:
    """What a grader sees: a chapter's imports, functions, classes and literal constants, no cells."""
    tree = ast.parse(path.read_text(encoding="utf-8"))

    def literal(node):
        try:
            ast.literal_eval(node.value)
            return True
        except ValueError:
            return False

    tree.body = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef))
                 or (isinstance(n, ast.Assign) and literal(n))]
    module = types.ModuleType(path.stem)
    exec(compile(tree, str(path), "exec"), module.__dict__)
    return module


@pytest.fixture(scope="module")
def ch02():
    return load_definitions(CHAPTERS / "ch02_attention.py")


@pytest.fixture(scope="module")
def ch03():
    return load_definitions(CHAPTERS / "ch03_multihead.py")


@pytest.fixture(scope="module")
def ch04():
    return load_definitions(CHAPTERS / "ch04_layernorm_ffn.py")


def _attention(q, k, v, mask=None, is_causal=False, scale=True, causal_diag=0, zero_dead=True, d_from_v=False):
    d = v.size(-1) if d_from_v else q.size(-1)
    s = q @ k.transpose(-2, -1) / (math.sqrt(d) if scale else 1.0)
    allowed = torch.ones(s.shape[-2:], dtype=torch.bool)
    if is_causal:
        allowed = allowed.tril(causal_diag)
    if mask is not None:
        allowed = allowed & mask
    s = s.masked_fill(~allowed, float("-inf"))
    p = torch.softmax(s, -1)
    if zero_dead:
        p = torch.nan_to_num(p)
    return p @ v


@pytest.mark.parametrize(
    "wrong,why",
    [
        (lambda q, k, v, mask=None, is_causal=False: _attention(q, k, v, mask, is_causal, scale=False), "no mask"),
        (lambda q, k, v, mask=None, is_causal=False: _attention(q, k, v, mask, is_causal, causal_diag=-1), "is_causal"),
        (lambda q, k, v, mask=None, is_causal=False: _attention(q, k, v, mask, is_causal, causal_diag=1), "is_causal"),
        (lambda q, k, v, mask=None, is_causal=False: _attention(q, k, v, None if mask is None else ~mask, is_causal), "padding"),
        (lambda q, k, v, mask=None, is_causal=False: _attention(q, k, v, mask, is_causal, zero_dead=False), "NaN"),
        (lambda q, k, v, mask=None, is_causal=False: _attention(q, k, v, mask, is_causal, d_from_v=True), "no mask"),
    ],
    ids=["unscaled", "causal-shifted-down", "causal-shifted-up", "mask-inverted", "nan-rows", "scaled-by-d_v"],
)
def test_masked_attention_check_rejects_wrong_solutions(ch02, wrong, why):
    assert "F.scaled_dot_product_attention" in ch02.check_masked_attention(ch02.masked_attention)
    with pytest.raises(AssertionError, match=why):
        ch02.check_masked_attention(wrong)


def test_attention_backward_check_rejects_wrong_solutions(ch02):
    right = ch02.attention_backward_by_hand
    ch02.check_attention_backward_by_hand(right)

    def no_scale_in_dq(q, k, v, do, mask=None):
        dq, dk, dv = right(q, k, v, do, mask)
        return dq * math.sqrt(q.size(-1)), dk, dv

    def no_rowsum(q, k, v, do, mask=None):  # dS = P ⊙ dP, forgetting the softmax's normalisation
        c = 1 / math.sqrt(q.size(-1))
        s = c * q @ k.transpose(-2, -1)
        if mask is not None:
            s = s.masked_fill(~mask, float("-inf"))
        p = torch.softmax(s, -1)
        ds = p * (do @ v.transpose(-2, -1))
        return c * ds @ k, c * ds.transpose(-2, -1) @ q, p.transpose(-2, -1) @ do

    with pytest.raises(AssertionError, match="dq"):
        ch02.check_attention_backward_by_hand(no_scale_in_dq)
    with pytest.raises(AssertionError, match="dq"):
        ch02.check_attention_backward_by_hand(no_rowsum)


def test_split_merge_checks_reject_wrong_solutions(ch03):
    ch03.check_split_heads_ex(ch03.split_heads_ex)
    ch03.check_merge_heads_ex(ch03.merge_heads_ex)

    def split_interleaved(x, n_heads):  # head h gets channels h, h+H, h+2H, …
        b, t, c = x.shape
        return x.view(b, t, c // n_heads, n_heads).permute(0, 3, 1, 2)

    def split_without_transpose(x, n_heads):  # right shape, tokens and heads mixed
        b, t, c = x.shape
        return x.reshape(b, n_heads, t, c // n_heads)

    def merge_without_transpose(x):
        b, h, t, hs = x.shape
        return x.reshape(b, t, h * hs)

    for wrong in (split_interleaved, split_without_transpose):
        with pytest.raises(AssertionError, match="head"):
            ch03.check_split_heads_ex(wrong)
    with pytest.raises(AssertionError, match="nn.MultiheadAttention"):
        ch03.check_merge_heads_ex(merge_without_transpose)


def test_layer_norm_checks_reject_wrong_solutions(ch04):
    ch04.check_layer_norm_forward_ex(ch04.layer_norm_forward_ex)
    ch04.check_layer_norm_backward_ex(ch04.layer_norm_backward_ex)

    def unbiased(x, g, b, eps=1e-5):
        return g * (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True) + eps) + b

    def eps_outside(x, g, b, eps=1e-5):
        return g * (x - x.mean(-1, keepdim=True)) / (x.var(-1, unbiased=False, keepdim=True).sqrt() + eps) + b

    def eps_ignored(x, g, b, eps=1e-5):
        return torch.nn.functional.layer_norm(x, x.shape[-1:], g, b, 1e-5)

    for wrong in (unbiased, eps_outside, eps_ignored):
        with pytest.raises(AssertionError, match="F.layer_norm"):
            ch04.check_layer_norm_forward_ex(wrong)

    right = ch04.layer_norm_backward_ex

    def dx_without_variance_term(dy, x, gamma, eps=1e-5):
        _, dg, db = right(dy, x, gamma, eps)
        r = 1 / torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + eps)
        g = dy * gamma
        return r * (g - g.mean(-1, keepdim=True)), dg, db

    def dgamma_not_summed(dy, x, gamma, eps=1e-5):
        dx, _, db = right(dy, x, gamma, eps)
        return dx, dy * torch.nn.functional.layer_norm(x, x.shape[-1:], eps=eps), db

    with pytest.raises(AssertionError, match="dx"):
        ch04.check_layer_norm_backward_ex(dx_without_variance_term)
    with pytest.raises(AssertionError, match="dgamma expected shape"):
        ch04.check_layer_norm_backward_ex(dgamma_not_summed)


def test_gelu_and_ffn_checks_reject_wrong_solutions(ch04):
    ch04.check_gelu_ex(ch04.gelu_ex)
    ch04.check_feed_forward_ex(ch04.feed_forward_ex)
    F = torch.nn.functional
    with pytest.raises(AssertionError, match="tanh"):
        ch04.check_gelu_ex(lambda x: F.gelu(x, approximate="tanh"))
    with pytest.raises(AssertionError):
        ch04.check_gelu_ex(torch.relu)
    with pytest.raises(AssertionError, match="GELU"):
        ch04.check_feed_forward_ex(lambda x, w1, b1, w2, b2: F.linear(F.relu(F.linear(x, w1, b1)), w2, b2))
    with pytest.raises(AssertionError, match="nn.Linear"):  # weights used as (in, out)
        ch04.check_feed_forward_ex(lambda x, w1, b1, w2, b2: F.gelu(x @ w2 + b1[: w2.shape[1]]) @ w1 + b2)
