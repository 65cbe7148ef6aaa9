"""Keeping an index current: ``python -m qa index`` on a folder whose index exists
re-embeds only added and changed files, drops removed ones, and ends with exactly the
index a full rebuild makes (tables, texts, vectors, BM25, answers).

The HashEmbedder gives every text the same vector whatever else is encoded with it,
so the reused vectors must equal the rebuilt ones bit for bit.
"""

from __future__ import annotations

import io
import json
import shutil
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

import qa.index.builder as index_mod
import qa.index.store
from qa.answer.engine import Engine
from qa.serve.cli import main
from qa.data import Document
from .doubles import HashEmbedder
from qa.index import FORMAT_VERSION, build_and_save, load, stale_reason
from qa.settings import Settings
from qa.index.texts import MappedTexts

MIXED = Path(__file__).resolve().parent / "data" / "mixed"
QUESTIONS = [
    "How much electricity did the wind farm generate in its first year?",
    "How many turbine blades did the maintenance crews replace?",
    "How much did the harbour rebuild cost?",
    "How many trawlers can the new quay berth at once?",
    "How much honey did the rooftop hives produce last season?",
    "When was the old stone breakwater built?",
    "How many ferries cross the estuary each day?",
]
NEW_MD = """---
title: Ferries return to the estuary
outlet: Coastal Times
date: 2025-07-01
---
Six ferries now cross the estuary each day, after the new pier at Kilbrook opened in June.

The crossing takes twenty minutes and a return ticket costs four euros.
"""


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def folder(tmp_path) -> Path:
    docs = tmp_path / "docs"
    shutil.copytree(MIXED, docs)
    return docs


def edit(docs: Path) -> None:
    """One added, one changed, one removed; windfarm and beekeeping untouched."""
    (docs / "ferries.md").write_text(NEW_MD, encoding="utf-8")
    harbour = docs / "harbour.txt"
    harbour.write_text(
        harbour.read_text(encoding="utf-8").replace("31 million euros", "34 million euros"), encoding="utf-8"
    )
    (docs / "library.html").unlink()


def vectors(flat) -> np.ndarray:
    return flat.reconstruct_n(0, flat.ntotal)


