"""Issue #15, bad inputs: every numeric option is checked when it is parsed (finite, in range),
output paths are checked before any work, a config.json that cannot describe its checkpoint is
refused naming the file and the field, and the public API refuses inputs torch would fail on deep
inside (or silently accept). Each case asserts the exit status (or ValueError), that the message
names the option, what was expected and what was received, and that no traceback was printed.
docs/bad_inputs.md lists the same cases in a table.
"""
import csv
import json
import math
import os
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import transformers

import chapters.options
from chapters.__main__ import main as chapters_main
from chapters.book import Chapter
from minibert import cli as bert_cli
from minibert import commands as bert_commands
from minibert.evaluate import evaluate, write_predictions
from minibert.wordpiece import WordPieceTokenizer
from minigpt import GPT, GPTConfig
from minigpt import cli as gpt_cli
from minigpt.bpe import GPT2Tokenizer
from minitransformer import cli as mt_cli
from minitransformer.attention import scaled_dot_product_attention, sdpa_fast
from minitransformer.checkpoint import save_checkpoint
from minitransformer.cli import number, run_cli
from minitransformer.data import CharTokenizer, Example

TINY_BERT = ["--hidden-size", "16", "--num-hidden-layers", "1", "--num-attention-heads", "2", "--intermediate-size", "32",
             "--max-position-embeddings", "32", "--no-progress", "--batch-size", "4", "--tokenizer", "char"]
ROWS = [("red cat big.", "pos"), ("blue dog small.", "neg"), ("big red sun.", "pos"), ("small blue rain.", "neg")]


