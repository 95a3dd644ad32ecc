"""Evaluation metrics, article §3.2.5 评估: accuracy, precision, recall, F1 (per class and averaged),
the confusion matrix, entity-level NER scores, perplexity and corpus BLEU.

⚠ Article §3.2.5 says "F1值：准确率和召回率的调和平均值" (F1 is the harmonic mean of *accuracy*
and recall). That is wrong: F1 is the harmonic mean of **precision (精确率)** and recall (召回率),
F1 = 2PR / (P + R). Accuracy (准确率) is a different quantity (correct / all samples).

Zero-division convention (the same as scikit-learn's ``zero_division=0``): a ratio whose
denominator is 0 is 0.0. So a class that is never predicted has precision 0.0, a class absent
from y_true has recall 0.0, and F1 is 0.0 when P + R = 0.

Plain Python/numpy/torch: no scikit-learn, seqeval or nltk at runtime (the tests use them as references).
"""
from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Hashable, Sequence

import numpy as np
import torch


# --------------------------------------------------------------------------- input checks
def _as_list(y, name: str) -> list:
    """A 1-D list, cast from a list, tuple, 1-D numpy array or 1-D tensor; ValueError otherwise."""
    if isinstance(y, (torch.Tensor, np.ndarray)):
        if y.ndim != 1:
            raise ValueError(f"{name}: expected a 1-D sequence, received shape {tuple(y.shape)}")
        return y.tolist()
    if isinstance(y, (str, bytes)) or not isinstance(y, Sequence):
        raise ValueError(f"{name}: expected a list, tuple, 1-D array or 1-D tensor, received {type(y).__name__}")
    return list(y)


def _pair(y_true, y_pred) -> tuple[list, list]:
    """y_true and y_pred as lists of the same, non-zero length, with hashable labels."""
    t, p = _as_list(y_true, "y_true"), _as_list(y_pred, "y_pred")
    if len(t) != len(p):
        raise ValueError(f"expected y_true and y_pred of the same length, received {len(t)} and {len(p)}")
    if not t:
        raise ValueError("expected at least one sample, received empty y_true and y_pred")
    for name, ys in (("y_true", t), ("y_pred", p)):
        for i, y in enumerate(ys):
            if not isinstance(y, Hashable):
                raise ValueError(f"{name}[{i}]: expected a hashable label, received {type(y).__name__}")
    return t, p


def _resolve_labels(t: list, p: list, labels) -> list:
    """The given labels (distinct, non-empty), or the sorted union of the labels in y_true and y_pred."""
    if labels is None:
        present = set(t) | set(p)
        try:
            return sorted(present)
        except TypeError:
            kinds = sorted({type(x).__name__ for x in present})
            raise ValueError(f"labels: expected labels that sort together, received types {kinds}; pass labels=") from None
    labels = _as_list(labels, "labels")
    if not labels:
        raise ValueError("labels: expected at least one label, received an empty list")
    if len(set(labels)) != len(labels):
        raise ValueError(f"labels: expected distinct labels, received {labels}")
    return labels


# --------------------------------------------------------------------------- classification
def accuracy(y_true, y_pred) -> float:
    """Accuracy 准确率 = (number of samples with y_pred == y_true) / (number of samples). Article §3.2.5."""
    t, p = _pair(y_true, y_pred)
    return sum(a == b for a, b in zip(t, p)) / len(t)


def confusion_matrix(y_true, y_pred, labels=None) -> np.ndarray:
    """Confusion matrix 混淆矩阵, shape (L, L), int64: ``cm[i, j]`` = number of samples whose true
    label is ``labels[i]`` and whose predicted label is ``labels[j]`` (rows = true, columns = predicted).
    Samples whose true or predicted label is not in ``labels`` are left out (as scikit-learn does).
    ``labels=None`` uses the sorted union of the labels seen. Article §3.2.5."""
    t, p = _pair(y_true, y_pred)
    labels = _resolve_labels(t, p, labels)
    index = {label: i for i, label in enumerate(labels)}
    cm = np.zeros((len(labels), len(labels)), dtype=np.int64)  # (L, L)
    for a, b in zip(t, p):
        i, j = index.get(a), index.get(b)
        if i is not None and j is not None:
            cm[i, j] += 1
    return cm


