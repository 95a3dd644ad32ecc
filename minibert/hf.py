"""Load BERT checkpoints: Hugging Face directories (config.json + model.safetensors or
pytorch_model.bin + vocab.txt) and minibert's own (config.json + model.safetensors + tokenizer/).
Article §3.2.2 模型选择: start from a pretrained model.

Hugging Face names -> minibert names (the ``bert.`` prefix is optional in the file)::

    embeddings.LayerNorm                         bert.embeddings.norm
    encoder.layer.i.attention.self.query/key/value   bert.encoder.layers.i.self_attn.q_proj/k_proj/v_proj
    encoder.layer.i.attention.output.dense       bert.encoder.layers.i.self_attn.out_proj
    encoder.layer.i.attention.output.LayerNorm   bert.encoder.layers.i.norm1
    encoder.layer.i.intermediate.dense           bert.encoder.layers.i.ff.fc1
    encoder.layer.i.output.dense / LayerNorm     bert.encoder.layers.i.ff.fc2 / norm2
    cls.predictions.transform.dense / LayerNorm  mlm_head.dense / norm
    cls.predictions.bias (decoder.bias)          mlm_head.bias   (decoder.weight is tied to the word embeddings)
    cls.seq_relationship                         nsp_head
    LayerNorm.gamma / beta (old TF conversions)  .weight / .bias

Only ``torch.load(weights_only=True)`` ever reads a ``.bin``: a pickle that carries code is refused.
The way out, ``save_pretrained(model, folder)``, lives in ``export.py`` and is re-exported here.
"""
from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from minitransformer.checkpoint import load_model_weights, load_state_dict_safetensors, read_json_object, safe_torch_load

from .config import BertConfig, check_max_len
from .export import save_pretrained  # noqa: F401  (the inverse of from_pretrained)

logger = logging.getLogger("minibert")

_RENAMES = [  # (regex on a Hugging Face key without "bert.", replacement)
    (r"\.gamma$", ".weight"),
    (r"\.beta$", ".bias"),
    (r"^embeddings\.LayerNorm\.", "embeddings.norm."),
    (r"^encoder\.layer\.(\d+)\.attention\.self\.query\.", r"encoder.layers.\1.self_attn.q_proj."),
    (r"^encoder\.layer\.(\d+)\.attention\.self\.key\.", r"encoder.layers.\1.self_attn.k_proj."),
    (r"^encoder\.layer\.(\d+)\.attention\.self\.value\.", r"encoder.layers.\1.self_attn.v_proj."),
    (r"^encoder\.layer\.(\d+)\.attention\.output\.dense\.", r"encoder.layers.\1.self_attn.out_proj."),
    (r"^encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.", r"encoder.layers.\1.norm1."),
    (r"^encoder\.layer\.(\d+)\.intermediate\.dense\.", r"encoder.layers.\1.ff.fc1."),
    (r"^encoder\.layer\.(\d+)\.output\.dense\.", r"encoder.layers.\1.ff.fc2."),
    (r"^encoder\.layer\.(\d+)\.output\.LayerNorm\.", r"encoder.layers.\1.norm2."),
    (r"^cls\.predictions\.transform\.dense\.", "mlm_head.dense."),
    (r"^cls\.predictions\.transform\.LayerNorm\.", "mlm_head.norm."),
    (r"^cls\.predictions\.(decoder\.)?bias$", "mlm_head.bias"),
    (r"^cls\.predictions\.decoder\.weight$", "mlm_head.decoder.weight"),
    (r"^cls\.seq_relationship\.", "nsp_head."),
]
_BODY = ("embeddings.", "encoder.", "pooler.")
_DROP = re.compile(r"(^|\.)position_ids$")  # a buffer some checkpoints carry


def convert_hf_key(key: str) -> str:
    """One state-dict key in minibert's full naming (body under ``bert.``, heads at the top).
    minibert's own keys pass through unchanged."""
    body = key[len("bert."):] if key.startswith("bert.") else key
    for pattern, repl in _RENAMES:
        body = re.sub(pattern, repl, body)
    return "bert." + body if body.startswith(_BODY) else body


