"""Security: the documents folder is a boundary, nothing leaves the machine, the web API
takes only what the page needs (issue 12).

Each test reproduces an attack that once worked:

* a symbolic link in the documents folder leading out of it (to ``/etc/passwd``, to a
  folder elsewhere) was indexed and quoted;
* ``import onnxruntime`` started Microsoft's 1DS telemetry (a SQLite queue under
  ``~/.cache/Microsoft/DeveloperTools`` at once, DNS lookups of
  ``mobile.events.data.microsoft.com`` ~10 s later) — the CLI and the app both load it;
* ``/gradio_api/upload`` accepted files though the app has no upload; a 1 MB question
  was read whole (and memory grew with every one); a request with missing or extra
  parameters got an HTTP 500 with a traceback in the server log.

No-network checks run the real entry points under ``strace`` (every connect/sendto is
recorded, so a lookup shows even when it would fail) and, for the CLI, in a network
namespace with no interface but loopback (``unshare -n``, root).  Where strace is
missing a Python-level socket guard (sitecustomize) fails any non-loopback connect or
name lookup instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .conftest import ROOT, SEEDS, run_qa as qa

CECOT = "How many people can CECOT hold?"
TELEMETRY_DIR = Path("Microsoft") / "DeveloperTools"


# ---------------------------------------------------------------- 1. the documents folder is a boundary


@pytest.fixture()
def linked_folder(tmp_path):
    """A documents folder with one real article and links leading out of it."""
    docs, outside = tmp_path / "docs", tmp_path / "outside"
    (docs / "sub").mkdir(parents=True)
    outside.mkdir()
    shutil.copy(SEEDS / "001_38b38ab778929121.txt", docs / "article.txt")
    secret = "The vault combination is 4417 and the password is swordfish. Nobody outside may read this."
    (outside / "secret.txt").write_text(secret + "\n", encoding="utf-8")
    (outside / "nested").mkdir()
    (outside / "nested" / "more.md").write_text(secret + "\n", encoding="utf-8")
    (docs / "passwd.txt").symlink_to("/etc/passwd")  # absolute link out
    (docs / "sub" / "secret.txt").symlink_to(Path("..") / ".." / "outside" / "secret.txt")  # relative link out
    (docs / "elsewhere").symlink_to(outside, target_is_directory=True)  # a folder out
    (docs / "loop").symlink_to(docs, target_is_directory=True)  # a folder loop
    (docs / "alias.txt").symlink_to("article.txt")  # inside: allowed
    return docs, secret


def test_symlinks_out_of_the_documents_folder_are_not_followed(linked_folder, tmp_path):
    from qa.ingest.corpus import scan

    docs, secret = linked_folder
    documents, skipped = scan(docs)
    assert sorted(d.doc_id for d in documents) == ["alias", "article"]
    assert not any(secret[:20] in d.text or "root:" in d.text for d in documents)
    reasons = {s.path: s.reason for s in skipped}
    assert set(reasons) == {"passwd.txt", "sub/secret.txt", "elsewhere", "loop"}
    assert "outside the document folder" in reasons["passwd.txt"]
    assert "outside the document folder" in reasons["sub/secret.txt"]
    assert "folder outside" in reasons["elsewhere"] and "not followed" in reasons["loop"]

    # Through the CLI: the skips are said, `show` and `ask` never reach the secret.
    index = tmp_path / "index"
    proc = qa("index", "--docs", str(docs), "--index", str(index), "--model", "hash-256")
    assert proc.returncode == 0, proc.stderr
    assert "skipped passwd.txt: a symbolic link to a file outside the document folder" in proc.stderr
    assert "skipped elsewhere: a symbolic link to a folder outside" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert qa("show", "passwd", "--index", str(index)).returncode == 2
    answer = qa(
        "ask", "What is the vault combination and password?", "--index", str(index), "--docs", str(docs), "--json"
    )
    assert answer.returncode == 0, answer.stderr
    assert "swordfish" not in answer.stdout and "root:x" not in answer.stdout
    listing = json.loads(qa("docs", "--index", str(index), "--json").stdout)
    assert {s["path"] for s in listing["skipped"]} == {"passwd.txt", "sub/secret.txt", "elsewhere", "loop"}
    # The refused links are part of the folder's fingerprint: a second run sees nothing new.
    again = qa("index", "--docs", str(docs), "--index", str(index), "--model", "hash-256")
    assert " 0 added, 0 changed, 0 removed, 2 unchanged" in again.stdout, again.stdout


def test_a_link_swapped_in_after_the_walk_is_not_followed(tmp_path):
    """The check and the read are one: each path component is opened without following links."""
    from qa.ingest.corpus import read_inside, walk

    docs = tmp_path / "docs"
    (docs / "a").mkdir(parents=True)
    (docs / "a" / "doc.txt").write_text("A sentence of the article.\n", encoding="utf-8")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "doc.txt").write_text("Outside text.\n", encoding="utf-8")
    files, refused = walk(docs)
    assert [f.name for f in files] == ["doc.txt"] and not refused
    # The folder becomes a link out between the walk and the read.
    shutil.rmtree(docs / "a")
    (docs / "a").symlink_to(tmp_path / "out", target_is_directory=True)
    with pytest.raises(OSError):
        read_inside(docs, files[0])
    # A file replaced by a FIFO: refused at once instead of blocking the build.
    os.unlink(docs / "a")
    (docs / "a").mkdir()
    os.mkfifo(docs / "a" / "doc.txt")
    with pytest.raises(OSError):
        read_inside(docs, files[0])


def test_catalog_link_out_of_the_folder_is_refused(tmp_path):
    from qa.ingest.corpus import CorpusError, scan

    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(SEEDS / "001_38b38ab778929121.txt", docs)
    (tmp_path / "cat.json").write_text('{"001_38b38ab778929121": {"title": "Injected"}}', encoding="utf-8")
    (docs / "catalog.json").symlink_to(tmp_path / "cat.json")
    with pytest.raises(CorpusError, match="catalog.json: cannot be read .*outside"):
        scan(docs)


# ---------------------------------------------------------------- 2. nothing leaves the machine

STRACE = shutil.which("strace")
_INET = re.compile(r'sa_family=AF_INET6?, .*?(?:inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)")')


def _loopback(address: str) -> bool:
    return address.startswith("127.") or address in ("::1", "::ffff:127.0.0.1", "0.0.0.0", "::")


def outbound(trace: Path) -> list[str]:
    """The non-loopback connect/sendto calls recorded in an strace log."""
    bad = []
    for line in trace.read_text(errors="replace").splitlines():
        m = _INET.search(line)
        if m and not _loopback(m.group(1) or m.group(2)):
            bad.append(line.strip())
    return bad


def _unshare_ok() -> bool:
    if not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


# A Python-level guard for machines without strace: any non-loopback connect or name lookup
# fails the process (and is written to QA_NET_LOG).
GUARD = textwrap.dedent(
    """
    import os, socket
    _log = os.environ["QA_NET_LOG"]
    def _ok(host):
        return isinstance(host, str) and (host in ("localhost", "::1", "") or host.startswith("127."))
    def _refuse(what):
        with open(_log, "a") as f:
            f.write(what + "\\n")
        raise OSError("network use refused by the test guard: " + what)
    _connect, _getaddrinfo = socket.socket.connect, socket.getaddrinfo
    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _ok(address[0]):
            _refuse("connect %r" % (address,))
        return _connect(self, address)
    def getaddrinfo(host, *a, **k):
        if not _ok(host if not isinstance(host, bytes) else host.decode()):
            _refuse("getaddrinfo %r" % (host,))
        return _getaddrinfo(host, *a, **k)
    socket.socket.connect, socket.getaddrinfo = connect, getaddrinfo
    """
)


def watched(cmd: list[str], tmp: Path, env: dict, isolate: bool = True) -> tuple[list[str], Path]:
    """``cmd`` wrapped to record network use: (wrapped command, log file).  With strace the
    log is its trace; else a sitecustomize guard's log.  ``isolate``: also no network at all
    (``unshare -n``, loopback up) where permitted."""
    log = tmp / "net.log"
    # --seccomp-bpf: the traced programs stop only at the traced calls (Ray's many threads
    # would otherwise stop at every system call).
    if STRACE:
        wrapped = [
            STRACE,
            "-f",
            "-qq",
            "--seccomp-bpf",
            "-e",
            "trace=connect,sendto,sendmsg,sendmmsg",
            "-o",
            str(log),
            *cmd,
        ]
    else:
        guard = tmp / "guard"
        guard.mkdir(exist_ok=True)
        (guard / "sitecustomize.py").write_text(GUARD)
        env["PYTHONPATH"] = os.pathsep.join([str(guard), env.get("PYTHONPATH", "")])
        env["QA_NET_LOG"] = str(log)
        wrapped = cmd
    if isolate and _unshare_ok():
        wrapped = ["unshare", "-n", "sh", "-c", 'ip link set lo up 2>/dev/null; exec "$@"', "sh", *wrapped]
    return wrapped, log


def network_use(log: Path) -> list[str]:
    if not log.exists():
        return []
    return outbound(log) if STRACE else log.read_text().splitlines()


def clean_env(home: Path) -> dict:
    """The user's environment as a shell gives it: no telemetry switches set by us, a fresh
    HOME (onnxruntime's telemetry queue would appear under it)."""
    # CI too: onnxruntime starts no telemetry when CI is set (as in this project's CI), which
    # would make every check here pass for the wrong reason.
    env = {k: v for k, v in os.environ.items() if k not in ("ORT_DISABLE_TELEMETRY", "DO_NOT_TRACK", "CI")}
    home.mkdir(parents=True, exist_ok=True)
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"), PYTHONPATH=str(ROOT))
    return env


def telemetry_files(home: Path) -> list[str]:
    return [str(p.relative_to(home)) for p in home.rglob("*") if "DeveloperTools" in p.parts]


def test_onnxruntime_alone_starts_its_telemetry(tmp_path):
    """The control: what the product must prevent does happen without it (onnxruntime 1.32
    creates its telemetry queue as its library loads)."""
    home = tmp_path / "home"
    env = clean_env(home)
    proc = subprocess.run(
        [sys.executable, "-c", "import onnxruntime"], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert telemetry_files(home), (
        "onnxruntime no longer starts telemetry at import: update this test and qa/__init__.py"
    )


def test_every_qa_module_imports_without_telemetry(tmp_path):
    """Import audit: whatever qa module a program starts from, onnxruntime (imported after it)
    starts no telemetry."""
    home = tmp_path / "home"
    files = sorted((ROOT / "qa").rglob("*.py"))
    modules = [".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__") for p in files]
    modules = [m for m in modules if not m.endswith("__main__")]
    code = "import importlib, sys\nfor m in sys.argv[1:]: importlib.import_module(m)\nimport onnxruntime"
    proc = subprocess.run(
        [sys.executable, "-c", code, *modules], env=clean_env(home), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert telemetry_files(home) == []
    # Each module alone, then onnxruntime: the switch is set by the package, not by one module.
    for module in ("index.embedding", "serve.cli", "serve.web", "pipeline"):
        proc = subprocess.run(
            [sys.executable, "-c", f"import qa.{module}, onnxruntime"],
            env=clean_env(home),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        assert telemetry_files(home) == [], module


def test_watcher_sees_a_cloud_metadata_probe(tmp_path):
    """The control for the Ray check below: Ray's own cloud probe (what its dashboard runs
    when ~/ray_bootstrap_config.yaml is missing) is seen by the watcher."""
    pytest.importorskip("ray")  # the [ray] extra: installed by `make dev`, so this runs in CI
    env = clean_env(tmp_path / "home")
    code = "from ray._common.usage.usage_lib import get_cloud_from_metadata_requests as probe; print(probe())"
    cmd, log = watched([sys.executable, "-c", code], tmp_path, env)
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "unknown", proc.stderr
    assert network_use(log), "the watcher no longer sees Ray's metadata probe"


@pytest.mark.slow
def test_ray_index_build_uses_no_network(tmp_path):
    """``qa index --engine ray`` starts a private Ray whose dashboard process probed
    169.254.169.254 and metadata.google.internal (usage stats disabled or not); now it
    builds with no connection leaving the machine."""
    pytest.importorskip("ray")
    env = clean_env(tmp_path / "home")
    env.update(RAY_USAGE_STATS_ENABLED="0")  # as the README's commands set it: the probe ran regardless
    cmd, log = watched(
        [
            sys.executable,
            "-m",
            "qa",
            "index",
            "--docs",
            str(SEEDS),
            "--index",
            str(tmp_path / "index"),
            "--engine",
            "ray",
            "--quiet",
        ],
        tmp_path,
        env,
    )
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "index" / "manifest.json").is_file()
    assert network_use(log) == []
    assert not (tmp_path / "home" / "ray_bootstrap_config.yaml").exists()  # the user's HOME is left alone


@pytest.mark.slow
def test_cli_index_and_ask_use_no_network(tmp_path, seed_index):
    """``qa index`` (torch model, ONNX export) and ``qa ask`` (ONNX query encoder) with no
    network: they work, open no connection and look up no name; no telemetry queue.  The
    ask batch keeps the process alive past onnxruntime's ~10 s upload delay."""
    home = tmp_path / "home"
    env = clean_env(home)
    docs = tmp_path / "docs"
    shutil.copytree(SEEDS, docs)
    shutil.copytree(seed_index, tmp_path / "index")
    # index: an update of the copied index after one document changed (loads the model, exports ONNX).
    with open(docs / "001_38b38ab778929121.txt", "a", encoding="utf-8") as f:
        f.write("\nA new closing paragraph was added to this article for the test.\n")
    cmd, log = watched(
        [sys.executable, "-m", "qa", "index", "--docs", str(docs), "--index", str(tmp_path / "index"), "--quiet"],
        tmp_path,
        env,
    )
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert network_use(log) == []
    log.unlink(missing_ok=True)
    # ask in batch mode, slowly: questions keep arriving for ~12 s after the model is loaded.
    feeder = f"import sys, time\nfor i in range(7):\n    print({CECOT!r}, flush=True); time.sleep(2)\n"
    script = f"{sys.executable} -c {shlex_quote(feeder)} | {sys.executable} -m qa ask --json --index {shlex_quote(str(tmp_path / 'index'))}"
    cmd, log = watched(["sh", "-c", script], tmp_path, env)
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    answers = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(answers) == 7 and all(any("40,000" in q["text"] for q in a["quotes"]) for a in answers)
    assert network_use(log) == []
    assert telemetry_files(home) == []


def shlex_quote(s: str) -> str:
    import shlex

    return shlex.quote(s)


# ---------------------------------------------------------------- 3. the web API takes questions only


def _post(url: str, body: bytes, content_type: str = "application/json", timeout: float = 60) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def hash_app(tmp_path_factory):
    """app.py over the seeds indexed with the test embedder (no model to load: starts fast)."""
    from .test_app import AppServer

    base = tmp_path_factory.mktemp("webguard")
    shutil.copytree(SEEDS, base / "docs")
    proc = qa("index", "--docs", str(base / "docs"), "--index", str(base / "index"), "--model", "hash-256")
    assert proc.returncode == 0, proc.stderr
    server = AppServer(base / "index", base / "docs", base / "app.log").wait()
    yield server
    server.stop()


@pytest.mark.slow
def test_uploads_are_refused(hash_app, tmp_path):
    gradio_tmp = Path(hash_app.log_path).parent / "gradio-tmp"
    boundary = "qa-test-boundary"
    payload = os.urandom(2_000_000)
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="x.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + payload
        + f"\r\n--{boundary}--\r\n".encode()
    )
    for route in ("gradio_api/upload", "gradio_api/upload/", "gradio_api/upload?upload_id=1", "upload"):
        status, reply = _post(hash_app.url + route, body, f"multipart/form-data; boundary={boundary}")
        assert status in (403, 404, 405), (route, status, reply[:200])
    small = body.replace(payload, b"hello")
    status, _ = _post(hash_app.url + "gradio_api/upload", small, f"multipart/form-data; boundary={boundary}")
    assert status == 403
    stored = [p for p in gradio_tmp.rglob("*") if p.is_file()] if gradio_tmp.exists() else []
    assert not any(p.stat().st_size in (2_000_000, 5) for p in stored), stored


@pytest.mark.slow
def test_missing_or_extra_parameters_are_a_clear_400(hash_app):
    url = hash_app.url + "gradio_api/"
    cases = [
        ("call/v2/chat", {"data": []}, "missing parameter 'message'"),
        ("call/v2/chat", {"message": "What is CECOT?", "k": 3}, "unknown parameter 'k'"),
        ("call/v2/chat", {}, "missing parameter 'message'"),
        ("run/chat", {"data": ["a", "b"]}, "gives 2 value(s)"),
        ("run/chat", {"data": []}, "gives 0 value(s)"),
        ("call/chat", {"data": ["a", "b", "c"]}, "gives 3 value(s)"),
        ("run/chat", {"question": "x"}, 'needs "data"'),
        ("run/nope", {"data": ["x"]}, "no API endpoint named 'nope'"),
        ("queue/join", {"fn_index": 5000, "data": [], "session_hash": "x"}, "names no event"),
    ]
    for route, body, expected in cases:
        status, reply = _post(url + route, json.dumps(body).encode())
        assert status in (400, 404), (route, body, status, reply[:300])
        assert expected in json.loads(reply)["error"], (route, reply)
    status, reply = _post(url + "run/chat", b"{not json")
    assert status in (400, 422), reply
    # The right call still answers.
    status, reply = _post(url + "run/chat", json.dumps({"data": [CECOT]}).encode())
    assert status == 200 and "40,000" in reply.decode()
    assert hash_app.alive()
    assert "Traceback" not in hash_app.log()


@pytest.mark.slow
def test_big_requests_are_refused_early_with_bounded_memory(hash_app):
    """200 POSTs of a 1 MB question: each refused (413) before Gradio reads it, and the
    server's memory does not grow with them (it grew ~1 MB per request before)."""
    url = hash_app.url + "gradio_api/call/v2/chat"
    big = json.dumps({"message": "ship " * 200_000}).encode()  # 1 MB
    assert len(big) >= 1_000_000
    for _ in range(5):  # warm up whatever is allocated once
        _post(url, big)
    before = _rss_kb(hash_app.proc.pid)
    for _ in range(200):
        status, reply = _post(url, big)
        assert status == 413 and b"request too large" in reply
    after = _rss_kb(hash_app.proc.pid)
    growth_mb = (after - before) / 1024
    print(
        f"RSS before {before / 1024:.1f} MB, after 200 refused 1 MB requests {after / 1024:.1f} MB (+{growth_mb:.1f} MB)"
    )
    assert growth_mb <= 50
    # Streamed without a length (chunked) it is refused too, while it streams.
    request = urllib.request.Request(
        url,
        data=iter([big[i : i + 65536] for i in range(0, len(big), 65536)]),
        method="POST",
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            status = r.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    assert status == 413
    # And the app still answers.
    status, reply = _post(hash_app.url + "gradio_api/run/chat", json.dumps({"data": [CECOT]}).encode())
    assert status == 200 and "40,000" in reply.decode()


# ---------------------------------------------------------------- 8. smaller holes in reading documents


HIDDEN_PAGE = b"""<html><head><title>Page</title><style>
.promo { display: none } #note, p.ad { font-size: 0 } .ghost { color: #fff }
@media screen { .later { visibility: hidden } }
</style></head><body>
<p>The visible sentence of the article is here.</p>
<p style="font-size:0">Injected zero-size instruction.</p>
<p style="color: white">Injected white text.</p>
<p style="color:#123;background-color:#123">Injected same-colour text.</p>
<p style="opacity:0">Injected transparent text.</p>
<p style="position:absolute;left:-9999px">Injected off-screen text.</p>
<p class="promo">Injected class-hidden text.</p>
<p id="note">Injected id-hidden text.</p>
<p class="ad wide">Injected tag-and-class text.</p>
<p class="ghost">Injected ghost text.</p>
<p class="later">Injected media-query text.</p>
<embed src="movie.swf">
<p>The closing sentence after the embedded media is kept.</p>
<p style="color:#333">Grey text is ordinary text.</p>
</body></html>"""


def test_html_text_hidden_by_css_is_not_read_and_embed_loses_nothing():
    from qa.ingest.extract import extract_html

    text = extract_html(HIDDEN_PAGE).text
    assert "Injected" not in text, text
    assert "The visible sentence" in text and "closing sentence after the embedded media" in text
    assert "Grey text is ordinary text." in text


def test_binary_html_is_skipped_and_does_not_hide_a_same_named_file(tmp_path):
    from qa.ingest.corpus import scan

    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(SEEDS / "001_38b38ab778929121.txt", docs / "story.txt")
    (docs / "story.html").write_bytes(os.urandom(20000))
    (docs / "noise.htm").write_bytes(bytes(range(1, 32)) * 300)  # control bytes, no NUL
    documents, skipped = scan(docs)
    assert [(d.doc_id, d.format) for d in documents] == [("story", "text")]
    assert {s.path: s.reason for s in skipped} == {
        "story.html": "not an HTML page (binary data)",
        "noise.htm": "not an HTML page (binary data)",
    }


def test_rtl_override_in_a_title_is_removed(tmp_path):
    from qa.ingest.corpus import scan
    from qa.serve.web import source_line

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text(
        '---\ntitle: "Safe \u202eelbisiv\u202c title\u200b"\noutlet: "\u2067News\u2069"\n---\n'
        "A sentence of the article that says something useful.\n",
        encoding="utf-8",
    )
    (doc,), _ = scan(docs)
    assert doc.title == "Safe elbisiv title" and doc.outlet == "News"
    from qa.data import Quote

    quote = Quote(doc_id="a", start=0, end=10, text="A sentence", score=1.0, title="x\u202eyz", outlet="", paragraph=1)
    assert "\u202e" not in source_line(quote)


def test_file_names_with_control_characters_are_skipped_and_printed_on_one_line(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(SEEDS / "001_38b38ab778929121.txt", docs / "good.txt")
    (docs / "bad\nname.txt").write_text("An article whose name holds a line break in it.\n", encoding="utf-8")
    (docs / "rtl\u202etxt.md").write_text("An article whose name reverses itself on screen.\n", encoding="utf-8")
    index = tmp_path / "index"
    proc = qa("index", "--docs", str(docs), "--index", str(index), "--model", "hash-256")
    assert proc.returncode == 0, proc.stderr
    assert "skipped bad\\nname.txt: its name holds an invisible or control character (U+000A)" in proc.stderr
    assert "skipped rtl\\u202etxt.md:" in proc.stderr
    listing = qa("docs", "--index", str(index))
    assert listing.returncode == 0
    lines = listing.stdout.splitlines()
    assert lines[0].startswith("1 documents") and lines[1].startswith("good ")
    assert all(line.startswith("(skipped ") for line in lines[2:]) and len(lines) == 4


@pytest.mark.slow
def test_app_serves_without_any_outbound_connection(tmp_path, seed_index):
    """app.py (real model, ONNX query encoder) under strace with a fresh HOME: it starts,
    answers for longer than onnxruntime's upload delay, and never connects or looks up a
    name outside loopback; no telemetry queue appears."""
    from .test_app import free_port

    home = tmp_path / "home"
    env = clean_env(home)
    env.update(GRADIO_TEMP_DIR=str(tmp_path / "gradio-tmp"), PYTHONUNBUFFERED="1")
    shutil.copytree(seed_index, tmp_path / "index")
    port = free_port()
    cmd, trace = watched(
        [
            sys.executable,
            str(ROOT / "app.py"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--index",
            str(tmp_path / "index"),
            "--docs",
            str(SEEDS),
        ],
        tmp_path,
        env,
        isolate=False,
    )
    log = open(tmp_path / "app.log", "wb")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, (tmp_path / "app.log").read_text(errors="replace")[-3000:]
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "app.py did not start"
            time.sleep(0.5)
        started = time.monotonic()
        answers = 0
        while time.monotonic() - started < 15 or answers < 3:  # past the telemetry's ~10 s delay
            status, reply = _post(url + "gradio_api/run/chat", json.dumps({"data": [CECOT]}).encode())
            assert status == 200 and "40,000" in reply.decode()
            answers += 1
            time.sleep(1)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
        log.close()
    assert network_use(trace) == [], network_use(trace)[:5]
    assert telemetry_files(home) == []
