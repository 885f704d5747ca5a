"""Pruning (issue 11) against the emulator over HTTP: `prune:` deletes undeclared folders to the
trash, and every guard refuses at plan time, before any write."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import Api
from reconcile_support import Workspace, children, log_window, lookup, mutating_exchanges
from test_emulator_storage_support import file_entity, upload

from synapse_declare.emulator import Emulator

FOLDER = "org.sagebionetworks.repo.model.Folder"


@pytest.fixture
def ws(emu: Emulator, tmp_path: Path) -> Workspace:
    return Workspace(emu, tmp_path)


def _manifest(ws: Workspace, folders: list[str], extra: str = "", prune: str = "true") -> Path:
    # One project per test (the emulator is shared by the session): named after the workspace.
    listed = "".join(f"\n      - name: {name}" for name in folders)
    head = f"version: 1\nprojects:\n  - name: {_project(ws)}\n    prune: {prune}\n"
    return ws.manifest(f"{head}    folders:{listed}{extra}\n")


def _project(ws: Workspace) -> str:
    return "Prune " + ws.root.name.removeprefix("test_")[:40]


def _names(api: Api, project: str) -> list[str]:
    return sorted(str(c["name"]) for c in children(api, project))


def _setup(emu: Emulator, ws: Workspace, api_for: Any, folders: list[str]) -> tuple[Api, str]:
    assert ws.apply(_manifest(ws, folders, prune="false")).code == 0
    alice: Api = api_for(emu, "alice")
    project = lookup(alice, _project(ws))
    assert project is not None
    return alice, project


def _refused_without_writes(emu: Emulator, ws: Workspace, manifest: Path, *args: str) -> str:
    with log_window(emu) as window:
        result = ws.apply(manifest, *args)
    assert result.code == 1, result.both
    assert mutating_exchanges(window) == []
    assert "Traceback" not in result.both
    return result.err


def _at_prune_key(manifest: Path) -> str:
    """Where `_manifest` writes the project's `prune:` key (line 4, column 5): the refusals
    point there, not at the project's `- name:` line."""
    return f"error: {manifest}:4:5: prune would delete"


def test_an_undeclared_folder_goes_to_the_trash_and_a_rerun_does_nothing(
    emu: Emulator, ws: Workspace, api_for: Any
) -> None:
    alice, project = _setup(emu, ws, api_for, ["Keep", "Old"])
    old = lookup(alice, "Old", project)
    manifest = _manifest(ws, ["Keep"])
    plan = ws.plan_json(manifest)
    deletions = [c for c in plan["changes"] if c["action"] == "delete"]
    assert [(c["address"], c["syn_id"]) for c in deletions] == [
        (f"project:{_project(ws)}/folder:Old", old)
    ]
    assert "restorable for 30 days" in deletions[0]["reason"]
    assert ws.apply(manifest).code == 0
    assert _names(alice, project) == ["Keep"]
    trash = alice.ok("GET", "/trashcan/view?offset=0&limit=10")["results"]
    assert [t["entityId"] for t in trash] == [old]
    # Idempotent: nothing left to prune, nothing to do.
    again = ws.plan(manifest, "--detailed-exitcode")
    assert again.code == 0, again.out


def test_without_prune_an_undeclared_folder_is_only_left_alone(
    emu: Emulator, ws: Workspace, api_for: Any
) -> None:
    alice, project = _setup(emu, ws, api_for, ["Keep", "Old"])
    manifest = _manifest(ws, ["Keep"], prune="false")
    plan = ws.plan_json(manifest)
    assert [c for c in plan["changes"] if c["action"] == "delete"] == []
    assert [i["address"] for i in plan["leftovers"]] == [f"project:{_project(ws)}/folder:Old"]
    assert ws.apply(manifest).code == 0
    assert _names(alice, project) == ["Keep", "Old"]


def test_a_folder_holding_files_is_refused_without_with_files_and_then_shows_them(
    emu: Emulator, ws: Workspace, api_for: Any
) -> None:
    alice, project = _setup(emu, ws, api_for, ["Keep", "Data"])
    data = lookup(alice, "Data", project)
    assert data is not None
    handle = upload(alice, b"12345678", "a.txt")
    file_entity(alice, data, str(handle["id"]), "a.txt")
    manifest = _manifest(ws, ["Keep"])
    err = _refused_without_writes(emu, ws, manifest)
    assert "Data" in err and "1 file (8 B)" in err and "prune: with-files" in err
    assert _at_prune_key(manifest) in err, err
    plan = ws.plan_json(_manifest(ws, ["Keep"], prune="with-files"))
    (deletion,) = [c for c in plan["changes"] if c["action"] == "delete"]
    assert {f["path"]: f["before"] for f in deletion["fields"]} == {"files": 1, "bytes": 8}
    assert ws.apply(_manifest(ws, ["Keep"], prune="with-files")).code == 0
    assert _names(alice, project) == ["Keep"]


