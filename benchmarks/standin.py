"""A cheap stand-in for the sentence embedder, for scale benchmarks only (never the product's).

``static-minilm-384``: the mean of all-MiniLM-L6-v2's own input word-piece vectors over a
text's word pieces, less the mean of such vectors over the seed articles' sentences (the
common direction every text shares: without it two random texts have cosine ~0.66, with it
~0.14, as with the real model), normalised — a bag-of-words embedding from the bundled
model's table (no transformer layers).  Its vectors are spread over the space the way real
sentence embeddings are (topics cluster), so an IVF index built on them is tuned to a
realistic ``nprobe`` and its searches cost what they would with the real model; the hash
embedder of the tests has no such structure (its tuned IVF indexes scan every list).  It
encodes ~10^4 passages per second on one core against ~40-100 for the real model.
Retrieval quality with it is not the product's and is not reported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

NAME = "static-minilm-384"


class StaticEmbedder:
    backend = "static"

    def __init__(self) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        from qa.index.embedding import resolve_model

        folder = Path(resolve_model("all-MiniLM-L6-v2"))
        self._tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tok.no_padding()
        self._tok.no_truncation()
        table = load_file(str(folder / "model.safetensors"))["embeddings.word_embeddings.weight"].astype(np.float32)
        self._table = table
        self.name = NAME
        self.dimension = table.shape[1]
        self._common = np.zeros(self.dimension, dtype=np.float32)
        seeds = Path(__file__).resolve().parents[1] / "seeds"
        sentences = [s for f in sorted(seeds.glob("*.txt")) for s in f.read_text(encoding="utf-8").split(". ")]
        self._common = self._mean_vectors(sentences).mean(axis=0)

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        out = self._mean_vectors(texts) - self._common
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    def _mean_vectors(self, texts: Sequence[str]) -> np.ndarray:
        enc = self._tok.encode_batch(list(texts), add_special_tokens=False)
        lengths = np.array([len(e.ids) for e in enc])
        ids = np.concatenate([np.asarray(e.ids, dtype=np.int64) for e in enc] + [np.zeros(0, np.int64)])
        out = np.zeros((len(enc), self.dimension), dtype=np.float32)
        if len(ids):
            starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
            nonempty = lengths > 0
            out[nonempty] = np.add.reduceat(self._table[ids], starts[nonempty], axis=0) / lengths[nonempty, None]
        return out


def embedder_for(model: str):
    """The stand-in for ``static-minilm-384``; None for any other model (the product loads it)."""
    return StaticEmbedder() if model == NAME else None


def _register() -> None:
    """On import: the product loads the stand-in by name (and a build gives it no ONNX query
    encoder), and indexes built with the tests' ``hash-N`` embedder (tests/doubles.py, e.g.
    ``.bench-scale/index-1000000-hash-384``) open too."""
    import re
    import sys

    from qa.index.embedding import register_embedder

    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.append(root)
    import tests.doubles  # noqa: F401  (registers hash-N)

    register_embedder(re.escape(NAME), lambda model, threads=0: StaticEmbedder())


_register()
