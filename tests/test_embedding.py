"""qa.index.embedding: the ONNX export of the bundled model against torch, and choosing an embedder.

The slow test loads the real model once, exports it and builds the seed index once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qa.index.embedding import (
    EXPORT_MIN_COSINE,
    ONNX_FILE,
    ONNX_META_FILE,
    TOKENIZER_FILE,
    ModelError,
    OnnxEmbedder,
    load_embedder,
    read_onnx_meta,
    register_embedder,
    save_query_encoder,
)

from .doubles import HashEmbedder

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
SEED_QUESTIONS = [
    json.loads(line)["question"]
    for line in (ROOT / "eval" / "seeds.jsonl").read_text(encoding="utf-8").splitlines()
    if line.strip()
]


# ---------------------------------------------------------------- fast: no model


def test_hash_embedder_is_chosen_for_hash_names_and_gives_unit_vectors():
    emb = load_embedder("hash-64", onnx_dir=Path("nowhere"))
    assert isinstance(emb, HashEmbedder) and emb.dimension == 64
    v = emb.encode(["one two", "two one", "three"])
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-6)
    assert v[0] @ v[1] == pytest.approx(1.0) and v[0] @ v[2] < 0.5


def test_registered_embedders_and_plugins(tmp_path, monkeypatch):
    """The extension point: a registered name pattern wins over models on disk, gets no ONNX
    query encoder; QA_PLUGINS names modules imported first, one line when one cannot be."""
    register_embedder(r"tiny-\d+", lambda model, threads=0: HashEmbedder(int(model.split("-")[1])))
    assert load_embedder("tiny-8").dimension == 8
    assert save_query_encoder(tmp_path, "tiny-8") is None and not list(tmp_path.iterdir())
    monkeypatch.setenv("QA_PLUGINS", "tests.doubles, no_such_plugin_module")
    with pytest.raises(ModelError, match=r"^QA_PLUGINS names 'no_such_plugin_module', which cannot be imported"):
        load_embedder("hash-8")


def test_a_folder_without_an_export_is_no_onnx_model(tmp_path):
    assert read_onnx_meta(tmp_path) is None
    (tmp_path / ONNX_FILE).write_bytes(b"not a model")
    (tmp_path / TOKENIZER_FILE).write_text("{}")
    (tmp_path / ONNX_META_FILE).write_text("[not, json")
    assert read_onnx_meta(tmp_path) is None  # damaged record: ignored, not trusted
    with pytest.raises(ModelError, match="no exported ONNX encoder"):
        OnnxEmbedder(tmp_path)
    (tmp_path / ONNX_META_FILE).write_text(json.dumps({"model": "m", "dimension": 4}))
    with pytest.raises(ModelError, match="cannot load"):
        OnnxEmbedder(tmp_path)  # tokenizer.json "{}" is no tokenizer


def test_unknown_or_unavailable_backends_are_refused(tmp_path):
    with pytest.raises(ModelError, match="unknown embedding backend"):
        load_embedder("all-MiniLM-L6-v2", backend="tensorflow")
    with pytest.raises(ModelError, match="needs the folder"):
        load_embedder("all-MiniLM-L6-v2", backend="onnx")
    with pytest.raises(ModelError, match="no ONNX export"):
        load_embedder("all-MiniLM-L6-v2", onnx_dir=tmp_path, backend="onnx")


# ---------------------------------------------------------------- slow: the real model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from qa.index.embedding import SentenceTransformerEmbedder, export_onnx

    torch_embedder = SentenceTransformerEmbedder(threads=1)
    folder = tmp_path_factory.mktemp("onnx")
    meta = export_onnx("all-MiniLM-L6-v2", folder, model=torch_embedder.model)
    return torch_embedder, folder, meta


@pytest.mark.slow
def test_onnx_export_gives_the_torch_vectors_and_the_same_answers(exported, tmp_path):
    torch_embedder, folder, meta = exported
    # The record for the manifest, and the files it names.
    assert meta["model"] == "all-MiniLM-L6-v2" and meta["dimension"] == 384 and meta["max_seq_length"] == 256
    assert meta["check"]["min_cosine"] >= EXPORT_MIN_COSINE
    assert read_onnx_meta(folder)["sha256"] == meta["sha256"]
    assert {p.name for p in folder.iterdir()} == {ONNX_FILE, TOKENIZER_FILE, ONNX_META_FILE}

    onnx = load_embedder("all-MiniLM-L6-v2", threads=1, onnx_dir=folder)
    assert isinstance(onnx, OnnxEmbedder) and onnx.dimension == 384 and onnx.name == "all-MiniLM-L6-v2"

    # Every seed question, one at a time (as queries are encoded) and as one padded batch.
    reference = torch_embedder.encode(SEED_QUESTIONS)
    single = np.stack([onnx.encode([q])[0] for q in SEED_QUESTIONS])
    batch = onnx.encode(SEED_QUESTIONS, batch_size=16)
    assert (single * reference).sum(1).min() >= EXPORT_MIN_COSINE
    assert (batch * reference).sum(1).min() >= EXPORT_MIN_COSINE
    assert onnx.encode([]).shape == (0, 384)
    # Past the 256-token limit both truncate alike.
    long = ["word " * 600 + "tail"]
    assert float(onnx.encode(long)[0] @ torch_embedder.encode(long)[0]) >= EXPORT_MIN_COSINE

    # Same top-1 quote for every seed question, from one seed index.
    from qa.pipeline import build_index, open_engine
    from qa.settings import Settings

    settings = Settings(docs=ROOT / "seeds", index=tmp_path / "index")
    build_index(settings, embedder=onnx)  # the passages' vectors are shared; only the query encoder differs
    engines = [open_engine(settings, embedder=e) for e in (torch_embedder, onnx)]
    for q in SEED_QUESTIONS:
        a, b = (e.ask(q) for e in engines)
        assert [(x.doc_id, x.start, x.end) for x in a.quotes[:1]] == [
            (x.doc_id, x.start, x.end) for x in b.quotes[:1]
        ], q


@pytest.mark.slow
def test_the_int8_bulk_encoder_runs_exact_weights_where_the_cpu_would_saturate(exported, tmp_path, monkeypatch):
    from qa.index.embedding import ONNX_INT8_FILE, export_onnx

    torch_embedder, _, _ = exported
    folder = tmp_path / "onnx8"
    monkeypatch.setenv("QA_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("QA_READER_INT8", raising=False)
    meta = export_onnx("all-MiniLM-L6-v2", folder, quantize=True, model=torch_embedder.model)
    assert (folder / ONNX_INT8_FILE).is_file() and meta["int8"]["min_cosine_to_torch"] >= 0.98
    from qa.index import int8

    auto = OnnxEmbedder(folder, threads=1, int8=True)
    assert auto.exact_int8 == int8.use_exact_weights()
    assert meta["int8"]["checked_with"] == ("unsigned weights (exact)" if auto.exact_int8 else "signed weights")
    reference = torch_embedder.encode(SEED_QUESTIONS)
    vectors = {}
    for choice in ("exact", "native"):
        monkeypatch.setenv("QA_READER_INT8", choice)
        embedder = OnnxEmbedder(folder, threads=1, int8=True)
        assert embedder.exact_int8 == (choice == "exact") and embedder.backend == "onnx-int8"
        vectors[choice] = embedder.encode(SEED_QUESTIONS)
    # Exact integer sums: as close to the float model as the quantisation allows (0.990 on the
    # seed questions); the signed kernel of a CPU without VNNI loses a little more.
    assert (vectors["exact"] * reference).sum(1).min() >= 0.985
    assert (vectors["native"] * reference).sum(1).min() >= 0.95
    # The encoder's shifted copy is cached under its own name, beside (not instead of) readers'.
    assert [f.name.split("-v")[0] for f in (tmp_path / "cache").glob("*.onnx")] == ["encoder-exact"]


@pytest.mark.slow
def test_onnx_embedder_loads_without_torch(exported):
    _, folder, _ = exported
    code = (
        "import sys\n"
        "from qa.index.embedding import load_embedder\n"
        f"e = load_embedder('all-MiniLM-L6-v2', threads=1, onnx_dir={str(folder)!r})\n"
        "v = e.encode(['How many people can CECOT hold?'])\n"
        "assert v.shape == (1, 384)\n"
        "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules]\n"
        "print(type(e).__name__, heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "OnnxEmbedder []"


@pytest.mark.slow
def test_an_export_is_used_only_for_the_model_it_was_made_from(exported, tmp_path):
    _, folder, meta = exported
    for name in (ONNX_FILE, TOKENIZER_FILE):
        (tmp_path / name).symlink_to(folder / name)
    (tmp_path / ONNX_META_FILE).write_text(json.dumps(dict(meta, model="other-model")))
    with pytest.raises(ModelError, match="no ONNX export of 'all-MiniLM-L6-v2'"):
        load_embedder("all-MiniLM-L6-v2", onnx_dir=tmp_path, backend="onnx")
    other = load_embedder("other-model", threads=1, onnx_dir=tmp_path)
    assert isinstance(other, OnnxEmbedder) and other.name == "other-model"
