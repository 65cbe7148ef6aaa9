"""Building an index: read the folder, cut it, embed the passages, index them.

:func:`build` makes an :class:`~.core.Index` in memory in named steps (:func:`_read`,
:func:`_tables`, :func:`_embed`, :func:`_vector_indexes`, :func:`_changes`, :func:`_terms`,
:func:`_manifest`); :func:`update` builds reusing the vectors, cuts and BM25 tokens of the
index already in the folder; :func:`build_and_save` does that under the writer lock and saves
atomically (:mod:`.store`), running :data:`BUILD_STEPS` (the ONNX query encoder) into the new folder.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from .. import __version__
from ..data import Col, Document
from ..errors import IndexProblem
from ..ingest.chunking import layout
from ..ingest.corpus import scan
from ..settings import BuildSettings, Settings
from .bm25 import Terms, merged, read_terms, scored
from .core import Index, english_stemmer
from .embedding import OPTIONAL, Embedder, build_embedder, save_query_encoder
from .freshness import catalog_sha256, reuse_problem
from .store import BM25_DIRS, FORMAT, FORMAT_VERSION, MANIFEST, load, locate, save, writer_lock


def _tables(documents: list[Document], settings: BuildSettings, previous: Index | None = None):
    """The paragraph, sentence and chunk tables of ``documents``, and for each sentence
    and chunk row the ``previous`` row it was taken from (-1: cut here).  A document whose
    text ``previous`` holds unchanged keeps its rows from there (renumbered), uncut again:
    the cut is a function of the text and the chunking settings, and cutting (pysbd) is
    most of an update's time otherwise."""
    paragraphs, sentences, chunks = [], [], []
    origins: dict[str, list[int]] = {"sentences": [], "chunks": []}
    old = _rows_by_document(previous) if previous is not None else {}
    for d, doc in enumerate(documents):
        first_para, first_chunk = len(paragraphs), len(chunks)
        kept = old.get(doc.doc_id)
        if kept is not None and kept[0] == doc.text:
            _, p_rows, s_rows, c_rows, (old_para, old_chunk, old_sentence) = kept
            paragraphs.extend((d, s, e) for _, s, e in p_rows.tolist())
            chunks.extend((d, s, e) for _, s, e in c_rows.tolist())
            origins["sentences"].extend(range(old_sentence, old_sentence + len(s_rows)))
            origins["chunks"].extend(range(old_chunk, old_chunk + len(c_rows)))
            for row in s_rows.tolist():
                row[Col.DOC] = d
                row[Col.PARAGRAPH] += first_para - old_para
                row[Col.CHUNK] += first_chunk - old_chunk
                sentences.append(tuple(row))
            continue
        lay = layout(doc.text, settings.chunk_size, settings.chunk_overlap)
        paragraphs.extend((d, s, e) for s, e, _ in lay.paragraphs)
        origins["chunks"].extend([-1] * len(lay.chunks))
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
            origins["sentences"].append(-1)
    as_array = lambda rows, width: np.array(rows, dtype=np.int64).reshape(-1, width)  # noqa: E731
    origin = {k: np.array(v, dtype=np.int64) for k, v in origins.items()}
    return as_array(paragraphs, 3), as_array(sentences, 7), as_array(chunks, 3), origin


def _rows_by_document(index: Index) -> dict[str, tuple]:
    """Per document of ``index``: (text, paragraph rows, sentence rows, chunk rows, (first
    paragraph, first chunk, first sentence) numbers) — what :func:`_tables` reuses."""
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
            (int(p0), int(c0), int(s0)),
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


def _stored_vectors(stored, rows: np.ndarray) -> np.ndarray:
    """A copy of the vectors of ``rows`` held by a vector index (exact for flat indexes,
    decoded 8-bit codes for the approximate kinds used above ~20k passages)."""
    from .vectors import vectors_of

    return np.array(vectors_of(stored, rows), dtype=np.float32).reshape(len(rows), stored.d)


