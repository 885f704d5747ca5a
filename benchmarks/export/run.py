"""REST calls of an export against a no-op plan of the same tree.

Builds the plan benchmark's generated project (``--breadth`` 8: 585 entities; annotations on
every 4th folder, an own ACL on every 10th, wikis), applies it, then: exports it (counting the
requests the emulator logged, and checking none of them writes), plans the exported directory
(adoption only, since the project was marked by the apply: a no-op plan) and reports both call
counts, their ratio, and the discovery floor: an export cannot know a folder's annotations or
own upload setting without reading them (2 calls per container, plus a children page per
container that has children), while a no-op plan reads only what its manifest manages. Call
counts do not depend on pacing, so it runs without throttle or latency by default.

Usage: python benchmarks/export/run.py [--breadth 8] [--latency-ms 0]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from synapse_declare.auth import Credentials, Endpoints
from synapse_declare.client.http import ClientOptions
from synapse_declare.emulator import Emulator, EmulatorConfig, SeedUser
from synapse_declare.engine import apply_plan, connect, plan_manifest
from synapse_declare.export import export_projects, write_export
from synapse_declare.validate import load_manifest

READ_ONLY_POSTS = ("/entity/child", "/entity/children", "/bundle2", "/userGroupHeaders/batch")


def _generator() -> Any:
    path = Path(__file__).resolve().parents[1] / "plan" / "run.py"
    spec = importlib.util.spec_from_file_location("plan_benchmark", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate


def _lines(log: Path) -> int:
    return len(log.read_text(encoding="utf-8").splitlines())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--breadth", type=int, default=8)
    parser.add_argument("--latency-ms", type=int, default=0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sd-bench-export-"))
    log = work / "requests.jsonl"
    config = EmulatorConfig(
        users=[SeedUser("bench", "bench-token")], latency_ms=args.latency_ms, request_log=log
    )
    with Emulator(config) as emulator:
        source = work / "source.yaml"
        name = f"synapse-declare export benchmark {args.breadth}"
        source.write_text(yaml.safe_dump(_generator()(args.breadth, name), sort_keys=False))
        api = connect(
            Credentials(
                token="bench-token",
                source="benchmark",
                endpoints=Endpoints.from_base(emulator.base_url),
            ),
            ClientOptions(max_concurrency=3, max_per_window=0),
        )
        manifest = load_manifest([source])
        assert apply_plan(api, plan_manifest(api, manifest), parallel=3).ok
        entities = len(list(manifest.walk()))
        # What discovering the tree cannot do without: a bundle (annotations, ACL) and the own
        # upload setting of every container, and a children page of every container with some.
        floor = 2 * entities + sum(1 for spec in manifest.walk() if spec.folders)

        start, version, wall = _lines(log), emulator.state_version(), time.perf_counter()
        result = export_projects(api, [name])
        export_s = time.perf_counter() - wall
        exchanges = [json.loads(x) for x in log.read_text(encoding="utf-8").splitlines()[start:]]
        writes = [
            e
            for e in exchanges
            if e["method"] not in ("GET", "HEAD")
            and not (e["method"] == "POST" and e["path"].endswith(READ_ONLY_POSTS))
        ]
        assert not writes and emulator.state_version() == version, writes[:3]
        out = work / "exported"
        write_export(result, out, force=False)

        exported = load_manifest([out])
        start, wall = _lines(log), time.perf_counter()
        plan = plan_manifest(api, exported)
        plan_s = time.perf_counter() - wall
        plan_calls = _lines(log) - start
        api.t.close()
    assert not plan.has_changes, [c.address for c in plan.actionable][:5]
    export_calls = len(exchanges)
    print(f"entities: {entities}; exported files: {len(result.files)}")
    print(f"export:       {export_calls} calls, {export_s:.1f} s, 0 writes")
    print(f"no-op plan:   {plan_calls} calls, {plan_s:.1f} s (of the exported directory)")
    print(f"ratio:        {export_calls / plan_calls:.2f}x")
    print(f"floor:        {floor} calls (export: {export_calls / floor:.2f}x of it)")
    print(f"calls/entity: export {export_calls / entities:.2f}, plan {plan_calls / entities:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
