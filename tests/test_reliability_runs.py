"""Run folders (issue #15): an earlier run is never lost, one training at a time per folder, one
resume path (``.checkpoint.old`` included), clear errors for unusable folders and for resumes that
cannot work, and a resumed run whose records are the uninterrupted run's, byte for byte.

Tiny models, a few steps: the Trainer on TinyLM, and the CLIs on a few lines of text."""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from minibert.cli import PROG as BERT_PROG
from minibert.cli import main as bert_main
from minigpt.cli import PROG as GPT_PROG
from minigpt.cli import main as gpt_main
from minitransformer.checkpoint import load_trainer_state, save_checkpoint, save_state_dict_safetensors, seed_everything
from minitransformer.cli import run_cli
from minitransformer.plotting import read_jsonl
from minitransformer.runs import LOCK_FILE, RunLock, lock_holder
from minitransformer.trainer import TrainConfig, Trainer
from tests.ddp_worker import TinyLM, lm_batches

REPO = Path(__file__).resolve().parents[1]
TEXT = "".join(f"Line {i}: the quick brown fox jumps over the lazy dog.\n" for i in range(40))
BERT_TINY = ["--hidden-size", "8", "--num-hidden-layers", "1", "--num-attention-heads", "1", "--intermediate-size", "8",
             "--max-position-embeddings", "32", "--max-len", "24", "--batch-size", "4", "--no-progress"]
GPT_SMALL = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16", "--batch-size", "4",
             "--eval-steps", "1", "--eval-interval", "2", "--log-interval", "1", "--no-progress", "--warmup-steps", "0"]


class Preempted(Exception):
    """The crash a test injects (a kill, a preemption) at a chosen step."""


def config(out_dir, **kw):
    base = dict(out_dir=str(out_dir), max_steps=4, batch_size=4, lr=1e-2, min_lr=1e-3, warmup_steps=1,
                eval_interval=0, eval_steps=2, log_interval=1, progress=False)
    return TrainConfig(**{**base, **kw})


def trainer(out_dir, seed=0, get_batch=None, dropout=0.0, **kw) -> Trainer:
    seed_everything(seed)
    cfg = config(out_dir, **kw)
    return Trainer(TinyLM(dropout=dropout), cfg, get_batch or lm_batches(cfg.batch_size))


def snapshot(folder) -> dict:
    """Every file under ``folder`` (relative name -> bytes)."""
    root = Path(folder)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def gpt(capsys, *argv):
    capsys.readouterr()
    code = run_cli(gpt_main, [str(a) for a in argv], prog=GPT_PROG)
    out = capsys.readouterr()
    return code, out.out, out.err


def bert(capsys, *argv):
    capsys.readouterr()
    code = run_cli(bert_main, [str(a) for a in argv], prog=BERT_PROG)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "input.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def gpt_train(capsys, out, data, *extra):
    return gpt(capsys, "train", "--data", data, "--out-dir", out, *GPT_SMALL, *extra)


def fake_run(out_dir) -> dict:
    """A folder holding a run's records (enough for the refusal, which happens before any work)."""
    out = Path(out_dir)
    save_checkpoint(out / "checkpoint", TinyLM(), {"v": 1}, trainer_state={"step": 3})
    (out / "metrics.jsonl").write_text('{"step": 3, "split": "train", "loss": 1.0}\n')
    return snapshot(out)


# ----------------------------------------------------------------------------- lost data


def test_a_folder_holding_a_run_is_refused_without_resume_or_overwrite(tmp_path):
    trainer(tmp_path / "run", max_steps=4, checkpoint_interval=2).fit()
    before = snapshot(tmp_path / "run")
    with pytest.raises(ValueError, match=r"holds a run \(checkpoint, metrics.jsonl.*--resume.*--overwrite"):
        trainer(tmp_path / "run", max_steps=2, seed=99)
    assert snapshot(tmp_path / "run") == before  # not a byte changed
    again = trainer(tmp_path / "run", max_steps=2, seed=99, overwrite=True)
    assert [r["step"] for r in again.fit()] == [1, 2]
    assert [r["step"] for r in read_jsonl(tmp_path / "run" / "metrics.jsonl")] == [1, 2]
    assert load_trainer_state(tmp_path / "run" / "checkpoint")["step"] == 2
    with pytest.raises(ValueError, match="at most one of them"):
        config(tmp_path / "run", resume=True, overwrite=True)


