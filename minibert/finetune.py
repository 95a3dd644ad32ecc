"""Fine-tuning BERT (Article §3.2.4 微调, §4.3 案例分析): a classification head on the pooled
[CLS] vector, or a token-classification head for NER (§6.2), trained with the shared Trainer.

NER label alignment: a word may become several subwords; the word's tag goes on its *first*
subword and every later subword gets -100 (no loss, no prediction). ``[CLS]``/``[SEP]`` and
padding get -100 too. Prediction reads the tag at each word's first subword.

Truncation: a text keeps its first ``max_len - 2`` tokens ([CLS] text [SEP]); for NER, words
whose first subword falls past that limit are not seen by the model and are predicted "O".

Evaluation during training scores every validation example exactly once per evaluation (an
unshuffled pass, the last batch short; the accuracy is a mean per example), so the last logged
validation accuracy is the one ``minibert.evaluate`` reports on the same model. The checkpoint's
config.json records the ``max_len`` the model was trained with; ``python -m minibert evaluate``
uses it by default.

[UNK] rate: a vocabulary that does not cover the data (an English WordPiece vocabulary on Chinese
text) turns much of it into [UNK]; :func:`warn_unk_rate` logs the share when it passes 5%.

Linear probe (``freeze_encoder``): the whole BertModel (embeddings, encoder, pooler) is frozen and
only the new classifier learns — a measure of what the pretrained features already hold.
"""
from __future__ import annotations

import logging
import math
from typing import Sequence

import torch

from minitransformer.batches import by_split, epoch_batches, sequential_batches
from minitransformer.data import Example, LabelVocab, TaggedSentence
from minitransformer.trainer import TrainConfig, Trainer

from .config import check_max_len
from .heads import IGNORE_INDEX, BertForSequenceClassification, BertForTokenClassification
from .pretraining import build_single_inputs, pad_rows

TASKS = {"classify": BertForSequenceClassification, "ner": BertForTokenClassification}
UNK_WARN_RATE = 0.05  # warn when more than this share of the text's tokens is [UNK]
logger = logging.getLogger("minibert")


def check_task(task: str) -> str:
    if task not in TASKS:
        raise ValueError(f"task: expected one of {sorted(TASKS)}, received {task!r}")
    return task


def task_labels(task: str, items: Sequence) -> list[str]:
    """Every gold label of ``items``: one per example (classify) or one per word (ner)."""
    if check_task(task) == "classify":
        return [ex.label for ex in items]
    return [tag for s in items for tag in s.tags]


def label_vocab(task: str, train: Sequence, source: str = "training set") -> LabelVocab:
    """Labels from the training set: the classes, or O plus B-X / I-X for every entity type X."""
    if not train:
        raise ValueError(f"{source}: expected at least one example, received an empty dataset")
    return LabelVocab(task_labels(task, train), source) if task == "classify" else LabelVocab.from_tags(train, source)


# ----------------------------------------------------------------------------- encoding


def encode_classification(examples: Sequence[Example], tokenizer, labels: LabelVocab, max_len: int) -> list[dict]:
    """[CLS] text [SEP] (head kept) and the label id, per example."""
    out = []
    for ex in examples:
        ids, _ = build_single_inputs(tokenizer.encode(ex.text), tokenizer.cls_id, tokenizer.sep_id, max_len)
        out.append({"input_ids": ids, "label": labels.encode(ex.label)})
    return out


def word_pieces(words: Sequence[str], tokenizer) -> list[list[int]]:
    """Subword ids of each word; a word that encodes to nothing (e.g. a lone control character)
    becomes [UNK], so every word keeps a position to carry its tag."""
    return [tokenizer.encode(w) or [tokenizer.unk_id] for w in words]


def align_word_labels(pieces: Sequence[Sequence[int]], word_labels: Sequence[int], max_tokens: int) -> tuple[list[int], list[int], int]:
    """Flatten the words' subwords (keeping the first ``max_tokens``) and align the labels:
    the first subword of word i carries word_labels[i], every other subword -100.
    Returns (ids, labels, number of words whose first subword was kept)."""
    ids, labels, kept = [], [], 0
    for piece, label in zip(pieces, word_labels):
        for j, token in enumerate(piece):
            if len(ids) == max_tokens:
                return ids, labels, kept
            ids.append(token)
            labels.append(label if j == 0 else IGNORE_INDEX)
            kept += j == 0
    return ids, labels, kept


def encode_ner(sentences: Sequence[TaggedSentence], tokenizer, labels: LabelVocab, max_len: int) -> list[dict]:
    """[CLS] subwords [SEP] with first-subword labels (-100 on [CLS], [SEP] and later subwords)."""
    out = []
    for s in sentences:
        tags = [labels.encode(t) for t in s.tags]
        ids, labs, kept = align_word_labels(word_pieces(s.tokens, tokenizer), tags, max_len - 2)
        out.append({"input_ids": [tokenizer.cls_id, *ids, tokenizer.sep_id],
                    "labels": [IGNORE_INDEX, *labs, IGNORE_INDEX], "n_words": len(s.tokens), "n_kept": kept})
    return out


