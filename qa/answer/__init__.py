"""Stage 3, a question → cited verbatim quotes (or an honest abstention).

- :mod:`.retrieval` — question → candidate sentences and chunks, dense and BM25, fused.
- :mod:`.scoring` — the features of a candidate and the tuned linear scorers over them
  (qa/weights.json, qa/models/answer.json).
- :mod:`.reader` — the shipped reader (qa/models/reader/): how well a sentence answers,
  and the phrase within it.
- :mod:`.engine` — :class:`Engine`: retrieval → scoring → reader → ranked quotes with
  citations, or "the articles don't say".
- :mod:`.phrasing` — the question inside a reader's wrapper ("Can you tell me …? Thanks"),
  and a request ("Name the …") asked as the question it is.
- :mod:`.conversation` — a follow-up question rewritten with the words it leaves out.
- :mod:`.disagreement` — where the quoted articles give different numbers or dates.

It reads an index (:mod:`qa.index`) and never writes one; :mod:`qa.pipeline` puts the two together.
"""

from .. import stage_api

__all__, __getattr__ = stage_api(
    __name__,
    {
        "engine": ("MAX_QUESTION_CHARS", "MAX_QUOTES", "NO_ANSWER", "Engine", "clean_question"),
        "retrieval": ("Retriever", "Signals", "top_indices"),
        "scoring": ("ReaderScorer", "Scorer"),
        "reader": ("READER_DIR", "Reader", "ReaderError", "shipped_reader"),
        "phrasing": ("asked", "as_question", "strip_framing"),
        "conversation": ("is_followup", "resolve"),
        "disagreement": ("find", "for_engine"),
    },
)
