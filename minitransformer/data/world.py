"""A small bilingual (English / 中文) world: meanings, and the sentences that express them.

Every sentence starts as a meaning (who did what, where, with what sentiment) and is realised in
both languages from it, so one seeded generator yields every kind of data the chapters need:
stories for pretraining (MLM + NSP, causal LM), labelled reviews (classification), entity tags
(NER) and sentence pairs (translation). Article §3.2.1 数据准备, §3.2.4 微调, §6.1-6.3.

A realised sentence is a list of pieces; a piece is plain words (``str``) or an ``Entity``:

    Sentence(en=(anna, "went to", paris, "by train", "."), zh=(anna, "坐火车去了", paris, "。"))
    .text("en") == "Anna went to Paris by train."     .text("zh") == "安娜坐火车去了巴黎。"
    .tagged("en") == [("Anna", "B-PER"), ("went", "O"), ("to", "O"), ("Paris", "B-LOC"), ...]

English tokens are words (punctuation split off); Chinese tokens are characters.
Only ``random.Random`` instances passed in are used, so a seed fixes every byte.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Union

from .world_lexicon import (
    BAD_CLOSERS, BAD_FEELINGS, CITIES, DEGREES, GOOD_CLOSERS, GOOD_FEELINGS, JOBS, LATER_TIMES, NEXT_TIMES, PEOPLE,
    RELATIONS, TIMES, TRANSPORT, VENUES, WEATHER, WORKPLACES, Adjective, Aspect, Entity, Person, Venue,
    VenueType,
)

Piece = Union[str, Entity]
PUNCT = frozenset(".,")


@dataclass(frozen=True)
class Sentence:
    """One meaning said in both languages, as pieces (words or entities)."""

    en: tuple[Piece, ...]
    zh: tuple[Piece, ...]
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    def tagged(self, lang: str) -> list[tuple[str, str]]:
        """(token, BIO tag) pairs: English words or Chinese characters, entities tagged B-X, I-X, ..."""
        if ("tagged", lang) not in self._cache:
            self._cache["tagged", lang] = self._tag(lang)
        return list(self._cache["tagged", lang])

    def _tag(self, lang: str) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        english = lang == "en"
        for piece in self._pieces(lang):
            if isinstance(piece, Entity):
                text = piece.en if english else piece.zh
                units = text.split() if english else text
                out.append((units[0], "B-" + piece.kind))
                out.extend((unit, "I-" + piece.kind) for unit in units[1:])
            else:
                out.extend((unit, "O") for unit in (piece.split() if english else piece))
        if english:   # sentence-initial capital
            out[0] = (out[0][0][:1].upper() + out[0][0][1:], out[0][1])
        return out

    def text(self, lang: str) -> str:
        """The sentence as plain text: English words joined by spaces (none before . or ,); Chinese unspaced."""
        if ("text", lang) not in self._cache:
            tokens = [tok for tok, _ in self.tagged(lang)]
            self._cache["text", lang] = "".join(tokens) if lang == "zh" else "".join(
                ("" if i == 0 or tok in PUNCT else " ") + tok for i, tok in enumerate(tokens))
        return self._cache["text", lang]

    def _pieces(self, lang: str) -> tuple[Piece, ...]:
        if lang not in ("en", "zh"):
            raise ValueError(f"lang: expected 'en' or 'zh', received {lang!r}")
        return self.en if lang == "en" else self.zh


# ---------------------------------------------------------------- opinions: the sentiment part
@dataclass(frozen=True)
class Opinion:
    """'the food was not good' / '饭菜不好'. Sentiment = adjective's sentiment, flipped by negation."""

    aspect: Aspect
    adjective: Adjective
    negated: bool
    degree: int   # index into DEGREES; 0 when negated

    @property
    def positive(self) -> bool:
        return self.adjective.positive != self.negated

    def clause(self) -> tuple[str, str]:
        """(English, Chinese) clause without final punctuation."""
        deg_en, deg_zh = DEGREES[self.degree]
        adverb_en = "not" if self.negated else deg_en
        en = " ".join(w for w in ("the", self.aspect.en, self.aspect.be, adverb_en, self.adjective.en) if w)
        return en, self.aspect.zh + ("不" if self.negated else deg_zh) + self.adjective.zh


LINKS = ("", "and", "but", "although")


