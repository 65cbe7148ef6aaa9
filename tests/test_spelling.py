"""Misspelt question words, numbers written short and chat shorthand are searched as the
collection writes them (qa/answer/spelling.py)."""

from __future__ import annotations

import json

import pytest

from qa.answer.spelling import Speller, edits, known_words
from qa.settings import Settings

from .conftest import cli


@pytest.fixture(scope="module")
def speller(fake_engine) -> Speller:
    return fake_engine.speller


@pytest.mark.parametrize(
    "typed, meant",
    [
        ("Which Berkley law profesor is quoted?", "Which Berkeley law professor is quoted?"),
        ("what did rubiio say about the deportaton deal", "what did rubio say about the deportation deal"),
        ("How many prisonners can CECOT hold?", "How many prisoners can CECOT hold?"),
        ("WHAT DID BUKELLE OFFER?", "WHAT DID BUKELE OFFER?"),  # the word's case is kept
        ("Who is Bukle?", "Who is Bukele?"),  # of one stem's spellings, the longest
    ],
)
def test_misspelt_words_take_the_collections_spelling(speller, typed, meant):
    assert speller.correct(typed) == meant


@pytest.mark.parametrize(
    "question",
    [
        "How many guards work at CECOT",  # English words the articles never use: not typos
        "Who is the US ambassador to El Salvador?",
        "How many Venezuelans were deported in March?",  # an ending of a known word
        "Which international lender could pay for policing?",
        "Was Joséphine mentioned?",  # not ASCII: never touched
        "Who is Rubo?",  # fewer than five letters
        "Why did Xukele go?",  # the first letter is kept as typed
    ],
)
def test_real_words_names_and_short_words_stay_as_typed(speller, question):
    assert speller.correct(question) == question


@pytest.mark.parametrize(
    "typed, meant",
    [
        ("were the 81k arrests backed by evidence?", "were the 81,000 arrests backed by evidence?"),
        ("Which prison holds 40K people?", "Which prison holds 40,000 people?"),
        ("Did 2.5k people protest?", "Did 2,500 people protest?"),
        ("Is the fee $5m a year?", "Is the fee $5 million a year?"),
        ("Was it 2bn or 3mn dollars?", "Was it 2 billion or 3 million dollars?"),
        ("Were 81000 people arrested?", "Were 81,000 people arrested?"),
        ("Who imprisoned over 75k.", "Who imprisoned over 75,000."),
    ],
)
def test_numbers_written_short_are_searched_as_articles_write_them(speller, typed, meant):
    assert speller.correct(typed) == meant


@pytest.mark.parametrize(
    "question",
    [
        "What happened in 2019?",  # four digits: a year
        "How tall is the 5m wall?",  # metres, not millions: no "$"
        "Did he get a 3b grade?",
        "Were 1,000,000 people there?",  # written out already
        "Is it version 2.5.1k?",
        "Was it a 10km run?",
    ],
)
def test_other_numbers_stay_as_typed(speller, question):
    assert speller.correct(question) == question


def test_a_number_the_collection_uses_as_typed_stays(speller):
    # "Macintosh 512K", "Executive Order 11114": the collection's own names keep their numbers.
    own = Speller({"512k": 0, "11114": 1}, speller.frequency[:2], speller.stemmer, speller.known)
    assert own.correct("Where was the Macintosh 512K made?") == "Where was the Macintosh 512K made?"
    assert own.correct("What did Executive Order 11114 do?") == "What did Executive Order 11114 do?"
    assert own.correct("Did 128k units sell?") == "Did 128,000 units sell?"


@pytest.mark.parametrize(
    "typed, meant",
    [
        ("how many ppl has bukele locked up", "how many people has bukele locked up"),
        ("why r ppl worried abt cecot", "why are people worried about cecot"),
        ("what did the salvadoran govt say?", "what did the salvadoran government say?"),
        ("What did the Gov't say?", "What did the Government say?"),
        ("what did the state dept. say", "what did the state department say"),  # its full stop too
        ("Ppl say what?", "People say what?"),  # a capital kept
        ("GOVT PLAN?", "GOVERNMENT PLAN?"),
        ("were the arrests made w/o evidence", "were the arrests made without evidence"),
        ("can u tell me who Bukele is", "can you tell me who Bukele is"),
        ("how many yrs ago did tren de aragua start", "how many years ago did tren de aragua start"),
    ],
)
def test_chat_shorthand_is_written_out(speller, typed, meant):
    assert speller.correct(typed) == meant


@pytest.mark.parametrize(
    "question",
    [
        "What is the tuition at wash u per year?",  # u and r as names: not next to a verb
        "when was the first version of system r done",
        "Who was Santiago Ramón y Cajal?",  # the Spanish "and"
        "What did the U.S. say?",  # an acronym
        "Was it built in 300 BC?",  # an era, not "because"
        "What is ESP?",  # in capitals: an acronym
        "Is AMT owed on the INFO desk sale?",
        'Who must sign an "info"?',  # a word mentioned, in quotation marks
        "Did R&B sales grow?",
        "Who wrote the U-2 report?",
    ],
)
def test_names_acronyms_and_quoted_words_are_not_shorthand(speller, question):
    assert speller.correct(question) == question


