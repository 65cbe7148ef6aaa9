"""The index folder: manifest round trip, atomic writes, and one-line errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from qa import index as index_mod
from .doubles import HashEmbedder
from qa.index import IndexProblem, load
from qa.pipeline import build_index, open_engine
from qa.settings import Settings

from .conftest import SEEDS


@pytest.fixture()
def built(tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(SEEDS, docs)
    settings = Settings(docs=docs, index=tmp_path / "index")
    build_index(settings, embedder=HashEmbedder(64))
    return settings


def test_manifest_round_trip(built):
    manifest = json.loads((built.index / "manifest.json").read_text())
    assert manifest["format_version"] == index_mod.FORMAT_VERSION
    assert manifest["model"] == {"name": "hash-64", "dimension": 64, "normalized": True}
    assert manifest["chunking"]["chunk_size"] == built.chunk_size
    assert set(manifest["corpus"]["documents"]) == {p.stem for p in SEEDS.glob("*.txt")}
    index = load(built.index)
    assert index.manifest == manifest
    assert index.sentence_vectors.ntotal == len(index.sentences) == manifest["counts"]["sentences"]
    for d, doc in enumerate(index.documents):
        assert doc.text == (SEEDS / f"{doc.doc_id}.txt").read_text(encoding="utf-8")
    # Every stored range is an exact slice of its document.
    for table in (index.paragraphs, index.sentences, index.chunks):
        for row in table[:, :3]:
            d, s, e = (int(x) for x in row)
            assert 0 <= s < e <= len(index.documents[d].text)


def test_no_pickle_in_the_index(built):
    for path in built.index.rglob("*.npy"):
        np.load(path, allow_pickle=False)  # raises if any array needs pickle
    for path in built.index.rglob("*"):
        assert path.suffix not in (".pkl", ".pickle")


def test_catalog_titles_and_outlets(built):
    index = load(built.index)
    by_id = {d.doc_id: d for d in index.documents}
    assert by_id["001_38b38ab778929121"].outlet == "Daily Kos"
    assert by_id["003_03aaa9c74d7f32c9"].outlet == "darealprisonart.news"
    assert by_id["002_993d54546c6b6f49"].title.startswith("El Salvador Proposes")


def test_model_mismatch_is_one_line(built):
    with pytest.raises(IndexProblem) as err:
        open_engine(built, embedder=HashEmbedder(64), model="all-MiniLM-L6-v2")
    msg = str(err.value)
    assert "hash-64" in msg and "python -m qa index" in msg and "\n" not in msg


def test_changed_corpus_is_detected(built):
    open_engine(built, embedder=HashEmbedder(64), docs=built.docs)  # fresh: fine
    path = built.docs / "000_6022e9d6bef41df7.txt"
    path.write_text(path.read_text(encoding="utf-8") + "\nOne more line.\n", encoding="utf-8")
    (built.docs / "new.md").write_text("# New\n\nA new article about something else.\n", encoding="utf-8")
    with pytest.raises(IndexProblem) as err:
        open_engine(built, embedder=HashEmbedder(64), docs=built.docs)
    msg = str(err.value)
    assert "1 added" in msg and "1 changed" in msg and "rebuild with: python -m qa index" in msg


def test_failed_build_keeps_previous_index(built, monkeypatch):
    before = (built.index / "manifest.json").read_text()
    import faiss

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(faiss, "write_index", boom)
    with pytest.raises(OSError):
        build_index(built, embedder=HashEmbedder(64))
    monkeypatch.undo()
    assert (built.index / "manifest.json").read_text() == before
    load(built.index)
    assert not list(built.index.parent.glob(".index.building-*")), "temporary folder cleaned up"


def test_interrupted_swap_falls_back_to_previous(built):
    # A crash between the two renames leaves only the previous copy: it is still found.
    previous = built.index.with_name(".index.previous")
    built.index.rename(previous)
    assert load(built.index).path == previous


@pytest.mark.parametrize("victim", ["sentences.faiss", "chunks.npy", "documents.jsonl", "manifest.json"])
def test_damaged_file_is_named(built, victim):
    path = built.index / victim
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexProblem) as err:
        load(built.index)
    assert victim in str(err.value) and "\n" not in str(err.value)


def test_manifest_cannot_point_outside(built):
    path = built.index / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["files"]["../../etc/passwd"] = 10
    path.write_text(json.dumps(manifest))
    with pytest.raises(IndexProblem, match="outside the index"):
        load(built.index)


def test_missing_index_says_how_to_build(tmp_path):
    with pytest.raises(IndexProblem, match="python -m qa index"):
        load(tmp_path / "nothing")


def test_refuses_to_replace_a_folder_of_other_files(tmp_path):
    target = tmp_path / "my-documents"
    target.mkdir()
    (target / "thesis.docx").write_text("precious")
    settings = Settings(docs=SEEDS, index=target)
    with pytest.raises(IndexProblem, match="refusing to replace"):
        build_index(settings, embedder=HashEmbedder(64))
    assert (target / "thesis.docx").read_text() == "precious"


@pytest.mark.parametrize("kind", ["ivf-sq8", "hnsw-sq8"])
def test_approximate_vector_index_kinds_answer_verbatim(tmp_path, kind):
    # Large corpora get an IVF or HNSW index (qa/index/vectors.py); the whole query path must work on them.
    settings = Settings(docs=SEEDS, index=tmp_path / "index", vector_index=kind)
    build_index(settings, embedder=HashEmbedder(64))
    manifest = json.loads((settings.index / "manifest.json").read_text())
    assert manifest["vectors"]["sentences"]["kind"] == kind
    engine = open_engine(settings, embedder=HashEmbedder(64))
    answer = engine.ask("How many people can CECOT hold?", k=5)
    assert answer.quotes
    for q in answer.quotes:
        assert q.text == engine.index.documents[engine.index.doc_index[q.doc_id]].text[q.start : q.end]