@dataclass(frozen=True)
class Judgement:
    """One or two opinions joined by a link word. The sentiment is that of the last clause:
    'and' joins two clauses of the same sentiment; 'but' and 'although' join opposite ones, and the
    clause after 'but' (the main clause after 'although') decides."""

    opinions: tuple[Opinion, ...]
    link: str

    @property
    def positive(self) -> bool:
        return self.opinions[-1].positive

    def sentence(self) -> Sentence:
        clauses = [op.clause() for op in self.opinions]
        if self.link == "":
            (en, zh), = clauses
            return Sentence((en, "."), (zh, "。"))
        (en1, zh1), (en2, zh2) = clauses
        if self.link == "and":
            return Sentence((en1, "and", en2, "."), (zh1, "，而且", zh2, "。"))
        if self.link == "but":
            return Sentence((en1, ",", "but", en2, "."), (zh1, "，但是", zh2, "。"))
        return Sentence(("although", en1, ",", en2, "."), ("虽然", zh1, "，但是", zh2, "。"))


def sample_opinion(rng: random.Random, aspect: Aspect, positive: bool, p_negate: float = 0.35) -> Opinion:
    """An opinion about ``aspect`` with the given sentiment; negated with probability ``p_negate``."""
    negated = rng.random() < p_negate
    adjective = rng.choice([a for a in aspect.adjectives if a.positive == (positive != negated)])
    return Opinion(aspect, adjective, negated, 0 if negated else rng.choice((0, 0, 1, 2)))


REVIEW_LINK_WEIGHTS = (35, 20, 30, 15)   # one clause, 'and', 'but', 'although'
STORY_LINK_WEIGHTS = (60, 20, 15, 5)     # stories favour single clauses: polarity is learnt first


def sample_judgement(rng: random.Random, venue_type: VenueType, positive: bool,
                     weights: tuple[int, ...] = REVIEW_LINK_WEIGHTS, p_negate: float = 0.35) -> Judgement:
    """A judgement of a venue with the given overall sentiment, its link drawn with ``weights``."""
    link = rng.choices(LINKS, weights=weights)[0]
    if link == "":
        return Judgement((sample_opinion(rng, rng.choice(venue_type.aspects), positive, p_negate),), link)
    first, second = rng.sample(venue_type.aspects, 2)
    first_positive = positive if link == "and" else not positive
    return Judgement((sample_opinion(rng, first, first_positive, p_negate),
                      sample_opinion(rng, second, positive, p_negate)), link)


# ---------------------------------------------------------------- reviews
@dataclass(frozen=True)
class Review:
    """'We had dinner at Sun Restaurant in Paris. The food was bad, but the service was fast. I will come back.'"""

    venue: Venue
    city: Entity | None
    we: bool
    activity: tuple[str, str]
    opener: bool
    judgement: Judgement
    closer: tuple[str, str] | None

    @property
    def label(self) -> str:
        return "pos" if self.judgement.positive else "neg"

    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    def sentences(self) -> list[Sentence]:
        if "sentences" not in self._cache:
            self._cache["sentences"] = self._sentences()
        return list(self._cache["sentences"])

    def _sentences(self) -> list[Sentence]:
        out = []
        if self.opener:
            who_en, who_zh = ("we", "我们") if self.we else ("I", "我")
            act_en, act_zh = self.activity
            where_en = ("in", self.city) if self.city else ()
            where_zh = (self.city, "的") if self.city else ()
            out.append(Sentence((who_en, act_en, "at", self.venue, *where_en, "."),
                                (who_zh, "在", *where_zh, self.venue, act_zh, "。")))
        out.append(self.judgement.sentence())
        if self.closer:
            out.append(Sentence((self.closer[0], "."), (self.closer[1], "。")))
        return out

    def text(self, lang: str) -> str:
        return (" " if lang == "en" else "").join(s.text(lang) for s in self.sentences())


def sample_review(rng: random.Random, p_closer: float = 0.3) -> Review:
    """A review with a label drawn 50/50; the opener and closer are optional, the closer agrees with the label."""
    positive = rng.random() < 0.5
    venue = rng.choice(VENUES)
    closer = rng.choice(GOOD_CLOSERS if positive else BAD_CLOSERS) if rng.random() < p_closer else None
    return Review(venue, rng.choice(CITIES) if rng.random() < 0.5 else None, rng.random() < 0.5,
                  rng.choice(venue.type.activities), rng.random() < 0.6,
                  sample_judgement(rng, venue.type, positive), closer)


