"""Readers for the dataset formats the chapters train on, and a deterministic train/val/test split.

- plain text (documents separated by blank lines): ``load_text``, ``load_documents``
- classification as TSV / CSV / JSONL, or one file per label: ``load_classification``, ``load_classification_files``
- CoNLL NER (token ... tag per line): ``load_conll`` in ``conll.py``
- parallel text as TSV: ``load_parallel``
- ``split_dataset`` (deduplicates first), ``LabelVocab``, ``check_min_length``

Article §3.2.1 数据准备 (unlabelled text for pretraining, labelled data for fine-tuning).

Every reader splits lines on '\\n' only (and drops a trailing '\\r'): ``str.splitlines`` would also
split on U+0085 and other Unicode separators that real files contain inside sentences. A BOM at
the start of a file is dropped; texts are otherwise kept verbatim, labels are stripped. Bad input
raises ValueError naming the file, the line and what was expected; undecodable bytes name the
byte offset.
"""
from __future__ import annotations

import csv
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Hashable, Iterable, Mapping, Sequence, TypeVar

if TYPE_CHECKING:
    from .conll import TaggedSentence

T = TypeVar("T")
PathLike = str | os.PathLike
Column = int | str

FORMATS = ("tsv", "csv", "jsonl")
QUOTINGS = ("csv", "none")
# The advice in error messages, in the Python API's words. A command line shows its flags instead:
# ``with_cli_hints(str(error), {"format": "pass --format tsv, csv or jsonl", ...})``.
API_HINTS = {
    "format": "pass format='tsv', 'csv' or 'jsonl'",
    "quoting": "pass quoting='none'",
    "encoding": "pass encoding= (for example 'latin-1')",
}


def with_cli_hints(message: str, flags: Mapping[str, str]) -> str:
    """``message`` with each API hint (``API_HINTS[name]``, e.g. "pass quoting='none'") replaced by
    ``flags[name]`` (e.g. "pass --quoting none"), for a CLI whose users know flags, not arguments."""
    for name, hint in API_HINTS.items():
        if name in flags:
            message = message.replace(hint, flags[name])
    return message


@dataclass(frozen=True)
class Example:
    """A text with its class label."""

    text: str
    label: str


# ---------------------------------------------------------------- reading files
def read_text_file(path: PathLike, encoding: str = "utf-8") -> str:
    """The decoded contents of ``path``, without a leading BOM. Undecodable bytes raise ValueError
    naming the file and the byte offset."""
    data = Path(path).read_bytes()
    try:
        text = data.decode(encoding)
    except LookupError:
        raise ValueError(f"encoding: expected a codec name such as 'utf-8' or 'latin-1', received {encoding!r}") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: cannot decode byte {data[e.start:e.start + 1]!r} at byte offset {e.start} as "
                         f"{encoding} ({e.reason}); {API_HINTS['encoding']}") from None
    return text[1:] if text.startswith("\ufeff") else text


