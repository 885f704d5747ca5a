"""Storage migration: synapse-declare's engine against synapseutils, on identical data, same run.

Default profile: Synapse's real throttles — 3 concurrent requests and 600 requests per 60 s per
user, refused with 429 by the emulator — and 100 ms of latency per REST request. Each measured run
has its own user (so each starts with a fresh rate window, as a new migration would), its own
destination bucket (owner.txt'd, an external S3 location of that user's) and its own copy of the
dataset: ``--files`` files (default 300) of mixed sizes — mostly small, some medium, ``--large``
files over 100 MiB — identical bytes in every run. Three pairs of runs:

* Synapse storage → external S3, strategy ``new`` and ``latest``: synapseutils
  (``index_files_for_migration`` + ``migrate_indexed_files(force=True)``: Synapse's multipart
  copy) against synapse-declare (``index_migration`` + ``run_migration``, defaults: small files
  relayed, large ones copied by Synapse, ``verify=auto``);
* external S3 → external S3, ``latest``: synapseutils (Synapse's multipart copy) against
  synapse-declare (S3 copies with the user's credentials, registered and repointed).

Every client runs in its own process from a fresh login with its default concurrency; ours paces
itself to the same budget the emulator enforces. Printed per run: wall time (index / migrate),
files/s, Synapse REST calls per file (from the emulator's request log, by endpoint), requests/s and
the share of the 10 requests/s budget, the physical limit (10 requests/s ÷ calls per file), 429s,
and S3 time per operation as the S3 server saw it. A fresh 60-s window admits 600 requests at
once, so a run of a minute or two can average more than 10 requests/s.

Usage: python benchmarks/migration/run.py [--files 300] [--large 1] [--latency-ms 100]
       [--no-throttle] [--only ours,su] [--pairs new,latest,external]
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
BUDGET_PER_SECOND = 10.0  # Synapse: 600 requests per 60 s per user
EXTERNAL_S3 = "org.sagebionetworks.repo.model.project.ExternalS3StorageLocationSetting"
UPLOAD = "org.sagebionetworks.repo.model.file.MultipartUploadRequest"
HERE = Path(__file__).resolve()

RUNS = [
    # (label, tool, strategy, source, pair)
    ("synapseutils new", "su", "new", "synapse", "new"),
    ("synapse-declare new", "ours", "new", "synapse", "new"),
    ("synapseutils latest", "su", "latest", "synapse", "latest"),
    ("synapse-declare latest", "ours", "latest", "synapse", "latest"),
    ("synapseutils external->external latest", "su", "latest", "external", "external"),
    ("synapse-declare external->external latest", "ours", "latest", "external", "external"),
]
GOALS = {"new": 1.2, "latest": 1.2, "external": 2.0}  # speed vs synapseutils


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

    def __init__(self, emulator: Emulator, token: str) -> None:
        self.base = emulator.base_url
        self.session = requests.Session()
        self.session.headers.update(
            {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
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


def make_dataset(
    rest: Rest,
    name: str,
    files: list[tuple[str, int, int]],
    external: tuple[Any, str, int] | None = None,
) -> str:
    """A project holding ``files``: uploaded to Synapse storage, or with ``external`` (S3 client,
    bucket, storage location id) written to that bucket and registered as external S3 handles."""
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
        data = content(size, seed)
        if external is None:
            handle = rest.upload(data, file_name)
        else:
            s3, bucket, location = external
            key = f"source/{name.replace(' ', '_')}/{file_name}"
            s3.put_object(Bucket=bucket, Key=key, Body=data)
            handle = str(
                rest.call(
                    "POST",
                    "/file/v1/externalFileHandle/s3",
                    {
                        "concreteType": "org.sagebionetworks.repo.model.file.S3FileHandle",
                        "bucketName": bucket,
                        "key": key,
                        "fileName": file_name,
                        "contentMd5": hashlib.md5(data).hexdigest(),
                        "contentSize": len(data),
                        "storageLocationId": location,
                    },
                )["id"]
            )
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
    options = ClientOptions(max_concurrency=3, max_per_window=args["per_minute"])
    api = SynapseAPI(
        Transport(Credentials(args["token"], "benchmark", endpoints), endpoints, options)
    )
    reader = DestinationReader.from_settings(
        args["s3"],
        region="us-east-1",
        access_key_id="emulator-access-key",
        secret_access_key="emulator-secret-key",
    )
    started = time.perf_counter()
    index = index_migration(
        api, args["project"], Strategy(args["strategy"]), args["destination"], destination_s3=True
    )
    indexed = time.perf_counter()
    report = run_migration(
        api,
        index,
        args["destination"],
        endpoint=endpoints.repo,
        user_id=args["user_id"],
        verifier=reader,
        options=MigrationOptions(state_dir=Path(args["state"]), parallel=args["parallel"]),
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
        "paths": index.plan_summary()["copy_paths"],
        "estimated_s": index.estimated_seconds(parallel=args["parallel"]),
        "throttled_client": api.t.throttled,
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


def prepare_run(
    emulator: Emulator, n: int, run: tuple[str, str, str, str, str], files: Any
) -> dict[str, Any]:
    """The run's user owns a destination bucket + location and (for external sources) a source
    bucket + location, and a project with the dataset. Made with the throttle off."""
    label, tool, strategy, source, _ = run
    user = f"bench{n}"
    rest = Rest(emulator, emulator.users[user])
    s3 = emulator.s3_client()

    def owned_location(prefix: str) -> tuple[str, int]:
        bucket = f"{prefix}-{n}-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="owner.txt", Body=user.encode())
        body = {"concreteType": EXTERNAL_S3, "bucket": bucket, "uploadType": "S3"}
        return bucket, int(rest.call("POST", "/repo/v1/storageLocation", body)["storageLocationId"])

    _, destination = owned_location("bench-dest")
    external = None
    if source == "external":
        bucket, location = owned_location("bench-src")
        external = (s3, bucket, location)
    project = make_dataset(rest, f"bench {n} {tool} {strategy} {source}", files, external)
    return {"user": user, "project": project, "destination": destination, "label": label}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--large", type=int, default=1)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--no-throttle", action="store_true")
    parser.add_argument("--only", default="ours,su")
    parser.add_argument("--pairs", default="new,latest,external")
    parser.add_argument("--parallel", type=int, default=6, help="synapse-declare's copies")
    parser.add_argument("--client", choices=("ours", "su"))
    parser.add_argument("--client-args")
    args = parser.parse_args()
    if args.client:
        runner = client_ours if args.client == "ours" else client_su
        print(json.dumps(runner(json.loads(args.client_args))))
        return 0

    tools = set(args.only.split(","))
    pairs = set(args.pairs.split(","))
    runs = [r for r in RUNS if r[1] in tools and r[4] in pairs]
    files = plan_files(args.files, args.large)
    total = sum(size for _, size, _ in files)
    work = Path(tempfile.mkdtemp(prefix="sd-bench-migration-"))
    log = work / "requests.jsonl"
    users = [SeedUser(f"bench{n}", f"bench-token-{n}") for n in range(len(runs))]
    config = EmulatorConfig(users=users, request_log=log)
    throttled = not args.no_throttle
    print(
        f"{len(files)} files, {total / MIB:.0f} MiB per dataset "
        f"({sum(1 for f in files if f[1] > 100 * MIB)} over 100 MiB), {len(runs)} runs; "
        f"latency {args.latency_ms:g} ms/request, "
        + ("Synapse's throttles: 3 concurrent, 600/min per user" if throttled else "no throttle"),
        flush=True,
    )
    results: list[dict[str, Any]] = []
    with Emulator(config) as emulator:
        setup = time.perf_counter()
        prepared = [prepare_run(emulator, n, run, files) for n, run in enumerate(runs)]
        print(f"setup: {len(prepared)} datasets in {time.perf_counter() - setup:.0f} s", flush=True)
        gateway = s3gate.ensure_gateway(emulator)
        assert gateway is not None
        timer = S3Timer(gateway.app)
        gateway.app = timer
        emulator.knobs.latency_ms = args.latency_ms
        emulator.knobs.max_concurrent = 3 if throttled else None
        emulator.knobs.max_per_minute = 600 if throttled else None
        _, position = read_log(log, 0)
        for n, ((label, tool, strategy, source, pair), ready) in enumerate(
            zip(runs, prepared, strict=True)
        ):
            home = work / f"home-{n}"
            home.mkdir()
            (home / ".synapseConfig").write_text(
                emulator.synapse_config(ready["user"]), encoding="utf-8"
            )
            client_args = {
                "base_url": emulator.base_url,
                "token": emulator.users[ready["user"]],
                "project": ready["project"],
                "strategy": strategy,
                "destination": ready["destination"],
                "user_id": emulator.principal_ids[ready["user"]],
                "s3": emulator.s3_endpoint,
                "state": str(work / f"state-{n}"),
                "config": str(home / ".synapseConfig"),
                "cache": str(work / f"cache-{n}"),
                "parallel": args.parallel,
                "per_minute": 600 if throttled else 0,
            }
            Path(client_args["state"]).mkdir()
            timer.seconds.clear()
            timer.count.clear()
            timer.enabled = True
            load = os.getloadavg()[0]
            started = time.perf_counter()
            outcome = run_client(tool, client_args, home)
            wall = time.perf_counter() - started
            timer.enabled = False
            exchanges, position = read_log(log, position)
            outcome.update(
                label=label,
                tool=tool,
                strategy=strategy,
                source=source,
                pair=pair,
                wall_s=wall,
                load=load,
                calls=Counter(
                    template(e["method"], e["path"]) for e in exchanges if e["status"] != 429
                ),
                server_ms=_server_ms(exchanges),
                throttled=sum(1 for e in exchanges if e["status"] == 429),
                s3_seconds=dict(timer.seconds),
                s3_count=dict(timer.count),
            )
            results.append(outcome)
            _print_run(outcome, len(files), total)
    return 0 if _print_summary(results, len(files), total) else 1


def _server_ms(exchanges: list[dict[str, Any]]) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for e in exchanges:
        totals[template(e["method"], e["path"])] += float(e.get("duration_ms") or 0.0)
    return dict(totals)


def _rates(r: dict[str, Any], files: int) -> dict[str, float]:
    work = r["index_s"] + r["migrate_s"]
    calls = sum(r["calls"].values())
    per_file = calls / files
    return {
        "work_s": work,
        "files_per_s": files / work,
        "calls_per_file": per_file,
        "req_per_s": calls / work,
        "budget": calls / work / BUDGET_PER_SECOND,
        "limit": BUDGET_PER_SECOND / per_file,
    }


def _print_run(r: dict[str, Any], files: int, total: int) -> None:
    calls: Counter[str] = r["calls"]
    x = _rates(r, files)
    threads = f" (max_threads {r['max_threads']})" if "max_threads" in r else ""
    status = "ok" if r["ok"] else "NOT OK " + json.dumps(r["counts"])
    print(f"\n== {r['label']}: {status}{threads}; machine load {r['load']:.1f}")
    if "paths" in r:
        print(f"   paths: {r['paths']}; plan estimated {r['estimated_s']:.0f} s")
    print(
        f"   index {r['index_s']:.1f} s + migrate {r['migrate_s']:.1f} s = {x['work_s']:.1f} s "
        f"(process {r['wall_s']:.1f} s): {x['files_per_s']:.2f} files/s, "
        f"{total / MIB / x['work_s']:.1f} MiB/s; {x['calls_per_file']:.2f} REST calls/file "
        f"({sum(calls.values())} calls, {r['throttled']} answered 429); "
        f"{x['req_per_s']:.2f} req/s = {x['budget']:.0%} of the budget; physical limit "
        f"{x['limit']:.2f} files/s"
    )
    for name, count in calls.most_common():
        server = r["server_ms"].get(name, 0.0) / 1000
        print(f"     {count:6d}  {count / files:5.2f}/file  {server:6.1f} s in emulator  {name}")
    s3 = ", ".join(
        f"{op} {r['s3_count'][op]}× {sec:.1f} s"
        for op, sec in sorted(r["s3_seconds"].items(), key=lambda kv: -kv[1])
    )
    print(f"   S3 server time: {s3}")


def _print_summary(results: list[dict[str, Any]], files: int, total: int) -> bool:
    print(
        "\n| run | files/s | REST calls/file | req/s | budget used | physical limit files/s "
        "| 429s | index s | migrate s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        x = _rates(r, files)
        print(
            f"| {r['label']} | {x['files_per_s']:.2f} | {x['calls_per_file']:.2f} | "
            f"{x['req_per_s']:.2f} | {x['budget']:.0%} | {x['limit']:.2f} | {r['throttled']} | "
            f"{r['index_s']:.1f} | {r['migrate_s']:.1f} |"
        )
    ok = all(r["ok"] for r in results)
    for pair, goal in GOALS.items():
        ours = next((r for r in results if r["pair"] == pair and r["tool"] == "ours"), None)
        theirs = next((r for r in results if r["pair"] == pair and r["tool"] == "su"), None)
        if ours is None or theirs is None:
            continue
        speed = _rates(ours, files)["files_per_s"] / _rates(theirs, files)["files_per_s"]
        calls = sum(ours["calls"].values()) / sum(theirs["calls"].values())
        met = speed >= goal
        ok = ok and met
        print(
            f"\n{pair}: synapse-declare / synapseutils — speed {speed:.2f}× [goal >= {goal}×: "
            f"{'met' if met else 'NOT MET'}], REST calls {calls:.2f}×"
        )
    print("\ngoals met" if ok else "\nGOALS NOT MET")
    return ok


if __name__ == "__main__":
    sys.exit(main())