def same_index(a, b) -> None:
    """Everything a query reads is identical (the indexing times aside)."""
    keys = [f.name for f in fields(Document) if f.name != "indexed_at"]
    assert [[getattr(d, k) for k in keys] for d in a.documents] == [[getattr(d, k) for k in keys] for d in b.documents]
    for name in ("paragraphs", "sentences", "chunks"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    for name in ("sentence_vectors", "window_vectors", "chunk_vectors"):
        assert np.array_equal(vectors(getattr(a, name)), vectors(getattr(b, name))), name
    for name in ("bm25_sentences", "bm25_chunks"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.vocab_dict == y.vocab_dict, name
        for key in ("data", "indices", "indptr"):
            assert np.array_equal(np.asarray(x.scores[key]), np.asarray(y.scores[key])), (name, key)
    for key in ("counts", "corpus", "model", "chunking"):
        assert a.manifest[key] == b.manifest[key], key
    ea, eb = Engine(a, HashEmbedder()), Engine(b, HashEmbedder())
    for question in QUESTIONS:
        qa, qb = ea.ask(question, k=5), eb.ask(question, k=5)
        assert qa.answered == qb.answered
        assert [(q.doc_id, q.start, q.end, q.text, q.score) for q in qa.quotes] == [
            (q.doc_id, q.start, q.end, q.text, q.score) for q in qb.quotes
        ], question


# Whole (~65 lines): one scenario, step by step.
def test_update_reembeds_only_what_changed_and_equals_a_full_rebuild(folder, tmp_path, monkeypatch):
    settings = Settings(docs=folder, index=tmp_path / "index")
    monkeypatch.setattr(index_mod, "_now", lambda: "2025-01-01T00:00:00+00:00")
    first, _ = build_and_save(settings, HashEmbedder())
    assert first.build_info["full"] and first.build_info["reason"] == ""
    assert first.build_info["added"] == ["beekeeping", "harbour", "library", "windfarm"]

    edit(folder)
    encoded: list[str] = []

    class Counting(HashEmbedder):
        def encode(self, texts, batch_size=64, progress=False):
            encoded.extend(texts)
            return super().encode(texts, batch_size, progress)

    cut: list[str] = []
    layout = index_mod.layout
    monkeypatch.setattr(index_mod, "layout", lambda text, *a: cut.append(text) or layout(text, *a))
    import qa.ingest.corpus

    read: list[str] = []
    from_bytes = qa.ingest.corpus.document_from_bytes
    monkeypatch.setattr(
        qa.ingest.corpus,
        "document_from_bytes",
        lambda data, path, *a: read.append(path.name) or from_bytes(data, path, *a),
    )
    import qa.index.bm25

    tokenized: list[str] = []
    tokenize = qa.index.bm25.tokenize
    monkeypatch.setattr(qa.index.bm25, "tokenize", lambda texts, *a: tokenized.extend(texts) or tokenize(texts, *a))
    monkeypatch.setattr(index_mod, "_now", lambda: "2025-02-02T00:00:00+00:00")
    updated, _ = build_and_save(settings, Counting())
    info = updated.build_info
    assert not info["full"]
    assert (info["added"], info["changed"], info["removed"], info["unchanged"]) == (
        ["ferries"],
        ["harbour"],
        ["library"],
        2,
    )
    assert info["reembedded_documents"] == 2 and info["encoded_passages"] == len(encoded) > 0
    # Only passages of the added and the changed document reached the embedder...
    texts = {d.doc_id: d.text for d in updated.documents}
    assert all(t in texts["ferries"] or t in texts["harbour"] for t in encoded)
    # ...and of the changed one, only what differs (its unchanged sentences were reused).
    assert not any("twelve trawlers" in t and len(t) < 200 for t in encoded)
    assert any("34 million euros" in t for t in encoded)
    # Only the added and the changed document were read and cut again; the others kept
    # their text and rows.
    assert sorted(cut) == sorted(texts[d] for d in ("ferries", "harbour"))
    kept = {d.path for d in updated.documents if d.doc_id in ("beekeeping", "windfarm")}
    assert {"ferries.md", "harbour.txt"} <= set(read) and not kept & set(read)
    # BM25 tokenised only their sentences and chunks; the others' tokens came from the index.
    assert tokenized and all(t in texts["ferries"] or t in texts["harbour"] for t in tokenized)

    # Unchanged documents keep the time they were first indexed.
    times = {d.doc_id: d.indexed_at for d in load(settings.index).documents}
    assert times == {
        "beekeeping": "2025-01-01T00:00:00+00:00",
        "windfarm": "2025-01-01T00:00:00+00:00",
        "ferries": "2025-02-02T00:00:00+00:00",
        "harbour": "2025-02-02T00:00:00+00:00",
    }
    assert stale_reason(load(settings.index).manifest, folder) == ""

    scratch = Settings(docs=folder, index=tmp_path / "scratch")
    full, _ = build_and_save(scratch, HashEmbedder())
    assert full.build_info["full"]
    same_index(load(settings.index), load(scratch.index))


def test_cli_prints_counts_and_json(folder, tmp_path):
    index = str(tmp_path / "index")
    base = ("index", "--docs", str(folder), "--index", index, "--model", "hash-256", "--quiet")
    code, out, err = run(*base)
    assert code == 0 and out.startswith("indexed 4 documents")
    assert "skipped bad.pdf: not a readable PDF" in err

    code, out, _ = run(*base)
    assert code == 0
    assert out.startswith(
        f"updated {index}/: 0 added, 0 changed, 0 removed, 4 unchanged (re-embedded 0 documents, 0 passages) in "
    )

    edit(folder)
    code, out, err = run(*base)
    assert code == 0
    assert out.startswith(f"updated {index}/: 1 added, 1 changed, 1 removed, 2 unchanged (re-embedded 2 documents, ")
    assert "now 4 documents:" in out.splitlines()[1]
    assert err.splitlines() == ["skipped bad.pdf: not a readable PDF", "skipped latin1.txt: not valid UTF-8 (byte 3)"]

    # A fixed file is added; a file that breaks is removed (and reported).
    (folder / "latin1.txt").write_text(
        "Café owners in the old town say trade has doubled since May.\n", encoding="utf-8"
    )
    (folder / "beekeeping.md").write_bytes(b"\xff\xfe broken now")
    code, out, err = run(*base, "--json")
    summary = json.loads(out)
    assert (summary["added"], summary["changed"], summary["removed"], summary["unchanged"]) == (
        ["latin1"],
        [],
        ["beekeeping"],
        3,
    )
    assert summary["full"] is False and summary["reembedded_documents"] == 1
    assert summary["skipped"] == [
        {"path": "bad.pdf", "reason": "not a readable PDF"},
        {"path": "beekeeping.md", "reason": "not valid UTF-8 (byte 0)"},
    ]
    assert summary["counts"]["documents"] == 4
    assert err.splitlines() == [
        "skipped bad.pdf: not a readable PDF",
        "skipped beekeeping.md: not valid UTF-8 (byte 0)",
    ]

    code, out, _ = run(*base, "--chunk-size", "400")
    assert code == 0
    assert out.startswith(
        "full rebuild: the chunking changed from 800/100 to 400/100 (size/overlap)\nindexed 4 documents"
    )

    code, out, _ = run(*base, "--chunk-size", "400", "--full", "--json")
    summary = json.loads(out)
    assert summary["full"] is True and summary["reason"] == "a full rebuild was asked for"
    assert summary["reembedded_documents"] == 4 and summary["unchanged"] == 4


def test_catalog_change_updates_metadata_without_embedding(folder, tmp_path):
    settings = Settings(docs=folder, index=tmp_path / "index")
    build_and_save(settings, HashEmbedder())
    catalog = json.loads((folder / "catalog.json").read_text())
    catalog["harbour"]["title"] = "A new title for the harbour story"
    catalog["windfarm"] = {"outlet": "Northfield Cooperative"}
    (folder / "catalog.json").write_text(json.dumps(catalog))
    assert stale_reason(load(settings.index).manifest, folder) == "catalog changed"

    class Refusing(HashEmbedder):
        def encode(self, texts, batch_size=64, progress=False):
            raise AssertionError("nothing should be encoded")

    index, _ = build_and_save(settings, Refusing())
    assert index.build_info["metadata_changed"] == 2 and index.build_info["encoded_passages"] == 0
    loaded = load(settings.index)
    by_id = {d.doc_id: d for d in loaded.documents}
    assert by_id["harbour"].title == "A new title for the harbour story"
    assert by_id["windfarm"].outlet == "Northfield Cooperative"
    assert stale_reason(loaded.manifest, folder) == ""


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"embedder": HashEmbedder(128)}, "the model changed from 'hash-256' to 'hash-128'"),
        ({"chunk_size": 400}, "the chunking changed from 800/100 to 400/100 (size/overlap)"),
    ],
)
def test_another_model_or_chunking_means_a_full_rebuild(folder, tmp_path, change, reason):
    settings = Settings(docs=folder, index=tmp_path / "index")
    build_and_save(settings, HashEmbedder())
    embedder = change.get("embedder", HashEmbedder())
    settings = settings.with_(chunk_size=change.get("chunk_size", settings.chunk_size))
    index, _ = build_and_save(settings, embedder)
    assert index.build_info["full"] and index.build_info["reason"] == reason
    assert index.build_info["reembedded_documents"] == 4
    scratch = settings.with_(index=tmp_path / "scratch")
    build_and_save(scratch, embedder)
    a, b = load(settings.index), load(scratch.index)
    for name in ("chunks", "sentences"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert np.array_equal(vectors(a.chunk_vectors), vectors(b.chunk_vectors))


def test_a_damaged_previous_index_is_rebuilt_in_full(folder, tmp_path):
    settings = Settings(docs=folder, index=tmp_path / "index")
    build_and_save(settings, HashEmbedder())
    (settings.index / "chunks.npy").write_bytes(b"garbage")
    index, _ = build_and_save(settings, HashEmbedder())
    assert index.build_info["full"]
    assert index.build_info["reason"].startswith("the existing index cannot be reused (")
    load(settings.index)


def test_an_interrupted_update_leaves_the_previous_index_usable(folder, tmp_path, monkeypatch):
    settings = Settings(docs=folder, index=tmp_path / "index")
    build_and_save(settings, HashEmbedder())
    before = load(settings.index)
    edit(folder)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(qa.index.store, "_fsync_tree", interrupted)  # after every file is written, before the swap
    with pytest.raises(KeyboardInterrupt):
        build_and_save(settings, HashEmbedder())
    monkeypatch.undo()
    after = load(settings.index)
    same_index(before, after)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no half-built folder left
    assert stale_reason(after.manifest, folder) == "1 added, 1 changed, 1 removed"
    # The next run picks up where the interrupted one left off.
    index, _ = build_and_save(settings, HashEmbedder())
    assert (len(index.build_info["added"]), len(index.build_info["changed"]), len(index.build_info["removed"])) == (
        1,
        1,
        1,
    )


def test_nothing_is_encoded_when_nothing_changed(folder, tmp_path, monkeypatch):
    """An unchanged folder needs no model at all (the real one takes seconds to load)."""
    settings = Settings(docs=folder, index=tmp_path / "index", model="hash-256")
    build_and_save(settings, HashEmbedder())

    def no_model(*args, **kwargs):
        raise AssertionError("the embedder was loaded")

    monkeypatch.setattr(index_mod, "build_embedder", no_model)
    index, _ = build_and_save(settings)
    assert index.build_info["encoded_passages"] == 0 and index.manifest["model"]["name"] == "hash-256"
    same_index(index, load(settings.index))


def as_format_1(folder: Path) -> None:
    """Rewrite a (text-only) index folder as the first index format wrote it: documents
    without format/pages/date/url/indexed_at, their texts inside documents.jsonl,
    fingerprints per document id only."""
    rows = [json.loads(line) for line in (folder / "documents.jsonl").read_text(encoding="utf-8").splitlines()]
    texts = MappedTexts(folder)
    old_keys = ("doc_id", "title", "outlet", "path", "sha256")
    with open(folder / "documents.jsonl", "w", encoding="utf-8") as f:
        for i, row in enumerate(rows):
            f.write(json.dumps({**{k: row[k] for k in old_keys}, "text": texts.text(i)}, ensure_ascii=False) + "\n")
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    for name in ("texts.bin", "texts.npy"):
        (folder / name).unlink()
        del manifest["files"][name]
    manifest["format_version"] = 1
    for key in ("files", "skipped"):
        del manifest["corpus"][key]
    manifest["files"]["documents.jsonl"] = (folder / "documents.jsonl").stat().st_size
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def test_a_format_1_index_still_loads_and_is_updated_reusing_its_vectors(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("harbour.txt", "catalog.json"):
        shutil.copy(MIXED / name, docs / name)
    (docs / "ferries.txt").write_text(
        "Six ferries now cross the estuary each day.\n\nA return ticket costs four euros.\n"
    )
    settings = Settings(docs=docs, index=tmp_path / "index")
    build_and_save(settings, HashEmbedder())
    as_format_1(settings.index)
    old = load(settings.index)
    assert old.manifest["format_version"] == 1 and old.documents[0].indexed_at == ""
    assert stale_reason(old.manifest, docs) == ""
    (docs / "ferries.txt").write_text(
        "Seven ferries now cross the estuary each day.\n\nA return ticket costs four euros.\n"
    )
    assert stale_reason(old.manifest, docs) == "1 changed"

    index, _ = build_and_save(settings, HashEmbedder())
    assert not index.build_info["full"] and index.build_info["changed"] == ["ferries"]
    assert index.build_info["reembedded_documents"] == 1
    assert load(settings.index).manifest["format_version"] == FORMAT_VERSION
    scratch = settings.with_(index=tmp_path / "scratch")
    build_and_save(scratch, HashEmbedder())
    same_index(load(settings.index), load(scratch.index))
