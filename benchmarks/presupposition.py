#!/usr/bin/env python3
"""Questions whose subject the articles cover but whose detail they do not: how often the
answer stage still answers them ("who else was at the meeting besides A and B", "which cities
held the protests", "who held the post before X", "how did the court react").

    python benchmarks/presupposition.py
    python benchmarks/presupposition.py --json docs/presupposition.json
    python benchmarks/presupposition.py --answer-stage /tmp/trial/answer.json   # another refit

The set, ``train/presupposition-qa.jsonl`` (QA-set format), holds 622 questions written the way
readers ask over the 52 articles of `make train`'s ``fusion`` split: 414 whose event, person or
thing the article covers without the detail asked (each checked against its article), and 208
answerable ones with their answer copied from it. They are kept out of every training file
(tests/test_reader.py checks it), so they measure the shipped judge on a kind of question it was
not fitted to. The articles are the judge's training articles (its SQuAD questions and the
written ones), so this is not a test set of unseen articles either: squad-dev and the seeds'
test set stay that. The index (``.train/fusion-index``) is the one `make train` builds; it is
built here when missing (about 5 minutes).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from latency import load, machine  # noqa: E402

from qa.answer.scoring import ReaderScorer  # noqa: E402
from qa.evaluation import load_qa, predict, score  # noqa: E402
from qa.pipeline import ensure_index  # noqa: E402
from qa.settings import Settings  # noqa: E402

QA_FILE = ROOT / "train" / "presupposition-qa.jsonl"
SHOWN = (
    "answerable",
    "out_of_scope",
    "answer@1",
    "answer@5",
    "coverage",
    "abstention",
    "confidence_auc",
    "sure_coverage",
    "sure_abstention",
)

# Kinds of out-of-scope question, by their words (a question may be of several or none).
KINDS = {
    "who else / besides": r"\b(besides|else|other than|apart from|aside from|other)\b",
    "before / after / next": r"\b(before|after|succeed\w*|successor|predecessor|preceded|next|replaced|followed)\b",
    "a reaction or view": r"\b(react|respond|say|said|think|thought|view|opinion|criticis|comment)\w*",
    "how many / how much": r"\b(how many|how much|percent|percentage|number of|cost)\b",
    "did it ever / what came of it": r"^(did|has|have|was|were|is|does)\b|\bever\b|\bend up\b",
    "when exactly / how long": r"\b(when|what year|what date|which day|how long|what month|exact year)\b",
}


def fusion_engine():
    """The engine over the fusion split's articles, as train/fusion.py writes and indexes them."""
    from train.data import load_articles
    from train.fusion import WORK, write_corpus

    docs = WORK / "fusion-docs"
    write_corpus(load_articles(split="fusion"), docs)  # writes only what is missing or differs
    return ensure_index(Settings(docs=docs, index=WORK / "fusion-index"), progress=True)[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--answer-stage", type=Path, help="an answer.json other than the shipped one")
    args = ap.parse_args()
    if args.answer_stage and not args.answer_stage.is_file():
        sys.exit(f"error: no answer stage at {args.answer_stage}")
    engine = fusion_engine()
    if args.answer_stage:
        engine.reader_scorer = ReaderScorer.load(args.answer_stage)
    items = load_qa(QA_FILE)
    predictions = predict(engine, items)
    row = score(items, predictions)
    figures = {k: round(row[k], 3) for k in SHOWN if row.get(k) is not None}
    print(json.dumps(figures))
    # Out-of-scope questions by kind: the share answered, answered plainly, the median confidence.
    kinds = {}
    for kind, pattern in KINDS.items():
        got = [p for it, p in zip(items, predictions) if not it.answers and re.search(pattern, it.question, re.I)]
        kinds[kind] = {
            "questions": len(got),
            "answered": round(sum(p["answered"] for p in got) / len(got), 3),
            "answered_plainly": round(sum(p["answered"] and not p.get("tentative", False) for p in got) / len(got), 3),
            "median_confidence": round(statistics.median(p.get("confidence") or 0.0 for p in got), 3),
        }
        print(f"{kind}: {kinds[kind]}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": machine(),
                    "load": load(),
                    "set": str(QA_FILE.relative_to(ROOT)),
                    "answer_stage": str(args.answer_stage or "qa/models/answer.json"),
                    "results": figures,
                    "out_of_scope_by_kind": kinds,
                },
                indent=1,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
