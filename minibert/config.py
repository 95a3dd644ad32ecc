"""BertConfig: the sizes of a BERT model, with Hugging Face's field names so that a
``config.json`` written by ``transformers`` maps one to one (Article §3.2.2 模型选择).

bert-base is the default: 12 layers, hidden 768, 12 heads, feed-forward 3072, vocabulary 30,522,
512 positions — 109,482,240 parameters in BertModel (see ``count_bert_parameters``).
"""
from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field
from typing import Any

from minitransformer.layers import ACTIVATIONS

logger = logging.getLogger("minibert")

# Keys that transformers writes into config.json and that change nothing in the computation here.
HF_BOOKKEEPING_KEYS = frozenset({
    "model_type", "transformers_version", "torch_dtype", "dtype", "use_cache", "_name_or_path", "gradient_checkpointing",
    "directionality", "pooler_fc_size", "pooler_num_attention_heads", "pooler_num_fc_layers", "pooler_size_per_head",
    "pooler_type", "output_past", "label2id", "problem_type", "tokenizer_class", "bos_token_id", "eos_token_id",
    "return_dict", "output_hidden_states", "output_attentions", "chunk_size_feed_forward", "tie_word_embeddings",
    "is_decoder", "add_cross_attention", "position_embedding_type", "finetuning_task",
})


@dataclass
class BertConfig:
    """BERT hyper-parameters (Hugging Face names). Defaults: bert-base-uncased.

    ``id2label`` (int -> label name) sizes the classification heads; ``architectures`` names the
    head a checkpoint carries. minibert only: ``use_sdpa`` runs attention through PyTorch's fused
    kernel (the hand-written path is used whenever attention weights are asked for) and
    ``use_fused`` LayerNorm and GELU; both compute the same functions as the hand-written code.
    """

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    classifier_dropout: float | None = None  # None: use hidden_dropout_prob
    id2label: dict[int, str] | None = None
    architectures: list[str] | None = None
    use_sdpa: bool = True
    use_fused: bool = True  # LayerNorm and GELU through PyTorch's kernels (the same functions, faster)
    task: str | None = None  # minibert fine-tuning task: "classify" or "ner"
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # other keys, kept for to_dict

    def __post_init__(self) -> None:
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                     "max_position_embeddings", "type_vocab_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"BertConfig.{name}: expected a positive integer, received {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"BertConfig: expected hidden_size divisible by num_attention_heads, received "
                f"hidden_size={self.hidden_size}, num_attention_heads={self.num_attention_heads}"
            )
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(f"BertConfig.hidden_act: expected one of {sorted(ACTIVATIONS)}, received {self.hidden_act!r}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"BertConfig.{name}: expected a probability in [0, 1), received {getattr(self, name)}")
        for name in ("initializer_range", "layer_norm_eps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"BertConfig.{name}: expected a finite number, received {value!r}")
            if not value > 0:
                raise ValueError(f"BertConfig.{name}: expected > 0, received {value}")
        if not 0 <= self.pad_token_id < self.vocab_size:
            raise ValueError(f"BertConfig.pad_token_id: expected an id in [0, {self.vocab_size}), received {self.pad_token_id}")
        if self.id2label is not None:
            self.id2label = {int(k): str(v) for k, v in self.id2label.items()}
            if sorted(self.id2label) != list(range(len(self.id2label))):
                raise ValueError(f"BertConfig.id2label: expected keys 0..n-1, received {sorted(self.id2label)}")

    @property
    def num_labels(self) -> int:
        """Number of classes of a classification head (2 when no labels are set, as in transformers)."""
        return len(self.id2label) if self.id2label else 2

    @property
    def head_dim(self) -> int:
        """d_k = hidden_size / num_attention_heads (64 in bert-base)."""
        return self.hidden_size // self.num_attention_heads

    def to_dict(self) -> dict[str, Any]:
        """The config.json dict: every field (``extra`` keys merged back in), plus ``model_type``."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        if d["id2label"] is not None:
            d["id2label"] = {str(k): v for k, v in d["id2label"].items()}
            d["label2id"] = {v: k for k, v in self.id2label.items()}
        return {**self.extra, **d, "model_type": "bert"}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "BertConfig":
        """Build from a config.json dict (ours or transformers'). Unknown keys are ignored and kept in
        ``extra``: transformers' bookkeeping keys silently, anything else with a logged note.
        A relative position_embedding_type or a decoder config is refused (not BERT's encoder)."""
        if not isinstance(d, dict):
            raise ValueError(f"BertConfig.from_dict: expected a dict, received {type(d).__name__}")
        if d.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(
                f"position_embedding_type: expected 'absolute' (BERT's learned table), received {d['position_embedding_type']!r}"
            )
        if d.get("is_decoder") or d.get("add_cross_attention"):
            raise ValueError("config: expected an encoder-only BERT, received is_decoder/add_cross_attention = true")
        if d.get("model_type", "bert") != "bert":
            raise ValueError(f"model_type: expected 'bert', received {d['model_type']!r}")
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {k: v for k, v in d.items() if k in names}
        extra = {k: v for k, v in d.items() if k not in names}
        unknown = sorted(k for k in extra if k not in HF_BOOKKEEPING_KEYS)
        if unknown:
            logger.warning("BertConfig: ignoring unknown config keys %s", ", ".join(unknown))
        extra.pop("model_type", None)
        extra.pop("label2id", None)
        return cls(**known, extra=extra)


def count_bert_parameters(c: BertConfig, pooler: bool = True) -> int:
    """Closed-form parameter count of BertModel (Article §3.2.2 模型选择):

        embeddings  (V + P + S) H + 2H                      word, position, segment tables + LayerNorm
        per layer   4(H² + H) + 2 H F + F + H + 4H           Q, K, V, O projections; FFN; two LayerNorms
        pooler      H² + H

    H = hidden_size, F = intermediate_size, V/P/S = vocab/position/segment sizes. bert-base: 109,482,240.
    """
    h, f = c.hidden_size, c.intermediate_size
    emb = (c.vocab_size + c.max_position_embeddings + c.type_vocab_size) * h + 2 * h
    layer = 4 * (h * h + h) + (h * f + f) + (f * h + h) + 4 * h
    return emb + c.num_hidden_layers * layer + (h * h + h if pooler else 0)


def check_max_len(value, name: str = "max_len") -> int:
    """``value`` when it is an integer >= 2 (``[CLS] text [SEP]`` needs two positions for the
    specials); otherwise ValueError naming ``name`` (``max_len``, ``--max-len``, a config.json key)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 2:
        raise ValueError(f"{name}: expected an integer >= 2 ([CLS] and [SEP]), received {value!r}")
    return value
