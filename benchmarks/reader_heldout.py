#!/usr/bin/env python3
"""The shipped reader's held-out figures, as `make train` records them, with and without the
answer phrase's name rule (qa/answer/reader.py ``name_kept_whole``).

    python benchmarks/reader_heldout.py [--json docs/reader-heldout.json]

Runs ``train/reader.py``'s :func:`heldout_figures` (the same 2,000 questions of the held-out
articles, seed 7: answer sentence first in its paragraph, the phrase's exact match and F1 on
the answer's sentence, two answerability AUCs) on ``qa/models/reader`` twice: with the phrase
carried over the rest of a name, and with that rule off (the phrase as the model's best span,
widened to whole words only).  Only the phrase columns can differ.  No test set is read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "train"))

from latency import machine  # noqa: E402

import qa.answer.reader as reader_module  # noqa: E402
from train.data import load_articles, paragraphs  # noqa: E402
from train.reader import heldout_figures  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args(argv)
    held = {t: paragraphs(rows) for t, rows in load_articles(split="heldout").items()}
    reader = reader_module.Reader(threads=1)
    info = {"machine": machine(), "rows": {}}
    print(f"# {info['machine']['cpu']}, reader int8 {info['machine']['reader_int8']}", flush=True)
    kept = reader_module.name_kept_whole
    for name, rule in (("names kept whole", kept), ("without the name rule", lambda text, a, b: (a, b))):
        reader_module.name_kept_whole = rule
        try:
            figures = heldout_figures(lambda q, s: reader.read(q, s), held)
        finally:
            reader_module.name_kept_whole = kept
        info["rows"][name] = figures
        print(f"{name:24} " + "  ".join(f"{k} {v}" for k, v in figures.items()), flush=True)
    if args.json:
        args.json.write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
