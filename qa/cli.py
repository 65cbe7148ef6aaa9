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

    sp = sub.add_parser(
        "index",
        help="build or update the index of a document folder (.txt, .md, .html, .pdf)",
        description="Index a folder of .txt, .md, .html and .pdf files.  When the index exists, only "
        "added and changed files are embedded again and removed ones are dropped; files that cannot "
        "be read are reported and skipped.",
    )
    common(sp, docs_default=True)
    sp.add_argument("--chunk-size", type=int)
    sp.add_argument("--chunk-overlap", type=int)
    sp.add_argument("--full", action="store_true", help="rebuild from scratch, re-embedding every document")
    sp.add_argument("--quiet", action="store_true", help="no progress bar")
    sp.add_argument("--backend", choices=("torch", "onnx", "onnx-int8"), help="passage encoder (default torch)")
    sp.add_argument(
        "--vector-index", choices=("auto", "flat", "ivf-sq8", "ivf-flat", "hnsw-sq8"),
        help="vector index kind (default auto: exact below 20,000 passages, IVF-SQ8 above)",
    )
    sp.add_argument("--json", action="store_true", help="print a machine-readable summary")
    sp.add_argument(
        "--engine", choices=("local", "ray"), default="local",
        help="where passages are embedded: this process (default) or a Ray cluster (needs requirements-ray.txt)",
    )
    sp.add_argument(
        "--ray-address", metavar="ADDRESS",
        help="with --engine ray: an existing cluster (HOST:6379 or ray://HOST:10001); default: a private Ray on 127.0.0.1",
    )

    sp = sub.add_parser("ask", help="answer a question (or one per line from stdin)")
    sp.add_argument("question", nargs="?", help="the question; omit to read one per line from stdin")
    common(sp)
    sp.add_argument("-k", type=int, help="number of quotes (1-10, default 5)")
    sp.add_argument("--mode", choices=MODES)
    sp.add_argument("--doc", action="append", dest="doc_ids", metavar="DOC_ID", help="only quote this document (repeatable)")
    sp.add_argument("--outlet", action="append", dest="outlets", metavar="NAME", help="only quote documents from this outlet (repeatable)")
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
        backend=getattr(args, "backend", None),
        vector_index=getattr(args, "vector_index", None),
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


def index_summary(index, settings: Settings, seconds: float) -> dict:
    """What ``index`` did, as ``python -m qa index --json`` prints it."""
    info = index.build_info
    return {
        "index": str(settings.index),
        "docs": str(settings.docs),
        "full": info["full"],
        "reason": info["reason"],
        "added": info["added"],
        "changed": info["changed"],
        "removed": info["removed"],
        "unchanged": info["unchanged"],
        "metadata_changed": info["metadata_changed"],
        "skipped": info["skipped"],
        "reembedded_documents": info["reembedded_documents"],
        "encoded_passages": info["encoded_passages"],
        "reused_passages": info["reused_passages"],
        "counts": index.manifest["counts"],
        "seconds": round(seconds, 3),
    }


def index_report(summary: dict) -> str:
    """The summary as one or two lines of text."""
    s, c = summary, summary["counts"]
    totals = (
        f"{c['documents']} documents: {c['chunks']} chunks, {c['sentences']} quotable sentences "
        f"({c['paragraphs']} paragraphs)"
    )
    if not s["full"]:
        meta = f", {s['metadata_changed']} with new metadata" if s["metadata_changed"] else ""
        return (
            f"updated {s['index']}/: {len(s['added'])} added, {len(s['changed'])} changed, "
            f"{len(s['removed'])} removed, {s['unchanged']} unchanged{meta} "
            f"(re-embedded {s['reembedded_documents']} documents, {s['encoded_passages']} passages) "
            f"in {s['seconds']:.1f} s\nnow {totals}"
        )
    lead = f"full rebuild: {s['reason']}\n" if s["reason"] else ""
    return f"{lead}indexed {totals} in {s['seconds']:.1f} s → {s['index']}/"