def test_shorthand_the_collection_uses_stays(speller):
    # A collection that writes "info" (stemmed "info") keeps it; "ppl" is still written out.
    stem = speller.stemmer.stemWord
    own = Speller({stem("info"): 0}, speller.frequency[:1], speller.stemmer, speller.known)
    assert own.correct("Where is the info desk, ppl?") == "Where is the info desk, people?"


def test_a_question_in_chat_shorthand_gets_the_answer_of_the_question_written_out(engine):
    short = engine.ask("how many ppl r held in CECOT?")
    written = engine.ask("how many people are held in CECOT?")
    assert short.searched_as == "how many people are held in CECOT?"
    assert [(q.doc_id, q.start, q.end) for q in short.quotes] == [(q.doc_id, q.start, q.end) for q in written.quotes]
    assert short.confidence == written.confidence
    assert all(q.text == engine.document(q.doc_id).text[q.start : q.end] for q in short.quotes)


def test_edits_are_one_step_away():
    found = edits("cat")
    assert {"at", "cart", "act", "cut"} <= found and "cat" not in found
    assert "dog" not in found


def test_known_words_are_the_bundled_vocabulary_whole_words(tmp_path):
    words = known_words()
    assert {"professor", "guards", "population"} <= words and "##s" not in words
    assert known_words(str(tmp_path / "missing.json")) == frozenset()


def test_without_a_word_list_nothing_is_corrected(fake_engine):
    index = fake_engine.index
    speller = Speller(
        index.bm25_sentences.vocab_dict, fake_engine.speller.frequency, fake_engine.speller.stemmer, frozenset()
    )
    assert speller.correct("Which Berkley law profesor is quoted?") == "Which Berkley law profesor is quoted?"


def test_the_answer_is_that_of_the_spelling_searched_for(fake_engine):
    typed = fake_engine.ask("Which Berkley law profesor is quoted?")
    meant = fake_engine.ask("Which Berkeley law professor is quoted?")
    assert typed.searched_as == "Which Berkeley law professor is quoted?" and meant.searched_as is None
    assert typed.question == "Which Berkley law profesor is quoted?"
    assert [(q.doc_id, q.start, q.end) for q in typed.quotes] == [(q.doc_id, q.start, q.end) for q in meant.quotes]
    assert typed.confidence == meant.confidence
    assert typed.to_prediction()["searched_as"] == "Which Berkeley law professor is quoted?"
    assert "searched_as" not in meant.to_prediction()
    for q in typed.quotes:  # quotes stay verbatim
        assert q.text == fake_engine.document(q.doc_id).text[q.start : q.end]


def test_spelling_can_be_turned_off(fake_engine, monkeypatch):
    monkeypatch.setenv("QA_SPELLING", "off")
    assert Settings.from_env().spelling is False
    monkeypatch.setattr(fake_engine, "settings", fake_engine.settings.with_(spelling=False))
    assert fake_engine.ask("Which Berkley law profesor is quoted?").searched_as is None
    monkeypatch.setenv("QA_SPELLING", "perhaps")
    proc = cli("ask", "anything")
    assert proc.returncode != 0 and "QA_SPELLING='perhaps': not on or off" in proc.stderr


def test_cli_says_what_it_searched_for(seed_index):
    proc = cli("ask", "Which Berkley law profesor is quoted?", "--index", str(seed_index))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == (
        "Searched for “Which Berkeley law professor is quoted?” (spelling as in the articles)."
    )
    proc = cli("ask", "Which Berkley law profesor is quoted?", "--index", str(seed_index), "--json")
    assert json.loads(proc.stdout)["searched_as"] == "Which Berkeley law professor is quoted?"


def test_chat_turn_notes_the_search(fake_engine):
    from qa.serve.chat import ask_turn, card

    turn = ask_turn(fake_engine, "Which Berkley law profesor is quoted?", None, None, None, [])
    assert "Searched for “Which Berkeley law professor is quoted?”" in turn["note"]
    assert "Searched for" in card(fake_engine, dict(turn, turn=1))


def test_a_number_written_short_gets_the_answer_of_the_number_written_out(engine):
    short = engine.ask("Who imprisoned more than 75k people?")
    written = engine.ask("Who imprisoned more than 75,000 people?")
    assert short.searched_as == "Who imprisoned more than 75,000 people?"
    assert "75,000" in short.quotes[0].text
    assert [(q.doc_id, q.start, q.end) for q in short.quotes] == [(q.doc_id, q.start, q.end) for q in written.quotes]
    assert short.confidence == written.confidence
