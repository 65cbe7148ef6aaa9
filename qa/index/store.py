"""Saving and loading an index folder: its files, the atomic swap, the writer lock.

An index is a folder::

    manifest.json       format version, model, dimension, chunking, corpus fingerprints (per
                        file, skipped files included), file sizes, what the last build did
    documents.jsonl     one line per document: id, title, outlet, path, sha256, format, page
                        starts (PDF), date, url, when it was indexed
    texts.bin           the exact texts that quotes are cut from (extracted text for HTML and
                        PDF, the body after the front matter for Markdown), memory-mapped
    texts.npy           int64 (n, 3): where each text is in texts.bin (:mod:`.texts`)
    paragraphs.npy      int64 (n, 3): document, start, end
    sentences.npy       int64 (n, 7): document, start, end, paragraph, chunk, window start, window end
                        (quotable sentences only; the window adds the neighbours in its paragraph)
    chunks.npy          int64 (n, 3): document, start, end
    sentences.faiss     unit vectors of the sentences (inner product = cosine)
    windows.faiss       unit vectors of the sentence windows
    chunks.faiss        unit vectors of the chunks
    bm25-sentences/     bm25s index of the sentences (JSON + .npy), and each row's
                        tokens (terms.*.npy: what an update reuses, qa/index/bm25.py)
    bm25-chunks/        the same for the chunks

File names are fixed here, never read from the manifest, so an index folder cannot
point outside itself; NumPy files are loaded with ``allow_pickle=False``.

Updating (:mod:`.builder`): :func:`~.builder.update` reads the folder again and rebuilds every table and both BM25
indexes from all texts (their statistics depend on the whole corpus), but takes the
vectors of every passage whose exact text was already embedded from the previous index,
so only added and changed documents reach the model.  The result is the index a full
build would make.  A different model or chunking, or an unreadable previous index,
means a full rebuild.
"""

from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from dataclasses import fields, replace
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from ..data import Col, Document
from ..errors import IndexProblem, first_line
from ..settings import BuildSettings
from .bm25 import save_terms
from .core import Index
from .freshness import rebuild_hint
from .texts import BIN as TEXTS_BIN
from .texts import TABLE as TEXTS_TABLE
from .texts import Documents, MappedTexts, Texts
from .texts import write as write_texts

FORMAT = "qa-index"
# 2: documents.jsonl gained format, pages, date, url and indexed_at; the manifest
#    fingerprints files (skipped ones too) and records the last build.
# 3: the texts moved out of documents.jsonl into texts.bin (memory-mapped: :mod:`.texts`).
FORMAT_VERSION = 3
# Versions this code loads: a version-1 index lacks the new fields (they default) and the
# per-file fingerprints (staleness is then judged per document id); versions 1 and 2 hold
# the texts in documents.jsonl (read into memory).  The next ``python -m qa index``
# rewrites an older index as the current version, reusing its vectors.
READABLE_VERSIONS = (1, 2, 3)
MANIFEST = "manifest.json"
ARRAYS = ("paragraphs.npy", "sentences.npy", "chunks.npy")
FAISS_FILES = ("sentences.faiss", "windows.faiss", "chunks.faiss")
BM25_DIRS = ("bm25-sentences", "bm25-chunks")


class IndexWriteError(IndexProblem, OSError):
    """An index that could not be written (a full disk): the previous one is untouched."""


# ---------------------------------------------------------------- saving (atomically)


