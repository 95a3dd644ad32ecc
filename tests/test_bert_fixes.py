"""minibert fine-tuning fixes: validation scores each example once (and agrees with evaluate()),
max_len travels with the checkpoint, loader errors name the CLI flags, folders that are not BERT
are refused by name, and a vocabulary that misses the data is reported by its [UNK] rate."""
import json
import logging
from collections import Counter

import pytest
import torch
import transformers

import minibert.evaluate
import minibert.finetune
from minibert import BertConfig, BertForSequenceClassification, BertModel
from minibert.cli import PROG, build_parser, main
from minibert.commands import load_task_items
from minibert.evaluate import evaluate
from minibert.finetune import encode_classification, finetune, label_vocab, unk_rate, warn_unk_rate
from minibert.hf import load_tokenizer_from
from minibert.wordpiece import WordPieceTokenizer
from minitransformer.cli import run_cli
from minitransformer.data import BERT_SPECIALS, CharTokenizer, Example
from minitransformer.data.loaders import FORMATS, QUOTINGS
from minitransformer.trainer import TrainConfig
from tests.test_bert_cli import TINY_MODEL, hf_dir, write_tsv

ROWS = [("red cat big.", "pos"), ("blue dog small.", "neg"), ("big red sun.", "pos"), ("small blue rain.", "neg"),
        ("cat sun red.", "pos"), ("dog rain blue.", "neg")]


def cli(argv, capsys):
    capsys.readouterr()
    code = run_cli(main, [str(a) for a in argv], prog=PROG)
    out = capsys.readouterr()
    return code, out.out, out.err


def tiny_classifier(tokenizer, labels, max_position_embeddings=32):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=max_position_embeddings,
                        pad_token_id=tokenizer.pad_id, id2label=dict(enumerate(labels.labels)), task="classify")
    return BertForSequenceClassification(config)


# ----------------------------------------------------------------------------- 1. validation once per example


def test_validation_scores_each_example_once_and_matches_evaluate(tmp_path, monkeypatch):
    train = [Example(t, lab) for t, lab in ROWS * 2]
    val = [Example(t + " " * i, lab) for i, (t, lab) in enumerate((ROWS * 2)[:10])]  # 10 examples, batches of 4
    tokenizer = CharTokenizer.train([ex.text for ex in train], specials=BERT_SPECIALS)
    labels = label_vocab("classify", train)
    enc_train, enc_val = (encode_classification(x, tokenizer, labels, 32) for x in (train, val))
    calls = []
    real_collate = minibert.finetune.collate
    monkeypatch.setattr(minibert.finetune, "collate", lambda items, pad: calls.append(list(items)) or real_collate(items, pad))
    config = TrainConfig(out_dir=str(tmp_path / "run"), max_steps=2, batch_size=4, lr=1e-2, warmup_steps=0,
                         eval_interval=2, eval_steps=5, log_interval=1, progress=False, checkpoint_interval=-1)
    trainer = finetune(tiny_classifier(tokenizer, labels), tokenizer, "classify", enc_train, enc_val, config)
    val_ids = {id(it) for it in enc_val}
    val_calls = [c for c in calls if id(c[0]) in val_ids]
    assert [len(c) for c in val_calls] == [4, 4, 2] * 2  # two evaluations (steps 0 and 2), the last batch short
    assert Counter(id(it) for c in val_calls for it in c) == {id(it): 2 for it in enc_val}  # each example once each time
    last = [r for r in trainer.history if r["split"] == "val"][-1]
    direct = evaluate(trainer.raw_model, tokenizer, "classify", val, 32)["accuracy"]
    assert last["step"] == 2 and last["acc"] == pytest.approx(direct, abs=1e-12)


# ----------------------------------------------------------------------------- 2. max_len in the checkpoint


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory):
    """A classifier fine-tuned with --max-len 16 on texts longer than that."""
    d = tmp_path_factory.mktemp("ft")
    rows = [(t + " " + t + " " + t, lab) for t, lab in ROWS] * 2  # 36+ characters: truncated at 16 - 2
    train = write_tsv(d / "train.tsv", rows)
    code = run_cli(main, [str(a) for a in ["finetune", "--task", "classify", "--train", train, "--val", train,
                                           "--init", "random", "--tokenizer", "char", "--out-dir", d / "run",
                                           "--max-len", "16", "--max-steps", "2", *TINY_MODEL]], prog=PROG)
    assert code == 0
    return d


