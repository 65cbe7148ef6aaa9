"""Progress a person can follow when the output is not a terminal (a log, ``make run``
piped to a file, CI): tqdm's bar redraws one line with carriage returns, which a log shows
as one endless line or not at all.  :func:`log_lines` turns each redraw into its own line
and asks tqdm for one every few seconds."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager

EVERY_SECONDS = 5


class LineWriter:
    """A text stream that writes each carriage-return redraw as a line of its own."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        parts = [p.strip() for p in text.replace("\r", "\n").split("\n")]
        lines = [p for p in parts if p and not p.startswith("\x1b")]
        if lines:
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name):
        return getattr(self.stream, name)


@contextmanager
def log_lines(every: float = EVERY_SECONDS):
    """While inside: stderr (when not a terminal) gets progress as separate lines, at most
    one per ``every`` seconds per bar."""
    if sys.stderr is None or sys.stderr.isatty():
        yield
        return
    saved_stream, saved_env = sys.stderr, os.environ.get("TQDM_MININTERVAL")
    os.environ["TQDM_MININTERVAL"] = str(every)  # tqdm reads TQDM_* defaults when a bar starts
    sys.stderr = LineWriter(saved_stream)
    try:
        yield
    finally:
        sys.stderr = saved_stream
        if saved_env is None:
            os.environ.pop("TQDM_MININTERVAL", None)
        else:
            os.environ["TQDM_MININTERVAL"] = saved_env
