"""``python -m qa``: index, ask, eval, show, docs.  A thin shell over :mod:`qa.pipeline`."""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from pathlib import Path

from .settings import MODES, Settings


class UsageError(ValueError):
    pass


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m qa", description="Cited, verbatim answers from a folder of articles.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(sp, docs_default: bool = False):
        sp.add_argument("--index", type=Path, help="index folder (default: index)")
        sp.add_argument("--docs", type=Path, help="document folder (default: seeds)" if docs_default else "check the index is current with this folder")
        sp.add_argument("--model", help="embedding model: a folder, a cached hub name, or all-MiniLM-L6-v2 (bundled)")
        sp.add_argument("--threads", type=int, help="torch threads for encoding (default: torch's choice)")

    sp = sub.add_parser("index", help="build the index of a document folder")
    common(sp, docs_default=True)
    sp.add_argument("--chunk-size", type=int)
    sp.add_argument("--chunk-overlap", type=int)
    sp.add_argument("--quiet", action="store_true", help="no progress bar")

    sp = sub.add_parser("ask", help="answer a question (or one per line from stdin)")
    sp.add_argument("question", nargs="?", help="the question; omit to read one per line from stdin")
    common(sp)
    sp.add_argument("-k", type=int, help="number of quotes (1-10, default 5)")
    sp.add_argument("--mode", choices=MODES)
    sp.add_argument("--doc", action="append", dest="doc_ids", metavar="DOC_ID", help="only quote this document (repeatable)")
    sp.add_argument("--json", action="store_true", help="print the prediction object (FORMAT.md) as JSON")

    sp = sub.add_parser("eval", help="evaluate on a QA set (eval/FORMAT.md)")
    sp.add_argument("qa_file", type=Path, metavar="QA.jsonl")
    common(sp)
    sp.add_argument("--predictions", type=Path, metavar="OUT.jsonl", help="write predictions here")
    sp.add_argument("--mode", choices=MODES)
    sp.add_argument("--compare", action="store_true", help="all retrieval modes side by side")
    sp.add_argument("--plot", type=Path, metavar="PNG", help="with --compare: plot answer@k and span@k")
    sp.add_argument("--json", action="store_true", help="print metrics as JSON")

    sp = sub.add_parser("show", help="print an indexed document's exact text")
    sp.add_argument("doc_id")
    sp.add_argument("--index", type=Path)

    sp = sub.add_parser("docs", help="list the indexed documents")
    sp.add_argument("--index", type=Path)
    sp.add_argument("--json", action="store_true")
    return p


def _settings(args) -> Settings:
    return Settings.from_env(
        index=getattr(args, "index", None),
        docs=getattr(args, "docs", None),
        model=getattr(args, "model", None),
        threads=getattr(args, "threads", None),
        chunk_size=getattr(args, "chunk_size", None),
        chunk_overlap=getattr(args, "chunk_overlap", None),
        mode=getattr(args, "mode", None),
    )


def _engine(args, settings: Settings):
    from .index import locate, read_manifest
    from .pipeline import open_engine

    docs = args.docs
    if docs is None:
        # Check against the folder the index was built from, when it is still there.
        root = Path(read_manifest(locate(settings.index))["corpus"]["root"])
        docs = root if root.is_dir() else None
    return open_engine(settings, docs=docs, model=args.model)


# ---------------------------------------------------------------- commands


def cmd_index(args) -> int:
    from .pipeline import build_index

    settings = _settings(args)
    index, seconds = build_index(settings, progress=not args.quiet and sys.stderr.isatty())
    c = index.manifest["counts"]
    print(
        f"indexed {c['documents']} documents: {c['chunks']} chunks, {c['sentences']} quotable sentences "
        f"({c['paragraphs']} paragraphs) in {seconds:.1f} s → {settings.index}/"
    )
    return 0


