"""Building, saving and loading an index folder.

An index is a folder::

    manifest.json       format version, model, dimension, chunking, corpus fingerprints (per
                        file, skipped files included), file sizes, what the last build did
    documents.jsonl     one line per document: id, title, outlet, path, sha256, format, page
                        starts (PDF), date, url, when it was indexed, and the exact text that
                        quotes are cut from (extracted text for HTML and PDF, the body after
                        the front matter for Markdown)
    paragraphs.npy      int64 (n, 3): document, start, end
    sentences.npy       int64 (n, 7): document, start, end, paragraph, chunk, window start, window end
                        (quotable sentences only; the window adds the neighbours in its paragraph)
    chunks.npy          int64 (n, 3): document, start, end
    sentences.faiss     unit vectors of the sentences (inner product = cosine)
    windows.faiss       unit vectors of the sentence windows
    chunks.faiss        unit vectors of the chunks
    bm25-sentences/     bm25s index of the sentences (JSON + .npy)
    bm25-chunks/        bm25s index of the chunks

File names are fixed here, never read from the manifest, so an index folder cannot
point outside itself; NumPy files are loaded with ``allow_pickle=False``.

Updating: :func:`update` reads the folder again and rebuilds every table and both BM25
indexes from all texts (their statistics depend on the whole corpus), but takes the
vectors of every passage whose exact text was already embedded from the previous index,
so only added and changed documents reach the model.  The result is the index a full
build would make.  A different model or chunking, or an unreadable previous index,
means a full rebuild.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

import numpy as np

from .. import __version__
from ..ingest.chunking import layout
from ..ingest.corpus import catalog_bytes, corpus_fingerprints, scan
from ..data import Col, Document
from ..errors import IndexProblem
from .embedding import OPTIONAL, Embedder, build_embedder, save_query_encoder
from ..settings import Settings

FORMAT = "qa-index"
# 2: documents.jsonl gained format, pages, date, url and indexed_at; the manifest
#    fingerprints files (skipped ones too) and records the last build.
FORMAT_VERSION = 2
# Versions this code loads: a version-1 index lacks the new fields (they default) and the
# per-file fingerprints (staleness is then judged per document id); the next
# ``python -m qa index`` rewrites it as version 2, reusing its vectors.
READABLE_VERSIONS = (1, 2)
MANIFEST = "manifest.json"
ARRAYS = ("paragraphs.npy", "sentences.npy", "chunks.npy")
FAISS_FILES = ("sentences.faiss", "windows.faiss", "chunks.faiss")
BM25_DIRS = ("bm25-sentences", "bm25-chunks")


class IndexWriteError(IndexProblem, OSError):
    """An index that could not be written (a full disk): the previous one is untouched."""


def rebuild_hint(settings: Settings) -> str:
    return f"rebuild with: python -m qa index --docs {settings.docs} --index {settings.index}"


# ---------------------------------------------------------------- tokenising for BM25


def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def tokenize(texts: list[str], stemmer=None, as_ids: bool = True):
    import bm25s

    return bm25s.tokenize(texts, stopwords="en", stemmer=stemmer or _stemmer(), show_progress=False, return_ids=as_ids)


def _bm25(texts: list[str], stemmer):
    import bm25s

    model = bm25s.BM25()
    model.index(tokenize(texts, stemmer), show_progress=False)
    return model


# ---------------------------------------------------------------- the in-memory index


@dataclass
class Index:
    """Everything a query needs, loaded from (or about to be written to) a folder."""

    manifest: dict
    documents: list[Document]
    paragraphs: np.ndarray
    sentences: np.ndarray
    chunks: np.ndarray
    sentence_vectors: object  # faiss.Index
    window_vectors: object
    chunk_vectors: object
    bm25_sentences: object  # bm25s.BM25
    bm25_chunks: object
    path: Path | None = None
    # What the build that made this index did (see :func:`build`); not saved except in the manifest.
    build_info: dict = field(default_factory=dict)
    # The embedder that encoded this build's passages (not saved): save() exports its
    # model as the ONNX query encoder (None: reuse the export already in the folder).
    encoder: object | None = None

    @property
    def model(self) -> str:
        return self.manifest["model"]["name"]

    def text(self, table: np.ndarray, row: int) -> str:
        doc, start, end = (int(x) for x in table[row, Col.SPAN])
        return self.documents[doc].text[start:end]

    @cached_property
    def first_paragraph(self) -> np.ndarray:
        """For each document, the global number of its first paragraph."""
        return np.searchsorted(self.paragraphs[:, Col.DOC], np.arange(len(self.documents)))

    @cached_property
    def doc_index(self) -> dict[str, int]:
        return {d.doc_id: i for i, d in enumerate(self.documents)}

    @cached_property
    def stemmer(self):
        return _stemmer()

    def page_of(self, doc: int | str, offset: int) -> int | None:
        """The 1-based page holding ``offset`` in document ``doc`` (position or doc_id);
        None for documents without pages (anything but PDF)."""
        position = self.doc_index[doc] if isinstance(doc, str) else int(doc)
        return self.documents[position].page_at(offset)


# ---------------------------------------------------------------- building


def _tables(documents: list[Document], settings: Settings, previous: Index | None = None):
    """The paragraph, sentence and chunk tables of ``documents``.  A document whose text
    ``previous`` holds unchanged keeps its rows from there (renumbered), uncut again: the
    cut is a function of the text and the chunking settings, and cutting (pysbd) is most
    of an update's time otherwise."""
    paragraphs, sentences, chunks = [], [], []
    old = _rows_by_document(previous) if previous is not None else {}
    for d, doc in enumerate(documents):
        first_para, first_chunk = len(paragraphs), len(chunks)
        kept = old.get(doc.doc_id)
        if kept is not None and kept[0] == doc.text:
            _, p_rows, s_rows, c_rows, (old_para, old_chunk) = kept
            paragraphs.extend((d, s, e) for _, s, e in p_rows.tolist())
            chunks.extend((d, s, e) for _, s, e in c_rows.tolist())
            for row in s_rows.tolist():
                row[Col.DOC] = d
                row[Col.PARAGRAPH] += first_para - old_para
                row[Col.CHUNK] += first_chunk - old_chunk
                sentences.append(tuple(row))
            continue
        lay = layout(doc.text, settings.chunk_size, settings.chunk_overlap)
        paragraphs.extend((d, s, e) for s, e, _ in lay.paragraphs)
        chunks.extend((d, s, e) for s, e in lay.chunks)
        chunk_starts = np.array([s for s, _ in lay.chunks])
        for i, (s, e, p, skip) in enumerate(lay.sentences):
            if skip:
                continue
            # The chunk holding the sentence's start (chunks overlap; take the latest start ≤ s).
            c = max(int(np.searchsorted(chunk_starts, s, side="right")) - 1, 0)
            prev = lay.sentences[i - 1] if i > 0 and lay.sentences[i - 1][2] == p else None
            nxt = lay.sentences[i + 1] if i + 1 < len(lay.sentences) and lay.sentences[i + 1][2] == p else None
            ws, we = (prev[0] if prev else s), (nxt[1] if nxt else e)
            sentences.append((d, s, e, first_para + p, first_chunk + c, ws, we))
    as_array = lambda rows, width: np.array(rows, dtype=np.int64).reshape(-1, width)  # noqa: E731
    return as_array(paragraphs, 3), as_array(sentences, 7), as_array(chunks, 3)


