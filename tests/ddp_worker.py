"""A tiny language model for the trainer tests, and the script the torchrun test launches.

As a script: ``python -m torch.distributed.run --standalone --nproc_per_node 2 tests/ddp_worker.py OUT_DIR``
trains TinyLM for a few steps under DDP and writes OUT_DIR/metrics.jsonl and a checkpoint.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

if __name__ == "__main__":  # run as a file by torchrun: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from minitransformer.distributed import cleanup_distributed  # noqa: E402
from minitransformer.trainer import TrainConfig, Trainer, by_split, default_loss_fn, random_window_batches  # noqa: E402

VOCAB, BLOCK = 17, 8


class TinyLM(nn.Module):
    """Embedding -> dropout -> Linear+GELU -> LayerNorm -> Linear to vocab; next-token CE loss.
    Returns ``(logits, loss)`` like nanoGPT (loss None without labels)."""

    def __init__(self, vocab: int = VOCAB, dim: int = 16, dropout: float = 0.0):
        super().__init__()
        self.config = {"vocab": vocab, "dim": dim, "dropout": dropout}
        self.emb = nn.Embedding(vocab, dim)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(dim, dim)
        self.ln = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab)

    def forward(self, input_ids, labels=None):
        h = self.ln(F.gelu(self.fc(self.drop(self.emb(input_ids)))))  # (B, T, C)
        logits = self.head(self.drop(h))  # (B, T, V)
        loss = None if labels is None else F.cross_entropy(logits.flatten(0, 1), labels.flatten())
        return logits, loss


def token_stream(n: int = 400, seed: int = 0) -> torch.Tensor:
    """A learnable 1-D stream: mostly ``t+1 mod V`` with some random tokens."""
    g = torch.Generator().manual_seed(seed)
    x = torch.empty(n, dtype=torch.long)
    x[0] = 0
    noise = torch.randint(0, VOCAB, (n,), generator=g)
    flip = torch.rand(n, generator=g) < 0.2
    for i in range(1, n):
        x[i] = noise[i] if flip[i] else (x[i - 1] + 1) % VOCAB
    return x


def lm_batches(batch_size: int, seed: int = 0):
    return by_split(
        train=random_window_batches(token_stream(400, 1), BLOCK, batch_size, seed),
        val=random_window_batches(token_stream(200, 2), BLOCK, batch_size, seed),
    )


def run(out_dir: str, steps: int = 4, batch_size: int = 8, grad_accum: int = 2) -> list[dict]:
    """The run both the torchrun workers and the single-process reference perform. Each process
    also writes the rows of the first training micro-batch it saw to ``first_rows_rank{r}.json``."""
    torch.manual_seed(0)
    model = TinyLM(dropout=0.0)
    cfg = TrainConfig(out_dir=out_dir, max_steps=steps, batch_size=batch_size, grad_accum=grad_accum, lr=1e-2,
                      min_lr=1e-3, warmup_steps=1, eval_interval=2, eval_steps=2, log_interval=1, progress=False)
    seen = []

    def loss_fn(model, batch):
        if model.training and not seen:
            seen.append(batch["input_ids"].tolist())
        return default_loss_fn(model, batch)

    trainer = Trainer(model, cfg, lm_batches(batch_size), loss_fn=loss_fn)
    rows = trainer.fit()
    Path(out_dir, f"first_rows_rank{trainer.ctx.rank}.json").write_text(json.dumps(seen[0]))
    return rows


if __name__ == "__main__":
    torch.set_num_threads(1)
    run(sys.argv[1])
    cleanup_distributed()
