"""The learnt answer stage: the shipped reader, the answer phrase, answerability, training code."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from qa.answer.reader import MAX_NAME_WORDS, READER_DIR, Reader, ReaderError, batches, name_kept_whole
from qa.answer.scoring import READER_SCORER_FILE, ReaderScorer, Scorer

from .conftest import ROOT, SEED_QA, cli


@pytest.fixture(scope="module")
def reader():
    return Reader(READER_DIR, threads=1)


def test_shipped_artifacts_are_small_and_documented():
    files = [READER_DIR / "reader.onnx", READER_DIR / "tokenizer.json", READER_DIR / "reader.json", READER_SCORER_FILE]
    assert all(f.is_file() for f in files)
    assert sum(f.stat().st_size for f in files) < 30 * 2**20
    card = (ROOT / "qa" / "models" / "MODEL_CARD.md").read_text(encoding="utf-8")
    for must in ("SQuAD v1.1", "CC BY-SA 4.0", "make train", "held-out"):
        assert must in card
    scorer = ReaderScorer.load()
    assert scorer is not None and 0 < scorer.min_confidence < 1 and scorer.depth > 0


def test_reader_prefers_the_answer_sentence_and_finds_the_phrase(reader):
    question = "How many people can CECOT hold?"
    sentences = [
        "The prison was built in 2023 in the countryside.",
        "CECOT, El Salvador's Terrorism Confinement Center, has a maximum capacity of 40,000.",
        "Human rights groups have criticised the conditions.",
    ]
    relevance, phrases = reader.read(question, sentences)
    assert int(np.argmax(relevance)) == 1
    assert "40,000" in phrases[1]
    # The phrase is an exact slice of its sentence.
    readings = reader.readings(question, sentences)
    a, b = readings[1].phrase
    assert sentences[1][a:b] == phrases[1]


def test_reader_handles_empty_and_odd_input(reader):
    assert reader.readings("Who?", []) == []
    rel, phrases = reader.read("Who?", ["", "x" * 5000, "\u202e\u0000 — ü"])
    assert len(rel) == 3 and np.isfinite(rel).all()
    assert phrases[0] == ""


def test_a_phrase_does_not_cut_a_name_after_its_first_word():
    def kept(text: str, phrase: str) -> str:
        a = text.index(phrase)
        start, end = name_kept_whole(text, a, a + len(phrase))
        assert start == a  # only ever carried forward
        return text[start:end]

    assert kept("Secretary of State Marco Rubio met Bukele.", "Marco") == "Marco Rubio"
    assert kept("The report aired on CBS News Tuesday night.", "CBS") == "CBS News Tuesday"
    assert kept("He thanked Marco Rubio.", "Marco") == "Marco Rubio"  # not the full stop
    assert kept("He met Marco, then Nayib Bukele.", "Marco") == "Marco"  # a comma ends it
    assert kept("Marco Rubio met Bukele.", "Marco Rubio met") == "Marco Rubio met"  # ends in lower case
    assert kept("A stop in Marco U.S. Embassy", "Marco") == "Marco"  # not half an abbreviation
    assert kept("It fell to Spain (Castile Aragon)", "Spain (Castile Aragon)") == "Spain (Castile Aragon)"
    title = "In His Own Words Four Long Capitalised Words Follow"
    assert kept(title, "His").count(" ") == MAX_NAME_WORDS


def test_batches_cover_every_sentence_once_with_the_least_padding():
    import itertools

    rng = np.random.default_rng(3)
    for _ in range(50):
        lengths = sorted(rng.integers(8, 96, size=rng.integers(1, 12)).tolist())
        cuts = batches(lengths, 4, run_cost=40)
        assert [a for a, _ in cuts] == [0] + [b for _, b in cuts[:-1]] and cuts[-1][1] == len(lengths)
        assert all(0 < b - a <= 4 for a, b in cuts)

        def cost(parts):
            return sum((b - a) * lengths[b - 1] + 40 for a, b in parts)

        # Against every way of cutting the sorted lengths into runs of at most 4.
        n = len(lengths)
        best = min(
            cost(list(zip((0, *c), (*c, n))))
            for r in range(n)
            for c in itertools.combinations(range(1, n), r)
            if all(0 < b - a <= 4 for a, b in zip((0, *c), (*c, n)))
        )
        assert cost(cuts) == best
    assert batches([], 8) == []
    assert batches([40] * 7, 8) == [(0, 7)]  # equal lengths: one run


def test_missing_reader_is_a_clear_error(tmp_path):
    with pytest.raises(ReaderError, match="make train"):
        Reader(tmp_path)


@pytest.mark.slow
def test_answer_phrase_is_inside_the_top_quote_and_verbatim(engine):
    answer = engine.ask("How many people can CECOT hold?")
    top = answer.quotes[0]
    assert answer.answered and top.phrase is not None
    text = engine.index.documents[engine.index.doc_index[top.doc_id]].text
    assert top.start <= top.phrase[0] < top.phrase[1] <= top.end
    assert top.phrase_text == text[top.phrase[0] : top.phrase[1]]
    assert "40,000" in top.phrase_text
    pred = answer.to_prediction()
    assert pred["quotes"][0]["answer"] == {"start": top.phrase[0], "end": top.phrase[1], "text": top.phrase_text}


@pytest.mark.slow
def test_every_phrase_is_verbatim_on_the_seed_set(engine):
    from qa.evaluation import load_qa

    for item in load_qa(SEED_QA):
        for q in engine.ask(item.question, k=10).quotes:
            text = engine.index.documents[engine.index.doc_index[q.doc_id]].text
            assert q.text == text[q.start : q.end]
            if q.phrase:
                assert q.start <= q.phrase[0] <= q.phrase[1] <= q.end
                assert q.phrase_text == text[q.phrase[0] : q.phrase[1]]


@pytest.mark.slow
def test_old_scorer_still_available(engine):
    new = engine.ask("How many people can CECOT hold?", mode="hybrid")
    old = engine.ask("How many people can CECOT hold?", mode="hybrid-linear")
    assert old.quotes and all(q.phrase is None for q in old.quotes)
    assert new.quotes[0].phrase is not None


@pytest.mark.slow
def test_cli_json_carries_the_answer_phrase(seed_index):
    proc = cli(
        "ask", "How many people can CECOT hold?", "--json", "--index", str(seed_index), "--docs", str(ROOT / "seeds")
    )
    assert proc.returncode == 0, proc.stderr
    top = json.loads(proc.stdout)["quotes"][0]
    assert "40,000" in top["answer"]["text"]
    assert top["start"] <= top["answer"]["start"] < top["answer"]["end"] <= top["end"]


# ---------------------------------------------------------------- training code on tiny data


def test_training_examples_from_squad_lines(tmp_path, monkeypatch):
    from train import data

    rows = [
        {
            "title": "Alpha",
            "context": "Alpha was founded in 1901. It has a red flag. Its capital is Beta.",
            "qas": [{"question": "When was Alpha founded?", "answers": [{"text": "1901", "start": 21}]}],
        },
        {
            "title": "Alpha",
            "context": "The founders of Alpha were farmers. They grew wheat.",
            "qas": [{"question": "What did the founders grow?", "answers": [{"text": "wheat", "start": 45}]}],
        },
    ]
    path = tmp_path / "t.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
    articles = data.load_articles(path)
    examples = data.reader_examples(articles, questions=10, seed=1)
    by_q = {}
    for e in examples:
        by_q.setdefault(e.question, []).append(e)
    founded = by_q["When was Alpha founded?"]
    pos = [e for e in founded if e.label == 1]
    assert len(pos) == 1 and pos[0].sentence[pos[0].span[0] : pos[0].span[1]] == "1901"
    negs = [e for e in founded if e.label == 0]
    # One from its own paragraph, one near-topic sentence from the article's other paragraph.
    assert len(negs) == 2 and all("1901" not in e.sentence for e in negs)
    assert any("founders" in e.sentence for e in negs)
    assert data.split_of("Alpha") in ("reader", "fusion", "heldout")


def test_swapped_question_no_longer_matches_its_sentence():
    import random

    from train import data

    paras = data.paragraphs(
        [
            {
                "title": "Alpha",
                "context": "Alpha was founded by Carl Berg in 1901. The city has a river.",
                "qas": [],
            },
            {
                "title": "Alpha",
                "context": "In 1950 the mayor Dana Holt opened a harbour. The harbour brought trade.",
                "qas": [],
            },
        ]
    )
    terms = data.article_terms(paras)
    assert "Dana Holt" in terms["name"] and "1950" in terms["number"] and "The" not in terms["name"]
    sentence = "Alpha was founded by Carl Berg in 1901."
    question = "Who founded Alpha in 1901?"
    for seed in range(20):
        twin = data.swap_question(question, sentence, terms, random.Random(seed))
        # One term the sentence holds is replaced by one of the article's that it does not hold.
        assert twin and twin != question and twin.startswith("Who founded ")
        new = set(twin.rstrip("?").split()) - set(question.rstrip("?").split())
        assert new and not any(w.lower() in sentence.lower() for w in new)
    assert data.swap_question("Why?", sentence, terms, random.Random(0)) is None
    assert data.auc([2.0, 3.0], [1.0]) == 1.0 and data.auc([1.0], [1.0]) == 0.5


def test_listwise_and_logistic_fits_learn_a_planted_signal():
    from train.data import auc
    from train.fusion import fit_listwise, fit_logistic

    rng = np.random.default_rng(0)
    groups = []
    for _ in range(200):
        X = rng.normal(size=(8, 3))
        y = np.zeros(8, bool)
        y[int(np.argmax(X[:, 1] + 0.1 * rng.normal(size=8)))] = True
        groups.append((X, y))
    w = fit_listwise(groups, steps=300)
    assert np.argmax(np.abs(w)) == 1 and w[1] > 0
    X = rng.normal(size=(500, 2))
    y = (X[:, 0] + 0.3 * rng.normal(size=500) > 0).astype(float)
    wl, b = fit_logistic(X, y, steps=500)
    z = X @ wl + b
    assert auc(z[y == 1], z[y == 0]) > 0.9


def test_linear_gate_when_set_needs_the_linear_scorers_confidence_too(engine, monkeypatch):
    from dataclasses import replace

    question = "Who is the president of El Salvador?"
    shipped = engine.reader_scorer
    monkeypatch.setattr(engine, "reader_scorer", replace(shipped, linear_gate=False))
    assert engine.ask(question).answered
    # A linear scorer that doubts everything: behind a gate at its own threshold, nothing is answered.
    monkeypatch.setattr(engine, "scorer", replace(engine.scorer, min_confidence=1.0))
    assert engine.ask(question).answered
    for gated in (
        replace(shipped, linear_gate=True, gate_level=None),
        replace(shipped, linear_gate=True, gate_level=1.0),
    ):
        monkeypatch.setattr(engine, "reader_scorer", gated)
        answer = engine.ask(question)
        assert not answer.answered and answer.confidence == 0.0 and answer.quotes
    # A gate level the linear scorer's confidence reaches lets the judge decide.
    monkeypatch.setattr(engine, "reader_scorer", replace(shipped, linear_gate=True, gate_level=0.01))
    assert engine.ask(question).answered


@pytest.mark.parametrize(
    "abstention, chosen",
    [
        ({0.0: 0.4, 0.1: 0.4, 0.2: 0.4, 0.3: 0.4, 0.39: 0.3}, 0.3),  # ties: the highest level
        ({0.0: 0.5, 0.1: 0.4, 0.2: 0.4, 0.3: 0.4, 0.39: 0.3}, 0.0),  # no gate
        ({0.0: 0.3, 0.1: 0.3, 0.2: 0.3, 0.3: 0.3, 0.39: 0.35}, 0.39),  # the linear scorer's own threshold
    ],
)
def test_the_gate_level_abstains_most_at_the_same_coverage(monkeypatch, abstention, chosen):
    from dataclasses import replace

    from train import fusion

    def calibrate(engine, rs, files, coverage):
        level = rs.gate_level if rs.linear_gate else 0.0
        return level / 10, 0.5, {"files": [], "coverage": 0.95, "abstention": abstention[level]}

    class Seeds:  # what calibrate_gate reads of the engine: the linear scorer's threshold
        scorer = replace(Scorer(), min_confidence=0.39)

    monkeypatch.setattr(fusion, "calibrate", calibrate)
    assert fusion.gate_levels(0.39) == [0.0, 0.1, 0.2, 0.3, 0.39]
    scorer = ReaderScorer(pre_weights={}, weights={}, answerability={})
    got, threshold, _, record = fusion.calibrate_gate(Seeds(), scorer, 0.95)
    assert got.linear_gate is (chosen > 0) and (got.gate_level or 0.0) == chosen
    assert threshold == chosen / 10  # the threshold chosen behind that level
    assert {float(k): v["abstention"] for k, v in record["gate_levels"].items()} == abstention  # all on record


def test_a_far_off_question_that_shares_a_year_is_kept_out(engine):
    # The judge alone gives it a confidence above the threshold ("Bukele was elected
    # president in 2022"); the linear scorer's doubt keeps it out.
    answer = engine.ask("Who won the 2022 FIFA World Cup?")
    assert not answer.answered and answer.confidence == 0.0


def test_a_weighted_row_counts_as_that_many_copies():
    from train.fusion import fit_logistic

    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 2))
    y = (X[:, 0] + rng.normal(size=300) > 0).astype(float)
    weight = np.where(np.arange(300) < 50, 3.0, 1.0)
    copies = np.repeat(np.arange(300), weight.astype(int))
    w1, b1 = fit_logistic(X, y, weight=weight)
    w2, b2 = fit_logistic(X[copies], y[copies])
    # The same objective; only the standardisation differs (copies move the mean and spread).
    assert np.allclose(w1, w2, atol=0.05) and abs(b1 - b2) < 0.05
    assert np.allclose(fit_logistic(X, y)[0], fit_logistic(X, y, weight=np.full(300, 2.0))[0])


def test_the_written_questions_weight_is_chosen_on_articles_the_judge_did_not_see():
    from train import fusion

    rng = np.random.default_rng(2)
    # SQuAD runs: feature 0 tells answerable from not.  Written questions: only feature 1 does.
    A = rng.normal(size=(600, 2))
    y = (A[:, 0] > 0).astype(float)
    W = rng.normal(size=(200, 2))
    yw = (W[:, 1] + 0.3 * rng.normal(size=200) > 0).astype(float)
    docs = [f"article{i % 20}" for i in range(200)]
    k, curve = fusion.choose_written_weight(A, y, W, yw, docs)
    assert list(curve) == list(fusion.WRITTEN_WEIGHTS)
    assert k > 1 and curve[k] > curve[1] + 0.005  # they teach what the SQuAD runs do not
    assert k == min(w for w, a in curve.items() if a >= max(curve.values()) - 0.005)
    # Written questions that separate no better with more weight: counted once.
    k, curve = fusion.choose_written_weight(A, y, W, yw, docs, slack=1.0)
    assert k == 1


def article_texts() -> dict[str, tuple[str, str]]:
    """Title and text of every training article as train/fusion.py writes them (its doc ids,
    its paragraphs), by doc id."""
    from train.data import load_articles
    from train.fusion import doc_id_of, paragraph_texts

    return {doc_id_of(title): (title, "\n\n".join(paragraph_texts(paras))) for title, paras in load_articles().items()}


def eval_questions() -> set[str]:
    """Every question (lower case) of the project's QA sets in eval/, follow-up turns included."""
    asked = set()
    for f in (ROOT / "eval").glob("*.jsonl"):
        for line in f.read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            asked |= {t["question"].lower() for t in item.get("turns", [item])}
    return asked


