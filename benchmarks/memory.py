#!/usr/bin/env python3
"""Peak memory of the web app serving the seed index, and what holds it.

    python benchmarks/memory.py                          # app as it is, and with the ONNX query encoder
    python benchmarks/memory.py --variants app --requests 20 --json memory.json

Starts ``app.py --port PORT --index DIR --docs seeds`` on a free loopback port, waits for
it, sends ``--requests`` questions through ``gradio_client.Client(url).predict(q,
api_name="/chat")``, then reads ``/proc/PID/status`` (VmHWM = peak resident set, VmRSS)
and ``/proc/PID/smaps`` (resident memory per mapping: each shared library, the Python
heap, anonymous memory), and stops the app.  Target: VmHWM ≤ 700 MB.

Variants: ``app`` — ``app.py`` exactly; ``app+onnx`` — the same with
``qa.pipeline.load_embedder`` given the index folder (the integration of issue 5: the
ONNX query encoder, no torch).  Once the integration is applied both are the same.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from latency import ensure_export, ensure_index, load, questions, run_record  # noqa: E402


PATCHED = """
import runpy, sys
import qa.index.embedding as e, qa.pipeline as p
p.load_embedder = lambda model, threads=0: e.load_embedder(model, threads, onnx_dir={index!r})
sys.argv = ["app.py", *sys.argv[1:]]
runpy.run_path({app!r}, run_name="__main__")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status(pid: int) -> dict:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmHWM", "VmRSS", "RssAnon", "RssFile")):
            key, value = line.split(":")
            out[key] = int(value.split()[0]) // 1024
    return out


def by_mapping(pid: int, top: int = 15) -> list[tuple[str, float]]:
    """Resident MB per mapped file (libraries by name) or kind of anonymous memory."""
    totals: dict[str, int] = defaultdict(int)
    name = "?"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        parts = line.split()
        if not parts:
            continue
        if not parts[0].endswith(":") and "-" in parts[0]:
            path = parts[5] if len(parts) > 5 else "[anonymous]"
            name = path if path.startswith("[") else Path(path).name
            if "site-packages/" in path:
                name = path.split("site-packages/")[1].split("/")[0] + "/" + Path(path).name
        elif parts[0] == "Rss:":
            totals[name] += int(parts[1])
    return sorted(((k, round(v / 1024, 1)) for k, v in totals.items()), key=lambda kv: -kv[1])[:top]


def run_variant(variant: str, index: Path, port: int, qs: list[str], timeout: float) -> dict:
    from gradio_client import Client

    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    args = ["--port", str(port), "--index", str(index), "--docs", str(ROOT / "seeds")]
    if variant == "app":
        cmd = [sys.executable, str(ROOT / "app.py"), *args]
    else:
        cmd = [sys.executable, "-c", PATCHED.format(index=str(index), app=str(ROOT / "app.py")), *args]
    t = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"{variant}: app.py exited with {proc.returncode}: {proc.stdout.read()[-2000:]}")
            try:
                urllib.request.urlopen(url, timeout=2).read(1)
                break
            except OSError:
                if time.perf_counter() - t > timeout:
                    raise SystemExit(f"{variant}: app.py did not answer within {timeout} s")
                time.sleep(0.3)
        ready_s = time.perf_counter() - t
        at_start = status(proc.pid)
        client = Client(url, verbose=False)
        latencies = []
        for q in qs:
            t = time.perf_counter()
            reply = client.predict(q, api_name="/chat")
            latencies.append(time.perf_counter() - t)
            assert reply, "empty reply"
        after = status(proc.pid)
        mappings = by_mapping(proc.pid)
        return {
            "variant": variant,
            "ready_s": round(ready_s, 1),
            "requests": len(qs),
            "request_p50_ms": round(sorted(latencies)[len(latencies) // 2] * 1000, 1),
            "after_start_mb": at_start,
            "after_requests_mb": after,
            "peak_rss_mb": after["VmHWM"],
            "resident_by_mapping_mb": mappings,
        }
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--index", type=Path, default=ROOT / ".bench" / "latency-seeds")
    p.add_argument("--variants", nargs="+", default=["app", "app+onnx"], choices=["app", "app+onnx"])
    p.add_argument("--requests", type=int, default=10)
    p.add_argument("--timeout", type=float, default=240)
    p.add_argument("--json", type=Path, metavar="OUT")
    args = p.parse_args(argv)
    index = args.index.resolve()
    ensure_index(ROOT / "seeds", index)
    ensure_export(index)
    qs = questions(ROOT / "eval" / "seeds.jsonl", args.requests)
    info = run_record()
    for variant in args.variants:
        row = run_variant(variant, index, free_port(), qs, args.timeout)
        row["load_after"] = load()
        info["rows"].append(row)
        a, b = row["after_start_mb"], row["after_requests_mb"]
        print(
            f"\n{variant}: ready in {row['ready_s']} s; RSS after start {a['VmRSS']} MB; after {row['requests']} requests "
            f"RSS {b['VmRSS']} MB (anon {b.get('RssAnon')}, file {b.get('RssFile')}), peak (VmHWM) {b['VmHWM']} MB; request p50 {row['request_p50_ms']} ms; load {row['load_after']}"
        )
        for name, mb in row["resident_by_mapping_mb"]:
            print(f"  {mb:8.1f} MB  {name}")
    if args.json:
        args.json.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