def encode_task(task: str, items: Sequence, tokenizer, labels: LabelVocab, max_len: int) -> list[dict]:
    return (encode_classification if check_task(task) == "classify" else encode_ner)(items, tokenizer, labels, max_len)


def collate(items: Sequence[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad a list of encoded examples into tensors: input_ids, attention_mask (B, T) and labels
    ((B,) for classification, (B, T) with -100 padding for NER)."""
    input_ids = pad_rows([it["input_ids"] for it in items], pad_id)  # (B, T)
    batch = {"input_ids": input_ids, "attention_mask": pad_rows([[1] * len(it["input_ids"]) for it in items], 0)}
    if "label" in items[0]:
        batch["labels"] = torch.tensor([it["label"] for it in items], dtype=torch.long)  # (B,)
    elif "labels" in items[0]:
        batch["labels"] = pad_rows([it["labels"] for it in items], IGNORE_INDEX)  # (B, T)
    return batch


def unk_rate(encoded: Sequence[dict], unk_id: int, specials: Sequence[int] = ()) -> float:
    """Share of the text tokens that are [UNK]: ``#(id == unk_id) / #tokens`` over every example's
    ``input_ids`` without its first and last position ([CLS] and [SEP]) and without ``specials``
    (e.g. [PAD]). Counts what the model sees, after truncation; 0.0 when there are no text tokens."""
    skip = set(specials)
    unk = total = 0
    for item in encoded:
        for token in item["input_ids"][1:-1]:
            if token in skip:
                continue
            total += 1
            unk += token == unk_id
    return unk / total if total else 0.0


def tokenizer_unk_rate(encoded: Sequence[dict], tokenizer) -> float:
    """:func:`unk_rate` with ``tokenizer``'s [UNK] id, its [PAD] not counted as text."""
    return unk_rate(encoded, tokenizer.unk_id, [tokenizer.pad_id] if tokenizer.pad_id is not None else [])


def warn_unk_rate(encoded: Sequence[dict], tokenizer, source, threshold: float = UNK_WARN_RATE) -> float:
    """Measure :func:`tokenizer_unk_rate` of ``encoded`` and log a warning naming ``source`` when it
    exceeds ``threshold``: the tokenizer's vocabulary does not cover this text. Returns the rate."""
    rate = tokenizer_unk_rate(encoded, tokenizer)
    if rate > threshold:
        logger.warning("%s: %.1f%% of the tokens are [UNK] (above %.0f%%): the tokenizer's vocabulary does not cover "
                       "this text (e.g. an English vocabulary on Chinese), so the model sees little of it; use a "
                       "tokenizer trained on such text", source, 100 * rate, 100 * threshold)
    return rate


# ----------------------------------------------------------------------------- training


def classification_loss(model, batch) -> tuple[torch.Tensor, dict[str, float]]:
    """Cross-entropy of the head; logs accuracy over the batch (sequences or labelled tokens)."""
    out = model(**batch)
    labels = batch["labels"]
    pred = out.logits.argmax(-1)
    counted = labels != IGNORE_INDEX
    acc = ((pred == labels) & counted).sum().float() / counted.sum().clamp_min(1)
    return out.loss, {"acc": acc.item()}


def freeze_encoder(model) -> int:
    """Linear probe: freeze ``model.bert`` (embeddings, encoder, pooler); returns the number of
    parameters left trainable (the classifier)."""
    for p in model.bert.parameters():
        p.requires_grad_(False)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def steps_for(n_examples: int, batch_size: int, epochs: float) -> int:
    """Optimizer steps for ``epochs`` passes over ``n_examples``: ceil(epochs · n / batch_size)."""
    return max(1, math.ceil(epochs * n_examples / batch_size))


def finetune(model, tokenizer, task: str, train: Sequence[dict], val: Sequence[dict], config: TrainConfig,
             freeze: bool = False, max_len: int | None = None) -> Trainer:
    """Train ``model`` (a BertFor* head) on encoded examples with the shared Trainer; the
    checkpoint (config.json with id2label and task, and ``max_len`` when given: the length the
    examples were encoded at; weights, tokenizer) goes to config.out_dir.

    Training batches walk the shuffled training set epoch by epoch; each evaluation scores the
    first ``config.eval_steps`` batches of the validation set in order, at most one pass
    (``ceil(len(val) / batch_size)`` batches, the last one short), each example once."""
    check_task(task)
    if not train or not val:
        raise ValueError(f"expected non-empty training and validation sets, received {len(train)} and {len(val)} examples")
    if max_len is not None:
        check_max_len(max_len)
    if freeze:
        freeze_encoder(model)
    pad = tokenizer.pad_id
    get_batch = by_split(
        train=epoch_batches(len(train), config.batch_size, config.seed, lambda idx: collate([train[i] for i in idx], pad)),
        val=sequential_batches(len(val), config.batch_size, lambda idx: collate([val[i] for i in idx], pad)),
    )
    model_config = model.config.to_dict()
    if max_len is not None:
        model_config["max_len"] = max_len
    trainer = Trainer(model, config, get_batch, loss_fn=classification_loss, model_config=model_config,
                      tokenizer=tokenizer)
    trainer.fit()
    return trainer
