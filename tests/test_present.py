"""The answer card, citations in words, the reader view, export and the stored
conversation (qa/serve/present.py, qa/serve/chat.py): rendering without a browser."""

from __future__ import annotations

import csv
import html
import io
import re

from qa.data import Document, Quote
from qa.serve.present import (
    Card,
    citation_words,
    date_words,
    export_csv,
    export_markdown,
    plain_citation,
    reader_link,
    render_card,
    render_reader,
)

HOSTILE = "Keeper <script>window.__pwned=1</script> **bold** [x](javascript:alert(1))\n\n# not a heading"
DOC = "First paragraph here.\n\nThe prison holds 40,000 people. " + HOSTILE + "\n\nLast one."


def q(
    start: int, end: int, phrase=None, outlet="unknown", date="unknown", title="T <i>x</i>", paragraph=2, doc="d1"
) -> Quote:
    return Quote(doc, start, end, DOC[start:end], 0.9, title, outlet, paragraph, date=date, phrase=phrase)


def test_dates_and_outlets_in_words():
    assert date_words("2025-02-03") == "3 February 2025"
    assert date_words("2025-02") == "February 2025"
    assert date_words("unknown") == "" and date_words("") == ""
    assert date_words("spring 2025") == "spring 2025"
    quote = q(0, 5, outlet="Daily Kos", date="2025-02-03")
    assert citation_words(quote) == "T <i>x</i>, Daily Kos, 3 February 2025, paragraph 2"
    assert citation_words(q(0, 5)) == "T <i>x</i>, outlet unknown, date unknown, paragraph 2"
    assert plain_citation(quote).endswith("(characters 0–5; d1)")


def test_card_best_quote_first_phrase_marked_rest_folded():
    start = DOC.index("The prison")
    end = DOC.index("people.") + len("people.")
    phrase = (DOC.index("40,000"), DOC.index("40,000") + 6)
    quotes = [q(start, end, phrase), q(DOC.index("Keeper"), len(DOC) - len("\n\nLast one."), paragraph=3)]
    out = render_card(Card(turn=1, answered=True, differences=("75,000 [1] / 81,000 [2]",)), quotes)
    assert "\n\n" not in out  # one HTML block: the chat's Markdown renderer never reads document text
    assert out.count('class="qa-quote qa-top"') == 1
    assert '<mark class="qa-phrase">40,000</mark>' in out
    assert '<details class="qa-more"><summary>More evidence (1 more quote)</summary>' in out
    assert out.index("qa-top") < out.index("qa-differ") < out.index("qa-more")
    assert "Articles differ:</strong> 75,000 [1] / 81,000 [2]" in out
    # Document text is text: only our own tags, and the quote reads exactly (line breaks as spaces).
    tags = set(re.findall(r"<([a-z0-9]+)", out))
    assert tags <= {"div", "p", "strong", "a", "span", "mark", "cite", "button", "details", "summary"}, tags
    assert "<script>" not in out and "javascript:" not in out.replace("[x](javascript:alert(1))", "")
    hostile = html.escape(" ".join(DOC[quotes[1].start : quotes[1].end].replace("\n\n", " ").split(" ")), quote=True)
    assert hostile in out
    # The source sits beside each quote: in words, characters only in the tooltip.
    assert "outlet unknown" in out and "date unknown" in out and 'title="characters ' in out
    assert f'href="{html.escape(reader_link("d1", 2, (start, end)))}"' in out


def test_card_tentative_answer_says_perhaps_and_still_marks_the_phrase():
    phrase = (DOC.index("40,000"), DOC.index("40,000") + 6)
    quotes = [q(DOC.index("The prison"), DOC.index("people.") + len("people."), phrase)]
    out = render_card(Card(turn=1, answered=True, tentative=True), quotes)
    assert out.startswith('<div class="qa-card"><p class="qa-lead qa-maybe"><strong>Perhaps from the articles</strong>')
    assert "may not answer exactly this question" in out and "From the articles" not in out
    assert '<mark class="qa-phrase">40,000</mark>' in out and out.count('class="qa-quote qa-top"') == 1
    sure = render_card(Card(turn=1, answered=True), quotes)
    assert "qa-yes" in sure and "Perhaps" not in sure


def test_card_abstention_never_presents_a_quote_as_the_answer():
    quotes = [q(0, 21)]
    out = render_card(Card(turn=1, answered=False), quotes)
    assert out.startswith('<div class="qa-card"><p class="qa-lead qa-no"><strong>The articles don\'t say.</strong>')
    assert "not an answer" in out and "qa-top" not in out and "qa-phrase" not in out
    assert '<details class="qa-closest">' in out
    assert "No passage comes close" in render_card(Card(turn=1, answered=False), [])


def test_card_says_how_a_follow_up_was_read_and_which_articles_were_searched():
    out = render_card(
        Card(turn=2, answered=True, note="Read as a follow-up to “A?”: “B <b>?”", restricted=("Only <this>",)),
        [q(0, 21)],
    )
    assert "Read as a follow-up to “A?”: “B &lt;b&gt;?”" in out and "Searched only: Only &lt;this&gt;." in out