def test_overwrite_deletes_the_old_records_even_when_the_new_run_saves_none(tmp_path):
    trainer(tmp_path / "run", max_steps=3).fit()
    trainer(tmp_path / "run", max_steps=2, checkpoint_interval=-1, overwrite=True).fit()
    assert not (tmp_path / "run" / "checkpoint").exists()  # no stale checkpoint beside the new metrics
    assert [r["step"] for r in read_jsonl(tmp_path / "run" / "metrics.jsonl")] == [1, 2]


def test_a_trainer_may_fit_twice_in_its_own_folder(tmp_path):
    t = trainer(tmp_path / "run", max_steps=2)
    t.fit()
    t.config.max_steps = 3
    assert [r["step"] for r in t.fit()] == [1, 2, 3]


def test_cli_forgetting_resume_is_refused_and_overwrite_replaces(tmp_path, text_file, capsys):
    out = tmp_path / "R"
    assert gpt_train(capsys, out, text_file, "--max-steps", "4")[0] == 0
    before = snapshot(out)
    code, _, err = gpt_train(capsys, out, text_file, "--max-steps", "2", "--seed", "99")
    assert code == 2 and "holds a run" in err and str(out) in err and "--overwrite" in err and "Traceback" not in err
    assert snapshot(out) == before
    assert gpt_train(capsys, out, text_file, "--max-steps", "2", "--seed", "99", "--overwrite")[0] == 0
    assert [r["step"] for r in read_jsonl(out / "metrics.jsonl") if r["split"] == "train"] == [1, 2]


@pytest.mark.parametrize("command", ["pretrain", "finetune"])
def test_minibert_refuses_a_folder_holding_a_run(tmp_path, capsys, command):
    out = tmp_path / "R"
    before = fake_run(out)
    argv = [command, "--out-dir", out] + (["--task", "classify", "--train", tmp_path / "none.tsv", "--init", "random"]
                                          if command == "finetune" else ["--data", tmp_path / "none.txt"])
    code, _, err = bert(capsys, *argv)
    assert code == 2 and "holds a run" in err and "--overwrite" in err and "Traceback" not in err
    assert snapshot(out) == before
    code, _, err = bert(capsys, *argv, "--overwrite")  # accepted: the next complaint is the missing data file
    assert code == 2 and "none." in err and "holds a run" not in err
    code, _, err = bert(capsys, *argv, "--overwrite", "--resume")
    assert code == 2 and "at most one of them" in err


# ----------------------------------------------------------------------------- one training at a time


