"""Reliability: one-line errors at every entry point, tampered indexes, full disks, huge
documents, concurrent writers, an index replaced under a running app (issue 12).

Every test here reproduces a failure that was found by attacking the tool: a traceback
instead of one line, a batch that stopped, a build that "succeeded" without its query
encoder, an empty quote from a shortened text, a quadratic build, a lost document.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from qa.index import load
from qa.index.texts import MappedTexts
from qa.index.texts import write as write_texts

from .conftest import ROOT, SEEDS, index_command, one_line_error, run_qa as qa

ENV = dict(os.environ, PYTHONPATH=str(ROOT))


@pytest.fixture(scope="module")
def hash_index(tmp_path_factory) -> Path:
    """A CLI-built index of a copy of the seeds, with the fast test embedder."""
    base = tmp_path_factory.mktemp("rel")
    shutil.copytree(SEEDS, base / "docs")
    proc = qa("index", "--docs", str(base / "docs"), "--index", str(base / "index"), "--model", "hash-256")
    assert proc.returncode == 0, proc.stderr
    return base / "index"


@pytest.fixture()
def index_copy(hash_index, tmp_path) -> Path:
    target = tmp_path / "index"
    shutil.copytree(hash_index, target)
    return target


# ---------------------------------------------------------------- questions that are not text


def test_invalid_utf8_question_is_one_line(hash_index):
    line = one_line_error(qa("ask", os.fsdecode(b"ships \xed\xa0\x80?"), "--index", str(hash_index)))
    assert "not valid UTF-8" in line


def test_batch_goes_on_past_a_line_that_is_not_text(hash_index):
    stdin = b"Who is Bukele?\n\xed\xa0\x80\n\xff\xfe junk\nWhat is CECOT?\n"
    proc = qa("ask", "--json", "--index", str(hash_index), stdin=stdin)
    assert "Traceback" not in proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r.get("question") for r in rows] == ["Who is Bukele?", None, None, "What is CECOT?"]
    assert "quotes" in rows[0] and "quotes" in rows[3]
    assert rows[1]["line"] == 2 and "not valid UTF-8" in rows[1]["error"] and rows[2]["line"] == 3
    assert proc.stderr.count("error: line") == 2 and proc.returncode == 1


def test_lone_surrogate_from_the_web_is_a_clear_refusal(fake_engine):
    from qa.serve.web import answer_markdown, respond

    reply, answer = answer_markdown(fake_engine, "ships \ud800?")
    assert answer is None and "lone surrogate" in reply
    history, box, *_ = respond(fake_engine, "ships \ud800?", [], 3, "hybrid", None, [])
    json.dumps(history, ensure_ascii=False).encode("utf-8")  # what Gradio sends back must encode
    box.encode("utf-8")


@pytest.mark.parametrize("k", ["0", "-1", "11"])
def test_k_out_of_range_is_an_error(hash_index, k):
    line = one_line_error(qa("ask", "What is CECOT?", "-k", k, "--index", str(hash_index)))
    assert "between 1 and 10" in line


def test_debug_shows_the_traceback(index_copy):
    (index_copy / "manifest.json").write_text("{}", encoding="utf-8")
    assert "Traceback" not in qa("docs", "--index", str(index_copy)).stderr
    # An unexpected error (a bug) is one line too, and --debug shows its traceback.
    env = dict(ENV, QA_MODE="nonsense")
    assert one_line_error(qa("ask", "x", "--index", str(index_copy), env=env))
    proc = qa("--debug", "docs", "--index", str(index_copy))
    assert "Traceback" in proc.stderr and proc.returncode != 0
    proc = qa("docs", "--index", str(index_copy), "--debug")
    assert "Traceback" in proc.stderr


# ---------------------------------------------------------------- tampered index files


def _edit_manifest(folder: Path, change) -> None:
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    change(manifest)
    path.write_text(json.dumps(manifest), encoding="utf-8")


def _set(key, value):
    return lambda m: m.__setitem__(key, value)


def _replace_array(folder: Path, name: str, array: np.ndarray) -> None:
    """Write a table and make the manifest's size record agree (as a careful tamperer would)."""
    np.save(folder / name, array, allow_pickle=False)
    _edit_manifest(folder, lambda m: m["files"].__setitem__(name, (folder / name).stat().st_size))


