"""``python -m qa``: index, ask, eval, show, docs.  A thin shell over :mod:`qa.pipeline`."""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from pathlib import Path

from ..errors import QAError, QuestionError, UsageError
from ..settings import MODES, Settings


# Whole (~100 lines): the commands and their flags as one table, read top to bottom.
def _parser() -> argparse.ArgumentParser:
    # `qa ...` when run as the installed command, `python -m qa ...` otherwise.
    called = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    prog = "qa" if called == "qa" else "python -m qa"
    p = argparse.ArgumentParser(prog=prog, description="Cited, verbatim answers from a folder of articles.")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error (also QA_DEBUG=1)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(sp, docs_default: bool = False):
        sp.add_argument("--index", type=Path, help="index folder (default: index)")
        sp.add_argument(
            "--docs",
            type=Path,
            help="document folder (default: seeds)" if docs_default else "check the index is current with this folder",
        )
        sp.add_argument("--model", help="embedding model: a folder, a cached hub name, or all-MiniLM-L6-v2 (bundled)")
        sp.add_argument("--threads", type=int, help="torch threads for encoding (default: torch's choice)")

    sp = sub.add_parser(
        "index",
        help="build or update the index of a document folder (.txt, .md, .html, .pdf, .docx)",
        description="Index a folder of .txt, .md, .html, .pdf and .docx files.  When the index exists, only "
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
        "--vector-index",
        choices=("auto", "flat", "ivf-sq8", "ivf-flat", "hnsw-sq8"),
        help="vector index kind (default auto: exact below 20,000 passages, IVF-SQ8 above)",
    )
    sp.add_argument("--json", action="store_true", help="print a machine-readable summary")
    sp.add_argument(
        "--no-wait",
        action="store_true",
        help="stop (with a message) if another `qa index` is writing this index, instead of waiting",
    )
    sp.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="where passages are embedded: this process (default) or a Ray cluster (needs requirements-ray.txt)",
    )
    sp.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="with --engine ray: an existing cluster (HOST:6379 or ray://HOST:10001); default: a private Ray on 127.0.0.1",
    )

    sp = sub.add_parser("ask", help="answer a question (or one per line from stdin)")
    sp.add_argument("question", nargs="?", help="the question; omit to read one per line from stdin")
    common(sp)
    sp.add_argument("-k", type=int, help="number of quotes (1-10, default 5)")
    sp.add_argument("--mode", choices=MODES)
    sp.add_argument(
        "--doc", action="append", dest="doc_ids", metavar="DOC_ID", help="only quote this document (repeatable)"
    )
    sp.add_argument(
        "--outlet",
        action="append",
        dest="outlets",
        metavar="NAME",
        help="only quote documents from this outlet (repeatable)",
    )
    sp.add_argument("--json", action="store_true", help="print the prediction object (FORMAT.md) as JSON")
    sp.add_argument(
        "--context",
        metavar="PREVIOUS",
        help='the previous question: a follow-up ("Why did he do that?") is read in its light; '
        "with questions on stdin, each line is then read in the light of the one before (a conversation); "
        '--context "" starts one with no previous question',
    )

    sp = sub.add_parser("eval", help="evaluate on a QA set (eval/FORMAT.md) or a conversation set (eval/FOLLOWUPS.md)")
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
    for command in sub.choices.values():  # --debug after the command too
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
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
    from ..index import locate, read_manifest
    from ..pipeline import open_engine

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


def _named_changes(summary: dict, limit: int = 10) -> str:
    """The files added, changed and removed, by name (at most ``limit`` of each)."""
    from ..ingest.corpus import printable

    lines = []
    for key in ("added", "changed", "removed"):
        names = [printable(str(n)) for n in summary.get(key) or []]
        if names:
            more = f" and {len(names) - limit} more" if len(names) > limit else ""
            lines.append(f"\n{key}: {', '.join(names[:limit])}{more}")
    return "".join(lines)


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
            f"in {s['seconds']:.1f} s\nnow {totals}{_named_changes(s)}"
        )
    lead = f"full rebuild: {s['reason']}\n" if s["reason"] else ""
    return f"{lead}indexed {totals} in {s['seconds']:.1f} s → {s['index']}/"


def cmd_index(args) -> int:
    from ..index import build_and_save

    settings = _settings(args)
    embedder = None
    if args.engine == "ray":
        from ..distributed import RayEmbedder, work_dir

        if settings.backend != "torch":
            raise UsageError(f"--engine ray embeds with the torch backend, not {settings.backend!r}")
        folder = work_dir(settings.index)
        embedder = RayEmbedder(settings.model, settings.threads, address=args.ray_address, folder=folder)
    elif args.ray_address:
        raise UsageError("--ray-address needs --engine ray")
    from ..progress import log_lines

    import threading

    # Say what is being done when it takes a while (a quick update or an early error stays
    # one line), also when stderr is a log and not a terminal.
    said = threading.Timer(
        2.0,
        lambda: print(
            f"reading the documents in {settings.docs}/ and updating {settings.index}/ …", file=sys.stderr, flush=True
        ),
    )
    said.daemon = True
    if not args.quiet:
        said.start()
    try:
        with log_lines():
            index, seconds = build_and_save(
                settings,
                embedder,
                progress=not args.quiet,
                full=args.full,
                wait=not args.no_wait,
                notify=lambda message: print(message, file=sys.stderr, flush=True),
            )
    finally:
        said.cancel()
    summary = index_summary(index, settings, seconds)
    from ..ingest.corpus import printable

    for skipped in summary["skipped"]:
        print(f"skipped {printable(skipped['path'])}: {skipped['reason']}", file=sys.stderr)
    print(json.dumps(summary, ensure_ascii=False, indent=2) if args.json else index_report(summary))
    return 0


