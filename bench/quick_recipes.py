"""Time the quick-start commands of minigpt/README.md and minibert/README.md (issue #16), exactly as
written there: each README's first ```bash block under "Quick start", plus minibert's three-command
headline ("Few labels after pretraining"). Runs them in a temporary folder (their runs/ go there),
one after another, and prints wall time and the figure each README promises.

    python bench/quick_recipes.py --shakespeare ../shared/data/tinyshakespeare/input.txt

``--shakespeare`` replaces the README's ``input.txt`` (nanoGPT's data/shakespeare_char/input.txt).
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def bash_blocks(readme: Path, heading: str) -> list[str]:
    """The commands of the first ```bash block after the heading that starts with ``heading``:
    comment lines dropped, backslash continuations joined, shell variables (S="...") expanded."""
    text = readme.read_text(encoding="utf-8")
    start = text.index(heading)
    block = re.search(r"```bash\n(.*?)```", text[start:], re.S).group(1)
    lines, variables = [], {}
    for line in block.replace("\\\n", " ").splitlines():
        line = line.split("  #")[0].strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r'(\w+)="(.*)"', line)
        if m:
            variables[m.group(1)] = " ".join(m.group(2).split())
            continue
        for name, value in variables.items():
            line = line.replace(f"${name}", value)
        lines.append(" ".join(line.split()))
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shakespeare", type=Path, help="Tiny Shakespeare's input.txt (skip nanoGPT's recipe without it)")
    a = ap.parse_args(argv)
    if a.shakespeare is not None and not a.shakespeare.is_file():
        ap.error(f"--shakespeare: expected Tiny Shakespeare's input.txt, received {a.shakespeare} (not a file)")
    commands = [("minigpt", c) for c in bash_blocks(REPO / "minigpt" / "README.md", "## Quick start")]
    commands += [("minibert", c) for c in bash_blocks(REPO / "minibert" / "README.md", "## Quick start")]
    commands += [("minibert", c) for c in bash_blocks(REPO / "minibert" / "README.md", "### Few labels after pretraining")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    print(f"$ python bench/quick_recipes.py{' --shakespeare ' + str(a.shakespeare) if a.shakespeare else ''}\n")
    print("| README | command | wall s | last line |\n|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="quick_recipes_") as work:
        os.symlink(REPO / "data", Path(work) / "data")  # the READMEs' data/ paths
        for package, command in commands:
            if "input.txt" in command:
                if a.shakespeare is None:
                    continue
                command = command.replace("input.txt", str(a.shakespeare.resolve()))
            argv_ = shlex.split(command)
            if argv_[0] == "python":
                argv_[0] = sys.executable
            t0 = time.perf_counter()
            proc = subprocess.run(argv_ + (["--no-progress"] if "train" in argv_ or "pretrain" in argv_ or "finetune" in argv_ else []),
                                  cwd=work, env=env, capture_output=True, text=True)
            seconds = time.perf_counter() - t0
            out = (proc.stdout + proc.stderr).strip().splitlines()
            figures = [line for line in out if line.strip().startswith(("mlm_acc", "accuracy"))]  # pretrain, finetune
            last = figures[-1] if figures else next(
                (line for line in reversed(out) if line.strip() and "checkpoint:" not in line and "F1 =" not in line), "")
            shown = command.replace(str(a.shakespeare.resolve()) if a.shakespeare else "\0", "input.txt")
            print(f"| {package} | `{shown[:90]}{'…' if len(shown) > 90 else ''}` | {seconds:.1f} | "
                  f"{'FAILED ' if proc.returncode else ''}{last.strip()[:100]} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