def run(main, prog, argv, capsys) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of ``main(argv)`` under run_cli; argparse's usage errors
    (SystemExit) count as their exit status."""
    capsys.readouterr()
    try:
        code = run_cli(main, [str(a) for a in argv], prog=prog)
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def gpt(argv, capsys):
    return run(gpt_cli.main, gpt_cli.PROG, argv, capsys)


def bert(argv, capsys):
    return run(bert_cli.main, bert_cli.PROG, argv, capsys)


def write_tsv(path, rows):
    path.write_text("text\tlabel\n" + "".join(f"{t}\t{lab}\n" for t, lab in rows), encoding="utf-8")
    return path


def assert_clear_error(code, err, *needles):
    assert code == 2, err
    assert "Traceback" not in err, err
    for needle in needles:
        assert needle in err, f"{needle!r} not in {err!r}"


# ----------------------------------------------------------------------------- the type factory


@pytest.mark.parametrize("kwargs, text, value", [
    (dict(), "1e-3", 1e-3),
    (dict(low=0.0, high=1.0, high_open=True), "0", 0.0),
    (dict(low=0.0, low_open=True), "1e30", 1e30),
    (dict(low=1, integer=True), "7", 7),
    (dict(low=-1, integer=True), "-1", -1),
])
def test_number_accepts_values_in_range(kwargs, text, value):
    parsed = number(**kwargs)(text)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize("kwargs, text, expected", [
    (dict(), "nan", "a finite number"),
    (dict(), "inf", "a finite number"),
    (dict(), "-inf", "a finite number"),
    (dict(), "abc", "a finite number"),
    (dict(low=0.0, low_open=True), "0", "a finite number > 0"),
    (dict(low=0.0, high=1.0, low_open=True, high_open=True), "1", "a finite number in (0, 1)"),
    (dict(low=0.0, high=1.0), "1.5", "a finite number in [0, 1]"),
    (dict(low=1, integer=True), "0", "a positive integer"),
    (dict(low=0, integer=True), "-3", "a non-negative integer"),
    (dict(low=1, integer=True), "1.5", "a positive integer"),
    (dict(low=0, high=2**63 - 1, integer=True), str(2**63), "an integer in [0, 2**63 - 1]"),
    (dict(low=2, integer=True, why="[CLS] and [SEP]"), "1", "an integer >= 2 ([CLS] and [SEP])"),
])
def test_number_refuses_with_what_it_expected_and_received(kwargs, text, expected):
    import argparse

    with pytest.raises(argparse.ArgumentTypeError) as e:
        number(**kwargs)(text)
    assert str(e.value) == f"expected {expected}, received {text!r}"


# ----------------------------------------------------------------------------- numeric options, every CLI

GPT_TRAIN = ["train", "--data", "unused.txt"]
GPT_SAMPLE = ["sample", "--checkpoint", "unused"]
BERT_PRE = ["pretrain", "--data", "unused.txt"]
BERT_FIN = ["finetune", "--task", "classify", "--train", "unused.tsv", "--init", "random"]
BERT_EVAL = ["evaluate", "--checkpoint", "unused", "--data", "unused.tsv"]


@pytest.mark.parametrize("which, argv, flag, value, expected", [
    # the cases: accepted, then "loss is nan" at step 2, a crash inside AdamW, or clipping off
    ("gpt", GPT_TRAIN, "--lr", "inf", "a finite number in (0, 1e+30]"),
    ("gpt", GPT_TRAIN + ["--min-lr", "0"], "--lr", "1e38", "a finite number in (0, 1e+30]"),
    ("gpt", GPT_TRAIN, "--weight-decay", "nan", "a finite number in [0, 1]"),
    ("gpt", GPT_TRAIN, "--grad-clip", "nan", "a finite number >= 0 (0 = no clipping)"),
    ("gpt", GPT_TRAIN, "--min-lr", "-0.5", "a finite number in [0, 1e+30]"),
    ("gpt", GPT_TRAIN, "--batch-size", "0", "a positive integer"),
    ("gpt", GPT_TRAIN, "--grad-accum", "0", "a positive integer"),
    ("gpt", GPT_TRAIN, "--warmup-steps", "-1", "a non-negative integer"),
    ("gpt", GPT_TRAIN, "--log-interval", "0", "a positive integer"),
    ("gpt", GPT_TRAIN, "--eval-interval", "-1", "a non-negative integer"),
    ("gpt", GPT_TRAIN, "--checkpoint-interval", "-2", "an integer >= -1 (-1 = never, 0 = at evaluations)"),
    ("gpt", GPT_TRAIN, "--seed", "-1", "an integer in [0, 2**63 - 1]"),
    ("gpt", GPT_TRAIN, "--max-steps", "2.5", "an integer"),
    ("gpt", GPT_TRAIN, "--n-embd", "0", "a positive integer"),
    ("gpt", GPT_TRAIN, "--block-size", "-4", "a positive integer"),
    ("gpt", GPT_TRAIN, "--dropout", "1", "a finite number in [0, 1)"),
    ("gpt", GPT_TRAIN, "--init-std", "nan", "a finite number"),
    ("gpt", GPT_TRAIN, "--vocab-size", "0", "a positive integer"),
    ("gpt", GPT_SAMPLE, "--temperature", "nan", "a finite number"),
    ("gpt", GPT_SAMPLE, "--top-p", "inf", "a finite number"),
    ("gpt", GPT_SAMPLE, "--top-k", "2.5", "an integer"),
    ("gpt", GPT_SAMPLE, "--max-new-tokens", "-1", "a non-negative integer"),
    ("gpt", GPT_SAMPLE, "--num-samples", "0", "a positive integer"),
    ("gpt", GPT_SAMPLE, "--seed", str(2**64), "an integer in [0, 2**63 - 1]"),
    ("bert", BERT_PRE, "--mlm-probability", "0", "a finite number in (0, 1)"),
    ("bert", BERT_PRE, "--mlm-probability", "1", "a finite number in (0, 1)"),
    ("bert", BERT_PRE, "--val-fraction", "nan", "a finite number in (0, 1)"),
    ("bert", BERT_PRE, "--max-len", "1", "an integer >= 2 ([CLS] and [SEP])"),
    ("bert", BERT_PRE, "--lr", "inf", "a finite number in (0, 1e+30]"),
    ("bert", BERT_PRE, "--dropout", "-0.1", "a finite number in [0, 1)"),
    ("bert", BERT_PRE, "--initializer-range", "inf", "a finite number"),
    ("bert", BERT_PRE, "--hidden-size", "0", "a positive integer"),
    ("bert", BERT_PRE, "--betas", ["0.9", "nan"], "a finite number in [0, 1)"),
    ("gpt", GPT_TRAIN, "--betas", ["0.9", "1"], "a finite number in [0, 1)"),
    ("bert", BERT_FIN, "--epochs", "0", "a finite number > 0"),
    ("bert", BERT_FIN, "--epochs", "-1", "a finite number > 0"),
    ("bert", BERT_FIN, "--epochs", "nan", "a finite number > 0"),
    ("bert", BERT_FIN, "--val-fraction", "1", "a finite number in (0, 1)"),
    ("bert", BERT_FIN, "--max-steps", "-1", "a non-negative integer (0 = --epochs passes)"),
    ("bert", BERT_FIN, "--warmup-steps", "-2", "an integer >= -1 (-1 = 10% of the steps)"),
    ("bert", BERT_FIN, "--weight-decay", "nan", "a finite number in [0, 1]"),
    ("bert", BERT_EVAL, "--batch-size", "0", "a positive integer"),
    ("bert", BERT_EVAL, "--max-len", "nan", "an integer"),
])
def test_numeric_options_are_checked_when_parsed(which, argv, flag, value, expected, capsys):
    values = value if isinstance(value, list) else [value]  # --betas takes two numbers; the last is the bad one
    code, _, err = (gpt if which == "gpt" else bert)([*argv, flag, *values], capsys)
    assert_clear_error(code, err, f"argument {flag}: expected {expected}, received {values[-1]!r}")


def test_learning_rate_bound_keeps_the_largest_lr_adamw_survives(capsys):
    # 1e30 still runs in AdamW (lr / (1 - beta1) fits in float32); 1e38 / 0.1 does not
    p = torch.nn.Parameter(torch.ones(2))
    p.grad = torch.ones(2)
    torch.optim.AdamW([p], lr=1e30, betas=(0.9, 0.95)).step()
    q = torch.nn.Parameter(torch.ones(2))
    q.grad = torch.ones(2)
    with pytest.raises(RuntimeError, match="overflow"):
        torch.optim.AdamW([q], lr=1e38, betas=(0.9, 0.95)).step()
    args = gpt_cli.build_parser().parse_args(["train", "--lr", "1e30", "--min-lr", "0"])
    assert args.lr == 1e30


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-5", "soon"])
def test_chapters_timeout_must_be_a_finite_positive_number(value, capsys):
    with pytest.raises(SystemExit) as e:
        chapters_main(["--timeout", value, "--list"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and f"--timeout: expected a finite number of seconds > 0, received {value!r}" in err


# ----------------------------------------------------------------------------- output paths


@pytest.fixture
def chapter_dir(tmp_path):
    """A --dir with one chapter that would fail if it ran: the path checks must come first."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "ch01_x.py").write_text("raise SystemExit('this chapter must not run')\n")
    return src


