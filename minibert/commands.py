"""What ``python -m minibert pretrain / finetune / evaluate`` run (the parsers are in cli.py)."""
from __future__ import annotations

import argparse
import logging
import math
import random
from pathlib import Path

from minitransformer.checkpoint import seed_everything
from minitransformer.cli import check_output_file, dataclass_from_args
from minitransformer.data import (BERT_SPECIALS, CharTokenizer, SentencePieceTokenizer, load_classification, load_conll,
                                  load_documents, load_tokenizer, split_dataset)
from minitransformer.data.loaders import with_cli_hints
from minitransformer.distributed import resolve_device
from minitransformer.runs import check_known_characters, check_run_dir, find_resume_checkpoint
from minitransformer.trainer import TrainConfig, Trainer

from .config import BertConfig, check_max_len
from .evaluate import CONFUSION_SUFFIX, check_not_an_input, evaluate, prediction_format
from .cli import model_config_from_args
from .finetune import TASKS, encode_task, finetune, label_vocab, steps_for, task_labels, warn_unk_rate
from .heads import BertForPreTraining
from .hf import check_bert_folder, checkpoint_dir, load_tokenizer_from, read_config_json, saved_max_len
from .pretraining import PretrainingData, chance_levels, documents_from_text, pretraining_loss, tokenize_documents
from .wordpiece import WordPieceTokenizer

logger = logging.getLogger("minibert")


# ----------------------------------------------------------------------------- tokenizers


def check_bert_tokenizer(tok):
    """A BERT tokenizer needs [PAD] [UNK] [CLS] [SEP] [MASK]."""
    missing = [name for name in ("pad", "unk", "cls", "sep", "mask") if getattr(tok, f"{name}_id") is None]
    if missing:
        raise ValueError(f"tokenizer: expected BERT's special tokens, missing {[BERT_SPECIALS[m] for m in missing]}")
    return tok


def make_tokenizer(spec: str, texts: list[str], vocab_size: int):
    """'sentencepiece' (BPE trained on ``texts``), 'char', or a folder holding a saved tokenizer
    (tokenizer.json) or a BERT vocab.txt."""
    if spec == "sentencepiece":
        if vocab_size < 16:
            raise ValueError(f"--vocab-size: expected at least 16, received {vocab_size}")
        return SentencePieceTokenizer.train(texts, vocab_size, specials=BERT_SPECIALS)
    if spec == "char":
        return CharTokenizer.train(texts, specials=BERT_SPECIALS)
    path = Path(spec)
    if not path.is_dir():
        raise ValueError(f"--tokenizer: expected 'sentencepiece', 'char' or a tokenizer folder, received {spec!r}")
    if (path / "tokenizer.json").is_file():
        return check_bert_tokenizer(load_tokenizer(path))
    return check_bert_tokenizer(WordPieceTokenizer.from_file(path))


def load_docs(files: list[str]) -> list[list[str]]:
    """Documents (blank-line separated, one sentence per line) of every file."""
    return [doc for f in files for doc in documents_from_text(load_documents(f))]


# ----------------------------------------------------------------------------- pretrain


def split_documents(docs: list[list[str]], val_fraction: float, seed: int) -> tuple[list, list]:
    """Hold out whole documents: ``val_fraction`` of them, at least 2 (NSP negatives come from
    another document), at least 2 left for training."""
    unique = list(dict.fromkeys(tuple(d) for d in docs if d))
    if len(unique) < 4:
        raise ValueError(f"documents: expected at least 4 distinct documents (2 held out for validation), received "
                         f"{len(unique)}; separate documents with blank lines")
    n_val = min(max(2, round(val_fraction * len(unique))), len(unique) - 2)
    train, val = split_dataset(unique, (1 - n_val / len(unique), n_val / len(unique)), seed=seed)
    return [list(d) for d in train], [list(d) for d in val]


