"""Candidates → ranked verbatim quotes with citations, or an honest abstention."""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from functools import cached_property
from typing import Sequence

import numpy as np

from ..ingest.cleaning import near_duplicate_words, word_set
from ..data import Answer, Col, Document, Quote
from ..errors import QuestionError
from ..index import Index
from .retrieval import Retriever, Signals, top_indices
from .reader import Reader, shipped_reader
from .phrasing import asked
from .mentions import unmentioned
from .spelling import Speller
from .scoring import (
    ANSWERABILITY_FEATURES,
    FEATURES,
    READER_FEATURES,
    UNIT_FEATURES,
    ReaderScorer,
    Scorer,
    SentenceTerms,
    answer_type_score,
    novelty_score,
    question_type,
    question_words,
    sentence_terms,
    unit_matrix,
)
from ..settings import MODES, Settings

NO_ANSWER = "The articles don't say. The closest passages are listed below in case they help."
MAX_QUESTION_CHARS = 2000
MAX_QUOTES = 10
# At most this many sentences' words are kept between questions (~3 KB each).  On 10^5
# sentences 4,096 cost 1.7 ms more per answer than 32,768 (45.9 → 47.6 ms p50) and ~90 MB
# less memory per serving process (benchmarks/answer_scale.py's index, 360 questions).
SENTENCE_CACHE = 4096


def clean_question(question: str) -> str:
    """The question with control characters and excess space removed; errors if empty."""
    if not isinstance(question, str):
        raise QuestionError("the question must be text")
    try:
        question.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: text decoded with errors="surrogateescape" etc.
        raise QuestionError("the question holds characters that are not valid text (invalid UTF-8)") from None
    text = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", " ", question)
    text = " ".join(text.split())
    if not text:
        raise QuestionError("empty question: type a question about the articles")
    if len(text) > MAX_QUESTION_CHARS:
        raise QuestionError(f"question too long ({len(text)} characters; at most {MAX_QUESTION_CHARS})")
    return text


class TermsCache:
    """:class:`SentenceTerms` by sentence row, the ``size`` most recently used kept; the
    texts of the rows not kept are read in one go.  Safe to share between the threads that
    answer questions at once (the web app's)."""

    def __init__(self, index: Index, size: int) -> None:
        self.index, self.size = index, max(int(size), 1)
        self._kept: OrderedDict[int, SentenceTerms] = OrderedDict()
        self._lock = threading.Lock()

    def many(self, rows: np.ndarray) -> list[SentenceTerms]:
        keys = np.asarray(rows).tolist()
        distinct = list(dict.fromkeys(keys))
        with self._lock:
            have = {r: self._kept[r] for r in distinct if r in self._kept}
            for r in have:
                self._kept.move_to_end(r)
        missing = [r for r in distinct if r not in have]
        new = dict(zip(missing, map(sentence_terms, self.index.texts(self.index.sentences, missing))))
        with self._lock:
            self._kept.update(new)
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)
        have.update(new)
        return [have[r] for r in keys]


