"""``python -m minigpt {train,sample}`` (see minigpt/cli.py); also works under ``torchrun -m minigpt``."""
import sys

from minitransformer.cli import run_cli

from .cli import PROG, main

sys.exit(run_cli(main, prog=PROG))