def cmd_index(args) -> int:
    from .index import build_and_save

    settings = _settings(args)
    embedder = None
    if args.engine == "ray":
        from .distributed import RayEmbedder, work_dir

        if settings.backend != "torch":
            raise UsageError(f"--engine ray embeds with the torch backend, not {settings.backend!r}")
        folder = work_dir(settings.index)
        embedder = RayEmbedder(settings.model, settings.threads, address=args.ray_address, folder=folder)
    elif args.ray_address:
        raise UsageError("--ray-address needs --engine ray")
    index, seconds = build_and_save(settings, embedder, progress=not args.quiet and sys.stderr.isatty(), full=args.full)
    summary = index_summary(index, settings, seconds)
    for skipped in summary["skipped"]:
        print(f"skipped {skipped['path']}: {skipped['reason']}", file=sys.stderr)
    print(json.dumps(summary, ensure_ascii=False, indent=2) if args.json else index_report(summary))
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


def _fold(name: str) -> str:
    return " ".join(name.casefold().split())


def restrict(index, doc_ids: list[str] | None, outlets: list[str] | None) -> list[str] | None:
    """The documents ``--doc`` and ``--outlet`` allow (both given: those both allow);
    None for no restriction."""
    if not outlets:
        return doc_ids
    wanted = {_fold(o) for o in outlets}
    chosen = [d.doc_id for d in index.documents if d.outlet and _fold(d.outlet) in wanted]
    if not chosen:
        known = sorted({d.outlet for d in index.documents if d.outlet})
        listed = ", ".join(repr(o) for o in known) if known else "none"
        raise UsageError(f"no documents from outlet {outlets[0]!r} (outlets in the index: {listed})")
    if doc_ids:
        unknown = [d for d in doc_ids if d not in index.doc_index]
        if unknown:
            raise UsageError(f"no document {unknown[0]!r} in the index (see: python -m qa docs)")
        chosen = [d for d in chosen if d in set(doc_ids)]
        if not chosen:
            raise UsageError("no document matches both --doc and --outlet")
    return chosen


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
    doc_ids = restrict(engine.index, args.doc_ids, args.outlets)
    failures = 0
    for i, question in enumerate(questions):
        try:
            answer = engine.ask(question, k=args.k, doc_ids=doc_ids)
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
    chunks = np.bincount(index.chunks[:, 0], minlength=len(index.documents))
    sentences = np.bincount(index.sentences[:, 0], minlength=len(index.documents))
    rows = []
    for i, d in enumerate(index.documents):
        rows.append(
            {
                "doc_id": d.doc_id,
                "title": d.title,
                "outlet": d.outlet,
                "date": d.date,
                "url": d.url,
                "path": d.path,
                "format": d.format,
                "pages": len(d.pages) or None,
                "chars": len(d.text),
                "chunks": int(chunks[i]),
                "sentences": int(sentences[i]),
                "indexed_at": d.indexed_at,
            }
        )
    skipped = index.manifest["corpus"].get("skipped", [])
    if args.json:
        listing = {"created": index.manifest["created"], "documents": rows, "skipped": skipped}
        print(json.dumps(listing, ensure_ascii=False, indent=2))
    else:
        print(f"{len(rows)} documents, index updated {index.manifest['created']}")
        width = max(len(r["doc_id"]) for r in rows)
        for r in rows:
            extra = ", ".join(x for x in (r["outlet"], r["date"], f"{r['pages']} pages" if r["pages"] else "") if x)
            extra = f" — {extra}" if extra else ""
            print(
                f"{r['doc_id']:<{width}}  {r['format'] or '?':<8} {r['chars']:>7} chars {r['chunks']:>4} chunks  "
                f"indexed {r['indexed_at'] or '?'}  {r['title']}{extra}"
            )
        for item in skipped:
            print(f"(skipped {item['path']}: {item['reason']})")
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
    except BrokenPipeError:  # the reader went away (e.g. `| head`): stop quietly
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 0
    except OSError as exc:
        print(f"error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
