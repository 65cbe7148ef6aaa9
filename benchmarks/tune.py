"""Learn the sentence-scoring weights and the abstention threshold, and report them honestly.

    python benchmarks/tune.py                 # fit, cross-validate, print figures
    python benchmarks/tune.py --write         # ... and store the result in qa/weights.json

Data and splits (nothing here is tuned on the figures it reports):
- Ranking weights: a listwise (softmax) linear model over qa.answer.scoring.FEATURES, fit on
  squad-dev questions plus eval/seeds-dev.jsonl. squad-dev figures are by leave-one-article-out
  cross-validation (each article scored by weights fit without it); eval/seeds.jsonl is never used.
- Quote units are single sentences and adjacent pairs; a length penalty is chosen on the
  training folds only, as the best answer@1 whose median top-quote length stays within
  --max-median characters.
- Abstention: a logistic model over the best candidate's absolute evidence, fit on seeds-dev
  (answerable vs out-of-scope) plus cross-corpus negatives (squad questions asked of the seeds,
  seeds-dev questions asked of squad) and squad positives; the threshold is the one that keeps
  coverage of answerable seeds-dev questions ≥ 0.95 with the most abstention.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

from qa.evaluation import contains_answer, load_qa, score  # noqa: E402
from qa.pipeline import ensure_index  # noqa: E402
from qa.answer.scoring import CONFIDENCE_FEATURES, UNIT_FEATURES, WEIGHTS_FILE, Scorer  # noqa: E402
from qa.settings import Settings  # noqa: E402

SHARED = ROOT.parent / "shared" / "eval"
LENGTH = UNIT_FEATURES.index("length")


def engine_for(docs: Path, work: Path, name: str):
    """The engine for ``docs``, (re)building its index when missing or stale."""
    return ensure_index(Settings(docs=docs, index=work / name))[0]


def collect(engine, items):
    """Per question: candidates, their features, quote units and unit labels (holds an answer)."""
    rows = []
    table = engine.index.sentences
    for it in items:
        sig = engine.retriever.signals(it.question, top_sentences=max(engine.settings.candidates, 100))
        cand, feats = engine.candidate_features(it.question, sig)
        U, firsts, lasts = engine.units(cand, feats)
        texts = [
            engine.index.documents[int(table[cand[f], 0])].text[int(table[cand[f], 1]) : int(table[cand[la], 2])]
            for f, la in zip(firsts, lasts)
        ]
        labels = np.array([contains_answer(t, it.answers) for t in texts]) if it.answers else np.zeros(len(U), bool)
        lengths = np.array([len(t) for t in texts])
        rows.append({"item": it, "cand": cand, "feats": feats, "U": U, "y": labels, "len": lengths})
    return rows


def fit_listwise(rows, l2: float = 1e-3, steps: int = 500, lr: float = 0.05) -> np.ndarray:
    """Weights maximising the softmax probability of answer-bearing units, per question (Adam)."""
    data = [r for r in rows if r["y"].any() and not r["y"].all()]
    X = np.vstack([r["U"] for r in data])
    y = np.concatenate([r["y"] for r in data])
    sizes = np.array([len(r["U"]) for r in data])
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    seg = np.repeat(np.arange(len(data)), sizes)
    w = np.zeros(X.shape[1])
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    for t in range(1, steps + 1):
        z = X @ w
        zmax = np.maximum.reduceat(z, starts)[seg]
        e = np.exp(z - zmax)
        p = e / np.add.reduceat(e, starts)[seg]
        ep = np.where(y, e, 0.0)
        q = ep / np.add.reduceat(ep, starts)[seg]
        g = X.T @ (p - q) / len(data) + 2 * l2 * w
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        w -= lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    return w


def predictions(engine, rows, scorer: Scorer):
    engine.scorer = scorer
    preds = []
    for r in rows:
        quotes, conf = engine.rank(r["cand"], r["feats"], 10) if len(r["cand"]) else ([], 0.0)
        preds.append(
            {
                "id": r["item"].id,
                "answered": True,
                "latency_ms": 0.0,
                "confidence": conf,
                "quotes": [{"doc_id": q.doc_id, "start": q.start, "end": q.end, "text": q.text} for q in quotes],
            }
        )
    return preds


def with_weights(w: np.ndarray, **kw) -> Scorer:
    return replace(Scorer(), weights={f: round(float(x), 4) for f, x in zip(UNIT_FEATURES, w)}, **kw)


def choose_penalty(rows, w, max_median: float) -> np.ndarray:
    """Shift the length weight to the best answer@1 whose median top-quote length is ≤ max_median.

    The top quote is always the best-scoring unit, so answer@1 and its length are read off
    the unit scores directly."""
    rows = [r for r in rows if r["item"].in_scope and len(r["U"])]
    best = (-1.0, w)
    for shift in np.arange(-3.0, 6.01, 0.25):
        w2 = w.copy()
        w2[LENGTH] -= shift
        top = [int(np.argmax(r["U"] @ w2)) for r in rows]
        hit = np.mean([r["y"][i] for r, i in zip(rows, top)])
        median = np.median([r["len"][i] for r, i in zip(rows, top)])
        if median <= max_median and hit > best[0]:
            best = (hit, w2)
    return best[1]


def top_features(engine, rows, scorer):
    """CONFIDENCE_FEATURES of each question's best unit."""
    cols = [UNIT_FEATURES.index(f) for f in CONFIDENCE_FEATURES]
    out = []
    for r in rows:
        if not len(r["U"]):
            out.append(np.zeros(len(cols)))
            continue
        i = int(np.argmax(scorer.score(r["U"])))
        out.append(r["U"][i, cols])
    return np.array(out)


