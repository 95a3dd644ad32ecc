"""The small helper every chapter uses: options, seeds, checks that print what they verified,
figures, and one machine-readable summary line for the runner (``python -m chapters``).

    from chapters.book import Chapter, plt
    ch = Chapter("ch02_attention")         # parses --fast / --out / --seed / --threads / --lang, seeds, sets threads
    n = ch.steps(2000, 200)                # fewer steps with --fast (or CHAPTERS_FAST=1)
    ch.show("scores", s)                   # prints "scores: (2, 4, 4) float32" and a corner of the values
    ch.check(ch.tr("每行之和为 1", "rows sum to 1"), ok, "max dev 1e-7")   # ✓ rows sum to 1 (max dev 1e-7)
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

Two languages (issue #13): ``--lang zh|en`` (or ``CHAPTERS_LANG``; default: zh when the locale starts
with zh, else en) sets ``ch.lang``; ``ch.tr(zh, en)`` picks the text, and the helper's own lines
(the header, ✓ details, the summary) follow it. Figures can show Chinese: at import this module
registers a CJK font with matplotlib (Noto Sans SC from the ``pylopdf-fonts-zh-cn`` wheel, else an
installed one such as Debian's fonts-noto-cjk) as the fallback after DejaVu Sans; ``CJK_FONT`` names
it (None when there is none: Chinese then shows as boxes, and ``savefig`` says how to get a font).

In a notebook (Jupyter, VS Code), where ``__file__`` is undefined, give the chapter's name,
``Chapter("ch02_attention")``, or nothing: ``Chapter()`` looks for ``__file__``, then VS Code's
``__vsc_ipynb_file__``, then Jupyter's ``JPY_SESSION_NAME``, then uses "notebook". Figures are
shown inline there (the same PNG as the one saved).
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
import unicodedata
import warnings
from pathlib import Path

import matplotlib

if "ipykernel" not in sys.modules:  # scripts and the runner draw off-screen; notebooks keep their backend
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib import font_manager  # noqa: E402

from chapters.options import check_output_dir, default_lang, option_count, parse_count, parse_lang  # noqa: E402,F401  (parse_count re-exported)

__all__ = ["CJK_FONT", "Chapter", "CheckFailed", "plt"]

SUMMARY_PREFIX = "@@CHAPTER "
FIGURE_DPI = 100  # every PNG, --fast included, with a tight bounding box

# Installed CJK families matplotlib may find, in order of preference (the first present is used when
# the pylopdf-fonts-zh-cn wheel is absent). Debian: fonts-noto-cjk gives "Noto Sans CJK SC".
CJK_FAMILIES = ("Noto Sans SC", "Noto Sans CJK SC", "Source Han Sans SC", "Source Han Sans CN", "WenQuanYi Zen Hei",
                "WenQuanYi Micro Hei", "SimHei", "Microsoft YaHei", "PingFang SC", "Heiti SC", "Arial Unicode MS")
FONT_HINT = ("no CJK font found, so Chinese in figures shows as boxes: pip install pylopdf-fonts-zh-cn "
             "(or apt-get install fonts-noto-cjk)")


def _find_cjk_font() -> str | None:
    """Register Noto Sans SC from the pylopdf-fonts-zh-cn wheel with matplotlib and return its family
    name; without the wheel, the first installed family of CJK_FAMILIES; None when there is none."""
    try:
        import pylopdf_fonts_zh_cn

        path = str(pylopdf_fonts_zh_cn.sans_path())
        font_manager.fontManager.addfont(path)
        return font_manager.FontProperties(fname=path).get_name()
    except Exception:  # noqa: BLE001  (not installed, or a damaged file: fall back to the system's fonts)
        pass
    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FAMILIES if name in installed), None)


def _configure_matplotlib() -> str | None:
    """DejaVu Sans for Latin, Greek and maths, the CJK font for the glyphs DejaVu lacks (matplotlib
    ≥ 3.6 falls back glyph by glyph along font.family). Returns the CJK family (or None)."""
    cjk = _find_cjk_font()
    if cjk:
        plt.rcParams["font.family"] = ["DejaVu Sans", cjk]
    else:  # the figures still draw; savefig prints FONT_HINT once when a figure has Chinese text
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from (current )?font", category=UserWarning)
    plt.rcParams["axes.unicode_minus"] = True  # DejaVu has U+2212
    return cjk


CJK_FONT = _configure_matplotlib()


class FigurePath(type(Path())):
    """The path ``Chapter.savefig`` returns: a Path that a notebook does not echo when it ends a cell
    (the figure itself is shown instead)."""

    def _ipython_display_(self):
        pass


def _has_cjk(text: str) -> bool:
    return any(unicodedata.east_asian_width(c) in "WF" and c.isalpha() for c in text)


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
    """True inside a running Jupyter kernel (not merely when ipykernel has been imported, as a test
    process that builds the book does)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


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
    ap.add_argument("--lang", default=None)
    args, _unknown = ap.parse_known_args(argv)  # unknown: e.g. Jupyter's "-f kernel.json"
    return args


