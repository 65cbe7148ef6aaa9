"""The Ray Data job that embeds a build's passages, and :class:`RayEmbedder`, the embedder
that runs it (what ``qa index --engine ray`` hands to :func:`qa.index.build`)."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from ..index.embedding import ModelError, registered_embedder, resolve_model
from .session import (
    MAX_RESTARTS,
    MAX_TASK_RETRIES,
    RAY_HINT,
    WORKER_ENV,
    RayEngineError,
    error_line,
    ray_installed,
    ray_session,
)

# ---------------------------------------------------------------- the actor


class EmbedBatch:
    """One actor of the pool: loads the model once, then embeds batch after batch.

    A batch is ``{"row": int64[n], "text": str[n]}``; the answer is
    ``{"row": int64[n], "vector": float32[n, dimension]}`` (unit rows), encoded exactly as
    :func:`qa.index.encode_sorted` encodes one batch.  (The tests' faults — a batch that
    raises, an actor that dies — come from an embedder of tests/doubles.py, loaded here like
    any other through ``QA_PLUGINS``.)"""

    def __init__(self, model: str, threads: int = 1) -> None:
        for key, value in WORKER_ENV.items():
            os.environ.setdefault(key, value)
        from qa.index.embedding import load_embedder

        self.embedder = load_embedder(model, threads)

    def __call__(self, batch: dict) -> dict:
        texts = [str(t) for t in batch["text"]]
        vectors = self.embedder.encode(texts, batch_size=max(len(texts), 1))
        return {"row": np.asarray(batch["row"], dtype=np.int64), "vector": np.asarray(vectors, dtype=np.float32)}


# ---------------------------------------------------------------- the Ray Data job


def _blocks(texts: list[str], batch_size: int) -> list:
    """The local engine's batches (longest texts first), one Arrow table each, every row
    carrying its position."""
    import pyarrow as pa

    order = np.argsort([-len(t) for t in texts], kind="stable")
    tables = []
    for i in range(0, len(texts), batch_size):
        rows = order[i : i + batch_size]
        text = pa.array([texts[r] for r in rows], type=pa.string())
        tables.append(pa.table({"row": pa.array(rows, type=pa.int64()), "text": text}))
    return tables


def embed_job(blocks: list, job: dict) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Embed ``blocks`` with Ray Data on an actor pool of ``job["actors"]`` actors;
    yields ``(rows, vectors)`` per finished block, in whatever order they finish.  Runs
    where a Ray driver runs: this process, or (Ray Client) a task on the cluster."""
    import ray
    from ray.data import ActorPoolStrategy, DataContext

    context = DataContext.get_current()
    changes = {
        "actor_task_retry_on_errors": True,  # a batch whose code raises is tried again
        "enable_progress_bars": False,  # the caller's bar counts gathered rows instead
        "print_on_execution_start": False,
        "enable_auto_log_stats": False,
    }
    saved = {k: getattr(context, k) for k in changes}
    for key, value in changes.items():
        setattr(context, key, value)
    try:
        dataset = ray.data.from_arrow(blocks).map_batches(
            EmbedBatch,
            fn_constructor_kwargs={"model": job["model"], "threads": job["threads"]},
            batch_size=job["batch_size"],
            batch_format="numpy",
            compute=ActorPoolStrategy(size=job["actors"]),
            num_cpus=job["threads"],
            max_restarts=MAX_RESTARTS,
            max_task_retries=MAX_TASK_RETRIES,
        )
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            yield np.asarray(batch["row"], dtype=np.int64), np.asarray(batch["vector"], dtype=np.float32)
    finally:
        for key, value in saved.items():
            setattr(context, key, value)


class _Counter:
    """Rows gathered so far by a job that runs on the cluster (Ray Client progress)."""

    def __init__(self) -> None:
        self.rows = 0

    def add(self, n: int) -> None:
        self.rows += n

    def total(self) -> int:
        return self.rows


def _job_on_cluster(blocks: list, job: dict, counter) -> list:
    out = []
    for rows, vectors in embed_job(blocks, job):
        out.append((rows, vectors))
        counter.add.remote(len(rows))
    return out


def _client_mode(ray) -> bool:
    try:
        return bool(ray.util.client.ray.is_connected())
    except AttributeError:
        return False


def _through_client(ray, blocks: list, job: dict, progress: Callable[[int], None] | None):
    """Ray Data cannot drive a job from a Ray Client (``ray://``) process (Ray 2.60: the
    client has no core worker), so the job runs as a task on the cluster and its vectors
    come back at the end; a small actor counts the rows for the progress bar meanwhile."""
    counter = ray.remote(num_cpus=0)(_Counter).remote()
    result = ray.remote(num_cpus=0, max_retries=0)(_job_on_cluster).remote(blocks, job, counter)
    shown = 0
    while not ray.wait([result], timeout=0.5)[0]:
        done = ray.get(counter.total.remote())
        if progress and done > shown:
            progress(done - shown)
            shown = done
    batches = ray.get(result)
    total = sum(len(rows) for rows, _ in batches)
    if progress and total > shown:
        progress(total - shown)
    return batches


# ---------------------------------------------------------------- the embedder


