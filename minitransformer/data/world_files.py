"""Generate the toy world's datasets, write them to ``data/``, and read them back.

``python -m minitransformer.data generate --out data/ --seed 0`` writes (see data/README.md):

    world_en.txt, world_zh.txt                    unlabelled documents (pretraining), one sentence per line
    notes_en.txt, notes_zh.txt                    unlabelled notes (pretraining), the same format
    reviews_{en,zh}.{train,val,test}.tsv          text<TAB>label (pos/neg), with a header
    short_reviews_{en,zh}.{train,val,test}.tsv    the same, one plain judgement each
    ner_{en,zh}.{train,val,test}.conll            token<TAB>tag, IOB2 over PER/LOC/ORG
    translation.{train,val,test}.tsv              en<TAB>zh, with a header

The labelled sets are split 80/10/10, the two languages of one meaning always in the same part,
and no validation or test item occurs verbatim (as a sentence or a document) in the unlabelled text.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from .conll import TaggedSentence, load_conll
from .loaders import Example, load_classification, load_documents, load_parallel
from .world import Review, Sentence, sample_review, sample_story
from .world_opinions import Note, ShortReview, sample_note, sample_short_review

DATA_DIR = Path(__file__).resolve().parents[2] / "data"
LANGS = ("en", "zh")
SPLITS = ("train", "val", "test")
SIZES = {"stories": 1800, "unlabelled_reviews": 1500, "notes": 8000, "reviews": 3000, "short_reviews": 3000, "ner": 3000, "translation": 4000}


@dataclass
class World:
    """The generated datasets, before they are written to files."""

    documents: list[list[Sentence] | Review] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    reviews: dict[str, list[Review]] = field(default_factory=dict)        # split -> reviews
    short_reviews: dict[str, list[ShortReview]] = field(default_factory=dict)
    ner: dict[str, list[Sentence]] = field(default_factory=dict)          # split -> sentences
    translation: dict[str, list[Sentence]] = field(default_factory=dict)  # split -> sentences


def _doc_sentences(doc: list[Sentence] | Review | Note) -> list[Sentence]:
    return doc.sentences() if isinstance(doc, (Review, Note)) else doc


def _unique(draw: Callable[[], Iterable], key: Callable, n: int) -> list:
    """The first ``n`` items with distinct ``key`` among those ``draw()`` yields, call after call."""
    out, seen = [], set()
    for _ in range(100 * n):
        if len(out) >= n:
            break
        for item in draw():
            if key(item) not in seen and len(out) < n:
                seen.add(key(item))
                out.append(item)
    if len(out) < n:
        raise RuntimeError(f"the world has fewer than {n} distinct items of this kind; found {len(out)}")
    return out


def _split(items: list, texts: Callable[[object], Iterable[str]], seen: set[str], rng: random.Random) -> dict[str, list]:
    """80/10/10, with validation and test drawn only from items whose texts the unlabelled corpus lacks."""
    unseen = [i for i, item in enumerate(items) if not any(t in seen for t in texts(item))]
    n_held = len(items) // 10
    if len(unseen) < 2 * n_held:
        raise RuntimeError(f"only {len(unseen)} of {len(items)} items are absent from the unlabelled text; "
                           f"{2 * n_held} are needed for validation and test")
    rng.shuffle(unseen)
    val, test = set(unseen[:n_held]), set(unseen[n_held:2 * n_held])
    return {"train": [x for i, x in enumerate(items) if i not in val and i not in test],
            "val": [x for i, x in enumerate(items) if i in val],
            "test": [x for i, x in enumerate(items) if i in test]}


def build_world(seed: int = 0, sizes: dict[str, int] | None = None) -> World:
    """Generate every dataset from ``seed``; each dataset draws from its own ``random.Random``."""
    sizes = {**SIZES, **(sizes or {})}
    rngs = [random.Random(seed * 16 + k) for k in range(5)]
    world = World()
    stories = [sample_story(rngs[0]).sentences() for _ in range(sizes["stories"])]
    unlabelled = [sample_review(rngs[0], p_closer=1.0) for _ in range(sizes["unlabelled_reviews"])]
    world.documents = stories + unlabelled
    rngs[0].shuffle(world.documents)
    seen = _texts(world.documents)

    reviews = _unique(lambda: [sample_review(rngs[1])], lambda r: r.text("en"), sizes["reviews"])
    world.reviews = _split(reviews, lambda r: [r.text(lang) for lang in LANGS], seen, rngs[4])

    def ner_draw() -> list[Sentence]:   # story sentences with an entity, and a few without
        return [s for s in sample_story(rngs[2]).sentences()
                if any(tag != "O" for _, tag in s.tagged("en")) or rngs[2].random() < 0.1]
    ner = _unique(ner_draw, lambda s: s.text("en"), sizes["ner"])
    world.ner = _split(ner, lambda s: [s.text(lang) for lang in LANGS], seen, rngs[4])

    def translation_draw() -> list[Sentence]:  # sentences of a story, and of a review one time in three
        sentences = sample_story(rngs[3]).sentences()
        return sentences + (sample_review(rngs[3]).sentences() if rngs[3].random() < 1 / 3 else [])
    pairs = _unique(translation_draw, lambda s: s.text("en"), sizes["translation"])
    world.translation = _split(pairs, lambda s: [s.text(lang) for lang in LANGS], seen, rngs[4])

    # notes and short reviews draw from generators of their own: the files above stay as they were
    note_rng, short_rng = random.Random(seed * 16 + 5), random.Random(seed * 16 + 6)
    world.notes = [sample_note(note_rng) for _ in range(sizes["notes"])]
    short = _unique(lambda: [sample_short_review(short_rng)], lambda r: r.text("en"), sizes["short_reviews"])
    world.short_reviews = _split(short, lambda r: [r.text(lang) for lang in LANGS], seen | _texts(world.notes), short_rng)
    return world


def _texts(documents: list) -> set[str]:
    """Every sentence and every whole document of ``documents``, in both languages."""
    seen = set()
    for doc in documents:
        for lang in LANGS:
            sentences = [s.text(lang) for s in _doc_sentences(doc)]
            seen.update(sentences)
            seen.add((" " if lang == "en" else "").join(sentences))
    return seen


# ---------------------------------------------------------------- file contents
def documents_text(documents: list, lang: str) -> str:
    """One sentence per line, a blank line between documents."""
    return "\n\n".join("\n".join(s.text(lang) for s in _doc_sentences(doc)) for doc in documents) + "\n"


def reviews_tsv(reviews: list[Review] | list[ShortReview], lang: str) -> str:
    return "text\tlabel\n" + "".join(f"{r.text(lang)}\t{r.label}\n" for r in reviews)


def conll_text(sentences: list[Sentence], lang: str) -> str:
    return "\n".join("".join(f"{tok}\t{tag}\n" for tok, tag in s.tagged(lang)) for s in sentences)


def translation_tsv(sentences: list[Sentence]) -> str:
    return "en\tzh\n" + "".join(f"{s.text('en')}\t{s.text('zh')}\n" for s in sentences)


def world_files(world: World) -> dict[str, str]:
    """File name -> contents, for every file ``generate_world`` writes."""
    files = {f"world_{lang}.txt": documents_text(world.documents, lang) for lang in LANGS}
    files.update({f"notes_{lang}.txt": documents_text(world.notes, lang) for lang in LANGS if world.notes})
    files.update({f"reviews_{lang}.{split}.tsv": reviews_tsv(world.reviews[split], lang)
                  for lang in LANGS for split in SPLITS})
    files.update({f"short_reviews_{lang}.{split}.tsv": reviews_tsv(world.short_reviews[split], lang)
                  for lang in LANGS for split in SPLITS if any(world.short_reviews.values())})
    files.update({f"ner_{lang}.{split}.conll": conll_text(world.ner[split], lang) for lang in LANGS for split in SPLITS})
    files.update({f"translation.{split}.tsv": translation_tsv(world.translation[split]) for split in SPLITS})
    return files


def generate_world(out_dir: str | Path, seed: int = 0) -> dict[str, int]:
    """Write every file of the world into ``out_dir``; returns file name -> size in bytes."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for name, text in world_files(build_world(seed)).items():
        data = text.encode("utf-8")
        (out / name).write_bytes(data)
        sizes[name] = len(data)
    return sizes


