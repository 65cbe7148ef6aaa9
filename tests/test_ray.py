"""Indexing on Ray (qa/distributed/): the same index as the local engine, Ray kept on
loopback and cleaned up after itself, worker failures retried, and failures reported in
one line with the previous index left as it was.

The slow tests start real Ray: a private instance (what ``--engine ray`` does without an
address) and a one-node cluster started with ``ray start --head`` on 127.0.0.1 (what
``--ray-address`` connects to).  While Ray runs, a watcher reads the listening sockets of
this process and its descendants from /proc: every one must be on loopback.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from qa.serve.cli import main
from qa.distributed import RAY_HINT, RayEmbedder, RayEngineError, work_dir
from .doubles import HashEmbedder, fault_env
from qa.evaluation import load_qa
from qa.index import build_and_save, load
from qa.pipeline import open_engine
from qa.settings import Settings

from .conftest import SEED_QA, SEEDS

# ---------------------------------------------------------------- helpers


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _descendants(root: int) -> set[int]:
    tree, found, todo = _children(), set(), [root]
    while todo:
        for child in tree.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _listening(pids: set[int]) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket that one of ``pids`` listens on."""
    inodes = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    found = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in inodes:  # 0A: LISTEN
                continue
            address, port = fields[1].split(":")
            raw = bytes.fromhex(address)
            ip = ipaddress.ip_address(b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4)))
            if ip.version == 6 and ip.ipv4_mapped is not None:
                ip = ip.ipv4_mapped
            found.add((str(ip), int(port, 16)))
    return found


