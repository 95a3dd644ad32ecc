"""Pretraining a GPT on any UTF-8 text: read, split, tokenize, cut into windows, train.

    text files ─ split: first 90% of each file → train, last 10% → val
               ─ tokenizer (char | sentencepiece bpe | unigram) learned on the training parts
               ─ token streams, files joined by <|endoftext|>
               ─ random windows of block_size + 1 tokens: inputs and next-token targets
               ─ minitransformer.trainer.Trainer (AdamW, warmup + cosine, clipping, checkpoints, DDP)

Article §3.2.1 数据准备 and §3.2.3 预训练 (here the causal-LM objective of GPT rather than BERT's MLM).
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from minitransformer.batches import by_split, random_window_batches
from minitransformer.checkpoint import load_trainer_state, read_config, seed_everything
from minitransformer.data import GPT_SPECIALS, CharTokenizer, SentencePieceTokenizer, check_min_length, load_text
from minitransformer.data.world_files import DATA_DIR
from minitransformer.runs import check_known_characters, check_run_dir, find_resume_checkpoint
from minitransformer.trainer import TrainConfig, Trainer

from .config import GPTConfig
from .model import GPT
from .bpe import load_any_tokenizer

DEFAULT_DATA = (DATA_DIR / "world_en.txt", DATA_DIR / "world_zh.txt")  # the bundled bilingual toy corpus
TOKENIZER_KINDS = ("char", "bpe", "unigram")


# ----------------------------------------------------------------------------- text -> token streams


def split_text(text: str, val_fraction: float = 0.1) -> tuple[str, str]:
    """First (1 - f) of the characters for training, the last f for validation (nanoGPT's split)."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction: expected a fraction in (0, 1), received {val_fraction}")
    cut = int(len(text) * (1.0 - val_fraction))
    return text[:cut], text[cut:]


def make_tokenizer(kind: str, texts: Sequence[str], vocab_size: int = 2000):
    """A tokenizer learned on ``texts``: one id per character (``char``), or sentencepiece
    ``bpe`` / ``unigram`` with at most ``vocab_size`` pieces. Specials: [UNK] and <|endoftext|>."""
    if kind == "char":
        return CharTokenizer.train(texts, specials=GPT_SPECIALS)
    if kind in ("bpe", "unigram"):
        return SentencePieceTokenizer.train(texts, vocab_size, model_type=kind, specials=GPT_SPECIALS)
    raise ValueError(f"tokenizer: expected one of {TOKENIZER_KINDS}, received {kind!r}")


def join_documents(documents: Sequence[Sequence[int] | torch.Tensor], eot: int | None) -> torch.Tensor:
    """One 1-D int32 stream: the documents' ids joined by the end-of-text id ``eot`` (None: none).
    int32 holds any vocabulary's ids in half of int64's memory (1.1M characters of Tiny
    Shakespeare: 4.4 MB instead of 8.9 MB); batches are cast to int64 as they are cut. One
    document that is already a 1-D int32 tensor comes back without a copy (a view of it)."""
    pieces: list[torch.Tensor] = []
    for i, ids in enumerate(documents):
        if i and eot is not None:
            pieces.append(torch.tensor([eot], dtype=torch.int32))
        pieces.append(torch.as_tensor(ids, dtype=torch.int32).reshape(-1))
    if len(pieces) == 1:
        return pieces[0]
    return torch.cat(pieces) if pieces else torch.zeros(0, dtype=torch.int32)


def encode_documents(tokenizer, texts: Sequence[str]) -> torch.Tensor:
    """One 1-D int32 stream: the texts' ids joined by the end-of-text id (when the tokenizer has
    one); see :func:`join_documents`."""
    return join_documents([tokenizer.encode(text) for text in texts], getattr(tokenizer, "eot_id", None))


@dataclass
class Corpus:
    """Train and validation token streams (1-D int32, see :func:`join_documents`) and the tokenizer that made them."""

    train: torch.Tensor
    val: torch.Tensor
    tokenizer: object


def load_corpus(paths: Sequence[str | os.PathLike], block_size: int, tokenizer=None, kind: str = "char",
                vocab_size: int = 2000, val_fraction: float = 0.1, known_by: str | None = None) -> Corpus:
    """Read UTF-8 text files, split each (train | val), learn a tokenizer on the training parts
    unless one is given, and encode. ValueError when a split is shorter than block_size + 1 tokens.
    ``known_by`` (a resumed run: where the given tokenizer comes from): ValueError when the training
    parts hold characters that tokenizer does not know (see :func:`minitransformer.runs.check_known_characters`)."""
    if not paths:
        raise ValueError("data: expected at least one text file, received none")
    texts = {Path(p): load_text(p) for p in paths}
    parts = {p: split_text(t, val_fraction) for p, t in texts.items()}
    if tokenizer is None:
        tokenizer = make_tokenizer(kind, [tr for tr, _ in parts.values()], vocab_size)
    elif known_by is not None:
        check_known_characters(tokenizer, {f"{p} (training part)": tr for p, (tr, _) in parts.items()}, known_by)
    encoded = {}  # each part encoded once, kept as int32
    for path, (tr, va) in parts.items():  # every file must give windows on both sides
        tr_ids = torch.tensor(tokenizer.encode(tr), dtype=torch.int32)
        check_min_length(len(tr_ids), block_size, f"{path} (first {1 - val_fraction:.0%}, training part)")
        va_ids = torch.tensor(tokenizer.encode(va), dtype=torch.int32)
        check_min_length(len(va_ids), block_size, f"{path} (last {val_fraction:.0%}, validation part)")
        encoded[path] = tr_ids, va_ids
    eot = getattr(tokenizer, "eot_id", None)
    train = join_documents([tr for tr, _ in encoded.values()], eot)
    val = join_documents([va for _, va in encoded.values()], eot)
    return Corpus(train, val, tokenizer)


def lm_batches(corpus: Corpus, block_size: int, batch_size: int, seed: int):
    """get_batch(split, index) -> {"input_ids": (B, T), "labels": (B, T)}, labels already shifted
    by one (see :func:`minitransformer.batches.random_window_batches`)."""
    return by_split(
        train=random_window_batches(corpus.train, block_size, batch_size, seed),
        val=random_window_batches(corpus.val, block_size, batch_size, seed),
    )


def causal_lm_loss(model, batch) -> tuple[torch.Tensor, dict[str, float]]:
    """The Trainer's loss_fn: ``model(input_ids, labels)`` with labels = the next tokens."""
    _, loss = model(batch["input_ids"], batch["labels"])
    return loss, {}


# ----------------------------------------------------------------------------- the run


def resume_state(out_dir: str | os.PathLike) -> tuple[GPTConfig, object, int]:
    """Model config, tokenizer and data seed of the checkpoint in ``out_dir/checkpoint`` (or the
    ``.checkpoint.old`` a crash mid-swap left; :func:`minitransformer.runs.find_resume_checkpoint`):
    a resumed run must rebuild the same model and draw the same stream of batches."""
    ck = find_resume_checkpoint(out_dir)
    state = load_trainer_state(ck)
    return GPTConfig.from_dict(read_config(ck)), load_any_tokenizer(ck / "tokenizer"), int(state["train_config"]["seed"])


def pretrain(model_config: GPTConfig | None, train_config: TrainConfig, paths: Sequence[str | os.PathLike],
             tokenizer=None, kind: str = "char", vocab_size: int = 2000, init_from: str | None = None) -> Trainer:
    """Train a GPT on the text files ``paths`` and return the Trainer (``trainer.history`` holds
    the metrics rows, ``out_dir/checkpoint`` the model, its config and its tokenizer).

    - from scratch: ``GPT(model_config)``, vocab_size set from the tokenizer (given, or learned:
      ``kind``, ``vocab_size``);
    - ``init_from``: GPT-2 weights and tokenizer from a Hugging Face folder (fine-tuning); its
      position table is cropped to model_config.block_size when that is shorter (dropout, use_sdpa
      and fused also come from model_config);
    - ``train_config.resume``: config, tokenizer and seed from the checkpoint; weights, optimizer
      and RNG states are restored by the Trainer.
    """
    check_run_dir(train_config.out_dir, train_config.resume, train_config.overwrite)  # before any work
    known_by = None
    if train_config.resume:
        model_config, tokenizer, seed = resume_state(train_config.out_dir)
        train_config = dataclasses.replace(train_config, seed=seed)  # the data stream continues
        init_from, known_by = None, f"the tokenizer saved in {find_resume_checkpoint(train_config.out_dir)}"
    seed_everything(train_config.seed)  # fixes the initial weights
    if init_from is not None:
        from .bpe import GPT2Tokenizer

        kw = {} if model_config is None else dict(dropout=model_config.dropout, use_sdpa=model_config.use_sdpa,
                                                  fused=model_config.fused)
        model = GPT.from_pretrained(init_from, **kw)
        if model_config is not None and model_config.block_size < model.config.block_size:
            model.crop_block_size(model_config.block_size)  # shorter windows, saved in config.json
        tokenizer = tokenizer if tokenizer is not None else GPT2Tokenizer.from_dir(init_from)
        block = model.config.block_size
        corpus = load_corpus(paths, block, tokenizer)
    else:
        block = model_config.block_size
        corpus = load_corpus(paths, block, tokenizer, kind, vocab_size, known_by=known_by)
        model = GPT(dataclasses.replace(model_config, vocab_size=corpus.tokenizer.vocab_size))
    get_batch = lm_batches(corpus, block, train_config.batch_size, train_config.seed)
    trainer = Trainer(model, train_config, get_batch, loss_fn=causal_lm_loss, model_config=model.config.to_dict(),
                      tokenizer=corpus.tokenizer)
    trainer.fit()
    return trainer
