"""Metrics follow eval/FORMAT.md; QA files are checked line by line."""

from __future__ import annotations

import json

import pytest

from qa.evaluation import EvalError, contains_answer, load_qa, normalize_answer, score

from .conftest import ROOT


def test_normalisation_is_squad_like():
    assert normalize_answer("The  40,000 inmates!") == "40000 inmates"
    assert normalize_answer("“Tren de Aragua”") == "tren de aragua"
    assert contains_answer("CECOT … has a maximum capacity of 40,000.", ["40,000"])
    assert not contains_answer("It holds 400 people.", ["40,000"])
    assert not contains_answer("Bukeles", ["Bukele"]), "whole words only"


def test_score_counts_ranks_spans_and_abstention(tmp_path):
    qa = tmp_path / "qa.jsonl"
    qa.write_text(
        "\n".join(
            json.dumps(x)
            for x in (
                {"id": "a", "question": "q1", "answers": ["blue"], "doc_ids": ["d1"], "spans": [["d1", 0, 20]]},
                {"id": "b", "question": "q2", "answers": ["red"], "doc_ids": ["d2"]},
                {"id": "u", "question": "q3", "answers": [], "doc_ids": []},
            )
        )
    )
    items = load_qa(qa)
    preds = [
        {
            "id": "a",
            "answered": True,
            "latency_ms": 1.0,
            "quotes": [{"doc_id": "d1", "start": 5, "end": 15, "text": "sky is blue"}],
        },
        {
            "id": "b",
            "answered": False,
            "latency_ms": 3.0,
            "quotes": [
                {"doc_id": "d9", "start": 0, "end": 4, "text": "none"},
                {"doc_id": "d2", "start": 0, "end": 9, "text": "it is red"},
            ],
        },
        {"id": "u", "answered": False, "latency_ms": 2.0, "quotes": []},
    ]
    m = score(items, preds)
    assert m["doc@1"] == 0.5 and m["doc@5"] == 1.0 and m["mrr@10"] == pytest.approx(0.75)
    assert m["answer@1"] == 0.5 and m["answer@5"] == 1.0
    assert m["span@1"] == 1.0
    assert m["coverage"] == 0.5 and m["abstention"] == 1.0
    assert m["latency_p50_ms"] == 2.0
    assert "sure_coverage" not in m and "sure_abstention" not in m  # no tentative tier in these predictions
    assert "confidence_auc" not in m  # no confidence in these predictions
    for pred, c in zip(preds, (0.9, 0.2, 0.5)):
        pred["confidence"] = c
    # The out-of-scope question (0.5) outranks one answerable question (0.2) of two.
    assert score(items, preds)["confidence_auc"] == 0.5
    # With a tier: a tentative answer counts as answered, but not as a sure one.
    preds[0]["tentative"] = True
    preds[2].update(answered=True, tentative=True, quotes=[{"doc_id": "d1", "start": 0, "end": 4, "text": "none"}])
    m = score(items, preds)
    assert m["coverage"] == 0.5 and m["sure_coverage"] == 0.0
    assert m["abstention"] == 0.0 and m["sure_abstention"] == 1.0


@pytest.mark.parametrize(
    "line, message",
    [
        ("not json", "line 2: not valid JSON"),
        ('{"id": "x", "question": "q", "answers": []}', "line 2: 'doc_ids' missing"),
        ('{"id": "s01", "question": "q", "answers": [], "doc_ids": []}', "line 2: duplicate id"),
    ],
)
def test_bad_qa_lines_name_the_line(tmp_path, line, message):
    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"id": "s01", "question": "q", "answers": ["a"], "doc_ids": ["d"]}\n' + line + "\n")
    with pytest.raises(EvalError, match=message):
        load_qa(qa)


def test_seed_qa_sets_are_well_formed():
    test = load_qa(ROOT / "eval" / "seeds.jsonl")
    dev = load_qa(ROOT / "eval" / "seeds-dev.jsonl")
    assert sum(it.in_scope for it in test) >= 40 and sum(not it.in_scope for it in test) >= 8
    assert {d for it in test for d in it.doc_ids} == {p.stem for p in (ROOT / "seeds").glob("*.txt")}
    assert not {it.question for it in test} & {it.question for it in dev}, "dev and test do not overlap"