# ---------------------------------------------------------------- stories
def _subject(person: Person, pronoun: bool) -> tuple[Piece, Piece]:
    """The person's name, or he/she (他/她)."""
    if not pronoun:
        return person, person
    return ("she", "她") if person.female else ("he", "他")


@dataclass(frozen=True)
class Visit:
    """One visit of a story: two people do something at a venue, judge it, and feel accordingly.
    The feeling and the wish to return agree with the judgement, so what 'not good' means can be
    learnt from unlabelled text."""

    venue: Venue
    when: tuple[str, str] | None        # None for the first visit (the meeting introduces the venue)
    activity: tuple[str, str]
    there: bool                         # "... had dinner there."
    judgement: Judgement
    feeling: tuple[str, str]
    feeling_negated: bool
    feeling_degree: int
    together: bool                      # "P and Q were happy"
    consequence: bool                   # "P wants to go back to V." / "P does not want to go back to V."
    pronoun: bool                       # he/she as the subject of the feeling and the consequence

    def sentences(self, p: Person, q: Person) -> list[Sentence]:
        v, (act_en, act_zh) = self.venue, self.activity
        if self.when:
            out = [Sentence((self.when[0], ",", p, "and", q, act_en, "at", v, "."),
                            (self.when[1], "，", p, "和", q, "在", v, act_zh, "。"))]
        elif self.there:
            out = [Sentence((p, "and", q, act_en, "there", "."), (p, "和", q, "在那里", act_zh, "。"))]
        else:
            out = [Sentence((p, "and", q, act_en, "at", v, "."), (p, "和", q, "在", v, act_zh, "。"))]
        out += [self.judgement.sentence(), self._feeling_sentence(p, q)]
        s_en, s_zh = _subject(p, self.pronoun)
        if self.consequence and self.judgement.positive:
            out.append(Sentence((s_en, "wants to go back to", v, "."), (s_zh, "还想再去", v, "。")))
        elif self.consequence:
            out.append(Sentence((s_en, "does not want to go back to", v, "."), (s_zh, "不想再去", v, "了。")))
        return out

    def _feeling_sentence(self, p: Person, q: Person) -> Sentence:
        adverb_en, adverb_zh = ("not", "不") if self.feeling_negated else DEGREES[self.feeling_degree]
        if self.together:
            subj_en, subj_zh, be = (p, "and", q), (p, "和", q, "都"), "were"
        else:
            s_en, s_zh = _subject(p, self.pronoun)
            subj_en, subj_zh, be = (s_en,), (s_zh,), "was"
        words_en = " ".join(x for x in (be, adverb_en, self.feeling[0]) if x)
        return Sentence((*subj_en, words_en, "."), (*subj_zh, adverb_zh + self.feeling[1], "。"))