def run_pretrain(args: argparse.Namespace) -> int:
    check_run_dir(args.out_dir, args.resume, args.overwrite)  # a run folder to write, before any work
    docs = load_docs(args.data)
    if not 0.0 < args.val_fraction < 1.0:
        raise ValueError(f"--val-fraction: expected a number in (0, 1), received {args.val_fraction}")
    train_docs, val_docs = split_documents(docs, args.val_fraction, args.seed)
    config = dataclass_from_args(TrainConfig, args)
    seed_everything(config.seed)  # the model's random init must not depend on what ran before in this process
    if config.resume:  # checkpoint/, or the .checkpoint.old a crash mid-swap left
        ckpt = find_resume_checkpoint(config.out_dir)
        tokenizer, model = load_tokenizer_from(ckpt), BertForPreTraining(read_config_json(ckpt))
        train_text = "\n".join("\n".join(d) for d in train_docs)
        check_known_characters(tokenizer, {f"the training documents of {', '.join(map(str, args.data))}": train_text},
                               f"the tokenizer saved in {ckpt}")
    elif args.init_hf:
        hf_config = check_bert_folder(args.init_hf, "--init-hf")
        tokenizer = check_bert_tokenizer(load_tokenizer_from(args.init_hf))
        model = BertForPreTraining.from_pretrained(args.init_hf, config=hf_config)
    else:
        tokenizer = check_bert_tokenizer(make_tokenizer(args.tokenizer, ["\n".join(d) for d in train_docs], args.vocab_size))
        model = BertForPreTraining(model_config_from(args, tokenizer, architectures=["BertForPreTraining"]))
    max_len = min(args.max_len, model.config.max_position_embeddings)
    data = PretrainingData({"train": tokenize_documents(train_docs, tokenizer), "val": tokenize_documents(val_docs, tokenizer)},
                           tokenizer, config.batch_size, max_len, config.seed, args.mlm_probability)
    trainer = Trainer(model, config, data, loss_fn=pretraining_loss, model_config=model.config.to_dict(), tokenizer=tokenizer)
    if trainer.ctx.is_main:
        n = sum(p.numel() for p in model.parameters())
        print(f"pretraining {n:,} parameters on {len(train_docs)} documents ({len(val_docs)} held out), "
              f"vocabulary {tokenizer.vocab_size}, rows of <= {max_len} tokens", flush=True)
    trainer.fit()
    if trainer.ctx.is_main:
        print(pretraining_summary(trainer.history, tokenizer.vocab_size, trainer.checkpoint_dir), flush=True)
    return 0


def model_config_from(args, tokenizer, **extra) -> BertConfig:
    """BertConfig from the size options, with the tokenizer's vocabulary size and [PAD] id."""
    return model_config_from_args(args, tokenizer.vocab_size, tokenizer.pad_id, **extra)


def pretraining_summary(history: list[dict], vocab_size: int, where) -> str:
    """The last validation row beside the chance levels."""
    rows = [r for r in history if r.get("split") == "val"] or [r for r in history if r.get("split") == "train"]
    if not rows:
        return f"checkpoint: {where}"
    last, chance = rows[-1], chance_levels(vocab_size)
    lines = [f"step {last['step']} ({last['split']})      value     chance"]
    for name, fmt in (("mlm_loss", ".4f"), ("mlm_acc", ".2%"), ("nsp_loss", ".4f"), ("nsp_acc", ".2%")):
        if name in last:
            lines.append(f"  {name:<10} {last[name]:>10{fmt}} {chance[name]:>10{fmt}}")
    lines.append("chance: MLM loss ln|V| and accuracy 1/|V| (uniform guess); NSP loss ln 2, accuracy 50%")
    return "\n".join(lines + [f"checkpoint: {where}"])


# ----------------------------------------------------------------------------- finetune


# the loaders' advice in flag form: a CLI user has --format, --quoting, --encoding, not format=...
CLI_HINTS = {"format": "pass --format tsv, csv or jsonl", "quoting": "pass --quoting none",
             "encoding": "pass --encoding (for example --encoding latin-1)"}
DEFAULT_MAX_LEN = 128


def load_task_items(task: str, path, text_column="text", label_column="label", quoting="csv", fmt=None,
                    encoding="utf-8") -> list:
    """Examples (classification: TSV/CSV/JSONL, ``fmt`` or the suffix) or TaggedSentences (NER:
    CoNLL); never empty. Loader errors name the CLI flags (--format, --quoting, --encoding)."""
    cols = {}
    for name, value in (("text_column", text_column), ("label_column", label_column)):
        cols[name] = int(value) if str(value).isdigit() else value
    if fmt is not None and task != "classify":
        raise ValueError(f"--format: applies to classification files (tsv, csv, jsonl); --task {task} reads CoNLL, "
                         f"received --format {fmt}")
    try:
        if task == "classify":
            items = load_classification(path, quoting=quoting, format=fmt, encoding=encoding, **cols)
        else:
            items = load_conll(path, encoding=encoding)
    except ValueError as e:
        raise ValueError(with_cli_hints(str(e), CLI_HINTS)) from None
    if not items:
        raise ValueError(f"{path}: expected at least one example, received an empty dataset")
    return items


