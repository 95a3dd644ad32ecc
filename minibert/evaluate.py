"""Evaluation with the article's metrics, correctly defined (Article §3.2.5 评估), computed by
``minitransformer.metrics``:

    accuracy 准确率   = correct predictions / all predictions
    precision 精确率  P = TP / (TP + FP)      recall 召回率  R = TP / (TP + FN)
    F1               = 2PR / (P + R), the harmonic mean of precision and recall

⚠ The article says F1 is the harmonic mean of 准确率 (accuracy) and recall; it is precision (精确率).

Classification: accuracy, per-class P/R/F1, their macro (unweighted mean over classes) and micro
(pooled counts; equals accuracy for single-label data) averages, and a confusion-matrix PNG.
NER: entity-level P/R/F1 (seqeval's default mode): an entity counts only when its type and exact
span (start and end word) match; overall (micro) and per entity type.
"""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Sequence

import torch

from minitransformer.cli import output_errors
from minitransformer.data import LabelVocab
from minitransformer.metrics import (Report, accuracy, confusion_matrix, entity_prf, format_report, plot_confusion_matrix,
                                     precision_recall_f1)

from .finetune import check_task, collate, encode_task, task_labels, tokenizer_unk_rate, warn_unk_rate

F1_NOTE = "F1 = 2PR/(P+R): the harmonic mean of precision (精确率) and recall (召回率) — not of accuracy (准确率)"


@torch.no_grad()
def predict_ids(model, encoded: Sequence[dict], pad_id: int, batch_size: int = 64, device="cpu") -> list:
    """Argmax label ids: one per example (sequence classification) or, for token classification,
    one list per example holding the prediction at each labelled (first-subword) position."""
    was_training = model.training
    model.eval()
    out = []
    try:
        for start in range(0, len(encoded), batch_size):
            items = encoded[start:start + batch_size]
            batch = {k: v.to(device) for k, v in collate(items, pad_id).items() if k != "labels"}
            pred = model(**batch).logits.argmax(-1).cpu()  # (B,) or (B, T)
            if pred.dim() == 1:
                out.extend(pred.tolist())
                continue
            for row, it in zip(pred, items):
                first = [i for i, lab in enumerate(it["labels"]) if lab != -100]
                out.append(row[first].tolist())
    finally:
        model.train(was_training)
    return out


def word_tags(pred_ids: Sequence[int], n_words: int, id2label: dict[int, str]) -> list[str]:
    """One tag per word: the predictions for the words the model saw, "O" for words cut by truncation."""
    tags = [id2label[i] for i in pred_ids]
    return tags + ["O"] * (n_words - len(tags))


