"""Learn the sentence-scoring weights and the abstention threshold, and report them honestly.

    python benchmarks/tune.py                 # fit, cross-validate, print figures
    python benchmarks/tune.py --write         # ... and store the result in qa/weights.json

Data and splits (nothing here is tuned on the figures it reports):
- Ranking weights: a listwise (softmax) linear model over qa.scoring.FEATURES, fit on
  squad-dev questions plus eval/seeds-dev.jsonl. squad-dev figures are by leave-one-article-out
  cross-validation (each article scored by weights fit without it); eval/seeds.jsonl is never used.
- Two-sentence quotes: the pair margin is chosen on the training folds only, as the best
  answer@1 whose median top-quote length stays within --max-median characters.
- Abstention: a logistic model over the best candidate's absolute evidence, fit on seeds-dev
  (answerable vs out-of-scope) plus cross-corpus negatives (squad questions asked of the seeds,
  seeds-dev questions asked of squad) and squad positives; the threshold is the one that keeps
  coverage of answerable seeds-dev questions ≥ 0.95 with the most abstention.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from qa.evaluation import contains_answer, load_qa, score  # noqa: E402
from qa.pipeline import build_index, open_engine  # noqa: E402
from qa.scoring import FEATURES, WEIGHTS_FILE, Scorer  # noqa: E402
from qa.settings import Settings  # noqa: E402

SHARED = ROOT.parent / "shared" / "eval"
CONF_FEATURES = ("sentence_dense", "chunk_dense", "coverage", "neighbour_dense", "answer_type")


def engine_for(docs: Path, work: Path, name: str):
    settings = Settings(docs=docs, index=work / name)
    try:
        return open_engine(settings, docs=docs)
    except Exception:
        build_index(settings)
        return open_engine(settings, docs=docs)


def collect(engine, items):
    """Per question: candidate ids, features, labels (candidate sentence holds an answer)."""
    rows = []
    for it in items:
        sig = engine.retriever.signals(it.question, top_sentences=max(engine.settings.candidates, 100))
        cand, feats = engine.candidate_features(it.question, sig)
        texts = [engine.index.text(engine.index.sentences, int(c)) for c in cand]
        labels = np.array([contains_answer(t, it.answers) for t in texts]) if it.answers else np.zeros(len(cand), bool)
        X = np.stack([feats[f] for f in FEATURES], axis=1).astype(np.float64)
        rows.append({"item": it, "cand": cand, "feats": feats, "X": X, "y": labels})
    return rows


def fit_listwise(rows, l2: float = 1e-3, steps: int = 600, lr: float = 0.05) -> np.ndarray:
    """Weights maximising the softmax probability of answer-bearing candidates (Adam)."""
    data = [(r["X"], r["y"]) for r in rows if r["y"].any() and not r["y"].all()]
    w = np.array(Scorer().vector, dtype=np.float64)
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    for t in range(1, steps + 1):
        g = 2 * l2 * w
        for X, y in data:
            z = X @ w
            p = np.exp(z - z.max())
            p /= p.sum()
            zp = np.where(y, z, -np.inf)
            q = np.exp(zp - zp.max())
            q /= q.sum()
            g += X.T @ (p - q) / len(data)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        w -= lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    return w


def predictions(engine, rows, scorer: Scorer):
    engine.scorer = scorer
    preds = []
    for r in rows:
        quotes, conf = engine.rank(r["cand"], r["feats"], 10)
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
    return replace(Scorer(), weights={f: round(float(x), 4) for f, x in zip(FEATURES, w)}, **kw)


def choose_margin(engine_rows, w, max_median: float):
    """The pair margin with the best answer@1 whose median quote length is ≤ max_median."""
    best = (-1.0, 0.0)
    for margin in (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0):
        sc = with_weights(w, pair_margin=margin)
        hits, lengths = [], []
        for engine, rows in engine_rows:
            preds = predictions(engine, rows, sc)
            m = score([r["item"] for r in rows], preds)
            hits.append(m["answer@1"] * m["answerable"])
            lengths += [len(p["quotes"][0]["text"]) for p, r in zip(preds, rows) if p["quotes"] and r["item"].in_scope]
        total = sum(len([r for r in rows if r["item"].in_scope]) for _, rows in engine_rows)
        a1 = sum(hits) / total
        if np.median(lengths) <= max_median and a1 > best[0]:
            best = (a1, margin)
    return best[1]


def top_features(engine, rows, scorer):
    engine.scorer = scorer
    out = []
    for r in rows:
        if not len(r["cand"]):
            out.append(np.zeros(len(CONF_FEATURES)))
            continue
        s = scorer.score(r["feats"])
        i = int(np.argmax(s))
        out.append(np.array([r["feats"][f][i] for f in CONF_FEATURES]))
    return np.array(out)


def fit_logistic(X, y, weight, l2=1e-2, steps=3000, lr=0.1):
    Xb = np.hstack([np.ones((len(X), 1)), X])
    w = np.zeros(Xb.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(Xb @ w)))
        g = Xb.T @ ((p - y) * weight) / weight.sum() + l2 * np.r_[0, w[1:]]
        w -= lr * g * 10
    return w


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
        w = fit_listwise(train + dev_rows)
        margin = choose_margin([(squad, train), (seeds, dev_rows)], w, args.max_median)
        for p in predictions(squad, test, with_weights(w, pair_margin=margin)):
            cv_preds[p["id"]] = p
        print(f"  fold {art}: margin {margin}", file=sys.stderr)
    cv = score(squad_items, [cv_preds[it.id] for it in squad_items])
    print("squad-dev, leave-one-article-out CV:", json.dumps({k: v for k, v in cv.items() if not k.endswith("@k")}))

    # ---- final ranking weights on everything allowed
    w = fit_listwise(squad_rows + dev_rows)
    margin = choose_margin([(squad, squad_rows), (seeds, dev_rows)], w, args.max_median)
    ranker = with_weights(w, pair_margin=margin)
    print("weights:", json.dumps(ranker.weights), "pair_margin:", margin)

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
    conf_weights = {"bias": round(float(cw[0]), 4)} | {f: round(float(x), 4) for f, x in zip(CONF_FEATURES, cw[1:])}
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
    print(f"confidence: {conf_weights}; threshold {threshold} (seeds-dev abstention {best[1]:.3f}, coverage {best[2]:.3f})")

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