def test_written_questions_are_about_training_articles_and_quote_their_answers():
    from train.data import split_of
    from train.fusion import written_questions

    rows = written_questions()
    assert len(rows) >= 500 and sum(not r["answerable"] for r in rows) >= 300
    assert len({r["question"].lower() for r in rows}) == len(rows)
    texts = article_texts()
    for r in rows:
        title, text = texts[r["doc_id"]]
        assert split_of(title) == "fusion", r  # never a reader, held-out or test article
        if r["answerable"]:
            assert r["answer"] in text, r
    assert not eval_questions() & {r["question"].lower() for r in rows}


def test_the_presupposition_set_is_about_training_articles_and_kept_out_of_training():
    from qa.evaluation import load_qa
    from train.data import split_of
    from train.fusion import written_from_qa_set, written_questions

    path = ROOT / "train" / "presupposition-qa.jsonl"
    items = load_qa(path)  # the QA-set format every evaluation reads
    rows = written_from_qa_set(path)
    assert len(rows) == len(items) >= 500 and sum(not r["answerable"] for r in rows) >= 300
    texts = article_texts()
    for it, r in zip(items, rows):
        title, text = texts[r["doc_id"]]
        assert split_of(title) == "fusion", r
        assert it.doc_ids == ((r["doc_id"],) if r["answerable"] else ())
        assert all(a in text for a in it.answers), r
    # A measure of the shipped judge on questions it was not fitted to: in no training file.
    asked = {r["question"].lower() for r in rows}
    assert len(asked) == len(rows)
    assert not asked & {r["question"].lower() for r in written_questions()}
    assert not asked & eval_questions()


