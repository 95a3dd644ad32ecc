"""nanoGPT's CPU run of Tiny Shakespeare (characters), with minigpt and the shared Trainer.

nanoGPT (README, "I only have a macbook"):
    python train.py config/train_shakespeare_char.py --device=cpu --compile=False --eval_iters=20
        --log_interval=1 --block_size=64 --batch_size=12 --n_layer=4 --n_head=4 --n_embd=128
        --max_iters=2000 --lr_decay_iters=2000 --dropout=0.0
i.e. lr 1e-3 -> 1e-4 cosine, warmup 100, AdamW betas (0.9, 0.99), weight decay 0.1, clip 1.0,
bias=False; first 90% of the characters for training, last 10% for validation. nanoGPT reaches
val loss 1.886 at about 35 ms/iter on this machine.

Two measurements:
1. speed: ``--timing-steps`` optimizer steps of our GPT (default paths: attention, LayerNorm and
   GELU through PyTorch's kernels, each tested equal to its explicit formula), of the same GPT with
   every formula explicit, and of the same model with its parts swapped for PyTorch built-ins
   (:func:`swap_builtins`: nn.LayerNorm, F.scaled_dot_product_attention, F.gelu), interleaved step
   by step so that all see the same machine load; median ms/iter and ratios to the built-ins.
2. quality: the full 2000-iteration run of our GPT, once per ``--init-std`` (default: GPT-2's
   and nanoGPT's 0.02, and the same 0.02 carried to width 128, 0.02·√(768/128) ≈ 0.049 — see
   :func:`minigpt.width_scaled_init_std`): val loss at 500/1000/1500/2000, ms/iter, tokens/s,
   peak memory (ru_maxrss).

    python bench/gpt_nanogpt_cpu.py --data ../shared/data/tinyshakespeare/input.txt
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import resource
import statistics
import sys
import tempfile
import time
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from minigpt.config import GPTConfig, width_scaled_init_std
from minigpt.model import GPT
from minigpt.train import causal_lm_loss
from minitransformer.attention import merge_heads, split_heads
from minitransformer.batches import by_split, random_window_batches
from minitransformer.checkpoint import seed_everything
from minitransformer.cli import run_cli
from minitransformer.data import CharTokenizer, load_text
from minitransformer.layers import LayerNorm
from minitransformer.trainer import TrainConfig, Trainer

NANOGPT = dict(block_size=64, batch_size=12, n_layer=4, n_head=4, n_embd=128, max_steps=2000, lr=1e-3, min_lr=1e-4,
               warmup_steps=100, dropout=0.0, betas=(0.9, 0.99), weight_decay=0.1, grad_clip=1.0, eval_steps=20)


# ----------------------------------------------------------------------------- data


def char_splits(path: str, val_fraction: float = 0.1):
    """Characters -> ids; the first 90% of the ids for training, the last 10% for validation."""
    text = load_text(path)
    tok = CharTokenizer.train(text)
    ids = torch.tensor(tok.encode(text), dtype=torch.long)
    cut = int(len(ids) * (1 - val_fraction))
    return ids[:cut], ids[cut:], tok


def make_batches(train_ids, val_ids, block_size: int, batch_size: int, seed: int):
    return by_split(train=random_window_batches(train_ids, block_size, batch_size, seed),
                    val=random_window_batches(val_ids, block_size, batch_size, seed))


# ----------------------------------------------------------------------------- built-ins


class BuiltinCausalSelfAttention(nn.Module):
    """The same projections as minitransformer's MultiHeadAttention, attention by
    F.scaled_dot_product_attention(is_causal=True); a drop-in for a DecoderBlock's self_attn."""

    def __init__(self, mha: nn.Module):
        super().__init__()
        self.n_heads = mha.n_heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = mha.q_proj, mha.k_proj, mha.v_proj, mha.out_proj

    def forward(self, query, key_value=None, attention_mask=None, attn_mask=None, is_causal=False, need_weights=False,
                use_sdpa=None, cache=None):
        q = split_heads(self.q_proj(query), self.n_heads)  # (B, H, T, hs)
        k = split_heads(self.k_proj(query), self.n_heads)
        v = split_heads(self.v_proj(query), self.n_heads)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, T, hs)
        return self.out_proj(merge_heads(y)), None


