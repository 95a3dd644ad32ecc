"""Pretraining data for BERT: next-sentence pairs and masked tokens (Article §3.2.3 预训练).

Input: documents, each a list of sentences, each a list of token ids. One training row is

    [CLS] A [SEP] B [SEP]      segment ids 0 … 0 1 … 1 (the first [SEP] belongs to A)

NSP (next-sentence prediction): A is a sentence with a successor; with probability ½ B is that
true next sentence (label 0, "is next"), otherwise a random sentence of another document
(label 1, "random" — transformers' label convention), so a negative is never the true next one.

MLM (masked language model): 15% of the non-special, non-padding tokens are selected; of those
80% become [MASK], 10% a random non-special token, 10% stay unchanged. The labels keep the
original token at selected positions and -100 (ignored) elsewhere. Masking is dynamic: batch
``index`` draws both its pairs and its masks from generators seeded by (seed, split, index), so
every step sees fresh masks and a resumed run sees exactly the same ones.

Truncation (so a text longer than the model's positions never crashes): pairs lose tokens
longest-first — repeatedly drop the last token of the longer of A and B (of B on a tie) until
len(A) + len(B) + 3 <= max_len; single texts keep their head, the first max_len - 2 tokens.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Sequence

import torch

from minitransformer.batches import _mix_seed  # one seed mixer for every get_batch in the project

from .heads import IGNORE_INDEX

Doc = list[list[int]]  # a document: sentences of token ids


# ----------------------------------------------------------------------------- NSP pairs


def make_nsp_pair(docs: Sequence[Doc], doc_idx: int, sent_idx: int, rng: random.Random) -> tuple[list[int], list[int], bool]:
    """(A, B, is_next): A = docs[doc_idx][sent_idx]; with probability ½ B = the next sentence of
    the same document (is_next True), else B = a uniformly chosen sentence of a uniformly chosen
    *other* document (is_next False). Needs >= 2 documents and a sentence that has a successor."""
    if len(docs) < 2:
        raise ValueError(f"documents: expected at least 2 (negatives come from another document), received {len(docs)}")
    doc = docs[doc_idx]
    if not 0 <= sent_idx < len(doc) - 1:
        raise ValueError(f"sent_idx: expected a sentence with a successor, 0 <= sent_idx < {len(doc) - 1}, received {sent_idx}")
    a = doc[sent_idx]
    if rng.random() < 0.5:
        return list(a), list(doc[sent_idx + 1]), True
    other = rng.randrange(len(docs) - 1)  # uniform over the len(docs) - 1 other documents:
    if other >= doc_idx:  # skip doc_idx itself
        other += 1
    return list(a), list(rng.choice(docs[other])), False


def nsp_anchors(docs: Sequence[Doc]) -> list[tuple[int, int]]:
    """Every (doc_idx, sent_idx) whose sentence has a successor in its document."""
    return [(d, s) for d, doc in enumerate(docs) for s in range(len(doc) - 1)]


# ----------------------------------------------------------------------------- truncation and layout


def truncate_pair(a: Sequence[int], b: Sequence[int], max_tokens: int) -> tuple[list[int], list[int]]:
    """Longest-first: drop the last token of the longer sequence (B on a tie) until
    len(A) + len(B) <= max_tokens. Returns new lists."""
    if max_tokens < 0:
        raise ValueError(f"max_tokens: expected >= 0, received {max_tokens}")
    a, b = list(a), list(b)
    while len(a) + len(b) > max_tokens:
        (a if len(a) > len(b) else b).pop()
    return a, b


def truncate_single(ids: Sequence[int], max_tokens: int) -> list[int]:
    """Keep the head: the first ``max_tokens`` tokens."""
    if max_tokens < 0:
        raise ValueError(f"max_tokens: expected >= 0, received {max_tokens}")
    return list(ids[:max_tokens])


def build_pair_inputs(a, b, cls_id: int, sep_id: int, max_len: int) -> tuple[list[int], list[int]]:
    """[CLS] A [SEP] B [SEP] with segment ids 0…0 1…1, truncated longest-first to ``max_len``."""
    if max_len < 3:
        raise ValueError(f"max_len: expected >= 3 for [CLS] A [SEP] B [SEP], received {max_len}")
    a, b = truncate_pair(a, b, max_len - 3)
    return [cls_id, *a, sep_id, *b, sep_id], [0] * (len(a) + 2) + [1] * (len(b) + 1)


def build_single_inputs(a, cls_id: int, sep_id: int, max_len: int) -> tuple[list[int], list[int]]:
    """[CLS] A [SEP], segment ids all 0, A truncated to its first ``max_len - 2`` tokens."""
    if max_len < 2:
        raise ValueError(f"max_len: expected >= 2 for [CLS] A [SEP], received {max_len}")
    a = truncate_single(a, max_len - 2)
    return [cls_id, *a, sep_id], [0] * (len(a) + 2)


def pad_rows(rows: Sequence[Sequence[int]], pad_value: int) -> torch.Tensor:
    """Right-pad integer rows to the longest: (B, T) int64."""
    if not rows:
        raise ValueError("rows: expected at least one row, received none")
    t = max(len(r) for r in rows)
    out = torch.full((len(rows), t), pad_value, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.as_tensor(list(r), dtype=torch.long)
    return out  # (B, T)


# ----------------------------------------------------------------------------- MLM masking


def mlm_mask_tokens(input_ids: torch.Tensor, special_mask: torch.Tensor, vocab_size: int, special_ids: Sequence[int],
                    mask_id: int, generator: torch.Generator, p: float = 0.15, p_mask: float = 0.8,
                    p_random: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking rule. input_ids (B, T); special_mask (B, T) True at special and padding tokens.

    selected ~ Bernoulli(p) on positions where special_mask is False           (15%)
    of the selected: u ~ U(0, 1); u < p_mask -> [MASK]                            (80%)
                     p_mask <= u < p_mask + p_random -> a random token drawn
                     uniformly from the non-special ids                          (10%)
                     otherwise unchanged                                         (10%)
    Returns (inputs (B, T), labels (B, T)): labels = the original id where selected, else -100.
    """
    if input_ids.shape != special_mask.shape:
        raise ValueError(f"special_mask: expected shape {tuple(input_ids.shape)}, received {tuple(special_mask.shape)}")
    if not (0.0 <= p <= 1.0 and p_mask >= 0 and p_random >= 0 and p_mask + p_random <= 1.0):
        raise ValueError(f"expected p in [0, 1] and p_mask + p_random <= 1, received p={p}, p_mask={p_mask}, p_random={p_random}")
    special = set(int(i) for i in special_ids) | {int(mask_id)}
    allowed = torch.tensor([i for i in range(vocab_size) if i not in special], dtype=torch.long)  # (V',)
    if allowed.numel() == 0:
        raise ValueError("vocabulary: expected at least one non-special token to draw random replacements from")
    selected = (torch.rand(input_ids.shape, generator=generator) < p) & ~special_mask.bool()  # (B, T)
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    u = torch.rand(input_ids.shape, generator=generator)  # (B, T)
    to_mask = selected & (u < p_mask)
    to_random = selected & (u >= p_mask) & (u < p_mask + p_random)
    random_ids = allowed[torch.randint(len(allowed), input_ids.shape, generator=generator)]  # (B, T)
    inputs = torch.where(to_mask, torch.full_like(input_ids, mask_id), input_ids)
    inputs = torch.where(to_random, random_ids, inputs)
    return inputs, labels


