"""The chapters: every one runs in --fast mode and verifies something; the Chapter helper's checks
fail loudly; the runner reports failing chapters; and the exercise checks reject wrong solutions."""
from __future__ import annotations

import ast
import json
import math
import os
import subprocess
import sys
import threading
import types
from pathlib import Path

import pytest
import torch

from chapters.assign.loader import ChapterLanguage
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


def test_check_value_passes_fails_on_nan_and_lands_in_the_summary(tmp_path, capsys):
    ch = Chapter("ch99_demo.py", argv=["--out", str(tmp_path)])
    assert ch.check_value("test accuracy", 0.953, low=0.8, detail="240 reviews") == 0.953
    ch.check_value("loss", torch.tensor(1.5), high=2.0)
    ch.check_value("ratio", 1.0, low=1.0, high=1.0)  # the bounds themselves pass
    out = capsys.readouterr().out
    assert "✓ test accuracy (value 0.953, needs >= 0.8; 240 reviews)" in out
    assert "✓ loss (value 1.5, needs <= 2)" in out and "✓ ratio (value 1, needs 1 … 1)" in out
    with pytest.raises(CheckFailed, match=r"BLEU \(value 79\.5, needs >= 80\)"):
        ch.check_value("BLEU", 79.5, low=80)
    with pytest.raises(CheckFailed, match=r"F1 \(value 0\.95, needs 0 … 0\.9\)"):
        ch.check_value("F1", 0.95, low=0.0, high=0.9)
    for bounds in ({"low": 0.0}, {"high": 1.0}, {"low": 0.0, "high": 1.0}):
        with pytest.raises(CheckFailed, match="value nan"):
            ch.check_value("nan", float("nan"), **bounds)
    with pytest.raises(ValueError, match="low, high or both"):
        ch.check_value("unbounded", 1.0)
    assert ch.n_checks == 3
    summary = ch.done()
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(line[len("@@CHAPTER "):]) == summary
    values = summary["values"]
    assert [v["name"] for v in values] == ["test accuracy", "loss", "ratio", "BLEU", "F1", "nan", "nan", "nan"]
    assert values[0] == {"name": "test accuracy", "value": 0.953, "low": 0.8, "high": None}
    assert values[1] == {"name": "loss", "value": 1.5, "low": None, "high": 2.0}
    assert values[5]["value"] is None  # NaN is recorded as null: the summary stays strict JSON
    assert summary["seed"] == 0 and summary["threads"] == 1


def test_seed_option_moves_every_stream_and_seed_zero_keeps_the_books_numbers(tmp_path, monkeypatch):
    monkeypatch.delenv("CHAPTERS_SEED", raising=False)
    monkeypatch.delenv("CHAPTERS_THREADS", raising=False)
    ch = Chapter("ch99.py", argv=["--out", str(tmp_path)])
    assert ch.seed == 0 and [ch.seed_for(k) for k in (0, 7)] == [0, 7]
    a = torch.randn(3)
    torch.manual_seed(0)
    assert torch.equal(a, torch.randn(3))  # the constructor seeded with seed_for(0) = 0, as before
    assert ch.manual_seed(5) == 5
    b = torch.randn(3)
    torch.manual_seed(5)
    assert torch.equal(b, torch.randn(3))

    ch = Chapter("ch99.py", argv=["--out", str(tmp_path), "--seed", "3"])
    assert ch.seed == 3 and ch.seed_for() == 3000 and ch.seed_for(7) == 3007
    ch.manual_seed(7)
    c = torch.randn(3)
    torch.manual_seed(3007)
    assert torch.equal(c, torch.randn(3))
    monkeypatch.setenv("CHAPTERS_SEED", "2")
    assert Chapter("ch99.py", argv=["--out", str(tmp_path)]).seed_for(1) == 2001
    assert Chapter("ch99.py", argv=["--out", str(tmp_path), "--seed", "4"]).seed == 4  # the option wins