@pytest.mark.parametrize("case", ["out_is_file", "out_under_file", "json_is_dir", "json_under_file", "out_read_only"])
def test_chapters_out_and_json_paths_are_checked_before_running(tmp_path, chapter_dir, capsys, monkeypatch, case):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    out, json_path = tmp_path / "out", None
    if case == "out_is_file":
        out, want = blocker, f"--out: expected a writable folder, received {str(blocker)!r}: {str(blocker)!r} is a file"
    elif case == "out_under_file":
        out = blocker / "figs"
        want = f"--out: expected a writable folder, received {str(out)!r}: {str(blocker)!r} is a file, not a folder"
    elif case == "json_is_dir":
        json_path, want = tmp_path, f"--json: expected a file in a writable folder, received {str(tmp_path)!r}: it is a folder"
    elif case == "json_under_file":
        json_path = blocker / "r.json"
        want = f"--json: expected a file in a writable folder, received {str(json_path)!r}: {str(blocker)!r} is a file"
    else:  # the tests run as root, who may write anywhere: a read-only folder is simulated
        real = os.access
        monkeypatch.setattr(chapters.options.os, "access", lambda p, m: False if Path(p) == out else real(p, m))
        want = f"--out: expected a writable folder, received {str(out)!r}: {str(out)!r} is read-only"
    argv = ["--dir", chapter_dir, "--out", out] + (["--json", json_path] if json_path else [])
    with pytest.raises(SystemExit) as e:
        chapters_main([str(a) for a in argv])
    captured = capsys.readouterr()
    assert e.value.code == 2 and want in captured.err, captured.err
    assert "this chapter must not run" not in captured.out + captured.err and "Traceback" not in captured.err


