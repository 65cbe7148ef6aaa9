"""The web chat: pure rendering of answers (Markdown for the chat, HTML for the sources
panel, plain text for citations) and the Gradio Blocks factory :func:`build_app`.

Documents are untrusted.  Every piece of document text (quotes, paragraphs, titles,
outlets) is escaped before it reaches HTML (:func:`escape_html`) or Markdown
(:func:`escape_markdown`), so a ``<script>``, an ``<img onerror>``, a ``javascript:`` link
or a Markdown image pointing at another host is shown as text and never fetched or run.
What is shown between the quote marks is always ``document.text[start:end]``.

The library does the work; this module only turns an :class:`~qa.data.Answer` into text
and wires the widgets.  ``app.py`` is the command-line shell that launches it.
"""

from __future__ import annotations

import html
import json
import logging
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..errors import QuestionError
from .cli import question_text
from ..ingest.corpus import clean_label
from ..data import Answer, Quote
from ..settings import MODES, Settings

log = logging.getLogger("qa.serve.web")

TITLE = "Ask the articles"
NO_ANSWER_LEAD = "The articles don't say."
LOOK_AT = "You may look at these closest passages:"
PANEL_EMPTY = (
    '<p class="qa-empty">Ask a question: the passages it quotes appear here, highlighted in their paragraph.</p>'
)
# Context shown around a quote inside its paragraph (the quote itself is always whole).
CONTEXT_CHARS = 600
# Turns kept in the sources panel (newest first); older ones drop off.
PANEL_TURNS = 10
# A rejected question is echoed back at most this long.
ECHO_CHARS = 300
SEED_QA = Path(__file__).resolve().parents[2] / "eval" / "seeds.jsonl"

# ---------------------------------------------------------------- escaping

# Characters that start inline Markdown (emphasis, code, links, images, HTML, entities,
# strike-through, maths) are backslash-escaped; CommonMark shows "\x" as "x".
_MD_INLINE = re.compile(r"([\\`*_\[\]<>&~$|!])")
# GFM turns bare URLs, www. names and e-mail addresses into links: break those patterns.
_MD_AUTOLINK = re.compile(r"(?i)(?<=[a-z])(:)(?=//)|(?<=www)(\.)|(@)")
# Block syntax at the start of a line: headings, quotes, lists, setext underlines.
_MD_BLOCK_START = re.compile(r"^(\s*)([#>+\-=]|\d+(?=[.)]))")
_LINE_BREAKS = re.compile(r"[ \t]*(?:\r\n|\r|\n|\u2028|\u2029)+[ \t]*")


def escape_html(text: str) -> str:
    """``text`` safe inside HTML element content and quoted attribute values."""
    return html.escape(text, quote=True)


