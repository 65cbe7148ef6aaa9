"""The library's front door: build an index, open it, ask it.  CLI and app call only this."""

from __future__ import annotations

from pathlib import Path

from . import index as index_mod
from .answer.engine import Engine
from .answer.scoring import Scorer
from .index.embedding import Embedder, load_embedder
from .index import Index, IndexProblem
from .settings import Settings


def build_index(settings: Settings, embedder: Embedder | None = None, progress: bool = False) -> tuple[Index, float]:
    """Build ``settings.docs`` into ``settings.index`` (atomically); returns (index, seconds)."""
    return index_mod.build_and_save(settings, embedder, progress)


def open_engine(
    settings: Settings,
    embedder: Embedder | None = None,
    docs: Path | None = None,
    model: str | None = None,
    scorer: Scorer | None = None,
) -> Engine:
    """Load ``settings.index`` and get ready to answer.

    ``docs``: also check the index is up to date with this folder.  ``model``: the
    model the caller insists on (an error if the index was built with another).
    """
    index = index_mod.load(settings.index)
    index_mod.check(index, settings.build, docs=docs, model=model)
    return _engine(index, settings, embedder, scorer)


def _engine(index: Index, settings: Settings, embedder: Embedder | None, scorer: Scorer | None = None) -> Engine:
    """The engine over a loaded index; the query embedder must give its vectors' dimension."""
    # The ONNX query encoder saved in the index folder when there is one: no torch import.
    embedder = embedder or load_embedder(index.model, settings.threads, onnx_dir=index.path)
    _check_dimension(index, embedder)
    return Engine(index, embedder, settings, scorer)


def _check_dimension(index: Index, embedder: Embedder) -> None:
    stored = index.manifest["model"]["dimension"]
    if embedder.dimension != stored:
        where = f"{index.path}/" if index.path else "the index"
        raise IndexProblem(f"{where} has {stored}-d vectors but the model gives {embedder.dimension}-d")


def rebuild_reason(manifest: dict, settings: Settings) -> str:
    """Why the index with ``manifest`` must be rebuilt to serve ``settings`` ("" when it is
    current): its documents changed, or it was built with another model than the one asked for."""
    reason = index_mod.stale_reason(manifest, settings.docs)
    if reason:
        return f"out of date ({reason})"
    if settings.model != Settings().model and settings.model != manifest["model"]["name"]:
        return f"built with {manifest['model']['name']}"
    return ""


def ensure_index(settings: Settings, embedder: Embedder | None = None, progress: bool = False) -> tuple[Engine, str]:
    """Open ``settings.index``, (re)building it from ``settings.docs`` when missing or stale.

    Returns the engine and what was done ("loaded", or why it was rebuilt)."""
    try:
        index = index_mod.load(settings.index)
        reason = rebuild_reason(index.manifest, settings)
        if reason:
            raise IndexProblem(reason)
        if embedder is not None:
            _check_dimension(index, embedder)
        action = "loaded"
    except IndexProblem as exc:
        index, _ = build_index(settings, embedder, progress)
        action = f"rebuilt: {exc}"
    return _engine(index, settings, embedder), action
