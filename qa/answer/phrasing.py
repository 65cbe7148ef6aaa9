"""The question inside a reader's request: "Can you tell me who runs CECOT?" asks "who runs CECOT?".

Readers wrap questions in the words they would say to a person: "can you tell me", "do you
know", "I'd like to know", "according to the articles", "please", "hi,", "thanks", and end
them with "??".  Those words ask nothing of the articles, yet every signal the answer stage
reads weakens: BM25 and the dense vectors are diluted, the share of question words a
sentence covers falls, and the reader (trained on SQuAD's bare questions) scores the same
sentence lower.  With such a wrapper on each of the seeds' calibration questions, 0.891 of
the answerable ones were answered instead of 0.957, and a fifth fewer plainly (sure coverage
0.609 instead of 0.783), with much the same quotes on top (`python benchmarks/phrasing.py`).

:func:`strip_framing` takes such words off the start and the end of a question, and only
those: a wrapper is removed only when a question of at least :data:`MIN_WORDS` word is left,
and "Can US citizens be deported?" or "Do prisoners get food?" are questions, not wrappers
("can/could/would/will you" is framing only before "tell/show/explain/let/remind … me", "do
you/anyone" only before "know").

Readers also ask in the imperative: "Name the university where Leti Volpp teaches", "Give me
the number of guards at CECOT", "Find the capacity of CECOT".  The reader was trained on
questions, and the answer-kind features look for "how many", "who", "when": the same request
as a question is read better.  :func:`as_question` asks such a request as the question it is
("Which university where Leti Volpp teaches?", "How many guards at CECOT?", "What is the
capacity of CECOT?"), after the wrapper is off (:func:`asked`); anything else is left alone.
These are fixed patterns over the reader's words, not generated text, and the answer shows
the question as typed.
"""

from __future__ import annotations

import re

# At least this many words must be left for a wrapper to come off.
MIN_WORDS = 1

_ME = r"(?:me|us)"
_PLEASE = r"(?:please|pls|plz|kindly)"
# "according to the articles, …": the collection itself, named as readers name it.
_SOURCES = r"(?:the|these|this|those|your|my)\s+(?:articles?|documents?|docs|texts?|sources?|stories|story|reports?|news|files?|collection)"
# Each is a whole wrapper at the start, with the space or punctuation after it.
_LEADING = [
    r"(?:hi|hey|hello|ok|okay|so|well|um+|uh+|yo|quick question|question|q)\s*[,:!.–—]+(?=\s)",
    r"(?:hi|hey|hello)\b(?:\s+there)?",
    _PLEASE + r"\b[,]?",
    r"(?:can|could|would|will)\s+(?:you|u)\s+(?:" + _PLEASE + r"\s+)?"
    r"(?:tell|show|explain(?:\s+to)?|let|remind)\s+" + _ME + r"(?:\s+know)?(?:\s+about)?\b",
    r"(?:do|does)\s+(?:you|u|anyone|anybody)\s+(?:happen\s+to\s+)?know(?:\s+(?:if|whether))?\b",
    r"(?:any|do\s+you\s+have\s+(?:any|an))\s+idea\b(?:\s+(?:if|whether))?\b",
    r"(?:i|we)(?:\s+would|'d|’d)\s+(?:like|love)\s+to\s+(?:know|find\s+out|learn)(?:\s+about)?\b",
    r"(?:i|we)\s+(?:want|need|wanna)(?:\s+to)?\s+(?:know|find\s+out|learn)(?:\s+about)?\b",
    r"(?:i|we)(?:\s+am|'m|’m|\s+are|'re|’re)\s+(?:wondering|curious)(?:\s+(?:about|if|whether))?\b",
    r"i\s+(?:wonder|was\s+wondering)(?:\s+(?:if|whether))?\b",
    r"(?:just\s+)?(?:wondering|curious)(?:\s+(?:if|whether))?\b",
    r"(?:can|could|may)\s+i\s+ask(?:\s+(?:if|whether))?\b",
    r"(?:according\s+to|based\s+on)\s+" + _SOURCES + r"\b",
    r"(?:from|in)\s+" + _SOURCES + r"\s*[,:]",  # "In the articles, …" (not "In the news today …")
    r"is\s+it\s+true\s+that\b",
    r"what\s+(?:do|can)\s+you\s+(?:know|tell\s+me)\s+about\b",
    r"(?:tell|show|remind)\s+" + _ME + r"(?:\s+about)?\b",
    r"explain(?:\s+to\s+" + _ME + r")?\b",
]
_LEADING_RE = re.compile(r"^\s*(?:" + "|".join(_LEADING) + r")\s*[,:]?\s*", re.I)
_TRAILING_RE = re.compile(
    r"\s*[,.;!?]+\s*\b(?:"
    + _PLEASE
    + r"|thanks(?:\s+(?:a\s+lot|in\s+advance))?|thank\s+(?:you|u)|thx|ty|cheers)\b[\s.!?]*$"
    # "…, according to the articles?" (a comma or not: these words never ask anything)
    + r"|[\s,]+(?:according\s+to|based\s+on)\s+"
    + _SOURCES
    + r"\b[\s.!?]*$",
    re.I,
)
_WORD = re.compile(r"\w+")
# "…??", "…?!": one question mark ("Airplane!?" keeps the title's "!").
_MARKS_RE = re.compile(r"\s*\?[?!]+$")


