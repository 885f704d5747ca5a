"""Projects across their lifecycle (issue 11): a declared project found in the caller's trash is
restored with its contents (never recreated empty); a project renamed in the manifest with
``previously:`` keeps its id through one etag-guarded ``PUT /entity``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import Api
from reconcile_support import Workspace, children, lookup
from test_emulator_storage_support import file_entity, upload

from synapse_declare.emulator import Emulator


@pytest.fixture
def ws(emu: Emulator, tmp_path: Path) -> Workspace:
    return Workspace(emu, tmp_path)


def _name(ws: Workspace, suffix: str = "") -> str:
    return "Lifecycle " + ws.root.name.removeprefix("test_")[:36] + suffix


def _manifest(ws: Workspace, name: str, extra: str = "") -> Path:
    return ws.manifest(
        f"version: 1\nprojects:\n  - name: {name}\n{extra}    folders:\n      - name: Raw\n"
    )


def _applied(emu: Emulator, ws: Workspace, api_for: Any, name: str) -> tuple[Api, str, str]:
    """The project applied with a file in Raw: (alice, project id, Raw's id)."""
    assert ws.apply(_manifest(ws, name)).code == 0
    alice: Api = api_for(emu, "alice")
    project = lookup(alice, name)
    assert project is not None
    raw = lookup(alice, "Raw", project)
    assert raw is not None
    handle = upload(alice, b"data", "a.txt")
    file_entity(alice, raw, str(handle["id"]), "a.txt")
    return alice, project, raw


def _names(api: Api, parent: str) -> list[str]:
    return sorted(str(c["name"]) for c in children(api, parent))


def test_a_project_trashed_by_hand_is_restored_not_recreated(
    emu: Emulator, ws: Workspace, api_for: Any
) -> None:
    name = _name(ws)
    alice, project, raw = _applied(emu, ws, api_for, name)
    alice.ok("PUT", f"/trashcan/trash/{project}")
    assert lookup(alice, name) is None
    manifest = _manifest(ws, name)
    plan = ws.plan_json(manifest)
    (change,) = plan["changes"]
    assert (change["resource"], change["action"], change["syn_id"]) == (
        "project",
        "restore",
        project,
    )
    assert plan["summary"]["create"] == 0
    assert "restore" in ws.plan(manifest).out
    assert ws.apply(manifest).code == 0
    assert lookup(alice, name) == project
    assert _names(alice, project) == ["Raw"] and _names(alice, raw) == ["a.txt"]
    assert ws.plan(manifest, "--detailed-exitcode").code == 0


def test_a_project_renamed_in_the_manifest_keeps_its_id(
    emu: Emulator, ws: Workspace, api_for: Any
) -> None:
    old, new = _name(ws), _name(ws, " v2")
    alice, project, raw = _applied(emu, ws, api_for, old)
    manifest = _manifest(ws, new, f"    previously: [{old}]\n")
    plan = ws.plan_json(manifest)
    (change,) = [c for c in plan["changes"] if c["action"] != "no-op"]
    assert (change["resource"], change["action"], change["syn_id"]) == (
        "project",
        "update",
        project,
    )
    assert [(f["path"], f["before"], f["after"]) for f in change["fields"]] == [("name", old, new)]
    assert ws.apply(manifest).code == 0
    assert lookup(alice, new) == project and lookup(alice, old) is None
    assert _names(alice, project) == ["Raw"] and _names(alice, raw) == ["a.txt"]
    assert ws.plan(manifest, "--detailed-exitcode").code == 0


def test_a_project_rename_refused_when_it_changed_since_the_plan(
    emu: Emulator, ws: Workspace, api_for: Any
) -> None:
    old, new = _name(ws), _name(ws, " v2")
    alice, project, _raw = _applied(emu, ws, api_for, old)
    manifest = _manifest(ws, new, f"    previously: [{old}]\n")
    saved = ws.root / "rename.plan"
    assert ws.plan(manifest, "--out", saved).code == 0
    entity = alice.ok("GET", f"/entity/{project}")
    alice.ok("PUT", f"/entity/{project}", {**entity, "description": "edited by hand"})
    refused = ws.run("apply", "--plan", saved, *ws.connection())
    assert refused.code == 1 and "changed since the plan was made" in refused.err, refused.both
    assert lookup(alice, old) == project and lookup(alice, new) is None


def test_a_previous_name_that_is_someone_elses_project_is_not_taken(
    emu: Emulator, ws: Workspace, api_for: Any
) -> None:
    theirs = _name(ws, " (bob)")
    bob: Api = api_for(emu, "bob")
    bob.ok(
        "POST",
        "/entity",
        {"concreteType": "org.sagebionetworks.repo.model.Project", "name": theirs},
    )
    plan = ws.plan_json(_manifest(ws, _name(ws), f"    previously: [{theirs}]\n"))
    assert plan["summary"]["create"] == 2  # a new project and its folder; bob's is untouched
