"""The training loop: gradient accumulation, determinism, bit-exact resume, NaN handling,
evaluation, metrics files, torch.compile key names."""
import csv
import functools
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import torch

from minitransformer.checkpoint import load_state_dict_safetensors, load_trainer_state, seed_everything
from minitransformer.plotting import read_jsonl
from minitransformer.distributed import resolve_device, shard_batch
from minitransformer.trainer import (NonFiniteLossError, TrainConfig, Trainer, by_split, default_loss_fn, epoch_batches,
                                     num_batches, random_window_batches, sequential_batches)
from tests.ddp_worker import BLOCK, TinyLM, lm_batches, run, token_stream

REPO = Path(__file__).resolve().parents[1]


def config(tmp_path, **kw):
    base = dict(out_dir=str(tmp_path / "run"), max_steps=4, batch_size=4, lr=1e-2, min_lr=1e-3, warmup_steps=1,
                eval_interval=0, eval_steps=2, log_interval=1, progress=False)
    return TrainConfig(**{**base, **kw})


def train(tmp_path, dropout=0.0, seed=0, get_batch=None, **kw):
    seed_everything(seed)
    model = TinyLM(dropout=dropout)
    cfg = config(tmp_path, **kw)
    trainer = Trainer(model, cfg, get_batch or lm_batches(cfg.batch_size))
    return trainer, trainer.fit()


def losses(rows, split="train"):
    return [(r["step"], r["loss"]) for r in rows if r["split"] == split]


def test_grad_accumulation_equals_one_big_batch(tmp_path):
    # k micro-batches of b rows == one batch of k*b rows; tolerance 1e-6 (float32 summation order)
    k, b = 3, 4
    big = random_window_batches(token_stream(), BLOCK, k * b, seed=5)

    def micro(split, index):  # micro-batch m of step s = rows [m*b, (m+1)*b) of big batch s
        s, m = divmod(index, k)
        return {name: t[m * b : (m + 1) * b] for name, t in big(split, s).items()}

    trainers = []
    for batch_size, accum, get_batch in [(k * b, 1, big), (b, k, micro)]:
        torch.manual_seed(0)
        cfg = config(tmp_path / str(accum), batch_size=batch_size, grad_accum=accum, warmup_steps=0)
        trainers.append(Trainer(TinyLM(), cfg, get_batch))
    one, acc = trainers
    loss_one, _, tokens_one = one.accumulate_gradients(0)
    loss_acc, _, tokens_acc = acc.accumulate_gradients(0)
    assert loss_acc == pytest.approx(loss_one, abs=1e-6) and tokens_one == tokens_acc == k * b * BLOCK
    for (name, p), q in zip(one.raw_model.named_parameters(), acc.raw_model.parameters()):
        assert p.grad.abs().max() > 1e-4, name  # a real gradient, not zeros
        torch.testing.assert_close(q.grad, p.grad, rtol=0, atol=1e-6)
    for t in trainers:  # the AdamW update that follows agrees too
        t.optimizer.step()
    for p, q in zip(one.raw_model.parameters(), acc.raw_model.parameters()):
        torch.testing.assert_close(q, p, rtol=0, atol=1e-6)


def test_same_seed_same_weights_different_seed_different(tmp_path):
    a, _ = train(tmp_path / "a", dropout=0.2, seed=1)
    b, _ = train(tmp_path / "b", dropout=0.2, seed=1)
    c, _ = train(tmp_path / "c", dropout=0.2, seed=2)
    pa, pb, pc = (list(t.raw_model.parameters()) for t in (a, b, c))
    assert all(torch.equal(x, y) for x, y in zip(pa, pb))
    assert not all(torch.equal(x, z) for x, z in zip(pa, pc))


class Preempted(Exception):
    pass


