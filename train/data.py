"""SQuAD v1.1 train → the examples every learnt part of the answer stage is trained on.

Articles are split three ways by a hash of their title, so that each learnt part is
measured on articles it never saw:

- ``reader``  (~85 % of articles): the cross-encoder (answer sentence + answer phrase);
- ``fusion``  (~10 %): the final ranking and the answerability judge, fitted on the
  reader's scores over a real index of these articles;
- ``heldout`` (~5 %): figures only (the model card's held-out numbers).

squad-dev (the test set) is never read here.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from qa.evaluation.qa_sets import rank_auc  # noqa: E402
from qa.ingest.chunking import split_sentences  # noqa: E402  (the index's own sentence splitter)

TRAIN_FILE = ROOT.parent / "shared" / "train" / "squad-v1.1-train.jsonl.gz"


def split_of(title: str) -> str:
    """``reader``, ``fusion`` or ``heldout`` for an article, fixed by its title."""
    bucket = int(hashlib.sha1(title.encode("utf-8")).hexdigest(), 16) % 100
    if bucket < 5:
        return "heldout"
    if bucket < 15:
        return "fusion"
    return "reader"


@dataclass(frozen=True)
class Paragraph:
    title: str
    context: str
    sentences: tuple[tuple[int, int], ...]  # character ranges in ``context``
    qas: tuple[dict, ...]


def load_articles(path: Path = TRAIN_FILE, split: str | None = None) -> dict[str, list[dict]]:
    """Raw paragraphs grouped by article title (optionally one split only), in file order."""
    articles: dict[str, list[dict]] = {}
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if split is None or split_of(row["title"]) == split:
                articles.setdefault(row["title"], []).append(row)
    return articles


def paragraphs(rows: list[dict]) -> list[Paragraph]:
    """Paragraphs with their sentences cut as the index cuts them (pysbd)."""
    out = []
    for row in rows:
        text = row["context"]
        out.append(Paragraph(row["title"], text, tuple(split_sentences(text, 0, len(text))), tuple(row["qas"])))
    return out


def sentence_of(p: Paragraph, start: int, end: int) -> int | None:
    """The sentence holding the answer ``[start, end)`` whole, or None."""
    for i, (s, e) in enumerate(p.sentences):
        if s <= start and end <= e:
            return i
    return None


_WORD = re.compile(r"\w+")
STOP = frozenset(
    "a an the of in on at to for by with from and or is are was were be been what which who whom whose when where why how "
    "did do does that this these those it its as into than then there their they he she his her not no".split()
)


def content_words(text: str) -> set[str]:
    return {w for w in (m.lower() for m in _WORD.findall(text)) if w not in STOP}


@dataclass(frozen=True)
class Example:
    """One (question, sentence) pair; ``span`` is the answer's character range in the
    sentence for positives, None for negatives."""

    question: str
    sentence: str
    label: int
    span: tuple[int, int] | None
    group: int  # the question it belongs to


def reader_examples(articles: dict[str, list[dict]], questions: int, **options) -> list[Example]:
    """Training pairs for ``questions`` sampled questions of raw articles: their paragraphs
    cut into sentences, then :func:`examples_from` (``options``: its seed and negatives)."""
    per_article = {t: paragraphs(articles[t]) for t in sorted(articles)}
    return examples_from(per_article, questions, **options)


# Whole (~65 lines): one pass over the paragraphs building every kind of example.
def examples_from(
    per_article: dict[str, list[Paragraph]],
    questions: int,
    seed: int = 13,
    paragraph_negatives: int = 1,
    hard_negatives: int = 1,
    swapped: float = 0.0,
) -> list[Example]:
    """For ``questions`` sampled questions: the answer sentence (positive), up to
    ``paragraph_negatives`` other sentences of its paragraph, and the ``hard_negatives``
    sentences of other paragraphs of the same article that share most words with the
    question (near-topic negatives).  With probability ``swapped``, also the answer
    sentence against the question with one of its terms swapped for another of the article
    (:func:`swap_question`): the sentence no longer answers it — the kind of near-topic
    question a reader asks and an article does not answer.  Pairs of one question (and of
    its swapped twin) share a ``group``, so the twin also competes in the question's softmax."""
    rng = random.Random(seed)
    titles = sorted(per_article)
    words = {
        t: [[(p.context[a:b], content_words(p.context[a:b])) for a, b in p.sentences] for p in per_article[t]]
        for t in titles
    }
    pool = []
    for t in titles:
        for pi, p in enumerate(per_article[t]):
            for q in p.qas:
                pool.append((t, pi, q))
    rng.shuffle(pool)
    terms = {t: article_terms(per_article[t]) for t in titles} if swapped else {}
    out: list[Example] = []
    group = 0
    for title, pi, q in pool:
        if group >= questions:
            break
        p = per_article[title][pi]
        ans = q["answers"][0]
        start, end = ans["start"], ans["start"] + len(ans["text"])
        si = sentence_of(p, start, end)
        if si is None or len(p.sentences) < 2:
            continue
        s0, s1 = p.sentences[si]
        sent = p.context[s0:s1]
        out.append(Example(q["question"], sent, 1, (start - s0, end - s0), group))
        others = [i for i in range(len(p.sentences)) if i != si]
        for oi in rng.sample(others, min(paragraph_negatives, len(others))):
            out.append(Example(q["question"], p.context[slice(*p.sentences[oi])], 0, None, group))
        # Near-topic: the best-overlapping sentences elsewhere in the article.
        qwords = content_words(q["question"])
        scored = []
        for pj, other in enumerate(words[title]):
            if pj == pi:
                continue
            for text, sw in other:
                if ans["text"].lower() in text.lower():
                    continue  # (an answer-holding sentence may answer too: not a safe negative)
                scored.append((len(qwords & sw) + rng.random() * 0.5, text))
        scored.sort(key=lambda x: -x[0])
        for _, text in scored[:hard_negatives]:
            out.append(Example(q["question"], text, 0, None, group))
        if swapped and rng.random() < swapped:
            twin = swap_question(q["question"], sent, terms[title], rng)
            if twin:
                out.append(Example(twin, sent, 0, None, group))
        group += 1
    return out