TAMPERS = {
    "files-as-list": lambda f: _edit_manifest(f, _set("files", ["documents.jsonl"])),
    "counts-as-string": lambda f: _edit_manifest(f, _set("counts", "many")),
    "model-as-string": lambda f: _edit_manifest(f, _set("model", "hash-256")),
    "no-corpus": lambda f: _edit_manifest(f, lambda m: m.pop("corpus")),
    "no-created": lambda f: _edit_manifest(f, lambda m: m.pop("created")),
    "skipped-as-dict": lambda f: _edit_manifest(f, lambda m: m["corpus"].__setitem__("skipped", {"a": 1})),
    "chunking-as-list": lambda f: _edit_manifest(f, _set("chunking", [800, 100])),
    "dimension-wrong": lambda f: _edit_manifest(f, lambda m: m["model"].__setitem__("dimension", 128)),
    "sentence-row-out-of-range": lambda f: _replace_array(
        f, "sentences.npy", np.load(f / "sentences.npy") + np.array([0, 0, 0, 0, 0, 0, 10**6])
    ),
    "document-out-of-range": lambda f: _replace_array(f, "chunks.npy", np.load(f / "chunks.npy") + np.array([7, 0, 0])),
    "one-dimensional-array": lambda f: _replace_array(f, "paragraphs.npy", np.load(f / "paragraphs.npy").ravel()),
    "float-array": lambda f: _replace_array(f, "chunks.npy", np.load(f / "chunks.npy").astype(np.float64)),
    "paragraph-reference-out-of-range": lambda f: _replace_array(
        f, "sentences.npy", np.load(f / "sentences.npy") + np.array([0, 0, 0, 10**4, 0, 0, 0])
    ),
}


@pytest.mark.parametrize("case", sorted(TAMPERS))
def test_tampered_index_is_one_line_naming_the_file(index_copy, case):
    TAMPERS[case](index_copy)
    for command in (["ask", "What is CECOT?"], ["docs"], ["show", "001_38b38ab778929121"]):
        line = one_line_error(qa(*command, "--index", str(index_copy)))
        assert str(index_copy) in line, line


def test_bm25_folder_from_another_index_is_refused(index_copy, tmp_path):
    other = tmp_path / "other"
    (other / "docs").mkdir(parents=True)
    shutil.copy(SEEDS / "000_6022e9d6bef41df7.txt", other / "docs")
    assert (
        qa("index", "--docs", str(other / "docs"), "--index", str(other / "index"), "--model", "hash-256").returncode
        == 0
    )
    shutil.rmtree(index_copy / "bm25-chunks")
    shutil.copytree(other / "index" / "bm25-chunks", index_copy / "bm25-chunks")
    sizes = {p.relative_to(index_copy).as_posix(): p.stat().st_size for p in (index_copy / "bm25-chunks").iterdir()}
    _edit_manifest(index_copy, lambda m: m["files"].update(sizes))
    line = one_line_error(qa("ask", "What is CECOT?", "--index", str(index_copy)))
    assert "bm25-chunks" in line and "another index" in line


def test_shortened_document_text_is_detected(index_copy):
    """A text cut short (the text store rewritten whole, sizes in the manifest fixed up) must
    not load and cite empty quotes."""
    stored = MappedTexts(index_copy)
    texts = [stored.text(i) for i in range(len(stored))]
    del stored
    texts[1] = texts[1][:200]
    write_texts(texts, index_copy)

    def sizes(m):
        for name in ("texts.bin", "texts.npy"):
            m["files"][name] = (index_copy / name).stat().st_size

    _edit_manifest(index_copy, sizes)
    line = one_line_error(qa("ask", "Who is Bukele?", "--index", str(index_copy)))
    assert "texts.bin" in line and "200 characters" in line
    # Even without the recorded lengths (an older index), the offsets give it away.
    _edit_manifest(index_copy, lambda m: m["corpus"].pop("text_lengths"))
    line = one_line_error(qa("ask", "Who is Bukele?", "--index", str(index_copy)))
    assert ".npy" in line and "outside its document" in line


def test_damaged_manifest_makes_index_rebuild_fully(index_copy, tmp_path):
    """A damaged previous index is no reason for `index` to fail: it rebuilds from scratch."""
    _edit_manifest(index_copy, _set("counts", "many"))
    proc = qa("index", "--docs", str(SEEDS), "--index", str(index_copy), "--model", "hash-256")
    assert proc.returncode == 0, proc.stderr
    assert "full rebuild" in proc.stdout and "damaged manifest" in proc.stdout


