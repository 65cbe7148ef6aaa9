"""Names a question asks about that the collection never mentions (qa/answer/mentions.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from qa.answer.mentions import question_names, unmentioned
from qa.answer.spelling import Speller
from qa.serve.chat import ask_turn, card
from qa.serve.cli import render

from .conftest import cli


@pytest.mark.parametrize(
    "question, names",
    [
        ("Who painted the Mona Lisa?", [("Mona", "Lisa")]),
        ("What is France’s position on the deal?", [("France",)]),  # the possessive is not part of it
        ("What does Tren de Aragua do in Venezuela?", [("Tren", "de", "Aragua"), ("Venezuela",)]),
        ("Bukele visited. When did Rubio go?", [("Rubio",)]),  # a sentence's first word is no name
        ("How did the UN react?", []),  # acronyms: "UN" may be "United Nations" there
        ("what did guatemala say", []),  # lower case: capitals tell nothing
        ("Who Is The President Of France?", []),  # Title Case: neither
    ],
)
def test_names_are_runs_of_capitalised_words_inside_the_question(question, names):
    assert question_names(question) == names


def test_a_name_is_mentioned_when_any_of_its_words_is():
    used = {"court", "rubio"}.__contains__
    assert unmentioned("What did the Supreme Court and Mona Lisa say to Rubio?", used) == ["Mona Lisa"]
    assert unmentioned("Where did Rubio go?", used) == []


def test_the_speller_knows_the_collections_words_and_their_endings(fake_engine):
    speller = fake_engine.speller
    assert speller.mentioned("bukele") and speller.mentioned("venezuela")
    assert speller.mentioned("venezuelans")  # the articles write "Venezuela"
    assert not speller.mentioned("lisa") and not speller.mentioned("fahrenheit")


def test_a_name_typed_without_its_accents_is_mentioned(fake_engine):
    stemmer = fake_engine.speller.stemmer
    vocab = {"wöhler": 0, "ramón": 1, "venezuelaabcd": 2, "venezuelan": 3}
    speller = Speller(vocab, np.ones(len(vocab)), stemmer, frozenset())
    assert speller.mentioned("wohler") and speller.mentioned("ramon") and speller.mentioned("wöhler")
    # a form with a short ending, though a longer one sorts first
    assert speller.mentioned("venezuela") and not speller.mentioned("france")


def test_a_declined_question_says_which_names_the_articles_never_mention(fake_engine):
    answer = fake_engine.ask("Who painted the Mona Lisa?")
    assert not answer.answered and answer.unmentioned == ("Mona Lisa",)
    assert answer.to_prediction()["unmentioned"] == ["Mona Lisa"]
    assert "The articles never mention “Mona Lisa”." in render(answer).splitlines()
    turn = ask_turn(fake_engine, "Who painted the Mona Lisa?", None, None, None, [])
    assert "The articles never mention “Mona Lisa”" in card(fake_engine, dict(turn, turn=1))


def test_the_names_are_said_not_decided_on(fake_engine, monkeypatch):
    """The same decision, confidence and quotes as with no name check; nothing said of
    names the articles write, nor of a plain answer."""
    with_note = fake_engine.ask("Who painted the Mona Lisa?")
    monkeypatch.setattr(fake_engine, "unmentioned", lambda question: [])
    without = fake_engine.ask("Who painted the Mona Lisa?")
    monkeypatch.undo()
    assert (with_note.answered, with_note.confidence, with_note.quotes) == (
        without.answered,
        without.confidence,
        without.quotes,
    )
    assert fake_engine.ask("Who is the president of El Salvador?").unmentioned == ()


def test_a_tentative_answer_says_it_too_and_a_plain_one_never(engine):
    maybe = engine.ask("What did Guatemala say about taking deportees?")
    assert maybe.answered and maybe.tentative and maybe.unmentioned == ("Guatemala",)
    lines = render(maybe).splitlines()
    assert lines[1] == "The articles never mention “Guatemala”."
    plain = engine.ask("What is the maximum capacity of CECOT?")
    assert plain.answered and not plain.tentative and plain.unmentioned == ()
    assert "unmentioned" not in plain.to_prediction()


def test_cli_json_lists_the_names(seed_index):
    proc = cli("ask", "Who painted the Mona Lisa?", "--index", str(seed_index), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["answered"] is False and out["unmentioned"] == ["Mona Lisa"]