def test_resume_is_bit_exact(tmp_path):
    # 2N steps in one go == N steps, crash, resume, N steps: weights, optimizer, per-step losses
    # identical (torch.equal / ==), with dropout on so that restoring the RNG state matters
    n, accum = 3, 2
    kw = dict(dropout=0.3, max_steps=2 * n, grad_accum=accum, eval_interval=n, checkpoint_interval=0)
    whole, rows_whole = train(tmp_path / "whole", **kw)

    data = lm_batches(4)

    def crashing(split, index):
        if split == "train" and index >= n * accum:
            raise Preempted
        return data(split, index)

    with pytest.raises(Preempted):
        train(tmp_path / "split", get_batch=crashing, **kw)
    assert load_trainer_state(tmp_path / "split" / "run" / "checkpoint")["step"] == n
    resumed, rows_resumed = train(tmp_path / "split", seed=99, resume=True, **kw)  # other init: weights come from the checkpoint
    assert len(losses(rows_whole)) == 2 * n
    assert losses(rows_resumed) == losses(rows_whole)
    assert losses(rows_resumed, "val") == losses(rows_whole, "val")
    assert [r["lr"] for r in rows_resumed if "lr" in r] == [r["lr"] for r in rows_whole if "lr" in r]
    for p, q in zip(whole.raw_model.parameters(), resumed.raw_model.parameters()):
        assert torch.equal(p, q)
    sa, sb = whole.optimizer.state_dict()["state"], resumed.optimizer.state_dict()["state"]
    assert all(torch.equal(sa[i][key], sb[i][key]) for i in sa for key in sa[i])


def test_resume_without_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="resume"):
        train(tmp_path, resume=True)


def test_nan_loss_stops_and_keeps_last_checkpoint(tmp_path):
    calls = []

    def loss_fn(model, batch):
        loss, _ = default_loss_fn(model, batch)
        calls.append(1)
        return (loss * math.nan if len(calls) == 4 else loss), {}

    seed_everything(0)
    trainer = Trainer(TinyLM(), config(tmp_path, max_steps=6, checkpoint_interval=2), lm_batches(4), loss_fn=loss_fn)
    ck = trainer.checkpoint_dir
    snapshot = {}

    original_save = trainer.save

    def save_and_snapshot():
        original_save()
        snapshot.update({p.name: p.read_bytes() for p in ck.iterdir() if p.is_file()})

    trainer.save = save_and_snapshot
    with pytest.raises(NonFiniteLossError, match="loss is nan at step 4") as e:
        trainer.fit()
    assert isinstance(e.value, RuntimeError)
    assert load_trainer_state(ck)["step"] == 2
    assert snapshot and {p.name: p.read_bytes() for p in ck.iterdir() if p.is_file()} == snapshot
    assert all(torch.isfinite(p).all() for p in trainer.raw_model.parameters())  # the update was skipped
    assert [r["step"] for r in read_jsonl(trainer.metrics_path)] == [1, 2, 3]  # rows up to the last good step


class ModeRecorder(TinyLM):
    def forward(self, input_ids, labels=None):
        self.seen.append((self.training, torch.is_grad_enabled()))
        return super().forward(input_ids, labels)


def test_evaluate_is_eval_mode_no_grad_mean_over_batches(tmp_path):
    seed_everything(0)
    model = ModeRecorder(dropout=0.5)
    model.seen = []
    get_batch = lm_batches(4)

    def loss_fn(model, batch):
        loss, _ = default_loss_fn(model, batch)
        return loss, {"double": 2 * loss.item()}

    trainer = Trainer(model, config(tmp_path, eval_steps=3, perplexity=True), get_batch, loss_fn=loss_fn)
    result = trainer.evaluate()["val"]
    assert model.seen == [(False, False)] * 3 and model.training  # back in train mode
    model.eval()
    with torch.no_grad():
        manual = sum(model(**get_batch("val", i))[1].item() for i in range(3)) / 3
    assert result["loss"] == pytest.approx(manual, abs=1e-6)  # float64 mean of the same float32 losses
    assert result["double"] == pytest.approx(2 * manual, abs=1e-6)
    assert result["perplexity"] == pytest.approx(math.exp(manual), rel=1e-6)