def convert_state_dict(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename every key with :func:`convert_hf_key`; drop ``position_ids`` buffers."""
    out = {}
    for key, value in sd.items():
        if _DROP.search(key):
            continue
        new = convert_hf_key(key)
        if new in out:
            raise ValueError(f"checkpoint: expected distinct weights, received two keys that both map to {new!r}")
        out[new] = value
    return out


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """model.safetensors, else pytorch_model.bin (``weights_only=True``: code-carrying pickles refused)."""
    if (path / "model.safetensors").is_file():
        return load_state_dict_safetensors(path / "model.safetensors")
    if (path / "pytorch_model.bin").is_file():
        sd = safe_torch_load(path / "pytorch_model.bin")
        if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
            raise ValueError(f"{path / 'pytorch_model.bin'}: expected a state dict of tensors")
        return sd
    raise FileNotFoundError(f"{path}: expected model.safetensors or pytorch_model.bin, found neither")


# keys minibert's fine-tuning writes into config.json beside BertConfig's fields; kept in
# BertConfig.extra (so they survive a reload and a re-save) without the unknown-key note
MINIBERT_KEYS = ("max_len",)
BERT_FOLDER = "a BERT checkpoint folder (config.json with model_type 'bert', model.safetensors or pytorch_model.bin, vocab.txt)"


# the fields that fix the weights' shapes: a saved config.json must give them all (bert-base's
# defaults filled in for a missing one would only show up later as every weight mismatching)
SHAPE_FIELDS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                "max_position_embeddings", "type_vocab_size")


def config_from_dict(d: dict, source="config.json") -> BertConfig:
    """BertConfig from a config.json dict; ValueError naming ``source`` (the file) when it is not a
    BERT config, e.g. ``model_type: 'gpt2'``, or lacks one of :data:`SHAPE_FIELDS`.
    :data:`MINIBERT_KEYS` go to ``extra`` silently."""
    model_type = d.get("model_type", "bert")
    if model_type != "bert":
        raise ValueError(f"{source}: model_type is {model_type!r}, not 'bert'; expected {BERT_FOLDER}")
    missing = [name for name in SHAPE_FIELDS if name not in d]
    if missing:
        raise ValueError(f"{source}: expected the fields {list(SHAPE_FIELDS)} (they fix the weights' shapes), "
                         f"missing {missing}")
    kept = {k: d[k] for k in MINIBERT_KEYS if k in d}
    try:
        config = BertConfig.from_dict({k: v for k, v in d.items() if k not in kept})
    except ValueError as e:
        raise ValueError(f"{source}: {e}") from None
    config.extra.update(kept)
    return config


def read_config_json(path: Path) -> BertConfig:
    """BertConfig from ``path/config.json`` (a transformers or minibert config). ValueError naming
    the file when it is not BERT's (another model_type, say 'gpt2')."""
    file = Path(path) / "config.json"
    return config_from_dict(read_json_object(file, f"{path}: no config.json -- not a BERT checkpoint directory"), file)


def saved_max_len(config: BertConfig) -> int | None:
    """The ``max_len`` a fine-tuned checkpoint was trained with (from its config.json), or None."""
    value = config.extra.get("max_len")
    return None if value is None else check_max_len(value, "config.json: max_len")


def check_bert_folder(path, flag: str = "folder") -> BertConfig:
    """Check that ``path`` is a BERT checkpoint folder before loading anything from it: it exists,
    has a config.json of model_type 'bert', weights, and a tokenizer (vocab.txt, or minibert's
    tokenizer/). ValueError naming the folder and the missing or wrong file; ``flag`` (e.g.
    '--init-hf') says where the folder came from. Returns its BertConfig."""
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"{flag} {path}: no such folder; expected {BERT_FOLDER}")
    if not (path / "config.json").is_file():
        raise ValueError(f"{flag} {path}: no config.json in the folder; expected {BERT_FOLDER}")
    config = read_config_json(path)
    if not any((path / name).is_file() for name in ("model.safetensors", "pytorch_model.bin")):
        raise ValueError(f"{flag} {path}: no model.safetensors or pytorch_model.bin in the folder; expected {BERT_FOLDER}")
    if not (path / "tokenizer").is_dir() and not (path / "vocab.txt").is_file():
        raise ValueError(f"{flag} {path}: no vocab.txt in the folder (nor a minibert tokenizer/ folder); expected "
                         f"{BERT_FOLDER}")
    return config


def _is_optional(key: str) -> bool:
    """Weights that may be absent and are then left randomly initialised: pooler and heads."""
    return not key.startswith(("bert.embeddings.", "bert.encoder."))