@dataclass(frozen=True)
class Scores:
    """Precision, recall and F1 of one class (or one average), with its support (number of true samples)."""
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Report:
    """Per-class scores (label -> Scores, in label order) and the micro, macro and weighted averages."""
    per_class: dict
    micro: Scores
    macro: Scores
    weighted: Scores


def _div(num: float, den: float) -> float:
    """num / den, and 0.0 when den == 0 (the zero-division convention of this module)."""
    return num / den if den else 0.0


def prf_from_counts(tp: int, n_pred: int, n_true: int) -> Scores:
    """Precision, recall, F1 from counts, where n_pred = TP + FP and n_true = TP + FN:
    精确率 precision P = TP / (TP + FP); 召回率 recall R = TP / (TP + FN);
    F1 = 2PR / (P + R), the harmonic mean of precision and recall (not of accuracy, as article
    §3.2.5 says). Each is 0.0 when its denominator is 0. Support = n_true."""
    p, r = _div(tp, n_pred), _div(tp, n_true)
    return Scores(p, r, _div(2 * p * r, p + r), n_true)


def _report(labels: list, tp: Counter, n_pred: Counter, n_true: Counter) -> Report:
    """Per-class scores plus averages, from per-label counts.
    micro: P, R, F1 of the summed counts (ΣTP / ΣFP+TP, ...); over all classes micro P = R = accuracy.
    macro: unweighted mean over labels of P, of R and of F1 (macro-F1 = mean of per-class F1,
    scikit-learn's definition, not the harmonic mean of macro-P and macro-R).
    weighted: mean over labels weighted by support; 0.0 when the total support is 0."""
    per = {label: prf_from_counts(tp[label], n_pred[label], n_true[label]) for label in labels}
    rows = list(per.values())
    total = sum(s.support for s in rows)
    micro = prf_from_counts(sum(tp[x] for x in labels), sum(n_pred[x] for x in labels), total)

    def mean(field: str, weighted: bool) -> float:
        if weighted:
            return _div(sum(getattr(s, field) * s.support for s in rows), total)
        return _div(sum(getattr(s, field) for s in rows), len(rows))

    macro, weighted = (Scores(mean("precision", w), mean("recall", w), mean("f1", w), total) for w in (False, True))
    return Report(per, micro, macro, weighted)


def precision_recall_f1(y_true, y_pred, labels=None) -> Report:
    """Per-class precision 精确率, recall 召回率, F1 and support, plus micro, macro and weighted
    averages (see ``prf_from_counts`` and ``_report`` for the formulas). For a class c:
    TP = #(true c, predicted c), FP = #(predicted c, true not c), FN = #(true c, predicted not c).
    Zero division gives 0.0: a never-predicted class has precision 0, a class absent from y_true
    has recall 0 and support 0. ``labels=None`` uses the sorted union of the labels seen; given
    labels may include unseen ones, and averages run over the given labels only. Article §3.2.5."""
    t, p = _pair(y_true, y_pred)
    labels = _resolve_labels(t, p, labels)
    tp = Counter(a for a, b in zip(t, p) if a == b)
    return _report(labels, tp, Counter(p), Counter(t))


def format_report(report: Report, digits: int = 4) -> str:
    """A text table in scikit-learn's layout: one row per class, then micro, macro and weighted avg."""
    names = [str(label) for label in report.per_class]
    width = max([len("weighted avg"), digits, *map(len, names)])
    head = " " * width + "".join(f"{h:>{max(digits + 2, 9) + 1}}" for h in ("precision", "recall", "f1-score")) + f"{'support':>10}"

    def row(name: str, s: Scores) -> str:
        nums = "".join(f"{v:>{max(digits + 2, 9) + 1}.{digits}f}" for v in (s.precision, s.recall, s.f1))
        return f"{name:>{width}}{nums}{s.support:>10}"

    lines = [head, ""] + [row(n, s) for n, s in zip(names, report.per_class.values())] + [""]
    lines += [row(f"{k} avg", getattr(report, k)) for k in ("micro", "macro", "weighted")]
    return "\n".join(lines) + "\n"


