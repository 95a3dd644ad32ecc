"""BERT's WordPiece tokenizer, written out by hand (Article §3.2.1 数据准备).

Two stages, as in Google's BERT and transformers' BertTokenizer:

1. Basic tokenization of the raw text:
   clean      drop NUL, U+FFFD and control characters (category C*, except tab/newline/CR);
              every whitespace character becomes a space
   Chinese    put spaces around each CJK ideograph, so each becomes its own word
   accents    (when lower-casing) NFD-decompose and drop combining marks (category Mn): é -> e
   lower      lower-case, character by character (as transformers' fast tokenizer does, so a
              Greek final Σ becomes σ, not ς)
   split      on whitespace, then every punctuation character (ASCII punctuation or a Unicode
              P* category) becomes a word of its own
2. WordPiece on each word: greedy longest-match-first. Take the longest prefix that is in the
   vocabulary, then the longest vocabulary piece ``##...`` of the rest, and so on; if some rest has
   no piece, or the word is longer than ``max_input_chars_per_word`` (100), the whole word is [UNK].

Special tokens written verbatim in the text ("[MASK]") are kept whole and never lower-cased.
"""
from __future__ import annotations

import json
import os
import re
import unicodedata
from pathlib import Path

from minitransformer.data.tokenizers import BERT_SPECIALS, TOKENIZER_FILE, Tokenizer, register_tokenizer

VOCAB_FILE = "vocab.txt"
_CJK_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
)


def is_whitespace(ch: str) -> bool:
    """Tab, newline, CR and every Unicode white-space character."""
    return ch in "\t\n\r" or ch.isspace()


def is_control(ch: str) -> bool:
    """A control/format/private/unassigned character (category C*), tab/newline/CR excepted."""
    return ch not in "\t\n\r" and unicodedata.category(ch).startswith("C")


def is_punctuation(ch: str) -> bool:
    """ASCII punctuation (which includes symbols such as $ + < = > ^ ` |) or a Unicode P* character."""
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def is_chinese_char(ch: str) -> bool:
    """A CJK Unified Ideograph (the blocks BERT treats as one-character words)."""
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def clean_text(text: str) -> str:
    """Drop NUL, U+FFFD and control characters; map every whitespace character to ' '."""
    kept = (ch for ch in text if not (ch in "\x00\ufffd" or is_control(ch)))
    return "".join(" " if is_whitespace(ch) else ch for ch in kept)


def strip_accents(text: str) -> str:
    """NFD-decompose, then drop the non-spacing marks: 'Café' -> 'Cafe'."""
    return "".join(ch for ch in unicodedata.normalize("NFD", text) if unicodedata.category(ch) != "Mn")


def split_on_punctuation(word: str) -> list[str]:
    """'hello,world!' -> ['hello', ',', 'world', '!']."""
    out, current = [], ""
    for ch in word:
        if is_punctuation(ch):
            if current:
                out.append(current)
            out.append(ch)
            current = ""
        else:
            current += ch
    return out + ([current] if current else [])


def basic_tokenize(text: str, do_lower_case: bool = True, strip_accents_: bool | None = None) -> list[str]:
    """Stage 1 (see the module docstring): clean, isolate CJK characters, strip accents and
    lower-case (when ``do_lower_case``), split on whitespace and punctuation."""
    text = clean_text(text)
    text = "".join(f" {ch} " if is_chinese_char(ch) else ch for ch in text)
    if do_lower_case if strip_accents_ is None else strip_accents_:
        text = strip_accents(text)
    if do_lower_case:
        text = "".join(ch.lower() for ch in text)
    return [piece for word in text.split() for piece in split_on_punctuation(word)]


def wordpiece(word: str, vocab: dict[str, int], unk: str = "[UNK]", max_chars: int = 100) -> list[str]:
    """Stage 2: greedy longest-match-first. 'unaffable' -> ['un', '##aff', '##able'] with a vocabulary
    holding those pieces; [UNK] when some part has no piece or len(word) > max_chars."""
    if len(word) > max_chars:
        return [unk]
    pieces, start = [], 0
    while start < len(word):
        end, piece = len(word), None
        while start < end:
            candidate = word[start:end] if start == 0 else "##" + word[start:end]
            if candidate in vocab:
                piece = candidate
                break
            end -= 1
        if piece is None:
            return [unk]
        pieces.append(piece)
        start = end
    return pieces


def check_vocab_list(vocab) -> None:
    """ValueError unless ``vocab`` is a list (or tuple) of str tokens; a path or a str gets a
    message pointing to :meth:`WordPieceTokenizer.from_file`, which reads a vocab.txt."""
    if isinstance(vocab, (str, bytes, os.PathLike)):
        raise ValueError(f"vocab: expected a list of tokens, received the {type(vocab).__name__} {str(vocab)!r}; "
                         f"to read a vocab.txt (one token per line) use WordPieceTokenizer.from_file(path)")
    if not isinstance(vocab, (list, tuple)):
        raise ValueError(f"vocab: expected a list of tokens, received {type(vocab).__name__}")
    bad = [t for t in vocab if not isinstance(t, str)]
    if bad:
        raise ValueError(f"vocab: expected str tokens, received {bad[:3]!r}")


