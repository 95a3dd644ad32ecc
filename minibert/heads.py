"""BERT's heads: pretraining (MLM + NSP, Article §3.2.3 预训练) and fine-tuning for sequence
classification and token classification (Article §3.2.4 微调, §4.3, §6.2 命名实体识别).

⚠ Article §3.2.3 lists "双向编码器 BERT" beside MLM and NSP as a pretraining task; BERT is the
architecture (``model.BertModel``), MLM and NSP are its two pretraining tasks.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from minitransformer.layers import LayerNorm, get_activation

from .config import BertConfig
from .model import BertModel, init_bert_weights

IGNORE_INDEX = -100  # label of a position that carries no loss (unselected MLM tokens, later subwords, padding)


@dataclass
class PreTrainingOutput:
    """loss = mlm_loss + nsp_loss (each None without its labels); mlm_logits (B, T, V); nsp_logits (B, 2)."""

    loss: torch.Tensor | None
    mlm_loss: torch.Tensor | None
    nsp_loss: torch.Tensor | None
    mlm_logits: torch.Tensor
    nsp_logits: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class MaskedLMOutput:
    """A masked LM's output (RoBERTa, ALBERT, ELECTRA's generator, DistilBERT): loss (None without
    labels); logits (B, T, V)."""

    loss: torch.Tensor | None
    logits: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class ClassifierOutput:
    """loss (None without labels); logits (B, num_labels) or (B, T, num_labels)."""

    loss: torch.Tensor | None
    logits: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


def mlm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """L_MLM = -(1/|M|) Σ_{i∈M} log p(x_i | x̃), M = positions whose label is not -100.

    logits (B, T, V), labels (B, T). Only the selected positions count: whatever the logits are
    elsewhere, and whatever token sits there, the loss is the same. With |M| = 0 the loss is 0
    (not 0/0 = NaN), still attached to the graph.
    """
    flat_logits = logits.reshape(-1, logits.size(-1))  # (B*T, V)
    flat_labels = labels.reshape(-1)  # (B*T,)
    total = F.cross_entropy(flat_logits, flat_labels, ignore_index=IGNORE_INDEX, reduction="sum")
    n = (flat_labels != IGNORE_INDEX).sum().clamp_min(1)
    return total / n


def nsp_loss(logits: torch.Tensor, is_next: torch.Tensor) -> torch.Tensor:
    """L_NSP = -(1/B) Σ_b log p(is_next_b | pooled_b): binary cross-entropy over two classes
    (0 = B follows A, 1 = B is random — transformers' convention). logits (B, 2), is_next (B,)."""
    return F.cross_entropy(logits, is_next)


class BertMLMHead(nn.Module):
    """MLM head: logits = LayerNorm(gelu(h W_t + b_t)) Eᵀ + b, where E is the word-embedding table
    (tied: the decoder's weight *is* ``embeddings.word_embeddings.weight``). (B, T, H) -> (B, T, V)."""

    def __init__(self, c: BertConfig, word_embeddings: nn.Embedding):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)
        self.act = get_activation(c.hidden_act, c.use_fused)
        self.norm = LayerNorm(c.hidden_size, eps=c.layer_norm_eps, fused=c.use_fused)
        self.decoder = nn.Linear(c.hidden_size, c.vocab_size, bias=False)
        self.decoder.weight = word_embeddings.weight  # tied
        self.bias = nn.Parameter(torch.zeros(c.vocab_size))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden (..., H) -> logits (..., V): (B, T, H) for every position, or (N, H) for N selected ones."""
        h = self.norm(self.act(self.dense(hidden)))  # (..., H)
        return F.linear(h, self.decoder.weight, self.bias)  # (..., V) = h Eᵀ + b


def cls_and_selected_positions(selected: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each row of ``selected`` (B, T) bool: position 0 ([CLS]), then its selected positions in
    increasing order, padded to the longest row with position 0 again. Returns the positions
    (B, Q) int64, Q = 1 + the most selected in a row, and ``real`` (B, Q) bool, True at the
    selected ones: ``x[real]`` for rows gathered at ``positions`` is ``x_full[selected]``.
    (Article §3.2.3 预训练: the MLM loss reads the masked positions only, NSP reads [CLS].)"""
    B, T = selected.shape
    counts = selected.sum(1)  # (B,)
    q = int(counts.max()) if B else 0
    t = torch.arange(T, device=selected.device)
    order = torch.where(selected, t, T + t).argsort(dim=1)[:, :q]  # (B, q): the selected first, in order
    real = t[:q] < counts.unsqueeze(1)  # (B, q)
    positions = torch.cat([torch.zeros(B, 1, dtype=torch.int64, device=selected.device), order.masked_fill(~real, 0)], 1)
    return positions, torch.cat([torch.zeros(B, 1, dtype=torch.bool, device=selected.device), real], 1)