def test_the_reader_gives_its_state_and_the_judge_reads_the_probe_over_it(reader, engine):
    from dataclasses import replace

    from qa.answer.scoring import ANSWERABILITY_FEATURES

    sentences = ["CECOT has a maximum capacity of 40,000.", "The prison opened in 2023."]
    first = reader.readings("How many people can CECOT hold?", sentences)
    again = reader.readings("How many people can CECOT hold?", sentences)
    assert first[0].state.shape == (384,) and np.array_equal(first[0].state, again[0].state)
    assert not np.array_equal(first[0].state, first[1].state)
    assert replace(first[0], state=None) == first[0]  # the state takes no part in ==
    scorer = ReaderScorer.load()
    assert "max_probe" in ANSWERABILITY_FEATURES and scorer.answerability.get("max_probe", 0) > 0
    assert len(scorer.probe_weights) == 384
    question = "How many guards work at CECOT?"
    with_probe = engine.ask(question).confidence
    engine.reader_scorer = replace(scorer, probe_weights=None)  # the probe's feature is then 0
    try:
        assert engine.ask(question).confidence != with_probe
    finally:
        engine.reader_scorer = scorer


def test_a_reader_exported_without_its_state_still_answers(tmp_path, engine):
    import shutil

    import onnx

    from train.reader import expose_state

    model = onnx.load(str(READER_DIR / "reader.onnx"))
    keep = [o for o in model.graph.output if o.name != "state"]
    del model.graph.output[:]
    model.graph.output.extend(keep)
    nodes = [n for n in model.graph.node if "state" not in n.output]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    onnx.save(model, str(tmp_path / "reader.onnx"))
    shutil.copyfile(READER_DIR / "tokenizer.json", tmp_path / "tokenizer.json")
    old = Reader(tmp_path)
    reading = old.readings("How many people can CECOT hold?", ["CECOT has a maximum capacity of 40,000."])[0]
    assert reading.state is None and ReaderScorer.load().probe(reading.state) == 0.0
    # What train/reader.py does to every reader it exports gives the state back, once.
    assert expose_state(tmp_path / "reader.onnx") and not expose_state(tmp_path / "reader.onnx")
    again = Reader(tmp_path).readings("How many people can CECOT hold?", ["CECOT has a maximum capacity of 40,000."])
    assert again[0].state.shape == (384,) and again[0].relevance == reading.relevance


