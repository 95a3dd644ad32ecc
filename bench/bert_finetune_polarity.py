"""Sentence polarity (Pang & Lee, 10,662 movie-review snippets): a small minibert pretrained here
vs the same model from random initialisation, fine-tuned on the same fixed 80/10/10 split.

    python bench/bert_finetune_polarity.py --data ../shared/data/sentence_polarity

Pretraining data: the *training split's* snippets only, as unlabelled text (no labels, no
validation or test text). The snippets are shuffled and grouped five to a pseudo-document, so NSP
has no real signal here (consecutive snippets are unrelated); MLM is what the model learns from.
Every step goes through ``python -m minibert`` (pretrain, finetune); the test split is scored
with ``minibert.evaluate.evaluate``. Prints a markdown table: test accuracy, macro-F1, wall time.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
from bert_common import add_small_bert_args, model_size_args, pretrain_on_texts, run_minibert

from minibert import BertForSequenceClassification
from minibert.evaluate import evaluate
from minibert.hf import load_tokenizer_from
from minitransformer.data import load_classification_files, split_dataset



def write_tsv(path: Path, examples) -> Path:
    path.write_text("text\tlabel\n" + "".join(f"{e.text}\t{e.label}\n" for e in examples), encoding="utf-8")
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data/sentence_polarity", help="folder with rt-polarity.pos/.neg")
    p.add_argument("--out", default="runs/bench_polarity")
    add_small_bert_args(p, pretrain_steps=3000, epochs=4, vocab_size=8000)
    a = p.parse_args(argv)
    data, out = Path(a.data), Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    examples = load_classification_files({"pos": data / "rt-polarity.pos", "neg": data / "rt-polarity.neg"})
    train, val, test = split_dataset(examples, (0.8, 0.1, 0.1), seed=a.seed)
    files = {name: write_tsv(out / f"{name}.tsv", part) for name, part in (("train", train), ("val", val), ("test", test))}
    snippets = [e.text for e in train]
    size = model_size_args(a)
    t_pre = pretrain_on_texts(snippets, a, out, max_len=96)
    tok_dir = out / "pretrain" / "checkpoint" / "tokenizer"
    common = ["finetune", "--task", "classify", "--train", files["train"], "--val", files["val"], "--quoting", "none",
              "--epochs", a.epochs, "--lr", a.lr, "--batch-size", 32, "--max-len", 96, *size]
    variants = [
        ("pretrained, full fine-tuning", ["--init", out / "pretrain"]),
        ("random init, full fine-tuning", ["--init", "random", "--tokenizer", tok_dir]),
        ("pretrained, frozen encoder (linear probe)", ["--init", out / "pretrain", "--freeze-encoder", "--lr", 3e-3]),
    ]
    rows = []
    for i, (name, extra) in enumerate(variants):
        run_dir = out / f"finetune{i}"
        seconds = run_minibert(common + ["--out-dir", run_dir] + extra)
        model = BertForSequenceClassification.from_pretrained(run_dir / "checkpoint")
        res = evaluate(model, load_tokenizer_from(run_dir / "checkpoint"), "classify", test, 96, source="test",
                       predictions=run_dir / "predictions_test.tsv", confusion_png=run_dir / "confusion_test.png")
        rows.append((name, res["accuracy"], res["report"].macro.f1, seconds))
    print(f"\nsplit {len(train)}/{len(val)}/{len(test)} (seed {a.seed}); model H={a.hidden}, L={a.layers}, heads={a.heads}, "
          f"init std {a.initializer_range:g}, vocab {a.vocab_size} (sentencepiece BPE on the training split); pretraining {a.pretrain_steps} steps: {t_pre:.0f} s; "
          f"torch threads {torch.get_num_threads()}, load {os.getloadavg()[0]:.2f}")
    print("| model | test accuracy | test macro-F1 | fine-tuning wall time (s) |")
    print("|---|---|---|---|")
    for name, acc, f1, sec in rows:
        print(f"| {name} | {acc:.4f} | {f1:.4f} | {sec:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
