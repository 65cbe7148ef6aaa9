"""The one error family.  Everything the user can fix raises a :class:`QAError` whose message
is one line naming what is wrong and where; each entry point (CLI, web app) catches it once
and prints that line.  Any other exception is a bug and is reported as one.

The subclasses also derive from the built-in they replaced (ValueError, RuntimeError), so
``except ValueError`` around a question or a setting keeps working.
"""

from __future__ import annotations


class QAError(Exception):
    """A problem the user can fix (a bad question, index, document, setting or model)."""


class QuestionError(QAError, ValueError):
    """A question that cannot be asked (empty, too long, bad parameters)."""


class SettingsError(QAError, ValueError):
    """A setting, flag or environment variable with a value that cannot work."""


class UsageError(SettingsError):
    """A command line that cannot work as given."""


class DocumentError(QAError, ValueError):
    """A document or documents folder that cannot be read; names the culprit."""


class IndexProblem(QAError, RuntimeError):
    """An index that is missing, damaged, stale or built differently; one-line message."""


class ModelError(QAError, RuntimeError):
    """A model (the embedder, the reader) that cannot be found or loaded."""


class EvalError(QAError, ValueError):
    """A QA set or predictions file that cannot be read; names the file and line."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none), for the
    one-line errors above."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
