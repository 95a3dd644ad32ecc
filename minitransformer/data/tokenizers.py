"""Tokenizers with one interface: characters (``CharTokenizer``) and sentencepiece BPE / unigram
(``SentencePieceTokenizer``). Article §3.2.1 数据准备.

Both give ``vocab_size``, ``encode(str) -> list[int]``, ``decode(list[int]) -> str``,
``token_to_id``, ``id_to_token``, ``tokenize`` (the pieces, for display), the special ids
(``pad_id``, ``unk_id``, ``cls_id``, ``sep_id``, ``mask_id``, ``eot_id``; None when absent) and
``special_ids``. ``save(dir)`` writes ``tokenizer.json`` (kind and settings) plus the model file;
``load_tokenizer(dir)`` reads either kind back. Special tokens come first, in the order of
``ROLES``, so BERT's are [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4 and GPT's [UNK]=0 <|endoftext|>=1.
Special tokens written in the text (e.g. "[MASK]") encode to their ids; ``decode`` writes them back.
"""
from __future__ import annotations

import io
import json
import operator
import os
import re
from pathlib import Path
from typing import Callable, Iterable, Mapping

TOKENIZER_FILE = "tokenizer.json"
SPM_MODEL_FILE = "sentencepiece.model"
ROLES = ("pad", "unk", "cls", "sep", "mask", "eot")
BERT_SPECIALS: dict[str, str] = {"pad": "[PAD]", "unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]"}
GPT_SPECIALS: dict[str, str] = {"unk": "[UNK]", "eot": "<|endoftext|>"}
CHAR_SPECIALS: dict[str, str] = {"unk": "[UNK]"}
PathLike = str | os.PathLike


def _check_specials(specials: Mapping[str, str]) -> dict[str, str]:
    """Specials in ROLES order; an unknown symbol is required."""
    unknown = sorted(set(specials) - set(ROLES))
    if unknown:
        raise ValueError(f"specials: expected roles among {ROLES}, received {unknown}")
    if "unk" not in specials:
        raise ValueError(f"specials: expected an 'unk' token (every tokenizer needs an unknown symbol), received {dict(specials)}")
    tokens = [specials[r] for r in ROLES if r in specials]
    if len(set(tokens)) != len(tokens) or not all(isinstance(t, str) and t for t in tokens):
        raise ValueError(f"specials: expected distinct non-empty strings, received {dict(specials)}")
    return {r: specials[r] for r in ROLES if r in specials}


PATH_SUFFIXES = (".txt", ".json", ".model", ".vocab", ".tsv", ".csv")


def looks_like_path(value) -> bool:
    """Whether ``value`` is a path (``os.PathLike``, or a str holding a path separator or ending in
    a file suffix such as .txt) rather than the characters it was given in place of."""
    if isinstance(value, os.PathLike):
        return True
    return isinstance(value, str) and ("/" in value or "\\" in value or value.lower().endswith(PATH_SUFFIXES))


def check_not_a_path(value, name: str, expected: str, hint: str) -> None:
    """ValueError when a path was passed where ``expected`` (e.g. 'a list of tokens') belongs:
    it names what was received and ``hint``, the method that reads such a file."""
    if looks_like_path(value):
        raise ValueError(f"{name}: expected {expected}, received the path {str(value)!r}; {hint}")


def _texts(texts: str | Iterable[str]) -> list[str]:
    texts = [texts] if isinstance(texts, str) else list(texts)
    if not any(t for t in texts):
        raise ValueError("texts: expected some training text, received none (or only empty strings)")
    return texts


class Tokenizer:
    """The interface both tokenizers share. Subclasses set ``specials`` (role -> token) and
    implement ``encode``, ``decode``, ``token_to_id``, ``id_to_token``, ``vocab_size``, ``save``."""

    kind = ""
    specials: dict[str, str]

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def decode(self, ids: Iterable[int]) -> str:
        raise NotImplementedError

    def token_to_id(self, token: str) -> int | None:
        raise NotImplementedError

    def id_to_token(self, i: int) -> str:
        raise NotImplementedError

    def save(self, directory: PathLike) -> None:
        raise NotImplementedError

    def tokenize(self, text: str) -> list[str]:
        """The tokens ``encode`` produces, as strings."""
        return [self.id_to_token(i) for i in self.encode(text)]

    def _special(self, role: str) -> int | None:
        return self.token_to_id(self.specials[role]) if role in self.specials else None

    pad_id = property(lambda self: self._special("pad"))
    unk_id = property(lambda self: self._special("unk"))
    cls_id = property(lambda self: self._special("cls"))
    sep_id = property(lambda self: self._special("sep"))
    mask_id = property(lambda self: self._special("mask"))
    eot_id = property(lambda self: self._special("eot"))

    @property
    def special_ids(self) -> set[int]:
        return {self.token_to_id(t) for t in self.specials.values()}

    def _check_id(self, i) -> int:
        """``i`` as an int (Python, numpy or one-element torch integer) in [0, vocab_size)."""
        try:
            j = operator.index(i)
        except TypeError:
            j = None
        if j is None or isinstance(i, bool) or not 0 <= j < self.vocab_size:
            raise ValueError(f"token id: expected an int in [0, {self.vocab_size}), received {i!r}")
        return j

    @staticmethod
    def _check_text(text) -> str:
        if not isinstance(text, str):
            raise ValueError(f"text: expected a str, received {type(text).__name__}")
        return text

    def _write_settings(self, directory: PathLike, settings: dict) -> Path:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"kind": self.kind, "specials": self.specials, **settings}, ensure_ascii=False, indent=1)
        (path / TOKENIZER_FILE).write_text(text + "\n", encoding="utf-8")
        return path


