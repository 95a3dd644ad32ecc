"""Hugging Face Llama / Qwen2 / Qwen3 folders in: ``from_pretrained(dir)``.

A folder saved by ``LlamaForCausalLM.save_pretrained`` (or Qwen2's, Qwen3's) holds ``config.json``
and ``model.safetensors``. Our module names are theirs, so the weights load as they are; only
the config needs translating:

- ``model_type`` picks the family: qwen2 has biases on q, k, v; qwen3 has QK-norm;
- RoPE's base is ``rope_theta`` (older files) or ``rope_parameters["rope_theta"]`` (newer ones);
  the plain ("default") RoPE and Llama 3.1+'s "llama3" frequencies are implemented, other
  scalings (linear, dynamic, yarn, ...) are refused;
- a tied model may omit ``lm_head.weight``: it is the token table.

A folder of another family is refused with the family found, the one expected, and the weight
names that one would need (missing) and does not know (unexpected).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from minitransformer.checkpoint import _short, load_model_weights
from minitransformer.modern import LLAMA3_ROPE_KEYS

from .hf import HF_CONFIG, read_hf_config, read_hf_weights
from .llama import FAMILIES, Llama, LlamaConfig

OVERRIDABLE = ("use_sdpa",)


def family_keys(family: str) -> set[str]:
    """The weight names of a ``family`` checkpoint, with layer numbers written ``N``."""
    attn = ["q_proj.weight", "k_proj.weight", "v_proj.weight", "o_proj.weight"]
    if family == "qwen2":
        attn += ["q_proj.bias", "k_proj.bias", "v_proj.bias"]
    if family == "qwen3":
        attn += ["q_norm.weight", "k_norm.weight"]
    layer = [f"self_attn.{a}" for a in attn] + [f"mlp.{m}_proj.weight" for m in ("gate", "up", "down")]
    layer += ["input_layernorm.weight", "post_attention_layernorm.weight"]
    return {"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"} | {f"model.layers.N.{k}" for k in layer}


def check_family(found, expected: tuple[str, ...], keys, path) -> None:
    """Raise ValueError unless ``found`` is among ``expected``, naming both and the key differences."""
    if found in expected:
        return
    want = expected[0] if len(expected) == 1 else expected
    have = {re.sub(r"\.\d+\.", ".N.", k, count=1) for k in keys}
    need = set().union(*(family_keys(f) for f in expected)) if len(expected) > 1 else family_keys(expected[0])
    missing = sorted(need - have - {"lm_head.weight"})
    unexpected = sorted(have - need)
    raise ValueError(f"{path}: found a {found!r} checkpoint (config.json model_type), expected {want!r}; "
                     f"missing keys {_short(missing)}; unexpected keys {_short(unexpected)}")


def rope_from_hf(cfg: dict, path) -> tuple[float, dict | None]:
    """RoPE's base and Llama 3's scaling (or None) from ``rope_parameters`` (newer files) or
    ``rope_theta`` + ``rope_scaling`` (older ones); ValueError for another scaled RoPE."""
    params = {**(cfg.get("rope_scaling") or {}), **(cfg.get("rope_parameters") or {})}
    kind = params.get("rope_type", params.get("type", "default"))
    if kind not in ("default", "llama3"):
        raise ValueError(f"{path}: expected rope_type 'default' or 'llama3', received rope_type {kind!r}")
    theta = float(params.get("rope_theta", cfg.get("rope_theta", 10000.0)))
    if kind == "default":
        return theta, None
    missing = [k for k in LLAMA3_ROPE_KEYS if k not in params]
    if missing:
        raise ValueError(f"{path}: expected the llama3 RoPE keys {LLAMA3_ROPE_KEYS}, missing {missing}")
    return theta, {k: params[k] for k in LLAMA3_ROPE_KEYS}


def config_from_hf(cfg: dict, path=HF_CONFIG, overrides: dict | None = None) -> LlamaConfig:
    """LlamaConfig from a Llama / Qwen2 / Qwen3 ``config.json`` dict; ValueError for what this model
    does not implement (sliding-window attention, a RoPE scaling other than llama3, an activation
    other than SiLU)."""
    family = cfg["model_type"]
    if cfg.get("hidden_act", "silu") != "silu":
        raise ValueError(f"{path}: expected hidden_act 'silu' (SwiGLU), received {cfg['hidden_act']!r}")
    if cfg.get("use_sliding_window", False):
        raise ValueError(f"{path}: expected use_sliding_window false (sliding-window attention is not implemented)")
    missing = [k for k in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")
               if k not in cfg]
    if missing:
        raise ValueError(f"{path}: expected {family} config fields, missing {missing}")
    rope_theta, rope_scaling = rope_from_hf(cfg, path)
    return LlamaConfig(
        vocab_size=cfg["vocab_size"], hidden_size=cfg["hidden_size"], intermediate_size=cfg["intermediate_size"],
        num_hidden_layers=cfg["num_hidden_layers"], num_attention_heads=cfg["num_attention_heads"],
        num_key_value_heads=cfg.get("num_key_value_heads"), head_dim=cfg.get("head_dim"),
        max_position_embeddings=cfg.get("max_position_embeddings", 2048),
        rms_norm_eps=float(cfg.get("rms_norm_eps", 1e-6)), rope_theta=rope_theta, rope_scaling=rope_scaling,
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        attention_bias=bool(cfg.get("attention_bias", False)), qkv_bias=family == "qwen2",
        qk_norm=family == "qwen3", mlp_bias=bool(cfg.get("mlp_bias", False)),
        initializer_range=float(cfg.get("initializer_range", 0.02)), model_type=family, **(overrides or {}),
    )


def from_pretrained(path: str | os.PathLike, family: str | None = None, **overrides) -> Llama:
    """A :class:`Llama` with the weights of the Hugging Face folder ``path``. ``family`` (llama,
    qwen2, qwen3) or None for any of them; a folder of another model_type raises ValueError naming
    the family found and expected, and the missing and unexpected keys. ``overrides``: use_sdpa."""
    expected = FAMILIES if family is None else (family,)
    if family is not None and family not in FAMILIES:
        raise ValueError(f"family: expected one of {FAMILIES} or None, received {family!r}")
    bad = sorted(set(overrides) - set(OVERRIDABLE))
    if bad:
        raise ValueError(f"from_pretrained: expected overrides among {OVERRIDABLE}, received {bad}")
    cfg = read_hf_config(path)
    hf = read_hf_weights(path)
    check_family(cfg.get("model_type"), expected, hf.keys(), Path(path))
    config = config_from_hf(cfg, Path(path) / HF_CONFIG, overrides)
    head, table = hf.get("lm_head.weight"), hf.get("model.embed_tokens.weight")
    if config.tie_word_embeddings:
        if head is not None and table is not None and not torch.equal(head, table):
            raise ValueError(f"{path}: expected lm_head.weight tied to model.embed_tokens.weight "
                             f"(tie_word_embeddings), received a different matrix")
        if table is not None:
            hf = {**hf, "lm_head.weight": table}
    model = Llama(config)
    load_model_weights(model, hf, strict=True)
    return model
