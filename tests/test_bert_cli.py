"""``python -m minibert`` end to end on tiny files made here, bit-exact resume of pretraining, and
bad input: one ``error:`` line and exit code 2, never a traceback."""
import json
import random
import re

import pytest
import torch
import transformers
from safetensors.torch import save_file

from minibert.cli import PROG, main
from minitransformer.checkpoint import load_state_dict_safetensors
from minitransformer.cli import run_cli

TINY_MODEL = ["--hidden-size", "16", "--num-hidden-layers", "1", "--num-attention-heads", "2", "--intermediate-size", "32",
              "--max-position-embeddings", "32", "--no-progress", "--batch-size", "8"]


def write_docs(path, n_docs=12, seed=0):
    rng = random.Random(seed)
    words = ["red", "blue", "cat", "dog", "sun", "rain", "big", "small"]
    docs = ["\n".join(" ".join(rng.choice(words) for _ in range(5)) + "." for _ in range(rng.randint(2, 5)))
            for _ in range(n_docs)]
    path.write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    return path


def cli(argv, capsys):
    capsys.readouterr()  # drop what building the fixtures printed
    code = run_cli(main, [str(a) for a in argv], prog=PROG)
    out = capsys.readouterr()
    return code, out.out, out.err


def pretrain_args(docs, out, *extra):
    return ["pretrain", "--data", docs, "--tokenizer", "char", "--out-dir", out, "--max-len", "24",
            "--eval-interval", "2", "--eval-steps", "1", *TINY_MODEL, *extra]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    d = tmp_path_factory.mktemp("pre")
    docs = write_docs(d / "docs.txt")
    code = run_cli(main, [str(a) for a in pretrain_args(docs, d / "run", "--max-steps", "4", "--warmup-steps", "1")], prog=PROG)
    assert code == 0
    return d


def test_pretrain_writes_checkpoint_and_reports_chance(pretrained):
    ckpt = pretrained / "run" / "checkpoint"
    assert (ckpt / "model.safetensors").is_file() and (ckpt / "tokenizer" / "tokenizer.json").is_file()
    assert (pretrained / "run" / "loss.png").is_file()
    rows = (pretrained / "run" / "metrics.jsonl").read_text().splitlines()
    assert any('"nsp_acc"' in r and '"mlm_acc"' in r for r in rows)


def test_pretraining_resume_is_bit_exact(tmp_path, capsys):
    docs = write_docs(tmp_path / "docs.txt")
    flat = ["--lr", "1e-3", "--min-lr", "1e-3", "--warmup-steps", "0", "--checkpoint-interval", "2"]  # a constant lr
    assert cli(pretrain_args(docs, tmp_path / "a", "--max-steps", "4", *flat), capsys)[0] == 0
    assert cli(pretrain_args(docs, tmp_path / "b", "--max-steps", "2", *flat), capsys)[0] == 0
    code, out, _ = cli(pretrain_args(docs, tmp_path / "b", "--max-steps", "4", "--resume", *flat), capsys)
    assert code == 0 and "chance" in out
    a = load_state_dict_safetensors(tmp_path / "a" / "checkpoint" / "model.safetensors")
    b = load_state_dict_safetensors(tmp_path / "b" / "checkpoint" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def write_tsv(path, rows, header="text\tlabel"):
    path.write_text(header + "\n" + "".join(f"{t}\t{lab}\n" for t, lab in rows), encoding="utf-8")
    return path


def test_finetune_classify_from_checkpoint_then_evaluate(pretrained, tmp_path, capsys):
    rows = [("red cat big.", "pos"), ("blue dog small.", "neg")] * 6 + [("red " * 400, "pos")]  # one very long text
    train = write_tsv(tmp_path / "train.tsv", rows)
    out = tmp_path / "ft"
    code, text, err = cli(["finetune", "--task", "classify", "--train", train, "--val", train, "--init", pretrained / "run",
                           "--out-dir", out, "--epochs", "1", "--no-progress", "--batch-size", "4"], capsys)
    assert code == 0, err
    assert "accuracy" in text and "macro" in text and "precision (精确率)" in text
    assert (out / "confusion_val.png").is_file() and (out / "predictions_val.tsv").is_file()
    code, text, err = cli(["evaluate", "--checkpoint", out, "--data", train, "--predictions", tmp_path / "p.jsonl",
                           "--confusion-matrix", tmp_path / "cm.png"], capsys)
    assert code == 0, err
    assert text.startswith("accuracy") and len((tmp_path / "p.jsonl").read_text().splitlines()) == len(rows)
    assert (tmp_path / "cm.png").is_file()


def hf_dir(tmp_path, vocab_extra=0):
    """A tiny random Hugging Face BERT saved locally with a vocab.txt of matching size."""
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "ann", "lee", "went", "to", "paris", "london", "."]
    words += [f"w{i}" for i in range(vocab_extra)]
    config = transformers.BertConfig(vocab_size=12, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=32)
    transformers.BertModel(config).save_pretrained(tmp_path)
    (tmp_path / "vocab.txt").write_text("\n".join(words) + "\n")
    return tmp_path