class Engine:
    """Answers questions from one loaded index."""

    def __init__(
        self,
        index: Index,
        embedder,
        settings: Settings | None = None,
        scorer: Scorer | None = None,
        reader_scorer: ReaderScorer | None = None,
        reader: Reader | None = None,
    ) -> None:
        self.index = index
        self.settings = settings or Settings()
        # The linear scorer ("hybrid-linear"), and the learnt reader stage ("hybrid") when shipped.
        self.scorer = scorer or Scorer.load()
        self.reader_scorer = reader_scorer or ReaderScorer.load()
        self.reader = reader or (shipped_reader() if self.reader_scorer else None)
        self.retriever = Retriever(index, embedder)
        # Question-independent words and answer-type items of each sentence, computed on
        # first use (regexes over the candidates' text were most of the quote-selection time).
        # Sized to the collection: every sentence of a small one, the hot ones of a large one.
        self.sentence_terms = TermsCache(index, min(len(index.sentences), SENTENCE_CACHE))

    # ------------------------------------------------------------ public

    def ask(
        self,
        question: str,
        k: int | None = None,
        mode: str | None = None,
        doc_ids: list[str] | None = None,
        query_vector: np.ndarray | None = None,
    ) -> Answer:
        """Ranked quotes for ``question`` (at most ``k``), restricted to ``doc_ids`` if given."""
        started = time.perf_counter()
        typed = clean_question(question)
        text, searched = self.read_as(typed)
        if text != typed:
            query_vector = None  # a vector of the question as typed no longer fits
        k = self.settings.top_k if k is None else k
        if not 1 <= k <= MAX_QUOTES:
            raise QuestionError(f"the number of quotes must be between 1 and {MAX_QUOTES} (got {k})")
        mode = mode or self.settings.mode
        allowed = self._allowed(doc_ids)
        sig = self.retriever.signals(text, query_vector, top_sentences=max(self.settings.candidates, 100))
        # Only hybrid mode has a calibrated confidence; the baseline modes never abstain.
        confidence, sure = None, None
        threshold = self.scorer.min_confidence
        if mode == "hybrid" and self.reader is not None and self.reader_scorer is not None:
            quotes, confidence = self._read(text, sig, k, allowed)
            threshold, sure = self.reader_scorer.min_confidence, self.reader_scorer.sure_confidence
        elif mode in ("hybrid", "hybrid-linear"):
            quotes, confidence = self._hybrid(text, sig, k, allowed)
        elif mode == "sentences":
            quotes = self._sentences(sig, k, allowed)
        elif mode in ("dense-chunks", "bm25-chunks"):
            quotes = self._chunks(sig, k, allowed, dense=mode == "dense-chunks")
        else:
            raise QuestionError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        if self.settings.min_confidence is not None:
            threshold = self.settings.min_confidence
        answered = bool(quotes) and (confidence is None or confidence >= threshold)
        tentative = answered and confidence is not None and sure is not None and confidence < max(sure, threshold)
        # Why the articles may not answer: names in the question they never mention. Said,
        # not decided on: the judge already declines nearly all such questions, and as a rule
        # it would also decline answerable ones that spell a name otherwise (mentions.py).
        missing = tuple(self.unmentioned(text)) if confidence is not None and (tentative or not answered) else ()
        return Answer(
            question=question,
            answered=answered,
            quotes=tuple(quotes),
            message="" if answered else NO_ANSWER,
            latency_ms=(time.perf_counter() - started) * 1000,
            confidence=confidence,
            tentative=tentative,
            searched_as=searched,
            unmentioned=missing,
        )

    # ------------------------------------------------------------ helpers

    def read_as(self, question: str) -> tuple[str, str | None]:
        """A cleaned question (:func:`clean_question`) as the answer stage reads it — the
        wrapper off, a request asked as a question, the question mark on ("can you tell me
        who…" reads "who…?"; :func:`qa.answer.phrasing.asked`), misspelt words corrected — and
        the corrected text when the spelling changed it (None otherwise)."""
        text = asked(question)
        searched = self.searched(text)
        return searched or text, searched

    def searched(self, question: str) -> str | None:
        """``question`` as it is searched when it has misspelt words (None: as typed, or
        with spelling correction off)."""
        corrected = self.speller.correct(question) if self.settings.spelling else question
        return corrected if corrected != question else None

    def unmentioned(self, question: str) -> list[str]:
        """The names ``question`` asks about that the collection never mentions
        (:func:`qa.answer.mentions.unmentioned`)."""
        return unmentioned(question, self.speller.mentioned)

    @cached_property
    def speller(self) -> Speller:
        """Corrects misspelt question words to the collection's spelling (made on first use)."""
        return Speller.for_index(self.index)

    def _allowed(self, doc_ids: list[str] | None) -> np.ndarray | None:
        if not doc_ids:
            return None
        unknown = [d for d in doc_ids if d not in self.index.doc_index]
        if unknown:
            raise QuestionError(f"unknown document {unknown[0]!r}")
        mask = np.zeros(len(self.index.documents), dtype=bool)
        mask[[self.index.doc_index[d] for d in doc_ids]] = True
        return mask

    # ------------------------------------------------------------ the documents (for front ends)

    @property
    def documents(self) -> Sequence[Document]:
        """The indexed documents, in index order (each text read when its document is taken)."""
        return self.index.documents

    @property
    def catalog(self) -> list[Document]:
        """The indexed documents' metadata (id, title, outlet, date, URL, pages …), in index
        order, with empty texts: for lists and menus, which need no text."""
        return self.index.documents.headers

    def document(self, doc_id: str) -> Document | None:
        """The indexed document ``doc_id`` (None when the index has none by that id)."""
        position = self.index.doc_index.get(doc_id)
        return None if position is None else self.index.documents[position]

    def paragraphs_of(self, doc_id: str) -> list[tuple[int, int]]:
        """``(start, end)`` of each paragraph of document ``doc_id``, in order (1-based
        numbers in quotes and links count these)."""
        return [(int(s), int(e)) for _, s, e in self._paragraph_rows(self.index.doc_index[doc_id])]

    def quote(
        self, doc_id: str, start: int, end: int, score: float = 0.0, phrase: tuple[int, int] | None = None
    ) -> Quote:
        """The quote ``[start, end)`` of document ``doc_id``, cut from its text, with its
        citation (title, outlet, paragraph, page); ValueError when the range does not fit."""
        doc = self.index.doc_index[doc_id]
        if not 0 <= start < end <= int(self.index.documents.texts.lengths[doc]):
            raise ValueError(f"characters {start}–{end} are not inside document {doc_id!r}")
        return self._quote(doc, start, end, score, phrase)

    # ------------------------------------------------------------ internals

    def _paragraph_rows(self, doc: int) -> np.ndarray:
        first = self.index.first_paragraph
        lo = int(first[doc])
        hi = int(first[doc + 1]) if doc + 1 < len(first) else len(self.index.paragraphs)
        return self.index.paragraphs[lo:hi]

    def paragraph_span(self, quote: Quote) -> tuple[int, int]:
        """``(start, end)`` of the paragraph holding ``quote`` in its document's text."""
        rows = self._paragraph_rows(self.index.doc_index[quote.doc_id])
        _, start, end = rows[quote.paragraph - 1]
        return int(start), int(end)

    def _quote(self, doc: int, start: int, end: int, score: float, phrase: tuple[int, int] | None = None) -> Quote:
        d = self.index.documents.header(doc)
        para_in_doc = int(np.searchsorted(self._paragraph_rows(doc)[:, Col.START], start, side="right"))
        return Quote(
            d.doc_id,
            start,
            end,
            self.index.cut(doc, start, end),
            float(score),
            d.title,
            d.outlet,
            para_in_doc,
            page=d.page_at(start),
            date=d.date,
            url=d.url,
            phrase=phrase,
        )

    def _take(self, ranked: list[tuple], k: int) -> list[Quote]:
        """The first ``k`` ranked spans ``(doc, start, end, score[, phrase])`` that neither
        overlap nor repeat an earlier one."""
        out: list[Quote] = []
        taken: list[frozenset[str]] = []  # the chosen quotes' words, normalised once
        for doc, start, end, score, *rest in ranked:
            doc_id = self.index.documents.doc_id(doc)
            if any(q.doc_id == doc_id and start < q.end and q.start < end for q in out):
                continue
            words = word_set(self.index.cut(doc, start, end))
            if any(near_duplicate_words(words, w) for w in taken):
                continue
            taken.append(words)
            out.append(self._quote(doc, start, end, score, rest[0] if rest else None))
            if len(out) == k:
                break
        return out

    # ------------------------------------------------------------ modes

    def _chunks(self, sig: Signals, k: int, allowed, dense: bool):
        r, table = self.retriever, self.index.chunks
        if allowed is None:
            if dense:
                scores, rows = r.index.chunk_vectors.search(sig.query_vector[None, :], min(4 * k, len(table)))
                rows, scores = rows[0][rows[0] >= 0], scores[0][rows[0] >= 0]
                # Equal scores (repeated passages): the earlier row first, as everywhere else.
                order = np.lexsort((rows, -scores))
                rows, scores = rows[order], scores[order]
            else:
                rows, scores = r.lexical_chunks.top(sig.chunk_terms, 4 * k, fill=True)
        else:
            # Only the chosen documents' chunks (contiguous rows per document), scored in full.
            rows = self._rows_of(table, allowed)
            if dense:
                scores = r.chunk_dense(sig.query_vector, rows)
            else:
                scores = r.lexical_chunks.scores_of(sig.chunk_terms, rows)
            best = top_indices(scores, 4 * k)
            rows, scores = rows[best], scores[best]
        ranked = [(*(int(x) for x in table[i, Col.SPAN]), float(c)) for i, c in zip(rows, scores)]
        return self._take(ranked, k)

    @staticmethod
    def _rows_of(table: np.ndarray, allowed: np.ndarray) -> np.ndarray:
        """The rows of ``table`` (sorted by document) that belong to the allowed documents."""
        docs = np.flatnonzero(allowed)
        lo = np.searchsorted(table[:, Col.DOC], docs, "left")
        hi = np.searchsorted(table[:, Col.DOC], docs, "right")
        return np.concatenate([np.arange(a, b) for a, b in zip(lo, hi)] or [np.zeros(0, dtype=np.int64)])

    def _sentences(self, sig: Signals, k: int, allowed):
        ids, cos = sig.sentence_dense_top
        table = self.index.sentences
        ranked = [
            (*(int(x) for x in table[i, Col.SPAN]), float(c))
            for i, c in zip(ids, cos)
            if i >= 0 and (allowed is None or allowed[table[i, Col.DOC]])
        ]
        return self._take(ranked, k)

    # Whole (~70 lines): one feature matrix, column by column, over the same candidate rows.
    def candidate_features(self, question: str, sig: Signals, allowed=None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Candidate sentence ids and their evidence (:data:`qa.answer.scoring.FEATURES`)."""
        table = self.index.sentences
        n = len(table)
        r = self.retriever
        top_bm25 = sig.sentence_bm25_top[0][: self.settings.candidates]
        in_top_chunks = r.sentences_of_chunks(sig.top_chunks)
        cand = np.unique(np.concatenate([sig.sentence_dense_top[0], top_bm25, in_top_chunks]))
        cand = cand[(cand >= 0) & (cand < n)]
        # Neighbours too, so that every candidate can form a two-sentence quote.
        around = np.concatenate([cand - 1, cand + 1])
        around = around[(around >= 0) & (around < n)]
        cand = np.unique(np.concatenate([cand, around]))
        if allowed is not None:
            cand = cand[allowed[table[cand, Col.DOC]]]
        dense = r.sentence_matrix[cand] @ sig.query_vector
        present = r.term_presence(sig, cand)
        rel_bm25 = r.sentence_bm25(sig, cand)
        # Neighbours: the sentences just before and after, when in the same paragraph.
        nb_dense = np.full(len(cand), -1.0)
        nb_cov = np.zeros(len(cand))
        nb_bm25 = np.zeros(len(cand))
        window = present.copy()
        for step in (-1, 1):
            other = np.clip(cand + step, 0, n - 1)
            same = (other != cand) & (table[other, Col.PARAGRAPH] == table[cand, Col.PARAGRAPH])
            if not same.any():
                continue
            ids = other[same]
            # Most neighbours are candidates already: reuse their cosine and terms.
            at = np.minimum(np.searchsorted(cand, ids), len(cand) - 1)
            known = cand[at] == ids
            ids_dense = np.empty(len(ids))
            nb_present = np.empty((len(ids), present.shape[1]), dtype=bool)
            ids_dense[known], nb_present[known] = dense[at[known]], present[at[known]]
            if not known.all():
                rest = ids[~known]
                ids_dense[~known] = r.sentence_matrix[rest] @ sig.query_vector
                nb_present[~known] = r.term_presence(sig, rest)
            nb_dense[same] = np.maximum(nb_dense[same], ids_dense)
            nb_cov[same] = np.maximum(nb_cov[same], r.coverage(sig, nb_present))
            ids_bm25 = np.empty(len(ids), dtype=rel_bm25.dtype)
            ids_bm25[known] = rel_bm25[at[known]]
            if not known.all():
                ids_bm25[~known] = r.sentence_bm25(sig, ids[~known])
            nb_bm25[same] = np.maximum(nb_bm25[same], ids_bm25)
            window[same] |= nb_present
        nb_dense = np.where(nb_dense < 0, 0.0, nb_dense)
        chunks, of_cand = np.unique(table[cand, Col.CHUNK], return_inverse=True)
        qtype = question_type(question)
        asked = question_words(question)
        terms = self.sentence_terms.many(cand)
        feats = {
            "sentence_dense": dense,
            "chunk_dense": r.chunk_dense(sig.query_vector, chunks)[of_cand],
            "window_dense": r.window_matrix[cand] @ sig.query_vector,
            "sentence_bm25": rel_bm25,
            "chunk_bm25": r.chunk_bm25(sig, chunks)[of_cand],
            "coverage": r.coverage(sig, present),
            "neighbour_dense": nb_dense,
            "neighbour_coverage": nb_cov,
            "neighbour_bm25": nb_bm25,
            "window_coverage": r.coverage(sig, window),
            "answer_type": (types := np.array([answer_type_score(qtype, asked, t) for t in terms])),
            "type_missing": (types == 0).astype(np.float64),
            "novelty": np.array([novelty_score(asked, t) for t in terms]),
            "short": ((table[cand, Col.END] - table[cand, Col.START]) < 60).astype(np.float64),
        }
        return cand, feats

    def _hybrid(self, question: str, sig: Signals, k: int, allowed):
        cand, feats = self.candidate_features(question, sig, allowed)
        if not len(cand):
            return [], 0.0
        return self.rank(cand, feats, k)

    def units(
        self, cand: np.ndarray, feats: dict[str, np.ndarray], max_pair_chars: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Quote units: every candidate sentence alone, and with the next one when adjacent
        in the same paragraph.  Returns (unit features, first rows, last rows)."""
        max_pair_chars = self.scorer.max_pair_chars if max_pair_chars is None else max_pair_chars
        table = self.index.sentences
        X = np.stack([feats[f] for f in FEATURES], axis=1).astype(np.float64)
        rows = np.arange(len(cand))
        nxt = rows[:-1][
            (cand[1:] == cand[:-1] + 1) & (table[cand[1:], Col.PARAGRAPH] == table[cand[:-1], Col.PARAGRAPH])
        ]
        # Adjacent rows of the table may still have a skipped sentence between them.
        nxt = nxt[table[cand[nxt], Col.WINDOW_END] >= table[cand[nxt + 1], Col.START]]
        firsts = np.concatenate([rows, nxt])
        lasts = np.concatenate([rows, nxt + 1])
        lengths = (table[cand[lasts], Col.END] - table[cand[firsts], Col.START]).astype(np.float64)
        keep = (firsts == lasts) | (lengths <= max_pair_chars)
        firsts, lasts, lengths = firsts[keep], lasts[keep], lengths[keep]
        return unit_matrix(X, firsts, lasts, lengths), firsts, lasts

    def rank(self, cand: np.ndarray, feats: dict[str, np.ndarray], k: int) -> tuple[list[Quote], float]:
        """Quotes from scored candidates (best first) and the confidence in the best."""
        U, firsts, lasts = self.units(cand, feats)
        score = self.scorer.score(U)
        order = np.argsort(-score, kind="stable")
        table = self.index.sentences
        ranked = [
            (
                int(table[cand[firsts[i]], Col.DOC]),
                int(table[cand[firsts[i]], Col.START]),
                int(table[cand[lasts[i]], Col.END]),
                float(score[i]),
            )
            for i in order[: 12 * k]
        ]
        return self._take(ranked, k), self.scorer.confidence(U, int(order[0]))

    # ------------------------------------------------------------ the reader stage

    def read_units(self, question: str, cand: np.ndarray, feats: dict[str, np.ndarray]) -> dict:
        """Pre-rank the quote units linearly and let the reader read the best ``depth``.

        Returns the units (``U``, ``firsts``, ``lasts``), their pre-scores ``pre``, the
        re-scored units ``top`` (indices into the units), their :data:`READER_FEATURES`
        ``R``, and the reader's :class:`Reading` of each sentence read (by candidate row)."""
        rs = self.reader_scorer
        U, firsts, lasts = self.units(cand, feats, rs.max_pair_chars)
        pre = U @ rs.pre_vector
        order = np.argsort(-pre, kind="stable")
        top = order[: rs.depth]
        rows = np.unique(np.concatenate([firsts[top], lasts[top]]))
        table = self.index.sentences
        readings = self.reader.readings(question, self.index.texts(table, cand[rows]))
        read = dict(zip(rows.tolist(), readings))
        length = UNIT_FEATURES.index("length")
        R = np.empty((len(top), len(READER_FEATURES)))
        for j, u in enumerate(top):
            a, b = read[int(firsts[u])], read[int(lasts[u])]
            pa, pb = max(a.phrase_score, -20.0), max(b.phrase_score, -20.0)
            R[j] = (
                pre[u],
                max(a.relevance, b.relevance),
                min(a.relevance, b.relevance),
                max(pa, pb),
                float(firsts[u] != lasts[u]),
                U[u, length],
            )
        return {"U": U, "firsts": firsts, "lasts": lasts, "pre": pre, "order": order, "top": top, "R": R, "read": read}

    def answerability_features(self, units: dict, final: np.ndarray, best: int) -> dict[str, float]:
        """:data:`ANSWERABILITY_FEATURES` of re-scored unit ``best`` (an index into ``units["top"]``)."""
        top, R, U = units["top"], units["R"], units["U"]
        firsts, lasts = units["firsts"], units["lasts"]
        u = top[best]
        mine = {int(firsts[u]), int(lasts[u])}
        others = [j for j, v in enumerate(top) if not mine & {int(firsts[v]), int(lasts[v])}]
        col = READER_FEATURES.index
        feats = {
            "final_score": float(final[best]),
            "max_relevance": float(R[best, col("max_relevance")]),
            "max_phrase": float(R[best, col("max_phrase")]),
            "second_relevance": float(max((R[j, col("max_relevance")] for j in others), default=-10.0)),
            "max_probe": max(self.reader_scorer.probe(units["read"][r].state) for r in mine),
        }
        for name in ANSWERABILITY_FEATURES:
            if name not in feats:
                feats[name] = float(U[u, UNIT_FEATURES.index(name)])
        return feats

    def _read(self, question: str, sig: Signals, k: int, allowed):
        cand, feats = self.candidate_features(question, sig, allowed)
        if not len(cand):
            return [], 0.0
        units = self.read_units(question, cand, feats)
        final = units["R"] @ self.reader_scorer.vector
        top, order = units["top"], units["order"]
        best_first = np.argsort(-final, kind="stable")
        table = self.index.sentences
        firsts, lasts, read = units["firsts"], units["lasts"], units["read"]

        def span(u: int) -> tuple[int, int, int]:
            return (
                int(table[cand[firsts[u]], Col.DOC]),
                int(table[cand[firsts[u]], Col.START]),
                int(table[cand[lasts[u]], Col.END]),
            )

        ranked = []
        for j in best_first:
            u = int(top[j])
            doc, start, end = span(u)
            # The answer phrase: in the unit's sentence the reader trusts most.
            row = max((int(firsts[u]), int(lasts[u])), key=lambda r: read[r].relevance)
            phrase = read[row].phrase
            at = int(table[cand[row], Col.START])
            ranked.append((doc, start, end, float(final[j]), (at + phrase[0], at + phrase[1]) if phrase else None))
        # Units the reader did not read follow, in pre-ranking order, scored below the rest.
        floor = float(final.min()) - 1.0
        pre = units["pre"]
        cut = float(pre[top[-1]])
        ranked += [(*span(int(u)), floor - (cut - float(pre[u]))) for u in order[len(top) : 12 * k]]
        return self._take(ranked, k), self.confidence_of(units, final)

    def confidence_of(self, units: dict, final: np.ndarray) -> float:
        """The judge's confidence that the best re-scored unit answers the question (0 when
        the answer stage has a linear gate and the linear scorer's confidence in that unit
        is below its level)."""
        rs, best = self.reader_scorer, int(np.argmax(final))
        if rs.linear_gate:
            level = self.scorer.min_confidence if rs.gate_level is None else rs.gate_level
            if self.scorer.confidence(units["U"], int(units["top"][best])) < level:
                return 0.0
        return rs.confidence(self.answerability_features(units, final, best))
