#!/usr/bin/env python3
"""Cold command line: wall time of ``python -m qa ask "…"`` from a fresh process.

    python benchmarks/cold_start.py                       # seed index in .bench/latency-seeds
    python benchmarks/cold_start.py --index DIR --runs 7 --json cold.json

Runs, each ``--runs`` times, alternating (so that the machine's load hits all alike):

* ``python -c pass`` and ``import numpy`` — the floor any Python command pays;
* ``cli``       — ``python -m qa ask Q --index DIR`` exactly as a user types it;
* ``cli+onnx``  — the same command with ``qa.pipeline.load_embedder`` given the index
  folder (``onnx_dir=``), i.e. what the CLI does once the integration is applied
  (skipped when the plain ``cli`` already loads the ONNX encoder);

then one ``-X importtime`` run of the fastest variant, listing the modules that cost the
most to import and whether torch / transformers / sentence_transformers were imported.
Both variants must print the same answer.  The index gets an ONNX export if it has none.
Target: median wall ≤ 2 s for the ONNX path.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from latency import ensure_export, ensure_index, load, machine  # noqa: E402

QUESTION = "How many people can CECOT hold?"

PATCHED = """
import runpy, sys
import qa.index.embedding as e, qa.pipeline as p
p.load_embedder = lambda model, threads=0: e.load_embedder(model, threads, onnx_dir={index!r})
sys.argv = ["qa", *sys.argv[1:]]
runpy.run_module("qa", run_name="__main__", alter_sys=True)
"""


def env() -> dict:
    e = dict(os.environ)
    e.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    return e


def timed(cmd: list[str]) -> tuple[float, str, str]:
    t = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env(), capture_output=True, text=True, timeout=300)
    wall = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
    return wall, done.stdout, done.stderr


def import_report(cmd: list[str], top: int = 20) -> dict:
    _, _, err = timed([cmd[0], "-X", "importtime", *cmd[1:]])
    rows = []
    for line in err.splitlines():
        if not line.startswith("import time:") or "|" not in line or "cumulative" in line:
            continue
        _, cumulative, name = line.split("|")
        depth = (len(name) - len(name.lstrip(" "))) // 2
        rows.append((int(cumulative), depth, name.strip()))
    loaded = {name for _, _, name in rows}
    outer = sorted((r for r in rows if r[1] <= 1), reverse=True)[:top]
    return {
        "heavy_imported": {
            m: m in loaded
            for m in (
                "torch",
                "transformers",
                "sentence_transformers",
                "onnxruntime",
                "faiss",
                "bm25s",
                "scipy",
                "langchain_text_splitters",
                "pysbd",
                "tqdm",
                "gradio",
            )
        },
        "top_modules_ms": [(name, round(c / 1000, 1)) for c, _, name in outer],
        "total_import_ms": round(sum(c for c, d, _ in rows if d == 0) / 1000, 1),
    }


# Whole (~65 lines): the script's steps in order (arguments, the runs, the report).
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--index", type=Path, default=ROOT / ".bench" / "latency-seeds")
    p.add_argument("--docs", type=Path, default=ROOT / "seeds")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--question", default=QUESTION)
    p.add_argument("--json", type=Path, metavar="OUT")
    args = p.parse_args(argv)
    index = args.index.resolve()
    ensure_index(args.docs, index)
    ensure_export(index)

    py = sys.executable
    ask = ["ask", args.question, "--index", str(index)]
    variants = {
        "python -c pass": [py, "-c", "pass"],
        "import numpy": [py, "-c", "import numpy"],
        "cli": [py, "-m", "qa", *ask],
        "cli+onnx": [py, "-c", PATCHED.format(index=str(index)), *ask],
    }
    plain_imports = import_report(variants["cli"])
    if not plain_imports["heavy_imported"]["torch"]:
        del variants["cli+onnx"]  # the CLI already uses the ONNX export
    info = {
        "machine": machine(),
        "command": " ".join([Path(py).name, *sys.argv]),
        "index": str(index),
        "load_start": load(),
        "runs": {},
    }
    outputs = {}
    for name, cmd in variants.items():  # warm the page cache once
        _, out, _ = timed(cmd)
        outputs[name] = out
    if "cli+onnx" in outputs and outputs["cli"] != outputs["cli+onnx"]:
        print("WARNING: the ONNX path printed a different answer", file=sys.stderr)
    info["same_answer"] = outputs.get("cli+onnx", outputs["cli"]) == outputs["cli"]
    walls: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.runs):
        for name, cmd in variants.items():
            walls[name].append(timed(cmd)[0])
    info["load_end"] = load()
    print(
        f"# {info['machine']['cpu']}, {info['machine']['cores']} cores, {info['machine']['date']}, load {info['load_start']} → {info['load_end']}"
    )
    print(f"{'variant':16} {'median s':>9} {'min s':>7} {'max s':>7}   runs={args.runs}")
    for name, values in walls.items():
        row = {
            "median_s": round(statistics.median(values), 3),
            "min_s": round(min(values), 3),
            "max_s": round(max(values), 3),
            "all": [round(v, 3) for v in values],
        }
        info["runs"][name] = row
        print(f"{name:16} {row['median_s']:9.3f} {row['min_s']:7.3f} {row['max_s']:7.3f}")
    fastest = "cli+onnx" if "cli+onnx" in variants else "cli"
    info["imports"] = {"cli": plain_imports}
    if fastest != "cli":
        info["imports"][fastest] = import_report(variants[fastest])
    for name, rep in info["imports"].items():
        heavy = ", ".join(m for m, yes in rep["heavy_imported"].items() if yes)
        print(f"\nimports of {name} (total {rep['total_import_ms']} ms; imported: {heavy})")
        for mod, ms in rep["top_modules_ms"][:12]:
            print(f"  {ms:8.1f} ms  {mod}")
    if args.json:
        args.json.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
