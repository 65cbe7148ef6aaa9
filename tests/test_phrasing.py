"""A question wrapped in conversational words is read as the question inside it, and a
request ("Name the …") as the question it asks."""

from __future__ import annotations

import pytest

from qa.answer.conversation import resolve
from qa.answer.phrasing import as_question, asked, strip_framing


@pytest.mark.parametrize(
    "typed, meant",
    [
        ("can you tell me who runs CECOT?", "who runs CECOT?"),
        ("Could you please tell me where CECOT is located", "where CECOT is located"),
        ("hey, how many people can CECOT hold? thanks", "how many people can CECOT hold?"),
        ("Please, what did Rubio say?", "what did Rubio say?"),
        ("What is the plan, please?", "What is the plan?"),
        ("Who is Bukele? Thanks!", "Who is Bukele?"),
        ("do you know if bukele met rubio", "bukele met rubio"),
        ("I'd like to know who Leti Volpp is", "who Leti Volpp is"),
        ("I want to know what Bukele offered", "what Bukele offered"),
        ("quick question: who met bukele", "who met bukele"),
        ("Explain why critics oppose the deal", "why critics oppose the deal"),
        ("tell me about CECOT", "CECOT"),
        ("Is it true that CECOT holds 40,000?", "CECOT holds 40,000?"),
        ("Tell me who Bukele is, please", "who Bukele is"),
        ("Who runs CECOT??", "Who runs CECOT?"),
        ("who runs CECOT ?!", "who runs CECOT?"),
        ("Any idea who runs CECOT?", "who runs CECOT?"),
        ("According to the articles, how many people can CECOT hold?", "how many people can CECOT hold?"),
        ("Who runs CECOT, according to these documents?", "Who runs CECOT?"),
        ("In the articles: who met Bukele?", "who met Bukele?"),
        ("I was wondering who met Bukele", "who met Bukele"),
    ],
)
def test_wrappers_come_off(typed, meant):
    assert strip_framing(typed) == meant


@pytest.mark.parametrize(
    "question",
    [
        "Can US citizens be deported?",  # "can" starts the question itself
        "Do prisoners get food?",
        "How will you tell me?",
        "What do prisoners know about the deal?",
        "Who said thank you to Bukele?",  # "thank you" inside, not after, the question
        "When did Burke receive a vote of thanks?",  # part of the question: no comma before it
        "Well-off continental dwellings consisted of?",
        "tell me",  # nothing would be left
        "thanks",
        "so what?",
        "Who runs CECOT!",
        "Any ideas for the deal?",
        "Which person was a former comrade to Ted Striker in the film Airplane!?",
        "What is in the news?",  # not "in the articles, …"
    ],
)
def test_questions_stay_as_typed(question):
    assert strip_framing(question) == question


def test_a_wrapped_question_gets_the_answer_of_the_bare_one(engine):
    bare = engine.ask("How many people can CECOT hold?")
    wrapped = engine.ask("Hi! Can you tell me how many people CECOT can hold? Thanks")
    inside = engine.ask("how many people CECOT can hold?")
    assert wrapped.question == "Hi! Can you tell me how many people CECOT can hold? Thanks"  # shown as typed
    assert wrapped.searched_as is None  # nothing was misspelt
    assert wrapped.answered and "40,000" in wrapped.quotes[0].text
    assert [(q.doc_id, q.start, q.end) for q in wrapped.quotes[:1]] == [
        (q.doc_id, q.start, q.end) for q in bare.quotes[:1]
    ]
    assert wrapped.confidence == inside.confidence  # the judge reads the question inside
    assert [q.start for q in wrapped.quotes] == [q.start for q in inside.quotes]
    for q in wrapped.quotes:  # quotes stay verbatim
        assert q.text == engine.document(q.doc_id).text[q.start : q.end]


def test_a_wrapped_follow_up_is_read_as_one():
    previous = "How many people can CECOT hold?"
    assert resolve("can you tell me why?", previous).asked == resolve("why?", previous).asked
    reading = resolve("Do you know what he said? thanks", "What did Rubio say about Bukele?")
    assert reading.followup and reading.question == "Do you know what he said? thanks"
    assert resolve("Please, who met Bukele?", previous).asked == "Please, who met Bukele?"  # stands alone: as typed