def test_a_chapter_with_an_out_that_is_a_file_exits_2(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(SystemExit) as e:
        Chapter("ch99.py", argv=["--out", str(blocker)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and f"--out: expected a writable folder, received {str(blocker)!r}: {str(blocker)!r} is a file" in err


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory):
    """A fine-tuned classifier (one step, random init, character tokenizer) and its labelled data."""
    d = tmp_path_factory.mktemp("ft")
    data = write_tsv(d / "train.tsv", ROWS * 2)
    code = run_cli(bert_cli.main, [str(a) for a in ["finetune", "--task", "classify", "--train", data, "--val", data,
                                                    "--init", "random", "--out-dir", d / "run", "--max-steps", "1",
                                                    "--max-len", "16", *TINY_BERT]], prog=bert_cli.PROG)
    assert code == 0
    return d


def evaluate_argv(finetuned, *extra):
    return ["evaluate", "--checkpoint", finetuned / "run", "--data", finetuned / "train.tsv", *extra]


@pytest.mark.parametrize("case", ["suffix", "over_data", "over_checkpoint", "predictions_is_dir", "under_file",
                                  "read_only", "cm_suffix", "cm_is_dir", "cm_under_file", "cm_over_data"])
def test_evaluate_outputs_are_checked_before_any_work(finetuned, tmp_path, capsys, monkeypatch, case):
    data = finetuned / "train.tsv"
    before = data.read_bytes()
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    predictions = tmp_path / "p.tsv"
    if case == "suffix":
        extra, want = ["--predictions", tmp_path / "p.xyz"], [
            f"--predictions {tmp_path / 'p.xyz'}: expected a file ending in .tsv, .csv, .jsonl, .json, received suffix '.xyz'"]
    elif case == "over_data":
        extra, want = ["--predictions", data], [f"--predictions {data}: expected a new file, received the path of --data {data}"]
    elif case == "over_checkpoint":
        target = finetuned / "run" / "checkpoint" / "config.json"
        extra, want = ["--predictions", target.with_suffix(".json")], ["expected a new file", "--checkpoint's config.json"]
    elif case == "predictions_is_dir":
        (tmp_path / "d.tsv").mkdir()
        extra, want = ["--predictions", tmp_path / "d.tsv"], [f"--predictions {tmp_path / 'd.tsv'}: expected a file to write, received a folder"]
    elif case == "under_file":
        extra, want = ["--predictions", blocker / "p.tsv"], [f"--predictions {blocker / 'p.tsv'}: cannot write there, {blocker} is a file, not a folder"]
    elif case == "read_only":  # the tests run as root, who may write anywhere: a read-only folder is simulated
        real = os.access
        monkeypatch.setattr(mt_cli.os, "access", lambda p, m: False if Path(p) == tmp_path else real(p, m))
        extra, want = ["--predictions", predictions], [f"--predictions {predictions}: cannot write there, {tmp_path} is read-only"]
    elif case == "cm_suffix":
        extra, want = ["--confusion-matrix", tmp_path / "cm.jpg"], ["--confusion-matrix", "expected a file ending in .png", "received suffix '.jpg'"]
    elif case == "cm_is_dir":
        (tmp_path / "cm.png").mkdir()
        extra, want = ["--confusion-matrix", tmp_path / "cm.png"], [f"--confusion-matrix {tmp_path / 'cm.png'}: expected a file to write, received a folder"]
    elif case == "cm_under_file":
        extra, want = ["--confusion-matrix", blocker / "cm.png"], [f"--confusion-matrix {blocker / 'cm.png'}: cannot write there, {blocker} is a file"]
    else:  # labelled data that happens to end in .png (read with --format tsv) is an input too
        png = tmp_path / "data.png"
        png.write_bytes(before)
        extra = ["--data", png, "--format", "tsv", "--confusion-matrix", png]
        want = [f"--confusion-matrix {png}: expected a new file, received the path of --data {png}"]
    called = []
    monkeypatch.setattr(bert_commands.TASKS["classify"], "from_pretrained", lambda *a, **k: called.append(1))
    code, _, err = bert(evaluate_argv(finetuned, *extra), capsys)
    assert_clear_error(code, err, *want)
    assert not called, "the model was loaded before the output paths were checked"
    assert data.read_bytes() == before and not (tmp_path / "p.xyz").exists()


def test_evaluate_writes_csv_and_jsonl_predictions(finetuned, tmp_path, capsys):
    code, _, err = bert(evaluate_argv(finetuned, "--predictions", tmp_path / "p.csv", "--confusion-matrix",
                                      tmp_path / "out" / "cm.png"), capsys)
    assert code == 0, err
    rows = list(csv.DictReader((tmp_path / "p.csv").open(encoding="utf-8")))
    assert [(r["text"], r["gold"]) for r in rows] == ROWS * 2 and {r["pred"] for r in rows} <= {"pos", "neg"}
    assert (tmp_path / "out" / "cm.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, _, err = bert(evaluate_argv(finetuned, "--predictions", tmp_path / "p.jsonl"), capsys)
    assert code == 0, err
    assert [json.loads(line)["gold"] for line in (tmp_path / "p.jsonl").read_text().splitlines()] == [lab for _, lab in ROWS * 2]


def test_a_write_that_fails_late_names_the_path(finetuned, tmp_path, capsys, monkeypatch):
    import minibert.evaluate

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied", str(tmp_path / "cm.png"))

    monkeypatch.setattr(minibert.evaluate, "plot_confusion_matrix", refuse)
    code, _, err = bert(evaluate_argv(finetuned, "--confusion-matrix", tmp_path / "cm.png"), capsys)
    assert_clear_error(code, err, f"confusion matrix {tmp_path / 'cm.png'}: cannot write it (Permission denied")


def test_write_predictions_and_evaluate_api_refuse_unknown_suffix_and_the_input(tmp_path):
    with pytest.raises(ValueError, match=r"p\.xyz: expected a file ending in \.tsv, \.csv, \.jsonl, \.json"):
        write_predictions(tmp_path / "p.xyz", [{"a": 1}])
    assert not (tmp_path / "p.xyz").exists()
    data = write_tsv(tmp_path / "d.tsv", ROWS)
    with pytest.raises(ValueError, match="expected a new file, received the path of source"):
        evaluate(None, None, "classify", [Example(t, lab) for t, lab in ROWS], 16, source=data, predictions=data)
    assert data.read_text().startswith("text\tlabel\n")


# ----------------------------------------------------------------------------- fine-tuning data


@pytest.mark.parametrize("fraction, n_distinct, least", [
    # split_dataset keeps round((1 - f) n) for training: 0.9 * 4 = 3.6 -> 4 leaves none to validate;
    # 0.9 * 5 = 4.5 -> 4 (half to even) leaves one. 0.5 * 1 = 0.5 -> 0 leaves none to train; n = 2 works.
    (0.1, 4, 5),
    (0.5, 1, 2),
])
def test_finetuning_data_too_small_to_split_says_how_small(tmp_path, capsys, fraction, n_distinct, least):
    rows = (ROWS * 3)[:n_distinct] * 3  # each distinct row three times: duplicates are dropped before the split
    train = write_tsv(tmp_path / "t.tsv", rows)
    code, _, err = bert([*BERT_FIN[:4], train, "--init", "random", "--val-fraction", fraction, "--out-dir", tmp_path / "o",
                         *TINY_BERT], capsys)
    assert_clear_error(code, err, f"--train {train}: too small to hold out --val-fraction {fraction:g}",
                       f"{n_distinct} distinct example", f"expected at least {least} distinct examples")
    assert "eval_steps" not in err
    assert bert_commands.min_split_size(fraction) == least
    bigger = [Example(f"row {i}", "pos" if i % 2 else "neg") for i in range(least)]
    train_part, val_part = bert_commands.split_train_val(bigger, "t.tsv", fraction, seed=0)
    assert len(train_part) >= 1 and len(val_part) >= 1


@pytest.mark.parametrize("task", ["classify", "ner"])
def test_finetuning_needs_two_classes(tmp_path, capsys, task):
    if task == "classify":
        train = write_tsv(tmp_path / "t.tsv", [(t, "pos") for t, _ in ROWS] * 3)
        want = ["fine-tuning needs at least two classes, received only ['pos']"]
    else:
        train = tmp_path / "t.conll"
        train.write_text("\n\n".join("\n".join(f"{w}\tO" for w in t.split()) for t, _ in ROWS) + "\n")
        want = ["fine-tuning needs at least one entity tag (B-X / I-X) besides O, received only ['O']"]
    code, _, err = bert(["finetune", "--task", task, "--train", train, "--val", train, "--init", "random",
                         "--out-dir", tmp_path / "o", *TINY_BERT], capsys)
    assert_clear_error(code, err, f"training set {train}", *want)
    assert not (tmp_path / "o" / "checkpoint").exists()


# ----------------------------------------------------------------------------- config.json


@pytest.fixture
def gpt_checkpoint(tmp_path):
    config = GPTConfig(block_size=8, vocab_size=10, n_layer=1, n_head=2, n_embd=8)
    save_checkpoint(tmp_path / "ck", GPT(config), config)
    return tmp_path / "ck"


@pytest.mark.parametrize("drop", ["n_embd", "n_head"])
def test_gpt_config_without_a_shape_field_is_named(gpt_checkpoint, capsys, drop):
    file = gpt_checkpoint / "config.json"
    config = json.loads(file.read_text())
    del config[drop]
    file.write_text(json.dumps(config))
    code, _, err = gpt(["sample", "--checkpoint", gpt_checkpoint], capsys)
    assert_clear_error(code, err, f"{file}: GPT config: expected the fields", f"missing ['{drop}']")
    assert "shape" not in err.split("missing")[1] and "another architecture" not in err
    with pytest.raises(ValueError, match=rf"missing \['{drop}'\]"):
        GPTConfig.from_dict(config)


def test_gpt_config_that_is_not_json_names_the_file(gpt_checkpoint, capsys):
    file = gpt_checkpoint / "config.json"
    file.write_text("{not json")
    code, _, err = gpt(["sample", "--checkpoint", gpt_checkpoint], capsys)
    assert_clear_error(code, err, f"{file}: expected a JSON object")


def bert_folder(path):
    """A tiny Hugging Face BERT folder with a vocab.txt of matching size."""
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "red", "cat", "blue", "dog", "."]
    config = transformers.BertConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=32)
    transformers.BertModel(config).save_pretrained(path)
    (path / "vocab.txt").write_text("\n".join(words) + "\n")
    return path


@pytest.mark.parametrize("damage", ["hidden_size", "num_attention_heads", "not_json"])
def test_bert_config_without_a_shape_field_or_not_json_is_named(tmp_path, capsys, damage):
    folder = bert_folder(tmp_path / "hf")
    file = folder / "config.json"
    if damage == "not_json":
        file.write_bytes(b"\x00\x01 binary")
        want = [f"{file}: expected a JSON object"]
    else:
        config = json.loads(file.read_text())
        del config[damage]
        file.write_text(json.dumps(config))
        want = [f"{file}: expected the fields", f"missing ['{damage}']"]
    train = write_tsv(tmp_path / "t.tsv", ROWS * 2)
    code, _, err = bert(["finetune", "--task", "classify", "--train", train, "--val", train, "--init-hf", folder,
                         "--out-dir", tmp_path / "o", "--max-steps", "1", "--no-progress"], capsys)
    assert_clear_error(code, err, *want)
    assert "another architecture" not in err and "mismatch" not in err


# ----------------------------------------------------------------------------- attention


def qkv(dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    return [torch.randn(2, 3, 4, generator=g).to(dtype) for _ in range(3)]


@pytest.mark.parametrize("fn", [scaled_dot_product_attention, sdpa_fast])
@pytest.mark.parametrize("dtypes", [(torch.int64,) * 3, (torch.float32, torch.float64, torch.float32),
                                    (torch.float32, torch.float32, torch.int32), (torch.bool,) * 3])
def test_attention_refuses_integer_and_mixed_dtypes(fn, dtypes):
    q, k, v = (x.to(d) for x, d in zip(qkv(), dtypes))
    names = ", ".join(str(d) for d in dtypes)
    with pytest.raises(ValueError, match=re.escape(f"q, k, v: expected tensors of one floating dtype, received {names}")):
        fn(q, k, v)


@pytest.mark.parametrize("fn", [scaled_dot_product_attention, sdpa_fast])
@pytest.mark.parametrize("p", [-0.5, 1.0, 1.5, float("nan"), "0.1", True])
def test_attention_refuses_a_dropout_outside_0_1(fn, p):
    with pytest.raises(ValueError, match=re.escape(f"dropout_p: expected a probability in [0, 1), received {p!r}")):
        fn(*qkv(), dropout_p=p)


@pytest.mark.parametrize("fn", [scaled_dot_product_attention, sdpa_fast])
def test_attention_still_matches_torch_for_valid_inputs(fn):
    q, k, v = qkv(torch.float64)
    # float64, the same function: tolerance 1e-12
    torch.testing.assert_close(fn(q, k, v, dropout_p=0.0), F.scaled_dot_product_attention(q, k, v), atol=1e-12, rtol=0)
    torch.testing.assert_close(fn(q, k, v, dropout_p=0.5, training=False), F.scaled_dot_product_attention(q, k, v),
                               atol=1e-12, rtol=0)


# ----------------------------------------------------------------------------- tokenizers


def test_a_path_where_tokens_belong_points_to_from_file(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\n")
    for arg in (str(vocab), vocab):
        with pytest.raises(ValueError, match=r"vocab: expected a list of tokens, received the \w+ '.*vocab\.txt'; .*"
                                             r"WordPieceTokenizer\.from_file\(path\)"):
            WordPieceTokenizer(arg)
        with pytest.raises(ValueError, match=r"chars: expected the characters .*, received the path '.*vocab\.txt'; "
                                             r".*CharTokenizer\.load\(folder\).*CharTokenizer\.train\(text\)"):
            CharTokenizer(arg)
    for path in ("/no/such/vocab.txt", "vocab.txt", r"C:\\vocab"):
        with pytest.raises(ValueError, match=re.escape(f"received the path {path!r}")):
            CharTokenizer(path)
    assert WordPieceTokenizer.from_file(vocab).vocab_size == 6
    assert CharTokenizer("ab").vocab_size == 3  # a str of characters stays a str of characters
    assert CharTokenizer(".").vocab_size == 2  # even one that names a folder


def test_binary_vocab_files_name_the_file(tmp_path):
    (tmp_path / "vocab.txt").write_bytes(b"\xff\xfe\x00binary\x80")
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'vocab.txt'}: expected a vocab.txt")):
        WordPieceTokenizer.from_file(tmp_path)
    (tmp_path / "vocab.json").write_text('{"a": 0}')
    (tmp_path / "merges.txt").write_bytes(b"\xff\xfe binary")
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'merges.txt'}: expected GPT-2 merges")):
        GPT2Tokenizer.from_dir(tmp_path)
    (tmp_path / "vocab.json").write_bytes(b"\xff\xfe binary")
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'vocab.json'}: expected a JSON object token -> id in UTF-8")):
        GPT2Tokenizer.from_dir(tmp_path)


