"""Typos in a question, corrected against the collection's own words.

A reader who types "Which Berkley law profesor is quoted?" should get the answer that
"Which Berkeley law professor is quoted?" gets: BM25 finds nothing for a misspelt word,
and the answer stage counts it as a question word the articles never use, so it leans to
"the articles don't say".  A question word is replaced only when all of these hold:

1. the collection never uses it (its BM25 stem is not in the sentence vocabulary);
2. it is not an English word as far as the bundled word-piece vocabulary (all-MiniLM-L6-v2's,
   ~30k entries) can tell: neither its stem, nor that of the word left when a common ending
   ("-s", "-er", "-ing", …) or beginning ("re-", "un-", …) is taken off, is the stem of a
   whole word there.  "guards", "lender" or "Venezuelans" asked of articles that never use
   them are real words, and such a question may simply not be answered;
3. it has at least :data:`MIN_LETTERS` letters (short words have too many neighbours), all
   of them ASCII;
4. one edit that keeps its first letter (a letter deleted, inserted or replaced, or two
   neighbours swapped, the first two included) turns it into a word whose stem the
   collection uses, has at least :data:`MIN_LETTERS` letters itself, and is either a word
   the word-piece vocabulary knows whole or, failing the English test above, a stem that at
   least :data:`MIN_SENTENCES` sentences hold (the collection's names: "Bukele").  Of
   several, a word known whole wins, then the stem held by the most sentences, written as a
   few sentences holding that stem write it.

Numbers are searched as articles write them, too: "81k" as "81,000", "$5m" as "$5 million",
"2bn" as "2 billion", "81000" as "81,000" (:meth:`Speller.numbers`).  BM25 splits "81,000"
into "81" and "000" and finds nothing for "81k"; the dense vectors and the reader also read
the written form better ("Who imprisoned over 75k people?" led with a neighbouring sentence,
"… over 75,000 people?" with the one that says so).  A number is rewritten only when the
collection never uses it as typed, and never a number of four digits or fewer (a year), nor
"5m" or "3b" without a "$" (metres, a grade).

Chat shorthand is searched written out: "ppl" as "people", "govt" as "government", "yrs" as
"years", "w/" as "with", "u" as "you" (:data:`SHORTHAND`, :meth:`Speller.shorthand`).  BM25
finds nothing for "ppl" in articles that write "people", and the reader, trained on written
questions, reads the written-out word better.  A shorthand the collection itself uses is left
as typed (a tech collection that writes "info" or "admin"), and so is one in capitals in a
question that is not all capitals (an acronym: "ESP", "AMT"); "u", "r" and "bc" only in lower
case ("BC" is an era), and "u" and "r" only next to a word that "you" / "are" goes with ("can
u tell", "why r ppl"; not "wash u", "system r"); a word in quotation marks never (the Irish
"r").  Not "y" for "why": it is the "and" of Spanish names ("Ramón y Cajal").

Nothing is generated: the replacement is that edited spelling, and only the question is
changed — the quotes stay verbatim.  The answer shows what was searched for.
"""

from __future__ import annotations

import bisect
import json
import re
import string
import unicodedata
from decimal import Decimal
from functools import cached_property, lru_cache
from itertools import islice, takewhile
from pathlib import Path
from typing import Callable

import numpy as np

from .reader import READER_DIR

MIN_LETTERS = 5
MAX_ENDING = 3  # letters in which a mentioned form may differ at its end (Speller.mentioned)
MIN_SENTENCES = 2
SAMPLE = 20  # sentences read to see how the collection spells a stem
_ENDINGS = ("s", "es", "ed", "d", "er", "ers", "ing", "ings", "ly", "ment", "ments", "ness", "ion", "ions", "al")
_BEGINNINGS = ("re", "un", "in", "dis", "pre", "over", "mis", "non", "co")
_WORD = re.compile(r"(?<![^\W\d_])[A-Za-z]+(?![^\W\d_])")  # whole words of ASCII letters only
_LETTERS = string.ascii_lowercase
# "81k", "2.5K", "$5m", "5mn", "2bn", "$3b": a number and its scale, written together.
_SHORT_NUMBER = re.compile(r"(?<![\w.,])(\$?)(\d+(?:\.\d+)?)(k|mn|mil|m|bn|b)(?!\w)", re.I)
# "81000": five digits or more, no separators (four could be a year).
_LONG_NUMBER = re.compile(r"(?<![\w.,])\d{5,}(?![\w]|[.,]\d)")
_SCALES = {"k": "thousand", "mn": "million", "mil": "million", "m": "million", "bn": "billion", "b": "billion"}
# Chat shorthand with one meaning in a question (not "gov": government or governor; not
# "pres": president or press), and the word written out.
SHORTHAND = {
    "abt": "about",
    "admin": "administration",
    "approx": "approximately",
    "amt": "amount",
    "avg": "average",
    "b/c": "because",
    "b4": "before",
    "bc": "because",
    "cuz": "because",
    "dept": "department",
    "depts": "departments",
    "esp": "especially",
    "gov't": "government",
    "gov’t": "government",
    "govt": "government",
    "govts": "governments",
    "info": "information",
    "intl": "international",
    "natl": "national",
    "num": "number",
    "org": "organization",
    "orgs": "organizations",
    "ppl": "people",
    "prez": "president",
    "r": "are",
    "tho": "though",
    "thru": "through",
    "u": "you",
    "w/": "with",
    "w/o": "without",
    "yr": "year",
    "yrs": "years",
}
_LOWER_ONLY = frozenset({"bc", "r", "u"})  # "BC", "R", "U-2": other things
# "u" and "r" are also names typed in lower case ("wash u", "system r"): they are written out
# only next to a word that "you" / "are" goes with ("can u tell", "why r ppl").
_NEXT_TO = {
    "u": (
        frozenset(
            "can could would will should shall might may must do does did are r were have has had if when thank tell let help".split()
        ),
        frozenset("know think tell have need want see mean recall remember".split()),
    ),
    "r": (
        frozenset("why what who where how when which there they we you u these those ppl people many much".split()),
        frozenset("u you they we there these those ppl people the".split()),
    ),
}
_TOKEN = re.compile(r"[\w'’/]+")
# Longest first, so that "w/o" is not read as "w/" + "o"; not inside a word, an acronym
# ("u.s.") or a path, not before an apostrophe ("u's"), and not in quotation marks (a word
# mentioned: the Irish "r").  The full stop of "dept." in mid-sentence goes with it.
_SHORTHAND = re.compile(
    r"(?<![\w.'’/&\"“‘-])(" + "|".join(re.escape(k) for k in sorted(SHORTHAND, key=len, reverse=True)) + r")"
    r"(?![\w'’/&\"”]|\.[\w'’\"”])(\.(?=\s+[a-z]))?",
    re.I,
)


