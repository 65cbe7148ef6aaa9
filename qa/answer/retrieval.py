"""Question → scored candidate passages (sentences and chunks), dense and BM25."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..data import Col
from ..index import Index, tokenize

# How many chunks each side (nearest by cosine, best by BM25) offers to the fused top chunks.
CHUNK_POOL = 64


@dataclass
class Signals:
    """What one question needs from the index, computed once and shared by every mode.

    Nothing here is as long as the collection: each list is a top-k, and the scores of
    any other row are looked up on demand (:meth:`Retriever.bm25_of`, the vector rows)."""

    query_vector: np.ndarray  # (dim,)
    sentence_dense_top: tuple[np.ndarray, np.ndarray]  # (ids, cosines) of the nearest sentences
    sentence_bm25_top: tuple[np.ndarray, np.ndarray]  # (ids, BM25) of the best sentences by BM25
    top_chunks: np.ndarray  # the best chunks by cosine + BM25 relative to the best chunk
    best_sentence_bm25: float  # the best sentence's BM25 (relative scores divide by it)
    best_chunk_bm25: float
    query_terms: np.ndarray  # bm25s token ids of the question's terms in the sentence index
    chunk_terms: np.ndarray  # ... and in the chunk index
    query_idf: np.ndarray  # idf over sentences of ``query_terms``
    query_idf_total: float  # idf mass of all the question's terms, unseen ones at the highest idf


class Lexical:
    """BM25 over a bm25s index without scoring every row.

    bm25s keeps, per vocabulary term, the sorted rows that hold it and their precomputed
    BM25 contributions (a CSC matrix); a row's score is the sum over the question's terms.
    :meth:`top` finds the best ``k`` rows by MaxScore (Turtle & Flood 1995): rows are
    enumerated only from the postings of the terms that can still lift a row into the
    top ``k``; the long postings of common terms are only looked up (binary search) for
    rows found elsewhere.  Results are exactly those of a full scoring, float for float
    (terms are added in the same order as bm25s adds them)."""

    def __init__(self, model) -> None:
        scores = model.scores
        self.data, self.indices, self.indptr = scores["data"], scores["indices"], scores["indptr"]
        self.rows = int(scores["num_docs"])
        # Variants with a score for absent terms (BM25L, BM25+) add to every row: score them all.
        self._model = model if getattr(model, "nonoccurrence_array", None) is not None else None

    @cached_property
    def upper_bounds(self) -> np.ndarray:
        """Per term, the highest contribution it gives any row (0 for unused terms)."""
        counts = np.diff(self.indptr)
        out = np.zeros(len(counts), dtype=np.float64)
        used = counts > 0
        if used.any():
            # (A maximum is one of the values: no wider copy of the postings needed.)
            out[used] = np.maximum.reduceat(self.data, self.indptr[:-1][used])
        return out

    def _postings(self, term: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = int(self.indptr[term]), int(self.indptr[term + 1])
        return self.indices[a:b], self.data[a:b]

    def scores_of(self, terms: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """BM25 of ``rows`` (float32) for the question's ``terms`` (sorted token ids)."""
        rows = np.asarray(rows, dtype=np.int64)
        if self._model is not None:
            return _bm25_scores(self._model, list(terms))[rows] if len(terms) else np.zeros(len(rows), np.float32)
        acc = np.zeros(len(rows), dtype=np.float32)
        increasing = bool(np.all(rows[1:] > rows[:-1]))
        for t in terms:
            at, vals = self._lookup(int(t), rows, increasing)
            acc[at] += vals
        return acc

    def _lookup(self, term: int, rows: np.ndarray, increasing: bool) -> tuple[np.ndarray, np.ndarray]:
        """Positions in ``rows`` holding ``term`` and its contributions there.  For rows
        strictly increasing (as every caller passes them) a short posting list is searched
        in the rows rather than the rows in it: binary searches for the shorter side."""
        ids, vals = self._postings(term)
        if not len(ids) or not len(rows):
            return np.zeros(0, dtype=np.int64), vals[:0]
        if increasing and len(ids) < len(rows):
            at = np.minimum(np.searchsorted(rows, ids), len(rows) - 1)
            hit = rows[at] == ids
            return at[hit], vals[hit]
        at = np.minimum(np.searchsorted(ids, rows), len(ids) - 1)
        hit = ids[at] == rows
        return np.flatnonzero(hit), vals[at[hit]]

    def _may_reach(
        self, rows: np.ndarray, partial: np.ndarray, later: list[int], rest: float, theta: float
    ) -> np.ndarray:
        """Of ``rows`` first seen at a term (they hold no earlier one; ``partial``: that
        term's contribution), those that may still score ``theta`` or more.  Later terms'
        contributions are added one by one (the highest bounds first), and a row is let go
        as soon as what it has plus the bounds ``rest`` of the terms not added yet falls
        below ``theta`` (the non-essential lists of MaxScore).  A row let go is not in the
        top k (``theta`` only rises); when a later term's postings hold it again, it is
        judged again there, from less evidence: let go again, or scored in full."""
        partial = partial.astype(np.float64)
        for u in later:
            alive = ~_surely_below(partial + rest, theta)
            rows, partial = rows[alive], partial[alive]
            if len(rows) <= 256:  # few enough: scoring them in full costs less than pruning on
                return rows
            at, vals = self._lookup(u, rows, True)
            partial[at] += vals
            rest -= float(self.upper_bounds[u])
        return rows[~_surely_below(partial, theta)]

    def top(self, terms: np.ndarray, k: int, fill: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best rows and their scores, best first (ties: lower row first).  Only
        rows that hold a term, unless ``fill``: then rows without any follow in row order
        up to ``k`` (what a top-k over every row's score gives)."""
        k = min(int(k), self.rows)
        if self._model is not None:
            full = _bm25_scores(self._model, list(terms))
            best = top_indices(full, k)
            return best, full[best]
        terms = np.asarray(terms, dtype=np.int64)
        ub = self.upper_bounds[terms] if len(terms) else np.zeros(0)
        # Rarest-looking first: terms with the highest possible contribution.
        order = [int(terms[i]) for i in np.argsort(-ub, kind="stable")]
        rest_ub = float(ub.sum())
        found = np.zeros(0, dtype=np.int64)
        scores = np.zeros(0, dtype=np.float32)
        for j, t in enumerate(order):
            theta = None
            if len(found) >= k:
                theta = float(np.partition(scores, len(scores) - k)[len(scores) - k])
                # A row not found yet holds only terms still to come: it scores at most rest_ub.
                if _surely_below(rest_ub, theta):
                    break
            ids, vals = self._postings(t)
            keep = ~np.isin(ids, found, assume_unique=True)
            new = ids[keep]
            if theta is not None:
                new = self._may_reach(new, vals[keep], order[j + 1 :], rest_ub - float(self.upper_bounds[t]), theta)
            if len(new):
                found = np.concatenate([found, new])
                scores = np.concatenate([scores, self.scores_of(terms, new)])
            rest_ub -= float(self.upper_bounds[t])
        best = np.lexsort((found, -scores))[:k]
        ids, vals = found[best], scores[best]
        if fill and len(ids) < k:
            # Rows without any term score 0: the lowest-numbered ones not already listed.
            extra = np.setdiff1d(np.arange(min(self.rows, k + len(found)), dtype=np.int64), found)[: k - len(ids)]
            ids = np.concatenate([ids, extra])
            vals = np.concatenate([vals, np.zeros(len(extra), dtype=np.float32)])
        return ids, vals


def _surely_below(bound, theta: float):
    """``bound`` (float64 sums of float32 scores; a number or an array) is below ``theta``
    by more than any float32 rounding of the same sums could make up."""
    return bound * (1 + 1e-5) + 1e-6 < theta


def top_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores, best first (ties: lower index first). A full sort
    only for small arrays; large ones are partitioned first."""
    if len(scores) > 8 * k:
        part = np.argpartition(-scores, k)[:k]
        return part[np.lexsort((part, -scores[part]))]
    return np.argsort(-scores, kind="stable")[:k]


def _relative(scores: np.ndarray, best: float) -> np.ndarray:
    """Scores divided by the best one over the whole collection (0 when nothing matched)."""
    return scores / best if best > 0 else np.zeros_like(scores)


def _bm25_scores(model, token_ids: list[int]) -> np.ndarray:
    if not token_ids:
        return np.zeros(model.scores["num_docs"], dtype=np.float32)
    return np.asarray(model.get_scores_from_ids(token_ids), dtype=np.float32)


class Rows:
    """Row access to the vectors of a vector index: ``rows[ids]`` gives their vectors
    (exact for flat indexes, decoded 8-bit codes for the IVF/HNSW kinds)."""

    def __init__(self, stored) -> None:
        from ..index.vectors import kind_of

        self.stored = stored
        self.flat = kind_of(stored) == "flat"
        self._matrix = None
        if self.flat:
            import faiss

            v = faiss.downcast_index(stored)
            self._matrix = faiss.rev_swig_ptr(v.get_xb(), v.ntotal * v.d).reshape(v.ntotal, v.d)

    def __getitem__(self, ids) -> np.ndarray:
        if self._matrix is not None:
            return self._matrix[ids]
        from ..index.vectors import vectors_of

        return vectors_of(self.stored, ids)


class Retriever:
    """Scores an index against questions; the embedder encodes the question."""

    def __init__(self, index: Index, embedder) -> None:
        self.index = index
        self.embedder = embedder

    @cached_property
    def sentence_matrix(self) -> np.ndarray:
        """All sentence vectors (flat index): gathering candidates' cosines is one matmul."""
        return Rows(self.index.sentence_vectors)

    @cached_property
    def window_matrix(self) -> np.ndarray:
        return Rows(self.index.window_vectors)

    @cached_property
    def chunk_matrix(self) -> np.ndarray:
        return Rows(self.index.chunk_vectors)

    @cached_property
    def sentence_idf(self) -> np.ndarray:
        """idf of every BM25 vocabulary term over sentences (from the CSC column sizes)."""
        indptr = np.asarray(self.index.bm25_sentences.scores["indptr"])
        df = np.diff(indptr).astype(np.float64)
        n = self.index.bm25_sentences.scores["num_docs"]
        return np.log(1.0 + (n - df + 0.5) / (df + 0.5))

    @cached_property
    def lexical_sentences(self) -> Lexical:
        return Lexical(self.index.bm25_sentences)

    @cached_property
    def lexical_chunks(self) -> Lexical:
        return Lexical(self.index.bm25_chunks)

    def _term_ids(self, question: str) -> tuple[list[int], list[int], int]:
        """Question term ids in the sentence and chunk vocabularies, and how many terms
        the corpus never uses."""
        tokens = {t for t in tokenize([question], self.index.stemmer, as_ids=False)[0] if t}
        vocab_s = self.index.bm25_sentences.vocab_dict
        vocab_c = self.index.bm25_chunks.vocab_dict
        ids_s = sorted({vocab_s[t] for t in tokens if t in vocab_s})
        ids_c = sorted({vocab_c[t] for t in tokens if t in vocab_c})
        return ids_s, ids_c, sum(t not in vocab_s for t in tokens)

    def encode(self, question: str) -> np.ndarray:
        return self.embedder.encode([question])[0]

    def signals(
        self, question: str, query_vector: np.ndarray | None = None, top_sentences: int = 100, top_chunks: int = 8
    ) -> Signals:
        """Every score the answer stage needs for ``question``: the nearest sentences, the
        best sentences by BM25, the best chunks (cosine + relative BM25) — each a top-k."""
        qv = self.encode(question) if query_vector is None else query_vector
        ids_s, ids_c, unseen = self._term_ids(question)
        terms_s, terms_c = np.array(ids_s, dtype=np.int64), np.array(ids_c, dtype=np.int64)
        idf = self.sentence_idf[ids_s] if ids_s else np.zeros(0)
        k = min(top_sentences, self.index.sentence_vectors.ntotal)
        dist, ids = self.index.sentence_vectors.search(qv[None, :], k)
        bm25_ids, bm25_scores = self.lexical_sentences.top(terms_s, top_sentences, fill=True)
        chunk_ids, chunk_scores = self.lexical_chunks.top(terms_c, CHUNK_POOL)
        best_chunk_bm25 = float(chunk_scores.max(initial=0.0))
        return Signals(
            query_vector=qv,
            sentence_dense_top=(ids[0], dist[0]),
            sentence_bm25_top=(bm25_ids, bm25_scores),
            top_chunks=self._top_chunks(qv, terms_c, chunk_ids, best_chunk_bm25, top_chunks),
            best_sentence_bm25=float(bm25_scores.max(initial=0.0)),
            best_chunk_bm25=best_chunk_bm25,
            query_terms=terms_s,
            chunk_terms=terms_c,
            query_idf=idf,
            query_idf_total=float(idf.sum() + unseen * self.sentence_idf.max(initial=1.0)),
        )

    def _top_chunks(
        self, qv: np.ndarray, terms: np.ndarray, by_bm25: np.ndarray, best_bm25: float, k: int
    ) -> np.ndarray:
        """The ``k`` best chunks by cosine + BM25 relative to the best chunk, found among
        the CHUNK_POOL nearest and the CHUNK_POOL best by BM25 (``by_bm25``), scored exactly."""
        n = self.index.chunk_vectors.ntotal
        _, near = self.index.chunk_vectors.search(qv[None, :], min(CHUNK_POOL, n))
        pool = np.union1d(near[0][near[0] >= 0], by_bm25)
        if len(pool) < k:  # a tiny collection: every chunk may be a top chunk
            pool = np.union1d(pool, np.arange(min(n, k + len(pool)), dtype=np.int64))
        fused = self.chunk_dense(qv, pool) + _relative(self.lexical_chunks.scores_of(terms, pool), best_bm25)
        return pool[top_indices(fused, k)]

    def chunk_dense(self, qv: np.ndarray, chunks: np.ndarray) -> np.ndarray:
        """Cosine of the question with these chunks."""
        return self.chunk_matrix[chunks] @ qv

    def sentence_bm25(self, sig: Signals, rows: np.ndarray) -> np.ndarray:
        """BM25 of sentences ``rows`` relative to the best sentence's (0..1)."""
        return _relative(self.lexical_sentences.scores_of(sig.query_terms, rows), sig.best_sentence_bm25)

    def chunk_bm25(self, sig: Signals, chunks: np.ndarray) -> np.ndarray:
        """BM25 of ``chunks`` relative to the best chunk's (0..1)."""
        return _relative(self.lexical_chunks.scores_of(sig.chunk_terms, chunks), sig.best_chunk_bm25)

    @cached_property
    def _chunk_column_sorted(self) -> bool:
        col = self.index.sentences[:, Col.CHUNK]
        return bool(np.all(col[1:] >= col[:-1]))

    def sentences_of_chunks(self, chunks: np.ndarray) -> np.ndarray:
        """The sentence rows whose chunk is one of ``chunks`` (ranges of the sorted column)."""
        col = self.index.sentences[:, Col.CHUNK]
        if not self._chunk_column_sorted:  # (tables are written in document order; be safe)
            return np.flatnonzero(np.isin(col, chunks))
        lo, hi = np.searchsorted(col, chunks, "left"), np.searchsorted(col, chunks, "right")
        parts = [np.arange(a, b) for a, b in zip(lo, hi)]
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)

    def term_presence(self, sig: Signals, sentence_ids: np.ndarray) -> np.ndarray:
        """Boolean (len(sentence_ids), n_query_terms): which question terms each sentence holds."""
        present = np.zeros((len(sentence_ids), len(sig.query_terms)), dtype=bool)
        if not len(sig.query_terms) or not len(sentence_ids):
            return present
        scores = self.index.bm25_sentences.scores
        indices, indptr = scores["indices"], scores["indptr"]
        for j, t in enumerate(sig.query_terms):
            # A term's postings are sorted sentence ids: a binary search beats np.isin's sort.
            postings = indices[indptr[t] : indptr[t + 1]]
            if len(postings):
                at = np.minimum(np.searchsorted(postings, sentence_ids), len(postings) - 1)
                present[:, j] = postings[at] == sentence_ids
        return present

    def coverage(self, sig: Signals, present: np.ndarray) -> np.ndarray:
        """Share of the question's idf mass held, per row of a term-presence matrix (terms
        the corpus never uses count as missing everywhere)."""
        if not present.shape[1]:
            return np.zeros(len(present))
        return present @ sig.query_idf / max(sig.query_idf_total, 1e-9)
