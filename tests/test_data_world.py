"""The bundled toy world: regenerating it gives the committed bytes, and its data have the
properties the chapters rely on. The checks read the committed files with rules written here,
independently of the generator (the sentiment rules are the ones data/README.md states)."""
from __future__ import annotations

import random
import re
from collections import Counter

import pytest

from minitransformer.data import DATA_DIR, build_world, generate_world, load_conll, load_parallel
from minitransformer.data.world_lexicon import ENTITIES

SPLITS = ("train", "val", "test")
LANGS = ("en", "zh")

# Sentiment words, listed here by hand (not imported from the generator).
POS_EN = set("good tasty fresh fast friendly helpful low fair clean quiet comfortable delicious hot beautiful "
             "exciting soft cheap".split())
NEG_EN = set("bad awful cold slow rude lazy high dirty noisy small bitter loud boring hard expensive ugly".split())
POS_ZH = set("好 好吃 新鲜 快 友好 热心 低 公道 干净 安静 舒服 好喝 热 好听 好看 精彩 软 便宜 漂亮".split())
NEG_ZH = set("差 难吃 凉 慢 粗鲁 懒 高 脏 吵 小 苦 难听 无聊 难看 硬 贵".split())
ASPECTS_ZH = sorted("饭菜 服务员 服务 价格 房间 咖啡 音乐 电影 座位 票 衣服 工作人员".split(), key=len, reverse=True)
CLOSERS = {"I will come back.": "pos", "I liked it.": "pos", "I recommend it.": "pos",
           "I will not come back.": "neg", "I did not like it.": "neg", "I do not recommend it.": "neg",
           "我还会再来。": "pos", "我很喜欢。": "pos", "我推荐这里。": "pos",
           "我不会再来了。": "neg", "我不喜欢。": "neg", "我不推荐这里。": "neg"}


def read_tsv(path):
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "", f"{path} must end with a newline"
    return [tuple(line.split("\t")) for line in lines[1:-1]]


def clause_en(clause: str) -> str:
    """'the food was not good' -> 'neg': the adjective's sentiment, flipped by 'not'."""
    words = clause.strip().split()
    assert words[-1] in POS_EN | NEG_EN, clause
    positive = (words[-1] in POS_EN) != ("not" in words)
    return "pos" if positive else "neg"


def clause_zh(clause: str) -> str:
    """'饭菜不好' -> 'neg'."""
    aspect = next(a for a in ASPECTS_ZH if clause.startswith(a))
    rest = clause[len(aspect):]
    adverb = next(a for a in ("非常", "不", "很", "真") if rest.startswith(a))
    adjective = rest[len(adverb):]
    assert adjective in POS_ZH | NEG_ZH, clause
    return "pos" if (adjective in POS_ZH) != (adverb == "不") else "neg"


def judge_en(sentence: str) -> str:
    """Label of a judgement sentence: the clause after 'but' (or the main clause after 'although') decides."""
    s = sentence.rstrip(".")
    if s.startswith("Although "):
        first, second = s[len("Although "):].split(", ")
        assert clause_en(first) != clause_en(second), sentence
        return clause_en(second)
    if ", but " in s:
        first, second = s.split(", but ")
        assert clause_en(first) != clause_en(second), sentence
        return clause_en(second)
    if " and the " in s:
        first, second = s.split(" and the ")
        assert clause_en(first) == clause_en(second), sentence
    return clause_en(s.split(" and the ")[-1])


def judge_zh(sentence: str) -> str:
    s = sentence.rstrip("。")
    if s.startswith("虽然"):
        first, second = s[2:].split("，但是")
    elif "，但是" in s:
        first, second = s.split("，但是")
    elif "，而且" in s:
        first, second = s.split("，而且")
        assert clause_zh(first) == clause_zh(second), sentence
        return clause_zh(second)
    else:
        return clause_zh(s)
    assert clause_zh(first) != clause_zh(second), sentence
    return clause_zh(second)


def review_label(text: str, lang: str) -> str:
    sentences = re.findall(r"[^.]+\.", text) if lang == "en" else re.findall(r"[^。]+。", text)
    sentences = [s.strip() for s in sentences]
    closers = [CLOSERS[s] for s in sentences if s in CLOSERS]
    opener = r"^(I|We) .* at " if lang == "en" else r"^我们?在"
    judgements = [s for s in sentences if s not in CLOSERS and not re.match(opener, s)]
    assert len(judgements) == 1, text
    label = judge_en(judgements[0]) if lang == "en" else judge_zh(judgements[0])
    assert all(c == label for c in closers), f"closer disagrees with the judgement: {text}"
    return label