def test_a_folder_made_by_hand_is_never_pruned(emu: Emulator, ws: Workspace, api_for: Any) -> None:
    alice, project = _setup(emu, ws, api_for, ["Keep"])
    alice.ok(
        "POST",
        "/entity",
        {
            "concreteType": "org.sagebionetworks.repo.model.Folder",
            "name": "Hand",
            "parentId": project,
        },
    )
    manifest = _manifest(ws, ["Keep"])
    err = _refused_without_writes(emu, ws, manifest)
    assert "Hand" in err and "did not create" in err
    assert _at_prune_key(manifest) in err, err
    assert _names(alice, project) == ["Hand", "Keep"]


def test_a_protected_folder_stays_protected_after_its_entry_is_removed(
    emu: Emulator, ws: Workspace, api_for: Any
) -> None:
    alice, project = _setup(emu, ws, api_for, ["Keep"])
    protected = _manifest(ws, ["Keep"], extra="\n      - name: Vault\n        protect: true")
    assert ws.apply(protected).code == 0
    manifest = _manifest(ws, ["Keep"])
    err = _refused_without_writes(emu, ws, manifest)
    assert "Vault" in err and "protected" in err
    assert _at_prune_key(manifest) in err, err
    assert "declare it with `protect: false`, apply, then remove its entry" in err
    assert _names(alice, project) == ["Keep", "Vault"]


def test_more_deletions_than_the_cap_are_refused_until_the_flag_allows_them(
    emu: Emulator, ws: Workspace, api_for: Any
) -> None:
    alice, project = _setup(emu, ws, api_for, ["Keep", "A", "B", "C"])
    manifest = _manifest(ws, ["Keep"])
    err = _refused_without_writes(emu, ws, manifest, "--max-deletions", "2")
    assert "would delete 3 folders" in err and "--max-deletions 3" in err
    assert ws.apply(manifest, "--max-deletions", "3").code == 0
    assert _names(alice, project) == ["Keep"]


def test_a_rerun_after_an_interrupted_prune_converges(
    emu: Emulator, ws: Workspace, api_for: Any
) -> None:
    """A kill after some deletions: the saved plan is stale, a fresh plan prunes the rest."""
    alice, project = _setup(emu, ws, api_for, ["Keep", "A", "B"])
    manifest = _manifest(ws, ["Keep"])
    saved = ws.root / "prune.plan.json"
    assert ws.plan(manifest, "--out", str(saved)).code == 0
    # What the killed apply got done before it died: A is in the trash.
    a = lookup(alice, "A", project)
    alice.ok("PUT", f"/trashcan/trash/{a}")
    stale = ws.apply("--plan", str(saved))
    assert stale.code == 1 and "disappeared since the plan was made" in stale.err
    assert ws.apply(manifest).code == 0
    assert _names(alice, project) == ["Keep"]
    assert ws.plan(manifest, "--detailed-exitcode").code == 0


def test_protect_false_removes_the_marker_so_a_later_prune_may_delete(
    emu: Emulator, ws: Workspace, api_for: Any
) -> None:
    protected = "\n        protect: true"
    assert ws.apply(_manifest(ws, ["Keep", "Old"], protected, prune="false")).code == 0
    alice: Api = api_for(emu, "alice")
    project = lookup(alice, _project(ws))
    assert project is not None
    old = lookup(alice, "Old", project)
    assert old is not None
    keys = alice.ok("GET", f"/entity/{old}/annotations2")["annotations"]
    assert "synapse_declare_protected" in keys
    released = _manifest(ws, ["Keep", "Old"], "\n        protect: false", prune="false")
    plan = ws.plan_json(released)
    (change,) = [c for c in plan["changes"] if c["action"] != "no-op"]
    assert (change["action"], change["syn_id"]) == ("update", old)
    assert [(f["path"], f["before"], f["after"]) for f in change["fields"]] == [
        ("annotations.synapse_declare_protected", "true", None)
    ]
    assert "synapse_declare_protected" in ws.plan(released).out
    assert ws.apply(released).code == 0
    keys = alice.ok("GET", f"/entity/{old}/annotations2")["annotations"]
    assert "synapse_declare_protected" not in keys and "synapse_declare_managed" in keys
    assert ws.plan(released, "--detailed-exitcode").code == 0
    # Released, it may now be pruned once the manifest drops it.
    pruned = _manifest(ws, ["Keep"])
    assert [c["syn_id"] for c in ws.plan_json(pruned)["changes"] if c["action"] == "delete"] == [
        old
    ]
    assert ws.apply(pruned).code == 0
    assert _names(alice, project) == ["Keep"]


def test_a_refused_prune_on_a_folder_points_at_that_folders_prune_key(
    emu: Emulator, ws: Workspace, api_for: Any
) -> None:
    """`prune:` on a nested folder: the refusal names the line and column of that folder's
    `prune:` key (line 7 here), not the folder's `- name:` line nor the project's."""
    alice, project = _setup(emu, ws, api_for, ["Outer"])
    outer = lookup(alice, "Outer", project)
    alice.ok("POST", "/entity", {"concreteType": FOLDER, "name": "Hand", "parentId": outer})
    manifest = ws.manifest(
        f"version: 1\nprojects:\n  - name: {_project(ws)}\n    folders:\n"
        "      - name: Outer\n        description: kept\n        prune: true\n"
    )
    err = _refused_without_writes(emu, ws, manifest)
    assert f"error: {manifest}:7:9: prune would delete Prune " in err, err
    assert "Outer/Hand" in err and "did not create" in err
