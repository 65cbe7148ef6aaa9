"""The web chat server (``qa-web``, ``python app.py``): builds the index of ``--docs`` into
``--index`` on first start (or when the documents changed), then serves the chat page.
Nothing is fetched from the network (the offline switches are set by ``import qa``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import qa  # noqa: F401  (offline switches, before gradio or huggingface_hub are imported)
from qa.errors import SettingsError

# Gradio's working files (uploads are refused, but it still keeps a cache folder) stay beside
# the index the chat serves, not in the system temp folder.
os.environ.setdefault("GRADIO_TEMP_DIR", str(Path.cwd() / ".gradio"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


PROG = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "qa-web"


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Web chat: cited, verbatim answers from a folder of articles.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--index", type=Path, default=Path("index"), help="index folder (default index; built if missing)")
    p.add_argument(
        "--docs", type=Path, default=Path("seeds"), help="document folder the index is built from (default seeds)"
    )
    p.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="questions answered at once by each worker (default: the CPU cores, shared by the workers)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="answering processes (default 1). N > 1: the models are loaded once and N - 1 workers forked that "
        "share them and the index's pages; the one server on PORT hands each question to a free worker",
    )
    args = p.parse_args(argv)
    if args.workers < 1:
        p.error("--workers must be at least 1")
    if not 0 < args.port < 65536:
        p.error(f"--port {args.port}: not a port number")
    if args.concurrency is not None and args.concurrency < 1:
        p.error("--concurrency must be at least 1")
    return args


def refuse_foreign_folder(index: Path) -> None:
    """Building replaces the --index folder: refuse one that holds something other than an index."""
    if index.exists() and not index.is_dir():
        raise SettingsError(f"--index {index}: is a file, not an index folder")
    if index.is_dir() and not (index / "manifest.json").exists():
        others = [p.name for p in index.iterdir() if p.name != "README.md"]
        if others:
            raise SettingsError(
                f"--index {index}: not an index folder (no manifest.json) and not empty; "
                "refusing to replace it (choose an empty or new folder)"
            )


def fail(exc: BaseException) -> int:
    """One line for an error at start-up; the exit status (1: the user's to fix, 70: a bug)."""
    from qa.errors import QAError
    from qa.serve.cli import one_line

    if os.environ.get("QA_DEBUG", "") not in ("", "0"):
        raise exc
    print(f"{PROG}: error: {one_line(exc)}", file=sys.stderr)
    return 1 if isinstance(exc, (QAError, OSError)) else 70


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from qa.pipeline import ensure_index
    from qa.settings import Settings

    try:
        # One torch thread per encode (QA_THREADS overrides): see "Concurrency" below.
        threads = None if "QA_THREADS" in os.environ else 1
        settings = Settings.from_env(index=args.index, docs=args.docs, threads=threads)
        refuse_foreign_folder(settings.index)
        if args.workers > 1:
            from qa.serve.workers import serve_forked

            return serve_forked(settings, args, serve)
        engine, action = ensure_index(settings, progress=False)
    except Exception as exc:  # QAError, OSError: the user's to fix; anything else: a bug, also one line
        return fail(exc)
    print(f"index {settings.index}/: {action} ({len(engine.documents)} documents from {settings.docs}/)", flush=True)
    return serve(engine, settings, args, args.port, args.concurrency or usable_cores())


def serve(engine, settings, args: argparse.Namespace, port: int, concurrency: int) -> int:
    """Serve the chat over ``engine`` on ``port`` until stopped; the exit status."""
    try:
        engine.ask("warm up")  # loads lazy tables; sets the tokenizer's padding once, before threads share it
    except Exception as exc:
        return fail(exc)

    # Concurrency.  A question costs one short query encode (MiniLM) plus NumPy/faiss/BM25
    # scoring; all of it only reads the engine (faiss/NumPy/bm25s reads are thread-safe; the
    # tokenizer is safe once its padding is set, which the warm-up above did).  Torch's own
    # intra-op threads make concurrent encodes fight over the cores: measured on this 2-core
    # machine, 4 requests x 2 torch threads gave 48 q/s, worse than serial (58 q/s), and under
    # outside load one encode with 2 threads took 160-240 ms against 40-50 ms with 1.  So each
    # encode runs on one thread (settings.threads above) and N = the number of cores: 2 x 1
    # thread = 80 q/s in process.  More concurrent requests only add contention; the rest
    # wait in Gradio's queue (benchmarks/load.py: 1 -> 9.1, 2 -> 11.1, 4 -> 11.5 answers/s).
    from qa.serve.web import app_kwargs, build_app, launch_options

    demo = build_app(engine, settings).queue(default_concurrency_limit=concurrency)
    print(f"answering up to {concurrency} questions at once", flush=True)
    try:
        demo.launch(server_name=args.host, server_port=port, app_kwargs=app_kwargs(demo), **launch_options())
    except OSError as exc:  # port taken, address not available
        print(f"{PROG}: error: cannot serve on {args.host}:{port}: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0
