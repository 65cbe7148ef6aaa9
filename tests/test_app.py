"""The web chat: rendering (escaping, exact highlights) and real HTTP round trips.

The round trips start ``app.py`` as a subprocess on a free loopback port, with the real
model and a copy of the session's seed index (``seed_index`` in conftest.py), and talk to
it with ``gradio_client`` exactly as a user's script would.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

# The client side of the tests must not call home either.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

from qa.data import Answer, Quote  # noqa: E402
from qa.serve.web import (  # noqa: E402
    NO_ANSWER_LEAD,
    escape_html,
    escape_markdown,
    invisible_characters,
    passage,
    render_citations,
    render_reply,
    render_source,
)

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
CECOT = "How many people can CECOT hold?"
OUT_OF_SCOPE = "Who won the 2022 FIFA World Cup?"


# ---------------------------------------------------------------- a running app (shared helpers)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """``python app.py`` on a free loopback port; ``url`` once it answers, ``stop()`` at the end."""

    def __init__(
        self, index: Path, docs: Path, log: Path, extra: list[str] | None = None, port: int | None = None
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = log
        self._log = open(log, "wb")
        cmd = [
            sys.executable,
            str(ROOT / "app.py"),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--index",
            str(index),
            "--docs",
            str(docs),
            *(extra or []),
        ]
        env = dict(os.environ, GRADIO_TEMP_DIR=str(log.parent / "gradio-tmp"), PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-4000:]

    def wait(self, timeout: float = 240) -> "AppServer":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app.py exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url, timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"app.py did not answer within {timeout} s:\n{self.log()}")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # only the group this test started
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(15)
        self._log.close()


def start_app(tmp_path_factory, name: str, index: Path, docs: Path = SEEDS, copy: bool = True) -> AppServer:
    """app.py on ``docs`` with a private copy of ``index`` (or ``index`` itself, built if missing)."""
    folder = tmp_path_factory.mktemp(name)
    if copy:
        shutil.copytree(index, folder / "index")
        index = folder / "index"
    return AppServer(index, docs, folder / "app.log").wait()


def client(url: str):
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False)


@pytest.fixture(scope="module")
def app(tmp_path_factory, seed_index):  # seed_index: the session's real-model seed index (conftest.py)
    server = start_app(tmp_path_factory, "app", seed_index)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api(app):
    return client(app.url)


# ---------------------------------------------------------------- round trips (real model, real HTTP)


@pytest.mark.slow
def test_cecot_answer_has_quote_and_citation(api):
    reply = api.predict(CECOT, api_name="/chat")
    assert isinstance(reply, str)
    assert "40,000" in reply
    first = reply.split("\n\n")[1]  # the first quote, right after the lead line
    assert first.startswith("[1] “") and "40,000" in first
    # The Sources list names the article, outlet, paragraph and exact characters.
    assert "**Sources**" in reply
    found = re.search(
        r"- \[1\] \*Why is Trump trying to ship US citizens and immigrants to El Salvador\?\*, Daily Kos, "
        r"paragraph 9, characters 1329–(\d+)",
        reply.replace("\\", ""),
    )
    assert found, reply
    # The quote starts with the 40,000 sentence (1329–1413) and may go on with the next one.
    end = int(found.group(1))
    assert end >= 1413
    text = (SEEDS / "001_38b38ab778929121.txt").read_text(encoding="utf-8")
    # The answer phrase is marked in bold inside the quote: the words are the document's.
    assert f"“{' '.join(text[1329:end].split())}”" in reply.replace("\\", "").replace("**", "")
    assert "**40,000**" in reply


@pytest.mark.slow
def test_out_of_scope_question_says_the_articles_dont_say(api):
    reply = api.predict(OUT_OF_SCOPE, api_name="/chat")
    assert reply.startswith(f"**{NO_ANSWER_LEAD}**")
    assert "You may look at" in reply and "[1]" in reply  # the closest passages are still offered


@pytest.mark.slow
@pytest.mark.parametrize("question", ["", "   \n\t ", "x" * 5000])
def test_unanswerable_input_gets_a_clear_message_and_app_stays_up(api, app, question):
    reply = api.predict(question, api_name="/chat")
    assert reply.startswith("**Sorry, I can't answer that:**")
    assert ("empty question" in reply) or ("too long" in reply)
    assert "Traceback" not in reply
    assert app.alive()
    assert "40,000" in api.predict(CECOT, api_name="/chat")


@pytest.mark.slow
def test_chat_is_the_only_public_endpoint(api):
    endpoints = api.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert list(endpoints) == ["/chat"]
    params = endpoints["/chat"]["parameters"]
    assert [p["parameter_name"] for p in params] == ["message"]


@pytest.mark.slow
def test_page_and_theme_load_nothing_from_other_hosts(app):
    """The served page and theme CSS name no font service or CDN (the browser test checks requests)."""
    for path in ("", "theme.css", "config"):
        with urllib.request.urlopen(app.url + path, timeout=10) as r:
            body = r.read().decode("utf-8", errors="replace")
        assert "fonts.googleapis" not in body and "fonts.gstatic" not in body, path
        assert "cdn.jsdelivr" not in body and "unpkg.com" not in body, path


@pytest.mark.slow
def test_bad_index_folder_is_one_line_error_and_left_untouched(tmp_path):
    foreign = tmp_path / "my-files"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me", encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "app.py", "--index", str(foreign), "--port", str(free_port())],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("app.py: error: --index") and "not an index folder" in lines[0]
    assert (foreign / "notes.txt").read_text(encoding="utf-8") == "keep me"

    run = subprocess.run(
        [
            sys.executable,
            "app.py",
            "--index",
            str(tmp_path / "new"),
            "--docs",
            str(tmp_path / "nope"),
            "--port",
            str(free_port()),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1
    assert run.stderr.strip().count("\n") == 0 and "document folder not found" in run.stderr, run.stderr


def session_processes(sid: int) -> list[int]:
    """The processes of session ``sid`` still running (zombies excluded)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":  # fields: state, ppid, pgrp, session
            out.append(int(stat.parent.name))
    return out


