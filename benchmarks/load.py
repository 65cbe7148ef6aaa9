#!/usr/bin/env python3
"""Load test of the web chat: many concurrent gradio_client users asking seed questions.

    python benchmarks/load.py                      # starts app.py on a free loopback port
    python benchmarks/load.py --url http://127.0.0.1:7860/
    python benchmarks/load.py --users 50 --questions 20 --json load.json

Each user is one ``gradio_client.Client`` in its own thread asking ``--questions`` questions
from eval/seeds.jsonl one after another through the ``/chat`` endpoint.  Prints the error
count, latency percentiles, throughput, the app's queue concurrency and the machine's load.
Traffic stays on loopback: --url must name 127.0.0.1, localhost or ::1.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit


ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
REPLY_STARTS = ("**From the articles:**", "**Perhaps from the articles** (", "**The articles don't say.**")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", help="a running app (loopback only); default: start app.py here")
    p.add_argument("--users", type=int, default=50, help="concurrent users (default 50)")
    p.add_argument("--questions", type=int, default=20, help="questions per user (default 20)")
    p.add_argument("--qa", type=Path, default=ROOT / "eval" / "seeds.jsonl", help="questions (FORMAT.md QA set)")
    p.add_argument("--index", type=Path, help="with no --url: index folder for app.py (default: a temporary one)")
    p.add_argument("--docs", type=Path, default=ROOT / "seeds", help="with no --url: document folder (default seeds)")
    p.add_argument("--concurrency", type=int, help="with no --url: app.py --concurrency (default: app.py's choice)")
    p.add_argument("--timeout", type=float, default=300, help="seconds one request may take (default 300)")
    p.add_argument("--json", type=Path, metavar="OUT", help="write the figures here as JSON")
    args = p.parse_args(argv)
    if args.users < 1 or args.questions < 1:
        p.error("--users and --questions must be at least 1")
    if args.url and urlsplit(args.url).hostname not in LOOPBACK:
        p.error(f"--url {args.url}: only loopback addresses (127.0.0.1, localhost, ::1) are load-tested")
    return args


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class App:
    """app.py on a free loopback port (its log in a temporary file)."""

    def __init__(self, index: Path, docs: Path, concurrency: int | None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = tempfile.NamedTemporaryFile(prefix="load-app-", suffix=".log", delete=False)
        cmd = [
            sys.executable,
            str(ROOT / "app.py"),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--index",
            str(index),
            "--docs",
            str(docs),
        ]
        if concurrency:
            cmd += ["--concurrency", str(concurrency)]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        return Path(self.log.name).read_text(encoding="utf-8", errors="replace")

    def wait(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"app.py exited with {self.proc.returncode}:\n{self.output()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url, timeout=2):
                    return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise SystemExit(f"app.py did not answer within {timeout} s")

    def concurrency(self) -> int | None:
        for line in self.output().splitlines():
            if line.startswith("answering up to "):
                return int(line.split()[3])
        return None

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        os.unlink(self.log.name)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


# Whole (~65 lines): one load test, its steps in order (start, users, report).
def run(url: str, questions: list[str], users: int, per_user: int, timeout: float) -> dict:
    from gradio_client import Client

    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start_gate = threading.Barrier(users)

    def user(u: int) -> None:
        try:
            c = Client(url, verbose=False, download_files=False)
        except Exception as exc:  # count it, keep the others going
            with lock:
                errors.extend([f"user {u}: connect: {exc}"] * per_user)
            start_gate.abort()
            return
        try:
            start_gate.wait(timeout)
        except threading.BrokenBarrierError:
            pass
        for i in range(per_user):
            q = questions[(u * per_user + i) % len(questions)]
            t = time.perf_counter()
            try:
                reply = c.submit(q, api_name="/chat").result(timeout=timeout)
                ok = isinstance(reply, str) and reply.startswith(REPLY_STARTS)
                problem = None if ok else f"unexpected reply {str(reply)[:80]!r}"
            except Exception as exc:
                problem = f"{type(exc).__name__}: {str(exc)[:120]}"
            elapsed = time.perf_counter() - t
            with lock:
                if problem:
                    errors.append(f"user {u} question {i}: {problem}")
                else:
                    latencies.append(elapsed)

    load_before = os.getloadavg()
    cpu_before = time.process_time()
    wall = time.perf_counter()
    with ThreadPoolExecutor(max_workers=users) as pool:
        list(pool.map(user, range(users)))
    wall = time.perf_counter() - wall
    return {
        "users": users,
        "questions_per_user": per_user,
        "requests": users * per_user,
        "ok": len(latencies),
        "errors": len(errors),
        "error_examples": errors[:5],
        "wall_s": round(wall, 2),
        "throughput_rps": round(len(latencies) / wall, 2) if wall else None,
        "latency_s": {
            "p50": round(percentile(latencies, 0.50), 3),
            "p95": round(percentile(latencies, 0.95), 3),
            "p99": round(percentile(latencies, 0.99), 3),
            "max": round(max(latencies), 3) if latencies else None,
            "mean": round(statistics.fmean(latencies), 3) if latencies else None,
        },
        "client_cpu_s": round(time.process_time() - cpu_before, 1),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    rows = [json.loads(line) for line in args.qa.read_text(encoding="utf-8").splitlines() if line.strip()]
    questions = [r["question"] for r in rows]
    app = None
    tmp = None
    if args.url:
        url, concurrency = args.url, None
    else:
        index = args.index
        if index is None:
            tmp = tempfile.TemporaryDirectory(prefix="load-index-")
            index = Path(tmp.name) / "index"
        app = App(index, args.docs, args.concurrency)
        print(f"starting app.py on {app.url} (index {index}) ...", flush=True)
        app.wait()
        url, concurrency = app.url, app.concurrency()
    try:
        figures = run(url, questions, args.users, args.questions, args.timeout)
    finally:
        if app:
            alive = app.proc.poll() is None
            app.stop()
        if tmp:
            tmp.cleanup()
    figures["url"] = url
    figures["queue_concurrency"] = concurrency
    if app:
        figures["app_survived"] = alive
    lat = figures["latency_s"]
    print(
        f"{figures['requests']} requests from {figures['users']} users x {figures['questions_per_user']} questions "
        f"to {url}\n"
        f"  errors: {figures['errors']}\n"
        f"  latency: p50 {lat['p50']} s, p95 {lat['p95']} s, p99 {lat['p99']} s, max {lat['max']} s\n"
        f"  throughput: {figures['throughput_rps']} answers/s over {figures['wall_s']} s\n"
        f"  queue concurrency: {concurrency if concurrency is not None else 'unknown (app started elsewhere)'}\n"
        f"  machine: {figures['cpus']} CPUs, load average {figures['loadavg_before']} before, "
        f"{figures['loadavg_after']} after; client CPU {figures['client_cpu_s']} s"
    )
    for example in figures["error_examples"]:
        print(f"  error: {example}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 1 if figures["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
