"""The assignment workflow end to end: build the student version, grade it (0 everywhere, with
NotImplementedError messages), grade the reference (full marks), catch a deliberately wrong
solution for every exercise, and survive syntax errors, endless loops and missing files.

Most cases call ``run_one.grade`` in this process — the very function each grader subprocess
runs — so the suite stays fast; one test drives the real CLI with its subprocesses and time limit.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from chapters.assign.__main__ import build_student_version
from chapters.assign.exercises import EXERCISES
from chapters.assign.markers import BEGIN_SOLUTION, END_SOLUTION
from chapters.assign.run_one import grade

REPO = Path(__file__).resolve().parents[1]
CHAPTERS = REPO / "chapters"

# One plausible mistake per exercise: the body that replaces the reference solution.
WRONG = {
    "precision_recall_f1": """
        tp = sum(1 for t, p in zip(y_true, y_pred) if t == positive and p == positive)
        n_pred = sum(1 for p in y_pred if p == positive)
        n_true = sum(1 for t in y_true if t == positive)
        precision = tp / n_pred if n_pred else 0.0
        recall = tp / n_true if n_true else 0.0
        acc = sum(1 for t, p in zip(y_true, y_pred) if t == p) / len(y_true)
        f1 = 2 * acc * recall / (acc + recall) if acc + recall else 0.0  # the article's F1: from accuracy
        return precision, recall, f1
    """,
    "mlm_masking": """
        selected = torch.rand(input_ids.shape, generator=generator) < 0.15  # may select [CLS], [SEP], [PAD]
        labels = torch.where(selected, input_ids, torch.full_like(input_ids, -100))
        inputs = torch.where(selected, torch.full_like(input_ids, mask_id), input_ids)
        return inputs, labels
    """,
    "nsp_pairs": """
        a = docs[doc_idx][sent_idx]
        if rng.random() < 0.5:
            return list(a), list(docs[doc_idx][sent_idx + 1]), True
        d = rng.randrange(len(docs))  # may pick the same document, even the true next sentence
        return list(a), list(rng.choice(docs[d])), False
    """,
    "causal_lm_loss": """
        return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), idx.reshape(-1))  # no shift
    """,
    "causal_mask": """
        return torch.ones(T, T, dtype=torch.bool).tril(-1)  # shifted by one: a token cannot see itself
    """,
    "top_k_top_p": """
        out = logits.clone()
        if top_k is not None and top_k < out.size(-1):
            kth = out.topk(top_k + 1, dim=-1).values[..., -1:]  # keeps k + 1 tokens
            out = out.masked_fill(out < kth, float("-inf"))
        return out
    """,
    "kv_cache_step": """
        k = k_new if cache_k is None else torch.cat([cache_k, k_new], dim=2)
        v = v_new if cache_v is None else torch.cat([cache_v, v_new], dim=2)
        w = torch.softmax(q_new @ k.transpose(-2, -1) / math.sqrt(q_new.size(-1)), -1)  # no causal mask
        return w @ v, k, v
    """,
    "bio_entities": """
        spans, start, etype = [], None, None
        for i, tag in enumerate(tags):
            if tag.startswith("B-") or tag == "O":
                if start is not None:
                    spans.append((etype, start, i))
                start, etype = (i, tag[2:]) if tag != "O" else (None, None)
        return spans  # drops I- without B- and the entity open at the end
    """,
    "align_labels": """
        return [-100 if w is None else word_labels[w] for w in word_ids]  # labels every subword
    """,
    "bert_param_count": """
        h = hidden
        return (vocab_size + max_positions + type_vocab_size) * h + layers * (12 * h * h) + h * h  # no biases, no LayerNorm
    """,
    "gpt2_param_count": """
        c = n_embd
        return (2 * vocab_size + block_size) * c + n_layer * (12 * c * c + 13 * c) + 2 * c  # tied head counted twice
    """,
    "embedding_lookup": """
        return weight[ids.clamp(0, weight.size(0) - 1)]  # silently clamps bad ids instead of refusing them
    """,
    "attention_masks": """
        s = q @ k.transpose(-2, -1)  # forgot to divide by sqrt(d_k)
        if mask is not None:
            s = s.masked_fill(~mask, float("-inf"))
        return torch.softmax(s, -1) @ v
    """,
    "attention_backward": """
        p = torch.softmax(q @ k.transpose(-2, -1) / q.size(-1) ** 0.5, -1)
        dv = p.transpose(-2, -1) @ do
        ds = do @ v.transpose(-2, -1)  # skipped the softmax backward
        return ds @ k, ds.transpose(-2, -1) @ q, dv
    """,
    "split_heads": """
        b, t, c = x.shape
        return x.reshape(b, n_heads, t, c // n_heads)  # reshape without transpose mixes positions
    """,
    "merge_heads": """
        b, h, t, d = x.shape
        return x.reshape(b, t, h * d)  # forgot to bring T back before H
    """,
    "layernorm_forward": """
        mu = x.mean(-1, keepdim=True)
        var = x.var(-1, keepdim=True, unbiased=True)  # unbiased variance: not LayerNorm
        return gamma * (x - mu) / torch.sqrt(var + eps) + beta
    """,
    "layernorm_backward": """
        mu = x.mean(-1, keepdim=True)
        rstd = 1 / torch.sqrt(((x - mu) ** 2).mean(-1, keepdim=True) + eps)
        xhat = (x - mu) * rstd
        dims = tuple(range(dy.dim() - 1))
        return dy * gamma * rstd, (dy * xhat).sum(dims), dy.sum(dims)  # ignores dμ and dσ²
    """,
    "gelu": """
        return torch.relu(x)
    """,
    "feed_forward": """
        return torch.relu(x @ w1.T + b1) @ w2.T + b2  # ReLU instead of GELU
    """,
}


def solution_span(lines: list[str], function: str) -> tuple[int, int, str]:
    """Indices of the BEGIN/END SOLUTION lines inside ``def function`` and the marker's indentation."""
    start = next(i for i, l in enumerate(lines) if l.startswith(f"def {function}("))
    begin = next(i for i in range(start, len(lines)) if lines[i].strip() == BEGIN_SOLUTION)
    end = next(i for i in range(begin, len(lines)) if lines[i].strip() == END_SOLUTION)
    return begin, end, lines[begin][: len(lines[begin]) - len(lines[begin].lstrip())]


def with_body(chapter_text: str, function: str, body: str) -> str:
    lines = chapter_text.splitlines(keepends=True)
    begin, end, indent = solution_span(lines, function)
    new = textwrap.indent(textwrap.dedent(body).strip("\n") + "\n", indent)
    return "".join(lines[:begin]) + new + "".join(lines[end + 1 :])


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    build_student_version(out)
    return out


def test_every_exercise_has_a_wrong_solution_to_catch():
    assert sorted(WRONG) == sorted(e.id for e in EXERCISES)
    assert len(EXERCISES) == len({e.id for e in EXERCISES})


def test_student_version_drops_every_solution_and_keeps_the_rest(student_dir):
    for ref in sorted(CHAPTERS.glob("ch*.py")):
        text, student = ref.read_text(encoding="utf-8"), (student_dir / ref.name).read_text(encoding="utf-8")
        assert BEGIN_SOLUTION not in student and END_SOLUTION not in student
        assert "BEGIN HIDDEN TESTS" not in student
        lines = text.splitlines(keepends=True)
        kept, inside = [], False
        for line in lines:  # the reference with each region cut out...
            s = line.strip()
            if s in (BEGIN_SOLUTION, "### BEGIN HIDDEN TESTS"):
                inside = True
                if s == BEGIN_SOLUTION:
                    ind = line[: len(line) - len(line.lstrip())]
                    kept += [f"{ind}# YOUR CODE HERE\n", f"{ind}raise NotImplementedError\n"]
                continue
            if s in (END_SOLUTION, "### END HIDDEN TESTS"):
                inside = False
                continue
            if not inside:
                kept.append(line)
        assert student == "".join(kept), ref.name  # ...is the student version, byte for byte
    for e in EXERCISES:
        assert e.function in (student_dir / e.chapter).read_text(encoding="utf-8")


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda e: e.id)
def test_untouched_student_version_scores_zero_with_a_clear_message(student_dir, ex):
    result = grade(str(student_dir / ex.chapter), str(CHAPTERS / ex.chapter), ex.function, ex.check)
    assert result["status"] == "failed"
    assert "NotImplementedError" in result["message"] and ex.function in result["message"]


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda e: e.id)
def test_reference_solution_passes(ex):
    result = grade(str(CHAPTERS / ex.chapter), str(CHAPTERS / ex.chapter), ex.function, ex.check)
    assert result["status"] == "passed", result


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda e: e.id)
def test_wrong_solution_is_caught(tmp_path, ex):
    wrong = tmp_path / ex.chapter
    wrong.write_text(with_body((CHAPTERS / ex.chapter).read_text(encoding="utf-8"), ex.function, WRONG[ex.id]), encoding="utf-8")
    result = grade(str(wrong), str(CHAPTERS / ex.chapter), ex.function, ex.check)
    assert result["status"] == "failed", (ex.id, result)