def fit_state_dict(model: nn.Module, sd: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str], list[str]]:
    """Match a converted state dict to ``model`` (a BertModel or a BertFor* head).

    Returns (state dict in the model's naming, missing optional keys, dropped keys). Body weights
    (embeddings, encoder) must all be present; pooler/head weights may be missing (left random);
    head weights the model has no use for (an NSP head when fine-tuning) are dropped. Any other
    missing or unexpected key raises ValueError naming them: a checkpoint of another architecture.
    """
    expected = set(model.state_dict())
    bare = not any(k.startswith("bert.") for k in expected)  # a BertModel: no "bert." prefix
    sd = {k[len("bert."):] if bare and k.startswith("bert.") else k: v for k, v in sd.items()}
    full = (lambda k: "bert." + k) if bare else (lambda k: k)
    tied = "mlm_head.decoder.weight"
    if tied in sd and tied in expected and "bert.embeddings.word_embeddings.weight" in {full(k) for k in sd}:
        sd.pop(tied)  # the decoder is tied to the word embeddings, which are loaded
    missing = sorted(k for k in expected if k not in sd)
    unexpected = sorted(k for k in sd if k not in expected)
    hard_missing = [k for k in missing if not _is_optional(full(k))]
    droppable = [k for k in unexpected if _is_optional(full(k))]
    hard_unexpected = [k for k in unexpected if k not in droppable]
    if hard_missing or hard_unexpected:
        load_model_weights(model, sd, strict=True)  # raises, naming missing and unexpected keys
    soft_missing = [k for k in missing if k != tied]
    return {k: v for k, v in sd.items() if k in expected}, soft_missing, droppable


def check_vocab_size(path: Path, config: BertConfig, vocab_file: str = "vocab.txt") -> None:
    """Refuse a vocab.txt whose number of tokens differs from the embedding table's rows."""
    vocab = path / vocab_file
    if vocab.is_file():
        try:
            n = sum(1 for _ in vocab.open(encoding="utf-8"))
        except UnicodeDecodeError as e:
            raise ValueError(f"{vocab}: expected a vocab.txt (one token per line) in UTF-8, received bytes that are "
                             f"not UTF-8 text (byte {e.start}: {e.reason})") from None
        if n != config.vocab_size:
            raise ValueError(
                f"{vocab}: the vocabulary has {n} tokens but the checkpoint's embeddings have vocab_size="
                f"{config.vocab_size} rows; expected the same size"
            )


def from_pretrained(cls, path, config: BertConfig | None = None, **overrides):
    """Build ``cls`` (BertModel or a BertFor* head) from a checkpoint directory and load its weights.

    ``overrides`` replace config fields (e.g. ``id2label`` for a new classification head,
    ``hidden_dropout_prob``). Missing pooler/head weights are logged as a warning, listing them,
    and left randomly initialised; unused head weights are dropped with a note. Embedding sizes are
    checked against ``vocab.txt`` when there is one.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: expected a checkpoint directory")
    config = config or read_config_json(path)
    if overrides:
        config = config_from_dict({**config.to_dict(), **overrides}, path / "config.json")
    check_vocab_size(path, config)
    sd = convert_state_dict(read_weights(path))
    emb = sd.get("bert.embeddings.word_embeddings.weight")
    if emb is not None and emb.shape[0] != config.vocab_size:
        raise ValueError(
            f"{path}: config.json says vocab_size={config.vocab_size} but the word embeddings have {emb.shape[0]} rows"
        )
    model = cls(config)
    sd, missing, dropped = fit_state_dict(model, sd)
    return load_reporting(model, sd, path, missing, dropped)


def load_reporting(model: nn.Module, sd: dict[str, torch.Tensor], path, missing: list[str], dropped: list[str]) -> nn.Module:
    """Load ``sd`` into ``model`` (non-strict), log the weights left random (``missing``) and the
    checkpoint's weights not used (``dropped``), and keep both lists on the model as
    ``missing_keys`` / ``dropped_keys``. Shared by BERT's and RoBERTa's ``from_pretrained``."""
    load_model_weights(model, sd, strict=False)
    if missing:
        logger.warning("%s: weights not in the checkpoint, left randomly initialised: %s", path, ", ".join(missing))
    if dropped:
        logger.info("%s: checkpoint weights %s does not use, dropped: %s", path, type(model).__name__, ", ".join(dropped))
    model.missing_keys, model.dropped_keys = missing, dropped
    return model


def checkpoint_dir(path) -> Path:
    """A checkpoint directory: ``path`` itself, or ``path/checkpoint`` for a training run's folder."""
    path = Path(path)
    if not (path / "config.json").is_file() and (path / "checkpoint" / "config.json").is_file():
        return path / "checkpoint"
    return path