def render(answer, width: int = 100) -> str:
    """An answer as text: quotes with [n] markers, then the sources they cite."""
    from .present import TENTATIVE, TENTATIVE_WHY, citation_words, searched_note, unmentioned_note

    lines = [searched_note(answer.searched_as) + "."] if answer.searched_as else []
    if not answer.answered:
        lines.append(answer.message.split(". ")[0] + ".")
        if answer.unmentioned:
            lines.append(unmentioned_note(answer.unmentioned) + ".")
        if answer.quotes:
            lines.append("You may look at:")
    elif answer.tentative:
        lines.append(f"{TENTATIVE} ({TENTATIVE_WHY}):")
        if answer.unmentioned:
            lines.append(unmentioned_note(answer.unmentioned) + ".")
        if answer.quotes and answer.quotes[0].phrase_text:
            lines.append(f"Perhaps: {' '.join(answer.quotes[0].phrase_text.split())}  (in quote [1])")
    elif answer.quotes and answer.quotes[0].phrase_text:
        lines.append(f"Answer: {' '.join(answer.quotes[0].phrase_text.split())}  (in quote [1])")
    for n, q in enumerate(answer.quotes, 1):
        lines.append(textwrap.fill(f"[{n}] “{' '.join(q.text.split())}”", width, subsequent_indent="    "))
    if answer.quotes:
        lines.append("")
        lines.append("Sources:")
        for n, q in enumerate(answer.quotes, 1):
            # In words (title, outlet, date, paragraph); the characters are in --json and `qa show`.
            lines.append(f"[{n}] {citation_words(q)}{', ' + q.url if q.url else ''} ({q.doc_id})")
    return "\n".join(lines)


def _fold(name: str) -> str:
    return " ".join(name.casefold().split())


def restrict(engine, doc_ids: list[str] | None, outlets: list[str] | None) -> list[str] | None:
    """The documents ``--doc`` and ``--outlet`` allow (both given: those both allow);
    None for no restriction."""
    if not outlets:
        return doc_ids
    wanted = {_fold(o) for o in outlets}
    chosen = [d.doc_id for d in engine.catalog if d.outlet and _fold(d.outlet) in wanted]
    if not chosen:
        known = sorted({d.outlet for d in engine.catalog if d.outlet})
        listed = ", ".join(repr(o) for o in known) if known else "none"
        raise UsageError(f"no documents from outlet {outlets[0]!r} (outlets in the index: {listed})")
    if doc_ids:
        unknown = [d for d in doc_ids if engine.document(d) is None]
        if unknown:
            raise UsageError(f"no document {unknown[0]!r} in the index (see: python -m qa docs)")
        chosen = [d for d in chosen if d in set(doc_ids)]
        if not chosen:
            raise UsageError("no document matches both --doc and --outlet")
    return chosen


def question_text(raw: str | bytes) -> str:
    """A question as valid text: bytes that are not UTF-8, invalid UTF-8 from the command
    line (which Python carries as escaped lone surrogates) and lone surrogates from anywhere
    else (a JSON ``"\\ud800"``) are a :class:`QuestionError` — the tokenizer would raise a
    TypeError on them.  Used by the CLI and the web app alike."""
    if isinstance(raw, str):
        try:
            raw = raw.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError as exc:
            raise QuestionError(
                f"the question holds a lone surrogate (character {exc.start + 1}): not valid text"
            ) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise QuestionError(f"the question is not valid UTF-8 text (byte {exc.start + 1})") from None


def _stdin_questions():
    """(line number, question or the error it raised) for each non-blank line of stdin, as
    lines arrive (a batch streams: each answer is printed before the next line is read)."""
    for number, raw in enumerate(sys.stdin.buffer, 1):
        raw = raw.rstrip(b"\r\n")
        if not raw.strip():
            continue
        try:
            yield number, question_text(raw)
        except QuestionError as exc:
            yield number, exc


