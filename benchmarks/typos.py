#!/usr/bin/env python3
"""Questions with typos: the answer with and without spelling correction (qa/answer/spelling.py).

    python benchmarks/typos.py                          # held-out articles + the seeds' calibration sets
    python benchmarks/typos.py --json docs/typos.json

Each question of a QA set gets one typo (seeded): in one of its words of five letters or
more, at any position, a letter deleted, inserted, replaced, or swapped with the next.
Both the set as written and its typed copy are answered with ``spelling`` off and on.  Then
the questions with a word readers shorten in a chat box ("people", "government", "are",
"with": :data:`SHORTENED`) are answered as written and with every such word shortened ("ppl",
"govt", "r", "w/"), spelling off and on (the correction writes the shorthand out).
Sets: the held-out SQuAD articles of `make train` (``.train/heldout-index``, never used to
fit or choose anything) and the seeds' calibration sets (eval/seeds-dev.jsonl and
eval/seeds-oos-dev.jsonl); the test sets (eval/seeds.jsonl, squad-dev) are not read.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import string
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from latency import load, machine  # noqa: E402

from qa.evaluation import load_qa, predict, score  # noqa: E402
from qa.pipeline import ensure_index, open_engine  # noqa: E402
from qa.settings import Settings  # noqa: E402

WORD = re.compile(r"\b[A-Za-z]{5,}\b")
SHOWN = ("answerable", "out_of_scope", "answer@1", "answer@5", "span@1", "coverage", "abstention", "sure_coverage")


def typo(word: str, rng: random.Random) -> str:
    """``word`` with one random edit."""
    i = rng.randrange(len(word))
    c = rng.choice(string.ascii_lowercase)
    op = rng.choice("dirt")
    if op == "d":
        return word[:i] + word[i + 1 :]
    if op == "i":
        return word[:i] + c + word[i:]
    if op == "r":
        return word[:i] + (c if c != word[i].lower() else rng.choice("aeiou")) + word[i + 1 :]
    if i == len(word) - 1:
        i -= 1
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def typed(items, seed: int = 11):
    """The items with one typo in each question that has a word of five letters or more."""
    rng = random.Random(seed)
    out = []
    for it in items:
        words = list(WORD.finditer(it.question))
        if words:
            m = rng.choice(words)
            it = replace(it, question=it.question[: m.start()] + typo(m.group(), rng) + it.question[m.end() :])
        out.append(it)
    return out


# How readers shorten words in a chat box: the inverse of the engine's table
# (qa/answer/spelling.py SHORTHAND), one shorthand per word.
SHORTENED = {
    "about": "abt",
    "administration": "admin",
    "amount": "amt",
    "approximately": "approx",
    "are": "r",
    "average": "avg",
    "because": "bc",
    "before": "b4",
    "department": "dept",
    "especially": "esp",
    "government": "govt",
    "information": "info",
    "international": "intl",
    "national": "natl",
    "number": "num",
    "organization": "org",
    "people": "ppl",
    "president": "prez",
    "through": "thru",
    "with": "w/",
    "without": "w/o",
    "year": "yr",
    "years": "yrs",
    "you": "u",
}
_SHORTENED = re.compile(r"\b(" + "|".join(SHORTENED) + r")\b", re.I)


def shortened(items):
    """The items whose questions have a word readers shorten, with every such word shortened
    (lower case: "Why are people …" → "Why r ppl …"); the other items are left out."""
    out = []
    for it in items:
        q = _SHORTENED.sub(lambda m: SHORTENED[m.group().lower()], it.question)
        if q != it.question:
            out.append(replace(it, question=q))
    return out


def engine_of(index: Path, docs: Path | None):
    settings = Settings(index=index) if docs is None else Settings(docs=docs, index=index)
    return ensure_index(settings)[0] if docs is not None else open_engine(settings)


# Sets that chose nothing in these benchmarks and are not test sets: (index, documents to
# index when it is missing or stale — None: made by `make train` —, QA files).
SETS = {
    "held-out articles": (ROOT / ".train" / "heldout-index", None, [ROOT / ".train" / "heldout-qa.jsonl"]),
    "seeds calibration": (
        ROOT / "index",
        ROOT / "seeds",
        [ROOT / "eval" / "seeds-dev.jsonl", ROOT / "eval" / "seeds-oos-dev.jsonl"],
    ),
}


def engines_and_items():
    """(set name, its engine, its questions) for each of :data:`SETS` there is an index for."""
    for name, (index, docs, files) in SETS.items():
        if not (index / "manifest.json").is_file() and docs is None:
            print(f"{name}: no index at {index} (run `make train` first); skipped", file=sys.stderr)
            continue
        yield name, engine_of(index, docs), [it for f in files for it in load_qa(f)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args()
    results = {}
    for name, engine, items in engines_and_items():
        results[name] = {}
        # Chat shorthand: only the questions that have a word to shorten, as written and shortened.
        short = shortened(items)
        chosen = {it.id for it in short}
        variants = (
            ("as written", items),
            ("one typo", typed(items)),
            ("shortenable, as written", [it for it in items if it.id in chosen]),
            ("in chat shorthand", short),
        )
        for variant, questions in variants:
            for spelling in (False, True):
                engine.settings = engine.settings.with_(spelling=spelling)
                row = score(questions, predict(engine, questions))
                key = f"{variant}, spelling {'on' if spelling else 'off'}"
                results[name][key] = {k: round(row[k], 3) for k in SHOWN if row.get(k) is not None}
                print(name, "|", key, "|", results[name][key], flush=True)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "load": load(), "results": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
