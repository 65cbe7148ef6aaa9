"""``qa-web --workers N``: one web server whose questions are answered by N processes that
share the models and the index's pages.

Separate replicas each hold their own copy of Python's libraries, Gradio, the reader and the
query encoder (~230 MB a process, whatever the index's size) and need a load balancer.  Here
one process loads those, then forks N - 1 answering workers: the pages stay shared
copy-on-write.  Each worker opens the memory-mapped index itself, after the fork (faiss 1.15
crashes in a child that searches a memory-mapped IVF index its parent had searched, so
nothing runs faiss before the forks), and answers the questions the server sends it over a
pipe.  The process that forked them opens the index last, serves the page on PORT and
answers too: a question goes to whichever process is free.  Only the server holds Gradio,
its web stack's state and the chats, so a worker costs little more than its own share of the
answer path.  The workers die with the server (even when it is killed), and a worker that
ends ends the server, hence all.
"""

from __future__ import annotations

import argparse
import gc
import os
import queue
import signal
import subprocess
import sys
import threading
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import QAError
from ..settings import Settings


def index_problem(settings: Settings) -> str:
    """Why the index at ``settings.index`` must be (re)built before serving ("" when it is
    current), judged from its manifest alone (no faiss in this process)."""
    from ..index import IndexProblem, read_manifest
    from ..pipeline import rebuild_reason

    try:
        return rebuild_reason(read_manifest(settings.index), settings)
    except IndexProblem as exc:
        return str(exc)


def build_apart(settings: Settings) -> int:
    """``python -m qa index`` for ``settings`` in its own process (the exit status)."""
    cmd = [sys.executable, "-m", "qa", "index", "--docs", str(settings.docs), "--index", str(settings.index)]
    return subprocess.run(cmd + ["--model", settings.model], check=False).returncode


class WorkerGone(QAError):
    """An answering worker ended while it held a question."""


def _opened(open_engine: Callable[[], Any], stamp: Callable[[], Any]) -> tuple[Any, Any]:
    """A fresh, warmed engine and the stamp of the index it read (None when the index was
    replaced while it loaded: then it matches no one)."""
    before = stamp()
    engine = open_engine()
    engine.ask("warm up")  # lazy tables, tokenizer padding: before threads share it
    return engine, before if stamp() == before else None


class AnswerPool:
    """An engine whose ``ask`` runs in whichever answering process is free: a forked worker
    (over its pipe) or this process's own engine, one question per slot at a time, the
    longest-idle slot first.  Everything else (documents, catalog, quotes) is read from this
    process's engine.

    Quotes are offsets into this engine's texts, so a worker's answer is used only when the
    worker read the same index (the same manifest stamp); a worker that finds a newer index
    on disk than its own reopens it first.  After ``qa index`` replaces the folder, the web
    app's :class:`~qa.serve.web.LiveEngine` calls :meth:`reopen`, and the workers follow."""

    def __init__(
        self,
        opened: tuple[Any, Any],
        pipes: Sequence[Connection],
        local_slots: int,
        reopen: Callable[[], tuple[Any, Any]],
        free: queue.SimpleQueue | None = None,
    ) -> None:
        self._engine, self.stamp = opened
        self._pipes, self._local, self._reopen = list(pipes), local_slots, reopen
        if free is None:
            free = queue.SimpleQueue()
            for slot in [*pipes, *([None] * local_slots)]:
                free.put(slot)
        self._free = free
        self.slots = len(pipes) + local_slots

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def reopen(self) -> "AnswerPool":
        """The same workers over a freshly opened engine of this process."""
        return AnswerPool(self._reopen(), self._pipes, self._local, self._reopen, self._free)

    def ask(self, *args: Any, **kwargs: Any) -> Any:
        slot = self._free.get()
        if slot is None:
            try:
                return self._engine.ask(*args, **kwargs)
            finally:
                self._free.put(slot)
        try:
            slot.send((self.stamp, args, kwargs))
            ok, value, stamp = slot.recv()
        except (EOFError, OSError) as exc:  # the worker died: its slot is not given back
            raise WorkerGone("an answering worker ended; the server is stopping") from exc
        self._free.put(slot)
        if stamp is None or stamp != self.stamp:  # it read another index than this process
            return self._engine.ask(*args, **kwargs)
        if not ok:
            raise value
        return value


class _Current:
    """A worker's engine, reopened when the server asks for another index than it has read
    and the folder on disk has changed since it read it."""

    def __init__(self, open_engine: Callable[[], Any], stamp: Callable[[], Any]) -> None:
        self._open, self._stamp = open_engine, stamp
        self._lock = threading.Lock()
        self.engine, self.stamp = _opened(open_engine, stamp)

    def at(self, wanted: Any) -> tuple[Any, Any]:
        with self._lock:
            if wanted != self.stamp and self._stamp() != self.stamp:
                self.engine, self.stamp = _opened(self._open, self._stamp)
            return self.engine, self.stamp


def answer_over(pipe: Connection, current: _Current) -> None:
    """In a worker: answer each ``(stamp, args, kwargs)`` that arrives on ``pipe`` with
    ``(True, engine.ask(...), its stamp)``, or ``(False, the exception, its stamp)``, until
    the pipe closes."""
    while True:
        try:
            wanted, args, kwargs = pipe.recv()
        except (EOFError, OSError):
            return
        try:
            engine, stamp = current.at(wanted)
        except Exception as exc:  # noqa: BLE001  (the index cannot be reopened: the server answers)
            pipe.send((False, QAError(str(exc)), None))
            continue
        try:
            reply = (True, engine.ask(*args, **kwargs), stamp)
        except Exception as exc:  # noqa: BLE001  (the server raises it where it was asked)
            reply = (False, exc, stamp)
        try:
            pipe.send(reply)
        except Exception as exc:  # noqa: BLE001  (a reply that cannot be pickled: nothing was sent)
            what = f"{type(reply[1]).__name__}: {reply[1]}" if not reply[0] else f"the answer could not be sent ({exc})"
            pipe.send((False, QAError(what), stamp))


