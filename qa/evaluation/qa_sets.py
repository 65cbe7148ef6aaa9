"""Scoring predictions against a QA set, in the formats of eval/FORMAT.md."""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

import numpy as np

from ..errors import EvalError
from ..settings import MODES

if TYPE_CHECKING:  # annotations only: scoring a prediction file needs no engine
    from ..answer.engine import Engine

KS = tuple(range(1, 11))


@dataclass(frozen=True)
class Item:
    id: str
    question: str
    answers: tuple[str, ...]
    doc_ids: tuple[str, ...]
    spans: tuple[tuple[str, int, int], ...]

    @property
    def in_scope(self) -> bool:
        return bool(self.answers or self.doc_ids)


def read_jsonl(path: Path, kind: str = "QA") -> Iterator[tuple[str, object]]:
    """``(where, value)`` for each non-empty line of a JSONL file; ``where`` ("FILE line N")
    starts every error about that line.  A missing, non-UTF-8 or non-JSON file is an EvalError."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise EvalError(f"{kind} file not found: {path}") from None
    except UnicodeDecodeError:
        raise EvalError(f"{path}: not valid UTF-8") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path} line {n}"
        try:
            yield where, json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalError(f"{where}: not valid JSON ({exc.msg})") from None


def load_qa(path: Path) -> list[Item]:
    """Read a QA-set JSONL file, with a line number in every error."""
    path = Path(path)
    items, seen = [], set()
    for where, row in read_jsonl(path):
        if not isinstance(row, dict):
            raise EvalError(f"{where}: expected a JSON object")
        for key, kind in (("id", str), ("question", str), ("answers", list), ("doc_ids", list)):
            if not isinstance(row.get(key), kind):
                raise EvalError(f"{where}: {key!r} missing or not a {kind.__name__}")
        if row["id"] in seen:
            raise EvalError(f"{where}: duplicate id {row['id']!r}")
        seen.add(row["id"])
        try:
            spans = tuple((str(d), int(s), int(e)) for d, s, e in row.get("spans") or ())
        except (TypeError, ValueError):
            raise EvalError(f"{where}: 'spans' must be [doc_id, start, end] triples") from None
        items.append(
            Item(row["id"], row["question"], tuple(map(str, row["answers"])), tuple(map(str, row["doc_ids"])), spans)
        )
    if not items:
        raise EvalError(f"{path}: no questions")
    return items


_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, no punctuation (any Unicode punctuation), no
    articles, single spaces."""
    # SQuAD deletes punctuation rather than spacing it, so "40,000" matches "40000".
    text = "".join(c for c in text.lower() if not unicodedata.category(c).startswith("P"))
    return " ".join(_ARTICLES.sub(" ", text).split())


def contains_answer(quote: str, answers: Iterable[str]) -> bool:
    q = f" {normalize_answer(quote)} "
    return any(a and f" {a} " in q for a in (normalize_answer(x) for x in answers))


def squad_em_f1(prediction: str, golds: Iterable[str]) -> tuple[float, float]:
    """SQuAD's exact match and token F1 of a predicted answer phrase, best over the golds."""
    from collections import Counter

    pred = normalize_answer(prediction).split()
    em = f1 = 0.0
    for gold in golds:
        g = normalize_answer(gold).split()
        em = max(em, float(pred == g))
        common = sum((Counter(pred) & Counter(g)).values())
        if common:
            p, r = common / len(pred), common / len(g)
            f1 = max(f1, 2 * p * r / (p + r))
    return em, f1


def _overlaps(quote: dict, spans) -> bool:
    return any(quote["doc_id"] == d and quote["start"] < e and s < quote["end"] for d, s, e in spans)