# ---------------------------------------------------------------- determinism
def test_regenerating_gives_the_committed_bytes(tmp_path):
    sizes = generate_world(tmp_path, seed=0)
    committed = {p.name for p in DATA_DIR.iterdir() if p.name != "README.md"}
    assert set(sizes) == committed
    for name in sizes:
        assert (tmp_path / name).read_bytes() == (DATA_DIR / name).read_bytes(), f"{name} differs from data/{name}"


def test_seed_decides_the_world():
    small = {"stories": 30, "unlabelled_reviews": 10, "reviews": 40, "ner": 40, "translation": 40, "notes": 0, "short_reviews": 0}
    a, b, c = build_world(3, small), build_world(3, small), build_world(4, small)
    text = lambda w: [r.text("en") for r in w.reviews["train"]]
    assert text(a) == text(b)
    assert text(a) != text(c)


# ---------------------------------------------------------------- reviews
@pytest.mark.parametrize("lang", LANGS)
def test_review_labels_follow_negation_and_contrast(lang):
    rows = [row for split in SPLITS for row in read_tsv(DATA_DIR / f"reviews_{lang}.{split}.tsv")]
    assert 2000 <= len(rows) <= 4000
    for text, label in rows:
        assert label in ("pos", "neg")
        assert review_label(text, lang) == label, text
    labels = Counter(label for _, label in rows)
    assert abs(labels["pos"] - labels["neg"]) < 0.1 * len(rows)


def test_reviews_defeat_a_bag_of_words():
    """Negation and contrast are frequent, and the same sentiment words occur under both labels."""
    rows = [row for split in SPLITS for row in read_tsv(DATA_DIR / f"reviews_en.{split}.tsv")]
    n = len(rows)
    assert sum(" not " in t for t, _ in rows) > 0.25 * n
    assert sum(", but " in t or t.startswith("Although") or ". Although" in t for t, _ in rows) > 0.3 * n
    for word in ("good", "rude", "expensive"):
        labels = Counter(label for text, label in rows if re.search(rf"\b{word}\b", text))
        assert min(labels["pos"], labels["neg"]) > 0.15 * sum(labels.values()), word


def test_review_languages_are_aligned():
    for split in SPLITS:
        en, zh = (read_tsv(DATA_DIR / f"reviews_{lang}.{split}.tsv") for lang in LANGS)
        assert [label for _, label in en] == [label for _, label in zh]


# ---------------------------------------------------------------- stories
def _documents(lang):
    text = (DATA_DIR / f"world_{lang}.txt").read_text(encoding="utf-8")
    return [doc.split("\n") for doc in text.rstrip("\n").split("\n\n")]


def _is_story(doc):
    """Stories open with an introduction; the other documents are unlabelled reviews."""
    return re.search(r" (lives in|works at|is an?) ", doc[0]) is not None


JUDGEMENT = re.compile(r"^(The \w+ (was|were) |Although )")


def test_stories_teach_sentiment_without_labels():
    """In each story the feeling that follows the judgement agrees with it, so a model can learn
    what 'not good' means from unlabelled text alone."""
    feelings = {"pos": re.compile(r"(was|were) (very |really )?(happy|pleased|glad)\.$"),
                "neg": re.compile(r"(was|were) (not (happy|pleased|glad)|(very )?(sad|angry|disappointed))\.$")}
    checked = 0
    closers = 0
    for doc in _documents("en"):
        for i, sentence in enumerate(doc[:-1]):
            if JUDGEMENT.match(sentence) and _is_story(doc):
                assert feelings[judge_en(sentence)].search(doc[i + 1]), (sentence, doc[i + 1])
                checked += 1
            elif JUDGEMENT.match(sentence):   # an unlabelled review: its closer agrees
                assert CLOSERS[doc[i + 1]] == judge_en(sentence), (sentence, doc[i + 1])
                closers += 1
    assert checked >= 2500 and closers >= 1000


def test_next_sentence_shares_entities_more_than_a_random_one():
    """For NSP: a story's next sentence names a person, place or organisation already named in the
    story far more often than a sentence drawn from another story does."""
    names = sorted({e.en for e in ENTITIES}, key=len, reverse=True)
    pattern = re.compile(r"\b(" + "|".join(names) + r")\b")

    def mentions(sentence):
        return set(pattern.findall(sentence))

    docs = [d for d in _documents("en") if _is_story(d)]
    rng = random.Random(0)
    real = other = 0
    for k, doc in enumerate(docs):
        j = rng.randrange(1, len(doc))
        before = set().union(*(mentions(s) for s in doc[:j]))
        real += bool(before & mentions(doc[j]))
        other += bool(before & mentions(rng.choice(docs[(k + rng.randrange(1, len(docs))) % len(docs)])))
    assert real / len(docs) > 0.55
    assert other / len(docs) < 0.2


