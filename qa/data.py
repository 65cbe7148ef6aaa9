"""Plain data types passed between the pipeline's stages."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Document:
    """One source document: its exact text and where it came from."""

    doc_id: str
    text: str
    title: str
    outlet: str = ""
    path: str = ""
    sha256: str = ""
    format: str = ""  # "text", "markdown", "html", "pdf" or "docx"
    pages: tuple[int, ...] = ()  # PDF: offset in ``text`` where each page starts
    date: str = ""  # publication date, YYYY-MM-DD when known
    url: str = ""
    indexed_at: str = ""  # when this version of the file was first indexed (UTC, ISO 8601)

    def page_at(self, offset: int) -> int | None:
        """The 1-based page holding character ``offset`` (None for documents without pages)."""
        if not self.pages:
            return None
        from bisect import bisect_right

        return max(bisect_right(self.pages, offset), 1)


class Col:
    """Columns of the index's integer tables (``Index.paragraphs``, ``.chunks``: n × 3;
    ``.sentences``: n × 7).  Every row is a character range ``[START, END)`` of document
    ``DOC`` (its position in ``Index.documents``)."""

    DOC, START, END = 0, 1, 2
    # sentences only: the paragraph and the chunk holding the sentence (rows of those tables),
    # and the sentence with its neighbours in the paragraph (the window that is embedded).
    PARAGRAPH, CHUNK, WINDOW_START, WINDOW_END = 3, 4, 5, 6
    SPAN = [DOC, START, END]
    WINDOW = [DOC, WINDOW_START, WINDOW_END]


@dataclass(frozen=True)
class Quote:
    """A verbatim quote: ``text == document.text[start:end]``."""

    doc_id: str
    start: int
    end: int
    text: str
    score: float
    title: str
    outlet: str
    paragraph: int  # 1-based paragraph number within the document
    page: int | None = None  # 1-based page (PDFs)
    date: str = ""  # the document's publication date, when known
    url: str = ""  # the document's address, when known
    # The words inside the quote that answer the question, as document offsets (None: not read).
    phrase: tuple[int, int] | None = None

    @property
    def phrase_text(self) -> str:
        """The answer phrase (``text`` of the document at ``phrase``), or ""."""
        if not self.phrase:
            return ""
        return self.text[self.phrase[0] - self.start : self.phrase[1] - self.start]

    def citation(self) -> str:
        """Human-readable source line: title, outlet, date, page, paragraph, characters, URL."""
        outlet = f", {self.outlet}" if self.outlet else ""
        date = f", {self.date}" if self.date else ""
        page = f", page {self.page}" if self.page is not None else ""
        url = f", {self.url}" if self.url else ""
        where = f"paragraph {self.paragraph}, characters {self.start}–{self.end}"
        return f"{self.title}{outlet}{date}{page}, {where}{url}"


@dataclass(frozen=True)
class Answer:
    """The response to one question: ranked quotes, or an abstention."""

    question: str
    answered: bool
    quotes: tuple[Quote, ...] = field(default_factory=tuple)
    message: str = ""
    latency_ms: float = 0.0
    # hybrid modes: the judge's probability that the articles answer; None in baseline modes
    confidence: float | None = None
    # answered, but below the level that near-topic unanswerable questions rarely reach
    tentative: bool = False
    # the question as searched when misspelt words were corrected (qa/answer/spelling.py)
    searched_as: str | None = None
    # declined or tentative: names in the question that the collection never mentions
    unmentioned: tuple[str, ...] = ()

    def to_prediction(self, qid: str = "") -> dict:
        """The prediction object of eval/FORMAT.md, plus titles and citations."""
        out: dict = {"id": qid} if qid else {}
        out.update(
            question=self.question,
            **({"searched_as": self.searched_as} if self.searched_as else {}),
            **({"unmentioned": list(self.unmentioned)} if self.unmentioned else {}),
            answered=self.answered,
            **(
                {"confidence": round(self.confidence, 4), "tentative": self.tentative}
                if self.confidence is not None
                else {}
            ),
            latency_ms=round(self.latency_ms, 2),
            quotes=[
                {
                    "doc_id": q.doc_id,
                    "start": q.start,
                    "end": q.end,
                    "text": q.text,
                    "score": round(q.score, 4),
                    "title": q.title,
                    "outlet": q.outlet,
                    "paragraph": q.paragraph,
                    **({"page": q.page} if q.page is not None else {}),
                    **({"date": q.date} if q.date else {}),
                    **({"url": q.url} if q.url else {}),
                    **(
                        {"answer": {"start": q.phrase[0], "end": q.phrase[1], "text": q.phrase_text}}
                        if q.phrase
                        else {}
                    ),
                }
                for q in self.quotes
            ],
        )
        if self.message:
            out["message"] = self.message
        return out
