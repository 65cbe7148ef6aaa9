"""Conversation sets: follow-up questions asked in the context of the turns before them.

Format (``eval/FOLLOWUPS.md``): one conversation a line,
``{"id": "c01", "turns": [TURN, TURN, ...]}``, each TURN a FORMAT.md QA item without its
id (``question``, ``answers``, ``doc_ids``, optional ``spans``).  Turn *n* of conversation
``c01`` is scored as item ``c01.n``.

:func:`run` asks every turn through :func:`qa.answer.conversation.resolve` against the previous
turn *as asked* (the same code path as ``qa ask --context`` and the web chat), and, for
comparison, as typed with no context.  :func:`score_conversations` reports FORMAT.md metrics
(:func:`qa.evaluation.score`) over the follow-up turns (turn 2 on), and over all turns.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..answer.conversation import resolve
from .qa_sets import EvalError, Item, read_jsonl, score


def is_conversation_file(path: Path) -> bool:
    """Whether the first non-blank line of ``path`` is a conversation (it has ``turns``)."""
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    row = json.loads(line)
                    return isinstance(row, dict) and "turns" in row
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return False


def load_conversations(path: Path) -> list[list[Item]]:
    """The conversations of ``path``: a list of turns (:class:`~qa.evaluation.Item`) each."""
    path = Path(path)
    out, seen = [], set()
    for where, row in read_jsonl(path, "conversation"):
        if (
            not isinstance(row, dict)
            or not isinstance(row.get("id"), str)
            or not isinstance(row.get("turns"), list)
            or not row["turns"]
        ):
            raise EvalError(f'{where}: expected {{"id": ..., "turns": [...]}}')
        if row["id"] in seen:
            raise EvalError(f"{where}: duplicate id {row['id']!r}")
        seen.add(row["id"])
        turns = []
        for t, turn in enumerate(row["turns"], 1):
            if not isinstance(turn, dict):
                raise EvalError(f"{where}: turn {t} is not an object")
            for key, kind in (("question", str), ("answers", list), ("doc_ids", list)):
                if not isinstance(turn.get(key), kind):
                    raise EvalError(f"{where}: turn {t}: {key!r} missing or not a {kind.__name__}")
            try:
                spans = tuple((str(d), int(s), int(e)) for d, s, e in turn.get("spans") or ())
            except (TypeError, ValueError):
                raise EvalError(f"{where}: turn {t}: 'spans' must be [doc_id, start, end] triples") from None
            turns.append(
                Item(
                    f"{row['id']}.{t}",
                    turn["question"],
                    tuple(map(str, turn["answers"])),
                    tuple(map(str, turn["doc_ids"])),
                    spans,
                )
            )
        out.append(turns)
    if not out:
        raise EvalError(f"{path}: no conversations")
    return out


def run(engine, conversations: list[list[Item]], context: bool = True, k: int = 10) -> list[list[dict]]:
    """Predictions, turn by turn; each carries ``asked`` (the question as the engine got it)."""
    out = []
    for turns in conversations:
        previous, previous_phrase, preds = "", "", []
        for item in turns:
            reading = resolve(item.question, previous if context else None, previous_phrase)
            answer = engine.ask(reading.asked, k=k)
            pred = answer.to_prediction(item.id)
            pred["question"] = item.question
            pred["asked"] = reading.asked
            preds.append(pred)
            previous = reading.asked
            previous_phrase = (
                (answer.quotes[0].phrase_text or answer.quotes[0].text) if answer.answered and answer.quotes else ""
            )
        out.append(preds)
    return out


def score_conversations(conversations: list[list[Item]], predictions: list[list[dict]]) -> dict:
    """Metrics over the follow-up turns (``followups``) and over every turn (``all``)."""
    follow_items = [it for turns in conversations for it in turns[1:]]
    follow_preds = [p for preds in predictions for p in preds[1:]]
    all_items = [it for turns in conversations for it in turns]
    all_preds = [p for preds in predictions for p in preds]
    return {"followups": score(follow_items, follow_preds), "all": score(all_items, all_preds)}


def evaluate(engine, path: Path) -> tuple[dict[str, dict], list[list[dict]]]:
    """``qa eval`` on a conversation file: rows "follow-ups in context", "follow-ups as typed",
    "all turns in context" (for :func:`qa.evaluation.format_table`) and the predictions."""
    conversations = load_conversations(path)
    with_context = run(engine, conversations, context=True)
    alone = run(engine, conversations, context=False)
    ctx, bare = score_conversations(conversations, with_context), score_conversations(conversations, alone)
    rows = {
        "follow-ups, in context": ctx["followups"],
        "follow-ups, as typed": bare["followups"],
        "all turns, in context": ctx["all"],
    }
    return rows, with_context