def test_reader_marks_exact_slices_and_numbers_paragraphs():
    doc = Document("d1", DOC, "Title", outlet="Daily Kos", date="2025-02-03", url="https://example.org/a?x=<1>")
    paras = [(0, 21), (23, len(DOC) - 11), (len(DOC) - 9, len(DOC))]
    a = DOC.index("The prison")
    b = DOC.index("Keeper") + 6
    out = render_reader(doc, paras, quoted=[(a, b), (DOC.index("Keeper"), DOC.index("Keeper") + 20)], active=(a, b))
    marks = re.findall(r'<mark class="(qa-\w+)" data-start="(\d+)" data-end="(\d+)">(.*?)</mark>', out, re.S)
    assert marks and all(html.unescape(t) == DOC[int(s) : int(e)] for _, s, e, t in marks)
    assert {m[0] for m in marks} == {"qa-active", "qa-quoted"}
    assert 'id="qa-p2" class="qa-para qa-target"' in out  # the paragraph holding the active passage
    assert out.count('class="qa-plink"') == 3 and 'href="?doc=d1&amp;p=3"' in out
    assert "Daily Kos · 3 February 2025 · 3 paragraphs" in out
    assert "https://example.org/a?x=&lt;1&gt;" in out and '<a href="https' not in out  # the URL is text
    assert "<script>" not in out


def test_export_csv_and_markdown():
    quote = q(DOC.index("The prison"), DOC.index("people.") + 7, outlet="Daily Kos", date="2025-02-03")
    formula = Quote("d1", 0, 9, "=HYPERLINK", 0.5, "=cmd|' /C calc'!A0", "", 1)
    turns = [("How many?", True, [quote, formula]), ("Who won?", False, [quote])]
    rows = list(csv.DictReader(io.StringIO(export_csv(turns))))
    assert len(rows) == 3
    assert rows[0]["quote"] == quote.text and rows[0]["outlet"] == "Daily Kos" and rows[0]["date"] == "2025-02-03"
    assert rows[0]["characters"] == f"{quote.start}–{quote.end}" and rows[0]["paragraph"] == "2"
    assert rows[1]["quote"] == "'=HYPERLINK" and rows[1]["article"].startswith("'=")  # no formulas in a spreadsheet
    assert rows[2]["answered"].startswith("no")
    md = export_markdown(turns)
    assert "## How many?" in md and "Daily Kos, 3 February 2025, paragraph 2" in md and "not an answer" in md
    assert "From the articles:" in md and "Perhaps" not in md
    tentative = [("How many guards?", True, [quote], True)]
    assert list(csv.DictReader(io.StringIO(export_csv(tentative))))[0]["answered"] == "perhaps (tentative)"
    assert "Perhaps from the articles (the closest match" in export_markdown(tentative)


# ---------------------------------------------------------------- the stored conversation (qa/serve/chat.py)


def test_stored_turns_are_checked_against_the_index(fake_engine):
    from qa.serve.chat import ask_turn, card, load_turns, reader

    first = ask_turn(fake_engine, "How many people can CECOT hold?", 3, None, None, [])
    first["turn"] = 1
    second = ask_turn(fake_engine, "What does that name stand for?", 3, None, None, [first])
    assert second["note"].startswith("Read as a follow-up") and second["asked"] != second["question"]
    doc_id, start, end = first["quotes"][0][:3]
    tampered = [
        first,
        {
            "question": "x",
            "quotes": [[doc_id, 0, 10**9, 1, None, None], ["../etc/passwd", 0, 5, 1, None, None], "junk"],
        },
        "not a turn",
        {"question": 5},
    ]
    turns = load_turns(fake_engine, tampered)
    assert [t["question"] for t in turns] == ["How many people can CECOT hold?", "x"]
    assert turns[0]["quotes"] == first["quotes"] and turns[1]["quotes"] == []
    assert "qa-card" in card(fake_engine, turns[0])
    view = reader(fake_engine, turns, f"?doc={doc_id}&p=1&hl={start}-{end}")
    assert f'data-start="{start}"' in view and 'class="qa-active"' in view
    assert "No article" in reader(fake_engine, turns, "?doc=nope")
    assert load_turns(fake_engine, "junk") == [] and load_turns(fake_engine, None) == []
    # A tentative answer stays tentative when the page reloads the stored conversation.
    perhaps = load_turns(fake_engine, [dict(first, answered=True, tentative=True)])[0]
    assert perhaps["tentative"] and "Perhaps from the articles" in card(fake_engine, perhaps)
    assert load_turns(fake_engine, [first])[0]["tentative"] is bool(first["tentative"])


def test_ui_step_always_returns_a_well_formed_update(fake_engine):
    import json

    from qa.serve.web import FAILURE, ui_step

    cases = [
        ("How many people can CECOT hold?", 3, None, None, None),
        ("", 3, None, None, []),
        ("ships \ud800?", "3", "hybrid", [], [{"junk": 1}]),
        ("x" * 5000, float("nan"), "nope", ["../x"], "turns"),
        (None, None, None, None, None),
        ("What does that name stand for?", 50, "sentences", ["001_38b38ab778929121", "nope"], None),
    ]
    turns = []
    for message, k, mode, doc_ids, given in cases:
        messages, box, turns_out, stored, reader, export = ui_step(
            fake_engine, message, k, mode, doc_ids, given if given is not None else turns
        )
        assert messages[-1]["role"] == "assistant" and messages[-1]["content"] != FAILURE
        assert turns_out is stored and isinstance(export, str) and (reader is None or isinstance(reader, str))
        json.dumps([messages, box, turns_out, reader, export], ensure_ascii=False).encode(
            "utf-8"
        )  # what goes back to the page
        if turns_out[-1].get("error"):
            assert box == (message if isinstance(message, str) else "").replace("\ud800", "\ufffd")
        else:
            assert box == "" and "qa-card" in messages[-1]["content"]
        turns = turns_out
    assert [t["turn"] for t in turns] == list(range(1, len(turns) + 1))