def _option(args_value, env: str, option: str, minimum: int, default: int) -> int:
    """The option's value from argv, else from the environment variable ``env``, else ``default``.
    A bad value exits with status 2 and a one-line message (raises ValueError in a notebook)."""
    try:
        return option_count(args_value, env, option, minimum, default)
    except ValueError as e:
        if _in_notebook():
            raise
        sys.stderr.write(f"error: {e}\n")
        raise SystemExit(2) from None


def _language(args_value) -> str:
    """--lang, else CHAPTERS_LANG, else the locale (chapters.options.default_lang). A bad value exits
    with status 2 and a message listing the languages (raises ValueError in a notebook)."""
    try:
        return parse_lang("--lang", args_value) if args_value is not None else default_lang()
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


SHOW_ROWS, SHOW_COLS = 6, 8  # ch.show prints at most this many rows and columns (first and last halves)


def _edges(n: int, keep: int) -> list[int | None]:
    """Indices 0…n-1, or the first and last keep // 2 of them with None (an ellipsis) between."""
    if n <= keep:
        return list(range(n))
    half = keep // 2
    return list(range(half)) + [None] + list(range(n - half, n))


def _value_lines(x, lang: str = "en") -> list[str]:
    """The lines ``Chapter.show`` prints under a tensor's shape: its values, rounded (4 decimals, or
    3 significant digits in scientific notation when they are very large or small), at most
    SHOW_ROWS × SHOW_COLS of them (the edges, with … between); for more than two dimensions the
    first matrix ``x[0, …, 0, :, :]``, labelled; nothing for an empty tensor."""
    if isinstance(x, torch.Tensor):
        t = x.detach().to("cpu").resolve_conj()
        if t.dtype == torch.bool:
            t = t.to(torch.int8)
        elif t.is_floating_point():
            t = t.to(torch.float64)
        a = t.numpy()
    else:
        a = np.asarray(x)
    if a.dtype == bool:
        a = a.astype(np.int8)
    if a.size == 0 or a.dtype.kind not in "biufc":
        return []
    head = []
    if a.ndim > 2:
        index = ", ".join(["0"] * (a.ndim - 2) + [":", ":"])
        head = [f"[{index}]（第一个矩阵）：" if lang == "zh" else f"[{index}] (the first matrix):"]
        a = a[(0,) * (a.ndim - 2)]
    matrix = a.reshape(1, -1) if a.ndim < 2 else a
    rows, cols = _edges(matrix.shape[0], SHOW_ROWS), _edges(matrix.shape[1], SHOW_COLS)
    shown = np.array([matrix[i, j] for i in rows if i is not None for j in cols if j is not None])
    if a.dtype.kind in "biu":
        fmt = str
    else:
        mags = np.abs(shown[np.isfinite(shown) & (shown != 0)])
        wide = mags.size and (mags.max() >= 1e5 or mags.min() < 1e-3)
        if a.dtype.kind == "c":
            fmt = (lambda v: f"{v.real:.3g}{v.imag:+.3g}j")
        else:
            fmt = (lambda v: f"{v:.3e}") if wide else (lambda v: f"{v:.4f}")
    if a.ndim == 0:
        return head + [fmt(matrix[0, 0])]
    cells = [[fmt(matrix[i, j]) if j is not None else None for j in cols] if i is not None else None for i in rows]
    width = max(len(c) for row in cells if row for c in row if c is not None)
    lines = ["[" + " ".join("…" if c is None else c.rjust(width) for c in row) + "]" if row else " …" for row in cells]
    return head + lines


