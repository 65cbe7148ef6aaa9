"""Sentence scoring: the evidence for "this sentence answers the question", and its weights.

Every feature is general (no rule names a question or a document).  The weights are
learnt by ``benchmarks/tune.py`` on one part of the data and stored in
``qa/weights.json``; the README reports them on held-out data.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path

import numpy as np

FEATURES = (
    "sentence_dense",  # cosine(question, sentence)
    "chunk_dense",  # cosine(question, the chunk around the sentence)
    "window_dense",  # cosine(question, the sentence with its neighbours)
    "sentence_bm25",  # BM25 of the sentence, relative to the best sentence for this question
    "chunk_bm25",  # BM25 of its chunk, relative to the best chunk
    "coverage",  # share of the question's idf mass present in the sentence
    "neighbour_dense",  # best cosine of an adjacent sentence in the same paragraph
    "neighbour_coverage",  # best coverage of an adjacent sentence
    "neighbour_bm25",  # best relative BM25 of an adjacent sentence
    "window_coverage",  # coverage of the sentence together with its neighbours
    "answer_type",  # the sentence holds the kind of thing asked for (number, date, name)
    "type_missing",  # the question asks for a kind of thing the sentence does not hold
    "novelty",  # share of the sentence's words that are not in the question
    "short",  # 1 for sentences under 60 characters (fragments, captions)
)

WEIGHTS_FILE = Path(__file__).parents[1] / "weights.json"  # qa/weights.json

# ---------------------------------------------------------------- answer types

_NUMBER_Q = re.compile(
    r"\bhow (many|much|long|old|far|big|large|high|often)\b|\bwhat (percentage|number|amount|size)\b", re.I
)
_DATE_Q = re.compile(
    r"\bwhen\b|\bwhat (year|century|decade|date|month|day|time)\b|\bwhich (year|century|decade)\b|\bin what year\b",
    re.I,
)
# "whos": who's typed without its apostrophe, as readers often do ("whos the director").
_PERSON_Q = re.compile(r"\bwho(m|se|s)?\b", re.I)
_NUMBER_WORDS = frozenset(
    "one two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty "
    "hundred thousand million billion dozen".split()
)
_NUMBER = re.compile(r"\d|\b(" + "|".join(sorted(_NUMBER_WORDS)) + r")\b", re.I)
_DIGITS = frozenset("0123456789")
_DATE = re.compile(
    r"\b(1\d{3}|20\d{2})s?\b|\b\d{1,2}(st|nd|rd|th) century\b|\b(january|february|march|april|may|june|july|august|september|october|november|december|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec)\b\.?|\b(monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b",
    re.I,
)
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+)*")
_WORD = re.compile(r"\w+", re.U)


def question_type(question: str) -> str:
    """ "number", "date", "person" or "" — what kind of answer a question asks for."""
    if _NUMBER_Q.search(question):
        return "number"
    if _DATE_Q.search(question):
        return "date"
    if _PERSON_Q.search(question):
        return "person"
    return ""


class SentenceTerms:
    """What the question-independent features need from one sentence, computed once: its
    lower-cased words, and — on first need, per answer kind —
    the words of each item of that kind (a question asks for one kind at most)."""

    __slots__ = ("sentence", "words", "_items")

    def __init__(self, sentence: str) -> None:
        self.sentence = sentence
        # (ASCII text: lower-casing first cannot move a word boundary, and is 2x faster.)
        self.words = tuple(_words_lower(sentence))
        self._items: dict[str, tuple[frozenset[str], ...]] = {}

    def items(self, kind: str) -> tuple[frozenset[str], ...]:
        found = self._items.get(kind)
        if found is None:
            if kind == "number" and self.sentence.isascii():
                # Every number match is one word: a digit, or a number word standing alone.
                # From the words and characters already at hand: the same items as the
                # regex gives (without repeats), at a fifth of the cost.
                single = (set(self.sentence) & _DIGITS) | (set(self.words) & _NUMBER_WORDS)
                found = tuple(frozenset((x,)) for x in sorted(single))
            else:
                matches = (frozenset(_words_lower(m.group())) for m in _KINDS[kind].finditer(self.sentence))
                found = tuple(f for f in matches if f)
            self._items[kind] = found
        return found

    def holds_new(self, kind: str, asked: frozenset[str]) -> bool:
        """Whether an item of ``kind`` has a word the question does not: ``any`` over
        :meth:`items`, but a name or date scan stops at the first such item (most sentences
        have one early; at 10^6 sentences few are met twice, so the items are kept only
        when the scan went to the end)."""
        if kind in self._items or kind == "number":
            return any(not words <= asked for words in self.items(kind))
        found = []
        for m in _KINDS[kind].finditer(self.sentence):
            words = frozenset(_words_lower(m.group()))
            if words and not words <= asked:
                return True
            if words:
                found.append(words)
        self._items[kind] = tuple(found)
        return False


_KINDS = {"number": _NUMBER, "date": _DATE, "person": _NAME}


# For ASCII text, \w is [A-Za-z0-9_]: every other byte becomes a space, and the words are
# what split() leaves (the same list as the regex, in a third less time: a question reads
# hundreds of new sentences at 10^6).
_NOT_WORD = bytes(c if chr(c).isascii() and (chr(c).isalnum() or chr(c) == "_") else 32 for c in range(256))


def _words_lower(text: str) -> list[str]:
    """The words of ``text``, lower-cased (each word lower-cased on its own, as always)."""
    if text.isascii():
        return text.lower().encode("ascii").translate(_NOT_WORD).decode("ascii").split()
    return [w.lower() for w in _WORD.findall(text)]


def sentence_terms(sentence: str) -> SentenceTerms:
    """The words and answer-type items of a sentence (question-independent, cached per sentence)."""
    return SentenceTerms(sentence)


def question_words(question: str) -> frozenset[str]:
    return frozenset(w.lower() for w in _WORD.findall(question))


def answer_type_score(qtype: str, asked: frozenset[str], terms: SentenceTerms) -> float:
    """1 when the sentence holds a new item of the asked kind, 0 when it holds none,
    0.5 when the question asks for no particular kind."""
    if not qtype:
        return 0.5
    return 1.0 if terms.holds_new(qtype, asked) else 0.0


def novelty_score(asked: frozenset[str], terms: SentenceTerms) -> float:
    """Share of the sentence's words that are not in the question."""
    n = len(terms.words)
    return (n - sum(map(asked.__contains__, terms.words))) / max(n, 1)