def build_model(task: str, args, train_items, labels):
    """The head and its tokenizer from --init DIR, --init-hf DIR or --init random."""
    cls = TASKS[task]
    id2label = dict(enumerate(labels.labels))
    extra = dict(id2label=id2label, task=task, architectures=[cls.__name__])
    if args.init_hf or (args.init and args.init != "random"):
        source = Path(args.init_hf) if args.init_hf else checkpoint_dir(args.init)
        config = check_bert_folder(source, "--init-hf" if args.init_hf else "--init")
        tokenizer = check_bert_tokenizer(load_tokenizer_from(source))
        return cls.from_pretrained(source, config=config, **extra), tokenizer
    texts = [ex.text for ex in train_items] if task == "classify" else [" ".join(s.tokens) for s in train_items]
    tokenizer = check_bert_tokenizer(make_tokenizer(args.tokenizer, texts, args.vocab_size))
    return cls(model_config_from(args, tokenizer, **extra)), tokenizer


def split_sizes(n: int, val_fraction: float) -> tuple[int, int]:
    """(training, validation) sizes :func:`split_dataset` gives ``n`` distinct examples."""
    n_train = round((1 - val_fraction) * n)
    return n_train, n - n_train


def min_split_size(val_fraction: float, limit: int = 10**6) -> int:
    """The fewest distinct examples that leave at least one for training and one for validation."""
    return next(n for n in range(2, limit) if min(split_sizes(n, val_fraction)) >= 1)


def too_small_to_split(path, n: int, val_fraction: float) -> ValueError:
    """The error for ``n`` distinct examples that leave no training or no validation example."""
    n_train, n_val = split_sizes(n, val_fraction)
    return ValueError(
        f"--train {path}: too small to hold out --val-fraction {val_fraction:g} for validation: {n} distinct "
        f"example{'s' if n != 1 else ''} would leave {n_train} to train and {n_val} to validate; expected at least "
        f"{min_split_size(val_fraction)} distinct examples (or another --val-fraction, or --val FILE)")


def split_train_val(train: list, path, val_fraction: float, seed: int) -> tuple[list, list]:
    """Hold ``val_fraction`` of the distinct training examples out for validation. ValueError, saying
    how many examples are needed, when nothing is left to train on; an empty validation part is
    returned as is (run_finetune refuses it once the --init folder has been checked)."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"--val-fraction: expected a number in (0, 1), received {val_fraction}")
    train_part, val_part = split_dataset(train, (1 - val_fraction, val_fraction), seed=seed)
    if not train_part:
        raise too_small_to_split(path, len(set(train)), val_fraction)
    return train_part, val_part


def check_two_labels(task: str, labels, source: str) -> None:
    """Fine-tuning needs at least two classes (NER: at least one entity type besides O): with a
    single one every prediction is right and F1 reads 1.0 whatever the model learned."""
    if len(labels) < 2:
        what = "at least two classes" if task == "classify" else "at least one entity tag (B-X / I-X) besides O"
        raise ValueError(f"{source}: fine-tuning needs {what}, received only {list(labels.labels)}")


def few_labels(train: list, n: int, path, seed: int) -> list:
    """``n`` training examples drawn without replacement by ``random.Random(seed)``; ValueError when fewer exist."""
    if n > len(train):
        raise ValueError(f"--train-size: expected at most the {len(train):,} training examples of {path}, received {n:,}")
    return random.Random(seed).sample(train, n)


def run_finetune(args: argparse.Namespace) -> int:
    check_run_dir(args.out_dir, args.resume, args.overwrite)  # a run folder to write, before any work
    check_max_len(args.max_len, "--max-len")
    cols = (args.text_column, args.label_column, args.quoting, args.format, args.encoding)
    train = load_task_items(args.task, args.train, *cols)
    if args.val:
        val = load_task_items(args.task, args.val, *cols)
    else:
        train, val = split_train_val(train, args.train, args.val_fraction, args.seed)
    if args.train_size is not None:
        train = few_labels(train, args.train_size, args.train, args.seed)
    source = f"training set {args.train}" if args.val else f"training part of {args.train}"
    labels = label_vocab(args.task, train, source)
    check_two_labels(args.task, labels, source)
    labels.check(task_labels(args.task, val), args.val or args.train)
    seed_everything(args.seed)  # fixes the initial weights of the new head (and of the encoder with --init random)
    model, tokenizer = build_model(args.task, args, train, labels)
    if not val:  # after build_model, so that a bad --init / --init-hf folder is reported first
        raise too_small_to_split(args.train, len(set(train)), args.val_fraction)
    max_len = min(args.max_len, model.config.max_position_embeddings)
    enc_train = encode_task(args.task, train, tokenizer, labels, max_len)
    enc_val = encode_task(args.task, val, tokenizer, labels, max_len)
    warn_unk_rate(enc_train, tokenizer, args.train)
    if args.val:
        warn_unk_rate(enc_val, tokenizer, args.val)
    per_epoch = steps_for(len(enc_train), args.batch_size, 1.0)
    max_steps = args.max_steps or steps_for(len(enc_train), args.batch_size, args.epochs)
    config = dataclass_from_args(
        TrainConfig, args, max_steps=max_steps,
        warmup_steps=args.warmup_steps if args.warmup_steps >= 0 else max_steps // 10,
        eval_interval=args.eval_interval or per_epoch,
        eval_steps=args.eval_steps or math.ceil(len(enc_val) / args.batch_size))
    trainer = finetune(model, tokenizer, args.task, enc_train, enc_val, config, freeze=args.freeze_encoder, max_len=max_len)
    if not trainer.ctx.is_main:
        return 0
    out = Path(config.out_dir)
    for split, items, path in (("val", val, args.val or args.train), ("test", None, args.test)):
        if split == "test":
            if not path:
                continue
            items = load_task_items(args.task, path, *cols)
        res = evaluate(trainer.raw_model, tokenizer, args.task, items, max_len, source=path,
                       predictions=out / f"predictions_{split}.tsv",
                       confusion_png=out / f"confusion_{split}.png" if args.task == "classify" else None,
                       device=trainer.ctx.device, unk_warning=split == "test")  # train and val were measured above
        print(f"== {split} ({len(items)} examples, {path})\n{res['text']}", flush=True)
    print(f"checkpoint: {trainer.checkpoint_dir}", flush=True)
    return 0


# ----------------------------------------------------------------------------- evaluate


def evaluation_max_len(requested: int | None, config) -> tuple[int, str]:
    """The max_len to evaluate at and where it came from: --max-len when given, else the one saved
    in the checkpoint's config.json by fine-tuning, else 128; never past the position table."""
    if requested is not None and check_max_len(requested, "--max-len"):
        value, origin = requested, "--max-len"
    elif saved_max_len(config) is not None:
        value, origin = saved_max_len(config), "saved with the checkpoint"
    else:
        value, origin = DEFAULT_MAX_LEN, "default; the checkpoint saved none"
    return min(value, config.max_position_embeddings), origin