def test_grader_cli_reports_syntax_error_endless_loop_and_missing_file(tmp_path, student_dir):
    """Real subprocesses with a time limit: one exercise broken three ways, the others still graded."""
    by_chapter = {}
    for e in EXERCISES:
        by_chapter.setdefault(e.chapter, []).append(e)
    chapters = sorted(by_chapter)
    syntax, loop, missing = chapters[0], chapters[1], chapters[2]
    work = tmp_path / "work"
    work.mkdir()
    (work / syntax).write_text("def broken(:\n", encoding="utf-8")
    loop_ex = by_chapter[loop][0]
    text = (CHAPTERS / loop).read_text(encoding="utf-8")
    text = with_body(text, loop_ex.function, "while True:\n    pass\n")
    (work / loop).write_text(text, encoding="utf-8")
    only = [by_chapter[syntax][0].id, loop_ex.id, by_chapter[missing][0].id]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-m", "chapters.assign", "grade", str(work), "--timeout", "8", "--only", *only, "--out", str(tmp_path / "g")],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert proc.returncode == 0, proc.stderr
    rows = {r["exercise"]: r for r in json.loads((tmp_path / "g" / "results.json").read_text())["exercises"]}
    assert rows[only[0]]["status"] == "failed" and "does not compile" in rows[only[0]]["message"]
    assert rows[only[1]]["status"] == "timed out"
    assert rows[only[2]]["status"] == "missing" and "missing file" in rows[only[2]]["message"]
    assert all(r["points"] == 0 for r in rows.values())
    csv_text = (tmp_path / "g" / "results.csv").read_text()
    assert csv_text.splitlines()[0].startswith("exercise,chapter,points") and len(csv_text.splitlines()) == 4
    for name in only:
        assert name in proc.stdout


def test_build_refuses_unpaired_markers_with_file_and_line(tmp_path):
    from chapters.assign.markers import MarkerError, build

    src = tmp_path / "src"
    src.mkdir()
    (src / "ch01_x.py").write_text("def f():\n    ### BEGIN SOLUTION\n    return 1\n")
    with pytest.raises(MarkerError, match=r"ch01_x\.py:2: '### BEGIN SOLUTION' is never closed"):
        build(src, tmp_path / "out")
    proc = subprocess.run([sys.executable, "-m", "chapters.assign", "grade", str(tmp_path / "nope")],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2 and "student directory not found" in proc.stderr and "Traceback" not in proc.stderr