def split_lines(text: str) -> list[str]:
    """Lines split on '\\n' only, each without a trailing '\\r'; no empty last line for a final newline."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def require_text(text: str, path: PathLike, expected: str) -> str:
    """``text``, unless it is empty or only whitespace: then a ValueError naming the file and what was expected."""
    if not text.strip():
        raise ValueError(f"{path}: the file is empty; expected {expected}")
    return text


def load_text(path: PathLike, encoding: str = "utf-8") -> str:
    """The whole file as one string (for character-level language models)."""
    return require_text(read_text_file(path, encoding), path, "some text")


def load_documents(path: PathLike, encoding: str = "utf-8") -> list[str]:
    """Documents separated by blank (whitespace-only) lines; each document keeps its lines joined by '\\n'."""
    text = require_text(read_text_file(path, encoding), path, "documents separated by blank lines")
    docs, current = [], []
    for line in split_lines(text):
        if line.strip():
            current.append(line)
        elif current:
            docs.append("\n".join(current))
            current = []
    if current:
        docs.append("\n".join(current))
    return docs


def check_min_length(n_tokens: int, context: int, path: PathLike) -> None:
    """Raise ValueError unless a text of ``n_tokens`` tokens yields at least one training window of
    ``context`` tokens: a causal LM needs ``context + 1`` tokens (inputs plus the shifted targets)."""
    if context < 1:
        raise ValueError(f"context: expected a positive number of tokens, received {context}")
    if n_tokens < context + 1:
        raise ValueError(f"{path}: has {n_tokens} tokens, but a context of {context} needs at least {context + 1} "
                         f"(context + 1 for the shifted targets); use a longer text or a smaller context")


# ---------------------------------------------------------------- columns
def _resolve(columns: Mapping[str, Column], header_row: Sequence[str] | None, path: PathLike) -> dict[str, int]:
    """Column names -> indices; names are looked up in the header row."""
    out = {}
    for role, col in columns.items():
        if isinstance(col, int):
            out[role] = col
        elif header_row is None:
            raise ValueError(f"{path}: {role} column {col!r} is a name, so the file needs a header line (header=True), "
                             f"or give the column as a number")
        elif col not in header_row:
            raise ValueError(f"{path}, line 1: expected a header with a column {col!r}, received {list(header_row)}")
        else:
            out[role] = list(header_row).index(col)
    return out


def _pick(row: Sequence[str], index: dict[str, int], path: PathLike, lineno: int | str, sep: str, line: str) -> list[str]:
    need = max(i + 1 if i >= 0 else -i for i in index.values())
    if len(row) < need:
        where = ", ".join(f"{role} in column {i}" for role, i in index.items())
        raise ValueError(f"{path}, line {lineno}: expected at least {need} {sep}-separated columns ({where}), "
                         f"received {len(row)}: {line[:80]!r}")
    values = [row[i] for i in index.values()]
    for role, value in zip(index, values):
        if not value.strip():
            raise ValueError(f"{path}, line {lineno}: expected a non-empty {role}, received {line[:80]!r}")
    return values


def _delimited_rows(lines: list[str], delimiter: str, quoting: str, path: PathLike):
    """(first line number, last line number, fields, raw line) for each non-blank row."""
    if quoting == "none":
        for n, line in enumerate(lines, 1):
            if line.strip():
                yield n, n, line.split(delimiter), line
        return
    if quoting not in QUOTINGS:
        raise ValueError(f"quoting: expected 'csv' (quotes as in Python's csv module) or 'none', received {quoting!r}")
    reader = csv.reader((line + "\n" for line in lines), delimiter=delimiter, strict=True)
    last = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise ValueError(f"{path}, line {reader.line_num}: malformed quoted field ({e}); "
                             f"{API_HINTS['quoting']} to read each line as-is") from None
        first, last = last + 1, reader.line_num
        if last > first and any("\n" in field for field in row):
            raise ValueError(f"{path}, lines {first}-{last}: a quoted field runs over {last - first + 1} lines; the "
                             f"file probably has an unbalanced quote ({API_HINTS['quoting']} to read each line as-is)")
        if any(field.strip() for field in row):
            yield first, last, row, lines[first - 1]


def _infer_format(path: PathLike, fmt: str | None) -> str:
    if fmt is None:
        suffix = Path(path).suffix.lower()
        fmt = {".tsv": "tsv", ".txt": "tsv", ".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl"}.get(suffix)
        if fmt is None:
            raise ValueError(f"{path}: cannot tell the format from the suffix {suffix!r}; {API_HINTS['format']}")
    if fmt not in FORMATS:
        raise ValueError(f"format: expected 'tsv', 'csv' or 'jsonl', received {fmt!r}")
    return fmt


# ---------------------------------------------------------------- classification
def load_classification(path: PathLike, *, text_column: Column = "text", label_column: Column = "label",
                        header: bool | None = None, format: str | None = None, quoting: str = "csv",
                        encoding: str = "utf-8") -> list[Example]:
    """Examples from a TSV, CSV or JSONL file (format from the suffix unless given).

    Columns are names (looked up in the header line, or keys of each JSON object) or 0-based
    numbers (negative counts from the end). ``header=None`` means: a header exists when a column
    is given by name. ``quoting='csv'`` reads quotes as Python's csv module does (a doubled
    quote inside a quoted field is one quote character); ``quoting='none'`` takes every line as-is, for files with stray quotes.
    """
    fmt = _infer_format(path, format)
    lines = split_lines(require_text(read_text_file(path, encoding), path, "text and label columns"))
    columns = {"text": text_column, "label": label_column}
    if fmt == "jsonl":
        return _load_jsonl(lines, columns, path)
    sep, delimiter = ("tab", "\t") if fmt == "tsv" else ("comma", ",")
    has_header = header if header is not None else any(isinstance(c, str) for c in columns.values())
    rows = _delimited_rows(lines, delimiter, quoting, path)
    header_row = next(rows)[2] if has_header else None
    index = _resolve(columns, [h.strip() for h in header_row] if header_row else None, path)
    out = []
    for first, _, row, line in rows:
        text, label = _pick(row, index, path, first, sep, line)
        out.append(Example(text, label.strip()))
    if not out:
        raise ValueError(f"{path}: expected at least one example after the header, found none")
    return out


def _load_jsonl(lines: list[str], columns: Mapping[str, Column], path: PathLike) -> list[Example]:
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}, line {n}: expected a JSON object, {e.msg} at column {e.colno}") from None
        values = []
        for role, key in columns.items():
            try:
                value = obj[key]
            except (KeyError, IndexError, TypeError):
                raise ValueError(f"{path}, line {n}: expected a {role} under key {key!r}, received {line[:80]!r}") from None
            if str(value).strip() == "":
                raise ValueError(f"{path}, line {n}: expected a non-empty {role}, received {line[:80]!r}")
            values.append(str(value))
        out.append(Example(values[0], values[1].strip()))
    return out


def load_classification_files(files: Mapping[str, PathLike], encoding: str = "utf-8") -> list[Example]:
    """One example per non-blank line, labelled by the file it comes from, e.g.
    ``{"pos": "rt-polarity.pos", "neg": "rt-polarity.neg"}``."""
    out = []
    for label, path in files.items():
        text = require_text(read_text_file(path, encoding), path, f"one {label!r} text per line")
        out.extend(Example(line, label) for line in split_lines(text) if line.strip())
    return out


# ---------------------------------------------------------------- parallel text
def load_parallel(path: PathLike, *, source_column: Column = 0, target_column: Column = 1,
                  header: bool | None = None, encoding: str = "utf-8") -> list[tuple[str, str]]:
    """(source, target) pairs from a tab-separated file; other columns are ignored. Quotes are
    ordinary characters (sentences contain them)."""
    lines = split_lines(require_text(read_text_file(path, encoding), path, "source<TAB>target lines"))
    columns = {"source": source_column, "target": target_column}
    has_header = header if header is not None else any(isinstance(c, str) for c in columns.values())
    rows = _delimited_rows(lines, "\t", "none", path)
    header_row = next(rows)[2] if has_header else None
    index = _resolve(columns, [h.strip() for h in header_row] if header_row else None, path)
    out = [tuple(_pick(row, index, path, n, "tab", line)) for n, _, row, line in rows]
    if not out:
        raise ValueError(f"{path}: expected at least one source<TAB>target pair, found none")
    return out


# ---------------------------------------------------------------- splits and labels
def split_dataset(items: Iterable[T], fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0,
                  group: Callable[[T], Hashable] | None = None) -> tuple[list[T], ...]:
    """Deduplicate (keeping first occurrences), shuffle with ``random.Random(seed)`` and cut into
    ``len(fractions)`` disjoint parts of those sizes (rounded). With ``group``, items sharing
    ``group(item)`` (e.g. the same English sentence with two translations) stay in the same part.
    The result depends only on the items, their order and the seed."""
    fractions = tuple(float(f) for f in fractions)
    if not fractions or any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"fractions: expected non-negative numbers summing to 1, received {fractions}")
    unique: dict = {}
    for item in items:
        try:
            unique.setdefault(item, None)
        except TypeError:
            raise ValueError(f"items: expected hashable items (str, tuple, frozen dataclass), "
                             f"received {type(item).__name__}") from None
    if not unique:
        raise ValueError("items: expected at least one item to split, received none")
    groups: dict = {}
    for item in unique:
        groups.setdefault(group(item) if group else item, []).append(item)
    keys = list(groups)
    random.Random(seed).shuffle(keys)
    bounds, total = [0], 0.0
    for f in fractions:
        total += f
        bounds.append(round(total * len(keys)))
    bounds[-1] = len(keys)
    return tuple([item for key in keys[a:b] for item in groups[key]] for a, b in zip(bounds, bounds[1:]))


class LabelVocab:
    """Labels <-> ids, built from the training set; evaluation labels must be among them."""

    def __init__(self, labels: Iterable[str], source: str = "training set"):
        unique = sorted(set(labels))
        if not unique:
            raise ValueError(f"{source}: expected at least one label, received none")
        if "O" in unique:   # the outside tag first, as in NER label lists
            unique.remove("O")
            unique.insert(0, "O")
        self.labels: tuple[str, ...] = tuple(unique)
        self.source = source
        self._ids = {label: i for i, label in enumerate(self.labels)}

    @classmethod
    def from_tags(cls, sentences: Iterable[TaggedSentence], source: str = "training set") -> "LabelVocab":
        """O plus B-X and I-X for every entity type X seen in ``sentences``."""
        types = {tag[2:] for s in sentences for tag in s.tags if tag != "O"}
        return cls(["O"] + [f"{p}-{t}" for t in types for p in "BI"], source)

    def __len__(self) -> int:
        return len(self.labels)

    def encode(self, label: str) -> int:
        if label not in self._ids:
            raise ValueError(f"label {label!r} is not in the labels of the {self.source} {list(self.labels)}")
        return self._ids[label]

    def decode(self, i: int) -> str:
        if not 0 <= i < len(self.labels):
            raise ValueError(f"label id: expected 0 <= id < {len(self.labels)}, received {i}")
        return self.labels[i]

    def check(self, labels: Iterable[str], source: PathLike) -> None:
        """Raise ValueError naming the label and ``source`` (a file) if a label is missing from training."""
        missing = sorted(set(labels) - set(self.labels))
        if missing:
            raise ValueError(f"{source}: label {missing[0]!r} does not occur in the {self.source} "
                             f"(labels there: {list(self.labels)}); all missing: {missing}")
