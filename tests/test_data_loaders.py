"""Loaders: each format's pitfalls on small fixtures written here (tmp_path), the split, the label
vocabulary, and the CLI's one-line errors."""
from __future__ import annotations

import csv
import io
import json

import pytest
from hypothesis import given, settings, strategies as st

from minitransformer.cli import run_cli
from minitransformer.data import (
    Example, LabelVocab, TaggedSentence, check_min_length, iob1_to_iob2, load_classification,
    load_classification_files, load_conll, load_documents, load_parallel, load_text, split_dataset, to_char_level,
)
from minitransformer.data.__main__ import main as cli_main
from minitransformer.data.loaders import with_cli_hints


def write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


# ---------------------------------------------------------------- plain text
def test_documents_split_on_whitespace_only_lines_and_keep_u0085(tmp_path):
    text = "\ufeffAnna went home.\r\nShe\u0085slept.\n \t\nBen ate.\n\n\n\nTom ran.\nHe fell."
    docs = load_documents(write(tmp_path, "d.txt", text))
    assert docs == ["Anna went home.\nShe\u0085slept.", "Ben ate.", "Tom ran.\nHe fell."]


def test_load_text_keeps_every_character_but_the_bom(tmp_path):
    text = "ab\u0085c\r\nd\n"
    assert load_text(write(tmp_path, "t.txt", "\ufeff" + text)) == text


@pytest.mark.parametrize("content", ["", "  \n\t\n"])
def test_empty_file_is_refused_with_its_name(tmp_path, content):
    path = write(tmp_path, "empty.txt", content)
    for load in (load_text, load_documents, load_conll, load_parallel):
        with pytest.raises(ValueError, match=r"empty\.txt: the file is empty"):
            load(path)


def test_undecodable_bytes_name_file_and_offset(tmp_path):
    path = write(tmp_path, "latin.txt", "caf\xe9 noir\n", encoding="latin-1")
    with pytest.raises(ValueError, match=r"latin\.txt: cannot decode byte b'\\xe9' at byte offset 3 as utf-8"):
        load_text(path)
    assert load_text(path, encoding="latin-1") == "café noir\n"
    with pytest.raises(ValueError, match="latin.txt"):
        load_classification_files({"pos": path})


def test_check_min_length(tmp_path):
    check_min_length(9, 8, "x.txt")
    with pytest.raises(ValueError, match=r"x\.txt: has 8 tokens, but a context of 8 needs at least 9"):
        check_min_length(8, 8, "x.txt")
    with pytest.raises(ValueError, match="context"):
        check_min_length(100, 0, "x.txt")


# ---------------------------------------------------------------- classification
def test_tsv_with_header_reads_quotes_as_the_csv_module(tmp_path):
    text = 'label\tsentence\tsource\npos\t"He said ""hi"" twice"\tweb\nneg\tplain, no quotes\tweb\n'
    path = write(tmp_path, "c.tsv", text)
    got = load_classification(path, text_column="sentence", label_column="label")
    expected = [Example(row[1], row[0]) for row in csv.reader(io.StringIO(text), delimiter="\t")][1:]
    assert got == expected == [Example('He said "hi" twice', "pos"), Example("plain, no quotes", "neg")]


def test_csv_and_numbered_columns_without_header(tmp_path):
    path = write(tmp_path, "c.csv", 'ham,"ok, see you"\nspam,WIN now\n\n')
    assert load_classification(path, text_column=1, label_column=0) == [
        Example("ok, see you", "ham"), Example("WIN now", "spam")]


def test_unbalanced_quote_is_reported_not_merged(tmp_path):
    lines = ['"Great movie\t1', "Boring\t0", 'Fine"\t1', "Dull\t0"]
    path = write(tmp_path, "u.txt", "\n".join(lines) + "\n")
    merged = list(csv.reader(io.StringIO("\n".join(lines) + "\n"), delimiter="\t"))
    assert len(merged) == 2                  # what the csv module alone silently does
    with pytest.raises(ValueError, match=r"u\.txt, lines 1-3: a quoted field runs over 3 lines.*quoting='none'"):
        load_classification(path, text_column=0, label_column=1)
    got = load_classification(path, text_column=0, label_column=1, quoting="none")
    assert got == [Example('"Great movie', "1"), Example("Boring", "0"), Example('Fine"', "1"), Example("Dull", "0")]
    path = write(tmp_path, "v.txt", '"Great" movie\t1\n')
    with pytest.raises(ValueError, match=r"v\.txt, line 1: malformed quoted field.*quoting='none'"):
        load_classification(path, text_column=0, label_column=1)


def test_missing_label_names_file_and_line(tmp_path):
    path = write(tmp_path, "m.tsv", "text\tlabel\ngood\tpos\nno label here\nbad\tneg\n")
    with pytest.raises(ValueError, match=r"m\.tsv, line 3: expected at least 2 tab-separated columns"):
        load_classification(path)
    path = write(tmp_path, "e.tsv", "text\tlabel\ngood\t \n")
    with pytest.raises(ValueError, match=r"e\.tsv, line 2: expected a non-empty label"):
        load_classification(path)
    path = write(tmp_path, "h.tsv", "sentence\ty\ngood\tpos\n")
    with pytest.raises(ValueError, match=r"h\.tsv, line 1: expected a header with a column 'text'"):
        load_classification(path)