def score(items: list[Item], predictions: list[dict]) -> dict:
    """FORMAT.md metrics over predictions aligned with ``items``."""
    in_scope = [(it, p) for it, p in zip(items, predictions) if it.in_scope]
    out_scope = [(it, p) for it, p in zip(items, predictions) if not it.in_scope]
    m: dict = {"questions": len(items), "answerable": len(in_scope), "out_of_scope": len(out_scope)}
    doc_rank, ans_rank, span_rank = [], [], []
    for it, p in in_scope:
        quotes = p["quotes"][:10]
        doc_rank.append(next((r for r, q in enumerate(quotes, 1) if q["doc_id"] in it.doc_ids), 0))
        ans_rank.append(next((r for r, q in enumerate(quotes, 1) if contains_answer(q["text"], it.answers)), 0))
        if it.spans:
            span_rank.append(next((r for r, q in enumerate(quotes, 1) if _overlaps(q, it.spans)), 0))
    at = lambda ranks, k: float(np.mean([0 < r <= k for r in ranks])) if ranks else None  # noqa: E731
    if in_scope:
        m["doc@1"], m["doc@5"] = at(doc_rank, 1), at(doc_rank, 5)
        m["mrr@10"] = float(np.mean([1 / r if r else 0.0 for r in doc_rank]))
        m["answer@1"], m["answer@5"] = at(ans_rank, 1), at(ans_rank, 5)
        m["span@1"], m["span@5"] = at(span_rank, 1), at(span_rank, 5)
        m["answer@k"] = [at(ans_rank, k) for k in KS]
        m["span@k"] = [at(span_rank, k) for k in KS] if span_rank else None
        m["coverage"] = float(np.mean([p["answered"] for _, p in in_scope]))
        tops = [len(p["quotes"][0]["text"]) for _, p in in_scope if p["quotes"]]
        m["median_quote_chars"] = float(np.median(tops)) if tops else None
        # The answer phrase of the top quote, scored like SQuAD (exact match, token F1).
        if any(p["quotes"] and "answer" in p["quotes"][0] for _, p in in_scope):
            ems_f1s = [
                squad_em_f1(p["quotes"][0]["answer"]["text"], it.answers)
                if p["quotes"] and "answer" in p["quotes"][0]
                else (0.0, 0.0)
                for it, p in in_scope
            ]
            m["phrase_em"] = float(np.mean([e for e, _ in ems_f1s]))
            m["phrase_f1"] = float(np.mean([f for _, f in ems_f1s]))
    if out_scope:
        m["abstention"] = float(np.mean([not p["answered"] for _, p in out_scope]))
    # How well the confidence alone tells answerable from out-of-scope questions, whatever
    # the threshold: the chance that an answerable question outranks an out-of-scope one.
    conf = [p.get("confidence") for p in predictions]
    if in_scope and out_scope and all(isinstance(c, (int, float)) for c in conf) and len(set(conf)) > 1:
        m["confidence_auc"] = rank_auc([p["confidence"] for _, p in in_scope], [p["confidence"] for _, p in out_scope])
    # With a tentative tier ("Perhaps from the articles"): answers given without that hedge,
    # and out-of-scope questions that never got one (abstained, or only a tentative answer).
    sure = lambda p: p["answered"] and not p.get("tentative", False)  # noqa: E731
    if any("tentative" in p for p in predictions):
        if in_scope:
            m["sure_coverage"] = float(np.mean([sure(p) for _, p in in_scope]))
        if out_scope:
            m["sure_abstention"] = float(np.mean([not sure(p) for _, p in out_scope]))
    lat = [p["latency_ms"] for p in predictions]
    m["latency_p50_ms"], m["latency_p95_ms"] = float(np.percentile(lat, 50)), float(np.percentile(lat, 95))
    return m


def rank_auc(positives, negatives) -> float:
    """ROC AUC: the share of (positive, negative) pairs the positive outranks, ties half
    (NaN when either side is empty).  Also the training scripts' AUC (train/data.py)."""
    pos, neg = np.asarray(positives, dtype=float), np.sort(np.asarray(negatives, dtype=float))
    if not len(pos) or not len(neg):
        return float("nan")
    below = np.searchsorted(neg, pos, side="left")
    ties = np.searchsorted(neg, pos, side="right") - below
    return float((below + 0.5 * ties).sum() / (len(pos) * len(neg)))


def predict(engine: Engine, items: list[Item], mode: str | None = None, progress: bool = False) -> list[dict]:
    """One prediction per item (10 quotes each), in FORMAT.md's format."""
    it = items
    if progress:
        from tqdm import tqdm

        it = tqdm(items, unit="q", desc=mode or engine.settings.mode, leave=False)
    return [engine.ask(item.question, k=10, mode=mode).to_prediction(item.id) for item in it]


def write_predictions(predictions: list[dict], path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for p in predictions:
            f.write(json.dumps(p, ensure_ascii=False) + "\n")


COLUMNS = (
    "doc@1",
    "mrr@10",
    "span@1",
    "span@5",
    "answer@1",
    "answer@5",
    "median_quote_chars",
    "phrase_em",
    "phrase_f1",
    "coverage",
    "abstention",
    "confidence_auc",
    "sure_coverage",
    "sure_abstention",
    "latency_p50_ms",
    "latency_p95_ms",
)


def format_table(rows: dict[str, dict]) -> str:
    """A Markdown table: one row per mode, FORMAT.md's metrics as columns."""
    cols = [c for c in COLUMNS if any(r.get(c) is not None for r in rows.values())]
    head = "| mode | " + " | ".join(cols) + " |"
    rule = "|---" * (len(cols) + 1) + "|"
    body = []
    for name, r in rows.items():
        cells = []
        for c in cols:
            v = r.get(c)
            cells.append(
                "–"
                if v is None
                else (
                    f"{v:.0f}" if c == "median_quote_chars" else f"{v:.1f}" if c.startswith("latency") else f"{v:.3f}"
                )
            )
        body.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join([head, rule, *body])


def plot(rows: dict[str, dict], path: Path, title: str = "") -> None:
    """answer@k and span@k for k = 1..10, one line per mode, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, key in zip(axes, ("answer@k", "span@k")):
        for name, r in rows.items():
            if r.get(key):
                ax.plot(KS, r[key], marker="o", label=name)
        ax.set_title(key)
        ax.set_xlabel("k")
        ax.set_xticks(KS)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("share of answerable questions")
    axes[0].legend(loc="lower right")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def compare(engine: Engine, items: list[Item], modes: Iterable[str] = MODES, progress: bool = False) -> dict[str, dict]:
    """The same questions through several retrieval modes: mode → metrics."""
    return {mode: score(items, predict(engine, items, mode, progress)) for mode in modes}
