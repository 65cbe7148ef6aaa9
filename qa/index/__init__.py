"""Stage 2, passages → a searchable index folder: embed them, index them, save, load.

- :mod:`.builder` — :func:`build` / :func:`update` an :class:`Index` from a folder (its
  tables, the passages' vectors, BM25), and :func:`build_and_save` (what ``qa index`` runs).
- :mod:`.store` — the index folder: :func:`save` (atomic swap), :func:`load` (every file
  checked), the manifest, the writer lock.
- :mod:`.freshness` — is an index still right: :func:`stale_reason` (the folder changed),
  :func:`reuse_problem` (may an update keep its vectors), :func:`check`.
- :mod:`.core` — the in-memory :class:`Index` and BM25's tokenising.
- :mod:`.bm25` — BM25 scored from each row's tokens, kept so that an update tokenises only
  new rows.
- :mod:`.texts` — the documents' texts, memory-mapped (``texts.bin``): what quotes are cut from.
- :mod:`.vectors` — the FAISS vector indexes (exact, IVF, HNSW): build, tune, save, load.
- :mod:`.embedding` — text → unit vectors (sentence-transformers on torch, or its ONNX
  export), the query encoder saved in the index folder.

Embedding lives here, not in a stage of its own: the index decides the model (its manifest
names it and its vectors' dimension, its folder holds the ONNX query encoder), and the
answer stage loads the query embedder through the index it opens (:mod:`qa.pipeline`).
Reads :mod:`qa.ingest`; read by :mod:`qa.answer`, which never writes an index.
"""

from .. import stage_api

__all__, __getattr__ = stage_api(
    __name__,
    {
        "core": ("Index", "tokenize"),
        "builder": ("BUILD_STEPS", "build", "build_and_save", "encode_sorted", "query_encoder_step", "update"),
        "store": (
            "FORMAT",
            "FORMAT_VERSION",
            "MANIFEST",
            "READABLE_VERSIONS",
            "IndexProblem",
            "IndexWriteError",
            "load",
            "locate",
            "lock_path",
            "manifest_problem",
            "read_manifest",
            "save",
            "writer_lock",
        ),
        "freshness": ("check", "rebuild_hint", "reuse_problem", "stale_reason"),
    },
)
