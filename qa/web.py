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

from .answer import QuestionError
from .data import Answer, Quote
from .settings import MODES, Settings

log = logging.getLogger("qa.web")

TITLE = "Ask the articles"
NO_ANSWER_LEAD = "The articles don't say."
LOOK_AT = "You may look at these closest passages:"
PANEL_EMPTY = '<p class="qa-empty">Ask a question: the passages it quotes appear here, highlighted in their paragraph.</p>'
# Context shown around a quote inside its paragraph (the quote itself is always whole).
CONTEXT_CHARS = 600
# Turns kept in the sources panel (newest first); older ones drop off.
PANEL_TURNS = 10
# A rejected question is echoed back at most this long.
ECHO_CHARS = 300
SEED_QA = Path(__file__).resolve().parent.parent / "eval" / "seeds.jsonl"

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
    return _MD_BLOCK_START.sub(lambda m: m.group(1) + ("\\" + m.group(2) if not m.group(2).isdigit() else m.group(2) + "\\"), text)


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis (for echoes and labels only)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Characters that change how text looks without being seen: zero-width, direction controls.
_INVISIBLE = re.compile("[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


def invisible_characters(text: str) -> list[str]:
    """``U+XXXX NAME`` of each distinct invisible character in ``text`` (shown beside a quote
    so that a direction override or a zero-width space cannot pass unnoticed)."""
    return [f"U+{ord(c):04X} {unicodedata.name(c, 'FORMAT CHARACTER')}" for c in dict.fromkeys(_INVISIBLE.findall(text))]


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
    return f"*{escape_markdown(quote.title)}*{outlet}{page}, paragraph {quote.paragraph}, characters {quote.start}–{quote.end}"


def render_reply(answer: Answer, turn: int | None = None) -> str:
    """The chat reply: a lead line, each quote with its ``[n]`` marker, then Sources.

    With ``turn`` the markers and source entries link to the sources panel's anchors."""
    if answer.answered:
        lines = ["**From the articles:**"]
    elif answer.quotes:
        lines = [f"**{NO_ANSWER_LEAD}** {LOOK_AT}"]
    else:
        return f"**{NO_ANSWER_LEAD}** No passage comes close to this question."
    for n, q in enumerate(answer.quotes, 1):
        lines.append(f"{_marker(n, turn)} “{escape_markdown(q.text)}”")
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


def passage(document_text: str, paragraph: tuple[int, int], start: int, end: int, context: int = CONTEXT_CHARS) -> Passage:
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
        f'<cite class="qa-title" dir="auto">{escape_html(quote.title)}</cite></h4>'
        f'<p class="qa-loc">{outlet}{f"page {quote.page} · " if quote.page else ""}'
        f'paragraph {quote.paragraph} · characters {quote.start}–{quote.end}</p>'
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
        doc = engine.index.documents[engine.index.doc_index[q.doc_id]]
        parts.append(render_source(n, q, doc.text, engine.paragraph_span(q), turn))
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


def answer_markdown(engine, message: Any, k: int | None = None, mode: str | None = None, doc_ids=None, turn: int | None = None) -> tuple[str, Answer | None]:
    """Ask the engine; the Markdown reply and the answer (None when the question was refused).

    Never raises: refused questions get their one-line reason, failures a short apology
    (the traceback goes to the server log)."""
    try:
        if mode is not None and mode not in MODES:
            raise QuestionError(f"unknown retrieval mode {str(mode)[:40]!r}; choose one of {', '.join(MODES)}")
        k = _count(k)
        answer = engine.ask(message if isinstance(message, str) else "", k=k, mode=mode, doc_ids=_doc_ids(doc_ids))
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


def respond(engine, message: Any, history: Any, k: Any, mode: Any, doc_ids: Any, turns: Any):
    """The UI's chat step → (history, box, panel, citations, turns).

    ``turns`` holds, per answer, the panel section (HTML) and the plain-text citations."""
    history = list(history or [])
    turns = [t for t in (turns or []) if isinstance(t, dict)]
    text = message if isinstance(message, str) else ""
    turn = (turns[-1]["turn"] + 1) if turns else 1
    reply, answer = answer_markdown(engine, text, k, mode, doc_ids, turn)
    shown = escape_markdown(shorten(text.strip(), ECHO_CHARS)) or "(empty question)"
    history += [{"role": "user", "content": shown}, {"role": "assistant", "content": reply}]
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
    known, seen, out = engine.index.doc_index, set(), []
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


def launch_options() -> dict:
    """Keyword arguments for ``Blocks.launch`` (Gradio 6 takes theme, CSS and JS there)."""
    import gradio as gr

    return dict(
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
    for d in engine.index.documents:
        label = shorten(" ".join(d.title.split()), 90) + (f" ({shorten(d.outlet, 40)})" if d.outlet else "")
        out.append((label, d.doc_id))
    return out


def build_app(engine, settings: Settings | None = None):
    """The chat page for ``engine``.  Launch it with ``launch(**launch_options())``.

    API: ``/chat`` takes a question and returns the Markdown reply.  Every event that
    uses the engine shares the concurrency group "engine", so ``queue(default_concurrency_limit=N)``
    bounds the questions answered at once, from the page and the API together."""
    import gradio as gr

    settings = settings or engine.settings
    examples = example_questions(engine)

    def api_chat(message: str) -> str:
        """Answer a question from the articles: verbatim quotes with [n] markers, then Sources."""
        return chat(engine, message)

    def ui_respond(message, history, k, mode, doc_ids, turns):
        return respond(engine, message, history, k, mode, doc_ids, turns)

    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        gr.Markdown(
            f"# {TITLE}\n"
            "Answers are **verbatim quotes** from the indexed articles, each with its source. "
            "When the articles don't say, you are told so."
        )
        turns = gr.State([])
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=320):
                chatbot = gr.Chatbot(
                    label="Conversation",
                    elem_id="qa-chat",
                    height=460,
                    latex_delimiters=[],
                    buttons=["copy"],
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
                    k = gr.Slider(1, 10, value=settings.top_k, step=1, label="Number of quotes", elem_id="qa-k")
                    mode = gr.Dropdown(list(MODES), value=settings.mode, label="Retrieval mode", elem_id="qa-mode")
                    docs = gr.CheckboxGroup(
                        _doc_choices(engine), label="Only these articles (none ticked: all)", elem_id="qa-docs"
                    )
                clear_btn = gr.Button("Clear conversation", variant="secondary", elem_id="qa-clear")
            with gr.Column(scale=2, min_width=300):
                gr.Markdown("### Sources")
                panel = gr.HTML(PANEL_EMPTY, elem_id="qa-sources", label="Sources")
                citations = gr.Textbox(
                    label="Citations as plain text (to copy)",
                    elem_id="qa-citations",
                    lines=3,
                    max_lines=12,
                    interactive=False,
                    buttons=["copy"],
                )

        inputs = [box, chatbot, k, mode, docs, turns]
        outputs = [chatbot, box, panel, citations, turns]
        for trigger in (box.submit, ask.click):
            trigger(ui_respond, inputs, outputs, api_visibility="private", concurrency_id="engine", show_progress="minimal")
        clear_btn.click(clear, None, outputs, api_visibility="private", queue=False)
        chatbot.clear(clear, None, outputs, api_visibility="private", queue=False)
        gr.api(api_chat, api_name="chat", concurrency_id="engine")
    return demo