@dataclass(frozen=True)
class Story:
    """A little story: a person who lives somewhere travels to a city, meets someone at a venue,
    they do something there and judge it (a ``Visit``), maybe visit a second venue, and the person
    (maybe) goes home. Consecutive sentences share people, places and topic, so a sentence from
    another story is visibly out of place (NSP)."""

    person: Person
    friend: Person
    home: Entity
    city: Entity
    intro: str                          # "lives" | "works" | "job"
    second_intro: str                   # "" | "works" | "job" (only after "lives")
    workplace: Entity
    job: tuple[str, str]
    time: tuple[str, str]
    transport: tuple[str, str]
    weather: tuple[str, str] | None
    relation: tuple[str, str] | None    # None: "At V, S met Q."
    visits: tuple[Visit, ...]
    later: tuple[str, str] | None
    went_home: bool
    pronoun: tuple[bool, ...]           # per subject slot (second intro, travel, meeting, return): he/she

    def sentences(self) -> list[Sentence]:
        p, q, v, w = self.person, self.friend, self.visits[0].venue, self.workplace
        out = []
        if self.intro == "lives":
            out.append(Sentence((p, "lives in", self.home, "."), (p, "住在", self.home, "。")))
        elif self.intro == "works":
            out.append(Sentence((p, "works at", w, "in", self.home, "."), (p, "在", self.home, "的", w, "工作。")))
        else:
            out.append(Sentence((p, "is", self.job[0], "in", self.home, "."), (p, "是", self.home, "的一名", self.job[1], "。")))
        s_en, s_zh = _subject(p, self.pronoun[0])
        if self.second_intro == "works":
            out.append(Sentence((s_en, "works at", w, "."), (s_zh, "在", w, "工作。")))
        elif self.second_intro == "job":
            out.append(Sentence((s_en, "is", self.job[0], "."), (s_zh, "是一名", self.job[1], "。")))
        s_en, s_zh = _subject(p, self.pronoun[1])
        out.append(Sentence((self.time[0], ",", s_en, "went to", self.city, self.transport[0], "."),
                            (self.time[1], "，", s_zh, self.transport[1], "去了", self.city, "。")))
        if self.weather:
            out.append(Sentence(("it was", self.weather[0], "in", self.city, "."), (self.city, self.weather[1], "。")))
        s_en, s_zh = _subject(p, self.pronoun[2])
        if self.relation:
            his_en, his_zh = ("her", "她的") if p.female else ("his", "他的")
            out.append(Sentence((s_en, "met", his_en, self.relation[0], q, "at", v, "."),
                                (s_zh, "在", v, "见到了", his_zh + self.relation[1], q, "。")))
        else:
            out.append(Sentence(("at", v, ",", s_en, "met", q, "."), ("在", v, "，", s_zh, "遇到了", q, "。")))
        for visit in self.visits:
            out += visit.sentences(p, q)
        s_en, s_zh = _subject(p, self.pronoun[3])
        if self.later and self.went_home:
            out.append(Sentence((self.later[0], ",", s_en, "went home", "."), (self.later[1], "，", s_zh, "回家了。")))
        elif self.later:
            out.append(Sentence((self.later[0], ",", s_en, "went back to", self.home, "."),
                                (self.later[1], "，", s_zh, "回到了", self.home, "。")))
        return out


def sample_visit(rng: random.Random, venue: Venue, when: tuple[str, str] | None) -> Visit:
    """A visit with a sentiment drawn 50/50; a negative feeling is 'not happy' 40% of the time."""
    positive = rng.random() < 0.5
    feeling_negated = not positive and rng.random() < 0.4
    return Visit(
        venue=venue, when=when, activity=rng.choice(venue.type.activities), there=rng.random() < 0.5,
        judgement=sample_judgement(rng, venue.type, positive, STORY_LINK_WEIGHTS, p_negate=0.2),
        feeling=rng.choice(GOOD_FEELINGS if positive or feeling_negated else BAD_FEELINGS),
        feeling_negated=feeling_negated, feeling_degree=0 if feeling_negated else rng.choice((0, 0, 1)),
        together=rng.random() < 0.25, consequence=rng.random() < 0.6, pronoun=rng.random() < 0.4)


def sample_story(rng: random.Random) -> Story:
    """Draw every choice of a story from ``rng`` (and nothing else); 70% of stories have a second visit."""
    person = rng.choice(PEOPLE)
    relation_row = rng.choice(RELATIONS) if rng.random() < 0.7 else None
    friends = [f for f in PEOPLE if f != person and (relation_row is None or relation_row[2] in (None, f.female))]
    home, city = rng.sample(CITIES, 2)
    intro = rng.choice(("lives", "works", "job"))
    venues = rng.sample(VENUES, 2)
    visits = (sample_visit(rng, venues[0], None),)
    if rng.random() < 0.7:
        visits += (sample_visit(rng, venues[1], rng.choice(NEXT_TIMES)),)
    return Story(
        person=person, friend=rng.choice(friends), home=home, city=city, intro=intro,
        second_intro=rng.choice(("", "works", "job")) if intro == "lives" else "",
        workplace=rng.choice(WORKPLACES), job=rng.choice(JOBS), time=rng.choice(TIMES),
        transport=rng.choice(TRANSPORT), weather=rng.choice(WEATHER) if rng.random() < 0.4 else None,
        relation=relation_row[:2] if relation_row else None, visits=visits,
        later=rng.choice(LATER_TIMES) if rng.random() < 0.6 else None, went_home=rng.random() < 0.4,
        pronoun=tuple(rng.random() < 0.4 for _ in range(4)),
    )