def _rows_by_document(index: Index) -> dict[str, tuple]:
    """Per document of ``index``: (text, paragraph rows, sentence rows, chunk rows, (first
    paragraph, first chunk) numbers) — what :func:`_tables` reuses."""
    out = {}
    bounds = [
        np.searchsorted(t[:, Col.DOC], np.arange(len(index.documents) + 1))
        for t in (index.paragraphs, index.sentences, index.chunks)
    ]
    for d, doc in enumerate(index.documents):
        (p0, p1), (s0, s1), (c0, c1) = ((b[d], b[d + 1]) for b in bounds)
        out[doc.doc_id] = (
            doc.text,
            index.paragraphs[p0:p1],
            index.sentences[s0:s1],
            index.chunks[c0:c1],
            (int(p0), int(c0)),
        )
    return out


def encode_sorted(
    embedder: Embedder, texts: list[str], batch_size: int, progress: Callable[[int], None] | None
) -> np.ndarray:
    """Encode in length-sorted batches (less padding), reporting progress per batch."""
    if getattr(embedder, "bulk", OPTIONAL["bulk"]):  # qa.distributed.RayEmbedder: one Ray job, these same batches
        return embedder.encode(texts, batch_size=batch_size, progress=progress)
    order = np.argsort([-len(t) for t in texts], kind="stable")
    out = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    for i in range(0, len(texts), batch_size):
        rows = order[i : i + batch_size]
        out[rows] = embedder.encode([texts[r] for r in rows], batch_size=batch_size)
        if progress:
            progress(len(rows))
    return out


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _stored_vectors(stored) -> np.ndarray:
    """A copy of the vectors held by a vector index, row for row (exact for flat indexes,
    decoded 8-bit codes for the approximate kinds used above ~20k passages)."""
    from .vectors import vectors_of

    if stored.ntotal == 0:
        return np.zeros((0, stored.d), dtype=np.float32)
    return np.array(vectors_of(stored, np.arange(stored.ntotal)), dtype=np.float32)


def _passage_texts(
    documents: list[Document], sentences: np.ndarray, chunks: np.ndarray
) -> tuple[list[str], list[str], list[str]]:
    """The texts of the sentences, the sentence windows and the chunks, row for row."""
    cut = lambda table: [documents[d].text[s:e] for d, s, e in table]  # noqa: E731
    return cut(sentences[:, Col.SPAN]), cut(sentences[:, Col.WINDOW]), cut(chunks[:, Col.SPAN])


def _known_vectors(previous: Index) -> dict[str, np.ndarray]:
    """Exact passage text → its vector, for every passage of ``previous``."""
    known: dict[str, np.ndarray] = {}
    texts = _passage_texts(previous.documents, previous.sentences, previous.chunks)
    flats = (previous.sentence_vectors, previous.window_vectors, previous.chunk_vectors)
    for kind_texts, flat in zip(texts, flats):
        matrix = _stored_vectors(flat)
        for text, row in zip(kind_texts, matrix):
            known.setdefault(text, row)
    return known