# ---------------------------------------------------------------- one writer at a time


def _docs_in(index: Path) -> set[str]:
    listing = json.loads(qa("docs", "--index", str(index), "--json").stdout)
    return {d["doc_id"] for d in listing["documents"]}


def _new_article(folder: Path, n: int) -> None:
    (folder / f"new_{n:03d}.txt").write_text(
        f"Article number {n} reports a fresh development. Officials confirmed the figure {n * 7} on Tuesday.\n",
        encoding="utf-8",
    )


HOLDER = (
    "import sys\n"
    "from pathlib import Path\n"
    "from qa.index import writer_lock\n"
    "with writer_lock(Path(sys.argv[1])):\n"
    "    print('locked', flush=True)\n"
    "    sys.stdin.readline()\n"
)


def test_second_writer_waits_for_the_first_and_loses_nothing(tmp_path):
    docs, index = tmp_path / "docs", tmp_path / "index"
    shutil.copytree(SEEDS, docs)
    assert qa("index", "--docs", str(docs), "--index", str(index), "--model", "hash-256").returncode == 0
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(index)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=ENV,
        cwd=ROOT,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        # --no-wait: one line, nothing written.
        line = one_line_error(
            qa("index", "--docs", str(docs), "--index", str(index), "--model", "hash-256", "--no-wait")
        )
        assert "being written by another" in line and str(holder.pid) in line
        # By default the second writer waits, says so, and builds from the folder as it is then.
        writer = subprocess.Popen(
            index_command(docs, index),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=ENV,
            cwd=ROOT,
            text=True,
        )
        assert "waiting for another `qa index`" in writer.stderr.readline()
        _new_article(docs, 1)  # added while the first writer holds the folder
    finally:
        holder.stdin.close()
        holder.wait(60)
    out, err = writer.communicate(timeout=300)
    assert writer.returncode == 0, err
    assert "new_001" in _docs_in(index)


SLOW_WRITER = (
    "import sys, time\n"
    "from pathlib import Path\n"
    "from tests.doubles import HashEmbedder\n"
    "from qa.index import build_and_save\n"
    "from qa.settings import Settings\n"
    "class Gated(HashEmbedder):\n"
    "    def encode(self, texts, **kw):\n"
    "        print('encoding', flush=True)\n"
    "        while not Path(sys.argv[3]).exists():\n"
    "            time.sleep(0.05)\n"
    "        return super().encode(texts, **kw)\n"
    "build_and_save(Settings(docs=Path(sys.argv[1]), index=Path(sys.argv[2])), Gated(256))\n"
)


def test_a_slow_writer_never_overwrites_a_later_one(tmp_path):
    """The race that lost a document: writer A reads the folder, writer B starts after a
    new document X landed and finishes first, then A saves what it read — without X.  With
    the lock, B waits for A and reads the folder after it."""
    docs, index, gate = tmp_path / "docs", tmp_path / "index", tmp_path / "gate"
    shutil.copytree(SEEDS, docs)
    assert qa("index", "--docs", str(docs), "--index", str(index), "--model", "hash-256").returncode == 0
    _new_article(docs, 1)
    a = subprocess.Popen(
        [sys.executable, "-c", SLOW_WRITER, str(docs), str(index), str(gate)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
        cwd=ROOT,
        text=True,
    )
    try:
        assert a.stdout.readline().strip() == "encoding"  # A has read the folder and is embedding
        _new_article(docs, 2)  # X
        b = subprocess.Popen(
            index_command(docs, index),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=ENV,
            cwd=ROOT,
            text=True,
        )
        first = b.stderr.readline()  # "waiting for …" with the lock; without it B just finishes (EOF)
    finally:
        gate.touch()
    _, err = a.communicate(timeout=300)
    assert a.returncode == 0, err
    out, err = b.communicate(timeout=300)
    assert b.returncode == 0, err
    assert {"new_001", "new_002"} <= _docs_in(index)
    assert "waiting for another `qa index`" in first


@pytest.mark.slow
def test_concurrent_writers_lose_no_document(tmp_path):
    """10 rounds of two `qa index` (20 writer runs): a document added before the first
    starts, another after it started and before the second: both are in the index once
    both have finished."""
    docs, index = tmp_path / "docs", tmp_path / "index"
    shutil.copytree(SEEDS, docs)
    expected = {p.stem for p in SEEDS.glob("*.txt")}
    cmd = index_command(docs, index, "--quiet")
    for n in range(10):
        _new_article(docs, n)
        first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, cwd=ROOT)
        _new_article(docs, 100 + n)
        second = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, cwd=ROOT)
        for w in (first, second):
            _, err = w.communicate(timeout=300)
            assert w.returncode == 0, err.decode()
        expected |= {f"new_{n:03d}", f"new_{100 + n:03d}"}
        assert _docs_in(index) == expected, f"round {n}"


