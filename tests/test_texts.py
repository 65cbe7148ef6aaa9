"""The memory-mapped text store (qa/texts.py): every slice is the text's own slice."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qa.data import Document
from qa.index.texts import BIN, TABLE, Documents, MappedTexts, Texts, encode, table_problem, write

SAMPLES = [
    "",
    "Plain ASCII, as most news is.",
    "Café, naïve, São Paulo: Latin-1 only.",
    "An em dash — and “curly quotes” need two bytes.",
    "An astral character 🦜 needs four.",
    "A lone surrogate \ud800 stays one character.",
    "A high \ud83d and a low \ude00 surrogate, apart, stay two characters.",
    "Even side by side (\ud83d\ude00) they stay two.",
]


@pytest.mark.parametrize(
    "text,width", [(SAMPLES[1], 1), (SAMPLES[2], 1), (SAMPLES[3], 2), (SAMPLES[4], 4), (SAMPLES[5], 4)]
)
def test_each_text_takes_the_narrowest_width_that_fits(text, width):
    data, got = encode(text)
    assert got == width and len(data) == width * len(text)


def test_every_slice_of_every_text_is_the_same_as_python_s(tmp_path):
    write(SAMPLES, tmp_path)
    stored = MappedTexts(tmp_path)
    assert len(stored) == len(SAMPLES) and stored.lengths.tolist() == [len(t) for t in SAMPLES]
    for i, text in enumerate(SAMPLES):
        assert stored.text(i) == text
        for start in range(len(text) + 1):
            for end in range(start, len(text) + 1):
                assert stored.slice(i, start, end) == text[start:end]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=40), max_size=6), st.data())
def test_stored_texts_slice_like_python_strings(tmp_path_factory, texts, data):
    folder = tmp_path_factory.mktemp("texts")
    write(texts, folder)
    stored = MappedTexts(folder)
    for i, text in enumerate(texts):
        assert stored.text(i) == text
        start = data.draw(st.integers(0, len(text)))
        end = data.draw(st.integers(start, len(text)))
        assert stored.slice(i, start, end) == text[start:end]


def test_a_table_that_does_not_tile_the_file_is_refused(tmp_path):
    write(SAMPLES[1:4], tmp_path)
    table = np.load(tmp_path / TABLE)
    size = (tmp_path / BIN).stat().st_size
    assert table_problem(table, size) == ""
    assert "tile" in table_problem(table, size + 1)
    bad = table.copy()
    bad[1, 1] = 3
    assert "width" in table_problem(bad, size)
    bad = table.copy()
    bad[2, 2] += 1
    assert "tile" in table_problem(bad, size)
    np.save(tmp_path / TABLE, bad)
    with pytest.raises(ValueError):
        MappedTexts(tmp_path)


def test_documents_read_their_text_from_the_store_and_keep_their_metadata():
    headers = [Document(doc_id=f"d{i}", text="", title=f"T{i}", pages=(0,)) for i in range(3)]
    docs = Documents(headers, Texts(["alpha", "beta", "gamma"]))
    assert len(docs) == 3 and docs[1].text == "beta" and docs[-1].text == "gamma"
    assert docs[1].title == "T1" and docs.doc_id(2) == "d2" and docs.header(0).text == ""
    assert [d.text for d in docs] == ["alpha", "beta", "gamma"] and [d.doc_id for d in docs[1:]] == ["d1", "d2"]
    with pytest.raises(IndexError):
        docs[3]


def test_catalogs_list_the_documents_without_reading_a_text(fake_engine, monkeypatch):
    """Menus and listings take the metadata only: no text is read for them."""
    texts = fake_engine.index.documents.texts
    monkeypatch.setattr(type(texts), "text", lambda self, doc: pytest.fail("a text was read"))
    catalog = fake_engine.catalog
    assert [d.doc_id for d in catalog] == [fake_engine.index.documents.doc_id(i) for i in range(len(catalog))]
    assert all(d.text == "" and d.title for d in catalog)
    from qa.serve.web import _doc_choices

    assert [value for _, value in _doc_choices(fake_engine)] == [d.doc_id for d in catalog]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=40), min_size=1, max_size=6), st.data())
def test_many_slices_at_once_are_the_slices_one_at_a_time(tmp_path_factory, texts, data):
    folder = tmp_path_factory.mktemp("texts")
    write(texts, folder)
    ranges = data.draw(
        st.lists(st.tuples(st.integers(0, len(texts) - 1), st.integers(0, 45), st.integers(0, 45)), max_size=12)
    )
    docs, starts, ends = (np.array([r[i] for r in ranges], dtype=np.int64) for i in range(3))
    for store in (MappedTexts(folder), Texts(texts)):
        # Ranges past the end and reversed ones too: clipped to the text, empty when reversed.
        assert store.slices(docs, starts, ends) == [store.slice(d, a, b) for d, a, b in ranges]
        assert store.slices(docs, starts, ends) == [
            texts[d][max(0, min(a, len(texts[d]))) : max(0, min(b, len(texts[d])))] for d, a, b in ranges
        ]
