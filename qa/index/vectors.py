"""The product's vector indexes: exact below a size, approximate (and memory-mapped) above.

All vectors are unit length and compared by inner product (= cosine).

* ``flat``     — ``IndexFlatIP``: exact.  The default up to :data:`EXACT_MAX` vectors, where
  a full scan is already fast (and the answer stage reads the stored vectors directly).
* ``ivf-sq8``  — ``IndexIVFScalarQuantizer`` (8-bit per dimension, inverted lists over
  ``nlist`` k-means cells; a search visits ``nprobe`` cells).  The default above
  :data:`EXACT_MAX`: a quarter of the flat size on disk, and its inverted lists are
  memory-mapped on load (``faiss.IO_FLAG_MMAP``) so opening it reads almost nothing.
  ``nprobe`` is tuned at build time to the smallest value whose recall@10 against an
  exact search reaches :data:`TARGET_RECALL` on probe queries (see :func:`tune_nprobe`).
* ``ivf-flat`` — the same with float32 lists (exact distances in the visited cells).
* ``hnsw-sq8`` — ``IndexHNSWSQ`` graph over 8-bit codes (fast, but its graph is read into
  memory on load and it cannot remove or reconstruct cheaply; not chosen by ``auto``).

What each kind supports when loading (faiss 1.15, checked by tests/test_vectors.py):
``flat`` maps its vectors with ``IO_FLAG_MMAP_IFC``; the IVF kinds map their inverted
lists with ``IO_FLAG_MMAP`` (only the coarse centroids are read); ``hnsw-sq8`` maps its
codes with ``IO_FLAG_MMAP_IFC`` but reads its graph.

:func:`describe` gives the record (kind and parameters) for the index manifest.
No pickle anywhere: indexes are written with ``faiss.write_index``.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np

from ..errors import SettingsError

KINDS = ("auto", "flat", "ivf-sq8", "ivf-flat", "hnsw-sq8")
# Up to this many vectors "auto" builds an exact flat index (benchmarks/scale.py, one busy
# core: a flat scan of 10^4 384-d vectors takes ~0.4 ms, of 10^5 ~9 ms, IVF-SQ8 ~0.2 ms).
EXACT_MAX = 20_000
TARGET_RECALL = 0.95
# nprobe is tuned for this recall on probe queries, a margin above the target (tuning stops
# early when doubling nprobe gains less than TUNE_MIN_GAIN: 8-bit codes cap recall near 0.99).
TUNE_RECALL = 0.98
TUNE_MIN_GAIN = 0.003
# Probe queries are stored vectors plus noise of this norm: at 2.0 their nearest cosines
# (median top-1 ≈ 0.45-0.55) are no closer than real questions' (≈ 0.6), and their
# recall at each nprobe tracks real questions' within ~0.02 (benchmarks/scale.py).
TUNE_NOISE = 2.0
HNSW_M = 32


def _faiss():
    import faiss

    return faiss


def _unit_float32(vectors: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"vectors must be a 2-d array, got shape {x.shape}")
    return x


def choose_kind(n: int, kind: str = "auto") -> str:
    """The kind ``auto`` picks for ``n`` vectors (or ``kind`` itself, checked)."""
    if kind not in KINDS:
        raise SettingsError(f"unknown vector index kind {kind!r}; choose one of {', '.join(KINDS)}")
    if kind != "auto":
        return kind
    return "flat" if n <= EXACT_MAX else "ivf-sq8"


def default_nlist(n: int) -> int:
    """Number of IVF cells for ``n`` vectors: a power of two near sqrt(n), 16..8192.

    (4·sqrt(n) is the textbook figure; sqrt(n) trains 4× faster and, with nprobe tuned,
    reached the same recall at under 2 ms per search in benchmarks/scale.py.)"""
    if n <= 0:
        return 16
    return int(min(8192, max(16, 2 ** round(math.log2(math.sqrt(n))))))


def _train_sample(x: np.ndarray, nlist: int, seed: int = 0) -> np.ndarray:
    # faiss needs >= 39 points per centroid and gains little above ~64.
    size = min(len(x), max(64 * nlist, 10_000))
    if size == len(x):
        return x
    rows = np.sort(np.random.default_rng(seed).choice(len(x), size, replace=False))
    return x[rows]


# Whole (~70 lines): one decision per kind (flat, IVF trained or reused, HNSW), each a few lines.
def build_vector_index(
    vectors: np.ndarray,
    kind: str = "auto",
    nlist: int | None = None,
    nprobe: int | None = None,
    ef_search: int | None = None,
    target_recall: float = TUNE_RECALL,
    seed: int = 0,
    info: dict | None = None,
    like=None,
):
    """A faiss index holding ``vectors`` (unit rows, inner product), of ``kind``.

    For the IVF kinds ``nprobe`` (and for HNSW ``ef_search``) is tuned to reach
    ``target_recall`` recall@10 against an exact search unless given.  ``info``: a dict
    to receive what the build measured (seconds, tuned recall) for the manifest record,
    ``dict(describe(index), **info)``.

    ``like``: the previous index of the same passages (an update).  When it is an IVF
    index of the same kind and the cell count this size calls for, its training (cell
    centroids, 8-bit ranges) and tuned ``nprobe`` are reused and only the vectors are
    added: an update then costs an ``add``, not a k-means and a tuning.  The collection
    growing past the next cell count (about 2x) trains afresh, as does a full build.
    """
    faiss = _faiss()
    x = _unit_float32(vectors)
    n, d = x.shape
    kind = choose_kind(n, kind)
    started = time.perf_counter()
    info = {} if info is None else info
    if kind == "flat":
        index = faiss.IndexFlatIP(d)
        index.add(x)
    elif kind in ("ivf-sq8", "ivf-flat") and (trained := _trained_like(like, kind, d, nlist or default_nlist(n))):
        index, nprobe_before = trained
        _add_in_blocks(index, x)
        index.nprobe = int(nprobe or nprobe_before)
        info["reused_training"] = True
    elif kind in ("ivf-sq8", "ivf-flat"):
        nlist = int(nlist or default_nlist(n))
        nlist = max(1, min(nlist, n // 39 if n >= 39 else 1))
        quantizer = faiss.IndexFlatIP(d)
        if kind == "ivf-sq8":
            index = faiss.IndexIVFScalarQuantizer(
                quantizer, d, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
            )
        else:
            index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        index.own_fields = True
        quantizer.this.disown()
        index.cp.seed = seed
        t = time.perf_counter()
        index.train(_train_sample(x, nlist, seed))
        info["train_seconds"] = round(time.perf_counter() - t, 2)
        _add_in_blocks(index, x)
        if nprobe is None:
            nprobe, recall = tune_nprobe(index, x, target_recall, seed=seed)
            info["tuned_recall_at_10"] = round(recall, 4)
        index.nprobe = int(nprobe)
    elif kind == "hnsw-sq8":
        index = faiss.IndexHNSWSQ(d, faiss.ScalarQuantizer.QT_8bit, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.train(_train_sample(x, 256, seed))
        _add_in_blocks(index, x)
        if ef_search is None:
            ef_search, recall = tune_ef_search(index, x, target_recall, seed=seed)
            info["tuned_recall_at_10"] = round(recall, 4)
        index.hnsw.efSearch = int(ef_search)
    else:  # pragma: no cover - choose_kind refuses others
        raise ValueError(kind)
    info["build_seconds"] = round(time.perf_counter() - started, 2)
    return index


def _trained_like(like, kind: str, d: int, nlist: int):
    """An empty IVF index with the training of ``like`` and its nprobe, or None when
    ``like`` is not an IVF index of ``kind`` with ``nlist`` cells of ``d`` dimensions."""
    if like is None or kind_of(like) != kind or like.d != d:
        return None
    faiss = _faiss()
    old = faiss.downcast_index(like)  # (``like`` stays referenced by the caller: the C++ object lives)
    if old.nlist != nlist or old.quantizer.ntotal != nlist:
        return None
    quantizer = faiss.IndexFlatIP(d)
    quantizer.add(faiss.downcast_index(old.quantizer).reconstruct_n(0, nlist))
    if kind == "ivf-sq8":
        index = faiss.IndexIVFScalarQuantizer(
            quantizer, d, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
        index.sq.trained = old.sq.trained
    else:
        index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
    index.own_fields = True
    quantizer.this.disown()
    index.is_trained = True
    return index, int(old.nprobe)


def updated_vector_index(like, origin: np.ndarray, fresh: np.ndarray, kind: str = "auto", info: dict | None = None):
    """The vector index of a new table whose row ``r`` is row ``origin[r]`` of ``like``
    (the previous index: an update) or, where ``origin[r] < 0``, the next row of ``fresh``.

    When ``like`` is an IVF index whose training :func:`build_vector_index` would reuse,
    the carried rows' stored codes move to their new row numbers, in the cell they were
    in, and only ``fresh`` is assigned and encoded: at 10^6 vectors that is seconds where
    adding them all again is a quarter of a minute.  Otherwise the rows are gathered
    (decoded codes for the 8-bit kinds) and built like a full build's."""
    faiss = _faiss()
    info = {} if info is None else info
    fresh = np.asarray(fresh, dtype=np.float32).reshape(-1, like.d)
    n, kept = len(origin), np.flatnonzero(origin >= 0)
    kind = choose_kind(n, kind)
    trained = _trained_like(like, kind, like.d, default_nlist(n)) if kind in ("ivf-sq8", "ivf-flat") else None
    if trained is None or not len(kept):
        matrix = np.empty((n, like.d), dtype=np.float32)
        matrix[kept] = vectors_of(like, origin[kept])
        matrix[origin < 0] = fresh
        return build_vector_index(matrix, kind, info=info, like=like)
    started = time.perf_counter()
    index, nprobe = trained
    added = _trained_like(like, kind, like.d, default_nlist(n))[0]  # the fresh rows, encoded by faiss
    if len(fresh):
        added.add_with_ids(_unit_float32(fresh), np.flatnonzero(origin < 0).astype(np.int64))
    from faiss.contrib.inspect_tools import get_invlist  # (ids, codes) of one cell, copied

    renumber = np.full(like.ntotal, -1, dtype=np.int64)
    renumber[origin[kept]] = kept
    lists, old_lists = index.invlists, faiss.downcast_index(like).invlists
    for cell in range(index.nlist):
        old_ids, old_codes = get_invlist(old_lists, cell)
        new_ids, new_codes = get_invlist(added.invlists, cell)
        ids = np.concatenate([renumber[old_ids], new_ids])
        codes = np.concatenate([old_codes, new_codes])
        order = np.argsort(ids, kind="stable")[int((ids < 0).sum()) :]  # rows in order, removed rows out
        if len(order):
            ids, codes = np.ascontiguousarray(ids[order]), np.ascontiguousarray(codes[order])
            lists.add_entries(cell, len(ids), faiss.swig_ptr(ids), faiss.swig_ptr(codes))
    index.ntotal = n
    index.nprobe = nprobe
    info["reused_training"] = True
    info["build_seconds"] = round(time.perf_counter() - started, 2)
    return index


