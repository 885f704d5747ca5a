"""Storage migration: synapse-declare's engine against synapseutils, on identical data, same run.

An in-process emulator (with its embedded S3) holds one dataset per measured run: ``--files``
files (default 300) of mixed sizes — mostly small, some medium, ``--large`` files larger than
100 MiB so that both tools copy them in more than one part — uploaded to Synapse storage in a
project of their own, identical bytes in every project. Each run moves one project to an external
S3 location (an owner.txt'd bucket in the embedded S3):

* ``synapseutils`` — ``index_files_for_migration`` + ``migrate_indexed_files(force=True)`` with
  strategy ``new`` (its default) and ``latest``;
* ``synapse-declare`` — ``index_migration`` + ``run_migration`` with the same strategy, and for
  ``latest`` with ``verify=md5`` (the default) and ``verify=size``.

Every client runs in its own process (the emulator keeps its interpreter), starting from a fresh
login, with its default concurrency (synapseutils: ``max_threads = cpu_count + 4`` threads, half
as concurrent copies; synapse-declare: 3 concurrent copies, 3 concurrent REST requests). The
emulator emulates ``--latency-ms`` per REST request (default 20 ms) and, with ``--throttle``
(default on), Synapse's limit of 3 concurrent requests per user (429 beyond). Printed per run:
wall time (index / migrate), files/s, MB/s (bytes to copy / wall time), Synapse REST calls per
file from the emulator's request log, split by endpoint, and where the time went (emulator-side
time per endpoint, S3 time per operation as the S3 server saw it).

Usage: python benchmarks/migration/run.py [--files 300] [--large 2] [--latency-ms 20]
       [--no-throttle] [--only ours,su]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from synapse_declare.emulator import Emulator, EmulatorConfig, SeedUser, s3gate

MIB = 1024 * 1024
USER, TOKEN = "bench", "bench-token"
EXTERNAL_S3 = "org.sagebionetworks.repo.model.project.ExternalS3StorageLocationSetting"
UPLOAD = "org.sagebionetworks.repo.model.file.MultipartUploadRequest"
HERE = Path(__file__).resolve()

RUNS = [
    # (label, tool, strategy, verify)
    ("synapseutils new", "su", "new", None),
    ("synapse-declare new", "ours", "new", "md5"),
    ("synapseutils latest", "su", "latest", None),
    ("synapse-declare latest", "ours", "latest", "md5"),
    ("synapse-declare latest verify=size", "ours", "latest", "size"),
]


# ---------------------------------------------------------------------------------------------
# Data


def plan_files(count: int, large: int, seed: int = 7) -> list[tuple[str, int, int]]:
    """(folder, size, content seed) per file: ~93% small (1 KiB–1 MiB, log-uniform), ~6% medium
    (2–12 MiB), ``large`` files of 100–140 MiB (two parts of 100 MiB each)."""
    rng = random.Random(seed)
    medium = max(1, count // 16)
    small = count - medium - large
    sizes = [int(math.exp(rng.uniform(math.log(1024), math.log(MIB)))) for _ in range(small)]
    sizes += [rng.randint(2 * MIB, 12 * MIB) for _ in range(medium)]
    sizes += [rng.randint(100 * MIB + 1, 140 * MIB) for _ in range(large)]
    rng.shuffle(sizes)
    return [(f"batch-{i % 10:02d}" if i % 4 else "", size, i) for i, size in enumerate(sizes)]


def content(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


class Rest:
    """Raw REST for setup (not measured): multipart upload and entity creation."""

    def __init__(self, emulator: Emulator) -> None:
        self.base = emulator.base_url
        self.session = requests.Session()
        self.session.headers.update(
            {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        )
        self.put_session = requests.Session()  # presigned PUTs: no token

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        for attempt in range(20):
            response = self.session.request(
                method, self.base + path, json=body, params=params or None, timeout=300
            )
            if response.status_code != 429:
                break
            time.sleep(0.05 * (attempt + 1))
        if response.status_code >= 300:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response.json() if response.content.strip() else None

    def upload(self, data: bytes, name: str) -> str:
        md5 = hashlib.md5(data).hexdigest()
        part = max(5 * MIB, len(data))  # one part: the fastest way into the embedded S3
        status = self.call(
            "POST",
            "/file/v1/file/multipart",
            {
                "concreteType": UPLOAD,
                "fileName": name,
                "contentType": "application/octet-stream",
                "contentMD5Hex": md5,
                "fileSizeBytes": len(data),
                "partSizeBytes": part,
                "generatePreview": False,
            },
        )
        upload_id = status["uploadId"]
        if status["state"] != "COMPLETED":
            url = self.call(
                "POST",
                f"/file/v1/file/multipart/{upload_id}/presigned/url/batch",
                {"uploadId": upload_id, "partNumbers": [1]},
            )["partPresignedUrls"][0]
            put = self.put_session.put(
                url["uploadPresignedUrl"], data=data, headers=url.get("signedHeaders") or {}
            )
            put.raise_for_status()
            self.call("PUT", f"/file/v1/file/multipart/{upload_id}/add/1", partMD5Hex=md5)
            status = self.call("PUT", f"/file/v1/file/multipart/{upload_id}/complete")
        return str(status["resultFileHandleId"])

    def entity(self, body: dict[str, Any]) -> str:
        return str(self.call("POST", "/repo/v1/entity", body)["id"])


def make_dataset(rest: Rest, name: str, files: list[tuple[str, int, int]]) -> str:
    project = rest.entity({"concreteType": "org.sagebionetworks.repo.model.Project", "name": name})
    folders: dict[str, str] = {"": project}
    for folder in sorted({f for f, _, _ in files if f}):
        folders[folder] = rest.entity(
            {
                "concreteType": "org.sagebionetworks.repo.model.Folder",
                "name": folder,
                "parentId": project,
            }
        )

    def one(spec: tuple[str, int, int]) -> None:
        folder, size, seed = spec
        file_name = f"file-{seed:04d}.bin"
        handle = rest.upload(content(size, seed), file_name)
        rest.entity(
            {
                "concreteType": "org.sagebionetworks.repo.model.FileEntity",
                "name": file_name,
                "parentId": folders[folder],
                "dataFileHandleId": handle,
            }
        )

    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(one, files))
    return project


# ---------------------------------------------------------------------------------------------
# S3 timing (as the S3 server sees it)


class S3Timer:
    """WSGI middleware between the emulator's S3 gateway and moto: seconds per S3 operation."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.seconds: Counter[str] = Counter()
        self.count: Counter[str] = Counter()
        self.enabled = False

    @staticmethod
    def operation(environ: dict[str, Any]) -> str:
        method = environ.get("REQUEST_METHOD", "")
        query = str(environ.get("QUERY_STRING", ""))
        if method == "PUT" and environ.get("HTTP_X_AMZ_COPY_SOURCE"):
            return "UploadPartCopy" if "partNumber" in query else "CopyObject"
        if method == "PUT":
            return "UploadPart" if "partNumber" in query else "PutObject"
        if method == "POST" and "uploadId" in query:
            return "CompleteMultipartUpload"
        if method == "POST" and "uploads" in query:
            return "CreateMultipartUpload"
        return {"GET": "GetObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}.get(
            method, method
        )

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if not self.enabled:
            return self.app(environ, start_response)
        started = time.perf_counter()
        body = list(self.app(environ, start_response))  # the response is produced here
        elapsed = time.perf_counter() - started
        name = self.operation(environ)
        with self.lock:
            self.seconds[name] += elapsed
            self.count[name] += 1
        return body


