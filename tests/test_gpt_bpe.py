"""The hand-written GPT-2 byte-level BPE against transformers' GPT2Tokenizer (backed by the Rust
``tokenizers`` library), on a vocabulary trained here with ``tokenizers`` (nothing downloaded):
the same ids on ASCII, accents, Chinese, emoji, runs of spaces and newlines, contractions, the
special token; decode inverts encode; the byte map is the one ``tokenizers`` uses.
"""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2Tokenizer as HFGPT2Tokenizer

from minigpt.bpe import GPT2Tokenizer, bpe_merge, bytes_to_unicode, load_any_tokenizer

CORPUS = [
    "Hello world! It's a test, isn't it? We'll see what they've done; I'm sure you'd agree.",
    "Café, naïve, résumé, Ünïcödé, façade, jalapeño, smörgåsbord.",
    "你好，世界！中文分词需要字节级别的处理。今天天气很好，我们去公园散步吧。",
    "Emoji 🙂👍🏽🚀 and family 👨‍👩‍👧 with tabs\tand\t\tmore.\n\n   Indented   spaces   here.\r\n",
    "Numbers 12345, 3.14159 and 1,000,000 items; 2024-01-01.",
]
CASES = [
    "Hello world!",
    "It's they're we've I'm you'll he'd IT'S 'tis",
    "   leading spaces",
    "trailing spaces    ",
    "a\n\n\nb\r\n c\n",
    "Café naïve résumé Ünïcödé",
    "你好世界，中文分词。",
    "🙂👍🏽 emoji 👨\u200d👩\u200d👧 🚀🚀",
    "tabs\tand\t\tmore\t",
    "12345 3.14 1,000 x²",
    "x<|endoftext|>y",
    " <|endoftext|> next document ",
    "  \n  \n",
    "mixed 中英 text, with 'quotes' and \"double\" ones…",
    "",
]


@pytest.fixture(scope="module")
def vocab_dir(tmp_path_factory):
    """A tiny byte-level BPE (vocab.json + merges.txt) trained with the ``tokenizers`` library."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=500, special_tokens=["<|endoftext|>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 10, trainer)
    path = tmp_path_factory.mktemp("bpe")
    tok.model.save(str(path))
    return path


@pytest.fixture(scope="module")
def both(vocab_dir):
    return GPT2Tokenizer.from_dir(vocab_dir), HFGPT2Tokenizer.from_pretrained(vocab_dir)


def test_vocabulary_has_real_merges(both):
    ours, _ = both
    assert len(ours.merges) > 150 and ours.vocab_size > 400
    assert len(ours.encode(CORPUS[0])) < len(CORPUS[0].encode("utf-8")) / 2  # merges do compress


@pytest.mark.parametrize("text", CASES)
def test_same_ids_as_transformers(both, text):
    ours, ref = both
    assert ours.encode(text) == ref.encode(text)
    assert ours.decode(ours.encode(text)) == text == ref.decode(ref.encode(text))


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab xyzT'sdmlrevt \n\n\t\r.,!?-0129éüñ你好世界🙂👍\u200d")), max_size=40))
def test_same_ids_as_transformers_on_random_mixtures(both, text):
    ours, ref = both
    assert ours.encode(text) == ref.encode(text)
    assert ours.decode(ours.encode(text)) == text


def test_byte_map_is_the_one_tokenizers_uses():
    table = bytes_to_unicode()
    assert sorted(table) == list(range(256))
    assert set(table.values()) == set(pre_tokenizers.ByteLevel.alphabet())  # the 256 symbols
    assert table[ord(" ")] == "Ġ" and table[ord("\n")] == "Ċ" and table[ord("A")] == "A"


def test_bpe_merges_lowest_rank_first_left_to_right():
    ranks = {("a", "a"): 0, ("b", "c"): 1}
    assert bpe_merge(tuple("aaa"), ranks) == ("aa", "a")  # overlapping pairs: the left one wins
    assert bpe_merge(tuple("aaaa"), ranks) == ("aa", "aa")
    assert bpe_merge(tuple("aaa"), {**ranks, ("aa", "a"): 2}) == ("aaa",)  # a later merge builds on it
    assert bpe_merge(tuple("abca"), {("c", "a"): 0, ("b", "c"): 1}) == ("a", "b", "ca")  # rank, not position
    assert bpe_merge(tuple("x"), ranks) == ("x",)


def test_special_token_save_and_reload(both, tmp_path):
    ours, _ = both
    assert ours.eot_id == ours.encoder["<|endoftext|>"]
    ours.save(tmp_path / "tok")
    again = load_any_tokenizer(tmp_path / "tok")
    assert isinstance(again, GPT2Tokenizer)
    for text in CASES:
        assert again.encode(text) == ours.encode(text)


def test_bad_input_is_a_clear_error(both, tmp_path):
    ours, _ = both
    with pytest.raises(ValueError, match="token ids in the vocabulary"):
        ours.decode([ours.vocab_size + 5])
    with pytest.raises(ValueError, match="expected a str"):
        ours.encode(b"bytes")
    with pytest.raises(FileNotFoundError, match="vocab.json"):
        GPT2Tokenizer.from_dir(tmp_path)
    (tmp_path / "vocab.json").write_text("{}")
    (tmp_path / "merges.txt").write_text("#version: 0.2\na b c\n")
    with pytest.raises(ValueError, match="merges.txt:2"):
        GPT2Tokenizer.from_dir(tmp_path)
