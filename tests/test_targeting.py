"""--target / --exclude (issue 11): pure selection on golden plans, and a saved partial plan
applied against the emulator (only its part is written)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import Api
from golden_support import GOLDEN, inside, plan_case
from reconcile_support import Workspace, children, lookup

from synapse_declare.emulator import Emulator
from synapse_declare.errors import UsageError
from synapse_declare.plan import Plan
from synapse_declare.render import render_markdown, render_text
from synapse_declare.targeting import check_patterns, resolve_instances, select
from synapse_declare.validate import validate_paths

NESTED = plan_case(GOLDEN / "create_nested_folders")


def _addresses(plan: Plan) -> list[str]:
    return [c.address for c in plan.changes]


def test_a_folder_target_pulls_in_its_parents_and_keeps_its_subtree() -> None:
    part = select(NESTED, ("Golden nested/Level 1/Level 2",), ())
    assert _addresses(part) == [
        "project:Golden nested",
        "project:Golden nested/folder:Level 1",
        "project:Golden nested/folder:Level 1/folder:Level 2",
        "project:Golden nested/folder:Level 1/folder:Level 2/folder:Level 3",
    ]
    assert part.partial and Plan.from_json(part.to_json()) == part


def test_an_address_target_and_an_exclude() -> None:
    part = select(NESTED, ("project:Golden nested",), ("project:Golden nested/folder:Level 1",))
    assert _addresses(part) == ["project:Golden nested", "project:Golden nested/folder:Sibling"]


def test_a_kind_target() -> None:
    part = select(NESTED, ("kind:project",), ())
    assert _addresses(part) == ["project:Golden nested"]


def test_excluding_what_a_target_needs_is_refused() -> None:
    with pytest.raises(UsageError) as caught:
        select(NESTED, ("Golden nested/Sibling",), ("kind:project",))
    assert "a selected change depends on it" in str(caught.value)
    with pytest.raises(UsageError):
        check_patterns(("kind:nonsense",))


def test_the_plan_says_it_is_partial_in_every_format() -> None:
    part = select(NESTED, ("Golden nested/Sibling",), ())
    assert "PARTIAL plan (--target Golden nested/Sibling)" in render_text(part)
    assert "PARTIAL plan" in render_markdown(part)
    assert part.to_json()["partial"] == {"targets": ["Golden nested/Sibling"], "excludes": []}
    assert NESTED.to_json()["partial"] is None


@pytest.fixture
def ws(emu: Emulator, tmp_path: Path) -> Workspace:
    return Workspace(emu, tmp_path)


def test_a_saved_partial_plan_applies_only_its_part(
    emu: Emulator, ws: Workspace, api_for: Any
) -> None:
    manifest = ws.manifest(
        "version: 1\nprojects:\n  - name: Targeted\n    folders:\n"
        "      - name: A\n      - name: B\n"
    )
    saved = ws.root / "part.json"
    assert ws.plan(manifest, "--target", "Targeted/A", "--out", str(saved)).code == 0
    assert json.loads(saved.read_text())["partial"]["targets"] == ["Targeted/A"]
    refused = ws.apply("--plan", str(saved), "--target", "Targeted/B")
    assert refused.code == 1 and "cannot change a saved plan" in refused.err
    assert ws.apply("--plan", str(saved)).code == 0
    alice: Api = api_for(emu, "alice")
    project = lookup(alice, "Targeted")
    assert project is not None
    assert [c["name"] for c in children(alice, project)] == ["A"]
    rest = ws.plan_json(manifest)
    assert [c["address"] for c in rest["changes"] if c["action"] == "create"] == [
        "project:Targeted/folder:B"
    ]


def test_a_target_that_matches_nothing_is_refused() -> None:
    with pytest.raises(UsageError) as caught:
        select(NESTED, ("Golden nested/Levl 1",), ())
    assert "matches nothing" in str(caught.value)


def test_a_fan_out_key_targets_what_that_instance_made() -> None:
    case = GOLDEN / "fanout_for_each"
    with inside(case):
        report = validate_paths(["manifest.yaml"])
    assert report.expansion is not None
    keys = sorted({i.label for chain in report.expansion.instances.values() for i in chain})
    west = next(k for k in keys if k.endswith("[West]"))
    targets = resolve_instances([west], report.expansion.instances)
    assert targets == ("project:Golden center West",)
    assert _addresses(select(plan_case(case), targets, ())) == ["project:Golden center West"]
    with pytest.raises(UsageError) as caught:
        resolve_instances(["center[North]"], report.expansion.instances)
    assert west in str(caught.value)
