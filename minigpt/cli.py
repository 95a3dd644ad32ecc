"""Command line: ``python -m minigpt train ...`` and ``python -m minigpt sample ...``.

    python -m minigpt train --data input.txt --tokenizer char --max-steps 2000 --out-dir runs/shakespeare
    python -m minigpt sample --checkpoint runs/shakespeare --prompt "ROMEO:" --top-k 50 --seed 1
    torchrun --standalone --nproc_per_node 2 -m minigpt train --data input.txt     # data parallel

Bad input prints ``python -m minigpt: error: ...`` and exits with status 2 (no traceback).
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from minitransformer.cli import (NON_NEGATIVE_INT, POSITIVE_INT, PROBABILITY, SEED, TRAIN_TYPES, CLIError,
                                 add_dataclass_args, add_threads_argument, dataclass_from_args, number, set_threads)
from minitransformer.trainer import TRAIN_HELP, NonFiniteLossError, TrainConfig

from .config import GPTConfig, width_scaled_init_std
from .train import DEFAULT_DATA, TOKENIZER_KINDS, pretrain

PROG = "python -m minigpt"

TRAIN_DEFAULTS = {"out_dir": "runs/minigpt", "perplexity": True, "max_steps": 2000, "eval_interval": 250}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="GPT from scratch: pretrain on any text, sample with a KV cache.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,sample}")

    tr = sub.add_parser("train", help="pretrain (or fine-tune) a GPT on UTF-8 text files",
                        description="Pretrain a GPT on UTF-8 text: first 90% of each file for training, last 10% "
                                    "for validation. Reports train/val loss and perplexity; writes OUT_DIR/checkpoint.")
    tr.add_argument("--data", nargs="+", default=[str(p) for p in DEFAULT_DATA], metavar="FILE",
                    help="UTF-8 text files (default: the bundled bilingual corpus data/world_en.txt data/world_zh.txt)")
    tr.add_argument("--tokenizer", choices=TOKENIZER_KINDS, default="char",
                    help="char: one id per character; bpe / unigram: sentencepiece, learned on the training part (default: char)")
    tr.add_argument("--vocab-size", type=POSITIVE_INT, default=2000, help="upper bound for bpe / unigram (default: 2000)")
    tr.add_argument("--init-from", metavar="HF_DIR", help="start from a Hugging Face GPT-2 folder (weights and its BPE tokenizer)")
    model = tr.add_argument_group("model (minigpt.GPTConfig; taken from the checkpoint with --resume; with "
                                  "--init-from only --block-size (crops the positions), --dropout, --sdpa, --fused apply)")
    model.add_argument("--n-layer", type=POSITIVE_INT, default=4, help="decoder blocks (default: 4)")
    model.add_argument("--n-head", type=POSITIVE_INT, default=4, help="attention heads (default: 4)")
    model.add_argument("--n-embd", type=POSITIVE_INT, default=128, help="model width (default: 128)")
    model.add_argument("--block-size", type=POSITIVE_INT, default=64, help="context length in tokens (default: 64)")
    model.add_argument("--dropout", type=PROBABILITY, default=0.0, help="dropout probability (default: 0.0)")
    model.add_argument("--bias", action=argparse.BooleanOptionalAction, default=True, help="biases in Linear and LayerNorm")
    model.add_argument("--init-std", type=number(), default=None,
                       help="std of the initial weights (default: GPT-2's 0.02 carried to this width, 0.02*sqrt(768/n_embd); "
                            "0.049 at 128)")
    model.add_argument("--sdpa", action=argparse.BooleanOptionalAction, default=True,
                       help="attention through F.scaled_dot_product_attention (--no-sdpa: the explicit formula)")
    model.add_argument("--fused", action=argparse.BooleanOptionalAction, default=True,
                       help="LayerNorm and GELU through PyTorch's kernels (--no-fused: the explicit formulas)")
    add_dataclass_args(tr, TrainConfig, TRAIN_DEFAULTS, TRAIN_HELP, "training (minitransformer.trainer.TrainConfig)",
                       types=TRAIN_TYPES)

    sa = sub.add_parser("sample", help="complete a prompt with a trained GPT",
                        description="Complete a prompt. Stops after --max-new-tokens, at <|endoftext|> or at --stop. "
                                    "A prompt longer than block_size keeps its last block_size tokens (with a warning).")
    sa.add_argument("--checkpoint", required=True, metavar="DIR",
                    help="a training out_dir, its checkpoint/ folder, or a Hugging Face GPT-2 folder")
    sa.add_argument("--prompt", default="", help="text to continue; \\n and \\t mean newline and tab "
                                                 "(default: start from <|endoftext|>)")
    sa.add_argument("--max-new-tokens", type=NON_NEGATIVE_INT, default=200, help="default: 200")
    sa.add_argument("--temperature", type=number(), default=1.0, help="> 0; below 1 sharper, above 1 flatter (default: 1.0)")
    sa.add_argument("--top-k", type=number(integer=True), default=None, help="sample among the K most likely tokens")
    sa.add_argument("--top-p", type=number(), default=None, help="nucleus: the smallest set with probability >= P")
    sa.add_argument("--greedy", action="store_true", help="always take the most likely token (no sampling)")
    sa.add_argument("--stop", default=None, metavar="TEXT", help="stop where TEXT first appears (not printed); "
                                                                 "\\n and \\t mean newline and tab")
    sa.add_argument("--seed", type=SEED, default=1337, help="sampling seed (default: 1337)")
    sa.add_argument("--num-samples", type=POSITIVE_INT, default=1, help="completions to print, seeds SEED, SEED+1, ... (default: 1)")
    sa.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu", help="default: cpu")
    sa.add_argument("--no-cache", dest="use_cache", action="store_false", help="recompute the prefix every step (slow)")
    for p in (tr, sa):
        add_threads_argument(p)
    return parser


def run_train(args: argparse.Namespace) -> int:
    train_config = dataclass_from_args(TrainConfig, args)
    init_std = width_scaled_init_std(args.n_embd) if args.init_std is None else args.init_std
    model_config = GPTConfig(block_size=args.block_size, vocab_size=1, n_layer=args.n_layer, n_head=args.n_head,
                             n_embd=args.n_embd, dropout=args.dropout, bias=args.bias, use_sdpa=args.sdpa,
                             fused=args.fused, init_std=init_std)
    if args.vocab_size < 1:
        raise ValueError(f"--vocab-size: expected a positive integer, received {args.vocab_size}")
    try:
        trainer = pretrain(model_config, train_config, args.data, kind=args.tokenizer, vocab_size=args.vocab_size,
                           init_from=args.init_from)
    except NonFiniteLossError as e:
        raise CLIError(str(e)) from None
    if trainer.ctx.is_main:
        print(summary(trainer), flush=True)
    return 0


def summary(trainer) -> str:
    """The last train and val rows: loss and perplexity; where the checkpoint is."""
    lines = [f"model: {trainer.raw_model.num_parameters():,} parameters; checkpoint: {trainer.checkpoint_dir}"]
    for split in ("train", *trainer.eval_splits):
        rows = [r for r in trainer.history if r.get("split") == split]
        if rows:
            r = rows[-1]
            ppl = f", perplexity {r['perplexity']:.3f}" if "perplexity" in r else ""
            lines.append(f"step {r['step']} {split}: loss {r['loss']:.4f}{ppl}")
    return "\n".join(lines)


def unescape(text: str) -> str:
    r"""Read the two-character sequences \n and \t typed on a command line as newline and tab."""
    return text.replace("\\n", "\n").replace("\\t", "\t")


def run_sample(args: argparse.Namespace) -> int:
    import torch

    from minitransformer.distributed import resolve_device

    from .sample import complete, load_model_and_tokenizer

    prompt, stop = unescape(args.prompt), None if args.stop is None else unescape(args.stop)
    if args.num_samples < 1:
        raise ValueError(f"--num-samples: expected a positive integer, received {args.num_samples}")
    model, tokenizer = load_model_and_tokenizer(args.checkpoint)
    model.to(resolve_device(args.device))
    with torch.no_grad():
        for i in range(args.num_samples):
            text = complete(model, tokenizer, prompt, args.max_new_tokens, args.temperature, args.top_k, args.top_p,
                            args.greedy, stop, args.seed + i, args.use_cache)
            if i:
                print("---")
            print(prompt + text, flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    set_threads(args.threads)
    if args.command == "train":
        return run_train(args)
    return run_sample(args)


if __name__ == "__main__":  # pragma: no cover
    from minitransformer.cli import run_cli

    sys.exit(run_cli(main, prog=PROG))
