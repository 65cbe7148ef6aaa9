"""One place for configuration, with defaults that work on the seed corpus."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path

from .errors import SettingsError

BUNDLED_MODEL = "all-MiniLM-L6-v2"
MODES = ("hybrid", "hybrid-linear", "dense-chunks", "bm25-chunks", "sentences")


@dataclass(frozen=True)
class BuildSettings:
    """What shapes an index: build with other values and you get another index.

    A view of :class:`Settings` (``settings.build``); functions that only build, or only
    judge whether an index fits (:mod:`qa.index`), take this half."""

    docs: Path = Path("seeds")
    index: Path = Path("index")
    # A folder holding a sentence-transformers model, a model name in the local
    # Hugging Face cache, or the bundled all-MiniLM-L6-v2.
    model: str = BUNDLED_MODEL
    chunk_size: int = 800
    chunk_overlap: int = 100
    batch_size: int = 64
    # How passages are encoded at build time: torch, onnx (same vectors, ~1.3x faster) or
    # onnx-int8 (~2.5x faster, approximate vectors; see benchmarks/README.md).
    backend: str = "torch"
    # Vector index kind: auto (exact below ~20k passages, IVF-SQ8 above), flat, ivf-sq8, ivf-flat, hnsw-sq8.
    vector_index: str = "auto"
    # Documents (files) larger than this many megabytes are skipped unread, with a message.
    max_document_mb: float = 20.0

    @classmethod
    def of(cls, settings: "Settings | BuildSettings") -> "BuildSettings":
        """``settings`` itself, or the build half of a whole :class:`Settings`."""
        return settings if isinstance(settings, BuildSettings) else settings.build


@dataclass(frozen=True)
class QuerySettings:
    """What shapes an answer from a given index (never the index itself): a view of
    :class:`Settings` (``settings.query``)."""

    top_k: int = 5
    mode: str = "hybrid"
    # Abstain below this confidence (0-1); None uses the tuned value in qa/weights.json.
    min_confidence: float | None = None
    # How many candidate sentences the quote selector looks at.
    candidates: int = 60
    # Torch threads for encoding; 0 leaves torch's default.  (A build encodes with as many.)
    threads: int = 0
    # Search for misspelt question words as the collection spells them (qa/answer/spelling.py).
    spelling: bool = True


@dataclass(frozen=True)
class Settings:
    """Everything a build or a query can be told: the one object users configure.

    Environment variables ``QA_<FIELD>`` (e.g. ``QA_MODEL``, ``QA_INDEX``) override the
    defaults; command-line flags override both.  Its fields are those of
    :class:`BuildSettings` and :class:`QuerySettings` (same names, same defaults: a test
    checks); ``.build`` and ``.query`` give the two halves.
    """

    docs: Path = BuildSettings.docs
    index: Path = BuildSettings.index
    model: str = BuildSettings.model
    chunk_size: int = BuildSettings.chunk_size
    chunk_overlap: int = BuildSettings.chunk_overlap
    batch_size: int = BuildSettings.batch_size
    top_k: int = QuerySettings.top_k
    mode: str = QuerySettings.mode
    min_confidence: float | None = QuerySettings.min_confidence
    candidates: int = QuerySettings.candidates
    threads: int = QuerySettings.threads
    spelling: bool = QuerySettings.spelling
    backend: str = BuildSettings.backend
    vector_index: str = BuildSettings.vector_index
    max_document_mb: float = BuildSettings.max_document_mb

    @property
    def build(self) -> BuildSettings:
        """What shapes the index."""
        return BuildSettings(**{f.name: getattr(self, f.name) for f in fields(BuildSettings)})

    @property
    def query(self) -> QuerySettings:
        """What shapes an answer."""
        return QuerySettings(**{f.name: getattr(self, f.name) for f in fields(QuerySettings)})

    @classmethod
    def from_env(cls, **overrides: object) -> "Settings":
        """Defaults, then ``QA_*`` environment variables, then non-None ``overrides``."""
        values: dict = {}
        for f in fields(cls):
            raw = os.environ.get(f"QA_{f.name.upper()}")
            if raw is None:
                continue
            default = getattr(cls, f.name)
            kind = float if default is None else type(default)
            try:
                if isinstance(default, bool):
                    values[f.name] = _flag(raw)
                    continue
                values[f.name] = Path(raw) if isinstance(default, Path) else kind(raw)
            except ValueError:
                raise SettingsError(f"QA_{f.name.upper()}={raw[:40]!r}: not {_expected(kind)}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        for key in ("docs", "index"):
            if key in values:
                values[key] = Path(values[key])
        settings = cls(**values)
        if settings.mode not in MODES:
            raise SettingsError(f"unknown mode {settings.mode!r}; choose one of {', '.join(MODES)}")
        return settings

    def with_(self, **changes: object) -> "Settings":
        """A copy with some fields changed."""
        return replace(self, **changes)


def _expected(kind: type) -> str:
    if kind is bool:
        return "on or off (1/0, true/false, yes/no)"
    return "a number" if kind in (int, float) else "a valid value"


def _flag(raw: str) -> bool:
    """An on/off environment value (1/0, true/false, yes/no, on/off)."""
    low = raw.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)
