"""``qa-web --workers N``: the models loaded once, N serving processes forked that share them.

Separate replicas each hold their own copy of Python's libraries, Gradio, the reader and
the query encoder (~230 MB a process, whatever the index's size). Here one process loads
those, then forks the workers: the pages stay shared copy-on-write, and each worker opens
the memory-mapped index itself, after the fork (faiss 1.15 crashes in a child that searches
a memory-mapped IVF index its parent had searched, so nothing runs faiss before the forks).
The process that forks serves too, as the first worker, on PORT; worker i on PORT + i - 1.
A load balancer with sticky sessions goes in front (a chat's event stream and its requests
must reach the same worker: README, "Serving many users").  The workers die with the first
(even when it is killed), and a worker that ends ends the first, hence all.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import subprocess
import sys
from typing import Callable

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
    """In the first worker (the process that forked the others), on a thread: when another
    worker ends, end this process too, and with it the rest (they die with their parent)."""
    import threading
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


def serve_forked(settings: Settings, args: argparse.Namespace, serve: Callable[..., int]) -> int:
    """Serve the chat from ``args.workers`` workers: this process loads what they share,
    forks the others, then serves as the first (``serve(engine, settings, args, port,
    concurrency)``); returns when it stops, and the others stop with it."""
    from ..answer.reader import shipped_reader
    from ..index import read_manifest
    from ..index.embedding import load_embedder
    from .app import fail, usable_cores

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
    concurrency = args.concurrency or max(usable_cores() // args.workers, 1)
    # The objects loaded so far are left out of the collector's passes, in this process and
    # the workers: a pass writes to every object it visits, which would copy every page.
    gc.collect()
    gc.freeze()
    parent, children = os.getpid(), {}
    for number in range(2, args.workers + 1):
        pid = os.fork()
        if pid == 0:  # a worker: never returns
            code = 70
            try:
                _die_with_parent(parent)
                code = _serve_one(settings, args, serve, embedder, number, concurrency)
            except BaseException as exc:  # noqa: BLE001  (one line, then this process ends)
                code = fail(exc) if isinstance(exc, Exception) else 0
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children[pid] = number
    # Only now does this process open the index (faiss): the others were forked before.
    print(f"{args.workers} workers on ports {args.port}–{args.port + args.workers - 1}", flush=True)
    _watch(children)
    return _serve_one(settings, args, serve, embedder, 1, concurrency)


def _serve_one(settings, args, serve, embedder, number: int, concurrency: int) -> int:
    """Worker ``number`` (1-based): open the index, serve on port PORT + number - 1."""
    from ..pipeline import open_engine

    engine = open_engine(settings, embedder=embedder)
    port = args.port + number - 1
    print(f"worker {number}: port {port}, {len(engine.documents)} documents", flush=True)
    return serve(engine, settings, args, port, concurrency)
