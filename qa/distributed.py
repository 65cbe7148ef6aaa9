"""Embedding on a Ray cluster: ``python -m qa index --engine ray [--ray-address ADDRESS]``.

Only the embedding moves.  Reading, cleaning and chunking stay in the driver exactly as
for the local engine, and so do the tables, BM25 and FAISS: :class:`RayEmbedder` has the
interface of the :mod:`qa.embedding` embedders (``name``, ``dimension``,
``encode(texts, batch_size)``), so :func:`qa.index.build` uses it like any other and
the index it saves is the one the local engine saves (same chunk ids and offsets,
vectors equal within float rounding, same answers).

How the texts travel:

* The driver cuts the texts into the batches the local engine would use (longest first,
  ``batch_size`` per batch: :func:`qa.index.encode_sorted`) and hands them to Ray Data
  as one block per batch, each row carrying its position (``row``).
* ``map_batches`` runs :class:`EmbedBatch`, a callable class, on an actor pool
  (``concurrency`` actors, each loading the model once, ``num_cpus`` cores each).
* The driver gathers the output blocks as they finish, puts each vector in its row (the
  output order is never relied on) and checks that every row came back exactly once.

Failures: an actor that dies is restarted by Ray (``max_restarts``) and its batch sent
again (``max_task_retries``); a batch whose code raises is tried again as well
(``DataContext.actor_task_retry_on_errors``).  When the retries run out the build
stops with one line (:class:`RayEngineError`) and, as with any failed build, the index
on disk is left as it was (:func:`qa.index.save` only swaps in a complete folder).

Where Ray runs:

* no address: a private Ray instance on this machine, bound to 127.0.0.1 only (no
  dashboard, usage stats off), with its temporary files under the index's work folder
  (``<index parent>/.<index name>.ray/``), shut down and removed afterwards;
* ``ray://HOST:10001`` (Ray Client) or ``HOST:6379`` (the head's GCS, from a node of the
  cluster): an existing cluster.  The ``qa`` package travels with the job
  (``runtime_env["py_modules"]``); every node needs the project's requirements installed
  (the bundled model is one of them).  The cluster is left running.

Ray is an optional extra (``pip install -r requirements-ray.txt``); nothing here imports
it until a Ray build starts.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from .embedding import ModelError, resolve_model

ENGINES = ("local", "ray")
RAY_HINT = "install the Ray extra: pip install -r requirements-ray.txt"

# Ray's own switches for a private instance: no phoning home, no token auth between our
# own processes, and (checked on these machines with `ss`) listen on loopback only.
LOCAL_RAY_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
}
# What every Ray worker needs to load the model the way the local engine does.
WORKER_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
}
# Retries: an actor that dies is restarted up to MAX_RESTARTS times, and a batch is tried
# up to 1 + MAX_TASK_RETRIES times (also when its code raises).
MAX_RESTARTS = 3
MAX_TASK_RETRIES = 3
# Unix socket paths (Ray puts its sockets under the temporary folder) are limited to 107 bytes.
_SOCKET_PATH_MAX = 107
_SOCKET_SUFFIX = len("/session_2025-01-01_00-00-00_000000_1234567/sockets/plasma_store")


class RayEngineError(ModelError):
    """Embedding on Ray is impossible or failed (one line).  A :class:`ModelError`, so
    whatever handles a model that cannot embed handles this too."""


def ray_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("ray") is not None


def require_ray():
    """The ``ray`` module with Ray Data, or a one-line :class:`RayEngineError`."""
    try:
        import ray
        import ray.data  # noqa: F401  (the [data] extra: pyarrow, pandas)
    except ImportError:
        raise RayEngineError(RAY_HINT) from None
    return ray


def work_dir(index: Path) -> Path:
    """Where a private Ray instance keeps its files while ``index`` is built:
    ``<index parent>/.<index name>.ray``."""
    index = Path(index).absolute()
    return index.parent / f".{index.name}.ray"


# ---------------------------------------------------------------- the actor


class EmbedBatch:
    """One actor of the pool: loads the model once, then embeds batch after batch.

    A batch is ``{"row": int64[n], "text": str[n]}``; the answer is
    ``{"row": int64[n], "vector": float32[n, dimension]}`` (unit rows).  ``fault`` is for
    tests: ``{"marker": FILE, "times": N, "how": "raise" | "exit"}`` makes the first N
    batches (counted across restarts in FILE; N < 0: every batch) raise, or kill the
    actor's process."""

    def __init__(self, model: str, threads: int = 1, fault: dict | None = None) -> None:
        for key, value in WORKER_ENV.items():
            os.environ.setdefault(key, value)
        from qa.embedding import load_embedder

        self.embedder = load_embedder(model, threads)
        self.fault = fault

    def _inject_fault(self) -> None:
        marker = Path(self.fault["marker"])
        done = int(marker.read_text() or 0) if marker.exists() else 0
        times = int(self.fault.get("times", 1))
        if 0 <= times <= done:
            return
        marker.write_text(str(done + 1))
        if self.fault.get("how") == "exit":
            os._exit(1)  # a worker that dies: no exception, no cleanup
        raise RuntimeError(f"injected fault {done + 1}")

    def __call__(self, batch: dict) -> dict:
        if self.fault:
            self._inject_fault()
        texts = [str(t) for t in batch["text"]]
        vectors = self.embedder.encode(texts, batch_size=max(len(texts), 1))
        return {"row": np.asarray(batch["row"], dtype=np.int64), "vector": np.asarray(vectors, dtype=np.float32)}