# Whole (~60 lines): the command's options checked, then the questions asked and printed, in that order.
def cmd_ask(args) -> int:
    settings = _settings(args)
    if args.k is not None and not 1 <= args.k <= 10:
        raise UsageError(f"-k {args.k}: the number of quotes must be between 1 and 10")
    single = args.question is not None
    if single:
        questions = iter([(1, question_text(args.question))])
    elif sys.stdin is None or sys.stdin.isatty():
        raise UsageError("no question: give one as an argument, or pipe one per line on stdin")
    else:
        questions = _stdin_questions()
    engine = _engine(args, settings)
    doc_ids = restrict(engine, args.doc_ids, args.outlets)
    failures = 0
    from ..answer.conversation import resolve
    from ..answer.disagreement import for_engine

    differences = for_engine(engine)

    previous, previous_phrase = args.context, ""
    for number, question in questions:
        try:
            if isinstance(question, Exception):
                raise question
            reading = resolve(question, previous, previous_phrase)
            answer = engine.ask(reading.asked, k=args.k, doc_ids=doc_ids)
            if args.context is not None:  # a batch is a conversation only when asked to be
                previous = reading.asked
            previous_phrase = (
                (answer.quotes[0].phrase_text or answer.quotes[0].text) if answer.answered and answer.quotes else ""
            )
        except QuestionError as exc:
            if single:
                raise
            failures += 1
            print(f"error: line {number}: {exc}", file=sys.stderr)
            if args.json:
                shown = question if isinstance(question, str) else None
                print(
                    json.dumps({"line": number, "question": shown, "error": str(exc)}, ensure_ascii=False), flush=True
                )
            continue
        differ = differences(reading.asked, answer.quotes) if answer.answered else []
        if args.json:
            prediction = answer.to_prediction()
            if reading.followup:
                prediction.update(question=question, asked=reading.asked)
            if differ:
                prediction["differences"] = [d.text() for d in differ]
            print(json.dumps(prediction, ensure_ascii=False), flush=True)
        else:
            if not single:
                print(f"Q: {question}")
            if reading.followup:
                print(f"({reading.note})")
            print(render(answer))
            for d in differ:
                print(f"\nArticles differ: {d.text()}")
            if not single:
                print(flush=True)
    return 1 if failures else 0


def cmd_eval(args) -> int:
    from ..evaluation import compare, format_table, load_qa, plot, predict, score, write_predictions

    settings = _settings(args)
    from ..evaluation.conversations import evaluate as evaluate_conversations, is_conversation_file

    if is_conversation_file(args.qa_file):
        if args.compare:
            raise UsageError("--compare takes a QA set, not a conversation set")
        engine = _engine(args, settings)
        rows, predictions = evaluate_conversations(engine, args.qa_file)
        if args.predictions:
            write_predictions([p for conv in predictions for p in conv], args.predictions)
        print(json.dumps(rows, indent=2) if args.json else format_table(rows))
        return 0
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
    from ..index import load

    index = load(_settings(args).index)
    if args.doc_id not in index.doc_index:
        raise UsageError(f"no document {args.doc_id!r} in the index (see: python -m qa docs)")
    sys.stdout.write(index.documents[index.doc_index[args.doc_id]].text)
    return 0


def cmd_docs(args) -> int:
    import numpy as np

    from ..data import Col
    from ..index import load

    index = load(_settings(args).index)
    chunks = np.bincount(index.chunks[:, Col.DOC], minlength=len(index.documents))
    sentences = np.bincount(index.sentences[:, Col.DOC], minlength=len(index.documents))
    rows = []
    lengths = index.documents.texts.lengths
    for i, d in enumerate(index.documents.headers):
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
                "chars": int(lengths[i]),
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
        from ..ingest.corpus import printable

        for item in skipped:
            print(f"(skipped {printable(item['path'])}: {item['reason']})")
    return 0


COMMANDS = {"index": cmd_index, "ask": cmd_ask, "eval": cmd_eval, "show": cmd_show, "docs": cmd_docs}


def main(argv: list[str] | None = None) -> int:
    """Run the command line; every failure is one line on stderr and a non-zero status
    (``--debug`` or ``QA_DEBUG=1``: the traceback instead)."""
    args = _parser().parse_args(argv)
    debug = getattr(args, "debug", False) or os.environ.get("QA_DEBUG", "") not in ("", "0")
    try:
        return COMMANDS[args.command](args)
    except BrokenPipeError:  # the reader went away (e.g. `| head`): stop quietly
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (QAError, OSError) as exc:
        if debug:
            raise
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2 if isinstance(exc, (UsageError, QuestionError)) else 1
    except Exception as exc:  # a bug: still one line, and a status of its own
        if debug:
            raise
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 70  # EX_SOFTWARE


def one_line(exc: BaseException) -> str:
    """An exception as one line: our own errors (:class:`QAError`) by their message, an
    OSError by its file and reason, anything else — a bug, a library's surprise — by its
    type and first line, with the way to see more."""
    if isinstance(exc, QAError):
        text = (str(exc).strip().splitlines() or [""])[0]
    elif isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        text = f"{where}{exc.strerror or exc}"
    else:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        text = f"internal error (a bug): {type(exc).__name__}{': ' + first if first else ''} (run with --debug for the traceback)"
    return " ".join(text.split()) or type(exc).__name__
