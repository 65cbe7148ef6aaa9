"""Bring your own documents: .txt, .md, .html, .pdf and .docx, their metadata, broken files.

The corpus is tests/data/mixed/: a plain-text article (metadata from catalog.json), a
Markdown article with YAML front matter, an HTML page with scripts, styles,
navigation, a hidden element, a sidebar, a footer and calls to action, a three-page
PDF, and two files that cannot be read (bad.pdf: garbage after a PDF header;
latin1.txt: not UTF-8).

windfarm.pdf was made once with fpdf2 2.8.3 (not a dependency of the project)::

    pdf = FPDF(); pdf.set_title("Annual Report of the Northfield Wind Cooperative")
    pdf.set_creation_date(datetime(2024, 3, 15, 9, 30, tzinfo=timezone.utc))
    for heading, paragraphs in pages:   # "...Annual Report", "Production", "Maintenance"
        pdf.add_page(); pdf.set_font("Helvetica", "B", 16); pdf.multi_cell(0, 10, heading)
        pdf.set_font("Helvetica", size=11); [pdf.multi_cell(0, 6, p) for p in paragraphs]

Every test uses the HashEmbedder (``--model hash-256`` on the command line), so no
model is loaded.  The Word documents are made by each test with python-docx (a dependency).
"""

from __future__ import annotations

import io
import json
import shutil
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest

from qa.answer.engine import Engine
from qa.serve.cli import main
from qa.ingest.corpus import CorpusError, scan
from .doubles import HashEmbedder
from qa.ingest.extract import ExtractError, extract, split_front_matter
from qa.index import FORMAT_VERSION, IndexProblem, build_and_save, load
from qa.settings import Settings

