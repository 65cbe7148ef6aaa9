"""The web chat's conversation: turns as plain data, asked with follow-ups read in context,
rendered as answer cards, kept in the browser, opened in the reader view, exported.

A *turn* is a JSON-able dict (it is stored in the browser, so it holds references, not
text): ``question`` (as typed), ``asked`` (as the engine got it), ``note`` (how a follow-up
was read), ``answered``, ``quotes`` (``[doc_id, start, end, score, phrase_start,
phrase_end]``), ``restricted`` (titles searched), ``differences``, or ``error`` (a refused
question's one-line reason, already rendered).  Everything shown is rebuilt from the index
when the page comes back (:func:`load_turns`), so what the browser stored can never put
other text between quote marks: a reference that does not fit the index is dropped.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence
from urllib.parse import parse_qs

from ..answer.conversation import resolve
from ..data import Quote
from .present import Card, READER_EMPTY, export_html, render_card, render_reader, searched_note, unmentioned_note

log = logging.getLogger("qa.serve.web")

# Turns kept (each is a question and its answer card).
MAX_TURNS = 20


# ---------------------------------------------------------------- quotes as references


def quote_ref(q: Quote) -> list:
    a, b = q.phrase if q.phrase else (None, None)
    return [q.doc_id, q.start, q.end, round(float(q.score), 4), a, b]


def quote_from_ref(engine, ref: Any) -> Quote | None:
    """The quote a stored reference names, cut again from the index (None if it does not fit)."""
    try:
        doc_id, start, end, score, a, b = ref
        start, end = int(start), int(end)
        phrase = (int(a), int(b)) if a is not None and b is not None and start <= int(a) < int(b) <= end else None
        return engine.quote(doc_id, start, end, float(score), phrase)
    except (KeyError, TypeError, ValueError, IndexError):
        return None


def turn_quotes(engine, turn: dict) -> list[Quote]:
    return [q for q in (quote_from_ref(engine, r) for r in turn.get("quotes") or []) if q is not None]


# ---------------------------------------------------------------- asking


def _titles(engine, doc_ids: Sequence[str] | None) -> list[str]:
    if not doc_ids:
        return []
    if len(set(doc_ids)) >= len(engine.documents):
        return []
    from .present import title_words

    return [title_words(doc.title, d) for d in doc_ids if (doc := engine.document(d)) is not None]


def ask_turn(
    engine,
    text: str,
    k: int | None,
    mode: str | None,
    doc_ids: list[str] | None,
    turns: Sequence[dict],
    differences=None,
) -> dict:
    """Answer ``text`` in the context of the last answered turn → a new turn (the engine
    raises :class:`~qa.answer.engine.QuestionError` for a question it refuses)."""
    previous = next((t for t in reversed(turns) if not t.get("error")), None)
    phrase = ""
    if previous and previous.get("answered"):
        quotes = turn_quotes(engine, previous)
        phrase = (quotes[0].phrase_text or quotes[0].text) if quotes else ""
    reading = resolve(text, previous.get("asked") if previous else None, phrase)
    answer = engine.ask(reading.asked, k=k, mode=mode, doc_ids=doc_ids)
    found = []
    if differences is not None and answer.answered:
        try:
            found = [d.text() for d in differences(answer.searched_as or reading.asked, answer.quotes)]
        except Exception:  # a nicety: never a reason not to answer
            log.exception("looking for differences failed")
    notes = [reading.note] if reading.note else []
    if answer.searched_as:
        notes.append(searched_note(answer.searched_as))
    if answer.unmentioned:
        notes.append(unmentioned_note(answer.unmentioned))
    return {
        "question": text,
        "asked": reading.asked,
        "note": ". ".join(notes),
        "answered": bool(answer.answered),
        "tentative": bool(answer.tentative),
        "quotes": [quote_ref(q) for q in answer.quotes],
        "restricted": _titles(engine, doc_ids),
        "differences": found,
    }


def number(turns: Sequence[dict]) -> int:
    return (int(turns[-1].get("turn", 0)) + 1) if turns else 1


# ---------------------------------------------------------------- showing


def card(engine, turn: dict) -> str:
    """The assistant message of one turn."""
    if turn.get("error"):
        return str(turn["error"])
    c = Card(
        turn=int(turn.get("turn", 0)),
        answered=bool(turn.get("answered")),
        tentative=bool(turn.get("tentative")),  # absent in turns stored before it existed
        note=str(turn.get("note") or ""),
        restricted=tuple(map(str, turn.get("restricted") or ())),
        differences=tuple(map(str, turn.get("differences") or ())),
    )
    return render_card(c, turn_quotes(engine, turn))


def history(engine, turns: Sequence[dict], echo) -> list[dict]:
    """The Chatbot's messages for ``turns`` (``echo`` shows a question safely)."""
    out = []
    for t in turns:
        out.append({"role": "user", "content": echo(str(t.get("question") or ""))})
        out.append({"role": "assistant", "content": card(engine, t)})
    return out


