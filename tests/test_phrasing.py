"""A question wrapped in conversational words is read as the question inside it."""

from __future__ import annotations

import pytest

from qa.answer.conversation import resolve
from qa.answer.phrasing import strip_framing


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
