"""Where articles disagree (qa/answer/disagreement.py): rules on hand-made quotes, no model."""

from __future__ import annotations

from qa.data import Quote
from qa.answer.disagreement import asked_kind, find, values, word_overlap


def q(doc: str, text: str, phrase: tuple[int, int] | None = None) -> Quote:
    return Quote(doc, 0, len(text), text, 1.0, f"Title {doc}", "", 1, phrase=phrase)


IMPRISONED_A = "He has imprisoned more than 75,000 people in an attempt to regain control of the country."
IMPRISONED_B = "His success hinges on the imprisonment of more than 81,000 people in the country."
CAPACITY = "The prison has a maximum capacity of 40,000 inmates."
CELL = "One former prisoner shared a story about being crammed into a cell with 70 others."


def test_kinds_asked():
    assert asked_kind("How many people has Bukele imprisoned?") == "count"
    assert asked_kind("In what year did Bukele come to power?") == "year"
    assert asked_kind("When was he elected?") == "year"
    assert asked_kind("On what date did Rubio meet Bukele?") == ""  # a day, not a year
    assert asked_kind("Who is Bukele?") == ""


def test_values_skip_years_and_days_of_dates():
    text = "On Monday, Feb. 3, 2025, 81,000 people and 2.5 million dollars; in 2019, 12 cells."
    assert [v for _, v, _ in values(text, "count")] == [81000.0, 2.5e6, 12.0]
    assert [v for _, v, _ in values(text, "year")] == [2025.0, 2019.0]


def test_different_counts_from_different_articles_are_flagged():
    quotes = [q("a", IMPRISONED_A), q("b", IMPRISONED_B), q("b", CAPACITY)]
    found = find("How many people has Bukele imprisoned?", quotes, word_overlap, 0.3)
    assert len(found) == 1 and found[0].text() == "75,000 [1] / 81,000 [2]"


def test_same_article_or_same_value_or_other_kind_is_not_flagged():
    question = "How many people has Bukele imprisoned?"
    assert find(question, [q("a", IMPRISONED_A), q("a", IMPRISONED_B)], word_overlap, 0.3) == []
    assert find(question, [q("a", IMPRISONED_A), q("b", IMPRISONED_A)], word_overlap, 0.3) == []
    assert (
        find("Why has Bukele imprisoned so many?", [q("a", IMPRISONED_A), q("b", IMPRISONED_B)], word_overlap, 0.3)
        == []
    )


def test_unrelated_or_far_apart_values_are_not_flagged():
    question = "How many people can the prison hold?"
    # 40,000 vs 75,000: close enough in size, but the sentences are not about the same thing
    assert find(question, [q("a", CAPACITY), q("b", IMPRISONED_A)], lambda a, b: 0.1) == []
    # 70 vs 75,000: not the same order of magnitude
    assert find(question, [q("a", CELL), q("b", IMPRISONED_A)], lambda a, b: 0.9) == []


def test_a_difference_must_involve_the_answer_shown_first():
    question = "How many others were in the cell?"
    quotes = [q("a", CELL), q("b", IMPRISONED_A), q("c", IMPRISONED_B)]
    assert find(question, quotes, lambda a, b: 0.9) == []


def test_the_answer_phrase_gives_the_value_when_there_is_one():
    text = "Bukele took power in 2019, and since 2022 his government has made mass arrests."
    start = text.index("2019")
    quotes = [q("a", text, (start, start + 4)), q("b", "Bukele was elected president in 2022.")]
    found = find("When did Bukele come to power?", quotes, lambda a, b: 0.9)
    assert found and found[0].text() == "2019 [1] / 2022 [2]"
    # A year the question names is not an answer.
    assert find("Did Bukele come to power in 2019?", quotes, lambda a, b: 0.9) == []
