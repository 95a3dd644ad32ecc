"""GPT as a classifier: the last real token's final hidden state, one linear layer.

GPT-1 (Radford et al. 2018, §3.2 "Supervised fine-tuning") fine-tunes a causal language model for
classification by reading the final hidden state h_L at the *last* token of each input and adding a
linear layer: P(y | x_1..x_m) = softmax(h_L^m W_y). A causal model's last token is the only one that
has attended to the whole row. Article §3.2.4 微调; §3.3 GPT.

transformers' ``GPT2ForSequenceClassification`` computes the same (``score``: Linear(C, num_labels,
bias=False), applied at the rightmost non-padding token); ``from_pretrained`` loads its folders and
tests/test_gpt_classify.py checks the logits equal within 1e-5.

Rows are right-padded (as :func:`minibert.finetune.collate` pads them): the causal mask already keeps
every real token from seeing the padding after it, so no attention mask is needed inside the model.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from minitransformer.checkpoint import load_model_weights
from minitransformer.checks import check_rank

from .config import GPTConfig
from .hf import HF_CONFIG, config_from_hf, read_hf_config, read_hf_weights, state_dict_from_hf
from .model import GPT


@dataclass
class GPTClassifierConfig(GPTConfig):
    """A :class:`GPTConfig` plus the classifier's fields (Hugging Face's names)."""

    num_labels: int = 2  # classes (num_labels)
    pad_token_id: int | None = None  # the padding id, used when no attention_mask is given (pad_token_id)

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.num_labels, bool) or not isinstance(self.num_labels, int) or self.num_labels < 1:
            raise ValueError(f"GPTClassifierConfig.num_labels: expected a positive integer, received {self.num_labels!r}")


@dataclass
class GPTClassifierOutput:
    """loss (None without labels); logits (B, num_labels)."""

    loss: torch.Tensor | None
    logits: torch.Tensor


def last_token_index(input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                     pad_token_id: int | None = None) -> torch.Tensor:
    """The rightmost real position of each row: (B, T) -> (B,).

    real_t = attention_mask_t (or input_ids_t != pad_token_id); index = argmax_t (t · real_t), the
    way transformers' GPT2ForSequenceClassification finds it. With neither, every position is real
    and the index is T - 1."""
    check_rank(input_ids, 2, "input_ids (B, T)")
    if attention_mask is not None:
        if attention_mask.shape != input_ids.shape:
            raise ValueError(f"attention_mask: expected the shape of input_ids {tuple(input_ids.shape)}, "
                             f"received {tuple(attention_mask.shape)}")
        real = attention_mask.bool()  # (B, T)
    elif pad_token_id is not None:
        real = input_ids != pad_token_id  # (B, T)
    else:
        return torch.full((input_ids.size(0),), input_ids.size(1) - 1, dtype=torch.long, device=input_ids.device)
    positions = torch.arange(input_ids.size(1), device=input_ids.device)  # (T,)
    return (positions * real).argmax(-1)  # (B,)


class GPTForSequenceClassification(nn.Module):
    """logits = W · h_L[last real token] (no bias): (B, T) -> (B, num_labels); loss = cross-entropy
    against ``labels`` (B,). ``self.gpt`` is a whole :class:`minigpt.GPT` (its tied lm_head adds no
    parameters), so a pretrained GPT's state dict loads into it as it is."""

    def __init__(self, config: GPTClassifierConfig):
        super().__init__()
        if not isinstance(config, GPTClassifierConfig):
            raise ValueError(f"config: expected a GPTClassifierConfig, received {type(config).__name__}")
        self.config = config
        self.gpt = GPT(config)
        self.score = nn.Linear(config.n_embd, config.num_labels, bias=False)
        nn.init.normal_(self.score.weight, mean=0.0, std=config.init_std)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None) -> GPTClassifierOutput:
        h = self.gpt.hidden_states(input_ids)  # (B, T, C)
        last = last_token_index(input_ids, attention_mask, self.config.pad_token_id)  # (B,)
        pooled = h[torch.arange(h.size(0), device=h.device), last]  # (B, C)
        logits = self.score(pooled)  # (B, num_labels)
        loss = F.cross_entropy(logits, labels) if labels is not None else None
        return GPTClassifierOutput(loss, logits)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, **overrides) -> "GPTForSequenceClassification":
        """A Hugging Face ``GPT2ForSequenceClassification`` folder (config.json, weights). ``overrides``
        set dropout, use_sdpa or fused. ValueError naming missing and unexpected keys otherwise."""
        hf_config = read_hf_config(path)
        base = config_from_hf(hf_config, Path(path) / HF_CONFIG)
        num_labels = hf_config.get("num_labels", len(hf_config.get("id2label") or {}) or 2)
        config = GPTClassifierConfig(**{**dataclasses.asdict(base), **overrides}, num_labels=num_labels,
                                     pad_token_id=hf_config.get("pad_token_id"))
        hf = read_hf_weights(path)
        score = {k: v for k, v in hf.items() if k == "score.weight"}
        body = state_dict_from_hf({k: v for k, v in hf.items() if k != "score.weight"})
        model = cls(config)
        load_model_weights(model, {**{f"gpt.{k}": v for k, v in body.items()}, **score}, strict=True)
        return model
