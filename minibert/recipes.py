"""The tiny BERT of ch08 §8, pretrained on the world's notes: one recipe, one function, used by
ch08, ch10, bench/few_label_gain.py and the README. Article §3.2.3 预训练, §3.3.2 少量标注.

    from minibert.recipes import NOTES_RECIPE, pretrain_on_notes
    folder, history = pretrain_on_notes("runs/notes", NOTES_RECIPE, lang="en", seed=0)

What makes this pretraining teach sentiment (bench/README.md, "Few labels after pretraining on
the notes"): the notes (``data/notes_*.txt``) join two opinion words of one sentiment and name the
feeling they caused; a tokenizer of 1,200 pieces keeps every opinion word whole; dropout 0, a
constant learning rate of 2e-3 after a short warm-up, 30% of the tokens masked, 750 batches of 128 (about 50 s
on two cores). The MLM then
learns which words are good in a sudden drop of its loss after a plateau.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

import torch

from minitransformer.checkpoint import save_checkpoint
from minitransformer.data import BERT_SPECIALS, SentencePieceTokenizer, load_world_documents, load_world_notes
from minitransformer.trainer import TrainConfig, Trainer

from .config import BertConfig
from .evaluate import predict_ids
from .finetune import finetune
from .heads import BertForPreTraining
from .pretraining import PretrainingData, pretraining_loss, tokenize_documents

NOTES_RECIPE = dict(chapter="ch08 notes BERT v2", vocab_size=1200, max_len=64, n_val_docs=100, split_seed=0,
                    hidden_size=64, layers=2, heads=2, intermediate_size=256, steps=750, batch_size=128, lr=2e-3,
                    warmup=30, p_mlm=0.3, eval_every=250, eval_batches=8)

def notes_recipe(fast: bool = False) -> dict:
    """NOTES_RECIPE, or with ``fast`` (the chapters' --fast) a smoke run: 40 steps of 16 pairs."""
    if not fast:
        return dict(NOTES_RECIPE)
    return {**NOTES_RECIPE, "steps": 40, "batch_size": 16, "eval_every": 20, "eval_batches": 2}


# Fine-tuning steps (batch 16, lr 1e-3, 10% warm-up, cosine to lr/10) for n labelled short reviews, by n:
# chosen on the validation short reviews: half as many for n <= 128 left some runs near chance (bench/README.md).
FEW_LABEL_STEPS = {16: 120, 32: 120, 64: 140, 128: 160, 256: 200, 512: 160, 2400: 300}


def few_label_accuracy(clf, tokenizer, train_enc, test_enc, steps: int, seed: int, out_dir, lr: float = 1e-3,
                       val_enc=None, freeze: bool = False) -> float:
    """Test accuracy of ``clf`` (a classifier built and, for a pretrained start, loaded by the caller)
    after ``steps`` steps of fine-tuning on ``train_enc``: batch 16, AdamW at ``lr`` with 10% warm-up and a
    cosine decay to lr/10, weight decay 0.01, no evaluation during training, no checkpoint. The one
    few-label recipe of ch10 §4, ch16 §3–4 and the benches. ``freeze``: a linear probe (only the head
    learns). Accuracy = #(argmax = gold) / #test, each test example once."""
    cfg = TrainConfig(out_dir=str(out_dir), max_steps=steps, batch_size=16, lr=lr, min_lr=lr / 10, warmup_steps=steps // 10,
                      weight_decay=0.01, eval_interval=0, checkpoint_interval=-1, log_interval=steps, progress=False,
                      plot=False, overwrite=True, seed=seed)
    finetune(clf, tokenizer, "classify", train_enc, val_enc if val_enc else test_enc[:16], cfg, freeze=freeze)
    pred = predict_ids(clf, test_enc, tokenizer.pad_id)
    return sum(p == d["label"] for p, d in zip(pred, test_enc)) / len(test_enc)


def find_pretrained(folders, record: dict, name: str = "pretrained_notes") -> Path | None:
    """The first ``folder/name`` whose ``folder/name.json`` records exactly ``record`` (the recipe,
    language and seed that :func:`pretrain_on_notes` writes beside the model), else None: how ch10 and
    ch16 find the model ch08 saved, and retrain only when the recipe changed."""
    for folder in folders:
        folder = Path(folder)
        try:
            same = json.loads((folder / f"{name}.json").read_text(encoding="utf-8")) == record
        except (OSError, ValueError):
            continue
        if same and (folder / name / "config.json").is_file():
            return folder / name
    return None


def train_notes_tokenizer(recipe: dict, lang: str, data_dir=None) -> SentencePieceTokenizer:
    """SentencePiece (BPE) on all the world's unlabelled text, stories and notes: ``vocab_size`` pieces."""
    text = load_world_documents(lang, data_dir) + load_world_notes(lang, data_dir)
    return SentencePieceTokenizer.train(["\n".join(d) for d in text], recipe["vocab_size"], specials=BERT_SPECIALS)


def split_notes(recipe: dict, lang: str = "en", data_dir=None) -> dict[str, list]:
    """The world's notes (documents of sentences) as {"train": …, "val": …}: shuffled with
    ``recipe["split_seed"]``, the first ``recipe["n_val_docs"]`` held out. The one split of
    ch08 §8's pretraining, ch16 §3–5 and bench/objectives.py."""
    docs = list(load_world_notes(lang, data_dir))
    random.Random(recipe["split_seed"]).shuffle(docs)
    n_val = recipe["n_val_docs"]
    return {"train": docs[n_val:], "val": docs[:n_val]}


def pretrain_on_notes(out_dir, recipe: dict = NOTES_RECIPE, lang: str = "en", seed: int = 0, data_dir=None,
                      progress: bool = False, tokenizer=None) -> tuple[Path, list[dict]]:
    """MLM + NSP on the notes with ``recipe``; saves ``out_dir/pretrained_notes`` (safetensors, config.json,
    tokenizer) and ``out_dir/pretrained_notes.json`` (the recipe, language and seed). Returns (folder, history).
    ``tokenizer``: one ``train_notes_tokenizer(recipe, lang, data_dir)`` already gave (else it is trained here)."""
    out_dir = Path(out_dir)
    if tokenizer is None:
        tokenizer = train_notes_tokenizer(recipe, lang, data_dir)
    splits = {name: tokenize_documents(docs, tokenizer) for name, docs in split_notes(recipe, lang, data_dir).items()}
    data = PretrainingData(splits, tokenizer, batch_size=recipe["batch_size"], max_len=recipe["max_len"], seed=seed, p_mlm=recipe["p_mlm"])
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=recipe["hidden_size"], num_hidden_layers=recipe["layers"],
                        num_attention_heads=recipe["heads"], intermediate_size=recipe["intermediate_size"],
                        max_position_embeddings=recipe["max_len"], hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = BertForPreTraining(config)
    train_config = TrainConfig(out_dir=str(out_dir / "notes_run"), max_steps=recipe["steps"], batch_size=recipe["batch_size"],
                               lr=recipe["lr"], min_lr=recipe["lr"], warmup_steps=recipe["warmup"], weight_decay=0.01,
                               betas=(0.9, 0.98), eval_interval=recipe["eval_every"], eval_steps=recipe["eval_batches"],
                               log_interval=10, checkpoint_interval=-1, progress=progress, overwrite=True, seed=seed)
    history = Trainer(model, train_config, data, loss_fn=pretraining_loss, model_config=config.to_dict(),
                      tokenizer=tokenizer).fit()
    saved = save_checkpoint(out_dir / "pretrained_notes", model.eval(), config.to_dict(), tokenizer)
    (out_dir / "pretrained_notes.json").write_text(json.dumps({**recipe, "lang": lang, "seed": seed}, indent=1) + "\n",
                                                   encoding="utf-8")
    return saved, history