@pytest.mark.parametrize("encoder, merges, match", [
    ("path", [], r"encoder: expected a dict token -> id, received the str 'path'; .*GPT2Tokenizer\.from_dir\(path\)"),
    (["a", "b"], [], r"encoder: expected a dict token -> id, received list"),
    ({"a": "0"}, [], r"encoder: expected str tokens mapped to int ids, received \[\('a', '0'\)\]"),
    ({"a": 0}, "merges.txt", r"merges: expected a list of \(left, right\) pairs, received the str 'merges.txt'"),
    ({"a": 0}, [("a", "b", "c")], r"merges: expected \(left, right\) pairs of str, received \('a', 'b', 'c'\)"),
])
def test_gpt2_tokenizer_arguments_are_checked(encoder, merges, match):
    with pytest.raises(ValueError, match=match):
        GPT2Tokenizer(encoder, merges)
    assert GPT2Tokenizer({"a": 0, "b": 1, "ab": 2}, [("a", "b")]).encode("ab") == [2]


def test_no_nan_or_inf_survives_a_float_option_of_any_cli():
    """Every float option of every parser refuses nan: walk the parsers instead of listing them."""
    import argparse

    def float_options(parser):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    yield from float_options(sub)
            elif isinstance(action.default, float) or (isinstance(action.default, tuple) and action.default
                                                        and isinstance(action.default[0], float)):
                yield action

    actions = [a for p in (gpt_cli.build_parser(), bert_cli.build_parser()) for a in float_options(p)]
    assert len(actions) > 20
    for action in actions:
        with pytest.raises(argparse.ArgumentTypeError, match="received 'nan'"):
            action.type("nan")
        assert math.isfinite(action.type("0.5"))


