"""``python -m minibert {pretrain,finetune,evaluate} ...`` (see minibert/README.md)."""
import sys

from minitransformer.cli import run_cli

from .cli import PROG, main

if __name__ == "__main__":
    sys.exit(run_cli(main, prog=PROG))