class CharTokenizer(Tokenizer):
    """One id per character; special tokens first, then the characters in sorted order. A character
    never seen in training encodes to the unknown id."""

    kind = "char"

    def __init__(self, chars: Iterable[str], specials: Mapping[str, str] = CHAR_SPECIALS):
        check_not_a_path(chars, "chars", "the characters of the vocabulary (an iterable of single characters)",
                         "to read a saved tokenizer use CharTokenizer.load(folder), to learn the characters of a "
                         "text CharTokenizer.train(text)")
        self.specials = _check_specials(specials)
        try:
            chars = sorted(set(chars) - set(self.specials.values()))
        except TypeError:
            raise ValueError(f"chars: expected an iterable of single characters, received {type(chars).__name__}") from None
        bad = [c for c in chars if len(c) != 1]
        if bad:
            raise ValueError(f"chars: expected single characters, received {bad[:5]}")
        self.vocab: list[str] = list(self.specials.values()) + chars
        self._ids = {t: i for i, t in enumerate(self.vocab)}
        # specials are matched longest first, so "<|endoftext|>" is one token, not 13 characters
        self._special_order = sorted(self.specials.values(), key=len, reverse=True)
        self._special_re = re.compile("(" + "|".join(map(re.escape, self._special_order)) + ")")  # specials hold unk at least

    @classmethod
    def train(cls, texts: str | Iterable[str], specials: Mapping[str, str] = CHAR_SPECIALS) -> "CharTokenizer":
        """The characters of ``texts`` (a string or an iterable of strings)."""
        return cls({c for t in _texts(texts) for c in t}, specials)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> list[int]:
        """One id per character, a special token (matched longest first) as one id, an unknown
        character as [UNK]. The specials are cut out by one regex split (odd pieces are the
        specials), then each stretch of plain text is mapped with a list comprehension: a
        million characters in about 0.1 s, where a Python loop over positions took 5 s."""
        self._check_text(text)
        ids, unk, out = self._ids, self._ids[self.specials["unk"]], []
        for k, piece in enumerate(self._special_re.split(text)):
            if k % 2:
                out.append(ids[piece])
            else:
                out.extend([ids.get(c, unk) for c in piece])
        return out

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.vocab[self._check_id(i)] for i in ids)

    def token_to_id(self, token: str) -> int | None:
        return self._ids.get(token)

    def id_to_token(self, i: int) -> str:
        return self.vocab[self._check_id(i)]

    def save(self, directory: PathLike) -> None:
        self._write_settings(directory, {"chars": self.vocab[len(self.specials):]})

    @classmethod
    def load(cls, directory: PathLike) -> "CharTokenizer":
        settings = _read_settings(directory, cls.kind)
        return cls(settings["chars"], settings["specials"])