def test_finetune_saves_max_len_and_evaluate_uses_it(finetuned, tmp_path, capsys, caplog, monkeypatch):
    config = json.loads((finetuned / "run" / "checkpoint" / "config.json").read_text())
    assert config["max_len"] == 16
    seen = []
    real = minibert.evaluate.encode_task
    monkeypatch.setattr(minibert.evaluate, "encode_task", lambda *a: seen.append(a[-1]) or real(*a))
    outputs = {}
    for name, extra in (("saved", []), ("explicit", ["--max-len", "16"]), ("longer", ["--max-len", "30"])):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="minibert"):
            code, text, err = cli(["evaluate", "--checkpoint", finetuned / "run", "--data", finetuned / "train.tsv",
                                   "--predictions", tmp_path / f"{name}.tsv", *extra], capsys)
        assert code == 0, err
        outputs[name] = (text, (tmp_path / f"{name}.tsv").read_text())
        if name == "saved":
            assert "evaluating at max_len 16 (saved with the checkpoint)" in caplog.text
    assert seen == [16, 16, 30]
    assert outputs["saved"] == outputs["explicit"]
    assert "BertConfig: ignoring unknown config keys" not in caplog.text  # max_len is a known minibert key


def test_checkpoint_without_max_len_falls_back_to_128_capped_by_positions(finetuned, tmp_path, capsys, caplog):
    ckpt = tmp_path / "old"
    ckpt.mkdir()
    for f in (finetuned / "run" / "checkpoint").iterdir():
        if f.is_file():
            (ckpt / f.name).write_bytes(f.read_bytes())
    (ckpt / "tokenizer").mkdir()
    for f in (finetuned / "run" / "checkpoint" / "tokenizer").iterdir():
        (ckpt / "tokenizer" / f.name).write_bytes(f.read_bytes())
    config = json.loads((ckpt / "config.json").read_text())
    del config["max_len"]
    (ckpt / "config.json").write_text(json.dumps(config))
    with caplog.at_level(logging.INFO, logger="minibert"):
        code, _, err = cli(["evaluate", "--checkpoint", ckpt, "--data", finetuned / "train.tsv"], capsys)
    assert code == 0, err
    assert "evaluating at max_len 32 (default; the checkpoint saved none)" in caplog.text  # 128, capped at 32 positions
    code, _, err = cli(["evaluate", "--checkpoint", ckpt, "--data", finetuned / "train.tsv", "--max-len", "1"], capsys)
    assert code == 2 and "--max-len: expected an integer >= 2 ([CLS] and [SEP]), received 1" in err


# ----------------------------------------------------------------------------- 3. the confusion matrix title


def test_evaluate_titles_the_confusion_matrix_with_the_file_name(tmp_path, monkeypatch):
    train = [Example(t, lab) for t, lab in ROWS]
    tokenizer = CharTokenizer.train([ex.text for ex in train], specials=BERT_SPECIALS)
    model = tiny_classifier(tokenizer, label_vocab("classify", train))
    titles = []
    monkeypatch.setattr(minibert.evaluate, "plot_confusion_matrix", lambda *a, title: titles.append(title))
    source = tmp_path / ("deep_folder_" * 15) / "reviews.test.tsv"
    evaluate(model, tokenizer, "classify", train, 32, source=source, confusion_png=tmp_path / "cm.png")
    assert titles == ["reviews.test.tsv: confusion matrix"]


# ----------------------------------------------------------------------------- 4. flags in loader errors


def test_cli_has_format_and_quoting_flags_and_errors_name_them(finetuned, tmp_path, capsys):
    for command in ("finetune", "evaluate"):
        actions = {a.dest: a for a in build_parser()._subparsers._group_actions[0].choices[command]._actions}
        assert tuple(actions["format"].choices) == FORMATS and tuple(actions["quoting"].choices) == QUOTINGS
    odd = tmp_path / "train.dat"
    odd.write_text("text\tlabel\n" + "".join(f"{t}\t{lab}\n" for t, lab in ROWS))
    base = ["finetune", "--task", "classify", "--init", "random", "--tokenizer", "char", "--out-dir", tmp_path / "o",
            "--max-steps", "1", *TINY_MODEL]
    code, _, err = cli(base + ["--train", odd], capsys)
    assert code == 2 and "pass --format tsv, csv or jsonl" in err and "format=" not in err
    code, _, err = cli(["evaluate", "--checkpoint", finetuned / "run", "--data", odd], capsys)
    assert code == 2 and "pass --format tsv, csv or jsonl" in err and "format=" not in err
    code, text, err = cli(["evaluate", "--checkpoint", finetuned / "run", "--data", odd, "--format", "tsv"], capsys)
    assert code == 0 and text.startswith("accuracy"), err
    quoted = tmp_path / "quoted.tsv"
    quoted.write_text('text\tlabel\n"Great" movie\tpos\nfine\tneg\n')
    code, _, err = cli(base + ["--train", quoted], capsys)
    assert code == 2 and "pass --quoting none to read each line as-is" in err and "quoting=" not in err
    code, _, err = cli(["evaluate", "--checkpoint", finetuned / "run", "--data", quoted], capsys)
    assert code == 2 and "pass --quoting none" in err and "quoting=" not in err
    assert [ex.text for ex in load_task_items("classify", quoted, quoting="none")] == ['"Great" movie', "fine"]
    code, _, err = cli(base + ["--task", "ner", "--train", quoted, "--format", "tsv"], capsys)
    assert code == 2 and "--format: applies to classification files" in err


# ----------------------------------------------------------------------------- 5. folders that are not BERT


