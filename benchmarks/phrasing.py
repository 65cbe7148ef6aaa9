#!/usr/bin/env python3
"""Questions wrapped as readers type them ("Can you tell me …", "…? Thanks!"): the answer
with and without taking the wrapper off (qa/answer/phrasing.py).

    python benchmarks/phrasing.py
    python benchmarks/phrasing.py --json docs/phrasing.json

Each question of a QA set gets one of :data:`FRAMES` (seeded) and is answered with the
wrapper left on (the engine as it was before qa/answer/phrasing.py) and taken off; the
sets as written are answered too.  Sets, as in benchmarks/typos.py: the held-out SQuAD
articles of `make train` and the seeds' calibration sets; the test sets are not read.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from latency import load, machine  # noqa: E402
from typos import SHOWN, engines_and_items  # noqa: E402

import qa.answer.engine as engine_module  # noqa: E402
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


@contextmanager
def framing_kept():
    """The engine as before qa/answer/phrasing.py: the question read with its wrapper."""
    strip = engine_module.strip_framing
    engine_module.strip_framing = lambda text: text
    try:
        yield
    finally:
        engine_module.strip_framing = strip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args()
    results = {}
    for name, engine, items in engines_and_items():
        results[name] = {}
        typed = wrapped(items)
        for key, questions, keep in (
            ("as written", items, False),
            ("wrapped, read with the wrapper", typed, True),
            ("wrapped, wrapper taken off", typed, False),
        ):
            with framing_kept() if keep else nullcontext():
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
