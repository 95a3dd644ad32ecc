"""WNUT-17 emerging entities (English NER, 6 types, noisy user text) with the given splits:
train 3,394 / dev 1,009 / test 1,287 sentences. Entity-level F1 (exact span and type) on test.

    python bench/bert_ner_wnut17.py --data ../shared/data/wnut17

Two small minibert models, same size and hyper-parameters: random initialisation, and pretrained
here (MLM + NSP) on the train + dev *sentences* as unlabelled text (tags unused; grouped five to a
pseudo-document, so NSP has little signal). The tokenizer is a cased sentencepiece BPE trained on
the same text. Every step runs through ``python -m minibert``; the test split is scored with
``minibert.evaluate.evaluate``. Published systems score about 40-60 F1 with large pretrained models;
a tiny model trained on 3,394 tweets sets a floor, not a state of the art.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
from bert_common import add_small_bert_args, model_size_args, pretrain_on_texts, run_minibert

from minibert import BertForTokenClassification
from minibert.evaluate import evaluate
from minibert.hf import load_tokenizer_from
from minitransformer.data import load_conll


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data/wnut17")
    p.add_argument("--out", default="runs/bench_wnut17")
    add_small_bert_args(p, pretrain_steps=2000, epochs=10, vocab_size=4000)
    a = p.parse_args(argv)
    data, out = Path(a.data), Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    files = {"train": data / "wnut17train.conll", "dev": data / "emerging.dev.conll", "test": data / "emerging.test.annotated"}
    test = load_conll(files["test"])
    sentences = [" ".join(s.tokens) for split in ("train", "dev") for s in load_conll(files[split])]
    size = model_size_args(a)
    t_pre = pretrain_on_texts(sentences, a, out, max_len=128)
    tok_dir = out / "pretrain" / "checkpoint" / "tokenizer"
    common = ["finetune", "--task", "ner", "--train", files["train"], "--val", files["dev"], "--epochs", a.epochs,
              "--lr", a.lr, "--batch-size", 32, "--max-len", 128, *size]
    variants = [("pretrained (MLM + NSP on train + dev text)", ["--init", out / "pretrain"]),
                ("random init", ["--init", "random", "--tokenizer", tok_dir])]
    rows = []
    for i, (name, extra) in enumerate(variants):
        run_dir = out / f"finetune{i}"
        seconds = run_minibert(common + ["--out-dir", run_dir] + extra)
        model = BertForTokenClassification.from_pretrained(run_dir / "checkpoint")
        res = evaluate(model, load_tokenizer_from(run_dir / "checkpoint"), "ner", test, 128, source="test",
                       predictions=run_dir / "predictions_test.tsv")
        r = res["report"]
        rows.append((name, r.micro.precision, r.micro.recall, r.micro.f1, r.macro.f1, seconds))
        print(f"== {name}: test\n{res['text']}", flush=True)
    print(f"\nmodel H={a.hidden}, L={a.layers}, heads={a.heads}, init std {a.initializer_range:g}, vocab {a.vocab_size} (cased sentencepiece BPE); "
          f"pretraining {a.pretrain_steps} steps: {t_pre:.0f} s; fine-tuning {a.epochs:g} epochs, lr {a.lr:g}; "
          f"torch threads {torch.get_num_threads()}, load {os.getloadavg()[0]:.2f}")
    print("| model | test entity P | test entity R | test entity F1 (micro) | macro-F1 over types | fine-tuning wall time (s) |")
    print("|---|---|---|---|---|---|")
    for name, prec, rec, f1, mf1, sec in rows:
        print(f"| {name} | {prec:.4f} | {rec:.4f} | {f1:.4f} | {mf1:.4f} | {sec:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
