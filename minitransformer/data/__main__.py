"""Command line for the bundled data.

    python -m minitransformer.data generate --out data/ --seed 0
    python -m minitransformer.data stats data/reviews_en.train.tsv --format classify
    python -m minitransformer.data stats SMSSpamCollection --format classify --file-format tsv --text-column 1 --label-column 0
    python -m minitransformer.data stats wnut17train.conll --format conll
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from ..cli import CLIError, run_cli
from .conll import load_conll
from .loaders import load_classification, load_documents, load_parallel, load_text
from .stats import classification_stats, conll_stats, parallel_stats, text_stats
from .world_files import generate_world

PROG = "python -m minitransformer.data"


def _column(value: str) -> int | str:
    """'1' or '-1' -> a column number, anything else -> a column name."""
    return int(value) if value.lstrip("-").isdigit() else value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Generate the toy world; describe a dataset file.")
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="write the bilingual toy world's files")
    gen.add_argument("--out", default="data", help="output directory (default: data)")
    gen.add_argument("--seed", type=int, default=0)
    st = sub.add_parser("stats", help="read a dataset file and print its counts")
    st.add_argument("path")
    st.add_argument("--format", required=True, choices=("text", "classify", "conll", "parallel"))
    st.add_argument("--encoding", default="utf-8")
    st.add_argument("--file-format", choices=("tsv", "csv", "jsonl"), help="classify: file format (default: from suffix)")
    st.add_argument("--text-column", type=_column, default="text", help="classify: name or 0-based number")
    st.add_argument("--label-column", type=_column, default="label", help="classify: name or 0-based number")
    st.add_argument("--quoting", choices=("csv", "none"), default="csv", help="classify: csv quoting or none")
    st.add_argument("--source-column", type=_column, default=0, help="parallel: name or 0-based number")
    st.add_argument("--target-column", type=_column, default=1, help="parallel: name or 0-based number")
    st.add_argument("--token-column", type=int, default=0, help="conll: 0-based column of the token")
    st.add_argument("--tag-column", type=int, default=-1, help="conll: column of the tag (default: last)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "generate":
        try:
            sizes = generate_world(args.out, args.seed)
        except OSError as e:
            raise CLIError(f"--out {args.out}: cannot write there ({e.strerror or e})") from None
        for name, size in sizes.items():
            print(f"{size:>9,}  {args.out.rstrip('/')}/{name}")
        print(f"{sum(sizes.values()):>9,}  bytes in {len(sizes)} files")
        return 0
    if args.format == "text":
        stats = text_stats(load_text(args.path, args.encoding), load_documents(args.path, args.encoding))
    elif args.format == "classify":
        stats = classification_stats(load_classification(
            args.path, text_column=args.text_column, label_column=args.label_column, format=args.file_format,
            quoting=args.quoting, encoding=args.encoding))
    elif args.format == "conll":
        stats = conll_stats(load_conll(args.path, token_column=args.token_column, tag_column=args.tag_column,
                                       encoding=args.encoding))
    else:
        stats = parallel_stats(load_parallel(args.path, source_column=args.source_column,
                                             target_column=args.target_column, encoding=args.encoding))
    for key, value in stats.items():
        print(f"{key:<24}{value:>10,}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, prog=PROG))