def builtin_norm(ours: LayerNorm) -> nn.LayerNorm:
    norm = nn.LayerNorm(ours.normalized_shape, eps=ours.eps, bias=ours.bias is not None)
    with torch.no_grad():
        norm.weight.copy_(ours.weight)
        if ours.bias is not None:
            norm.bias.copy_(ours.bias)
    return norm


def gelu_tanh_builtin(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x, approximate="tanh")


def swap_builtins(model: GPT) -> GPT:
    """A copy of ``model`` whose LayerNorms are nn.LayerNorm, whose attention is
    F.scaled_dot_product_attention and whose GELU is F.gelu(approximate='tanh'). Same weights."""
    model = copy.deepcopy(model)
    for block in model.transformer.h:
        block.self_attn = BuiltinCausalSelfAttention(block.self_attn)
        block.norm1, block.norm3 = builtin_norm(block.norm1), builtin_norm(block.norm3)
        block.ff.act = gelu_tanh_builtin
    model.transformer.ln_f = builtin_norm(model.transformer.ln_f)
    return model


# ----------------------------------------------------------------------------- runs


def train_config(out_dir: str, **kw) -> TrainConfig:
    keys = ("max_steps", "batch_size", "lr", "min_lr", "warmup_steps", "betas", "weight_decay", "grad_clip", "eval_steps")
    base = {k: NANOGPT[k] for k in keys}
    base.update(out_dir=out_dir, eval_interval=500, log_interval=100, checkpoint_interval=-1, progress=False,
                perplexity=True, seed=1337, overwrite=True)
    base.update(kw)
    return TrainConfig(**base)


def timed(trainer: Trainer, times: list[float]):
    """Wrap trainer.train_step so each optimizer step's wall time lands in ``times``."""
    step = trainer.train_step

    def run(s):
        t0 = time.perf_counter()
        out = step(s)
        times.append(time.perf_counter() - t0)
        return out

    trainer.train_step = run


