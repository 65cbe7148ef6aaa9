"""Names a question asks about that the collection never mentions.

When the answer stage declines a question, or answers it only tentatively, the reader is
told which of its names the articles never write ("The articles never mention “Mona Lisa”"):
a reason they can check, where "the articles don't say" alone leaves them guessing whether
the search missed.  It is said, not decided on: the judge already declines nearly every
question about something the collection never names (all 170 such questions among 300
of other Wikipedia articles asked of the seeds), and as a rule it would also decline answerable
questions that spell a name otherwise than the articles do ("Othacoustic" for
"Orthacoustic", "Geimsa" for "Giemsa": 22 of 9,895 SQuAD questions asked of their own
articles) for one more far-off question of 118 declined (``python benchmarks/mentions.py``).

A *name* is a run of capitalised words ("Mona Lisa", "Supreme Court", "Panama Canal") that
does not start a sentence of the question (its first word is capitalised anyway).  It is
*not mentioned* when none of its words is used by the collection: its BM25 stem is not in
the sentence vocabulary, nor is a form of it that differs only in an ending of up to three
letters ("Venezuelans" is mentioned by articles that write "Venezuela"), accents aside
("Wohler" is mentioned by "Wöhler"); so "Supreme Court"
is mentioned by articles that say "court", and a name typed with a typo is checked after the
speller has corrected it.  Left alone, because capitals tell nothing there: acronyms ("US"
for "United States", "UN"), words with inner capitals, questions typed in Title Case ("Who Is
The President Of France?") or in lower case.
"""

from __future__ import annotations

import re
from typing import Callable

from .conversation import STOPWORDS

# A word of letters with an optional possessive ("France's"); digits split words.
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
# Between two words of one name: spaces only ("Anheuser-Busch" is two names, each checked).
_JOINED = re.compile(r"\s+")
MIN_LETTERS = 3  # a capitalised word: one capital, then at least two lower-case letters
# Lower-case words that may sit inside a name ("Bank of America", "Ramón y Cajal").
CONNECTORS = frozenset({"of", "de", "del", "la", "le", "da", "di", "du", "van", "von", "al", "y", "the"})
_PART = re.compile(r"[^\W_]{2,}")
SENTENCE_END = re.compile(r"[.!?:;]\s*$")


def _strip_possessive(word: str) -> str:
    return re.sub(r"['’]s?$", "", word)


def _capitalised(word: str) -> bool:
    return len(word) >= MIN_LETTERS and word[0].isupper() and word[1:].islower()


def question_names(question: str) -> list[tuple[str, ...]]:
    """Runs of capitalised words in ``question`` that do not start one of its sentences,
    without connectors at their ends (none for a question typed in Title Case: a
    capitalised "Is" or "The" says its capitals mark no names)."""
    runs: list[list[str]] = []
    current: list[str] = []
    pending: list[str] = []  # connectors seen since the last name word
    previous_end = 0
    for i, m in enumerate(_WORD.finditer(question)):
        word = _strip_possessive(m.group())
        gap = question[previous_end : m.start()]
        previous_end = m.end()
        starts_sentence = i == 0 or bool(SENTENCE_END.search(gap))
        if _capitalised(word) and not starts_sentence:
            if word.lower() in STOPWORDS:
                return []  # Title Case
            if current and _JOINED.fullmatch(gap):
                current.extend(pending)
                current.append(word)
            else:
                if current:
                    runs.append(current)
                current = [word]
            pending = []
            continue
        if current and word.lower() in CONNECTORS and word.islower() and _JOINED.fullmatch(gap) and not pending:
            pending = [word]
            continue
        if current:
            runs.append(current)
        current, pending = [], []
    if current:
        runs.append(current)
    return [tuple(run) for run in runs]


def unmentioned(question: str, mentioned: Callable[[str], bool]) -> list[str]:
    """The names of ``question`` (:func:`question_names`) none of whose words the
    collection uses, by ``mentioned(word)`` (a lower-case word: is it used)."""
    out = []
    for run in question_names(question):
        # Words as BM25 cuts them: "O'Neill" is "neill" there.
        words = [p for w in run for p in _PART.findall(w.lower()) if p not in STOPWORDS and p not in CONNECTORS]
        if words and not any(mentioned(w) for w in words):
            out.append(" ".join(run))
    return list(dict.fromkeys(out))
