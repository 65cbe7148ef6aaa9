"""Where the articles disagree: different numbers or years for the same thing.

Given a question and its quotes, :func:`find` looks for two quotes from *different*
articles that each give a value of the kind the question asks for (a number for "how
many", a year for "when"/"what year") and give different ones, about the same thing.

"The same thing" is decided by general rules, not by lists of topics:

* the value is one the question does not already contain;
* when a quote carries the engine's answer phrase, its value comes from that phrase;
  otherwise from the quote's sentence that holds it;
* the two sentences that carry the values must be about the same thing: their
  similarity (``similarity(a, b)``, by default the share of content words they have in
  common; the web app passes the embedding model's cosine) is at least ``min_similarity``;
* the first quote (the answer shown) must give a value, and the difference must be with it;
* counts must be of the same order of magnitude (within a factor of 3), so that "70
  others" is not set against "40,000"; years must be within 30 years of each other.

Each :class:`Difference` names the values and the quotes (1-based, as shown) that give them:
``articles differ: 75,000 [1] / 81,000 [2]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

from ..data import Quote

_MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec|january|february|march|april|june|july|august|september|october|november|december"
_YEAR = re.compile(r"(?<![\d,.])(1[89]\d\d|20\d\d)(?!\d|[,.]\d)")
_COUNT = re.compile(
    r"(?<![\w,.])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(?:\s*(million|billion|thousand))?(?!\w|[,.]\d)", re.I
)
_DAY_OF_MONTH = re.compile(rf"\b(?:{_MONTHS})\.?\s+$", re.I)
_SENTENCE_END = re.compile(r"(?<=[.!?”\"])\s+(?=[A-Z“\"])")
_WORD = re.compile(r"[a-z][a-z'’-]+")
_NUMBER_Q = re.compile(r"\bhow\s+(many|much)\b|\bwhat\s+(number|percentage|share|proportion)\b", re.I)
_YEAR_Q = re.compile(r"\b(when|what\s+year|which\s+year|in\s+what\s+year|since\s+when)\b", re.I)
_DAY_Q = re.compile(r"\b(what|which)\s+(date|day)\b", re.I)  # a day is asked for, not a year
_STOP = frozenset(
    """the a an and or but of to in on at by for from with as is are was were be been has have had that this these those
    it its his her their he she they who which what when where how than more most less about into over after before since
    also not no only very many much some such while would could will can may said says according there here all any""".split()
)


@dataclass(frozen=True)
class Value:
    kind: str  # "count" or "year"
    value: float
    text: str  # as written ("75,000", "2019")
    quote: int  # 0-based position among the quotes
    sentence: str  # the sentence that holds it


@dataclass(frozen=True)
class Difference:
    kind: str
    values: tuple[tuple[str, tuple[int, ...]], ...]  # (value as written, 1-based quote numbers giving it)

    def text(self) -> str:
        """``75,000 [1] / 81,000 [2, 3]``."""
        return " / ".join(f"{v} [{', '.join(map(str, ns))}]" for v, ns in self.values)


def asked_kind(question: str) -> str:
    """ "count", "year" or "" — the kind of value the question asks for."""
    if _NUMBER_Q.search(question):
        return "count"
    if _YEAR_Q.search(question) and not _DAY_Q.search(question):
        return "year"
    return ""


def _number(text: str, scale: str | None) -> float:
    value = float(text.replace(",", ""))
    return value * {"thousand": 1e3, "million": 1e6, "billion": 1e9}.get((scale or "").lower(), 1)


def _sentence_at(text: str, pos: int) -> str:
    starts = [0] + [m.end() for m in _SENTENCE_END.finditer(text)]
    start = max(s for s in starts if s <= pos)
    nxt = [s for s in starts if s > pos]
    return text[start : nxt[0] if nxt else len(text)].strip()


def values(text: str, kind: str) -> list[tuple[str, float, int]]:
    """(as written, value, position) of each value of ``kind`` in ``text``."""
    out = []
    if kind == "year":
        for m in _YEAR.finditer(text):
            out.append((m.group(1), float(m.group(1)), m.start()))
        return out
    years = {m.start() for m in _YEAR.finditer(text)}
    for m in _COUNT.finditer(text):
        if m.start() in years or _DAY_OF_MONTH.search(text[max(0, m.start() - 12) : m.start()]):
            continue  # a year, or the day of a date
        out.append((m.group(0).strip(), _number(m.group(1), m.group(2)), m.start()))
    return out


def content_words(text: str) -> set[str]:
    words = set()
    for w in _WORD.findall(text.lower()):
        w = w.strip("'’-")
        if len(w) > 2 and w not in _STOP:
            words.add(w[:-1] if w.endswith("s") and len(w) > 4 else w)
    return words


def word_overlap(a: str, b: str) -> float:
    """Share of content words in common (of the smaller sentence)."""
    wa, wb = content_words(_YEAR.sub(" ", a)), content_words(_YEAR.sub(" ", b))
    return len(wa & wb) / max(1, min(len(wa), len(wb)))


def quote_values(question: str, quote: Quote, position: int, kind: str) -> list[Value]:
    """The values of ``kind`` a quote gives in answer (not those the question names)."""
    in_question = {v for _, v, _ in values(question, kind)}
    source = quote.phrase_text if quote.phrase_text and values(quote.phrase_text, kind) else quote.text
    offset = quote.text.find(source) if source is not quote.text else 0
    out = []
    for written, value, pos in values(source, kind):
        if value in in_question:
            continue
        out.append(Value(kind, value, written, position, _sentence_at(quote.text, offset + pos)))
    return out


def _comparable(a: Value, b: Value) -> bool:
    if a.value == b.value:
        return False
    if a.kind == "year":
        return abs(a.value - b.value) <= 30
    lo, hi = sorted((a.value, b.value))
    return lo > 0 and hi / lo <= 3


def find(
    question: str,
    quotes: Sequence[Quote],
    similarity: Callable[[str, str], float] | None = None,
    min_similarity: float = 0.4,
    depth: int = 5,
) -> list[Difference]:
    """Different values, from different articles, for what the question asks (best first)."""
    kind = asked_kind(question)
    if not kind or len({q.doc_id for q in quotes[:depth]}) < 2:
        return []
    similarity = similarity or word_overlap
    found: list[Value] = []
    for i, q in enumerate(quotes[:depth]):
        found += quote_values(question, q, i, kind)
    # A difference is with the answer shown: the first quote must give a value of the kind asked.
    anchors = {i for i, v in enumerate(found) if v.quote == 0}
    if not anchors:
        return []
    prime = getattr(similarity, "prime", None)
    if prime is not None and len({quotes[v.quote].doc_id for v in found}) > 1:
        prime([v.sentence for v in found])
    pairs = []
    for x in range(len(found)):
        for y in range(x + 1, len(found)):
            a, b = found[x], found[y]
            if quotes[a.quote].doc_id == quotes[b.quote].doc_id or not _comparable(a, b):
                continue
            if x not in anchors and y not in anchors:
                continue
            if similarity(a.sentence, b.sentence) >= min_similarity:
                pairs.append((a, b))
    if not pairs:
        return []
    # One difference per question: every value in a differing pair, with the quotes giving it.
    by_value: dict[float, tuple[str, set[int]]] = {}
    for a, b in pairs:
        for v in (a, b):
            written, where = by_value.setdefault(v.value, (v.text, set()))
            where.add(v.quote + 1)
    ordered = sorted(by_value.items(), key=lambda kv: min(kv[1][1]))
    return [Difference(kind, tuple((w, tuple(sorted(ns))) for _, (w, ns) in ordered))]


def embedding_similarity(embedder) -> Callable[[str, str], float]:
    """Cosine of two sentences by ``embedder`` (unit vectors), memoised per sentence."""
    cache: dict[str, object] = {}

    def vector(text: str):
        if text not in cache:
            if len(cache) > 4096:
                cache.clear()
            cache[text] = embedder.encode([text])[0]
        return cache[text]

    def similarity(a: str, b: str) -> float:
        return float(vector(a) @ vector(b))

    def prime(texts: Sequence[str]) -> None:
        """Encode the sentences not seen yet in one batch."""
        new = [t for t in dict.fromkeys(texts) if t not in cache]
        if new:
            if len(cache) + len(new) > 4096:
                cache.clear()
            cache.update(zip(new, embedder.encode(new)))

    similarity.prime = prime
    return similarity


def for_engine(engine) -> Callable[[str, Sequence[Quote]], list[Difference]]:
    """``differences(question, quotes)`` with the engine's own embedding model."""
    similarity = embedding_similarity(engine.retriever.embedder)
    return lambda question, quotes: find(question, quotes, similarity)