class BertForPreTraining(nn.Module):
    """BertModel + MLM head (tied decoder) + NSP head (linear on the pooled [CLS] vector).
    bert-base: 110,106,428 parameters. Labels use transformers' names: ``labels`` (B, T) with -100
    at unselected positions, ``next_sentence_label`` (B,) with 0 = is next, 1 = random.

    ``masked_positions_only=True`` (needs ``labels``) computes only what the two losses read: the
    MLM head on the N selected positions, and the last encoder layer at those positions and [CLS]
    (:func:`cls_and_selected_positions`; every position still serves as a key and value there).
    ``mlm_logits`` is then (N, V), rows in row-major order of ``labels != -100``. The loss and its
    gradients are the same; the V-wide decoder, the largest matrix product of a small BERT, and
    most of the last layer run on ~15% of the tokens."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.bert = BertModel(config)
        self.mlm_head = BertMLMHead(config, self.bert.embeddings.word_embeddings)
        self.nsp_head = nn.Linear(config.hidden_size, 2)
        for m in (self.mlm_head.dense, self.mlm_head.norm, self.nsp_head):
            init_bert_weights(m, config.initializer_range)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, labels=None, next_sentence_label=None,
                output_hidden_states: bool = False, output_attentions: bool = False,
                masked_positions_only: bool = False) -> PreTrainingOutput:
        if not masked_positions_only:
            out = self.bert(input_ids, token_type_ids, attention_mask, output_hidden_states, output_attentions)
            hidden = out.last_hidden_state  # (B, T, H)
        else:
            if labels is None:
                raise ValueError("masked_positions_only: expected MLM labels (B, T) to select positions, received None")
            selected = labels != IGNORE_INDEX  # (B, T)
            if output_hidden_states or output_attentions:  # every layer's every row is asked for: a full last layer
                out = self.bert(input_ids, token_type_ids, attention_mask, output_hidden_states, output_attentions)
                hidden = out.last_hidden_state[selected]  # (N, H)
            else:
                positions, real = cls_and_selected_positions(selected)  # (B, Q), (B, Q)
                out = self.bert(input_ids, token_type_ids, attention_mask, last_layer_positions=positions)
                hidden = out.last_hidden_state[real]  # (N, H), row-major order of `selected`
            labels = labels[selected]  # (N,)
        mlm_logits = self.mlm_head(hidden)  # (B, T, V) or (N, V)
        nsp_logits = self.nsp_head(out.pooler_output)  # (B, 2)
        l_mlm = mlm_loss(mlm_logits, labels) if labels is not None else None
        l_nsp = nsp_loss(nsp_logits, next_sentence_label) if next_sentence_label is not None else None
        parts = [x for x in (l_mlm, l_nsp) if x is not None]
        loss = sum(parts) if parts else None
        return PreTrainingOutput(loss, l_mlm, l_nsp, mlm_logits, nsp_logits, out.hidden_states, out.attentions)

    @classmethod
    def from_pretrained(cls, path, **kw):
        from .hf import from_pretrained

        return from_pretrained(cls, path, **kw)


class BertForSequenceClassification(nn.Module):
    """logits = W · Dropout(pooled) + b: one label per sequence (Article §3.2.4 分类任务, §4.3).
    (B, T) -> (B, num_labels); loss = cross-entropy against ``labels`` (B,). The pooled vector reads
    the last layer's [CLS] row only, so that layer computes just that row (keys and values still
    from every token): the same logits, a layer's worth less work."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.num_labels = config.num_labels
        self.bert = BertModel(config)
        p = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(p)
        self.classifier = nn.Linear(config.hidden_size, self.num_labels)
        init_bert_weights(self.classifier, config.initializer_range)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, labels=None,
                output_hidden_states: bool = False, output_attentions: bool = False) -> ClassifierOutput:
        if output_hidden_states or output_attentions or not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
            out = self.bert(input_ids, token_type_ids, attention_mask, output_hidden_states, output_attentions)
        else:  # only [CLS] reaches the logits: the last layer computes that row alone (EncoderBlock.forward_at)
            cls_row = torch.zeros(input_ids.size(0), 1, dtype=torch.int64, device=input_ids.device)  # (B, 1)
            out = self.bert(input_ids, token_type_ids, attention_mask, last_layer_positions=cls_row)
        logits = self.classifier(self.dropout(out.pooler_output))  # (B, num_labels)
        loss = F.cross_entropy(logits, labels) if labels is not None else None
        return ClassifierOutput(loss, logits, out.hidden_states, out.attentions)

    @classmethod
    def from_pretrained(cls, path, **kw):
        from .hf import from_pretrained

        return from_pretrained(cls, path, **kw)


class BertForTokenClassification(nn.Module):
    """logits_t = W · Dropout(h_t) + b: one label per token, e.g. BIO tags for NER (Article §6.2).
    (B, T) -> (B, T, num_labels); loss = cross-entropy over positions whose label is not -100
    (padding, [CLS]/[SEP] and every subword after a word's first)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.num_labels = config.num_labels
        self.bert = BertModel(config, add_pooling_layer=False)
        p = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(p)
        self.classifier = nn.Linear(config.hidden_size, self.num_labels)
        init_bert_weights(self.classifier, config.initializer_range)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, labels=None,
                output_hidden_states: bool = False, output_attentions: bool = False) -> ClassifierOutput:
        out = self.bert(input_ids, token_type_ids, attention_mask, output_hidden_states, output_attentions)
        logits = self.classifier(self.dropout(out.last_hidden_state))  # (B, T, num_labels)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.reshape(-1, self.num_labels), labels.reshape(-1), ignore_index=IGNORE_INDEX)
        return ClassifierOutput(loss, logits, out.hidden_states, out.attentions)

    @classmethod
    def from_pretrained(cls, path, **kw):
        from .hf import from_pretrained

        return from_pretrained(cls, path, **kw)
