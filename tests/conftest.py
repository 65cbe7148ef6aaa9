"""Shared fixtures: seed indexes built once per session (fake embedder and the real model)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
SEED_QA = ROOT / "eval" / "seeds.jsonl"


@pytest.fixture(scope="session")
def seeds_copy(tmp_path_factory) -> Path:
    """A private copy of the seed corpus that tests may modify."""
    target = tmp_path_factory.mktemp("corpus") / "seeds"
    shutil.copytree(SEEDS, target)
    return target


@pytest.fixture(scope="session")
def fake_engine(tmp_path_factory):
    """The seeds indexed with the hash embedder: fast, deterministic, no model."""
    from qa.embedding import HashEmbedder
    from qa.pipeline import build_index, open_engine
    from qa.settings import Settings

    settings = Settings(docs=SEEDS, index=tmp_path_factory.mktemp("fake") / "index")
    build_index(settings, embedder=HashEmbedder(256))
    return open_engine(settings, embedder=HashEmbedder(256))


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory) -> Path:
    """The seeds indexed with the real bundled model (built once per session)."""
    from qa.pipeline import build_index
    from qa.settings import Settings

    settings = Settings(docs=SEEDS, index=tmp_path_factory.mktemp("real") / "index")
    build_index(settings)
    return settings.index


@pytest.fixture(scope="session")
def engine(seed_index):
    from qa.pipeline import open_engine
    from qa.settings import Settings

    return open_engine(Settings(docs=SEEDS, index=seed_index), docs=SEEDS)
