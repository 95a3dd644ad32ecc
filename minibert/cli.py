"""``python -m minibert {pretrain,finetune,evaluate}``: the command line. Bad input prints
``python -m minibert: error: ...`` and exits 2 (``minitransformer.cli.run_cli``).

    python -m minibert pretrain --max-steps 2000                           # MLM + NSP on the bundled world
    python -m minibert finetune --task classify --train data/reviews_en.train.tsv --init runs/minibert-pretrain
    python -m minibert finetune --task ner --train data/ner_en.train.conll --init-hf path/to/bert-base-cased
    python -m minibert evaluate --checkpoint runs/minibert-finetune --data data/reviews_en.test.tsv
"""
from __future__ import annotations

import argparse
import logging
from typing import Sequence

from minitransformer.cli import (POSITIVE_INT, PROBABILITY, TRAIN_TYPES, CLIError, StderrHandler, add_dataclass_args,
                                 add_threads_argument, number, set_threads)
from minitransformer.data import DATA_DIR
from minitransformer.data.loaders import FORMATS, QUOTINGS
from minitransformer.trainer import TRAIN_HELP, NonFiniteLossError, TrainConfig

from .config import BertConfig
from .evaluate import F1_NOTE

PROG = "python -m minibert"
DEFAULT_DOCS = [DATA_DIR / "world_en.txt", DATA_DIR / "world_zh.txt"]

PRETRAIN_HELP = {**TRAIN_HELP, "seed": "seed of the whole run (weights, pairs, masks, dropout)"}
PRETRAIN_DEFAULTS = dict(out_dir="runs/minibert-pretrain", max_steps=2000, batch_size=32, lr=1e-3, min_lr=1e-4,
                         warmup_steps=100, weight_decay=0.01, betas=(0.9, 0.999), eval_interval=200, eval_steps=10)
FINETUNE_DEFAULTS = dict(out_dir="runs/minibert-finetune", max_steps=0, batch_size=32, lr=1e-4, min_lr=0.0,
                         warmup_steps=-1, weight_decay=0.01, betas=(0.9, 0.999), eval_interval=0, eval_steps=0)
FINETUNE_TYPES = {**TRAIN_TYPES, "max_steps": number(0, integer=True, why="0 = --epochs passes"),
                  "warmup_steps": number(-1, integer=True, why="-1 = 10% of the steps")}
MAX_LEN = number(2, integer=True, why="[CLS] and [SEP]")
FRACTION = number(0.0, 1.0, low_open=True, high_open=True)  # --val-fraction, --mlm-probability: (0, 1)
FINETUNE_HELP = {**TRAIN_HELP, "max_steps": "optimizer steps; 0 = --epochs passes over the training set",
                 "warmup_steps": "linear warmup steps; -1 = 10%% of the steps",
                 "eval_interval": "evaluate every N steps; 0 = once per epoch",
                 "eval_steps": "validation batches per evaluation; 0 = the whole validation set"}


def add_model_args(parser: argparse.ArgumentParser, what: str) -> None:
    g = parser.add_argument_group(f"model size (minibert.BertConfig; {what})")
    g.add_argument("--hidden-size", type=POSITIVE_INT, default=128, help="H (default: 128; bert-base 768)")
    g.add_argument("--num-hidden-layers", type=POSITIVE_INT, default=2, help="encoder layers (default: 2; bert-base 12)")
    g.add_argument("--num-attention-heads", type=POSITIVE_INT, default=2, help="heads (default: 2; bert-base 12)")
    g.add_argument("--intermediate-size", type=POSITIVE_INT, default=512, help="feed-forward width (default: 512 = 4H)")
    g.add_argument("--max-position-embeddings", type=MAX_LEN, default=128, help="position table (default: 128)")
    g.add_argument("--dropout", type=PROBABILITY, default=0.1, help="hidden and attention dropout (default: 0.1)")
    g.add_argument("--initializer-range", type=number(), default=0.02,
                   help="std of the initial weights (default: BERT's 0.02, chosen for H = 768)")
    g.add_argument("--sdpa", action=argparse.BooleanOptionalAction, default=True,
                   help="fused attention kernel (same function as the hand-written one; default: on)")


