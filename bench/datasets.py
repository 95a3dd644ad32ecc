"""Read every real dataset in shared/data with the right loader and print their counts next to the
counts their README files state; then the bundled toy world's counts and a bag-of-words baseline
on its reviews (which negation and contrast are built to defeat).

    python bench/datasets.py --root ../shared/data [--pretrain-seconds 60]

Not a test: it needs the shared datasets, which tests never read. Exits 1 if a count differs.
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from minitransformer.cli import run_cli
from minitransformer.data import (
    load_classification, load_classification_files, load_conll, load_parallel, load_text, load_world_documents,
    load_world_ner, load_world_reviews, load_world_translation, split_dataset, split_lines, to_char_level,
)


def real_datasets(root: Path) -> list[tuple[str, str, int, int]]:
    """(dataset, what is counted, count, expected count) for each dataset in ``root``."""
    rows = []
    text = load_text(root / "tinyshakespeare/input.txt")
    rows.append(("Tiny Shakespeare", "characters", len(text), 1_115_394))
    rows.append(("Tiny Shakespeare", "distinct characters", len(set(text)), 65))

    # label<TAB>message, no header; messages contain quotes, so no csv quoting
    sms = load_classification(root / "sms_spam_collection/SMSSpamCollection", format="tsv",
                              text_column=1, label_column=0, quoting="none")
    rows.append(("SMS Spam", "messages", len(sms), 5_574))
    rows.append(("SMS Spam", "spam messages", sum(e.label == "spam" for e in sms), 747))
    rows.append(("SMS Spam", "distinct messages", len({e.text for e in sms}), 5_171))
    parts = split_dataset(sms, seed=0, group=lambda e: e.text)   # dedup first; a text never in two splits
    rows.append(("SMS Spam", "after split_dataset (train+val+test)", sum(map(len, parts)), 5_171))

    # this copy was converted to UTF-8 by NLTK (see its README.original.txt), so utf-8 is right here
    folder = root / "sentence_polarity"
    polarity = load_classification_files({"pos": folder / "rt-polarity.pos", "neg": folder / "rt-polarity.neg"},
                                         encoding="utf-8")
    rows.append(("Sentence polarity (MR)", "sentences", len(polarity), 10_662))

    # text<TAB>label, no header, unbalanced double quotes and two U+0085 inside imdb lines
    labelled = [e for name in ("amazon_cells", "imdb", "yelp")
                for e in load_classification(root / f"sentiment_labelled_sentences/{name}_labelled.txt",
                                             text_column=0, label_column=1, quoting="none")]
    rows.append(("Sentiment labelled sentences", "sentences", len(labelled), 3_000))

    for split, name, expected in (("train", "wnut17train.conll", 3_394), ("dev", "emerging.dev.conll", 1_009),
                                  ("test", "emerging.test.annotated", 1_287)):
        rows.append(("WNUT-17", f"{split} sentences", len(load_conll(root / "wnut17" / name)), expected))

    for split, expected in (("train", 3_997), ("dev", 500), ("test", 500)):
        sents = load_conll(root / f"uner_zh_gsdsimp/zh_gsdsimp-ud-{split}.iob2", token_column=1, tag_column=2)
        rows.append(("Universal NER zh", f"{split} sentences", len(sents), expected))
    train_words = load_conll(root / "uner_zh_gsdsimp/zh_gsdsimp-ud-train.iob2", token_column=1, tag_column=2)
    rows.append(("Universal NER zh", "train PER entities (B- tags)",
                 sum(t == "B-PER" for s in train_words for t in s.tags), 2_148))
    rows.append(("Universal NER zh", "train PER entities, char level",
                 sum(t == "B-PER" for s in map(to_char_level, train_words) for t in s.tags), 2_148))

    pairs = load_parallel(root / "tatoeba_cmn_eng/cmn.txt")   # en<TAB>zh<TAB>attribution
    rows.append(("Tatoeba en-zh", "pairs", len(pairs), 26_388))
    rows.append(("Tatoeba en-zh", "distinct English sentences", len({en for en, _ in pairs}), 25_331))

    poems = [line for line in split_lines(load_text(root / "tang_poems/tang_poems.txt")) if line]
    rows.append(("Tang poems", "poems (lines)", len(poems), 16_008))
    rows.append(("Tang poems", "characters (excl. newlines)", sum(map(len, poems)), 1_058_866))
    return rows


def world_counts() -> list[tuple[str, str, int]]:
    rows = []
    for lang in ("en", "zh"):
        docs = load_world_documents(lang)
        rows.append((f"world_{lang}.txt", "documents / sentences", f"{len(docs):,} / {sum(map(len, docs)):,}"))
    for lang in ("en", "zh"):
        sizes = [len(load_world_reviews(lang, s)) for s in ("train", "val", "test")]
        rows.append((f"reviews_{lang}.*.tsv", "reviews train / val / test", " / ".join(f"{n:,}" for n in sizes)))
    for lang in ("en", "zh"):
        sizes = [len(load_world_ner(lang, s)) for s in ("train", "val", "test")]
        rows.append((f"ner_{lang}.*.conll", "sentences train / val / test", " / ".join(f"{n:,}" for n in sizes)))
    sizes = [len(load_world_translation(s)) for s in ("train", "val", "test")]
    rows.append(("translation.*.tsv", "pairs train / val / test", " / ".join(f"{n:,}" for n in sizes)))
    return rows


def bag_of_words_accuracy(n_train: int, lang: str = "en", steps: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Logistic regression on word (en) or character (zh) presence: (train accuracy, test accuracy)."""
    train, test = load_world_reviews(lang, "train")[:n_train], load_world_reviews(lang, "test")
    units = (lambda t: re.findall(r"\w+", t.lower())) if lang == "en" else list
    vocab = {u: i for i, u in enumerate(sorted({u for e in train for u in units(e.text)}))}

    def features(examples):
        x = np.zeros((len(examples), len(vocab)))
        for row, e in enumerate(examples):
            x[row, [vocab[u] for u in units(e.text) if u in vocab]] = 1.0
        return x, np.array([e.label == "pos" for e in examples], dtype=float)

    (x, y), (xt, yt) = features(train), features(test)
    w, b = np.random.default_rng(seed).normal(0, 0.01, x.shape[1]), 0.0
    for _ in range(steps):   # full-batch gradient descent on the mean cross-entropy + small L2
        g = 1 / (1 + np.exp(-(x @ w + b))) - y
        w -= 0.5 * (x.T @ g / len(y) + 1e-3 * w)
        b -= 0.5 * g.mean()
    return float(((x @ w + b > 0) == y).mean()), float(((xt @ w + b > 0) == yt).mean())