# ---------------------------------------------------------------------------------------------
# Clients (each run in its own process)


def client_ours(args: dict[str, Any]) -> dict[str, Any]:
    from synapse_declare.auth import Credentials, Endpoints
    from synapse_declare.client.http import ClientOptions, Transport
    from synapse_declare.client.s3 import DestinationReader
    from synapse_declare.client.synapse import SynapseAPI
    from synapse_declare.migration import (
        MigrationOptions,
        Strategy,
        index_migration,
        run_migration,
    )
    from synapse_declare.progress import Progress

    endpoints = Endpoints.from_base(args["base_url"])
    api = SynapseAPI(
        Transport(Credentials(TOKEN, "benchmark", endpoints), endpoints, ClientOptions())
    )
    reader = DestinationReader.from_settings(
        args["s3"],
        region="us-east-1",
        access_key_id="emulator-access-key",
        secret_access_key="emulator-secret-key",
    )
    started = time.perf_counter()
    index = index_migration(api, args["project"], Strategy(args["strategy"]), args["destination"])
    indexed = time.perf_counter()
    report = run_migration(
        api,
        index,
        args["destination"],
        endpoint=endpoints.repo,
        user_id=args["user_id"],
        verifier=reader if args["verify"] != "none" else None,
        options=MigrationOptions(
            verify=args["verify"], state_dir=Path(args["state"]), parallel=args["parallel"]
        ),
        progress=Progress(),
    )
    done = time.perf_counter()
    return {
        "index_s": indexed - started,
        "migrate_s": done - indexed,
        "items": len(index.items),
        "bytes": index.total_bytes(),
        "ok": report.ok,
        "counts": report.counts,
    }