def _file_sizes(folder: Path) -> dict[str, int]:
    return {
        p.relative_to(folder).as_posix(): p.stat().st_size
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


# Whole (~65 lines): one try around every write and the swap, so a failure anywhere removes the new folder.
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
            for i in range(len(index.documents)):
                d = index.documents.header(i)
                row = {f.name: getattr(d, f.name) for f in fields(Document) if f.name != "text"}
                row["pages"] = list(d.pages)
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        texts = index.documents.texts
        write_texts((texts.text(i) for i in range(len(texts))), tmp)
        for name, array in zip(ARRAYS, (index.paragraphs, index.sentences, index.chunks)):
            np.save(tmp / name, array, allow_pickle=False)
        for name, vectors in zip(FAISS_FILES, (index.sentence_vectors, index.window_vectors, index.chunk_vectors)):
            try:
                faiss.write_index(vectors, str(tmp / name))
            except RuntimeError as exc:  # faiss reports a failed write (a full disk) as a RuntimeError
                code = _errno_of(exc)
                raise OSError(
                    code, os.strerror(code) if "No space left" in str(exc) else first_line(exc), str(tmp / name)
                ) from None
        for name, bm25, terms in zip(
            BM25_DIRS, (index.bm25_sentences, index.bm25_chunks), (index.sentence_terms, index.chunk_terms)
        ):
            bm25.save(str(tmp / name), show_progress=False)
            if terms is not None:
                save_terms(terms, tmp / name)
        entries: dict = {}
        for step in steps:
            entries.update(step(index, tmp, locate(target)))
        manifest = dict(index.manifest, format_version=FORMAT_VERSION, files=_file_sizes(tmp), **entries)
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
            f"cannot write the index to {target}/ ({where + ': ' if where else ''}{exc.strerror or first_line(exc)}); "
            f"the previous index is unchanged"
        ) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    index.manifest = manifest
    index.path = target
    return target


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
            f"{', '.join(map(str, READABLE_VERSIONS[:-1]))} and {READABLE_VERSIONS[-1]}; rebuild with: python -m qa index --index {folder}"
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
    """Load an index folder, checking every file it should hold (one-line errors).

    Steps: the manifest (:func:`read_manifest`), every file it lists present at its size
    (:func:`_check_files`), the documents, the tables, the vector and BM25 indexes (each
    a one-line error when it cannot be read), then that they all agree (:func:`_check_agreement`)."""
    import bm25s

    folder = locate(Path(folder))
    manifest = read_manifest(folder)
    _check_files(folder, manifest)

    def guarded(name: str, fn):
        try:
            return fn(folder / name)
        except IndexProblem:
            raise
        except Exception as exc:  # numpy, faiss, json and bm25s each raise their own
            raise IndexProblem(f"{folder / name}: damaged ({type(exc).__name__})") from None

    headers = guarded("documents.jsonl", _read_documents)
    hint = rebuild_hint(BuildSettings(index=folder, docs=Path(manifest["corpus"]["root"])))
    if TEXTS_TABLE in (manifest.get("files") or {}):
        texts = guarded(TEXTS_TABLE, lambda p: MappedTexts(p.parent))
    else:  # format 1 or 2: the texts are in documents.jsonl
        texts = Texts([d.text for d in headers])
        headers = [replace(d, text="") for d in headers]
    _check_texts(headers, texts, manifest, folder, hint)
    documents = Documents(headers, texts)
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
        problem = _table_problem(name, array, texts.lengths, arrays[0], arrays[2])
        if problem:
            raise IndexProblem(f"{folder / name}: damaged ({problem}); {hint}")
    index = Index(manifest, documents, *arrays, *vectors, *bm25, path=folder)
    _check_agreement(index, folder, hint)
    return index


def _check_files(folder: Path, manifest: dict) -> None:
    """Every file the manifest lists is in ``folder``, at the size it lists."""
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


def _read_documents(path: Path) -> list[Document]:
    """documents.jsonl: one :class:`~qa.data.Document` a line (ValueError when a row is
    wrong); since format 3 without its text (in texts.bin), before with it."""
    documents = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            pages = tuple(int(p) for p in row.pop("pages", ()) or ())
            doc = Document(**{"text": "", **row}, pages=pages)
            texts_ok = all(isinstance(getattr(doc, f.name), str) for f in fields(Document) if f.name != "pages")
            if not texts_ok or list(pages) != sorted(pages):
                raise ValueError("bad document row")
            documents.append(doc)
    if len({d.doc_id for d in documents}) != len(documents):
        raise ValueError("repeated document id")
    return documents


def _check_texts(headers: list[Document], texts: Texts, manifest: dict, folder: Path, hint: str) -> None:
    """One text per document, each as long as the manifest recorded, its pages inside it."""
    where = folder / (TEXTS_BIN if isinstance(texts, MappedTexts) else "documents.jsonl")
    if len(texts) != len(headers):
        raise IndexProblem(f"{where}: damaged ({len(texts)} texts for {len(headers)} documents); {hint}")
    lengths = manifest["corpus"].get("text_lengths")  # recorded by builds since text_lengths was added
    for d, length in zip(headers, texts.lengths.tolist()):
        if lengths is not None and lengths.get(d.doc_id) != length:
            raise IndexProblem(
                f"{where}: the text of {d.doc_id!r} has {length} characters, the manifest says "
                f"{lengths.get(d.doc_id)}; {hint}"
            )
        if not all(0 <= p <= length for p in d.pages):
            raise IndexProblem(f"{folder / 'documents.jsonl'}: damaged (pages of {d.doc_id!r}); {hint}")


def _check_agreement(index: Index, folder: Path, hint: str) -> None:
    """The vector indexes, the BM25 indexes and the tables hold as many rows as each other
    and as the manifest counts (files from another index, or a half-copied folder)."""
    manifest, documents = index.manifest, index.documents
    vectors = (index.sentence_vectors, index.window_vectors, index.chunk_vectors)
    bm25 = (index.bm25_sentences, index.bm25_chunks)
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


def _bm25_size(model) -> int:
    """How many passages a loaded bm25s index holds."""
    try:
        return int(model.scores["num_docs"])
    except (AttributeError, KeyError, TypeError, ValueError):
        return -1


# Width of each table, and its columns that hold (start, end) pairs.
_WIDTH = {"paragraphs.npy": 3, "sentences.npy": 7, "chunks.npy": 3}


def _table_problem(
    name: str, table: np.ndarray, lengths: np.ndarray, paragraphs: np.ndarray, chunks: np.ndarray
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
    if docs.min() < 0 or docs.max() >= len(lengths):
        return f"a row names document {int(docs.max() if docs.max() >= len(lengths) else docs.min())} of {len(lengths)}"
    lengths = np.asarray(lengths, dtype=np.int64)[docs]
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


# ---------------------------------------------------------------- one writer at a time


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
