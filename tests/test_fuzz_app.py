"""Fuzzed questions through the chat functions (in process) and the running app (HTTP):
always a reply string or a clear message, never an exception, and the app stays up."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

try:
    from tests.test_app import CECOT, SEEDS, client, start_app
except ImportError:  # tests/ not a package: pytest puts tests/ itself on sys.path
    from test_app import CECOT, SEEDS, client, start_app

from qa.settings import MODES, Settings  # noqa: E402
from qa.serve.web import FAILURE, NO_ANSWER_LEAD, chat, respond  # noqa: E402

CLEAR_STARTS = (
    "**From the articles:**",
    "**Perhaps from the articles** (",
    f"**{NO_ANSWER_LEAD}**",
    "**Sorry, I can't answer that:**",
)

questions = st.one_of(
    st.just(""),
    st.text(alphabet=" \t\n\r\x0b\x0c\u00a0\u2028\u3000", max_size=50),
    st.text(max_size=300),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=80),
    st.sampled_from(
        ["\x00\x01\x02 who?", "\x7f\x1b[31m red", "🙂🤖💥 CECOT 🏛️", "\u202eevil\u202c?", "a\u200bb\u200cc"]
    ),
    st.sampled_from(
        [
            "<script>alert(1)</script>",
            '"><img src=x onerror=alert(1)>',
            "'; DROP TABLE articles; --",
            "1 OR 1=1",
            "{{7*7}} ${7*7} <%= 7*7 %>",
            "![](https://evil.example/x.png)",
            "[x](javascript:alert(1))",
        ]
    ),
    st.builds(lambda c, n: c * n, st.sampled_from(["a", "é", "🙂", " ", "word "]), st.integers(1990, 100_000)),
)


@pytest.fixture(scope="module")
def fuzz_engine(seed_index):
    """The session's real-model seed index (conftest.py), one torch thread as app.py runs it."""
    import torch

    from qa.pipeline import open_engine

    before = torch.get_num_threads()
    yield open_engine(Settings.from_env(index=seed_index, docs=SEEDS, threads=1))
    torch.set_num_threads(before)  # torch's thread count is process-wide: give it back


def _is_clear(reply: str) -> bool:
    return isinstance(reply, str) and reply.startswith(CLEAR_STARTS) and "Traceback" not in reply


@pytest.mark.slow
@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(question=questions)
def test_chat_function_always_replies(fuzz_engine, question):
    reply = chat(fuzz_engine, question)
    assert _is_clear(reply), reply[:300]
    assert reply != FAILURE


@pytest.mark.slow
@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    question=questions,
    k=st.one_of(st.integers(-5, 50), st.none(), st.just("3"), st.floats(allow_nan=True)),
    mode=st.one_of(st.sampled_from(MODES), st.none(), st.text(max_size=20)),
    doc_ids=st.one_of(
        st.none(), st.just([]), st.lists(st.sampled_from(["001_38b38ab778929121", "nope", "../x", ""]), max_size=3)
    ),
    history=st.one_of(st.none(), st.just([])),
)
def test_ui_step_always_returns_a_well_formed_update(fuzz_engine, question, k, mode, doc_ids, history):
    out = respond(fuzz_engine, question, history, k, mode, doc_ids, None)
    chat_history, box, panel, citations, turns = out
    assert [m["role"] for m in chat_history] == ["user", "assistant"]
    reply = chat_history[-1]["content"]
    assert _is_clear(reply) and reply != FAILURE, reply[:300]
    assert isinstance(box, str) and isinstance(panel, str) and isinstance(citations, str)
    if reply.startswith("**Sorry"):
        assert box == (question if isinstance(question, str) else "") and turns == []
    else:
        assert box == "" and len(turns) == 1 and 'id="qa-t1-s1"' in panel


@pytest.mark.slow
def test_hostile_questions_through_the_running_app(tmp_path_factory, seed_index):
    app = start_app(tmp_path_factory, "fuzz-app", seed_index)
    try:
        api = client(app.url)
        for q in [
            "",
            " \n ",
            "a" * 100_000,
            "\x00\x07\x1b[2J",
            "🙂" * 500,
            "<script>alert(1)</script>",
            "'; DROP TABLE x; --",
            "\u202e?ti si tahw",
            "How many people can CECOT hold?\x00",
        ]:
            reply = api.predict(q, api_name="/chat")
            assert _is_clear(reply), reply[:300]
            assert app.alive()
        assert "40,000" in api.predict(CECOT, api_name="/chat")
    finally:
        app.stop()
