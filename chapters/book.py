"""The small helper every chapter uses: options, seeds, checks that print what they verified,
figures, and one machine-readable summary line for the runner (``python -m chapters``).

    from chapters.book import Chapter, plt
    ch = Chapter(__file__)                 # parses --fast / --out / --seed / --threads, seeds, sets threads
    n = ch.steps(2000, 200)                # fewer steps with --fast (or CHAPTERS_FAST=1)
    ch.show("scores", s)                   # prints "scores: (2, 4, 4) float32"
    ch.check("rows sum to 1", ok, "max dev 1e-7")             # ✓ rows sum to 1 (max dev 1e-7)
    ch.check_close("matches torch.nn.LayerNorm", ours, ref, atol=1e-5)
    ch.check_value("test accuracy", acc, low=0.8)               # ✓ test accuracy (value 0.953, needs >= 0.8)
    ch.manual_seed(3)                      # seeds with ch.seed_for(3) = 3 + 1000 · ch.seed
    ch.verify(check_masked_attention, masked_attention)       # run an exercise's check
    ch.savefig(fig, "attention_heatmap")  # ch.out / "attention_heatmap.png", figure closed
    ch.done()                              # @@CHAPTER {"checks": 12, "figures": [...], ...}

A failed check raises ``CheckFailed`` (an ``AssertionError``) whose message names the check.

Results must hold on any machine, so a run can be repeated with other seeds and thread counts:
``--seed N`` (or ``CHAPTERS_SEED=N``, default 0) shifts every seed a chapter draws through
``ch.seed_for(k)`` / ``ch.manual_seed(k)`` (seed 0 gives the book's numbers), and ``--threads N``
(or ``CHAPTERS_THREADS=N``, default 1) sets ``torch.set_num_threads``. Every ``ch.check_value`` is
listed with its bounds in the summary line, so ``bench/chapter_spread.py`` can measure the margins.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
import traceback
from pathlib import Path

import matplotlib

if "ipykernel" not in sys.modules:  # scripts and the runner draw off-screen; notebooks keep their backend
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import numpy as np  # noqa: E402
import torch  # noqa: E402

from chapters.options import check_output_dir, parse_count  # noqa: E402,F401  (parse_count re-exported)

__all__ = ["Chapter", "CheckFailed", "plt"]

SUMMARY_PREFIX = "@@CHAPTER "


class CheckFailed(AssertionError):
    """A chapter's check did not hold. The message names the check and what was measured."""


def _excepthook(exc_type, exc, tb):
    """For a failed check, show the chapter's own lines of the traceback, not this helper's."""
    if not issubclass(exc_type, CheckFailed):
        return sys.__excepthook__(exc_type, exc, tb)
    frames = [f for f in traceback.extract_tb(tb) if Path(f.filename).resolve() != Path(__file__).resolve()]
    sys.stderr.write("Traceback (most recent call last):\n" + "".join(traceback.format_list(frames)))
    sys.stderr.write(f"CheckFailed: {exc}\n")


def _in_notebook() -> bool:
    return "ipykernel" in sys.modules


def _to_tensor(x) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float64)
    return torch.as_tensor(np.asarray(x, dtype=np.float64))


def _parse(argv):
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--fast", action="store_true")
    ap.add_argument("--out", default=None)
    ap.add_argument("--seed", default=None)
    ap.add_argument("--threads", default=None)
    args, _unknown = ap.parse_known_args(argv)  # unknown: e.g. Jupyter's "-f kernel.json"
    return args


def _option(args_value, env: str, option: str, minimum: int, default: int) -> int:
    """The option's value from argv, else from the environment variable ``env``, else ``default``.
    A bad value exits with status 2 and a one-line message (raises ValueError in a notebook)."""
    text = args_value if args_value is not None else os.environ.get(env, "")
    if text in (None, ""):
        return default
    try:
        return parse_count(option if args_value is not None else env, text, minimum)
    except ValueError as e:
        if _in_notebook():
            raise
        sys.stderr.write(f"error: {e}\n")
        raise SystemExit(2) from None


def _out_dir(path, option: str) -> Path:
    """The figures folder, created; a path that cannot be (a file, read-only) exits with status 2
    and a one-line message naming ``option`` (raises ValueError in a notebook)."""
    try:
        return check_output_dir(option, path)
    except ValueError as e:
        if _in_notebook():
            raise
        sys.stderr.write(f"error: {e}\n")
        raise SystemExit(2) from None


