"""ALBERT (Lan et al., 2020): A Lite BERT. Article §7.3 (the BERT family).

What changes from BERT, and nothing else (the block is minibert's post-LN EncoderBlock, the forward
pass is BertModel's, the pooler is BERT's):

1. Factorised embedding (``minitransformer.factorised.FactorisedEmbedding``): the token, position
   and segment tables have width E = 128, then one projection E -> H::

       h_0 = Dropout(LayerNorm(E_token[x] + E_segment[s] + E_position[t])) W_p + b_p     (B, T, H)

2. Cross-layer parameter sharing (``SharedLayers``): num_hidden_groups = 1 block applied
   num_hidden_layers = 12 times, h_l = Block(h_{l-1}). G groups dividing L also work (layer l uses
   group ⌊l G / L⌋); inner_group_num, blocks per group, must be 1 here.
3. Sentence-order prediction instead of NSP: A and B are two consecutive segments of one document;
   with probability ½ they are swapped; label 1 = swapped (:func:`make_sop_pair`). A random B from
   another document (NSP) can be told apart by topic alone; the order cannot.
4. The MLM head's transform ends in width E so its decoder is the E-wide token table (tied)::

       logits = LayerNorm_E(gelu_new(h W_t + b_t)) E_tokenᵀ + b_V,   W_t: (H, E)      (B, T, V)

5. gelu_new (GELU's tanh form), dropout 0, a 30,000-piece SentencePiece vocabulary (not loaded here).

⚠ transformers' AlbertLayer drops no units after the feed-forward sublayer; Google's ALBERT code,
and minibert's block, do (hidden_dropout_prob, 0 in albert-base-v2). Evaluation is the same.

albert-base-v2 AlbertModel: 11,683,584 parameters (bert-base: 109,482,240).
"""
from __future__ import annotations

import dataclasses
import random
import re
from dataclasses import dataclass
from typing import ClassVar, Sequence

import torch
import torch.nn as nn

from minitransformer.blocks import EncoderBlock
from minitransformer.factorised import FactorisedEmbedding, SharedLayers

from .config import BertConfig
from .heads import BertMLMHead, MaskedLMOutput, mlm_loss, nsp_loss
from .hf import load_family
from .model import BertModel, BertPooler, init_bert_weights
from .pretraining import build_pair_inputs

@dataclass
class FactorisedConfig(BertConfig):
    """BertConfig + embedding_size E, the width of a factorised embedding (Hugging Face's name): the
    configs of ALBERT and ELECTRA. ``model_type`` names the family in config.json; ``unused_keys``
    are keys its config.json carries that change nothing here (kept in ``extra``, no note)."""

    model_type: ClassVar[str] = "bert"
    unused_keys: ClassVar[tuple[str, ...]] = ()
    embedding_size: int = 128

    def __post_init__(self) -> None:
        super().__post_init__()
        e = self.embedding_size
        if isinstance(e, bool) or not isinstance(e, int) or e < 1:
            raise ValueError(f"{type(self).__name__}.embedding_size: expected a positive integer, received {e!r}")

    def to_dict(self) -> dict:
        return {**super().to_dict(), "model_type": self.model_type}

    @classmethod
    def from_dict(cls, d: dict):
        """From a config.json dict (model_type not checked here: ``from_pretrained`` does)."""
        d = {k: v for k, v in d.items() if k != "model_type"}
        quiet = {k: d.pop(k) for k in cls.unused_keys if k in d}
        config = super().from_dict(d)
        config.extra.update(quiet)
        return config