def test_u0085_inside_a_tsv_line_stays_in_the_text(tmp_path):
    path = write(tmp_path, "n.txt", "one\u0085two\t1\nthree\t0\n")
    assert load_classification(path, text_column=0, label_column=1, quoting="none") == [
        Example("one\u0085two", "1"), Example("three", "0")]


def test_jsonl(tmp_path):
    rows = [{"review": "nice", "stars": 5}, {"review": "meh", "stars": 1}]
    path = write(tmp_path, "r.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    assert load_classification(path, text_column="review", label_column="stars") == [
        Example("nice", "5"), Example("meh", "1")]
    path = write(tmp_path, "bad.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", "label":\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl, line 2: expected a JSON object"):
        load_classification(path)
    path = write(tmp_path, "key.jsonl", '{"text": "a"}\n')
    with pytest.raises(ValueError, match=r"key\.jsonl, line 1: expected a label under key 'label'"):
        load_classification(path)


def test_one_file_per_label(tmp_path):
    pos = write(tmp_path, "p.pos", "a fine film \nsweet\u0085and sour\n\n")
    neg = write(tmp_path, "p.neg", "dull\n")
    assert load_classification_files({"pos": pos, "neg": neg}) == [
        Example("a fine film ", "pos"), Example("sweet\u0085and sour", "pos"), Example("dull", "neg")]


def test_unknown_format_suffix(tmp_path):
    with pytest.raises(ValueError, match="format="):
        load_classification(write(tmp_path, "data.xyz", "a\tb\n"))


def test_cli_hints_replace_the_api_advice_in_loader_errors(tmp_path):
    flags = {"format": "pass --format tsv, csv or jsonl", "quoting": "pass --quoting none"}
    with pytest.raises(ValueError) as e:
        load_classification(write(tmp_path, "data.xyz", "a\tb\n"))
    assert "pass format='tsv', 'csv' or 'jsonl'" in str(e.value)  # the library speaks Python
    cli = with_cli_hints(str(e.value), flags)
    assert cli == f"{tmp_path / 'data.xyz'}: cannot tell the format from the suffix '.xyz'; pass --format tsv, csv or jsonl"
    with pytest.raises(ValueError) as e:
        load_classification(write(tmp_path, "q.tsv", '"Great" movie\t1\n'), text_column=0, label_column=1)
    cli = with_cli_hints(str(e.value), flags)
    assert "pass --quoting none to read each line as-is" in cli and "quoting=" not in cli
    assert with_cli_hints("nothing to replace", flags) == "nothing to replace"


# ---------------------------------------------------------------- parallel
def test_parallel_ignores_extra_columns_and_keeps_quotes(tmp_path):
    path = write(tmp_path, "p.tsv", 'He said "Hi."\t他说"你好"。\tCC-BY #1\n\nGo.\t走。\tCC-BY #2\n')
    assert load_parallel(path) == [('He said "Hi."', '他说"你好"。'), ("Go.", "走。")]
    path = write(tmp_path, "bad.tsv", "Go.\t走。\nStop.\n")
    with pytest.raises(ValueError, match=r"bad\.tsv, line 2: expected at least 2 tab-separated columns"):
        load_parallel(path)


# ---------------------------------------------------------------- CoNLL
def test_conll_pitfalls(tmp_path):
    text = ("\ufeff-DOCSTART-\tO\n\n"
            "# sent_id = 1\n"
            "Anna\tNNP\tB-PER\n"
            "Dubbz\ufeff\tNNP\tI-PER\n"
            "went\tVBD\tO\n"
            "\t\n"                         # a tab-only line ends the sentence
            "to\tTO\tO\n"
            "New\u0085York\tNNP\tB-LOC\r\n"   # U+0085 inside a token, CRLF
            "  \n"
            "#\tNN\tO\n"                    # a '#' token is not a comment
            "x\tNN\tO\n")
    sents = load_conll(write(tmp_path, "n.conll", text))
    assert sents == [TaggedSentence(("Anna", "Dubbz\ufeff", "went"), ("B-PER", "I-PER", "O")),
                     TaggedSentence(("to", "New\u0085York"), ("O", "B-LOC")),
                     TaggedSentence(("#", "x"), ("O", "O"))]


def test_conll_columns_and_spaces(tmp_path):
    text = "1 Li B-PER x\n2 Ming I-PER x\n\n"
    sents = load_conll(write(tmp_path, "s.conll", text), token_column=1, tag_column=2)
    assert sents == [TaggedSentence(("Li", "Ming"), ("B-PER", "I-PER"))]


def test_iob1_is_converted_to_iob2(tmp_path):
    iob1 = ["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-LOC", "I-ORG", "O"]
    iob2 = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC", "B-ORG", "O"]
    assert iob1_to_iob2(iob1) == iob2
    assert iob1_to_iob2(iob2) == iob2
    text = "".join(f"w{i}\t{t}\n" for i, t in enumerate(iob1))
    path = write(tmp_path, "iob1.conll", text)
    assert load_conll(path)[0].tags == tuple(iob2)
    with pytest.raises(ValueError, match=r"iob1\.conll, line 1: expected IOB2"):
        load_conll(path, scheme="iob2")


@pytest.mark.parametrize("line, message", [("Anna\n", "expected a token and a tag"),
                                           ("Anna\tPER\n", "expected a tag O, B-TYPE or I-TYPE")])
def test_conll_malformed_line(tmp_path, line, message):
    path = write(tmp_path, "bad.conll", "ok\tO\n\n" + line)
    with pytest.raises(ValueError, match=rf"bad\.conll, line 3: {message}"):
        load_conll(path)


def test_to_char_level():
    s = TaggedSentence(("王芳", "在", "北京大学"), ("B-PER", "O", "B-ORG"))
    assert to_char_level(s) == TaggedSentence(tuple("王芳在北京大学"),
                                              ("B-PER", "I-PER", "O", "B-ORG", "I-ORG", "I-ORG", "I-ORG"))


# ---------------------------------------------------------------- split
def test_split_deduplicates_before_splitting():
    items = [f"s{i % 50}" for i in range(500)]           # each item ten times
    train, val, test = split_dataset(items, seed=0)
    assert (len(train), len(val), len(test)) == (40, 5, 5)
    assert not (set(train) & set(val) or set(train) & set(test) or set(val) & set(test))
    assert set(train) | set(val) | set(test) == set(items)


def test_split_is_deterministic_and_seeded():
    items = [Example(f"text {i}", str(i % 2)) for i in range(100)]
    assert split_dataset(items, seed=1) == split_dataset(list(items), seed=1)
    assert split_dataset(items, seed=1) != split_dataset(items, seed=2)


def test_split_keeps_groups_together():
    pairs = [(f"en{i // 3}", f"zh{i}") for i in range(90)]   # three translations per sentence
    parts = split_dataset(pairs, (0.5, 0.5), seed=0, group=lambda p: p[0])
    sources = [{en for en, _ in part} for part in parts]
    assert not sources[0] & sources[1]
    assert sum(map(len, parts)) == 90


@pytest.mark.parametrize("fractions", [(0.8, 0.1), (0.5, -0.5, 1.0), ()])
def test_split_rejects_bad_fractions(fractions):
    with pytest.raises(ValueError, match="fractions"):
        split_dataset(["a", "b"], fractions)


def test_split_rejects_unhashable_and_empty():
    with pytest.raises(ValueError, match="hashable"):
        split_dataset([["a"]])
    with pytest.raises(ValueError, match="at least one item"):
        split_dataset([])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=120), st.integers(0, 10))
