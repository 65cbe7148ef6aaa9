"""Is an index still right for a folder, a model, a chunking?  (No writing, no loading.)

- :func:`stale_reason` — the folder's files changed since the build (added, changed,
  removed, catalog): what ``qa ask --docs`` and the web app check.
- :func:`reuse_problem` — whether an update may take the previous index's vectors.
- :func:`check` — a loaded index against the model and folder asked for, with a rebuild hint.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

from ..errors import IndexProblem
from ..ingest.corpus import catalog_bytes, corpus_fingerprints
from ..settings import BuildSettings, Settings
from .core import Index
from .embedding import Embedder


def rebuild_hint(settings: BuildSettings | Settings) -> str:
    """The command that rebuilds ``settings.index`` from ``settings.docs``."""
    return f"rebuild with: python -m qa index --docs {settings.docs} --index {settings.index}"


def catalog_sha256(docs: Path) -> str | None:
    catalog = catalog_bytes(docs)
    return hashlib.sha256(catalog).hexdigest() if catalog is not None else None


def reuse_problem(manifest: dict, settings: BuildSettings | Settings, embedder: Embedder | None = None) -> str:
    """Why the vectors of the index described by ``manifest`` cannot be reused for a build
    with ``settings`` (and ``embedder``, when given); "" when they can."""
    settings = BuildSettings.of(settings)
    model = embedder.name if embedder is not None else settings.model
    then = manifest.get("model", {})
    if then.get("name") != model:
        return f"the model changed from {then.get('name')!r} to {model!r}"
    if embedder is not None and then.get("dimension") != embedder.dimension:
        return f"the vectors changed from {then.get('dimension')} to {embedder.dimension} dimensions"
    # torch and float32 ONNX give the same vectors; int8 vectors are approximate: never mix them.
    precision = {"onnx-int8": "int8"}
    before, now = manifest.get("passage_encoder", "torch"), settings.backend
    if embedder is None and precision.get(before, "float32") != precision.get(now, "float32"):
        return f"the passage encoder changed from {before} to {now}"
    chunking = manifest.get("chunking", {})
    if (chunking.get("chunk_size"), chunking.get("chunk_overlap")) != (settings.chunk_size, settings.chunk_overlap):
        return (
            f"the chunking changed from {chunking.get('chunk_size')}/{chunking.get('chunk_overlap')} "
            f"to {settings.chunk_size}/{settings.chunk_overlap} (size/overlap)"
        )
    return ""


def stale_reason(manifest: dict, docs: Path) -> str:
    """Why an index no longer matches the folder ``docs`` ("" when it does)."""
    try:
        now = corpus_fingerprints(docs)
    except (OSError, ValueError) as exc:
        return str(exc)
    if "files" in manifest["corpus"]:
        then = manifest["corpus"]["files"]
    else:  # format 1 fingerprinted documents by id
        then = manifest["corpus"]["documents"]
        now = {Path(path).with_suffix("").as_posix(): sha for path, sha in now.items()}
    added = sorted(set(now) - set(then))
    removed = sorted(set(then) - set(now))
    changed = sorted(k for k in set(now) & set(then) if now[k] != then[k])
    try:
        catalog_sha = catalog_sha256(docs)
    except ValueError as exc:
        return str(exc)
    parts = [f"{len(x)} {word}" for x, word in ((added, "added"), (changed, "changed"), (removed, "removed")) if x]
    if catalog_sha != manifest["corpus"].get("catalog_sha256"):
        parts.append("catalog changed")
    return ", ".join(parts)


def check(index: Index, settings: BuildSettings | Settings, docs: Path | None = None, model: str | None = None) -> None:
    """Raise :class:`IndexProblem` if ``index`` was built with another ``model`` than the
    one asked for (when one is), or for another state of the folder ``docs`` (when given).
    ``settings``: where the index is, for the messages' rebuild hint."""
    settings = BuildSettings.of(settings)
    if model and model != index.model:
        raise IndexProblem(
            f"{settings.index}/ was built with model {index.model!r}, but {model!r} is asked for; "
            f"{rebuild_hint(settings)} --model {model}"
        )
    if docs is not None:
        reason = stale_reason(index.manifest, docs)
        if reason:
            hint = rebuild_hint(replace(settings, docs=docs))
            raise IndexProblem(f"{settings.index}/ is out of date with {docs}/ ({reason}); {hint}")
