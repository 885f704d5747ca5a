"""REST calls, wall time and client CPU of synapse-declare on generated manifests.

Default profile: Synapse's real throttles (3 concurrent requests and 600 requests per 60 s per
user, enforced by the emulator with 429s) and 100 ms of latency per request, the client pacing
itself to the same budget. On a manifest of ``--breadth`` (default 8: 585 entities) it measures:

* first apply: REST calls per created entity (goal <= 1.5: bundle2/create makes an entity with
  its ACL and annotations in one call), wall time, share of the rate budget used;
* no-op plan: REST calls against the lower bound = children pages + one read per entity whose
  managed state a children page does not show;
* the same no-op read done the way get-or-create scripts do it (look every entity up by name,
  then read its bundle) as a baseline measured in the same run;
* the plan of the converged project with ONE folder added to the manifest (a declared name that
  is missing, as for a folder moved by hand: the trash and the project walk are read before it
  is created), and the plan after one folder is moved by hand to another declared folder, each
  against its floor (the no-op plan; plus the found folder's marker, entity and ACL).

Then the scaling part (``--scale``, default breadths 17 and 27: 5,220 and 20,440 entities) runs
without throttle or latency — call counts and client CPU do not depend on pacing, and 20k creates
at 600/min would take 34 minutes: no-op plan calls against the lower bound at 20k entities (goal
<= 1.03x), and apply client CPU for ~20k changes against ~5k (goal <= 5x: linear scheduling).
Each client runs in its own process, so its CPU is not the emulator's.

Usage: python benchmarks/plan/run.py [--breadth 8] [--latency-ms 100] [--no-throttle]
       [--scale 17,27] [--parallel 3]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
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


def generate(breadth: int, name: str = "synapse-declare benchmark") -> dict[str, Any]:
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
                "name": name,
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


def lower_bound(manifest: Any) -> tuple[int, int]:
    """(children pages, reads): pages of every container with folders in the manifest, plus one
    read per entity whose managed state a children page does not show."""
    pages = reads = 0
    for spec in manifest.walk():
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
    return pages, reads


def client(args: dict[str, Any]) -> dict[str, Any]:
    """One client process: first plan, first apply, no-op plan (and the baseline read), with
    calls (the transport's count), wall and CPU seconds per phase."""
    manifest = load_manifest([Path(args["manifest"])])
    credentials = Credentials(
        token=args["token"], source="benchmark", endpoints=Endpoints.from_base(args["base_url"])
    )
    api = connect(
        credentials,
        ClientOptions(max_concurrency=args["parallel"], max_per_window=args["per_minute"]),
    )
    out: dict[str, Any] = {}

    def phase(name: str, run: Any) -> Any:
        calls, wall, cpu = api.t.total_calls(), time.perf_counter(), time.process_time()
        value = run()
        out[name] = {
            "calls": api.t.total_calls() - calls,
            "wall_s": time.perf_counter() - wall,
            "cpu_s": time.process_time() - cpu,
        }
        return value

    plan = phase("first_plan", lambda: plan_manifest(api, manifest))
    out["created"] = sum(1 for c in plan.changes if c.action.value == "create")
    out["changes"] = len(plan.actionable)
    out["wiki_pages"] = sum(1 for c in plan.changes if c.resource.value == "wiki_page")
    result = phase("first_apply", lambda: apply_plan(api, plan, parallel=args["parallel"]))
    assert result.ok, result.failed
    noop = phase("noop_plan", lambda: plan_manifest(api, manifest))
    assert not noop.has_changes, [c.address for c in noop.actionable][:5]
    if args["baseline"]:

        def naive() -> None:
            ids: dict[str, str | None] = {}
            for spec in manifest.walk():
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

        phase("baseline", naive)
    if args.get("added"):
        # One folder added to the converged project: missing under its name like a folder moved
        # by hand, so the plan looks in the trash and walks the project before creating it.
        added = load_manifest([Path(args["added"])])
        grown = phase("add_one_plan", lambda: plan_manifest(api, added))
        creates = [c.address for c in grown.actionable]
        assert len(creates) == 1 and grown.changes, creates
        # One folder moved by hand (to another declared folder) and the plan that moves it back.
        source, target = (_find(api, manifest, path) for path in args["move"])
        entity = dict(api.get_entity(source))
        api.update_entity({**entity, "parentId": target})
        back = phase("moved_plan", lambda: plan_manifest(api, manifest))
        moves = [c for c in back.actionable if "moved by hand" in c.reason]
        assert len(back.actionable) == 1 and len(moves) == 1, [c.reason for c in back.actionable]
    out["throttled"] = api.t.throttled
    out["noop_by_endpoint"] = dict(Counter(api.t.calls))
    api.t.close()
    return out


def _find(api: Any, manifest: Any, path: str) -> str:
    """The syn id of a project-relative folder path of the manifest's project."""
    current: str | None = api.lookup_child(None, manifest.projects[0].name)
    for name in path.split("/"):
        current = api.lookup_child(current, name) if current else None
    assert current is not None, path
    return current


def run_client(args: dict[str, Any]) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    done = subprocess.run(
        [sys.executable, __file__, "--client", json.dumps(args)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"client failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure(
    emulator: Emulator,
    work: Path,
    breadth: int,
    *,
    per_minute: int,
    parallel: int,
    baseline: bool,
    log: Path,
    tag: str,
) -> dict[str, Any]:
    path = work / f"bench-{tag}-{breadth}.yaml"
    name = f"synapse-declare benchmark {tag} {breadth}"
    data = generate(breadth, name)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    manifest = load_manifest([path])
    added = work / f"bench-{tag}-{breadth}-added.yaml"
    # The new folder goes under a second-level folder; the moved one is a third-level folder,
    # put by hand under the last second-level folder (the last page the reader lists).
    data["projects"][0]["folders"][0]["folders"][0]["folders"].append({"name": "added"})
    added.write_text(yaml.safe_dump(data, sort_keys=False))
    start = len(log.read_text(encoding="utf-8").splitlines())
    version_before = emulator.state_version()
    result = run_client(
        {
            "manifest": str(path),
            "token": "bench-token",
            "base_url": emulator.base_url,
            "parallel": parallel,
            "per_minute": per_minute,
            "baseline": baseline,
            "added": str(added) if baseline else "",
            "move": ["f00/f00-00/f00-00-01", "f07/f07-07"],
        }
    )
    exchanges = [json.loads(x) for x in log.read_text(encoding="utf-8").splitlines()[start:]]
    assert emulator.state_version() != version_before
    pages, reads = lower_bound(manifest)
    result.update(
        entities=len(list(manifest.walk())),
        pages=pages,
        reads=reads,
        answered_429=sum(1 for e in exchanges if e["status"] == 429),
    )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--breadth", type=int, default=8, help="folders per level (3 levels)")
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--no-throttle", action="store_true")
    parser.add_argument("--parallel", type=int, default=3)
    parser.add_argument("--scale", default="17,27", help="breadths of the scaling part ('' off)")
    parser.add_argument("--client")
    args = parser.parse_args()
    if args.client:
        print(json.dumps(client(json.loads(args.client))))
        return 0

    work = Path(tempfile.mkdtemp(prefix="sd-bench-plan-"))
    log = work / "requests.jsonl"
    throttled = not args.no_throttle
    config = EmulatorConfig(
        users=[SeedUser("bench", "bench-token")],
        latency_ms=args.latency_ms,
        max_concurrent=3 if throttled else None,
        max_per_minute=600 if throttled else None,
        request_log=log,
    )
    ok = True
    with Emulator(config) as emulator:
        r = measure(
            emulator,
            work,
            args.breadth,
            per_minute=600 if throttled else 0,
            parallel=args.parallel,
            baseline=True,
            log=log,
            tag="paced",
        )
        profile = (
            f"latency {args.latency_ms:g} ms/request, "
            + ("Synapse's throttles (3 concurrent, 600/min)" if throttled else "no throttle")
            + f", {args.parallel} concurrent"
        )
        print(
            f"manifest: {r['entities']} entities, {r['wiki_pages']} wiki pages; {profile}; "
            f"machine load {os.getloadavg()[0]:.1f}"
        )
        bound = r["pages"] + r["reads"]
        apply_ = r["first_apply"]
        noop = r["noop_plan"]
        base = r["baseline"]
        print()
        print(
            f"first plan    : {r['first_plan']['calls']:5d} calls  "
            f"{r['first_plan']['wall_s']:6.1f} s"
        )
        print(
            f"first apply   : {apply_['calls']:5d} calls  {apply_['wall_s']:6.1f} s  "
            f"{apply_['calls'] / r['created']:.3f} calls per created object ({r['created']} "
            f"created) [goal <= 1.5]; {_budget(apply_, throttled)}"
        )
        print(
            f"no-op plan    : {noop['calls']:5d} calls  {noop['wall_s']:6.1f} s  lower bound "
            f"{bound} ({r['pages']} children pages + {r['reads']} reads) -> "
            f"{noop['calls'] / bound:.3f}x; {_budget(noop, throttled)}"
        )
        print(
            f"baseline read : {base['calls']:5d} calls  {base['wall_s']:6.1f} s  "
            f"(lookup + bundle per entity, sequential as scripts do)"
        )
        print(
            f"no-op plan vs baseline: {base['calls'] / noop['calls']:.1f}x fewer calls, "
            f"{base['wall_s'] / noop['wall_s']:.1f}x faster; 429 answers: {r['answered_429']}"
        )
        add_one, moved = r["add_one_plan"], r["moved_plan"]
        print(
            f"add one folder: {add_one['calls']:5d} calls  {add_one['wall_s']:6.1f} s  "
            f"floor {noop['calls']} (the no-op plan: a new folder needs no read) -> "
            f"+{add_one['calls'] - noop['calls']} (trash view + walk listings + marker reads)"
        )
        print(
            f"moved by hand : {moved['calls']:5d} calls  {moved['wall_s']:6.1f} s  "
            f"floor {noop['calls'] + 3} (no-op plan + the found folder's marker, entity and "
            f"ACL) -> +{moved['calls'] - noop['calls'] - 3} (trash view + walk listings + "
            "marker reads)"
        )
        ok = apply_["calls"] / r["created"] <= 1.5 and noop["calls"] / bound <= 1.2
        # Scaling: counts and CPU, without pacing (they do not depend on it).
        emulator.knobs.latency_ms = 0.0
        emulator.knobs.max_concurrent = None
        emulator.knobs.max_per_minute = None
        scale = [int(b) for b in args.scale.split(",") if b.strip()]
        sized = []
        for breadth in scale:
            sized.append(
                measure(
                    emulator,
                    work,
                    breadth,
                    per_minute=0,
                    parallel=args.parallel,
                    baseline=False,
                    log=log,
                    tag="scale",
                )
            )
        if sized:
            print("\nscaling (no latency, no throttle; client in its own process):")
            print("| entities | changes | apply calls | apply client CPU s | CPU ms/change |")
            print("|---|---|---|---|---|")
            for s in sized:
                cpu = s["first_apply"]["cpu_s"]
                print(
                    f"| {s['entities']} | {s['changes']} | {s['first_apply']['calls']} | "
                    f"{cpu:.1f} | {1000 * cpu / s['changes']:.2f} |"
                )
            big = sized[-1]
            bound = big["pages"] + big["reads"]
            ratio_noop = big["noop_plan"]["calls"] / bound
            print(
                f"no-op plan at {big['entities']} entities: {big['noop_plan']['calls']} calls, "
                f"lower bound {bound} -> {ratio_noop:.3f}x [goal <= 1.03x]"
            )
            ok = ok and ratio_noop <= 1.03
            if len(sized) > 1:
                small = sized[0]
                ratio_cpu = big["first_apply"]["cpu_s"] / small["first_apply"]["cpu_s"]
                ratio_n = big["changes"] / small["changes"]
                print(
                    f"apply client CPU {big['changes']} vs {small['changes']} changes "
                    f"({ratio_n:.1f}x the changes): {ratio_cpu:.2f}x [goal <= 5x]"
                )
                ok = ok and ratio_cpu <= 5
    print("\ngoals met" if ok else "\nGOALS NOT MET")
    return 0 if ok else 1


def _budget(phase: dict[str, Any], throttled: bool) -> str:
    rate = phase["calls"] / phase["wall_s"] if phase["wall_s"] else 0.0
    if not throttled:
        return f"{rate:.1f} req/s"
    return f"{rate:.2f} req/s = {rate / 10:.0%} of the 10 req/s budget"


def _template(path: str) -> str:
    return re.sub(r"/\d+", "/{n}", re.sub(r"/syn\d+", "/{id}", path))


if __name__ == "__main__":
    sys.exit(main())