def test_split_partitions_the_distinct_items(items, seed):
    if not items:
        return
    parts = split_dataset(items, seed=seed)
    flat = [x for part in parts for x in part]
    assert sorted(flat) == sorted(set(items))                 # disjoint, complete, no duplicates
    n = len(set(items))
    assert abs(len(parts[1]) - 0.1 * n) <= 1 and abs(len(parts[2]) - 0.1 * n) <= 1


# ---------------------------------------------------------------- labels
def test_label_vocab_names_missing_label_and_file():
    vocab = LabelVocab(["pos", "neg", "pos"])
    assert vocab.labels == ("neg", "pos") and vocab.encode("pos") == 1 and vocab.decode(0) == "neg"
    vocab.check(["neg", "pos"], "val.tsv")
    with pytest.raises(ValueError, match=r"test\.tsv: label 'neutral' does not occur in the training set"):
        vocab.check(["pos", "neutral"], "test.tsv")
    with pytest.raises(ValueError, match="'neutral'"):
        vocab.encode("neutral")


def test_label_vocab_from_tags():
    train = [TaggedSentence(("a", "b"), ("B-PER", "O")), TaggedSentence(("c",), ("B-LOC",))]
    vocab = LabelVocab.from_tags(train)
    assert vocab.labels == ("O", "B-LOC", "B-PER", "I-LOC", "I-PER")
    with pytest.raises(ValueError, match=r"dev\.conll: label 'B-ORG'"):
        vocab.check([t for t in ("O", "B-ORG")], "dev.conll")


# ---------------------------------------------------------------- CLI
def test_cli_stats_and_errors(tmp_path, capsys):
    path = write(tmp_path, "c.tsv", "text\tlabel\ngood\tpos\nbad\tneg\nfine\tpos\n")
    assert run_cli(cli_main, ["stats", str(path), "--format", "classify"]) == 0
    out = capsys.readouterr().out
    assert "examples" in out and "label pos" in out and " 2" in out
    bad = write(tmp_path, "bad.conll", "ok\tO\nbroken\n")
    assert run_cli(cli_main, ["stats", str(bad), "--format", "conll"], prog="data") == 2
    err = capsys.readouterr().err
    assert err.startswith("data: error: ") and "bad.conll, line 2" in err and "Traceback" not in err
    assert run_cli(cli_main, ["generate", "--out", str(path / "sub")], prog="data") == 2   # path is a file
    assert "cannot write there" in capsys.readouterr().err