# ---------------------------------------------------------------- an index replaced under the app


def test_live_engine_reloads_a_replaced_index_between_questions(tmp_path):
    """In process: a rebuilt index is noticed at the next question, loaded whole, said so;
    a question keeps one engine throughout; a broken replacement keeps the old one."""
    from .doubles import HashEmbedder
    from qa.pipeline import build_index, open_engine
    from qa.settings import Settings
    from qa.serve.web import LiveEngine, chat

    docs, index = tmp_path / "docs", tmp_path / "index"
    shutil.copytree(SEEDS, docs)
    settings = Settings(docs=docs, index=index)
    build_index(settings, embedder=HashEmbedder(256))
    live = LiveEngine(open_engine(settings, embedder=HashEmbedder(256)), settings)
    first, notice = live.current()
    assert notice == "" and live.current() == (first, "")
    (docs / "003_2ab8d06fb5da8a5c.txt").unlink(missing_ok=True)
    _new_article(docs, 7)
    build_index(settings, embedder=HashEmbedder(256))
    second, notice = live.current()
    assert second is not first and "index was rebuilt" in notice and "documents now" in notice
    assert "new_007" in second.index.doc_index and "new_007" not in first.index.doc_index
    assert live.current() == (second, "")
    reply = chat(second, "What figure did officials confirm on Tuesday?")
    assert "49" in reply
    # A replacement that cannot be loaded: said once, the loaded index keeps answering.
    (index / "manifest.json").write_text('{"format": "qa-index", "format_version": 2}', encoding="utf-8")
    third, notice = live.current()
    assert third is second and "cannot be loaded" in notice
    assert live.current() == (second, "")


def _quotes_are_cited_text(reply: str, index: Path) -> None:
    """Every quote of a chat reply is the indexed text at the characters its citation gives."""
    import re as _re

    by_title = {d.title: d.text for d in load(index).documents}
    quotes = _re.findall(r"^\[(\d+)\] “(.*)”$", reply, _re.M)
    spans = _re.findall(r"^- \[(\d+)\] \*(.*?)\*.*characters (\d+)–(\d+)$", reply, _re.M)
    assert quotes and len(quotes) == len(spans)
    for (n, quote), (m, title, start, end) in zip(quotes, spans):
        text = by_title[title.replace("\\", "")]
        cited = " ".join(text[int(start) : int(end)].split())
        assert cited and cited[:30] in quote.replace("\\", ""), (quote[:80], cited[:80])


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_running_app_notices_a_replaced_index(tmp_path, workers):
    """app.py keeps running while `qa index` adds, changes and removes documents: the next
    answer says the index was rebuilt, quotes the new document, never the removed one, and
    every quote is the new text at the cited characters.  With ``--workers 2`` the forked
    worker follows: the answers after it (one a slot) are all from the new index."""
    from .test_app import AppServer, client

    docs, index = tmp_path / "docs", tmp_path / "index"
    shutil.copytree(SEEDS, docs)
    assert qa("index", "--docs", str(docs), "--index", str(index), "--model", "hash-256").returncode == 0
    extra = ["--workers", str(workers), "--concurrency", "1"]
    server = AppServer(index, docs, tmp_path / "app.log", extra=extra).wait()
    question = "What figure did officials confirm on Tuesday?"
    try:
        api = client(server.url)
        for _ in range(workers):
            assert "rebuilt" not in api.predict(question, api_name="/chat")
        removed = "002_ad1d5b1d74f9fcda"
        for p in docs.glob(f"{removed}*"):
            p.unlink()
        _new_article(docs, 7)
        changed = docs / "001_38b38ab778929121.txt"
        changed.write_text(
            "A short new opening sentence was put in front of this article.\n\n" + changed.read_text(encoding="utf-8"),
            encoding="utf-8",
        )
        assert qa("index", "--docs", str(docs), "--index", str(index), "--model", "hash-256").returncode == 0
        after = api.predict(question, api_name="/chat")
        assert "index was rebuilt" in after, after[:300]
        assert removed not in {d.doc_id for d in load(index).documents}
        for reply in [after] + [api.predict(question, api_name="/chat") for _ in range(2 * workers)]:
            assert "Article number 7" in reply, reply[:300]
            _quotes_are_cited_text(reply, index)
            assert reply is after or "rebuilt" not in reply
        assert server.alive() and "Traceback" not in server.log()
    finally:
        server.stop()


