"""The command line: exit codes, one-line errors, JSON output, batch mode."""

from __future__ import annotations

import json
import shutil

import pytest

from .conftest import ROOT, SEEDS, cli as qa, one_line_error, run_qa


@pytest.fixture(scope="module")
def hash_index(tmp_path_factory):
    """A CLI-built index of a copy of the seeds, with the fast test embedder (built by the
    command as a user runs it: a process of its own; the tests below run the CLI in-process)."""
    base = tmp_path_factory.mktemp("cli")
    shutil.copytree(SEEDS, base / "docs")
    proc = run_qa("index", "--docs", str(base / "docs"), "--index", str(base / "index"), "--model", "hash-256")
    assert proc.returncode == 0, proc.stderr
    assert "indexed 5 documents" in proc.stdout and "sentences" in proc.stdout and " s " in proc.stdout
    return base


def test_ask_readable_and_json(hash_index):
    idx = str(hash_index / "index")
    proc = qa("ask", "How many people can CECOT hold?", "--index", idx, "-k", "3")
    assert proc.returncode == 0, proc.stderr
    assert "[1] “" in proc.stdout and "Sources:" in proc.stdout and "paragraph" in proc.stdout
    proc = qa("ask", "How many people can CECOT hold?", "--index", idx, "-k", "3", "--json")
    out = json.loads(proc.stdout)
    assert set(out) >= {"question", "answered", "latency_ms", "quotes"}
    assert len(out["quotes"]) <= 3
    for q in out["quotes"]:
        text = (hash_index / "docs" / f"{q['doc_id']}.txt").read_text(encoding="utf-8")
        assert text[q["start"] : q["end"]] == q["text"]
        assert q["title"]


def test_batch_mode_reads_stdin(hash_index):
    proc = qa("ask", "--index", str(hash_index / "index"), "--json", stdin="Who is Bukele?\n\nWhat is CECOT?\n")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [x["question"] for x in lines] == ["Who is Bukele?", "What is CECOT?"]


def test_batch_mode_reports_bad_lines_and_goes_on(hash_index):
    proc = qa("ask", "--index", str(hash_index / "index"), "--json", stdin="What is CECOT?\n" + "x" * 5000 + "\n")
    assert proc.returncode == 1
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert "quotes" in lines[0] and "error" in lines[1]
    assert "line 2" in proc.stderr and "Traceback" not in proc.stderr


def test_errors_are_one_line(hash_index, tmp_path):
    idx = str(hash_index / "index")
    assert "empty question" in one_line_error(qa("ask", "   ", "--index", idx))
    assert "no index at" in one_line_error(qa("ask", "What?", "--index", str(tmp_path / "none")))
    assert "not found" in one_line_error(
        qa("index", "--docs", str(tmp_path / "missing"), "--index", str(tmp_path / "i"))
    )
    bad = tmp_path / "qa.jsonl"
    bad.write_text('{"id": "a", "question": "q", "answers": [], "doc_ids": []}\n{broken\n')
    assert "line 2" in one_line_error(qa("eval", str(bad), "--index", idx))
    assert "not found" in one_line_error(qa("eval", str(tmp_path / "nope.jsonl"), "--index", idx))
    assert "no document" in one_line_error(qa("show", "nope", "--index", idx))
    assert "built with model" in one_line_error(qa("ask", "What?", "--index", idx, "--model", "hash-128"))


def test_stale_index_is_reported(hash_index, tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(hash_index / "docs", docs)
    idx = tmp_path / "index"
    assert qa("index", "--docs", str(docs), "--index", str(idx), "--model", "hash-256").returncode == 0
    (docs / "extra.txt").write_text("A brand new article about bridges and their maintenance.\n", encoding="utf-8")
    line = one_line_error(qa("ask", "What?", "--index", str(idx)))
    assert "out of date" in line and "1 added" in line and "python -m qa index" in line


def test_show_and_docs(hash_index):
    idx = str(hash_index / "index")
    proc = qa("show", "001_38b38ab778929121", "--index", idx)
    assert proc.stdout == (SEEDS / "001_38b38ab778929121.txt").read_text(encoding="utf-8")
    proc = qa("docs", "--index", idx, "--json")
    rows = json.loads(proc.stdout)["documents"]
    assert len(rows) == 5 and all(r["chunks"] > 0 for r in rows)


def test_eval_writes_predictions(hash_index, tmp_path):
    out = tmp_path / "pred.jsonl"
    proc = qa(
        "eval",
        str(ROOT / "eval" / "seeds.jsonl"),
        "--index",
        str(hash_index / "index"),
        "--predictions",
        str(out),
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(proc.stdout)
    for key in (
        "doc@1",
        "doc@5",
        "mrr@10",
        "answer@1",
        "answer@5",
        "abstention",
        "coverage",
        "latency_p50_ms",
        "latency_p95_ms",
    ):
        assert key in metrics
    preds = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(preds) == metrics["questions"]
    assert all(len(p["quotes"]) <= 10 for p in preds)


@pytest.mark.slow
def test_real_model_answers_cecot(seed_index):
    proc = qa("ask", "How many people can CECOT hold?", "--index", str(seed_index), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["answered"] and 0 <= out["confidence"] <= 1 and isinstance(out["tentative"], bool)
    top = out["quotes"][0]
    assert top["doc_id"] == "001_38b38ab778929121" and "40,000" in top["text"]


@pytest.mark.slow
def test_readme_sample_answer_is_what_the_command_prints(seed_index):
    """The README's sample ``qa ask`` session is the real output on the seeds (it went stale
    once, when answers below the "sure" level began to lead with "Perhaps")."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    prompt = '$ python -m qa ask "How many people can CECOT hold?" -k 2\n'
    assert prompt in readme
    shown = readme.split(prompt, 1)[1].split("```", 1)[0]
    proc = qa("ask", "How many people can CECOT hold?", "-k", "2", "--index", str(seed_index))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == shown.strip()


def test_readable_answer_says_when_it_is_tentative():
    from qa.data import Answer, Quote
    from qa.serve.cli import render

    text = "CECOT has a maximum capacity of 40,000."
    quote = Quote("d1", 0, len(text), text, 1.0, "T", "O", 1, phrase=(32, 38))
    perhaps = render(Answer("How many guards work at CECOT?", True, (quote,), confidence=0.2, tentative=True))
    assert perhaps.splitlines()[:2] == [
        "Perhaps from the articles (the closest match, but it may not answer exactly this question):",
        "Perhaps: 40,000  (in quote [1])",
    ]
    sure = render(Answer("How many people can CECOT hold?", True, (quote,), confidence=0.9))
    assert sure.splitlines()[0] == "Answer: 40,000  (in quote [1])"
