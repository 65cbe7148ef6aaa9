"""The answer pool behind ``qa-web --workers N``: questions reach forked workers over pipes and
come back as the same answers (or the same errors) the server's own engine gives."""

from __future__ import annotations

import os
import pickle
import threading
from pathlib import Path

import pytest

from qa.errors import QuestionError
from qa.serve.workers import AnswerPool, WorkerGone, start_workers


class PidEngine:
    """Answers with the id of the process that answered and the version of the "index" it
    read (a file's text); refuses an empty question."""

    documents = ("a", "b")

    def __init__(self, version: Path | None = None) -> None:
        self.version = version.read_text() if version else ""

    def ask(self, question: str, k: int = 1) -> tuple[int, str, int, str]:
        if not question:
            raise QuestionError("empty question")
        return os.getpid(), question, k, self.version


def make_pool(workers: int, slots: int, local: int, version: Path | None = None):
    stamp = version.read_text if version else (lambda: None)
    children, pipes = start_workers(workers, slots, lambda: PidEngine(version), stamp)

    def opened():
        return PidEngine(version), stamp()

    return AnswerPool(opened(), pipes, local, opened), children, pipes


def stop(children, pipes) -> None:
    for p in pipes:
        p.close()  # the workers see their pipes close and end
    for pid in children:
        os.waitpid(pid, 0)


@pytest.fixture
def pool(tmp_path):
    (tmp_path / "manifest").write_text("v1")
    pool, children, pipes = make_pool(2, 2, 1, tmp_path / "manifest")
    yield pool, children
    stop(children, pipes)


def test_questions_go_to_every_worker_and_to_the_server(pool):
    pool, children = pool
    assert pool.slots == 5 and pool.documents == ("a", "b")  # 2 workers × 2 + 1 here; the rest is local
    answered = [pool.ask(f"q{i}", k=i) for i in range(10)]
    assert [(q, k) for _, q, k, _ in answered] == [(f"q{i}", i) for i in range(10)]
    assert {pid for pid, *_ in answered} == {os.getpid(), *children}


def test_a_refused_question_raises_the_same_error_here(pool):
    pool, _ = pool
    for _ in range(pool.slots):  # every slot, the forked ones included
        with pytest.raises(QuestionError, match="empty question"):
            pool.ask("")


def test_concurrent_questions_each_get_their_own_answer(pool):
    pool, _ = pool
    out: dict[int, tuple] = {}
    threads = [threading.Thread(target=lambda i=i: out.__setitem__(i, pool.ask(f"q{i}", k=i))) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {i: (q, k) for i, (_, q, k, _) in out.items()} == {i: (f"q{i}", i) for i in range(40)}


def test_a_dead_worker_is_one_clear_error():
    pool, children, pipes = make_pool(1, 1, 0)
    (pid,) = children
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    with pytest.raises(WorkerGone, match="answering worker ended"):
        pool.ask("q")


def test_answers_come_from_the_index_the_server_reads(tmp_path):
    """A replaced index: until the server reopens, every answer is from the old one (the
    workers keep it); after, the workers reopen and answer from the new one; a server still
    on the old one never takes a newer worker's answer (its quotes would cut other texts)."""
    version = tmp_path / "manifest"
    version.write_text("v1")
    old, children, pipes = make_pool(2, 1, 1, version)
    try:
        version.write_text("v2")  # qa index replaced the folder
        assert {v for *_, v in (old.ask("q") for _ in range(6))} == {"v1"}
        new = old.reopen()  # what LiveEngine does before the next question
        answered = [new.ask("q") for _ in range(6)]
        assert {v for *_, v in answered} == {"v2"} and {p for p, *_ in answered} == {os.getpid(), *children}
        from_old = [old.ask("q") for _ in range(6)]  # the workers are on v2 now
        assert {(p, v) for p, *_, v in from_old} == {(os.getpid(), "v1")}
    finally:
        stop(children, pipes)


def test_answers_travel_whole(engine):
    """What a worker sends back is the engine's own answer (pickled and unpickled)."""
    answer = engine.ask("What is the maximum capacity of CECOT?")
    assert pickle.loads(pickle.dumps(answer)) == answer
