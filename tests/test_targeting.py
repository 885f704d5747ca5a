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


def test_a_partial_plan_records_only_the_observations_of_its_part() -> None:
    part = select(NESTED, ("Golden nested/Sibling",), ())
    mine = {"project:Golden nested", "project:Golden nested/folder:Sibling"}
    elsewhere = [k for k in NESTED.observed if "Level 1" in k]
    assert elsewhere  # the full plan observes the other folders too
    assert not any("Level 1" in k for k in part.observed)
    assert {k.partition("#")[0] for k in part.observed if not k.startswith("principal:")} == mine
    assert Plan.from_json(part.to_json()).observed == part.observed


def test_a_saved_partial_plan_is_not_stale_for_changes_outside_its_part(
    emu: Emulator, ws: Workspace, api_for: Any
) -> None:
    def manifest(text: str) -> Path:
        return ws.manifest(
            "version: 1\nprojects:\n  - name: Targeted etags\n    folders:\n"
            f"      - name: A\n        description: {text}\n"
            "      - name: B\n        description: b\n"
        )

    assert ws.apply(manifest("a")).code == 0
    alice: Api = api_for(emu, "alice")
    project = lookup(alice, "Targeted etags")
    assert project is not None
    a, b = lookup(alice, "A", project), lookup(alice, "B", project)
    wanted = manifest("a, reviewed")
    saved = ws.root / "part.json"
    assert ws.plan(wanted, "--target", "Targeted etags/A", "--out", str(saved)).code == 0
    recorded = json.loads(saved.read_text())["observed"]
    assert not any("folder:B" in key for key in recorded)
    entity = alice.ok("GET", f"/entity/{b}")
    alice.ok("PUT", f"/entity/{b}", {**entity, "description": "edited by hand"})
    applied = ws.run("apply", "--plan", saved, *ws.connection())
    assert applied.code == 0, applied.both  # B changed, but B is not this plan's part
    assert alice.ok("GET", f"/entity/{a}")["description"] == "a, reviewed"
    # A change inside the part still makes a saved partial plan stale.
    assert (
        ws.plan(manifest("a, again"), "--target", "Targeted etags/A", "--out", str(saved)).code == 0
    )
    entity = alice.ok("GET", f"/entity/{a}")
    alice.ok("PUT", f"/entity/{a}", {**entity, "description": "edited by hand"})
    stale = ws.run("apply", "--plan", saved, *ws.connection())
    assert stale.code == 1 and "changed since the plan was made" in stale.err, stale.both