def fit_logistic(X, y, weight, l2=1e-2, steps=3000, lr=1.0):
    Xb = np.hstack([np.ones((len(X), 1)), X])
    w = np.zeros(Xb.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(Xb @ w)))
        g = Xb.T @ ((p - y) * weight) / weight.sum() + l2 * np.r_[0, w[1:]]
        w -= lr * g
    return w


# Whole (~75 lines): the script's steps in order (arguments, the runs, the report).
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, default=ROOT / ".bench", help="where indexes are built")
    ap.add_argument("--max-median", type=float, default=280.0, help="limit on median top-quote characters")
    ap.add_argument("--write", action="store_true", help=f"write the result to {WEIGHTS_FILE.relative_to(ROOT)}")
    args = ap.parse_args()
    t0 = time.perf_counter()

    squad_items = load_qa(SHARED / "squad-dev" / "qa.jsonl")
    dev_items = load_qa(ROOT / "eval" / "seeds-dev.jsonl")
    squad = engine_for(SHARED / "squad-dev" / "corpus", args.work, "squad-dev")
    seeds = engine_for(ROOT / "seeds", args.work, "seeds")
    squad_rows = collect(squad, squad_items)
    dev_rows = collect(seeds, dev_items)
    print(f"features collected in {time.perf_counter() - t0:.0f} s", file=sys.stderr)

    # ---- leave-one-article-out cross-validation on squad-dev
    articles = sorted({it.doc_ids[0] for it in squad_items})
    cv_preds = {}
    for art in articles:
        train = [r for r in squad_rows if r["item"].doc_ids[0] != art]
        test = [r for r in squad_rows if r["item"].doc_ids[0] == art]
        w = choose_penalty(train + dev_rows, fit_listwise(train + dev_rows), args.max_median)
        for p in predictions(squad, test, with_weights(w)):
            cv_preds[p["id"]] = p
        print(f"  fold {art}: length weight {w[LENGTH]:.2f}", file=sys.stderr)
    cv = score(squad_items, [cv_preds[it.id] for it in squad_items])
    print("squad-dev, leave-one-article-out CV:", json.dumps({k: v for k, v in cv.items() if not k.endswith("@k")}))

    # ---- final ranking weights on everything allowed
    w = choose_penalty(squad_rows + dev_rows, fit_listwise(squad_rows + dev_rows), args.max_median)
    ranker = with_weights(w)
    print("weights:", json.dumps(ranker.weights))

    # ---- abstention: positives = answerable questions on their own corpus; negatives =
    # out-of-scope seeds-dev questions, squad questions on the seeds, seeds-dev questions on squad.
    cross_squad_on_seeds = collect(seeds, squad_items[::4])
    cross_dev_on_squad = collect(squad, [it for it in dev_items if it.in_scope])
    groups = [
        (top_features(seeds, [r for r in dev_rows if r["item"].in_scope], ranker), 1, 4.0),
        (top_features(seeds, [r for r in dev_rows if not r["item"].in_scope], ranker), 0, 4.0),
        (top_features(squad, squad_rows[::4], ranker), 1, 0.5),
        (top_features(seeds, cross_squad_on_seeds, ranker), 0, 0.5),
        (top_features(squad, cross_dev_on_squad, ranker), 0, 1.0),
    ]
    X = np.vstack([g[0] for g in groups])
    y = np.concatenate([np.full(len(g[0]), g[1]) for g in groups]).astype(float)
    wt = np.concatenate([np.full(len(g[0]), g[2]) for g in groups])
    cw = fit_logistic(X, y, wt)
    conf_weights = {"bias": round(float(cw[0]), 4)} | {
        f: round(float(x), 4) for f, x in zip(CONFIDENCE_FEATURES, cw[1:])
    }
    probe = replace(ranker, confidence_weights=conf_weights)
    dev_conf = np.array([p["confidence"] for p in predictions(seeds, dev_rows, probe)])
    dev_pos = np.array([r["item"].in_scope for r in dev_rows])
    best = None
    for th in np.unique(np.round(dev_conf, 4)):
        coverage = float(np.mean(dev_conf[dev_pos] >= th))
        abstain = float(np.mean(dev_conf[~dev_pos] < th))
        if coverage >= 0.95 and (best is None or abstain > best[1]):
            best = (float(th), abstain, coverage)
    threshold = round(best[0] - 1e-4, 4)
    print(
        f"confidence: {conf_weights}; threshold {threshold} (seeds-dev abstention {best[1]:.3f}, coverage {best[2]:.3f})"
    )

    final = replace(
        probe,
        min_confidence=threshold,
        source=f"benchmarks/tune.py on squad-dev + eval/seeds-dev.jsonl, {time.strftime('%Y-%m-%d')}",
    )
    if args.write:
        WEIGHTS_FILE.write_text(json.dumps(final.to_json(), indent=2) + "\n", encoding="utf-8")
        print(f"wrote {WEIGHTS_FILE.relative_to(ROOT)}")
    print(f"done in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
