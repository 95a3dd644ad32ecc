"""Tokenizers: round trips, special ids as documented, deterministic training, save/load."""
from __future__ import annotations

import json

import numpy as np
import pytest
import sentencepiece as spm
import torch
from hypothesis import given, settings, strategies as st

from minitransformer.data import tokenizers
from minitransformer.data import (
    BERT_SPECIALS, GPT_SPECIALS, CharTokenizer, SentencePieceTokenizer, load_tokenizer, register_tokenizer,
)

EN = ["Anna went to Paris by train.", "The food was not good, but the service was very fast.",
      "Li Ming and Anna had dinner at Sun Restaurant.", "She was happy. He was not pleased.",
      "In 2024, 3 friends met at 10 o'clock."]
ZH = ["安娜坐火车去了巴黎。", "饭菜不好，但是服务非常快。", "李明和安娜在太阳餐厅吃了晚饭。", "她很高兴。他不满意。"]
CORPUS = "\n".join(EN * 20 + ZH * 20)
COVERED = sorted(set(CORPUS) - {"\n"})


@pytest.fixture(scope="module")
def sp_models():
    return {(kind, name): SentencePieceTokenizer.train(CORPUS, 300, kind, specials)
            for kind in ("bpe", "unigram") for name, specials in (("bert", BERT_SPECIALS), ("gpt", GPT_SPECIALS))}


# ---------------------------------------------------------------- characters
def test_char_tokenizer_ids_and_unknown():
    tok = CharTokenizer.train(["hello", "世界"], BERT_SPECIALS)
    assert [tok.pad_id, tok.unk_id, tok.cls_id, tok.sep_id, tok.mask_id, tok.eot_id] == [0, 1, 2, 3, 4, None]
    assert tok.special_ids == {0, 1, 2, 3, 4}
    assert tok.vocab_size == 5 + len(set("hello世界"))
    assert tok.tokenize("he[MASK]z") == ["h", "e", "[MASK]", "[UNK]"]
    assert tok.encode("z") == [tok.unk_id]
    assert tok.decode(tok.encode("[CLS]hello[SEP]")) == "[CLS]hello[SEP]"
    with pytest.raises(ValueError, match=r"token id: expected an int in \[0, 11\), received 11"):
        tok.decode([11])
    assert tok.decode(torch.tensor([5, 6])) == tok.decode(np.array([5, 6])) == tok.id_to_token(5) + tok.id_to_token(6)
    assert tok.encode("") == [] and tok.decode([]) == ""
    with pytest.raises(ValueError, match="text: expected a str"):
        tok.encode(["hello"])


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet=COVERED + [" ", "\n"], max_size=60))
def test_char_round_trip(text):
    tok = CharTokenizer.train(CORPUS + " ", GPT_SPECIALS)
    assert tok.decode(tok.encode(text)) == text
    assert len(tok.encode(text)) == len(text)


def test_char_eot_is_one_token():
    tok = CharTokenizer.train("ab", GPT_SPECIALS)
    assert (tok.unk_id, tok.eot_id, tok.pad_id) == (0, 1, None)
    assert tok.encode("a<|endoftext|>b") == [tok.token_to_id("a"), 1, tok.token_to_id("b")]


def _encode_position_by_position(tok, text):
    """The definition: at each position the longest special that starts there, else one character."""
    out, i = [], 0
    specials = sorted(tok.specials.values(), key=len, reverse=True)
    while i < len(text):
        s = next((s for s in specials if text.startswith(s, i)), None)
        out.append(tok.token_to_id(s) if s else (tok.token_to_id(text[i]) if tok.token_to_id(text[i]) is not None else tok.unk_id))
        i += len(s) if s else 1
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "[", "]", "CLS", "[CLS]", "[SEP]", "[MASK]", "[PAD]", "[UNK]", "z", "世"]), max_size=30))
def test_char_encode_matches_its_definition_around_specials(parts):
    """Specials inside text, touching each other, half-written ('[CLS' ']'), unknown characters ('z')."""
    tok = CharTokenizer.train("ab[]CLS世", BERT_SPECIALS)
    text = "".join(parts)
    assert tok.encode(text) == _encode_position_by_position(tok, text)


def test_specials_need_an_unknown_symbol():
    with pytest.raises(ValueError, match="'unk'"):
        CharTokenizer.train("ab", {"pad": "[PAD]"})
    with pytest.raises(ValueError, match="roles"):
        CharTokenizer.train("ab", {"unk": "?", "bos": "<s>"})
    with pytest.raises(ValueError, match="training text"):
        CharTokenizer.train([""])


