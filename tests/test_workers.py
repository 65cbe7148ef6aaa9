"""The answer pool behind ``qa-web --workers N``: questions reach forked workers over pipes and
come back as the same answers (or the same errors) the server's own engine gives."""

from __future__ import annotations

import os
import pickle
import threading

import pytest

from qa.errors import QuestionError
from qa.serve.workers import AnswerPool, WorkerGone, start_workers


class PidEngine:
    """Answers with the id of the process that answered; refuses an empty question."""

    documents = ("a", "b")

    def ask(self, question: str, k: int = 1) -> tuple[int, str, int]:
        if not question:
            raise QuestionError("empty question")
        return os.getpid(), question, k


@pytest.fixture
def pool():
    children, pipes = start_workers(2, 2, PidEngine)
    pool = AnswerPool(PidEngine(), pipes, local_slots=1)
    yield pool, children
    for p in pipes:
        p.close()  # the workers see the pipes close and end
    for pid in children:
        os.waitpid(pid, 0)


def test_questions_go_to_every_worker_and_to_the_server(pool):
    pool, children = pool
    assert pool.slots == 5 and pool.documents == ("a", "b")  # 2 workers × 2 + 1 here; the rest is local
    answered = [pool.ask(f"q{i}", k=i) for i in range(10)]
    assert [(q, k) for _, q, k in answered] == [(f"q{i}", i) for i in range(10)]
    assert {pid for pid, _, _ in answered} == {os.getpid(), *children}


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
    assert {i: (q, k) for i, (_, q, k) in out.items()} == {i: (f"q{i}", i) for i in range(40)}


def test_a_dead_worker_is_one_clear_error():
    children, pipes = start_workers(1, 1, PidEngine)
    (pid,) = children
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pool = AnswerPool(PidEngine(), pipes, local_slots=0)
    with pytest.raises(WorkerGone, match="answering worker ended"):
        pool.ask("q")


def test_answers_travel_whole(engine):
    """What a worker sends back is the engine's own answer (pickled and unpickled)."""
    answer = engine.ask("What is the maximum capacity of CECOT?")
    assert pickle.loads(pickle.dumps(answer)) == answer
