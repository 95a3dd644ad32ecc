"""GPT-2's byte-level BPE tokenizer, written by hand (vocab.json + merges.txt).

Three steps turn text into ids (Radford et al., 2019; OpenAI's ``encoder.py``):

1. Pre-tokenise with a regex into words, numbers, punctuation runs and whitespace runs; a word
   keeps the one space before it (" world"), so merges never cross a word boundary.
2. Map each UTF-8 *byte* to a printable character (:func:`bytes_to_unicode`): 256 symbols cover
   every possible text, so there is no unknown character, only unknown merges.
3. Apply the learned merges greedily, lowest rank first, until no mergeable pair is left; look
   each resulting piece up in vocab.json.

Decoding joins the pieces, maps the characters back to bytes and decodes UTF-8 (invalid byte
sequences, e.g. half an emoji, become U+FFFD). Article §3.2.1 数据准备.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

# The GPT-2 pre-tokenisation pattern. \p{L} (letters) and \p{N} (numbers) need the ``regex``
# package: Python's ``re`` has no Unicode property classes.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
EOT = "<|endoftext|>"
VOCAB_FILE, MERGES_FILE = "vocab.json", "merges.txt"


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """A one-to-one map from the 256 byte values to printable Unicode characters.

    Bytes that are printable Latin-1 characters ('!'..'~', '¡'..'¬', '®'..'ÿ', 188 of them) map to
    themselves; the other 68 (control characters, space, ...) map to chr(256 + n), n = 0, 1, ...
    in byte order. So the space byte 0x20 becomes 'Ġ' (U+0120) and the newline 0x0A 'Ċ'.
    """
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    table, n = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + n)
            n += 1
    return table


def get_pairs(word: tuple[str, ...]) -> set[tuple[str, str]]:
    """The set of adjacent symbol pairs of a word, e.g. ('l','o','w') -> {('l','o'), ('o','w')}."""
    return set(zip(word[:-1], word[1:]))


def bpe_merge(symbols: tuple[str, ...], ranks: dict[tuple[str, str], int]) -> tuple[str, ...]:
    """Apply BPE merges to one pre-token: repeatedly take the adjacent pair with the lowest merge
    rank and fuse every occurrence of it (left to right), until no pair has a rank."""
    word = symbols
    while len(word) > 1:
        pair = min(get_pairs(word), key=lambda p: ranks.get(p, float("inf")))
        if pair not in ranks:
            break
        merged, i = [], 0
        while i < len(word):
            if i < len(word) - 1 and (word[i], word[i + 1]) == pair:
                merged.append(word[i] + word[i + 1])
                i += 2
            else:
                merged.append(word[i])
                i += 1
        word = tuple(merged)
    return word


def read_text_file(path: str | os.PathLike, what: str) -> str:
    """The UTF-8 text of ``path``; ValueError naming the file when it is not UTF-8 text (a binary file)."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: expected {what} in UTF-8, received bytes that are not UTF-8 text "
                         f"(byte {e.start}: {e.reason})") from None


def read_merges(path: str | os.PathLike) -> list[tuple[str, str]]:
    """merges.txt: one 'a b' pair per line in rank order, after an optional '#version' header."""
    merges = []
    for n, line in enumerate(read_text_file(path, "GPT-2 merges, one 'left right' pair per line").splitlines(), start=1):
        if not line or (n == 1 and line.startswith("#version")):
            continue
        parts = line.split(" ")
        if len(parts) != 2:
            raise ValueError(f"{path}:{n}: expected a merge 'left right', received {line!r}")
        merges.append((parts[0], parts[1]))
    return merges


def check_encoder(encoder) -> None:
    """ValueError unless ``encoder`` is a non-empty dict str token -> int id; a path (a str) gets a
    message pointing to :meth:`GPT2Tokenizer.from_dir`, which reads vocab.json and merges.txt."""
    if isinstance(encoder, (str, bytes, os.PathLike)):
        raise ValueError(f"encoder: expected a dict token -> id, received the {type(encoder).__name__} {str(encoder)!r}; "
                         f"to read a folder's vocab.json and merges.txt use GPT2Tokenizer.from_dir(path)")
    if not isinstance(encoder, Mapping):
        raise ValueError(f"encoder: expected a dict token -> id, received {type(encoder).__name__}")
    if not encoder:
        raise ValueError("vocab: expected a non-empty token -> id mapping, received an empty one")
    bad = [(t, i) for t, i in encoder.items() if not isinstance(t, str) or isinstance(i, bool) or not isinstance(i, int)]
    if bad:
        raise ValueError(f"encoder: expected str tokens mapped to int ids, received {bad[:3]!r}")


def check_merges(merges) -> list[tuple[str, str]]:
    """``merges`` as a list of (left, right) str pairs; ValueError naming the first bad entry."""
    if isinstance(merges, (str, bytes, os.PathLike)):
        raise ValueError(f"merges: expected a list of (left, right) pairs, received the {type(merges).__name__} "
                         f"{str(merges)!r}; to read merges.txt use GPT2Tokenizer.from_dir(path) or read_merges(path)")
    try:
        pairs = [tuple(m) for m in merges]
    except TypeError:
        raise ValueError(f"merges: expected a list of (left, right) pairs, received {type(merges).__name__}") from None
    bad = [m for m in pairs if len(m) != 2 or not all(isinstance(x, str) for x in m)]
    if bad:
        raise ValueError(f"merges: expected (left, right) pairs of str, received {bad[0]!r}")
    return pairs


