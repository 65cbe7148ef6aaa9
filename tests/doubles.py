"""Test doubles, registered with the product through its extension point
(:func:`qa.index.embedding.register_embedder`).

* ``hash-N`` (:class:`HashEmbedder`): a tiny deterministic bag-of-words embedder of
  dimension N — no model files, no torch — for fast tests.
* Fault injection for Ray workers: with :data:`FAULT_ENV` set in a worker's environment
  (``RayEmbedder(..., env=fault_env(...))``), the ``hash-N`` embedder it loads fails batches.

Imported by tests/conftest.py, and by every process the tests start (the CLI, the web app,
Ray's workers) through ``QA_PLUGINS=tests.doubles``, which conftest sets.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from qa.index.embedding import register_embedder

_TOKEN = re.compile(r"\w+", re.U)
FAULT_ENV = "QA_TEST_FAULT"


class HashEmbedder:
    """A tiny deterministic bag-of-words embedder for fast tests (no model needed)."""

    backend = "hash"

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


class FaultyEmbedder:
    """An embedder whose first ``times`` calls to :meth:`encode` (counted in the file
    ``marker``, so across restarted workers; ``times`` < 0: every call) raise, or with
    ``how="exit"`` end the process on the spot; then it encodes as ``inner`` does."""

    def __init__(self, inner, marker: str, times: int = 1, how: str = "raise") -> None:
        self.inner, self.marker, self.times, self.how = inner, Path(marker), int(times), how
        self.name, self.dimension, self.backend = inner.name, inner.dimension, inner.backend

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        done = int(self.marker.read_text() or 0) if self.marker.exists() else 0
        if not 0 <= self.times <= done:
            self.marker.write_text(str(done + 1))
            if self.how == "exit":
                os._exit(1)  # a worker that dies: no exception, no clean-up
            raise RuntimeError(f"injected fault {done + 1}")
        return self.inner.encode(texts, batch_size=batch_size, progress=progress)


def fault_env(marker: Path | str, times: int = 1, how: str = "raise") -> dict[str, str]:
    """The environment that makes ``hash-N`` embedders fail (see :class:`FaultyEmbedder`)."""
    return {FAULT_ENV: json.dumps({"marker": str(marker), "times": times, "how": how})}


def hash_embedder(model: str, threads: int = 0):
    """``hash-N`` → :class:`HashEmbedder` (N), failing as :data:`FAULT_ENV` says when it is set."""
    inner = HashEmbedder(int(model.split("-", 1)[1]))
    fault = os.environ.get(FAULT_ENV)
    return FaultyEmbedder(inner, **json.loads(fault)) if fault else inner


register_embedder(r"hash-\d+", hash_embedder)