def client_su(args: dict[str, Any]) -> dict[str, Any]:
    import logging

    import synapseclient
    import synapseutils

    logging.disable(logging.INFO)
    synapseclient.Synapse.allow_client_caching(False)
    syn = synapseclient.Synapse(
        configPath=args["config"], cache_root_dir=args["cache"], silent=True, skip_checks=True
    )
    syn.login(silent=True)
    db = str(Path(args["state"]) / "su-index.db")
    started = time.perf_counter()
    index = synapseutils.index_files_for_migration(
        syn,
        args["project"],
        str(args["destination"]),
        db,
        file_version_strategy=args["strategy"],
    )
    indexed = time.perf_counter()
    result = synapseutils.migrate_indexed_files(syn, db, force=True)
    done = time.perf_counter()
    counts = result.get_counts_by_status() if result is not None else {}
    return {
        "index_s": indexed - started,
        "migrate_s": done - indexed,
        "items": index.get_counts_by_status().get("INDEXED", 0),
        "ok": counts.get("ERRORED", 1) == 0 and counts.get("INDEXED", 1) == 0,
        "counts": counts,
        "max_threads": syn.max_threads,
    }


# ---------------------------------------------------------------------------------------------
# Measuring


def template(method: str, path: str) -> str:
    path = re.sub(r"/syn\d+", "/{id}", path)
    path = re.sub(r"/\d+", "/{n}", path)
    return f"{method} {path}"


def read_log(log: Path, start: int) -> tuple[list[dict[str, Any]], int]:
    lines = log.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines[start:] if line], len(lines)


