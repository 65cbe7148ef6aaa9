#!/usr/bin/env python3
"""Several serving processes over one index folder: answers per second and memory per worker.

    python benchmarks/workers.py --index .bench-scale/index-1000000-hash-384 --questions-file Q.json
    python benchmarks/workers.py                      # the seed index and eval/seeds.jsonl
    python benchmarks/workers.py --workers 1 2 4 --seconds 20 --json workers.json
    python benchmarks/workers.py --fork               # one process loads the models, forks the workers
    python benchmarks/workers.py --web [--fork] --docs seeds   # the whole web app: N replicas / --workers N

Each worker is what a web worker holds to answer: its own process that opens the index
(vector indexes, tables and BM25 arrays memory-mapped: the pages of the files are shared
between the processes, not copied), the shipped reader on one thread, and answers
questions in a loop for ``--seconds`` once every worker has loaded.  Per run: answers per
second (all workers), and per worker RSS, PSS (shared pages split between the processes
that map them) and private memory (what the worker alone holds).  "What a second worker
adds" is the growth of the summed PSS from one worker to two.  ``--fork`` measures what
``qa-web --workers N`` does (see FORKED below).  ``--web`` measures the web app itself
instead of an answering loop: N ``app.py`` replicas on free ports (or, with ``--fork``, one
``app.py --workers N``: one server whose forked workers answer), ``--asks`` questions a
worker over HTTP, then the summed PSS of all their processes (memory only: the chat's throughput is benchmarks/load.py's).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from latency import load, machine  # noqa: E402

WORKER = r"""
import json, sys, time
sys.path.insert(0, "benchmarks")
import faiss
faiss.omp_set_num_threads(1)
from standin import embedder_for
from qa import index as index_mod
from qa.pipeline import _engine
from qa.settings import Settings
index = index_mod.load(sys.argv[1])
engine = _engine(index, Settings(index=sys.argv[1], threads=1), embedder_for(index.model))
questions = json.load(open(sys.argv[2]))
engine.ask(questions[0])
print("ready", flush=True)
sys.stdin.readline()  # go
seconds, offset = float(sys.argv[3]), int(sys.argv[4])
done, start = 0, time.perf_counter()
while time.perf_counter() - start < seconds:
    engine.ask(questions[(offset + done) % len(questions)])
    done += 1
took = time.perf_counter() - start
mem = {}
for line in open("/proc/self/smaps_rollup"):
    p = line.split()
    if p[0] in ("Rss:", "Pss:", "Private_Clean:", "Private_Dirty:", "Shared_Clean:", "Shared_Dirty:"):
        mem[p[0][:-1].lower()] = int(p[1]) // 1024
print(json.dumps({"answers": done, "seconds": took, **mem}), flush=True)
"""

# --fork: one process imports the libraries and loads the models (the reader's and the query
# encoder's ONNX sessions), then forks the workers; each opens the index itself after the
# fork (faiss 1.15 crashes in a child searching a memory-mapped IVF index its parent had
# searched; opened after the fork it is the child's own).  The libraries and models are then
# copy-on-write pages that every worker shares.  The parent's memory is reported too (it
# holds those shared pages: summed PSS counts it).
FORKED = r"""
import json, os, sys, time
sys.path.insert(0, "benchmarks")
import faiss
faiss.omp_set_num_threads(1)
import standin  # noqa: F401  (registers the stand-in embedder)
from pathlib import Path
from qa import index as index_mod
from qa.answer.reader import shipped_reader
from qa.index.embedding import load_embedder
from qa.pipeline import _engine
from qa.settings import Settings
folder, questions = Path(sys.argv[1]), json.load(open(sys.argv[2]))
seconds, workers = float(sys.argv[3]), int(sys.argv[4])
embedder = load_embedder(index_mod.read_manifest(folder)["model"]["name"], 1, onnx_dir=folder)
embedder.encode(["warm up"])
shipped_reader()  # the Engine takes this same (cached) reader
from qa.serve.workers import _preload
_preload()


