"""Question → scored candidate passages (sentences and chunks), dense and BM25."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .index import Index, tokenize


@dataclass
class Signals:
    """Per-query scores over the index, computed once and shared by every mode."""

    query_vector: np.ndarray  # (dim,)
    chunk_dense: np.ndarray  # (n_chunks,) cosine
    chunk_bm25: np.ndarray  # (n_chunks,) raw BM25
    sentence_bm25: np.ndarray  # (n_sentences,) raw BM25
    sentence_dense_top: tuple[np.ndarray, np.ndarray]  # (ids, cosines) of the nearest sentences
    query_terms: np.ndarray  # bm25s token ids of the question's terms found in the index
    query_idf: np.ndarray  # their idf over sentences
    query_idf_total: float  # idf mass of all the question's terms, unseen ones at the highest idf


def _bm25_scores(model, token_ids: list[int]) -> np.ndarray:
    if not token_ids:
        return np.zeros(model.scores["num_docs"], dtype=np.float32)
    return np.asarray(model.get_scores_from_ids(token_ids), dtype=np.float32)


class Rows:
    """Row access to the vectors of a vector index: ``rows[ids]`` gives their vectors
    (exact for flat indexes, decoded 8-bit codes for the IVF/HNSW kinds)."""

    def __init__(self, stored) -> None:
        from .vectors import kind_of

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
        from .vectors import vectors_of

        return vectors_of(self.stored, ids)

    def scores(self, query: np.ndarray, k: int = 256) -> np.ndarray:
        """Cosine of ``query`` with every row: exact for flat indexes; for the approximate
        kinds the nearest ``k`` rows get their scores and the rest -1."""
        if self._matrix is not None:
            return self._matrix @ query
        out = np.full(self.stored.ntotal, -1.0, dtype=np.float32)
        dist, ids = self.stored.search(query[None, :].astype(np.float32), min(k, self.stored.ntotal))
        keep = ids[0] >= 0
        out[ids[0][keep]] = dist[0][keep]
        return out


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

    def signals(self, question: str, query_vector: np.ndarray | None = None, top_sentences: int = 100) -> Signals:
        """Every score the answer stage needs for ``question``."""
        qv = self.encode(question) if query_vector is None else query_vector
        ids_s, ids_c, unseen = self._term_ids(question)
        idf = self.sentence_idf[ids_s] if ids_s else np.zeros(0)
        n = self.index.sentence_vectors.ntotal
        k = min(top_sentences, n)
        dist, ids = self.index.sentence_vectors.search(qv[None, :], k)
        return Signals(
            query_vector=qv,
            chunk_dense=self.chunk_matrix.scores(qv),
            chunk_bm25=_bm25_scores(self.index.bm25_chunks, ids_c),
            sentence_bm25=_bm25_scores(self.index.bm25_sentences, ids_s),
            sentence_dense_top=(ids[0], dist[0]),
            query_terms=np.array(ids_s, dtype=np.int64),
            query_idf=idf,
            query_idf_total=float(idf.sum() + unseen * self.sentence_idf.max(initial=1.0)),
        )

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