def measure(engine, disagreements_path, qa_path) -> dict:
    """Detection on a set of known disagreements (``question``, ``values``) and flags raised
    on a QA set (each listed, for reading): what ``python -m qa.answer.disagreement`` prints."""
    import json
    from pathlib import Path

    differences = for_engine(engine)
    rows = [
        json.loads(line) for line in Path(disagreements_path).read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    hits = []
    for row in rows:
        answer = engine.ask(row["question"])
        found = differences(row["question"], answer.quotes) if answer.answered else []
        shown = {v for d in found for v, _ in d.values}
        hits.append({"id": row["id"], "found": [d.text() for d in found], "hit": set(row["values"]) <= shown})
    flags = []
    items = [json.loads(line) for line in Path(qa_path).read_text(encoding="utf-8").splitlines() if line.strip()]
    for item in items:
        answer = engine.ask(item["question"])
        found = differences(item["question"], answer.quotes) if answer.answered else []  # as the chat shows them
        if found:
            flags.append({"id": item["id"], "question": item["question"], "found": [d.text() for d in found]})
    return {
        "disagreements": len(rows),
        "detected": sum(h["hit"] for h in hits),
        "details": hits,
        "questions": len(items),
        "flagged": len(flags),
        "flags": flags,
    }


if __name__ == "__main__":  # python -m qa.answer.disagreement [INDEX]
    import json
    import sys
    from pathlib import Path

    from ..pipeline import open_engine
    from ..settings import Settings

    root = Path(__file__).resolve().parents[2]  # the checkout: eval/ beside qa/
    engine = open_engine(Settings(index=Path(sys.argv[1]) if len(sys.argv) > 1 else Path("index")))
    print(
        json.dumps(
            measure(engine, root / "eval" / "seeds-disagreements.jsonl", root / "eval" / "seeds.jsonl"),
            indent=2,
            ensure_ascii=False,
        )
    )