def reuse_problem(manifest: dict, settings: Settings, embedder: Embedder | None = None) -> str:
    """Why the vectors of the index described by ``manifest`` cannot be reused for a build
    with ``settings`` (and ``embedder``, when given); "" when they can."""
    model = embedder.name if embedder is not None else settings.model
    then = manifest.get("model", {})
    if then.get("name") != model:
        return f"the model changed from {then.get('name')!r} to {model!r}"
    if embedder is not None and then.get("dimension") != embedder.dimension:
        return f"the vectors changed from {then.get('dimension')} to {embedder.dimension} dimensions"
    # torch and float32 ONNX give the same vectors; int8 vectors are approximate: never mix them.
    precision = {"onnx-int8": "int8"}
    before, now = manifest.get("passage_encoder", "torch"), settings.backend
    if embedder is None and precision.get(before, "float32") != precision.get(now, "float32"):
        return f"the passage encoder changed from {before} to {now}"
    chunking = manifest.get("chunking", {})
    if (chunking.get("chunk_size"), chunking.get("chunk_overlap")) != (settings.chunk_size, settings.chunk_overlap):
        return (
            f"the chunking changed from {chunking.get('chunk_size')}/{chunking.get('chunk_overlap')} "
            f"to {settings.chunk_size}/{settings.chunk_overlap} (size/overlap)"
        )
    return ""


def _catalog_sha(docs: Path) -> str | None:
    catalog = catalog_bytes(docs)
    return hashlib.sha256(catalog).hexdigest() if catalog is not None else None


def build(
    settings: Settings,
    embedder: Embedder | None = None,
    progress: bool = False,
    previous: Index | None = None,
    reuse: bool = True,
    reason: str = "",
) -> Index:
    """Read ``settings.docs``, cut, embed and index it (in memory; see :func:`save`).

    With a ``previous`` index and ``reuse``, passages whose exact text it already holds
    take its vectors instead of being encoded again (see :func:`reuse_problem` for when
    that is allowed; :func:`update` checks), unchanged files keep their document and
    their cut, and IVF indexes their training.  BM25 and the vector indexes are made from
    the whole folder, so the result is what a full build makes.  ``previous`` also gives
    the counts of added / changed / removed documents and, for unchanged ones, the time
    they were first indexed.  ``reason`` says why a full build was made (recorded in
    ``build_info``).  The embedder is loaded only if something needs encoding."""
    started = _now()
    reuse = bool(reuse and previous is not None)
    catalog_sha = _catalog_sha(settings.docs)
    documents, skipped = _read(settings, previous, reuse, started, catalog_sha)
    # The previous cut is reused only from the same version of this code (cutting rules change).
    same_cut = reuse and previous.manifest.get("qa_version") == __version__
    paragraphs, sentences, chunks = _tables(documents, settings, previous if same_cut else None)
    texts = dict(zip(("sentences", "windows", "chunks"), _passage_texts(documents, sentences, chunks)))
    if not texts["sentences"]:
        raise IndexProblem(f"nothing quotable in {settings.docs}: every line looks like boilerplate")
    known, missing, embedder, model = _embed(settings, embedder, texts, previous if reuse else None, progress)
    stores, vector_info = _vector_indexes(texts, known, model["dimension"], settings, previous if reuse else None)
    build_info = _changes(documents, skipped, sentences, chunks, texts, missing, previous, embedder)
    build_info.update(full=not reuse, reason=reason)
    stemmer = _stemmer()
    return Index(
        manifest=_manifest(
            settings,
            started,
            model,
            catalog_sha,
            documents,
            skipped,
            (paragraphs, sentences, chunks),
            vector_info,
            build_info,
        ),
        documents=documents,
        paragraphs=paragraphs,
        sentences=sentences,
        chunks=chunks,
        sentence_vectors=stores["sentences"],
        window_vectors=stores["windows"],
        chunk_vectors=stores["chunks"],
        bm25_sentences=_bm25(texts["sentences"], stemmer),
        bm25_chunks=_bm25(texts["chunks"], stemmer),
        build_info=build_info,
        encoder=embedder,
    )


def _read(settings: Settings, previous: Index | None, reuse: bool, started: str, catalog_sha: str | None):
    """Build step 1: the documents of the folder (and the files skipped), each with the
    time it was first indexed.  An update takes unchanged files' documents from the
    previous index (no extraction) when the catalog and this code are the same as then."""
    from ..ingest.extract import versions

    same_reading = (
        reuse
        and previous.manifest.get("qa_version") == __version__
        and previous.manifest.get("format_version") == FORMAT_VERSION
        and previous.manifest.get("extraction") == versions()
        and previous.manifest["corpus"].get("catalog_sha256") == catalog_sha
    )
    known = {d.path: d for d in previous.documents} if same_reading else None
    documents, skipped = scan(settings.docs, settings.max_document_mb, known)
    before = {d.doc_id: d for d in previous.documents} if previous is not None else {}
    documents = [
        replace(d, indexed_at=before[d.doc_id].indexed_at or started)
        if d.doc_id in before and before[d.doc_id].sha256 == d.sha256
        else replace(d, indexed_at=started)
        for d in documents
    ]
    return documents, skipped