def test_metrics_files_plot_and_progress_lines(tmp_path, capsys):
    trainer, rows = train(tmp_path, max_steps=4, eval_interval=2, log_interval=2, perplexity=True, progress=True)
    out_dir = tmp_path / "run"
    printed = capsys.readouterr().out  # pytest's stdout is not a terminal: one line per row
    assert "split=train" in printed and "lr=" in printed and "tokens_per_s=" in printed
    assert [(r["step"], r["split"]) for r in rows] == [(0, "val"), (2, "train"), (2, "val"), (4, "train"), (4, "val")]
    jsonl = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    assert jsonl == rows
    with open(out_dir / "metrics.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [float(r["loss"]) for r in table] == [r["loss"] for r in rows]
    val = [r for r in rows if r["split"] == "val"]
    assert all(r["perplexity"] == pytest.approx(math.exp(r["loss"]), rel=1e-12) for r in val)
    train_rows = [r for r in rows if r["split"] == "train"]
    assert all(r["tokens_per_s"] > 0 and r["grad_norm"] > 0 for r in train_rows)
    assert val[-1]["loss"] < val[0]["loss"]  # it learns
    image = matplotlib.image.imread(out_dir / "loss.png")
    assert image.shape == (400, 640, 4) and len(torch.unique(torch.from_numpy(image.reshape(-1, 4)), dim=0)) > 10
    keys = set(load_state_dict_safetensors(out_dir / "checkpoint" / "model.safetensors"))
    assert keys == set(TinyLM().state_dict())
    _, quiet_rows = train(tmp_path / "quiet", max_steps=4, eval_interval=2, log_interval=2, plot=False, progress=False)
    assert not (tmp_path / "quiet" / "run" / "loss.png").exists() and (tmp_path / "quiet" / "run" / "metrics.csv").exists()


def test_compile_keeps_checkpoint_keys_and_losses(tmp_path, monkeypatch):
    # inductor needs ~30 s on 2 cores; the "eager" backend runs the same Dynamo wrapping in ~2 s
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    compiled, rows_c = train(tmp_path / "c", compile=True, max_steps=2)
    plain, rows_p = train(tmp_path / "p", max_steps=2)
    assert hasattr(compiled.model, "_orig_mod") and compiled.raw_model is compiled.model._orig_mod
    sd = load_state_dict_safetensors(tmp_path / "c" / "run" / "checkpoint" / "model.safetensors")
    assert set(sd) == set(plain.raw_model.state_dict()) and not any("_orig_mod" in k for k in sd)
    assert [r["loss"] for r in rows_c] == pytest.approx([r["loss"] for r in rows_p], abs=1e-6)
    inner = TinyLM()  # a model handed over already compiled is unwrapped too
    assert Trainer(torch.compile(inner), config(tmp_path / "w"), lm_batches(4)).raw_model is inner


def test_default_loss_fn_accepts_common_outputs():
    loss = torch.tensor(1.5)

    class Out:
        def __init__(self, **kw):
            self.__dict__.update(kw)

    outputs = [loss, Out(loss=loss, logits=None), {"logits": None, "loss": loss}, (None, loss)]
    for out in outputs:
        assert default_loss_fn(lambda **b: out, {})[0] is loss
    with pytest.raises(ValueError, match="loss_fn="):
        default_loss_fn(lambda **b: "nothing", {})


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"device": "tpu"}, "device"),
        ({"grad_accum": 0}, "grad_accum"),
        ({"min_lr": 1.0}, "min_lr"),
        ({"warmup_steps": 10, "max_steps": 5}, "warmup_steps"),
        ({"betas": (0.9,)}, "betas"),
        ({"checkpoint_interval": -2}, "checkpoint_interval"),
    ],
)
def test_config_rejects_bad_values(tmp_path, kw, match):
    with pytest.raises(ValueError, match=match):
        config(tmp_path, **kw)