def _passage_texts(
    documents: list[Document], sentences: np.ndarray, chunks: np.ndarray
) -> tuple[list[str], list[str], list[str]]:
    """The texts of the sentences, the sentence windows and the chunks, row for row."""
    whole = [d.text for d in documents]  # each text once (a loaded index reads them from its map)
    cut = lambda table: [whole[d][s:e] for d, s, e in table.tolist()]  # noqa: E731
    return cut(sentences[:, Col.SPAN]), cut(sentences[:, Col.WINDOW]), cut(chunks[:, Col.SPAN])


def _passage_rows(origin: dict) -> dict[str, np.ndarray]:
    """The row origins of each passage kind (a window is its sentence's row)."""
    return {"sentences": origin["sentences"], "windows": origin["sentences"], "chunks": origin["chunks"]}


def _known_vectors(previous: Index, origin: dict) -> dict[str, np.ndarray]:
    """Exact passage text → its vector, for the passages of ``previous`` that the new
    table does not carry over (those of changed and removed documents: an edited
    document keeps most of its sentences)."""
    known: dict[str, np.ndarray] = {}
    spans = {
        "sentences": (previous.sentences, Col.SPAN, previous.sentence_vectors),
        "windows": (previous.sentences, Col.WINDOW, previous.window_vectors),
        "chunks": (previous.chunks, Col.SPAN, previous.chunk_vectors),
    }
    for kind, rows_origin in _passage_rows(origin).items():
        table, columns, store = spans[kind]
        rows = np.setdiff1d(np.arange(len(table)), rows_origin[rows_origin >= 0])
        if not len(rows):
            continue
        doc, start, end = table[rows][:, columns].T
        for text, vector in zip(previous.documents.texts.slices(doc, start, end), _stored_vectors(store, rows)):
            known.setdefault(text, vector)
    return known


