"""Settings: one object users configure (QA_* variables, flags), in two halves — what shapes
an index (BuildSettings) and what shapes an answer (QuerySettings)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from qa.errors import IndexProblem
from qa.settings import BuildSettings, QuerySettings, Settings


def test_the_halves_split_every_field_with_the_same_defaults():
    build, query = {f.name for f in fields(BuildSettings)}, {f.name for f in fields(QuerySettings)}
    assert not build & query
    assert build | query == {f.name for f in fields(Settings)}
    whole = Settings()
    for half in (BuildSettings(), QuerySettings()):
        for f in fields(half):
            assert getattr(half, f.name) == getattr(whole, f.name), f.name
    assert whole.build == BuildSettings() and whole.query == QuerySettings()


def test_the_halves_are_views_of_what_the_user_set(monkeypatch):
    monkeypatch.setenv("QA_CHUNK_SIZE", "500")
    monkeypatch.setenv("QA_TOP_K", "3")
    settings = Settings.from_env(index=Path("elsewhere"), mode="bm25-chunks")
    assert settings.build == BuildSettings(index=Path("elsewhere"), chunk_size=500)
    assert settings.query == QuerySettings(top_k=3, mode="bm25-chunks")
    half = settings.build
    assert BuildSettings.of(settings) == half and BuildSettings.of(half) is half


def test_check_takes_the_build_half_or_the_whole(fake_engine):
    from qa.index import check

    index = fake_engine.index
    for settings in (Settings(index=Path("idx")), Settings(index=Path("idx")).build):
        with pytest.raises(IndexProblem, match=r"^idx/ was built with model 'hash-256', but 'other' is asked for; "):
            check(index, settings, model="other")
