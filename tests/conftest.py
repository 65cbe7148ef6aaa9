"""Shared fixtures: seed indexes built once per session (fake embedder and the real model)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# The tests' doubles (the hash-N embedder, Ray fault injection: tests/doubles.py) are
# registered here, and through QA_PLUGINS in every process the tests start (CLI, app, Ray workers).
_plugins = [p for p in os.environ.get("QA_PLUGINS", "").split(",") if p]
os.environ["QA_PLUGINS"] = ",".join(dict.fromkeys([*_plugins, "tests.doubles"]))

from . import doubles  # noqa: E402,F401

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
SEED_QA = ROOT / "eval" / "seeds.jsonl"


def run_qa(
    *args: str, stdin: str | bytes | None = None, env: dict | None = None, cwd: Path = ROOT, timeout: float = 300
) -> subprocess.CompletedProcess:
    """``python -m qa ARGS`` as a user runs it (a subprocess of this checkout's package);
    output decoded as text even when it is not valid UTF-8 (stdin may be bytes)."""
    proc = subprocess.run(
        [sys.executable, "-m", "qa", *args],
        input=stdin.encode("utf-8") if isinstance(stdin, str) else stdin,
        capture_output=True,
        env=env or dict(os.environ, PYTHONPATH=str(ROOT)),
        cwd=cwd,
        timeout=timeout,
    )
    proc.stdout = proc.stdout.decode("utf-8", "replace")
    proc.stderr = proc.stderr.decode("utf-8", "replace")
    return proc


def index_command(docs: Path, index: Path, *extra: str) -> list[str]:
    """``python -m qa index`` of ``docs`` into ``index`` with the fast test embedder, as an
    argument list for the tests that start (and kill, or race) the command themselves."""
    return [
        sys.executable,
        "-m",
        "qa",
        "index",
        "--docs",
        str(docs),
        "--index",
        str(index),
        "--model",
        "hash-256",
        *extra,
    ]


def cli(*args: str, stdin: str | bytes | None = None) -> subprocess.CompletedProcess:
    """``qa ARGS`` run in this process (``qa.serve.cli.main``): the same exit status, stdout and
    stderr as :func:`run_qa` gives, without starting Python again.  End-to-end checks of the
    installed command (environment, signals, strace) use :func:`run_qa`."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from qa.serve.cli import main

    data = stdin.encode("utf-8") if isinstance(stdin, str) else (stdin or b"")
    out, err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8"), io.StringIO()
    saved = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse's usage errors
                code = exc.code if isinstance(exc.code, int) else 2
            out.flush()
    finally:
        sys.stdin = saved
    text = out.buffer.getvalue().decode("utf-8", "replace")
    return subprocess.CompletedProcess(["qa", *args], code, text, err.getvalue())


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The one ``error: ...`` line a failed command printed (notes on skipped files aside)."""
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if not line.startswith("skipped ")]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture(scope="session")
def fake_engine(tmp_path_factory):
    """The seeds indexed with the hash embedder: fast, deterministic, no model."""
    from .doubles import HashEmbedder
    from qa.pipeline import build_index, open_engine
    from qa.settings import Settings

    settings = Settings(docs=SEEDS, index=tmp_path_factory.mktemp("fake") / "index")
    build_index(settings, embedder=HashEmbedder(256))
    return open_engine(settings, embedder=HashEmbedder(256))


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory) -> Path:
    """The seeds indexed with the real bundled model (built once per session)."""
    from qa.pipeline import build_index
    from qa.settings import Settings

    settings = Settings(docs=SEEDS, index=tmp_path_factory.mktemp("real") / "index")
    build_index(settings)
    return settings.index


@pytest.fixture(scope="session")
def engine(seed_index):
    from qa.pipeline import open_engine
    from qa.settings import Settings

    return open_engine(Settings(docs=SEEDS, index=seed_index), docs=SEEDS)
