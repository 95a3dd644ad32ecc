"""A sequence classifier's training step with the last layer at every row or at [CLS] only.

BertForSequenceClassification reads the pooled [CLS] vector alone, so its last encoder layer
computes that row only (``EncoderBlock.forward_at``; keys and values still from every token).
``output_hidden_states=True`` asks for every row of every layer, which runs the full last layer:
the two are the same function (tests/test_bert_model.py), and this times both, alternating,
forward + backward of the cross-entropy, one thread by default.

    python bench/bert_classifier_step.py
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from minibert import BertConfig, BertForSequenceClassification  # noqa: E402
from minitransformer.cli import POSITIVE_INT  # noqa: E402

# (layers, hidden, heads, sequence length): ch10's classifier size, and all-MiniLM-L6-v2's (ch15)
SIZES = ((2, 128, 2, 64), (6, 384, 12, 48))


def step_ms(model, ids, labels, full: bool, steps: int) -> float:
    t0 = time.perf_counter()
    for _ in range(steps):
        model(ids, labels=labels, output_hidden_states=full).loss.backward()
    return (time.perf_counter() - t0) / steps * 1000


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=POSITIVE_INT, default=16)
    ap.add_argument("--rounds", type=POSITIVE_INT, default=5, help="alternating rounds per size")
    ap.add_argument("--steps", type=POSITIVE_INT, default=5, help="steps per round")
    ap.add_argument("--threads", type=POSITIVE_INT, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"$ python bench/bert_classifier_step.py --batch {args.batch} --rounds {args.rounds} --steps {args.steps} "
          f"--threads {args.threads}\ntorch {torch.__version__}, threads {args.threads}\n")
    print("| layers × hidden, T | every row: ms/step | [CLS] only: ms/step | speed-up |\n|---|---|---|---|")
    for layers, hidden, heads, length in SIZES:
        config = BertConfig(vocab_size=8000, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                            intermediate_size=4 * hidden, max_position_embeddings=128, id2label={0: "neg", 1: "pos"})
        model = BertForSequenceClassification(config)
        ids = torch.randint(5, 8000, (args.batch, length))
        labels = torch.randint(0, 2, (args.batch,))
        for full in (True, False):  # warm-up
            step_ms(model, ids, labels, full, 2)
        times = {True: [], False: []}
        for r in range(args.rounds):
            for full in ((True, False) if r % 2 == 0 else (False, True)):
                times[full].append(step_ms(model, ids, labels, full, args.steps))
        every, cls = statistics.median(times[True]), statistics.median(times[False])
        print(f"| {layers} × {hidden}, {length} | {every:.1f} | {cls:.1f} | {every / cls:.2f}× |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