class SocketWatch(threading.Thread):
    """Samples the listening sockets of this process and its descendants until stopped."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.seen: set[tuple[str, int]] = set()
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            self.seen |= _listening(_descendants(os.getpid()) | {os.getpid()})
            self.halt.wait(0.2)

    def __enter__(self) -> "SocketWatch":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.halt.set()
        self.join(timeout=10)

    def exposed(self) -> list[tuple[str, int]]:
        return sorted(s for s in self.seen if not ipaddress.ip_address(s[0]).is_loopback)


def _ray_processes() -> list[str]:
    names = ("raylet", "gcs_server", "ray::")
    return [c for c in map(_cmdline, _descendants(os.getpid())) if any(n in c for n in names)]


def _vectors(index) -> list[np.ndarray]:
    flats = (index.sentence_vectors, index.window_vectors, index.chunk_vectors)
    return [f.reconstruct_n(0, f.ntotal) for f in flats]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- without Ray running


def test_without_ray_one_line(tmp_path, monkeypatch, capsys):
    """No Ray installed (an import of it fails): one line that says what to install."""
    monkeypatch.setitem(sys.modules, "ray", None)
    index = tmp_path / "index"
    code = main(["index", "--docs", str(SEEDS), "--index", str(index), "--engine", "ray", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    assert err == f"error: {RAY_HINT}\n"
    assert not index.exists() and not work_dir(index).exists()


def test_ray_flags_are_checked(tmp_path, capsys):
    code = main(["index", "--docs", str(SEEDS), "--index", str(tmp_path / "i"), "--ray-address", "127.0.0.1:1"])
    assert code == 2
    assert capsys.readouterr().err == "error: --ray-address needs --engine ray\n"
    code = main(["index", "--docs", str(SEEDS), "--index", str(tmp_path / "i"), "--engine", "ray", "--backend", "onnx"])
    assert code == 2
    assert capsys.readouterr().err == "error: --engine ray embeds with the torch backend, not 'onnx'\n"
    assert not (tmp_path / "i").exists()


def test_unreachable_cluster_fails_fast(tmp_path, capsys):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.perf_counter()
    code = main(
        [
            "index",
            "--docs",
            str(SEEDS),
            "--index",
            str(tmp_path / "i"),
            "--model",
            "hash-64",
            "--engine",
            "ray",
            "--ray-address",
            f"127.0.0.1:{port}",
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and time.perf_counter() - started < 30
    assert err.startswith(f"error: cannot reach the Ray cluster at 127.0.0.1:{port}") and err.count("\n") == 1
    assert not (tmp_path / "i").exists()


# ---------------------------------------------------------------- a private Ray instance


@pytest.mark.slow
def test_ray_engine_builds_the_local_index(seed_index, engine, tmp_path, capfd):
    """`python -m qa index --engine ray` on a private Ray: the index the local engine
    builds (tables, vectors within 1e-5, answers), Ray on loopback only, no Ray output on
    stderr, and nothing of Ray left afterwards."""
    target = tmp_path / "ray-index"
    with SocketWatch() as watch:
        code = main(["index", "--docs", str(SEEDS), "--index", str(target), "--engine", "ray", "--quiet", "--json"])
    out, err = capfd.readouterr()
    assert code == 0, err
    assert err == ""  # Ray's own chatter went to its log, not to the terminal
    assert json.loads(out)["encoded_passages"] > 0

    assert watch.seen, "the watcher saw Ray's servers"
    assert watch.exposed() == []
    assert not work_dir(target).exists()  # Ray's files went there and were removed
    deadline = time.time() + 20
    while _ray_processes() and time.time() < deadline:
        time.sleep(0.2)
    assert _ray_processes() == []

    local, ray_built = load(seed_index), load(target)
    assert ray_built.manifest["build"]["engine"] == "ray"
    assert [d.doc_id for d in ray_built.documents] == [d.doc_id for d in local.documents]
    for table in ("paragraphs", "sentences", "chunks"):
        assert np.array_equal(getattr(ray_built, table), getattr(local, table)), table
    for ours, theirs in zip(_vectors(ray_built), _vectors(local)):
        assert ours.shape == theirs.shape
        assert float(np.abs(ours - theirs).max()) <= 1e-5

    # Same top quote for every question of the seed QA set.
    other = open_engine(Settings(docs=SEEDS, index=target), embedder=engine.retriever.embedder)
    for item in load_qa(SEED_QA):
        a, b = engine.ask(item.question), other.ask(item.question)
        assert a.answered == b.answered, item.id
        top = lambda answer: [(q.doc_id, q.start, q.end) for q in answer.quotes[:1]]  # noqa: E731
        assert top(a) == top(b), item.id


# ---------------------------------------------------------------- an existing cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A one-node Ray cluster on 127.0.0.1 (``ray start --head``), stopped by process id."""
    with socket.socket() as s, socket.socket() as c:  # (ephemeral ports: clear of Ray's worker ports)
        s.bind(("127.0.0.1", 0))
        c.bind(("127.0.0.1", 0))
        port, client_port = s.getsockname()[1], c.getsockname()[1]
    folder = tmp_path_factory.mktemp("rc")
    env = dict(os.environ, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled")
    env.pop("PYTHONPATH", None)  # its workers must get qa from the job (py_modules), not from here
    ray_cli = Path(sys.executable).parent / "ray"
    with open(folder / "head.log", "wb") as log:
        head = subprocess.Popen(
            [
                str(ray_cli),
                "start",
                "--head",
                "--block",
                "--node-ip-address=127.0.0.1",
                f"--port={port}",
                f"--ray-client-server-port={client_port}",
                f"--temp-dir={folder / 't'}",
                "--include-dashboard=false",
                "--num-cpus=2",
                "--disable-usage-stats",
            ],
            cwd=folder,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
    try:
        deadline = time.time() + 90
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert head.poll() is None, (folder / "head.log").read_text()[-2000:]
                assert time.time() < deadline, "ray start --head did not come up"
                time.sleep(0.5)
        yield {"gcs": f"127.0.0.1:{port}", "client": f"ray://127.0.0.1:{client_port}"}
    finally:
        pids = _descendants(head.pid) | {head.pid}
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        head.wait(timeout=30)


# Whole (~60 lines): one scenario, step by step.
@pytest.mark.slow
def test_cluster_retries_worker_failures_and_fails_cleanly(cluster, tmp_path, capfd):
    docs = SEEDS
    settings = Settings(docs=docs, index=tmp_path / "index", model="hash-64")
    local, _ = build_and_save(settings, HashEmbedder(64))  # the previous index
    expected = _vectors(local)

    def ray(env=None) -> RayEmbedder:  # env: a fault for the workers' hash embedder (tests/doubles.py)
        return RayEmbedder("hash-64", address=cluster["gcs"], folder=work_dir(settings.index), env=env)

    with SocketWatch() as watch:
        # The CLI with --ray-address, as HOST:PORT (the head's GCS) and through Ray Client
        # (ray://, where the Ray Data job runs as a task on the cluster): the local vectors.
        for address in (cluster["gcs"], cluster["client"]):
            code = main(
                [
                    "index",
                    "--docs",
                    str(docs),
                    "--index",
                    str(settings.index),
                    "--model",
                    "hash-64",
                    "--engine",
                    "ray",
                    "--ray-address",
                    address,
                    "--full",
                    "--quiet",
                ]
            )
            assert code == 0, address
            built = load(settings.index)
            assert built.manifest["build"]["engine"] == "ray"
            assert all(np.array_equal(a, b) for a, b in zip(_vectors(built), expected)), address

        # A worker process that dies on its first batch: restarted, the batch redone.
        died = tmp_path / "died"
        index, _ = build_and_save(settings, ray(fault_env(died, times=1, how="exit")), full=True)
        assert died.read_text() == "1"
        assert all(np.array_equal(a, b) for a, b in zip(_vectors(index), expected))

        # An actor that raises on its first batch: the batch is tried again.
        raised = tmp_path / "raised"
        embedder = ray(fault_env(raised, times=1, how="raise"))
        index, _ = build_and_save(settings, embedder, full=True)
        assert raised.read_text() == "1"
        assert all(np.array_equal(a, b) for a, b in zip(_vectors(index), expected))
        assert embedder.last_run["passages"] == index.manifest["build"]["encoded_passages"]

        # A batch that fails every time: one line, and the index on disk is untouched.
        before = _snapshot(settings.index)
        always = tmp_path / "always"
        with pytest.raises(RayEngineError) as failure:
            build_and_save(settings, ray(fault_env(always, times=-1, how="raise")), full=True)
    message = str(failure.value)
    assert "\n" not in message and "RuntimeError: injected fault" in message, message
    assert int(always.read_text()) >= 2  # it was retried before giving up
    assert _snapshot(settings.index) == before
    assert all(np.array_equal(a, b) for a, b in zip(_vectors(load(settings.index)), expected))

    assert watch.seen and watch.exposed() == []
    assert capfd.readouterr().err == ""