@dataclass
class AlbertConfig(FactorisedConfig):
    """ALBERT's fields (Hugging Face names), defaults albert-base-v2: vocab 30,000, E = 128, one
    shared group, gelu_new, dropout 0. (transformers' own AlbertConfig defaults to albert-xxlarge, H = 4096.)"""

    model_type: ClassVar[str] = "albert"
    # in albert-base-v2's config.json, at values (0 or 1) that no released ALBERT changes
    unused_keys: ClassVar[tuple[str, ...]] = ("net_structure_type", "gap_size", "num_memory_blocks",
                                              "down_scale_factor")
    vocab_size: int = 30000
    num_hidden_groups: int = 1
    inner_group_num: int = 1
    hidden_act: str = "gelu_new"
    hidden_dropout_prob: float = 0.0
    attention_probs_dropout_prob: float = 0.0
    classifier_dropout_prob: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        g = self.num_hidden_groups
        if isinstance(g, bool) or not isinstance(g, int) or g < 1 or self.num_hidden_layers % g:
            raise ValueError(f"AlbertConfig.num_hidden_groups: expected a positive divisor of num_hidden_layers="
                             f"{self.num_hidden_layers}, received {g!r}")
        if self.inner_group_num != 1:
            raise ValueError(f"AlbertConfig.inner_group_num: expected 1 (one block per shared group; no released "
                             f"ALBERT uses more), received {self.inner_group_num!r}")


def factorised_embedding(c: FactorisedConfig, project: bool | None) -> FactorisedEmbedding:
    """The factorised embedding at a config's sizes (ALBERT: project=True; ELECTRA: None, E != H only)."""
    return FactorisedEmbedding(c.vocab_size, c.embedding_size, c.hidden_size, c.max_position_embeddings,
                               c.type_vocab_size, c.layer_norm_eps, c.hidden_dropout_prob, c.pad_token_id, project,
                               c.use_fused)


def bert_block(c: BertConfig) -> EncoderBlock:
    """One of BertModel's blocks: post-LN, x = LN(x + Dropout(MHA(x))); x = LN(x + Dropout(FFN(x)))."""
    return EncoderBlock(c.hidden_size, c.num_attention_heads, c.intermediate_size, c.hidden_dropout_prob,
                        attn_dropout=c.attention_probs_dropout_prob, activation=c.hidden_act, norm_first=False,
                        eps=c.layer_norm_eps, use_sdpa=c.use_sdpa, fused=c.use_fused)


class AlbertModel(BertModel):
    """Factorised embedding -> G shared blocks applied L times -> BERT's pooler. BertModel's forward
    (it runs ``for layer in encoder.layers``, here the L applications of the shared blocks);
    BertModel's __init__ is skipped so that its L unshared blocks are never built.
    albert-base-v2: 11,683,584 parameters."""

    def __init__(self, config: AlbertConfig, add_pooling_layer: bool = True):
        nn.Module.__init__(self)
        c = self.config = config
        self.embeddings = factorised_embedding(c, project=True)
        self.encoder = SharedLayers(lambda: bert_block(c), c.num_hidden_layers, c.num_hidden_groups)
        self.pooler = BertPooler(c) if add_pooling_layer else None
        self.apply(lambda m: init_bert_weights(m, c.initializer_range))

    @classmethod
    def from_pretrained(cls, path, **kw):
        return from_pretrained(cls, path, **kw)


class FactorisedMLMHead(BertMLMHead):
    """BERT's MLM head with its transform going H -> E (W_t: (H, E)), so the decoder is the E-wide
    token table: logits = LayerNorm_E(act(h W_t + b_t)) E_tokenᵀ + b_V. (..., H) -> (..., V).
    ``activation`` overrides the config's (ELECTRA's generator head is always "gelu")."""

    def __init__(self, c: FactorisedConfig, word_embeddings: nn.Embedding, activation: str | None = None):
        narrow = dataclasses.replace(c, hidden_size=c.embedding_size, num_attention_heads=1,
                                     hidden_act=activation or c.hidden_act)
        super().__init__(narrow, word_embeddings)  # norm, decoder and bias at width E
        self.dense = nn.Linear(c.hidden_size, c.embedding_size)
        for m in (self.dense, self.norm):
            init_bert_weights(m, c.initializer_range)