def _embed(settings: Settings, embedder: Embedder | None, texts: dict, previous: Index | None, progress: bool):
    """Build step 3: a vector for every passage text — the previous index's where it holds
    the same text, the embedder's for the rest (loaded only then).  Returns (text →
    vector, the texts encoded, the embedder, the manifest's model record)."""
    known = _known_vectors(previous) if previous is not None else {}
    all_texts = texts["sentences"] + texts["windows"] + texts["chunks"]
    missing = [t for t in dict.fromkeys(all_texts) if t not in known]
    if not missing:
        return known, missing, embedder, dict(previous.manifest["model"])
    # The ONNX backends export into a folder beside the index (kept: later builds skip torch).
    work = Path(settings.index).with_name(f".{Path(settings.index).name}.encoder")
    embedder = embedder or build_embedder(settings.model, settings.threads, settings.backend, work_dir=work)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(missing), unit="passage", desc="embedding", leave=False)
    fresh = encode_sorted(embedder, missing, settings.batch_size, bar.update if bar else None)
    if bar:
        bar.close()
    known.update(zip(missing, fresh))
    return known, missing, embedder, {"name": embedder.name, "dimension": embedder.dimension, "normalized": True}


def _vector_indexes(texts: dict, known: dict, dimension: int, settings: Settings, previous: Index | None):
    """Build step 4: the vector index of each passage kind (exact below ~20k, IVF-SQ8
    above: qa/vectors.py; an update reuses the previous IVF index's training), and their
    records for the manifest."""
    import faiss

    from .vectors import build_vector_index, describe

    stores, records = {}, {}
    for name in ("sentences", "windows", "chunks"):
        if not texts[name]:
            stores[name] = faiss.IndexFlatIP(dimension)
            continue
        info: dict = {}
        like = getattr(previous, f"{name[:-1]}_vectors", None)
        stores[name] = build_vector_index(
            np.stack([known[t] for t in texts[name]]).astype(np.float32, copy=False),
            settings.vector_index,
            info=info,
            like=like,
        )
        if info.get("reused_training"):  # the tuning measured then still describes this nprobe
            then = (previous.manifest.get("vectors") or {}).get(name, {})
            info.update({k: then[k] for k in ("tuned_recall_at_10",) if k in then})
        records[name] = dict(describe(stores[name]), **{k: v for k, v in info.items() if k != "build_seconds"})
    return stores, records


def _changes(documents, skipped, sentences, chunks, texts, missing, previous, embedder) -> dict:
    """What the build did: documents added / changed / removed / unchanged since the
    previous index, files skipped, passages encoded and reused (``build_info``)."""
    before = {d.doc_id: d for d in previous.documents} if previous is not None else {}
    all_texts = texts["sentences"] + texts["windows"] + texts["chunks"]
    missing_set = set(missing)
    owners = np.concatenate([sentences[:, Col.DOC], sentences[:, Col.DOC], chunks[:, Col.DOC]])
    reembedded = {int(d) for d, t in zip(owners, all_texts) if t in missing_set}
    now_ids = {d.doc_id: d for d in documents}
    unchanged = [i for i in now_ids if i in before and before[i].sha256 == now_ids[i].sha256]
    described = lambda d: (d.title, d.outlet, d.date, d.url)  # noqa: E731
    return {
        "full": previous is None,
        "reason": "",
        "added": [i for i in now_ids if i not in before],
        "changed": [i for i in now_ids if i in before and before[i].sha256 != now_ids[i].sha256],
        "removed": [i for i in before if i not in now_ids],
        "unchanged": len(unchanged),
        "metadata_changed": sum(described(before[i]) != described(now_ids[i]) for i in unchanged),
        "skipped": [{"path": s.path, "reason": s.reason} for s in skipped],
        "reembedded_documents": len(reembedded),
        "encoded_passages": len(missing),
        "reused_passages": len(dict.fromkeys(all_texts)) - len(missing),
        "engine": getattr(embedder, "engine", OPTIONAL["engine"])
        if missing
        else None,  # what embedded (qa.distributed)
    }


def _manifest(settings, started, model, catalog_sha, documents, skipped, tables, vector_info, build_info) -> dict:
    """The index's manifest.json (less the file sizes and build steps' entries: :func:`save`)."""
    from ..ingest.extract import versions

    paragraphs, sentences, chunks = tables
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": started,
        "qa_version": __version__,
        "model": model,
        "passage_encoder": settings.backend,
        "chunking": {
            "splitter": "langchain_text_splitters.RecursiveCharacterTextSplitter",
            "chunk_size": settings.chunk_size,
            "chunk_overlap": settings.chunk_overlap,
            "sentences": "pysbd (en), within paragraphs",
        },
        "extraction": versions(),
        "bm25": {"library": "bm25s", "stopwords": "en", "stemmer": "snowball english"},
        "corpus": {
            "root": str(Path(settings.docs).resolve()),
            "catalog_sha256": catalog_sha,
            "documents": {d.doc_id: d.sha256 for d in documents},
            # Characters of each stored text: a shortened documents.jsonl is caught on load.
            "text_lengths": {d.doc_id: len(d.text) for d in documents},
            # Every supported file seen, read or skipped: what stale_reason compares.
            "files": dict(sorted([(d.path, d.sha256) for d in documents] + [(s.path, s.sha256) for s in skipped])),
            "skipped": build_info["skipped"],
        },
        "vectors": vector_info,
        "counts": {
            "documents": len(documents),
            "paragraphs": len(paragraphs),
            "sentences": len(sentences),
            "chunks": len(chunks),
        },
        "build": {k: (len(v) if isinstance(v, list) and k != "skipped" else v) for k, v in build_info.items()},
    }


