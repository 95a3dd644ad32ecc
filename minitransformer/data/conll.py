"""CoNLL files for named-entity recognition: one token per line with its BIO tag, a blank line
between sentences. Article §6.2 命名实体识别.

Real files differ in small ways, all handled here: extra columns (pick the token and tag columns),
tab- or space-separated columns, sentence breaks that are whitespace-only lines rather than
empty ones, ``-DOCSTART-`` lines, ``# ...`` comment lines (CoNLL-U style), IOB1 tags, a BOM or a
U+0085 inside a token (lines are split on '\\n' only).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from .loaders import PathLike, require_text, read_text_file, split_lines


@dataclass(frozen=True)
class TaggedSentence:
    """A sentence for NER: tokens and one BIO tag per token."""

    tokens: tuple[str, ...]
    tags: tuple[str, ...]

    def __post_init__(self):
        if len(self.tokens) != len(self.tags):
            raise ValueError(f"TaggedSentence: expected one tag per token, received {len(self.tokens)} tokens "
                             f"and {len(self.tags)} tags")


_TAG = re.compile(r"^(O|[BI]-\S+)$")


def iob1_to_iob2(tags: Sequence[str]) -> list[str]:
    """IOB1 -> IOB2: an I-X that does not continue an entity of type X starts one, so it becomes B-X.
    Valid IOB2 is left unchanged."""
    out = []
    for i, tag in enumerate(tags):
        if tag.startswith("I-") and (i == 0 or tags[i - 1] == "O" or tags[i - 1][2:] != tag[2:]):
            tag = "B-" + tag[2:]
        out.append(tag)
    return out


def load_conll(path: PathLike, *, token_column: int = 0, tag_column: int = -1, scheme: str = "auto",
               comment_prefix: str | None = "# ", encoding: str = "utf-8") -> list[TaggedSentence]:
    """Sentences from a CoNLL file: one token per line with columns separated by a tab (or, when a
    line has no tab, by spaces); any whitespace-only line ends a sentence; ``-DOCSTART-`` lines and
    lines starting with ``comment_prefix`` are skipped.

    ``scheme='auto'`` (or 'iob1') converts IOB1 to IOB2 (``iob1_to_iob2``); ``scheme='iob2'``
    rejects an I-X that does not continue an X entity.
    """
    if scheme not in ("auto", "iob1", "iob2"):
        raise ValueError(f"scheme: expected 'auto', 'iob1' or 'iob2', received {scheme!r}")
    lines = split_lines(require_text(read_text_file(path, encoding), path, "token<TAB>tag lines"))
    out: list[TaggedSentence] = []
    tokens, tags, linenos = [], [], []

    def flush():
        if not tokens:
            return
        fixed = iob1_to_iob2(tags)
        if scheme == "iob2" and fixed != tags:
            k = next(i for i, (a, b) in enumerate(zip(tags, fixed)) if a != b)
            raise ValueError(f"{path}, line {linenos[k]}: expected IOB2 ({tags[k]} must follow B-{tags[k][2:]} or "
                             f"{tags[k]}), received {tags[k]} after {tags[k - 1] if k else 'the sentence start'}; "
                             f"pass scheme='iob1' to convert")
        out.append(TaggedSentence(tuple(tokens), tuple(fixed)))
        tokens.clear(), tags.clear(), linenos.clear()

    for n, line in enumerate(lines, 1):
        if not line.strip():
            flush()
            continue
        if line.startswith("-DOCSTART-") or (comment_prefix and line.startswith(comment_prefix)):
            continue
        stripped = line.strip(" \t")
        cols = stripped.split("\t") if "\t" in stripped else re.split(" +", stripped)
        if len(cols) < 2 or max(token_column, tag_column, -1 - token_column, -1 - tag_column) >= len(cols):
            raise ValueError(f"{path}, line {n}: expected a token and a tag separated by a tab or spaces "
                             f"(token column {token_column}, tag column {tag_column}), received {line[:80]!r}")
        tag = cols[tag_column].strip(" ")
        if not _TAG.match(tag):
            raise ValueError(f"{path}, line {n}: expected a tag O, B-TYPE or I-TYPE in column {tag_column}, "
                             f"received {tag!r}")
        tokens.append(cols[token_column])
        tags.append(tag)
        linenos.append(n)
    flush()
    if not out:
        raise ValueError(f"{path}: expected token<TAB>tag lines, found no sentences")
    return out


def to_char_level(sentence: TaggedSentence) -> TaggedSentence:
    """Split each token into characters: B-X on the first character of an entity's first token and
    I-X on the rest (for Chinese NER over words, e.g. Universal NER)."""
    tokens, tags = [], []
    for token, tag in zip(sentence.tokens, sentence.tags):
        for i, ch in enumerate(token):
            tokens.append(ch)
            tags.append(tag if i == 0 or tag == "O" else "I-" + tag[2:])
    return TaggedSentence(tuple(tokens), tuple(tags))