def escape_markdown(text: str) -> str:
    """``text`` shown literally by a Markdown renderer, on one line.

    Line breaks become spaces (the chat shows a quote as one line; the sources panel and
    the plain-text citations keep them), so no block syntax (headings, lists, tables,
    code blocks) can start inside; inline syntax and autolinks are escaped.  Spaces and
    tabs at the ends are dropped, as Markdown would.
    """
    text = _LINE_BREAKS.sub(" ", text).strip(" \t")  # leading spaces would make a code block
    text = _MD_INLINE.sub(r"\\\1", text)
    text = _MD_AUTOLINK.sub(lambda m: "\\" + m.group(0), text)
    # "- x", "# x", "1. x" at the very start would be a list or heading (the "." after digits is escaped).
    return _MD_BLOCK_START.sub(
        lambda m: m.group(1) + ("\\" + m.group(2) if not m.group(2).isdigit() else m.group(2) + "\\"), text
    )


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis (for echoes and labels only)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Characters that change how text looks without being seen: zero-width, direction controls.
_INVISIBLE = re.compile("[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


def invisible_characters(text: str) -> list[str]:
    """``U+XXXX NAME`` of each distinct invisible character in ``text`` (shown beside a quote
    so that a direction override or a zero-width space cannot pass unnoticed)."""
    return [
        f"U+{ord(c):04X} {unicodedata.name(c, 'FORMAT CHARACTER')}" for c in dict.fromkeys(_INVISIBLE.findall(text))
    ]


# ---------------------------------------------------------------- chat reply (Markdown)


def anchor(turn: int, n: int) -> str:
    """The HTML id of quote ``n`` (1-based) of answer number ``turn`` in the sources panel."""
    return f"qa-t{turn}-s{n}"


def _marker(n: int, turn: int | None) -> str:
    # "[n]" alone is literal Markdown text (no link definition); in the UI it links the panel.
    return f"[{n}]" if turn is None else f"[[{n}]](#{anchor(turn, n)})"


def source_line(quote: Quote) -> str:
    """Title, outlet, paragraph, characters: one Sources entry (escaped Markdown)."""
    outlet = f", {escape_markdown(quote.outlet)}" if quote.outlet else ""
    page = f", page {quote.page}" if quote.page else ""
    return f"*{escape_markdown(clean_label(quote.title))}*{outlet}{page}, paragraph {quote.paragraph}, characters {quote.start}–{quote.end}"


def _quote_markdown(quote: Quote, mark_phrase: bool) -> str:
    """The quote as escaped Markdown, its answer phrase in bold when asked for."""
    if not (mark_phrase and quote.phrase_text.strip()):
        return escape_markdown(quote.text)
    a, b = quote.phrase[0] - quote.start, quote.phrase[1] - quote.start
    before, phrase, after = quote.text[:a], quote.text[a:b], quote.text[b:]
    # escape_markdown trims each part's ends: put back the space that separates them.
    gap_before = " " if before[-1:].isspace() else ""
    gap_after = " " if after[:1].isspace() else ""
    return f"{escape_markdown(before)}{gap_before}**{escape_markdown(phrase)}**{gap_after}{escape_markdown(after)}"


def render_reply(answer: Answer, turn: int | None = None) -> str:
    """The chat reply: a lead line, each quote with its ``[n]`` marker, then Sources.

    With ``turn`` the markers and source entries link to the sources panel's anchors."""
    from .present import TENTATIVE, TENTATIVE_WHY, searched_note, unmentioned_note

    if answer.answered and answer.tentative:
        lines = [f"**{TENTATIVE}** ({TENTATIVE_WHY}):"]
    elif answer.answered:
        lines = ["**From the articles:**"]
    elif answer.quotes:
        lines = [f"**{NO_ANSWER_LEAD}** {LOOK_AT}"]
    else:
        return f"**{NO_ANSWER_LEAD}** No passage comes close to this question."
    if answer.searched_as:
        lines.append(f"_{escape_markdown(searched_note(answer.searched_as))}_")
    if answer.unmentioned:
        lines.append(f"_{escape_markdown(unmentioned_note(answer.unmentioned))}._")
    for n, q in enumerate(answer.quotes, 1):
        lines.append(f"{_marker(n, turn)} “{_quote_markdown(q, mark_phrase=answer.answered and n == 1)}”")
    lines.append("**Sources**")
    sources = "\n".join(f"- {_marker(n, turn)} {source_line(q)}" for n, q in enumerate(answer.quotes, 1))
    return "\n\n".join(lines) + "\n\n" + sources


def render_error(message: str) -> str:
    """A question the library refused: the one-line reason, plainly."""
    return f"**Sorry, I can't answer that:** {escape_markdown(message.rstrip('.'))}."


FAILURE = "**Sorry, something went wrong while answering.** The error was logged on the server; please try again."


# ---------------------------------------------------------------- plain-text citations


def render_citations(answer: Answer) -> str:
    """One line per quote, for copying: ``[n] “quote” — title, outlet, paragraph, characters``."""
    return "\n".join(f"[{n}] “{q.text}” — {q.citation()}" for n, q in enumerate(answer.quotes, 1))


# ---------------------------------------------------------------- sources panel (HTML)


@dataclass(frozen=True)
class Passage:
    """A quote inside its paragraph: ``before + quote + after`` is a slice of the document."""

    before: str
    quote: str
    after: str
    cut_before: bool  # context was cut at the start
    cut_after: bool


def passage(
    document_text: str, paragraph: tuple[int, int], start: int, end: int, context: int = CONTEXT_CHARS
) -> Passage:
    """The paragraph around ``[start, end)``, cut to ``context`` characters each side."""
    p_start, p_end = min(paragraph[0], start), max(paragraph[1], end)
    lo, hi = max(p_start, start - context), min(p_end, end + context)
    if lo > p_start:  # cut at a space when there is one near
        space = document_text.find(" ", lo, start)
        lo = space + 1 if space != -1 and space - lo < 80 else lo
    if hi < p_end:
        space = document_text.rfind(" ", end, hi)
        hi = space if space != -1 and hi - space < 80 else hi
    return Passage(
        before=document_text[lo:start],
        quote=document_text[start:end],
        after=document_text[end:hi],
        cut_before=lo > p_start,
        cut_after=hi < p_end,
    )


def render_source(n: int, quote: Quote, document_text: str, paragraph: tuple[int, int], turn: int) -> str:
    """One panel entry: title, outlet, location, and the paragraph with the quote marked."""
    p = passage(document_text, paragraph, quote.start, quote.end)
    outlet = f'<span class="qa-outlet">{escape_html(quote.outlet)}</span> · ' if quote.outlet else ""
    ident = anchor(turn, n)
    return (
        f'<article class="qa-src" id="{ident}" tabindex="-1" data-doc="{escape_html(quote.doc_id)}" '
        f'aria-label="Source {n}">'
        f'<h4 class="qa-src-head"><a class="qa-n" href="#{ident}">[{n}]</a> '
        f'<cite class="qa-title" dir="auto">{escape_html(clean_label(quote.title))}</cite></h4>'
        f'<p class="qa-loc">{outlet}{f"page {quote.page} · " if quote.page else ""}'
        f"paragraph {quote.paragraph} · characters {quote.start}–{quote.end}</p>"
        f"{_invisible_note(p.quote)}"
        f'<blockquote class="qa-para" dir="auto">'
        f"{'…' if p.cut_before else ''}{escape_html(p.before)}"
        f'<mark data-start="{quote.start}" data-end="{quote.end}">{escape_html(p.quote)}</mark>'
        f"{escape_html(p.after)}{'…' if p.cut_after else ''}</blockquote>"
        f"</article>"
    )


def _invisible_note(quote: str) -> str:
    names = invisible_characters(quote)
    if not names:
        return ""
    return f'<p class="qa-warn">The quote holds invisible characters: {escape_html(", ".join(names))}</p>'


def render_sources(engine, answer: Answer, turn: int) -> str:
    """The panel section for one answer: the question, then each quoted passage."""
    head = "Closest passages (the articles don't say)" if not answer.answered else "Sources"
    parts = [
        f'<section class="qa-turn" data-turn="{turn}">'
        f'<h3 class="qa-q">{head} for: <q dir="auto">{escape_html(shorten(answer.question, ECHO_CHARS))}</q></h3>'
    ]
    for n, q in enumerate(answer.quotes, 1):
        parts.append(render_source(n, q, engine.document(q.doc_id).text, engine.paragraph_span(q), turn))
    if not answer.quotes:
        parts.append('<p class="qa-empty">No passage comes close.</p>')
    parts.append("</section>")
    return "".join(parts)


def render_panel(turns: Sequence[str]) -> str:
    """The whole panel: the newest answer's sources first."""
    if not turns:
        return PANEL_EMPTY
    return '<div class="qa-panel">' + "".join(reversed(turns)) + "</div>"


# ---------------------------------------------------------------- the functions behind the UI


def _count(k: Any) -> int | None:
    """The number of quotes asked for (the engine clamps it to 1..10); None: the default."""
    try:
        return int(k) if k is not None else None
    except (TypeError, ValueError, OverflowError):  # NaN, infinity, text from a hand-made request
        return None


def _doc_ids(doc_ids: Sequence[str] | None) -> list[str] | None:
    return [d for d in (doc_ids or []) if isinstance(d, str)] or None


def answer_markdown(
    engine, message: Any, k: int | None = None, mode: str | None = None, doc_ids=None, turn: int | None = None
) -> tuple[str, Answer | None]:
    """Ask the engine; the Markdown reply and the answer (None when the question was refused).

    Never raises: refused questions get their one-line reason, failures a short apology
    (the traceback goes to the server log)."""
    try:
        if mode is not None and mode not in MODES:
            raise QuestionError(f"unknown retrieval mode {str(mode)[:40]!r}; choose one of {', '.join(MODES)}")
        k = _count(k)
        text = question_text(message) if isinstance(message, str) else ""
        answer = engine.ask(text, k=k, mode=mode, doc_ids=_doc_ids(doc_ids))
    except QuestionError as exc:
        return render_error(str(exc)), None
    except Exception:  # a bug must not become a traceback in the browser
        log.exception("answering %r failed", shorten(str(message), 200))
        return FAILURE, None
    return render_reply(answer, turn), answer


def chat(engine, message: Any, history: Any = None) -> str:
    """The API's chat: a question in, the Markdown reply out (history is not used:
    every question is answered from the articles alone)."""
    return answer_markdown(engine, message)[0]


_SURROGATE = re.compile("[\ud800-\udfff]")


def respond(engine, message: Any, history: Any, k: Any, mode: Any, doc_ids: Any, turns: Any):
    """The UI's chat step → (history, box, panel, citations, turns).

    ``turns`` holds, per answer, the panel section (HTML) and the plain-text citations."""
    history = list(history or [])
    turns = [t for t in (turns or []) if isinstance(t, dict)]
    turn = (turns[-1]["turn"] + 1) if turns else 1
    reply, answer = answer_markdown(engine, message, k, mode, doc_ids, turn)
    # What goes back to the page must encode as JSON: lone surrogates shown as U+FFFD.
    text = _SURROGATE.sub("\ufffd", message) if isinstance(message, str) else ""
    shown = escape_markdown(shorten(text.strip(), ECHO_CHARS)) or "(empty question)"
    history = (history + [{"role": "user", "content": shown}, {"role": "assistant", "content": reply}])[-CHAT_MESSAGES:]
    if answer is not None:
        try:
            section = render_sources(engine, answer, turn)
        except Exception:  # the reply stands; only the panel entry is lost
            log.exception("rendering the sources of %r failed", shorten(text, 200))
            section = f'<section class="qa-turn" data-turn="{turn}"><p class="qa-empty">The sources could not be shown.</p></section>'
        turns = (turns + [{"turn": turn, "html": section, "citations": render_citations(answer)}])[-PANEL_TURNS:]
        text = ""  # answered: empty the box; refused: leave the text to fix
    return history, text, render_panel([t["html"] for t in turns]), (turns[-1]["citations"] if turns else ""), turns


def clear():
    """Forget the conversation: (history, box, panel, citations, turns)."""
    return [], "", PANEL_EMPTY, "", []


# ---------------------------------------------------------------- examples


def example_questions(engine, path: Path = SEED_QA, limit: int = 5, tries: int = 25) -> list[str]:
    """Up to ``limit`` answerable seed questions, one per indexed document, that the engine
    does answer (at most ``tries`` are asked, ~20 ms each); none for other corpora."""
    try:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError):
        return []
    known, seen, out = {d.doc_id for d in engine.catalog}, set(), []
    for row in rows:
        if not isinstance(row, dict):
            continue
        ids = row.get("doc_ids")
        if not row.get("answers") or not ids or not all(d in known for d in ids) or ids[0] in seen:
            continue
        if tries <= 0:
            break
        tries -= 1
        try:
            if not engine.ask(row["question"]).answered:
                continue
        except Exception:  # an example is a nicety: never a reason not to start
            continue
        seen.add(ids[0])
        out.append(row["question"])
        if len(out) == limit:
            break
    return out


