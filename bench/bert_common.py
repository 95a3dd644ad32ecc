"""Set-up shared by the minibert benchmarks (bert_finetune_polarity.py, bert_ner_wnut17.py):
the small-model arguments, the unlabelled pretraining text, and running ``python -m minibert``
in this process."""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from minibert.cli import PROG, main as minibert_main  # noqa: E402
from minitransformer.cli import run_cli  # noqa: E402


def run_minibert(argv: list) -> float:
    """Run ``python -m minibert ARGV`` in this process; return its wall time in seconds."""
    t0 = time.perf_counter()
    code = run_cli(minibert_main, [str(a) for a in argv], prog=PROG)
    if code != 0:
        raise SystemExit(f"{PROG} {' '.join(map(str, argv))} failed with exit code {code}")
    return time.perf_counter() - t0


def add_small_bert_args(p: argparse.ArgumentParser, pretrain_steps: int, epochs: float, vocab_size: int) -> None:
    """The options both benchmarks share: schedule lengths, fine-tuning lr, model size, seed."""
    p.add_argument("--pretrain-steps", type=int, default=pretrain_steps)
    p.add_argument("--epochs", type=float, default=epochs)
    p.add_argument("--lr", type=float, default=5e-4, help="fine-tuning peak learning rate")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=2)
    p.add_argument("--vocab-size", type=int, default=vocab_size)
    p.add_argument("--initializer-range", type=float, default=0.02,
                   help="std of the initial weights (BERT: 0.02; 0.02*sqrt(768/H) keeps BERT's scale at width H)")
    p.add_argument("--seed", type=int, default=0)


def model_size_args(a: argparse.Namespace) -> list:
    """minibert CLI options for the model size in ``a`` (and --no-progress, --seed)."""
    return ["--hidden-size", a.hidden, "--num-hidden-layers", a.layers, "--num-attention-heads", a.heads,
            "--intermediate-size", 4 * a.hidden, "--max-position-embeddings", 128, "--initializer-range", a.initializer_range,
            "--no-progress", "--seed", a.seed]


def pretrain_on_texts(texts: list[str], a: argparse.Namespace, out: Path, max_len: int) -> float:
    """Shuffle ``texts``, group them five to a pseudo-document (so NSP has little signal; MLM is
    what is learnt), write out/unlabelled.txt and run ``minibert pretrain`` with a sentencepiece
    BPE tokenizer into out/pretrain. Returns the wall time in seconds."""
    texts = list(texts)
    random.Random(a.seed).shuffle(texts)
    docs = ["\n".join(texts[i:i + 5]) for i in range(0, len(texts), 5)]
    (out / "unlabelled.txt").write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    return run_minibert(["pretrain", "--data", out / "unlabelled.txt", "--tokenizer", "sentencepiece",
                         "--vocab-size", a.vocab_size, "--out-dir", out / "pretrain", "--max-steps", a.pretrain_steps,
                         "--warmup-steps", a.pretrain_steps // 20, "--max-len", max_len, "--batch-size", 32,
                         "--eval-interval", a.pretrain_steps // 5, *model_size_args(a)])