class SentencePieceTokenizer(Tokenizer):
    """Subword tokenizer trained with the sentencepiece library (BPE or unigram).

    Training settings that make ``decode(encode(x)) == x`` for text the model covers:
    ``normalization_rule_name='identity'`` (no NFKC), ``remove_extra_whitespaces=False``,
    ``character_coverage=1.0`` (every character of the training text, Chinese included) and '\\n'
    as a symbol of its own. ``byte_fallback=True`` spells unseen characters as UTF-8 bytes
    instead of [UNK] (it costs 256 ids). One thread and a fixed input order make training deterministic.
    """

    kind = "sentencepiece"

    def __init__(self, model_proto: bytes, specials: Mapping[str, str], model_type: str):
        self.specials = _check_specials(specials)
        self.model_proto, self.model_type = bytes(model_proto), model_type
        import sentencepiece as spm  # here, not at the top: a character-level run is 1.5 MiB lighter without it

        try:
            self.sp = spm.SentencePieceProcessor(model_proto=self.model_proto)
        except RuntimeError as e:
            raise ValueError(f"sentencepiece model: cannot read it ({e})") from None
        for i, token in enumerate(self.specials.values()):
            if self.sp.piece_to_id(token) != i:
                raise ValueError(f"sentencepiece model: expected special token {token!r} at id {i}, "
                                 f"received id {self.sp.piece_to_id(token)}")

    @classmethod
    def train(cls, texts: str | Iterable[str], vocab_size: int, model_type: str = "bpe",
              specials: Mapping[str, str] = BERT_SPECIALS, byte_fallback: bool = False,
              max_piece_length: int = 16) -> "SentencePieceTokenizer":
        """Train on ``texts`` (a string or an iterable of strings, split into lines here) in memory.
        ``vocab_size`` is an upper bound: a small text may yield fewer pieces."""
        if model_type not in ("bpe", "unigram"):
            raise ValueError(f"model_type: expected 'bpe' or 'unigram', received {model_type!r}")
        specials = _check_specials(specials)
        lines = [line for t in _texts(texts) for line in t.split("\n") if line]
        # ids: [UNK] is sentencepiece's unknown piece; the other specials and '\n' are user-defined
        # symbols, which sentencepiece puts in the free ids in this order and which decode as written.
        user = [t for r, t in specials.items() if r != "unk"] + ["\n"]
        model = io.BytesIO()
        import sentencepiece as spm

        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(lines), model_writer=model, vocab_size=vocab_size, model_type=model_type,
                unk_id=list(specials).index("unk"), pad_id=-1, bos_id=-1, eos_id=-1,
                unk_piece=specials["unk"], unk_surface=specials["unk"],
                user_defined_symbols=user, character_coverage=1.0, byte_fallback=byte_fallback,
                normalization_rule_name="identity", remove_extra_whitespaces=False, split_digits=True,
                max_sentencepiece_length=max_piece_length, max_sentence_length=1 << 16, hard_vocab_limit=False,
                num_threads=1, minloglevel=2)
        except RuntimeError as e:   # sentencepiece reports bad settings (e.g. a vocab too small) this way
            raise ValueError(f"sentencepiece training failed: {e}") from None
        return cls(model.getvalue(), specials, model_type)

    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size()

    def encode(self, text: str) -> list[int]:
        return self.sp.encode(self._check_text(text))

    def decode(self, ids: Iterable[int]) -> str:
        return self.sp.decode([self._check_id(i) for i in ids])

    def token_to_id(self, token: str) -> int | None:
        i = self.sp.piece_to_id(token)
        return None if i == self.sp.unk_id() and token != self.specials["unk"] else i

    def id_to_token(self, i: int) -> str:
        return self.sp.id_to_piece(self._check_id(i))

    def save(self, directory: PathLike) -> None:
        path = self._write_settings(directory, {"model_file": SPM_MODEL_FILE, "model_type": self.model_type})
        (path / SPM_MODEL_FILE).write_bytes(self.model_proto)

    @classmethod
    def load(cls, directory: PathLike) -> "SentencePieceTokenizer":
        settings = _read_settings(directory, cls.kind)
        model = Path(directory) / settings.get("model_file", SPM_MODEL_FILE)
        if not model.is_file():
            raise ValueError(f"{model}: missing sentencepiece model file named in {TOKENIZER_FILE}")
        return cls(model.read_bytes(), settings["specials"], settings.get("model_type", "unknown"))


def _read_settings(directory: PathLike, kind: str | None = None) -> dict:
    path = Path(directory) / TOKENIZER_FILE
    if not path.is_file():
        raise ValueError(f"{path}: no tokenizer here; expected a {TOKENIZER_FILE} written by tokenizer.save(dir)")
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: expected JSON written by tokenizer.save(dir), {e}") from None
    if not isinstance(settings, dict) or "kind" not in settings or "specials" not in settings:
        raise ValueError(f"{path}: expected an object with 'kind' and 'specials', received {str(settings)[:80]}")
    if kind is not None and settings["kind"] != kind:
        raise ValueError(f"{path}: expected a {kind!r} tokenizer, received kind {settings['kind']!r}")
    return settings


TOKENIZER_KINDS: dict[str, Callable[[PathLike], Tokenizer]] = {
    CharTokenizer.kind: CharTokenizer.load,
    SentencePieceTokenizer.kind: SentencePieceTokenizer.load,
}


def register_tokenizer(kind: str, loader: Callable[[PathLike], Tokenizer]) -> None:
    """Let ``load_tokenizer`` read another kind (e.g. a WordPiece or GPT-2 BPE reader)."""
    TOKENIZER_KINDS[kind] = loader


def load_tokenizer(directory: PathLike) -> Tokenizer:
    """Read back whatever ``tokenizer.save(directory)`` wrote, dispatching on its kind."""
    kind = _read_settings(directory)["kind"]
    if kind not in TOKENIZER_KINDS:
        raise ValueError(f"{Path(directory) / TOKENIZER_FILE}: expected a tokenizer kind among "
                         f"{sorted(TOKENIZER_KINDS)}, received {kind!r}")
    return TOKENIZER_KINDS[kind](directory)
