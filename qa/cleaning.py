"""General rules for text that is never worth quoting.

Nothing here lists the seed articles' strings: the rules describe *kinds* of
boilerplate (link-only lines, short lines without a sentence, calls to
comment / subscribe / donate / share, repeated paragraphs) so they hold for any
web article.
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

_WORD = re.compile(r"[^\W\d_]+", re.U)


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
    words = _WORD.findall(stripped)
    if len(words) <= 4 and not stripped.endswith((".", "!", "?", "”", '"')):
        return "short line without a sentence"
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
    # A question never answers one; a rhetorical question is an invitation to comment.
    if stripped.rstrip("”\"’' )").endswith("?"):
        return "question"
    return ""


def near_duplicate(a: str, b: str, threshold: float = 0.8) -> bool:
    """True when two passages share most of their words (same fact, repeated)."""
    wa, wb = set(normalise(a).split()), set(normalise(b).split())
    if not wa or not wb:
        return False
    return len(wa & wb) / min(len(wa), len(wb)) >= threshold and len(wa & wb) / max(len(wa), len(wb)) >= 0.6
