"""RoBERTa (Liu et al., 2019): BERT's encoder, trained differently. Article §7.3 (the BERT family).

What changes from BERT, and nothing else (the encoder blocks are minibert's, not written twice):

1. No NSP: one objective, MLM; no NSP head. The pooler stays in RobertaModel (as transformers has it).
2. Dynamic masking: a fresh 15% mask each time a batch is drawn (:func:`dynamic_mlm_batch`, BERT's
   80/10/10 rule from ``minibert.pretraining``), not one mask fixed at preprocessing.
3. Byte-level BPE (GPT-2's, minigpt's tokenizer): 50,265 tokens, <s> = 0, <pad> = 1, </s> = 2.
4. Positions offset by padding_idx + 1 (fairseq's make_positions)::

       m_t = padding_idx + Σ_{u<=t} 1[x_u != pad]   for a real token,   m_t = padding_idx for padding  (B, T)

   so the table has max_position_embeddings = 512 + 2 = 514 rows and the first real token sits at row 2.
5. One segment: type_vocab_size = 1 (the table is kept, all zeros in use); LayerNorm eps 1e-5.

roberta-base RobertaModel: 124,645,632 parameters.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from minitransformer.checkpoint import read_json_object
from minitransformer.layers import LayerNorm

from .config import BertConfig
from .heads import BertMLMHead, MaskedLMOutput, mlm_loss
from .hf import convert_hf_key, family_error, load_reporting, read_weights
from .model import BertModel, init_bert_weights
from .pretraining import mlm_mask_tokens

ROBERTA_SPECIALS = {"bos": "<s>", "pad": "<pad>", "eos": "</s>", "unk": "<unk>", "mask": "<mask>"}


@dataclass
class RobertaConfig(BertConfig):
    """BertConfig with roberta-base's defaults (Hugging Face names): vocab 50,265, 514 positions,
    one segment, LayerNorm eps 1e-5, <pad> = 1."""

    vocab_size: int = 50265
    max_position_embeddings: int = 514
    type_vocab_size: int = 1
    layer_norm_eps: float = 1e-5
    pad_token_id: int = 1

    def to_dict(self) -> dict:
        return {**super().to_dict(), "model_type": "roberta"}

    @property
    def max_length(self) -> int:
        """The longest input: max_position_embeddings - padding_idx - 1 rows are left for real tokens (512)."""
        return self.max_position_embeddings - self.pad_token_id - 1


def roberta_position_ids(input_ids: torch.Tensor, padding_idx: int) -> torch.Tensor:
    """m = cumsum(x != pad) · (x != pad) + padding_idx: real tokens count from padding_idx + 1,
    padding stays at padding_idx (as transformers' create_position_ids_from_input_ids). (B, T) -> (B, T)."""
    real = input_ids.ne(padding_idx).long()  # (B, T)
    return torch.cumsum(real, dim=1) * real + padding_idx  # (B, T)


class RobertaEmbeddings(nn.Module):
    """E = Dropout(LayerNorm(E_token[x] + E_segment[s] + E_position[m(x)])), m from
    :func:`roberta_position_ids`. ids (B, T) -> (B, T, H). BERT's names, so BERT's weight renames apply."""

    def __init__(self, c: RobertaConfig):
        super().__init__()
        self.padding_idx = c.pad_token_id
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size, padding_idx=c.pad_token_id)
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.hidden_size, padding_idx=c.pad_token_id)
        self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.norm = LayerNorm(c.hidden_size, eps=c.layer_norm_eps, fused=c.use_fused)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        positions = roberta_position_ids(input_ids, self.padding_idx)  # (B, T)
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)  # (B, T, H)
        x = x + self.position_embeddings(positions)  # (B, T, H)
        return self.dropout(self.norm(x))  # (B, T, H)