class AlbertForMaskedLM(nn.Module):
    """AlbertModel (no pooler) + :class:`FactorisedMLMHead` (tied). (B, T) -> logits (B, T, V);
    loss = L_MLM over positions whose label is not -100."""

    def __init__(self, config: AlbertConfig):
        super().__init__()
        self.config = config
        self.albert = AlbertModel(config, add_pooling_layer=False)
        self.mlm_head = FactorisedMLMHead(config, self.albert.embeddings.word_embeddings)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, labels=None,
                output_hidden_states: bool = False, output_attentions: bool = False) -> MaskedLMOutput:
        out = self.albert(input_ids, token_type_ids, attention_mask, output_hidden_states, output_attentions)
        logits = self.mlm_head(out.last_hidden_state)  # (B, T, V)
        loss = mlm_loss(logits, labels) if labels is not None else None
        return MaskedLMOutput(loss, logits, out.hidden_states, out.attentions)

    @classmethod
    def from_pretrained(cls, path, **kw):
        return from_pretrained(cls, path, **kw)


@dataclass
class AlbertPreTrainingOutput:
    """loss = mlm_loss + sop_loss (each None without its labels); mlm_logits (B, T, V); sop_logits (B, 2)."""

    loss: torch.Tensor | None
    mlm_loss: torch.Tensor | None
    sop_loss: torch.Tensor | None
    mlm_logits: torch.Tensor
    sop_logits: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


class AlbertForPreTraining(nn.Module):
    """AlbertModel + MLM head + SOP head: sop_logits = W · Dropout(pooled) + b, (B, H) -> (B, 2).
    Labels use transformers' names: ``labels`` (B, T), -100 where not selected, and
    ``sentence_order_label`` (B,), 0 = in order, 1 = swapped."""

    def __init__(self, config: AlbertConfig):
        super().__init__()
        self.config = config
        self.albert = AlbertModel(config)
        self.mlm_head = FactorisedMLMHead(config, self.albert.embeddings.word_embeddings)
        self.sop_dropout = nn.Dropout(config.classifier_dropout_prob)
        self.sop_head = nn.Linear(config.hidden_size, 2)
        init_bert_weights(self.sop_head, config.initializer_range)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, labels=None, sentence_order_label=None,
                output_hidden_states: bool = False, output_attentions: bool = False) -> AlbertPreTrainingOutput:
        out = self.albert(input_ids, token_type_ids, attention_mask, output_hidden_states, output_attentions)
        mlm_logits = self.mlm_head(out.last_hidden_state)  # (B, T, V)
        sop_logits = self.sop_head(self.sop_dropout(out.pooler_output))  # (B, 2)
        l_mlm = mlm_loss(mlm_logits, labels) if labels is not None else None
        l_sop = sop_loss(sop_logits, sentence_order_label) if sentence_order_label is not None else None
        parts = [x for x in (l_mlm, l_sop) if x is not None]
        return AlbertPreTrainingOutput(sum(parts) if parts else None, l_mlm, l_sop, mlm_logits, sop_logits,
                                       out.hidden_states, out.attentions)

    @classmethod
    def from_pretrained(cls, path, **kw):
        return from_pretrained(cls, path, **kw)


# ----------------------------------------------------------------------------- sentence-order prediction


def make_sop_pair(doc: Sequence[Sequence[int]], sent_idx: int, rng: random.Random) -> tuple[list[int], list[int], int]:
    """(A, B, label): two consecutive segments of one document, doc[sent_idx] and doc[sent_idx + 1];
    with probability ½ swapped. label 1 = swapped (B came first), 0 = in order. A segment here is
    one sentence; ALBERT packs several sentences into each, up to the length."""
    if not 0 <= sent_idx < len(doc) - 1:
        raise ValueError(f"sent_idx: expected a sentence with a successor, 0 <= sent_idx < {len(doc) - 1}, "
                         f"received {sent_idx}")
    a, b = list(doc[sent_idx]), list(doc[sent_idx + 1])
    return (b, a, 1) if rng.random() < 0.5 else (a, b, 0)


