"""Requests per second the local Synapse emulator serves.

Starts an emulator in this process (no latency, no request log, SQLite in memory unless
``--data-dir``), creates a project, one folder with 50 children, and measures two workloads:

* ``GET /repo/v1/entity/{id}`` — one entity read (authorisation, JSON);
* ``POST /repo/v1/entity/children`` — one full page of 50 children (50 entity headers).

Then, for each ``--wide`` width, a folder with that many children and the cost of its first and
last page of 50 with one client thread: the page is cut in SQLite, so its cost should not grow
with the container's width.

Each workload runs for ``--seconds`` with 1, 2 and 4 client threads. The clients run in a
separate process, so the emulator's process — one Python interpreter, hence about one core —
spends its CPU on serving only; "CPU ms/request" is the emulator process's CPU time divided by
the requests it answered, and "req/CPU-s" the throughput one fully used core would give.

Usage: python benchmarks/emulator/run.py [--seconds 3] [--threads 1,2,4] [--wide 100,4000]
       [--data-dir DIR]
No figure is asserted anywhere; the numbers are for the README and the issue notes.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests

from synapse_declare.emulator import Emulator, EmulatorConfig, SeedUser

TOKEN = "bench-token"
FOLDER = "org.sagebionetworks.repo.model.Folder"
PROJECT = "org.sagebionetworks.repo.model.Project"


def _client(method: str, url: str, body: Any, threads: int, seconds: float, out: Any) -> None:
    """Runs in a child process: ``threads`` keep-alive sessions hammer one URL."""
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors = [0] * threads
    start = threading.Barrier(threads + 1)
    stop_at = [0.0]

    def worker(index: int) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        session.headers["Content-Type"] = "application/json; charset=UTF-8"
        session.request(method, url, json=body, timeout=30)  # warm the connection
        start.wait()
        mine = latencies[index]
        while True:
            began = time.perf_counter()
            if began >= stop_at[0]:
                break
            response = session.request(method, url, json=body, timeout=30)
            mine.append(time.perf_counter() - began)
            if response.status_code != 200:
                errors[index] += 1

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    stop_at[0] = time.perf_counter() + 3600
    start.wait()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - began
    flat = sorted(x for per in latencies for x in per)
    out.put({"count": len(flat), "elapsed": elapsed, "latencies": flat, "errors": sum(errors)})


def measure(
    ctx: Any, method: str, url: str, body: Any, threads: int, seconds: float
) -> dict[str, Any]:
    queue = ctx.Queue()
    process = ctx.Process(target=_client, args=(method, url, body, threads, seconds, queue))
    process.start()
    # The child warms up (imports, one request per session) before the timed window; count the
    # emulator's CPU over the whole run and scale by the timed share of requests (warm-up is
    # ``threads`` requests, negligible next to thousands).
    cpu_before = time.process_time()
    result: dict[str, Any] = queue.get(timeout=seconds + 120)
    cpu = time.process_time() - cpu_before
    process.join(timeout=30)
    count = int(result["count"])
    latencies = result["latencies"]
    return {
        "threads": threads,
        "count": count,
        "errors": int(result["errors"]),
        "rps": count / result["elapsed"],
        "p50_ms": statistics.median(latencies) * 1000 if latencies else 0.0,
        "p95_ms": latencies[int(len(latencies) * 0.95)] * 1000 if latencies else 0.0,
        "cpu_ms": cpu * 1000 / max(count + threads, 1),
    }


def setup(emulator: Emulator, children: int) -> tuple[str, str]:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TOKEN}"
    repo = emulator.repo_endpoint
    project = session.post(
        repo + "/entity", json={"concreteType": PROJECT, "name": f"bench {time.time()}"}, timeout=30
    ).json()
    return str(project["id"]), make_folder(emulator, str(project["id"]), children)


def make_folder(emulator: Emulator, project: str, children: int) -> str:
    """A folder with ``children`` child folders, created over HTTP as a client would."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TOKEN}"
    repo = emulator.repo_endpoint
    folder = session.post(
        repo + "/entity",
        json={"concreteType": FOLDER, "name": f"children {children}", "parentId": project},
        timeout=30,
    ).json()
    for index in range(children):
        session.post(
            repo + "/entity",
            json={"concreteType": FOLDER, "name": f"child {index:03d}", "parentId": folder["id"]},
            timeout=30,
        ).raise_for_status()
    return str(folder["id"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=3.0, help="timed window per run")
    parser.add_argument("--threads", default="1,2,4", help="client thread counts")
    parser.add_argument("--children", type=int, default=50, help="children in the listed folder")
    parser.add_argument("--data-dir", type=Path, help="file-backed SQLite instead of memory")
    parser.add_argument(
        "--wide", default="100,4000", help="container widths for the page-cost runs ('' = none)"
    )
    args = parser.parse_args(argv)
    thread_counts = [int(t) for t in args.threads.split(",") if t.strip()]
    widths = [int(w) for w in args.wide.split(",") if w.strip()]

    ctx = mp.get_context("spawn")
    started = time.perf_counter()
    data_dir = args.data_dir
    emulator = Emulator(EmulatorConfig(users=[SeedUser("bench", TOKEN)], data_dir=data_dir)).start()
    try:
        project, folder = setup(emulator, args.children)
        workloads = [
            ("GET /entity/{id}", "GET", f"{emulator.repo_endpoint}/entity/{project}", None),
            (
                f"POST /entity/children ({args.children} per page)",
                "POST",
                f"{emulator.repo_endpoint}/entity/children",
                {"parentId": folder, "includeTypes": ["folder"]},
            ),
        ]
        print(
            f"emulator benchmark — Python {platform.python_version()} on "
            f"{platform.machine()}, {mp.cpu_count()} CPUs visible; SQLite "
            f"{'file ' + str(data_dir) if data_dir else 'in memory'}; "
            f"{args.seconds:g} s per run; clients in a separate process; load average "
            f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} at start"
        )
        results: dict[str, list[dict[str, Any]]] = {}
        for label, method, url, body in workloads:
            results[label] = []
            for threads in thread_counts:
                figures = measure(ctx, method, url, body, threads, args.seconds)
                results[label].append(figures)
                print(
                    f"  {label:<42} threads={threads}  requests={figures['count']:>6}  "
                    f"req/s={figures['rps']:>7.0f}  p50={figures['p50_ms']:.2f} ms  "
                    f"p95={figures['p95_ms']:.2f} ms  emulator CPU/request="
                    f"{figures['cpu_ms']:.2f} ms  errors={figures['errors']}",
                    flush=True,
                )
        for width in widths:
            wide = make_folder(emulator, project, width)
            last = f"50a{(width - 1) // 50 * 50}"
            for page, token in (("first", None), ("last", last)):
                label = f"children page of a {width}-child folder ({page} page)"
                figures = measure(
                    ctx,
                    "POST",
                    f"{emulator.repo_endpoint}/entity/children",
                    {"parentId": wide, "includeTypes": ["folder"], "nextPageToken": token},
                    1,
                    args.seconds,
                )
                results[label] = [figures]
                print(
                    f"  {label:<48} p50={figures['p50_ms']:.2f} ms  emulator CPU/request="
                    f"{figures['cpu_ms']:.2f} ms  errors={figures['errors']}",
                    flush=True,
                )
        print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at end")
    finally:
        emulator.stop()

    print()
    header = "| workload | " + " | ".join(f"{t} thread{'s' * (t > 1)}" for t in thread_counts)
    print(header + " | req/CPU-s (one core) |")
    print("|---" * (len(thread_counts) + 2) + "|")
    for label, rows in results.items():
        if len(rows) != len(thread_counts):
            continue
        cells = " | ".join(f"{row['rps']:.0f} req/s" for row in rows)
        best_cpu = min(row["cpu_ms"] for row in rows)
        print(f"| {label} | {cells} | {1000 / best_cpu:.0f} |")
    print(f"\ntotal time {time.perf_counter() - started:.1f} s")
    failures = sum(row["errors"] for rows in results.values() for row in rows)
    if failures:
        print(f"{failures} requests did not answer 200", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
