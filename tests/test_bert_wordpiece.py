"""The hand-written WordPiece tokenizer against transformers' BertTokenizer on the same locally
written vocab.txt: the ids must be identical (exact comparison)."""
import functools

import pytest
import transformers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minibert.wordpiece import WordPieceTokenizer, basic_tokenize, wordpiece
from minitransformer.data import load_tokenizer

WORDS = """the a of and to in is was he she it that for on with as his her at by this had not are but from or
have an they which one you were all we can there been has more if no out so up said what its about into than them
hello world un ##aff ##able play ##ing ##ed ##s run ##ner jump cafe café naïve naive resume résumé über uber Paris
paris John john Hello HELLO The New York new york emoji data ##base token ##izer ##ization ! ? . , ; : ' " ( ) -
$ % & * + / < = > @ [ ] ^ _ ` { | } ~ 中 国 人 你 好 我 们 學 生 e ##e x ##x αβγ οδοσ ##σ σ ο δ ##ο ##δ straße
strasse ß 😀 ##😀 1 2 3 ##1 ##2 ##3 12 100""".split()
CHARS = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")

TEXTS = [
    "Hello, world! The New York café is naïve.",
    "Unaffable players were jumping; the runner ran (again)...",
    "Résumé vs RESUME vs resume — über ÜBER Uber",
    "我们是学生。你好，中国人！",
    "mixed中文and English我们",
    "emoji 😀 and 😀😀 and hello😀 and 👩\u200d💻 with ZWJ",
    "tabs\tnew\nlines\r\nand\u00a0nbsp\u3000ideographic space",
    "control\x00chars\x07 and \ufffd replacement",
    "a" * 100 + " " + "b" * 101 + " " + "ab" * 60,
    "Straße STRASSE ΟΔΟΣ οδος",
    "$100 + 12% = <x> & {y} | [z] ^ `q` ~ @ #hash",
    "don't can't O'Neil's 'quoted' \"double\"",
    "hello [MASK] world [SEP] [CLS] x[MASK]y [mask]",
    "",
    "   ",
    "ﬁne ligature and Ⅳ roman and ＡＢＣ fullwidth",
]


@pytest.fixture(scope="module")
def vocab_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("vocab")
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    for w in WORDS + CHARS + ["##" + c for c in CHARS]:
        if w not in tokens:
            tokens.append(w)
    (d / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return d


@pytest.mark.parametrize("lower", [True, False])
def test_same_ids_as_transformers(vocab_dir, lower):
    ours = WordPieceTokenizer.from_file(vocab_dir / "vocab.txt", do_lower_case=lower)
    ref = transformers.BertTokenizer.from_pretrained(str(vocab_dir), do_lower_case=lower)
    assert ours.vocab_size == ref.vocab_size
    n_unk = 0
    for text in TEXTS:
        want = ref(text, add_special_tokens=False)["input_ids"]
        got = ours.encode(text)
        assert got == want, (text, ours.tokenize(text), ref.convert_ids_to_tokens(want))
        n_unk += got.count(ours.unk_id)
    assert n_unk > 0  # the texts do exercise [UNK] (too-long words, unknown pieces)


def test_examples_by_hand(vocab_dir):
    tok = WordPieceTokenizer.from_file(vocab_dir)
    assert tok.tokenize("Unaffable") == ["un", "##aff", "##able"]
    assert tok.tokenize("Café, naïve!") == ["cafe", ",", "naive", "!"]
    assert WordPieceTokenizer.from_file(vocab_dir, do_lower_case=False).tokenize("café Café") == ["café", "[UNK]"]
    assert tok.tokenize("我们") == ["我", "们"]
    assert tok.tokenize("a" * 101) == ["[UNK]"]
    assert basic_tokenize("Hello,World", do_lower_case=False) == ["Hello", ",", "World"]
    assert wordpiece("unaffable", {"un": 0, "##aff": 1}) == ["[UNK]"]  # no piece for "able": the whole word


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(list("abcxyzABÉéè中国 ,.!'😀-\t\n\u0301") + ["hello", "play", "ing", "ΟΔΟΣ", "[MASK]"]),
                max_size=25).map("".join))
def test_random_text_matches(vocab_dir, text):
    ours, ref = both_tokenizers(str(vocab_dir))
    assert ours.encode(text) == ref(text, add_special_tokens=False)["input_ids"]


@functools.lru_cache(maxsize=2)
def both_tokenizers(vocab_dir: str):
    return WordPieceTokenizer.from_file(vocab_dir), transformers.BertTokenizer.from_pretrained(vocab_dir)


def test_save_load_roundtrip_and_interface(vocab_dir, tmp_path):
    tok = WordPieceTokenizer.from_file(vocab_dir, do_lower_case=False)
    tok.save(tmp_path)
    back = load_tokenizer(tmp_path)  # the project's loader dispatches on the saved kind
    assert isinstance(back, WordPieceTokenizer) and back.do_lower_case is False and back.inv == tok.inv
    assert back.special_ids == {0, 1, 2, 3, 4}
    assert (tok.pad_id, tok.unk_id, tok.cls_id, tok.sep_id, tok.mask_id) == (0, 1, 2, 3, 4)
    assert tok.decode(tok.encode("playing the jumped")) == "playing the jumped"


def test_bad_vocab(tmp_path):
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\nhello\n")
    with pytest.raises(ValueError, match=r"missing \['\[CLS\]', '\[SEP\]', '\[MASK\]'\]"):
        WordPieceTokenizer.from_file(tmp_path / "vocab.txt")
