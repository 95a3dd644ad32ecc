"""Export minibert models as Hugging Face BERT folders: ``save_pretrained(model, folder)``, so that
``transformers.BertForPreTraining.from_pretrained(folder)`` (or BertModel, BertFor*Classification)
loads them with the same logits. The inverse of ``minibert.hf.from_pretrained``. Article §3.2.2 模型选择.

The folder (written atomically: a temp sibling, then a rename, as ``minitransformer.checkpoint``)::

    config.json          BertConfig's Hugging Face fields + model_type "bert" + architectures
    model.safetensors    the weights under Hugging Face's names (the table below)
    vocab.txt            WordPiece vocabulary, id = line number   } when the tokenizer is a
    tokenizer_config.json  do_lower_case, tokenizer_class         }  WordPieceTokenizer
    tokenizer/           any other minibert tokenizer (``tokenizer.save``), which transformers ignores

minibert names -> Hugging Face names (``bert.`` prefix for a head model, none for BertModel)::

    embeddings.norm                        embeddings.LayerNorm
    encoder.layers.i.self_attn.q/k/v_proj  encoder.layer.i.attention.self.query/key/value
    encoder.layers.i.self_attn.out_proj    encoder.layer.i.attention.output.dense
    encoder.layers.i.norm1                 encoder.layer.i.attention.output.LayerNorm
    encoder.layers.i.ff.fc1                encoder.layer.i.intermediate.dense
    encoder.layers.i.ff.fc2 / norm2        encoder.layer.i.output.dense / LayerNorm
    mlm_head.dense / norm                  cls.predictions.transform.dense / LayerNorm
    mlm_head.bias                          cls.predictions.bias
    mlm_head.decoder.weight                (not stored: tied to the word embeddings, as transformers saves it)
    nsp_head                               cls.seq_relationship
    classifier                             classifier
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch
import torch.nn as nn

from minitransformer.checkpoint import MODEL_FILE, TOKENIZER_DIR, atomic_directory, unwrap_model, write_safetensors

from .config import BertConfig
from .heads import BertForPreTraining, BertForSequenceClassification, BertForTokenClassification
from .model import BertModel
from .wordpiece import WordPieceTokenizer

EXPORTABLE = (BertModel, BertForPreTraining, BertForSequenceClassification, BertForTokenClassification)
TIED_DECODER = "mlm_head.decoder.weight"
# BertConfig fields that choose a kernel, not a model: the same function either way, not written
RUNTIME_FIELDS = ("use_sdpa", "use_fused")

_TO_HF = [  # (regex on a minibert key, Hugging Face replacement)
    (r"^bert\.", ""),  # the body is re-prefixed below for head models
    (r"^embeddings\.norm\.", "embeddings.LayerNorm."),
    (r"^encoder\.layers\.(\d+)\.self_attn\.q_proj\.", r"encoder.layer.\1.attention.self.query."),
    (r"^encoder\.layers\.(\d+)\.self_attn\.k_proj\.", r"encoder.layer.\1.attention.self.key."),
    (r"^encoder\.layers\.(\d+)\.self_attn\.v_proj\.", r"encoder.layer.\1.attention.self.value."),
    (r"^encoder\.layers\.(\d+)\.self_attn\.out_proj\.", r"encoder.layer.\1.attention.output.dense."),
    (r"^encoder\.layers\.(\d+)\.norm1\.", r"encoder.layer.\1.attention.output.LayerNorm."),
    (r"^encoder\.layers\.(\d+)\.ff\.fc1\.", r"encoder.layer.\1.intermediate.dense."),
    (r"^encoder\.layers\.(\d+)\.ff\.fc2\.", r"encoder.layer.\1.output.dense."),
    (r"^encoder\.layers\.(\d+)\.norm2\.", r"encoder.layer.\1.output.LayerNorm."),
    (r"^mlm_head\.dense\.", "cls.predictions.transform.dense."),
    (r"^mlm_head\.norm\.", "cls.predictions.transform.LayerNorm."),
    (r"^mlm_head\.bias$", "cls.predictions.bias"),
    (r"^nsp_head\.", "cls.seq_relationship."),
]
_HF_BODY = re.compile(r"^(embeddings\.(word_embeddings|position_embeddings|token_type_embeddings|LayerNorm)\."
                      r"|encoder\.layer\.\d+\.(attention\.(self\.(query|key|value)|output\.(dense|LayerNorm))"
                      r"|intermediate\.dense|output\.(dense|LayerNorm))\.|pooler\.dense\.)(weight|bias)$")
_HF_HEAD = re.compile(r"^(cls\.predictions\.transform\.(dense|LayerNorm)\.(weight|bias)|cls\.predictions\.bias"
                      r"|cls\.seq_relationship\.(weight|bias)|classifier\.(weight|bias))$")


def to_hf_key(key: str, prefix: str = "bert.") -> str:
    """One minibert state-dict key -> Hugging Face's name; body keys get ``prefix`` ("bert." in a
    head model, "" in a bare BertModel). ValueError for a key that is not one of BERT's weights."""
    name = key
    for pattern, repl in _TO_HF:
        name = re.sub(pattern, repl, name)
    if _HF_BODY.match(name):
        return prefix + name
    if _HF_HEAD.match(name):
        return name
    raise ValueError(f"save_pretrained: expected BERT weights, received the key {key!r} that has no Hugging Face name")