def classification_report(y_true, y_pred, labels=None, digits: int = 4) -> str:
    """``format_report(precision_recall_f1(y_true, y_pred, labels), digits)``: the per-class table."""
    return format_report(precision_recall_f1(y_true, y_pred, labels), digits)


def _title_lines(title: str, width: int, max_lines: int) -> str:
    """``title`` wrapped at ``width`` characters (long words such as paths are broken too); when
    that takes more than ``max_lines`` lines, the middle is cut out and replaced by '…'."""
    import textwrap

    lines = textwrap.wrap(title, width, break_long_words=True, break_on_hyphens=False) or [""]
    if len(lines) > max_lines:
        keep = max(1, width * max_lines - 1)
        head = keep // 2
        title = title[:head] + "…" + title[len(title) - (keep - head):]
        lines = textwrap.wrap(title, width, break_long_words=True, break_on_hyphens=False)[:max_lines]
    return "\n".join(lines)


def fit_title(fig, ax, title: str, max_lines: int = 3, margin: float = 2.0) -> str:
    """Set ``ax``'s title so that it lies inside ``fig``: wrapped into lines (a long path is broken,
    at most ``max_lines`` of them, the middle elided past that) as wide as the figure allows, the
    layout tightened around it. Measures the drawn text with the figure's renderer; returns the
    title as set."""
    renderer = fig.canvas.get_renderer()
    inside = fig.bbox.x0 + margin, fig.bbox.x1 - margin
    em = ax.title.get_fontsize() * fig.dpi / 72  # pixels per em; a character is ~0.6 em wide
    width = max(8, min(len(title), int((inside[1] - inside[0]) / (0.6 * em)) + 2))
    while True:
        text = _title_lines(title, width, max_lines)
        ax.set_title(text)
        fig.tight_layout()
        box = ax.title.get_window_extent(renderer)
        if (box.x0 >= inside[0] and box.x1 <= inside[1] and box.y1 <= fig.bbox.y1) or width <= 8:
            return text
        width = max(8, min(width - 1, int(width * 0.85)))


