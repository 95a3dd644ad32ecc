"""Pretraining objectives side by side on one corpus (Article §7.3 更多的预训练模型; issue #17).

The same tokenised documents (the notes of ch08 §8), the same tiny size and the same optimiser;
only the objective changes:

* ``mlm_nsp``  BERT: MLM + NSP on sentence pairs (:class:`PretrainingData`, :func:`pretraining_loss`);
* ``mlm``      RoBERTa: MLM alone, each row a whole document ``[CLS] s1 s2 … [SEP]``, masked afresh
               by :func:`dynamic_mlm_batch` every time a batch is drawn; no NSP;
* ``mlm_sop``  ALBERT's objective on BERT's encoder: the NSP head learns sentence order (SOP);
* ``albert``   ALBERT itself: factorised embedding (E = H/2), one shared block, MLM + SOP;
* ``rtd``      ELECTRA: a generator of half the width and the encoder as discriminator, their
               embeddings shared; L = L_MLM(generator) + 50 · L_Disc;
* ``causal``   GPT: next-token prediction on the same whole-document rows, fine-tuned from the
               last token's state (:class:`minigpt.classify.GPTForSequenceClassification`).

:func:`build_objective` gives each one's model, batches, loss and a function that makes a
classifier from its pretrained weights (or from random weights, the from-scratch control).
ch16 §3–4 and bench/objectives.py use these; nothing here is written a second time there.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from minigpt.classify import GPTClassifierConfig, GPTForSequenceClassification
from minigpt.config import GPTConfig
from minigpt.model import GPT

from .albert import AlbertConfig, AlbertForPreTraining, AlbertModel, build_sop_inputs, sop_loss
from .config import BertConfig
from .electra import ElectraConfig, ElectraForMaskedLM, ElectraForPreTraining, replaced_token_detection_step, share_embeddings
from .heads import IGNORE_INDEX, BertForPreTraining, BertForSequenceClassification, mlm_loss
from .pretraining import PretrainingData, mlm_mask_tokens, pad_rows, pretraining_loss
from .roberta import RobertaConfig, RobertaForMaskedLM, RobertaModel, dynamic_mlm_batch

OBJECTIVES = ("mlm_nsp", "mlm", "mlm_sop", "albert", "rtd", "causal")
DROPOUT = dict(hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)  # fine-tuning's; pretraining has 0


@dataclass
class Corpus:
    """Tokenised documents by split (``{"train": [doc, …], "val": …}``, a doc a list of sentences of
    ids), the tokenizer, and the batch shape. Every batch is a pure function of (seed, kind, split, index)."""

    docs: dict
    tokenizer: object
    batch_size: int
    max_len: int
    p_mlm: float
    seed: int = 0

    @property
    def specials(self) -> list[int]:
        return sorted(set(int(i) for i in self.tokenizer.special_ids) | {self.tokenizer.pad_id})

    def rngs(self, kind: str, split: str, index: int) -> tuple[random.Random, torch.Generator]:
        """A Python and a torch generator for batch ``index`` of ``split``."""
        rng = random.Random(f"{kind}/{split}/{index}/{self.seed}")
        return rng, torch.Generator().manual_seed(rng.randrange(2 ** 62))

    def masked(self, rows, segments, gen: torch.Generator, extra=None) -> dict:
        """Pad rows (B, T); mask p_mlm of the non-special tokens with BERT's 80/10/10 rule."""
        tok = self.tokenizer
        ids = pad_rows(rows, tok.pad_id)  # (B, T)
        attention_mask = pad_rows([[1] * len(r) for r in rows], 0)  # (B, T)
        special = torch.isin(ids, torch.tensor(self.specials)) | (attention_mask == 0)
        inputs, labels = mlm_mask_tokens(ids, special, tok.vocab_size, self.specials, tok.mask_id, gen, p=self.p_mlm)
        return {"input_ids": inputs, "token_type_ids": pad_rows(segments, 0), "attention_mask": attention_mask,
                "labels": labels, **(extra or {})}

    def sop_batch(self, split: str, index: int) -> dict:
        """ALBERT's pairs: [CLS] A [SEP] B [SEP] from one document's two consecutive sentences, swapped
        with probability ½ (next_sentence_label = the SOP label, 1 = swapped), MLM-masked as BERT's."""
        rng, gen = self.rngs("sop", split, index)
        docs = [d for d in self.docs[split] if len(d) >= 2]
        rows, segs, order = [], [], []
        for _ in range(self.batch_size):
            doc = rng.choice(docs)
            ids, seg, swapped = build_sop_inputs(doc, rng.randrange(len(doc) - 1), self.tokenizer.cls_id,
                                                 self.tokenizer.sep_id, self.max_len, rng)
            rows.append(ids)
            segs.append(seg)
            order.append(swapped)
        return self.masked(rows, segs, gen, {"next_sentence_label": torch.tensor(order)})

    def document_rows(self, rng: random.Random, split: str) -> list[list[int]]:
        """batch_size rows, each one whole document: [CLS] s1 s2 … [SEP], cut to max_len."""
        tok, rows = self.tokenizer, []
        for _ in range(self.batch_size):
            text = [t for s in rng.choice(self.docs[split]) for t in s][:self.max_len - 2]
            rows.append([tok.cls_id, *text, tok.sep_id])
        return rows

    def document_batch(self, split: str, index: int) -> dict:
        """RoBERTa's and ELECTRA's rows (one segment), masked afresh by dynamic_mlm_batch."""
        rng, gen = self.rngs("full", split, index)
        ids = pad_rows(self.document_rows(rng, split), self.tokenizer.pad_id)  # (B, T)
        inputs, labels = dynamic_mlm_batch(ids, self.specials, self.tokenizer.mask_id, self.tokenizer.vocab_size, gen,
                                           p=self.p_mlm)
        return {"input_ids": inputs, "attention_mask": (ids != self.tokenizer.pad_id).long(), "labels": labels}

    def causal_batch(self, split: str, index: int) -> dict:
        """The GPT's rows: the same whole documents, unmasked; targets[t] = idx[t + 1], padding ignored."""
        rng, _ = self.rngs("full", split, index)
        idx = pad_rows(self.document_rows(rng, split), self.tokenizer.pad_id)  # (B, T)
        targets = torch.full_like(idx, IGNORE_INDEX)  # (B, T)
        targets[:, :-1] = idx[:, 1:].masked_fill(idx[:, 1:] == self.tokenizer.pad_id, IGNORE_INDEX)
        return {"idx": idx, "targets": targets}


