"""ELECTRA (Clark et al., 2020): pre-training text encoders as discriminators rather than
generators. Article §7.3 (the BERT family).

What changes from BERT, and nothing else (the encoder is BertModel's, blocks and forward pass):

1. Two encoders: a small generator G, an MLM (:class:`ElectraForMaskedLM`), and the discriminator
   D (:class:`ElectraForPreTraining`), the model kept for fine-tuning.
2. Replaced-token detection (:func:`replaced_token_detection_step`). G predicts the masked
   positions M; each is replaced by a sample from G; D labels every real token::

       x̂_i ~ p_G(x_i | x̃)  for i ∈ M          (torch.multinomial, seeded; no gradient through it)
       y_t = 1[x̂_t != x_t]                    (a sampled original token counts as original: 0)
       L = L_MLM(G) + λ · L_Disc(D),  λ = 50,  L_Disc = BCE(D(x̂)_t, y_t) averaged over real tokens

   D learns from every token, not the 15% that MLM scores.
3. Embedding sharing (:func:`share_embeddings`): G uses D's token, position and segment tables.
4. The factorised embedding (``minitransformer.factorised``) when embedding_size != hidden_size
   (electra-small: E = 128, H = 256): h_0 = Dropout(LN(E_tok[x] + E_seg[s] + E_pos[t])) W_p + b_p.
5. No pooler, no NSP. Discriminator head: logit_t = w · act(W h_t + b) + c, (B, T, H) -> (B, T).
   Generator head: ALBERT's factorised MLM head, always with "gelu".

electra-small discriminator ElectraForPreTraining: 13,549,057 parameters.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from minitransformer.layers import get_activation

from .albert import FactorisedConfig, FactorisedMLMHead, factorised_embedding
from .heads import IGNORE_INDEX, MaskedLMOutput, mlm_loss
from .hf import convert_hf_key, load_family
from .model import BertModel, init_bert_weights

RTD_WEIGHT = 50.0  # λ, the discriminator loss's weight in the paper


@dataclass
class ElectraConfig(FactorisedConfig):
    """ELECTRA's config (Hugging Face names), defaults electra-small-discriminator's, as transformers'
    ElectraConfig: vocab 30,522, E = 128, H = 256, 12 layers, 4 heads, FFN 1024."""

    model_type: ClassVar[str] = "electra"
    # transformers' sequence-summary head, not built here
    unused_keys: ClassVar[tuple[str, ...]] = ("summary_type", "summary_use_proj", "summary_activation",
                                              "summary_last_dropout")
    hidden_size: int = 256
    num_attention_heads: int = 4
    intermediate_size: int = 1024


class ElectraModel(BertModel):
    """BertModel (same blocks, same forward) with the factorised embedding, projecting only when
    E != H, and no pooler. hidden_states[0] is the projected embedding, (B, T, H)."""

    def __init__(self, config: ElectraConfig):
        super().__init__(config, add_pooling_layer=False)
        self.embeddings = factorised_embedding(config, project=None)
        self.embeddings.apply(lambda m: init_bert_weights(m, config.initializer_range))

    @classmethod
    def from_pretrained(cls, path, **kw):
        return from_pretrained(cls, path, **kw)


class ElectraForMaskedLM(nn.Module):
    """The generator: ElectraModel + FactorisedMLMHead ("gelu", decoder tied to the token table).
    (B, T) -> logits (B, T, V); loss = L_MLM over positions whose label is not -100."""

    def __init__(self, config: ElectraConfig):
        super().__init__()
        self.config = config
        self.electra = ElectraModel(config)
        self.mlm_head = FactorisedMLMHead(config, self.electra.embeddings.word_embeddings, activation="gelu")

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, labels=None,
                output_hidden_states: bool = False, output_attentions: bool = False) -> MaskedLMOutput:
        out = self.electra(input_ids, token_type_ids, attention_mask, output_hidden_states, output_attentions)
        logits = self.mlm_head(out.last_hidden_state)  # (B, T, V)
        loss = mlm_loss(logits, labels) if labels is not None else None
        return MaskedLMOutput(loss, logits, out.hidden_states, out.attentions)

    @classmethod
    def from_pretrained(cls, path, **kw):
        return from_pretrained(cls, path, **kw)


class ReplacedTokenHead(nn.Module):
    """logit_t = w · act(W h_t + b) + c: one score per token, > 0 meaning "replaced". (B, T, H) -> (B, T)."""

    def __init__(self, c: ElectraConfig):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)
        self.act = get_activation(c.hidden_act, c.use_fused)
        self.dense_prediction = nn.Linear(c.hidden_size, 1)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.dense_prediction(self.act(self.dense(hidden))).squeeze(-1)  # (B, T)


def rtd_loss(logits: torch.Tensor, replaced: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """L_Disc = -(1/|R|) Σ_{t∈R} [y_t log σ(z_t) + (1 - y_t) log(1 - σ(z_t))], R = the real tokens
    (attention_mask 1; every token without a mask). logits z (B, T), replaced y (B, T) in {0, 1}."""
    if replaced.shape != logits.shape:
        raise ValueError(f"replaced-token labels: expected shape {tuple(logits.shape)}, "
                         f"received {tuple(replaced.shape)}")
    real = torch.ones_like(logits, dtype=torch.bool) if attention_mask is None else attention_mask.bool()  # (B, T)
    return F.binary_cross_entropy_with_logits(logits[real], replaced[real].float())


@dataclass
class DiscriminatorOutput:
    """loss (None without labels); logits (B, T), one replaced-token score per token."""

    loss: torch.Tensor | None
    logits: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


class ElectraForPreTraining(nn.Module):
    """The discriminator: ElectraModel + :class:`ReplacedTokenHead`. (B, T) -> logits (B, T);
    ``labels`` (B, T), 1 = replaced, 0 = original; loss = :func:`rtd_loss` over real tokens.
    electra-small: 13,549,057 parameters."""

    def __init__(self, config: ElectraConfig):
        super().__init__()
        self.config = config
        self.electra = ElectraModel(config)
        self.rtd_head = ReplacedTokenHead(config)
        self.rtd_head.apply(lambda m: init_bert_weights(m, config.initializer_range))

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, labels=None,
                output_hidden_states: bool = False, output_attentions: bool = False) -> DiscriminatorOutput:
        out = self.electra(input_ids, token_type_ids, attention_mask, output_hidden_states, output_attentions)
        logits = self.rtd_head(out.last_hidden_state)  # (B, T)
        loss = rtd_loss(logits, labels, attention_mask) if labels is not None else None
        return DiscriminatorOutput(loss, logits, out.hidden_states, out.attentions)

    @classmethod
    def from_pretrained(cls, path, **kw):
        return from_pretrained(cls, path, **kw)


# ----------------------------------------------------------------------------- replaced-token detection

SHARED_TABLES = ("word_embeddings", "position_embeddings", "token_type_embeddings")


def share_embeddings(generator: ElectraForMaskedLM, discriminator: ElectraForPreTraining) -> None:
    """The generator's token, position and segment tables become the discriminator's (the same
    Parameters; the generator's decoder stays tied to the token table, now D's). Needs the same
    vocab_size, embedding_size, max_position_embeddings and type_vocab_size; ValueError otherwise."""
    g, d = generator.config, discriminator.config
    for name in ("vocab_size", "embedding_size", "max_position_embeddings", "type_vocab_size"):
        if getattr(g, name) != getattr(d, name):
            raise ValueError(f"share_embeddings: expected the same {name} in generator and discriminator, received "
                             f"{getattr(g, name)} and {getattr(d, name)}")
    for name in SHARED_TABLES:
        setattr(generator.electra.embeddings, name, getattr(discriminator.electra.embeddings, name))
    generator.mlm_head.decoder.weight = discriminator.electra.embeddings.word_embeddings.weight


def sample_replacements(logits: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """x̂_i ~ softmax(logits_i): one token per row, drawn with ``torch.multinomial`` from ``rng``
    (no gradient: ELECTRA does not back-propagate through the sampling). (N, V) -> (N,)."""
    probs = torch.softmax(logits.detach().float(), dim=-1)  # (N, V)
    return torch.multinomial(probs, 1, generator=rng).squeeze(-1)  # (N,)


def replaced_labels(corrupted: torch.Tensor, original: torch.Tensor,
                    attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """y_t = 1[x̂_t != x_t] at real tokens, 0 at padding. (B, T) int64 -> (B, T) float."""
    replaced = corrupted != original  # (B, T)
    if attention_mask is not None:
        replaced = replaced & attention_mask.bool()
    return replaced.float()


@dataclass
class RTDOutput:
    """loss = generator_loss + λ · discriminator_loss; corrupted_ids (B, T), G's samples in place;
    replaced (B, T), D's labels; generator_logits (B, T, V); discriminator_logits (B, T)."""

    loss: torch.Tensor
    generator_loss: torch.Tensor
    discriminator_loss: torch.Tensor
    corrupted_ids: torch.Tensor
    replaced: torch.Tensor
    generator_logits: torch.Tensor
    discriminator_logits: torch.Tensor