def confusion_figure(cm, labels, normalize: bool = False, title: str = "Confusion matrix"):
    """The matplotlib Figure of :func:`plot_confusion_matrix` (Agg canvas, no pyplot): rows = true,
    columns = predicted, each cell annotated, the title wrapped to fit (:func:`fit_title`)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cm = np.asarray(cm.detach().cpu() if isinstance(cm, torch.Tensor) else cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] == 0:
        raise ValueError(f"cm: expected a non-empty square matrix (L, L), received shape {cm.shape}")
    labels = [str(x) for x in _as_list(labels, "labels")]
    if len(labels) != cm.shape[0]:
        raise ValueError(f"labels: expected {cm.shape[0]} labels (one per row of cm), received {len(labels)}")
    values = cm.astype(np.float64)
    if normalize:
        sums = values.sum(axis=1, keepdims=True)
        values = np.divide(values, sums, out=np.zeros_like(values), where=sums > 0)
    n = len(labels)
    fig = Figure(figsize=(2.5 + 0.6 * n, 2.0 + 0.6 * n), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    im = ax.imshow(values, cmap="Blues", vmin=0)
    fig.colorbar(im, ax=ax)
    ax.set_xticks(range(n), labels=labels, rotation=45, ha="right")
    ax.set_yticks(range(n), labels=labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = values.max() if values.size else 0.0
    for i in range(n):
        for j in range(n):
            text = f"{values[i, j]:.2f}" if normalize else f"{int(cm[i, j])}"
            ax.text(j, i, text, ha="center", va="center", color="white" if values[i, j] > top / 2 else "black")
    fit_title(fig, ax, str(title))
    return fig


def plot_confusion_matrix(cm, labels, path, normalize: bool = False, title: str = "Confusion matrix") -> Path:
    """Save the confusion matrix as a PNG at ``path`` (rows = true, columns = predicted), each cell
    annotated. ``normalize=True`` divides each row by its sum, so the diagonal is each class's
    recall (an all-zero row stays 0). A long title (a file path) is wrapped to stay inside the
    figure. Uses matplotlib's Agg canvas directly, never pyplot, so the global backend is
    untouched. Returns the path."""
    fig = confusion_figure(cm, labels, normalize, title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    return path


# --------------------------------------------------------------------------- NER (entity level)
def _split_tag(tag, where: str) -> tuple[str, str]:
    """('O', '') for 'O', else (prefix 'B' or 'I', entity type) for 'B-<type>' / 'I-<type>'."""
    if tag == "O":
        return "O", ""
    if isinstance(tag, str) and len(tag) > 2 and tag[:2] in ("B-", "I-"):
        return tag[0], tag[2:]
    raise ValueError(f"{where}: expected an IOB2 tag 'O', 'B-<type>' or 'I-<type>', received {tag!r}")


def get_entities(tags) -> list[tuple[str, int, int]]:
    """Entity spans (type, start, end) of one IOB2 tag sequence; ``end`` is exclusive, so the
    entity is ``tags[start:end]`` (seqeval's own get_entities reports end - 1).
    Rules, as conlleval and seqeval's default mode: B-X starts an entity; I-X continues an open X
    entity; O ends it. An I-X that follows O, the sequence start or an entity of another type
    starts a new X entity (it is not dropped); a B-X right after an X entity starts a second one.
    An entity still open at the end of the sequence is closed there."""
    seq = _as_list(tags, "tags")
    entities, start, etype = [], None, ""
    for i, tag in enumerate(seq):
        prefix, t = _split_tag(tag, f"tags[{i}]")
        if start is not None and not (prefix == "I" and t == etype):
            entities.append((etype, start, i))
            start = None
        if prefix == "B" or (prefix == "I" and start is None):
            start, etype = i, t
    if start is not None:
        entities.append((etype, start, len(seq)))
    return entities


def entity_prf(true_seqs, pred_seqs) -> Report:
    """Entity-level precision, recall, F1 for NER over sentences of IOB2 tags, as seqeval's
    default (conlleval-compatible) mode computes them. A predicted entity is a true positive only
    if a true entity has the same sentence, start, end and type: a right span with the wrong type
    counts as one FP (predicted type) and one FN (true type). Per type: P = TP/#predicted,
    R = TP/#true, F1 = 2PR/(P+R), support = #true entities; ``micro`` is the overall score.
    No entities anywhere gives 0.0 everywhere and an empty ``per_class``. Article §3.2.5, §6.2."""
    ts, ps = _as_list(true_seqs, "true_seqs"), _as_list(pred_seqs, "pred_seqs")
    if len(ts) != len(ps):
        raise ValueError(f"expected as many true as predicted sentences, received {len(ts)} and {len(ps)}")
    if not ts:
        raise ValueError("expected at least one sentence, received empty true_seqs and pred_seqs")
    true_ents, pred_ents = set(), set()
    for s, (t, p) in enumerate(zip(ts, ps)):
        t, p = _as_list(t, f"true_seqs[{s}]"), _as_list(p, f"pred_seqs[{s}]")
        if len(t) != len(p):
            raise ValueError(f"sentence {s}: expected true and predicted tags of the same length, received {len(t)} and {len(p)}")
        true_ents |= {(s, *e) for e in get_entities(t)}
        pred_ents |= {(s, *e) for e in get_entities(p)}
    n_true, n_pred = Counter(e[1] for e in true_ents), Counter(e[1] for e in pred_ents)
    tp = Counter(e[1] for e in true_ents & pred_ents)
    return _report(sorted(set(n_true) | set(n_pred)), tp, n_pred, n_true)


# --------------------------------------------------------------------------- language modelling
def perplexity(mean_nll) -> float:
    """Perplexity 困惑度 = exp(mean negative log-likelihood per token), the loss in nats as
    ``F.cross_entropy`` returns it (for a loss in bits use 2 ** loss). A uniform guess over V
    tokens has loss ln V and perplexity V. Returns inf past float range."""
    if isinstance(mean_nll, torch.Tensor):
        if mean_nll.numel() != 1:
            raise ValueError(f"mean_nll: expected a scalar, received a tensor of shape {tuple(mean_nll.shape)}")
        mean_nll = mean_nll.item()
    x = float(mean_nll)
    if math.isnan(x) or x < 0:
        raise ValueError(f"mean_nll: expected a mean negative log-likelihood >= 0, received {x}")
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


# --------------------------------------------------------------------------- translation (BLEU)
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff"
_TOKEN_RE = {"en": re.compile(r"\w+|[^\w\s]"), "zh": re.compile(rf"[{_CJK}]|(?:(?![{_CJK}])\w)+|[^\w\s]")}


def bleu_tokenize(text: str, lang: str = "en") -> list[str]:
    """Tokens for BLEU. 'en': runs of letters/digits/underscore are words and every other
    non-space character (punctuation) is its own token, e.g. "It's 2024." -> It ' s 2024 .
    'zh': every Chinese character (CJK ideograph) and every punctuation mark is one token, runs of
    other letters/digits (e.g. "BERT") stay one token, spaces are dropped. Case is kept."""
    if not isinstance(text, str):
        raise ValueError(f"text: expected str, received {type(text).__name__}")
    if lang not in _TOKEN_RE:
        raise ValueError(f"lang: expected one of {sorted(_TOKEN_RE)}, received {lang!r}")
    return _TOKEN_RE[lang].findall(text)


def ngram_counts(tokens: Sequence, n: int) -> Counter:
    """Counts of the n-grams (tuples of n consecutive tokens) of a token list."""
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def clipped_matches(hyp: Sequence, ref: Sequence, n: int) -> int:
    """Σ over hypothesis n-grams g of min(count_hyp(g), count_ref(g)): each n-gram is credited at
    most as often as the reference has it (Papineni et al. 2002, modified n-gram precision)."""
    ref_counts = ngram_counts(ref, n)
    return sum(min(c, ref_counts[g]) for g, c in ngram_counts(hyp, n).items())


def brevity_penalty(c: int, r: int) -> float:
    """BP = 1 if c > r else exp(1 - r/c), c = hypothesis length, r = reference length (corpus totals); 0 if c = 0."""
    if c > r:
        return 1.0
    return math.exp(1 - r / c) if c > 0 else 0.0


def _token_lists(xs, name: str) -> list[list]:
    xs = _as_list(xs, name)
    for i, x in enumerate(xs):
        if isinstance(x, str) or not isinstance(x, (list, tuple)):
            raise ValueError(f"{name}[{i}]: expected a list of tokens (use bleu_tokenize), received {type(x).__name__}")
    return xs


def corpus_bleu(hypotheses, references, max_n: int = 4, smooth: bool = False) -> float:
    """Corpus BLEU (Papineni et al. 2002) on token lists, one reference per hypothesis, 0-100.
    p_n = Σ clipped n-gram matches / Σ hypothesis n-grams, both summed over the whole corpus
    (not an average of sentence scores); BLEU = 100 · BP · exp(Σ_{n=1..max_n} (1/max_n) log p_n),
    BP = exp(1 - r/c) if c <= r else 1 with c, r the total hypothesis and reference lengths.
    Without smoothing any p_n = 0 gives 0. ``smooth=True`` uses NIST geometric smoothing
    (mteval-v13a, Chen & Cherry 2014 method 3): the k-th order with no match gets
    p_n = 1 / (2^k · Σ hypothesis n-grams); no unigram match still gives 0."""
    hyps, refs = _token_lists(hypotheses, "hypotheses"), _token_lists(references, "references")
    if len(hyps) != len(refs):
        raise ValueError(f"expected as many hypotheses as references, received {len(hyps)} and {len(refs)}")
    if not hyps:
        raise ValueError("expected at least one hypothesis, received empty hypotheses and references")
    if not isinstance(max_n, int) or max_n < 1:
        raise ValueError(f"max_n: expected an int >= 1, received {max_n!r}")
    matches, totals = [0] * max_n, [0] * max_n
    for hyp, ref in zip(hyps, refs):
        for n in range(1, max_n + 1):
            matches[n - 1] += clipped_matches(hyp, ref, n)
            totals[n - 1] += max(len(hyp) - n + 1, 0)
    c, r = sum(map(len, hyps)), sum(map(len, refs))
    if c == 0 or matches[0] == 0:
        return 0.0
    log_p, k = 0.0, 0
    for m, t in zip(matches, totals):
        if m == 0 and not smooth:
            return 0.0
        if m == 0:
            k += 1
        log_p += math.log(m / t if m else 1 / (2 ** k * max(t, 1)))
    return 100.0 * brevity_penalty(c, r) * math.exp(log_p / max_n)
