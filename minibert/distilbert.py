"""DistilBERT (Sanh et al., 2019): BERT with half the layers, trained by distillation. Article §7.3 (the BERT family).

What changes from BERT, and nothing else (the encoder blocks are minitransformer's EncoderBlock,
the MLM head is BERT's, not written twice):

1. Half the layers (6 for bert-base's 12), each initialised from one teacher layer out of two:
   the student's layer i starts as the teacher's layer 2i (:func:`student_from_teacher`).
2. No segment embeddings, no NSP, no pooler::

       E = Dropout(LayerNorm(E_token[x] + E_position[t]))                         (B, T, H)

   (``sinusoidal_pos_embds=True``: E_position is the fixed table of ``minitransformer.positions``.)
3. No dropout on the attention sublayer's output (the attention weights are still dropped)::

       x = LN(x + MHA(x, x, x));   x = LN(x + Dropout(FFN(x)))                   post-LN, eps 1e-12

4. Trained by distillation from a BERT teacher, with dynamic masking and MLM only
   (``minitransformer.distillation``): L = α_ce L_ce + α_mlm L_mlm + α_cos L_cos, α = (5, 2, 1),
   T = 2 (:func:`distillation_loss_fn`).

Hugging Face's names: dim = hidden_size, n_layers, n_heads, hidden_dim = intermediate_size,
activation = hidden_act. Its MLM head is BERT's under other names: vocab_transform =
``mlm_head.dense``, vocab_layer_norm = ``mlm_head.norm``, vocab_projector = the tied decoder + ``mlm_head.bias``.

distilbert-base-uncased DistilBertModel: 66,362,880 parameters.
"""
from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn as nn

from minitransformer.distillation import (DistillationWeights, check_temperature, cosine_hidden_loss, soft_target_loss,
                                          weighted_distillation_loss)
from minitransformer.layers import ACTIVATIONS, LayerNorm
from minitransformer.positions import LearnedPositionalEmbedding, sinusoidal_table
from minitransformer.transformer import Encoder

from .config import HF_BOOKKEEPING_KEYS, BertConfig
from .heads import IGNORE_INDEX, BertForPreTraining, BertMLMHead, MaskedLMOutput, mlm_loss
from .hf import load_family
from .model import BertOutput, check_bert_inputs, init_bert_weights

logger = logging.getLogger("minibert")

LAYER_NORM_EPS = 1e-12  # fixed in DistilBERT (not a config field), as BERT's default
# keys transformers writes into a DistilBERT config.json that change nothing here (the heads we do not build)
DISTILBERT_BOOKKEEPING = frozenset({"qa_dropout", "seq_classif_dropout", "architectures", "id2label"})