# ---------------------------------------------------------------- NER
def _valid_iob2(tags):
    return all(not t.startswith("I-") or (i > 0 and tags[i - 1] != "O" and tags[i - 1][2:] == t[2:])
               for i, t in enumerate(tags))


def _spans(tokens, tags, sep):
    spans, i = [], 0
    while i < len(tags):
        if tags[i].startswith("B-"):
            j = i + 1
            while j < len(tags) and tags[j] == "I-" + tags[i][2:]:
                j += 1
            spans.append((tags[i][2:], sep.join(tokens[i:j])))
            i = j
        else:
            i += 1
    return spans


def test_ner_tags_are_iob2_over_known_entities():
    known = {(e.kind, e.en) for e in ENTITIES} | {(e.kind, e.zh) for e in ENTITIES}
    for split in SPLITS:
        en, zh = (load_conll(DATA_DIR / f"ner_{lang}.{split}.conll", scheme="iob2") for lang in LANGS)
        assert len(en) == len(zh)
        for s_en, s_zh in zip(en, zh):
            for s, sep in ((s_en, " "), (s_zh, "")):
                assert set(s.tags) <= {"O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"}
                assert _valid_iob2(s.tags)
                assert set(_spans(s.tokens, s.tags, sep)) <= known
            assert all(len(ch) == 1 for ch in s_zh.tokens)
            assert sorted(k for k, _ in _spans(s_en.tokens, s_en.tags, " ")) == \
                sorted(k for k, _ in _spans(s_zh.tokens, s_zh.tags, ""))
    train = load_conll(DATA_DIR / "ner_en.train.conll")
    kinds = Counter(k for s in train for k, _ in _spans(s.tokens, s.tags, " "))
    assert min(kinds["PER"], kinds["LOC"], kinds["ORG"]) > 500


# ---------------------------------------------------------------- translation
def test_translation_pairs_are_complete_and_consistent():
    pairs = {split: load_parallel(DATA_DIR / f"translation.{split}.tsv", source_column="en", target_column="zh")
             for split in SPLITS}
    assert 3000 <= sum(map(len, pairs.values())) <= 5000
    en_to_zh, zh_to_en = {}, {}
    for split, rows in pairs.items():
        for en, zh in rows:
            assert en and zh
            assert re.fullmatch(r"[A-Za-z ,.]+", en), en
            assert re.fullmatch(r"[\u4e00-\u9fff，。]+", zh), zh
            assert en_to_zh.setdefault(en, zh) == zh and zh_to_en.setdefault(zh, en) == en, (en, zh)
    assert len(en_to_zh) == sum(map(len, pairs.values()))   # no sentence in two splits


# ---------------------------------------------------------------- held-out data, vocabulary
def test_heldout_items_never_occur_in_the_unlabelled_text():
    seen = set()
    for lang, joiner in (("en", " "), ("zh", "")):
        for doc in _documents(lang):
            seen.update(doc)
            seen.add(joiner.join(doc))
    for split in ("val", "test"):
        for lang in LANGS:
            assert not {t for t, _ in read_tsv(DATA_DIR / f"reviews_{lang}.{split}.tsv")} & seen
            sep = " " if lang == "en" else ""
            ner = load_conll(DATA_DIR / f"ner_{lang}.{split}.conll")
            # English tokens split off punctuation; compare on the text with spaces removed
            strip = lambda s: s.replace(" ", "")
            assert not {strip(sep.join(s.tokens)) for s in ner} & {strip(x) for x in seen}
        assert not {x for pair in read_tsv(DATA_DIR / f"translation.{split}.tsv") for x in pair} & seen


def test_vocabulary_is_small():
    text = "".join(p.read_text(encoding="utf-8") for p in DATA_DIR.iterdir() if p.name != "README.md")
    assert len(set(re.findall(r"[A-Za-z]+", text))) <= 400
    assert len(set(re.findall(r"[\u4e00-\u9fff]", text))) <= 1000
    assert sum(p.stat().st_size for p in DATA_DIR.iterdir()) < 5_500_000


