"""GPTConfig: the size of a GPT-2-style model, with nanoGPT's field names, and its parameter count.

Article §3.2.2 模型选择: choosing a model means choosing its size; the count below is what
"GPT-2 124M" refers to.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping


# the fields that fix the shapes of the weights: a config.json without one of them cannot describe
# the checkpoint beside it (GPT-2 small's defaults would fill it in, and every weight would mismatch)
SHAPE_FIELDS = ("block_size", "vocab_size", "n_layer", "n_head", "n_embd")


@dataclass
class GPTConfig:
    """Hyper-parameters of :class:`minigpt.GPT` (nanoGPT names; Hugging Face's in brackets).

    The defaults are GPT-2 small ("gpt2", 124M parameters).
    """

    block_size: int = 1024  # longest context, rows of the position table (n_positions)
    vocab_size: int = 50257  # rows of the token table (vocab_size)
    n_layer: int = 12  # decoder blocks (n_layer)
    n_head: int = 12  # attention heads per block (n_head)
    n_embd: int = 768  # model width C (n_embd); the MLP is 4C wide
    dropout: float = 0.0  # embedding, attention and residual dropout (embd_pdrop, attn_pdrop, resid_pdrop)
    bias: bool = True  # biases in Linear layers and LayerNorms; GPT-2 has them, nanoGPT may drop them
    layer_norm_epsilon: float = 1e-5  # ε inside every LayerNorm's square root (layer_norm_epsilon)
    init_std: float = 0.02  # std of the initial weights; GPT-2's 0.02 was set for C = 768 (initializer_range)
    use_sdpa: bool = True  # attention through F.scaled_dot_product_attention (same function, tested equal)
    fused: bool = True  # LayerNorm and GELU through F.layer_norm / F.gelu (same functions, tested equal)

    def __post_init__(self) -> None:
        for name in ("block_size", "vocab_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"GPTConfig.{name}: expected a positive integer, received {value!r}")
        if self.n_embd % self.n_head != 0:
            raise ValueError(
                f"GPTConfig: expected n_embd divisible by n_head, received n_embd={self.n_embd}, n_head={self.n_head}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"GPTConfig.dropout: expected a probability in [0, 1), received {self.dropout}")
        for name in ("init_std", "layer_norm_epsilon"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"GPTConfig.{name}: expected a finite number, received {value!r}")
            if not value > 0:
                raise ValueError(f"GPTConfig.{name}: expected > 0, received {value}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "GPTConfig":
        """Build from a ``config.json`` dict; ValueError naming unknown fields (another model's config)
        or missing :data:`SHAPE_FIELDS` (no default is guessed for the size of a saved model)."""
        if not isinstance(d, Mapping):
            raise ValueError(f"GPT config: expected a JSON object, received {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(
                f"GPT config: expected only the fields {sorted(names)}, received unknown fields {unknown} "
                "(is this a checkpoint of another model? a Hugging Face GPT-2 folder loads with GPT.from_pretrained)"
            )
        missing = [name for name in SHAPE_FIELDS if name not in d]
        if missing:
            raise ValueError(f"GPT config: expected the fields {list(SHAPE_FIELDS)} (they fix the weights' shapes), "
                             f"missing {missing}")
        return cls(**dict(d))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def gpt_param_count(config: GPTConfig) -> int:
    """Number of distinct parameters of ``GPT(config)``, the tied token table counted once.

    With width C, V tokens, T positions, L blocks (b = 1 with biases, 0 without)::

        wte V·C  +  wpe T·C
        + L · (12 C² + (11b + 2) C)   [attention 4C² + 4bC, MLP 8C² + 5bC, two LayerNorms 2C + 2bC]
        + final LayerNorm (1 + b) C                   (lm_head shares wte: + 0)

    GPT-2 small (V=50257, T=1024, L=12, C=768) has 124,439,808. Article §3.2.2 模型选择.
    """
    c, b = config.n_embd, int(config.bias)
    embeddings = config.vocab_size * c + config.block_size * c
    attention = 4 * c * c + 4 * b * c  # q, k, v, out projections
    mlp = 8 * c * c + 5 * b * c  # fc1 C -> 4C (bias 4C), fc2 4C -> C (bias C)
    norms = 2 * (c + b * c)  # norm1, norm3: γ (and β)
    return embeddings + config.n_layer * (attention + mlp + norms) + (c + b * c)


def width_scaled_init_std(n_embd: int, gpt2_std: float = 0.02, gpt2_width: int = 768) -> float:
    """σ(C) = 0.02 · √(768 / C): GPT-2's initial std carried to width C.

    GPT-2 draws every weight from N(0, 0.02²) at C = 768, i.e. σ·√C ≈ 0.55, so a Linear layer's
    output has a fixed scale relative to its input. Keeping σ·√C fixed for a narrower model gives
    σ(128) ≈ 0.049; with GPT-2's 0.02 a 128-wide model starts with outputs 2.4× smaller and, at a
    fixed learning rate, needs more steps to grow them (bench/README.md, ## minigpt, measures it).
    """
    if not isinstance(n_embd, int) or n_embd < 1:
        raise ValueError(f"n_embd: expected a positive integer, received {n_embd!r}")
    return gpt2_std * math.sqrt(gpt2_width / n_embd)
