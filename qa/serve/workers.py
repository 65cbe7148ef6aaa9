"""``qa-web --workers N``: the models loaded once, N serving processes forked that share them.

Separate replicas each hold their own copy of Python's libraries, Gradio, the reader and
the query encoder (~230 MB a process, whatever the index's size). Here one process loads
those, then forks the workers: the pages stay shared copy-on-write, and each worker opens
the memory-mapped index itself, after the fork (faiss 1.15 crashes in a child that searches
a memory-mapped IVF index its parent had searched, so this process never touches faiss).
Worker i serves on port PORT + i; a load balancer with sticky sessions goes in front (a
chat's event stream and its requests must reach the same worker: README, "Serving many
users"). A stop signal reaches every worker; a worker that ends ends the others.
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
    from ..index import IndexProblem, read_manifest, stale_reason

    try:
        manifest = read_manifest(settings.index)
    except IndexProblem as exc:
        return str(exc)
    if settings.model != Settings().model and settings.model != manifest["model"]["name"]:
        return f"built with {manifest['model']['name']}"
    return stale_reason(manifest, settings.docs)


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


def _die_with_parent() -> None:
    """Linux: this worker gets SIGTERM when the process that forked it dies (even by SIGKILL)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def serve_forked(settings: Settings, args: argparse.Namespace, serve: Callable[..., int]) -> int:
    """Serve the chat from ``args.workers`` forked workers (``serve(engine, settings, args,
    port, concurrency)`` in each); returns when they have all ended."""
    from ..answer.reader import shipped_reader
    from ..index import read_manifest
    from ..index.embedding import load_embedder
    from ..pipeline import open_engine
    from .app import fail, usable_cores

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
    children: dict[int, int] = {}
    for i in range(args.workers):
        pid = os.fork()
        if pid == 0:  # a worker: never returns
            code = 70
            try:
                _die_with_parent()
                engine = open_engine(settings, embedder=embedder)
                print(f"worker {i + 1}: port {args.port + i}, {len(engine.documents)} documents", flush=True)
                code = serve(engine, settings, args, args.port + i, concurrency)
            except BaseException as exc:  # noqa: BLE001  (one line, then this process ends)
                code = fail(exc) if isinstance(exc, Exception) else 0
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children[pid] = i
    print(f"{args.workers} workers on ports {args.port}–{args.port + args.workers - 1}", flush=True)
    return _supervise(children)


def _supervise(children: dict[int, int]) -> int:
    """Wait for the workers; a stop signal goes to all of them, and the first to end ends the
    rest.  The exit status: the first worker's that failed, else 0."""

    def stop(signum=signal.SIGTERM, frame=None) -> None:
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    status = 0
    while children:
        try:
            pid, raw = os.wait()
        except ChildProcessError:
            break
        children.pop(pid, None)
        code = os.waitstatus_to_exitcode(raw)
        if code not in (0, -signal.SIGTERM) and not status:
            status = code if code > 0 else 1
        stop()
    return status