# ---------------------------------------------------------------- page: theme, CSS, JS

# System fonts only: nothing is fetched from a font service.
SYSTEM_FONTS = ["system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"]
MONO_FONTS = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "Liberation Mono", "monospace"]

CSS = """
#qa-chat .message, #qa-chat .message-content, #qa-chat .prose { overflow-wrap: anywhere; word-break: normal; }
#qa-sources { overflow-wrap: anywhere; }
#qa-sources .qa-panel { max-height: 75vh; overflow-y: auto; padding-right: 4px; }
#qa-sources .qa-turn { margin-bottom: 1.2em; }
#qa-sources h3.qa-q { font-size: 1rem; margin: .4em 0; }
#qa-sources h4.qa-src-head { font-size: .95rem; margin: .2em 0; }
#qa-sources .qa-loc { font-size: .85rem; opacity: .8; margin: 0 0 .3em 0; }
#qa-sources .qa-src { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: .5em .7em; margin: .5em 0;
  scroll-margin: 1em; }
#qa-sources .qa-warn { font-size: .85rem; margin: 0 0 .3em 0; color: #92400e; }
#qa-sources blockquote.qa-para { white-space: pre-wrap; overflow-wrap: anywhere; margin: 0 !important; padding: 0 0 0 .6em;
  border-left: 3px solid var(--border-color-primary); max-height: 24em; overflow-y: auto; unicode-bidi: plaintext; }
#qa-sources mark { background: #ffe58a; color: #111; padding: 0 1px; }
#qa-sources .qa-src.qa-active { outline: 3px solid #2563eb; outline-offset: 2px; background: rgba(37, 99, 235, .07); }
#qa-sources .qa-src.qa-active mark { background: #ffd23f; }
#qa-sources a.qa-n { text-decoration: none; font-weight: 600; }
a[href^="#qa-t"]:focus-visible, #qa-sources .qa-src:focus-visible { outline: 3px solid #2563eb; outline-offset: 2px; }
@media (max-width: 640px) { #qa-sources .qa-panel { max-height: none; } }
"""