def test_no_numeric_option_is_parsed_by_plain_int_or_float():
    """A plain ``type=int`` or ``type=float`` accepts nan, inf or any sign: every numeric option
    goes through minitransformer.cli.number instead."""
    import argparse

    def actions(parser):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    yield from actions(sub)
            else:
                yield action

    plain = [a.dest for p in (gpt_cli.build_parser(), bert_cli.build_parser()) for a in actions(p) if a.type in (int, float)]
    assert plain == []


@pytest.mark.parametrize("make, field, value, match", [
    (lambda **kw: GPTConfig(block_size=8, vocab_size=10, n_layer=1, n_head=1, n_embd=8, **kw), "init_std", float("inf"),
     "GPTConfig.init_std: expected a finite number, received inf"),
    (lambda **kw: GPTConfig(block_size=8, vocab_size=10, n_layer=1, n_head=1, n_embd=8, **kw), "layer_norm_epsilon",
     float("nan"), "GPTConfig.layer_norm_epsilon: expected a finite number, received nan"),
    (lambda **kw: GPTConfig(block_size=8, vocab_size=10, n_layer=1, n_head=1, n_embd=8, **kw), "dropout", float("nan"),
     r"GPTConfig.dropout: expected a probability in \[0, 1\), received nan"),
    (lambda **kw: __import__("minibert").BertConfig(**kw), "initializer_range", float("inf"),
     "BertConfig.initializer_range: expected a finite number, received inf"),
    (lambda **kw: __import__("minibert").BertConfig(**kw), "layer_norm_eps", -1e-12,
     "BertConfig.layer_norm_eps: expected > 0, received -1e-12"),
])
def test_model_configs_refuse_non_finite_scales(make, field, value, match):
    with pytest.raises(ValueError, match=match):
        make(**{field: value})