# ---------------------------------------------------------------- reading the bundled files
def world_path(name: str, data_dir: str | Path | None = None) -> Path:
    """Path of a bundled world file; a clear error if it is missing."""
    path = Path(data_dir) if data_dir is not None else DATA_DIR
    path = path / name
    if not path.is_file():
        raise ValueError(f"{path}: no such world file; regenerate with `python -m minitransformer.data generate --out data/`")
    return path


def _check(value: str, allowed: tuple[str, ...], name: str) -> str:
    if value not in allowed:
        raise ValueError(f"{name}: expected one of {allowed}, received {value!r}")
    return value


def load_world_documents(lang: str, data_dir: str | Path | None = None) -> list[list[str]]:
    """The unlabelled documents, each a list of sentences (for MLM + NSP, or joined for a causal LM)."""
    docs = load_documents(world_path(f"world_{_check(lang, LANGS, 'lang')}.txt", data_dir))
    return [doc.split("\n") for doc in docs]


def load_world_notes(lang: str, data_dir: str | Path | None = None) -> list[list[str]]:
    """The unlabelled notes ("The food was superb and tasty, so I was happy."), as documents."""
    docs = load_documents(world_path(f"notes_{_check(lang, LANGS, 'lang')}.txt", data_dir))
    return [doc.split("\n") for doc in docs]


def load_world_reviews(lang: str, split: str, data_dir: str | Path | None = None) -> list[Example]:
    name = f"reviews_{_check(lang, LANGS, 'lang')}.{_check(split, SPLITS, 'split')}.tsv"
    return load_classification(world_path(name, data_dir))


def load_world_short_reviews(lang: str, split: str, data_dir: str | Path | None = None) -> list[Example]:
    """The labelled short reviews: one plain judgement each, labelled with its adjective's sentiment."""
    name = f"short_reviews_{_check(lang, LANGS, 'lang')}.{_check(split, SPLITS, 'split')}.tsv"
    return load_classification(world_path(name, data_dir))


def load_world_ner(lang: str, split: str, data_dir: str | Path | None = None) -> list[TaggedSentence]:
    name = f"ner_{_check(lang, LANGS, 'lang')}.{_check(split, SPLITS, 'split')}.conll"
    return load_conll(world_path(name, data_dir), scheme="iob2")


def load_world_translation(split: str, data_dir: str | Path | None = None) -> list[tuple[str, str]]:
    name = f"translation.{_check(split, SPLITS, 'split')}.tsv"
    return load_parallel(world_path(name, data_dir), source_column="en", target_column="zh")