def _preload() -> None:
    """Import here what each worker would otherwise import for itself (~1,700 modules: Gradio
    and its web stack, faiss, bm25s, this package's answering and page modules), so that
    their pages are shared.  Importing faiss runs none of it."""
    import importlib

    for name in (
        "faiss",
        "bm25s",
        "Stemmer",
        "gradio",
        "gradio.routes",
        "uvicorn",
        "qa.index.store",
        "qa.index.vectors",
        "qa.answer.engine",
        "qa.answer.disagreement",
        "qa.serve.web",
        "qa.serve.chat",
        "qa.serve.page",
        "qa.serve.present",
    ):
        importlib.import_module(name)


def _die_with_parent(parent: int) -> None:
    """Linux: this worker gets SIGTERM when the process that forked it dies (even by SIGKILL)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # it died before the line above
        os._exit(0)


def _watch(children: dict[int, int]) -> None:
    """In the server (the process that forked the workers), on a thread: when a worker
    ends, end this process too, and with it the rest (they die with their parent)."""
    import time

    def watch() -> None:
        while True:
            for pid, number in children.items():
                done, raw = os.waitpid(pid, os.WNOHANG)
                if done:
                    code = os.waitstatus_to_exitcode(raw)
                    print(
                        f"worker {number} ended (exit status {code}); stopping the others", file=sys.stderr, flush=True
                    )
                    os._exit(code if code > 0 else 1)
            time.sleep(0.5)

    threading.Thread(target=watch, name="qa-workers", daemon=True).start()


def start_workers(
    count: int, slots: int, open_engine: Callable[[], Any], stamp: Callable[[], Any] = lambda: None
) -> tuple[dict[int, int], list[Connection]]:
    """Fork ``count`` answering workers, each opening its engine with ``open_engine()``
    (``stamp()``: the identity of the index on disk) and answering ``slots`` questions at
    once; returns ``{pid: worker number}`` (2, 3, …) and the server's ends of their pipes.
    Call it before this process starts any thread."""
    pairs = [[Pipe() for _ in range(slots)] for _ in range(count)]
    parent, children = os.getpid(), {}
    for i in range(count):
        number = i + 2  # the server is worker 1
        pid = os.fork()
        if pid == 0:  # a worker: never returns
            code = 70
            try:
                _die_with_parent(parent)
                for j, mine in enumerate(pairs):  # keep only this worker's ends: EOF works both ways
                    for server_end, worker_end in mine:
                        server_end.close()
                        if j != i:
                            worker_end.close()
                code = _answer_forever(_Current(open_engine, stamp), [w for _, w in pairs[i]], number)
            except BaseException as exc:  # noqa: BLE001  (one line, then this process ends)
                from .app import fail

                code = fail(exc) if isinstance(exc, Exception) else 0
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children[pid] = number
    for mine in pairs:
        for _, worker_end in mine:
            worker_end.close()
    return children, [s for mine in pairs for s, _ in mine]


def _answer_forever(current: _Current, pipes: list[Connection], number: int) -> int:
    threads = [threading.Thread(target=answer_over, args=(p, current), daemon=True) for p in pipes]
    for t in threads:
        t.start()
    print(f"worker {number}: answering, {len(current.engine.documents)} documents", flush=True)
    for t in threads:
        t.join()
    return 0


def serve_forked(settings: Settings, args: argparse.Namespace, serve: Callable[..., int]) -> int:
    """Serve the chat on ``args.port`` with ``args.workers`` answering processes: this one
    loads what they share, forks the others, then opens the index and serves (``serve(engine,
    settings, args, port, concurrency)``); returns when it stops, and the others stop with it."""
    from ..answer.reader import shipped_reader
    from ..index import read_manifest
    from ..index.embedding import load_embedder
    from ..pipeline import open_engine
    from .app import usable_cores
    from .web import index_stamp

    if not hasattr(os, "fork"):
        from ..errors import SettingsError

        raise SettingsError("--workers needs a system that can fork (Linux, macOS); run one qa-web per port instead")
    problem = index_problem(settings)
    if problem:
        print(f"index {settings.index}/: building ({problem})", flush=True)
        code = build_apart(settings)
        if code:
            return code
    # What every worker shares: the libraries, the reader, the query encoder.
    _preload()
    model = read_manifest(settings.index)["model"]["name"]
    embedder = load_embedder(model, settings.threads, onnx_dir=settings.index)
    shipped_reader()
    slots = args.concurrency or max(usable_cores() // args.workers, 1)
    # The objects loaded so far are left out of the collector's passes, in this process and
    # the workers: a pass writes to every object it visits, which would copy every page.
    gc.collect()
    gc.freeze()

    def opener():
        return open_engine(settings, embedder=embedder)

    def stamp():
        return index_stamp(Path(settings.index) / "manifest.json")

    children, pipes = start_workers(args.workers - 1, slots, opener, stamp)
    # Only now does this process open the index (faiss): the workers were forked before.
    _watch(children)
    pool = AnswerPool(_opened(opener, stamp), pipes, slots, lambda: _opened(opener, stamp))
    print(
        f"{args.workers} answering workers (this process and {args.workers - 1} forked), "
        f"{len(pool.documents)} documents, port {args.port}",
        flush=True,
    )
    return serve(pool, settings, args, args.port, pool.slots)
