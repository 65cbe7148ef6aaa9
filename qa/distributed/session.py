"""A Ray session for one job: a private instance on 127.0.0.1 or an existing cluster,
Ray's output kept off the terminal, everything cleaned up afterwards (:func:`ray_session`);
and one line for whatever Ray raises (:func:`error_line`).  Also what the whole Ray engine
shares: its settings, :class:`RayEngineError` and :func:`work_dir`."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .. import OFFLINE_ENV
from ..errors import ModelError

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


# Whole (~65 lines): most of it is the pump thread's loop, which shares the pipe with its set-up.
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
def ray_session(
    address: str | None = None, folder: Path | None = None, num_cpus: int | None = None, env: dict | None = None
) -> Iterator:
    """Ray, initialised for one job and shut down after it.

    With ``address``: connect to that cluster (``ray://...`` or ``host:port``), shipping
    the ``qa`` package to its workers; the cluster keeps running.  Without: start a
    private instance bound to 127.0.0.1 with its files in ``folder`` (removed afterwards
    unless the job failed).  Ray's relayed messages go to ``folder``/:data:`DRIVER_LOG`.
    If this process already has Ray initialised, that session is used and left alone.
    ``env``: environment variables for the job's workers, besides :data:`WORKER_ENV` and
    ``QA_PLUGINS`` (whose modules travel with the job too, see :func:`_plugin_folders`).

    Steps: the environment Ray is imported and started in (:func:`_environment`), Ray kept
    quiet (:func:`_quiet_ray`), started or reached (:func:`_start`), shut down, and its
    files cleaned up when the job went well (:func:`_clean_up`)."""
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
        failed = False
        try:
            with _quiet_ray(folder / DRIVER_LOG if folder is not None else None):
                try:
                    link = _start(ray, address, folder, num_cpus, env or {})
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
                _clean_up(folder, link, local)


def _start(ray, address: str | None, folder: Path | None, num_cpus: int | None, env: dict) -> Path | None:
    """``ray.init``: connect to the cluster at ``address``, or start a private instance with
    its files in ``folder``; returns the folder Ray was given (a short link to ``folder``
    when its path is too long for Ray's sockets).  Failures: one :class:`RayEngineError` line."""
    runtime_env = {"env_vars": {**WORKER_ENV, **_plugin_env(), **env}}
    common = {"logging_level": "ERROR", "log_to_driver": False}
    try:
        if address:
            _reachable(address)
            runtime_env["py_modules"] = [str(Path(__file__).resolve().parents[1]), *_plugin_folders()]  # qa/, plugins
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
            return folder
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
        return link
    except RayEngineError:
        raise
    except Exception as exc:  # ConnectionError, RuntimeError, ValueError, ... from ray.init
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise RayEngineError(f"cannot start or reach {where}: {error_line(exc)}") from None


def _plugin_env() -> dict[str, str]:
    """``QA_PLUGINS`` for the workers, when this process has it: they load the same embedders."""
    from ..index.embedding import PLUGINS_ENV

    return {PLUGINS_ENV: os.environ[PLUGINS_ENV]} if os.environ.get(PLUGINS_ENV) else {}


def _plugin_folders() -> list[str]:
    """What a cluster's workers need to import the ``QA_PLUGINS`` modules, shipped with the job
    like ``qa`` itself: each one's top-level package folder, or its file."""
    from ..index.embedding import plugin_modules

    folders = []
    for name in plugin_modules():
        spec = importlib.util.find_spec(name.split(".")[0])
        if spec is None:
            continue  # load_plugins says so, in one line, where it matters
        where = list(spec.submodule_search_locations or []) or [spec.origin]
        folders.extend(str(Path(w).resolve()) for w in where[:1] if w)
    return list(dict.fromkeys(folders))


def _clean_up(folder: Path, link: Path, local: bool) -> None:
    """After a job that went well: a private instance's folder removed (with its link); for a
    cluster, the driver's log and the work folder if empty."""
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
