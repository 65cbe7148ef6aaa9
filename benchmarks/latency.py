#!/usr/bin/env python3
"""Query latency in-process, index loaded: the whole answer vs a bare ``encode(question)``.

    python benchmarks/latency.py                                  # seeds + squad-dev, torch and onnx, 1 and 2 threads
    python benchmarks/latency.py --sets seeds --backends onnx --threads 1
    python benchmarks/latency.py --profile --sets squad-dev --backends onnx --threads 1
    python benchmarks/latency.py --json latency.json

For every (question set, backend, threads) it loads the index once and, question by
question, interleaves (so that load from other processes hits all alike):

* ``bare``   — the embedder's own encode of the question (``SentenceTransformer.encode``
  for torch, the ONNX session for onnx), nothing else;
* ``answer`` — ``Engine.ask(question)``, the whole answer;
* the same answer in its stages, timed from outside:
  ``encode`` (``engine.retriever.encode``), ``search`` (``retriever.signals`` given the
  vector: BM25 + FAISS + chunk cosines), ``quotes`` (``engine.candidate_features`` +
  ``engine.rank``, or with the shipped reader ``engine._read``: pre-ranking, the reader,
  re-scoring and answerability).

It prints p50/p95 per stage and the target ratio p50(answer) / p50(bare) (≤ 1.25).
Thread settings apply to torch (``torch.set_num_threads``), ONNX Runtime (intra-op
threads) and faiss (OpenMP).  The machine's load (``os.getloadavg``) is printed with
every row.  ``--profile`` adds a cProfile of the non-encode part.

Indexes: ``--seeds-index`` / ``--squad-index`` (built here with the default settings
when missing; ``.bench/latency-*`` by default).  The ONNX backend uses the export in
the index folder (``query-encoder.onnx``), exporting it there if absent.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

SQUAD = ROOT.parent / "shared" / "eval" / "squad-dev"
SETS = {
    "seeds": (ROOT / "seeds", ROOT / "eval" / "seeds.jsonl"),
    "squad-dev": (SQUAD / "corpus", SQUAD / "qa.jsonl"),
}


def machine() -> dict:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
        platform.processor(),
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "reader_int8": reader_int8(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def reader_int8() -> str:
    """Which weights the int8 models (the reader; the onnx-int8 encoder) run on here and
    whether their sums are exact (qa/index/int8.py): a CPU without VNNI's figures depend on it."""
    from qa.index import int8

    if int8.use_exact_weights():
        return "unsigned weights (exact)"
    return "signed weights, " + ("exact (VNNI or not x86)" if int8.cpu_sums_exactly() else "saturating (no VNNI)")


