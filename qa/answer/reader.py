"""The answer reader: a small learnt cross-encoder over (question, sentence).

For each candidate sentence it gives a relevance logit ("this sentence answers the
question") and the answer phrase inside it (start/end over the sentence's tokens, mapped
back to exact character offsets).  Trained by ``train/reader.py`` on SQuAD v1.1 train;
shipped as an int8 ONNX model in ``qa/models/reader/`` (see its MODEL_CARD.md).  Runs on
ONNX Runtime: no torch import, no generative model.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ModelError
from ..index import int8

READER_DIR = Path(__file__).parents[1] / "models" / "reader"  # qa/models/reader
MAX_PHRASE_TOKENS = 30
# The fixed cost of one model run, in padded tokens' worth of work (measured on this
# project's 2-core CPU: splitting a question's sentences at this price saved 13 % of the
# reader's time at 10^6 sentences, benchmarks/answer_scale.py).
RUN_COST_TOKENS = 40
# A capitalised word right after a phrase that ends in one: the rest of a name.
NAME_WORD = re.compile(r" [A-Z][\w'’-]*(?!\.\w)")
MAX_NAME_WORDS = 3


class ReaderError(ModelError):
    """The reader model folder is missing or damaged."""


@dataclass(frozen=True)
class Reading:
    """What the reader says about one sentence."""

    relevance: float  # logit: > 0 leans "answers the question"
    phrase: tuple[int, int] | None  # answer phrase as character offsets into the sentence
    phrase_score: float  # best start+end logit minus the "no phrase" ([CLS]) logit
    # The model's [CLS] state (what the relevance head reads), for the answerability
    # probe of ``qa/models/answer.json``; None from a reader exported without it.
    state: np.ndarray | None = field(default=None, compare=False, repr=False)


class Reader:
    """Scores sentences against a question with the shipped ONNX cross-encoder."""

    def __init__(self, folder: Path = READER_DIR, threads: int = 1, batch_size: int = 8) -> None:
        folder = Path(folder)
        self.batch_size = max(int(batch_size), 1)
        model_file, tok_file = folder / "reader.onnx", folder / "tokenizer.json"
        if not model_file.is_file() or not tok_file.is_file():
            raise ReaderError(f"{folder}: no answer reader (reader.onnx, tokenizer.json); run `make train`")
        from tokenizers import Tokenizer

        from ..index.embedding import onnx_session

        meta_file = folder / "reader.json"
        self.meta = json.loads(meta_file.read_text(encoding="utf-8")) if meta_file.is_file() else {}
        self.max_length = int(self.meta.get("max_length", 96))
        self._tok = Tokenizer.from_file(str(tok_file))
        self._tok.no_padding()
        self._tok.enable_truncation(self.max_length, strategy="only_second")
        # Where ONNX Runtime's int8 kernel would not sum exactly, the same weights in unsigned
        # bytes (qa/index/int8.py): the logits the threshold was chosen on, on every CPU.
        self.exact_int8 = int8.use_exact_weights()
        prepare = int8.exact_model if self.exact_int8 else None
        self._session = onnx_session(model_file, threads, ReaderError, prepare)
        self._outputs = ["relevance", "start_logits", "end_logits"]
        if "state" in {o.name for o in self._session.get_outputs()}:
            self._outputs.append("state")

    def readings(self, question: str, sentences: Sequence[str]) -> list[Reading]:
        """One :class:`Reading` per sentence (one batched model run)."""
        if not sentences:
            return []
        enc = self._tok.encode_batch([(question, s) for s in sentences])
        out: list[Reading | None] = [None] * len(enc)
        # Length-sorted batches: padding to the longest of a batch costs less.
        order = sorted(range(len(enc)), key=lambda i: len(enc[i].ids))
        for a, b in batches([len(enc[i].ids) for i in order], self.batch_size):
            rows = order[a:b]
            width = max(len(enc[i].ids) for i in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            types = np.zeros_like(ids)
            for j, i in enumerate(rows):
                e = enc[i]
                n = len(e.ids)
                ids[j, :n], mask[j, :n], types[j, :n] = e.ids, e.attention_mask, e.type_ids
            rel, starts, ends, *state = self._session.run(
                self._outputs, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            )
            for j, i in enumerate(rows):
                out[i] = self.reading_of(
                    enc[i], sentences[i], float(rel[j]), starts[j], ends[j], state[0][j] if state else None
                )
        return out

    @staticmethod
    def reading_of(
        e, sentence: str, rel: float, starts: np.ndarray, ends: np.ndarray, state: np.ndarray | None = None
    ) -> Reading:
        """The :class:`Reading` of one encoded (question, sentence) pair from the model's
        outputs (also for a torch copy of the model: train/sweep.py)."""
        offsets = e.offsets  # (each access to an Encoding's list builds it anew: once here)
        ctx = np.array([t for t, (s, o) in enumerate(zip(e.sequence_ids, offsets)) if s == 1 and o[1] > o[0]])
        if not len(ctx):
            return Reading(rel, None, -np.inf, state)
        s, en = starts[ctx], ends[ctx]
        # Best start <= end within MAX_PHRASE_TOKENS: a band of the outer-sum matrix.
        grid = s[:, None] + en[None, :]
        i, j = np.indices(grid.shape)
        grid = np.where((j >= i) & (j - i < MAX_PHRASE_TOKENS), grid, -np.inf)
        a, b = np.unravel_index(int(np.argmax(grid)), grid.shape)
        null = float(starts[0] + ends[0])
        return Reading(
            rel,
            name_kept_whole(sentence, *whole_words(sentence, int(offsets[ctx[a]][0]), int(offsets[ctx[b]][1]))),
            float(grid[a, b]) - null,
            state,
        )

    def read(self, question: str, sentences: Sequence[str]) -> tuple[np.ndarray, list[str]]:
        """Relevance logits and answer phrases (as text) for ``sentences``."""
        rs = self.readings(question, sentences)
        phrases = [s[r.phrase[0] : r.phrase[1]] if r.phrase else "" for s, r in zip(sentences, rs)]
        return np.array([r.relevance for r in rs]), phrases


def batches(lengths: Sequence[int], most: int, run_cost: int = RUN_COST_TOKENS) -> list[tuple[int, int]]:
    """Cut ``lengths`` (ascending) into batches of at most ``most`` rows, each padded to its
    longest, with the least work: padded tokens plus ``run_cost`` tokens per model run
    (dynamic programming over the cut points; a question's ~7 sentences pad ~23 % fewer
    tokens than in one batch)."""
    n = len(lengths)
    best, cut = [0.0] + [float("inf")] * n, [0] * (n + 1)
    for i in range(1, n + 1):
        for j in range(max(0, i - most), i):
            cost = best[j] + (i - j) * lengths[i - 1] + run_cost
            if cost < best[i]:
                best[i], cut[i] = cost, j
    out, i = [], n
    while i > 0:
        out.append((cut[i], i))
        i = cut[i]
    return out[::-1]


def whole_words(text: str, start: int, end: int) -> tuple[int, int]:
    """``[start, end)`` widened to whole words (word pieces can start inside a word) and
    without surrounding spaces or separating punctuation."""
    while start > 0 and text[start - 1].isalnum():
        start -= 1
    while end < len(text) and text[end].isalnum():
        end += 1
    while start < end and (text[start].isspace() or text[start] in ",;:"):
        start += 1
    while end > start and (text[end - 1].isspace() or text[end - 1] in ",;:"):
        end -= 1
    return start, end


def name_kept_whole(text: str, start: int, end: int) -> tuple[int, int]:
    """``[start, end)`` carried on over up to :data:`MAX_NAME_WORDS` capitalised words that
    follow it when it ends in a capitalised word, so that a name is not cut after its first
    words ("Marco" → "Marco Rubio", "CBS" → "CBS News").  Only forward: the words before a
    name are mostly titles ("General", "Vice President"), which SQuAD's answers leave out.
    On held-out SQuAD articles (`python benchmarks/reader_heldout.py`: 1,990 questions, the
    answer's sentence given) exact match 0.4764 → 0.4774, F1 0.6693 → 0.6697."""
    words = text[start:end].split()
    if not words or not words[-1][:1].isupper() or not text[end - 1].isalnum():
        return start, end
    for _ in range(MAX_NAME_WORDS):
        m = NAME_WORD.match(text, end)
        if not m:
            break
        end = m.end()
    return start, end


@lru_cache(maxsize=2)
def shipped_reader(folder: str = str(READER_DIR), threads: int = 1) -> Reader | None:
    """The shipped reader (loaded once per process), or None when it is not there."""
    try:
        return Reader(Path(folder), threads)
    except ReaderError:
        return None
