"""Generation speed with and without the KV cache: tokens/s for 256 and 1024 new tokens.

Without the cache every new token re-runs the whole prefix (O(T) tokens through the model per
step, O(T²) attention); with it, only the new token goes through the model and attends to the
cached keys and values. Both paths give the same tokens (checked here on the greedy run).

    python bench/gpt_kv_cache.py [--n-layer 4 --n-head 4 --n-embd 256 --prompt 16]

The model's block_size is prompt + the longest run, so the cache never has to restart.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Sequence

import torch

from minigpt.config import GPTConfig
from minigpt.model import GPT
from minitransformer.cli import run_cli


def tokens_per_second(model: GPT, prompt: torch.Tensor, n: int, use_cache: bool) -> tuple[float, torch.Tensor]:
    t0 = time.perf_counter()
    out = model.generate(prompt, n, greedy=True, use_cache=use_cache)
    return n / (time.perf_counter() - t0), out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--n-embd", type=int, default=256)
    ap.add_argument("--vocab-size", type=int, default=512)
    ap.add_argument("--prompt", type=int, default=16, help="prompt length in tokens")
    ap.add_argument("--lengths", type=int, nargs="+", default=[256, 1024], help="new tokens per run")
    args = ap.parse_args(argv)
    config = GPTConfig(block_size=args.prompt + max(args.lengths), vocab_size=args.vocab_size, n_layer=args.n_layer,
                       n_head=args.n_head, n_embd=args.n_embd)
    torch.manual_seed(0)
    model = GPT(config).eval()
    prompt = torch.randint(0, config.vocab_size, (1, args.prompt), generator=torch.Generator().manual_seed(1))
    model.generate(prompt, 8, greedy=True)  # warm-up
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, {model.num_parameters():,} parameters "
          f"({args.n_layer} layers, {args.n_head} heads, {args.n_embd} wide, block {config.block_size}), "
          f"batch 1, prompt {args.prompt}, greedy\n")
    print("| new tokens | no cache (tokens/s) | KV cache (tokens/s) | speed-up | same tokens |")
    print("| ---: | ---: | ---: | ---: | --- |")
    for n in args.lengths:
        slow, a = tokens_per_second(model, prompt, n, use_cache=False)
        fast, b = tokens_per_second(model, prompt, n, use_cache=True)
        print(f"| {n} | {slow:,.0f} | {fast:,.0f} | {fast / slow:.1f}x | {'yes' if torch.equal(a, b) else 'NO'} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="gpt_kv_cache"))