def run_client(tool: str, args: dict[str, Any], home: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYNAPSE_", "AWS_"))}
    env.update(
        HOME=str(home),
        AWS_CONFIG_FILE=str(home / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "no-aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        PYTHONPATH=str(HERE.parent.parent.parent),
    )
    out = subprocess.run(
        [sys.executable, str(HERE), "--client", tool, "--client-args", json.dumps(args)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{tool} client failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--large", type=int, default=2)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--no-throttle", action="store_true")
    parser.add_argument("--only", default="ours,su")
    parser.add_argument("--parallel", type=int, default=3, help="synapse-declare's copies")
    parser.add_argument("--client", choices=("ours", "su"))
    parser.add_argument("--client-args")
    args = parser.parse_args()
    if args.client:
        runner = client_ours if args.client == "ours" else client_su
        print(json.dumps(runner(json.loads(args.client_args))))
        return 0

    tools = set(args.only.split(","))
    runs = [r for r in RUNS if r[1] in tools]
    files = plan_files(args.files, args.large)
    total = sum(size for _, size, _ in files)
    work = Path(tempfile.mkdtemp(prefix="sd-bench-migration-"))
    log = work / "requests.jsonl"
    config = EmulatorConfig(
        users=[SeedUser(USER, TOKEN, email="bench@example.org")], request_log=log
    )
    print(
        f"{len(files)} files, {total / MIB:.0f} MiB per dataset "
        f"({sum(1 for f in files if f[1] > 100 * MIB)} over 100 MiB), {len(runs)} datasets; "
        f"latency {args.latency_ms:g} ms/request, "
        f"{'no throttle' if args.no_throttle else 'throttle: 3 concurrent requests per user'}",
        flush=True,
    )
    results: list[dict[str, Any]] = []
    with Emulator(config) as emulator:
        rest = Rest(emulator)
        bucket = f"bench-dest-{uuid.uuid4().hex[:8]}"
        s3 = emulator.s3_client()
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="owner.txt", Body=USER.encode())
        destination = int(
            rest.call(
                "POST",
                "/repo/v1/storageLocation",
                {"concreteType": EXTERNAL_S3, "bucket": bucket, "uploadType": "S3"},
            )["storageLocationId"]
        )
        setup = time.perf_counter()
        projects = [
            make_dataset(rest, f"bench {n} {tool} {strategy}", files)
            for n, (_, tool, strategy, _) in enumerate(runs)
        ]
        print(
            f"setup: {len(projects)} datasets uploaded in {time.perf_counter() - setup:.0f} s",
            flush=True,
        )
        gateway = s3gate.ensure_gateway(emulator)
        assert gateway is not None
        timer = S3Timer(gateway.app)
        gateway.app = timer
        home = work / "home"
        home.mkdir()
        (home / ".synapseConfig").write_text(emulator.synapse_config(USER), encoding="utf-8")
        emulator.knobs.latency_ms = args.latency_ms
        emulator.knobs.max_concurrent = None if args.no_throttle else 3
        _, position = read_log(log, 0)
        for (label, tool, strategy, verify), project in zip(runs, projects, strict=True):
            client_args = {
                "base_url": emulator.base_url,
                "project": project,
                "strategy": strategy,
                "verify": verify,
                "destination": destination,
                "user_id": emulator.principal_ids[USER],
                "s3": emulator.s3_endpoint,
                "state": str(work / f"state-{len(results)}"),
                "config": str(home / ".synapseConfig"),
                "cache": str(work / f"cache-{len(results)}"),
                "parallel": args.parallel,
            }
            Path(client_args["state"]).mkdir()
            timer.seconds.clear()
            timer.count.clear()
            timer.enabled = True
            started = time.perf_counter()
            outcome = run_client(tool, client_args, home)
            wall = time.perf_counter() - started
            timer.enabled = False
            exchanges, position = read_log(log, position)
            outcome.update(
                label=label,
                tool=tool,
                strategy=strategy,
                wall_s=wall,
                calls=Counter(template(e["method"], e["path"]) for e in exchanges),
                server_ms=_server_ms(exchanges),
                throttled=sum(1 for e in exchanges if e["status"] == 429),
                s3_seconds=dict(timer.seconds),
                s3_count=dict(timer.count),
            )
            results.append(outcome)
            _print_run(outcome, len(files), total)
    _print_summary(results, len(files), total)
    return 0 if all(r["ok"] for r in results) else 1


def _server_ms(exchanges: list[dict[str, Any]]) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for e in exchanges:
        totals[template(e["method"], e["path"])] += float(e.get("duration_ms") or 0.0)
    return dict(totals)


def _print_run(r: dict[str, Any], files: int, total: int) -> None:
    calls: Counter[str] = r["calls"]
    work = r["index_s"] + r["migrate_s"]
    threads = f" (max_threads {r['max_threads']})" if "max_threads" in r else ""
    status = "ok" if r["ok"] else "NOT OK " + json.dumps(r["counts"])
    print(f"\n== {r['label']}: {status}{threads}")
    print(
        f"   index {r['index_s']:.1f} s + migrate {r['migrate_s']:.1f} s = {work:.1f} s "
        f"(process {r['wall_s']:.1f} s): {files / work:.1f} files/s, "
        f"{total / MIB / work:.1f} MiB/s; {sum(calls.values()) / files:.2f} REST calls/file "
        f"({sum(calls.values())} calls, {r['throttled']} answered 429)"
    )
    for name, count in calls.most_common():
        server = r["server_ms"].get(name, 0.0) / 1000
        print(f"     {count:6d}  {count / files:5.2f}/file  {server:6.1f} s in emulator  {name}")
    s3 = ", ".join(
        f"{op} {r['s3_count'][op]}× {sec:.1f} s"
        for op, sec in sorted(r["s3_seconds"].items(), key=lambda kv: -kv[1])
    )
    print(f"   S3 server time: {s3}")


def _print_summary(results: list[dict[str, Any]], files: int, total: int) -> None:
    print("\n| run | files/s | MiB/s | REST calls/file | index s | migrate s |")
    print("|---|---|---|---|---|---|")
    for r in results:
        work = r["index_s"] + r["migrate_s"]
        calls = sum(r["calls"].values())
        print(
            f"| {r['label']} | {files / work:.1f} | {total / MIB / work:.1f} | "
            f"{calls / files:.2f} | {r['index_s']:.1f} | {r['migrate_s']:.1f} |"
        )
    by_label = {r["label"]: r for r in results}
    for strategy in ("new", "latest"):
        ours = by_label.get(f"synapse-declare {strategy}")
        theirs = by_label.get(f"synapseutils {strategy}")
        if ours is None or theirs is None:
            continue
        ours_s = ours["index_s"] + ours["migrate_s"]
        theirs_s = theirs["index_s"] + theirs["migrate_s"]
        ours_calls = sum(ours["calls"].values())
        theirs_calls = sum(theirs["calls"].values())
        print(
            f"\n{strategy}: synapse-declare / synapseutils — time {ours_s / theirs_s:.2f}× "
            f"(speed {theirs_s / ours_s:.2f}×), REST calls {ours_calls / theirs_calls:.2f}×"
        )


if __name__ == "__main__":
    sys.exit(main())
