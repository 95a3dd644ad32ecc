"""BERT (Devlin et al., 2019) built from minitransformer's parts. Article §4.2.2 多层Transformer编码器.

    E   = LayerNorm(E_token[x] + E_segment[s] + E_position[t]);  E = Dropout(E)      (B, T, H)
    h_l = EncoderBlock_l(h_{l-1}), post-LN:                                          (B, T, H)
          x = LN(x + Dropout(MHA(x, x, x)));  x = LN(x + Dropout(FFN(x)))
    pooled = tanh(W_p h_L[:, 0] + b_p)   — the [CLS] vector, no max-pooling          (B, H)

⚠ The article writes Enc(X) = MaxPool(MLP(Dropout(LayerNorm(MultiHeadAttention(X, X, X, X))))):
BERT has no max-pooling, the residual connections are missing there, and multi-head attention
takes three inputs (Q, K, V), not four. The heads live in ``heads.py``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from minitransformer.checks import check_rank, check_token_ids
from minitransformer.factorised import FactorisedEmbedding
from minitransformer.layers import LayerNorm
from minitransformer.positions import LearnedPositionalEmbedding
from minitransformer.transformer import Encoder

from .config import BertConfig


@dataclass
class BertOutput:
    """last_hidden_state (B, T, H); pooler_output (B, H) or None; hidden_states: L+1 tensors
    (embeddings output, then each layer) when asked; attentions: L tensors (B, heads, T, T) when asked."""

    last_hidden_state: torch.Tensor
    pooler_output: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


class BertEmbeddings(FactorisedEmbedding):
    """E = Dropout(LayerNorm(token + segment + position embeddings)). ids (B, T) -> (B, T, H).

    minitransformer's FactorisedEmbedding with E = H and no projection (ALBERT and ELECTRA use the
    same module with E < H); its ``forward`` is the formula above."""

    def __init__(self, c: BertConfig):
        super().__init__(c.vocab_size, c.hidden_size, c.hidden_size, c.max_position_embeddings, c.type_vocab_size,
                         eps=c.layer_norm_eps, dropout=c.hidden_dropout_prob, padding_idx=c.pad_token_id,
                         project=False, fused=c.use_fused)


class BertPooler(nn.Module):
    """pooled = tanh(W h_[CLS] + b): the first token's final hidden state through a dense layer.
    (B, T, H) -> (B, H). Article §4.2.2 (⚠ not a max-pool)."""

    def __init__(self, c: BertConfig):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(hidden[:, 0]))  # (B, H)


def init_bert_weights(module: nn.Module, std: float) -> None:
    """BERT's initialisation: Linear and Embedding weights ~ N(0, std²) (std = initializer_range,
    0.02), biases 0, the padding row of an embedding 0, LayerNorm γ = 1, β = 0."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=std)
        if module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()
    elif isinstance(module, LearnedPositionalEmbedding):
        nn.init.normal_(module.weight, std=std)
    elif isinstance(module, LayerNorm):
        nn.init.ones_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def check_bert_inputs(c: BertConfig, input_ids, token_type_ids, attention_mask) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate ids (B, T), segment ids and the (B, T) padding mask; fill the defaults
    (segment 0, every token real). Raises ValueError naming the bad input."""
    check_rank(input_ids, 2, "input_ids (B, T)")
    check_token_ids(input_ids, c.vocab_size)
    if input_ids.size(1) > c.max_position_embeddings:
        raise ValueError(
            f"input_ids: expected length <= max_position_embeddings={c.max_position_embeddings}, received "
            f"{input_ids.size(1)} (truncate first: minibert.pretraining.truncate_single / truncate_pair)"
        )
    if token_type_ids is None:
        token_type_ids = torch.zeros_like(input_ids)
    elif token_type_ids.shape != input_ids.shape:
        raise ValueError(f"token_type_ids: expected shape {tuple(input_ids.shape)}, received {tuple(token_type_ids.shape)}")
    check_token_ids(token_type_ids, c.type_vocab_size, "token_type_ids")
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    elif attention_mask.shape != input_ids.shape:
        raise ValueError(f"attention_mask: expected shape {tuple(input_ids.shape)}, received {tuple(attention_mask.shape)}")
    return token_type_ids, attention_mask


def check_last_layer_positions(positions: torch.Tensor, input_ids: torch.Tensor, per_layer_outputs: bool) -> None:
    """ValueError unless ``positions`` is (B, Q) int64 in [0, T) with [CLS] (0) first in every row."""
    B, T = input_ids.shape
    if not isinstance(positions, torch.Tensor) or positions.dim() != 2 or positions.size(0) != B or positions.dtype != torch.int64:
        got = f"{positions.dtype} {tuple(positions.shape)}" if isinstance(positions, torch.Tensor) else type(positions).__name__
        raise ValueError(f"last_layer_positions: expected an int64 tensor (B={B}, Q), received {got}")
    if positions.numel() and (positions.min() < 0 or positions.max() >= T or (positions[:, 0] != 0).any()):
        raise ValueError(f"last_layer_positions: expected positions in [0, {T}) with 0 ([CLS]) first in each row, "
                         f"received {positions.tolist()[:2]}...")
    if per_layer_outputs:
        raise ValueError("last_layer_positions: expected output_hidden_states and output_attentions False (the last "
                         "layer computes only some rows), received True")


class BertModel(nn.Module):
    """Embeddings -> N post-LN EncoderBlocks -> (optional) pooler. bert-base: 109,482,240 parameters."""

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True):
        super().__init__()
        c = self.config = config
        self.embeddings = BertEmbeddings(c)
        self.encoder = Encoder(
            c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.intermediate_size, c.hidden_dropout_prob,
            activation=c.hidden_act, norm_first=False, final_norm=False, eps=c.layer_norm_eps,
            attn_dropout=c.attention_probs_dropout_prob, use_sdpa=c.use_sdpa, fused=c.use_fused,
        )
        self.pooler = BertPooler(c) if add_pooling_layer else None
        self.apply(lambda m: init_bert_weights(m, c.initializer_range))

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, output_hidden_states: bool = False,
                output_attentions: bool = False, last_layer_positions: torch.Tensor | None = None) -> BertOutput:
        """input_ids, token_type_ids (segment 0/1), attention_mask (1 = real, 0 = padding): (B, T).

        ``last_layer_positions`` (B, Q) int64, column 0 all zeros ([CLS], for the pooler): the last
        layer computes only those rows (``EncoderBlock.forward_at``), and ``last_hidden_state`` is
        (B, Q, H), row q of sequence b being position ``last_layer_positions[b, q]``."""
        token_type_ids, attention_mask = check_bert_inputs(self.config, input_ids, token_type_ids, attention_mask)
        if last_layer_positions is not None:
            check_last_layer_positions(last_layer_positions, input_ids, output_hidden_states or output_attentions)
        x = self.embeddings(input_ids, token_type_ids)  # (B, T, H)
        hidden, attentions = [x], []
        layers = self.encoder.layers
        for i, layer in enumerate(layers):
            if last_layer_positions is not None and i == len(layers) - 1:
                x = layer.forward_at(x, last_layer_positions, attention_mask)  # (B, Q, H)
                break
            x, w = layer(x, attention_mask, need_weights=output_attentions)  # (B, T, H), (B, nh, T, T)
            hidden.append(x)
            attentions.append(w)
        pooled = self.pooler(x) if self.pooler is not None else None  # (B, H), from row 0: [CLS]
        return BertOutput(
            last_hidden_state=x,
            pooler_output=pooled,
            hidden_states=tuple(hidden) if output_hidden_states else None,
            attentions=tuple(attentions) if output_attentions else None,
        )

    @classmethod
    def from_pretrained(cls, path, **kw):
        """Load a minibert or Hugging Face BERT directory (see ``minibert.hf.from_pretrained``)."""
        from .hf import from_pretrained

        return from_pretrained(cls, path, **kw)