def test_a_locked_folder_is_refused_naming_the_process(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    late = trainer(out)  # built before the other training started: its fit() must still refuse
    with RunLock(out):
        assert lock_holder(out)["pid"] == os.getpid()
        with pytest.raises(ValueError, match=rf"in use by process {os.getpid()}.*choose another --out-dir"):
            trainer(out)
        with pytest.raises(ValueError, match=rf"in use by process {os.getpid()}"):
            late.fit()
        assert not (out / "metrics.jsonl").exists()
    assert lock_holder(out) is None and not (out / LOCK_FILE).exists()
    trainer(out).fit()  # free again
    assert not (out / LOCK_FILE).exists()


def test_a_lock_held_by_another_process_and_a_stale_lock(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    code = f"from minitransformer.runs import RunLock; import sys, time; lock = RunLock({str(out)!r}).acquire(); print('held', flush=True); time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ValueError, match=rf"in use by process {holder.pid}"):
            trainer(out)
    finally:
        holder.kill()  # kill -9: the lock file stays, naming a process that no longer runs
        holder.wait()
    assert json.loads((out / LOCK_FILE).read_text())["pid"] == holder.pid
    assert lock_holder(out) is None  # stale
    trainer(out).fit()


# ----------------------------------------------------------------------------- one resume path


def test_resume_from_checkpoint_old_after_a_crash_between_the_renames(tmp_path, text_file, capsys):
    same = ["--lr", "3e-3", "--min-lr", "3e-3", "--dropout", "0.1"]
    assert gpt_train(capsys, tmp_path / "whole" / "R", text_file, "--max-steps", "6", *same)[0] == 0
    split = tmp_path / "split" / "R"
    assert gpt_train(capsys, split, text_file, "--max-steps", "3", *same)[0] == 0
    os.rename(split / "checkpoint", split / ".checkpoint.old")  # what a crash between the two renames leaves
    code, out, err = gpt_train(capsys, split, text_file, "--max-steps", "6", "--resume", *same)
    assert code == 0, err
    assert (split / "checkpoint").is_dir() and not (split / ".checkpoint.old").exists()
    assert snapshot(split)["checkpoint/model.safetensors"] == snapshot(tmp_path / "whole" / "R")["checkpoint/model.safetensors"]
    # without --resume the backup still counts as a run to keep
    os.rename(split / "checkpoint", split / ".checkpoint.old")
    code, _, err = gpt_train(capsys, split, text_file, "--max-steps", "2")
    assert code == 2 and ".checkpoint.old" in err


def test_resume_without_a_checkpoint_names_the_folder(tmp_path, text_file, capsys):
    code, _, err = gpt_train(capsys, tmp_path / "empty", text_file, "--max-steps", "2", "--resume")
    assert code == 2 and "found none" in err and str(tmp_path / "empty" / "checkpoint") in err


# ----------------------------------------------------------------------------- unusable folders


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder nobody may write into: chmod 555, or for root (whom chmod does not stop) /sys."""
    if os.geteuid() == 0:
        if not os.path.ismount("/sys"):
            pytest.skip("running as root without a read-only /sys")
        yield Path("/sys")
        return
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o555)
    yield d
    d.chmod(0o755)


def test_out_dir_that_is_a_file_or_read_only_is_a_value_error(tmp_path, read_only_dir):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=rf"expected a folder, received the file {tmp_path / 'file'}"):
        trainer(tmp_path / "file")
    with pytest.raises(ValueError, match="whose parent .*file is a file"):
        trainer(tmp_path / "file" / "run")
    for out in (read_only_dir, read_only_dir / "run"):
        with pytest.raises(ValueError, match=rf"{out}.*choose another --out-dir"):
            trainer(out).fit()


def test_an_unwritable_parent_is_refused_before_any_work(tmp_path, monkeypatch):
    # what a user without write permission gets (root passes os.access, so it is simulated here)
    monkeypatch.setattr("minitransformer.runs.os.access", lambda path, mode: Path(path) != tmp_path)
    with pytest.raises(ValueError, match=rf"expected a writable folder, received {tmp_path / 'a' / 'b'} \({tmp_path} is read-only\)"):
        trainer(tmp_path / "a" / "b")


@pytest.mark.parametrize("command", ["train", "pretrain", "finetune"])
def test_cli_out_dir_that_is_a_file_or_read_only(tmp_path, text_file, read_only_dir, capsys, command):
    tsv = tmp_path / "t.tsv"
    tsv.write_text("text\tlabel\n" + "".join(f"{w} {i}\t{'pos' if i % 2 else 'neg'}\n" for i, w in
                                             enumerate(["red sun", "blue cat", "big dog", "small rain"] * 3)))
    run = {"train": lambda out: gpt(capsys, "train", "--data", text_file, "--out-dir", out, *GPT_SMALL, "--max-steps", "1"),
           "pretrain": lambda out: bert(capsys, "pretrain", "--data", docs, "--tokenizer", "char", *BERT_TINY,
                                        "--max-steps", "1", "--warmup-steps", "0", "--out-dir", out),
           "finetune": lambda out: bert(capsys, "finetune", "--task", "classify", "--train", tsv, "--init", "random",
                                        "--tokenizer", "char", *BERT_TINY, "--max-steps", "1", "--out-dir", out)}[command]
    docs = tmp_path / "docs.txt"
    docs.write_text("\n\n".join(f"Doc {i} says hello.\nIt ends here {i}." for i in range(8)) + "\n")
    (tmp_path / "file").write_text("x")
    for out in (tmp_path / "file", read_only_dir / "run"):
        code, _, err = run(out)
        assert code == 2 and str(out) in err and "Traceback" not in err, err


# ----------------------------------------------------------------------------- resumes that cannot work


def test_resume_with_max_steps_not_past_the_checkpoint_is_refused(tmp_path, text_file, capsys):
    trainer(tmp_path / "run", max_steps=4).fit()
    for steps in (2, 4):
        with pytest.raises(ValueError, match=rf"max_steps: expected more than the checkpoint's step 4.*received {steps}"):
            trainer(tmp_path / "run", max_steps=steps, resume=True)
    assert gpt_train(capsys, tmp_path / "R", text_file, "--max-steps", "4")[0] == 0
    before = snapshot(tmp_path / "R")
    code, _, err = gpt_train(capsys, tmp_path / "R", text_file, "--max-steps", "3", "--resume")
    assert code == 2 and "more than the checkpoint's step 4" in err and "received 3" in err
    assert snapshot(tmp_path / "R") == before


def test_resume_on_text_with_unknown_characters_is_refused(tmp_path, text_file, capsys):
    assert gpt_train(capsys, tmp_path / "R", text_file, "--max-steps", "2")[0] == 0
    other = tmp_path / "other.txt"
    other.write_text("Über café naïve — " * 3 + TEXT, encoding="utf-8")
    code, _, err = gpt_train(capsys, tmp_path / "R", other, "--max-steps", "4", "--resume")
    assert code == 2 and "Traceback" not in err
    assert "4 unknown distinct character(s)" in err and "'é' x3" in err and str(other) in err
    assert gpt_train(capsys, tmp_path / "R", text_file, "--max-steps", "4", "--resume")[0] == 0  # its own data: fine


# ----------------------------------------------------------------------------- resume, exactly


def test_resumed_records_equal_the_uninterrupted_runs(tmp_path):
    # log every 4 steps, checkpoint every 3, crash at step 8: the checkpoint at 6 holds steps 5-6 of the
    # window that the row at step 8 averages
    kw = dict(max_steps=10, log_interval=4, checkpoint_interval=3, eval_interval=5, dropout=0.2)
    trainer(tmp_path / "whole" / "run", **kw).fit()
    data = lm_batches(4)

    def crashing(split, index):
        if split == "train" and index >= 7:
            raise Preempted
        return data(split, index)

    with pytest.raises(Preempted):
        trainer(tmp_path / "split" / "run", get_batch=crashing, **kw).fit()
    assert load_trainer_state(tmp_path / "split" / "run" / "checkpoint")["step"] == 6
    trainer(tmp_path / "split" / "run", seed=99, resume=True, **kw).fit()

    def rows(run):
        return [{k: v for k, v in r.items() if k != "tokens_per_s"} for r in read_jsonl(tmp_path / run / "run" / "metrics.jsonl")]

    def table(run):
        with open(tmp_path / run / "run" / "metrics.csv", newline="") as f:
            return [{k: v for k, v in r.items() if k != "tokens_per_s"} for r in csv.DictReader(f)]

    assert [r["step"] for r in rows("whole") if r["split"] == "train"] == [4, 8, 10]
    assert rows("split") == rows("whole")  # row for row, every value exact
    assert table("split") == table("whole")
    whole, split = snapshot(tmp_path / "whole" / "run"), snapshot(tmp_path / "split" / "run")
    assert split["loss.png"] == whole["loss.png"]
    assert split["checkpoint/model.safetensors"] == whole["checkpoint/model.safetensors"]


def test_safetensors_bytes_are_the_same_for_the_same_weights(tmp_path):
    torch.manual_seed(0)
    state = TinyLM().state_dict()
    blobs = set()
    for i in range(24):  # the library's own metadata order varies from one save to the next
        save_state_dict_safetensors(state, tmp_path / f"{i}.safetensors")
        blobs.add((tmp_path / f"{i}.safetensors").read_bytes())
    assert len(blobs) == 1
    a, b = (trainer(tmp_path / name / "run", max_steps=2) for name in ("a", "b"))
    a.fit(), b.fit()
    sa, sb = snapshot(tmp_path / "a" / "run" / "checkpoint"), snapshot(tmp_path / "b" / "run" / "checkpoint")
    assert sa["model.safetensors"] == sb["model.safetensors"]
    assert sa["trainer_state.safetensors"] == sb["trainer_state.safetensors"]
