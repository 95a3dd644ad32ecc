"""Notes and short reviews: where the toy world makes pretraining useful for few labels.

Both use the many words of opinion in ``world_lexicon.OPINION_WORDS`` (some 150, besides the
aspects' own 37), which the stories and the reviews of ``world.py`` never use:

* a **note** (unlabelled, ``notes_{en,zh}.txt``) joins two adjectives of one sentiment with "and"
  and names the feeling they caused, so a model pretrained on the notes can learn which words
  are good and which bad;
* a **short review** (labelled, ``short_reviews_{en,zh}.*.tsv``) is one plain judgement with one
  adjective drawn from all of them: its label is that adjective's sentiment. 32 or 128 labelled
  short reviews contain only some of the adjectives, so a classifier trained from scratch cannot
  know the others; a pretrained one can.

Article §3.3.2 (few labels after pretraining); data/README.md, "What pretraining can learn".
"""
from __future__ import annotations

import functools
import random
from dataclasses import dataclass

from .world import Sentence
from .world_lexicon import (
    BAD_FEELINGS, DEGREES, GOOD_FEELINGS, OPINION_WORDS, VENUES, Adjective, Aspect, Venue, VenueType,
)


@functools.cache  # the lexicon is fixed: computed once per (aspect, sentiment), not once per sampled review
def opinion_words(aspect: Aspect, positive: bool) -> tuple[Adjective, ...]:
    """Every adjective that can judge ``aspect`` with the given sentiment: its own, then the opinion
    words that fit any aspect, then those of its kind (food, people, place, ...)."""
    words = aspect.adjectives + OPINION_WORDS["any"] + OPINION_WORDS[aspect.kind]
    return tuple(a for a in dict.fromkeys(words) if a.positive == positive)


# ---------------------------------------------------------------- notes (unlabelled)
@dataclass(frozen=True)
class Opinionated:
    """'the food was superb and tasty, so I was happy' / '饭菜又一流又好吃，我很高兴': two adjectives
    of one sentiment joined by 'and' (又…又…), and the feeling they caused."""

    aspect: Aspect
    adjectives: tuple[Adjective, Adjective]
    we: bool
    feeling: tuple[str, str]

    def pieces(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        (a1, a2), asp = self.adjectives, self.aspect
        who_en, be_en, who_zh = ("we", "were", "我们") if self.we else ("I", "was", "我")
        return (("the", asp.en, asp.be, a1.en, "and", a2.en, ",", "so", who_en, be_en, self.feeling[0], "."),
                (asp.zh, "又", a1.zh, "又", a2.zh, "，", who_zh, "很", self.feeling[1], "。"))


@dataclass(frozen=True)
class Note:
    """A short unlabelled note about one venue: two sentences, each an ``Opinionated`` clause.

    'At Sun Restaurant, the food was fresh and tasty, so I was happy. The prices were high and unfair, so I was angry.'
    '太阳餐厅的饭菜又新鲜又好吃，我很高兴。价格又高又黑心，我很生气。'
    Adjectives joined by 'and' share their sentiment (Hatzivassiloglou & McKeown 1997), and the
    feeling names it."""

    venue: Venue
    named: bool
    parts: tuple[Opinionated, Opinionated]

    def sentences(self) -> list[Sentence]:
        out = []
        for k, part in enumerate(self.parts):
            en, zh = part.pieces()
            if k == 0 and self.named:
                en, zh = ("at", self.venue, ",", *en), (self.venue, "的", *zh)
            out.append(Sentence(en, zh))
        return out


def sample_opinionated(rng: random.Random, venue_type: VenueType, positive: bool) -> Opinionated:
    """An aspect of the venue type, two distinct adjectives of the given sentiment, and its feeling."""
    aspect = rng.choice(venue_type.aspects)
    pair = tuple(rng.sample(opinion_words(aspect, positive), 2))
    return Opinionated(aspect, pair, rng.random() < 0.5, rng.choice(GOOD_FEELINGS if positive else BAD_FEELINGS))


def sample_note(rng: random.Random) -> Note:
    """A note: a venue, named half of the time, and two opinionated sentences about it, of one
    sentiment drawn 50/50 (a visit that was good or bad)."""
    venue = rng.choice(VENUES)
    named = rng.random() < 0.5
    positive = rng.random() < 0.5
    return Note(venue, named, (sample_opinionated(rng, venue.type, positive), sample_opinionated(rng, venue.type, positive)))


# ---------------------------------------------------------------- short reviews (labelled)
@dataclass(frozen=True)
class ShortReview:
    """'We had lunch at Golden Dragon. The food was really superb.' / '我们在金龙饭店吃了午饭。饭菜真一流。'
    One clause, never negated; the label is the adjective's sentiment."""

    venue: Venue
    opener: bool
    we: bool
    activity: tuple[str, str]
    aspect: Aspect
    adjective: Adjective
    degree: int   # index into DEGREES

    @property
    def label(self) -> str:
        return "pos" if self.adjective.positive else "neg"

    def sentences(self) -> list[Sentence]:
        out = []
        if self.opener:
            who_en, who_zh = ("we", "我们") if self.we else ("I", "我")
            out.append(Sentence((who_en, self.activity[0], "at", self.venue, "."),
                                (who_zh, "在", self.venue, self.activity[1], "。")))
        deg_en, deg_zh = DEGREES[self.degree]
        en = " ".join(w for w in ("the", self.aspect.en, self.aspect.be, deg_en, self.adjective.en) if w)
        out.append(Sentence((en, "."), (self.aspect.zh + deg_zh + self.adjective.zh, "。")))
        return out

    def text(self, lang: str) -> str:
        return (" " if lang == "en" else "").join(s.text(lang) for s in self.sentences())


@functools.cache
def judged_by(adjective: Adjective) -> tuple[tuple[Venue, Aspect], ...]:
    """Every (venue, aspect) that ``adjective`` can judge."""
    return tuple((v, asp) for v in VENUES for asp in v.type.aspects if adjective in opinion_words(asp, adjective.positive))


ALL_OPINION_WORDS: tuple[Adjective, ...] = tuple(dict.fromkeys(
    a for v in VENUES for asp in v.type.aspects for pos in (True, False) for a in opinion_words(asp, pos)))


def sample_short_review(rng: random.Random) -> ShortReview:
    """Label 50/50; the adjective uniform over every adjective of that sentiment (so that each is as
    rare as any other in the labelled data), then a venue and an aspect it can judge."""
    positive = rng.random() < 0.5
    adjective = rng.choice([a for a in ALL_OPINION_WORDS if a.positive == positive])
    venue, aspect = rng.choice(judged_by(adjective))
    return ShortReview(venue, rng.random() < 0.5, rng.random() < 0.5, rng.choice(venue.type.activities), aspect,
                       adjective, rng.choice((0, 0, 1, 2)))
