"""Time the explicit attention, our fast path and F.scaled_dot_product_attention, forward and
forward+backward, at a few (B, H, T, D) shapes. Prints median times and ratios to SDPA.

    python bench/attention.py [--repeats 20] [--causal]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from minitransformer.attention import scaled_dot_product_attention, sdpa_fast

SHAPES = [(8, 4, 64, 32), (8, 8, 256, 64), (1, 12, 1024, 64)]


def median_ms(fn, repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def fwd_bwd(attn, q, k, v, causal):
    def run():
        out = attn(q, k, v, is_causal=causal)
        out.sum().backward()
        q.grad = k.grad = v.grad = None
    return run


def fwd(attn, q, k, v, causal):
    def run():
        with torch.no_grad():
            attn(q, k, v, is_causal=causal)
    return run


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--causal", action="store_true", help="use a causal mask")
    args = ap.parse_args()
    torch.manual_seed(0)
    impls = {
        "explicit": lambda q, k, v, is_causal: scaled_dot_product_attention(q, k, v, is_causal=is_causal),
        "fast path": lambda q, k, v, is_causal: sdpa_fast(q, k, v, is_causal=is_causal),
        "F.sdpa": lambda q, k, v, is_causal: F.scaled_dot_product_attention(q, k, v, is_causal=is_causal),
    }
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, causal={args.causal}, float32, CPU")
    print(f"| (B,H,T,D) | pass | explicit ms | fast path ms | F.sdpa ms | explicit/sdpa | fast/sdpa |")
    print("|---|---|---|---|---|---|---|")
    for shape in SHAPES:
        q, k, v = (torch.randn(*shape, requires_grad=True) for _ in range(3))
        for name, make in (("fwd", fwd), ("fwd+bwd", fwd_bwd)):
            # interleave the implementations so drift in machine load hits all three alike
            ms = {n: [] for n in impls}
            for _ in range(3):
                for n, f in impls.items():
                    ms[n].append(median_ms(make(f, q, k, v, args.causal), max(args.repeats // 3, 3)))
            m = {n: statistics.median(v) for n, v in ms.items()}
            print(f"| {shape} | {name} | {m['explicit']:.2f} | {m['fast path']:.2f} | {m['F.sdpa']:.2f} "
                  f"| {m['explicit'] / m['F.sdpa']:.2f}× | {m['fast path'] / m['F.sdpa']:.2f}× |")


if __name__ == "__main__":
    main()
