"""The small helper every chapter uses: options, seeds, checks that print what they verified,
figures, and one machine-readable summary line for the runner (``python -m chapters``).

    from chapters.book import Chapter, plt
    ch = Chapter(__file__)                 # parses --fast / --out, seeds torch, numpy and random
    n = ch.steps(2000, 200)                # fewer steps with --fast (or CHAPTERS_FAST=1)
    ch.show("scores", s)                   # prints "scores: (2, 4, 4) float32"
    ch.check("rows sum to 1", ok, "max dev 1e-7")             # ✓ rows sum to 1 (max dev 1e-7)
    ch.check_close("matches torch.nn.LayerNorm", ours, ref, atol=1e-5)
    ch.verify(check_masked_attention, masked_attention)       # run an exercise's check
    ch.savefig(fig, "attention_heatmap")  # ch.out / "attention_heatmap.png", figure closed
    ch.done()                              # @@CHAPTER {"checks": 12, "figures": [...], ...}

A failed check raises ``CheckFailed`` (an ``AssertionError``) whose message names the check.
"""
from __future__ import annotations

import argparse
import json
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
    args, _unknown = ap.parse_known_args(argv)  # unknown: e.g. Jupyter's "-f kernel.json"
    return args


class Chapter:
    """One chapter's run: ``fast`` (bool), ``out`` (Path for figures), ``seed`` (int), ``name``.

    file: the chapter's ``__file__`` (its stem names the chapter and the default output folder);
    None looks for ``__file__`` in the caller's globals and falls back to "notebook".
    argv: the options to parse (default ``sys.argv[1:]``): ``--fast``, ``--out DIR``.
    The environment gives defaults: ``CHAPTERS_FAST=1``, ``CHAPTERS_OUT=DIR``.
    """

    def __init__(self, file: str | os.PathLike | None = None, seed: int = 0, argv: list[str] | None = None):
        if file is None:
            file = sys._getframe(1).f_globals.get("__file__", "notebook")
        self.name = Path(file).stem
        args = _parse(sys.argv[1:] if argv is None else argv)
        self.fast = bool(args.fast) or os.environ.get("CHAPTERS_FAST", "") not in ("", "0")
        out = args.out or os.environ.get("CHAPTERS_OUT") or Path("out") / self.name
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.seed = seed
        self.n_checks = 0
        self.figures: list[str] = []
        self._t0 = time.perf_counter()
        self.manual_seed(seed)
        if not _in_notebook() and sys.excepthook is sys.__excepthook__:
            sys.excepthook = _excepthook
        mode = "fast" if self.fast else "default"
        print(f"{self.name} ({mode} mode, torch {torch.__version__}, seed {seed}, figures -> {self.out})")

    # ------------------------------------------------------------------ options and seeds

    def manual_seed(self, seed: int | None = None) -> None:
        """Seed Python's random, numpy and torch (default: ``self.seed``) so a run repeats exactly."""
        seed = self.seed if seed is None else seed
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)

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
                   "seconds": seconds, "fast": self.fast}
        print(f"\n{self.name}: {self.n_checks} checks passed, {len(self.figures)} figures in {self.out} ({seconds:.1f} s)")
        print(SUMMARY_PREFIX + json.dumps(summary, ensure_ascii=False), flush=True)
        return summary
