"""One error family (issue 14): what the user can fix is a QAError, printed as one line;
anything else is a bug, also one line, with its own exit status."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import qa
from qa.serve import cli
from qa.errors import QAError


def test_every_error_class_of_the_package_is_a_qa_error():
    internal = {"TooLarge"}  # an OSError caught inside corpus.py, never shown
    found = []
    for info in pkgutil.walk_packages(qa.__path__, "qa."):
        if info.name == "qa.__main__" or info.name.startswith("qa.distributed"):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, Exception)
                and obj.__module__.startswith("qa.")
                and name not in internal
            ):
                found.append(name)
                assert issubclass(obj, QAError), f"{info.name}.{name}"
    assert {"QuestionError", "IndexProblem", "CorpusError", "ModelError", "EvalError", "UsageError"} <= set(found)


def test_a_user_error_is_one_line_and_status_1(monkeypatch, capsys):
    monkeypatch.setenv("QA_MODE", "fastest")
    assert cli.main(["ask", "Who is Bukele?"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: unknown mode 'fastest'")


def test_a_bug_is_one_line_that_says_so_and_status_70(monkeypatch, capsys):
    def broken(args):
        return {}["missing"]

    monkeypatch.setitem(cli.COMMANDS, "docs", broken)
    assert cli.main(["docs"]) == 70
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("error: internal error (a bug): KeyError: 'missing'") and "--debug" in err
    with pytest.raises(KeyError):
        cli.main(["docs", "--debug"])