def compare_speed(model_config: GPTConfig, get_batch, steps: int, out: str) -> dict[str, float]:
    """Median ms/iter of three models with the same weights, one optimizer step each in turn:
    ours (``model_config``), ours with every formula explicit (use_sdpa=False, fused=False) and
    the built-ins copy of ours (:func:`swap_builtins`)."""
    seed_everything(0)
    ours = GPT(model_config)
    explicit = GPT(dataclasses.replace(model_config, use_sdpa=False, fused=False))
    explicit.load_state_dict(ours.state_dict())
    models = {"ours": ours, "explicit": explicit, "builtins": swap_builtins(ours)}
    x = get_batch("val", 0)["input_ids"]
    with torch.no_grad():
        gap = max((m(x)[0] - ours(x)[0]).abs().max().item() for m in models.values())
    if gap > 1e-4:
        raise ValueError(f"compare_speed: expected the same function, logits differ by {gap:.2e}")
    cfg = train_config(out, max_steps=steps, warmup_steps=min(10, steps), eval_interval=0)
    trainers = {k: Trainer(m, cfg, get_batch, loss_fn=causal_lm_loss) for k, m in models.items()}
    times: dict[str, list[float]] = {k: [] for k in models}
    for s in range(steps):
        order = list(trainers) if s % 2 == 0 else list(reversed(trainers))
        for k in order:
            t0 = time.perf_counter()
            trainers[k].train_step(s)
            times[k].append(time.perf_counter() - t0)
    skip = min(10, steps // 5)
    ms = {k: statistics.median(v[skip:]) * 1e3 for k, v in times.items()}
    return {**ms, "gap": gap}


def full_run(model_config: GPTConfig, get_batch, out: str, steps: int) -> dict:
    seed_everything(1337)
    model = GPT(model_config)
    trainer = Trainer(model, train_config(out, max_steps=steps), get_batch, loss_fn=causal_lm_loss)
    times: list[float] = []
    timed(trainer, times)
    t0 = time.perf_counter()
    rows = trainer.fit()
    wall = time.perf_counter() - t0
    val = {r["step"]: r["loss"] for r in rows if r["split"] == "val"}
    trainer.config.eval_steps = 200  # nanoGPT's default eval_iters, for a steadier final number
    final = trainer.evaluate()["val"]["loss"]
    ms = statistics.mean(times[10:]) * 1e3
    return {"val": val, "final_200": final, "ms_mean": ms, "ms_median": statistics.median(times[10:]) * 1e3, "wall_s": wall,
            "tokens_per_s": NANOGPT["batch_size"] * model_config.block_size / (ms / 1e3),
            "params": model.num_parameters()}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="tinyshakespeare/input.txt")
    ap.add_argument("--steps", type=int, default=NANOGPT["max_steps"], help="iterations of the full run (default 2000)")
    ap.add_argument("--timing-steps", type=int, default=300, help="interleaved steps per model for the speed ratio")
    ap.add_argument("--init-std", type=float, nargs="+", default=[0.02, width_scaled_init_std(NANOGPT["n_embd"])],
                    help="one full run per initial std (default: GPT-2's and nanoGPT's 0.02, and 0.02*sqrt(768/128))")
    args = ap.parse_args(argv)
    train_ids, val_ids, tok = char_splits(args.data)
    config = GPTConfig(block_size=NANOGPT["block_size"], vocab_size=tok.vocab_size, n_layer=NANOGPT["n_layer"],
                       n_head=NANOGPT["n_head"], n_embd=NANOGPT["n_embd"], dropout=0.0, bias=False)
    get_batch = make_batches(train_ids, val_ids, config.block_size, NANOGPT["batch_size"], seed=1337)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, vocab {tok.vocab_size}, "
          f"train {len(train_ids):,} / val {len(val_ids):,} tokens", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        if args.timing_steps > 0:
            ms = compare_speed(config, get_batch, args.timing_steps, tmp + "/speed")
            print(f"\n| model ({args.timing_steps} interleaved steps each) | median ms/iter | vs built-ins |")
            print("| --- | ---: | ---: |")
            rows = [("minigpt, default paths (use_sdpa, fused kernels)", "ours"),
                    ("minigpt, every formula explicit (--no-sdpa --no-fused)", "explicit"),
                    ("same model, nn.LayerNorm + F.scaled_dot_product_attention + F.gelu swapped in", "builtins")]
            for label, key in rows:
                print(f"| {label} | {ms[key]:.1f} | {ms[key] / ms['builtins']:.3f} |")
            print(f"(same function: max |logits difference| {ms['gap']:.1e} at initialisation)", flush=True)
        runs = [full_run(dataclasses.replace(config, init_std=std), get_batch, f"{tmp}/run{i}", args.steps)
                for i, std in enumerate(args.init_std)]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n| {runs[0]['params']:,} parameters | " + " | ".join(f"init_std {s:.3g}" for s in args.init_std) + " |")
    print("| --- |" + " ---: |" * len(runs))
    row = lambda label, values: print(f"| {label} | " + " | ".join(values) + " |")
    for step in (500, 1000, 1500, 2000):
        if all(step in r["val"] for r in runs):
            row(f"val loss at {step} (20 batches, as nanoGPT's CPU command)", [f"{r['val'][step]:.4f}" for r in runs])
    row(f"val loss at {max(runs[0]['val'])}, 200 batches", [f"{r['final_200']:.4f}" for r in runs])
    row("ms/iter (mean / median)", [f"{r['ms_mean']:.1f} / {r['ms_median']:.1f}" for r in runs])
    row("tokens/s (training)", [f"{r['tokens_per_s']:,.0f}" for r in runs])
    row("wall time incl. evaluations", [f"{r['wall_s']:.0f} s" for r in runs])
    print(f"peak memory (ru_maxrss, whole process): {peak:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="gpt_nanogpt_cpu"))
