#!/usr/bin/env python3
"""Does `make train`'s answer stage, refitted on this machine, give the shipped one?

    python benchmarks/refit.py                          # refit (train/fusion.py, ~20-30 min), then compare
    python benchmarks/refit.py --refit /tmp/a.json      # compare a refit made before (train/fusion.py --out)
    python benchmarks/refit.py --json docs/refit.json

The refit is ``python train/fusion.py --out <work>/answer.json``: the same command as `make
train`'s second step, written beside the shipped ``qa/models/answer.json`` instead of over it
(it reads the shipped reader).  Compared: every fitted number (the largest difference per
group: pre-ranking, re-scoring, answerability, the probe; the threshold and the sure level),
and, answered with each of the two, what a user sees on the seeds' calibration sets, the
presupposition set (``.train/fusion-index``, built when missing), and both test sets — how many
questions change their decision (answered or not), their tentative flag or their first quote,
the largest change of confidence, and each set's figures.  Nothing is chosen on any of them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from latency import machine  # noqa: E402
from presupposition import QA_FILE as PRESUPPOSITION_FILE  # noqa: E402
from presupposition import fusion_engine  # noqa: E402
from quality import SETS as TEST_SETS  # noqa: E402
from quality import engine_for  # noqa: E402

from qa.answer.scoring import READER_SCORER_FILE, ReaderScorer  # noqa: E402
from qa.evaluation import load_qa, predict, score  # noqa: E402

GROUPS = ("pre_weights", "weights", "answerability", "probe_weights")
LEVELS = ("min_confidence", "sure_confidence", "depth", "linear_gate", "gate_level")
SHOWN = ("answer@1", "answer@5", "span@1", "coverage", "abstention", "confidence_auc", "sure_coverage")


def weight_differences(shipped: dict, refit: dict) -> dict:
    """Per group of fitted numbers, the largest absolute difference (and the largest
    absolute value, for scale); the levels side by side."""
    out = {}
    for group in GROUPS:
        a, b = shipped.get(group), refit.get(group)
        if a is None or b is None:
            continue
        pairs = [(a[k], b[k]) for k in a] if isinstance(a, dict) else list(zip(a, b))
        out[group] = {
            "max_abs_difference": round(max(abs(x - y) for x, y in pairs), 6),
            "max_abs_value": round(max(abs(x) for x, _ in pairs), 6),
        }
    out["levels"] = {key: [shipped.get(key), refit.get(key)] for key in LEVELS}
    return out


def provenance(file: Path, record: dict) -> dict:
    """Where an answer stage is and how it was made (its record's training date, minutes, command)."""
    training = record.get("training", {})
    where = file.relative_to(ROOT) if file.is_relative_to(ROOT) else file
    return {"file": str(where), **{k: training[k] for k in ("date", "minutes", "command") if k in training}}


def first_quote(prediction: dict) -> tuple | None:
    quotes = prediction["quotes"]
    return (quotes[0]["doc_id"], quotes[0]["start"], quotes[0]["end"]) if quotes else None


def answer_differences(engine, items, stages: dict[str, ReaderScorer]) -> dict:
    """The set answered with each answer stage: its figures, and how many answers change."""
    predictions, figures = {}, {}
    for name, stage in stages.items():
        engine.reader_scorer = stage
        predictions[name] = predict(engine, items, "hybrid")
        row = score(items, predictions[name])
        figures[name] = {k: round(row[k], 4) for k in SHOWN if row.get(k) is not None}
    a, b = predictions.values()
    pairs = list(zip(a, b))
    return {
        "questions": len(items),
        "decision_changed": sum(x["answered"] != y["answered"] for x, y in pairs),
        "tentative_changed": sum(bool(x.get("tentative")) != bool(y.get("tentative")) for x, y in pairs),
        "first_quote_changed": sum(first_quote(x) != first_quote(y) for x, y in pairs),
        "max_confidence_change": round(max(abs((x["confidence"] or 0) - (y["confidence"] or 0)) for x, y in pairs), 4),
        "figures": figures,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--refit", type=Path, help="an answer stage refitted before (skips the refit)")
    ap.add_argument("--work", type=Path, default=ROOT / ".bench", help="where the refit and indexes go")
    ap.add_argument("--json", type=Path, help="write the comparison here")
    args = ap.parse_args()
    refit = args.refit or args.work / "refit" / "answer.json"
    if args.refit is None:
        refit.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(ROOT / "train" / "fusion.py"), "--out", str(refit)], check=True)
    elif not refit.is_file():
        sys.exit(f"error: no answer stage at {refit}")
    shipped_record = json.loads(READER_SCORER_FILE.read_text(encoding="utf-8"))
    refit_record = json.loads(refit.read_text(encoding="utf-8"))
    stages = {"shipped": ReaderScorer.load(READER_SCORER_FILE), "refit": ReaderScorer.load(refit)}

    seeds = engine_for(ROOT / "seeds", args.work / "seeds")
    calibration = load_qa(ROOT / "eval" / "seeds-dev.jsonl") + load_qa(ROOT / "eval" / "seeds-oos-dev.jsonl")
    sets = {
        "seeds_calibration": answer_differences(seeds, calibration, stages),
        "presupposition_fusion": answer_differences(fusion_engine(), load_qa(PRESUPPOSITION_FILE), stages),
    }
    for name, (docs, qa_file) in TEST_SETS.items():
        engine = seeds if name == "seeds" else engine_for(docs, args.work / name)
        sets[f"test_{name}"] = answer_differences(engine, load_qa(qa_file), stages)

    result = {
        "machine": machine(),
        "shipped": provenance(READER_SCORER_FILE, shipped_record),
        "refit": provenance(refit, refit_record),
        "fitted_numbers": weight_differences(shipped_record, refit_record),
        "answers": sets,
    }
    print(json.dumps(result["fitted_numbers"], indent=1))
    for name, row in sets.items():
        changes = {k: v for k, v in row.items() if k != "figures"}
        print(name, changes, row["figures"])
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