@pytest.mark.parametrize(
    "typed, meant",
    [
        ("Name the university where Leti Volpp teaches.", "Which university where Leti Volpp teaches?"),
        ("Give me the number of guards at CECOT.", "How many guards at CECOT?"),
        ("Tell me the total amount of money the U.S. will pay", "How much money the U.S. will pay?"),
        ("Find the maximum capacity of CECOT.", "What is the maximum capacity of CECOT?"),
        ("List the abuses the State Department names.", "Which abuses the State Department names?"),
        ("Name two prisons in El Salvador", "Which two prisons in El Salvador?"),
        ("identify a major Prussian loss to the Russians", "Which major Prussian loss to the Russians?"),
        ("Name another way the deal could fail", "Which other way the deal could fail?"),
        ("Find out who runs CECOT", "Who runs CECOT?"),
        ("Describe how the deal would work", "How the deal would work?"),
        ("Name El Salvador's president.", "Which El Salvador's president?"),
        # After the wrapper is off ("can you tell me", "explain"): what is left is asked.
        ("Can you tell me the capacity of CECOT?", "What is the capacity of CECOT?"),
        ("Tell me about the prison deal", "What is the prison deal?"),
        ("Explain the process used by the court", "What is the process used by the court?"),
    ],
)
def test_a_request_is_asked_as_a_question(typed, meant):
    assert asked(typed) == meant


@pytest.mark.parametrize(
    "question",
    [
        "Who runs CECOT?",
        "The Treaty of Paris",  # a title or a name, looked up as typed
        "The study of diseases of the immune system is called?",  # a question written so
        "The US deported how many people?",
        "name of the 2004 report that wanted to scrap the order",  # "name" is no verb here
        "State of emergency declared when?",
        "Find a lawyer",  # "find" before anything but "the …" may be no request
        "List prices",
        "Name it.",  # too little to ask
        "tell me about CECOT",  # no "the …": the wrapper comes off, nothing else changes
    ],
)
def test_what_is_no_request_stays(question):
    assert as_question(strip_framing(question)) == strip_framing(question)


@pytest.mark.parametrize(
    "typed, meant",
    [
        ("how old is bukele", "how old is bukele?"),
        ("Who runs CECOT.", "Who runs CECOT?"),
        ("is CECOT the largest prison in the americas", "is CECOT the largest prison in the americas?"),
        ("didn't rubio meet bukele", "didn't rubio meet bukele?"),
        ("the deal was announced when", "the deal was announced when?"),
        ("can you tell me who runs cecot", "who runs cecot?"),  # the wrapper off, then the mark
        # Left alone: a question with its mark, an exclamation, words that ask nothing.
        ("Who runs CECOT?", "Who runs CECOT?"),
        ("What a deal!", "What a deal!"),
        ("CECOT capacity", "CECOT capacity"),
        ("Bukele's approval rating", "Bukele's approval rating"),
        ("The Treaty of Paris", "The Treaty of Paris"),
    ],
)
def test_a_question_typed_without_its_mark_gets_one(typed, meant):
    assert asked(typed) == meant


def test_the_mark_is_read_not_shown(engine):
    bare = engine.ask("how many people can cecot hold")
    marked = engine.ask("how many people can cecot hold?")
    assert bare.question == "how many people can cecot hold"  # shown as typed
    assert bare.confidence == marked.confidence
    assert [(q.doc_id, q.start, q.end) for q in bare.quotes] == [(q.doc_id, q.start, q.end) for q in marked.quotes]
    assert "40,000" in bare.quotes[0].text


def test_a_request_gets_the_answer_of_the_question_it_asks(engine):
    request = engine.ask("Give me the maximum capacity of CECOT.")
    question = engine.ask("What is the maximum capacity of CECOT?")
    assert request.question == "Give me the maximum capacity of CECOT."  # shown as typed
    assert request.answered and "40,000" in request.quotes[0].text
    assert request.confidence == question.confidence
    assert [(q.doc_id, q.start, q.end) for q in request.quotes] == [(q.doc_id, q.start, q.end) for q in question.quotes]
    for q in request.quotes:  # quotes stay verbatim
        assert q.text == engine.document(q.doc_id).text[q.start : q.end]


def test_training_reads_a_question_as_the_engine_does(engine):
    # train/fusion.py reads its written questions with Engine.read_as, as Engine.ask does.
    text, searched = engine.read_as("Can you tell me how many ppl cecot can hold")
    assert text == searched == "how many people cecot can hold?"
    assert engine.ask("Can you tell me how many ppl cecot can hold").searched_as == searched
    assert engine.read_as("Who runs CECOT?") == ("Who runs CECOT?", None)
