"""General rules for text that is never worth quoting.

Nothing here lists the seed articles' strings: the rules describe *kinds* of
boilerplate (link-only lines, headings, bylines, short lines without a sentence,
calls to comment / subscribe / donate / share, cookie and copyright notices,
repeated paragraphs) so they hold for any web article, whatever its format: the
HTML extractor (:mod:`qa.ingest.extract`) writes headings as Markdown headings and one
paragraph per block, so a web page meets the same rules as a text file.
"""

from __future__ import annotations

import re
import unicodedata

# A paragraph that is only a link or an image, in Markdown or bare.
_LINK_ONLY = re.compile(
    r"^\s*(?:!?\[[^\]]*\]\([^)]*\)|<?https?://\S+>?|www\.\S+)(?:\s*(?:!?\[[^\]]*\]\([^)]*\)|<?https?://\S+>?))*\s*$",
    re.I,
)

# Calls to action aimed at the reader: comment, share, subscribe, donate, visit.
_CALL_TO_ACTION = re.compile(
    r"""\b(?:
        let\ us\ know | leave\ a\ (?:reply|comment) | (?:your|hear\ your)\ thoughts
      | comment\ below | in\ the\ comments | share\ (?:this|it|your)
      | subscribe | sign\ up | follow\ us
      | donat(?:e|ion) | chip\ in | support\ (?:us|our\ work|independent)
      | readers\ like\ you | you\ can\ help
      | click\ here | read\ more | check\ out | be\ sure\ to
      | originally\ (?:published|appeared) | all\ rights\ reserved
    )\b""",
    re.I | re.X,
)

# Site furniture rather than the article: cookie banners, copyright lines, skip links.
_NOTICE = re.compile(
    r"""^\W*(?:©|\(c\)\s*\d{4}|copyright\s*(?:©|\(c\)|\d{4}))
      | \bwe\ use\ cookies\b | \baccept\ (?:all\ )?cookies\b | \bcookie\ (?:settings|preferences)\b
      | ^\W*skip\ to\ (?:main\ )?content\b
      | ^\W*advertisement\W*$
    """,
    re.I | re.X,
)

# A Markdown heading (HTML headings are extracted as these too).
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+\S")

# "By Jane Doe", "Written by ... | 3 May 2024": a byline, not a sentence.
_BYLINE = re.compile(r"^\W*(?i:(?:written|posted|reported|words|photos?|story)\s+)?(?i:by)\s+[A-Z]", re.U)

_WORD = re.compile(r"[^\W\d_]+", re.U)
_SENTENCE_END = (".", "!", "?", "”", '"')


def normalise(text: str) -> str:
    """Lower-case, accents folded, punctuation and spacing folded: for comparing text."""
    text = unicodedata.normalize("NFKD", text).lower()
    return " ".join(_WORD.findall(text))


def paragraph_skip_reason(text: str) -> str:
    """Why a whole paragraph is boilerplate, or "" when it may hold content."""
    stripped = text.strip()
    if not stripped:
        return "empty"
    if _LINK_ONLY.match(stripped):
        return "link only"
    if _HEADING.match(stripped) and "\n" not in stripped:
        return "heading"
    words = _WORD.findall(stripped)
    if len(words) <= 4 and not stripped.endswith(_SENTENCE_END):
        return "short line without a sentence"
    if len(words) <= 12 and _BYLINE.match(stripped) and not stripped.endswith(_SENTENCE_END):
        return "byline"
    if _NOTICE.search(stripped):
        return "site notice"
    return ""


def sentence_skip_reason(text: str) -> str:
    """Why a sentence should never be quoted as an answer, or ""."""
    stripped = text.strip()
    if _LINK_ONLY.match(stripped):
        return "link only"
    if len(_WORD.findall(stripped)) < 3:
        return "too short"
    if _CALL_TO_ACTION.search(stripped):
        return "call to action"
    if _NOTICE.search(stripped):
        return "site notice"
    # A question never answers one; a rhetorical question is an invitation to comment.
    if stripped.rstrip("”\"’' )").endswith("?"):
        return "question"
    return ""


def word_set(text: str) -> frozenset[str]:
    """The normalised words of ``text`` (what :func:`near_duplicate` compares)."""
    return frozenset(normalise(text).split())


def near_duplicate(a: str, b: str, threshold: float = 0.8) -> bool:
    """True when two passages share most of their words (same fact, repeated)."""
    return near_duplicate_words(word_set(a), word_set(b), threshold)


def near_duplicate_words(wa: frozenset[str], wb: frozenset[str], threshold: float = 0.8) -> bool:
    """:func:`near_duplicate` on precomputed :func:`word_set` s."""
    if not wa or not wb:
        return False
    return len(wa & wb) / min(len(wa), len(wb)) >= threshold and len(wa & wb) / max(len(wa), len(wb)) >= 0.6