def check_evaluate_outputs(args: argparse.Namespace, checkpoint: Path) -> None:
    """Before any work: --predictions has a supported suffix, --confusion-matrix is a .png, both can
    be written, and neither is an input (--data, the checkpoint's files) or the other output."""
    inputs = {"--data": args.data, **{f"--checkpoint's {f.name}": f for f in checkpoint.rglob("*") if f.is_file()}}
    if args.predictions:
        prediction_format(args.predictions, "--predictions")
        check_output_file(args.predictions, "--predictions")
        check_not_an_input(args.predictions, inputs, "--predictions")
    if args.confusion_matrix:
        if Path(args.confusion_matrix).suffix.lower() != CONFUSION_SUFFIX:
            raise ValueError(f"--confusion-matrix {args.confusion_matrix}: expected a file ending in {CONFUSION_SUFFIX} "
                             f"(it is written as PNG), received suffix {Path(args.confusion_matrix).suffix or '(none)'!r}")
        check_output_file(args.confusion_matrix, "--confusion-matrix")
        check_not_an_input(args.confusion_matrix, {**inputs, "--predictions": args.predictions}, "--confusion-matrix")


def run_evaluate(args: argparse.Namespace) -> int:
    path = checkpoint_dir(args.checkpoint)
    config = check_bert_folder(path, "--checkpoint")
    check_evaluate_outputs(args, path)
    task = args.task or config.task
    if task not in TASKS:
        raise ValueError(f"{path}: no task in config.json; expected --task classify or --task ner")
    max_len, origin = evaluation_max_len(args.max_len, config)
    if args.batch_size < 1:
        raise ValueError(f"--batch-size: expected a positive integer, received {args.batch_size}")
    model = TASKS[task].from_pretrained(path, config=config)  # config.json read once, above
    device = resolve_device(args.device)
    model.to(device)
    tokenizer = load_tokenizer_from(path)
    items = load_task_items(task, args.data, args.text_column, args.label_column, args.quoting, args.format, args.encoding)
    logger.info("evaluating at max_len %d (%s)", max_len, origin)
    res = evaluate(model, tokenizer, task, items, max_len, source=args.data, batch_size=args.batch_size,
                   predictions=args.predictions, confusion_png=args.confusion_matrix, device=device)
    print(res["text"], flush=True)
    return 0