def build_sop_inputs(doc, sent_idx: int, cls_id: int, sep_id: int, max_len: int,
                     rng: random.Random) -> tuple[list[int], list[int], int]:
    """[CLS] A [SEP] B [SEP], segment ids 0…0 1…1, and the SOP label, from :func:`make_sop_pair`."""
    a, b, label = make_sop_pair(doc, sent_idx, rng)
    ids, segments = build_pair_inputs(a, b, cls_id, sep_id, max_len)
    return ids, segments, label


def sop_loss(logits: torch.Tensor, swapped: torch.Tensor) -> torch.Tensor:
    """L_SOP = -(1/B) Σ_b log p(swapped_b | pooled_b): cross-entropy over two classes (0 = in order,
    1 = swapped), the same formula as NSP's with another question. logits (B, 2), swapped (B,)."""
    return nsp_loss(logits, swapped)


# ----------------------------------------------------------------------------- Hugging Face import

_LAYER = r"^encoder\.albert_layer_groups\.(\d+)\.albert_layers\.0\."  # group g's one block
_ALBERT_RENAMES = [  # (regex on a transformers key without "albert.", replacement)
    (r"^embeddings\.LayerNorm\.", "embeddings.norm."),
    (r"^encoder\.embedding_hidden_mapping_in\.", "embeddings.project."),
    (_LAYER + r"attention\.query\.", r"encoder.groups.\1.self_attn.q_proj."),
    (_LAYER + r"attention\.key\.", r"encoder.groups.\1.self_attn.k_proj."),
    (_LAYER + r"attention\.value\.", r"encoder.groups.\1.self_attn.v_proj."),
    (_LAYER + r"attention\.dense\.", r"encoder.groups.\1.self_attn.out_proj."),
    (_LAYER + r"attention\.LayerNorm\.", r"encoder.groups.\1.norm1."),
    (_LAYER + r"ffn\.", r"encoder.groups.\1.ff.fc1."),
    (_LAYER + r"ffn_output\.", r"encoder.groups.\1.ff.fc2."),
    (_LAYER + r"full_layer_layer_norm\.", r"encoder.groups.\1.norm2."),
    (r"^pooler\.(weight|bias)$", r"pooler.dense.\1"),
]
_ALBERT_HEADS = {"predictions.dense.": "mlm_head.dense.", "predictions.LayerNorm.": "mlm_head.norm.",
                 "predictions.bias": "mlm_head.bias", "sop_classifier.classifier.": "sop_head."}


def convert_albert_key(key: str) -> str | None:
    """A transformers ALBERT key -> minibert's name; None for the tied decoder (its weight is the
    token table, its bias ``predictions.bias``). Another family's key is passed on unchanged."""
    if key.startswith("predictions.decoder.") or key.endswith("position_ids"):
        return None
    for old, new in _ALBERT_HEADS.items():
        if key.startswith(old):
            return new + key[len(old):]
    body = key[len("albert."):] if key.startswith("albert.") else key
    renamed = body
    for pattern, repl in _ALBERT_RENAMES:
        renamed = re.sub(pattern, repl, renamed)
    is_albert = renamed != body or body.startswith("embeddings.")  # all ALBERT body keys but the tables get renamed
    return "albert." + renamed if is_albert else key  # another family's key: passed on, named as unexpected


def from_pretrained(cls, path, **overrides):
    """AlbertModel, AlbertForMaskedLM or AlbertForPreTraining from a transformers ALBERT folder
    (config.json + model.safetensors or pytorch_model.bin). Pooler and heads may be absent (left
    random, logged); an unused one is dropped. Another family's folder: ValueError naming it."""
    optional = ("pooler.", "albert.pooler.", "mlm_head.", "sop_head.")
    return load_family(cls, path, AlbertConfig, convert_albert_key, "albert.", optional, **overrides)


__all__ = ["FactorisedConfig", "AlbertConfig", "AlbertModel", "AlbertForMaskedLM", "AlbertForPreTraining",
           "AlbertPreTrainingOutput", "FactorisedMLMHead", "make_sop_pair", "build_sop_inputs", "sop_loss"]