MIXED = Path(__file__).resolve().parent / "data" / "mixed"
WIND = "How much electricity did the wind farm generate in its first year?"
BLADES = "How many turbine blades did the maintenance crews replace after the winter storms?"
SEEDS_Q = "How many seed packets does the public library lend every spring?"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def mixed_index(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mixed") / "index"
    settings = Settings(docs=MIXED, index=folder)
    index, _ = build_and_save(settings, HashEmbedder())
    return settings, load(folder)


@pytest.fixture(scope="module")
def mixed_engine(mixed_index):
    settings, index = mixed_index
    return Engine(index, HashEmbedder(), settings)


def doc(index, doc_id):
    return index.documents[index.doc_index[doc_id]]


# ---------------------------------------------------------------- extraction, per format


def test_html_keeps_the_article_and_drops_code_navigation_and_hidden_text():
    got = extract("library.html", (MIXED / "library.html").read_bytes())
    assert got.format == "html" and got.pages == ()
    text = got.text
    assert "The public library lends 1,200 seed packets every spring" in text
    assert "“We want the town to grow its own food again,” said the librarian, Tom Okafor." in text
    for gone in (
        "tracker",  # <script> in <head>
        "font-family",  # <style>
        "Advertisement: buy cheap tickets",  # <script> inside the article
        "About the Lakeside Courier",  # <nav>
        "500 rose bushes",  # <div hidden>
        "cycle lanes",  # <aside> outside <main>
        "All rights reserved",  # page <footer> outside <main>
        "<p>",
        "&nbsp;",
    ):
        assert gone not in text, gone
    # One paragraph per block, headings marked as Markdown headings.
    paragraphs = text.split("\n\n")
    assert paragraphs[0] == "# A seed library opens at Lakeside's public library"
    assert paragraphs[1] == "By Marta Ruiz"
    assert paragraphs[-2:] == ["Share this article", "Subscribe to our newsletter"]
    assert got.meta == {
        "title": "A seed library opens at Lakeside's public library",  # og:title before <title>
        "outlet": "The Lakeside Courier",
        "date": "2025-04-11",
        "url": "https://courier.example/2025/04/seed-library",
    }


def test_html_without_main_uses_the_body_and_survives_deep_nesting():
    page = b"<html><head><title>Plain page</title></head><body><nav>Menu</nav>" + b"<div>" * 5000
    page += b"Deep text sits here.<br>Second line.<br><br>New paragraph.</div><table><tr><td>a</td><td>b</td></tr></table></body></html>"
    got = extract("p.htm", page)
    assert got.meta == {"title": "Plain page"}
    assert "Menu" not in got.text
    assert got.text == "Deep text sits here.\nSecond line.\n\nNew paragraph.\n\na b"


def test_html_declared_charset_is_honoured():
    page = '<html><head><meta charset="iso-8859-1"><title>Café</title></head><body><p>Un café crème.</p></body></html>'
    got = extract("c.html", page.encode("latin-1"))
    assert got.text == "Un café crème." and got.meta["title"] == "Café"


def test_markdown_front_matter_is_metadata_not_text():
    raw = (MIXED / "beekeeping.md").read_bytes().decode("utf-8")
    got = extract("beekeeping.md", raw.encode())
    assert got.format == "markdown"
    assert got.meta == {
        "title": "Rooftop hives turn a city centre into a honey farm",
        "outlet": "The Midland Gazette",  # "source:" in the front matter
        "date": "2025-06-02",  # a YAML date
        "url": "https://gazette.example/rooftop-hives",
    }
    assert not got.text.startswith("---") and "source:" not in got.text
    assert got.text.startswith("# Rooftop hives")
    # The body is the file after its front matter, as the text it shows (issue 11): the
    # image line shows no text, so none is stored, not its Markdown syntax.
    body = raw[raw.index("# Rooftop hives") :]
    assert got.text == body.replace("[Photo: bees on a frame](https://gazette.example/img/bees.jpg)", "")


@pytest.mark.parametrize(
    "text",
    [
        "---\n\nA document that opens with a rule.\n\n---\n\nMore text.\n",  # YAML of a plain string
        "---\ntitle: [unclosed\n---\nBody.\n",  # broken YAML
        "No front matter at all.\n",
    ],
)
def test_text_that_only_looks_like_front_matter_stays_content(text):
    meta, start = split_front_matter(text)
    assert (meta, start) == ({}, 0)
    assert extract("x.md", text.encode()).text == text


def test_pdf_text_is_kept_per_page_with_page_starts():
    got = extract("windfarm.pdf", (MIXED / "windfarm.pdf").read_bytes())
    assert got.format == "pdf"
    assert len(got.pages) == 3 and got.pages[0] == 0
    bounds = list(got.pages) + [len(got.text) + 2]
    pages = [got.text[a : b - 2] for a, b in zip(bounds, bounds[1:])]
    assert pages[0].startswith("Northfield Wind Cooperative: Annual Report\n")
    assert pages[1].startswith("Production\nThe wind farm generated 48 gigawatt hours")
    assert pages[2].startswith("Maintenance\nMaintenance crews replaced 14 turbine blades")
    # A line wrapped by the page is joined again; a heading keeps its own line.
    assert "enough for about eleven thousand homes." in pages[1]
    assert got.meta == {"title": "Annual Report of the Northfield Wind Cooperative", "date": "2024-03-15"}


def test_text_files_are_stored_exactly_as_they_decode():
    data = "\ufeffA line with a byte-order mark.\r\nAnd Windows line ends.\r\n".encode("utf-8")
    assert extract("bom.txt", data).text == data.decode("utf-8")
    assert extract("bom.md", data).text == data.decode("utf-8")


def test_unreadable_files_raise_a_short_reason():
    with pytest.raises(ExtractError, match="^not a readable PDF$"):
        extract("bad.pdf", (MIXED / "bad.pdf").read_bytes())
    with pytest.raises(ExtractError, match=r"^not valid UTF-8 \(byte 3\)$"):
        extract("latin1.txt", (MIXED / "latin1.txt").read_bytes())
    with pytest.raises(ExtractError, match="empty"):
        extract("e.txt", b"  \n")


def test_pdf_without_text_and_encrypted_pdf_are_refused(tmp_path):
    from pypdf import PdfReader, PdfWriter

    blank = PdfWriter()
    blank.add_blank_page(width=200, height=200)
    data = io.BytesIO()
    blank.write(data)
    with pytest.raises(ExtractError, match="without a text layer"):
        extract("scan.pdf", data.getvalue())

    plain = extract("windfarm.pdf", (MIXED / "windfarm.pdf").read_bytes())
    for user, algorithm in (("", "AES-256"), ("", "RC4-128"), ("secret", "AES-256"), ("secret", "RC4-128")):
        locked = PdfWriter(clone_from=PdfReader(MIXED / "windfarm.pdf"))
        locked.encrypt(user_password=user, owner_password="owner", algorithm=algorithm)
        data = io.BytesIO()
        locked.write(data)
        if user:  # a password is needed to read it
            with pytest.raises(ExtractError, match="^an encrypted PDF$"):
                extract("locked.pdf", data.getvalue())
        else:  # only editing is restricted: it opens without a password
            assert extract("restricted.pdf", data.getvalue()) == plain


def word_document(hidden: str = "") -> bytes:
    """A small .docx: a title, a heading, a paragraph (with ``hidden`` text in Word's hidden
    font), a table with a merged cell, an empty paragraph, a link, and its properties."""
    import docx
    from datetime import datetime

    d = docx.Document()
    d.core_properties.title = "Port of Westhaven Annual Review"
    d.core_properties.created = datetime(2024, 5, 2, 10, 0)
    d.add_heading("Port of Westhaven", 0)
    d.add_heading("Traffic", 1)
    p = d.add_paragraph("The port handled 1,200   container ships in 2023,\ta record.")
    if hidden:
        p.add_run(" " + hidden).font.hidden = True
    table = d.add_table(rows=3, cols=2)
    for (r, c), text in {(0, 0): "Berth", (0, 1): "Depth", (1, 0): "North quay", (1, 1): "14 metres"}.items():
        table.cell(r, c).text = text
    table.cell(2, 0).merge(table.cell(2, 1)).text = "Both berths reopened in March."
    d.add_paragraph("")
    d.add_heading("Dredging", 2)
    d.add_paragraph("Dredging of the outer channel starts in June.")
    out = io.BytesIO()
    d.save(out)
    return out.getvalue()


def test_word_documents_keep_paragraphs_tables_and_headings_in_order_without_hidden_text():
    got = extract("review.docx", word_document(hidden="Do not publish: the harbour master resigns."))
    assert got.format == "docx" and got.pages == ()
    assert got.text == (
        "# Port of Westhaven\n\n# Traffic\n\n"
        "The port handled 1,200 container ships in 2023, a record.\n\n"
        "Berth | Depth\n\nNorth quay | 14 metres\n\nBoth berths reopened in March.\n\n"
        "## Dredging\n\nDredging of the outer channel starts in June."
    )
    assert got.meta == {"title": "Port of Westhaven Annual Review", "date": "2024-05-02"}


def test_damaged_foreign_and_oversized_word_files_are_refused(monkeypatch):
    import zipfile

    for data in (b"garbage", (MIXED / "windfarm.pdf").read_bytes(), b"\xd0\xcf\x11\xe0 an old .doc"):
        with pytest.raises(ExtractError, match=r"^not a readable Word document \(\.docx\)$"):
            extract("x.docx", data)
    empty_zip = io.BytesIO()
    with zipfile.ZipFile(empty_zip, "w") as z:
        z.writestr("readme.txt", "not a Word document")
    with pytest.raises(ExtractError, match="not a readable Word document"):
        extract("x.docx", empty_zip.getvalue())
    import docx

    blank = io.BytesIO()
    docx.Document().save(blank)
    with pytest.raises(ExtractError, match="^no text$"):
        extract("blank.docx", blank.getvalue())
    monkeypatch.setattr("qa.ingest.extract.DOCX_MAX_UNPACKED", 10_000)
    with pytest.raises(ExtractError, match="^a Word document that unpacks to over 0 MB$"):
        extract("x.docx", word_document())


def test_a_folder_with_word_documents_answers_with_verbatim_quotes(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "review.docx").write_bytes(word_document(hidden="The harbour master resigns in July."))
    shutil.copy(MIXED / "harbour.txt", docs / "harbour.txt")
    (docs / "broken.docx").write_bytes(b"PK\x03\x04 cut short")
    settings = Settings(docs=docs, index=tmp_path / "index")
    build_and_save(settings, HashEmbedder())
    index = load(settings.index)
    review = doc(index, "review")
    assert (review.title, review.date, review.format) == ("Port of Westhaven Annual Review", "2024-05-02", "docx")
    assert index.manifest["corpus"]["skipped"] == [
        {"path": "broken.docx", "reason": "not a readable Word document (.docx)"}
    ]
    assert "resigns" not in review.text
    engine = Engine(index, HashEmbedder(), settings)
    answer = engine.ask("How many container ships did the port handle in 2023?", k=3)
    assert answer.quotes[0].doc_id == "review" and "1,200 container ships" in answer.quotes[0].text
    for q in answer.quotes:
        assert q.text == doc(index, q.doc_id).text[q.start : q.end]
    assert "resign" not in " ".join(q.text for q in engine.ask("Who resigns in July?", k=5).quotes)


# ---------------------------------------------------------------- the folder


def test_scan_reads_the_rest_of_the_folder_and_names_what_it_skipped():
    documents, skipped = scan(MIXED)
    assert [d.doc_id for d in documents] == ["beekeeping", "harbour", "library", "windfarm"]
    assert [(s.path, s.reason) for s in skipped] == [
        ("bad.pdf", "not a readable PDF"),
        ("latin1.txt", "not valid UTF-8 (byte 3)"),
    ]
    assert skipped[0].message() == "skipped bad.pdf: not a readable PDF"
    # Plain text is stored exactly as the file's bytes decode.
    harbour = next(d for d in documents if d.doc_id == "harbour")
    assert harbour.text == (MIXED / "harbour.txt").read_text(encoding="utf-8")
    assert harbour.format == "text"


def test_metadata_precedence_catalog_then_file_then_guess(tmp_path):
    shutil.copy(MIXED / "library.html", tmp_path / "library.html")
    shutil.copy(MIXED / "beekeeping.md", tmp_path / "beekeeping.md")
    (tmp_path / "plain.txt").write_text(
        "Ferries resume their winter timetable\n\nThe ferry leaves at nine every morning.\n"
    )
    (tmp_path / "catalog.json").write_text(
        json.dumps({"library": {"title": "Catalog title", "date": "2025-04-12T10:00:00+02:00"}})
    )
    by_id = {d.doc_id: d for d in scan(tmp_path)[0]}
    lib = by_id["library"]
    # The catalog wins where it speaks; the page's own tags fill in the rest.
    assert (lib.title, lib.outlet, lib.date, lib.url) == (
        "Catalog title",
        "The Lakeside Courier",
        "2025-04-12",
        "https://courier.example/2025/04/seed-library",
    )
    bee = by_id["beekeeping"]
    assert (bee.title, bee.outlet, bee.date) == (
        "Rooftop hives turn a city centre into a honey farm",
        "The Midland Gazette",
        "2025-06-02",
    )
    plain = by_id["plain"]
    assert (plain.title, plain.outlet, plain.date, plain.url) == ("Ferries resume their winter timetable", "", "", "")


def test_same_document_id_twice_keeps_the_first_and_reports_the_other(tmp_path):
    (tmp_path / "note.md").write_text("The council met on Tuesday to approve the budget.\n")
    (tmp_path / "note.txt").write_text("The council met again on Friday to approve the roads plan.\n")
    documents, skipped = scan(tmp_path)
    assert [d.path for d in documents] == ["note.md"]
    assert skipped[0].message() == "skipped note.txt: same document id 'note' as note.md"


def test_a_folder_of_only_broken_files_is_an_error(tmp_path):
    shutil.copy(MIXED / "bad.pdf", tmp_path / "bad.pdf")
    shutil.copy(MIXED / "latin1.txt", tmp_path / "latin1.txt")
    with pytest.raises(CorpusError, match="no readable documents"):
        scan(tmp_path)
    code, out, err = run(
        "index", "--docs", str(tmp_path), "--index", str(tmp_path / "idx"), "--model", "hash-256", "--quiet"
    )
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: no readable documents")
    assert "Traceback" not in err
    assert not (tmp_path / "idx").exists()


# ---------------------------------------------------------------- the index and answers


def test_index_stores_the_extracted_text_and_every_span_slices_it(mixed_index):
    settings, index = mixed_index
    assert index.manifest["format_version"] == FORMAT_VERSION
    assert [d.doc_id for d in index.documents] == ["beekeeping", "harbour", "library", "windfarm"]
    assert index.manifest["corpus"]["skipped"] == [
        {"path": "bad.pdf", "reason": "not a readable PDF"},
        {"path": "latin1.txt", "reason": "not valid UTF-8 (byte 3)"},
    ]
    fresh = {d.doc_id: d for d in scan(MIXED)[0]}
    for d in index.documents:
        assert d.text == fresh[d.doc_id].text and d.pages == fresh[d.doc_id].pages
        assert d.indexed_at
    wind = doc(index, "windfarm")
    assert wind.format == "pdf" and wind.pages == extract("w.pdf", (MIXED / "windfarm.pdf").read_bytes()).pages
    for table in (index.paragraphs, index.sentences, index.chunks):
        for d, s, e in table[:, :3]:
            assert 0 <= s < e <= len(index.documents[d].text)
            assert index.documents[d].text[s:e].strip() == index.documents[d].text[s:e]
    # Sentences never cross a page boundary.
    w = index.doc_index["windfarm"]
    for _, s, e in index.sentences[index.sentences[:, 0] == w][:, :3]:
        assert wind.page_at(int(s)) == wind.page_at(int(e) - 1)


@pytest.mark.parametrize(
    "question, doc_id, needle, page",
    [
        (WIND, "windfarm", "48 gigawatt hours", 2),
        (BLADES, "windfarm", "14 turbine blades", 3),
        (SEEDS_Q, "library", "1,200 seed packets", None),
        ("How much honey did the rooftop hives produce last season?", "beekeeping", "240 kilograms", None),
        ("How many trawlers can the new quay berth at once?", "harbour", "twelve trawlers", None),
    ],
)
def test_answers_quote_exact_text_with_pages_for_pdfs(mixed_index, mixed_engine, question, doc_id, needle, page):
    _, index = mixed_index
    answer = mixed_engine.ask(question, k=3)
    top = answer.quotes[0]
    assert (top.doc_id, needle in top.text) == (doc_id, True)
    d = doc(index, doc_id)
    for q in answer.quotes:
        assert q.text == doc(index, q.doc_id).text[q.start : q.end]
    assert index.page_of(doc_id, top.start) == page
    assert index.page_of(index.doc_index[doc_id], top.end - 1) == page
    assert d.page_at(top.start) == page


def test_cli_ask_cites_pages_dates_and_urls(mixed_index):
    settings, _ = mixed_index
    code, out, _ = run("ask", WIND, "--index", str(settings.index), "-k", "1")
    assert code == 0
    # Sources in words (issue 11): outlet (or "outlet unknown"), date as a reader writes it, page, paragraph.
    assert "Annual Report of the Northfield Wind Cooperative, outlet unknown, 15 March 2024, page 2, paragraph" in out
    code, out, _ = run("ask", BLADES, "--index", str(settings.index), "-k", "1", "--json")
    quote = json.loads(out)["quotes"][0]
    assert (quote["doc_id"], quote["page"], quote["date"]) == ("windfarm", 3, "2024-03-15")
    code, out, _ = run("ask", SEEDS_Q, "--index", str(settings.index), "-k", "1")
    assert (
        "The Lakeside Courier, 11 April 2025, paragraph" in out
        and "https://courier.example/2025/04/seed-library" in out
    )
    assert "page" not in out.split("Sources:")[1]


def test_cli_show_prints_the_stored_text_every_quote_is_cut_from(mixed_index):
    settings, index = mixed_index
    for doc_id in ("windfarm", "library", "beekeeping"):
        code, out, _ = run("show", doc_id, "--index", str(settings.index))
        assert code == 0 and out == doc(index, doc_id).text
    code, out, _ = run("ask", WIND, "--index", str(settings.index), "-k", "2", "--json")
    for q in json.loads(out)["quotes"]:
        assert doc(index, q["doc_id"]).text[q["start"] : q["end"]] == q["text"]


def test_cli_ask_outlet_restricts_to_that_outlets_documents(mixed_index):
    settings, _ = mixed_index
    code, out, _ = run("ask", SEEDS_Q, "--index", str(settings.index), "--outlet", "the midland gazette", "--json")
    assert code == 0
    assert {q["doc_id"] for q in json.loads(out)["quotes"]} == {"beekeeping"}
    code, out, _ = run(
        "ask",
        WIND,
        "--index",
        str(settings.index),
        "--outlet",
        "Coastal Times",
        "--outlet",
        "The Lakeside Courier",
        "--json",
    )
    assert {q["doc_id"] for q in json.loads(out)["quotes"]} <= {"harbour", "library"}
    code, out, err = run("ask", WIND, "--index", str(settings.index), "--outlet", "Nobody")
    assert code == 2 and out == ""
    assert err.strip() == (
        "error: no documents from outlet 'Nobody' (outlets in the index: "
        "'Coastal Times', 'The Lakeside Courier', 'The Midland Gazette')"
    )
    code, _, err = run("ask", WIND, "--index", str(settings.index), "--outlet", "Coastal Times", "--doc", "library")
    assert code == 2 and "both --doc and --outlet" in err


def test_cli_index_reports_skipped_files_and_docs_lists_them(tmp_path):
    index = tmp_path / "idx"
    code, out, err = run("index", "--docs", str(MIXED), "--index", str(index), "--model", "hash-256", "--quiet")
    assert code == 0
    assert err.splitlines() == ["skipped bad.pdf: not a readable PDF", "skipped latin1.txt: not valid UTF-8 (byte 3)"]
    assert out.startswith("indexed 4 documents: ")
    code, out, _ = run("docs", "--index", str(index), "--json")
    rows = {r["doc_id"]: r for r in json.loads(out)["documents"]}
    assert rows["windfarm"]["format"] == "pdf" and rows["windfarm"]["pages"] == 3
    assert rows["library"]["format"] == "html" and rows["library"]["outlet"] == "The Lakeside Courier"
    assert rows["harbour"]["title"] == "Port Ellery's harbour reopens"  # from catalog.json
    assert all(r["indexed_at"] and r["chunks"] >= 1 for r in rows.values())
    code, out, _ = run("docs", "--index", str(index))
    assert "3 pages" in out and "(skipped bad.pdf: not a readable PDF)" in out
    # The skipped files are part of the folder's fingerprint: the index is not stale.
    code, out, err = run("ask", WIND, "--index", str(index), "--docs", str(MIXED), "-k", "1")
    assert code == 0, err


def test_an_index_of_an_unknown_format_asks_for_a_rebuild(mixed_index, tmp_path):
    settings, _ = mixed_index
    copy = tmp_path / "future"
    shutil.copytree(settings.index, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["format_version"] = 99
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexProblem, match="rebuild with: python -m qa index"):
        load(copy)
    code, _, err = run("ask", WIND, "--index", str(copy))
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "index format 99, this version reads 1, 2 and 3; rebuild with: python -m qa index --index" in err


def test_vectors_match_the_stored_text(mixed_index):
    """The stored vectors are the embeddings of the stored slices (nothing shifted)."""
    _, index = mixed_index
    emb = HashEmbedder()
    texts = [index.text(index.chunks, i) for i in range(len(index.chunks))]
    stored = index.chunk_vectors.reconstruct_n(0, index.chunk_vectors.ntotal)
    assert np.array_equal(stored, emb.encode(texts))
