"""BM25 kept with each row's tokens (qa.index.bm25): bm25s's scores, bit for bit, and an
update that tokenises only new rows ends where tokenising everything ends."""

from __future__ import annotations

import bm25s
import numpy as np
import pytest

from qa.index.bm25 import Terms, merged, read_terms, save_terms, scored
from qa.index.core import english_stemmer, tokenize

from .conftest import SEEDS


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """The seeds' lines, with rows bm25s treats specially: empty, stopwords only, repeats."""
    lines = [line for path in sorted(SEEDS.glob("*.txt")) for line in path.read_text(encoding="utf-8").splitlines()]
    return lines + ["", "the and of", "a", "Bukele Bukele Bukele prison prison", lines[3]]


def by_token(model) -> dict[str, tuple[list[int], bytes]]:
    """Each term's rows and scores (as bytes: float for float), keyed by the term itself."""
    s = model.scores
    out = {}
    for token, i in model.vocab_dict.items():
        if token:
            a, b = int(s["indptr"][i]), int(s["indptr"][i + 1])
            out[token] = (np.asarray(s["indices"][a:b]).tolist(), np.asarray(s["data"][a:b]).tobytes())
    return out


def test_scores_are_bm25s_own(texts):
    stemmer = english_stemmer()
    theirs = bm25s.BM25()
    theirs.index(tokenize(texts, stemmer), show_progress=False)
    ours = scored(Terms.of(texts, stemmer))
    assert ours.scores["num_docs"] == theirs.scores["num_docs"] == len(texts)
    assert by_token(ours) == by_token(theirs)
    assert ours.vocab_dict[""] == len(ours.vocab_dict) - 1  # bm25s's empty token, last
    for key in ("data", "indices", "indptr"):
        assert ours.scores[key].dtype == theirs.scores[key].dtype, key
    # The ids are the terms in sorted order: the same in every process.
    assert list(ours.vocab_dict)[:-1] == sorted(t for t in ours.vocab_dict if t)
    # And it answers like bm25s, row for row.
    question = tokenize(["Who runs the CECOT prison in El Salvador?"], stemmer, as_ids=False)[0]
    assert np.array_equal(ours.get_scores(question), theirs.get_scores(question))


def test_merged_terms_equal_tokenising_everything(texts):
    stemmer = english_stemmer()
    rng = np.random.default_rng(0)
    before_texts = texts[: len(texts) // 2]
    before = Terms.of(before_texts, stemmer)
    kept = np.sort(rng.choice(len(before_texts), size=len(before_texts) * 3 // 4, replace=False))
    new = texts[len(texts) // 2 :]
    # The new table: kept rows (in their order) with new rows spread between them.
    slots = np.sort(rng.choice(len(kept) + len(new), size=len(new), replace=False))
    origin = np.full(len(kept) + len(new), -1, dtype=np.int64)
    origin[np.setdiff1d(np.arange(len(origin)), slots)] = kept
    after_texts = [before_texts[o] if o >= 0 else "" for o in origin]
    for slot, text in zip(slots, new):
        after_texts[slot] = text
    got = merged(before, origin, list(new), stemmer)
    want = Terms.of(after_texts, stemmer)
    assert got.vocab == want.vocab  # the removed rows' only terms are gone; ids as a full build's
    assert np.array_equal(got.indptr, want.indptr) and np.array_equal(got.ids, want.ids)
    a, b = scored(got), scored(want)
    for key in ("data", "indices", "indptr"):
        assert np.array_equal(a.scores[key], b.scores[key]), key
    with pytest.raises(ValueError, match="texts for"):
        merged(before, origin, list(new)[:-1], stemmer)


def test_terms_round_trip_and_refuse_what_does_not_fit(texts, tmp_path):
    terms = Terms.of(texts, english_stemmer())
    save_terms(terms, tmp_path)
    back = read_terms(tmp_path, {**terms.vocab, "": len(terms.vocab)}, terms.rows)
    assert back is not None and back.vocab == terms.vocab
    assert np.array_equal(back.indptr, terms.indptr) and np.array_equal(back.ids, terms.ids)
    assert read_terms(tmp_path, terms.vocab, terms.rows + 1) is None  # another table's
    assert read_terms(tmp_path, {"x": 0}, terms.rows) is None  # another vocabulary's
    (tmp_path / "terms.ids.npy").write_bytes(b"not numpy")
    assert read_terms(tmp_path, terms.vocab, terms.rows) is None
    assert read_terms(tmp_path / "nowhere", terms.vocab, terms.rows) is None
