"""Follow-up questions (qa/answer/conversation.py) and the conversation set scorer (qa/evaluation/conversations.py)."""

from __future__ import annotations

import json

import pytest

from qa.answer.conversation import is_followup, resolve
from qa.evaluation.conversations import load_conversations, run, score_conversations

try:
    from tests.conftest import ROOT
except ImportError:
    from conftest import ROOT

FOLLOWUPS = ROOT / "eval" / "seeds-followups.jsonl"


@pytest.mark.parametrize(
    "question, previous, answer, asked",
    [
        # he/she/him/his become the one person the previous turn named
        (
            "Why did he do that?",
            "What did Bukele offer the United States?",
            "",
            "Why did Bukele do that (United States offer)?",
        ),
        (
            "When was he elected?",
            "Who is the president of El Salvador?",
            "Nayib Bukele",
            "When was Nayib Bukele elected (El Salvador president)?",
        ),
        (
            "Where did Bukele host him?",
            "On which trip did Rubio visit El Salvador?",
            "",
            "Where did Bukele host Rubio (El Salvador trip visit)?",
        ),
        # a fragment replaces the name, year or number of the same kind
        ("What about Guantanamo?", "How many people can CECOT hold?", "", "How many people can Guantanamo hold?"),
        ("And in 2019?", "How many people were imprisoned in 2022?", "", "How many people were imprisoned in 2019?"),
        # a question word alone takes the place of the previous one
        ("Why?", "What did Bukele offer the U.S.?", "", "Why did Bukele offer the U.S.?"),
        ("And where?", "On what date did Rubio sit down with Bukele?", "", "Where did Rubio sit down with Bukele?"),
        # "it" after a short answer carries the answer
        (
            "How many people can it hold?",
            "What does Bukele call the prison?",
            "mega-prison",
            "How many people can it hold (mega-prison Bukele call prison)?",
        ),
    ],
)
def test_followups_are_read_in_context(question, previous, answer, asked):
    reading = resolve(question, previous, answer)
    assert reading.followup and reading.asked == asked
    assert reading.note.startswith(f"Read as a follow-up to “{previous}”") and asked in reading.note


@pytest.mark.parametrize(
    "question",
    [
        "How did Bukele say his prison would be paid for?",  # his = Bukele, named in the question
        "Where did Bukele host Rubio for their talks?",  # their = Bukele and Rubio
        "How many other inmates did one ex-prisoner say were packed into his cell?",
        "Is there a fee?",  # existential "there"
        "What does the name CECOT stand for?",
    ],
)
def test_questions_that_stand_alone_are_asked_as_typed(question):
    reading = resolve(question, "How many people can CECOT hold?")
    assert not reading.followup and reading.asked == question and reading.note == ""


def test_no_previous_turn_means_as_typed():
    assert resolve("Why did he do that?", None).asked == "Why did he do that?"
    assert resolve("Why did he do that?", "").followup is False


def test_few_seed_questions_look_like_followups():
    rows = [
        json.loads(line)
        for name in ("seeds.jsonl", "seeds-dev.jsonl")
        for line in open(ROOT / "eval" / name, encoding="utf-8")
    ]
    flagged = [r["question"] for r in rows if is_followup(r["question"])]
    assert len(flagged) <= 0.05 * len(rows), flagged


def test_followup_set_format():
    conversations = load_conversations(FOLLOWUPS)
    assert len(conversations) >= 25
    assert all(2 <= len(turns) <= 3 for turns in conversations)
    assert any(not t.in_scope for turns in conversations for t in turns[1:])  # follow-ups to abstain on
    texts = {p.stem: p.read_text(encoding="utf-8") for p in (ROOT / "seeds").glob("*.txt")}
    for turns in conversations:
        for t in turns:
            for doc, start, end in t.spans:
                assert any(a.lower() in texts[doc][start:end].lower() for a in t.answers) or not t.answers, t.id


class _Quote:
    def __init__(self, phrase_text=""):
        self.phrase_text = phrase_text


class _Answer:
    def __init__(self, asked):
        self.asked, self.answered, self.quotes = asked, True, (_Quote("Nayib Bukele"),)

    def to_prediction(self, qid=""):
        return {
            "id": qid,
            "question": self.asked,
            "answered": True,
            "latency_ms": 1.0,
            "quotes": [{"doc_id": "d", "start": 0, "end": 5, "text": self.asked}],
        }


