"""Which pretraining objective learns most per second at the tiny size? (issue #17, ch16 §4)

For each seed, every objective of ``minibert.objectives`` (MLM + NSP, MLM alone, MLM + SOP on BERT's
encoder, ALBERT, ELECTRA's replaced-token detection, a GPT's causal LM) pretrains the same tiny
size (2 layers, width 64, 2 heads, feed-forward 256) on the world's notes with ch08 §8's recipe
(``minibert.recipes.NOTES_RECIPE``: batch 128, lr 2e-3 constant after a 30-step warm-up, 30% masked,
dropout 0). At each of ``--at`` steps the run is paused (the learning rate is constant, so the
snapshot at 250 steps is the 750-step run stopped there; the run then resumes, bit-exact), and the
encoder is fine-tuned on ``--labels`` labelled short reviews, ``--subsets`` random subsets each
(``minibert.recipes.few_label_accuracy``, ch10 §4's recipe), against the same architecture from
random weights. Accuracy on the 300 test short reviews; seconds are the pretraining's wall time.

    python bench/objectives.py --seeds 0 1 2 --threads 1 --json objectives.json
"""
from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from minibert.finetune import encode_classification, label_vocab
from minibert.objectives import OBJECTIVES, Corpus, build_objective, tiny_sizes
from minibert.pretraining import tokenize_documents
from minibert.recipes import FEW_LABEL_STEPS, NOTES_RECIPE, few_label_accuracy, split_notes, train_notes_tokenizer
from minitransformer.data import load_world_short_reviews
from minitransformer.trainer import TrainConfig, Trainer

ARCHITECTURE = {"mlm_nsp": "bert", "mlm_sop": "bert", "rtd": "bert", "mlm": "roberta", "albert": "albert", "causal": "gpt"}
ARCHITECTURES = ("bert", "roberta", "albert", "gpt")


def corpus_for(tok, seed: int, recipe: dict) -> Corpus:
    docs = {name: tokenize_documents(notes, tok) for name, notes in split_notes(recipe, "en").items()}
    return Corpus(docs, tok, batch_size=recipe["batch_size"], max_len=recipe["max_len"], p_mlm=recipe["p_mlm"], seed=seed)


def accuracies(objective, pretrained: bool, tok, tasks, seed: int, a) -> dict[int, float]:
    """Mean test accuracy over ``a.subsets`` labelled subsets, for each number of labels in ``a.labels``."""
    train, labels, test_enc = tasks
    out = {}
    for n in a.labels:
        runs = []
        for k in range(a.subsets):
            draw = 1000 * seed + k
            enc = encode_classification(random.Random(draw).sample(train, n), tok, labels, 64)
            torch.manual_seed(draw)
            runs.append(few_label_accuracy(objective.classifier(pretrained), tok, enc, test_enc, FEW_LABEL_STEPS[n], draw,
                                           tempfile.mkdtemp(prefix="objectives_ft_")))
        out[n] = statistics.mean(runs)
    return out


def run_seed(seed: int, a, tok, tasks) -> list[dict]:
    corpus = corpus_for(tok, seed, NOTES_RECIPE)
    sizes = tiny_sizes(tok.vocab_size, NOTES_RECIPE["max_len"])
    rows = []
    objectives = {name: build_objective(name, corpus, sizes, init_seed=seed + 1, rtd_seed=seed + 4) for name in a.objectives}
    for arch in ARCHITECTURES:  # the from-scratch control: any objective's classifier(False) of that architecture
        name = next((n for n in objectives if ARCHITECTURE[n] == arch), None)
        if name is not None:
            acc = accuracies(objectives[name], False, tok, tasks, seed, a)
            rows.append({"seed": seed, "objective": "scratch", "architecture": arch, "steps": 0, "seconds": 0.0, **acc})
            print(f"  seed {seed} scratch {arch}: {acc}", file=sys.stderr, flush=True)
    for name, objective in objectives.items():
        out_dir = tempfile.mkdtemp(prefix=f"objectives_{name}_")
        seconds, done = 0.0, 0
        for steps in a.at:
            cfg = TrainConfig(out_dir=out_dir, max_steps=steps, batch_size=NOTES_RECIPE["batch_size"], lr=NOTES_RECIPE["lr"],
                              min_lr=NOTES_RECIPE["lr"], warmup_steps=NOTES_RECIPE["warmup"], weight_decay=0.01, betas=(0.9, 0.98),
                              eval_interval=0, log_interval=50, checkpoint_interval=0, progress=False, plot=False,
                              resume=done > 0, overwrite=done == 0, seed=seed)
            t0 = time.perf_counter()
            Trainer(objective.model, cfg, objective.get_batch, loss_fn=objective.loss_fn).fit()
            seconds += time.perf_counter() - t0
            done = steps
            acc = accuracies(objective, True, tok, tasks, seed, a)
            rows.append({"seed": seed, "objective": name, "architecture": ARCHITECTURE[name], "steps": steps,
                         "seconds": round(seconds, 1), **acc})
            print(f"  seed {seed} {name} {steps} steps {seconds:.0f} s: {acc}", file=sys.stderr, flush=True)
    return rows


