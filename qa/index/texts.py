"""The documents' texts on disk, memory-mapped: what every quote is cut from.

``texts.bin`` holds each document's text in the narrowest fixed width that fits it, as
CPython holds strings (1 byte per character: Latin-1; 2: UTF-16 without surrogates; 4:
UTF-32), so a character offset is a byte offset and a quote is one slice and one decode.
``texts.npy`` says where each text is: ``(byte offset, bytes per character, characters)``.
Mapped, the texts are pages of one file that every serving process shares, not a copy of
the whole collection as Python strings in each one (at 10^6 sentences that copy was ~320 MB
per process).
"""

from __future__ import annotations

import mmap
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..data import Document
from ..errors import IndexProblem

BIN, TABLE = "texts.bin", "texts.npy"
CODECS = {1: "latin-1", 2: "utf-16-le", 4: "utf-32-le"}


def encode(text: str) -> tuple[bytes, int]:
    """``text`` in its narrowest fixed width, and that width."""
    try:
        return text.encode("latin-1"), 1
    except UnicodeEncodeError:
        pass
    try:
        data = text.encode("utf-16-le")  # strict: a lone surrogate fails, so does not pair up on reading
        if len(data) == 2 * len(text):  # no astral characters (those take 4 bytes)
            return data, 2
    except UnicodeEncodeError:
        pass
    return text.encode("utf-32-le", "surrogatepass"), 4


def write(texts: Iterable[str], folder: Path) -> None:
    """Write ``texts`` (in document order) as ``texts.bin`` and ``texts.npy`` in ``folder``."""
    rows, offset = [], 0
    with open(Path(folder) / BIN, "wb") as out:
        for text in texts:
            data, width = encode(text)
            out.write(data)
            rows.append((offset, width, len(text)))
            offset += len(data)
    np.save(Path(folder) / TABLE, np.array(rows, dtype=np.int64).reshape(-1, 3), allow_pickle=False)


class Texts:
    """The texts of an index's documents, by position: whole or a character slice."""

    def __init__(self, texts: Sequence[str]) -> None:
        self._texts = texts
        self.lengths = np.array([len(t) for t in texts], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.lengths)

    def text(self, doc: int) -> str:
        return self._texts[doc]

    def slice(self, doc: int, start: int, end: int) -> str:
        return self._texts[doc][start:end]

    def slices(self, docs: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> list[str]:
        """``slice`` for many ranges at once (arrays of equal length)."""
        return [self.slice(d, a, b) for d, a, b in zip(docs.tolist(), starts.tolist(), ends.tolist())]


class MappedTexts(Texts):
    """:class:`Texts` read from a folder's ``texts.bin`` through a read-only memory map."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder = Path(folder)
        table = np.load(folder / TABLE, allow_pickle=False)
        size = (folder / BIN).stat().st_size
        problem = table_problem(table, size)
        if problem:
            raise ValueError(problem)
        self.table = table
        self.lengths = table[:, 2]
        with open(folder / BIN, "rb") as f:
            # An empty file cannot be mapped (and holds only empty texts).
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""

    def text(self, doc: int) -> str:
        return self.slice(doc, 0, int(self.lengths[doc]))

    def slice(self, doc: int, start: int, end: int) -> str:
        offset, width, length = self.table[doc].tolist()
        start, end = max(0, min(start, length)), max(0, min(end, length))
        if end <= start:
            return ""
        # surrogatepass: 2 and 4 bytes are always exactly one character (what encode() wrote).
        try:
            return self._map[offset + width * start : offset + width * end].decode(CODECS[width], "surrogatepass")
        except UnicodeDecodeError:  # only a file changed after the build (no such character)
            raise IndexProblem(f"{self.folder / BIN}: damaged (document {doc} does not decode)") from None

    def slices(self, docs: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> list[str]:
        """``slice`` for many ranges at once: the byte ranges computed together (a question
        reads hundreds of sentences; one at a time, the table lookups cost as much as the reads)."""
        offset, width, length = self.table[docs].T
        starts = np.clip(starts, 0, length)
        ends = np.maximum(np.clip(ends, 0, length), starts)
        m = self._map
        try:
            return [
                m[a:b].decode(CODECS[w], "surrogatepass")
                for a, b, w in zip((offset + width * starts).tolist(), (offset + width * ends).tolist(), width.tolist())
            ]
        except UnicodeDecodeError:
            for d, a, b in zip(docs.tolist(), starts.tolist(), ends.tolist()):
                self.slice(d, a, b)  # raises, naming the document
            raise


def table_problem(table: np.ndarray, size: int) -> str:
    """What is wrong with a ``texts.npy`` for a ``texts.bin`` of ``size`` bytes ("" when nothing)."""
    if not isinstance(table, np.ndarray) or table.ndim != 2 or table.shape[1] != 3:
        return f"shape {getattr(table, 'shape', None)}, expected (n, 3)"
    if not np.issubdtype(table.dtype, np.integer):
        return f"type {table.dtype}, expected integers"
    if not len(table):
        return "" if size == 0 else "bytes that no document owns"
    offset, width, length = table[:, 0], table[:, 1], table[:, 2]
    if not np.isin(width, list(CODECS)).all() or (length < 0).any():
        return "a width or length out of range"
    ends = offset + width * length
    if offset[0] != 0 or (offset[1:] != ends[:-1]).any() or ends[-1] != size:
        return "offsets do not tile the file"
    return ""


class Documents(Sequence[Document]):
    """An index's documents, by position, each with its text from :class:`Texts`: the
    metadata stays in memory, a text is read (from the map) when its document is asked for."""

    def __init__(self, headers: Sequence[Document], texts: Texts) -> None:
        self._headers = list(headers)  # the documents without their text
        self.texts = texts

    def __len__(self) -> int:
        return len(self._headers)

    def __getitem__(self, position):
        if isinstance(position, slice):
            return [self[i] for i in range(*position.indices(len(self)))]
        position = range(len(self))[position]  # negative positions, IndexError as a list has
        return replace(self._headers[position], text=self.texts.text(position))

    def doc_id(self, position: int) -> str:
        """The id of the document at ``position`` (without reading its text)."""
        return self._headers[position].doc_id

    def header(self, position: int) -> Document:
        """The document at ``position`` with an empty ``text``: its metadata only."""
        return self._headers[position]

    @property
    def headers(self) -> list[Document]:
        """Every document with an empty ``text``: the metadata, for listing them without
        reading (at 10^6 sentences, decoding) every text."""
        return list(self._headers)


def documents_of(documents: Sequence[Document]) -> Documents:
    """``documents`` (texts in memory) as :class:`Documents`."""
    if isinstance(documents, Documents):
        return documents
    documents = list(documents)
    return Documents([replace(d, text="") for d in documents], Texts([d.text for d in documents]))
