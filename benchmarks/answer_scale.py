#!/usr/bin/env python3
"""The whole answer path at 10^4 … 10^6 sentences: build, update, load, latency, memory.

    python benchmarks/answer_scale.py                                   # 1e4 1e5 1e6, stand-in embedder
    python benchmarks/answer_scale.py --sizes 10000 --model all-MiniLM-L6-v2
    python benchmarks/answer_scale.py --json docs/scale-answers.json --plot docs/scale-answers.png

Corpus: real prose.  The articles of SQuAD v1.1 train (``../shared/train``, CC BY-SA 4.0;
~95k sentences), one text file per article; beyond them, *varied* copies: every copy
replaces a fifth of its words by words drawn from the corpus's own word frequencies
(seeded), so no two texts are equal (identical texts would be de-duplicated), sentence
and paragraph shapes stay those of real prose, and the vocabulary keeps its Zipf shape.

Embedder: the stand-in ``static-minilm-384`` by default (benchmarks/standin.py: the mean
of the bundled model's word-piece vectors — 10^4 passages/s instead of ~100, with the
clustered geometry of real sentence vectors, so IVF indexes are tuned and searched as they
would be; real embedding of 10^6 sentences, ~2.3M passages, would take hours on 2 cores).
It sets the vector count, index kinds and search costs; the quality of its answers is not
the product's and is not reported.  ``--model all-MiniLM-L6-v2`` uses the real one
(sensible up to ~10^4).

Per size, each step in its own process: full build (``qa index``: seconds, peak RSS);
index size on disk; a serving process (the shipped reader, one thread) that loads the
index (seconds) and answers real SQuAD questions of the corpus's articles: query-encoder
time apart, the rest of the answer p50/p95, the first answer, peak RSS, and PSS/private
memory; then an incremental update after adding 1 % new documents (seconds, vs the build).
Work folders: ``.bench-scale/`` (reused: a corpus or an index already there is not remade
unless ``--rebuild``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT.parent / "shared" / "train" / "squad-v1.1-train.jsonl.gz"
WORK = ROOT / ".bench-scale"
SENTENCE_END = re.compile(r"[.!?][\"')\]]*\s+(?=[A-Z\"'(])")
WORD = re.compile(r"\b[a-z]{3,}\b")
ONE_THREAD = {k: "1" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}

sys.path.insert(0, str(ROOT / "benchmarks"))
from latency import load, machine, pct  # noqa: E402
from standin import NAME as STANDIN  # noqa: E402

from qa.index.vectors import TARGET_RECALL  # noqa: E402


# ---------------------------------------------------------------- corpus


def articles() -> list[tuple[str, str, list[str]]]:
    """(title, text, questions) per SQuAD train article, paragraphs separated by blank lines."""
    by_title: dict[str, tuple[list[str], list[str]]] = {}
    with gzip.open(TRAIN, "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            paras, qs = by_title.setdefault(row["title"], ([], []))
            paras.append(" ".join(row["context"].split()))
            qs.extend(q["question"] for q in row["qas"])
    return [(t, "\n\n".join(p) + "\n", q) for t, (p, q) in sorted(by_title.items())]


def estimate_sentences(text: str) -> int:
    """About how many quotable sentences the index will cut from ``text`` (the regex
    over-counts what pysbd cuts by ~1/5 on this prose: 8,393 cut for 10,000 estimated)."""
    return int(0.82 * (len(SENTENCE_END.findall(text)) + text.count("\n\n") + 1))


class Varier:
    """Varied copies of real text: a fifth of the lower-case words replaced by words drawn
    from the corpus's word frequencies (seeded by title and copy number)."""

    def __init__(self, texts: list[str]) -> None:
        counts = Counter(w for t in texts for w in WORD.findall(t))
        self.words = list(counts)
        p = np.array([counts[w] for w in self.words], dtype=np.float64)
        self.cum = np.cumsum(p / p.sum())

    def __call__(self, text: str, title: str, copy: int) -> str:
        rng = np.random.default_rng(_seed(title, copy))
        draws = iter(np.searchsorted(self.cum, rng.random(len(text) // 3 + 16)))
        coins = iter(rng.random(len(text) // 3 + 16))

        def swap(m: re.Match) -> str:
            return self.words[min(next(draws), len(self.words) - 1)] if next(coins) < 0.2 else m.group()

        return WORD.sub(swap, text)


def _seed(title: str, copy: int) -> int:
    import hashlib

    return int.from_bytes(hashlib.sha256(f"{title}\0{copy}".encode()).digest()[:4], "little")


def make_corpus(folder: Path, sentences: int, arts, varier: Varier, first_copy: int = 0) -> tuple[int, list[str]]:
    """Write about ``sentences`` sentences of documents into ``folder`` (copy 0 = the
    articles themselves, then varied copies); returns the estimate and the questions."""
    folder.mkdir(parents=True, exist_ok=True)
    total, questions, copy = 0, [], first_copy
    while total < sentences:
        for title, text, qs in arts:
            if total >= sentences:
                break
            body = text if copy == 0 else varier(text, title, copy)
            name = re.sub(r"[^A-Za-z0-9]+", "_", title)[:60]
            (folder / f"c{copy:03d}_{name}.txt").write_text(body, encoding="utf-8")
            total += estimate_sentences(body)
            questions.extend(qs[:3])
        copy += 1
    return total, questions


# ---------------------------------------------------------------- steps (each in its own process)

BUILD = r"""
import json, sys, time
sys.path.insert(0, "benchmarks")
t = time.perf_counter()
from standin import embedder_for
from qa import index as index_mod
from qa.settings import Settings
docs, folder, model, full = sys.argv[1:5]
embedder = embedder_for(model)  # registered by standin: no ONNX query encoder to save
index, _ = index_mod.build_and_save(Settings(docs=docs, index=folder, model=model), embedder, full=full == "full")
took = time.perf_counter() - t
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) // 1024
print(json.dumps({"seconds": took, "peak_rss_mb": hwm, "build": index.build_info}))
"""

SERVE = r"""
import json, sys, time
import numpy as np
def status():
    return {l.split(":")[0]: int(l.split()[1]) // 1024 for l in open("/proc/self/status") if l.startswith(("VmRSS", "VmHWM"))}
def rollup():
    out = {}
    for l in open("/proc/self/smaps_rollup"):
        parts = l.split()
        if parts[0] in ("Pss:", "Private_Clean:", "Private_Dirty:", "Shared_Clean:"):
            out[parts[0][:-1]] = int(parts[1]) // 1024
    return out
t0 = time.perf_counter()
sys.path.insert(0, "benchmarks")
import faiss
faiss.omp_set_num_threads(1)
from standin import embedder_for
from qa import index as index_mod
from qa.pipeline import _engine
from qa.settings import Settings
imported = time.perf_counter() - t0
t = time.perf_counter()
index = index_mod.load(sys.argv[1])
load_s = time.perf_counter() - t
t = time.perf_counter()
engine = _engine(index, Settings(index=sys.argv[1], threads=1), embedder_for(index.model))
for name, nprobe in json.loads(sys.argv[3]).items():  # a query-time nprobe, when asked for
    faiss.extract_index_ivf(getattr(index, name)).nprobe = nprobe
engine_s = time.perf_counter() - t
after_load = status()
questions = json.load(open(sys.argv[2]))
t = time.perf_counter()
engine.ask(questions[0])
first_ms = (time.perf_counter() - t) * 1000
enc, rest, search, answered = [], [], [], 0
for q in questions[1:]:
    t = time.perf_counter()
    v = engine.retriever.encode(q)
    t1 = time.perf_counter()
    a = engine.ask(q, query_vector=v)
    t2 = time.perf_counter()
    # The two vector searches an answer makes, timed again right after it (same pages warm).
    index.sentence_vectors.search(v[None, :], 100)
    index.chunk_vectors.search(v[None, :], 64)
    search.append((time.perf_counter() - t2) * 1000)
    enc.append((t1 - t) * 1000)
    rest.append((t2 - t1) * 1000)
    answered += a.answered
print(json.dumps({"import_s": imported, "load_s": load_s, "engine_s": engine_s, "first_answer_ms": first_ms,
                  "encode_ms": enc, "answer_ms": rest, "search_ms": search, "answered": answered, "rss_after_load_mb": after_load["VmRSS"],
                  "rss_mb": status()["VmRSS"], "peak_rss_mb": status()["VmHWM"], **{k.lower() + "_mb": v for k, v in rollup().items()}}))
"""


def run_step(code: str, *args: str, env: dict | None = None) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, **ONE_THREAD, **(env or {})),
    )
    if proc.returncode != 0:
        sys.exit(f"step failed ({' '.join(args[:3])}): {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


# Whole (~75 lines): one size of the benchmark, its steps in order (corpus, build, serve, report).
def one_size(
    target: int, model: str, arts, varier: Varier, questions_n: int, rebuild: bool, serve_only: bool = False
) -> dict:
    tag = f"{target}-{model.replace('/', '_')}"
    docs, index = WORK / f"docs-{target}", WORK / f"index-{tag}"
    if rebuild:
        shutil.rmtree(docs, ignore_errors=True)
        shutil.rmtree(index, ignore_errors=True)
    for extra in docs.glob("n*.txt"):  # the previous run's update documents
        extra.unlink()
    shutil.rmtree(WORK / f"new-{tag}", ignore_errors=True)
    qs = make_corpus(docs, target, arts, varier)[1] if not any(docs.glob("*.txt")) else None
    qfile = WORK / f"questions-{target}.json"
    if qs is not None:
        random.Random(7).shuffle(qs)
        qfile.write_text(json.dumps(qs[: questions_n + 1]))
    print(f"[{tag}] corpus: {sum(1 for _ in docs.glob('*.txt'))} documents (load {load()})", flush=True)
    if serve_only and (index / "manifest.json").is_file():
        build = None  # the index of an earlier run, as it is (its update documents included)
    else:
        build = run_step(BUILD, str(docs), str(index), model, "full")
    manifest = json.loads((index / "manifest.json").read_text())
    counts = manifest["counts"]
    if build:
        print(f"[{tag}] built {counts} in {build['seconds']:.1f} s, peak {build['peak_rss_mb']} MB", flush=True)
    else:
        print(f"[{tag}] serving the index already built: {counts}", flush=True)
    serve = run_step(SERVE, str(index), str(qfile), "{}")
    # The build tunes nprobe on noisy copies of stored vectors; how that tracks real questions
    # depends on the vectors.  Also measured: the nprobe the questions themselves need.
    needed = question_nprobe(index, json.loads(qfile.read_text()), model)
    serve_q = (
        run_step(SERVE, str(index), str(qfile), json.dumps({k: v["nprobe"] for k, v in needed.items()}))
        if needed
        else None
    )
    print(
        f"[{tag}] load {serve['load_s']:.2f} s, answer p50 {pct(serve['answer_ms'], 50):.1f} ms "
        f"(+ encode {pct(serve['encode_ms'], 50):.1f}), peak {serve['peak_rss_mb']} MB (load {load()})",
        flush=True,
    )
    served = serving_figures(serve, serve_q, needed)
    what = {
        "target_sentences": target,
        "model": model,
        "stand_in_embedder": model == STANDIN,
        "counts": counts,
        "vectors": {k: v.get("kind") for k, v in manifest.get("vectors", {}).items()},
    }
    if serve_only:
        return {
            **what,
            "index_mb": round(folder_mb(index), 1),
            "built_here": build is not None,
            **served,
            "load_average": load(),
        }
    # 1 % new documents: varied copies the corpus does not hold yet.
    new_docs = WORK / f"new-{tag}"
    shutil.rmtree(new_docs, ignore_errors=True)
    make_corpus(new_docs, max(counts["sentences"] // 100, 1), arts[::-1], varier, first_copy=900)
    for f in new_docs.glob("*.txt"):
        f.rename(docs / ("n" + f.name))
    update = run_step(BUILD, str(docs), str(index), model, "update")
    after = json.loads((index / "manifest.json").read_text())
    print(f"[{tag}] update +{after['build']['added']} documents: {update['seconds']:.1f} s", flush=True)
    return {
        **what,
        "build_s": round(build["seconds"], 1),
        "build_peak_rss_mb": build["peak_rss_mb"],
        "index_mb": round(folder_mb(index), 1),
        **served,
        "update_reused_index": not update["build"]["full"],
        "update_added_documents": after["build"]["added"],
        "update_added_sentences": after["counts"]["sentences"] - counts["sentences"],
        "update_s": round(update["seconds"], 1),
        "update_share_of_build": round(update["seconds"] / build["seconds"], 3),
        "load_average": load(),
    }


def serving_figures(serve: dict, serve_q: dict | None, needed: dict) -> dict:
    """The serving process's figures (``serve``; ``serve_q``: again at the questions' nprobe)."""
    return {
        "nprobe_for_questions": needed,
        "answer_p50_ms_question_nprobe": round(pct(serve_q["answer_ms"], 50), 2) if serve_q else None,
        "answer_p95_ms_question_nprobe": round(pct(serve_q["answer_ms"], 95), 2) if serve_q else None,
        "load_s": round(serve["load_s"], 3),
        "engine_s": round(serve["engine_s"], 3),
        "first_answer_ms": round(serve["first_answer_ms"], 1),
        "answer_p50_ms": round(pct(serve["answer_ms"], 50), 2),
        "answer_p95_ms": round(pct(serve["answer_ms"], 95), 2),
        "encode_p50_ms": round(pct(serve["encode_ms"], 50), 2),
        "vector_search_p50_ms": round(pct(serve["search_ms"], 50), 2),
        "answer_without_search_p50_ms": round(
            pct([a - b for a, b in zip(serve["answer_ms"], serve["search_ms"])], 50), 2
        ),
        "questions": len(serve["answer_ms"]),
        "answered": serve["answered"],
        "serve_rss_mb": serve["rss_mb"],
        "serve_peak_rss_mb": serve["peak_rss_mb"],
        "serve_pss_mb": serve.get("pss_mb"),
        "serve_private_mb": serve.get("private_clean_mb", 0) + serve.get("private_dirty_mb", 0),
    }


def question_nprobe(folder: Path, questions: list[str], model: str, target: float = TARGET_RECALL) -> dict:
    """Per IVF vector index searched at query time (sentences, chunks): the tuned nprobe,
    the recall@10 the questions get with it, and the smallest power of two reaching
    ``target`` recall@10 on the questions (against an exact search of the stored vectors)."""
    import faiss

    from qa.index.vectors import exact_top, load_vector_index, recall_at, vectors_of
    from standin import embedder_for

    embedder = embedder_for(model)
    if embedder is None:
        from qa.index.embedding import load_embedder

        embedder = load_embedder(model, 1, onnx_dir=folder)
    q = embedder.encode(questions).astype(np.float32)
    out = {}
    for name, file in (("sentence_vectors", "sentences.faiss"), ("chunk_vectors", "chunks.faiss")):
        index = load_vector_index(folder / file, mmap=True)
        ivf = faiss.try_extract_index_ivf(index)
        if ivf is None:
            continue
        truth = exact_top(vectors_of(index, np.arange(index.ntotal)), q, 10)
        tuned = ivf.nprobe
        curve = {}
        nprobe = 1
        while True:
            ivf.nprobe = nprobe
            curve[nprobe] = round(recall_at(index.search(q, 10)[1], truth), 4)
            if curve[nprobe] >= target or nprobe >= ivf.nlist:
                break
            nprobe *= 2
        ivf.nprobe = tuned
        out[name] = {
            "nlist": ivf.nlist,
            "tuned_nprobe": tuned,
            "recall_at_tuned": round(recall_at(index.search(q, 10)[1], truth), 4),
            "nprobe": nprobe,
            "recall": curve[nprobe],
        }
    return out


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r["counts"]["sentences"] for r in results]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    a.plot(n, [r["answer_p50_ms"] for r in results], "o-", label="answer p50 (without encoder)")
    a.plot(n, [r["answer_p95_ms"] for r in results], "s--", label="answer p95")
    if all(r.get("answer_p50_ms_question_nprobe") for r in results):
        a.plot(n, [r["answer_p50_ms_question_nprobe"] for r in results], "^:", label="p50, nprobe for the questions")
    a.set_xscale("log")
    a.set_xlabel("sentences")
    a.set_ylabel("ms, one thread")
    a.legend(fontsize=8)
    b.plot(n, [r["serve_peak_rss_mb"] for r in results], "o-", label="serving peak RSS")
    b.plot(n, [r["index_mb"] for r in results], "s--", label="index on disk")
    b.set_xscale("log")
    b.set_xlabel("sentences")
    b.set_ylabel("MB")
    b.legend(fontsize=8)
    fig.suptitle("benchmarks/answer_scale.py", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument(
        "--model", default=STANDIN, help=f"embedding model (default: the stand-in {STANDIN}, benchmarks/standin.py)"
    )
    ap.add_argument("--questions", type=int, default=200)
    ap.add_argument("--rebuild", action="store_true", help="remake corpora and indexes")
    ap.add_argument(
        "--serve-only",
        action="store_true",
        help="measure serving on the indexes already built (build one only where none is); no build or update figures",
    )
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--plot", type=Path, help="plot latency and memory against size (PNG)")
    args = ap.parse_args()
    WORK.mkdir(exist_ok=True)
    arts = articles()
    varier = Varier([t for _, t, _ in arts])
    results = []
    for size in args.sizes:
        results.append(one_size(size, args.model, arts, varier, args.questions, args.rebuild, args.serve_only))
        if args.json:  # after each size: a long run keeps what it measured
            args.json.write_text(json.dumps({"machine": machine(), "results": results}, indent=1) + "\n")
    if len(results) > 1:
        base, top = results[0], results[-1]
        print(
            f"answer p50 at {top['counts']['sentences']} sentences / at {base['counts']['sentences']}: "
            f"{top['answer_p50_ms'] / base['answer_p50_ms']:.2f}x"
        )
    if args.plot:
        plot(results, args.plot)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