def pretraining_probe(seconds: float, sizes: Sequence[int] = (32, 64), seeds: int = 3) -> list[tuple[int, int, float, float]]:
    """Does pretraining on the unlabelled world text help with few labels? A word-level GRU language
    model (torch.nn.GRU, not the project's models) is trained on world_en.txt for ``seconds``; then a
    logistic regression on its last hidden state is fitted to ``n`` labelled reviews and scored on the
    test reviews, against the same probe on an untrained GRU. Rows: (n, seed, pretrained, untrained)."""
    import random
    import torch
    from torch import nn

    torch.manual_seed(0)
    words = lambda s: re.findall(r"\w+|[.,]", s.lower())
    docs = load_world_documents("en")
    vocab = {w: i + 2 for i, w in enumerate(sorted({w for d in docs for s in d for w in words(s)}))}  # 0 pad, 1 unk
    encode = lambda s: [vocab.get(w, 1) for w in words(s)]
    pad = lambda seqs: torch.tensor([x + [0] * (max(map(len, seqs)) - len(x)) for x in seqs])

    class LM(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb, self.rnn, self.head = nn.Embedding(len(vocab) + 2, 64), nn.GRU(64, 128, batch_first=True), nn.Linear(128, len(vocab) + 2)

        def forward(self, x):                       # (B, T) -> (B, T, 128)
            return self.rnn(self.emb(x))[0]

    lm, seqs = LM(), [sum((encode(s) for s in d), [])[:160] for d in docs]
    opt, rng, start = torch.optim.Adam(lm.parameters(), 3e-3), random.Random(0), time.perf_counter()
    while time.perf_counter() - start < seconds:
        x = pad(rng.sample(seqs, 32))
        loss = nn.functional.cross_entropy(lm.head(lm(x[:, :-1])).flatten(0, 1), x[:, 1:].flatten(), ignore_index=0)
        opt.zero_grad()
        loss.backward()
        opt.step()

    def probe(model, n, seed):
        train = random.Random(seed).sample(load_world_reviews("en", "train"), n)
        test = load_world_reviews("en", "test")

        def features(examples):
            x = pad([encode(e.text) for e in examples])
            with torch.no_grad():
                h = model(x)                        # (B, T, 128)
            last = (x > 0).sum(1) - 1
            return h[torch.arange(len(examples)), last], torch.tensor([e.label == "pos" for e in examples]).long()

        (f, y), (ft, yt) = features(train), features(test)
        clf = nn.Linear(128, 2)
        clf_opt = torch.optim.Adam(clf.parameters(), 1e-2)
        for _ in range(300):
            clf_loss = nn.functional.cross_entropy(clf(f), y) + 1e-3 * clf.weight.pow(2).sum()
            clf_opt.zero_grad()
            clf_loss.backward()
            clf_opt.step()
        return float((clf(ft).argmax(-1) == yt).float().mean())

    rows = []
    for n in sizes:
        for seed in range(seeds):
            torch.manual_seed(seed)
            rows.append((n, seed, probe(lm, n, seed), probe(LM(), n, seed)))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="../shared/data", help="the shared datasets folder")
    parser.add_argument("--pretrain-seconds", type=float, default=0.0,
                        help="also pretrain a GRU language model this long and probe it with few labels (0: skip)")
    args = parser.parse_args(argv)
    root = Path(args.root)
    if not root.is_dir():
        raise ValueError(f"--root: expected the shared datasets folder, received {root} (not a directory)")
    start = time.perf_counter()
    rows = real_datasets(root)
    print(f"| dataset | count | loaded | expected | ok |\n| --- | --- | ---: | ---: | --- |")
    for name, what, got, expected in rows:
        print(f"| {name} | {what} | {got:,} | {expected:,} | {'yes' if got == expected else 'NO'} |")
    print(f"\nread in {time.perf_counter() - start:.1f} s\n")
    print("| bundled world file | count | value |\n| --- | --- | ---: |")
    for name, what, value in world_counts():
        print(f"| {name} | {what} | {value} |")
    print("\n| bag-of-words baseline on world reviews | train examples | train acc | test acc |\n| --- | ---: | ---: | ---: |")
    for lang in ("en", "zh"):
        for n in (32, 2400):
            train_acc, test_acc = bag_of_words_accuracy(n, lang)
            print(f"| {lang} | {n:,} | {train_acc:.3f} | {test_acc:.3f} |")
    if args.pretrain_seconds > 0:
        print(f"\n| probe on GRU states ({args.pretrain_seconds:g} s of LM pretraining) | labelled reviews | seed "
              f"| pretrained: test acc | untrained: test acc |\n| --- | ---: | ---: | ---: | ---: |")
        for n, seed, pretrained, untrained in pretraining_probe(args.pretrain_seconds):
            print(f"| en | {n} | {seed} | {pretrained:.3f} | {untrained:.3f} |")
    return 0 if all(got == expected for _, _, got, expected in rows) else 1


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="bench/datasets.py"))