class Chapter:
    """One chapter's run: ``fast`` (bool), ``out`` (Path for figures), ``seed`` and ``threads`` (int), ``name``.

    file: the chapter's ``__file__`` (its stem names the chapter and the default output folder);
    None looks for ``__file__`` in the caller's globals and falls back to "notebook".
    seed: the run's seed when neither --seed nor CHAPTERS_SEED gives one (default 0).
    argv: the options to parse (default ``sys.argv[1:]``): ``--fast``, ``--out DIR``, ``--seed N``
    (N ≥ 0), ``--threads N`` (N ≥ 1; bad values exit with status 2).
    The environment gives defaults: ``CHAPTERS_FAST=1``, ``CHAPTERS_OUT=DIR``, ``CHAPTERS_SEED=N``,
    ``CHAPTERS_THREADS=N``. The constructor calls ``torch.set_num_threads(threads)`` (default 1:
    the book's matrices are tiny, and one thread does not fight other processes for cores) and
    seeds Python, numpy and torch with ``seed_for(0)``.
    """

    def __init__(self, file: str | os.PathLike | None = None, seed: int = 0, argv: list[str] | None = None):
        if file is None:
            file = sys._getframe(1).f_globals.get("__file__", "notebook")
        self.name = Path(file).stem
        args = _parse(sys.argv[1:] if argv is None else argv)
        self.fast = bool(args.fast) or os.environ.get("CHAPTERS_FAST", "") not in ("", "0")
        self.seed = _option(args.seed, "CHAPTERS_SEED", "--seed", 0, seed)
        self.threads = _option(args.threads, "CHAPTERS_THREADS", "--threads", 1, 1)
        out = args.out or os.environ.get("CHAPTERS_OUT") or Path("out") / self.name
        self.out = _out_dir(out, "--out" if args.out else "CHAPTERS_OUT" if os.environ.get("CHAPTERS_OUT") else "out")
        self.n_checks = 0
        self.values: list[dict] = []
        self.figures: list[str] = []
        self._t0 = time.perf_counter()
        torch.set_num_threads(self.threads)
        self.manual_seed(0)
        if not _in_notebook() and sys.excepthook is sys.__excepthook__:
            sys.excepthook = _excepthook
        mode = "fast" if self.fast else "default"
        print(f"{self.name} ({mode} mode, torch {torch.__version__}, seed {self.seed}, {self.threads} thread"
              f"{'s' if self.threads != 1 else ''}, figures -> {self.out})")

    # ------------------------------------------------------------------ options and seeds

    def seed_for(self, k: int = 0) -> int:
        """The seed for the chapter's k-th random stream: ``k + 1000 · self.seed``.

        With seed 0 this is ``k`` itself, so the book's numbers stay those of ``manual_seed(k)``;
        every other --seed moves all the chapter's streams at once, and apart (k < 1000)."""
        return int(k) + 1000 * self.seed

    def manual_seed(self, k: int | None = 0) -> int:
        """Seed Python's random, numpy and torch with ``seed_for(k)`` so a run repeats exactly
        (None means 0). Returns the seed used."""
        seed = self.seed_for(0 if k is None else k)
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        return seed

    def steps(self, default, fast):
        """``fast`` with --fast, ``default`` otherwise (sizes, step counts, sample counts…)."""
        return fast if self.fast else default

    # ------------------------------------------------------------------ printing

    def show(self, name: str, x, note: str = ""):
        """Print a tensor's name, shape and dtype (or a value's repr) and return it unchanged."""
        if isinstance(x, (torch.Tensor, np.ndarray)):
            dtype = str(x.dtype).replace("torch.", "")
            text = f"{tuple(x.shape)} {dtype}"
        else:
            text = repr(x)
        print(f"  {name}: {text}" + (f"   # {note}" if note else ""))
        return x

    # ------------------------------------------------------------------ checks

    def check(self, name: str, ok, detail: str = "") -> None:
        """Print ``✓ name (detail)`` when ``ok`` holds; otherwise print ✗ and raise CheckFailed."""
        if isinstance(ok, torch.Tensor):
            ok = bool(ok.all())
        suffix = f" ({detail})" if detail else ""
        if not ok:
            print(f"✗ {name}{suffix}", flush=True)
            raise CheckFailed(f"{self.name}: check failed: {name}{suffix}")
        self.n_checks += 1
        print(f"✓ {name}{suffix}", flush=True)

    def check_value(self, name: str, value, low: float | None = None, high: float | None = None,
                    detail: str = "") -> float:
        """Check ``low <= value <= high`` for a measured number (accuracy, BLEU, a loss, a ratio…).

        Either bound may be None (no bound); NaN always fails. Prints
        ``✓ name (value 0.953, needs >= 0.8; detail)``, or ✗ and raises CheckFailed. The value and
        its bounds go into the summary's "values" list whether it passes or not (as a float; NaN as
        None), which is what ``bench/chapter_spread.py`` reads. Returns the value as a float.
        """
        if low is None and high is None:
            raise ValueError(f"check_value({name!r}): give low, high or both")
        v = float(value.item() if isinstance(value, (torch.Tensor, np.ndarray)) else value)
        ok = not math.isnan(v) and (low is None or v >= low) and (high is None or v <= high)
        if low is not None and high is not None:
            needs = f"needs {low:g} … {high:g}"
        elif low is not None:
            needs = f"needs >= {low:g}"
        else:
            needs = f"needs <= {high:g}"
        self.values.append({"name": name, "value": None if math.isnan(v) else v,
                            "low": None if low is None else float(low), "high": None if high is None else float(high)})
        self.check(name, ok, f"value {v:.4g}, {needs}" + (f"; {detail}" if detail else ""))
        return v

    def check_close(self, name: str, a, b, atol: float, rtol: float = 0.0) -> float:
        """Check |a - b| ≤ atol + rtol·|b| elementwise (same shape, no NaN); print the max abs error.

        Returns the max abs error. a, b: tensors, arrays or numbers (compared in float64).
        """
        ta, tb = _to_tensor(a), _to_tensor(b)
        if ta.shape != tb.shape:
            self.check(name, False, f"shapes differ: {tuple(ta.shape)} vs {tuple(tb.shape)}")
        if ta.numel() == 0:
            self.check(name, True, "empty tensors")
            return 0.0
        if bool(torch.isnan(ta).any() | torch.isnan(tb).any()):
            self.check(name, False, f"NaN present ({int(torch.isnan(ta).sum())} in ours, {int(torch.isnan(tb).sum())} in the reference)")
        diff = (ta - tb).abs()
        err = float(diff.max())
        ok = bool((diff <= atol + rtol * tb.abs()).all())
        tol = f"atol {atol:.0e}" + (f", rtol {rtol:.0e}" if rtol else "")
        self.check(name, ok, f"max abs err {err:.1e}, {tol}")
        return err

    def verify(self, check_fn, impl) -> str:
        """Run an exercise's ``check_<fn>(impl)``; print ✓ with its detail, or raise CheckFailed."""
        label = f"{getattr(check_fn, '__name__', 'check')}({getattr(impl, '__name__', 'impl')})"
        try:
            detail = check_fn(impl)
        except AssertionError as e:
            print(f"✗ {label}: {e}", flush=True)
            raise CheckFailed(f"{self.name}: {label} failed: {e}") from e
        self.check(label, True, str(detail or ""))
        return detail

    # ------------------------------------------------------------------ figures and the end

    def savefig(self, fig, name: str) -> Path:
        """Save ``fig`` as ``<out>/<name>.png`` (shown inline first in a notebook), then close it.
        With --fast the PNG is drawn at low resolution, which is quicker."""
        path = self.out / f"{name}.png"
        t0 = time.perf_counter()
        if self.fast:  # a quick low-resolution PNG: fast mode is for testing the code, not for reading
            fig.savefig(path, dpi=50)
        else:
            fig.savefig(path, dpi=100, bbox_inches="tight")
        if _in_notebook():
            from IPython.display import display

            display(fig)
        plt.close(fig)
        self.figures.append(path.name)
        print(f"  [figure] {path} ({time.perf_counter() - t0:.1f} s)")
        return path

    def done(self) -> dict:
        """Print the closing summary and the machine-readable ``@@CHAPTER {...}`` line."""
        seconds = round(time.perf_counter() - self._t0, 2)
        summary = {"chapter": self.name, "checks": self.n_checks, "figures": self.figures,
                   "seconds": seconds, "fast": self.fast, "seed": self.seed, "threads": self.threads,
                   "values": self.values}
        print(f"\n{self.name}: {self.n_checks} checks passed, {len(self.figures)} figures in {self.out} ({seconds:.1f} s)")
        print(SUMMARY_PREFIX + json.dumps(summary, ensure_ascii=False), flush=True)
        return summary