class RobertaModel(BertModel):
    """minibert's BertModel (same encoder blocks, same pooler) with :class:`RobertaEmbeddings`."""

    def __init__(self, config: RobertaConfig, add_pooling_layer: bool = True):
        super().__init__(config, add_pooling_layer)
        self.embeddings = RobertaEmbeddings(config)
        self.embeddings.apply(lambda m: init_bert_weights(m, config.initializer_range))

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, output_hidden_states=False,
                output_attentions=False, last_layer_positions=None):
        n = self.config.max_length
        if input_ids.dim() == 2 and input_ids.size(1) > n:
            raise ValueError(f"input_ids: expected length <= {n} (max_position_embeddings - padding_idx - 1), "
                             f"received {input_ids.size(1)}")
        return super().forward(input_ids, token_type_ids, attention_mask, output_hidden_states, output_attentions,
                               last_layer_positions)

    @classmethod
    def from_pretrained(cls, path, **kw):
        return from_pretrained(cls, path, **kw)


class RobertaForMaskedLM(nn.Module):
    """RobertaModel (no pooler) + BERT's MLM head (tied decoder): logits = LN(gelu(h W + b)) Eᵀ + b_V.
    (B, T) -> (B, T, V); loss = L_MLM over positions whose label is not -100. No NSP."""

    def __init__(self, config: RobertaConfig):
        super().__init__()
        self.config = config
        self.roberta = RobertaModel(config, add_pooling_layer=False)
        self.lm_head = BertMLMHead(config, self.roberta.embeddings.word_embeddings)
        for m in (self.lm_head.dense, self.lm_head.norm):
            init_bert_weights(m, config.initializer_range)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, labels=None,
                output_hidden_states: bool = False, output_attentions: bool = False) -> MaskedLMOutput:
        out = self.roberta(input_ids, token_type_ids, attention_mask, output_hidden_states, output_attentions)
        logits = self.lm_head(out.last_hidden_state)  # (B, T, V)
        loss = mlm_loss(logits, labels) if labels is not None else None
        return MaskedLMOutput(loss, logits, out.hidden_states, out.attentions)

    @classmethod
    def from_pretrained(cls, path, **kw):
        return from_pretrained(cls, path, **kw)


# ----------------------------------------------------------------------------- dynamic masking


def dynamic_mlm_batch(input_ids: torch.Tensor, special_ids, mask_id: int, vocab_size: int,
                      generator: torch.Generator, p: float = 0.15) -> tuple[torch.Tensor, torch.Tensor]:
    """RoBERTa's dynamic masking: BERT's 80/10/10 rule (``mlm_mask_tokens``) drawn afresh each time
    a batch is made, so every epoch sees the sentence under a new mask. Special and padding tokens
    are never selected. input_ids (B, T) -> (inputs (B, T), labels (B, T) with -100 where not selected)."""
    special = torch.tensor(sorted({int(i) for i in special_ids} | {int(mask_id)}), dtype=input_ids.dtype)
    special_mask = torch.isin(input_ids, special)  # (B, T)
    return mlm_mask_tokens(input_ids, special_mask, vocab_size, special.tolist(), mask_id, generator, p=p)


# ----------------------------------------------------------------------------- byte-level BPE


def roberta_special_ids(tokenizer) -> dict[str, int]:
    """The ids of <s>, <pad>, </s>, <unk>, <mask> in a byte-level BPE vocabulary (minigpt's GPT2Tokenizer,
    read from a RoBERTa folder's vocab.json + merges.txt). ValueError naming a missing one."""
    missing = [t for t in ROBERTA_SPECIALS.values() if t not in tokenizer.encoder]
    if missing:
        raise ValueError(f"tokenizer: expected RoBERTa's special tokens {list(ROBERTA_SPECIALS.values())}, missing {missing}")
    return {role: tokenizer.encoder[tok] for role, tok in ROBERTA_SPECIALS.items()}