def test_bad_batches_and_losses_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="batch_size=8 rows, received 4"):
        train(tmp_path / "a", batch_size=8, get_batch=lm_batches(4))
    with pytest.raises(ValueError, match="dict of tensors"):
        train(tmp_path / "b", get_batch=lambda split, i: [1, 2])
    seed_everything(0)
    t = Trainer(TinyLM(), config(tmp_path / "c"), lm_batches(4), loss_fn=lambda m, b: (m(**b)[0], {}))
    with pytest.raises(ValueError, match="scalar loss"):
        t.fit()


# ---------------------------------------------------------------------- data parallel (torchrun)


def test_torchrun_two_processes_match_one_process(tmp_path):
    # 2 gloo ranks x 4 rows == 1 process x 8 rows (same global batch); losses within 1e-5 relative
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(REPO / "tests" / "ddp_worker.py"), str(tmp_path / "ddp")]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows_ddp = read_jsonl(tmp_path / "ddp" / "metrics.jsonl")
    rows_one = run(str(tmp_path / "one"))
    assert [(r["step"], r["split"]) for r in rows_ddp] == [(r["step"], r["split"]) for r in rows_one]
    assert [r["loss"] for r in rows_ddp] == pytest.approx([r["loss"] for r in rows_one], rel=1e-5)
    ck_ddp = load_state_dict_safetensors(tmp_path / "ddp" / "checkpoint" / "model.safetensors")
    ck_one = load_state_dict_safetensors(tmp_path / "one" / "checkpoint" / "model.safetensors")
    assert list(ck_ddp) == list(ck_one)  # no "module." prefix from the DDP wrapper
    for key in ck_one:
        torch.testing.assert_close(ck_ddp[key], ck_one[key], rtol=1e-4, atol=1e-5)
    assert len(load_trainer_state(tmp_path / "ddp" / "checkpoint")["rng"]) == 2  # each rank's RNG state
    # each rank trained on its own half of the global batch: rows [0, 4) and [4, 8)
    halves = [json.loads((tmp_path / "ddp" / f"first_rows_rank{r}.json").read_text()) for r in (0, 1)]
    assert halves[0] + halves[1] == json.loads((tmp_path / "one" / "first_rows_rank0.json").read_text())
    assert len(halves[0]) == 4


def test_shard_batch_and_device_choice(monkeypatch):
    batch = {"input_ids": torch.arange(12).view(6, 2), "name": "x"}
    parts = [shard_batch(batch, r, 3)["input_ids"] for r in range(3)]
    assert torch.equal(torch.cat(parts), batch["input_ids"]) and shard_batch(batch, 1, 3)["name"] == "x"
    with pytest.raises(ValueError, match="divisible by world size"):
        shard_batch(batch, 0, 4)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu") and resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="no CUDA GPU"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="auto, cpu, cuda"):
        resolve_device("gpu")


# ---------------------------------------------------------------------- get_batch helpers


def test_random_window_batches_are_shifted_windows():
    tokens = torch.arange(100) * 3  # every window identifies its start
    get = random_window_batches(tokens, block_size=8, batch_size=5, seed=0)
    batch = get("train", 0)
    x, y = batch["input_ids"], batch["labels"]
    assert x.shape == y.shape == (5, 8) and x.dtype == y.dtype == torch.int64
    for row_x, row_y in zip(x, y):
        s = int(row_x[0]) // 3
        assert torch.equal(row_x, tokens[s : s + 8]) and torch.equal(row_y, tokens[s + 1 : s + 9])
    assert torch.equal(get("train", 0)["input_ids"], x)  # a pure function of (seed, split, index)
    assert not torch.equal(get("train", 1)["input_ids"], x) and not torch.equal(get("val", 0)["input_ids"], x)
    as_numpy = random_window_batches(tokens.numpy().astype(np.uint16), 8, 5, seed=0)("train", 0)
    assert torch.equal(as_numpy["input_ids"], x) and as_numpy["input_ids"].dtype == torch.int64
    edge = random_window_batches(torch.arange(9), 8, 3, seed=0)("train", 0)  # exactly block_size + 1 tokens
    assert torch.equal(edge["labels"], torch.arange(1, 9).expand(3, 8))
    with pytest.raises(ValueError, match="at least block_size \\+ 1 = 9 tokens"):
        random_window_batches(torch.arange(8), 8, 2, seed=0)
    with pytest.raises(ValueError, match="1-D integer"):
        random_window_batches(torch.zeros(2, 50, dtype=torch.long), 8, 2, seed=0)


