"""Pretraining throughput: minibert's BertForPreTraining vs transformers' at the same configuration,
in the same process, on the same batches (forward + backward + AdamW step, MLM + NSP loss).

    python bench/bert_throughput.py                    # small config, CPU
    python bench/bert_throughput.py --hidden 768 --layers 12 --heads 12 --seq 128 --batch 8

The models alternate round by round (in a rotating order), so a load change on a shared machine
hits them alike; on a busy machine single rounds still vary by ±20%, so use many rounds.
Reports sequences/s (median over rounds) and the ratios to transformers. Two minibert rows:
"all positions" computes MLM logits at every position as transformers does (like for like);
"masked positions only" runs the MLM head on the selected ~15% only, as ``python -m minibert
pretrain`` does (same loss and gradients, less work).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import transformers  # noqa: E402

from minibert import BertConfig, BertForPreTraining  # noqa: E402
from minibert.pretraining import mlm_mask_tokens  # noqa: E402


def make_batches(n: int, batch: int, seq: int, vocab: int, seed: int = 0) -> list[dict]:
    """Random [CLS] A [SEP] B [SEP] rows with a few padded ones, MLM-masked, NSP labels."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        ids = torch.randint(5, vocab, (batch, seq), generator=g)
        ids[:, 0], ids[:, seq // 2], ids[:, -1] = 2, 3, 3
        mask = torch.ones_like(ids)
        mask[: batch // 4, 3 * seq // 4:] = 0
        ids = ids.masked_fill(mask == 0, 0)
        types = torch.zeros_like(ids)
        types[:, seq // 2 + 1:] = 1
        special = torch.isin(ids, torch.tensor([0, 1, 2, 3, 4]))
        inputs, labels = mlm_mask_tokens(ids, special, vocab, [0, 1, 2, 3, 4], 4, g)
        nsp = torch.randint(0, 2, (batch,), generator=g)
        out.append(dict(input_ids=inputs, token_type_ids=types, attention_mask=mask, labels=labels,
                        next_sentence_label=nsp))
    return out


def step_time(model, opt, batch, **kw) -> float:
    t0 = time.perf_counter()
    loss = model(**batch, **kw).loss
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--vocab", type=int, default=8000)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--rounds", type=int, default=12, help="timed rounds per model (alternating)")
    p.add_argument("--steps", type=int, default=3, help="steps per round")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = leave as is)")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    kw = dict(vocab_size=a.vocab, hidden_size=a.hidden, num_hidden_layers=a.layers, num_attention_heads=a.heads,
              intermediate_size=4 * a.hidden, max_position_embeddings=max(512, a.seq), hidden_dropout_prob=0.1,
              attention_probs_dropout_prob=0.1)
    torch.manual_seed(0)
    ours = BertForPreTraining(BertConfig(**kw, use_sdpa=True)).train()
    ref = transformers.BertForPreTraining(transformers.BertConfig(**kw)).train()
    ours_sparse = BertForPreTraining(BertConfig(**kw, use_sdpa=True)).train()
    models = {"minibert (all positions)": (ours, {}), "minibert (masked positions only)": (ours_sparse, {"masked_positions_only": True}),
              "transformers": (ref, {})}
    # fused AdamW for all three: what transformers' Trainer uses by default on torch >= 2.8
    # ("adamw_torch_fused") and what minibert's make_optimizer builds
    opts = {k: torch.optim.AdamW(m.parameters(), lr=1e-4, fused=True) for k, (m, _) in models.items()}
    batches = make_batches(a.steps, a.batch, a.seq, a.vocab)
    for name, (m, extra) in models.items():  # warm-up
        step_time(m, opts[name], batches[0], **extra)
    times = {k: [] for k in models}
    names = list(models)
    for r in range(a.rounds):
        for name in names[r % 3:] + names[:r % 3]:  # rotate the order: no model always runs first
            m, extra = models[name]
            times[name].append(sum(step_time(m, opts[name], b, **extra) for b in batches) / len(batches))
    rate = {k: a.batch / statistics.median(v) for k, v in times.items()}
    print(f"config: hidden {a.hidden}, layers {a.layers}, heads {a.heads}, vocab {a.vocab}, seq {a.seq}, batch {a.batch}; "
          f"torch {torch.__version__}, transformers {transformers.__version__} (attn_implementation="
          f"{ref.config._attn_implementation}), threads {torch.get_num_threads()}, load {os.getloadavg()[0]:.2f}")
    print("| model | sequences/s (median) | ms/step | ratio to transformers |")
    print("|---|---|---|---|")
    for k in models:
        print(f"| {k} | {rate[k]:.1f} | {1000 * statistics.median(times[k]):.0f} | {rate[k] / rate['transformers']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
