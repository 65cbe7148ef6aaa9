"""What the web chat shows a reader: the answer card, citations in words, the reader view
of a whole article, and the conversation's export (Markdown, CSV).

Pure functions over :class:`~qa.data.Quote` and :class:`~qa.data.Document`; the Gradio
wiring is in :mod:`qa.serve.web`.  Document text is untrusted: every piece of it goes through
:func:`escape` (HTML-escaped, line breaks folded to spaces in the chat) and what is shown
between quote marks is always ``document.text[start:end]``.

The card is HTML with no blank line inside, so the chat's Markdown renderer passes it
through untouched (document text is never read as Markdown); the chat's HTML sanitizer
keeps only classes, titles, ``href``s and plain tags — no ``data-`` or ``aria-``
attributes — so the page's script finds what it needs by class.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import re
from dataclasses import dataclass
from datetime import date
from typing import Iterable, Sequence
from urllib.parse import urlencode

from ..ingest.corpus import clean_label
from ..data import Document, Quote

MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
UNKNOWN = {"", "unknown", "n/a", "none"}
_LINE_BREAKS = re.compile(r"[ \t]*(?:\r\n|\r|\n|\u2028|\u2029)+[ \t]*")
# Paragraphs shown around the one asked for in the reader view of a very long document.
READER_PARAGRAPHS = 200


def escape(text: str, fold: bool = True) -> str:
    """``text`` as HTML text (line breaks as spaces when ``fold``)."""
    if fold:
        text = _LINE_BREAKS.sub(" ", text)
    return html.escape(text, quote=True)


# ---------------------------------------------------------------- citations in words


def date_words(value: str) -> str:
    """``2025-02-03`` → ``3 February 2025``; ``2025-02`` → ``February 2025``; else as given
    ("" when unknown)."""
    value = (value or "").strip()
    if value.lower() in UNKNOWN:
        return ""
    m = re.fullmatch(r"(\d{4})-(\d{2})(?:-(\d{2}))?", value)
    if m:
        y, mo, d = int(m[1]), int(m[2]), m[3]
        if 1 <= mo <= 12:
            if d is None:
                return f"{MONTHS[mo - 1]} {y}"
            try:
                date(y, mo, int(d))
                return f"{int(d)} {MONTHS[mo - 1]} {y}"
            except ValueError:
                pass
    return value


def outlet_words(value: str) -> str:
    value = clean_label(value or "")
    return "" if value.lower() in UNKNOWN else value


def title_words(title: str, doc_id: str = "") -> str:
    """A title as shown (invisible formatting characters removed), or the document id."""
    return clean_label(title or "") or doc_id


def citation_words(quote: Quote) -> str:
    """Title, outlet, date, page, paragraph — what a person reads (plain text)."""
    parts = [title_words(quote.title, quote.doc_id)]
    parts.append(outlet_words(quote.outlet) or "outlet unknown")
    parts.append(date_words(quote.date) or "date unknown")
    if quote.page is not None:
        parts.append(f"page {quote.page}")
    parts.append(f"paragraph {quote.paragraph}")
    return ", ".join(parts)


def plain_citation(quote: Quote) -> str:
    """The text a copy button gives: ``“quote” — title, outlet, date, paragraph N (characters a–b; doc_id)``."""
    url = f", {quote.url}" if quote.url else ""
    return f"“{' '.join(quote.text.split())}” — {citation_words(quote)}{url} (characters {quote.start}–{quote.end}; {quote.doc_id})"


def reader_link(doc_id: str, paragraph: int | None = None, highlight: tuple[int, int] | None = None) -> str:
    """A link to the reader view of a document (stable: ``?doc=ID&p=N``)."""
    query = {"doc": doc_id}
    if paragraph:
        query["p"] = str(paragraph)
    if highlight:
        query["hl"] = f"{highlight[0]}-{highlight[1]}"
    return "?" + urlencode(query)


# ---------------------------------------------------------------- the answer card


@dataclass(frozen=True)
class Card:
    """What one reply shows, besides its quotes."""

    turn: int
    answered: bool
    note: str = ""  # how a follow-up was read
    tentative: bool = False  # answered, with a confidence near-topic unanswerable questions reach
    restricted: tuple[str, ...] = ()  # titles of the only articles searched
    differences: tuple[str, ...] = ()  # "75,000 [1] / 81,000 [2]"


def _quote_html(quote: Quote, mark_phrase: bool) -> str:
    if not (mark_phrase and quote.phrase and quote.phrase_text.strip()):
        return escape(quote.text)
    a, b = quote.phrase[0] - quote.start, quote.phrase[1] - quote.start
    return f'{escape(quote.text[:a])}<mark class="qa-phrase">{escape(quote.text[a:b])}</mark>{escape(quote.text[b:])}'


def marker(n: int, quote: Quote) -> str:
    """``[n]``: a link to the quote in its article, with a name a screen reader can say."""
    href = escape(reader_link(quote.doc_id, quote.paragraph, (quote.start, quote.end)))
    title = escape(shorten(title_words(quote.title, quote.doc_id), 80))
    return (
        f'<a class="qa-n" href="{href}" title="Open source {n} in its article">[<span class="qa-sr">source </span>{n}'
        f'<span class="qa-sr">: {title}</span>]</a>'
    )


def source_html(n: int, quote: Quote) -> str:
    """The source beside a quote: title, outlet, date, paragraph (characters in a tooltip),
    a link to the whole article, and a copy button."""
    outlet = escape(outlet_words(quote.outlet)) or '<span class="qa-unknown">outlet unknown</span>'
    when = escape(date_words(quote.date)) or '<span class="qa-unknown">date unknown</span>'
    page = f"page {quote.page}, " if quote.page is not None else ""
    href = escape(reader_link(quote.doc_id, quote.paragraph, (quote.start, quote.end)))
    return (
        f'<p class="qa-src">— <cite dir="auto">{escape(title_words(quote.title, quote.doc_id))}</cite>, {outlet}, {when}, {page}'
        f'<span class="qa-where" title="characters {quote.start}–{quote.end} of {escape(quote.doc_id)}">paragraph {quote.paragraph}</span>'
        f' · <a class="qa-open" href="{href}">open article<span class="qa-sr"> for source {n}</span></a>'
        f' · <button type="button" class="qa-copy">Copy citation<span class="qa-sr"> {n}</span></button>'
        f'<span class="qa-copytext">{escape(plain_citation(quote), fold=False)}</span></p>'
    )


def _invisible_note(quote: Quote) -> str:
    """Direction overrides and zero-width characters in a quote are named beside it."""
    from .web import invisible_characters

    names = invisible_characters(quote.text)
    if not names:
        return ""
    return f'<p class="qa-warn">The quote holds invisible characters: {escape(", ".join(names))}</p>'


def _quote_block(n: int, quote: Quote, mark_phrase: bool, top: bool) -> str:
    kind = "qa-quote qa-top" if top else "qa-quote"
    return (
        f'<div class="{kind}"><p class="qa-text" dir="auto">{marker(n, quote)} “{_quote_html(quote, mark_phrase)}”</p>'
        f"{_invisible_note(quote)}{source_html(n, quote)}</div>"
    )


NO_ANSWER = "The articles don't say."
CLOSEST = "You may look at these closest passages; they are not an answer."
# An answer the judge is less sure of than near-topic unanswerable questions usually get.
TENTATIVE = "Perhaps from the articles"
TENTATIVE_WHY = "the closest match, but it may not answer exactly this question"


def unmentioned_note(names) -> str:
    """The line that says which names of the question the articles never mention."""
    return "The articles never mention " + " or ".join(f"“{n}”" for n in names)


def searched_note(searched_as: str) -> str:
    """The line that says a misspelt question was searched as the collection spells it."""
    return f"Searched for “{searched_as}” (spelling as in the articles)"


def render_card(card: Card, quotes: Sequence[Quote]) -> str:
    """The reply as one card: lead, the best quote first (its answer phrase marked), the
    others folded under "More evidence"; or "the articles don't say" with the closest
    passages folded and labelled as not an answer."""
    parts = ['<div class="qa-card">']
    if card.answered and card.tentative:
        parts.append(f'<p class="qa-lead qa-maybe"><strong>{TENTATIVE}</strong> — {TENTATIVE_WHY}.</p>')
    elif card.answered:
        parts.append('<p class="qa-lead qa-yes"><strong>From the articles</strong></p>')
    elif quotes:
        parts.append(f'<p class="qa-lead qa-no"><strong>{NO_ANSWER}</strong> {CLOSEST}</p>')
    else:
        parts.append(
            f'<p class="qa-lead qa-no"><strong>{NO_ANSWER}</strong> No passage comes close to this question.</p>'
        )
    if card.note:
        parts.append(f'<p class="qa-note">{escape(card.note)}</p>')
    if card.restricted:
        parts.append(f'<p class="qa-note">Searched only: {escape("; ".join(card.restricted))}.</p>')
    if card.answered and quotes:
        parts.append(_quote_block(1, quotes[0], mark_phrase=True, top=True))
        if card.differences:
            parts.append(
                f'<p class="qa-differ"><strong>Articles differ:</strong> {escape("; ".join(card.differences))}</p>'
            )
        rest = quotes[1:]
        if rest:
            parts.append(
                f'<details class="qa-more"><summary>More evidence ({len(rest)} more {"quote" if len(rest) == 1 else "quotes"})</summary>'
            )
            parts += [_quote_block(n, q, False, False) for n, q in enumerate(rest, 2)]
            parts.append("</details>")
    elif quotes:
        parts.append(f'<details class="qa-closest"><summary>Closest passages ({len(quotes)}), not an answer</summary>')
        parts += [_quote_block(n, q, False, False) for n, q in enumerate(quotes, 1)]
        parts.append("</details>")
    parts.append("</div>")
    return "".join(parts)


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------- the reader view


def _segments(start: int, end: int, ranges: Iterable[tuple[int, int]], active: tuple[int, int] | None):
    """``[start, end)`` cut at every range boundary: (a, b, quoted, active) pieces."""
    ranges = [(max(a, start), min(b, end)) for a, b in ranges if a < end and b > start]
    cuts = {start, end}
    for a, b in ranges + ([active] if active else []):
        cuts.update(x for x in (a, b) if start < x < end)
    points = sorted(cuts)
    for a, b in zip(points, points[1:]):
        quoted = any(x <= a and b <= y for x, y in ranges)
        on = bool(active) and active[0] <= a and b <= active[1]
        yield a, b, quoted or on, on


def render_reader(
    document: Document,
    paragraphs: Sequence[tuple[int, int]],
    quoted: Iterable[tuple[int, int]] = (),
    active: tuple[int, int] | None = None,
    paragraph: int | None = None,
) -> str:
    """The whole article: title, outlet, date, URL, numbered paragraphs; every passage
    quoted in this conversation marked (``<mark>`` holds exactly ``text[start:end]``), the
    one asked for marked active; a stable link per paragraph."""
    text = document.text
    quoted = sorted(set(quoted))
    target = paragraph
    if active and target is None:
        target = next((i for i, (a, b) in enumerate(paragraphs, 1) if a <= active[0] < max(b, a + 1)), None)
    lo, hi = 0, len(paragraphs)
    if len(paragraphs) > READER_PARAGRAPHS:
        centre = (target or 1) - 1
        lo = max(0, min(centre - READER_PARAGRAPHS // 2, len(paragraphs) - READER_PARAGRAPHS))
        hi = lo + READER_PARAGRAPHS
    outlet = escape(outlet_words(document.outlet)) or "outlet unknown"
    when = escape(date_words(document.date)) or "date unknown"
    url = f'<p class="qa-meta">Address: <span class="qa-url">{escape(document.url)}</span></p>' if document.url else ""
    parts = [
        f'<article class="qa-article" data-doc="{escape(document.doc_id)}" tabindex="-1" aria-labelledby="qa-article-title">',
        f'<h3 id="qa-article-title" dir="auto">{escape(title_words(document.title, document.doc_id))}</h3>',
        f'<p class="qa-meta">{outlet} · {when} · {len(paragraphs)} paragraphs · <code>{escape(document.doc_id)}</code></p>',
        url,
    ]
    if lo > 0 or hi < len(paragraphs):
        parts.append(f'<p class="qa-meta">Showing paragraphs {lo + 1}–{hi} of {len(paragraphs)}.</p>')
    parts.append(f'<ol class="qa-paras" start="{lo + 1}">')
    for number in range(lo + 1, hi + 1):
        a, b = paragraphs[number - 1]
        pieces = []
        for x, y, is_quoted, on in _segments(a, b, quoted, active):
            piece = escape(text[x:y], fold=False)
            if is_quoted:
                piece = (
                    f'<mark class="{"qa-active" if on else "qa-quoted"}" data-start="{x}" data-end="{y}">{piece}</mark>'
                )
            pieces.append(piece)
        here = " qa-target" if number == target else ""
        link = escape(reader_link(document.doc_id, number))
        page = document.page_at(a)
        page_note = (
            f'<span class="qa-page">page {page}</span> '
            if page is not None and (number == 1 or document.page_at(paragraphs[number - 2][0]) != page)
            else ""
        )
        parts.append(
            f'<li id="qa-p{number}" class="qa-para{here}" value="{number}"><a class="qa-plink" href="{link}" '
            f'title="Link to paragraph {number}">¶<span class="qa-sr"> link to paragraph {number}</span></a> '
            f'{page_note}<span class="qa-ptext" dir="auto">{"".join(pieces)}</span></li>'
        )
    parts.append("</ol></article>")
    return "".join(parts)


READER_EMPTY = '<p class="qa-empty">Open any source ([n], or "open article") to read the whole article here, with every passage quoted in this conversation highlighted.</p>'


# ---------------------------------------------------------------- export


def _verdict(answered: bool, tentative: Sequence[bool]) -> str:
    return ("perhaps (tentative)" if any(tentative) else "yes") if answered else "no (closest passage)"


def export_rows(turns: Sequence[tuple]) -> list[dict]:
    """Rows of ``(question, answered, quotes[, tentative])`` turns, one per quote."""
    rows = []
    for question, answered, quotes, *tentative in turns:
        for n, q in enumerate(quotes, 1):
            rows.append(
                {
                    "question": question,
                    "answered": _verdict(answered, tentative),
                    "rank": n,
                    "quote": q.text,
                    "article": title_words(q.title, q.doc_id),
                    "outlet": outlet_words(q.outlet) or "unknown",
                    "date": q.date if date_words(q.date) else "unknown",
                    "paragraph": q.paragraph,
                    "characters": f"{q.start}–{q.end}",
                    "doc_id": q.doc_id,
                }
            )
    return rows


def _cell(value) -> str:
    # A cell a spreadsheet would run as a formula is prefixed with an apostrophe.
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def export_csv(turns) -> str:
    out = io.StringIO()
    fields = ["question", "answered", "rank", "quote", "article", "outlet", "date", "paragraph", "characters", "doc_id"]
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\r\n")
    writer.writeheader()
    for row in export_rows(turns):
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return out.getvalue()


def export_markdown(turns) -> str:
    lines = ["# Conversation with the articles", ""]
    for question, answered, quotes, *tentative in turns:
        lines.append(f"## {' '.join(question.split())}")
        lines.append("")
        if answered and any(tentative):
            lines.append(f"{TENTATIVE} ({TENTATIVE_WHY}):")
        else:
            lines.append(
                "From the articles:" if answered else "The articles don't say. Closest passages (not an answer):"
            )
        lines.append("")
        for n, q in enumerate(quotes, 1):
            lines.append(f"{n}. “{' '.join(q.text.split())}”  ")
            lines.append(f"   — {citation_words(q)} (characters {q.start}–{q.end}; {q.doc_id})")
        lines.append("")
    return "\n".join(lines)


def export_html(turns) -> str:
    """Download links for the conversation (data: URLs, nothing leaves the page)."""
    if not turns:
        return '<p class="qa-empty">Ask a question: the conversation can then be saved as Markdown or CSV.</p>'
    md = base64.b64encode(export_markdown(turns).encode("utf-8")).decode("ascii")
    sheet = base64.b64encode(("\ufeff" + export_csv(turns)).encode("utf-8")).decode("ascii")
    return (
        '<p class="qa-export-links">Save this conversation: '
        f'<a class="qa-dl" download="conversation.md" href="data:text/markdown;charset=utf-8;base64,{md}">Markdown</a> · '
        f'<a class="qa-dl" download="conversation.csv" href="data:text/csv;charset=utf-8;base64,{sheet}">CSV (spreadsheet)</a></p>'
    )
