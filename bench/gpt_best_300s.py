"""The best validation loss on Tiny Shakespeare (characters) in 300 seconds of training on this CPU.

The learning-rate schedule (warmup + cosine) needs the number of steps in advance, so the script
first times ``--calibrate`` steps of the configuration and sets ``max_steps = budget / (s/step)``;
while training it re-aims max_steps every 25 steps at the recent pace (the load of a shared
machine changes), so the cosine ends with the budget. Training time excludes evaluations. The
final validation loss is the mean over ``--final-eval-steps`` batches (20 during training).

    python bench/gpt_best_300s.py --data ../shared/data/tinyshakespeare/input.txt

Defaults are the configuration that gave the best result here (see bench/README.md, ## minigpt).
"""
from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from typing import Sequence

import torch

from gpt_nanogpt_cpu import char_splits, make_batches
from minigpt.config import GPTConfig, width_scaled_init_std
from minigpt.model import GPT
from minigpt.train import causal_lm_loss
from minitransformer.checkpoint import seed_everything
from minitransformer.cli import run_cli
from minitransformer.trainer import TrainConfig, Trainer


class OutOfTime(Exception):
    """The training budget is spent."""


def trainer_for(args, model_config: GPTConfig, get_batch, out_dir: str, max_steps: int, eval_interval: int) -> Trainer:
    seed_everything(args.seed)
    cfg = TrainConfig(out_dir=out_dir, max_steps=max_steps, batch_size=args.batch_size, lr=args.lr, min_lr=args.lr / 10,
                      warmup_steps=min(args.warmup, max_steps // 10), betas=(0.9, 0.99), weight_decay=0.1,
                      grad_clip=1.0, eval_interval=eval_interval, eval_steps=20, log_interval=50,
                      checkpoint_interval=-1, progress=False, seed=args.seed, overwrite=True)
    return Trainer(GPT(model_config), cfg, get_batch, loss_fn=causal_lm_loss)


def seconds_per_step(args, model_config, get_batch, out_dir) -> float:
    trainer = trainer_for(args, model_config, get_batch, out_dir, max_steps=1000, eval_interval=0)
    times = []
    for s in range(args.calibrate):
        t0 = time.perf_counter()
        trainer.train_step(s)
        times.append(time.perf_counter() - t0)
    return statistics.median(times[3:])


def budgeted(trainer: Trainer, budget_s: float, spent: list[float], every: int = 25) -> None:
    """Make trainer.train_step add its wall time to ``spent`` and stop once ``budget_s`` is used.
    Every ``every`` steps the end of the schedule moves to where the budget will run out at the
    recent pace (trainer.config.max_steps is read at every step), so the cosine reaches min_lr at
    the end of the budget even when the machine's load changes."""
    step = trainer.train_step
    recent: list[float] = []

    def run(s):
        if spent[0] >= budget_s:
            raise OutOfTime
        t0 = time.perf_counter()
        out = step(s)
        recent.append(time.perf_counter() - t0)
        spent[0] += recent[-1]
        if (s + 1) % every == 0:
            pace = statistics.median(recent[-every:])
            trainer.config.max_steps = max(s + 2, trainer.config.warmup_steps, s + 1 + int((budget_s - spent[0]) / pace))
        return out

    trainer.train_step = run


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="tinyshakespeare/input.txt")
    ap.add_argument("--budget", type=float, default=300.0, help="seconds of training (default 300)")
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--n-embd", type=int, default=128)
    ap.add_argument("--block-size", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=3e-3, help="peak lr; min_lr = lr / 10")
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--bias", action=argparse.BooleanOptionalAction, default=False)
    ap.add_argument("--init-std", type=float, default=None, help="default: 0.02*sqrt(768/n_embd), minigpt train's default")
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--calibrate", type=int, default=30, help="steps timed to size the schedule")
    ap.add_argument("--final-eval-steps", type=int, default=200)
    args = ap.parse_args(argv)
    train_ids, val_ids, tok = char_splits(args.data)
    config = GPTConfig(block_size=args.block_size, vocab_size=tok.vocab_size, n_layer=args.n_layer, n_head=args.n_head,
                       n_embd=args.n_embd, dropout=args.dropout, bias=args.bias,
                       init_std=width_scaled_init_std(args.n_embd) if args.init_std is None else args.init_std)
    get_batch = make_batches(train_ids, val_ids, config.block_size, args.batch_size, seed=args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        per_step = seconds_per_step(args, config, get_batch, tmp + "/calibrate")
        max_steps = max(10, int(args.budget / per_step))
        trainer = trainer_for(args, config, get_batch, tmp + "/run", max_steps, eval_interval=max(1, max_steps // 4))
        spent = [0.0]
        budgeted(trainer, args.budget, spent)
        t0 = time.perf_counter()
        try:
            trainer.fit()
        except OutOfTime:
            pass
        wall = time.perf_counter() - t0
        trainer.config.eval_steps = args.final_eval_steps
        final = trainer.evaluate()["val"]["loss"]
    curve = [(r["step"], r["loss"]) for r in trainer.history if r["split"] == "val"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"config: {args.n_layer} layers, {args.n_head} heads, {args.n_embd} wide, block {args.block_size}, "
          f"batch {args.batch_size}, lr {args.lr:g} -> {args.lr / 10:g}, warmup {trainer.config.warmup_steps}, "
          f"dropout {args.dropout}, bias {args.bias}, init_std {config.init_std:.3g}; {trainer.raw_model.num_parameters():,} parameters")
    print(f"calibrated {per_step * 1e3:.0f} ms/step -> max_steps {max_steps}\n")
    print("| result | value |\n| --- | ---: |")
    print(f"| steps done (planned at calibration) | {trainer.step} ({max_steps}) |")
    print(f"| training time (excl. evaluation) | {spent[0]:.0f} s |")
    print(f"| wall time incl. evaluations | {wall:.0f} s |")
    print(f"| tokens seen | {trainer.step * args.batch_size * args.block_size:,} |")
    print(f"| val loss during training (20 batches) | {', '.join(f'{s}: {v:.3f}' for s, v in curve)} |")
    print(f"| **final val loss ({args.final_eval_steps} batches)** | **{final:.4f}** |")
    print(f"| peak memory (ru_maxrss) | {peak:.0f} MB |")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="gpt_best_300s"))