def update(settings: Settings, embedder: Embedder | None = None, progress: bool = False, full: bool = False) -> Index:
    """Build ``settings.docs`` reusing the vectors of the index at ``settings.index`` when
    there is one built with the same model and chunking (in memory; see :func:`save`).

    ``full`` ignores the previous vectors.  ``build_info["full"]`` and ``["reason"]`` say
    whether the previous index was reused and, if not, why."""
    previous, reason = None, ""
    folder = locate(Path(settings.index))
    if (folder / MANIFEST).exists():
        try:
            previous = load(folder)
        except IndexProblem as exc:
            reason = f"the existing index cannot be reused ({exc})"
    reuse = previous is not None and not full
    if previous is not None and full:
        reason = "a full rebuild was asked for"
    if reuse:
        reason = reuse_problem(previous.manifest, settings, embedder)
        reuse = not reason
    return build(settings, embedder, progress, previous=previous, reuse=reuse, reason=reason)


# ---------------------------------------------------------------- saving (atomically)


def _file_sizes(folder: Path) -> dict[str, int]:
    return {
        p.relative_to(folder).as_posix(): p.stat().st_size
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


def query_encoder_step(index: Index, folder: Path, previous: Path) -> dict:
    """Build step: the ONNX query encoder of the index's model (query-encoder.onnx,
    tokenizer.json, query-encoder.json) into the new index ``folder``, so that answering
    needs no torch; taken from the ``previous`` folder when it holds one of the same model.
    Returns the manifest's ``query_encoder`` entry (none for the test embedder, or when the
    model cannot be exported: a warning, and queries load torch)."""
    encoder = save_query_encoder(folder, index.model, embedder=index.encoder, previous=previous)
    if encoder is None:
        return {}
    keep = ("model", "files", "sha256", "opset", "max_seq_length", "check")
    return {"query_encoder": {k: encoder[k] for k in keep if k in encoder}}


# What a build writes into a new index folder besides the index itself, before the swap:
# each step(index, new folder, previous folder) → entries for the manifest.
BUILD_STEPS: tuple[Callable[[Index, Path, Path], dict], ...] = (query_encoder_step,)


def save(index: Index, target: Path, steps: Sequence[Callable[[Index, Path, Path], dict]] = ()) -> Path:
    """Write ``index`` to ``target`` atomically: a complete new folder replaces the old
    one by rename, so an interrupted save leaves the previous index as it was.  ``steps``
    (e.g. :data:`BUILD_STEPS`) add their files to the new folder before the swap; a step
    that fails fails the save."""
    import faiss

    target = Path(target)
    if target.is_dir() and not (target / MANIFEST).exists():
        others = sorted(p.name for p in target.iterdir() if p.name not in ("README.md", ".gitkeep"))
        if others:  # never replace a folder of someone's files with an index
            raise IndexProblem(f"{target}/ holds {others[0]!r} and no index; refusing to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_builds(target)
    tmp = target.with_name(f".{target.name}.building-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        with open(tmp / "documents.jsonl", "w", encoding="utf-8") as out:
            for d in index.documents:
                row = {f.name: getattr(d, f.name) for f in fields(Document) if f.name != "text"}
                row["pages"] = list(d.pages)
                row["text"] = d.text  # last: the other fields stay readable at a glance
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        for name, array in zip(ARRAYS, (index.paragraphs, index.sentences, index.chunks)):
            np.save(tmp / name, array, allow_pickle=False)
        for name, vectors in zip(FAISS_FILES, (index.sentence_vectors, index.window_vectors, index.chunk_vectors)):
            try:
                faiss.write_index(vectors, str(tmp / name))
            except RuntimeError as exc:  # faiss reports a failed write (a full disk) as a RuntimeError
                code = _errno_of(exc)
                raise OSError(
                    code, os.strerror(code) if "No space left" in str(exc) else _first_line(exc), str(tmp / name)
                ) from None
        for name, bm25 in zip(BM25_DIRS, (index.bm25_sentences, index.bm25_chunks)):
            bm25.save(str(tmp / name), show_progress=False)
        entries: dict = {}
        for step in steps:
            entries.update(step(index, tmp, locate(target)))
        manifest = dict(index.manifest, files=_file_sizes(tmp), **entries)
        if (target / "README.md").is_file():  # the repository's note about index/ stays put
            shutil.copy2(target / "README.md", tmp / "README.md")
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        _fsync_tree(tmp)
        old = target.with_name(f".{target.name}.previous")
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        where = Path(exc.filename).name if exc.filename else ""
        raise IndexWriteError(
            f"cannot write the index to {target}/ ({where + ': ' if where else ''}{exc.strerror or _first_line(exc)}); "
            f"the previous index is unchanged"
        ) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    index.manifest = manifest
    index.path = target
    return target


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _errno_of(exc: BaseException) -> int:
    import errno

    return errno.ENOSPC if "No space left" in str(exc) else errno.EIO


def _remove_abandoned_builds(target: Path) -> None:
    """Delete temporary folders left by builds that were killed (their process is gone)."""
    for folder in target.parent.glob(f".{target.name}.building-*"):
        try:
            pid = int(folder.name.rsplit("-", 1)[1])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (ValueError, PermissionError):
            continue


def _fsync_tree(folder: Path) -> None:
    for p in folder.rglob("*"):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())


# ---------------------------------------------------------------- loading


def read_manifest(folder: Path) -> dict:
    """The manifest of an index folder, validated (one-line errors)."""
    path = folder / MANIFEST
    if not path.exists():
        raise IndexProblem(
            f"no index at {folder}/ (missing {MANIFEST}); build one with: python -m qa index --index {folder}"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise IndexProblem(f"{path}: damaged manifest (not valid JSON)") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IndexProblem(f"{path}: not a qa index manifest")
    if manifest.get("format_version") not in READABLE_VERSIONS:
        raise IndexProblem(
            f"{path}: index format {manifest.get('format_version')!r:.40}, this version reads "
            f"{' and '.join(map(str, READABLE_VERSIONS))}; rebuild with: python -m qa index --index {folder}"
        )
    problem = manifest_problem(manifest)
    if problem:
        raise IndexProblem(f"{path}: damaged manifest ({problem}); rebuild with: python -m qa index --index {folder}")
    return manifest


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _mapping(value, keys, values) -> bool:
    return isinstance(value, dict) and all(keys(k) and values(v) for k, v in value.items())


_SHAPE = {
    # key: (required, check, what it should be)
    "created": (True, lambda v: isinstance(v, str), "text"),
    "model": (
        True,
        lambda v: isinstance(v, dict)
        and isinstance(v.get("name"), str)
        and _is_int(v.get("dimension"))
        and v["dimension"] > 0,
        "an object with a name and a dimension",
    ),
    "counts": (
        True,
        lambda v: isinstance(v, dict)
        and all(_is_int(v.get(k)) and v[k] >= 0 for k in ("documents", "sentences"))
        and all(_is_int(v[k]) and v[k] >= 0 for k in ("paragraphs", "chunks") if k in v),
        "an object of non-negative whole numbers",
    ),
    "corpus": (
        True,
        lambda v: isinstance(v, dict)
        and isinstance(v.get("root"), str)
        and ("files" in v or "documents" in v)
        and all(
            _mapping(v[k], lambda a: isinstance(a, str), lambda b: isinstance(b, str))
            for k in ("files", "documents")
            if k in v
        )
        and _mapping(v.get("text_lengths", {}), lambda a: isinstance(a, str), _is_int)
        and isinstance(v.get("skipped", []), list)
        and all(
            isinstance(x, dict) and isinstance(x.get("path"), str) and isinstance(x.get("reason"), str)
            for x in v.get("skipped", [])
        )
        and isinstance(v.get("catalog_sha256"), (str, type(None))),
        "an object with the folder's root and fingerprints",
    ),
    "files": (
        False,
        lambda v: _mapping(v, lambda a: isinstance(a, str), lambda b: _is_int(b) and b >= 0),
        "an object of file name → size",
    ),
    "chunking": (False, lambda v: isinstance(v, dict), "an object"),
    "passage_encoder": (False, lambda v: isinstance(v, str), "text"),
    "query_encoder": (False, lambda v: isinstance(v, dict), "an object"),
    "vectors": (False, lambda v: isinstance(v, dict), "an object"),
    "build": (False, lambda v: isinstance(v, dict), "an object"),
}


def manifest_problem(manifest: dict) -> str:
    """What is wrong with a manifest's fields ("" when nothing): a missing key or a value
    of the wrong kind (a tampered or hand-edited file must not reach the code that reads it)."""
    for key, (required, ok, what) in _SHAPE.items():
        if key not in manifest:
            if required:
                return f"no {key!r}"
            continue
        if not ok(manifest[key]):
            return f"{key!r} is not {what}"
    return ""


def locate(folder: Path) -> Path:
    """The folder to load: ``folder``, or the previous index if a swap was cut short."""
    folder = Path(folder)
    previous = folder.with_name(f".{folder.name}.previous")
    if not (folder / MANIFEST).exists() and (previous / MANIFEST).exists():
        return previous
    return folder


def load(folder: Path) -> Index:
    """Load an index folder, checking every file it should hold (one-line errors)."""
    import bm25s

    folder = locate(Path(folder))
    manifest = read_manifest(folder)
    expected = manifest.get("files") or {}
    for name, size in expected.items():
        path = folder / name
        # Names come from our own writer; refuse anything that would leave the folder.
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise IndexProblem(f"{folder / MANIFEST}: file entry {name!r} points outside the index")
        if not path.is_file():
            raise IndexProblem(f"{path}: missing from the index")
        if path.stat().st_size != size:
            raise IndexProblem(f"{path}: damaged (size {path.stat().st_size}, expected {size})")

    def guarded(name: str, fn):
        try:
            return fn(folder / name)
        except IndexProblem:
            raise
        except Exception as exc:  # numpy, faiss, json and bm25s each raise their own
            raise IndexProblem(f"{folder / name}: damaged ({type(exc).__name__})") from None

    def read_documents(path: Path) -> list[Document]:
        documents = []
        with open(path, encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                pages = tuple(int(p) for p in row.pop("pages", ()) or ())
                doc = Document(**row, pages=pages)
                pages_ok = list(pages) == sorted(pages) and all(0 <= p <= len(doc.text) for p in pages)
                texts_ok = all(isinstance(getattr(doc, f.name), str) for f in fields(Document) if f.name != "pages")
                if not texts_ok or not pages_ok:
                    raise ValueError("bad document row")
                documents.append(doc)
        if len({d.doc_id for d in documents}) != len(documents):
            raise ValueError("repeated document id")
        return documents

    documents = guarded("documents.jsonl", read_documents)
    hint = rebuild_hint(Settings(index=folder, docs=Path(manifest["corpus"]["root"])))
    lengths = manifest["corpus"].get("text_lengths")
    if lengths is not None:  # recorded by builds since text_lengths was added
        for d in documents:
            if lengths.get(d.doc_id) != len(d.text):
                raise IndexProblem(
                    f"{folder / 'documents.jsonl'}: the text of {d.doc_id!r} has {len(d.text)} characters, the manifest "
                    f"says {lengths.get(d.doc_id)}; {hint}"
                )
    # Tables and BM25 arrays are memory-mapped like the vectors: opening reads only what is
    # touched, and several serving processes share the pages of one index folder.
    # (np.asarray: plain arrays over the mapping; np.memmap's indexing costs ~2 µs a call.)
    arrays = [guarded(n, lambda p: np.asarray(np.load(p, allow_pickle=False, mmap_mode="r"))) for n in ARRAYS]
    from .vectors import load_vector_index

    # Memory-mapped: start-up does not read the vectors, pages come in as searches need them.
    vectors = [guarded(n, lambda p: load_vector_index(p, mmap=True)) for n in FAISS_FILES]
    bm25 = [guarded(n, lambda p: bm25s.BM25.load(str(p), load_corpus=False, mmap=True)) for n in BM25_DIRS]
    for model in bm25:
        if isinstance(getattr(model, "scores", None), dict):
            model.scores = {k: np.asarray(v) if isinstance(v, np.ndarray) else v for k, v in model.scores.items()}
    for name, array in zip(ARRAYS, arrays):
        problem = _table_problem(name, array, documents, arrays[0], arrays[2])
        if problem:
            raise IndexProblem(f"{folder / name}: damaged ({problem}); {hint}")
    index = Index(manifest, documents, *arrays, *vectors, *bm25, path=folder)
    counts = manifest["counts"]
    dimension = manifest["model"]["dimension"]
    for name, store, rows in zip(FAISS_FILES, vectors, (index.sentences, index.sentences, index.chunks)):
        if store.d != dimension or store.ntotal != len(rows):
            raise IndexProblem(
                f"{folder / name}: {store.ntotal} vectors of {store.d} dimensions where the index has {len(rows)} of "
                f"{dimension}; {hint}"
            )
    for name, model, rows in zip(BM25_DIRS, bm25, (index.sentences, index.chunks)):
        if _bm25_size(model) != len(rows):
            raise IndexProblem(
                f"{folder / name}: indexes {_bm25_size(model)} passages where the index has {len(rows)} "
                f"(from another index?); {hint}"
            )
    if (
        len(documents) != counts["documents"]
        or len(index.sentences) != counts["sentences"]
        or len(index.paragraphs) != counts.get("paragraphs", len(index.paragraphs))
        or len(index.chunks) != counts.get("chunks", len(index.chunks))
    ):
        raise IndexProblem(f"{folder}: files disagree with the manifest's counts; {hint}")
    return index


def _bm25_size(model) -> int:
    """How many passages a loaded bm25s index holds."""
    try:
        return int(model.scores["num_docs"])
    except (AttributeError, KeyError, TypeError, ValueError):
        return -1


# Width of each table, and its columns that hold (start, end) pairs.
_WIDTH = {"paragraphs.npy": 3, "sentences.npy": 7, "chunks.npy": 3}


def _table_problem(
    name: str, table: np.ndarray, documents: list[Document], paragraphs: np.ndarray, chunks: np.ndarray
) -> str:
    """What is wrong with a loaded table ("" when nothing): shape, type, rows pointing at a
    document that is not there or at characters beyond its text, references out of range.
    So no question can cut a quote out of range, or an empty one, from a tampered index."""
    width = _WIDTH[name]
    if not isinstance(table, np.ndarray) or table.ndim != 2 or table.shape[1] != width:
        return f"shape {getattr(table, 'shape', None)}, expected (n, {width})"
    if not np.issubdtype(table.dtype, np.integer):
        return f"type {table.dtype}, expected integers"
    if not len(table):
        return ""
    docs = table[:, Col.DOC]
    if docs.min() < 0 or docs.max() >= len(documents):
        return f"a row names document {int(docs.max() if docs.max() >= len(documents) else docs.min())} of {len(documents)}"
    lengths = np.array([len(d.text) for d in documents], dtype=np.int64)[docs]
    pairs = [(Col.START, Col.END)] + ([(Col.WINDOW_START, Col.WINDOW_END)] if width == 7 else [])
    for a, b in pairs:
        start, end = table[:, a], table[:, b]
        if (start < 0).any() or (end < start).any() or (end > lengths).any():
            row = int(np.flatnonzero((start < 0) | (end < start) | (end > lengths))[0])
            return f"row {row}: characters {int(start[row])}–{int(end[row])} outside its document's {int(lengths[row])}"
    if width == 7:
        if (table[:, Col.PARAGRAPH] < 0).any() or (table[:, Col.PARAGRAPH] >= len(paragraphs)).any():
            return "a sentence points at a paragraph that is not there"
        if (table[:, Col.CHUNK] < 0).any() or (table[:, Col.CHUNK] >= max(len(chunks), 1)).any():
            return "a sentence points at a chunk that is not there"
    return ""


def stale_reason(manifest: dict, docs: Path) -> str:
    """Why an index no longer matches the folder ``docs`` ("" when it does)."""
    try:
        now = corpus_fingerprints(docs)
    except (OSError, ValueError) as exc:
        return str(exc)
    if "files" in manifest["corpus"]:
        then = manifest["corpus"]["files"]
    else:  # format 1 fingerprinted documents by id
        then = manifest["corpus"]["documents"]
        now = {Path(path).with_suffix("").as_posix(): sha for path, sha in now.items()}
    added = sorted(set(now) - set(then))
    removed = sorted(set(then) - set(now))
    changed = sorted(k for k in set(now) & set(then) if now[k] != then[k])
    try:
        catalog_sha = _catalog_sha(docs)
    except ValueError as exc:
        return str(exc)
    parts = [f"{len(x)} {word}" for x, word in ((added, "added"), (changed, "changed"), (removed, "removed")) if x]
    if catalog_sha != manifest["corpus"].get("catalog_sha256"):
        parts.append("catalog changed")
    return ", ".join(parts)


def check(index: Index, settings: Settings, docs: Path | None = None, model: str | None = None) -> None:
    """Raise :class:`IndexProblem` if ``index`` was built with another ``model`` than the
    one asked for (when one is), or for another state of the folder ``docs`` (when given)."""
    if model and model != index.model:
        raise IndexProblem(
            f"{settings.index}/ was built with model {index.model!r}, but {model!r} is asked for; "
            f"{rebuild_hint(settings)} --model {model}"
        )
    if docs is not None:
        reason = stale_reason(index.manifest, docs)
        if reason:
            hint = rebuild_hint(settings.with_(docs=docs))
            raise IndexProblem(f"{settings.index}/ is out of date with {docs}/ ({reason}); {hint}")


def lock_path(target: Path) -> Path:
    """The lock file of an index folder: beside it (``.NAME.lock``), so it survives the swap."""
    target = Path(target)
    return target.with_name(f".{target.name}.lock")


@contextmanager
def writer_lock(target: Path, wait: bool = True, notify: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the exclusive writer lock of the index folder ``target`` (``fcntl.flock`` on
    :func:`lock_path`, a file beside the folder, removed when released).  Another writer
    holding it: wait for it (saying so through ``notify`` once) or, with ``wait=False``,
    raise :class:`IndexProblem`.  The kernel drops the lock when its holder exits, killed or
    not, so a crashed build never blocks the next."""
    import fcntl

    path = lock_path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    told = False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
                if not wait:
                    raise IndexProblem(
                        f"{target}/ is being written by another `qa index` (process {holder}); try again when it ends"
                    ) from None
                if notify and not told:
                    notify(f"waiting for another `qa index` (process {holder}) to finish writing {target}/ …")
                    told = True
                fcntl.flock(fd, fcntl.LOCK_EX)
            # The holder before us removes the file as it lets go: the lock counts only if
            # the file locked is still the one at the path.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(path, follow_symlinks=False))
            except FileNotFoundError:
                same = False
        except BaseException:
            os.close(fd)
            raise
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
        os.close(fd)  # closing the descriptor releases the lock


def build_and_save(
    settings: Settings,
    embedder: Embedder | None = None,
    progress: bool = False,
    full: bool = False,
    wait: bool = True,
    notify: Callable[[str], None] | None = None,
) -> tuple[Index, float]:
    """Build (or update, see :func:`update`) ``settings.index`` from ``settings.docs`` and
    save it atomically; returns the index and seconds.  ``full`` re-embeds everything.

    One writer at a time: the folder's writer lock (:func:`writer_lock`) is held from
    reading the previous index and the documents to the swap, so a second writer starts
    from the first one's result and nothing either saw is lost."""
    started = time.perf_counter()
    with writer_lock(settings.index, wait=wait, notify=notify):
        index = update(settings, embedder, progress, full=full)  # read, cut, embed, index
        save(index, settings.index, steps=BUILD_STEPS)  # + the query encoder, then the swap
    seconds = time.perf_counter() - started
    index.build_info["seconds"] = round(seconds, 3)
    return index, seconds