def _dimension_on_disk(model: str) -> int | None:
    """The output dimension of ``model`` read from its configuration files (no torch);
    None when they do not say.  A registered embedder (a plugin's) is asked."""
    factory = registered_embedder(model)
    if factory is not None:
        return factory(model, 1).dimension
    try:
        folder = Path(resolve_model(model))
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, ModelError):
        return None
    for module in reversed(modules):
        try:
            config = json.loads((folder / module.get("path", "") / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError, AttributeError):
            continue
        for key in ("out_features", "word_embedding_dimension"):
            if isinstance(config.get(key), int):
                return int(config[key])
    return None


class RayEmbedder:
    """An embedder whose :meth:`encode` runs on a Ray actor pool.

    ``model``, ``threads``: as for :func:`qa.index.embedding.load_embedder` (the torch backend);
    ``threads`` are the torch threads (and Ray CPUs) of each actor, 0 meaning 1.
    ``address``: an existing cluster.  ``folder``: the :func:`work_dir` of the index, where
    a private local instance (no address) keeps its files and Ray's messages are logged;
    stored as ``work_folder`` (``folder`` would tell the ONNX export code that it holds an
    export).  ``concurrency``: actors (default: the cluster's CPUs divided by ``threads``,
    at most one per batch).  ``num_cpus``: CPUs a local instance may use (default: all).
    ``env``: environment variables for the actors (added to the job's runtime environment;
    e.g. a plugin's own settings).

    Each :meth:`encode` is one Ray session and one Ray Data job; :func:`qa.index.encode_sorted`
    gives it every text at once (``bulk``).  ``last_run`` describes the last job."""

    engine = "ray"
    backend = "torch"
    bulk = True

    def __init__(
        self,
        model: str,
        threads: int = 0,
        address: str | None = None,
        folder: Path | None = None,
        concurrency: int | None = None,
        num_cpus: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        if not ray_installed():
            raise RayEngineError(RAY_HINT)
        if not address and folder is None:
            raise RayEngineError("a local Ray instance needs a folder for its files")
        self.name = model
        self.threads = max(int(threads or 1), 1)
        self.address = address or None
        self.work_folder = Path(folder) if folder is not None else None
        self.concurrency = concurrency
        self.num_cpus = num_cpus
        self.env = dict(env or {})
        self._dimension: int | None = None
        self.last_run: dict = {}

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self._dimension = _dimension_on_disk(self.name)
        if self._dimension is None:  # a model whose files do not say: ask it, here
            from ..index.embedding import load_embedder

            self._dimension = load_embedder(self.name, 1).dimension
        return self._dimension

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 64,
        progress: bool | Callable[[int], None] = False,
    ) -> np.ndarray:
        """Unit vectors of ``texts``, row for row, embedded on Ray in the local engine's
        batches.  ``progress``: a callable told the number of rows of each gathered
        batch, or True for a bar on stderr."""
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        bar = None
        if progress is True:
            from tqdm import tqdm

            bar = tqdm(total=len(texts), unit="passage", desc="embedding on Ray", leave=False)
            progress = bar.update
        try:
            with ray_session(self.address, self.work_folder, self.num_cpus, env=self.env) as ray:
                return self._run(ray, texts, max(int(batch_size), 1), progress or None)
        finally:
            if bar is not None:
                bar.close()

    def _run(self, ray, texts: list[str], batch_size: int, progress: Callable[[int], None] | None) -> np.ndarray:
        started = time.perf_counter()
        n_batches = math.ceil(len(texts) / batch_size)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        actors = max(1, min(self.concurrency or max(1, cpus // self.threads), n_batches))
        nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
        job = {
            "model": self.name,
            "threads": self.threads,
            "actors": actors,
            "batch_size": batch_size,
        }
        blocks = _blocks(texts, batch_size)
        out: np.ndarray | None = None
        seen = np.zeros(len(texts), dtype=np.int64)

        def take(rows: np.ndarray, vectors: np.ndarray) -> None:
            nonlocal out
            if out is None:
                out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
            out[rows] = vectors
            np.add.at(seen, rows, 1)

        try:
            if _client_mode(ray):
                for rows, vectors in _through_client(ray, blocks, job, progress):
                    take(rows, vectors)
            else:
                for rows, vectors in embed_job(blocks, job):
                    take(rows, vectors)
                    if progress:
                        progress(len(rows))
        except Exception as exc:
            if self.address:
                logs = "; Ray's logs are on the cluster's nodes"
            else:
                logs = f"; Ray's logs are in {self.work_folder}" if self.work_folder is not None else ""
            raise RayEngineError(
                f"embedding on Ray failed: {error_line(exc)} (a batch is tried {1 + MAX_TASK_RETRIES} times{logs})"
            ) from None
        if out is None or not (seen == 1).all():
            missing, repeated = int((seen == 0).sum()), int((seen > 1).sum())
            raise RayEngineError(
                f"embedding on Ray returned a wrong set of rows ({missing} missing, {repeated} repeated)"
            )
        self._dimension = int(out.shape[1])
        self.last_run = {
            "passages": len(texts),
            "batches": n_batches,
            "actors": actors,
            "threads_per_actor": self.threads,
            "cluster_cpus": cpus,
            "nodes": nodes,
            "seconds": round(time.perf_counter() - started, 3),
            "ray": ray.__version__,
        }
        return out