def _add_in_blocks(index, x: np.ndarray, block: int = 65536) -> None:
    for i in range(0, len(x), block):
        index.add(x[i : i + block])


def probe_queries(x: np.ndarray, count: int = 200, noise: float = 0.5, seed: int = 0) -> np.ndarray:
    """Queries near (not on) stored vectors: ``x[i]`` plus Gaussian noise of norm about
    ``noise``, renormalised — a stand-in for questions when tuning."""
    rng = np.random.default_rng(seed + 1)
    rows = rng.choice(len(x), min(count, len(x)), replace=False)
    q = x[rows] + rng.standard_normal((len(rows), x.shape[1])).astype(np.float32) * (noise / math.sqrt(x.shape[1]))
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def exact_top(x: np.ndarray, queries: np.ndarray, k: int = 10, block: int = 262_144) -> np.ndarray:
    """Exact top-``k`` ids of ``queries`` over ``x`` by inner product (blockwise, exact)."""
    k = min(k, len(x))
    best_s = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_i = np.full((len(queries), k), -1, dtype=np.int64)
    for start in range(0, len(x), block):
        s = queries @ x[start : start + block].T
        kk = min(k, s.shape[1])
        part = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
        cand_s = np.concatenate([best_s, np.take_along_axis(s, part, 1)], axis=1)
        cand_i = np.concatenate([best_i, part + start], axis=1)
        order = np.argsort(-cand_s, axis=1, kind="stable")[:, :k]
        best_s, best_i = np.take_along_axis(cand_s, order, 1), np.take_along_axis(cand_i, order, 1)
    return best_i


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each row of ``truth`` found in the same row of ``found``."""
    k = truth.shape[1]
    hits = [len(set(f[:k].tolist()) & set(t.tolist())) / k for f, t in zip(found, truth)]
    return float(np.mean(hits)) if hits else 1.0


def tune_nprobe(
    index, x: np.ndarray, target: float = TUNE_RECALL, queries: np.ndarray | None = None, seed: int = 0
) -> tuple[int, float]:
    """Smallest power-of-two ``nprobe`` whose recall@10 on ``queries`` (default: probe
    queries near ``x``) reaches ``target``; returns (nprobe, recall)."""
    q = probe_queries(x, noise=TUNE_NOISE, seed=seed) if queries is None else queries
    truth = exact_top(x, q, 10)
    nprobe, recall, previous = 1, 0.0, -1.0
    while True:
        index.nprobe = nprobe
        _, found = index.search(q, 10)
        recall = recall_at(found, truth)
        if recall >= target or nprobe >= index.nlist or (recall >= TARGET_RECALL and recall - previous < TUNE_MIN_GAIN):
            return nprobe, recall
        previous = recall
        nprobe = min(nprobe * 2, index.nlist)


def tune_ef_search(
    index, x: np.ndarray, target: float = TUNE_RECALL, queries: np.ndarray | None = None, seed: int = 0
) -> tuple[int, float]:
    q = probe_queries(x, noise=TUNE_NOISE, seed=seed) if queries is None else queries
    truth = exact_top(x, q, 10)
    ef, recall, previous = 16, 0.0, -1.0
    while True:
        index.hnsw.efSearch = ef
        _, found = index.search(q, 10)
        recall = recall_at(found, truth)
        if recall >= target or ef >= 2048 or (recall >= TARGET_RECALL and recall - previous < TUNE_MIN_GAIN):
            return ef, recall
        previous = recall
        ef *= 2


def kind_of(index) -> str:
    """The :data:`KINDS` name of a faiss index built here (or loaded)."""
    faiss = _faiss()
    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexFlat):
        return "flat"
    if isinstance(index, faiss.IndexIVFScalarQuantizer):
        return "ivf-sq8"
    if isinstance(index, faiss.IndexIVFFlat):
        return "ivf-flat"
    if isinstance(index, faiss.IndexHNSW):
        return "hnsw-sq8"
    return type(index).__name__


def describe(index) -> dict:
    """Kind and parameters of ``index`` for the manifest (JSON-ready)."""
    faiss = _faiss()
    index = faiss.downcast_index(index)
    kind = kind_of(index)
    record: dict = {
        "kind": kind,
        "count": int(index.ntotal),
        "dimension": int(index.d),
        "metric": "inner_product",
        "faiss": faiss.__version__,
    }
    if kind.startswith("ivf"):
        record.update(nlist=int(index.nlist), nprobe=int(index.nprobe))
    if kind == "hnsw-sq8":
        record.update(M=HNSW_M, ef_search=int(index.hnsw.efSearch))
    return record


def save_vector_index(index, path: Path) -> Path:
    """Write ``index`` to ``path`` (atomically: a temporary file renamed into place)."""
    faiss = _faiss()
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        faiss.write_index(index, str(tmp))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def load_vector_index(path: Path, mmap: bool = True):
    """Read an index written by :func:`save_vector_index`.

    ``mmap``: map the bulk of the file instead of reading it — the inverted lists of IVF
    kinds (``IO_FLAG_MMAP``), the vectors/codes of flat and HNSW kinds
    (``IO_FLAG_MMAP_IFC``).  Pages are then read on demand and shared between processes;
    the file must stay in place while the index is open (a folder swap by rename is fine:
    the open mapping keeps the old file).
    """
    faiss = _faiss()
    path = str(path)
    if not mmap:
        return faiss.read_index(path)
    # The kind decides the flag: IO_FLAG_MMAP on a flat index copies it instead of mapping.
    ivf = _is_ivf_file(path)
    index = faiss.read_index(path, faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if ivf else faiss.IO_FLAG_MMAP_IFC)
    if ivf:
        lists = faiss.downcast_InvertedLists(faiss.extract_index_ivf(index).invlists)
        if hasattr(lists, "prefetch_nthread"):
            # Mapped lists (OnDiskInvertedLists) start 32 threads per search to pre-read the
            # visited cells: on a few cores that cost a third of the search time at 10^6
            # vectors (benchmarks/answer_scale.py), and the pages are warm after the first
            # questions anyway.  Same results; the search reads the pages itself.
            lists.prefetch_nthread = 0
    return index


def _is_ivf_file(path: str) -> bool:
    # A faiss index file starts with its class's fourcc: "IwFl", "IwSq", "IwPQ"... for IVF
    # ("IvFl"/"IvSQ"/"IvPQ" in older files), "IxFI"/"IxF2" flat, "IHNs" HNSW-SQ.
    with open(path, "rb") as f:
        fourcc = f.read(4)
    return fourcc[:2] in (b"Iw", b"Iv")


def vectors_of(index, ids) -> np.ndarray:
    """The stored vectors of rows ``ids`` (float32, len(ids) × d): exact for ``flat``,
    decoded 8-bit codes (approximate) for the SQ8 kinds.  IVF kinds need a direct map
    (made here on first use: one int64 per vector)."""
    faiss = _faiss()
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexFlat):
        matrix = faiss.rev_swig_ptr(index.get_xb(), index.ntotal * index.d).reshape(index.ntotal, index.d)
        return matrix[ids]
    if isinstance(index, faiss.IndexIVF) and index.direct_map.type == faiss.DirectMap.NoMap:
        index.make_direct_map()
    if len(ids) and (ids.min() < 0 or ids.max() >= index.ntotal):
        raise IndexError(f"vector id out of range 0..{index.ntotal - 1}")
    if not len(ids):
        return np.zeros((0, index.d), dtype=np.float32)
    return index.reconstruct_batch(ids)