def test_a_binary_vocab_txt_in_a_bert_folder_names_the_file(tmp_path, capsys):
    folder = bert_folder(tmp_path / "hf")
    (folder / "vocab.txt").write_bytes(b"\xff\xfe\x00" * 4)
    train = write_tsv(tmp_path / "t.tsv", ROWS * 2)
    code, _, err = bert(["finetune", "--task", "classify", "--train", train, "--val", train, "--init-hf", folder,
                         "--out-dir", tmp_path / "o", "--max-steps", "1", "--no-progress"], capsys)
    assert_clear_error(code, err, f"{folder / 'vocab.txt'}: expected a vocab.txt (one token per line) in UTF-8")


def test_the_bad_input_table_names_only_tests_that_exist():
    """docs/bad_inputs.md is kept current: every test it cites is defined in tests/, and every
    test of the two reliability files is cited (so a new case adds its row)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    table = (root / "docs" / "bad_inputs.md").read_text(encoding="utf-8")
    cited = set(re.findall(r"\btest_[a-z0-9_]+", table)) - {"test_reliability_inputs", "test_reliability_runs",
                                                                "test_bert_cli", "test_gpt_cli", "test_bert_fixes", "test_assign_cli"}
    defined = {m for f in (root / "tests").glob("test_*.py")
               for m in re.findall(r"^def (test_[a-z0-9_]+)", f.read_text(encoding="utf-8"), re.M)}
    assert cited and cited <= defined, f"cited in docs/bad_inputs.md but not defined: {sorted(cited - defined)}"
    own = {m for name in ("test_reliability_inputs.py", "test_reliability_runs.py")
           for m in re.findall(r"^def (test_[a-z0-9_]+)", (root / "tests" / name).read_text(encoding="utf-8"), re.M)}
    missing = own - cited - {"test_the_bad_input_table_names_only_tests_that_exist"}
    assert not missing, f"tests with no row in docs/bad_inputs.md: {sorted(missing)}"


def test_pretraining_data_refuses_a_masking_probability_of_0_or_1():
    """The API refuses what the CLI refuses: p_mlm 0 would report an MLM loss of 0.0."""
    from minibert.pretraining import PretrainingData
    from minitransformer.data import BERT_SPECIALS, CharTokenizer

    tok = CharTokenizer.train(["ab cd", "ef gh"], specials=BERT_SPECIALS)
    docs = [[tok.encode("ab"), tok.encode("cd")], [tok.encode("ef"), tok.encode("gh")]]
    for p in (0.0, 1.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match=r"p_mlm: expected a probability strictly between 0 and 1, received"):
            PretrainingData({"train": docs}, tok, batch_size=2, max_len=16, seed=0, p_mlm=p)
    assert PretrainingData({"train": docs}, tok, batch_size=2, max_len=16, seed=0, p_mlm=0.15)("train", 0)["input_ids"].shape[0] == 2