auc = rank_auc  # ROC AUC, ties half: the evaluation's own (qa/evaluation/qa_sets.py)


# ---------------------------------------------------------------- swapped questions

_NUMBER = re.compile(r"\b\d[\d,.]*\d\b|\b\d\b")
_NAME = re.compile(r"(?<![\w.])[A-Z][\w'-]*(?:\s+[A-Z][\w'-]*)*(?![\w.])")
_LOWER = re.compile(r"\b[a-z][a-z-]{3,}\b")
_NOUN = re.compile(r"\b(?:the|a|an|its|their|his|her|this|these|those|many|much)\s+([a-z][a-z-]{3,})\b")


def _kind(word: str) -> str:
    """A rough word class by ending, so that a swap keeps the question grammatical."""
    for end in ("ing", "ed", "ly", "s"):
        if word.endswith(end):
            return end
    return ""


def article_terms(paras: list[Paragraph]) -> dict[str, list[str]]:
    """The names, numbers and noun-like words of an article (a lower-case word seen after a
    determiner), by kind.  Names exclude sentence-initial words (they may be any word)."""
    found: dict[str, set[str]] = {}
    for p in paras:
        starts = {a for a, _ in p.sentences}
        for m in _NAME.finditer(p.context):
            if m.start() not in starts and m.group().lower() not in STOP:
                found.setdefault("name", set()).add(m.group())
        for m in _NUMBER.finditer(p.context):
            found.setdefault("number", set()).add(m.group())
        for m in _NOUN.finditer(p.context):
            if m.group(1) not in STOP:
                found.setdefault("word" + _kind(m.group(1)), set()).add(m.group(1))
    return {k: sorted(v) for k, v in found.items()}


def swap_question(question: str, sentence: str, terms: dict[str, list[str]], rng: random.Random) -> str | None:
    """``question`` with one name, number or content word that its answer sentence holds
    replaced by a term of the same kind from the article that the sentence does not hold
    (so the sentence no longer answers it), or None when there is nothing to swap."""
    low = sentence.lower()
    slots = []
    for kind, pattern in (("name", _NAME), ("number", _NUMBER), ("word", _LOWER)):
        for m in pattern.finditer(question):
            text = m.group()
            if m.start() == 0 or text.lower() in STOP or text.lower() not in low:
                continue
            if kind == "word" and text not in terms.get("word" + _kind(text), ()):
                continue  # not seen as a noun in the article
            slots.append((m.start(), m.end(), kind + _kind(text) if kind == "word" else kind))
    rng.shuffle(slots)
    # Names and numbers first: swapping them is what most often makes a fluent unanswerable question.
    slots.sort(key=lambda s: s[2] not in ("name", "number"))
    for start, end, kind in slots[:2]:
        pool = terms.get(kind, [])
        for _ in range(8):
            if not pool:
                break
            other = pool[rng.randrange(len(pool))]
            if other.lower() not in low and other.lower() != question[start:end].lower():
                return question[:start] + other + question[end:]
    return None