@dataclass
class DistilBertConfig:
    """DistilBERT hyper-parameters (Hugging Face names). Defaults: distilbert-base-uncased.
    ``tie_weights_`` (the old name of ``tie_word_embeddings``) must be True: the MLM decoder is the
    word-embedding table. ``use_sdpa`` / ``use_fused``: minibert's kernel choices, as in BertConfig."""

    model_type: ClassVar[str] = "distilbert"

    vocab_size: int = 30522
    dim: int = 768
    n_layers: int = 6
    n_heads: int = 12
    hidden_dim: int = 3072
    dropout: float = 0.1
    attention_dropout: float = 0.1
    activation: str = "gelu"
    max_position_embeddings: int = 512
    sinusoidal_pos_embds: bool = False
    initializer_range: float = 0.02
    tie_weights_: bool = True
    pad_token_id: int = 0
    use_sdpa: bool = True
    use_fused: bool = True
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # other keys, kept for to_dict

    def __post_init__(self) -> None:
        for name in ("vocab_size", "dim", "n_layers", "n_heads", "hidden_dim", "max_position_embeddings"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"DistilBertConfig.{name}: expected a positive integer, received {value!r}")
        if self.dim % self.n_heads:
            raise ValueError(f"DistilBertConfig: expected dim divisible by n_heads, received dim={self.dim}, "
                             f"n_heads={self.n_heads}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"DistilBertConfig.activation: expected one of {sorted(ACTIVATIONS)}, received {self.activation!r}")
        for name in ("dropout", "attention_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"DistilBertConfig.{name}: expected a probability in [0, 1), received {getattr(self, name)}")
        if self.tie_weights_ is not True:
            raise ValueError(f"DistilBertConfig.tie_weights_: expected True (the MLM decoder is the word-embedding "
                             f"table), received {self.tie_weights_!r}")
        if self.sinusoidal_pos_embds and self.dim % 2:
            raise ValueError(f"DistilBertConfig: sinusoidal_pos_embds needs an even dim, received dim={self.dim}")
        try:
            self.to_bert_config()  # BERT's checks of the rest: pad_token_id in range, initializer_range > 0
        except ValueError as e:
            raise ValueError(f"DistilBertConfig: {e}") from None

    def to_bert_config(self, **changes) -> BertConfig:
        """The same sizes under BERT's names (transformers' attribute_map: hidden_size = dim, ...), one
        segment, LayerNorm eps 1e-12: what BERT's MLM head and input checks read."""
        return BertConfig(vocab_size=self.vocab_size, hidden_size=self.dim, num_hidden_layers=self.n_layers,
                          num_attention_heads=self.n_heads, intermediate_size=self.hidden_dim, hidden_act=self.activation,
                          hidden_dropout_prob=self.dropout, attention_probs_dropout_prob=self.attention_dropout,
                          max_position_embeddings=self.max_position_embeddings, type_vocab_size=1,
                          initializer_range=self.initializer_range, layer_norm_eps=LAYER_NORM_EPS,
                          pad_token_id=self.pad_token_id, use_sdpa=self.use_sdpa, use_fused=self.use_fused, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The config.json dict: every field (``extra`` merged back in) plus ``model_type``."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        return {**self.extra, **d, "model_type": "distilbert"}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DistilBertConfig":
        """From a config.json dict (ours or transformers'); ValueError for another model_type or untied
        embeddings. Unknown keys go to ``extra``, transformers' bookkeeping silently, others with a note."""
        if not isinstance(d, dict):
            raise ValueError(f"DistilBertConfig.from_dict: expected a dict, received {type(d).__name__}")
        if d.get("model_type", "distilbert") != "distilbert":
            raise ValueError(f"model_type: expected 'distilbert', received {d['model_type']!r}")
        if d.get("tie_word_embeddings", True) is not True:
            raise ValueError(f"tie_word_embeddings: expected true (the MLM decoder is the word-embedding table), "
                             f"received {d['tie_word_embeddings']!r}")
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        extra = {k: v for k, v in d.items() if k not in names and k != "model_type"}
        unknown = sorted(k for k in extra if k not in HF_BOOKKEEPING_KEYS | DISTILBERT_BOOKKEEPING)
        if unknown:
            logger.warning("DistilBertConfig: ignoring unknown config keys %s", ", ".join(unknown))
        return cls(**{k: v for k, v in d.items() if k in names}, extra=extra)


# ----------------------------------------------------------------------------- the model


class DistilBertEmbeddings(nn.Module):
    """E = Dropout(LayerNorm(E_token[x] + E_position[t])): BERT's embeddings without the segment table.
    ids (B, T) -> (B, T, H)."""

    def __init__(self, c: DistilBertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab_size, c.dim, padding_idx=c.pad_token_id)
        self.position_embeddings = LearnedPositionalEmbedding(c.max_position_embeddings, c.dim)
        self.norm = LayerNorm(c.dim, eps=LAYER_NORM_EPS, fused=c.use_fused)
        self.dropout = nn.Dropout(c.dropout)

    def use_sinusoidal_positions(self) -> None:
        """Fix the position table to PE[t, 2i] = sin(t / 10000^(2i/d)), PE[t, 2i+1] = cos(t / 10000^(2i/d))
        (Vaswani et al.; ``minitransformer.positions.sinusoidal_table``), not trained."""
        table = self.position_embeddings.weight
        with torch.no_grad():
            table.copy_(sinusoidal_table(*table.shape).to(table.device))
        table.requires_grad_(False)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        x = self.word_embeddings(input_ids)  # (B, T, H)
        x = x + self.position_embeddings(input_ids.size(1))  # (T, H) broadcast over B
        return self.dropout(self.norm(x))  # (B, T, H)


class DistilBertModel(nn.Module):
    """Embeddings -> n_layers post-LN EncoderBlocks (no pooler). distilbert-base: 66,362,880 parameters."""

    def __init__(self, config: DistilBertConfig):
        super().__init__()
        c = self.config = config
        self.embeddings = DistilBertEmbeddings(c)
        self.transformer = Encoder(
            c.n_layers, c.dim, c.n_heads, c.hidden_dim, c.dropout, activation=c.activation, norm_first=False,
            final_norm=False, eps=LAYER_NORM_EPS, attn_dropout=c.attention_dropout, use_sdpa=c.use_sdpa, fused=c.use_fused,
        )
        for block in self.transformer.layers:
            block.dropout1 = nn.Identity()  # DistilBERT: x = LN(x + MHA(x)), no dropout on the attention output
        self.input_config = c.to_bert_config()  # what BERT's input checks read: sizes, one segment
        self.apply(lambda m: init_bert_weights(m, c.initializer_range))
        if c.sinusoidal_pos_embds:
            self.embeddings.use_sinusoidal_positions()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                output_hidden_states: bool = False, output_attentions: bool = False) -> BertOutput:
        """input_ids, attention_mask (1 = real, 0 = padding): (B, T). No token_type_ids: one segment.
        Returns BertOutput with pooler_output None; hidden_states: n_layers + 1 tensors (B, T, H)."""
        _, attention_mask = check_bert_inputs(self.input_config, input_ids, None, attention_mask)
        x = self.embeddings(input_ids)  # (B, T, H)
        hidden, attentions = [x], []
        for block in self.transformer.layers:
            x, w = block(x, attention_mask, need_weights=output_attentions)  # (B, T, H), (B, nh, T, T)
            hidden.append(x)
            attentions.append(w)
        return BertOutput(last_hidden_state=x, hidden_states=tuple(hidden) if output_hidden_states else None,
                          attentions=tuple(attentions) if output_attentions else None)

    @classmethod
    def from_pretrained(cls, path, **kw):
        return from_pretrained(cls, path, **kw)


class DistilBertForMaskedLM(nn.Module):
    """DistilBertModel + BERT's MLM head (tied decoder): logits = LN(act(h W + b)) Eᵀ + b_V.
    (B, T) -> (B, T, V); loss = L_MLM over positions whose label is not -100."""

    def __init__(self, config: DistilBertConfig):
        super().__init__()
        self.config = config
        self.distilbert = DistilBertModel(config)
        self.mlm_head = BertMLMHead(config.to_bert_config(), self.distilbert.embeddings.word_embeddings)
        for m in (self.mlm_head.dense, self.mlm_head.norm):
            init_bert_weights(m, config.initializer_range)

    def forward(self, input_ids, attention_mask=None, labels=None, output_hidden_states: bool = False,
                output_attentions: bool = False) -> MaskedLMOutput:
        out = self.distilbert(input_ids, attention_mask, output_hidden_states, output_attentions)
        logits = self.mlm_head(out.last_hidden_state)  # (B, T, V)
        loss = mlm_loss(logits, labels) if labels is not None else None
        return MaskedLMOutput(loss, logits, out.hidden_states, out.attentions)

    @classmethod
    def from_pretrained(cls, path, **kw):
        return from_pretrained(cls, path, **kw)


# ----------------------------------------------------------------------------- Hugging Face import

_RENAMES = [  # (regex on a transformers DistilBERT key without "distilbert.", minibert's name)
    (r"^embeddings\.LayerNorm\.", "embeddings.norm."),
    (r"^transformer\.layer\.(\d+)\.attention\.(q|k|v|out)_lin\.", r"transformer.layers.\1.self_attn.\2_proj."),
    (r"^transformer\.layer\.(\d+)\.sa_layer_norm\.", r"transformer.layers.\1.norm1."),
    (r"^transformer\.layer\.(\d+)\.ffn\.lin(1|2)\.", r"transformer.layers.\1.ff.fc\2."),
    (r"^transformer\.layer\.(\d+)\.output_layer_norm\.", r"transformer.layers.\1.norm2."),
    (r"^vocab_transform\.", "mlm_head.dense."),
    (r"^vocab_layer_norm\.", "mlm_head.norm."),
    (r"^vocab_projector\.bias$", "mlm_head.bias"),
]


def convert_distilbert_key(key: str) -> str | None:
    """A transformers DistilBERT key -> minibert's full name (None for the tied decoder and the
    position_ids buffer): the body under ``distilbert.``, the MLM head as ``mlm_head.``. minibert's own
    names (a Trainer checkpoint saved with ``model_config=config.to_dict()``) pass through."""
    if key in ("vocab_projector.weight", "mlm_head.decoder.weight") or key.endswith("position_ids"):
        return None
    if key.startswith("vocab_"):
        body, prefix = key, ""
    elif key.startswith("distilbert."):
        body, prefix = key[len("distilbert."):], "distilbert."
    elif key.startswith(("embeddings.", "transformer.")):
        body, prefix = key, "distilbert."  # a DistilBertModel saved without its prefix
    else:
        return key  # another family's key (bert.*, cls.*): passed on, to be named as unexpected
    for pattern, repl in _RENAMES:
        body = re.sub(pattern, repl, body)
    return prefix + body


def from_pretrained(cls, path, **overrides):
    """Build ``cls`` (DistilBertModel or DistilBertForMaskedLM) from a transformers DistilBERT folder
    (config.json + model.safetensors or pytorch_model.bin). The MLM head may be absent (left random,
    logged); an unused one is dropped. A checkpoint of another family raises ValueError naming the
    family found, 'distilbert', and the missing and unexpected keys (``minibert.hf.load_family``)."""
    return load_family(cls, path, DistilBertConfig, convert_distilbert_key, "distilbert.", ("mlm_head.",), **overrides)


# ----------------------------------------------------------------------------- distillation from a minibert teacher


def every_other_layer(n_teacher: int, n_student: int) -> list[int]:
    """[0, 2, 4, …, 2(n_student − 1)]: the teacher layers the student's layers start from, "one layer out of
    two" (Sanh et al. §3; their released script took 0, 2, 4, 7, 9, 11 of bert-base's 12)."""
    if not 1 <= n_student <= (n_teacher + 1) // 2:
        raise ValueError(f"n_layers: expected 1 <= n_layers <= {(n_teacher + 1) // 2} (every other layer of the "
                         f"teacher's {n_teacher}), received {n_student}")
    return list(range(0, 2 * n_student, 2))


def student_config(teacher: BertConfig, n_layers: int) -> DistilBertConfig:
    """The teacher's sizes, ``n_layers`` layers, DistilBERT's names; ValueError for a teacher whose
    LayerNorm eps is not DistilBERT's fixed 1e-12."""
    if teacher.layer_norm_eps != LAYER_NORM_EPS:
        raise ValueError(f"teacher: expected layer_norm_eps={LAYER_NORM_EPS} (DistilBERT's, fixed), "
                         f"received {teacher.layer_norm_eps}")
    return DistilBertConfig(vocab_size=teacher.vocab_size, dim=teacher.hidden_size, n_layers=n_layers,
                            n_heads=teacher.num_attention_heads, hidden_dim=teacher.intermediate_size,
                            dropout=teacher.hidden_dropout_prob, attention_dropout=teacher.attention_probs_dropout_prob,
                            activation=teacher.hidden_act, max_position_embeddings=teacher.max_position_embeddings,
                            initializer_range=teacher.initializer_range, pad_token_id=teacher.pad_token_id,
                            use_sdpa=teacher.use_sdpa, use_fused=teacher.use_fused)


@torch.no_grad()
def student_from_teacher(teacher: BertForPreTraining, n_layers: int) -> DistilBertForMaskedLM:
    """A DistilBERT student initialised from a minibert teacher: word and position embeddings and
    their LayerNorm (the segment table dropped), layer i = the teacher's layer 2i, the MLM head
    (the NSP head and the pooler dropped). Article §7.3."""
    if not isinstance(teacher, BertForPreTraining):
        raise ValueError(f"teacher: expected a minibert BertForPreTraining, received {type(teacher).__name__}")
    layers = every_other_layer(teacher.config.num_hidden_layers, n_layers)
    student = DistilBertForMaskedLM(student_config(teacher.config, n_layers))
    student.to(teacher.bert.embeddings.word_embeddings.weight.device)
    t_emb, s_emb = teacher.bert.embeddings, student.distilbert.embeddings
    for name in ("word_embeddings", "position_embeddings", "norm"):
        getattr(s_emb, name).load_state_dict(getattr(t_emb, name).state_dict())
    for i, j in enumerate(layers):
        student.distilbert.transformer.layers[i].load_state_dict(teacher.bert.encoder.layers[j].state_dict())
    student.mlm_head.load_state_dict(teacher.mlm_head.state_dict())
    return student


def distillation_loss_fn(teacher: BertForPreTraining, temperature: float = 2.0,
                         weights: DistillationWeights | None = None, ce_positions: str = "real"):
    """Trainer's ``loss_fn(student, batch) -> (loss, metrics)`` for distilling ``teacher`` into a
    DistilBertForMaskedLM on minibert's pretraining batches (input_ids, token_type_ids,
    attention_mask, labels (B, T); next_sentence_label is not used)::

        L = α_ce · L_ce(s, t; T) + α_mlm · L_mlm(s, labels) + α_cos · L_cos(h_s, h_t)

    L_ce over every real token (``ce_positions="real"``, DistilBERT's default) or the masked ones
    (``"masked"``); L_cos on the last hidden states of the real tokens. The teacher runs in eval mode
    under torch.no_grad, reading the batch as it was pretrained (segments too); the student, which
    has no segment table, reads input_ids and attention_mask. Article §7.3."""
    temperature = check_temperature(temperature)
    weights = weights or DistillationWeights()
    if ce_positions not in ("real", "masked"):
        raise ValueError(f"ce_positions: expected 'real' or 'masked', received {ce_positions!r}")

    def loss_fn(student, batch):
        ids, labels = batch["input_ids"], batch["labels"]  # (B, T)
        mask = batch.get("attention_mask")
        mask = torch.ones_like(ids) if mask is None else mask  # (B, T)
        teacher.eval()
        with torch.no_grad():
            t = teacher(ids, batch.get("token_type_ids"), mask, output_hidden_states=True)
        s = student(input_ids=ids, attention_mask=mask, labels=labels, output_hidden_states=True)
        real = mask.bool()  # (B, T)
        selected = real if ce_positions == "real" else labels != IGNORE_INDEX  # (B, T)
        l_ce = soft_target_loss(s.logits, t.mlm_logits, temperature, selected)
        l_cos = cosine_hidden_loss(s.hidden_states[-1], t.hidden_states[-1], real)
        loss = weighted_distillation_loss(l_ce, s.loss, l_cos, weights)
        return loss, {"ce_loss": l_ce.item(), "mlm_loss": s.loss.item(), "cos_loss": l_cos.item()}

    return loss_fn


__all__ = ["DistilBertConfig", "DistilBertModel", "DistilBertForMaskedLM", "DistilBertEmbeddings",
           "student_from_teacher", "distillation_loss_fn", "every_other_layer"]
