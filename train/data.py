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
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from qa.chunking import split_sentences  # noqa: E402  (the index's own sentence splitter)

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


_WORD = __import__("re").compile(r"\w+")
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


def reader_examples(
    articles: dict[str, list[dict]],
    questions: int,
    seed: int = 13,
    paragraph_negatives: int = 1,
    hard_negatives: int = 1,
) -> list[Example]:
    """Training pairs for ``questions`` sampled questions (see :func:`examples_from`)."""
    per_article = {t: paragraphs(articles[t]) for t in sorted(articles)}
    return examples_from(per_article, questions, seed, paragraph_negatives, hard_negatives)


def examples_from(
    per_article: dict[str, list[Paragraph]],
    questions: int,
    seed: int = 13,
    paragraph_negatives: int = 1,
    hard_negatives: int = 1,
) -> list[Example]:
    """For ``questions`` sampled questions: the answer sentence (positive), up to
    ``paragraph_negatives`` other sentences of its paragraph, and the ``hard_negatives``
    sentences of other paragraphs of the same article that share most words with the
    question (near-topic negatives).  Pairs of one question share a ``group``."""
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
        group += 1
    return out
