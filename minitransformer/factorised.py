"""Two ways to shrink a Transformer encoder's parameters without narrowing its hidden states
(ALBERT, Lan et al., 2020; ELECTRA, Clark et al., 2020). Article §7.3 (the BERT family).

1. Factorised embedding. The token table is V × E, not V × H, and one projection E -> H follows::

       e = Dropout(LayerNorm(E_token[x] + E_segment[s] + E_position[t]))     (B, T, E)
       h = e W_p + b_p                                                       (B, T, H)

   parameters: V·H  ->  V·E + E·H + H   (albert-base, V = 30,000, E = 128, H = 768: 23.0M -> 3.9M).
   ALBERT's ``embedding_hidden_mapping_in`` and ELECTRA's ``embeddings_project`` are this W_p.

2. Cross-layer parameter sharing. G groups of blocks are stored, L blocks are applied::

       h_l = Block_{g(l)}(h_{l-1}),   g(l) = ⌊l · G / L⌋,   l = 0 … L-1       (B, T, H)

   G = 1 (ALBERT's default): one block applied L times, the encoder's parameters divided by L.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn

from .layers import LayerNorm
from .positions import LearnedPositionalEmbedding


def _check_positive(value, name: str) -> int:
    """``value`` when it is a positive integer; ValueError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, received {value!r}")
    return value


class FactorisedEmbedding(nn.Module):
    """h = Dropout(LayerNorm(E_token[x] + E_segment[s] + E_position[t])) W_p + b_p. Article §7.3.

    ids (B, T) -> (B, T, H). The three tables have width E = ``embedding_size``; W_p: (E, H).
    ``project``: True always projects (ALBERT, even when E = H); None projects only when E != H
    (ELECTRA); False never (then E must equal H). ``embed`` gives the E-wide vectors before W_p.
    """

    def __init__(self, vocab_size: int, embedding_size: int, hidden_size: int, max_len: int, type_vocab_size: int = 2,
                 eps: float = 1e-12, dropout: float = 0.0, padding_idx: int | None = 0, project: bool | None = True,
                 fused: bool = False):
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("embedding_size", embedding_size),
                            ("hidden_size", hidden_size), ("max_len", max_len), ("type_vocab_size", type_vocab_size)):
            _check_positive(value, f"FactorisedEmbedding.{name}")
        if project is False and embedding_size != hidden_size:
            raise ValueError(f"FactorisedEmbedding: expected embedding_size == hidden_size without a projection, "
                             f"received embedding_size={embedding_size}, hidden_size={hidden_size}")
        self.word_embeddings = nn.Embedding(vocab_size, embedding_size, padding_idx=padding_idx)
        self.position_embeddings = LearnedPositionalEmbedding(max_len, embedding_size)
        self.token_type_embeddings = nn.Embedding(type_vocab_size, embedding_size)
        self.norm = LayerNorm(embedding_size, eps=eps, fused=fused)
        self.dropout = nn.Dropout(dropout)
        wanted = embedding_size != hidden_size if project is None else project
        self.project = nn.Linear(embedding_size, hidden_size) if wanted else None

    def embed(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        """e = Dropout(LayerNorm(E_token[x] + E_segment[s] + E_position[t])). (B, T) -> (B, T, E)."""
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)  # (B, T, E)
        x = x + self.position_embeddings(input_ids.size(1))  # (T, E) broadcast over B
        return self.dropout(self.norm(x))  # (B, T, E)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        """h = e W_p + b_p (or e itself without a projection). (B, T) -> (B, T, H)."""
        e = self.embed(input_ids, token_type_ids)  # (B, T, E)
        return self.project(e) if self.project is not None else e  # (B, T, H)


def shared_group_index(layer: int, num_layers: int, num_groups: int) -> int:
    """g(l) = ⌊l · G / L⌋: the group whose parameters layer l (0-based) uses; with G | L each group
    serves L/G consecutive layers (transformers' AlbertTransformer: int(l / (L / G)))."""
    return layer * num_groups // num_layers


class SharedLayers(nn.Module):
    """h_l = Block_{g(l)}(h_{l-1}) for l = 0 … L-1, g from :func:`shared_group_index`. Article §7.3.

    Stores ``num_groups`` = G blocks made by ``make_block()`` (parameters: G blocks' worth, not L's)
    and applies ``num_layers`` = L of them. G must divide L. ``layers`` lists the L blocks in the
    order they run (the same G modules repeated, not registered twice), so code written for a
    ModuleList of L blocks (minibert's BertModel.forward) runs the shared stack unchanged.
    x: (B, T, H) -> (B, T, H).
    """

    def __init__(self, make_block: Callable[[], nn.Module], num_layers: int, num_groups: int = 1):
        super().__init__()
        _check_positive(num_layers, "SharedLayers.num_layers")
        _check_positive(num_groups, "SharedLayers.num_groups")
        if num_layers % num_groups:
            raise ValueError(f"SharedLayers: expected num_groups dividing num_layers, received "
                             f"num_groups={num_groups}, num_layers={num_layers}")
        self.num_layers = num_layers
        self.groups = nn.ModuleList(make_block() for _ in range(num_groups))

    @property
    def layers(self) -> list[nn.Module]:
        """The L blocks in application order: groups[g(0)], groups[g(1)], …, groups[g(L-1)]."""
        return [self.groups[shared_group_index(i, self.num_layers, len(self.groups))] for i in range(self.num_layers)]

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor | None = None, need_weights: bool = False):
        """x: (B, T, H); attention_mask: (B, T), 1 = real token. Returns (x, the L per-layer attention
        weights or Nones), as minitransformer's Encoder."""
        weights = []
        for block in self.layers:
            x, w = block(x, attention_mask, need_weights=need_weights)  # (B, T, H)
            weights.append(w)
        return x, weights


__all__ = ["FactorisedEmbedding", "SharedLayers", "shared_group_index"]