def export(engine, turns: Sequence[dict]) -> str:
    rows = [
        (str(t.get("question") or ""), bool(t.get("answered")), turn_quotes(engine, t), bool(t.get("tentative")))
        for t in turns
        if not t.get("error")
    ]
    return export_html([r for r in rows if r[2] or r[1]])


def load_turns(engine, stored: Any) -> list[dict]:
    """Turns from the browser's storage, each checked (anything malformed is dropped)."""
    if not isinstance(stored, list):
        return []
    out = []
    for t in stored[-MAX_TURNS:]:
        if not isinstance(t, dict) or not isinstance(t.get("question"), str):
            continue
        clean = {
            "turn": len(out) + 1,
            "question": t["question"][:2000],
            "asked": str(t.get("asked") or t["question"])[:4000],
            "note": str(t.get("note") or "")[:4000],
            "answered": bool(t.get("answered")),
            "tentative": bool(t.get("tentative")),
            "quotes": [r for r in (t.get("quotes") or [])[:10] if quote_from_ref(engine, r) is not None]
            if isinstance(t.get("quotes"), list)
            else [],
            "restricted": [str(x)[:300] for x in (t.get("restricted") or [])[:50]]
            if isinstance(t.get("restricted"), list)
            else [],
            "differences": [str(x)[:300] for x in (t.get("differences") or [])[:5]]
            if isinstance(t.get("differences"), list)
            else [],
        }
        if t.get("error"):
            clean["error"] = str(t["error"])[:600]
        out.append(clean)
    return out


# ---------------------------------------------------------------- the reader view


def parse_ref(ref: Any) -> tuple[str, int | None, tuple[int, int] | None] | None:
    """``?doc=ID&p=9&hl=100-200`` → (doc_id, paragraph, highlight); None if no doc."""
    if not isinstance(ref, str):
        return None
    query = parse_qs(ref.split("#")[0].lstrip("?"), max_num_fields=10)
    doc = (query.get("doc") or [""])[0]
    if not doc:
        return None
    paragraph = highlight = None
    try:
        paragraph = int((query.get("p") or [""])[0]) or None
    except ValueError:
        pass
    try:
        a, b = ((query.get("hl") or [""])[0]).split("-")
        highlight = (int(a), int(b))
    except ValueError:
        pass
    return doc, paragraph, highlight


def reader(engine, turns: Sequence[dict], ref: Any) -> str:
    """The reader view for a link (``?doc=…&p=…&hl=…``), with every passage of this
    conversation's answers from that article highlighted."""
    parsed = parse_ref(ref)
    if parsed is None:
        return READER_EMPTY
    doc_id, paragraph, highlight = parsed
    document = engine.document(doc_id)
    if document is None:
        return f'<p class="qa-empty">No article {escape_id(doc_id)} in this collection.</p>'
    paragraphs = engine.paragraphs_of(doc_id)
    if paragraph is not None and not 1 <= paragraph <= len(paragraphs):
        paragraph = None
    if highlight and not (0 <= highlight[0] < highlight[1] <= len(document.text)):
        highlight = None
    quoted = []
    for t in turns:
        for r in t.get("quotes") or []:
            if isinstance(r, list) and r and r[0] == doc_id:
                q = quote_from_ref(engine, r)
                if q is not None:
                    quoted.append((q.start, q.end))
    return render_reader(document, paragraphs, quoted, highlight, paragraph)


def escape_id(text: str) -> str:
    from .present import escape

    return escape(text[:80])
