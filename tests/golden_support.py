"""The pure golden cases (``tests/golden/<case>/``): load one, plan it, capture its live state.

A case is a directory holding ``manifest.yaml`` (plus any markdown or table files it reads),
``live.json`` (what ``state.read_state`` produced, through ``state_codec``) and the expected
output: ``plan.json`` and ``plan.txt`` for a plan, or ``error.txt`` for a refusal. An optional
``setup.yaml`` (the steps of ``test_golden_wire.run_setup``) says how ``live.json`` was made, so
``python tests/golden_capture.py CASE...`` can re-create it on a fresh emulator.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from synapse_declare import state_codec
from synapse_declare.errors import ManifestErrors
from synapse_declare.model import Manifest
from synapse_declare.plan import Plan
from synapse_declare.planner import build_plan
from synapse_declare.render import render_json, render_text
from synapse_declare.validate import validate_paths

GOLDEN = Path(__file__).parent / "golden"
ENDPOINT = "http://emulator"
# Storage cases name the embedded S3 through this variable; capture overrides it with the real
# address and writes this placeholder back, so a case's manifest and live.json never hold a port.
S3_VARIABLE = "s3_endpoint"
S3_ENDPOINT = "http://s3.emulator:5000"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def case_names() -> list[str]:
    return sorted(p.name for p in GOLDEN.iterdir() if (p / "manifest.yaml").exists())


@contextmanager
def inside(case: Path) -> Iterator[None]:
    """Manifest paths in a plan are as given: plan from inside the case, as a user would."""
    before = Path.cwd()
    os.chdir(case)
    try:
        yield
    finally:
        os.chdir(before)


def load_manifest(
    case: Path, variables: dict[str, str] | None = None
) -> tuple[Manifest, dict[str, object]]:
    with inside(case):
        report = validate_paths(["manifest.yaml"], variables=variables)
    if report.errors or report.manifest is None:
        raise ManifestErrors(report.errors)
    variables = dict(report.expansion.variables) if report.expansion is not None else {}
    return report.manifest, variables


def plan_case(case: Path) -> Plan:
    manifest, variables = load_manifest(case)
    live = state_codec.decode(json.loads((case / "live.json").read_text(encoding="utf-8")))
    plan = build_plan(manifest, live, now=NOW)
    return dataclasses.replace(plan, variables=variables) if variables else plan


def plan_json(plan: Plan) -> str:
    document = json.loads(render_json(plan))
    # What changes with every release or edit of a comment, not with the planner's decisions.
    document["tool"]["version"] = "<version>"
    document["manifest"]["digest"] = "<digest>"
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def plan_text(plan: Plan) -> str:
    return render_text(plan, color=False, show_unchanged=False)