class Chapter:
    """One chapter's run: ``fast`` (bool), ``out`` (Path for figures), ``seed`` and ``threads`` (int), ``name``.

    file: the chapter's name or ``__file__`` (its stem names the chapter and the default output
    folder); None looks for ``__file__`` in the caller's globals, then ``__vsc_ipynb_file__`` (VS
    Code), then the environment's ``JPY_SESSION_NAME`` (Jupyter), and falls back to "notebook".
    seed: the run's seed when neither --seed nor CHAPTERS_SEED gives one (default 0).
    argv: the options to parse (default ``sys.argv[1:]``): ``--fast``, ``--out DIR``, ``--seed N``, ``--lang zh|en``
    (N ≥ 0), ``--threads N`` (N ≥ 1; bad values exit with status 2).
    The environment gives defaults: ``CHAPTERS_FAST=1``, ``CHAPTERS_OUT=DIR``, ``CHAPTERS_SEED=N``,
    ``CHAPTERS_THREADS=N``, ``CHAPTERS_LANG=zh|en`` (else the locale: LANG=zh_CN.UTF-8 gives zh). The constructor calls ``torch.set_num_threads(threads)`` (default 1:
    the book's matrices are tiny, and one thread does not fight other processes for cores) and
    seeds Python, numpy and torch with ``seed_for(0)``.
    """

    def __init__(self, file: str | os.PathLike | None = None, seed: int = 0, argv: list[str] | None = None):
        if file is None:
            caller = sys._getframe(1).f_globals
            file = (caller.get("__file__") or caller.get("__vsc_ipynb_file__")
                    or os.environ.get("JPY_SESSION_NAME") or "notebook")
        self.name = Path(file).stem
        args = _parse(sys.argv[1:] if argv is None else argv)
        self.fast = bool(args.fast) or os.environ.get("CHAPTERS_FAST", "") not in ("", "0")
        self.seed = _option(args.seed, "CHAPTERS_SEED", "--seed", 0, seed)
        self.threads = _option(args.threads, "CHAPTERS_THREADS", "--threads", 1, 1)
        self.lang = _language(args.lang)
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
        self._font_hint_shown = False
        if self.lang == "zh":
            mode = "快速模式" if self.fast else "默认模式"
            print(f"{self.name}（{mode}，torch {torch.__version__}，种子 {self.seed}，{self.threads} 个线程，图保存到 {self.out}）")
        else:
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

    def tr(self, zh: str, en: str) -> str:
        """The text in the chapter's language: ``ch.tr("注意力权重之和为 1", "attention weights sum to 1")``.
        Every printed check name, table header and figure title goes through it (issue #13)."""
        return zh if self.lang == "zh" else en

    def steps(self, default, fast):
        """``fast`` with --fast, ``default`` otherwise (sizes, step counts, sample counts…)."""
        return fast if self.fast else default

    # ------------------------------------------------------------------ printing

    def show(self, name: str, x, note: str = "", values: bool = True):
        """Print a tensor's name, shape and dtype (or a value's repr) and return it unchanged.

        For a tensor or array (``values=True``), the values follow, rounded to 4 digits: all of them
        when there are few, else the first and last rows and columns around ``…``; a tensor with
        more than two dimensions shows its first matrix, ``x[0, …, 0, :, :]``, labelled as such."""
        if isinstance(x, (torch.Tensor, np.ndarray)):
            dtype = str(x.dtype).replace("torch.", "")
            text = f"{tuple(x.shape)} {dtype}"
        else:
            text = repr(x)
        print(f"  {name}: {text}" + (f"   # {note}" if note else ""))
        if values and isinstance(x, (torch.Tensor, np.ndarray)):
            for line in _value_lines(x, self.lang):
                print(f"    {line}")
        return x

    # ------------------------------------------------------------------ checks

    def check(self, name: str, ok, detail: str = "") -> None:
        """Print ``✓ name (detail)`` when ``ok`` holds; otherwise print ✗ and raise CheckFailed."""
        if isinstance(ok, torch.Tensor):
            ok = bool(ok.all())
        suffix = (f"（{detail}）" if self.lang == "zh" else f" ({detail})") if detail else ""
        if not ok:
            print(f"✗ {name}{suffix}", flush=True)
            raise CheckFailed(f"{self.name}: {self.tr('检查未通过', 'check failed')}: {name}{suffix}")
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
        needs = self.tr("要求", "needs")
        if low is not None and high is not None:
            needs = f"{needs} {low:g} … {high:g}"
        elif low is not None:
            needs = f"{needs} >= {low:g}"
        else:
            needs = f"{needs} <= {high:g}"
        self.values.append({"name": name, "value": None if math.isnan(v) else v,
                            "low": None if low is None else float(low), "high": None if high is None else float(high)})
        sep = self.tr("；", "; ")
        self.check(name, ok, f"{self.tr('值', 'value')} {v:.4g}{self.tr('，', ', ')}{needs}" + (f"{sep}{detail}" if detail else ""))
        return v

    def check_close(self, name: str, a, b, atol: float, rtol: float = 0.0) -> float:
        """Check |a - b| ≤ atol + rtol·|b| elementwise (same shape, no NaN); print the max abs error.

        Returns the max abs error. a, b: tensors, arrays or numbers (compared in float64).
        """
        ta, tb = _to_tensor(a), _to_tensor(b)
        if ta.shape != tb.shape:
            self.check(name, False, self.tr(f"形状不同：{tuple(ta.shape)} 与 {tuple(tb.shape)}",
                                            f"shapes differ: {tuple(ta.shape)} vs {tuple(tb.shape)}"))
        if ta.numel() == 0:
            self.check(name, True, self.tr("空张量", "empty tensors"))
            return 0.0
        if bool(torch.isnan(ta).any() | torch.isnan(tb).any()):
            na, nb = int(torch.isnan(ta).sum()), int(torch.isnan(tb).sum())
            self.check(name, False, self.tr(f"出现 NaN：我们的结果中 {na} 个，参考结果中 {nb} 个",
                                            f"NaN present ({na} in ours, {nb} in the reference)"))
        diff = (ta - tb).abs()
        err = float(diff.max())
        ok = bool((diff <= atol + rtol * tb.abs()).all())
        tol = f"atol {atol:.0e}" + (f", rtol {rtol:.0e}" if rtol else "")
        self.check(name, ok, self.tr(f"最大绝对误差 {err:.1e}，{tol}", f"max abs err {err:.1e}, {tol}"))
        return err

    def verify(self, check_fn, impl) -> str:
        """Run an exercise's ``check_<fn>(impl)``; print ✓ with its detail, or raise CheckFailed."""
        label = f"{getattr(check_fn, '__name__', 'check')}({getattr(impl, '__name__', 'impl')})"
        try:
            detail = check_fn(impl)
        except AssertionError as e:
            print(f"✗ {label}: {e}", flush=True)
            raise CheckFailed(f"{self.name}: {label} {self.tr('未通过', 'failed')}: {e}") from e
        self.check(label, True, str(detail or ""))
        return detail

    # ------------------------------------------------------------------ figures and the end

    def savefig(self, fig, name: str) -> Path:
        """Save ``fig`` as ``<out>/<name>.png`` at FIGURE_DPI (100, --fast included) with a tight
        bounding box, show that PNG inline in a notebook, then close the figure. Without a CJK font,
        a figure with Chinese text prints once how to install one (the text shows as boxes)."""
        path = self.out / f"{name}.png"
        t0 = time.perf_counter()
        if CJK_FONT is None and not self._font_hint_shown and any(
                _has_cjk(t.get_text()) for t in fig.findobj(matplotlib.text.Text)):
            self._font_hint_shown = True
            print(f"  [{self.tr('提示', 'note')}] {FONT_HINT}")
        alt = " · ".join(t for t in [fig.get_suptitle() if hasattr(fig, "get_suptitle") else ""]
                         + [ax.get_title() for ax in fig.axes] if t) or name  # the figure's description
        fig.savefig(path, dpi=FIGURE_DPI, bbox_inches="tight")
        if _in_notebook():
            from IPython.display import Image, display

            display(Image(data=path.read_bytes(), format="png", metadata={"alt": alt.replace("\n", " ")}))
        plt.close(fig)
        self.figures.append(path.name)
        print(f"  [{self.tr('图', 'figure')}] {path} ({time.perf_counter() - t0:.1f} s)")
        return FigurePath(path)

    def done(self) -> dict:
        """Print the closing summary and the machine-readable ``@@CHAPTER {...}`` line."""
        seconds = round(time.perf_counter() - self._t0, 2)
        summary = {"chapter": self.name, "checks": self.n_checks, "figures": self.figures,
                   "seconds": seconds, "fast": self.fast, "seed": self.seed, "threads": self.threads,
                   "lang": self.lang, "values": self.values}
        print(self.tr(f"\n{self.name}：通过 {self.n_checks} 项检查，{len(self.figures)} 张图保存在 {self.out}（{seconds:.1f} 秒）",
                      f"\n{self.name}: {self.n_checks} checks passed, {len(self.figures)} figures in {self.out} ({seconds:.1f} s)"))
        print(SUMMARY_PREFIX + json.dumps(summary, ensure_ascii=False), flush=True)
        return summary
