"""Counts that describe a dataset (what ``python -m minitransformer.data stats`` prints)."""
from __future__ import annotations

from collections import Counter
from typing import Sequence

from ..metrics import get_entities
from .conll import TaggedSentence
from .loaders import Example


def text_stats(text: str, documents: Sequence[str]) -> dict[str, int]:
    """Characters, lines, documents (blank-line separated) and distinct characters of a plain text."""
    return {"characters": len(text), "lines": text.count("\n") + (0 if text.endswith("\n") else 1),
            "documents": len(documents), "distinct characters": len(set(text))}


def classification_stats(examples: Sequence[Example]) -> dict[str, int]:
    """Examples, distinct texts and the count of each label."""
    out = {"examples": len(examples), "distinct texts": len({e.text for e in examples})}
    out.update({f"label {label}": n for label, n in sorted(Counter(e.label for e in examples).items())})
    return out


def conll_stats(sentences: Sequence[TaggedSentence]) -> dict[str, int]:
    """Sentences, tokens, entities, and entities of each type."""
    types = Counter(etype for s in sentences for etype, _, _ in get_entities(list(s.tags)))
    out = {"sentences": len(sentences), "tokens": sum(len(s.tokens) for s in sentences),
           "entities": sum(types.values())}
    out.update({f"entity {t}": n for t, n in sorted(types.items())})
    return out


def parallel_stats(pairs: Sequence[tuple[str, str]]) -> dict[str, int]:
    """Pairs and distinct sources and targets."""
    return {"pairs": len(pairs), "distinct sources": len({s for s, _ in pairs}),
            "distinct targets": len({t for _, t in pairs})}
