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


# Whole (~65 lines): one scenario, step by step.
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
    env.pop("QA_PLUGINS", None)  # the tests' doubles (tests/doubles.py) are not installed either
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


# The stages, bottom up: a module imports its own stage and the stages below it, never one
# above or beside it (distributed and answer both sit on index and ignore each other).
STAGES = {
    "qa": 0,  # what every stage shares: data, errors, settings, progress, the package itself
    "qa.ingest": 1,
    "qa.index": 2,
    "qa.distributed": 3,
    "qa.answer": 3,
    "qa.pipeline": 4,
    "qa.evaluation": 5,
    "qa.serve": 6,
    "qa.__main__": 7,
}


def _stage(module: str) -> str:
    parts = module.split(".")
    for n in (2, 1):
        if ".".join(parts[:n]) in STAGES:
            return ".".join(parts[:n])
    raise AssertionError(f"{module}: in no stage of STAGES")


def _imports(path: Path, module: str) -> list[tuple[str, bool]]:
    """(qa module imported, at module level?) for every import in ``path``, but those under
    ``if __name__ == "__main__":`` (a module run as a script may use anything)."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []

    def visit(node, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "__main__" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                found.extend((a.name, top) for a in child.names if a.name.split(".")[0] == "qa")
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parent = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join(parent + ([base] if base else []))
                if base.split(".")[0] == "qa":
                    for a in child.names:
                        sub = f"{base}.{a.name}"
                        is_module = (ROOT / Path(*sub.split("."))).with_suffix(".py").exists() or (
                            ROOT / Path(*sub.split("."))
                        ).is_dir()
                        found.append((sub if is_module else base, top))
            inner = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            visit(child, top and not inner)

    visit(tree, True)
    return found


def test_imports_point_down_the_pipeline():
    """ingest → index → answer → evaluation → serve (see README, "Code map"): no module
    imports a stage above or beside its own, and module-level imports form no cycle.  Each
    stage package's exports are not also the names of its modules (``from qa.index import
    build`` would give the module once it is imported)."""
    import importlib

    graph: dict[str, set[str]] = {}
    for path in sorted((ROOT / "qa").rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        graph[module] = set()
        for target, top in _imports(path, module):
            source_stage, target_stage = _stage(module), _stage(target)
            assert source_stage == target_stage or STAGES[target_stage] < STAGES[source_stage], (
                f"{module} imports {target}: {target_stage} is not below {source_stage}"
            )
            if top and target != module:
                graph[module].add(target)

    done: set[str] = set()

    def acyclic(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, "import cycle: " + " → ".join(path[path.index(module) :] + (module,))
        if module in done:
            return
        for target in graph.get(module, ()):
            acyclic(target, path + (module,))
        done.add(module)

    for module in graph:
        acyclic(module, ())

    for package in ("qa.ingest", "qa.index", "qa.answer", "qa.evaluation", "qa.distributed"):
        exported = set(importlib.import_module(package).__all__)
        modules = {p.stem for p in (ROOT / Path(*package.split("."))).glob("*.py")}
        assert not exported & modules, f"{package} exports names of its modules: {exported & modules}"
