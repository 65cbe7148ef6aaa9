"""Top-k BM25 without scoring every row (qa.answer.retrieval.Lexical) gives what a full scoring gives."""

from __future__ import annotations

import json

import bm25s
import numpy as np
import pytest

from qa.answer.retrieval import Lexical, top_indices

from .conftest import SEED_QA


def _zipf_corpus(rows: int, vocabulary: int, seed: int = 0) -> list[str]:
    """Texts whose word frequencies fall off like real prose: long postings for common
    words, short ones for rare words (what MaxScore prunes on)."""
    rng = np.random.default_rng(seed)
    words = [f"w{i}x" for i in range(vocabulary)]
    p = 1.0 / np.arange(1, vocabulary + 1)
    p /= p.sum()
    return [" ".join(words[j] for j in rng.choice(vocabulary, size=rng.integers(3, 30), p=p)) for _ in range(rows)]


@pytest.fixture(scope="module")
def zipf_model():
    texts = _zipf_corpus(20_000, 3_000)
    model = bm25s.BM25()
    model.index(bm25s.tokenize(texts, stopwords=None, show_progress=False), show_progress=False)
    return model


def _full_top(model, terms: list[int], k: int) -> tuple[np.ndarray, np.ndarray]:
    scores = (
        np.asarray(model.get_scores_from_ids(terms), dtype=np.float32)
        if terms
        else np.zeros(model.scores["num_docs"], np.float32)
    )
    # Every row sorted (ties: lower row first); qa.answer.retrieval.top_indices's partition may pick any of
    # the rows tied at the k-th place.
    best = np.lexsort((np.arange(len(scores)), -scores))[:k]
    return best, scores[best]


def test_top_k_equals_full_scoring_on_a_large_zipf_index(zipf_model):
    lex = Lexical(zipf_model)
    rng = np.random.default_rng(1)
    vocab = len(zipf_model.scores["indptr"]) - 1
    for _ in range(200):
        # Questions mix common words (long postings) and rare ones.
        terms = sorted({int(t) for t in rng.integers(0, vocab, size=rng.integers(1, 7))} | {int(rng.integers(0, 20))})
        for k in (1, 10, 60):
            ids, scores = lex.top(np.array(terms), k, fill=True)
            want_ids, want_scores = _full_top(zipf_model, terms, k)
            assert ids.tolist() == want_ids.tolist()
            assert scores.tobytes() == want_scores.tobytes()  # float for float
    rows = rng.integers(0, zipf_model.scores["num_docs"], size=300)
    terms = [0, 5, 77, 1500]
    full = np.asarray(zipf_model.get_scores_from_ids(terms), dtype=np.float32)
    assert lex.scores_of(np.array(terms), rows).tobytes() == full[rows].tobytes()
    # Increasing rows, more of them than a rare term's postings: that term's postings are
    # searched in the rows instead (same floats).
    many = np.unique(rng.integers(0, zipf_model.scores["num_docs"], size=5_000))
    assert lex.scores_of(np.array(terms), many).tobytes() == full[many].tobytes()


def test_top_k_without_fill_lists_only_rows_holding_a_term(zipf_model):
    lex = Lexical(zipf_model)
    ids, scores = lex.top(np.array([2999]), 500)
    assert len(ids) < 500 and (scores > 0).all()
    assert lex.top(np.array([], dtype=np.int64), 5)[0].tolist() == []
    assert lex.top(np.array([], dtype=np.int64), 5, fill=True)[0].tolist() == [0, 1, 2, 3, 4]


def test_seed_questions_get_the_same_candidates_as_a_full_scoring(fake_engine):
    r = fake_engine.retriever
    index = fake_engine.index
    for line in SEED_QA.read_text(encoding="utf-8").splitlines():
        question = json.loads(line)["question"]
        ids_s, ids_c, _ = r._term_ids(question)
        for model, lex, terms, k in (
            (index.bm25_sentences, r.lexical_sentences, ids_s, 60),
            (index.bm25_chunks, r.lexical_chunks, ids_c, 20),
        ):
            got = lex.top(np.array(terms, dtype=np.int64), k, fill=True)
            want = _full_top(model, terms, k)
            assert got[0].tolist() == want[0].tolist() and got[1].tobytes() == want[1].tobytes()
        sig = r.signals(question, top_sentences=100)
        chunks = sig.top_chunks
        assert r.sentences_of_chunks(chunks).tolist() == np.flatnonzero(np.isin(index.sentences[:, 4], chunks)).tolist()
        # The fused top chunks over every chunk, as before the pools.
        dense = r.chunk_matrix[np.arange(len(index.chunks))] @ sig.query_vector
        bm25 = np.asarray(_full_top(index.bm25_chunks, ids_c, len(index.chunks))[1])
        full_bm25 = np.zeros(len(index.chunks), np.float32)
        full_bm25[_full_top(index.bm25_chunks, ids_c, len(index.chunks))[0]] = bm25
        fused = dense + (full_bm25 / full_bm25.max() if full_bm25.max() > 0 else 0 * full_bm25)
        assert chunks.tolist() == top_indices(fused, 8).tolist()