class GPT2Tokenizer:
    """Byte-level BPE with GPT-2's files. ``encode(text) -> ids``, ``decode(ids) -> text``.

    ``<|endoftext|>`` (when it is in the vocabulary) written in the text is one special token,
    as in Hugging Face's tokenizer; everything between special tokens goes through BPE.
    Same interface as minitransformer's tokenizers: encode, decode, vocab_size, eot_id, save(dir).
    """

    def __init__(self, encoder: dict[str, int], merges: list[tuple[str, str]]):
        check_encoder(encoder)
        merges = check_merges(merges)
        self.encoder = dict(encoder)
        self.decoder = {i: s for s, i in self.encoder.items()}
        self.merges = list(merges)
        self.ranks = {pair: r for r, pair in enumerate(self.merges)}
        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = {c: b for b, c in self.byte_encoder.items()}
        import regex  # here, not at the top: a run with another tokenizer is 1.4 MiB lighter without it

        self.pattern = regex.compile(GPT2_PATTERN)
        self.special = [t for t in (EOT,) if t in self.encoder]
        self.special_pattern = regex.compile("(" + "|".join(map(regex.escape, self.special)) + ")")
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def from_dir(cls, path: str | os.PathLike) -> "GPT2Tokenizer":
        """Load ``vocab.json`` (token -> id) and ``merges.txt`` from a folder."""
        path = Path(path)
        for name in (VOCAB_FILE, MERGES_FILE):
            if not (path / name).is_file():
                raise FileNotFoundError(f"{path}: no {name} -- expected a GPT-2 tokenizer folder (vocab.json + merges.txt)")
        try:
            encoder = json.loads(read_text_file(path / VOCAB_FILE, "a JSON object token -> id"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path / VOCAB_FILE}: expected a JSON object token -> id ({e})") from e
        if not isinstance(encoder, dict) or not all(isinstance(v, int) for v in encoder.values()):
            raise ValueError(f"{path / VOCAB_FILE}: expected a JSON object mapping tokens to integer ids")
        return cls(encoder, read_merges(path / MERGES_FILE))

    @property
    def vocab_size(self) -> int:
        """One more than the largest id (ids index the embedding table)."""
        return max(self.decoder) + 1

    @property
    def eot_id(self) -> int | None:
        """Id of ``<|endoftext|>``, the document separator (None if absent)."""
        return self.encoder.get(EOT)

    def _encode_piece(self, piece: str) -> list[int]:
        """One pre-token -> ids: bytes -> characters -> merges -> vocabulary lookup."""
        if piece in self._cache:
            return self._cache[piece]
        symbols = tuple(self.byte_encoder[b] for b in piece.encode("utf-8"))
        ids = []
        for token in bpe_merge(symbols, self.ranks):
            if token not in self.encoder:
                raise ValueError(f"vocab: expected every BPE piece in vocab.json, received unknown piece {token!r}")
            ids.append(self.encoder[token])
        if len(self._cache) < 100_000:
            self._cache[piece] = ids
        return ids

    def _encode_ordinary(self, text: str) -> list[int]:
        ids: list[int] = []
        for piece in self.pattern.findall(text):
            ids.extend(self._encode_piece(piece))
        return ids

    def encode(self, text: str) -> list[int]:
        """Text -> token ids. ``<|endoftext|>`` in the text becomes its special id."""
        if not isinstance(text, str):
            raise ValueError(f"text: expected a str, received {type(text).__name__}")
        if not self.special:
            return self._encode_ordinary(text)
        ids: list[int] = []
        for part in self.special_pattern.split(text):
            if part in self.special:
                ids.append(self.encoder[part])
            elif part:
                ids.extend(self._encode_ordinary(part))
        return ids

    def decode(self, ids) -> str:
        """Token ids -> text; byte sequences that are not valid UTF-8 become U+FFFD."""
        ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
        bad = [i for i in ids if i not in self.decoder]
        if bad:
            raise ValueError(f"ids: expected token ids in the vocabulary [0, {self.vocab_size}), received {bad[:5]}")
        text = "".join(self.decoder[i] for i in ids)
        return bytearray(self.byte_decoder[c] for c in text).decode("utf-8", errors="replace")

    def save(self, path: str | os.PathLike) -> None:
        """Write vocab.json and merges.txt (with the '#version: 0.2' header) into ``path``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / VOCAB_FILE).write_text(json.dumps(self.encoder, ensure_ascii=False), encoding="utf-8")
        lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in self.merges]
        (path / MERGES_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")


def load_any_tokenizer(path: str | os.PathLike):
    """The tokenizer saved in folder ``path``: GPT-2's vocab.json + merges.txt (this module), or
    whatever ``minitransformer.data`` tokenizers wrote (tokenizer.json)."""
    path = Path(path)
    if (path / VOCAB_FILE).is_file() and (path / MERGES_FILE).is_file():
        return GPT2Tokenizer.from_dir(path)
    from minitransformer.data import load_tokenizer

    return load_tokenizer(path)