def test_threads_option_sets_torch_threads(tmp_path, monkeypatch):
    monkeypatch.delenv("CHAPTERS_THREADS", raising=False)
    before = torch.get_num_threads()
    try:
        assert Chapter("ch99.py", argv=["--out", str(tmp_path), "--threads", "2"]).threads == 2
        assert torch.get_num_threads() == 2
        Chapter("ch99.py", argv=["--out", str(tmp_path)])
        assert torch.get_num_threads() == 1  # the default
        monkeypatch.setenv("CHAPTERS_THREADS", "2")
        assert Chapter("ch99.py", argv=["--out", str(tmp_path)]).threads == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    "argv,env,message",
    [
        (["--threads", "x"], {}, "--threads: expected a positive integer, received 'x'"),
        (["--threads", "0"], {}, "--threads: expected a positive integer, received '0'"),
        (["--seed", "-1"], {}, "--seed: expected a non-negative integer, received '-1'"),
        (["--seed", "1.5"], {}, "--seed: expected a non-negative integer, received '1.5'"),
        ([], {"CHAPTERS_THREADS": "two"}, "CHAPTERS_THREADS: expected a positive integer, received 'two'"),
        ([], {"CHAPTERS_SEED": "-3"}, "CHAPTERS_SEED: expected a non-negative integer, received '-3'"),
    ],
)
def test_bad_seed_or_threads_exit_2_with_a_clear_message(tmp_path, monkeypatch, capsys, argv, env, message):
    monkeypatch.delenv("CHAPTERS_SEED", raising=False)
    monkeypatch.delenv("CHAPTERS_THREADS", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(SystemExit) as info:
        Chapter("ch99.py", argv=["--out", str(tmp_path), *argv])
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_runner_rejects_bad_seed_and_threads_and_passes_good_ones(tmp_path):
    for args, message in [(("--threads", "x"), "--threads: expected a positive integer, received 'x'"),
                          (("--seed", "-1"), "--seed: expected a non-negative integer, received '-1'")]:
        proc = run_runner(*args, "--list")
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    src = tmp_path / "src"
    src.mkdir()
    (src / "ch01_env.py").write_text(
        "import os\n"
        "print('✓ env', os.environ.get('CHAPTERS_SEED'), os.environ.get('CHAPTERS_THREADS'))\n"
        "print('@@CHAPTER {\"chapter\": \"ch01_env\", \"checks\": 1, \"figures\": [], \"seconds\": 0.0}')\n",
        encoding="utf-8")
    proc = run_runner("--dir", src, "--seed", "3", "--threads", "2", "--out", tmp_path / "out", timeout=120)
    assert proc.returncode == 0 and "✓ env 3 2" in proc.stdout, proc.stdout + proc.stderr


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


def test_the_default_timeout_is_the_one_a_chapter_gets_and_leaves_a_busy_machine_room(tmp_path, monkeypatch):
    """Beside two busy processes ch15 took more than 300 s, the old default, and the book failed
    (bench/book_under_load.py): the default must exceed twice ch15's 187 s idle time with room."""
    from chapters import __main__ as runner

    src = tmp_path / "src"
    src.mkdir()
    (src / "ch01_good.py").write_text(GOOD, encoding="utf-8")
    seen = []
    monkeypatch.setattr(runner, "run_chapter", lambda p, out, fast, timeout, **kw: seen.append(timeout) or
                        {"chapter": p.stem, "seconds": 0.0, "checks": 1, "figures": 0, "returncode": 0, "status": "ok", "tail": []})
    assert runner.main(["--dir", str(src), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    assert seen == [runner.DEFAULT_TIMEOUT] and runner.DEFAULT_TIMEOUT >= 4 * 187
    assert runner.main(["--dir", str(src), "--out", str(tmp_path / "out"), "--quiet", "--timeout", "7"]) == 0
    assert seen[-1] == 7.0


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
    """What a grader sees: a chapter's imports, functions, classes and literal constants, no cells
    (and, as chapters.assign.loader gives it, a ``ch`` with the language for the checks' ``ch.tr``)."""
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
    module.ch = ChapterLanguage()
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


# ----------------------------------------------------------------------------- --jobs

def test_run_all_runs_jobs_at_once_and_a_needed_chapter_first(tmp_path):
    from chapters.__main__ import run_all

    paths = [tmp_path / f"ch{n:02d}_x.py" for n in (1, 2, 8, 10, 11)]
    barrier = threading.Barrier(2, timeout=20)  # passes only if two runs are in flight together
    log, lock = [], threading.Lock()

    def run(p):
        with lock:
            log.append(("start", p.stem[:4]))
        if p.stem[:4] in ("ch08", "ch01"):  # the first two started (ch08 first: ch10 needs it)
            barrier.wait()
        with lock:
            log.append(("end", p.stem[:4]))
        return {"chapter": p.stem}

    finished = []
    rows = run_all(paths, 2, run, lambda p, row: finished.append(p.stem[:4]))
    assert [r["chapter"] for r in rows] == [p.stem for p in paths]  # chapter order, whatever the finishing order
    assert log[0] == ("start", "ch08")  # needed by ch10: started first
    assert log.index(("end", "ch08")) < log.index(("start", "ch10"))
    assert sorted(finished) == ["ch01", "ch02", "ch08", "ch10", "ch11"]
    running = max(sum(1 if e == "start" else -1 for e, _ in log[: i + 1]) for i in range(len(log)))
    assert running == 2
    one = []
    run_all(paths, 1, lambda p: one.append(p.stem[:4]) or {"chapter": p.stem}, lambda p, row: None)
    assert one == ["ch01", "ch02", "ch08", "ch10", "ch11"]  # one at a time: the chapter order


def test_default_jobs_fills_the_usable_cpus_with_chapters_whatever_else_is_busy(monkeypatch):
    from chapters import __main__ as runner
    from minitransformer import cli

    assert [runner.default_jobs(t, cpus=c) for t, c in ((1, 2), (2, 2), (3, 2), (2, 8), (1, 1))] == [2, 1, 1, 4, 1]
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(cli, "busy_cpus", lambda window=0.1: 2.0)  # both cores busy with other programs
    assert cli.free_cores() == 1 and runner.default_jobs(1) == 2  # the runner does not back off (2× not 3×)


def test_chapter_threads_from_env(monkeypatch):
    """The runner sizes --jobs by the threads a chapter gets: --threads, else CHAPTERS_THREADS, else 1."""
    from chapters.options import option_count

    def chapter_threads_from_env():
        return option_count(None, "CHAPTERS_THREADS", "--threads", 1, 1)

    monkeypatch.delenv("CHAPTERS_THREADS", raising=False)
    assert chapter_threads_from_env() == 1
    monkeypatch.setenv("CHAPTERS_THREADS", "2")
    assert chapter_threads_from_env() == 2
    assert option_count("3", "CHAPTERS_THREADS", "--threads", 1, 1) == 3  # argv wins
    monkeypatch.setenv("CHAPTERS_THREADS", "zero")
    with pytest.raises(ValueError, match="CHAPTERS_THREADS: expected a positive integer, received 'zero'"):
        chapter_threads_from_env()


def test_runner_jobs_option(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "ch01_good.py").write_text(GOOD, encoding="utf-8")
    (src / "ch02_bad.py").write_text(BAD, encoding="utf-8")
    proc = run_runner("--dir", src, "--jobs", "0", "--list")
    assert proc.returncode == 2 and "--jobs: expected a positive integer, received '0'" in proc.stderr
    proc = run_runner("--dir", src, "--jobs", "2", "--out", tmp_path / "out", "--json", tmp_path / "r.json", timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    assert "2 chapters at a time (--jobs)" in out and "1/2 chapters ok" in out and "(2 at a time)" in out
    block = out[out.index("=== ch02_bad"):]
    assert "  a line before the failure" in block.splitlines()[1:3]  # the chapter's lines follow its header
    rows = json.loads((tmp_path / "r.json").read_text())["chapters"]
    assert [r["chapter"] for r in rows] == ["ch01_good", "ch02_bad"]