def read_text_file(path: Path, what: str) -> str:
    """The UTF-8 text of ``path``; ValueError naming the file when it is not UTF-8 text (a binary file)."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: expected {what} in UTF-8, received bytes that are not UTF-8 text "
                         f"(byte {e.start}: {e.reason})") from None


def read_settings(path: Path) -> dict:
    """tokenizer.json as a dict; ValueError naming the file when it is not a UTF-8 JSON object."""
    try:
        d = json.loads(read_text_file(path, "JSON written by tokenizer.save(dir)"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: expected JSON written by tokenizer.save(dir), could not parse it ({e})") from None
    if not isinstance(d, dict):
        raise ValueError(f"{path}: expected a JSON object, received {type(d).__name__}")
    return d


class WordPieceTokenizer(Tokenizer):
    """BERT's tokenizer from a ``vocab.txt`` (one token per line, id = line number), with the
    project's tokenizer interface (``minitransformer.data.tokenizers.Tokenizer``): ``encode(text)``
    (no [CLS]/[SEP]), ``decode``, ``vocab_size``, ``pad_id`` … ``mask_id``, ``special_ids``,
    ``save(dir)``; ``load_tokenizer(dir)`` reads it back once minibert is imported.
    """

    kind = "wordpiece"

    def __init__(self, vocab: list[str], do_lower_case: bool = True, strip_accents: bool | None = None,
                 max_input_chars_per_word: int = 100):
        check_vocab_list(vocab)
        vocab = list(vocab)
        if len(set(vocab)) != len(vocab):
            seen, dup = set(), []
            for t in vocab:
                (dup.append(t) if t in seen else seen.add(t))
            raise ValueError(f"vocab: expected distinct tokens, received duplicates {dup[:5]}")
        missing = [t for t in BERT_SPECIALS.values() if t not in vocab]
        if missing:
            raise ValueError(f"vocab: expected the special tokens {list(BERT_SPECIALS.values())}, missing {missing}")
        self.specials = dict(BERT_SPECIALS)
        self.vocab = {tok: i for i, tok in enumerate(vocab)}
        self.inv = list(vocab)
        self.do_lower_case, self.strip_accents = do_lower_case, strip_accents
        self.max_input_chars_per_word = max_input_chars_per_word
        self._special_re = re.compile("(" + "|".join(re.escape(t) for t in BERT_SPECIALS.values()) + ")")

    @classmethod
    def from_file(cls, path, do_lower_case: bool = True, **kw) -> "WordPieceTokenizer":
        """Read ``vocab.txt`` (or a directory holding one)."""
        path = Path(path)
        if path.is_dir():
            path = path / VOCAB_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no vocab.txt")
        lines = read_text_file(path, "a vocab.txt (one token per line)").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return cls([line.rstrip("\r") for line in lines], do_lower_case=do_lower_case, **kw)

    @classmethod
    def load(cls, directory) -> "WordPieceTokenizer":
        """Inverse of :meth:`save`: vocab.txt plus the casing options in tokenizer.json."""
        directory = Path(directory)
        options = {}
        if (directory / TOKENIZER_FILE).is_file():
            d = read_settings(directory / TOKENIZER_FILE)
            options = {k: d[k] for k in ("do_lower_case", "strip_accents", "max_input_chars_per_word") if k in d}
        return cls.from_file(directory / VOCAB_FILE, **options)

    def save(self, directory) -> None:
        """Write vocab.txt and tokenizer.json (kind "wordpiece" and the casing options)."""
        path = self._write_settings(directory, {"do_lower_case": self.do_lower_case, "strip_accents": self.strip_accents,
                                                "max_input_chars_per_word": self.max_input_chars_per_word})
        (path / VOCAB_FILE).write_text("\n".join(self.inv) + "\n", encoding="utf-8")

    # ------------------------------------------------------------------ the interface
    @property
    def vocab_size(self) -> int:
        return len(self.inv)

    def token_to_id(self, token: str) -> int | None:
        return self.vocab.get(token)

    def id_to_token(self, i: int) -> str:
        return self.inv[self._check_id(i)]

    def tokenize(self, text: str) -> list[str]:
        """Text -> WordPiece tokens (special tokens written in the text are kept whole)."""
        if not isinstance(text, str):
            raise ValueError(f"text: expected a str, received {type(text).__name__}")
        tokens = []
        for part in self._special_re.split(text):
            if part in self.vocab and part in BERT_SPECIALS.values():
                tokens.append(part)
                continue
            for word in basic_tokenize(part, self.do_lower_case, self.strip_accents):
                tokens.extend(wordpiece(word, self.vocab, "[UNK]", self.max_input_chars_per_word))
        return tokens

    def encode(self, text: str) -> list[int]:
        """Text -> token ids, without [CLS] and [SEP]."""
        return [self.vocab[t] for t in self.tokenize(text)]

    def decode(self, ids) -> str:
        """Ids -> text: pieces joined by spaces, ``##`` continuations glued to the previous piece,
        special tokens dropped."""
        special = self.special_ids
        words = " ".join(self.inv[self._check_id(int(i))] for i in ids if int(i) not in special)
        return words.replace(" ##", "")


register_tokenizer(WordPieceTokenizer.kind, WordPieceTokenizer.load)
