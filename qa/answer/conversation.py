"""Follow-up questions: reading a question in the light of the previous turn.

A question such as "Why did he do that?", "And in 2019?" or "What about Guantanamo?" leans
on the turn before it.  :func:`resolve` decides, by general rules only, whether it does,
and if so writes the question the engine is asked:

* **Pronouns** with no name of their own in the question (*he, she, him, his, her, they,
  them, their, it, its*) and **demonstratives** used alone (*do that*, *about this*, *there*,
  *then*) make a follow-up.  *He/she/him/his/her* become the person named in the previous
  question (or, when that question asked *who*, in its answer) when there is exactly one.
* **Fragments** (a question of at most three words, or one starting with *and*, *but*,
  *also*, *what about*, *how about*) are completed from the previous question: a name,
  year or number of the same kind in the previous question is replaced by the new one
  ("What about Guantanamo?" after "How many people can CECOT hold?" → "How many people can
  Guantanamo hold?"); otherwise the fragment is added to it.  A question word alone
  ("Why?", "When?") takes the place of the previous question's question word.
* Otherwise, for a follow-up, the previous question's key terms (names, numbers, content
  words the new question lacks) are added after the question, so that retrieval finds the
  same subject.

A question that needs none of this is asked as typed.  The result says how the question
was read (:attr:`Reading.note`), so the reader of the answer can see it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .phrasing import strip_framing

# Words that carry no subject (question words, auxiliaries, pronouns, prepositions...).
STOPWORDS = frozenset(
    """a an the and or but if so also then than that this these those there here of to in on at by for from with
    about as into onto over under after before between during without within against among through up down out off
    is are was were be been being am do does did doing done have has had having can could will would shall should
    may might must i me my we our us you your he him his she her hers they them their theirs it its who whom whose
    what which when where why how much many any some all each every no not nor only own same such too very just
    one ones other others more most less least again further once say says said tell told according reported
    happen happened happens go going get got make made
    """.split()
)
QUESTION_WORDS = (
    "how many",
    "how much",
    "how long",
    "how old",
    "how often",
    "what",
    "which",
    "who",
    "whom",
    "whose",
    "when",
    "where",
    "why",
    "how",
)
_WH_ALONE = re.compile(
    r"^\s*(?:and\s+|but\s+|so\s+)?(why|when|where|how|who|what|which)(\s+not|\s+so)?\s*\??\s*$", re.I
)
_FRAGMENT_START = re.compile(r"^\s*(?:and|but|also|so|plus|what about|how about|and what about|what of)\b[\s,]*", re.I)
_PERSONAL = {"he": "subj", "she": "subj", "him": "obj", "his": "poss", "her": "poss", "hers": "poss"}
_NEUTER = frozenset({"they", "them", "their", "theirs", "it", "its"})
_DEMONSTRATIVE = frozenset({"that", "this", "these", "those", "there", "then"})
# A demonstrative stands alone (refers back) after these words or at the start or end.
_BEFORE_DEMONSTRATIVE = frozenset(
    """do did does done doing about of for with is was are were in on from by after before like said says say mean means
    meant cause caused explain explains why happen happened against support supported oppose opposed""".split()
)
_WORD = re.compile(r"[A-Za-z0-9][\w'’.-]*[A-Za-z0-9%]|[A-Za-z0-9]")
_NAME = re.compile(
    r"\b(?:[A-Z][\w’'.-]*[A-Za-z]|[A-Z]{2,})(?:\s+(?:(?:de|del|la|of|the|van|von|al)\s+)?(?:[A-Z][\w’'.-]*[A-Za-z]|[A-Z]{2,}))*"
)
_YEAR = re.compile(r"\b(?:1[89]|20)\d\d\b")
_NUMBER = re.compile(r"\b\d[\d,.]*\b")


@dataclass(frozen=True)
class Reading:
    """How one question was read: ``asked`` is what the engine is given."""

    question: str  # as typed
    asked: str  # as asked (== question when it stands alone)
    followup: bool
    rule: str = ""  # "pronoun", "connective", "fragment", "question word" or "" (stands alone)
    previous: str = ""  # the previous question it was read against

    @property
    def note(self) -> str:
        """One line for the reader: how the question was read ("" when as typed)."""
        if not self.followup:
            return ""
        return f"Read as a follow-up to “{self.previous}”: “{self.asked}”"


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def _is_question_word_start(name: str) -> bool:
    return name.split()[0].lower() in {w.split()[0] for w in QUESTION_WORDS} | STOPWORDS


def names(text: str) -> list[str]:
    """Capitalised names in ``text`` (a leading question or function word is not a name)."""
    out = []
    for m in _NAME.finditer(text):
        name = m.group()
        parts = name.split()
        while parts and parts[0].lower() in STOPWORDS | {w.split()[0] for w in QUESTION_WORDS}:
            parts = parts[1:]
        while parts and parts[-1].lower() in STOPWORDS:
            parts = parts[:-1]
        if parts:
            out.append(re.sub(r"[’']s?$", "", " ".join(parts).rstrip(".")))
    return list(dict.fromkeys(out))


def key_terms(text: str) -> list[str]:
    """The subject of a question: its names, numbers and content words, in order."""
    found = []
    for n in names(text):
        found.append(n)
    taken = {w.lower() for n in found for w in n.split()}
    for w in words(text):
        lw = w.lower()
        if lw in STOPWORDS or lw in taken or len(w) < 3 and not w.isdigit():
            continue
        taken.add(lw)
        found.append(w)
    return found


def _content(text: str) -> list[str]:
    return [w for w in words(text) if w.lower() not in STOPWORDS]


def _refers_inside(text: str, pronoun: str, before: list[str]) -> bool:
    """Whether ``pronoun`` most likely means something named earlier in the question itself:
    a name before he/she/his ("Did Bukele say his …"; not before him/them, which cannot mean
    their clause's subject), or two or more content words other than names before any
    pronoun ("did one ex-prisoner say were packed into his cell")."""
    if pronoun in _DEMONSTRATIVE or pronoun in ("him", "them"):
        return False  # him/them cannot mean their own clause's subject (that is himself/themselves)
    own = {w.lower() for n in names(" ".join(before_text(text, len(before)))) for w in n.split()}
    if pronoun in _PERSONAL and _PERSONAL[pronoun] != "obj" and own:
        return True
    # A name counts for it/they (things and groups), not for he/she (another person may be meant).
    content = [w for w in before if w not in STOPWORDS and (pronoun in _NEUTER or w not in own)]
    return len(content) >= 2


def before_text(text: str, n: int) -> list[str]:
    return re.findall(r"[A-Za-z’']+", text)[:n]


def _pronouns(text: str) -> list[tuple[str, list[str]]]:
    """Pronouns and stand-alone demonstratives in ``text``, each with the words before it."""
    toks = [w.lower() for w in re.findall(r"[A-Za-z’']+", text)]
    found = []
    for i, t in enumerate(toks):
        if t in _PERSONAL or t in _NEUTER:
            found.append((t, toks[:i]))
        elif t in _DEMONSTRATIVE:
            prev = toks[i - 1] if i else ""
            # this/these/those point back wherever they stand; "that" only where it cannot
            # start a clause ("the deal that …"): first, last, or after a verb or preposition.
            alone = t in ("this", "these", "those") or i == len(toks) - 1 or i == 0 or prev in _BEFORE_DEMONSTRATIVE
            if t in ("there", "then"):
                nxt = toks[i + 1] if i + 1 < len(toks) else ""
                # "is there", "there were": existential, not a reference
                alone = not ({prev, nxt} & {"is", "are", "was", "were", "been", "be", "isn't", "aren't"})
            if alone:
                found.append((t, toks[:i]))
    return found


def _person(previous: str, previous_answer: str = "") -> str:
    """The one person a he/she/him/his/her most likely means, or ""."""
    if previous_answer and re.match(
        r"^\s*(?:(?:on|in|for|from|with|by|under)\s+)?(who|whom|whose|which)\b", previous, re.I
    ):
        asked = {w.lower() for w in words(previous)}
        found = [
            n for n in names(previous_answer) if not all(w.lower() in asked for w in n.split()) and not n.isupper()
        ]
        if found:
            return found[0]  # the first person the answer names that the question did not
    found = [n for n in names(previous) if not n.isupper()]  # acronyms are organisations, places
    return found[0] if found else ""  # the first name is most often the subject


def _replace_personal(question: str, person: str) -> str:
    """he/she/him/his/her that point outside the question replaced by ``person``."""

    def sub(m: re.Match) -> str:
        word = m.group()
        before = re.findall(r"[A-Za-z’']+", question[: m.start()].lower())
        if _refers_inside(question, word.lower(), before):
            return word
        return f"{person}’s" if _PERSONAL[word.lower()] == "poss" else person

    return re.sub(r"\b(?:he|she|him|his|hers|her)\b", sub, question, flags=re.I)


def _strip_q(text: str) -> str:
    return text.strip().rstrip("?.! ").strip()


def _wh_phrase(text: str) -> re.Match | None:
    """The leading question phrase of ``text`` ("How many people", "Which country", "Why")."""
    return re.match(
        r"^\s*(?:(?:on|in|at|for|from|to|under|by|with|since|until)\s+)?(?:(?:how\s+(?:many|much|long|old|often)|which|what|whose)(?:\s+(?!is\b|are\b|was\b|were\b|do\b|does\b|did\b|can\b|could\b|will\b|would\b|has\b|have\b|had\b)[a-z]+)?|who|whom|when|where|why|how)\b",
        text,
        re.I,
    )


def _same_kind(new: str, old: str) -> bool:
    if _YEAR.fullmatch(new):
        return bool(_YEAR.fullmatch(old))
    if _NUMBER.fullmatch(new):
        return bool(_NUMBER.fullmatch(old)) and not _YEAR.fullmatch(old)
    return not _NUMBER.fullmatch(old)


def _complete_fragment(fragment: str, previous: str) -> str:
    """A fragment ("and in 2019", "what about Guantanamo") completed from ``previous``."""
    rest = _strip_q(_FRAGMENT_START.sub("", fragment))
    if not rest:
        return previous
    # Replace a name, year or number of the previous question by one of the same kind.
    new_items = (
        _YEAR.findall(rest)
        or _NUMBER.findall(rest)
        or names(rest)
        or (
            [rest]
            if len(_content(rest)) == 1 and not re.search(r"\b(in|on|at|during|since|before|after)\b", rest, re.I)
            else []
        )
    )
    if len(new_items) == 1:
        new = new_items[0]
        olds = [
            o for o in (_YEAR.findall(previous) or _NUMBER.findall(previous) or names(previous)) if _same_kind(new, o)
        ]
        if len(olds) == 1 and olds[0].lower() != new.lower():
            return previous.replace(olds[0], new, 1)
    return f"{_strip_q(previous)} {rest}?"


def is_followup(question: str) -> str:
    """The rule that makes ``question`` lean on the turn before it ("" when it stands alone)."""
    text = question.strip()
    if _WH_ALONE.match(text):
        return "question word"
    rest = _FRAGMENT_START.sub("", text) if _FRAGMENT_START.match(text) else text
    if rest is not text and _wh_phrase(rest) and len(words(rest)) >= 3:
        return "connective"  # "And how many were locked up?": a whole question that goes on from the last
    if rest is not text or (len(words(text)) <= 3 and not _wh_phrase(text)):
        return "fragment"
    outside = [p for p, before in _pronouns(text) if not _refers_inside(text, p, before)]
    return "pronoun" if outside else ""


def resolve(question: str, previous: str | None = None, previous_answer: str = "") -> Reading:
    """Read ``question`` against the previous question (and the previous answer's phrase).

    ``previous`` should be the previous turn *as asked* (its own :attr:`Reading.asked`), so
    that a chain of follow-ups keeps its subject."""
    question = " ".join(str(question).split())
    previous = " ".join(str(previous or "").split())
    if not previous or not question:
        return Reading(question, question, False)
    typed, question = question, strip_framing(question)  # "can you tell me why?" leans like "why?"
    rule = is_followup(question)
    if not rule:
        return Reading(typed, typed, False)
    if rule == "question word":
        wh = _WH_ALONE.match(question).group(1)
        m = _wh_phrase(previous)
        body = previous[m.end() :] if m else " " + previous
        asked = f"{wh.capitalize()}{body}"
        asked = asked if asked.rstrip().endswith("?") else _strip_q(asked) + "?"
        return Reading(typed, asked, True, rule, previous)
    if rule == "fragment":
        return Reading(typed, _complete_fragment(question, previous), True, rule, previous)
    asked = _FRAGMENT_START.sub("", question) if rule == "connective" else question
    asked = asked[:1].upper() + asked[1:]
    person = _person(previous, previous_answer)
    if person and re.search(r"\b(?:he|she|him|his|her|hers)\b", asked, re.I):
        asked = _replace_personal(asked, person)
    have = {re.sub(r"[’']s$", "", w.lower()) for w in words(asked)}
    carried = [t for t in key_terms(previous) if not all(w.lower() in have for w in t.split())]
    # "it", "that", "this" most often mean what the previous answer was (a short phrase).
    things = {p for p, _ in _pronouns(asked)} & {"it", "its", "that", "this"}
    if things and previous_answer and len(words(previous_answer)) <= 4 and previous_answer.lower() not in asked.lower():
        carried.insert(0, " ".join(previous_answer.split()))
    if carried:
        asked = f"{_strip_q(asked)} ({' '.join(carried)})?"
    return Reading(typed, asked, True, rule, previous)