# ----------------------------------------------------------------------------- batches


@dataclass
class SpecialIds:
    """The ids the pretraining layout needs from a tokenizer."""

    pad: int
    cls: int
    sep: int
    mask: int
    special: tuple[int, ...]
    vocab_size: int

    @classmethod
    def of(cls, tokenizer) -> "SpecialIds":
        ids = tuple(sorted(set(int(i) for i in tokenizer.special_ids)))
        return cls(tokenizer.pad_id, tokenizer.cls_id, tokenizer.sep_id, tokenizer.mask_id, ids, tokenizer.vocab_size)


def pretraining_batch(docs: Sequence[Doc], anchors: Sequence[tuple[int, int]], ids: SpecialIds, batch_size: int,
                      max_len: int, seed: int, p_mlm: float = 0.15) -> dict[str, torch.Tensor]:
    """One batch of NSP pairs with MLM masks, drawn from generators seeded by ``seed``.
    Returns input_ids, token_type_ids, attention_mask, labels (B, T) and next_sentence_label (B,)."""
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    rows, types, nsp = [], [], []
    for _ in range(batch_size):
        d, s = anchors[rng.randrange(len(anchors))]
        a, b, is_next = make_nsp_pair(docs, d, s, rng)
        row, seg = build_pair_inputs(a, b, ids.cls, ids.sep, max_len)
        rows.append(row)
        types.append(seg)
        nsp.append(0 if is_next else 1)
    input_ids = pad_rows(rows, ids.pad)  # (B, T)
    attention_mask = pad_rows([[1] * len(r) for r in rows], 0)  # (B, T)
    special_mask = torch.isin(input_ids, torch.tensor(ids.special + (ids.pad,))) | (attention_mask == 0)
    inputs, labels = mlm_mask_tokens(input_ids, special_mask, ids.vocab_size, ids.special, ids.mask, gen, p_mlm)
    return {
        "input_ids": inputs,
        "token_type_ids": pad_rows(types, 0),
        "attention_mask": attention_mask,
        "labels": labels,
        "next_sentence_label": torch.tensor(nsp, dtype=torch.long),
    }


