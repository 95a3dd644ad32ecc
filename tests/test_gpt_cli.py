"""``python -m minigpt train`` / ``sample`` end to end on tiny texts in tmp_path: a resumed run is
bit-exact, sampling is seeded and honours --stop, a Hugging Face folder samples like transformers,
and bad input (short text, bad arguments, another model's checkpoint, a NaN loss) ends with a
message and exit status 2, never a traceback.
"""
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2LMHeadModel
from transformers import GPT2Tokenizer as HFGPT2Tokenizer

from minigpt import GPT, GPTConfig
from minigpt.bpe import GPT2Tokenizer
from minigpt.cli import PROG, main
from minitransformer.checkpoint import load_state_dict_safetensors, load_trainer_state, save_checkpoint
from minitransformer.cli import run_cli
from minitransformer.plotting import read_jsonl

REPO = Path(__file__).resolve().parents[1]
TEXT = "".join(f"Line {i}: the quick brown fox jumps over the lazy dog; 狐狸跳过了懒狗。\n" for i in range(60))
SMALL = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16", "--batch-size", "4",
         "--eval-steps", "2", "--no-progress", "--warmup-steps", "0"]


def cli(*argv) -> int:
    return run_cli(main, [str(a) for a in argv], prog=PROG)


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "input.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def train(out, data, *extra):
    return cli("train", "--data", data, "--out-dir", out, *SMALL, *extra)


def test_train_reports_loss_and_perplexity_and_resume_is_bit_exact(tmp_path, text_file, capsys):
    # constant lr (lr = min_lr) so that a 3-step run extended to 6 follows the 6-step schedule;
    # dropout on, so the restored RNG state matters
    same = ["--lr", "3e-3", "--min-lr", "3e-3", "--dropout", "0.1", "--eval-interval", "3", "--log-interval", "1"]
    assert train(tmp_path / "whole", text_file, "--max-steps", "6", *same) == 0
    out = capsys.readouterr().out
    val = [r for r in read_jsonl(tmp_path / "whole" / "metrics.jsonl") if r["split"] == "val"]
    assert [r["step"] for r in val] == [0, 3, 6]
    assert math.isclose(val[-1]["perplexity"], math.exp(val[-1]["loss"]), rel_tol=1e-9)
    assert f"step 6 val: loss {val[-1]['loss']:.4f}, perplexity {val[-1]['perplexity']:.3f}" in out
    assert train(tmp_path / "split", text_file, "--max-steps", "3", *same) == 0
    assert train(tmp_path / "split", text_file, "--max-steps", "6", "--resume", *same, "--seed", "99") == 0
    a = load_state_dict_safetensors(tmp_path / "whole" / "checkpoint" / "model.safetensors")
    b = load_state_dict_safetensors(tmp_path / "split" / "checkpoint" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the CLI's default init: GPT-2's 0.02 carried to width 16, 0.02·√(768/16), saved in config.json
    assert GPT.from_checkpoint(tmp_path / "whole" / "checkpoint").config.init_std == pytest.approx(0.02 * math.sqrt(48))
    rows = lambda run: [(r["step"], r["split"], r["loss"]) for r in read_jsonl(tmp_path / run / "metrics.jsonl")]
    assert rows("split") == rows("whole")


def test_sample_is_seeded_and_stops_at_the_stop_text(tmp_path, text_file, capsys):
    assert train(tmp_path / "run", text_file, "--max-steps", "80", "--lr", "2e-2", "--eval-interval", "0") == 0
    capsys.readouterr()
    sample = ["sample", "--checkpoint", tmp_path / "run", "--prompt", "Line 1", "--max-new-tokens", "40"]
    assert cli(*sample, "--seed", "3", "--top-k", "5") == 0
    first = capsys.readouterr().out
    assert cli(*sample, "--seed", "3", "--top-k", "5") == 0
    assert capsys.readouterr().out == first
    assert first.startswith("Line 1") and len(first) > 30
    assert cli(*sample, "--seed", "4", "--top-p", "0.9", "--temperature", "0.8", "--stop", "e") == 0
    stopped = capsys.readouterr().out
    assert "e" not in stopped[len("Line 1"):] and len(stopped) <= len("Line 1") + 41
    assert cli(*sample, "--greedy", "--num-samples", "2") == 0
    a, b = capsys.readouterr().out.split("---\n")
    assert a == b  # greedy ignores the seed


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    """A tiny random GPT-2 with a byte-level BPE vocabulary trained here, in the Hugging Face layout."""
    path = tmp_path_factory.mktemp("hfgpt2")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator([TEXT] * 3, trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    tok.model.save(str(path))
    tokenizer = GPT2Tokenizer.from_dir(path)
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=32, vocab_size=tokenizer.vocab_size, n_layer=2, n_head=2, n_embd=32))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    model.save_pretrained(path, tokenizer)
    return path