# ---------------------------------------------------------------- sentencepiece
@pytest.mark.parametrize("kind", ["bpe", "unigram"])
def test_sentencepiece_special_ids(sp_models, kind):
    bert, gpt = sp_models[kind, "bert"], sp_models[kind, "gpt"]
    assert [bert.pad_id, bert.unk_id, bert.cls_id, bert.sep_id, bert.mask_id, bert.eot_id] == [0, 1, 2, 3, 4, None]
    assert [bert.id_to_token(i) for i in range(5)] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert (gpt.unk_id, gpt.eot_id, gpt.pad_id, gpt.cls_id) == (0, 1, None, None)
    assert gpt.special_ids == {0, 1}
    # specials written in the text are single tokens, and decode writes them back
    ids = bert.encode("Anna went to [MASK].")
    assert ids.count(bert.mask_id) == 1 and bert.decode(ids) == "Anna went to [MASK]."
    assert gpt.encode("a<|endoftext|>b").count(gpt.eot_id) == 1


@pytest.mark.parametrize("kind", ["bpe", "unigram"])
def test_sentencepiece_round_trip_on_the_training_text(sp_models, kind):
    tok = sp_models[kind, "bert"]
    for text in EN + ZH + [CORPUS, "  two  spaces \n\n and a tab\t. ", "巴黎 Paris\n饭菜"]:
        ids = tok.encode(text)
        assert tok.unk_id not in ids or "\t" in text
        if "\t" not in text:
            assert tok.decode(ids) == text
    # characters never seen become [UNK] (sentencepiece gives a run of them one [UNK]), never dropped silently
    assert tok.decode(tok.encode("Zebra 麒麟")) == "[UNK]ebra [UNK]"


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet=COVERED + [" ", "\n"], max_size=50))
def test_sentencepiece_round_trip_property(sp_models, text):
    for kind in ("bpe", "unigram"):
        tok = sp_models[kind, "gpt"]
        assert tok.decode(tok.encode(text)) == text


def test_byte_fallback_covers_unseen_characters():
    tok = SentencePieceTokenizer.train(CORPUS, 600, "bpe", GPT_SPECIALS, byte_fallback=True)
    text = "Qué 麒麟\t!"
    assert tok.unk_id not in tok.encode(text)
    assert tok.decode(tok.encode(text)) == text


def test_training_is_deterministic():
    for kind in ("bpe", "unigram"):
        a = SentencePieceTokenizer.train(CORPUS, 200, kind)
        b = SentencePieceTokenizer.train(CORPUS.split("\n"), 200, kind)   # same lines, given as a list
        assert a.model_proto == b.model_proto


def test_sentencepiece_agrees_with_the_library_reading_the_saved_file(sp_models, tmp_path):
    tok = sp_models["unigram", "bert"]
    tok.save(tmp_path)
    sp = spm.SentencePieceProcessor(model_file=str(tmp_path / "sentencepiece.model"))
    for text in EN + ZH:
        assert tok.encode(text) == sp.encode(text)
        assert tok.tokenize(text) == sp.encode(text, out_type=str)


def test_sentencepiece_vocab_too_small_is_a_value_error():
    with pytest.raises(ValueError, match="sentencepiece training failed"):
        SentencePieceTokenizer.train(CORPUS, 10, "unigram")


# ---------------------------------------------------------------- save / load
@pytest.mark.parametrize("which", ["char", "bpe", "unigram"])
def test_save_load_round_trip(sp_models, tmp_path, which):
    tok = CharTokenizer.train(CORPUS, BERT_SPECIALS) if which == "char" else sp_models[which, "bert"]
    tok.save(tmp_path / "ckpt")
    settings_ = json.loads((tmp_path / "ckpt" / "tokenizer.json").read_text(encoding="utf-8"))
    assert settings_["kind"] == tok.kind and settings_["specials"] == BERT_SPECIALS
    back = load_tokenizer(tmp_path / "ckpt")
    assert type(back) is type(tok) and back.vocab_size == tok.vocab_size
    for text in EN + ZH + [CORPUS]:
        assert back.encode(text) == tok.encode(text)
    assert [back.id_to_token(i) for i in range(back.vocab_size)] == [tok.id_to_token(i) for i in range(tok.vocab_size)]


def test_load_errors_and_registered_kinds(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="no tokenizer here"):
        load_tokenizer(tmp_path)
    (tmp_path / "tokenizer.json").write_text('{"kind": "test-only-kind", "specials": {}}')
    with pytest.raises(ValueError, match="'test-only-kind'"):
        load_tokenizer(tmp_path)
    monkeypatch.setattr(tokenizers, "TOKENIZER_KINDS", dict(tokenizers.TOKENIZER_KINDS))
    register_tokenizer("test-only-kind", lambda d: CharTokenizer("ab"))
    assert load_tokenizer(tmp_path).vocab_size == 3
    (tmp_path / "tokenizer.json").write_text('{"kind": "sentencepiece", "specials": {"unk": "[UNK]"}}')
    with pytest.raises(ValueError, match="missing sentencepiece model"):
        load_tokenizer(tmp_path)