def replaced_token_detection_step(generator: ElectraForMaskedLM, discriminator: ElectraForPreTraining,
                                  input_ids: torch.Tensor, labels: torch.Tensor, rng: torch.Generator,
                                  token_type_ids=None, attention_mask=None, weight: float = RTD_WEIGHT) -> RTDOutput:
    """One ELECTRA pretraining step's loss. ``input_ids`` (B, T): the masked text x̃ (e.g. from
    ``minibert.pretraining.mlm_mask_tokens``); ``labels`` (B, T): the original token at the masked
    positions M, -100 elsewhere. G's MLM loss on M; x̂ = x̃ with M filled by G's samples; D scores
    x̂ against y = 1[x̂ != x]; loss = L_MLM + weight · L_Disc."""
    if labels.shape != input_ids.shape:
        raise ValueError(f"labels: expected shape {tuple(input_ids.shape)}, received {tuple(labels.shape)}")
    g = generator(input_ids, token_type_ids, attention_mask, labels=labels)
    masked = labels != IGNORE_INDEX  # (B, T)
    original = torch.where(masked, labels, input_ids)  # (B, T): x
    corrupted = input_ids.clone()
    corrupted[masked] = sample_replacements(g.logits[masked], rng)  # (B, T): x̂
    replaced = replaced_labels(corrupted, original, attention_mask)  # (B, T)
    d = discriminator(corrupted, token_type_ids, attention_mask, labels=replaced)
    return RTDOutput(g.loss + weight * d.loss, g.loss, d.loss, corrupted, replaced, g.logits, d.logits)


