"""Sentence scoring: the evidence for "this sentence answers the question", and its weights.

Every feature is general (no rule names a question or a document).  The weights are
learnt by ``benchmarks/tune.py`` on one part of the data and stored in
``qa/weights.json``; the README reports them on held-out data.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
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
    "novelty",  # share of the sentence's words that are not in the question
    "short",  # 1 for sentences under 60 characters (fragments, captions)
)

WEIGHTS_FILE = Path(__file__).with_name("weights.json")

# ---------------------------------------------------------------- answer types

_NUMBER_Q = re.compile(r"\bhow (many|much|long|old|far|big|large|high|often)\b|\bwhat (percentage|number|amount|size)\b", re.I)
_DATE_Q = re.compile(r"\bwhen\b|\bwhat (year|century|decade|date|month|day|time)\b|\bwhich (year|century|decade)\b|\bin what year\b", re.I)
_PERSON_Q = re.compile(r"\bwho(m|se)?\b", re.I)
_NUMBER = re.compile(r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|hundred|thousand|million|billion|dozen)\b", re.I)
_DATE = re.compile(
    r"\b(1\d{3}|20\d{2})s?\b|\b\d{1,2}(st|nd|rd|th) century\b|\b(january|february|march|april|may|june|july|august|september|october|november|december|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec)\b\.?|\b(monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b",
    re.I,
)
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+)*")
_WORD = re.compile(r"\w+", re.U)


def question_type(question: str) -> str:
    """"number", "date", "person" or "" — what kind of answer a question asks for."""
    if _NUMBER_Q.search(question):
        return "number"
    if _DATE_Q.search(question):
        return "date"
    if _PERSON_Q.search(question):
        return "person"
    return ""


def answer_type_match(qtype: str, question: str, sentence: str) -> float:
    """1 when the sentence holds a new item of the asked kind, 0 when it holds none,
    0.5 when the question asks for no particular kind."""
    if not qtype:
        return 0.5
    asked = {w.lower() for w in _WORD.findall(question)}
    pattern = {"number": _NUMBER, "date": _DATE, "person": _NAME}[qtype]
    for m in pattern.finditer(sentence):
        words = {w.lower() for w in _WORD.findall(m.group())}
        if words and not words <= asked:
            return 1.0
    return 0.0


def novelty(question: str, sentence: str) -> float:
    q = {w.lower() for w in _WORD.findall(question)}
    s = [w.lower() for w in _WORD.findall(sentence)]
    return sum(w not in q for w in s) / max(len(s), 1)


# ---------------------------------------------------------------- weights


@dataclass(frozen=True)
class Scorer:
    """A linear score over :data:`FEATURES`, how quotes grow to two sentences, and when to abstain."""

    weights: dict[str, float] = field(
        default_factory=lambda: {
            "sentence_dense": 1.0,
            "chunk_dense": 0.5,
            "window_dense": 0.0,
            "sentence_bm25": 0.3,
            "chunk_bm25": 0.2,
            "coverage": 0.5,
            "neighbour_dense": 0.0,
            "neighbour_coverage": 0.0,
            "neighbour_bm25": 0.0,
            "window_coverage": 0.0,
            "answer_type": 0.0,
            "novelty": 0.0,
            "short": 0.0,
        }
    )
    # A neighbouring sentence joins the quote when its score is within this margin of the best.
    pair_margin: float = 0.15
    pair_max_chars: int = 400
    # Abstain when confidence (a logistic score over the best quote's absolute evidence) is below this.
    confidence_weights: dict[str, float] = field(
        default_factory=lambda: {"bias": -6.0, "sentence_dense": 6.0, "chunk_dense": 4.0, "coverage": 3.0}
    )
    min_confidence: float = 0.5
    source: str = "built-in defaults"

    @property
    def vector(self) -> np.ndarray:
        return np.array([self.weights.get(f, 0.0) for f in FEATURES])

    def score(self, feats: dict[str, np.ndarray]) -> np.ndarray:
        return sum(self.weights.get(f, 0.0) * feats[f] for f in FEATURES)

    def confidence(self, feats: dict[str, np.ndarray], row: int) -> float:
        """Probability-like confidence that the candidate ``row`` answers the question."""
        cw = self.confidence_weights
        z = cw.get("bias", 0.0) + sum(w * float(feats[f][row]) for f, w in cw.items() if f != "bias")
        return float(1.0 / (1.0 + np.exp(-z)))

    def to_json(self) -> dict:
        return {
            "weights": self.weights,
            "pair_margin": self.pair_margin,
            "pair_max_chars": self.pair_max_chars,
            "confidence_weights": self.confidence_weights,
            "min_confidence": self.min_confidence,
            "source": self.source,
        }

    @classmethod
    def load(cls, path: Path = WEIGHTS_FILE) -> "Scorer":
        """The tuned scorer from ``qa/weights.json``, or the built-in defaults without it."""
        if not Path(path).exists():
            return cls()
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