def classification_scores(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> dict:
    """accuracy, the per-class/macro/micro Report and the confusion matrix (rows true, columns predicted)."""
    return {"accuracy": accuracy(gold, pred), "report": precision_recall_f1(gold, pred, labels=list(labels)),
            "confusion": confusion_matrix(gold, pred, labels=list(labels))}


def summary_line(report: Report) -> str:
    return (f"micro P {report.micro.precision:.4f} R {report.micro.recall:.4f} F1 {report.micro.f1:.4f} | "
            f"macro P {report.macro.precision:.4f} R {report.macro.recall:.4f} F1 {report.macro.f1:.4f}")


def format_classification(scores: dict) -> str:
    return (f"accuracy {scores['accuracy']:.4f}\n{summary_line(scores['report'])}\n"
            f"{format_report(scores['report'])}{F1_NOTE}")


def format_ner(report: Report) -> str:
    return (f"entity-level (exact span and type) {summary_line(report)}\n"
            f"{format_report(report)}{F1_NOTE}")


# the predictions file's format, from its suffix (the loaders read the same suffixes back)
PREDICTION_FORMATS = {".tsv": "tsv", ".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl"}
CONFUSION_SUFFIX = ".png"  # plot_confusion_matrix always writes PNG


def prediction_format(path, name: str = "predictions") -> str:
    """'tsv', 'csv' or 'jsonl' from the suffix of ``path``; ValueError naming the supported ones."""
    fmt = PREDICTION_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ValueError(f"{name} {path}: expected a file ending in {', '.join(PREDICTION_FORMATS)}, "
                         f"received suffix {Path(path).suffix or '(none)'!r}")
    return fmt


def same_file(a, b) -> bool:
    """Whether the paths ``a`` and ``b`` name the same file (symbolic links and ``..`` resolved)."""
    a, b = Path(a), Path(b)
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def check_not_an_input(path, inputs: dict, name: str) -> None:
    """Refuse to write ``path`` (option ``name``) over one of the ``inputs`` ({option: path}):
    ValueError naming both, so ``--predictions X.tsv`` never replaces the labelled ``--data X.tsv``."""
    for other, source in inputs.items():
        if source is not None and same_file(path, source):
            raise ValueError(f"{name} {path}: expected a new file, received the path of {other} {source}; "
                             f"writing there would overwrite it")


def _delimited(rows: Sequence[dict], delimiter: str) -> str:
    """Rows as TSV (tabs and newlines in values become spaces) or CSV (quoted where needed), with a header."""
    cols = list(rows[0]) if rows else []
    if delimiter == ",":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(cols)
        writer.writerows([[r[c] for c in cols] for r in rows])
        return out.getvalue()
    clean = lambda v: str(v).replace("\t", " ").replace("\n", " ")  # noqa: E731
    return "\t".join(cols) + "\n" + "".join("\t".join(clean(r[c]) for c in cols) + "\n" for r in rows)


def write_predictions(path, rows: Sequence[dict]) -> Path:
    """Rows of dicts as TSV (``.tsv``) or CSV (``.csv``) with a header, or JSONL (``.jsonl``/``.json``).
    Any other suffix is a ValueError naming the supported ones (nothing is written)."""
    path = Path(path)
    fmt = prediction_format(path)
    if fmt == "jsonl":
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    else:
        text = _delimited(rows, "," if fmt == "csv" else "\t")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def check_eval_labels(task: str, items: Sequence, id2label: dict[int, str], source) -> None:
    """Every gold label must be one the model was trained on: ValueError naming the label and file."""
    if not items:
        raise ValueError(f"{source}: expected at least one example to evaluate, received an empty dataset")
    LabelVocab(id2label.values(), "training labels").check(task_labels(task, items), source)


def evaluate(model, tokenizer, task: str, items: Sequence, max_len: int, source="data", batch_size: int = 64,
             predictions=None, confusion_png=None, device="cpu", unk_warning: bool = True) -> dict:
    """Predict ``items`` (Examples or TaggedSentences) and score them. Writes the predictions
    (TSV/JSONL) and, for classification, the confusion matrix PNG when paths are given (titled
    with the file name of ``source``). ``unk_warning``: log a warning when more than 5% of the
    tokens are [UNK] (:func:`minibert.finetune.warn_unk_rate`).
    Returns {"task", "accuracy" (classify), "report": Report, "unk_rate", "text": printable summary}."""
    check_task(task)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, received {batch_size!r}")
    if predictions:
        prediction_format(predictions)
        check_not_an_input(predictions, {"source": source if Path(str(source)).is_file() else None}, "predictions")
    id2label = model.config.id2label
    if not id2label:
        raise ValueError("model: expected a fine-tuned checkpoint with id2label in its config.json")
    check_eval_labels(task, items, id2label, source)
    vocab = _IdVocab(id2label)
    encoded = encode_task(task, items, tokenizer, vocab, max_len)
    rate = warn_unk_rate(encoded, tokenizer, source) if unk_warning else tokenizer_unk_rate(encoded, tokenizer)
    pred = predict_ids(model, encoded, tokenizer.pad_id, batch_size, device)
    labels = [id2label[i] for i in range(len(id2label))]
    if task == "classify":
        gold, guess = [ex.label for ex in items], [id2label[i] for i in pred]
        scores = classification_scores(gold, guess, labels)
        rows = [{"text": ex.text, "gold": g, "pred": p} for ex, g, p in zip(items, gold, guess)]
        if confusion_png:
            with output_errors(confusion_png, "confusion matrix"):
                plot_confusion_matrix(scores["confusion"], labels, confusion_png,
                                      title=f"{Path(str(source)).name or source}: confusion matrix")
        result = {"task": task, "accuracy": scores["accuracy"], "report": scores["report"],
                  "confusion": scores["confusion"], "text": format_classification(scores)}
    else:
        guess = [word_tags(p, len(s.tokens), id2label) for p, s in zip(pred, items)]
        report = entity_prf([list(s.tags) for s in items], guess)
        rows = [{"sentence": i, "token": tok, "gold": g, "pred": p}
                for i, (s, tags) in enumerate(zip(items, guess)) for tok, g, p in zip(s.tokens, s.tags, tags)]
        result = {"task": task, "report": report, "text": format_ner(report)}
    result["unk_rate"] = rate
    if predictions:
        with output_errors(predictions, "predictions"):
            write_predictions(predictions, rows)
    return result


class _IdVocab:
    """label <-> id as the checkpoint's id2label fixes them (LabelVocab would re-sort)."""

    def __init__(self, id2label: dict[int, str]):
        self._ids = {v: k for k, v in id2label.items()}

    def encode(self, label: str) -> int:
        if label not in self._ids:
            raise ValueError(f"label {label!r} is not among the model's labels {sorted(self._ids)}")
        return self._ids[label]