def test_the_probe_is_cross_fitted_by_article():
    from train import fusion
    from train.data import auc

    rng = np.random.default_rng(3)
    S = rng.normal(size=(400, 2, 8))
    y = (S[:, 0, 0] + S[:, 1, 0] + 0.5 * rng.normal(size=400) > 0).astype(float)
    docs = [f"article{i % 13}" for i in range(400)]
    fold = fusion.article_folds(docs)
    assert all(len({f for f, d in zip(fold, docs) if d == a}) == 1 for a in set(docs))
    scores = fusion.cross_fitted_probe(S, y, docs)
    # Each row is scored by the probe fitted without its own fold's articles.
    w, b = fusion.fit_probe(S[fold != 0], y[fold != 0])
    assert np.allclose(scores[fold == 0], fusion.probe_scores(S[fold == 0], w, b))
    assert auc(scores[y == 1], scores[y == 0]) > 0.85


def test_the_stored_threshold_never_rounds_above_the_question_it_was_set_by():
    from train.fusion import stored_threshold

    assert stored_threshold(0.1115852513) == 0.11158 <= 0.1115852513
    assert stored_threshold(0.08) == 0.08 and stored_threshold(0.0799999999) == 0.07999


def test_auto_precision_trains_in_bf16_only_where_the_cpu_has_it_natively(tmp_path):
    from train.reader import bf16_wanted, cpu_flags

    # An AVX-512 CPU without AVX-512 BF16: oneDNN would emulate bf16 there (slower than float32).
    avx512 = {"avx2", "avx512f", "avx512bw", "avx512vl"}
    assert not bf16_wanted("auto", "cpu", avx512)
    assert bf16_wanted("auto", "cpu", avx512 | {"avx512_bf16"})
    assert bf16_wanted("auto", "cpu", {"amx_bf16", "amx_tile"})
    assert bf16_wanted("auto", "cpu", {"fp", "asimd", "bf16"})  # Arm
    assert not bf16_wanted("auto", "cuda", {"avx512_bf16"})
    assert bf16_wanted("bf16", "cpu", set()) and not bf16_wanted("fp32", "cpu", {"avx512_bf16"})
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    assert cpu_flags(info) == {"fpu", "avx512f", "avx512_bf16"}
    assert cpu_flags(tmp_path / "missing") == set()


def test_frozen_layers_keep_the_embeddings_and_first_layers_as_pretrained():
    import torch

    from train.data import Example
    from train.reader import build_model, train

    pretrained = build_model(4).encoder.state_dict()
    examples = [
        Example("How many people can CECOT hold?", "CECOT can hold 40,000 people.", 1, (15, 21), 0),
        Example("How many people can CECOT hold?", "Bukele met Rubio on Monday.", 0, None, 0),
        Example("Who met Rubio?", "Bukele met Rubio on Monday.", 1, (0, 6), 1),
        Example("Who met Rubio?", "CECOT can hold 40,000 people.", 0, None, 1),
    ]
    model = train(examples, 4, 3.0, 4, 1e-3, 13, listwise=1.0, log_every=100, freeze_embeddings=True, frozen_layers=2)
    after = model.encoder.state_dict()
    same = {name for name, w in after.items() if torch.equal(w, pretrained[name])}
    assert all(
        name in same for name in after if name.startswith(("embeddings.", "encoder.layer.0.", "encoder.layer.1."))
    )
    assert not any(name in same for name in after if name.startswith(("encoder.layer.2.", "encoder.layer.3.")))
