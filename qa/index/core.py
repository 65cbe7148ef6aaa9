"""The in-memory :class:`Index` and BM25's tokenising: what building, storing and
querying an index share (:mod:`.builder` makes one, :mod:`.store` saves and loads it,
:mod:`qa.answer.retrieval` searches it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from ..data import Col
from .texts import Documents, documents_of

# ---------------------------------------------------------------- tokenising for BM25


def english_stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def tokenize(texts: list[str], stemmer=None, as_ids: bool = True):
    import bm25s

    return bm25s.tokenize(
        texts, stopwords="en", stemmer=stemmer or english_stemmer(), show_progress=False, return_ids=as_ids
    )


# ---------------------------------------------------------------- the in-memory index


@dataclass
class Index:
    """Everything a query needs, loaded from (or about to be written to) a folder."""

    manifest: dict
    documents: Documents  # a list of Document is taken too (and wrapped)
    paragraphs: np.ndarray
    sentences: np.ndarray
    chunks: np.ndarray
    sentence_vectors: object  # faiss.Index
    window_vectors: object
    chunk_vectors: object
    bm25_sentences: object  # bm25s.BM25
    bm25_chunks: object
    path: Path | None = None
    # What the build that made this index did (see :func:`.builder.build`); not saved except in the manifest.
    build_info: dict = field(default_factory=dict)
    # The embedder that encoded this build's passages (not saved): save() exports its
    # model as the ONNX query encoder (None: reuse the export already in the folder).
    encoder: object | None = None
    # Each sentence's and chunk's BM25 tokens (qa.index.bm25.Terms), saved beside the BM25
    # scores so that the next update tokenises only new rows; a loaded index leaves them on disk.
    sentence_terms: object | None = None
    chunk_terms: object | None = None

    def __post_init__(self) -> None:
        self.documents = documents_of(self.documents)

    @property
    def model(self) -> str:
        return self.manifest["model"]["name"]

    def text(self, table: np.ndarray, row: int) -> str:
        """The text of row ``row`` of a sentence, paragraph or chunk table."""
        doc, start, end = table[row, : Col.END + 1].tolist()  # DOC, START, END: a view, as Python ints
        return self.cut(doc, start, end)

    def texts(self, table: np.ndarray, rows) -> list[str]:
        """The texts of rows ``rows`` of a sentence, paragraph or chunk table."""
        spans = table[np.asarray(rows, dtype=np.int64), : Col.END + 1]
        return self.documents.texts.slices(spans[:, Col.DOC], spans[:, Col.START], spans[:, Col.END])

    def cut(self, doc: int, start: int, end: int) -> str:
        """Characters ``[start, end)`` of the text of the document at position ``doc``."""
        return self.documents.texts.slice(doc, start, end)

    @cached_property
    def first_paragraph(self) -> np.ndarray:
        """For each document, the global number of its first paragraph."""
        return np.searchsorted(self.paragraphs[:, Col.DOC], np.arange(len(self.documents)))

    @cached_property
    def doc_index(self) -> dict[str, int]:
        return {self.documents.doc_id(i): i for i in range(len(self.documents))}

    @cached_property
    def stemmer(self):
        return english_stemmer()

    def page_of(self, doc: int | str, offset: int) -> int | None:
        """The 1-based page holding ``offset`` in document ``doc`` (position or doc_id);
        None for documents without pages (anything but PDF)."""
        position = self.doc_index[doc] if isinstance(doc, str) else int(doc)
        return self.documents[position].page_at(offset)