def test_epoch_batches_visit_every_example_once_per_epoch():
    n, b = 10, 4
    get = epoch_batches(n, b, seed=0, collate=lambda idx: {"idx": torch.tensor(idx)})
    stream = torch.cat([get("train", i)["idx"] for i in range(3 * n // 2)]).tolist()  # 60 = 6 epochs
    epochs = [stream[e * n : (e + 1) * n] for e in range(6)]
    assert all(sorted(e) == list(range(n)) for e in epochs)
    assert len({tuple(e) for e in epochs}) > 1  # reshuffled each epoch
    val_stream = torch.cat([get("val", i)["idx"] for i in range(3)]).tolist()
    assert sorted(val_stream[:n]) == list(range(n)) and val_stream != stream[:12]  # its own permutation
    routed = by_split(train=get)
    assert torch.equal(routed("train", 2)["idx"], get("train", 2)["idx"])
    with pytest.raises(ValueError, match="expected one of train"):
        routed("test", 0)


def test_sequential_batches_walk_each_example_once_in_order_last_batch_short():
    get = sequential_batches(10, 4, collate=lambda idx: {"idx": torch.tensor(idx)})
    assert get.num_batches == 3
    assert [get("val", i)["idx"].tolist() for i in range(3)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert torch.equal(get("val", 1)["idx"], get("test", 1)["idx"])  # unshuffled: the same for every split and call
    with pytest.raises(ValueError, match=r"expected 0 <= index < 3 \(10 examples in batches of 4\), received 3"):
        get("val", 3)
    routed = by_split(train=epoch_batches(10, 4, 0, lambda idx: {"idx": torch.tensor(idx)}), val=get)
    assert routed.num_batches == {"val": 3}
    assert num_batches(routed, "val") == 3 and num_batches(routed, "train") is None
    assert num_batches(random_window_batches(token_stream(), BLOCK, 2, seed=0), "val") is None


def test_evaluation_scores_a_finite_split_once_and_averages_per_example(tmp_path):
    # 10 validation examples in batches of 4 -> 4 + 4 + 2 rows, each once; eval_steps=5 is capped at 3
    seen = []

    def collate_val(idx):
        return {"x": torch.tensor(idx, dtype=torch.float32)}

    def loss_fn(model, batch):
        if "x" not in batch:
            return default_loss_fn(model, batch)
        seen.extend(batch["x"].long().tolist())
        loss = batch["x"].mean() + 0 * next(model.parameters()).sum()
        return loss, {"is_big": (batch["x"] >= 8).float().mean().item()}

    get_batch = by_split(train=lm_batches(4), val=sequential_batches(10, 4, collate_val))
    seed_everything(0)
    trainer = Trainer(TinyLM(), config(tmp_path, eval_steps=5), get_batch, loss_fn=loss_fn)
    assert trainer.eval_batches("val") == 3
    result = trainer.evaluate()["val"]
    assert sorted(seen) == list(range(10))  # every example exactly once
    assert result["loss"] == pytest.approx(4.5)  # mean of 0..9 per example; the mean of batch means would be 5.17
    assert result["is_big"] == pytest.approx(0.2)  # 2 of 10 examples; per batch it would be (0 + 0 + 1) / 3