class _Engine:
    def __init__(self):
        self.asked = []

    def ask(self, question, k=None):
        self.asked.append(question)
        return _Answer(question)


def test_run_chains_each_turn_on_the_previous_one_as_asked(tmp_path):
    path = tmp_path / "conv.jsonl"
    turns = [
        {"question": "Who is the president of El Salvador?", "answers": ["Bukele"], "doc_ids": ["d"]},
        {"question": "When was he elected?", "answers": ["elected"], "doc_ids": ["d"]},
        {"question": "And in 2019?", "answers": [], "doc_ids": []},
    ]
    path.write_text(json.dumps({"id": "c1", "turns": turns}) + "\n", encoding="utf-8")
    conversations = load_conversations(path)
    engine = _Engine()
    predictions = run(engine, conversations)
    assert engine.asked == [
        "Who is the president of El Salvador?",
        "When was Nayib Bukele elected (El Salvador president)?",
        "When was Nayib Bukele elected (El Salvador president) in 2019?",
    ]
    metrics = score_conversations(conversations, predictions)
    assert metrics["followups"]["answerable"] == 1 and metrics["followups"]["out_of_scope"] == 1
    assert metrics["followups"]["answer@1"] == 1.0 and metrics["followups"]["abstention"] == 0.0
    assert [p["id"] for p in predictions[0]] == ["c1.1", "c1.2", "c1.3"]


def _cli(*argv):
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from qa.serve.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_cli_ask_with_context_and_eval_of_a_conversation_set(fake_engine):
    idx = str(fake_engine.settings.index)
    code, out, _ = _cli(
        "ask",
        "What does that name stand for?",
        "--context",
        "How many people can CECOT hold?",
        "--index",
        idx,
        "--json",
    )
    row = json.loads(out)
    assert code == 0 and row["question"] == "What does that name stand for?" and "CECOT" in row["asked"]
    code, out, _ = _cli(
        "ask",
        "What does that name stand for?",
        "--context",
        "How many people can CECOT hold?",
        "--index",
        idx,
        "-k",
        "1",
    )
    assert code == 0 and out.startswith("(Read as a follow-up to “How many people can CECOT hold?”")
    code, out, _ = _cli("eval", str(FOLLOWUPS), "--index", idx, "--json")
    rows = json.loads(out)
    assert code == 0 and list(rows) == ["follow-ups, in context", "follow-ups, as typed", "all turns, in context"]
    assert rows["follow-ups, in context"]["answerable"] + rows["follow-ups, in context"]["out_of_scope"] == 34


def test_progress_lines_for_logs():
    import io
    import sys

    from qa.progress import LineWriter, log_lines

    buffer = io.StringIO()
    writer = LineWriter(buffer)
    writer.write("\rembedding:   0%|  | 0/10\rembedding:  50%|# | 5/10")
    writer.write("\r\x1b[A")
    assert buffer.getvalue().splitlines() == ["embedding:   0%|  | 0/10", "embedding:  50%|# | 5/10"]
    saved = sys.stderr
    sys.stderr = io.StringIO()  # not a terminal
    try:
        with log_lines():
            assert isinstance(sys.stderr, LineWriter)
        assert not isinstance(sys.stderr, LineWriter)
    finally:
        sys.stderr = saved


def test_index_progress_reaches_a_log_as_lines(tmp_path):
    code, out, err = _cli(
        "index", "--docs", str(ROOT / "seeds"), "--index", str(tmp_path / "index"), "--model", "hash-256"
    )
    assert code == 0 and out.startswith("indexed 5 documents")
    assert "\r" not in err and any(line.startswith("embedding:") for line in err.splitlines()), err
    (tmp_path / "docs").mkdir()
    for p in (ROOT / "seeds").iterdir():
        if not p.name.startswith("000_"):
            (tmp_path / "docs" / p.name).write_bytes(p.read_bytes())
    code, out, err = _cli(
        "index", "--docs", str(tmp_path / "docs"), "--index", str(tmp_path / "index"), "--model", "hash-256", "--quiet"
    )
    assert code == 0 and "removed: 000_6022e9d6bef41df7" in out.splitlines() and err == ""
