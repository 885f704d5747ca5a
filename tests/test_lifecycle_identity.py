"""Identity beyond the path (issue 11) against the emulator: `previously:` renames and moves
keep the folder's id and files; a declared folder found in the trash is restored, never
recreated empty."""

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


def _project(ws: Workspace) -> str:
    return "Identity " + ws.root.name.removeprefix("test_")[:40]


def _manifest(ws: Workspace, body: str) -> Path:
    return ws.manifest(f"version: 1\nprojects:\n  - name: {_project(ws)}\n    folders:\n{body}")


def _with_file(
    emu: Emulator, ws: Workspace, api_for: Any, body: str, folder: str
) -> tuple[Api, str, str, str]:
    assert ws.apply(_manifest(ws, body)).code == 0
    alice: Api = api_for(emu, "alice")
    project = lookup(alice, _project(ws))
    assert project is not None
    folder_id = lookup(alice, folder, project)
    assert folder_id is not None
    handle = upload(alice, b"data", "a.txt")
    file_entity(alice, folder_id, str(handle["id"]), "a.txt")
    return alice, project, folder_id, ws.root.name


def _names(api: Api, parent: str) -> list[str]:
    return sorted(str(c["name"]) for c in children(api, parent))


def test_a_rename_keeps_the_id_and_the_files(emu: Emulator, ws: Workspace, api_for: Any) -> None:
    alice, project, raw, _ = _with_file(emu, ws, api_for, "      - name: Raw\n", "Raw")
    renamed = _manifest(ws, "      - name: Raw data\n        previously: [Raw]\n")
    plan = ws.plan_json(renamed)
    (change,) = [c for c in plan["changes"] if c["action"] != "no-op"]
    assert (change["action"], change["syn_id"]) == ("update", raw)
    assert [(f["path"], f["before"], f["after"]) for f in change["fields"]] == [
        ("name", "Raw", "Raw data")
    ]
    assert plan["leftovers"] == []  # the old name is this folder, not something left behind
    assert ws.apply(renamed).code == 0
    assert lookup(alice, "Raw data", project) == raw
    assert _names(alice, project) == ["Raw data"]
    assert _names(alice, raw) == ["a.txt"]
    assert ws.plan(renamed, "--detailed-exitcode").code == 0


def test_a_move_keeps_the_id_and_the_files(emu: Emulator, ws: Workspace, api_for: Any) -> None:
    body = "      - name: Archive\n      - name: Run 1\n"
    alice, project, run, _ = _with_file(emu, ws, api_for, body, "Run 1")
    moved = _manifest(
        ws,
        "      - name: Archive\n        folders:\n          - name: Run 1\n"
        "            previously: [/Run 1]\n",
    )
    plan = ws.plan_json(moved)
    (change,) = [c for c in plan["changes"] if c["action"] != "no-op"]
    assert (change["action"], change["syn_id"]) == ("update", run)
    assert [(f["path"], f["before"], f["after"]) for f in change["fields"]] == [
        ("parent", _project(ws), f"{_project(ws)}/Archive")
    ]
    assert ws.apply(moved).code == 0
    archive = lookup(alice, "Archive", project)
    assert archive is not None and lookup(alice, "Run 1", archive) == run
    assert _names(alice, project) == ["Archive"]
    assert _names(alice, run) == ["a.txt"]
    assert ws.plan(moved, "--detailed-exitcode").code == 0


def test_a_folder_trashed_by_hand_is_restored_not_recreated(
    emu: Emulator, ws: Workspace, api_for: Any
) -> None:
    body = "      - name: Keep\n      - name: Gone\n"
    alice, project, gone, _ = _with_file(emu, ws, api_for, body, "Gone")
    alice.ok("PUT", f"/trashcan/trash/{gone}")
    manifest = _manifest(ws, body)
    plan = ws.plan_json(manifest)
    (change,) = [c for c in plan["changes"] if c["action"] != "no-op"]
    assert (change["action"], change["syn_id"]) == ("restore", gone)
    assert plan["summary"]["create"] == 0
    assert ws.apply(manifest).code == 0
    assert lookup(alice, "Gone", project) == gone
    assert _names(alice, gone) == ["a.txt"]
    assert ws.plan(manifest, "--detailed-exitcode").code == 0


def test_a_folder_renamed_by_hand_is_recognised_and_renamed_back(
    emu: Emulator, ws: Workspace, api_for: Any
) -> None:
    body = "      - name: Keep\n      - name: Raw\n"
    alice, project, raw, _ = _with_file(emu, ws, api_for, body, "Raw")
    entity = alice.ok("GET", f"/entity/{raw}")
    entity["name"] = "Raw (renamed in the web UI)"
    alice.ok("PUT", f"/entity/{raw}", entity)
    manifest = _manifest(ws, body)
    plan = ws.plan_json(manifest)
    (change,) = [c for c in plan["changes"] if c["action"] != "no-op"]
    assert (change["action"], change["syn_id"]) == ("update", raw)
    assert [(f["path"], f["before"], f["after"]) for f in change["fields"]] == [
        ("name", "Raw (renamed in the web UI)", "Raw")
    ]
    assert change["reason"].startswith("renamed by hand (found at 'Raw (renamed in the web UI)'")
    assert plan["summary"]["create"] == 0 and plan["leftovers"] == []
    assert ws.apply(manifest).code == 0
    assert _names(alice, project) == ["Keep", "Raw"]
    assert lookup(alice, "Raw", project) == raw and _names(alice, raw) == ["a.txt"]
    assert ws.plan(manifest, "--detailed-exitcode").code == 0


def test_a_hand_made_folder_is_not_taken_for_a_missing_one(
    emu: Emulator, ws: Workspace, api_for: Any
) -> None:
    """Only the address marker identifies a folder: a stranger beside it is not adopted."""
    assert ws.apply(_manifest(ws, "      - name: Keep\n")).code == 0
    alice: Api = api_for(emu, "alice")
    project = lookup(alice, _project(ws))
    folder = {"concreteType": "org.sagebionetworks.repo.model.Folder", "parentId": project}
    alice.ok("POST", "/entity", {**folder, "name": "Stranger"})
    plan = ws.plan_json(_manifest(ws, "      - name: Keep\n      - name: New\n"))
    assert plan["summary"]["create"] == 1