from .page import CSS as _PAGE_CSS  # noqa: E402  (the answer card, reader view, accessibility)

CSS += _PAGE_CSS

# One delegated listener: a click (or Enter) on a "[n]" link shows that passage in the
# panel, highlights it and moves the keyboard focus there.  No network, no eval.
JS = """
() => {
  if (window.__qaSourcesWired) return;
  window.__qaSourcesWired = true;
  document.addEventListener('click', (event) => {
    const link = event.target.closest && event.target.closest('a[href^="#qa-t"]');
    if (!link) return;
    const id = link.getAttribute('href').slice(1);
    if (!/^qa-t[0-9]+-s[0-9]+$/.test(id)) return;
    event.preventDefault();
    event.stopPropagation();
    const target = document.getElementById(id);
    if (!target) return;
    document.querySelectorAll('#qa-sources .qa-active').forEach((el) => el.classList.remove('qa-active'));
    target.classList.add('qa-active');
    const mark = target.querySelector('mark');
    target.scrollIntoView({block: 'nearest', behavior: 'instant'});
    if (mark) mark.scrollIntoView({block: 'nearest', behavior: 'instant'});
    target.focus({preventScroll: true});
  }, true);
}
"""


from .page import JS as _PAGE_JS  # noqa: E402

JS = "() => { (" + JS.strip() + ")(); (" + _PAGE_JS.strip() + ")(); }"