# ----------------------------------------------------------------------------- the losses


def albert_loss(model, batch) -> tuple[torch.Tensor, dict[str, float]]:
    """L = L_MLM + L_SOP, the SOP label read from next_sentence_label; the MLM head at the masked
    positions only (N of B·T), as BERT's pretraining_loss does: the same loss, less work."""
    out = model.albert(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
    selected = batch["labels"] != IGNORE_INDEX  # (B, T)
    l_mlm = mlm_loss(model.mlm_head(out.last_hidden_state[selected]), batch["labels"][selected])  # (N, V), (N,)
    sop_logits = model.sop_head(model.sop_dropout(out.pooler_output))  # (B, 2)
    l_sop = sop_loss(sop_logits, batch["next_sentence_label"])
    sop_acc = (sop_logits.argmax(-1) == batch["next_sentence_label"]).float().mean()
    return l_mlm + l_sop, {"mlm_loss": l_mlm.item(), "sop_loss": l_sop.item(), "sop_acc": sop_acc.item()}


def roberta_loss(model, batch) -> tuple[torch.Tensor, dict[str, float]]:
    """L = L_MLM alone; the head at the masked positions only."""
    h = model.roberta(batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state  # (B, T, H)
    selected = batch["labels"] != IGNORE_INDEX  # (B, T)
    loss = mlm_loss(model.lm_head(h[selected]), batch["labels"][selected])  # (N, V), (N,)
    return loss, {"mlm_loss": loss.item()}


def electra_loss_fn(generator_rng: torch.Generator) -> Callable:
    """ELECTRA's loss for a ModuleDict {generator, discriminator}; the generator samples from ``generator_rng``."""

    def electra_loss(model, batch):
        out = replaced_token_detection_step(model["generator"], model["discriminator"], batch["input_ids"], batch["labels"],
                                            generator_rng, attention_mask=batch["attention_mask"])
        real = batch["attention_mask"].bool()
        rtd_acc = ((out.discriminator_logits > 0).float() == out.replaced)[real].float().mean()
        return out.loss, {"generator_loss": out.generator_loss.item(), "discriminator_loss": out.discriminator_loss.item(),
                          "replaced": out.replaced[real].mean().item(), "rtd_acc": rtd_acc.item()}

    return electra_loss


def causal_lm_loss(model, batch) -> tuple[torch.Tensor, dict[str, float]]:
    """GPT's next-token cross-entropy (minigpt.next_token_loss) over the real tokens."""
    _, loss = model(batch["idx"], batch["targets"])
    return loss, {"lm_loss": loss.item()}


# ----------------------------------------------------------------------------- models, one per objective


def tiny_sizes(vocab_size: int, max_len: int, hidden_size: int = 64, layers: int = 2, heads: int = 2,
               intermediate_size: int = 256) -> dict:
    """BertConfig fields of the tiny encoder (ch08 §8's size), dropout 0 for pretraining."""
    return dict(vocab_size=vocab_size, hidden_size=hidden_size, num_hidden_layers=layers, num_attention_heads=heads,
                intermediate_size=intermediate_size, max_position_embeddings=max_len, hidden_dropout_prob=0.0,
                attention_probs_dropout_prob=0.0)


@dataclass
class Objective:
    """One objective ready to train: ``Trainer(model, cfg, get_batch, loss_fn=loss_fn)``. Then
    ``classifier(pretrained=True)`` is a classifier (2 labels, dropout 0.1) holding the trained encoder;
    ``classifier(pretrained=False)`` the same architecture with random weights."""

    name: str
    model: nn.Module
    get_batch: Callable
    loss_fn: Callable
    classifier: Callable[[bool], nn.Module]


def _bert_classifier(sizes: dict, body: nn.Module | None = None, state=None) -> BertForSequenceClassification:
    """BertForSequenceClassification with ``body`` as its encoder; ``state`` loaded into it (keys it lacks,
    such as ELECTRA's absent pooler, stay random; any other mismatch is an error)."""
    clf = BertForSequenceClassification(BertConfig.from_dict({**sizes, **DROPOUT, "num_labels": 2}))
    if body is not None:
        clf.bert = body
    if state is not None:
        missing, unexpected = clf.bert.load_state_dict(state, strict=False)
        if unexpected or any(not k.startswith("pooler.") for k in missing):
            raise ValueError(f"encoder weights: expected the classifier's keys, missing {missing}, unexpected {unexpected}")
    return clf


def build_objective(name: str, corpus: Corpus, sizes: dict, init_seed: int, rtd_seed: int = 4) -> Objective:
    """Model, batches and loss of objective ``name`` (one of OBJECTIVES) on ``corpus``; weights drawn
    after ``torch.manual_seed(init_seed)``. ``sizes``: :func:`tiny_sizes`."""
    if name not in OBJECTIVES:
        raise ValueError(f"objective: expected one of {', '.join(OBJECTIVES)}, received {name!r}")
    tok, h = corpus.tokenizer, sizes["hidden_size"]
    torch.manual_seed(init_seed)
    if name in ("mlm_nsp", "mlm_sop"):
        model = BertForPreTraining(BertConfig(**sizes))
        data = PretrainingData(corpus.docs, tok, batch_size=corpus.batch_size, max_len=corpus.max_len, seed=corpus.seed,
                               p_mlm=corpus.p_mlm) if name == "mlm_nsp" else corpus.sop_batch
        return Objective(name, model, data, pretraining_loss,  # for mlm_sop the NSP head learns the SOP labels
                         lambda pretrained: _bert_classifier(sizes, state=model.bert.state_dict() if pretrained else None))
    if name == "albert":
        albert = dict(embedding_size=h // 2, num_hidden_groups=1, hidden_act="gelu")
        model = AlbertForPreTraining(AlbertConfig(**sizes, **albert))
        return Objective(name, model, corpus.sop_batch, albert_loss, lambda pretrained: _bert_classifier(
            sizes, AlbertModel(AlbertConfig(**{**sizes, **DROPOUT}, **albert)), model.albert.state_dict() if pretrained else None))
    if name == "mlm":
        roberta = {**sizes, "max_position_embeddings": corpus.max_len + tok.pad_id + 1, "type_vocab_size": 1,
                   "pad_token_id": tok.pad_id}
        model = RobertaForMaskedLM(RobertaConfig(**roberta))
        return Objective(name, model, corpus.document_batch, roberta_loss, lambda pretrained: _bert_classifier(
            sizes, RobertaModel(RobertaConfig(**{**roberta, **DROPOUT})), model.roberta.state_dict() if pretrained else None))
    if name == "rtd":
        electra = {**sizes, "embedding_size": h, "hidden_act": "gelu"}
        discriminator = ElectraForPreTraining(ElectraConfig(**electra))
        generator = ElectraForMaskedLM(ElectraConfig(**{**electra, "hidden_size": h // 2,
                                                        "intermediate_size": sizes["intermediate_size"] // 2}))
        share_embeddings(generator, discriminator)
        model = nn.ModuleDict({"generator": generator, "discriminator": discriminator})  # one optimizer for both
        loss_fn = electra_loss_fn(torch.Generator().manual_seed(rtd_seed))
        # E = H: the discriminator's weight names are BertModel's, less the pooler (ELECTRA has none)
        return Objective(name, model, corpus.document_batch, loss_fn, lambda pretrained: _bert_classifier(
            sizes, state=discriminator.electra.state_dict() if pretrained else None))
    gpt = dict(block_size=corpus.max_len, vocab_size=tok.vocab_size, n_layer=sizes["num_hidden_layers"],
               n_head=sizes["num_attention_heads"], n_embd=h, dropout=0.0)
    if sizes["intermediate_size"] != 4 * h:
        raise ValueError(f"causal: GPT's MLP is 4·hidden_size = {4 * h} wide, received intermediate_size {sizes['intermediate_size']}")
    model = GPT(GPTConfig(**gpt))

    def gpt_classifier(pretrained: bool) -> GPTForSequenceClassification:
        clf = GPTForSequenceClassification(GPTClassifierConfig(**{**gpt, "dropout": 0.1}, num_labels=2, pad_token_id=tok.pad_id))
        if pretrained:
            clf.gpt.load_state_dict(model.state_dict())
        return clf

    return Objective(name, model, corpus.causal_batch, causal_lm_loss, gpt_classifier)