class PretrainingData:
    """get_batch(split, index) for the Trainer: a pure function of (seed, split, index).

    ``splits`` maps a split name to its documents (sentences of token ids). Documents with no
    sentence are dropped; each split needs >= 2 documents and one with >= 2 sentences.
    """

    def __init__(self, splits: dict[str, Sequence[Doc]], tokenizer, batch_size: int, max_len: int, seed: int,
                 p_mlm: float = 0.15):
        if not 0 < p_mlm < 1:  # 0 masks nothing (an MLM loss of 0.0), 1 leaves no context
            raise ValueError(f"p_mlm: expected a probability strictly between 0 and 1, received {p_mlm!r}")
        self.ids = SpecialIds.of(tokenizer)
        self.batch_size, self.max_len, self.seed, self.p_mlm = batch_size, max_len, seed, p_mlm
        self.docs, self.anchors = {}, {}
        for name, docs in splits.items():
            docs = [[s for s in d if s] for d in docs]
            docs = [d for d in docs if d]
            anchors = nsp_anchors(docs)
            if len(docs) < 2 or not anchors:
                raise ValueError(
                    f"{name} split: expected at least 2 documents and one with 2 or more sentences (blank lines "
                    f"separate documents, one sentence per line), received {len(docs)} documents and {len(anchors)} sentence pairs"
                )
            self.docs[name], self.anchors[name] = docs, anchors

    def __call__(self, split: str, index: int) -> dict[str, torch.Tensor]:
        if split not in self.docs:
            raise ValueError(f"split: expected one of {sorted(self.docs)}, received {split!r}")
        seed = _mix_seed("bert-pretraining", self.seed, split, index)
        return pretraining_batch(self.docs[split], self.anchors[split], self.ids, self.batch_size, self.max_len, seed, self.p_mlm)


def pretraining_loss(model, batch) -> tuple[torch.Tensor, dict[str, float]]:
    """loss = MLM loss + NSP loss; logs each loss and each accuracy (MLM accuracy over the selected
    positions only, where the MLM head runs: ``masked_positions_only``)."""
    out = model(**batch, masked_positions_only=True)
    selected = batch["labels"][batch["labels"] != IGNORE_INDEX]  # (N,)
    mlm_acc = (out.mlm_logits.argmax(-1) == selected).float().sum() / max(selected.numel(), 1)
    nsp_acc = (out.nsp_logits.argmax(-1) == batch["next_sentence_label"]).float().mean()
    metrics = {"mlm_loss": out.mlm_loss.item(), "nsp_loss": out.nsp_loss.item(), "mlm_acc": mlm_acc.item(),
               "nsp_acc": nsp_acc.item()}
    return out.loss, metrics


def chance_levels(vocab_size: int) -> dict[str, float]:
    """What guessing scores: MLM loss ln|V| and accuracy 1/|V| (uniform over the vocabulary);
    NSP loss ln 2 and accuracy 50% (the classes are balanced)."""
    return {"mlm_loss": math.log(vocab_size), "mlm_acc": 1.0 / vocab_size, "nsp_loss": math.log(2.0), "nsp_acc": 0.5}


def documents_from_text(docs: Sequence[str]) -> list[list[str]]:
    """Documents (strings, one sentence per line) -> lists of non-empty, stripped sentences."""
    return [[line.strip() for line in d.split("\n") if line.strip()] for d in docs]


def tokenize_documents(docs: Sequence[Sequence[str]], tokenizer) -> list[Doc]:
    """Encode every sentence (no special tokens); sentences that encode to nothing are dropped."""
    return [[ids for ids in (tokenizer.encode(s) for s in doc) if ids] for doc in docs]
