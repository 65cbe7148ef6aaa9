"""Cleaning by general rules, on documents other than the seeds and in every format.

The rules (qa/ingest/cleaning.py, applied by qa/ingest/chunking.py's layout) name kinds of
boilerplate, never strings of a particular article: link-only lines, headings,
bylines, short lines without a sentence, calls to comment / share / subscribe /
donate, cookie and copyright notices, and repeated paragraphs.  The HTML extractor
writes a page as paragraphs and Markdown headings, so a web page meets the same rules
as a text file; tests/data/mixed/ has one of each format.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.answer.engine import Engine
from qa.ingest.chunking import layout
from qa.ingest.cleaning import paragraph_skip_reason, sentence_skip_reason
from qa.ingest.corpus import scan
from .doubles import HashEmbedder
from qa.index import build_and_save, load
from qa.settings import Settings

MIXED = Path(__file__).resolve().parent / "data" / "mixed"


@pytest.mark.parametrize(
    "text, reason",
    [
        ("[Photo: bees on a frame](https://gazette.example/img/bees.jpg)", "link only"),
        ("https://example.org/a/b", "link only"),
        ("# Rooftop hives turn a city centre into a honey farm", "heading"),
        ("### A much longer section heading that runs on for a dozen words or so", "heading"),
        ("By Marta Ruiz", "short line without a sentence"),
        ("By Marta Ruiz and John Smith, staff writers", "byline"),
        ("Written by Jane Doe | 3 May 2024", "byline"),
        ("Share this article", "short line without a sentence"),
        ("Subscribe to our newsletter", "short line without a sentence"),
        ("© 2025 The Lakeside Courier. All rights reserved.", "site notice"),
        ("We use cookies to give you the best experience on our website.", "site notice"),
        ("Skip to main content", "short line without a sentence"),
    ],
)
def test_paragraph_rules(text, reason):
    assert paragraph_skip_reason(text) == reason


@pytest.mark.parametrize(
    "text, reason",
    [
        ("Subscribe to our newsletter for the week's best stories.", "call to action"),
        ("Share this article with your friends and family today.", "call to action"),
        ("Let us know your thoughts in the comments below.", "call to action"),
        ("Please donate so that we can keep reporting from the coast.", "call to action"),
        ("Accept all cookies to continue reading the whole story.", "site notice"),
        ("Copyright 2024 Northfield Media Group, all of it.", "site notice"),
        ("What will the town do with the seeds that come back?", "question"),
        ("Read it.", "too short"),
    ],
)
def test_sentence_rules(text, reason):
    assert sentence_skip_reason(text) == reason


@pytest.mark.parametrize(
    "text",
    [
        "By 2030, the prison will hold 40,000 people.",
        "by the river there are twelve boats moored for the winter.",
        "Copyright law was last changed in 1998, the minister said.",
        "The newsletter reported that turnout rose by a third.",
        "The wind farm generated 48 gigawatt hours of electricity in its first year.",
        "Maintenance crews replaced 14 turbine blades after the winter storms.",
    ],
)
def test_real_sentences_are_kept(text):
    assert paragraph_skip_reason(text) == ""
    assert sentence_skip_reason(text) == ""


def marked(text: str) -> dict[str, str]:
    """Each sentence of ``text`` → why it is skipped ("" when quotable)."""
    return {text[s:e]: reason for s, e, _, reason in layout(text).sentences}


@pytest.fixture(scope="module")
def documents():
    return {d.doc_id: d for d in scan(MIXED)[0]}


def test_html_page_boilerplate_and_repeated_paragraph_are_marked(documents):
    reasons = marked(documents["library"].text)
    assert reasons["# A seed library opens at Lakeside's public library"] == "heading"
    assert reasons["By Marta Ruiz"] == "short line without a sentence"
    assert reasons["Share this article"] == "short line without a sentence"
    assert reasons["Subscribe to our newsletter"] == "short line without a sentence"
    assert (
        reasons[
            "The public library lends 1,200 seed packets every spring, and borrowers are asked to return seeds from their own harvest in the autumn."
        ]
        == ""
    )
    # The pull quote is printed twice: its first appearance may be quoted, the repeat not.
    repeat = "Every packet that comes back is a little richer than the one that went out."
    rows = [r for s, e, _, r in layout(documents["library"].text).sentences if documents["library"].text[s:e] == repeat]
    assert rows == ["", "repeated paragraph"]


def test_markdown_and_text_boilerplate_is_marked(documents):
    bee = marked(documents["beekeeping"].text)
    assert bee["# Rooftop hives turn a city centre into a honey farm"] == "heading"
    # The image line is stored as the text it shows (issue 11): none, so it is never quoted.
    assert not any("Photo: bees" in s or "](" in s for s in bee)
    assert bee["Let us know your thoughts in the comments below."] == "call to action"
    assert not any("title:" in s or "source:" in s for s in bee)  # the front matter is not text
    harbour = marked(documents["harbour"].text)
    assert harbour["Share this article"] == "short line without a sentence"
    assert (
        harbour[
            "Fishing boats had to land their catch at Kilbrook, forty kilometres along the coast, while the work went on."
        ]
        == ""
    )


def test_pdf_headings_stay_apart_from_the_sentences_after_them(documents):
    wind = marked(documents["windfarm"].text)
    assert wind["Production"] == "short line without a sentence"
    assert (
        wind[
            "The wind farm generated 48 gigawatt hours of electricity in its first year, enough for about eleven thousand homes."
        ]
        == ""
    )


def test_boilerplate_is_never_quoted(tmp_path):
    settings = Settings(docs=MIXED, index=tmp_path / "index")
    build_and_save(settings, HashEmbedder())
    index = load(settings.index)
    engine = Engine(index, HashEmbedder(), settings)
    quotable = {index.text(index.sentences, i) for i in range(len(index.sentences))}
    for banned in ("Share this article", "Subscribe to our newsletter", "By Marta Ruiz", "Let us know your thoughts"):
        assert not any(banned in s for s in quotable), banned
    repeat_start = index.documents[index.doc_index["library"]].text.rindex("Every packet that comes back")
    for question in (
        "How do I subscribe to the newsletter?",
        "Where can I share this article?",
        "Who wrote the article about the seed library?",
        "What is a little richer than the one that went out?",
        "Let us know your thoughts in the comments",
    ):
        for q in engine.ask(question, k=10).quotes:
            assert not any(
                b in q.text for b in ("Share this article", "Subscribe to our", "By Marta", "Let us know")
            ), q.text
            assert not q.text.startswith("#")
            assert not (q.doc_id == "library" and q.start == repeat_start), "quoted the repeated paragraph"