def render(answer, width: int = 100) -> str:
    """An answer as text: quotes with [n] markers, then the sources they cite."""
    lines = []
    if not answer.answered:
        lines.append(answer.message.split(". ")[0] + ".")
        if answer.quotes:
            lines.append("You may look at:")
    for n, q in enumerate(answer.quotes, 1):
        lines.append(textwrap.fill(f"[{n}] “{' '.join(q.text.split())}”", width, subsequent_indent="    "))
    if answer.quotes:
        lines.append("")
        lines.append("Sources:")
        for n, q in enumerate(answer.quotes, 1):
            lines.append(f"[{n}] {q.citation()} ({q.doc_id})")
    return "\n".join(lines)


def cmd_ask(args) -> int:
    from .answer import QuestionError

    settings = _settings(args)
    if args.question is not None:
        questions = [args.question]
    elif sys.stdin is None or sys.stdin.isatty():
        raise UsageError("no question: give one as an argument, or pipe one per line on stdin")
    else:
        questions = [line.rstrip("\n") for line in sys.stdin if line.strip()]
    engine = _engine(args, settings)
    failures = 0
    for i, question in enumerate(questions):
        try:
            answer = engine.ask(question, k=args.k, doc_ids=args.doc_ids)
        except QuestionError as exc:
            if len(questions) == 1:
                raise
            failures += 1
            print(f"error: line {i + 1}: {exc}", file=sys.stderr)
            if args.json:
                print(json.dumps({"question": question, "error": str(exc)}, ensure_ascii=False))
            continue
        if args.json:
            print(json.dumps(answer.to_prediction(), ensure_ascii=False))
        else:
            if len(questions) > 1:
                print(f"Q: {question}")
            print(render(answer))
            if len(questions) > 1:
                print()
    return 1 if failures else 0


def cmd_eval(args) -> int:
    from .evaluation import compare, format_table, load_qa, plot, predict, score, write_predictions

    settings = _settings(args)
    items = load_qa(args.qa_file)
    engine = _engine(args, settings)
    progress = sys.stderr.isatty()
    if args.compare:
        rows = compare(engine, items, progress=progress)
        if args.plot:
            plot(rows, args.plot, title=f"{args.qa_file} ({len(items)} questions)")
        print(json.dumps(rows, indent=2) if args.json else format_table(rows))
        return 0
    predictions = predict(engine, items, progress=progress)
    if args.predictions:
        write_predictions(predictions, args.predictions)
    metrics = score(items, predictions)
    if args.json:
        print(json.dumps(metrics, indent=2))
    else:
        print(format_table({settings.mode: metrics}))
    return 0


def cmd_show(args) -> int:
    from .index import load

    index = load(_settings(args).index)
    if args.doc_id not in index.doc_index:
        raise UsageError(f"no document {args.doc_id!r} in the index (see: python -m qa docs)")
    sys.stdout.write(index.documents[index.doc_index[args.doc_id]].text)
    return 0


def cmd_docs(args) -> int:
    import numpy as np

    from .index import load

    index = load(_settings(args).index)
    rows = []
    for i, d in enumerate(index.documents):
        rows.append(
            {
                "doc_id": d.doc_id,
                "title": d.title,
                "outlet": d.outlet,
                "chars": len(d.text),
                "chunks": int(np.sum(index.chunks[:, 0] == i)),
                "sentences": int(np.sum(index.sentences[:, 0] == i)),
            }
        )
    if args.json:
        print(json.dumps({"created": index.manifest["created"], "documents": rows}, ensure_ascii=False, indent=2))
    else:
        print(f"{len(rows)} documents, indexed {index.manifest['created']}")
        for r in rows:
            outlet = f" — {r['outlet']}" if r["outlet"] else ""
            print(f"{r['doc_id']}  {r['chars']:>7} chars {r['chunks']:>4} chunks  {r['title']}{outlet}")
    return 0


COMMANDS = {"index": cmd_index, "ask": cmd_ask, "eval": cmd_eval, "show": cmd_show, "docs": cmd_docs}


def main(argv: list[str] | None = None) -> int:
    """Run the command line; every failure is one line on stderr and a non-zero status."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from .answer import QuestionError
    from .corpus import CorpusError
    from .embedding import ModelError
    from .evaluation import EvalError
    from .index import IndexProblem

    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (UsageError, QuestionError, CorpusError, ModelError, EvalError, IndexProblem, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, (UsageError, QuestionError)) else 1
    except OSError as exc:
        print(f"error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
