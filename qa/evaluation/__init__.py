"""Measuring answers against question sets (eval/FORMAT.md, eval/FOLLOWUPS.md).

- :mod:`.qa_sets` — QA sets: read them, ask an engine, score the predictions (hit@k, MRR,
  abstention, SQuAD EM/F1), compare modes, tables and plots (``qa eval``).
- :mod:`.conversations` — conversation sets: follow-up questions asked in context.

Above :mod:`qa.answer` (it asks an :class:`~qa.answer.Engine`); only entry points import it.
"""

from .. import stage_api

__all__, __getattr__ = stage_api(
    __name__,
    {
        "qa_sets": (
            "COLUMNS",
            "KS",
            "EvalError",
            "Item",
            "compare",
            "contains_answer",
            "format_table",
            "load_qa",
            "normalize_answer",
            "plot",
            "predict",
            "read_jsonl",
            "score",
            "squad_em_f1",
            "write_predictions",
        ),
        "conversations": ("evaluate", "is_conversation_file", "load_conversations", "run", "score_conversations"),
    },
)
