"""REST calls and wall time of synapse-declare on a generated manifest of >= 1,000 entities.

Measures, against an in-process emulator with emulated latency (default 20 ms per request):

* first apply: REST calls per created entity (goal <= 1.5; bundle2/create makes an entity with its
  ACL and annotations in one call);
* no-op plan: REST calls against the lower bound = children pages + one read per entity whose
  managed state a children page does not show (goal <= 1.2x);
* the same no-op read done the way get-or-create scripts do it (look every entity up by name,
  then read its bundle) as a baseline measured in the same run.

Usage: python benchmarks/plan/run.py [--breadth 10] [--latency-ms 20] [--parallel 3]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from synapse_declare.auth import Credentials, Endpoints
from synapse_declare.client.http import ClientOptions
from synapse_declare.emulator import Emulator, EmulatorConfig, SeedUser
from synapse_declare.engine import apply_plan, connect, plan_manifest
from synapse_declare.model import AclSpec, EntityKind
from synapse_declare.validate import load_manifest

MUTATING = {"PUT", "DELETE"}


def generate(breadth: int) -> dict[str, Any]:
    """1 project, breadth^1 + breadth^2 + breadth^3 folders; annotations on every 4th folder,
    an own ACL on every 10th, a wiki on the project and on 3 folders."""
    counter = 0

    def folder(name: str, depth: int) -> dict[str, Any]:
        nonlocal counter
        counter += 1
        spec: dict[str, Any] = {"name": name}
        if counter % 4 == 0:
            spec["annotations"] = {"batch": counter, "stage": "raw", "qc": counter % 3 == 0}
        if counter % 10 == 0:
            spec["acl"] = {"self": "administer", "AUTHENTICATED_USERS": "view"}
        if counter in (5, 50, 500):
            spec["wiki"] = {"title": name, "markdown": f"# {name}\n\nGenerated folder {counter}.\n"}
        if depth < 3:
            spec["folders"] = [folder(f"{name}-{i:02d}", depth + 1) for i in range(breadth)]
        return spec

    return {
        "version": 1,
        "projects": [
            {
                "name": "synapse-declare benchmark",
                "annotations": {"purpose": "benchmark"},
                "acl": {"self": "administer", "AUTHENTICATED_USERS": "view"},
                "wiki": {
                    "title": "Benchmark",
                    "markdown": "# Benchmark\n",
                    "pages": [{"title": "About", "markdown": "Generated.\n"}],
                },
                "folders": [folder(f"f{i:02d}", 1) for i in range(breadth)],
            }
        ],
    }


def calls_since(log: Path, start: int) -> tuple[list[dict[str, Any]], int]:
    lines = log.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines[start:]], len(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--breadth", type=int, default=10, help="folders per level (3 levels)")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--parallel", type=int, default=3)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sd-bench-plan-"))
    manifest_path = work / "bench.yaml"
    manifest_path.write_text(yaml.safe_dump(generate(args.breadth), sort_keys=False))
    manifest = load_manifest([manifest_path])
    specs = list(manifest.walk())
    entities = len(specs)
    log = work / "requests.jsonl"
    config = EmulatorConfig(
        users=[SeedUser("bench", "bench-token")], latency_ms=args.latency_ms, request_log=log
    )
    with Emulator(config) as emulator:
        credentials = Credentials(
            token="bench-token",
            source="benchmark",
            endpoints=Endpoints.from_base(emulator.base_url),
        )
        api = connect(credentials, ClientOptions(max_concurrency=args.parallel))

        started = time.perf_counter()
        plan = plan_manifest(api, manifest)
        first_plan_s = time.perf_counter() - started
        first_plan_calls, mark = calls_since(log, 0)

        started = time.perf_counter()
        result = apply_plan(api, plan, parallel=args.parallel)
        apply_s = time.perf_counter() - started
        apply_calls, mark = calls_since(log, mark)
        assert result.ok, result.failed
        created = sum(1 for c in plan.changes if c.action.value == "create")

        version_before = emulator.state_version()
        started = time.perf_counter()
        noop = plan_manifest(api, manifest)
        noop_s = time.perf_counter() - started
        noop_calls, mark = calls_since(log, mark)
        assert not noop.has_changes, [c.address for c in noop.actionable][:5]
        assert emulator.state_version() == version_before, "plan mutated Synapse"

        # Lower bound: children pages of every container with folders in the manifest, plus
        # one read per entity whose managed state a children page does not show.
        pages = 0
        reads = 0
        for spec in specs:
            if spec.folders:
                pages += max(1, math.ceil(len(spec.folders) / 50))
            if (
                spec.kind is EntityKind.PROJECT
                or spec.annotations is not None
                or spec.description is not None
                or isinstance(spec.acl, AclSpec)  # an own ACL to compare
                or spec.wiki is not None
            ):
                reads += 1
        lower_bound = pages + reads

        # Baseline: the get-or-create-script way (look up each entity, then read its bundle).
        started = time.perf_counter()
        ids: dict[str, str | None] = {}
        for spec in specs:
            parent = spec.address.rsplit("/", 1)[0] if "/" in spec.address else None
            parent_id = ids.get(parent) if parent else None
            found = api.lookup_child(parent_id, spec.name)
            ids[spec.address] = found
            if found:
                api.bundle(
                    found,
                    includeEntity=True,
                    includeAnnotations=True,
                    includeAccessControlList=True,
                )
        naive_s = time.perf_counter() - started
        naive_calls, mark = calls_since(log, mark)
        api.t.close()

    def kinds(calls: list[dict[str, Any]]) -> str:
        counts = Counter(f"{c['method']} {_template(c['path'])}" for c in calls)
        return ", ".join(f"{k}: {v}" for k, v in counts.most_common())

    mutating_in_plan = [c for c in noop_calls if c["method"] in MUTATING]
    print(
        f"manifest: {entities} entities ({len(specs) - 1} folders), "
        f"{sum(1 for c in plan.changes if c.resource.value == 'wiki_page')} wiki pages; "
        f"latency {args.latency_ms:g} ms/request, {args.parallel} concurrent"
    )
    print()
    print(f"first plan    : {len(first_plan_calls):5d} calls  {first_plan_s:6.2f} s")
    print(
        f"first apply   : {len(apply_calls):5d} calls  {apply_s:6.2f} s  "
        f"{len(apply_calls) / created:.3f} calls per created object ({created} created) "
        f"[goal <= 1.5]"
    )
    print(
        f"no-op plan    : {len(noop_calls):5d} calls  {noop_s:6.2f} s  "
        f"lower bound {lower_bound} ({pages} children pages + {reads} reads) -> "
        f"{len(noop_calls) / lower_bound:.3f}x [goal <= 1.2x]; mutating calls: "
        f"{len(mutating_in_plan)}"
    )
    print(
        f"baseline read : {len(naive_calls):5d} calls  {naive_s:6.2f} s  "
        f"(lookup + bundle per entity, sequential as scripts do)"
    )
    print(
        f"no-op plan vs baseline: {len(naive_calls) / len(noop_calls):.1f}x fewer calls, "
        f"{naive_s / noop_s:.1f}x faster"
    )
    print()
    print("no-op plan calls by endpoint:", kinds(noop_calls))
    print("first apply calls by endpoint:", kinds(apply_calls))
    ok = len(apply_calls) / created <= 1.5 and len(noop_calls) / lower_bound <= 1.2
    print("\ngoals met" if ok else "\nGOALS NOT MET")
    return 0 if ok else 1


def _template(path: str) -> str:
    return re.sub(r"/\d+", "/{n}", re.sub(r"/syn\d+", "/{id}", path))


if __name__ == "__main__":
    sys.exit(main())
