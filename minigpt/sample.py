"""Text in, text out: load a trained GPT (ours or Hugging Face GPT-2) with its tokenizer, and
complete a prompt. Article §3.2.4 生成任务.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from minitransformer.checkpoint import read_json_object, resolve_checkpoint_dir

from .bpe import load_any_tokenizer
from .config import GPTConfig
from .generate import crop_prompt, stream_tokens
from .model import GPT


def find_checkpoint(path: str | os.PathLike) -> Path:
    """``path`` itself if it holds config.json, else ``path/checkpoint`` (a training out_dir)."""
    path = Path(path)
    for candidate in (path, path / "checkpoint"):
        candidate = resolve_checkpoint_dir(candidate)
        if (candidate / "config.json").is_file():
            return candidate
    raise FileNotFoundError(f"{path}: expected a checkpoint folder with config.json (or a training out_dir holding checkpoint/)")


def check_config(config: dict, file: Path) -> GPTConfig:
    """The GPTConfig of a ``python -m minigpt train`` config.json; ValueError naming the file and the
    missing or wrong field (before any weight is read)."""
    try:
        return GPTConfig.from_dict(config)
    except ValueError as e:
        raise ValueError(f"{file}: {e}") from None


def load_model_and_tokenizer(path: str | os.PathLike) -> tuple[GPT, object]:
    """A checkpoint of ``python -m minigpt train`` (weights + config + tokenizer/) or a Hugging Face
    GPT-2 folder (config.json with model_type gpt2, weights, vocab.json + merges.txt)."""
    ck = find_checkpoint(path)
    config = read_json_object(ck / "config.json", f"{ck}: no config.json")  # ValueError naming the file if not JSON
    if "model_type" in config or "n_positions" in config:
        return GPT.from_pretrained(ck), load_any_tokenizer(ck)
    check_config(config, ck / "config.json")
    model = GPT.from_checkpoint(ck)
    tokenizer_dir = ck / "tokenizer"
    if not tokenizer_dir.is_dir():
        raise FileNotFoundError(f"{ck}: no tokenizer/ folder -- expected the tokenizer saved with the checkpoint")
    tokenizer = load_any_tokenizer(tokenizer_dir)
    if tokenizer.vocab_size > model.config.vocab_size:
        raise ValueError(f"{ck}: tokenizer has {tokenizer.vocab_size} ids, model vocab_size is {model.config.vocab_size}")
    return model, tokenizer


def prompt_ids(tokenizer, prompt: str) -> list[int]:
    """The prompt's ids; an empty prompt starts from <|endoftext|> (GPT-2's convention)."""
    ids = tokenizer.encode(prompt) if prompt else []
    if not ids:
        eot = getattr(tokenizer, "eot_id", None)
        if eot is None:
            raise ValueError("prompt: expected some text (this tokenizer has no <|endoftext|> to start from)")
        ids = [eot]
    return ids


def continuation(tokenizer, head: str, context: list[int], new: list[int]) -> str:
    """The text ``new`` adds after ``context`` (whose text is ``head``): decode(context + new) with
    ``head`` cut off. Decoding ``new`` alone would lose what depends on its neighbour: SentencePiece
    drops the space of a leading '▁excellent' ("and" + "excellent" printed as "andexcellent")."""
    full = tokenizer.decode(context + new)
    return full[len(head):] if full.startswith(head) else tokenizer.decode(new)


@torch.no_grad()
def complete(model: GPT, tokenizer, prompt: str, max_new_tokens: int = 200, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None, greedy: bool = False, stop: str | None = None,
             seed: int = 1337, use_cache: bool = True) -> str:
    """The text the model writes after ``prompt`` (the prompt itself not included).

    Stops after ``max_new_tokens`` tokens, at <|endoftext|> (not included), or at the first
    occurrence of the string ``stop`` (cut before it). A prompt longer than block_size keeps its
    last block_size tokens, with a warning. ``seed`` fixes the sampling.
    """
    if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens: expected a non-negative integer, received {max_new_tokens!r}")
    if stop == "":
        raise ValueError("stop: expected a non-empty string, received ''")
    device = next(model.parameters()).device
    idx = torch.tensor([prompt_ids(tokenizer, prompt)], dtype=torch.long, device=device)  # (1, T)
    idx = crop_prompt(idx, model.config.block_size)
    generator = torch.Generator(device=device).manual_seed(seed)
    eot = getattr(tokenizer, "eot_id", None)
    context = idx[0].tolist()
    head = tokenizer.decode(context)
    new: list[int] = []
    text = ""
    model.eval()
    for token in stream_tokens(model, idx, max_new_tokens, temperature, top_k, top_p, greedy, use_cache, generator):
        t = int(token)
        if eot is not None and t == eot:
            break
        new.append(t)
        text = continuation(tokenizer, head, context, new)
        if stop is not None and stop in text:
            return text[: text.index(stop)]
    return text