# ----------------------------------------------------------------------------- Hugging Face import

_ELECTRA_HEADS = {"generator_predictions.dense.": "mlm_head.dense.",
                  "generator_predictions.LayerNorm.": "mlm_head.norm.",
                  "generator_lm_head.bias": "mlm_head.bias",
                  "discriminator_predictions.": "rtd_head."}


def convert_electra_key(key: str) -> str | None:
    """A transformers ELECTRA key -> minibert's name (None for the generator's tied decoder weight):
    the body through BERT's renames under ``electra.``; embeddings_project -> embeddings.project."""
    if key == "generator_lm_head.weight" or key.endswith("position_ids"):
        return None
    for old, new in _ELECTRA_HEADS.items():
        if key.startswith(old):
            return new + key[len(old):]
    body = key[len("electra."):] if key.startswith("electra.") else key
    if body.startswith("embeddings_project."):
        return "electra.embeddings.project." + body[len("embeddings_project."):]
    if not body.startswith(("embeddings.", "encoder.")):
        return key  # another family's key (albert.*, bert.*): passed on, to be named as unexpected
    new = convert_hf_key(body)
    return "electra." + new[len("bert."):] if new.startswith("bert.") else key


def from_pretrained(cls, path, **overrides):
    """ElectraModel, ElectraForMaskedLM (a generator folder) or ElectraForPreTraining (a
    discriminator folder) from transformers' ELECTRA (config.json + model.safetensors or
    pytorch_model.bin). A missing head is left random (logged), an unused one dropped; another
    family's folder raises ValueError naming it, 'electra', and the missing and unexpected keys."""
    return load_family(cls, path, ElectraConfig, convert_electra_key, "electra.",
                       ("mlm_head.", "rtd_head."), **overrides)


__all__ = ["ElectraConfig", "ElectraModel", "ElectraForMaskedLM", "ElectraForPreTraining", "ReplacedTokenHead",
           "DiscriminatorOutput", "RTDOutput", "rtd_loss", "share_embeddings", "sample_replacements",
           "replaced_labels", "replaced_token_detection_step", "RTD_WEIGHT"]
