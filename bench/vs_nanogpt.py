"""minigpt against nanoGPT on nanoGPT's own CPU recipe, side by side (issue #16).

Runs nanoGPT's README command for a CPU ("I only have a macbook") from a nanoGPT checkout and
``python -m minigpt train`` with the same recipe, alternating the two ``--repeats`` times, each a
whole process (start-up, data, evaluations and checkpoints included), and prints wall time, CPU
time and peak memory (each child's own rusage, from os.wait4) and the validation loss at the last
step, with the ratios minigpt / nanoGPT. Nothing of nanoGPT is copied here: it runs from
``--nanogpt``, whose ``data/shakespeare_char`` must hold the prepared train.bin, val.bin and
meta.pkl (nanoGPT's ``python data/shakespeare_char/prepare.py``).

    python bench/vs_nanogpt.py --nanogpt ../nanoGPT --repeats 3
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from minitransformer.cli import POSITIVE_INT  # noqa: E402

STEPS = 2000
NANOGPT_ARGS = ["config/train_shakespeare_char.py", "--device=cpu", "--compile=False", "--eval_iters=20", "--log_interval=1",
                "--block_size=64", "--batch_size=12", "--n_layer=4", "--n_head=4", "--n_embd=128", f"--max_iters={STEPS}",
                f"--lr_decay_iters={STEPS}", "--dropout=0.0"]
MINIGPT_ARGS = ["--tokenizer", "char", "--n-layer", "4", "--n-head", "4", "--n-embd", "128", "--block-size", "64",
                "--batch-size", "12", "--max-steps", str(STEPS), "--lr", "1e-3", "--min-lr", "1e-4", "--warmup-steps", "100",
                "--betas", "0.9", "0.99", "--weight-decay", "0.1", "--grad-clip", "1.0", "--eval-interval", "250",
                "--eval-steps", "20", "--no-bias", "--no-progress"]


def check_nanogpt(path: Path) -> list[str]:
    """What ``path`` lacks to run nanoGPT's recipe, as sentences (empty when ready)."""
    problems = []
    for name in ("train.py", "model.py", "configurator.py", "config/train_shakespeare_char.py"):
        if not (path / name).is_file():
            problems.append(f"{path / name}: expected nanoGPT's {name} (a checkout of github.com/karpathy/nanoGPT)")
    if problems:
        return problems
    data = path / "data" / "shakespeare_char"
    missing = [n for n in ("train.bin", "val.bin", "meta.pkl") if not (data / n).is_file()]
    if missing:
        problems.append(f"{data}: expected the prepared {', '.join(missing)}; prepare them with "
                        f"`cd {path} && python data/shakespeare_char/prepare.py` (it downloads input.txt unless "
                        f"{data / 'input.txt'} is there already)")
    return problems


def run(cmd: list[str], cwd: Path, env: dict) -> tuple[float, float, float, str]:
    """(wall s, CPU s, peak MiB, output) of one child process."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}:\n{text[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, text


def last_val_loss(text: str, kind: str) -> float:
    pattern = rf"step {STEPS}: train loss [\d.]+, val loss ([\d.]+)" if kind == "nanogpt" else rf"step {STEPS} val: loss ([\d.]+)"
    found = re.findall(pattern, text)
    if not found:
        raise RuntimeError(f"{kind}: no validation loss at step {STEPS} in its output:\n{text[-1500:]}")
    return float(found[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nanogpt", type=Path, required=True, help="a nanoGPT checkout with data/shakespeare_char prepared")
    ap.add_argument("--repeats", type=POSITIVE_INT, default=3)
    ap.add_argument("--threads", type=POSITIVE_INT, default=2, help="OMP_NUM_THREADS for both (default 2)")
    a = ap.parse_args(argv)
    nanogpt = a.nanogpt.resolve()
    problems = check_nanogpt(nanogpt)
    if problems:
        print("bench/vs_nanogpt.py: " + "\n  ".join(problems), file=sys.stderr)
        return 2
    if a.repeats < 1 or a.threads < 1:
        ap.error(f"expected --repeats >= 1 and --threads >= 1, received {a.repeats} and {a.threads}")
    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    data = nanogpt / "data" / "shakespeare_char" / "input.txt"
    if not data.is_file():
        print(f"bench/vs_nanogpt.py: {data}: expected Tiny Shakespeare's input.txt beside the prepared files "
              "(minigpt reads the text itself)", file=sys.stderr)
        return 2
    import torch

    print(f"$ python bench/vs_nanogpt.py --nanogpt {a.nanogpt} --repeats {a.repeats} --threads {a.threads}")
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, load average before {os.getloadavg()[0]:.2f}\n")
    print("| run | program | wall s | CPU s | peak MiB | val loss at 2000 |\n|---|---|---|---|---|---|")
    results = {"nanoGPT": [], "minigpt": []}
    with tempfile.TemporaryDirectory(prefix="vs_nanogpt_") as work:
        for k in range(a.repeats):
            for name in ("nanoGPT", "minigpt") if k % 2 == 0 else ("minigpt", "nanoGPT"):
                if name == "nanoGPT":
                    cmd = [sys.executable, "train.py", *NANOGPT_ARGS, f"--out_dir={work}/nanogpt_out"]
                    wall, cpu, mem, text = run(cmd, nanogpt, env)
                    loss = last_val_loss(text, "nanogpt")
                else:
                    cmd = [sys.executable, "-m", "minigpt", "train", "--data", str(data), *MINIGPT_ARGS, "--threads",
                           str(a.threads), "--overwrite", "--out-dir", f"{work}/minigpt_out"]
                    wall, cpu, mem, text = run(cmd, REPO, env)
                    loss = last_val_loss(text, "minigpt")
                results[name].append((wall, cpu, mem, loss))
                print(f"| {k + 1} | {name} | {wall:.1f} | {cpu:.1f} | {mem:.0f} | {loss:.4f} |", flush=True)
    print("\n| figure (median) | nanoGPT | minigpt | minigpt / nanoGPT |\n|---|---|---|---|")
    for i, label in enumerate(("wall time, s", "CPU time, s", "peak memory, MiB", "val loss at 2000")):
        n, m = (statistics.median(r[i] for r in results[p]) for p in ("nanoGPT", "minigpt"))
        print(f"| {label} | {n:.{4 if i == 3 else 1}f} | {m:.{4 if i == 3 else 1}f} | {m / n:.3f}× |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
