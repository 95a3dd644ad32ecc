"""How long ch08 §8's pretraining on the notes takes (issue #12: at most 60 s on 2 cores).

Runs ``minibert.recipes.pretrain_on_notes`` with ``NOTES_RECIPE`` ``--repeats`` times in this
process (the tokenizer is trained inside each run, as ch08 does) and prints one row per run: wall
time, training tokens per second, the final validation MLM loss and the load average before the run.

    python bench/notes_pretrain_time.py --lang en --threads 2 --repeats 3
"""
from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from minibert.recipes import NOTES_RECIPE, pretrain_on_notes  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lang", default="en", choices=["en", "zh"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    if a.threads < 1 or a.repeats < 1:
        ap.error(f"expected --threads >= 1 and --repeats >= 1, received {a.threads} and {a.repeats}")
    torch.set_num_threads(a.threads)
    logging.getLogger("minitransformer").setLevel(logging.ERROR)
    logging.getLogger("minibert").setLevel(logging.ERROR)
    print(f"$ python bench/notes_pretrain_time.py --lang {a.lang} --threads {a.threads} --repeats {a.repeats}")
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, recipe: {NOTES_RECIPE['steps']} steps of "
          f"{NOTES_RECIPE['batch_size']} pairs\n")
    print("| run | load average before | wall s | training tokens/s | final val MLM loss |\n|---|---|---|---|---|")
    walls = []
    for run in range(a.repeats):
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        _, history = pretrain_on_notes(tempfile.mkdtemp(prefix="notes_time_"), NOTES_RECIPE, lang=a.lang, seed=a.seed)
        walls.append(time.perf_counter() - t0)
        train = [r for r in history if r["split"] == "train" and "tokens_per_s" in r]
        val = [r for r in history if r["split"] == "val"]
        print(f"| {run + 1} | {load:.2f} | {walls[-1]:.1f} | {statistics.median(r['tokens_per_s'] for r in train):,.0f} | "
              f"{val[-1]['mlm_loss']:.3f} |", flush=True)
    print(f"\nmedian wall time {statistics.median(walls):.1f} s (min {min(walls):.1f}, max {max(walls):.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
