"""Hugging Face GPT-2 checkpoints in and out: ``from_pretrained(dir)`` and ``save_pretrained(model, dir)``.

A GPT-2 folder holds ``config.json`` (n_layer, n_head, n_embd, n_positions, vocab_size,
layer_norm_epsilon, ...) and ``model.safetensors`` (or the older pickled ``pytorch_model.bin``,
read here only through ``torch.load(weights_only=True)``). Two differences from our layout:

1. HF's ``Conv1D`` computes y = x W + b with W stored as (in, out); ``nn.Linear`` stores W as
   (out, in). Every matrix is transposed on the way in and out.
2. HF packs the query, key and value projections into one ``c_attn``: W (C, 3C) = [W_q | W_k | W_v].
   We keep three Linear layers; c_attn is split in three (and concatenated back on export).

Key names may or may not start with ``transformer.`` (GPT2LMHeadModel vs GPT2Model); the causal
mask buffers ``attn.bias`` / ``attn.masked_bias`` of old checkpoints are not weights and are
dropped. ``lm_head.weight`` is the token table (tied) and is not stored. Article §3.2.2 模型选择.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import torch

from minitransformer.checkpoint import atomic_directory, load_model_weights, read_json_object, load_state_dict_safetensors, safe_torch_load
from safetensors.torch import save_file

from .config import GPTConfig
from .model import GPT

HF_CONFIG = "config.json"
HF_SAFETENSORS = "model.safetensors"
HF_BIN = "pytorch_model.bin"
GELU_TANH_NAMES = ("gelu_new", "gelu_pytorch_tanh", "gelu_fast")
# one block: HF name -> ours (Linear weights are transposed, c_attn is split)
BLOCK_RENAMES = {
    "ln_1.weight": "norm1.weight", "ln_1.bias": "norm1.bias",
    "attn.c_proj.weight": "self_attn.out_proj.weight", "attn.c_proj.bias": "self_attn.out_proj.bias",
    "ln_2.weight": "norm3.weight", "ln_2.bias": "norm3.bias",
    "mlp.c_fc.weight": "ff.fc1.weight", "mlp.c_fc.bias": "ff.fc1.bias",
    "mlp.c_proj.weight": "ff.fc2.weight", "mlp.c_proj.bias": "ff.fc2.bias",
}
TOP_RENAMES = {"wte.weight": "transformer.wte.weight", "wpe.weight": "transformer.wpe.weight",
               "ln_f.weight": "transformer.ln_f.weight", "ln_f.bias": "transformer.ln_f.bias"}
CONV1D_SUFFIXES = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
BUFFER_SUFFIXES = (".attn.bias", ".attn.masked_bias")


# ----------------------------------------------------------------------------- configs


def _require(cfg: dict, key: str, expected, path) -> None:
    value = cfg.get(key, expected)
    if value != expected:
        raise ValueError(f"{path}: expected {key}={expected!r} (plain GPT-2), received {value!r}")


def config_from_hf(cfg: dict, path: str | os.PathLike = HF_CONFIG) -> GPTConfig:
    """GPTConfig from a Hugging Face GPT-2 ``config.json`` dict; ValueError for anything this
    model does not implement (another model_type, exact GELU, an MLP not 4C wide, untied head, ...)."""
    if cfg.get("model_type", "gpt2") != "gpt2":
        raise ValueError(f"{path}: expected model_type 'gpt2', received {cfg.get('model_type')!r}")
    missing = [k for k in ("n_layer", "n_head", "n_embd", "n_positions", "vocab_size") if k not in cfg]
    if missing:
        raise ValueError(f"{path}: expected GPT-2 config fields, missing {missing}")
    act = cfg.get("activation_function", "gelu_new")
    if act not in GELU_TANH_NAMES:
        raise ValueError(f"{path}: expected activation_function in {GELU_TANH_NAMES} (tanh GELU), received {act!r}")
    if cfg.get("n_inner") not in (None, 4 * cfg["n_embd"]):
        raise ValueError(f"{path}: expected n_inner null or 4*n_embd={4 * cfg['n_embd']}, received {cfg['n_inner']}")
    _require(cfg, "tie_word_embeddings", True, path)
    _require(cfg, "scale_attn_weights", True, path)
    _require(cfg, "scale_attn_by_inverse_layer_idx", False, path)
    _require(cfg, "add_cross_attention", False, path)
    return GPTConfig(block_size=cfg["n_positions"], vocab_size=cfg["vocab_size"], n_layer=cfg["n_layer"],
                     n_head=cfg["n_head"], n_embd=cfg["n_embd"], dropout=0.0, bias=True,
                     layer_norm_epsilon=float(cfg.get("layer_norm_epsilon", 1e-5)),
                     init_std=float(cfg.get("initializer_range", 0.02)))


def config_to_hf(config: GPTConfig) -> dict:
    """The ``config.json`` dict of ``transformers.GPT2Config`` for this model."""
    if not config.bias:
        raise ValueError("save_pretrained: expected a GPT with bias=True (GPT-2 has biases), received bias=False")
    return {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
        "n_layer": config.n_layer, "n_head": config.n_head, "n_embd": config.n_embd,
        "n_positions": config.block_size, "n_ctx": config.block_size, "vocab_size": config.vocab_size,
        "n_inner": None, "activation_function": "gelu_new", "layer_norm_epsilon": config.layer_norm_epsilon,
        "resid_pdrop": config.dropout, "embd_pdrop": config.dropout, "attn_pdrop": config.dropout,
        "initializer_range": config.init_std, "scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False, "tie_word_embeddings": True, "add_cross_attention": False,
        "bos_token_id": None, "eos_token_id": None, "use_cache": True,
    }


# ----------------------------------------------------------------------------- state dicts


def state_dict_from_hf(hf: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """HF GPT-2 weights -> our names. Transposes Conv1D matrices (in, out) -> (out, in) and splits
    c_attn (C, 3C) into q_proj, k_proj, v_proj (C, C) each. Keys that are not GPT-2 weights are
    passed through unchanged, so loading names them as unexpected."""
    out: dict[str, torch.Tensor] = {}
    for key, value in hf.items():
        key = key.removeprefix("transformer.")
        if key.endswith(BUFFER_SUFFIXES) and key.startswith("h."):
            continue  # the causal-mask buffer of old checkpoints, not a weight
        if key == "lm_head.weight":
            continue  # tied to wte (checked by the caller)
        if key in TOP_RENAMES:
            out[TOP_RENAMES[key]] = value
            continue
        parts = key.split(".", 2)  # h, i, rest
        if len(parts) != 3 or parts[0] != "h" or not parts[1].isdigit():
            out[key] = value
            continue
        prefix, rest = f"transformer.h.{parts[1]}.", parts[2]
        if rest.endswith(CONV1D_SUFFIXES) and value.dim() == 2:
            value = value.t()  # Conv1D (in, out) -> Linear (out, in)
        if rest in ("attn.c_attn.weight", "attn.c_attn.bias"):
            kind = rest.rsplit(".", 1)[1]
            for name, piece in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3, dim=0)):
                out[f"{prefix}self_attn.{name}.{kind}"] = piece.contiguous()
        elif rest in BLOCK_RENAMES:
            out[prefix + BLOCK_RENAMES[rest]] = value.contiguous()
        else:
            out[key] = value
    if "transformer.wte.weight" in out:
        out["lm_head.weight"] = out["transformer.wte.weight"]  # the tied head
    return out


def state_dict_to_hf(model: GPT) -> dict[str, torch.Tensor]:
    """Our weights -> GPT2LMHeadModel names (``transformer.`` prefix, Conv1D (in, out) layout,
    q/k/v concatenated into c_attn); lm_head is omitted (tied)."""
    sd = model.state_dict()
    out = {f"transformer.{k}": sd[f"transformer.{k}"] for k in ("wte.weight", "wpe.weight", "ln_f.weight", "ln_f.bias")}
    theirs = {v: k for k, v in BLOCK_RENAMES.items()}
    for i in range(model.config.n_layer):
        p = f"transformer.h.{i}."
        for kind in ("weight", "bias"):
            qkv = torch.cat([sd[f"{p}self_attn.{n}.{kind}"] for n in ("q_proj", "k_proj", "v_proj")], dim=0)
            out[f"{p}attn.c_attn.{kind}"] = qkv.t() if kind == "weight" else qkv  # (C, 3C)
        for ours, hf_name in theirs.items():
            value = sd[p + ours]
            out[p + hf_name] = value.t() if hf_name.endswith(CONV1D_SUFFIXES) else value
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in out.items()}


# ----------------------------------------------------------------------------- folders


def read_hf_config(path: str | os.PathLike) -> dict:
    """The parsed ``config.json`` of a Hugging Face folder."""
    return read_json_object(Path(path) / HF_CONFIG, f"{path}: no {HF_CONFIG} -- not a Hugging Face model folder")


def read_hf_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """model.safetensors if present, else pytorch_model.bin through ``weights_only`` loading
    (a pickle carrying code is refused with ValueError)."""
    path = Path(path)
    if (path / HF_SAFETENSORS).is_file():
        return load_state_dict_safetensors(path / HF_SAFETENSORS)
    if (path / HF_BIN).is_file():
        sd = safe_torch_load(path / HF_BIN)
        if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
            raise ValueError(f"{path / HF_BIN}: expected a dict of tensors (a state dict)")
        return sd
    raise FileNotFoundError(f"{path}: expected {HF_SAFETENSORS} or {HF_BIN}, found neither")


def from_pretrained(path: str | os.PathLike, **overrides) -> GPT:
    """A :class:`GPT` with the weights of the Hugging Face GPT-2 folder ``path``; ``overrides`` set
    the GPTConfig fields GPT-2's config does not fix (use_sdpa, fused, dropout). Raises ValueError
    naming missing and unexpected keys when the weights are not GPT-2's of that config."""
    config = config_from_hf(read_hf_config(path), Path(path) / HF_CONFIG)
    fixed = sorted(set(overrides) - {"use_sdpa", "fused", "dropout"})
    if fixed:
        raise ValueError(f"from_pretrained: expected overrides among use_sdpa, fused, dropout, received {fixed}")
    config = dataclasses.replace(config, **overrides)
    hf = read_hf_weights(path)
    head = hf.get("lm_head.weight")
    wte = hf.get("transformer.wte.weight", hf.get("wte.weight"))
    if head is not None and wte is not None and not torch.equal(head, wte):
        raise ValueError(f"{path}: expected lm_head.weight tied to wte.weight, received a different matrix")
    model = GPT(config)
    load_model_weights(model, state_dict_from_hf(hf), strict=True)
    return model


def save_pretrained(model: GPT, path: str | os.PathLike, tokenizer=None) -> Path:
    """Write ``config.json`` + ``model.safetensors`` in the GPT2LMHeadModel layout, atomically;
    ``transformers.GPT2LMHeadModel.from_pretrained(path)`` loads it. A tokenizer with ``save(dir)``
    (e.g. :class:`minigpt.bpe.GPT2Tokenizer`: vocab.json + merges.txt) is saved alongside."""
    if not isinstance(model, GPT):
        raise ValueError(f"model: expected a minigpt.GPT, received {type(model).__name__}")
    config = config_to_hf(model.config)
    with atomic_directory(path) as tmp:
        save_file(state_dict_to_hf(model), str(tmp / HF_SAFETENSORS), metadata={"format": "pt"})
        (tmp / HF_CONFIG).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        if tokenizer is not None:
            tokenizer.save(str(tmp))
    return Path(path)