def load_tokenizer_from(path):
    """The tokenizer that goes with a checkpoint: ``path/tokenizer/`` (minibert, any kind the project's
    ``load_tokenizer`` reads), or ``path/vocab.txt`` (Hugging Face; lower-casing from its
    tokenizer_config.json, default on as in bert-base-uncased)."""
    from minitransformer.data.tokenizers import load_tokenizer

    from .wordpiece import WordPieceTokenizer

    path = Path(path)
    if (path / "tokenizer").is_dir():
        return load_tokenizer(path / "tokenizer")
    if (path / "vocab.txt").is_file():
        lower = True
        if (path / "tokenizer_config.json").is_file():
            settings = read_json_object(path / "tokenizer_config.json", f"{path}: no tokenizer_config.json")
            lower = bool(settings.get("do_lower_case", True))
        return WordPieceTokenizer.from_file(path / "vocab.txt", do_lower_case=lower)
    raise ValueError(f"{path}: no vocab.txt (Hugging Face) nor tokenizer/ folder (minibert) in the folder; expected the "
                     f"tokenizer saved with the checkpoint")


# ----------------------------------------------------------------------------- the BERT family's folders


def family_config(config_class, d: dict, found: str, expected: str, path: Path):
    """``config_class`` from config.json's dict. Of the expected family: errors name the file. Of
    another: its sizes where they fit (its other keys ignored quietly), defaults otherwise, only to
    name the keys the expected family would need."""
    if found == expected:
        try:
            return config_class.from_dict(d)
        except ValueError as e:
            raise ValueError(f"{path / 'config.json'}: {e}") from None
    names = {f.name for f in dataclasses.fields(config_class)} - {"extra"}
    try:
        return config_class.from_dict({k: v for k, v in d.items() if k in names})
    except (ValueError, TypeError):
        return config_class()


def family_error(path, found: str, expected: str, cls, missing, unexpected) -> ValueError:
    """The error for a checkpoint of another family: found and expected family, missing and unexpected keys."""
    def short(keys):  # the body's keys first: they say most about what the checkpoint is
        keys = sorted(keys, key=lambda k: (not {"embeddings", "encoder"} & set(k.split(".")[:2]), k))
        return f"[{', '.join(keys[:8])}{', ...' if len(keys) > 8 else ''}] ({len(keys)})"

    what = (f"config.json says {expected!r} but the weights are not those of {cls.__name__}" if found == expected
            else f"a {found!r} checkpoint, expected {expected!r} for {cls.__name__}")
    return ValueError(f"{path}: {what}; missing keys {short(missing)}; unexpected keys {short(unexpected)}")


def load_family(cls, path, config_class, convert_key: Callable[[str], str | None], prefix: str,
                optional: tuple[str, ...], **overrides):
    """Build ``cls`` from a transformers folder of the family ``config_class.model_type`` and load
    its weights, renamed by ``convert_key``. Keys starting with one of ``optional`` (pooler, heads)
    may be missing (left random, logged) or unused (dropped); anything else missing or unexpected,
    or another model_type, raises :func:`family_error`. Shared by the family's loaders (ALBERT, ELECTRA, DistilBERT)."""
    path, expected = Path(path), config_class.model_type
    d = read_json_object(path / "config.json", f"{path}: no config.json -- not a checkpoint folder of {expected!r}")
    found = str(d.get("model_type"))
    config = family_config(config_class, {**d, **overrides}, found, expected, path)
    with torch.device("meta"):
        wanted = set(cls(config).state_dict()) - {"mlm_head.decoder.weight"}  # tied to the token table
    bare = not any(k.startswith(prefix) for k in wanted)  # AlbertModel / ElectraModel: no prefix
    sd = {}
    for key, value in read_weights(path).items():
        new = convert_key(key)
        if new is not None:
            sd[new[len(prefix):] if bare and new.startswith(prefix) else new] = value
    missing = sorted(k for k in wanted if k not in sd)
    unexpected = sorted(k for k in sd if k not in wanted)
    if found != expected or any(not k.startswith(optional) for k in missing + unexpected):
        raise family_error(path, found, expected, cls, missing, unexpected)
    return load_reporting(cls(config), {k: v for k, v in sd.items() if k in wanted}, path, missing, unexpected)