# ---------------------------------------------------------------- huge documents: linear time, a size limit


def _article_text(size: int, one_paragraph: bool) -> str:
    """``size`` characters of the seed articles' paragraphs, shuffled: one per paragraph, or
    all run together on one line (the shape that made sentence splitting quadratic)."""
    import random

    paras = [
        p for f in sorted(SEEDS.glob("*.txt")) for p in f.read_text(encoding="utf-8").split("\n\n") if len(p) > 200
    ]
    rng, out, n = random.Random(0), [], 0
    while n < size:
        p = " ".join(rng.choice(paras).split())
        out.append(p)
        n += len(p) + 2
    return (" " if one_paragraph else "\n\n").join(out)[:size]


def _cpu(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def test_one_long_paragraph_costs_what_the_same_text_in_paragraphs_costs():
    """300 KB on one line took minutes in sentence splitting and title guessing (quadratic);
    now within a small factor of the same text in ordinary paragraphs (CPU time, best of 2)."""
    from qa.ingest.chunking import layout
    from qa.ingest.corpus import guess_title

    normal, single = _article_text(300_000, False), _article_text(300_000, True)
    t_normal = min(_cpu(lambda: (layout(normal), guess_title(normal, "x"))) for _ in range(2))
    t_single = min(_cpu(lambda: (layout(single), guess_title(single, "x"))) for _ in range(2))
    print(f"300 KB: paragraphs {t_normal:.2f} s, one paragraph {t_single:.2f} s")
    assert t_single <= 2 * t_normal + 0.5
    # Splitting stays faithful: every sentence is a slice of the text, in order, none longer than a piece.
    lay = layout(single)
    assert len(lay.sentences) > 1000
    assert all(e - s <= 1200 for s, e, *_ in lay.sentences)
    assert all(a[1] <= b[0] for a, b in zip(lay.sentences, lay.sentences[1:]))


def test_guess_title_reads_only_the_opening():
    from qa.ingest.corpus import guess_title

    text = "word " * 2_000_000  # 10 MB on one line, no sentence end
    assert _cpu(lambda: guess_title(text, "fallback")) < 1.0


def test_documents_over_the_size_limit_are_skipped_with_a_message(tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(SEEDS, docs)
    (docs / "huge.txt").write_text(_article_text(1_500_000, True), encoding="utf-8")
    env = dict(ENV, QA_MAX_DOCUMENT_MB="1")
    proc = qa("index", "--docs", str(docs), "--index", str(tmp_path / "index"), "--model", "hash-256", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "skipped huge.txt: too large (1.5 MB, over the 1 MB limit per document)" in proc.stderr
    assert "huge" not in _docs_in(tmp_path / "index")
    # The skip is remembered: the folder is not "out of date" because of it.
    proc = qa("ask", "Who is Bukele?", "--docs", str(docs), "--index", str(tmp_path / "index"), env=env)
    assert proc.returncode == 0, proc.stderr
    line = one_line_error(
        qa("index", "--docs", str(docs), "--index", str(tmp_path / "x"), env=dict(ENV, QA_MAX_DOCUMENT_MB="zero"))
    )
    assert "QA_MAX_DOCUMENT_MB" in line


@pytest.mark.slow
def test_five_megabyte_single_paragraph_indexes_in_linear_time(tmp_path):
    """`qa index` of one 5 MB document: on one line it costs at most twice the same bytes
    in ordinary paragraphs (CPU time of the whole command)."""
    import resource

    seconds = {}
    for shape in ("paragraphs", "one-line"):
        docs = tmp_path / shape / "docs"
        docs.mkdir(parents=True)
        (docs / "big.txt").write_text(_article_text(5_000_000, shape == "one-line"), encoding="utf-8")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = qa(
            "index",
            "--docs",
            str(docs),
            "--index",
            str(tmp_path / shape / "index"),
            "--model",
            "hash-256",
            "--quiet",
            timeout=900,
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        assert proc.returncode == 0, proc.stderr
        seconds[shape] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    print(f"5 MB document, qa index CPU seconds: {seconds}")
    assert seconds["one-line"] <= 2 * seconds["paragraphs"]


# ---------------------------------------------------------------- a full disk


FULL_DISK = r"""
set -u
mount -t tmpfs -o size=2m tmpfs "$DISK" || exit 97
"$PY" -m qa index --docs "$DOCS" --index "$DISK/index" --model hash-256 --quiet > /dev/null || exit 98
"$PY" -m qa docs --index "$DISK/index" --json > "$OUT/before.json"
dd if=/dev/zero of="$DISK/filler" bs=4k 2> /dev/null   # until the disk is full
truncate -s -40K "$DISK/filler"                        # 40 KB left: less than an index
echo "Article number 9 says the ministry confirmed a new figure on Friday." > "$DOCS/new_009.txt"
"$PY" -m qa index --docs "$DOCS" --index "$DISK/index" --model hash-256 --quiet > "$OUT/out.txt" 2> "$OUT/err.txt"
echo $? > "$OUT/rc.txt"
"$PY" -m qa docs --index "$DISK/index" --json > "$OUT/after.json" 2> "$OUT/after-err.txt"
rm "$DOCS/new_009.txt"
"$PY" -m qa ask "Who is Bukele?" --index "$DISK/index" --json > "$OUT/ask.json" 2>&1
ls -a "$DISK" > "$OUT/ls.txt"
"""


@pytest.mark.slow
def test_full_disk_during_index_is_one_line_and_keeps_the_previous_index(tmp_path):
    """On a small tmpfs (a private mount namespace: needs root and unshare -m): the update
    that does not fit fails with one line, leaves no temporary folder, and the previous
    index still loads and answers."""
    if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
        pytest.skip("no mount namespace here (needs root); test_full_disk_in_process covers the code path")
    docs, disk, out = tmp_path / "docs", tmp_path / "disk", tmp_path / "out"
    shutil.copytree(SEEDS, docs)
    disk.mkdir()
    out.mkdir()
    env = dict(ENV, DISK=str(disk), DOCS=str(docs), OUT=str(out), PY=sys.executable)
    proc = subprocess.run(
        ["unshare", "-m", "sh", "-c", FULL_DISK], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode not in (97, 98), proc.stderr
    err = (out / "err.txt").read_text()
    assert (out / "rc.txt").read_text().strip() == "1"
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "No space left on device" in err and "previous index is unchanged" in err
    before, after = json.loads((out / "before.json").read_text()), json.loads((out / "after.json").read_text())
    assert after == before
    assert json.loads((out / "ask.json").read_text())["quotes"]
    assert not [n for n in (out / "ls.txt").read_text().split() if "building" in n]


def test_full_disk_in_process(tmp_path, monkeypatch):
    """The same failure wherever the disk fills: a faiss write, the query encoder's export
    (which used to be dropped with a warning, leaving an index without its encoder)."""
    import errno

    from qa.index import builder as index_mod
    from qa.index import embedding
    from .doubles import HashEmbedder
    from qa.index import IndexProblem, build, load, save
    from qa.settings import Settings

    settings = Settings(docs=SEEDS, index=tmp_path / "index")
    built = build(settings, HashEmbedder(256))
    save(built, settings.index)
    before = (settings.index / "manifest.json").read_text()

    def no_space(*a, **k):
        raise RuntimeError("Error in faiss::FileIOWriter: write error: No space left on device")

    import faiss

    monkeypatch.setattr(faiss, "write_index", no_space)
    with pytest.raises(
        IndexProblem, match=r"sentences.faiss: No space left on device\); the previous index is unchanged"
    ):
        save(built, settings.index)
    monkeypatch.undo()
    assert (settings.index / "manifest.json").read_text() == before and load(settings.index)
    assert not list(tmp_path.glob(".index.building-*"))

    def export_fails(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", "query-encoder.onnx")

    monkeypatch.setattr(embedding, "export_onnx", export_fails)
    with pytest.raises(OSError) as info:
        embedding.save_query_encoder(tmp_path / "enc", "some-model")
    assert info.value.errno == errno.ENOSPC
    monkeypatch.setattr(index_mod, "save_query_encoder", lambda *a, **k: export_fails())
    with pytest.raises(IndexProblem, match="No space left on device"):
        save(built, settings.index, steps=index_mod.BUILD_STEPS)
    assert (settings.index / "manifest.json").read_text() == before