def add_tokenizer_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tokenizer", default="sentencepiece", metavar="KIND|DIR",
                        help="'sentencepiece' (BPE, trained on the training text), 'char', or a saved tokenizer "
                             "folder (tokenizer.json, or a BERT vocab.txt) (default: sentencepiece)")
    parser.add_argument("--vocab-size", type=POSITIVE_INT, default=2000, help="sentencepiece vocabulary bound (default: 2000)")


def add_file_args(parser: argparse.ArgumentParser) -> None:
    """--format, --quoting, --encoding: how the labelled files are read (minitransformer.data.load_classification)."""
    parser.add_argument("--format", choices=FORMATS, default=None,
                        help="classification file format (default: from the suffix: .tsv/.txt tsv, .csv csv, "
                             ".jsonl/.json jsonl)")
    parser.add_argument("--quoting", choices=QUOTINGS, default="csv",
                        help="TSV/CSV quotes: 'csv' as Python's csv module reads them, 'none' = quotes are plain text "
                             "(default: csv)")
    parser.add_argument("--encoding", default="utf-8", help="text encoding of the data files (default: utf-8)")


def model_config_from_args(args, vocab_size: int, pad_id: int, **extra) -> BertConfig:
    return BertConfig(vocab_size=vocab_size, hidden_size=args.hidden_size, num_hidden_layers=args.num_hidden_layers,
                      num_attention_heads=args.num_attention_heads, intermediate_size=args.intermediate_size,
                      max_position_embeddings=args.max_position_embeddings, hidden_dropout_prob=args.dropout,
                      attention_probs_dropout_prob=args.dropout, initializer_range=args.initializer_range,
                      pad_token_id=pad_id, use_sdpa=args.sdpa, **extra)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="BERT from scratch: pretrain (MLM + NSP), fine-tune, evaluate.")
    sub = parser.add_subparsers(dest="command", required=True)

    pre = sub.add_parser("pretrain", help="MLM + NSP pretraining (Article §3.2.3)",
                         description="MLM + NSP pretraining. Documents are separated by blank lines, one sentence per line. "
                                     "Reports MLM and NSP loss and accuracy beside their chance levels (ln|V|, 50%).")
    pre.add_argument("--data", nargs="+", default=[str(p) for p in DEFAULT_DOCS], metavar="FILE",
                     help="text files of documents (default: the bundled bilingual world, data/world_{en,zh}.txt)")
    add_tokenizer_args(pre)
    pre.add_argument("--init-hf", metavar="DIR", help="continue pretraining a Hugging Face BERT folder (its vocab.txt too)")
    pre.add_argument("--max-len", type=MAX_LEN, default=64, help="tokens per [CLS] A [SEP] B [SEP] row (default: 64)")
    pre.add_argument("--val-fraction", type=FRACTION, default=0.05, help="documents held out for validation (default: 0.05)")
    pre.add_argument("--mlm-probability", type=FRACTION, default=0.15, help="share of tokens selected for MLM (default: 0.15)")
    add_model_args(pre, "ignored with --init-hf or --resume")
    add_dataclass_args(pre, TrainConfig, PRETRAIN_DEFAULTS, PRETRAIN_HELP, "training (minitransformer.trainer.TrainConfig)",
                       types=TRAIN_TYPES)

    fin = sub.add_parser("finetune", help="fine-tune for classification or NER (Article §3.2.4)",
                         description="Fine-tune a classification head (TSV/CSV/JSONL with text and label) or an NER head "
                                     "(CoNLL, BIO tags; the first subword of each word carries its tag). " + F1_NOTE)
    fin.add_argument("--task", choices=("classify", "ner"), required=True)
    fin.add_argument("--train", required=True, metavar="FILE", help="training data")
    fin.add_argument("--val", metavar="FILE", help="validation data (default: --val-fraction of --train)")
    fin.add_argument("--test", metavar="FILE", help="test data, scored once at the end")
    fin.add_argument("--val-fraction", type=FRACTION, default=0.1, help="held out of --train without --val (default: 0.1)")
    fin.add_argument("--train-size", type=POSITIVE_INT, default=None, metavar="N",
                     help="train on N examples drawn at random (--seed) from the training set: few-label experiments")
    fin.add_argument("--text-column", default="text", help="classification text column (name or index; default: text)")
    fin.add_argument("--label-column", default="label", help="classification label column (default: label)")
    add_file_args(fin)
    init = fin.add_mutually_exclusive_group(required=True)
    init.add_argument("--init", metavar="DIR|random",
                      help="a minibert checkpoint (a run folder or its checkpoint/), or 'random' for no pretraining")
    init.add_argument("--init-hf", metavar="DIR", help="a Hugging Face BERT folder: config.json, weights, vocab.txt")
    add_tokenizer_args(fin)
    fin.add_argument("--freeze-encoder", action="store_true", help="linear probe: train only the classifier")
    fin.add_argument("--epochs", type=number(0.0, low_open=True), default=3.0, help="passes over the training set (default: 3)")
    fin.add_argument("--max-len", type=MAX_LEN, default=128, help="tokens per example, [CLS] and [SEP] included (default: 128)")
    add_model_args(fin, "--init random only")
    add_dataclass_args(fin, TrainConfig, FINETUNE_DEFAULTS, FINETUNE_HELP, "training (minitransformer.trainer.TrainConfig)",
                       types=FINETUNE_TYPES)

    ev = sub.add_parser("evaluate", help="score a fine-tuned checkpoint (Article §3.2.5)",
                        description="Predict, write the predictions and print the metrics. Classification: accuracy, "
                                    "per-class precision/recall/F1 with macro and micro averages, a confusion matrix "
                                    "PNG. NER: entity-level (exact span and type) precision/recall/F1, overall and per "
                                    "type. " + F1_NOTE)
    ev.add_argument("--checkpoint", required=True, metavar="DIR", help="a fine-tuning run folder or its checkpoint/")
    ev.add_argument("--data", required=True, metavar="FILE", help="labelled data in the training format")
    ev.add_argument("--task", choices=("classify", "ner"), help="default: the task saved in the checkpoint")
    ev.add_argument("--predictions", metavar="FILE", help="write predictions here (.tsv, .csv or .jsonl)")
    ev.add_argument("--confusion-matrix", metavar="PNG", help="classification: save the confusion matrix here")
    ev.add_argument("--text-column", default="text", help="classification text column (name or index; default: text)")
    ev.add_argument("--label-column", default="label", help="classification label column (default: label)")
    add_file_args(ev)
    ev.add_argument("--max-len", type=number(integer=True), default=None,
                    help="tokens per example, [CLS] and [SEP] included (default: the max_len the checkpoint was "
                         "fine-tuned with, saved in its config.json; 128 if it has none)")
    ev.add_argument("--batch-size", type=POSITIVE_INT, default=64, help="examples per forward pass (default: 64)")
    ev.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu")
    for p in (pre, fin, ev):
        add_threads_argument(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    set_threads(args.threads)
    log = logging.getLogger("minibert")
    if not log.handlers:  # checkpoint notes (weights left random, weights dropped) go to stderr
        handler = StderrHandler()  # the stderr of the moment: main may be called in-process
        handler.setFormatter(logging.Formatter(f"{PROG}: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    from . import commands

    try:
        return {"pretrain": commands.run_pretrain, "finetune": commands.run_finetune,
                "evaluate": commands.run_evaluate}[args.command](args)
    except NonFiniteLossError as e:
        raise CLIError(str(e)) from None