def run_record() -> dict:
    """The start of a benchmark's JSON record (machine, command, load), announced on stdout."""
    info = {
        "machine": machine(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "load_start": load(),
        "rows": [],
    }
    print(
        f"# {info['machine']['cpu']}, {info['machine']['cores']} cores, reader int8 {info['machine']['reader_int8']}, "
        f"{info['machine']['date']}, load {info['load_start']}",
        flush=True,
    )
    return info


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def questions(path: Path, limit: int) -> list[str]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    qs = [r["question"] for r in rows]
    if limit and len(qs) > limit:  # an even spread over the file, not its first articles
        qs = [qs[int(i)] for i in np.linspace(0, len(qs) - 1, limit)]
    return qs


def ensure_index(docs: Path, folder: Path) -> None:
    from qa.index import IndexProblem, load as load_index
    from qa.pipeline import build_index
    from qa.settings import Settings

    try:
        load_index(folder)
        return
    except IndexProblem:
        pass
    print(f"building {folder} from {docs} ...", file=sys.stderr, flush=True)
    build_index(Settings(docs=docs, index=folder))


def ensure_export(folder: Path) -> None:
    from qa.index.embedding import export_onnx, read_onnx_meta

    if read_onnx_meta(folder) is None:
        print(f"exporting the ONNX encoder into {folder} ...", file=sys.stderr, flush=True)
        export_onnx("all-MiniLM-L6-v2", folder)


def set_threads(threads: int) -> None:
    import faiss

    faiss.omp_set_num_threads(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def make_embedder(backend: str, threads: int, folder: Path):
    from qa.index.embedding import OnnxEmbedder, SentenceTransformerEmbedder

    if backend == "torch":
        emb = SentenceTransformerEmbedder(threads=threads)
        bare = lambda q: emb.model.encode([q], normalize_embeddings=True, convert_to_numpy=True)  # noqa: E731
    else:
        emb = OnnxEmbedder(folder, threads=threads)
        bare = lambda q: emb._run([q])  # noqa: E731  (tokenise + session.run, no Python wrapping)
    return emb, bare


# Whole (~60 lines): one configuration measured, its steps in order.
def run_one(name: str, backend: str, threads: int, folder: Path, qs: list[str], repeat: int, profile: bool) -> dict:
    from qa.pipeline import open_engine
    from qa.settings import Settings

    emb, bare = make_embedder(backend, threads, folder)
    set_threads(threads)
    settings = Settings(index=folder, threads=threads)
    engine = open_engine(settings, embedder=emb)
    r = engine.retriever
    top = max(settings.candidates, 100)
    for q in qs[:5]:  # warm-up: lazy tables, tokenizer, allocator
        engine.ask(q)
        bare(q)
    times: dict[str, list[float]] = {k: [] for k in ("bare", "answer", "encode", "search", "quotes", "staged")}
    load_before = load()
    started = time.perf_counter()
    for _ in range(repeat):
        for q in qs:
            t0 = time.perf_counter()
            bare(q)
            t1 = time.perf_counter()
            engine.ask(q)
            t2 = time.perf_counter()
            v = r.encode(q)
            t3 = time.perf_counter()
            sig = r.signals(q, query_vector=v, top_sentences=top)
            t4 = time.perf_counter()
            if engine.reader is not None:  # candidates, pre-ranking, the reader, re-scoring
                engine._read(q, sig, settings.top_k, None)
            else:
                cand, feats = engine.candidate_features(q, sig)
                if len(cand):
                    engine.rank(cand, feats, settings.top_k)
            t5 = time.perf_counter()
            for key, dt in (
                ("bare", t1 - t0),
                ("answer", t2 - t1),
                ("encode", t3 - t2),
                ("search", t4 - t3),
                ("quotes", t5 - t4),
                ("staged", t5 - t2),
            ):
                times[key].append(dt * 1000)
    row = {
        "set": name,
        "backend": backend,
        "threads": threads,
        "questions": len(qs),
        "repeat": repeat,
        "passages": {"sentences": int(len(engine.index.sentences)), "chunks": int(len(engine.index.chunks))},
        "load_before": load_before,
        "load_after": load(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    for key, values in times.items():
        row[key] = {"p50": round(pct(values, 50), 2), "p95": round(pct(values, 95), 2)}
    row["ratio_p50"] = round(row["answer"]["p50"] / row["bare"]["p50"], 3)
    row["non_encode_p50"] = round(statistics.median([s + qq for s, qq in zip(times["search"], times["quotes"])]), 2)
    if profile:
        row["profile"] = profile_rest(engine, qs, top, settings.top_k)
    return row


def agreement(folder: Path, qs: list[str]) -> dict:
    """ONNX vs torch on ``qs``: the lowest cosine between their question vectors, and how
    many questions get the same top-1 quote from the engine."""
    from qa.index.embedding import OnnxEmbedder, SentenceTransformerEmbedder
    from qa.pipeline import open_engine
    from qa.settings import Settings

    settings = Settings(index=folder)
    torch_e = SentenceTransformerEmbedder(threads=1)
    onnx_e = OnnxEmbedder(folder, threads=1)
    cos = [float(torch_e.encode([q])[0] @ onnx_e.encode([q])[0]) for q in qs]
    engines = [open_engine(settings, embedder=e) for e in (torch_e, onnx_e)]
    top = lambda e, q: [(x.doc_id, x.start, x.end) for x in e.ask(q).quotes[:1]]  # noqa: E731
    same = sum(top(engines[0], q) == top(engines[1], q) for q in qs)
    return {"questions": len(qs), "min_cosine": round(min(cos), 7), "same_top1": same}


def profile_rest(engine, qs: list[str], top: int, k: int, lines: int = 25) -> str:
    """cProfile of everything after the encode, over all questions."""
    r = engine.retriever
    vectors = [r.encode(q) for q in qs]
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(3):
        for q, v in zip(qs, vectors):
            sig = r.signals(q, query_vector=v, top_sentences=top)
            cand, feats = engine.candidate_features(q, sig)
            if len(cand):
                engine.rank(cand, feats, k)
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats(os.environ.get("PROFILE_SORT", "tottime")).print_stats(lines)
    return out.getvalue()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    p.add_argument("--backends", nargs="+", default=["torch", "onnx"], choices=["torch", "onnx"])
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    p.add_argument("--repeat", type=int, default=2, help="passes over the questions (default 2)")
    p.add_argument(
        "--limit",
        type=int,
        default=150,
        help="at most this many questions per set, spread evenly (default 150; 0: all)",
    )
    p.add_argument("--seeds-index", type=Path, default=ROOT / ".bench" / "latency-seeds")
    p.add_argument("--squad-index", type=Path, default=ROOT / ".bench" / "latency-squad-dev")
    p.add_argument("--profile", action="store_true", help="also print a cProfile of search + quote selection")
    p.add_argument("--json", type=Path, metavar="OUT")
    args = p.parse_args(argv)

    folders = {"seeds": args.seeds_index, "squad-dev": args.squad_index}
    info = run_record()
    header = f"{'set':10} {'backend':7} {'thr':>3} {'bare p50':>9} {'answer p50':>10} {'p95':>7} {'ratio':>6} | {'encode':>13} {'search':>11} {'quotes':>11} | load"
    print(header)
    for name in args.sets:
        docs, qa_file = SETS[name]
        ensure_index(docs, folders[name])
        if "onnx" in args.backends:
            ensure_export(folders[name])
        qs = questions(qa_file, args.limit)
        for backend in args.backends:
            for threads in args.threads:
                row = run_one(name, backend, threads, folders[name], qs, args.repeat, args.profile)
                info["rows"].append(row)
                st = lambda k: f"{row[k]['p50']:6.2f}/{row[k]['p95']:<6.2f}"  # noqa: E731
                print(
                    f"{name:10} {backend:7} {threads:>3} {row['bare']['p50']:9.2f} {row['answer']['p50']:10.2f} {row['answer']['p95']:7.2f} "
                    f"{row['ratio_p50']:6.2f} | {st('encode')} {st('search')} {st('quotes')} | {row['load_before']} → {row['load_after']}",
                    flush=True,
                )
                if args.profile:
                    print(row["profile"])
        if set(args.backends) >= {"torch", "onnx"}:
            info.setdefault("agreement", {})[name] = agree = agreement(
                folders[name], questions(qa_file, 0 if name == "seeds" else args.limit)
            )
            print(
                f"{name}: onnx vs torch over {agree['questions']} questions: min cosine {agree['min_cosine']}, same top-1 quote {agree['same_top1']}/{agree['questions']}",
                flush=True,
            )
    print("ms; stage columns are p50/p95; ratio = p50(answer) / p50(bare encode), target ≤ 1.25")
    if args.json:
        args.json.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