def serving(port: int) -> bool:
    """Whether the page answers on ``port`` now."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.2)


def workers_answer(server: AppServer) -> None:
    """Wait until ``app.py --workers 2`` serves, and ask the CECOT question as many times as it
    has answering slots (``--concurrency 1``: one each), so that both processes answer once
    (tests/test_workers.py checks that the pool hands questions round)."""
    server.wait()
    wait_for(lambda: "worker 2: answering" in server.log(), 120, "the forked worker answers")
    for _ in range(2):
        reply = client(server.url).predict(CECOT, api_name="/chat")
        assert "40,000" in reply, reply[:300]


@pytest.mark.slow
@pytest.mark.parametrize("stop", ["SIGTERM", "SIGKILL", "second worker killed"])
def test_forked_workers_each_answer_and_end_with_their_parent(tmp_path_factory, seed_index, stop):
    """``--workers 2``: the process that loaded the models serves the page and has forked a
    second answering worker, both reading the one index folder; stopping the server (SIGTERM)
    ends them all, and so does killing it (SIGKILL: nothing can forward anything), and so
    does the death of the worker."""
    folder = tmp_path_factory.mktemp("workers")
    shutil.copytree(seed_index, folder / "index")
    server = AppServer(folder / "index", SEEDS, folder / "app.log", extra=["--workers", "2", "--concurrency", "1"])
    port = server.port
    try:
        workers_answer(server)
        assert len(session_processes(server.proc.pid)) == 2, server.log()  # the first worker and the one it forked
        if stop.startswith("SIG"):
            server.proc.send_signal(getattr(signal, stop))  # the first worker only
        else:
            (second,) = [p for p in session_processes(server.proc.pid) if p != server.proc.pid]
            os.kill(second, signal.SIGKILL)
        wait_for(lambda: not session_processes(server.proc.pid), 60, "every worker ended")
        assert not serving(port)
        assert server.proc.wait(10) is not None and "Traceback" not in server.log()
        if not stop.startswith("SIG"):
            assert "worker 2 ended (exit status -9); stopping the others" in server.log()
    finally:
        server.stop()


@pytest.mark.slow
def test_forked_workers_build_a_missing_index_first(tmp_path, monkeypatch):
    """No index yet: it is built (in a process of its own: the one that forks never runs
    faiss), then both workers answer from it."""
    monkeypatch.setenv("QA_MODEL", "hash-256")  # the tests' embedder (QA_PLUGINS: conftest)
    server = AppServer(tmp_path / "index", SEEDS, tmp_path / "app.log", extra=["--workers", "2", "--concurrency", "1"])
    try:
        workers_answer(server)
        log = server.log()
        assert "building (no index at" in log and "2 answering workers (this process and 1 forked)" in log, log
        assert (tmp_path / "index" / "manifest.json").is_file() and "Traceback" not in log
    finally:
        server.stop()


def test_workers_must_be_a_positive_count_and_port_a_port():
    from qa.serve.app import parse_args

    assert parse_args(["--workers", "3"]).workers == 3
    assert parse_args(["--port", "65535", "--workers", "2"]).port == 65535  # one port, whatever N
    for bad in (["--workers", "0"], ["--port", "65536"], ["--port", "0"]):
        with pytest.raises(SystemExit):
            parse_args(bad)


# ---------------------------------------------------------------- rendering (no model)

HOSTILE = (
    'Keeper <script>window.__pwned=1</script> drew <img src=x onerror="window.__pwned=1"> and '
    "[click](javascript:window.__pwned=1) and ![](https://evil.example/pixel.png) "
    "**bold** `code` ~~gone~~ $$x$$ &lt;b&gt; <http://evil.example/a> https://evil.example/b "
    "www.evil.example keeper@evil.example \\*esc\\* | a | b |"
)


def _markdown_html(text: str) -> str:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(text)


def test_escape_markdown_shows_hostile_text_literally():
    out = _markdown_html(escape_markdown(HOSTILE))
    assert out.startswith("<p>") and out.endswith("</p>\n")
    inner = out[3:-5]
    # Nothing became markup: the only tags are the paragraph's own.
    assert "<" not in inner.replace("&lt;", "")
    assert html.unescape(inner) == HOSTILE
    # GFM autolinks (bare URLs, www., e-mail) are broken by escapes the renderer drops.
    esc = escape_markdown(HOSTILE)
    assert "https\\://" in esc and "www\\." in esc and "keeper\\@" in esc


@pytest.mark.parametrize(
    "text", ["# heading", "- item", "+ item", "1. first", "2) second", "> quote", "=== x", "    code"]
)
def test_escape_markdown_starts_no_block(text):
    out = _markdown_html(escape_markdown(text))
    assert out.startswith("<p>") and html.unescape(out[3:-5]) == text.strip()


def test_escape_markdown_folds_line_breaks_only():
    assert escape_markdown("a\n\n# b\r\n- c\u2028d") == "a # b - c d"
    zw = "zero\u200bwidth\u200c\u200d\ufeff مرحبا שלום \u202eexe\u202c"
    assert escape_markdown(zw) == zw


def test_escape_html_neutralises_tags_and_attributes():
    out = escape_html(HOSTILE)
    assert "<" not in out and ">" not in out and '"' not in out
    assert html.unescape(out) == HOSTILE


def _quote(
    text: str, start: int, end: int, paragraph: int = 2, title: str = "T <i>x</i>", outlet: str = "O&O"
) -> Quote:
    return Quote("doc", start, end, text[start:end], 0.9, title, outlet, paragraph)


DOC = "First paragraph.\n\n" + "Before it. " + HOSTILE + " After it.\n\nLast one."


def test_render_source_highlights_exact_characters_and_escapes():
    start = DOC.index("Keeper")
    end = start + len(HOSTILE)
    para = (DOC.index("Before"), DOC.index("\n\nLast"))
    q = _quote(DOC, start, end)
    out = render_source(3, q, DOC, para, turn=7)
    assert 'id="qa-t7-s3"' in out and 'href="#qa-t7-s3"' in out
    mark = re.search(r'<mark data-start="(\d+)" data-end="(\d+)">(.*?)</mark>', out, re.S)
    assert (int(mark[1]), int(mark[2])) == (start, end)
    assert html.unescape(mark[3]) == DOC[start:end] == q.text
    body = re.search(r'<blockquote class="qa-para" dir="auto">(.*?)</blockquote>', out, re.S)[1]
    assert html.unescape(re.sub(r"</?mark[^>]*>", "", body)) == DOC[para[0] : para[1]]
    # Only our own tags survive; the document's are text.
    tags = set(re.findall(r"<([a-z0-9]+)", out))
    assert tags <= {"article", "h4", "a", "cite", "p", "span", "blockquote", "mark"}
    assert "T &lt;i&gt;x&lt;/i&gt;" in out and "O&amp;O" in out


def test_invisible_characters_are_named_beside_the_quote():
    text = "ferry zero\u200bwidth code \u202eexe.txt\u202c"
    assert invisible_characters(text) == [
        "U+200B ZERO WIDTH SPACE",
        "U+202E RIGHT-TO-LEFT OVERRIDE",
        "U+202C POP DIRECTIONAL FORMATTING",
    ]
    out = render_source(1, _quote(text, 0, len(text)), text, (0, len(text)), turn=1)
    assert '<p class="qa-warn">The quote holds invisible characters: U+200B ZERO WIDTH SPACE, ' in out
    assert invisible_characters("plain text, عربي, עברית") == []


def test_passage_cuts_long_context_but_never_the_quote():
    text = "word " * 2000 + "THE QUOTE ITSELF." + " tail" * 2000
    start = text.index("THE")
    end = start + len("THE QUOTE ITSELF.")
    p = passage(text, (0, len(text)), start, end, context=100)
    assert p.quote == text[start:end]
    assert p.cut_before and p.cut_after
    assert text[start - len(p.before) : start] == p.before and text[end : end + len(p.after)] == p.after
    assert len(p.before) <= 100 and len(p.after) <= 100


def test_render_reply_and_citations():
    start = DOC.index("Keeper")
    q = _quote(DOC, start, start + len(HOSTILE))
    answered = Answer("q?", True, (q,))
    md = render_reply(answered)
    assert md.startswith("**From the articles:**")
    assert f"[1] “{escape_markdown(HOSTILE)}”" in md
    assert "- [1] *T \\<i\\>x\\</i\\>*, O\\&O, paragraph 2, characters " in md
    ui = render_reply(answered, turn=4)
    assert "[[1]](#qa-t4-s1) “" in ui and "- [[1]](#qa-t4-s1) *T" in ui
    perhaps = render_reply(Answer("q?", True, (q,), confidence=0.2, tentative=True))
    assert perhaps.startswith("**Perhaps from the articles** (the closest match, but it may not answer exactly")
    assert f"[1] “{escape_markdown(HOSTILE)}”" in perhaps
    abstain = render_reply(Answer("q?", False, (q,), message="..."))
    assert abstain.startswith(f"**{NO_ANSWER_LEAD}** You may look at")
    assert render_reply(Answer("q?", False, ())).startswith(f"**{NO_ANSWER_LEAD}**")
    assert render_citations(answered) == f"[1] “{HOSTILE}” — {q.citation()}"