def state_dict_to_hf(model: nn.Module) -> dict[str, torch.Tensor]:
    """minibert weights -> Hugging Face names, as contiguous float CPU copies. The MLM decoder
    (tied to the word embeddings) is left out, as transformers leaves it out; a decoder that is
    no longer equal to the word embeddings is refused, since the export would silently drop it."""
    sd = model.state_dict()
    prefix = "" if isinstance(model, BertModel) else "bert."
    if TIED_DECODER in sd and not torch.equal(sd.pop(TIED_DECODER), sd["bert.embeddings.word_embeddings.weight"]):
        raise ValueError("save_pretrained: expected mlm_head.decoder.weight tied to the word embeddings (BERT's "
                         "layout), received a different matrix")
    out = {to_hf_key(k, prefix): v.detach().to("cpu").contiguous().clone() for k, v in sd.items()}
    if len(out) != len(sd):
        raise ValueError("save_pretrained: expected one Hugging Face name per weight, received colliding names")
    return out


def config_to_hf(config: BertConfig, architecture: str) -> dict:
    """The config.json dict: BertConfig's fields (already Hugging Face's names), ``model_type``
    "bert", ``architectures`` [architecture], ``position_embedding_type`` "absolute"; minibert's
    kernel switches (:data:`RUNTIME_FIELDS`) and unset labels are left out. minibert-only keys
    (``task``, ``max_len``) stay: transformers keeps them as plain attributes."""
    d = config.to_dict()
    for name in RUNTIME_FIELDS:
        d.pop(name)
    if d.get("id2label") is None:
        d.pop("id2label", None)  # transformers then assumes 2 labels, as BertConfig.num_labels does
    if d.get("task") is None:
        d.pop("task", None)
    return {**d, "architectures": [architecture], "model_type": "bert", "position_embedding_type": "absolute"}


def tokenizer_config(tokenizer: WordPieceTokenizer, config: BertConfig) -> dict:
    """tokenizer_config.json for transformers' BertTokenizer (and minibert's ``load_tokenizer_from``)."""
    return {
        "tokenizer_class": "BertTokenizer", "do_lower_case": tokenizer.do_lower_case,
        "strip_accents": tokenizer.strip_accents, "tokenize_chinese_chars": True,
        "model_max_length": config.max_position_embeddings,
        "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]",
    }


def write_tokenizer(tokenizer, config: BertConfig, folder: Path) -> None:
    """A WordPieceTokenizer as vocab.txt + tokenizer_config.json (Hugging Face's layout); any
    other tokenizer with ``save(dir)`` into ``tokenizer/`` (minibert's layout). The vocabulary
    must have exactly ``vocab_size`` tokens (the embedding table's rows)."""
    n = tokenizer.vocab_size
    if n != config.vocab_size:
        raise ValueError(f"save_pretrained: the tokenizer has {n} tokens but the model's embeddings have "
                         f"vocab_size={config.vocab_size} rows; expected the same size")
    if isinstance(tokenizer, WordPieceTokenizer):
        (folder / "vocab.txt").write_text("\n".join(tokenizer.inv) + "\n", encoding="utf-8")
        text = json.dumps(tokenizer_config(tokenizer, config), indent=2, ensure_ascii=False)
        (folder / "tokenizer_config.json").write_text(text + "\n", encoding="utf-8")
    elif callable(getattr(tokenizer, "save", None)):
        (folder / TOKENIZER_DIR).mkdir()
        tokenizer.save(str(folder / TOKENIZER_DIR))
    else:
        raise ValueError(f"tokenizer: expected a WordPieceTokenizer or a tokenizer with save(dir), "
                         f"received {type(tokenizer).__name__}")


def save_pretrained(model: nn.Module, folder: str | os.PathLike, tokenizer=None) -> Path:
    """Write ``model`` (BertModel, BertForPreTraining, BertForSequenceClassification or
    BertForTokenClassification; DDP / torch.compile wrappers are unwrapped) as a Hugging Face BERT
    folder, atomically. ``transformers.<architecture>.from_pretrained(folder)`` and
    ``minibert.<class>.from_pretrained(folder)`` both load it with the same logits. Returns the folder."""
    model = unwrap_model(model)
    if not isinstance(model, EXPORTABLE):
        names = ", ".join(c.__name__ for c in EXPORTABLE)
        raise ValueError(f"model: expected one of minibert's {names}, received {type(model).__name__}")
    tensors = state_dict_to_hf(model)
    config = config_to_hf(model.config, type(model).__name__)
    with atomic_directory(folder) as tmp:
        write_safetensors(tensors, tmp / MODEL_FILE, {"format": "pt"})
        (tmp / "config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        if tokenizer is not None:
            write_tokenizer(tokenizer, model.config, tmp)
    return Path(folder)
