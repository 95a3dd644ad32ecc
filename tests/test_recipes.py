"""minibert.recipes: ch08 §8's pretraining on the notes, and the few-label draw of the CLI."""
from __future__ import annotations

import json

import pytest

from minibert.commands import few_labels
from minibert.recipes import NOTES_RECIPE, pretrain_on_notes, train_notes_tokenizer
from minitransformer.data.world_lexicon import OPINION_WORDS

TINY = {**NOTES_RECIPE, "steps": 3, "warmup": 1, "batch_size": 4, "eval_every": 0}


def test_the_notes_tokenizer_keeps_every_opinion_word_whole():
    """ch08 §8's reason for 1,200 pieces: every opinion word is one piece ('▁superb'), so a masked
    word cannot be guessed from another piece of itself."""
    tok = train_notes_tokenizer(NOTES_RECIPE, "en")
    words = sorted({a.en for group in OPINION_WORDS.values() for a in group})
    assert [w for w in words if len(tok.encode("a " + w)) != 2] == []


def test_pretrain_on_notes_saves_the_model_and_its_recipe_and_repeats_exactly(tmp_path):
    from minitransformer.data.world_files import build_world, world_files

    world = tmp_path / "world"  # a small world keeps the test fast: 200 notes, a 300-piece tokenizer
    world.mkdir()
    small = {"stories": 40, "unlabelled_reviews": 20, "notes": 200, "reviews": 40, "ner": 40, "translation": 40,
             "short_reviews": 40}
    for name, text in world_files(build_world(0, small)).items():
        (world / name).write_text(text, encoding="utf-8")
    recipe = {**TINY, "vocab_size": 300, "n_val_docs": 10}
    folder, history = pretrain_on_notes(tmp_path / "a", recipe, lang="en", seed=3, data_dir=world)
    again, _ = pretrain_on_notes(tmp_path / "b", recipe, lang="en", seed=3, data_dir=world)
    other, _ = pretrain_on_notes(tmp_path / "c", recipe, lang="en", seed=4, data_dir=world)
    assert json.loads((tmp_path / "a" / "pretrained_notes.json").read_text()) == {**recipe, "lang": "en", "seed": 3}
    config = json.loads((folder / "config.json").read_text())
    assert (config["hidden_size"], config["num_hidden_layers"], config["vocab_size"]) == (64, 2, 300)
    assert config["hidden_dropout_prob"] == 0.0
    assert [r["step"] for r in history if r["split"] == "train"][-1] == 3
    weights = lambda f: (f / "model.safetensors").read_bytes()  # noqa: E731
    assert weights(folder) == weights(again) and weights(folder) != weights(other)


def test_few_labels_draws_n_distinct_examples_by_seed():
    train = list(range(100))
    a, b, c = few_labels(train, 32, "t.tsv", 0), few_labels(train, 32, "t.tsv", 0), few_labels(train, 32, "t.tsv", 1)
    assert len(set(a)) == 32 and set(a) <= set(train)
    assert a == b and a != c
    with pytest.raises(ValueError, match=r"--train-size: expected at most the 100 training examples of t.tsv, received 101"):
        few_labels(train, 101, "t.tsv", 0)


def test_finetune_refuses_a_train_size_above_the_training_set(tmp_path, capsys):
    from minibert.cli import PROG, main
    from minitransformer.cli import run_cli

    data = tmp_path / "d.tsv"
    data.write_text("text\tlabel\n" + "".join(f"review {i} {'good' if i % 2 else 'bad'}\t{'pos' if i % 2 else 'neg'}\n"
                                            for i in range(40)), encoding="utf-8")
    code = run_cli(main, ["finetune", "--task", "classify", "--train", str(data), "--train-size", "500", "--init", "random",
                          "--tokenizer", "char", "--out-dir", str(tmp_path / "run"), "--max-steps", "1"], prog=PROG)
    assert code == 2
    err = capsys.readouterr().err
    assert "--train-size: expected at most the 36 training examples" in err and "received 500" in err


def test_the_cli_log_handler_writes_to_the_stderr_of_the_moment(monkeypatch):
    """minibert's CLI logs to stderr; called in-process after stderr was replaced (and the old one
    closed), a line still goes to the current stderr, not to a closed stream ("Logging error")."""
    import io
    import logging

    from minitransformer.cli import StderrHandler

    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr("sys.stderr", first)
    handler = StderrHandler()
    log = logging.getLogger("test_the_cli_log_handler")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("one")
        first.close()
        monkeypatch.setattr("sys.stderr", second)
        log.warning("two")
    finally:
        log.removeHandler(handler)
    assert second.getvalue() == "two\n"