# A request for a thing, as readers type it: the verb (and "me"), then "the …" (or "all the …").
_REQUEST_VERB = (
    r"(?:(?:give|get|find|show|tell|provide|bring)(?:\s+" + _ME + r")?|name|list|identify|state|mention|specify"
    r"|describe|summari[sz]e|outline)"
)
_REQUEST_RE = re.compile(r"^(?:(" + _REQUEST_VERB + r")\s+)?(?:all\s+(?:of\s+)?)?(\w.*)$", re.I | re.S)
_COUNT_RE = re.compile(r"^the\s+(?:total\s+)?(number|count|amount|quantity|sum)\s+of\s+(\w.*)$", re.I | re.S)
_WH = r"(?:what|which|who|whom|whose|when|where|why|how)\b"
# A question word anywhere: "the treaty was signed when?" is a question already.
_WH_RE = re.compile(r"\b" + _WH, re.I)
# "Find out where …", "Describe how …": the question after the verb.
_VERB_WH_RE = re.compile(
    r"^(?:(?:find|figure)\s+out|describe|summari[sz]e|outline|name|list|identify|state|specify)\s+(?=" + _WH + ")",
    re.I,
)
# What a request's object never starts with ("name of the report …" is no request).
_NOT_THINGS = {"of", "for", "in", "on", "at", "to", "from", "by", "with", "is", "was", "are", "were", "and", "or"}
_ARTICLES = {"the", "a", "an", "some", "any", "another"}
# The verbs that pick things out ("name the …"): "which …?"; the others ask "what is …?".
_PICKING = {"name", "list", "identify", "mention", "specify"}


def as_question(text: str) -> str:
    """A request for something asked as the question it is ("Give me the number of guards at
    CECOT." asks "How many guards at CECOT?"); ``text`` as it is otherwise."""
    m = _VERB_WH_RE.match(text)
    if m:
        rest = text[m.end() :]
        return rest[:1].upper() + rest[1:]
    m = _REQUEST_RE.match(text)
    if not m:
        return text
    said = (m.group(1) or "").lower().split()  # "give me" → ["give", "me"]
    verb, to_me = (said[0] if said else ""), len(said) > 1
    body = m.group(2).strip().rstrip(" .!?;:")
    definite = body[:4].lower() == "the "
    first = body.split()[0].lower()
    if not verb:
        # A bare "the …" left by "can you tell me the …": a request when it asks nothing else.
        # Typed so ("The Treaty of Paris", "The study of diseases is called?") it is left.
        if not (definite and text[:4] == "the ") or _WH_RE.search(text):
            return text
    elif first in _NOT_THINGS or not (definite or verb in _PICKING or to_me):
        return text  # "name of the report …"; "find", "state" before anything but "the …"
    if len(_WORD.findall(body)) < 2:
        return text
    count = _COUNT_RE.match(body)
    if count:
        much = count.group(1).lower() in ("amount", "quantity", "sum")
        return f"How {'much' if much else 'many'} {count.group(2)}?"
    if verb in _PICKING:
        # "Name two projects …", "List the abuses …": which ones.
        rest = body.split(None, 1)[1] if first in _ARTICLES else body
        return "Which " + ("other " + rest if first == "another" else rest) + "?"
    return f"What is {body}?"


# What a question starts with: a question word, or the verb of a yes/no question.
_QUESTION_START_RE = re.compile(
    r"^(?:" + _WH + r"|(?:is|are|was|were|do|does|did|can|could|will|would|should|shall|may|might|must"
    r"|has|have|had|isn't|aren't|wasn't|weren't|don't|doesn't|didn't|can't|won't)\b)",
    re.I,
)
# "… signed when", "… is where": the question word last.
_WH_LAST_RE = re.compile(r"\b" + _WH + r"[\s.]*$", re.I)


def with_question_mark(text: str) -> str:
    """A question typed without its question mark, as readers type them in a chat box ("how
    old is bukele", "Who runs CECOT."), with one; anything else as it is.  The reader learnt
    from SQuAD's questions, all of which end in "?": read without it, the same sentence
    looks less like an answer (`python benchmarks/phrasing.py`)."""
    stripped = text.rstrip()
    if not stripped or stripped[-1] in "?!" or not (_QUESTION_START_RE.match(stripped) or _WH_LAST_RE.search(stripped)):
        return text
    return stripped.rstrip(" .") + "?"


def asked(question: str) -> str:
    """The question a reader's request asks: the wrapper off (:func:`strip_framing`), a
    request asked as a question (:func:`as_question`), and a question with its question
    mark (:func:`with_question_mark`)."""
    return with_question_mark(as_question(strip_framing(question)))


def strip_framing(question: str) -> str:
    """``question`` without the conversational wrapper around it (as typed when none, or when
    too little would be left)."""
    text = _MARKS_RE.sub("?", question)
    while True:
        m = _TRAILING_RE.search(text)
        if m and m.start() > 0:
            inner = text[: m.start()].rstrip(" ,;")
            if "?" in m.group() and not inner.endswith("?"):
                inner += "?"  # "What is the plan, please?"
            if len(_WORD.findall(inner)) >= MIN_WORDS:
                text = inner
                continue
        m = _LEADING_RE.match(text)
        if m and m.end() < len(text):
            rest = text[m.end() :]
            if len(_WORD.findall(rest)) >= MIN_WORDS:
                text = rest
                continue
        return text
