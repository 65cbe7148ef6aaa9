"""Offsets are exact, boilerplate and repeats are recognised (no model needed)."""

from __future__ import annotations

import pytest

from qa.ingest.chunking import layout, split_paragraphs
from qa.ingest.cleaning import near_duplicate, paragraph_skip_reason, sentence_skip_reason
from qa.ingest.corpus import read_corpus

from .conftest import SEEDS

DOCS = read_corpus(SEEDS)


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.doc_id)
def test_offsets_are_exact_and_ordered(doc):
    lay = layout(doc.text)
    for start, end, _ in lay.paragraphs:
        piece = doc.text[start:end]
        assert piece == piece.strip() and piece
    for start, end, para, _ in lay.sentences:
        ps, pe, _ = lay.paragraphs[para]
        assert ps <= start < end <= pe, "a sentence never crosses its paragraph"
        assert doc.text[start:end].strip() == doc.text[start:end]
    starts = [s for s, *_ in lay.sentences]
    assert starts == sorted(starts)
    # Chunks cover the text in order and are exact slices.
    assert lay.chunks[0][0] <= 3 and lay.chunks[-1][1] >= len(doc.text.rstrip()) - 3
    for (s0, _), (s1, _) in zip(lay.chunks, lay.chunks[1:]):
        assert s1 > s0


def test_boilerplate_is_marked_by_rule():
    by_id = {d.doc_id: d for d in DOCS}
    skipped = {}
    for doc in DOCS:
        for s, e, _, reason in layout(doc.text).sentences:
            if reason:
                skipped[doc.text[s:e]] = reason
    # Donation appeal, comment prompts, site furniture, image link, repost note.
    for text in (
        "Leave a reply",
        "Shopping cart",
        "Logo",
        "Daily Kos is supported by readers like you.",
        "Let us know your thoughts!",
        "What do you think about this plan?",
    ):
        assert text in skipped, text
    assert any(t.startswith("![](https://darealprisonart.news") for t in skipped)
    assert any(t.startswith("This post was originally published") for t in skipped)
    # Real content is never marked.
    assert "CECOT, El Salvador’s Terrorism Confinement Center, has a maximum capacity of 40,000." not in skipped
    assert by_id


def test_repeated_paragraphs_are_marked_once():
    doc = next(d for d in DOCS if d.doc_id.startswith("004"))
    lay = layout(doc.text)
    repeated = [doc.text[s:e] for s, e, r in lay.paragraphs if r == "repeated paragraph"]
    kept = [doc.text[s:e] for s, e, r in lay.paragraphs if not r]
    assert len(repeated) >= 4
    for text in repeated:
        assert text in kept, "the first copy stays quotable"


def test_general_rules_on_other_text():
    assert paragraph_skip_reason("Subscribe") == "short line without a sentence"
    assert paragraph_skip_reason("[Read more](https://example.com/more)") == "link only"
    assert paragraph_skip_reason("https://example.com/a/b") == "link only"
    assert sentence_skip_reason("Sign up for our newsletter to get the latest news.") == "call to action"
    assert sentence_skip_reason("Please donate to keep this site running.") == "call to action"
    assert sentence_skip_reason("Share this article with your friends.") == "call to action"
    assert sentence_skip_reason("Is the bridge safe?") == "question"
    assert sentence_skip_reason("The bridge was closed for repairs in 2019.") == ""
    assert near_duplicate("The prison holds 40,000 people.", "The prison holds 40,000 people!")
    assert not near_duplicate("The prison holds 40,000 people.", "Rubio met Bukele at his lake residence.")


def test_paragraphs_one_per_line_and_hard_wrapped():
    text = "Headline here\nFirst paragraph ends.\nSecond one is\nwrapped across lines.\n\nThird."
    paras = [text[s:e] for s, e in split_paragraphs(text)]
    assert paras == ["Headline here", "First paragraph ends.", "Second one is\nwrapped across lines.", "Third."]
