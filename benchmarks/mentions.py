#!/usr/bin/env python3
"""Questions about things the articles never mention (``qa/answer/mentions.py``): how
often the answer stage names what it did not find, and what the name check would do as a
rule (declining every such question), on sets that are not test sets.

    python benchmarks/mentions.py
    python benchmarks/mentions.py --json docs/mentions.json

Far-off questions (every one out of scope): 300 questions of the held-out SQuAD articles
asked of the seeds, and the seeds' 118 calibration questions (written as readers ask) asked
of the 52 ``fusion`` articles of `make train`.  Near-topic sets, where the check must cost
little: the seeds' calibration sets (eval/seeds-dev.jsonl + eval/seeds-oos-dev.jsonl) and
train/presupposition-qa.jsonl over the fusion articles.  And the share of answerable
questions whose names the check would not find — every SQuAD question of the fusion split,
and the 1,144 answerable written questions (train/written-questions.jsonl), each asked of the
fusion articles: each such question is declined by the check (an upper bound on the coverage
it would cost); and the same share for the 1,662 near-topic written questions the articles do
not answer (the most it could gain there).  squad-dev and eval/seeds.jsonl are test sets and are not read here.  The fusion
index (``.train/fusion-index``) is built when missing (about 5 minutes), the seeds' one too.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from latency import load, machine  # noqa: E402
from presupposition import QA_FILE as PRESUPPOSITION_FILE  # noqa: E402
from presupposition import fusion_engine  # noqa: E402

from qa.evaluation import load_qa, predict, score  # noqa: E402
from qa.evaluation.qa_sets import Item  # noqa: E402
from qa.pipeline import ensure_index  # noqa: E402
from qa.settings import Settings  # noqa: E402

SHOWN = ("answerable", "out_of_scope", "coverage", "abstention", "confidence_auc", "sure_coverage", "sure_abstention")


def out_of_scope(questions: list[str], prefix: str) -> list[Item]:
    return [Item(f"{prefix}{i}", q, (), (), ()) for i, q in enumerate(questions)]


def figures(engine, items: list[Item]) -> dict:
    """The set's figures as shipped (the names are only said) and as they would be were the
    check a rule (a question naming something the collection never mentions declined), and
    how often the note is shown."""
    predictions = predict(engine, items)
    names = [engine.unmentioned(engine.read_as(it.question)[0]) for it in items]
    as_rule = [
        dict(p, answered=False, tentative=False, confidence=0.0) if found else p for p, found in zip(predictions, names)
    ]
    out = {}
    for key, preds in (("shipped", predictions), ("as_a_rule", as_rule)):
        row = score(items, preds)
        out[key] = {k: round(row[k], 3) for k in SHOWN if row.get(k) is not None}
    out["names_not_mentioned"] = sum(bool(n) for n in names)
    out["note_shown"] = sum("unmentioned" in p for p in predictions)
    out["examples"] = [
        {"question": it.question, "names": n, "answerable": it.in_scope, "answered": p["answered"]}
        for it, p, n in zip(items, predictions, names)
        if n
    ][:12]
    return out


def flagged(engine, questions: list[str]) -> dict:
    """How many of these questions name something the collection never mentions (each one a
    question the check, as a rule, would decline)."""
    hits = [(q, names) for q in questions if (names := engine.unmentioned(engine.read_as(q)[0]))]
    answers = [engine.ask(q) for q, _ in hits]  # what the shipped stage makes of them
    return {
        "questions": len(questions),
        "names_not_mentioned": len(hits),
        "share": round(len(hits) / len(questions), 4),
        "of_which_answered": sum(a.answered for a in answers),
        "of_which_answered_plainly": sum(a.answered and not a.tentative for a in answers),
        "examples": [{"question": q, "names": n} for q, n in hits[:12]],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--far-off", type=int, default=300, help="held-out SQuAD questions asked of the seeds")
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args()
    from train.data import load_articles
    from train.fusion import written_questions

    seeds, _ = ensure_index(Settings())
    fusion = fusion_engine()
    calibration = load_qa(ROOT / "eval" / "seeds-dev.jsonl") + load_qa(ROOT / "eval" / "seeds-oos-dev.jsonl")
    held = [qa["question"] for rows in load_articles(split="heldout").values() for r in rows for qa in r["qas"]]
    random.Random(args.seed).shuffle(held)
    results = {
        "far_off": {
            "heldout_squad_asked_of_seeds": figures(seeds, out_of_scope(held[: args.far_off], "h")),
            "seeds_calibration_asked_of_fusion": figures(
                fusion, out_of_scope([it.question for it in calibration], "c")
            ),
        },
        "near_topic": {
            "seeds_calibration": figures(seeds, calibration),
            "presupposition_fusion": figures(fusion, load_qa(PRESUPPOSITION_FILE)),
        },
        "answerable_with_names_not_found": {
            "squad_fusion_split": flagged(
                fusion,
                [qa["question"] for rows in load_articles(split="fusion").values() for r in rows for qa in r["qas"]],
            ),
            "written_answerable": flagged(fusion, [w["question"] for w in written_questions() if w["answerable"]]),
        },
        # Near-topic questions the articles do not answer, written as readers ask: the most a
        # rule could gain there.
        "out_of_scope_with_names_not_found": {
            "written_out_of_scope": flagged(
                fusion, [w["question"] for w in written_questions() if not w["answerable"]]
            ),
        },
    }
    for group, sets in results.items():
        for name, row in sets.items():
            shown = {k: v for k, v in row.items() if k != "examples"}
            print(f"{group} / {name}: {json.dumps(shown)}", flush=True)
    if args.json:
        record = {"machine": machine(), "load": load(), "results": results}
        args.json.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