# ---------------------------------------------------------------- the HTTP layer

# The largest request body accepted (bytes).  A question is at most 2,000 characters; the
# page also sends the conversation shown (kept to CHAT_MESSAGES below), so 256 KiB is ample.
MAX_REQUEST_BYTES = 256 * 1024
# A body over the limit is read and thrown away up to this size, so the client gets a
# clean 413 instead of a reset connection; beyond it the connection is just closed.
DRAIN_BYTES = 8 * 1024 * 1024
# Messages of the conversation kept (user + assistant): older ones drop off the page.
CHAT_MESSAGES = 40
# Gradio's upload routes: this app takes no files.
_UPLOAD = re.compile(r"/upload(?:_progress)?/?$")
_NAMED = re.compile(r"^/gradio_api/(run|call|api)/(?:(v2)/)?([^/]+)/?$")


class RequestGuard:
    """ASGI middleware in front of Gradio: what the raw API may send, checked before
    Gradio reads anything.

    * uploads are refused (403) whatever the route's spelling;
    * a body over ``max_body`` bytes is refused (413) — from its Content-Length before a
      byte is read, or as it streams in — so memory per request is bounded;
    * a call of a named endpoint (``/gradio_api/run|call|api/NAME``, ``call/v2/NAME``) or a
      queue join must carry a JSON body with as many values as the event takes (or exactly
      its parameter names, for ``v2``); otherwise 400 with one line saying what is wrong,
      instead of Gradio's HTTP 500 and a traceback in the server log.
    """

    def __init__(self, app, blocks=None, max_body: int = MAX_REQUEST_BYTES) -> None:
        self.app, self.blocks, self.max_body = app, blocks, max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path, method = scope.get("path", ""), scope.get("method", "GET")
        if _UPLOAD.search(path):
            await self._drain(receive)
            return await _reply(send, 403, "uploads are disabled: this app takes questions only")
        length = _content_length(scope)
        if length is not None and (length < 0 or length > self.max_body):
            await self._drain(receive, length)
            return await _reply(send, 413, f"request too large: at most {self.max_body} bytes")
        if method in ("GET", "HEAD", "OPTIONS") and not length:
            return await self.app(scope, receive, send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                chunks.clear()
                await self._drain(receive)
                return await _reply(send, 413, f"request too large: at most {self.max_body} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        problem = self._call_problem(path, method, body) if method == "POST" else None
        if problem:
            status, text = problem
            log.warning("refused %s %s: %s", method, path, text)
            return await _reply(send, status, text)
        delivered = False

        async def replay():
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _drain(receive, length: int | None = None) -> None:
        """Read and drop what the client sends (up to DRAIN_BYTES), holding none of it."""
        if length is not None and length > DRAIN_BYTES:
            return
        seen = 0
        while seen <= DRAIN_BYTES:
            message = await receive()
            if message["type"] != "http.request":
                return
            seen += len(message.get("body", b""))
            if not message.get("more_body", False):
                return

    def _fn(self, api_name: str | None = None, fn_index=None):
        if self.blocks is None:
            return None
        for i, fn in self.blocks.fns.items():
            if (api_name is not None and fn.api_name == api_name) or (fn_index is not None and i == fn_index):
                return fn
        return None

    def _call_problem(self, path: str, method: str, body: bytes) -> tuple[int, str] | None:
        named = _NAMED.match(path)
        if not named and not path.rstrip("/").endswith("/gradio_api/queue/join"):
            return None
        try:
            payload = json.loads(body or b"null")
        except (UnicodeDecodeError, ValueError):
            return 400, "the request body is not valid JSON"
        if not isinstance(payload, dict):
            return 400, "the request body must be a JSON object"
        if named:
            _, v2, api_name = named.groups()
            fn = self._fn(api_name=api_name)
            if fn is None or getattr(fn, "api_visibility", "public") == "private":
                return 404, f"no API endpoint named {shorten(api_name, 60)!r} (see the page's API link)"
        else:
            v2 = None
            index = payload.get("fn_index")
            fn = self._fn(fn_index=index) if isinstance(index, int) and not isinstance(index, bool) else None
            if fn is None:
                return 400, "the request names no event of this page (fn_index)"
        if v2:
            import inspect

            try:
                wanted = [p for p in inspect.signature(fn.fn).parameters]
            except (TypeError, ValueError):
                return None
            extra = sorted(set(payload) - set(wanted) - {"oauth_token"})
            missing = [p for p in wanted if p not in payload]
            if extra or missing:
                said = "; ".join(
                    x
                    for x in (
                        f"unknown parameter {shorten(str(extra[0]), 60)!r}" if extra else "",
                        f"missing parameter {missing[0]!r}" if missing else "",
                    )
                    if x
                )
                return 400, f"{said}: {api_name} takes {', '.join(wanted) or 'nothing'}"
            return None
        data = payload.get("data")
        counts = {len(fn.inputs), len([b for b in fn.inputs if not getattr(b, "skip_api", False)])}
        if not isinstance(data, list):
            return 400, f'the request needs "data": a list of {min(counts)} value(s)'
        if len(data) not in counts:
            return 400, f'the request gives {len(data)} value(s) in "data"; this endpoint takes {min(counts)}'
        return None


def _content_length(scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return -1
    return None


async def _reply(send, status: int, text: str) -> None:
    body = json.dumps({"error": text}).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def app_kwargs(blocks) -> dict:
    """What the FastAPI app Gradio makes is given (``launch(app_kwargs=...)``): the guard."""
    from starlette.middleware import Middleware

    return {"middleware": [Middleware(RequestGuard, blocks=blocks)]}


def launch_options() -> dict:
    """Keyword arguments for ``Blocks.launch`` (Gradio 6 takes theme, CSS and JS there).
    Add ``app_kwargs=app_kwargs(demo)`` for the HTTP guard (app.py does)."""
    import gradio as gr

    return dict(
        max_file_size=0,  # no uploads (RequestGuard refuses the routes too)
        theme=gr.themes.Default(font=SYSTEM_FONTS, font_mono=MONO_FONTS),
        css=CSS,
        js=JS,
        footer_links=["api"],
        run_history=False,
        mcp_server=False,
        ssr_mode=False,
        show_error=False,
    )


# ---------------------------------------------------------------- the app


def _doc_choices(engine) -> list[tuple[str, str]]:
    out = []
    for d in engine.catalog:
        label = shorten(clean_label(d.title), 90) + (f" ({shorten(d.outlet, 40)})" if d.outlet else "")
        out.append((label, d.doc_id))
    return out


# ---------------------------------------------------------------- a replaced index


def index_stamp(manifest: Path) -> tuple | None:
    """Identity of an index folder's manifest (a new build is a new file: the folder is
    swapped by rename); None while there is none (mid-swap)."""
    try:
        st = manifest.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


RELOADED = (
    "*The index was rebuilt since the last question ({documents} documents now): this answer comes from the new one.*"
)
RELOAD_FAILED = (
    "*The index on disk was replaced but cannot be loaded ({problem}); answering from the one loaded before.*"
)


class LiveEngine:
    """The engine the app answers with, replaced by a fresh one when the index folder on
    disk is replaced (``qa index`` while the app runs).

    Between questions :meth:`current` compares the manifest's identity with the one
    loaded; when it changed, the new index is loaded and checked completely (and loaded
    again if it changed during the load) before it is swapped in by one assignment.  Each
    question takes one engine for its whole answer (quotes, citations, the sources panel),
    so old offsets are never cut from new text.  The notice says so to whoever asked."""

    def __init__(self, engine, settings: Settings | None = None, load=None) -> None:
        import threading

        self._engine = engine
        self.settings = settings or engine.settings
        self.manifest = Path(self.settings.index) / "manifest.json"
        self._stamp = index_stamp(self.manifest)
        self._failed: tuple | None = None
        self._lock = threading.Lock()
        self._load = load or self._open

    def _open(self):
        reopen = getattr(self._engine, "reopen", None)  # an answer pool (--workers): its workers follow
        if reopen is not None:
            return reopen()
        from ..pipeline import open_engine

        engine = open_engine(self.settings)
        engine.ask("warm up")  # lazy tables, tokenizer padding: before any thread shares it
        return engine

    @property
    def engine(self):
        return self._engine

    def current(self) -> tuple[Any, str]:
        """(engine for the next question, a notice when it was just reloaded or "")."""
        stamp = index_stamp(self.manifest)
        if stamp is None or stamp == self._stamp or stamp == self._failed:
            return self._engine, ""
        with self._lock:
            if index_stamp(self.manifest) == self._stamp:  # another question reloaded it meanwhile
                return self._engine, ""
            for _ in range(3):
                before = index_stamp(self.manifest)
                try:
                    fresh = self._load()
                except Exception as exc:  # IndexProblem, ModelError, a half-written folder: keep serving
                    problem = " ".join(str(exc).split())[:200] or type(exc).__name__
                    log.warning("the index was replaced but cannot be loaded: %s", problem)
                    self._failed = before
                    return self._engine, RELOAD_FAILED.format(problem=escape_markdown(problem))
                if index_stamp(self.manifest) == before:
                    break
            else:  # replaced again and again while loading: try at the next question
                return self._engine, ""
            self._engine, self._stamp, self._failed = fresh, before, None
        log.info("reloaded the index: %d documents", len(fresh.documents))
        return fresh, RELOADED.format(documents=len(fresh.documents))


MODE_HELP = {
    "hybrid": "hybrid (default): ranks sentences by meaning and words, then reads the best; says when the articles don't say",
    "hybrid-linear": "hybrid-linear: the same ranking without the reading step",
    "dense-chunks": 'dense-chunks: whole passages closest in meaning (baseline; never says "don\'t say")',
    "bm25-chunks": "bm25-chunks: whole passages sharing the most words (baseline)",
    "sentences": "sentences: single sentences closest in meaning (baseline)",
}


def _echo(text: str) -> str:
    """A question shown back in the chat: one escaped line, at most ECHO_CHARS."""
    text = _SURROGATE.sub("\ufffd", text) if isinstance(text, str) else ""
    return escape_markdown(shorten(text.strip(), ECHO_CHARS)) or "(empty question)"


def ui_step(engine, message: Any, k: Any, mode: Any, doc_ids: Any, turns: Any, differences=None, notice: str = ""):
    """The chat step of the page → (messages, box, turns, turns to store, reader, export).

    Follow-ups are read against the previous turn (:mod:`qa.answer.conversation`); the answer's
    article opens in the reader view.  Never raises."""
    from . import chat as conv

    turns = [t for t in (turns or []) if isinstance(t, dict)]
    text = message if isinstance(message, str) else ""
    reader = None
    try:
        if mode is not None and mode not in MODES:
            raise QuestionError(f"unknown retrieval mode {str(mode)[:40]!r}; choose one of {', '.join(MODES)}")
        turn = conv.ask_turn(engine, question_text(text), _count(k), mode, _doc_ids(doc_ids), turns, differences)
        box = ""
    except QuestionError as exc:
        turn, box = {"question": text, "error": render_error(str(exc))}, text
    except Exception:  # a bug must not become a traceback in the browser
        log.exception("answering %r failed", shorten(str(message), 200))
        turn, box = {"question": text, "error": FAILURE}, text
    # What goes back to the page must encode as JSON: lone surrogates shown as U+FFFD.
    turn["question"] = _SURROGATE.sub("\ufffd", turn["question"])
    box = _SURROGATE.sub("\ufffd", box)
    turn["turn"] = conv.number(turns)
    if notice:
        turn["notice"] = notice
    turns = (turns + [turn])[-conv.MAX_TURNS :]
    for n, t in enumerate(turns, 1):
        t["turn"] = n
    messages = conv.history(engine, turns, _echo)
    if notice:
        messages[-1]["content"] = f"{notice}\n\n{messages[-1]['content']}"
    if turn.get("answered") and turn.get("quotes"):
        top = conv.quote_from_ref(engine, turn["quotes"][0])
        if top is not None:
            from .present import reader_link

            reader = conv.reader(engine, turns, reader_link(top.doc_id, top.paragraph, (top.start, top.end)))
    return messages, box, turns, turns, reader, conv.export(engine, turns)


# Whole (~170 lines): one Gradio Blocks layout; its event handlers wire the components it creates.
def build_app(engine, settings: Settings | None = None):
    """The chat page for ``engine``.  Launch it with ``launch(**launch_options())``.

    API: ``/chat`` takes a question and returns the Markdown reply.  Every event that
    uses the engine shares the concurrency group "engine", so ``queue(default_concurrency_limit=N)``
    bounds the questions answered at once, from the page and the API together.

    The page: each reply is one answer card (:mod:`qa.serve.present`); follow-up questions are
    read in the context of the previous turn; the conversation is kept in the browser
    (``gr.BrowserState``) and comes back on reload; any citation opens the whole article in
    the reader view, also from a stable link (``?doc=ID&p=N``)."""
    import gradio as gr

    from . import chat as conv
    from . import page
    from ..answer.disagreement import for_engine
    from .present import READER_EMPTY, export_html

    settings = settings or engine.settings
    examples = example_questions(engine)
    live = LiveEngine(engine, settings)
    differ = {"engine": None, "fn": None}

    def differences_for(current):
        if differ["engine"] is not current:
            differ["engine"], differ["fn"] = current, for_engine(current)
        return differ["fn"]

    def api_chat(message: str) -> str:
        """Answer a question from the articles: verbatim quotes with [n] markers, then Sources."""
        current, notice = live.current()
        reply = chat(current, message)
        return f"{notice}\n\n{reply}" if notice else reply

    def ui_respond(message, k, mode, doc_ids, turns):
        current, notice = live.current()
        if notice.startswith(RELOADED[:25]):  # the article list follows the new index
            known = {d.doc_id for d in current.catalog}
            doc_ids = [d for d in (doc_ids or []) if d in known]
            choices = gr.update(choices=_doc_choices(current), value=doc_ids)
        else:
            choices = gr.update()
        messages, box, turns, stored, reader, export = ui_step(
            current, message, k, mode, doc_ids, turns, differences_for(current), notice
        )
        return messages, box, turns, stored, gr.update() if reader is None else reader, export, choices

    def ui_open(ref, turns):
        current, _ = live.current()
        try:
            return conv.reader(current, [t for t in (turns or []) if isinstance(t, dict)], ref)
        except Exception:
            log.exception("opening %r failed", shorten(str(ref), 200))
            return '<p class="qa-empty">This article could not be shown.</p>'

    def ui_load(stored, request: gr.Request):
        current, _ = live.current()
        try:
            turns = conv.load_turns(current, stored)
        except Exception:
            log.exception("restoring the conversation failed")
            turns = []
        query = dict(request.query_params) if request is not None else {}
        from urllib.parse import urlencode

        ref = (
            "?" + urlencode({key: str(query[key])[:200] for key in ("doc", "p", "hl") if key in query})
            if query.get("doc")
            else None
        )
        try:
            reader = conv.reader(current, turns, ref) if ref else READER_EMPTY
        except Exception:
            log.exception("opening %r failed", shorten(str(ref), 200))
            reader = READER_EMPTY
        return conv.history(current, turns, _echo), turns, reader, conv.export(current, turns)

    def ui_clear():
        return [], "", [], [], READER_EMPTY, export_html([])

    ui_load.__annotations__["request"] = gr.Request  # this module's annotations are strings

    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        gr.Markdown(
            f"# {TITLE}\n"
            "Answers are **verbatim quotes** from the indexed articles, each with its source. "
            'When the articles don\'t say, you are told so. Follow-up questions ("Why did he do that?") '
            "are read in the light of the previous one."
        )
        turns = gr.State([])
        stored = gr.BrowserState([], storage_key="qa-conversation")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=320):
                chatbot = gr.Chatbot(
                    label="Conversation",
                    elem_id="qa-chat",
                    height=520,
                    autoscroll=False,
                    latex_delimiters=[],
                    buttons=[],
                    feedback_options=None,
                    sanitize_html=True,
                    placeholder="Ask about the articles; quotes and their sources appear here.",
                )
                with gr.Row(equal_height=True):
                    box = gr.Textbox(
                        label="Your question",
                        placeholder="e.g. " + (examples[0] if examples else "What does the article say about …?"),
                        elem_id="qa-question",
                        lines=1,
                        max_lines=4,
                        scale=5,
                        autofocus=True,
                    )
                    ask = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="qa-ask")
                if examples:
                    gr.Examples(examples=[[q] for q in examples], inputs=[box], label="Example questions")
                with gr.Accordion("Options", open=False, elem_id="qa-options"):
                    k = gr.Slider(
                        1, 10, value=settings.top_k, step=1, label="Number of quotes (at most 10)", elem_id="qa-k"
                    )
                    mode = gr.Dropdown(
                        [(MODE_HELP.get(m, m), m) for m in MODES],
                        value=settings.mode,
                        label="Retrieval mode",
                        info='How passages are found; only the default can say "the articles don\'t say".',
                        elem_id="qa-mode",
                    )
                    docs = gr.CheckboxGroup(
                        _doc_choices(engine), label="Only these articles (none ticked: all)", elem_id="qa-docs"
                    )
                export = gr.HTML(export_html([]), elem_id="qa-export")
                clear_btn = gr.Button("Clear conversation", variant="secondary", elem_id="qa-clear")
                gr.HTML('<p id="qa-status" class="qa-sr" role="status" aria-live="polite"></p>')
            with gr.Column(scale=2, min_width=300):
                gr.Markdown("## Article")
                reader = gr.HTML(READER_EMPTY, elem_id="qa-reader")
                ref = gr.Textbox(
                    elem_id="qa-open-ref",
                    elem_classes=["qa-hidden"],
                    show_label=False,
                    container=False,
                    label="Article to open",
                )
                open_btn = gr.Button("Open", elem_id="qa-open-btn", elem_classes=["qa-hidden"])

        outputs = [chatbot, box, turns, stored, reader, export]
        for trigger in (box.submit, ask.click):
            trigger(
                ui_respond,
                [box, k, mode, docs, turns],
                outputs + [docs],
                api_visibility="private",
                concurrency_id="engine",
                show_progress="minimal",
            ).then(None, js=page.SHOW_LATEST, api_visibility="private")
        open_btn.click(ui_open, [ref, turns], [reader], api_visibility="private").then(
            None, js=page.SHOW_READER, api_visibility="private"
        )
        clear_btn.click(ui_clear, None, outputs, api_visibility="private")
        chatbot.clear(ui_clear, None, outputs, api_visibility="private")
        demo.load(ui_load, [stored], [chatbot, turns, reader, export], api_visibility="private").then(
            None, js=page.SHOW_READER, api_visibility="private"
        )
        gr.api(api_chat, api_name="chat", concurrency_id="engine")
    return demo