# ---------------------------------------------------------------- a Ray session


def _short_enough(temp_dir: Path) -> bool:
    return len(str(temp_dir)) + _SOCKET_SUFFIX <= _SOCKET_PATH_MAX


@contextmanager
def _environment(forced: dict, defaults: dict) -> Iterator[None]:
    """``forced`` and (where unset) ``defaults`` in ``os.environ`` for a while."""
    saved = {k: os.environ.get(k) for k in (*forced, *defaults)}
    os.environ.update(forced)
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def _quiet_ray_logs() -> Iterator[None]:
    """Ray Data's INFO lines and warnings stay out of the CLI's stderr (errors still
    come through, as exceptions)."""
    import logging
    import warnings

    loggers = [logging.getLogger(name) for name in ("ray", "ray.data")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


@contextmanager
def ray_session(address: str | None = None, temp_dir: Path | None = None, num_cpus: int | None = None) -> Iterator:
    """Ray, initialised for one build and shut down after it.

    With ``address``: connect to that cluster (``ray://...`` or ``host:port``), shipping
    the ``qa`` package to its workers; the cluster keeps running.  Without: start a
    private instance bound to 127.0.0.1 with its files in ``temp_dir`` (removed
    afterwards unless the build failed: then they hold Ray's logs).  If this process
    already has Ray initialised, that session is used and left alone."""
    if not ray_installed():
        raise RayEngineError(RAY_HINT)
    local = not address
    # Set before Ray is imported: some of it is read at import time (ENABLE_RAY_CLUSTER).
    # RAY_BACKEND_LOG_LEVEL=fatal (unless set) keeps Ray's C++ warnings off the
    # driver's stderr; failures still arrive as exceptions.
    forced = dict(LOCAL_RAY_ENV) if local else {"RAY_USAGE_STATS_ENABLED": "0"}
    with _environment(forced, {**WORKER_ENV, "RAY_BACKEND_LOG_LEVEL": "fatal"}), _quiet_ray_logs():
        ray = require_ray()
        if ray.is_initialized():
            yield ray
            return
        from ray._private import ray_constants

        cluster_flag = ray_constants.ENABLE_RAY_CLUSTER
        if local:
            # False: the node's address is 127.0.0.1 and every Ray server listens there only
            # (needed when Ray was imported before the variable was set).
            ray_constants.ENABLE_RAY_CLUSTER = False
        runtime_env = {"env_vars": dict(WORKER_ENV)}
        common = {"logging_level": "ERROR", "log_to_driver": False}
        failed = False
        try:
            try:
                if not local:
                    runtime_env["py_modules"] = [str(Path(__file__).resolve().parent)]
                    ray.init(address=address, runtime_env=runtime_env, **common)
                else:
                    if temp_dir is None:
                        raise RayEngineError("a local Ray instance needs a folder for its files")
                    temp_dir = Path(temp_dir).absolute()
                    if not _short_enough(temp_dir):
                        raise RayEngineError(
                            f"{temp_dir}: path too long for Ray's sockets (at most "
                            f"{_SOCKET_PATH_MAX - _SOCKET_SUFFIX} characters); use an index folder with a shorter path"
                        )
                    temp_dir.mkdir(parents=True, exist_ok=True)
                    # Workers on this machine import qa from this very checkout.
                    here = str(Path(__file__).resolve().parents[1])
                    runtime_env["env_vars"]["PYTHONPATH"] = os.pathsep.join(
                        p for p in (here, os.environ.get("PYTHONPATH", "")) if p
                    )
                    ray.init(
                        num_cpus=num_cpus,
                        include_dashboard=False,
                        runtime_env=runtime_env,
                        _temp_dir=str(temp_dir),
                        _node_ip_address="127.0.0.1",
                        **common,
                    )
            except RayEngineError:
                raise
            except Exception as exc:  # ConnectionError, RuntimeError, ValueError, ... from ray.init
                where = f"the Ray cluster at {address}" if address else "a local Ray instance"
                raise RayEngineError(f"cannot start or reach {where}: {_first_line(exc)}") from None
            try:
                yield ray
            except BaseException:
                failed = True
                raise
        finally:
            if ray.is_initialized():
                ray.shutdown()
            ray_constants.ENABLE_RAY_CLUSTER = cluster_flag
            if local and temp_dir is not None and not failed:
                shutil.rmtree(temp_dir, ignore_errors=True)


def _first_line(exc: BaseException) -> str:
    """The most telling single line of a (possibly wrapped) Ray exception."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        cause = getattr(exc, "cause", None) or exc.__cause__
        if cause is None or cause is exc:
            break
        exc = cause
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = next((line for line in reversed(lines) if not line.startswith(("File ", "^", "~"))), "") if lines else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# ---------------------------------------------------------------- the embedder


def _dimension_on_disk(model: str) -> int | None:
    """The output dimension of a sentence-transformers model folder, read from its
    configuration (no torch); None when it cannot be told."""
    try:
        folder = Path(resolve_model(model))
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, ModelError):
        return None
    for module in reversed(modules):
        try:
            config = json.loads((folder / module.get("path", "") / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for key in ("out_features", "word_embedding_dimension"):
            if isinstance(config.get(key), int):
                return int(config[key])
    return None


class RayEmbedder:
    """An embedder whose :meth:`encode` runs on a Ray actor pool.

    ``model``, ``threads``: as for :func:`qa.embedding.load_embedder` (``threads`` are
    torch threads per actor; 0 means one).  ``address``: an existing cluster, else a
    private local instance with its files in ``temp_dir``.  ``concurrency``: actors (default:
    the cluster's CPUs divided by the CPUs per actor, at most one per batch).
    ``fault``: see :class:`EmbedBatch` (tests only).

    Each :meth:`encode` call is one Ray session and one Ray Data job; :func:`qa.index.encode_sorted`
    hands it every text at once (``bulk``).  ``last_run`` describes the last job."""

    engine = "ray"
    backend = "torch"
    bulk = True

    def __init__(
        self,
        model: str,
        threads: int = 0,
        address: str | None = None,
        temp_dir: Path | None = None,
        concurrency: int | None = None,
        num_cpus: int | None = None,
        fault: dict | None = None,
    ) -> None:
        if not ray_installed():
            raise RayEngineError(RAY_HINT)
        self.name = model
        self.threads = max(int(threads or 1), 1)
        self.address = address
        self.temp_dir = Path(temp_dir) if temp_dir is not None else None
        self.concurrency = concurrency
        self.num_cpus = num_cpus
        self.fault = fault
        self._dimension: int | None = None
        self.last_run: dict = {}

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self._dimension = _dimension_on_disk(self.name)
        if self._dimension is None:  # a model whose config does not say: ask it, here
            from .embedding import load_embedder

            self._dimension = load_embedder(self.name, 1).dimension
        return self._dimension

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 64,
        progress: bool | Callable[[int], None] = False,
    ) -> np.ndarray:
        """Unit vectors of ``texts``, row for row, embedded on Ray in the local engine's
        batches.  ``progress``: a callable told the number of rows of each gathered batch,
        or True for a tqdm bar on stderr."""
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        bar = None
        if progress is True:
            from tqdm import tqdm

            bar = tqdm(total=len(texts), unit="passage", desc="embedding (ray)", leave=False)
            progress = bar.update
        try:
            with ray_session(self.address, self.temp_dir, self.num_cpus) as ray:
                return self._run(ray, texts, max(int(batch_size), 1), progress or None)
        finally:
            if bar is not None:
                bar.close()

    def _batches(self, texts: list[str], batch_size: int):
        """The local engine's batches (longest texts first), as Arrow tables with row numbers."""
        import pyarrow as pa

        order = np.argsort([-len(t) for t in texts], kind="stable")
        for i in range(0, len(texts), batch_size):
            rows = order[i : i + batch_size]
            yield pa.table({"row": pa.array(rows, type=pa.int64()), "text": pa.array([texts[r] for r in rows], type=pa.string())})

    def _run(self, ray, texts: list[str], batch_size: int, progress: Callable[[int], None] | None) -> np.ndarray:
        from ray.data import DataContext

        started = time.perf_counter()
        n_batches = math.ceil(len(texts) / batch_size)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        actors = self.concurrency or max(1, cpus // self.threads)
        actors = max(1, min(actors, n_batches))
        nodes = sum(1 for node in ray.nodes() if node.get("Alive"))

        context = DataContext.get_current()
        saved = {
            k: getattr(context, k)
            for k in ("actor_task_retry_on_errors", "enable_progress_bars", "print_on_execution_start", "enable_auto_log_stats")
        }
        context.actor_task_retry_on_errors = True
        context.enable_progress_bars = False  # our own bar counts gathered rows
        context.print_on_execution_start = False
        context.enable_auto_log_stats = False
        out: np.ndarray | None = None
        seen = np.zeros(len(texts), dtype=np.int64)
        try:
            dataset = ray.data.from_arrow(list(self._batches(texts, batch_size))).map_batches(
                EmbedBatch,
                fn_constructor_kwargs={"model": self.name, "threads": self.threads, "fault": self.fault},
                batch_size=batch_size,
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=actors),
                num_cpus=self.threads,
                max_restarts=MAX_RESTARTS,
                max_task_retries=MAX_TASK_RETRIES,
            )
            for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                rows, vectors = np.asarray(batch["row"], dtype=np.int64), np.asarray(batch["vector"], dtype=np.float32)
                if out is None:
                    out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
                out[rows] = vectors
                np.add.at(seen, rows, 1)
                if progress:
                    progress(len(rows))
        except RayEngineError:
            raise
        except Exception as exc:
            logs = f" (Ray's logs: {self.temp_dir})" if not self.address and self.temp_dir else ""
            raise RayEngineError(
                f"embedding on Ray failed (batches are retried {MAX_TASK_RETRIES} times, actors restarted "
                f"{MAX_RESTARTS} times): {_first_line(exc)}{logs}"
            ) from None
        finally:
            for key, value in saved.items():
                setattr(context, key, value)
        if out is None or not (seen == 1).all():
            missing, twice = int((seen == 0).sum()), int((seen > 1).sum())
            raise RayEngineError(f"embedding on Ray returned a wrong set of rows ({missing} missing, {twice} repeated)")
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
