#!/usr/bin/env python3
"""Vector search at 10^3 … 10^6 passages with qa.index.vectors: build time, search time, recall, size, memory.

    python benchmarks/scale.py                              # 1e3 1e4 1e5 1e6, auto kind (+ the other kind at 1e5)
    python benchmarks/scale.py --sizes 1000 10000 --json scale.json
    python benchmarks/scale.py --sizes 100000 --kinds flat ivf-sq8 hnsw-sq8

Vectors are synthetic but shaped like the product's: each is a real passage embedding
(sentences, windows and chunks of the squad-dev and seed indexes) plus a random share
(0-0.5) of another one plus Gaussian noise, renormalised — so the data has the real
embeddings' clusters without being copies of them.  Queries are the real questions of
squad-dev and eval/seeds.jsonl, encoded by the model (the ONNX export in the index folder).

Per size and kind: build seconds (train + add + nprobe tuning), file size, recall@10
against an exact search of the same vectors, single-query search p50/p95 with 1 thread,
and — in a fresh process — load seconds and resident memory after a memory-mapped load
and after the searches (what start-up reads, and what serving touches).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from latency import SETS, ensure_export, ensure_index, load, machine, pct, questions  # noqa: E402

import numpy as np  # noqa: E402

PROBE = r"""
import json, sys, time
import numpy as np
def rss():
    return {l.split(":")[0]: int(l.split()[1]) // 1024 for l in open("/proc/self/status") if l.startswith(("VmRSS", "VmHWM"))}
import faiss
from qa.index.vectors import load_vector_index
faiss.omp_set_num_threads(1)
q = np.load(sys.argv[2], allow_pickle=False)
before = rss()
t = time.perf_counter()
index = load_vector_index(sys.argv[1], mmap=sys.argv[3] == "mmap")
load_s = time.perf_counter() - t
after_load = rss()
times = []
for row in q:
    t = time.perf_counter()
    index.search(row[None, :], 10)
    times.append(time.perf_counter() - t)
after = rss()
print(json.dumps({"load_s": load_s, "rss_before_mb": before["VmRSS"], "rss_after_load_mb": after_load["VmRSS"],
                  "rss_after_search_mb": after["VmRSS"], "hwm_mb": after["VmHWM"],
                  "cold_search_p50_ms": float(np.median(times) * 1000)}))
"""


def base_vectors(folders: list[Path]) -> np.ndarray:
    import faiss

    parts = []
    for folder in folders:
        for name in ("sentences.faiss", "windows.faiss", "chunks.faiss"):
            ix = faiss.read_index(str(folder / name))
            parts.append(ix.reconstruct_n(0, ix.ntotal))
    x = np.concatenate(parts).astype(np.float32)
    return np.unique(x, axis=0)


def synthetic(base: np.ndarray, n: int, seed: int = 0, block: int = 100_000, noise: float = 0.6) -> np.ndarray:
    """``n`` vectors near the real ones: base[a] + w·base[b] + noise, renormalised (deterministic)."""
    d = base.shape[1]
    out = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, block):
        rng = np.random.default_rng([seed, start])
        m = min(block, n - start)
        a = base[rng.integers(0, len(base), m)]
        b = base[rng.integers(0, len(base), m)]
        w = rng.uniform(0.0, 0.5, (m, 1)).astype(np.float32)
        v = a + w * b + rng.standard_normal((m, d), dtype=np.float32) * (noise / np.sqrt(d))
        out[start : start + m] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def query_vectors(limit: int) -> np.ndarray:
    from qa.index.embedding import OnnxEmbedder

    folder = ROOT / ".bench" / "latency-squad-dev"
    qs = questions(SETS["squad-dev"][1], 0) + questions(SETS["seeds"][1], 0)
    if limit and len(qs) > limit:
        qs = [qs[int(i)] for i in np.linspace(0, len(qs) - 1, limit)]
    return OnnxEmbedder(folder, threads=1).encode(qs)


def probe(path: Path, queries_file: Path, mmap: bool) -> dict:
    code = f"import sys; sys.path.insert(0, {str(ROOT)!r})\n" + PROBE
    out = subprocess.run(
        [sys.executable, "-c", code, str(path), str(queries_file), "mmap" if mmap else "read"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if out.returncode:
        return {"error": out.stderr.strip().splitlines()[-1:]}
    return json.loads(out.stdout)


# Whole (~105 lines): the script's steps in order (arguments, the runs, the report).
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", nargs="+", type=int, default=[1_000, 10_000, 100_000, 1_000_000])
    p.add_argument("--kinds", nargs="+", default=["auto"], help="kinds to build at every size (qa.index.vectors.KINDS)")
    p.add_argument(
        "--compare-at", type=int, default=100_000, help="at this size also build the kind auto does not pick (0: never)"
    )
    p.add_argument("--queries", type=int, default=500)
    p.add_argument("--work", type=Path, default=ROOT / ".bench" / "scale")
    p.add_argument("--keep", action="store_true", help="keep the index files")
    p.add_argument("--json", type=Path, metavar="OUT")
    args = p.parse_args(argv)

    import faiss

    from qa.index.vectors import build_vector_index, choose_kind, describe, exact_top, recall_at, save_vector_index

    faiss.omp_set_num_threads(1)
    args.work.mkdir(parents=True, exist_ok=True)
    for name in ("seeds", "squad-dev"):
        folder = ROOT / ".bench" / f"latency-{name}"
        ensure_index(SETS[name][0], folder)
    ensure_export(ROOT / ".bench" / "latency-squad-dev")
    base = base_vectors([ROOT / ".bench" / "latency-squad-dev", ROOT / ".bench" / "latency-seeds"])
    q = query_vectors(args.queries)
    queries_file = args.work / "queries.npy"
    np.save(queries_file, q, allow_pickle=False)
    info = {
        "machine": machine(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "base_vectors": len(base),
        "queries": len(q),
        "load_start": load(),
        "rows": [],
    }
    print(
        f"# {info['machine']['cpu']}, {info['machine']['cores']} cores, {info['machine']['date']}, load {info['load_start']}; "
        f"{len(base)} real vectors → synthetic; {len(q)} real questions; search with 1 thread",
        flush=True,
    )
    print(
        f"{'n':>9} {'kind':9} {'params':22} {'build s':>8} {'MB':>7} {'recall@10':>9} {'p50 ms':>7} {'p95 ms':>7} | {'mmap load s':>11} {'RSS load':>8} {'RSS srch':>8} | exact p50 ms | load"
    )
    for n in args.sizes:
        t = time.perf_counter()
        x = synthetic(base, n)
        gen_s = time.perf_counter() - t
        nearest = float(np.median((x[:2000] @ base.T).max(1)))
        t = time.perf_counter()
        truth = exact_top(x, q, 10)
        exact_ms = (time.perf_counter() - t) / len(q) * 1000  # batched exact scan, per query
        kinds = [choose_kind(n, k) for k in args.kinds]
        if n == args.compare_at:
            kinds += [k for k in ("flat", "ivf-sq8") if k not in kinds]
        for kind in dict.fromkeys(kinds):
            load_before = load()
            build_info: dict = {}
            t = time.perf_counter()
            index = build_vector_index(x, kind, info=build_info)
            build_s = time.perf_counter() - t
            record = dict(describe(index), **build_info)
            path = args.work / f"{n}-{kind}.faiss"
            save_vector_index(index, path)
            size_mb = path.stat().st_size / 2**20
            times = []
            found = np.empty((len(q), 10), dtype=np.int64)
            for i, row in enumerate(q):
                t = time.perf_counter()
                _, ids = index.search(row[None, :], 10)
                times.append((time.perf_counter() - t) * 1000)
                found[i] = ids[0]
            del index
            mm = probe(path, queries_file, mmap=True)
            row = {
                "n": n,
                "kind": kind,
                "record": record,
                "generate_s": round(gen_s, 1),
                "median_cosine_to_nearest_real": round(nearest, 3),
                "build_s": round(build_s, 2),
                "file_mb": round(size_mb, 1),
                "recall_at_10": round(recall_at(found, truth), 4),
                "search_p50_ms": round(pct(times, 50), 3),
                "search_p95_ms": round(pct(times, 95), 3),
                "exact_numpy_per_query_ms_batched": round(exact_ms, 3),
                "mmap": mm,
                "load_before": load_before,
                "load_after": load(),
            }
            info["rows"].append(row)
            params = ", ".join(f"{k}={record[k]}" for k in ("nlist", "nprobe", "ef_search") if k in record) or "exact"
            print(
                f"{n:9d} {kind:9} {params:22} {build_s:8.1f} {size_mb:7.1f} {row['recall_at_10']:9.3f} {row['search_p50_ms']:7.3f} {row['search_p95_ms']:7.3f} | "
                f"{mm.get('load_s', float('nan')):11.3f} {mm.get('rss_after_load_mb', 0) - mm.get('rss_before_mb', 0):8d} {mm.get('rss_after_search_mb', 0) - mm.get('rss_before_mb', 0):8d} | "
                f"{exact_ms:12.3f} | {load_before} → {row['load_after']}",
                flush=True,
            )
            if not args.keep:
                path.unlink()
        del x, truth
    print(
        "MB on disk; RSS columns: MB resident in a fresh process after a memory-mapped load / after all searches (over its start)"
    )
    if args.json:
        args.json.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