def memory():
    mem = {}
    for line in open("/proc/self/smaps_rollup"):
        p = line.split()
        if p[0] in ("Rss:", "Pss:", "Private_Clean:", "Private_Dirty:", "Shared_Clean:", "Shared_Dirty:"):
            mem[p[0][:-1].lower()] = int(p[1]) // 1024
    return mem


def work(offset, ready, go, out, bye):
    engine = _engine(index_mod.load(folder), Settings(index=folder, threads=1), embedder)
    engine.ask(questions[0])
    os.write(ready, b"r")
    os.read(go, 1)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        engine.ask(questions[(offset + done) % len(questions)])
        done += 1
    took = time.perf_counter() - start
    os.write(out, (json.dumps({"answers": done, "seconds": took, **memory()}) + "\n").encode())
    os.read(bye, 1)  # alive until the parent has measured itself (PSS splits shared pages among the living)


import gc
gc.collect()
gc.freeze()  # as qa-web --workers does: the collector's passes would copy every page
ready_r, ready_w = os.pipe()
go_r, go_w = os.pipe()
bye_r, bye_w = os.pipe()
outs = []
for i in range(workers):
    out_r, out_w = os.pipe()
    if os.fork() == 0:
        try:
            work(i * 37, ready_w, go_r, out_w, bye_r)
        finally:
            os._exit(0)
    outs.append(os.fdopen(out_r))
for _ in range(workers):
    os.read(ready_r, 1)
print("ready", flush=True)
sys.stdin.readline()  # go
os.write(go_w, b"g" * workers)
for f in outs:
    print(f.readline().strip(), flush=True)
parent = memory()
os.write(bye_w, b"b" * workers)
for _ in range(workers):
    os.wait()
print(json.dumps({"parent": parent}), flush=True)
"""


def summary(workers: int, results: list[dict], parent: dict | None = None) -> dict:
    private = [r["private_clean"] + r["private_dirty"] for r in results]
    out = {
        "workers": workers,
        "answers_per_s": round(sum(r["answers"] / r["seconds"] for r in results), 1),
        "rss_mb": [r["rss"] for r in results],
        "pss_mb": [r["pss"] for r in results],
        "private_mb": private,
        "pss_total_mb": sum(r["pss"] for r in results) + (parent["pss"] if parent else 0),
        "load_average": load(),
    }
    if parent:  # --fork: the process that loaded the models and forked the workers
        out["parent_pss_mb"] = parent["pss"]
    return out


def run(index: Path, qfile: Path, workers: int, seconds: float, fork: bool = False) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    if fork:
        return run_forked(index, qfile, workers, seconds, env)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(index), str(qfile), str(seconds), str(i * 37)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        for i in range(workers)
    ]
    for p in procs:
        line = p.stdout.readline()
        if line.strip() != "ready":
            sys.exit(f"a worker failed to start: {line.strip() or p.wait()}")
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    results = [json.loads(p.stdout.readline()) for p in procs]
    for p in procs:
        p.wait()
    return summary(workers, results)


def run_forked(index: Path, qfile: Path, workers: int, seconds: float, env: dict) -> dict:
    proc = subprocess.Popen(
        [sys.executable, "-c", FORKED, str(index), str(qfile), str(seconds), str(workers)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    line = proc.stdout.readline()
    if line.strip() != "ready":
        sys.exit(f"the workers failed to start: {line.strip() or proc.wait()}")
    proc.stdin.write("go\n")
    proc.stdin.flush()
    results = [json.loads(proc.stdout.readline()) for _ in range(workers)]
    parent = json.loads(proc.stdout.readline())["parent"]
    if proc.wait():
        sys.exit(f"the forked workers failed (exit {proc.returncode})")
    return summary(workers, results, parent)


def free_ports(n: int) -> int:
    """A port P with P … P+n-1 free on the loopback."""
    import socket

    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            for i in range(n):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port + i))
            return port
        except OSError:
            continue


def serving(port: int) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def session_memory(sid: int) -> list[dict]:
    """smaps_rollup figures (MB) of every process of session ``sid``."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[3]) != sid:
                continue
            mem = {}
            for line in open(stat.parent / "smaps_rollup"):
                p = line.split()
                if p[0] in ("Rss:", "Pss:", "Private_Clean:", "Private_Dirty:"):
                    mem[p[0][:-1].lower()] = int(p[1]) // 1024
            out.append(mem)
        except (OSError, IndexError, ValueError):
            continue
    return out


