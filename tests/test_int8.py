"""The reader's int8 arithmetic: exact on every CPU (qa/index/int8.py)."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from qa.index import int8
from qa.answer.reader import READER_DIR, Reader, ReaderError
from qa.errors import SettingsError

from .conftest import ROOT, run_qa


def saturating_matmul(path, weights: np.ndarray) -> None:
    """A one-node-pair model as the reader's quantiser writes it: x (float) → dynamic uint8
    → MatMulInteger with stored int8 ``weights`` (zero point 0) → int32."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    k, n = weights.shape
    graph = helper.make_graph(
        [
            helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
            helper.make_node("MatMulInteger", ["xq", "w", "xz", "wz"], ["y"]),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, k])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [None, n])],
        [numpy_helper.from_array(weights.astype(np.int8), "w"), numpy_helper.from_array(np.zeros(n, np.int8), "wz")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))


def test_shifted_weights_give_the_exact_integer_products(tmp_path):
    # Activations near 255 against weights of 127: pairs of products that overflow 16 bits,
    # where an AVX2-only CPU's signed-weight kernel saturates.
    rng = np.random.default_rng(0)
    weights = rng.integers(100, 128, size=(64, 8)).astype(np.int8)
    x = np.concatenate([[[0.0] * 64], rng.uniform(0.9, 1.0, size=(3, 64))]).astype(np.float32)
    saturating_matmul(tmp_path / "m.onnx", weights)
    from qa.index.embedding import onnx_session

    shifted = onnx_session(int8.shifted(tmp_path / "m.onnx"), 1, RuntimeError)
    got = shifted.run(["y"], {"x": x})[0]
    # The reference: the same dynamic quantisation of x, then the integer product in int64.
    scale = (x.max() - min(x.min(), 0.0)) / 255.0
    zero = np.clip(np.round(-min(x.min(), 0.0) / scale), 0, 255)
    xq = np.clip(np.round(x / scale) + zero, 0, 255).astype(np.int64)
    assert np.array_equal(got, (xq - zero).astype(np.int64) @ weights.astype(np.int64))
    assert got.max() > 2**15  # the case that needs exact sums


def test_only_a_vnni_instruction_makes_the_signed_kernel_exact():
    avx2 = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n"
    assert not int8.cpu_sums_exactly(avx2, "x86_64")
    for flag in ("avx512_vnni", "avx_vnni", "amx_int8"):
        assert int8.cpu_sums_exactly(avx2.replace("fma", f"fma {flag}"), "x86_64")
    assert int8.cpu_sums_exactly("", "aarch64") and int8.cpu_sums_exactly("", "arm64")
    assert not int8.cpu_sums_exactly("", "AMD64")  # flags unknown: take the exact weights


def test_the_choice_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("QA_READER_INT8", raising=False)
    assert int8.choice() == "auto"
    monkeypatch.setenv("QA_READER_INT8", "Exact")
    assert int8.choice() == "exact" and int8.use_exact_weights()
    monkeypatch.setenv("QA_READER_INT8", "native")
    assert not int8.use_exact_weights()
    monkeypatch.setenv("QA_READER_INT8", "fast")
    with pytest.raises(SettingsError, match="QA_READER_INT8='fast': expected one of auto, exact, native"):
        int8.choice()


def test_the_exact_reader_is_made_once_and_reads_as_the_shipped_one(tmp_path, monkeypatch):
    monkeypatch.setenv("QA_CACHE", str(tmp_path / "cache"))
    question, sentences = "How many people can CECOT hold?", ["CECOT has a maximum capacity of 40,000.", "It opened."]
    monkeypatch.setenv("QA_READER_INT8", "exact")
    exact = Reader(READER_DIR, threads=1)
    made = list((tmp_path / "cache").glob("reader-exact-*.onnx"))
    assert exact.exact_int8 and len(made) == 1
    inode = made[0].stat().st_ino
    again = Reader(READER_DIR, threads=1).readings(question, sentences)
    # Not made again (the same file), only marked as used.
    assert made[0].stat().st_ino == inode and list((tmp_path / "cache").iterdir()) == made
    monkeypatch.setenv("QA_READER_INT8", "native")
    native = Reader(READER_DIR, threads=1).readings(question, sentences)
    for a, b in zip(again, native):
        # The same model: equal where the CPU sums exactly, within saturation's reach elsewhere.
        assert a.phrase == b.phrase and abs(a.relevance - b.relevance) < 1.0
    assert again[0].relevance > again[1].relevance


def test_the_cache_keeps_the_last_used_exact_readers_of_this_version(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    v = int8.SHIFT_VERSION
    older = cache / "reader-exact-0123456789abcdef.onnx"  # a version before SHIFT_VERSION 1
    mine = [cache / f"reader-exact-v{v}-{i:016x}.onnx" for i in range(5)]
    other = cache / "notes.txt"  # not the reader's: never touched
    for age, f in enumerate([older, *mine, other]):
        f.write_bytes(b"x")
        os.utime(f, (1e9 - age * 1000, 1e9 - age * 1000))  # mine[0] the most recently used
    monkeypatch.setenv("QA_CACHE", str(cache))
    monkeypatch.setenv("QA_READER_INT8", "exact")
    Reader(READER_DIR, threads=1)  # makes this model's file, then prunes
    made = [f for f in cache.glob(f"reader-exact-v{v}-*.onnx") if f not in mine]
    assert len(made) == 1 and made[0].stat().st_size > 1_000_000
    assert sorted(cache.iterdir()) == sorted([made[0], *mine[: int8.KEPT_MODELS - 1], other])
    # Nothing to prune on a later start: the file is found and marked as used.
    Reader(READER_DIR, threads=1)
    assert sorted(cache.iterdir()) == sorted([made[0], *mine[: int8.KEPT_MODELS - 1], other])
    assert made[0].stat().st_mtime > mine[0].stat().st_mtime


def test_an_unwritable_cache_still_gives_the_exact_reader(tmp_path, monkeypatch):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder", encoding="utf-8")
    monkeypatch.setenv("QA_CACHE", str(blocked / "qa"))
    monkeypatch.setenv("QA_READER_INT8", "exact")
    assert isinstance(int8.exact_model(READER_DIR / "reader.onnx"), bytes)
    reading = Reader(READER_DIR, threads=1).readings("Who?", ["Marco Rubio spoke."])[0]
    assert reading.phrase is not None


def test_a_damaged_reader_is_one_line_either_way(tmp_path, monkeypatch):
    monkeypatch.setenv("QA_CACHE", str(tmp_path / "cache"))
    (tmp_path / "reader.onnx").write_bytes(b"\x08\x07 not a model")
    shutil.copyfile(READER_DIR / "tokenizer.json", tmp_path / "tokenizer.json")
    for choice in ("exact", "native"):
        monkeypatch.setenv("QA_READER_INT8", choice)
        with pytest.raises(ReaderError, match="reader.onnx: cannot load") as err:
            Reader(tmp_path)
        assert "\n" not in str(err.value)


def test_a_bad_choice_is_a_one_line_error_on_the_command_line(seed_index):
    env = dict(os.environ, PYTHONPATH=str(ROOT), QA_READER_INT8="fast")
    result = run_qa("ask", "Who is Bukele?", "--index", str(seed_index), env=env)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "QA_READER_INT8='fast'" in result.stderr.strip().splitlines()[-1]
