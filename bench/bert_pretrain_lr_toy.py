"""Does the tiny BERT's MLM learn a sentiment word from its context, and how does that depend on
the learning rate? A toy corpus with one second-order signal per row:

    A = "the food was W1 and W2 ."     B = "NAME felt good ."  (W1, W2 positive)  or  "... bad ." (negative)

W1, W2 are drawn from 50 made-up positive and 50 negative words, so nothing but co-occurrence tells their polarity. After ``--steps`` steps of
MLM + NSP (minibert's BertForPreTraining, ch08's size: 2 layers, width 64) the probe asks the MLM
head to fill "NAME felt [MASK] ." after 200 fresh A sentences and counts good > bad when W1, W2
are positive (and the reverse). Optionally the same with transformers' BertForPreTraining.

    python bench/bert_pretrain_lr_toy.py --lrs 5e-3 1e-3 3e-4 --steps 3000
"""
from __future__ import annotations

import argparse
import logging
import random
import time

import torch

from minibert import BertConfig, BertForPreTraining
from minibert.pretraining import PretrainingData, build_pair_inputs, pad_rows, pretraining_loss
from minitransformer.trainer import TrainConfig, Trainer

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


class WordTokenizer:
    """Whitespace words -> ids; the five BERT specials first."""

    def __init__(self, words):
        self.itos = SPECIALS + sorted(words)
        self.stoi = {w: i for i, w in enumerate(self.itos)}
        self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = range(5)
        self.special_ids, self.vocab_size = list(range(5)), len(self.itos)

    def encode(self, text):
        return [self.stoi[w] for w in text.split()]


def toy_pair(rng, pos, neg, names):
    p = rng.random() < 0.5
    words = pos if p else neg
    return f"the food was {rng.choice(words)} and {rng.choice(words)} .", f"{rng.choice(names)} felt", p


def probe(model, tok, rng, pos, neg, names, n=200):
    rows, segs, ys = [], [], []
    for _ in range(n):
        a, b, p = toy_pair(rng, pos, neg, names)
        r, s = build_pair_inputs(tok.encode(a), tok.encode(b) + [tok.mask_id] + tok.encode("."), tok.cls_id, tok.sep_id, 32)
        rows.append(r), segs.append(s), ys.append(p)
    model.eval()
    with torch.no_grad():
        logits = model(pad_rows(rows, 0), pad_rows(segs, 0), pad_rows([[1] * len(r) for r in rows], 0)).mlm_logits  # (n, T, V)
    model.train()
    good, bad = tok.stoi["good"], tok.stoi["bad"]
    at = [r.index(tok.mask_id) for r in rows]
    return sum((logits[i, at[i], good] > logits[i, at[i], bad]).item() == ys[i] for i in range(n)) / n


def run(lr: float, steps: int, probes: int, seed: int) -> list[tuple[int, float, float]]:
    rng = random.Random(seed)
    pos, neg, names = [f"p{i}" for i in range(50)], [f"n{i}" for i in range(50)], ["anna", "ben", "tom", "lily", "sam", "kate"]
    tok = WordTokenizer(pos + neg + names + ["the", "food", "was", "and", "felt", "good", "bad", "."])
    docs = []
    for _ in range(6000):
        a, b, p = toy_pair(rng, pos, neg, names)
        docs.append([tok.encode(a), tok.encode(f"{b} {'good' if p else 'bad'} .")])
    data = PretrainingData({"train": docs[100:], "val": docs[:100]}, tok, batch_size=32, max_len=32, seed=seed)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=tok.vocab_size, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=256, max_position_embeddings=32, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = BertForPreTraining(config)
    rows, t0, chunk = [], time.perf_counter(), steps // probes
    for k in range(probes):  # constant lr after a 30-step warm-up, probed every `chunk` steps
        cfg = TrainConfig(out_dir="/tmp/bert_lr_toy", max_steps=chunk, batch_size=32, lr=lr, min_lr=lr, warmup_steps=30 if k == 0 else 0,
                          weight_decay=0.01, betas=(0.9, 0.98), eval_interval=0, log_interval=10**9, checkpoint_interval=-1,
                          progress=False, seed=seed, overwrite=True)
        Trainer(model, cfg, lambda split, i, _k=k: data(split, i + 10**6 * _k), loss_fn=pretraining_loss).fit()
        rows.append(((k + 1) * chunk, probe(model, tok, rng, pos, neg, names), time.perf_counter() - t0))
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lrs", type=float, nargs="+", default=[5e-3, 1e-3, 3e-4])
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--probes", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    if args.steps < args.probes or args.probes < 1 or args.threads < 1 or any(not 0 < lr < 1 for lr in args.lrs):
        ap.error(f"expected steps >= probes >= 1, threads >= 1 and 0 < lr < 1, received {vars(args)}")
    torch.set_num_threads(args.threads)
    logging.getLogger("minitransformer").setLevel(logging.ERROR)
    print(f"$ python bench/bert_pretrain_lr_toy.py --lrs {' '.join(map(str, args.lrs))} --steps {args.steps} --seed {args.seed}\n")
    print("| lr | " + " | ".join(f"step {(k + 1) * (args.steps // args.probes)}" for k in range(args.probes)) + " | seconds |")
    print("|---|" + "---|" * (args.probes + 1))
    for lr in args.lrs:
        rows = run(lr, args.steps, args.probes, args.seed)
        print(f"| {lr:g} | " + " | ".join(f"{acc:.2f}" for _, acc, _ in rows) + f" | {rows[-1][2]:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
