"""A PDF whose metadata title is junk ("about:blank", a file name) is titled from its text."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from qa.ingest.corpus import scan
from qa.ingest.extract import extract, junk_title

MIXED = Path(__file__).resolve().parent / "data" / "mixed"


@pytest.mark.parametrize(
    "title", ["about:blank", "Microsoft Word - draft 3.docx", "annual_report_v2.pdf", "Untitled-1", "  ", "2024"]
)
def test_junk_pdf_titles_fall_back_to_the_first_heading_line(tmp_path, title):
    import pypdf

    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(MIXED / "windfarm.pdf"))
    writer.add_metadata({"/Title": title})
    buffer = io.BytesIO()
    writer.write(buffer)
    assert junk_title(title)
    assert "title" not in extract("report.pdf", buffer.getvalue()).meta
    (tmp_path / "report.pdf").write_bytes(buffer.getvalue())
    documents, _ = scan(tmp_path)
    assert documents[0].title == "Northfield Wind Cooperative: Annual Report"  # its first line


def test_real_titles_are_kept():
    assert not junk_title("Annual Report of the Northfield Wind Cooperative")
    assert not junk_title("PDF files and the law")
    assert (
        extract("windfarm.pdf", (MIXED / "windfarm.pdf").read_bytes()).meta["title"]
        == "Annual Report of the Northfield Wind Cooperative"
    )


# ---------------------------------------------------------------- Markdown stored as readable text

from qa.ingest.extract import markdown_text  # noqa: E402

MARKDOWN = """---
title: Harbour notes
---

# The **harbour** reopens

Ferries *resume* their `winter` timetable on __Monday__, says [the port](https://port.example/a "Port").
![Crane at dawn](https://port.example/crane.jpg)
> "We are ready," the harbour master said.
Prices rise by 5\\*2 percent, see ~~old~~ new tariffs and snake_case_names stay.

[port]: https://port.example

```
code **stays** as written
```
"""


def test_markdown_is_stored_as_the_text_it_shows(tmp_path):
    got = extract("notes.md", MARKDOWN.encode())
    assert got.meta == {"title": "Harbour notes"}
    assert got.text.startswith(
        "# The harbour reopens\n\nFerries resume their winter timetable on Monday, says the port.\n"
    )
    assert "Crane at dawn" not in got.text and '"We are ready," the harbour master said.' in got.text
    assert "5*2 percent" in got.text and "old new tariffs" in got.text and "snake_case_names" in got.text
    assert "https://" not in got.text.split("```")[0] and "[port]" not in got.text
    assert "code **stays** as written" in got.text  # fenced code is code
    assert markdown_text("No markup at all.\r\nSecond line.\r\n") == "No markup at all.\r\nSecond line.\r\n"


def test_quotes_from_markdown_are_exact_slices_without_syntax(tmp_path):
    from .doubles import HashEmbedder
    from qa.pipeline import build_index, open_engine
    from qa.settings import Settings

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "notes.md").write_text(MARKDOWN, encoding="utf-8")
    settings = Settings(docs=docs, index=tmp_path / "index")
    build_index(settings, embedder=HashEmbedder(64))
    engine = open_engine(settings, embedder=HashEmbedder(64))
    answer = engine.ask("When do ferries resume their winter timetable?", k=3)
    text = engine.index.documents[0].text
    assert answer.quotes
    for q in answer.quotes:
        assert q.text == text[q.start : q.end] and "**" not in q.text and "](" not in q.text


def test_hostile_markdown_becomes_harmless_text():
    text = markdown_text(
        "See [click](javascript:window.__pwned=1) and ![](https://evil.example/pixel.png) and <script>x</script>.\n"
    )
    assert text == "See click and  and <script>x</script>.\n"  # HTML stays text: the chat and reader escape it