def test_sample_from_a_hugging_face_folder_matches_transformers(hf_folder, capsys):
    assert cli("sample", "--checkpoint", hf_folder, "--prompt", "the quick", "--greedy", "--max-new-tokens", "12") == 0
    ours = capsys.readouterr().out
    tok, ref = HFGPT2Tokenizer.from_pretrained(hf_folder), GPT2LMHeadModel.from_pretrained(hf_folder).eval()
    ids = torch.tensor([tok.encode("the quick")])
    out = ref.generate(ids, max_new_tokens=12, do_sample=False, pad_token_id=0)[0].tolist()
    eot = tok.convert_tokens_to_ids("<|endoftext|>")
    out = out[: out.index(eot, ids.shape[1])] if eot in out[ids.shape[1]:] else out
    assert ours == tok.decode(out) + "\n"


def test_fine_tune_from_a_hugging_face_folder(tmp_path, hf_folder, text_file, capsys):
    assert train(tmp_path / "ft", text_file, "--init-from", hf_folder, "--max-steps", "2", "--eval-interval", "0") == 0
    ck = tmp_path / "ft" / "checkpoint"
    config = json.loads((ck / "config.json").read_text())
    assert config["n_embd"] == 32  # the pretrained size, not --n-embd 16
    assert config["block_size"] == 16  # --block-size 16 cropped the 32 positions
    assert (ck / "tokenizer" / "merges.txt").is_file()
    start = GPT.from_pretrained(hf_folder)
    tuned = GPT.from_checkpoint(ck)
    assert tuned.transformer.wpe.weight.shape == (16, 32)
    assert not torch.equal(start.transformer.wte.weight, tuned.transformer.wte.weight)  # it trained
    assert cli("sample", "--checkpoint", tmp_path / "ft", "--prompt", "Line", "--max-new-tokens", "5") == 0


def test_the_corpus_is_the_files_ids_joined_by_end_of_text_in_int32(tmp_path):
    """load_corpus: per file, the first 90 % trains and the last 10 % validates; the parts' ids
    (encoded once each) are joined by <|endoftext|>, stored as int32; batches come out int64."""
    from minigpt.train import encode_documents, join_documents, lm_batches, load_corpus, split_text

    texts = ["abcdefghij" * 30, "klmnopqrst" * 20]
    paths = []
    for i, t in enumerate(texts):
        paths.append(tmp_path / f"f{i}.txt")
        paths[-1].write_text(t, encoding="utf-8")
    corpus = load_corpus(paths, block_size=8)
    tok = corpus.tokenizer
    parts = [split_text(t) for t in texts]
    expected_train = tok.encode(parts[0][0]) + [tok.eot_id] + tok.encode(parts[1][0])
    assert corpus.train.dtype == corpus.val.dtype == torch.int32
    one = torch.tensor([3, 1, 4], dtype=torch.int32)
    assert join_documents([one], tok.eot_id).data_ptr() == one.data_ptr()  # one file's stream is not copied again
    assert corpus.train.tolist() == expected_train
    assert corpus.val.tolist() == tok.encode(parts[0][1]) + [tok.eot_id] + tok.encode(parts[1][1])
    assert torch.equal(encode_documents(tok, [p[0] for p in parts]), corpus.train)
    assert join_documents([], tok.eot_id).tolist() == [] and join_documents([[1, 2], [3]], None).tolist() == [1, 2, 3]
    batch = lm_batches(corpus, 8, 4, seed=0)("train", 0)
    assert batch["input_ids"].dtype == batch["labels"].dtype == torch.int64
    assert torch.equal(batch["input_ids"][:, 1:], batch["labels"][:, :-1])


def test_text_shorter_than_block_size_plus_one_is_a_clear_error(tmp_path, capsys):
    short = tmp_path / "short.txt"
    short.write_text("abcdefghij" * 10, encoding="utf-8")  # the 10% validation part has 10 characters
    assert train(tmp_path / "run", short, "--max-steps", "2") == 2
    err = capsys.readouterr().err
    assert f"{PROG}: error:" in err and "validation part" in err and "needs at least 17" in err


