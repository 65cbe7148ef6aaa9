"""Answer quality on the seed QA set and squad-dev: every retrieval mode side by side.

    python benchmarks/quality.py                     # both sets, tables to stdout
    python benchmarks/quality.py --json out.json     # ... and the figures as JSON

Builds (or reuses, when current) an index per corpus under --work, runs
``qa.evaluation.compare`` (the same code as ``python -m qa eval --compare``) and writes
the answer@k / span@k plots to docs/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from qa.evaluation import compare, format_table, load_qa, plot  # noqa: E402
from qa.pipeline import ensure_index  # noqa: E402
from qa.settings import Settings  # noqa: E402

SHARED = ROOT.parent / "shared" / "eval"
SETS = {
    "seeds": (ROOT / "seeds", ROOT / "eval" / "seeds.jsonl"),
    "squad-dev": (SHARED / "squad-dev" / "corpus", SHARED / "squad-dev" / "qa.jsonl"),
}


def engine_for(docs: Path, index: Path):
    """The engine for ``docs``, (re)building its index when missing or stale."""
    return ensure_index(Settings(docs=docs, index=index))[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, default=ROOT / ".bench")
    ap.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    ap.add_argument("--plots", type=Path, default=ROOT / "docs")
    ap.add_argument("--json", type=Path, help="write all figures here")
    args = ap.parse_args()
    from latency import reader_int8

    machine = f"{platform.machine()}, {os.cpu_count()} cores, reader int8 {reader_int8()}"
    out = {"date": time.strftime("%Y-%m-%d"), "machine": machine, "sets": {}}
    for name in args.sets:
        docs, qa_file = SETS[name]
        engine = engine_for(docs, args.work / name)
        items = load_qa(qa_file)
        rows = compare(engine, items, progress=sys.stderr.isatty())
        plot(rows, args.plots / f"quality-{name}.png", title=f"{name}: {len(items)} questions")
        out["sets"][name] = rows
        print(f"\n## {name} ({len(items)} questions; `python -m qa eval {os.path.relpath(qa_file, ROOT)} --compare`)\n")
        print(format_table(rows))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
