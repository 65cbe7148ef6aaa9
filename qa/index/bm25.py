"""BM25 indexes that an update does not re-tokenise.

bm25s keeps only the finished scores: per vocabulary term, the rows that hold it and
their BM25.  Those depend on the whole collection (idf, the mean length), so adding one
document changes every score, and bm25s can only rebuild from text — re-tokenising every
row, most of an update's time on a large index.  Here each row's tokens are kept beside
the scores (:class:`Terms`, ``terms.*.npy`` in the bm25s folder); an update tokenises the
new rows only (:func:`merged`) and scores the whole collection again with array
arithmetic (:func:`scored`), which gives bm25s's own scores, bit for bit (tested)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import numpy as np

from .core import tokenize

TERMS_FILES = ("terms.indptr.npy", "terms.ids.npy")


@dataclass(frozen=True)
class Terms:
    """Each row's BM25 tokens in order, stopwords dropped: row ``r`` holds
    ``ids[indptr[r]:indptr[r + 1]]``, ids into ``vocab`` (token → id)."""

    indptr: np.ndarray  # int64, rows + 1
    ids: np.ndarray  # int32
    vocab: dict[str, int]

    @property
    def rows(self) -> int:
        return len(self.indptr) - 1

    @classmethod
    def of(cls, texts: list[str], stemmer) -> Terms:
        """Tokenise ``texts`` (bm25s: lower-case words of 2+ characters, English stopwords
        out, Snowball stems)."""
        tokenized = tokenize(texts, stemmer)
        lengths = np.fromiter(map(len, tokenized.ids), dtype=np.int64, count=len(texts))
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        ids = np.fromiter(chain.from_iterable(tokenized.ids), dtype=np.int32, count=int(indptr[-1]))
        return _canonical(indptr, ids, sorted(tokenized.vocab, key=tokenized.vocab.__getitem__))


def _canonical(indptr: np.ndarray, ids: np.ndarray, tokens: list[str]) -> Terms:
    """Terms over the tokens that rows hold, numbered in sorted order.  bm25s numbers them
    in the iteration order of a Python set (it changes with the process); sorted, the ids
    are the same for every build of the same rows, an update's or a full build's."""
    used = np.flatnonzero(np.bincount(ids, minlength=len(tokens)))
    by_token = sorted(used.tolist(), key=tokens.__getitem__)
    renumber = np.full(len(tokens), -1, dtype=np.int32)
    renumber[by_token] = np.arange(len(by_token), dtype=np.int32)
    return Terms(indptr, renumber[ids], {tokens[i]: n for n, i in enumerate(by_token)})


def _segments(indptr: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Positions ``indptr[r]:indptr[r + 1]`` of each row of ``rows``, concatenated."""
    starts, lengths = indptr[rows], np.diff(indptr)[rows]
    heads = np.cumsum(lengths) - lengths  # where each row's segment begins in the result
    return np.repeat(starts - heads, lengths) + np.arange(int(lengths.sum()), dtype=np.int64)


def merged(previous: Terms, origin: np.ndarray, texts: list[str], stemmer) -> Terms:
    """The terms of a new table whose row ``r`` is the previous table's row ``origin[r]``
    (the same text), or, where ``origin[r] < 0``, the next of ``texts`` — tokenised here.
    The same terms, ids included, as :meth:`Terms.of` of all the rows' texts."""
    fresh_rows = np.flatnonzero(origin < 0)
    kept_rows = np.flatnonzero(origin >= 0)
    if len(texts) != len(fresh_rows):
        raise ValueError(f"{len(texts)} texts for {len(fresh_rows)} new rows")
    fresh = Terms.of(texts, stemmer)
    # One vocabulary: the previous one, then the new rows' unseen tokens.
    vocab = dict(previous.vocab)
    to_merged = np.array([vocab.setdefault(t, len(vocab)) for t in fresh.vocab], dtype=np.int32)
    lengths = np.zeros(len(origin), dtype=np.int64)
    lengths[kept_rows] = np.diff(previous.indptr)[origin[kept_rows]]
    lengths[fresh_rows] = np.diff(fresh.indptr)
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    ids = np.empty(int(indptr[-1]), dtype=np.int32)
    ids[_segments(indptr, kept_rows)] = previous.ids[_segments(previous.indptr, origin[kept_rows])]
    ids[_segments(indptr, fresh_rows)] = to_merged[fresh.ids]
    return _canonical(indptr, ids, sorted(vocab, key=vocab.__getitem__))  # removed rows' terms leave


def scored(terms: Terms, k1: float = 1.5, b: float = 0.75):
    """A bm25s index (Lucene BM25, bm25s's defaults) of ``terms``: what ``bm25s.BM25().index``
    makes of the same token ids, score for score, computed as arrays rather than a row at
    a time (the float operations are bm25s's, in its order)."""
    import bm25s

    n, width = terms.rows, len(terms.vocab)
    lengths = np.diff(terms.indptr)
    mean_length = lengths.mean() if n else 0.0
    rows = np.repeat(np.arange(n, dtype=np.int64), lengths)
    stride = max(width, 1)
    pairs, tf = np.unique(rows * stride + terms.ids, return_counts=True)  # by term within row
    row, term = pairs // stride, pairs % stride
    df = np.bincount(term, minlength=width)
    idf = np.zeros(width, dtype=np.float32)
    held = np.flatnonzero(df)
    idf[held] = [math.log(1 + (n - d + 0.5) / (d + 0.5)) for d in df[held].tolist()]
    tf32 = tf.astype(np.float32)
    tfc = tf32 / (k1 * ((1 - b) + b * lengths[row] / mean_length) + tf32)
    score = (idf[term] * tfc).astype(np.float32)
    order = np.argsort(term * max(n, 1) + row, kind="stable")  # columns (terms), rows within
    indptr = np.zeros(width + 1, dtype=np.int64)
    np.cumsum(df, out=indptr[1:])
    model = bm25s.BM25(k1=k1, b=b)
    model.scores = {
        "data": score[order],
        "indices": row[order].astype(np.int32),
        "indptr": indptr,
        "num_docs": n,
    }
    model.vocab_dict = dict(terms.vocab)
    model.vocab_dict.setdefault("", width)  # as bm25s's index() adds it
    model.unique_token_ids_set = set(model.vocab_dict.values())
    model.nonoccurrence_array = None
    return model


def save_terms(terms: Terms, folder: Path) -> None:
    """Write ``terms``' arrays into a bm25s folder (its vocabulary is the folder's)."""
    for name, array in zip(TERMS_FILES, (terms.indptr, terms.ids)):
        np.save(Path(folder) / name, array, allow_pickle=False)


def read_terms(folder: Path, vocab: dict[str, int], rows: int) -> Terms | None:
    """The terms saved in a bm25s folder, memory-mapped; None when it has none (indexes
    built before they were kept) or they do not fit ``rows`` rows and ``vocab``."""
    paths = [Path(folder) / name for name in TERMS_FILES]
    if not all(p.is_file() for p in paths):
        return None
    try:
        indptr, ids = (np.load(p, allow_pickle=False, mmap_mode="r") for p in paths)
    except (OSError, ValueError):
        return None
    if len(indptr) != rows + 1 or int(indptr[-1]) != len(ids) or (len(ids) and int(ids.max()) >= len(vocab)):
        return None
    return Terms(np.asarray(indptr), np.asarray(ids), {t: i for t, i in vocab.items() if t})