@pytest.mark.parametrize("argv, match", [
    (["train", "--max-steps", "0"], "max_steps: expected a positive integer"),
    (["train", "--n-embd", "30", "--n-head", "4"], "n_embd divisible by n_head"),
    (["train", "--device", "tpu"], "device: expected one of"),
    (["train", "--init-std", "0"], "init_std: expected > 0"),
    (["sample", "--checkpoint", "CK", "--temperature", "0"], "temperature: expected > 0"),
    (["sample", "--checkpoint", "CK", "--top-p", "1.5"], r"top_p: expected a probability in \(0, 1\]"),
    (["sample", "--checkpoint", "CK", "--top-k", "0"], "top_k: expected a positive integer"),
    (["sample", "--checkpoint", "nowhere"], "nowhere: expected a checkpoint folder"),
])
def test_bad_arguments_print_a_message_and_exit_2(tmp_path, text_file, argv, match, capsys):
    if argv[0] == "sample" and "CK" in argv:
        assert train(tmp_path / "ck", text_file, "--max-steps", "1", "--eval-interval", "0") == 0
        argv = [tmp_path / "ck" if a == "CK" else a for a in argv]
    else:
        argv = [*argv, "--data", text_file, "--out-dir", tmp_path / "run"] if argv[0] == "train" else argv
    capsys.readouterr()
    assert cli(*argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{PROG}: error:") and re.search(match, err), err


def test_unknown_option_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        cli("sample", "--checkpoint", "x", "--no-such-flag")
    assert e.value.code == 2 and "unrecognized arguments: --no-such-flag" in capsys.readouterr().err


def test_another_models_checkpoint_names_the_keys(tmp_path, capsys):
    bert_like = {"hidden_size": 32, "num_attention_heads": 4, "vocab_size": 50}
    save_checkpoint(tmp_path / "ck", torch.nn.Linear(2, 2), bert_like)
    assert cli("sample", "--checkpoint", tmp_path / "ck") == 2
    assert "unknown fields ['hidden_size', 'num_attention_heads']" in capsys.readouterr().err
    save_checkpoint(tmp_path / "ck2", torch.nn.Linear(2, 2), GPTConfig(block_size=8, vocab_size=10, n_layer=1, n_head=1, n_embd=8))
    assert cli("sample", "--checkpoint", tmp_path / "ck2") == 2
    err = capsys.readouterr().err
    assert "missing keys [transformer.wte.weight" in err and "unexpected keys [bias, weight]" in err


def test_nan_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(tmp_path, text_file, capsys):
    # an absurd learning rate blows the weights up after the first update; the next loss is not finite
    code = train(tmp_path / "run", text_file, "--max-steps", "5", "--lr", "1e30", "--min-lr", "1e30",
                 "--checkpoint-interval", "1", "--eval-interval", "0", "--grad-clip", "0")
    assert code == 2
    err = capsys.readouterr().err
    assert "training stopped before the update" in err and ("nan" in err or "inf" in err)
    ck = tmp_path / "run" / "checkpoint"
    step = load_trainer_state(ck)["step"]
    assert 1 <= step < 5
    assert all(torch.isfinite(t).all() for t in load_state_dict_safetensors(ck / "model.safetensors").values())


def test_module_entry_point_exits_2_without_a_traceback(tmp_path):
    bad = subprocess.run([sys.executable, "-m", "minigpt", "train", "--data", str(tmp_path / "missing.txt")],
                         capture_output=True, text=True, cwd=REPO)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.startswith(f"{PROG}: error:") and "missing.txt" in bad.stderr


@pytest.mark.parametrize("command, words", [("train", ["--tokenizer", "--resume", "--grad-accum", "perplexity"]),
                                            ("sample", ["--top-p", "--stop", "block_size"])])
def test_help_lists_the_options(command, words, capsys):
    with pytest.raises(SystemExit) as e:
        cli(command, "--help")
    out = capsys.readouterr().out
    assert e.value.code == 0 and all(w in out for w in words)


@pytest.mark.parametrize("module", ["minigpt.cli", "minibert.cli"])
def test_every_help_page_prints_single_percent_signs(module):
    # argparse %-formats argument help but prints descriptions as written, so "%%" there shows doubled
    import argparse
    import importlib

    parser = importlib.import_module(module).build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    pages = [parser.format_help()] + [p.format_help() for p in sub.choices.values()]
    assert len(pages) >= 3 and all("%%" not in page for page in pages)
    assert any("%" in page for page in pages)  # the pages do use percent signs