def run_web(index: Path, docs: Path, qfile: Path, workers: int, asks: int, fork: bool) -> dict:
    """The web app: ``workers`` replicas, or one ``--workers`` app; PSS once each has answered."""
    import signal
    import time

    from gradio_client import Client

    base = [sys.executable, "app.py", "--index", str(index), "--docs", str(docs)]
    if fork:  # one server on one port, its questions answered by the forked workers
        port, ports = free_ports(1), 1
        commands = [[*base, "--port", str(port), "--workers", str(workers)]]
    else:
        port, ports = free_ports(workers), workers
        commands = [[*base, "--port", str(port + i)] for i in range(workers)]
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False")
    procs = [
        subprocess.Popen(
            c, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        for c in commands
    ]
    try:
        deadline = time.monotonic() + 300
        while not all(serving(port + i) for i in range(ports)):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                sys.exit(f"the web app did not start ({' '.join(commands[0])})")
            time.sleep(0.5)
        # The same questions in every run, whatever the number of workers: each question reads
        # its own pages of the memory-mapped index, and more distinct questions would show up
        # as more shared pages in the summed PSS, not as what a worker adds.
        questions = json.loads(qfile.read_text())
        clients = [Client(f"http://127.0.0.1:{port + i}/", verbose=False, download_files=False) for i in range(ports)]
        for q in range(asks):  # replicas: round-robin; forked: the server hands them round
            clients[q % ports].predict(questions[q % len(questions)], api_name="/chat")
        mem = [m for p in procs for m in session_memory(p.pid)]
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(30)
    return {
        "workers": workers,
        "processes": len(mem),
        "rss_mb": [m["rss"] for m in mem],
        "pss_mb": [m["pss"] for m in mem],
        "private_mb": [m["private_clean"] + m["private_dirty"] for m in mem],
        "pss_total_mb": sum(m["pss"] for m in mem),
        "load_average": load(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--index", type=Path, default=ROOT / "index")
    ap.add_argument("--questions-file", type=Path, help="a JSON list of questions (default: eval/seeds.jsonl's)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument(
        "--fork",
        action="store_true",
        help="load once and fork the workers (shared memory) instead of separate processes",
    )
    ap.add_argument("--web", action="store_true", help="measure the web app's memory (app.py) instead")
    ap.add_argument("--docs", type=Path, default=ROOT / "seeds", help="--web: the index's document folder")
    ap.add_argument(
        "--asks", type=int, default=40, help="--web: questions asked before measuring (the same ones in every run)"
    )
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    qfile = args.questions_file
    if qfile is None:
        qfile = ROOT / ".bench-scale" / "seed-questions.json"
        qfile.parent.mkdir(exist_ok=True)
        rows = (ROOT / "eval" / "seeds.jsonl").read_text(encoding="utf-8").splitlines()
        qfile.write_text(json.dumps([json.loads(r)["question"] for r in rows if r.strip()]))
    runs = []
    for n in args.workers:
        if args.web:
            runs.append(run_web(args.index, args.docs, qfile, n, args.asks, args.fork))
        else:
            runs.append(run(args.index, qfile, n, args.seconds, args.fork))
        r = runs[-1]
        rate = "" if args.web else f"{r['answers_per_s']} answers/s; "
        print(
            f"{n} worker(s): {rate}RSS {r['rss_mb']} MB, PSS {r['pss_mb']} MB (total {r['pss_total_mb']}), "
            f"private {r['private_mb']} MB (load {r['load_average']})",
            flush=True,
        )
    one = next((r for r in runs if r["workers"] == 1), None)
    two = next((r for r in runs if r["workers"] == 2), None)
    if one and two:
        print(f"a second worker adds {two['pss_total_mb'] - one['pss_total_mb']} MB (summed PSS, 1 → 2 workers)")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"machine": machine(), "index": str(args.index), "fork": args.fork, "web": args.web, "runs": runs},
                indent=1,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
