#!/usr/bin/env python3
"""Build throughput: passages/s of a whole index build vs a bare encode of the same texts.

    python benchmarks/build.py                                   # squad-dev, torch / onnx / onnx-int8, with eval
    python benchmarks/build.py --sets seeds --backends torch onnx --no-eval
    python benchmarks/build.py --json build.json

For each question set and backend, in one process:

1. ``bare``  — the embedder alone on the unique passage texts the build embeds (sentences,
   sentence windows, chunks): ``SentenceTransformer.encode(texts, batch_size=64)`` for
   torch, ``OnnxEmbedder.encode`` for the ONNX backends;
2. ``build`` — ``qa.pipeline.build_index(settings, embedder=…)``: reading, cutting,
   embedding, BM25, FAISS and the atomic save (the embedder is loaded beforehand; its
   load time is reported on its own, as is the one-off ONNX export).

It reports passages/s for both, build/bare (target ≥ 1.0: the build's own overheads must
be paid for by its length-sorted batching), and each backend's build speed over the
torch build (target for an optional faster backend: ≥ 2×).  With evaluation (default),
each index answers the set's questions (``qa.evaluation.predict`` + ``score``, queries
encoded by the float32 ONNX export — the same vectors as torch to 1e-6) and answer@1 is
compared with the torch-built index (target: within 0.01).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from latency import SETS, load, machine  # noqa: E402

BACKENDS = ("torch", "onnx", "onnx-int8")


def passage_texts(folder: Path) -> list[str]:
    from qa.index import load as load_index

    ix = load_index(folder)
    cut = lambda table, cols: [ix.documents[int(d)].text[int(s) : int(e)] for d, s, e in table[:, cols]]  # noqa: E731
    texts = cut(ix.sentences, [0, 1, 2]) + cut(ix.sentences, [0, 5, 6]) + cut(ix.chunks, [0, 1, 2])
    return list(dict.fromkeys(texts))


def make_embedder(backend: str, threads: int, export_dir: Path):
    from qa.index.embedding import OnnxEmbedder, SentenceTransformerEmbedder

    t = time.perf_counter()
    if backend == "torch":
        emb = SentenceTransformerEmbedder(threads=threads)
        bare = lambda texts: emb.model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)  # noqa: E731
    else:
        emb = OnnxEmbedder(export_dir, threads=threads, int8=backend == "onnx-int8")
        bare = lambda texts: emb.encode(texts, batch_size=64)  # noqa: E731
    return emb, bare, time.perf_counter() - t


def evaluate(folder: Path, qa_file: Path, export_dir: Path, threads: int) -> dict:
    from qa.index.embedding import OnnxEmbedder
    from qa.evaluation import load_qa, predict, score
    from qa.pipeline import open_engine
    from qa.settings import Settings

    engine = open_engine(Settings(index=folder, threads=threads), embedder=OnnxEmbedder(export_dir, threads=threads))
    items = load_qa(qa_file)
    m = score(items, predict(engine, items))
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in m.items() if not isinstance(v, list)}


# Whole (~95 lines): the script's steps in order (arguments, the runs, the report).
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sets", nargs="+", default=["squad-dev"], choices=list(SETS))
    p.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=list(BACKENDS))
    p.add_argument("--threads", type=int, default=0, help="encoder threads (0: the library default, one per core)")
    p.add_argument("--no-eval", dest="eval", action="store_false")
    p.add_argument("--work", type=Path, default=ROOT / ".bench" / "build", help="where the indexes and the export go")
    p.add_argument("--json", type=Path, metavar="OUT")
    args = p.parse_args(argv)

    from qa.index.embedding import export_onnx, read_onnx_meta
    from qa.pipeline import build_index
    from qa.settings import Settings

    if args.threads and "torch" in args.backends:
        import torch

        torch.set_num_threads(args.threads)
    info = {
        "machine": machine(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "threads": args.threads,
        "load_start": load(),
        "rows": [],
    }
    print(
        f"# {info['machine']['cpu']}, {info['machine']['cores']} cores, int8 {info['machine']['reader_int8']}, "
        f"{info['machine']['date']}, load {info['load_start']}, threads {args.threads or 'default'}",
        flush=True,
    )
    export_dir = args.work / "onnx-export"
    needs_onnx = any(b != "torch" for b in args.backends) or args.eval
    if needs_onnx and (read_onnx_meta(export_dir) is None or not (export_dir / "encoder-int8.onnx").exists()):
        t = time.perf_counter()
        meta = export_onnx("all-MiniLM-L6-v2", export_dir, quantize=True)
        info["export"] = {
            "seconds_with_model_load": round(time.perf_counter() - t, 1),
            "check": meta["check"],
            "int8": meta["int8"],
        }
        print(
            f"export (torch load + ONNX export + check + int8): {info['export']['seconds_with_model_load']} s; int8 min cosine to torch {meta['int8']['min_cosine_to_torch']}",
            flush=True,
        )

    print(
        f"{'set':10} {'backend':10} {'passages':>8} {'bare/s':>8} {'build/s':>8} {'build/bare':>10} {'vs torch':>8} {'build s':>8} {'load s':>6} {'answer@1':>8} | load"
    )
    for name in args.sets:
        docs, qa_file = SETS[name]
        torch_rate = None
        torch_answer = None
        for backend in args.backends:
            folder = args.work / f"{name}-{backend}"
            emb, bare, load_s = make_embedder(backend, args.threads, export_dir)
            load_before = load()
            t = time.perf_counter()
            _, build_s = build_index(Settings(docs=docs, index=folder, threads=args.threads), embedder=emb)
            build_wall = time.perf_counter() - t
            texts = passage_texts(folder)
            bare(texts[:64])  # warm
            t = time.perf_counter()
            bare(texts)
            bare_s = time.perf_counter() - t
            row = {
                "set": name,
                "backend": backend,
                "passages": len(texts),
                "embedder_load_s": round(load_s, 2),
                "build_s": round(build_wall, 2),
                "bare_s": round(bare_s, 2),
                "build_per_s": round(len(texts) / build_wall, 1),
                "bare_per_s": round(len(texts) / bare_s, 1),
                "load_before": load_before,
                "load_after": load(),
            }
            row["build_over_bare"] = round(row["build_per_s"] / row["bare_per_s"], 3)
            if backend == "torch":
                torch_rate = row["build_per_s"]
            row["speedup_vs_torch_build"] = round(row["build_per_s"] / torch_rate, 2) if torch_rate else None
            if args.eval:
                row["eval"] = evaluate(folder, qa_file, export_dir, args.threads)
                if backend == "torch":
                    torch_answer = row["eval"].get("answer@1")
                if torch_answer is not None and row["eval"].get("answer@1") is not None:
                    row["answer@1_minus_torch"] = round(row["eval"]["answer@1"] - torch_answer, 4)
            info["rows"].append(row)
            a1 = row.get("eval", {}).get("answer@1")
            vs = f"{row['speedup_vs_torch_build']:.2f}x" if row["speedup_vs_torch_build"] else "-"
            print(
                f"{name:10} {backend:10} {row['passages']:8d} {row['bare_per_s']:8.1f} {row['build_per_s']:8.1f} {row['build_over_bare']:10.2f} "
                f"{vs:>8} {row['build_s']:8.1f} {row['embedder_load_s']:6.1f} {a1 if a1 is not None else '-':>8} | {row['load_before']} → {row['load_after']}",
                flush=True,
            )
            del emb, bare
    if args.json:
        args.json.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
