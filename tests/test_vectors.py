"""qa.index.vectors: exact and approximate vector indexes, recall, save/load, memory-mapped loads."""

from __future__ import annotations

import numpy as np
import pytest

from qa.index import vectors as V

D = 32
ANN_KINDS = ("ivf-sq8", "ivf-flat", "hnsw-sq8")


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    """4000 unit vectors in 80 clusters (embeddings are clustered, not uniform)."""
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((80, D)).astype(np.float32)
    x = centres[rng.integers(0, 80, 4000)] + 0.6 * rng.standard_normal((4000, D)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def queries(data) -> np.ndarray:
    # Held out: other noise than the tuning probes use (seed 99).
    return V.probe_queries(data, 150, noise=0.8, seed=99)


@pytest.fixture(scope="module")
def built(data) -> dict:
    out = {}
    for kind in ("flat", *ANN_KINDS):
        info: dict = {}
        out[kind] = (V.build_vector_index(data, kind, info=info), info)
    return out


def brute_force(x: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(q @ x.T), axis=1, kind="stable")[:, :k]


def test_auto_is_exact_below_the_threshold_and_ivf_above():
    assert V.choose_kind(10) == "flat"
    assert V.choose_kind(V.EXACT_MAX) == "flat"
    assert V.choose_kind(V.EXACT_MAX + 1) == "ivf-sq8"
    assert V.choose_kind(5, "hnsw-sq8") == "hnsw-sq8"
    with pytest.raises(ValueError, match="unknown vector index kind"):
        V.choose_kind(5, "lsh")
    small = V.build_vector_index(np.eye(8, D, dtype=np.float32))
    assert V.kind_of(small) == "flat"


def test_exact_top_matches_brute_force(data, queries):
    truth = brute_force(data, queries, 10)
    found = V.exact_top(data, queries, 10, block=777)  # several blocks, one ragged
    assert V.recall_at(found, truth) == 1.0
    assert V.recall_at(truth[:, ::-1], truth) == 1.0  # order within the top does not matter
    assert V.recall_at(truth[:, :5].repeat(2, axis=1), truth) == 0.5


def test_flat_is_exact(built, data, queries):
    index, _ = built["flat"]
    _, ids = index.search(queries, 10)
    assert V.recall_at(ids, brute_force(data, queries, 10)) == 1.0
    assert V.describe(index)["kind"] == "flat"


@pytest.mark.parametrize("kind", ANN_KINDS)
def test_approximate_kinds_reach_the_recall_target_on_held_out_queries(built, data, queries, kind):
    index, info = built[kind]
    _, ids = index.search(queries, 10)
    assert V.recall_at(ids, brute_force(data, queries, 10)) >= V.TARGET_RECALL
    record = dict(V.describe(index), **info)
    assert record["kind"] == kind and record["count"] == len(data) and record["dimension"] == D
    assert record["tuned_recall_at_10"] >= V.TARGET_RECALL
    if kind.startswith("ivf"):
        # Tuned, not degenerate: a search visits only part of the cells.
        assert 1 <= record["nprobe"] < record["nlist"]
        assert record["nlist"] == V.default_nlist(len(data))


def test_given_parameters_are_kept_not_tuned(data):
    index = V.build_vector_index(data, "ivf-sq8", nlist=32, nprobe=3)
    record = V.describe(index)
    assert (record["nlist"], record["nprobe"]) == (32, 3)


@pytest.mark.parametrize("kind", ("ivf-sq8", "ivf-flat"))
def test_an_update_reuses_the_training_of_the_previous_ivf_index(built, data, queries, tmp_path, kind):
    index, _ = built[kind]
    previous = V.load_vector_index(V.save_vector_index(index, tmp_path / "old.faiss"), mmap=True)
    info: dict = {}
    again = V.build_vector_index(data, kind, info=info, like=previous)
    assert info["reused_training"] and "train_seconds" not in info and "tuned_recall_at_10" not in info
    assert V.describe(again) == V.describe(index)  # same cells, same nprobe
    # Same training, same vectors: the same index, search for search.
    d1, i1 = index.search(queries, 10)
    d2, i2 = again.search(queries, 10)
    assert np.array_equal(i1, i2) and np.array_equal(d1, d2)
    # Another cell count (the collection grew past the next size), another kind, or none: trained afresh.
    for like, other_kind, nlist in ((previous, kind, 16), (previous, "flat", None), (None, kind, None)):
        info = {}
        V.build_vector_index(data, other_kind, nlist=nlist, info=info, like=like)
        assert "reused_training" not in info


@pytest.mark.parametrize("kind", ("flat", "ivf-sq8", "ivf-flat"))
def test_an_update_moves_the_carried_rows_and_adds_only_the_new(built, data, queries, tmp_path, kind):
    index, _ = built[kind]
    previous = V.load_vector_index(V.save_vector_index(index, tmp_path / "old.faiss"), mmap=True)
    rng = np.random.default_rng(3)
    # The new table: 90 % of the old rows (in their order), with 300 new ones spread between them.
    carried = np.sort(rng.choice(len(data), size=len(data) * 9 // 10, replace=False))
    fresh = V.probe_queries(data, 300, noise=0.5, seed=5)
    origin = np.full(len(carried) + len(fresh), -1, dtype=np.int64)
    slots = np.sort(rng.choice(len(origin), size=len(fresh), replace=False))
    origin[np.setdiff1d(np.arange(len(origin)), slots)] = carried
    info: dict = {}
    updated = V.updated_vector_index(previous, origin, fresh, kind, info=info)
    assert updated.ntotal == len(origin) and V.kind_of(updated) == kind
    assert bool(info.get("reused_training")) == (kind != "flat")
    kept = np.flatnonzero(origin >= 0)
    # A carried row is stored as it was; a new one as faiss stores it with this training.
    assert np.array_equal(V.vectors_of(updated, kept), V.vectors_of(previous, origin[kept]))
    matrix = np.empty((len(origin), D), np.float32)
    matrix[kept] = V.vectors_of(previous, origin[kept])
    matrix[slots] = fresh
    rebuilt = V.build_vector_index(matrix, kind, like=previous)
    assert np.array_equal(V.vectors_of(updated, slots), V.vectors_of(rebuilt, slots))
    # It searches the new table: each new row finds itself, held-out queries reach the target.
    _, top = updated.search(fresh, 1)
    assert np.mean(top[:, 0] == slots) >= 0.95
    _, ids = updated.search(queries, 10)
    assert V.recall_at(ids, brute_force(matrix, queries, 10)) >= V.TARGET_RECALL
    # Nothing carried, and a tenth of the size (another cell count): trained as a full build is.
    info = {}
    alone = V.updated_vector_index(previous, np.full(len(fresh), -1), fresh, kind, info=info)
    assert alone.ntotal == len(fresh) and "reused_training" not in info


@pytest.mark.parametrize("kind", ("flat", *ANN_KINDS))
@pytest.mark.parametrize("mmap", (True, False))
def test_save_and_load_round_trip(built, queries, tmp_path, kind, mmap):
    index, _ = built[kind]
    path = V.save_vector_index(index, tmp_path / f"{kind}.faiss")
    assert path.exists() and not list(tmp_path.glob(".*tmp"))
    loaded = V.load_vector_index(path, mmap=mmap)
    assert V.describe(loaded) == V.describe(index)  # kind and search parameters survive
    d1, i1 = index.search(queries, 10)
    d2, i2 = loaded.search(queries, 10)
    assert np.array_equal(i1, i2)
    np.testing.assert_allclose(d1, d2, rtol=0, atol=1e-6)


def _mapped(path) -> bool:
    with open("/proc/self/maps") as f:
        return any(line.rstrip().endswith(str(path)) for line in f)


@pytest.mark.parametrize("kind", ("flat", "ivf-sq8", "ivf-flat"))
def test_mmap_load_maps_the_file_instead_of_reading_it(built, tmp_path, kind):
    index, _ = built[kind]
    mapped_path = V.save_vector_index(index, tmp_path / "mapped.faiss")
    read_path = V.save_vector_index(index, tmp_path / "read.faiss")
    mapped = V.load_vector_index(mapped_path, mmap=True)
    read = V.load_vector_index(read_path, mmap=False)
    assert _mapped(mapped_path)
    assert not _mapped(read_path)
    assert mapped.ntotal == read.ntotal == index.ntotal


@pytest.mark.parametrize("kind", ("ivf-sq8", "ivf-flat"))
def test_mapped_lists_are_searched_without_prefetch_threads(built, tmp_path, kind):
    # faiss's mapped inverted lists start 32 prefetch threads per search by default: a third
    # of the search time on 2 cores at 10^6 vectors, for pages the search touches anyway.
    import faiss

    index, _ = built[kind]
    mapped = V.load_vector_index(V.save_vector_index(index, tmp_path / "m.faiss"), mmap=True)
    lists = faiss.downcast_InvertedLists(faiss.extract_index_ivf(mapped).invlists)
    assert type(lists).__name__ == "OnDiskInvertedLists" and lists.prefetch_nthread == 0


@pytest.mark.parametrize("kind", ("flat", *ANN_KINDS))
def test_vectors_of_gives_the_stored_vectors(built, data, tmp_path, kind):
    index, _ = built[kind]
    ids = np.array([0, 17, 3999, 17])
    exact = kind in ("flat", "ivf-flat")
    for candidate in (index, V.load_vector_index(V.save_vector_index(index, tmp_path / "v.faiss"))):
        got = V.vectors_of(candidate, ids)
        assert got.shape == (4, D) and got.dtype == np.float32
        np.testing.assert_allclose(got, data[ids], rtol=0, atol=0 if exact else 0.02)
    assert V.vectors_of(index, []).shape == (0, D)
    if kind != "flat":
        with pytest.raises(IndexError):
            V.vectors_of(index, [len(data)])


def test_probe_queries_are_near_but_not_on_the_data(data):
    q = V.probe_queries(data, 50, noise=0.5)
    assert q.shape == (50, D)
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-5)
    best = (q @ data.T).max(axis=1)
    assert np.all(best < 0.9999) and np.median(best) > 0.8
