"""The training loop shared by minigpt (causal LM) and minibert (MLM + NSP, fine-tuning).

One optimizer step ``s`` (0-based) with ``K = grad_accum`` micro-batches::

    lr_s   = lr_at(s, ...)                                   warmup + cosine, see optim.py
    for k in 0..K-1:   batch = get_batch("train", s*K + k)    the global micro-batch (B rows)
                       loss_k, metrics_k = loss_fn(model, my rows of batch)
                       (loss_k / K).backward()                gradients add up over k
    g      = clip(grad, max_norm=grad_clip)                   torch.nn.utils.clip_grad_norm_
    params = AdamW(params, g, lr_s)

Dividing each micro-loss by K makes the summed gradient that of the mean loss over the K*B rows,
i.e. the same update as one batch of K*B rows. The data position is the micro-batch index
``s*K + k``: ``get_batch`` is a pure function of it, so resuming at step ``s`` needs nothing but
``s`` to continue the data stream exactly. Article §5 训练.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn
from tqdm import tqdm

from .checkpoint import (capture_rng_state, config_to_dict, load_checkpoint, load_trainer_state, restore_rng_state,
                         save_checkpoint, seed_everything, unwrap_model)
from .batches import (GetBatch, by_split, epoch_batches, num_batches, random_window_batches,  # noqa: F401 (re-exported)
                      sequential_batches)
from .checks import check_divisible
from .distributed import (DEVICE_CHOICES, all_reduce_mean, autocast_context, barrier, gather_to_main, setup_distributed,
                          shard_batch, wrap_ddp)
from .optim import lr_at, make_optimizer, set_lr
from .plotting import append_jsonl, plot_loss_curves, read_jsonl, write_csv, write_jsonl
from .runs import (RunLock, check_resume_or_overwrite, check_run_contents, check_run_dir, clear_run,
                   find_resume_checkpoint, make_run_dir)

LossFn = Callable[[nn.Module, Mapping[str, Any]], "tuple[torch.Tensor, dict[str, float]]"]


class NonFiniteLossError(RuntimeError):
    """The loss (or the gradient norm) became NaN or infinite; training stopped before the update.
    The message names the step as the metrics rows count it: step s is the s-th update (1-based)."""


# help text for each TrainConfig field, for CLIs built with minitransformer.cli.add_dataclass_args
TRAIN_HELP = {
    "out_dir": "run folder: metrics.jsonl/.csv, loss.png, checkpoint/",
    "max_steps": "optimizer steps",
    "batch_size": "rows per (global) micro-batch, split over torchrun ranks",
    "grad_accum": "micro-batches per optimizer step (gradient accumulation)",
    "lr": "peak learning rate, reached after warmup",
    "min_lr": "floor of the cosine decay",
    "warmup_steps": "linear warmup steps",
    "weight_decay": "AdamW weight decay (matrices and embeddings only)",
    "betas": "AdamW betas (two numbers)",
    "grad_clip": "clip the global gradient norm to this (0 = off)",
    "eval_interval": "evaluate every N steps (0 = never)",
    "eval_steps": "batches per evaluation",
    "log_interval": "one train metrics row per N steps",
    "checkpoint_interval": "0 = checkpoint at evaluations and the end; N = every N steps; -1 = never",
    "seed": "seed of the whole run (weights, batches, dropout)",
    "device": "auto | cpu | cuda",
    "bf16": "bf16 autocast on GPUs",
    "compile": "torch.compile the model",
    "progress": "progress bar / log lines",
    "resume": "continue the run in OUT_DIR from its checkpoint (bit-exact on CPU)",
    "overwrite": "delete the run already in OUT_DIR (checkpoint, metrics) and start afresh; without it, or "
                 "--resume, a folder that holds a run is refused",
    "perplexity": "report perplexity = exp(loss) at evaluations",
}


@dataclass
class TrainConfig:
    """Training hyper-parameters (nanoGPT names where nanoGPT has them)."""

    out_dir: str = "runs/run"  # metrics.jsonl, metrics.csv, loss.png, checkpoint/
    max_steps: int = 1000  # optimizer steps
    batch_size: int = 12  # rows of one *global* micro-batch (split over the DDP ranks)
    grad_accum: int = 1  # micro-batches per optimizer step
    lr: float = 1e-3  # peak learning rate, reached after warmup
    min_lr: float = 1e-4  # floor of the cosine decay
    warmup_steps: int = 100
    weight_decay: float = 0.1  # AdamW, on parameters with dim >= 2 only
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0  # max global gradient norm; 0 = no clipping
    eval_interval: int = 250  # evaluate every N steps, at step 0 and at the end; 0 = never
    eval_steps: int = 20  # batches per split and evaluation
    log_interval: int = 10  # one train row per N steps (loss averaged over them)
    checkpoint_interval: int = 0  # 0 = at evaluations and at the end; N > 0 = every N steps and at the end; -1 = never
    seed: int = 1337
    device: str = "cpu"  # 'auto' | 'cpu' | 'cuda'
    bf16: bool = True  # bf16 autocast, on GPUs only
    compile: bool = False  # torch.compile the model
    progress: bool = True  # tqdm bar on a terminal, log lines otherwise; False = silent
    resume: bool = False  # continue from out_dir/checkpoint
    overwrite: bool = False  # delete a run already in out_dir; without it (or resume) such a folder is refused
    perplexity: bool = False  # add perplexity = exp(loss) to evaluation rows (language models)
    plot: bool = True  # loss.png at the end of fit; False for sweeps of many short runs (metrics files only)

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)
        positive = ("max_steps", "batch_size", "grad_accum", "log_interval")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected a positive integer, received {getattr(self, name)}")
        for name in ("warmup_steps", "eval_interval", "eval_steps", "weight_decay", "grad_clip"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: expected >= 0, received {getattr(self, name)}")
        if self.eval_interval > 0 and self.eval_steps < 1:
            raise ValueError(f"eval_steps: expected >= 1 when eval_interval > 0, received {self.eval_steps}")
        if self.checkpoint_interval < -1:
            raise ValueError(f"checkpoint_interval: expected -1, 0 or a positive integer, received {self.checkpoint_interval}")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"betas: expected two numbers in [0, 1), received {self.betas}")
        if self.device not in DEVICE_CHOICES:
            raise ValueError(f"device: expected one of {', '.join(DEVICE_CHOICES)}, received {self.device!r}")
        lr_at(0, self.lr, self.min_lr, self.warmup_steps, self.max_steps)  # validates the schedule
        check_resume_or_overwrite(self.resume, self.overwrite)


def default_loss_fn(model: nn.Module, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
    """``model(**batch)`` and its loss: ``out.loss`` (Hugging Face style), ``out["loss"]``,
    ``out[1]`` of a ``(logits, loss)`` tuple (nanoGPT style), or ``out`` if it is a scalar tensor.
    No extra metrics. Write your own ``loss_fn(model, batch) -> (loss, {"mlm_acc": ...})`` to log more."""
    out = model(**batch)
    if isinstance(out, torch.Tensor):
        loss = out
    elif getattr(out, "loss", None) is not None:
        loss = out.loss
    elif isinstance(out, Mapping) and "loss" in out:
        loss = out["loss"]
    elif isinstance(out, (tuple, list)) and len(out) >= 2:
        loss = out[1]
    else:
        raise ValueError(
            f"default_loss_fn: expected the model to return a scalar loss, an object with .loss, a dict with "
            f"'loss' or a (logits, loss) tuple, received {type(out).__name__}; pass loss_fn= to the Trainer"
        )
    return loss, {}


class Trainer:
    """Train ``model`` on ``get_batch`` under ``config``; checkpoints, metrics and a loss plot go to
    ``config.out_dir``. Works unchanged under ``torchrun`` (DDP; only rank 0 writes and prints).

    get_batch(split, index) -> dict of tensors: the *global* micro-batch number ``index`` of
        ``split`` (``config.batch_size`` rows), a pure function of its arguments. Training uses
        ``index = step * grad_accum + micro``, evaluation ``index = 0 .. eval_steps-1`` (the same
        batches at every evaluation), capped at the split's ``num_batches`` when it has one
        (:func:`sequential_batches`: every example scored once, the last batch may be short).
        Under DDP rank r keeps rows [r*B/W, (r+1)*B/W) of each tensor (an evaluation batch whose
        rows W does not divide is scored whole on every rank).
        See :func:`random_window_batches`, :func:`epoch_batches`, :func:`sequential_batches`, :func:`by_split`.
    loss_fn(model, batch) -> (scalar loss tensor, {name: float}): default :func:`default_loss_fn`.
        The loss must be a mean over the batch; extra metrics are averaged like the loss. At
        evaluation each batch counts by its number of rows, so a short last batch weighs less and
        the result is the mean per row (per example), not per batch.
        tokens/s counts the elements of ``batch["input_ids"]``.
    model_config: saved as ``config.json``; default ``model.config`` (a dataclass, a dict, or an
        object with ``to_dict()``).
    tokenizer: saved with each checkpoint through ``tokenizer.save(dir)``.

    The run folder (see :mod:`minitransformer.runs`): a folder that already holds a run is refused
    unless ``config.resume`` or ``config.overwrite``; during :meth:`fit` the folder is locked, so a
    second training there is refused, naming the first one's process.
    """

    def __init__(self, model: nn.Module, config: TrainConfig, get_batch: GetBatch, loss_fn: LossFn | None = None,
                 model_config: dict | Any = None, tokenizer: Any = None, eval_splits: Sequence[str] = ("val",)):
        self.config, self.get_batch, self.tokenizer = config, get_batch, tokenizer
        self.loss_fn = loss_fn or default_loss_fn
        self.eval_splits = tuple(eval_splits)
        self.ctx = setup_distributed(config.device)
        check_divisible(config.batch_size, self.ctx.world_size, "batch_size", "world size")
        seed_everything(config.seed + self.ctx.rank)  # dropout differs per rank; weights are broadcast by DDP
        self.raw_model = unwrap_model(model).to(self.ctx.device)
        if model_config is None:
            model_config = getattr(self.raw_model, "config", None) or {}
        self.model_config = config_to_dict(model_config)  # fails now, not at the first checkpoint
        self.optimizer = make_optimizer(self.raw_model, config.lr, config.weight_decay, config.betas)
        self.autocast = functools.partial(autocast_context, self.ctx.device, config.bf16)  # a fresh context each use
        self.out_dir = check_run_dir(config.out_dir, config.resume, config.overwrite)
        self.checkpoint_dir = self.out_dir / "checkpoint"
        self.metrics_path = self.out_dir / "metrics.jsonl"
        self.step, self.history = 0, []
        self._window: dict[str, float] = {}  # sums over the steps since the last train row; saved in checkpoints
        self._lock, self._claimed = RunLock(self.out_dir), False
        if config.resume:
            self._resume()
        self.eval_model = torch.compile(self.raw_model) if config.compile else self.raw_model
        self.model = wrap_ddp(self.eval_model, self.ctx)  # what training calls

    # ------------------------------------------------------------------ data and one step

    def _batch(self, split: str, index: int) -> tuple[dict[str, Any], int, int]:
        """This rank's rows of global micro-batch ``index``, on the device; plus the global token
        count and the global row count. Training batches must have ``batch_size`` rows; an
        evaluation batch may be shorter, and is kept whole on every rank when the world size does
        not divide its rows."""
        batch = self.get_batch(split, index)
        if not isinstance(batch, Mapping):
            raise ValueError(f"get_batch: expected a dict of tensors, received {type(batch).__name__}")
        ids = batch.get("input_ids")
        rows = next((v.shape[0] for v in batch.values() if isinstance(v, torch.Tensor) and v.dim() > 0), None)
        if split == "train" and rows != self.config.batch_size:
            raise ValueError(f"get_batch: expected batches of batch_size={self.config.batch_size} rows, received {rows}")
        n_tokens = ids.numel() if isinstance(ids, torch.Tensor) else 0
        whole = split != "train" and rows is not None and rows % self.ctx.world_size != 0
        mine = dict(batch) if whole else shard_batch(dict(batch), self.ctx.rank, self.ctx.world_size)
        return {k: v.to(self.ctx.device) if isinstance(v, torch.Tensor) else v for k, v in mine.items()}, n_tokens, rows or 1

    def _loss(self, model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        with self.autocast():
            loss, metrics = self.loss_fn(model, batch)
        if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
            raise ValueError(f"loss_fn: expected a scalar loss tensor, received {getattr(loss, 'shape', type(loss).__name__)}")
        return loss, {k: float(v) for k, v in sorted(metrics.items())}

    def _mean_over_ranks(self, values: list[float]) -> list[float]:
        t = torch.tensor(values, dtype=torch.float64, device=self.ctx.device)
        return all_reduce_mean(t, self.ctx).tolist()

    def accumulate_gradients(self, step: int) -> tuple[float, dict[str, float], int]:
        """Forward + backward over the ``grad_accum`` micro-batches of optimizer step ``step``,
        leaving the summed gradients of ``loss / grad_accum`` in ``.grad``. Returns the loss and
        metrics averaged over micro-batches and ranks, and the global token count.
        Raises NonFiniteLossError (after clearing the gradients) if the loss is NaN or inf."""
        k_steps = self.config.grad_accum
        self.model.train()
        loss_sum, metric_sums, n_tokens = torch.zeros((), device=self.ctx.device), {}, 0
        for micro in range(k_steps):
            batch, n, _ = self._batch("train", step * k_steps + micro)
            n_tokens += n
            last = micro == k_steps - 1
            # DDP all-reduces gradients in backward(); skip that until the last micro-batch
            sync = contextlib.nullcontext() if last or not self.ctx.is_distributed else self.model.no_sync()
            with sync:
                loss, metrics = self._loss(self.model, batch)
                (loss / k_steps).backward()
            loss_sum += loss.detach().float()  # stays on the device: one sync per step, below
            for name, v in metrics.items():
                metric_sums[name] = metric_sums.get(name, 0.0) + v
        names = list(metric_sums)
        means = self._mean_over_ranks([loss_sum.item() / k_steps] + [metric_sums[n] / k_steps for n in names])
        if not math.isfinite(means[0]):
            self.optimizer.zero_grad(set_to_none=True)
            raise NonFiniteLossError(
                f"loss is {means[0]} at step {step + 1}: training stopped before the update; the last good checkpoint "
                f"in {self.checkpoint_dir} is untouched (lower lr, check the data, then resume from it)"
            )
        return means[0], dict(zip(names, means[1:])), n_tokens

    def train_step(self, step: int) -> dict[str, float]:
        """One optimizer step: schedule lr, accumulate gradients, clip, AdamW update."""
        lr = lr_at(step, self.config.lr, self.config.min_lr, self.config.warmup_steps, self.config.max_steps)
        set_lr(self.optimizer, lr)
        loss, metrics, n_tokens = self.accumulate_gradients(step)
        max_norm = self.config.grad_clip if self.config.grad_clip > 0 else math.inf  # inf: measure only
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.raw_model.parameters(), max_norm))
        if not math.isfinite(grad_norm):
            self.optimizer.zero_grad(set_to_none=True)
            raise NonFiniteLossError(f"gradient norm is {grad_norm} at step {step + 1} (loss {loss}): training stopped before the update")
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return {"loss": loss, "lr": lr, "grad_norm": grad_norm, "tokens": n_tokens, **metrics}

    def eval_batches(self, split: str) -> int:
        """Batches per evaluation of ``split``: ``eval_steps``, capped at the split's ``num_batches``
        when get_batch knows it (a finite validation set is then scored exactly once)."""
        known = num_batches(self.get_batch, split)
        return self.config.eval_steps if known is None else min(self.config.eval_steps, known)

    @torch.no_grad()
    def evaluate(self) -> dict[str, dict[str, float]]:
        """Loss and metrics of each eval split over :meth:`eval_batches` batches, in ``eval()``
        mode (dropout off) without autograd; the previous train/eval mode is restored afterwards.

        Each batch counts by its rows: ``mean = sum_b rows_b * value_b / sum_b rows_b``, the mean per
        example even when the last batch is short (equal to the plain mean over batches when all
        have the same size)."""
        was_training = self.eval_model.training
        self.eval_model.eval()
        results = {}
        try:
            for split in self.eval_splits:
                sums, total_rows = {}, 0
                for i in range(self.eval_batches(split)):
                    batch, _, rows = self._batch(split, i)
                    loss, metrics = self._loss(self.eval_model, batch)
                    for name, v in {"loss": loss.item(), **metrics}.items():
                        sums[name] = sums.get(name, 0.0) + rows * v
                    total_rows += rows
                if not total_rows:
                    raise ValueError(f"eval_steps: expected at least 1 batch to evaluate split {split!r}, received "
                                     f"{self.config.eval_steps}")
                names = list(sums)
                # every rank saw the same global row counts: the mean over ranks of the weighted sums,
                # divided by the global rows, is the mean per example
                means = self._mean_over_ranks([sums[m] for m in names])
                row = {name: value / max(total_rows, 1) for name, value in zip(names, means)}
                if self.config.perplexity:
                    row["perplexity"] = math.inf if row["loss"] > 700 else math.exp(row["loss"])  # NaN stays NaN
                results[split] = row
        finally:
            self.eval_model.train(was_training)
        return results

    # ------------------------------------------------------------------ checkpoints

    def save(self) -> None:
        """Checkpoint to ``out_dir/checkpoint``: weights, config, tokenizer, optimizer, step and
        every rank's RNG states. Collective under DDP (every rank calls it, rank 0 writes)."""
        rng = gather_to_main(capture_rng_state(), self.ctx)
        if self.ctx.is_main:
            state = {
                "step": self.step,
                "micro_batches_seen": self.step * self.config.grad_accum,  # the data position
                "world_size": self.ctx.world_size,
                "optimizer": self.optimizer.state_dict(),
                "rng": rng,
                "train_config": dataclasses.asdict(self.config),
                "log_window": dict(self._window),  # a resumed run's first train row averages the same steps
            }
            save_checkpoint(self.checkpoint_dir, self.raw_model, self.model_config, self.tokenizer, state)
            self._write_reports()
        barrier(self.ctx)

    def _resume(self) -> None:
        """Weights, optimizer, step, RNG states, the partial log window and the metrics rows up to
        the step of the checkpoint (``checkpoint/``, or ``.checkpoint.old`` after a crash mid-swap)."""
        found = find_resume_checkpoint(self.out_dir)
        state = load_trainer_state(found)
        step = int(state["step"])
        if self.config.max_steps <= step:
            raise ValueError(f"max_steps: expected more than the checkpoint's step {step} to resume {found} (it has "
                             f"trained {step} steps already), received {self.config.max_steps}; pass a larger "
                             f"--max-steps to train further")
        load_checkpoint(found, self.raw_model)
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = step
        self._window = dict(state.get("log_window") or {})
        if len(state["rng"]) == self.ctx.world_size:
            restore_rng_state(state["rng"][self.ctx.rank])
        else:  # another world size: the stream of dropout masks cannot continue exactly
            seed_everything(self.config.seed + self.ctx.rank + 1_000_003 * self.step)
        self.history = [r for r in read_jsonl(self.metrics_path) if r.get("step", 0) <= self.step]

    # ------------------------------------------------------------------ the loop

    def _record(self, row: dict, bar: tqdm) -> None:
        self.history.append(row)
        if not self.ctx.is_main:
            return
        append_jsonl(row, self.metrics_path)
        if self.config.progress:
            text = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())
            if bar.disable:
                print(text, flush=True)
            elif row["split"] != "train":
                bar.write(text)

    def _write_reports(self) -> None:
        if self.ctx.is_main and self.history:
            write_csv(self.history, self.out_dir / "metrics.csv")
            if self.config.plot:
                plot_loss_curves(self.history, self.out_dir / "loss.png", title=self.out_dir.name)

    def _evaluate_and_record(self, bar: tqdm) -> None:
        for split, row in self.evaluate().items():
            self._record({"step": self.step, "split": split, **row}, bar)

    def _claim_run(self) -> None:
        """Before the first step (main process): create the folder, lock it for the whole of
        :meth:`fit`, check again under the lock that no run appeared meanwhile, delete the earlier
        run when ``overwrite``, and write metrics.jsonl afresh (a resumed run: cut at its step)."""
        make_run_dir(self.out_dir)
        self._lock.acquire()
        try:
            if not self._claimed:
                check_run_contents(self.out_dir, self.config.resume, self.config.overwrite)
                if self.config.overwrite:
                    clear_run(self.out_dir)
            write_jsonl(self.history, self.metrics_path)
        except BaseException:
            self._lock.release()
            raise
        self._claimed = True  # a second fit() continues this Trainer's own run

    def _accumulate(self, out: dict[str, float], seconds: float) -> None:
        """Add one step's results to the log window (sums, steps, tokens, training seconds)."""
        for k, v in out.items():
            self._window[k] = self._window.get(k, 0.0) + v
        self._window["steps"] = self._window.get("steps", 0) + 1
        self._window["seconds"] = self._window.get("seconds", 0.0) + seconds

    def _train_row(self, out: dict[str, float]) -> dict:
        """The train row of the window that ends now: means over its steps, the last lr and gradient
        norm, tokens per second of training time. Empties the window."""
        window, self._window = self._window, {}
        n, tokens, seconds = window.pop("steps"), window.pop("tokens"), window.pop("seconds")
        row = {"step": self.step, "split": "train", **{k: v / n for k, v in window.items()}}
        row.update(lr=out["lr"], grad_norm=out["grad_norm"], tokens_per_s=tokens / max(seconds, 1e-9))
        return row

    def fit(self) -> list[dict]:
        """Train until ``max_steps``; return the metrics rows (also in ``metrics.jsonl``)."""
        cfg = self.config
        if self.ctx.is_main:
            self._claim_run()
        show = cfg.progress and self.ctx.is_main
        bar = tqdm(total=cfg.max_steps, initial=self.step, disable=None if show else True, desc="train", dynamic_ncols=True)
        try:
            if cfg.eval_interval and self.step == 0:
                self._evaluate_and_record(bar)
            while self.step < cfg.max_steps:
                t0 = time.perf_counter()
                out = self.train_step(self.step)
                self.step += 1
                self._accumulate(out, time.perf_counter() - t0)  # tokens/s measures training only
                bar.update(1)
                done = self.step == cfg.max_steps
                if self.step % cfg.log_interval == 0 or done:
                    row = self._train_row(out)
                    bar.set_postfix(loss=f"{row['loss']:.4f}", lr=f"{row['lr']:.2e}", tok_s=f"{row['tokens_per_s']:.0f}")
                    self._record(row, bar)
                evaluated = cfg.eval_interval > 0 and (self.step % cfg.eval_interval == 0 or done)
                if evaluated:
                    self._evaluate_and_record(bar)
                every = cfg.checkpoint_interval
                if every >= 0 and (done or (every == 0 and evaluated) or (every > 0 and self.step % every == 0)):
                    self.save()
        finally:
            bar.close()
            try:
                self._write_reports()
            finally:
                self._lock.release()
        return self.history
