#!/usr/bin/env python3
"""Questions as readers type them: without their question mark ("how old is bukele"),
wrapped ("Can you tell me …", "…? Thanks!") and asked as requests ("Name the …", "Give me the
number of …"): the answer with and without qa/answer/phrasing.py reading them as the question
they ask.

    python benchmarks/phrasing.py
    python benchmarks/phrasing.py --json docs/phrasing.json

Each question of a QA set is typed without its question mark and answered read as typed (the
engine before :func:`qa.answer.phrasing.with_question_mark`) and with the mark put back; the
sets as written are answered both ways too (the calibration sets hold questions typed without
one).  Each question gets one of :data:`FRAMES` (seeded) and is answered with the wrapper left
on (the engine as it was before qa/answer/phrasing.py) and taken off.  Then each question of a
form that a request can say without rewording the rest (:func:`requested`: "What is/was the
…?", "Who is/was the …?", "Which X is/was …?", "How many X <verb> …?") is asked as a request,
and answered read as typed and read as the question it asks; beside them, the same questions
as written.  Sets, as in benchmarks/typos.py: the held-out SQuAD articles of `make train` and
the seeds' calibration sets; the test sets are not read.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from latency import load, machine  # noqa: E402
from typos import SHOWN, engines_and_items  # noqa: E402

import qa.answer.engine as engine_module  # noqa: E402
from qa.answer.phrasing import as_question, strip_framing  # noqa: E402
from qa.evaluation import predict, score  # noqa: E402

# What readers put around a question in a chat box ({q}: the question, its first letter
# lower-cased where the frame goes before it).
FRAMES = (
    "Can you tell me {q}",
    "Could you please tell me {q}",
    "Do you know {q}",
    "Hi, {q}",
    "Please, {q}",
    "I'd like to know {q}",
    "Quick question: {q}",
    "According to the articles, {q}",
    "{Q} Thanks!",
)


def wrapped(items, seed: int = 11):
    """The items, each question in one of :data:`FRAMES`."""
    rng = random.Random(seed)
    out = []
    for it in items:
        q = it.question.strip()
        out.append(replace(it, question=rng.choice(FRAMES).format(q=q[:1].lower() + q[1:], Q=q)))
    return out


# "What was the name of the treaty?" → "Give me the name of the treaty." ({b}: the rest).
_WHAT_THE = re.compile(r"^(?:what|which)\s+(?:is|are|was|were)\s+(the\s+[^?]+?)\s*\?$", re.I)
_WHO_THE = re.compile(r"^who\s+(?:is|was)\s+(the\s+[^?]+?)\s*\?$", re.I)
_WHICH_X = re.compile(r"^which\s+(\w+(?:\s+\w+)?)\s+(is|are|was|were)\s+([^?]+?)\s*\?$", re.I)
# "How many troops fought at Wagram?" (no "did/were …": the verb needs no change).
_HOW_MANY = re.compile(r"^how\s+many\s+([^?]+?)\s*\?$", re.I)
_AUXILIARY = re.compile(
    r"\b(?:do|does|did|is|are|was|were|has|have|had|will|would|can|could|should|may|might|must)\b", re.I
)
_ASKING = ("Give me {b}.", "Tell me {b}.", "Find {b}.", "Name {b}.")


def requested(items, seed: int = 11) -> tuple[list, list]:
    """The items whose question a request can say with the rest of its words unchanged, and
    the same items asked as requests ("Name the first president of X.", "Give me the number
    of troops that …")."""
    rng = random.Random(seed)
    kept, out = [], []
    for it in items:
        q = " ".join(it.question.split())
        if m := _WHAT_THE.match(q):
            text = rng.choice(_ASKING).format(b=m.group(1))
        elif m := _WHO_THE.match(q):
            text = f"Name {m.group(1)}."
        elif (m := _WHICH_X.match(q)) and not _AUXILIARY.search(m.group(3)):
            text = f"Name the {m.group(1)} that {m.group(2)} {m.group(3)}."
        elif (m := _HOW_MANY.match(q)) and not _AUXILIARY.search(m.group(1)):
            words = m.group(1).split()
            if len(words) < 2:
                continue
            text = f"Give me the number of {words[0]} that {' '.join(words[1:])}."
        else:
            continue
        kept.append(it)
        out.append(replace(it, question=text))
    return kept, out


def unmarked(items):
    """The items, each question typed without its question mark, as readers type in a chat box."""
    return [replace(it, question=it.question.rstrip().rstrip("?").rstrip()) for it in items]


@contextmanager
def mark_kept():
    """The engine before questions got their question mark back (:func:`qa.answer.phrasing.with_question_mark`):
    wrappers and requests read as now, a question without its mark read without one."""
    asked = engine_module.asked
    engine_module.asked = lambda text: as_question(strip_framing(text))
    try:
        yield
    finally:
        engine_module.asked = asked


@contextmanager
def framing_kept():
    """The engine as before qa/answer/phrasing.py: the question read as typed (a wrapper left
    on, a request not asked as a question)."""
    asked = engine_module.asked
    engine_module.asked = lambda text: text
    try:
        yield
    finally:
        engine_module.asked = asked


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args()
    results = {}
    for name, engine, items in engines_and_items():
        results[name] = {}
        typed = wrapped(items)
        plain, requests = requested(items)
        bare = unmarked(items)
        for key, questions, keep in (
            ("as written", items, False),
            ("as written, read without a question mark added", items, "mark"),
            ("without question marks, read as typed", bare, "mark"),
            ("without question marks, read with one", bare, False),
            ("wrapped, read with the wrapper", typed, True),
            ("wrapped, wrapper taken off", typed, False),
            ("requestable, as written", plain, False),
            ("as requests, read as typed", requests, True),
            ("as requests, read as the question asked", requests, False),
        ):
            with mark_kept() if keep == "mark" else framing_kept() if keep else nullcontext():
                row = score(questions, predict(engine, questions))
            results[name][key] = {k: round(row[k], 3) for k in SHOWN if row.get(k) is not None}
            print(name, "|", key, "|", results[name][key], flush=True)
    if args.json:
        args.json.write_text(
            json.dumps({"machine": machine(), "load": load(), "frames": FRAMES, "results": results}, indent=1) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