def build(
    settings: Settings,
    embedder: Embedder | None = None,
    progress: bool = False,
    previous: Index | None = None,
    reuse: bool = True,
    reason: str = "",
) -> Index:
    """Read ``settings.docs``, cut, embed and index it (in memory; see :func:`save`).

    With a ``previous`` index and ``reuse`` (see :func:`reuse_problem` for when that is
    allowed; :func:`update` checks), unchanged files keep their document, their cut, their
    vectors and their BM25 tokens; the passages of changed files take the vectors of
    passages with the same text; IVF indexes keep their training and the carried rows'
    codes.  Only new passages are tokenised and encoded.  BM25 is scored over the whole
    folder again, so it is what a full build makes, score for score, as are flat vector
    indexes (IVF ones may differ in the cell of a few vectors).  ``previous`` also gives
    the counts of added / changed / removed documents and, for unchanged ones, the time
    they were first indexed.  ``reason`` says why a full build was made (recorded in
    ``build_info``).  The embedder is loaded only if something needs encoding."""
    started = _now()
    reuse = bool(reuse and previous is not None)
    shape = settings.build  # the half that shapes the index; threads only say how fast to encode
    catalog_sha = catalog_sha256(shape.docs)
    documents, skipped = _read(shape, previous, reuse, started, catalog_sha)
    # The previous cut is reused only from the same version of this code (cutting rules change).
    same_cut = reuse and previous.manifest.get("qa_version") == __version__
    paragraphs, sentences, chunks, origin = _tables(documents, shape, previous if same_cut else None)
    texts = dict(zip(("sentences", "windows", "chunks"), _passage_texts(documents, sentences, chunks)))
    if not texts["sentences"]:
        raise IndexProblem(f"nothing quotable in {shape.docs}: every line looks like boilerplate")
    vectors, missing, embedder, model = _embed(
        shape, settings.threads, embedder, texts, origin, previous if reuse else None, progress
    )
    stores, vector_info = _vector_indexes(vectors, origin, model["dimension"], shape, previous if reuse else None)
    build_info = _changes(documents, skipped, sentences, chunks, texts, missing, previous, embedder)
    build_info.update(full=not reuse, reason=reason)
    terms = _terms(texts, origin, previous if same_cut else None)
    return Index(
        manifest=_manifest(
            shape,
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
        bm25_sentences=scored(terms["sentences"]),
        bm25_chunks=scored(terms["chunks"]),
        build_info=build_info,
        encoder=embedder,
        sentence_terms=terms["sentences"],
        chunk_terms=terms["chunks"],
    )


def _terms(texts: dict, origin: dict, previous: Index | None) -> dict[str, Terms]:
    """Build step 5: the BM25 tokens of every sentence and chunk row.  Rows taken from
    ``previous`` (``origin``) take its saved tokens where it kept them, so an update
    tokenises only the rows cut anew (:mod:`.bm25`)."""
    stemmer = english_stemmer()
    out = {}
    for kind, model, folder in zip(("sentences", "chunks"), ("bm25_sentences", "bm25_chunks"), BM25_DIRS):
        before = None
        if previous is not None and previous.path is not None:
            old = getattr(previous, model)
            before = read_terms(previous.path / folder, old.vocab_dict, int(old.scores["num_docs"]))
        if before is None:
            out[kind] = Terms.of(texts[kind], stemmer)
        else:
            fresh = [texts[kind][r] for r in np.flatnonzero(origin[kind] < 0).tolist()]
            out[kind] = merged(before, origin[kind], fresh, stemmer)
    return out


def _read(settings: BuildSettings, previous: Index | None, reuse: bool, started: str, catalog_sha: str | None):
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


def _embed(
    settings: BuildSettings,
    threads: int,
    embedder: Embedder | None,
    texts: dict,
    origin: dict,
    previous: Index | None,
    progress: bool,
):
    """Build step 3: a vector for every passage not carried over from ``previous``
    (``origin`` < 0) — the previous index's where one of its other passages has the same
    text, the embedder's for the rest (loaded only then).  Returns (passage kind → the
    vectors of its new rows, the texts encoded, the embedder, the manifest's model record)."""
    fresh = {
        kind: [texts[kind][r] for r in np.flatnonzero(o < 0).tolist()] for kind, o in _passage_rows(origin).items()
    }
    known = _known_vectors(previous, origin) if previous is not None else {}
    missing = [t for t in dict.fromkeys(fresh["sentences"] + fresh["windows"] + fresh["chunks"]) if t not in known]
    if missing:
        # The ONNX backends export into a folder beside the index (kept: later builds skip torch).
        work = Path(settings.index).with_name(f".{Path(settings.index).name}.encoder")
        embedder = embedder or build_embedder(settings.model, threads, settings.backend, work_dir=work)
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(missing), unit="passage", desc="embedding", leave=False)
        encoded = encode_sorted(embedder, missing, settings.batch_size, bar.update if bar else None)
        if bar:
            bar.close()
        known.update(zip(missing, encoded))
        model = {"name": embedder.name, "dimension": embedder.dimension, "normalized": True}
    else:
        model = dict(previous.manifest["model"])
    dimension = model["dimension"]
    vectors = {
        kind: np.stack([known[t] for t in rows]).astype(np.float32, copy=False)
        if rows
        else np.zeros((0, dimension), np.float32)
        for kind, rows in fresh.items()
    }
    return vectors, missing, embedder, model


def _vector_indexes(vectors: dict, origin: dict, dimension: int, settings: BuildSettings, previous: Index | None):
    """Build step 4: the vector index of each passage kind (exact below ~20k, IVF-SQ8
    above: qa/index/vectors.py) from the new rows' ``vectors`` and, on an update, the
    previous index's rows carried over (``origin``: IVF indexes keep their training and
    move the carried rows' codes), and their records for the manifest."""
    import faiss

    from .vectors import build_vector_index, describe, updated_vector_index

    stores, records = {}, {}
    for name, rows_origin in _passage_rows(origin).items():
        if not len(rows_origin):
            stores[name] = faiss.IndexFlatIP(dimension)
            continue
        info: dict = {}
        like = getattr(previous, f"{name[:-1]}_vectors", None)
        if like is None:
            stores[name] = build_vector_index(vectors[name], settings.vector_index, info=info)
        else:
            stores[name] = updated_vector_index(like, rows_origin, vectors[name], settings.vector_index, info=info)
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


def _manifest(
    settings: BuildSettings, started, model, catalog_sha, documents, skipped, tables, vector_info, build_info
) -> dict:
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
        reason = reuse_problem(previous.manifest, settings.build, embedder)
        reuse = not reason
    return build(settings, embedder, progress, previous=previous, reuse=reuse, reason=reason)


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