@lru_cache(maxsize=2)
def known_words(tokenizer_file: str = str(READER_DIR / "tokenizer.json")) -> frozenset[str]:
    """The whole words of the bundled word-piece vocabulary (empty when it is missing)."""
    try:
        vocab = json.loads(Path(tokenizer_file).read_text(encoding="utf-8"))["model"]["vocab"]
    except (OSError, ValueError, KeyError):
        return frozenset()
    return frozenset(w for w in vocab if w.isalpha() and w.isascii())


def in_case_of(typed: str, word: str) -> str:
    """``word`` in the case ``typed`` was written in: all capitals (two letters or more), a
    capital first, or as it is."""
    if typed.isupper() and len(typed) > 1:
        return word.upper()
    return word[0].upper() + word[1:] if typed[0].isupper() else word


def edits(word: str) -> set[str]:
    """Every spelling one edit away from ``word`` (lower-case letters)."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    return (
        {a + b[1:] for a, b in splits if b}
        | {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
        | {a + c + b[1:] for a, b in splits if b for c in _LETTERS}
        | {a + c + b for a, b in splits for c in _LETTERS}
    ) - {word}


def _folded(text: str) -> str:
    """``text`` without its accents ("wöhler" → "wohler")."""
    if text.isascii():
        return text
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


class Speller:
    """Corrects a question's unknown words to spellings the collection uses."""

    def __init__(
        self,
        vocab: dict[str, int],
        frequency: np.ndarray,
        stemmer,
        known: frozenset[str],
        sample: Callable[[int], list[str]] | None = None,
    ) -> None:
        self.vocab, self.frequency, self.stemmer, self.known = vocab, frequency, stemmer, known
        self.english = frozenset(stemmer.stemWords(sorted(known)))  # stems of the known words
        # A few sentences that hold a stem (by its vocabulary id): how the collection spells it.
        self.sample = sample

    def english_word(self, word: str) -> bool:
        """``word`` (lower case) is an English word as far as the known words tell: its stem,
        or that of the word without a common ending or beginning, is one of theirs."""
        stem = self.stemmer.stemWord
        if stem(word) in self.english:
            return True
        for end in _ENDINGS:
            base = word[: -len(end)]
            if (
                word.endswith(end)
                and len(base) >= 3
                and (stem(base) in self.english or stem(base + "e") in self.english)
            ):
                return True
        return any(
            word.startswith(b) and len(word) - len(b) >= 4 and stem(word[len(b) :]) in self.english for b in _BEGINNINGS
        )

    @classmethod
    def for_index(cls, index) -> "Speller":
        """The speller of an index's sentence BM25 (stems and how many sentences hold each)."""
        from ..index.core import english_stemmer

        model = index.bm25_sentences
        indices, indptr = model.scores["indices"], model.scores["indptr"]

        def sample(term: int) -> list[str]:
            a = int(indptr[term])
            return index.texts(index.sentences, np.asarray(indices[a : min(a + SAMPLE, int(indptr[term + 1]))]))

        return cls(model.vocab_dict, np.diff(np.asarray(indptr)), english_stemmer(), known_words(), sample)

    def _written(self, stem: str) -> set[str]:
        """The words (lower case) of a few sentences holding ``stem``."""
        if self.sample is None:
            return set()
        return {w.lower() for text in self.sample(self.vocab[stem]) for w in _WORD.findall(text)}

    def _used(self, word: str) -> bool:
        return self.stemmer.stemWord(word) in self.vocab

    def mentioned(self, word: str) -> bool:
        """Whether the collection uses ``word`` (lower case) or a form of it that differs
        only in an ending of up to :data:`MAX_ENDING` letters ("venezuelans" where the
        articles write "Venezuela", "malaysia" where they write "Malaysian"), both stems
        at least :data:`MIN_LETTERS` long."""
        stem = self.stemmer.stemWord(word)
        if stem in self.vocab or _folded(stem) in self._folded_stems:  # "Wohler" for "Wöhler"
            return True
        if len(stem) < MIN_LETTERS:
            return False
        if any(stem[:n] in self.vocab for n in range(max(MIN_LETTERS, len(stem) - MAX_ENDING), len(stem))):
            return True
        stems = self._sorted_stems
        i = bisect.bisect_right(stems, stem)  # the stems that start with ``stem`` follow it
        longer = takewhile(lambda s: s.startswith(stem), islice(stems, i, i + 64))
        return any(len(s) - len(stem) <= MAX_ENDING for s in longer)

    @cached_property
    def _sorted_stems(self) -> list[str]:
        return sorted(self.vocab)

    @cached_property
    def _folded_stems(self) -> frozenset[str]:
        return frozenset(_folded(stem) for stem in self.vocab if not stem.isascii())

    def fix(self, word: str) -> str | None:
        """The spelling to search for instead of ``word`` (any case), or None to keep it."""
        low = word.lower()
        if len(low) < MIN_LETTERS or not self.known or not low.isascii() or self._used(low) or self.english_word(low):
            return None
        # Typing rarely gets the first letter wrong (swapping the first two aside).
        options = sorted(e for e in edits(low) if len(e) >= MIN_LETTERS and (e[0] == low[0] or e[:2] == low[1::-1]))
        found = [
            (int(self.frequency[self.vocab[stem]]), spelling in self.known, spelling, stem)
            for spelling, stem in zip(options, self.stemmer.stemWords(options))
            if stem in self.vocab
            # A word the vocabulary knows whole, or a name of the collection's own; not an
            # English-looking spelling no dictionary holds ("runly", "heree").
            and (
                spelling in self.known
                or (int(self.frequency[self.vocab[stem]]) >= MIN_SENTENCES and not self.english_word(spelling))
            )
        ]
        if not found:
            return None
        # A word the vocabulary knows whole before any other spelling ("beneficial", not
        # "benefital" for the more used stem "benefit"), then the most used stem; of that
        # stem's spellings, one the collection writes ("Bukele", not "Bukel" or "Bukelled",
        # which stem alike), then the alphabetically first.
        choice = min(found, key=lambda f: (not f[1], -f[0], f[2]))
        spellings = [f[2] for f in found if f[1] == choice[1] and f[3] == choice[3]]
        written = self._written(choice[3])
        best = min(spellings, key=lambda w: (w not in written, w))
        return in_case_of(word, best)

    def numbers(self, question: str) -> str:
        """``question`` with its numbers written as articles write them ("81k" → "81,000",
        "$5m" → "$5 million", "81000" → "81,000"), except those the collection uses as typed."""

        def short(m: re.Match) -> str:
            dollar, digits, unit = m.group(1), m.group(2), m.group(3).lower()
            if (unit in ("m", "b") and not dollar) or (digits + unit) in self.vocab:
                return m.group()
            value = Decimal(digits) * 1000
            if _SCALES[unit] == "thousand" and value == int(value):
                return f"{dollar}{int(value):,}"  # "81k" → "81,000", as articles write thousands
            return f"{dollar}{digits} {_SCALES[unit]}"

        def long(m: re.Match) -> str:
            return m.group() if m.group() in self.vocab else f"{int(m.group()):,}"

        return _LONG_NUMBER.sub(long, _SHORT_NUMBER.sub(short, question))

    def shorthand(self, question: str) -> str:
        """``question`` with its chat shorthand written out ("ppl" → "people"), except
        shorthand the collection uses as typed."""

        def out(m: re.Match) -> str:
            typed, low = m.group(1), m.group(1).lower()
            # In capitals it is an acronym ("ESP", "AMT"), unless the whole question is.
            shouted = typed.isupper() and len(typed) > 1
            if (low in _LOWER_ONLY and typed != low) or (shouted and not question.isupper()) or self._used(low):
                return m.group()
            if low in _NEXT_TO:
                before = [w.lower() for w in _TOKEN.findall(question[: m.start()])[-1:]]
                after = [w.lower() for w in _TOKEN.findall(question[m.end() :])[:1]]
                if not (set(before) & _NEXT_TO[low][0] or set(after) & _NEXT_TO[low][1]):
                    return m.group()
            return in_case_of(typed, SHORTHAND[low])

        return _SHORTHAND.sub(out, question)

    def correct(self, question: str) -> str:
        """``question`` with its misspelt words, shorthand numbers and chat shorthand
        replaced (the same string when none is)."""
        return _WORD.sub(lambda m: self.fix(m.group()) or m.group(), self.shorthand(self.numbers(question)))