def write_conll(path, sentences):
    path.write_text("\n\n".join("\n".join(f"{w}\t{t}" for w, t in s) for s in sentences) + "\n", encoding="utf-8")
    return path


NER = [[("Ann", "B-PER"), ("went", "O"), ("to", "O"), ("Paris", "B-LOC"), (".", "O")],
       [("Lee", "B-PER"), ("went", "O"), ("to", "O"), ("London", "B-LOC")]] * 4


def test_finetune_ner_from_hugging_face_folder(tmp_path, capsys, caplog):
    model_dir = hf_dir(tmp_path / "hf")
    train = write_conll(tmp_path / "train.conll", NER)
    code, text, err = cli(["finetune", "--task", "ner", "--train", train, "--val", train, "--init-hf", model_dir,
                           "--out-dir", tmp_path / "ft", "--max-steps", "2", "--no-progress", "--batch-size", "4"], capsys)
    assert code == 0, err
    assert "entity-level" in text
    assert "randomly initialised: classifier.bias, classifier.weight" in caplog.text  # the new head is reported


def test_initializer_range_reaches_the_model_and_bad_values_exit_2(tmp_path, capsys):
    docs = write_docs(tmp_path / "docs.txt")
    run = tmp_path / "run"
    assert cli(pretrain_args(docs, run, "--max-steps", "1", "--warmup-steps", "0", "--initializer-range", "0.05"), capsys)[0] == 0
    config = json.loads((run / "checkpoint" / "config.json").read_text())
    assert config["initializer_range"] == 0.05
    code, _, err = cli(pretrain_args(docs, tmp_path / "bad", "--max-steps", "1", "--warmup-steps", "0", "--initializer-range", "0"), capsys)
    assert code == 2 and "initializer_range: expected > 0, received 0.0" in err and "Traceback" not in err


@pytest.mark.parametrize("case", ["tsv_line", "conll_line", "empty", "unseen_label", "vocab_size", "architecture"])
def test_bad_input_exits_2_with_a_clear_message(tmp_path, capsys, case):
    train = write_tsv(tmp_path / "train.tsv", [("red cat", "pos"), ("blue dog", "neg")] * 3)
    base = ["finetune", "--task", "classify", "--train", train, "--init", "random", "--tokenizer", "char",
            "--out-dir", tmp_path / "out", "--max-steps", "1", *TINY_MODEL]
    if case == "tsv_line":
        bad = tmp_path / "bad.tsv"
        bad.write_text("text\tlabel\nred cat\tpos\nno label column here\n")
        argv, want = base + ["--val", bad], rf"{bad}, line 3"
    elif case == "conll_line":
        bad = write_conll(tmp_path / "bad.conll", NER[:1])
        bad.write_text(bad.read_text() + "\nlonely_token_without_tag\n")
        argv = ["finetune", "--task", "ner", "--train", bad, "--init", "random", "--tokenizer", "char", "--out-dir",
                tmp_path / "o", *TINY_MODEL]
        want = rf"{bad}, line 7"
    elif case == "empty":
        (tmp_path / "empty.tsv").write_text("")
        argv, want = base + ["--val", tmp_path / "empty.tsv"], "empty"
    elif case == "unseen_label":
        argv, want = base + ["--val", write_tsv(tmp_path / "val.tsv", [("red", "pos"), ("sun", "neutral")])], "'neutral'"
    elif case == "vocab_size":
        argv = ["finetune", "--task", "ner", "--train", write_conll(tmp_path / "t.conll", NER), "--init-hf",
                hf_dir(tmp_path / "hf", vocab_extra=3), "--out-dir", tmp_path / "o"]
        want = r"15 tokens.*vocab_size=12"
    else:
        model_dir = hf_dir(tmp_path / "hf")
        save_file({"transformer.h.0.attn.weight": torch.zeros(2, 2)}, str(model_dir / "model.safetensors"))
        argv = ["finetune", "--task", "ner", "--train", write_conll(tmp_path / "t.conll", NER), "--init-hf", model_dir,
                "--out-dir", tmp_path / "o"]
        want = r"missing keys \[bert\.embeddings.*unexpected keys \[transformer\.h\.0"
    code, _, err = cli(argv, capsys)
    assert code == 2
    assert err.startswith(f"{PROG}: error: ") and "Traceback" not in err
    assert re.search(want, err), err