def gpt2_dir(path):
    config = transformers.GPT2Config(vocab_size=20, n_positions=16, n_embd=8, n_layer=1, n_head=2)
    transformers.GPT2LMHeadModel(config).save_pretrained(path)
    return path


@pytest.mark.parametrize("command", ["finetune", "pretrain"])
def test_init_hf_with_a_gpt2_folder_names_the_folder_and_the_file(tmp_path, capsys, command):
    folder = gpt2_dir(tmp_path / "gpt2")
    train = write_tsv(tmp_path / "train.tsv", ROWS)
    docs = tmp_path / "docs.txt"
    docs.write_text("\n\n".join(f"{a}\n{b}" for (a, _), (b, _) in zip(ROWS, ROWS[1:] + ROWS[:1])) + "\n")
    argv = (["finetune", "--task", "classify", "--train", train, "--out-dir", tmp_path / "o", "--init-hf", folder]
            if command == "finetune" else ["pretrain", "--data", docs, "--out-dir", tmp_path / "o", "--init-hf", folder])
    code, _, err = cli(argv, capsys)
    assert code == 2 and err.startswith(f"{PROG}: error: ") and "Traceback" not in err
    assert f"{folder / 'config.json'}: model_type is 'gpt2', not 'bert'" in err


def test_library_refuses_a_gpt2_folder_naming_its_config(tmp_path):
    folder = gpt2_dir(tmp_path / "gpt2")
    with pytest.raises(ValueError, match=r"gpt2[/\\]config\.json: model_type is 'gpt2', not 'bert'"):
        BertModel.from_pretrained(folder)


def test_bert_folder_without_vocab_txt_names_the_folder_and_the_file(tmp_path, capsys):
    folder = hf_dir(tmp_path / "hf")
    (folder / "vocab.txt").unlink()
    with pytest.raises(ValueError, match=r"hf: no vocab\.txt"):
        load_tokenizer_from(folder)
    train = write_tsv(tmp_path / "train.tsv", ROWS)
    code, _, err = cli(["finetune", "--task", "classify", "--train", train, "--out-dir", tmp_path / "o",
                        "--init-hf", folder], capsys)
    assert code == 2 and "Traceback" not in err
    assert f"--init-hf {folder}: no vocab.txt in the folder" in err


# ----------------------------------------------------------------------------- 6. the [UNK] rate

UNK_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "猫", "好", "."]
# WordPiece splits every CJK character into a word of its own; tokens (without [CLS]/[SEP]):
#   "the cat."  -> the cat .          0 [UNK] of 3
#   "猫吃鱼"     -> 猫 [UNK] [UNK]      2 of 3
#   "the 狗好"   -> the [UNK] 好        1 of 3       in all 3 of 9 = 33.3%
UNK_ROWS = [("the cat.", "a"), ("猫吃鱼", "b"), ("the 狗好", "a")]


def test_unk_rate_by_hand_and_the_warning(caplog):
    tokenizer = WordPieceTokenizer(UNK_VOCAB)
    items = [Example(t, lab) for t, lab in UNK_ROWS]
    encoded = encode_classification(items, tokenizer, label_vocab("classify", items), 16)
    assert unk_rate(encoded, tokenizer.unk_id) == pytest.approx(3 / 9)
    assert unk_rate(encoded[:1], tokenizer.unk_id) == 0.0
    with caplog.at_level(logging.WARNING, logger="minibert"):
        assert warn_unk_rate(encoded, tokenizer, "zh.tsv") == pytest.approx(3 / 9)
    assert "zh.tsv: 33.3% of the tokens are [UNK] (above 5%)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="minibert"):
        warn_unk_rate(encoded[:1], tokenizer, "en.tsv")
    assert "[UNK]" not in caplog.text  # English covered by the vocabulary: no warning


def test_finetune_and_evaluate_commands_warn_about_unk(tmp_path, capsys, caplog):
    folder = tmp_path / "hf"
    config = transformers.BertConfig(vocab_size=len(UNK_VOCAB), hidden_size=16, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=32, max_position_embeddings=32)
    transformers.BertModel(config).save_pretrained(folder)
    (folder / "vocab.txt").write_text("\n".join(UNK_VOCAB) + "\n", encoding="utf-8")
    data = write_tsv(tmp_path / "zh.tsv", UNK_ROWS * 2)
    with caplog.at_level(logging.WARNING, logger="minibert"):
        code, _, err = cli(["finetune", "--task", "classify", "--train", data, "--val", data, "--init-hf", folder,
                            "--out-dir", tmp_path / "ft", "--max-steps", "1", "--no-progress", "--batch-size", "2"], capsys)
    assert code == 0, err
    assert caplog.text.count(f"{data}: 33.3% of the tokens are [UNK]") == 2  # the training and the validation file
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="minibert"):
        code, _, err = cli(["evaluate", "--checkpoint", tmp_path / "ft", "--data", data], capsys)
    assert code == 0, err
    assert caplog.text.count(f"{data}: 33.3% of the tokens are [UNK]") == 1