def test_notes_join_two_adjectives_of_one_sentiment_and_name_the_feeling():
    """A note's adjectives share one sentiment, its feelings agree (checked against the lexicon's
    lists of words, not the generator's flags), and Chinese joins them with 又…又…."""
    import random as _random

    from minitransformer.data.world_lexicon import BAD_FEELINGS, GOOD_FEELINGS, OPINION_WORDS
    from minitransformer.data.world_opinions import sample_note

    good_words = {a.en for words in OPINION_WORDS.values() for a in words if a.positive} | {"good", "tasty", "fresh", "fast", "friendly",
                                                                      "helpful", "low", "fair", "clean", "quiet",
                                                                      "comfortable", "delicious", "hot", "beautiful",
                                                                      "exciting", "soft", "cheap"}
    rng = _random.Random(3)
    for _ in range(200):
        note = sample_note(rng)
        assert len(note.sentences()) == 2
        sentiments = set()
        for part, sentence in zip(note.parts, note.sentences()):
            a1, a2 = part.adjectives
            assert a1 != a2
            good = {a1.en in good_words, a2.en in good_words}
            assert len(good) == 1, (a1, a2)
            sentiments |= good
            assert part.feeling in (GOOD_FEELINGS if good == {True} else BAD_FEELINGS)
            en, zh = sentence.text("en"), sentence.text("zh")
            assert f"{a1.en} and {a2.en}, so" in en and en.endswith(f"{part.feeling[0]}.")
            assert f"又{a1.zh}又{a2.zh}，" in zh and zh.endswith(f"{part.feeling[1]}。")
        assert len(sentiments) == 1  # one visit, one sentiment


def test_notes_and_short_reviews_leave_the_other_files_as_they_were():
    """Notes and short reviews draw from generators of their own: with none of them, every other
    file is byte for byte the same; the notes go to notes_*.txt, never into world_*.txt."""
    from minitransformer.data.world_files import build_world, world_files

    small = {"stories": 60, "unlabelled_reviews": 40, "reviews": 200, "ner": 200, "translation": 200}
    plain = world_files(build_world(0, {**small, "notes": 0, "short_reviews": 0}))
    full = world_files(build_world(0, {**small, "notes": 50, "short_reviews": 100}))
    assert set(full) - set(plain) == {f"{kind}_{lang}{ext}" for lang in LANGS for kind, ext in
                                      [("notes", ".txt")] + [("short_reviews", f".{s}.tsv") for s in SPLITS]}
    assert {k: full[k] for k in plain} == plain
    assert ", so I was" in full["notes_en.txt"] and ", so I was" not in full["world_en.txt"]


@pytest.mark.parametrize("lang", LANGS)
def test_short_review_labels_are_the_adjectives_sentiment(lang):
    """Every short review's label is the sentiment its one adjective has in the lexicon's lists."""
    from minitransformer.data.world_lexicon import OPINION_WORDS, VENUES

    words = {getattr(a, lang): a.positive for v in VENUES for asp in v.type.aspects for a in asp.adjectives}
    words.update({getattr(a, lang): a.positive for group in OPINION_WORDS.values() for a in group})
    rows = [row for split in SPLITS for row in read_tsv(DATA_DIR / f"short_reviews_{lang}.{split}.tsv")]
    assert len(rows) == 3000
    for text, label in rows:
        last = text.rstrip(".。")
        last = last[last.rfind(". ") + 2:] if lang == "en" else last[last.rfind("。") + 1:]
        adjective = last.split()[-1] if lang == "en" else max((w for w in words if last.endswith(w)), key=len)
        assert ("pos" if words[adjective] else "neg") == label, text
    assert abs(sum(label == "pos" for _, label in rows) / len(rows) - 0.5) < 0.03


def test_few_labelled_short_reviews_miss_most_test_adjectives_which_the_notes_all_contain():
    """The mechanism of data/README.md "What pretraining can learn": 32 random labelled short
    reviews contain under a quarter of the adjectives the test reviews use, 128 under two thirds,
    while every test adjective occurs in the unlabelled notes, joined to another of its sentiment."""
    import random as _random

    train = read_tsv(DATA_DIR / "short_reviews_en.train.tsv")
    test = read_tsv(DATA_DIR / "short_reviews_en.test.tsv")
    adjective = lambda text: text.rstrip(".").split()[-1]  # noqa: E731
    test_words = {adjective(t) for t, _ in test}
    assert len(test_words) > 120
    for n, bound in ((32, 0.25), (128, 0.67)):
        for k in range(5):
            seen = {adjective(t) for t, _ in _random.Random(k).sample(train, n)}
            assert len(seen & test_words) / len(test_words) < bound, (n, k)
    notes = (DATA_DIR / "notes_en.txt").read_text(encoding="utf-8")
    coordinated = set(re.findall(r"(\w+) and (\w+), so", notes))
    in_notes = {w for pair in coordinated for w in pair}
    assert test_words <= in_notes
