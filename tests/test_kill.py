"""`kill -9` during `qa index` never leaves a broken index behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time

from qa.index import load

from .conftest import ROOT, SEEDS, index_command

ENV = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))


def test_sigkill_during_index_leaves_a_loadable_index(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    # Enough text that a build takes a while, so the kills land at different stages.
    for i in range(40):
        for src in SEEDS.glob("*.txt"):
            (docs / f"{i:02d}_{src.name}").write_text(
                src.read_text(encoding="utf-8") + f"\nCopy {i}.\n", encoding="utf-8"
            )
    index = tmp_path / "index"
    subprocess.run(index_command(docs, index, "--quiet"), check=True, env=ENV, capture_output=True, timeout=300)
    before = json.loads((index / "manifest.json").read_text())["corpus"]["documents"]

    # Change the corpus, then kill rebuilds at growing delays: whatever the moment, what is
    # left is either the old index or the new one, complete.
    (docs / "00_000_6022e9d6bef41df7.txt").write_text("A changed article about something else.\n", encoding="utf-8")
    outcomes = set()
    for delay in (0.3, 0.8, 1.5, 2.5, 4.0):
        proc = subprocess.Popen(
            index_command(docs, index, "--quiet", "--full"),
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        loaded = load(index)  # raises if the index were damaged
        docs_now = loaded.manifest["corpus"]["documents"]
        outcomes.add("old" if docs_now == before else "new")
        assert loaded.sentence_vectors.ntotal == len(loaded.sentences)
    assert "old" in outcomes, "at least one kill landed before the swap"
    # Leftover temporary folders do not break the next build.
    subprocess.run(
        index_command(docs, index, "--quiet", "--full"), check=True, env=ENV, capture_output=True, timeout=300
    )
    assert load(index).manifest["corpus"]["documents"] != before
    assert not list(tmp_path.glob(".index.building-*")), "killed builds' temporary folders are cleaned up"
    shutil.rmtree(docs)