def encode_roberta(tokenizer, text: str) -> list[int]:
    """<s> BPE(text) </s>: RoBERTa's single-sequence layout over minigpt's byte-level BPE."""
    ids = roberta_special_ids(tokenizer)
    return [ids["bos"], *tokenizer.encode(text), ids["eos"]]


def load_bpe_tokenizer(path):
    """minigpt's byte-level BPE (vocab.json + merges.txt) from a RoBERTa folder."""
    from minigpt.bpe import GPT2Tokenizer  # the BPE is minigpt's; imported only when asked for

    return GPT2Tokenizer.from_dir(path)


# ----------------------------------------------------------------------------- Hugging Face import


def convert_roberta_key(key: str) -> str | None:
    """A transformers RoBERTa key -> minibert's name (None for the tied decoder, not a weight of its own):
    the body through BERT's renames under ``roberta.``; lm_head.layer_norm -> lm_head.norm."""
    if key in ("lm_head.decoder.weight", "lm_head.decoder.bias") or key.endswith("position_ids"):
        return None
    if key.startswith("lm_head."):
        return key.replace("lm_head.layer_norm.", "lm_head.norm.")
    if key.startswith("roberta."):
        body = key[len("roberta."):]
    elif key.startswith(("embeddings.", "encoder.", "pooler.")):
        body = key  # a RobertaModel saved without its prefix
    else:
        return key  # another family's key (bert.*, transformer.*): passed on, to be named as unexpected
    new = convert_hf_key(body)
    return "roberta." + new[len("bert."):] if new.startswith("bert.") else key


def read_roberta_config(path: Path) -> tuple[dict, str]:
    """(config.json dict, its model_type)."""
    d = read_json_object(path / "config.json", f"{path}: no config.json -- not a RoBERTa checkpoint folder")
    return d, str(d.get("model_type"))


def config_for(d: dict, path: Path) -> RobertaConfig:
    """RobertaConfig from a config dict of any family (model_type ignored); roberta-base's sizes when
    the dict lacks BERT-style fields (say GPT-2's), just to name the keys a RoBERTa would need."""
    try:
        return RobertaConfig.from_dict({k: v for k, v in d.items() if k not in ("model_type",)})
    except (ValueError, TypeError):
        return RobertaConfig(num_hidden_layers=int(d.get("num_hidden_layers", d.get("n_layer", 12)) or 12))


def from_pretrained(cls, path, **overrides):
    """Build ``cls`` (RobertaModel or RobertaForMaskedLM) from a transformers RoBERTa folder
    (config.json + model.safetensors or pytorch_model.bin). The pooler or the LM head may be absent
    (left random, logged); an unused head is dropped. A checkpoint of another family raises
    ValueError naming the family found, 'roberta', and the missing and unexpected keys."""
    path = Path(path)
    d, found = read_roberta_config(path)
    config = config_for({**d, **overrides}, path)
    sd = {}
    for key, value in read_weights(path).items():
        new = convert_roberta_key(key)
        if new is not None:
            sd[new] = value
    bare = cls is RobertaModel
    if bare:
        sd = {k[len("roberta."):] if k.startswith("roberta.") else k: v for k, v in sd.items()}
    with torch.device("meta"):
        expected = set(cls(config).state_dict()) - {"lm_head.decoder.weight"}
    optional = ("pooler.", "roberta.pooler.", "lm_head.")
    missing = sorted(k for k in expected if k not in sd)
    unexpected = sorted(k for k in sd if k not in expected)
    hard = [k for k in missing + unexpected if not k.startswith(optional)]
    if found != "roberta" or hard:
        raise family_error(path, found, "roberta", cls, missing, unexpected)
    return load_reporting(cls(config), {k: v for k, v in sd.items() if k in expected}, path, missing, unexpected)


__all__ = ["RobertaConfig", "RobertaModel", "RobertaForMaskedLM", "RobertaEmbeddings", "roberta_position_ids",
           "dynamic_mlm_batch", "encode_roberta", "roberta_special_ids", "load_bpe_tokenizer"]
