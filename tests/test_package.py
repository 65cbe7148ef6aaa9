"""The package: `pip install .` gives the `qa` and `qa-web` commands with the shipped models,
and its pinned dependencies are the ones requirements*.txt install (issue 14)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from .conftest import ROOT

CECOT = "How many people can CECOT hold?"


def pins(name: str) -> list[str]:
    lines = (ROOT / name).read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def test_pyproject_pins_what_the_requirement_files_pin():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["dependencies"] == pins("requirements.txt")
    assert project["optional-dependencies"]["ray"] == pins("requirements-ray.txt")
    assert project["optional-dependencies"]["dev"] == pins("requirements-dev.txt")
    assert project["scripts"] == {"qa": "qa.serve.cli:main", "qa-web": "qa.serve.app:main"}


@pytest.mark.slow
def test_wheel_installs_working_commands(tmp_path, seed_index):
    """A wheel built from the checkout holds the shipped models; installed on its own (no
    checkout on the path) its `qa` answers from an index and `qa-web` starts its parser."""
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in (
        "qa/models/reader/reader.onnx",
        "qa/models/reader/tokenizer.json",
        "qa/models/answer.json",
        "qa/weights.json",
    ):
        assert shipped in names
    assert not any(n.startswith(("tests/", "benchmarks/", "train/")) for n in names)

    target = tmp_path / "site"
    inst = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert inst.returncode == 0, inst.stderr
    env = dict(os.environ, PYTHONPATH=str(target))
    where = subprocess.run(
        [sys.executable, "-c", "import qa; print(qa.__file__)"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert where.stdout.strip().startswith(str(target)), where.stdout + where.stderr
    ask = subprocess.run(
        [str(target / "bin" / "qa"), "ask", CECOT, "--json", "--index", str(seed_index), "--docs", str(ROOT / "seeds")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ask.returncode == 0, ask.stderr
    top = json.loads(ask.stdout)["quotes"][0]
    assert "40,000" in top["text"] and "40,000" in top["answer"]["text"]  # the reader came with the wheel
    web = subprocess.run(
        [str(target / "bin" / "qa-web"), "--help"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert web.returncode == 0 and "--docs" in web.stdout, web.stderr


def test_code_is_lint_clean_and_formatted():
    """`make lint`: ruff's rules and its formatter agree with every Python file."""
    ruff = Path(sys.executable).with_name("ruff")
    for check in (["check"], ["format", "--check"]):
        proc = subprocess.run(
            [str(ruff), *check, "qa", "tests", "benchmarks", "train", "app.py"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