# ---------------------------------------------------------------- quote units

# A quote is one sentence or two adjacent ones; a unit is described by the element-wise
# max and min of its sentences' features, whether it is a pair, and its length.
UNIT_FEATURES = tuple(f"max_{f}" for f in FEATURES) + tuple(f"min_{f}" for f in FEATURES) + ("pair", "length")
CONFIDENCE_FEATURES = (
    "max_sentence_dense",
    "max_chunk_dense",
    "max_window_dense",
    "max_coverage",
    "max_window_coverage",
    "min_type_missing",
)


def unit_matrix(X: np.ndarray, firsts: np.ndarray, lasts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Unit features from sentence features ``X`` (rows = candidates) for units spanning
    candidate rows ``firsts``..``lasts`` (equal for single sentences)."""
    a, b = X[firsts], X[lasts]
    pair = (firsts != lasts).astype(np.float64)[:, None]
    return np.hstack([np.maximum(a, b), np.minimum(a, b), pair, (lengths / 300.0)[:, None]])


# ---------------------------------------------------------------- weights


@dataclass(frozen=True)
class Scorer:
    """A linear score over :data:`UNIT_FEATURES`, a length penalty, and when to abstain."""

    weights: dict[str, float] = field(
        default_factory=lambda: {
            "max_sentence_dense": 1.0,
            "max_chunk_dense": 0.5,
            "max_sentence_bm25": 0.3,
            "max_chunk_bm25": 0.2,
            "max_coverage": 0.5,
            "max_answer_type": 0.3,
            "min_sentence_dense": 0.5,
            "length": -0.3,
        }
    )
    # Abstain when confidence (a logistic score over the best unit's absolute evidence) is below this.
    confidence_weights: dict[str, float] = field(
        default_factory=lambda: {"bias": -6.0, "max_sentence_dense": 6.0, "max_chunk_dense": 4.0, "max_coverage": 3.0}
    )
    min_confidence: float = 0.5
    max_pair_chars: int = 500
    source: str = "built-in defaults"

    @property
    def vector(self) -> np.ndarray:
        return np.array([self.weights.get(f, 0.0) for f in UNIT_FEATURES])

    def score(self, U: np.ndarray) -> np.ndarray:
        return U @ self.vector

    def confidence(self, U: np.ndarray, row: int) -> float:
        """Probability-like confidence that unit ``row`` answers the question."""
        cw = self.confidence_weights
        z = cw.get("bias", 0.0) + sum(w * float(U[row, UNIT_FEATURES.index(f)]) for f, w in cw.items() if f != "bias")
        return float(1.0 / (1.0 + np.exp(-z)))

    def to_json(self) -> dict:
        return _fields_json(self)

    @classmethod
    def load(cls, path: Path = WEIGHTS_FILE) -> "Scorer":
        """The tuned scorer from ``qa/weights.json``, or the built-in defaults without it."""
        return _from_json(cls, path) if Path(path).exists() else cls()


# ---------------------------------------------------------------- the reader stage

# The reader re-scores the best ``depth`` units of the linear pre-ranking: a unit is
# described by its pre-score and what the reader says of its sentences.
READER_FEATURES = ("pre_score", "max_relevance", "min_relevance", "max_phrase", "pair", "length")
# Answerability is judged on the best unit after re-scoring.
ANSWERABILITY_FEATURES = (
    "final_score",
    "max_relevance",
    "max_phrase",
    "second_relevance",  # the best relevance among the other re-scored units
    "max_sentence_dense",
    "max_chunk_dense",
    "max_coverage",
    "min_type_missing",
    "max_probe",  # the answerability probe over the reader's state, best of the unit's sentences
)
READER_SCORER_FILE = Path(__file__).parents[1] / "models" / "answer.json"


@dataclass(frozen=True)
class ReaderScorer:
    """Learnt by ``train/fusion.py`` on SQuAD v1.1 train (never on an evaluation set):
    a linear pre-ranking over :data:`UNIT_FEATURES`, a linear re-scoring of the best
    ``depth`` units over :data:`READER_FEATURES`, and a logistic answerability judge over
    :data:`ANSWERABILITY_FEATURES` with its threshold.  The judge also reads a linear probe
    over the reader's [CLS] state (:attr:`Reading.state`), fitted to tell the best-looking
    sentence of an answerable question from that of one the articles do not answer."""

    pre_weights: dict[str, float]
    weights: dict[str, float]
    answerability: dict[str, float]
    min_confidence: float = 0.5
    # Answers below this confidence are shown as tentative ("perhaps"): on the calibration
    # sets, near-topic questions the articles do not answer rarely reach it. None: no tier.
    sure_confidence: float | None = None
    depth: int = 12
    max_pair_chars: int = 500
    # Also require the linear scorer's confidence (qa/weights.json) to reach ``gate_level``
    # (None: the linear scorer's own threshold): far-off questions that share a word and a
    # kind of answer with a sentence ("Who won the 2022 FIFA World Cup?") can fool the
    # judge, which learnt near-topic negatives.  train/fusion.py chooses the level on the
    # calibration sets: too high a gate silences answerable questions phrased in words the
    # articles do not use.
    linear_gate: bool = True
    gate_level: float | None = None
    # The probe: weights over the reader's state, and its bias (None: no probe; its
    # feature is then 0, as for a reader without a state output).
    probe_weights: list[float] | None = None
    probe_bias: float = 0.0
    source: str = ""

    @property
    def pre_vector(self) -> np.ndarray:
        return np.array([self.pre_weights.get(f, 0.0) for f in UNIT_FEATURES])

    @property
    def vector(self) -> np.ndarray:
        return np.array([self.weights.get(f, 0.0) for f in READER_FEATURES])

    def probe(self, state: np.ndarray | None) -> float:
        """The probe's logit for one sentence's reader state (0 without a probe or a state)."""
        if self.probe_weights is None or state is None:
            return 0.0
        return float(state @ self._probe_vector + self.probe_bias)

    @cached_property
    def _probe_vector(self) -> np.ndarray:
        return np.asarray(self.probe_weights, dtype=np.float32)

    def confidence(self, features: dict[str, float]) -> float:
        """Probability that the articles answer the question, from the best unit's evidence."""
        a = self.answerability
        z = a.get("bias", 0.0) + sum(a.get(f, 0.0) * float(features[f]) for f in ANSWERABILITY_FEATURES)
        return float(1.0 / (1.0 + np.exp(-z)))

    def to_json(self) -> dict:
        return _fields_json(self)

    @classmethod
    def load(cls, path: Path = READER_SCORER_FILE) -> "ReaderScorer | None":
        """The trained reader scorer, or None when it has not been trained."""
        return _from_json(cls, path) if Path(path).exists() else None


def _fields_json(scorer) -> dict:
    """A scorer's fields, in order, as the JSON its file holds."""
    return {f.name: getattr(scorer, f.name) for f in fields(scorer)}


def _from_json(cls, path: Path):
    """A scorer from its JSON file; keys that are not fields (records written beside them
    by the training scripts: figures, dates) are left out."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