def summary(rows: list[dict], labels: list[int]) -> str:
    """Markdown: per objective and step count, mean ± std over seeds of accuracy and of the gain over
    the same architecture from scratch (same seed, same subsets)."""
    scratch = {(r["seed"], r["architecture"]): r for r in rows if r["objective"] == "scratch"}
    out = ["| objective | steps | pretrain s | " + " | ".join(f"{n} labels: acc | gain over scratch" for n in labels) + " |",
           "|---|---|---|" + "---|---|" * len(labels)]
    for arch in ARCHITECTURES:
        runs = [r for r in scratch.values() if r["architecture"] == arch]
        if runs:
            cells = " | ".join(f"{statistics.mean(r[n] for r in runs):.3f} ± {_sd([r[n] for r in runs]):.3f} | —" for n in labels)
            out.append(f"| scratch ({arch}) | 0 | 0 | {cells} |")
    keys = sorted({(r["objective"], r["steps"]) for r in rows if r["objective"] != "scratch"},
                  key=lambda k: (OBJECTIVES.index(k[0]), k[1]))
    for name, steps in keys:
        runs = [r for r in rows if r["objective"] == name and r["steps"] == steps]
        cells = []
        for n in labels:
            acc = [r[n] for r in runs]
            gain = [r[n] - scratch[(r["seed"], r["architecture"])][n] for r in runs]
            cells.append(f"{statistics.mean(acc):.3f} ± {_sd(acc):.3f} | {statistics.mean(gain):+.3f} ± {_sd(gain):.3f}")
        secs = statistics.mean(r["seconds"] for r in runs)
        out.append(f"| {name} | {steps} | {secs:.0f} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def _sd(values) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--objectives", nargs="+", default=list(OBJECTIVES), choices=OBJECTIVES)
    ap.add_argument("--at", type=int, nargs="+", default=[250, 500, 750], help="pretraining steps at which to fine-tune")
    ap.add_argument("--labels", type=int, nargs="+", default=[32, 128], choices=sorted(FEW_LABEL_STEPS))
    ap.add_argument("--subsets", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, help="also write every run's row here (a later --summarise reads it)")
    ap.add_argument("--summarise", type=Path, nargs="+", metavar="JSON", help="print the table of earlier --json files and exit")
    a = ap.parse_args(argv)
    if a.summarise:
        rows = [r for p in a.summarise for r in json.loads(p.read_text(encoding="utf-8"))]
        labels = sorted({int(k) for r in rows for k in r if k.isdigit()})
        print(summary([{**{k: v for k, v in r.items() if not k.isdigit()}, **{int(k): v for k, v in r.items() if k.isdigit()}}
                       for r in rows], labels))
        return 0
    if sorted(set(a.at)) != a.at or a.at[0] <= NOTES_RECIPE["warmup"] or a.subsets < 1 or a.threads < 1:
        ap.error(f"expected --at increasing and past the {NOTES_RECIPE['warmup']}-step warm-up, --subsets >= 1 and "
                 f"--threads >= 1, received --at {a.at}, --subsets {a.subsets}, --threads {a.threads}")
    a.labels = sorted(set(a.labels))
    torch.set_num_threads(a.threads)
    for name in ("minitransformer", "minibert"):
        logging.getLogger(name).setLevel(logging.ERROR)
    print(f"$ python bench/objectives.py --seeds {' '.join(map(str, a.seeds))} --objectives {' '.join(a.objectives)} "
          f"--at {' '.join(map(str, a.at))} --labels {' '.join(map(str, a.labels))} --subsets {a.subsets} --threads {a.threads}\n")
    tok = train_notes_tokenizer(NOTES_RECIPE, "en")
    train = load_world_short_reviews("en", "train")
    labels = label_vocab("classify", train)
    tasks = (train, labels, encode_classification(load_world_short_reviews("en", "test"), tok, labels, 64))
    rows = []
    for seed in a.seeds:
        rows += run_seed(seed, a, tok, tasks)
        if a.json:
            a.json.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    print(summary(rows, a.labels))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
