"""Adoption on purpose (issue 11): --no-adopt refuses an existing project before any write;
plan --observe reports drift (exit 2) and its saved plan can never be applied; an adopted
project's declared folders are adopted with it (marker and address), so they may be pruned and
are found when moved by hand."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import Api
from reconcile_support import (
    Workspace,
    actionable,
    annotations,
    children,
    log_window,
    lookup,
    mutating_exchanges,
)

from synapse_declare.emulator import Emulator


@pytest.fixture
def ws(emu: Emulator, tmp_path: Path) -> Workspace:
    return Workspace(emu, tmp_path)


def _hand_made(emu: Emulator, api_for: Any, name: str) -> str:
    alice: Api = api_for(emu, "alice")
    made = alice.ok("POST", "/entity", {"concreteType": PROJECT, "name": name})
    return str(made["id"])


PROJECT = "org.sagebionetworks.repo.model.Project"


def test_no_adopt_refuses_an_existing_project_before_any_write(
    emu: Emulator, ws: Workspace, api_for: Any
) -> None:
    syn_id = _hand_made(emu, api_for, "Adopt me not")
    manifest = ws.manifest("version: 1\nprojects:\n  - name: Adopt me not\n  - name: Brand new\n")
    with log_window(emu) as window:
        result = ws.apply(manifest, "--no-adopt")
    assert result.code == 1, result.both
    assert f"'Adopt me not' already exists ({syn_id})" in result.err
    assert "manifest.yaml:3:" in result.err  # at the project's entry
    assert mutating_exchanges(window) == []
    alice: Api = api_for(emu, "alice")
    assert lookup(alice, "Brand new") is None
    # Without the flag adoption stays the default, and visible.
    assert "= project" in ws.plan(manifest).out


def test_no_adopt_creates_what_is_missing(emu: Emulator, ws: Workspace, api_for: Any) -> None:
    manifest = ws.manifest("version: 1\nprojects:\n  - name: Only new\n")
    assert ws.apply(manifest, "--no-adopt").code == 0
    # Its own project is not an adoption: a re-run with --no-adopt is fine.
    assert ws.plan(manifest, "--no-adopt", "--detailed-exitcode").code == 0


def test_observe_reports_drift_and_its_plan_is_never_applied(
    emu: Emulator, ws: Workspace, api_for: Any
) -> None:
    manifest = ws.manifest("version: 1\nprojects:\n  - name: Observed\n")
    assert ws.apply(manifest).code == 0
    assert ws.plan(manifest, "--observe").code == 0
    changed = ws.manifest("version: 1\nprojects:\n  - name: Observed\n    description: New.\n")
    saved = ws.root / "observe.json"
    with log_window(emu) as window:
        result = ws.plan(changed, "--observe", "--out", str(saved))
    assert result.code == 2 and "OBSERVE: a drift report" in result.out
    assert mutating_exchanges(window) == []
    refused = ws.apply("--plan", str(saved))
    assert refused.code == 1 and "made with --observe" in refused.err


FOLDER = "org.sagebionetworks.repo.model.Folder"
MARKER = "synapse_declare_managed"
ADDRESS = "synapse_declare_address"
# Two top-level folders, one with a sub-folder: four containers, three of them folders.
TREE = (
    "    folders:\n"
    "      - name: Raw\n"
    "        folders:\n"
    "          - name: Scans\n"
    "      - name: Old\n"
)


def _hand_made_tree(emu: Emulator, api_for: Any, name: str) -> dict[str, str]:
    """A project made by hand (not by synapse-declare) with Raw, Raw/Scans and Old: their ids."""
    alice: Api = api_for(emu, "alice")
    ids = {"project": _hand_made(emu, api_for, name)}
    for folder, parent in (("Raw", "project"), ("Scans", "Raw"), ("Old", "project")):
        body = {"concreteType": FOLDER, "name": folder, "parentId": ids[parent]}
        ids[folder] = str(alice.ok("POST", "/entity", body)["id"])
    return ids


def _tree_manifest(ws: Workspace, name: str, tree: str = TREE, extra: str = "") -> Path:
    return ws.manifest(f"version: 1\nprojects:\n  - name: {name}\n{extra}{tree}")


def _calls(emu: Emulator, ws: Workspace, manifest: Path) -> Counter[str]:
    with log_window(emu) as window:
        assert ws.plan(manifest).code in (0, 2)
    return Counter(f"{e['method']} {e['path'].rsplit('/', 1)[-1]}" for e in window)


def test_adopted_folders_get_the_marker_and_may_then_be_pruned(
    emu: Emulator, ws: Workspace, api_for: Any
) -> None:
    name = "Adopted tree prune"
    ids = _hand_made_tree(emu, api_for, name)
    alice: Api = api_for(emu, "alice")
    manifest = _tree_manifest(ws, name)
    planned = ws.plan_json(manifest)
    assert actionable(planned) == {
        f"project:{name}": "adopt",
        f"project:{name}/folder:Raw": "adopt",
        f"project:{name}/folder:Raw/folder:Scans": "adopt",
        f"project:{name}/folder:Old": "adopt",
    }
    shown = ws.plan(manifest).out
    assert f'= folder "{name}/Raw/Scans"' in shown
    assert f'+ annotations.{ADDRESS} = "project:{name}/folder:Raw/folder:Scans"' in shown
    assert ws.apply(manifest).code == 0
    for folder in ("Raw", "Scans", "Old"):
        keys = annotations(alice, ids[folder])
        assert keys[MARKER]["value"] == ["true"], (folder, keys)
        assert keys[ADDRESS]["value"][0].endswith(f"folder:{folder}"), (folder, keys)
    assert ws.plan(manifest, "--detailed-exitcode").code == 0

    # Old's entry removed under `prune: true`: deleted to the trash, not refused.
    pruned = _tree_manifest(
        ws,
        name,
        "    folders:\n      - name: Raw\n        folders:\n          - name: Scans\n",
        "    prune: true\n",
    )
    deletions = [c for c in ws.plan_json(pruned)["changes"] if c["action"] == "delete"]
    assert [(c["address"], c["syn_id"]) for c in deletions] == [
        (f"project:{name}/folder:Old", ids["Old"])
    ]
    applied = ws.apply(pruned)
    assert applied.code == 0, applied.both
    assert sorted(str(c["name"]) for c in children(alice, ids["project"])) == ["Raw"]
    trash = alice.ok("GET", "/trashcan/view?offset=0&limit=10")["results"]
    assert ids["Old"] in [t["entityId"] for t in trash]


def test_a_folder_the_adoption_found_already_marked_is_left_as_it_is(
    emu: Emulator, ws: Workspace, api_for: Any
) -> None:
    name = "Adopted tree marked"
    ids = _hand_made_tree(emu, api_for, name)
    alice: Api = api_for(emu, "alice")
    bundle = alice.ok("GET", f"/entity/{ids['Old']}/annotations2")
    bundle["annotations"] = {
        MARKER: {"type": "BOOLEAN", "value": ["true"]},
        ADDRESS: {"type": "STRING", "value": [f"project:{name}/folder:Old"]},
    }
    alice.ok("PUT", f"/entity/{ids['Old']}/annotations2", bundle)
    planned = ws.plan_json(_tree_manifest(ws, name))
    old = next(c for c in planned["changes"] if c["address"] == f"project:{name}/folder:Old")
    assert old["action"] == "no-op" and old["fields"] == [], old


def test_a_hand_move_of_an_adopted_folder_is_found_and_put_back(
    emu: Emulator, ws: Workspace, api_for: Any
) -> None:
    name = "Adopted tree moved"
    ids = _hand_made_tree(emu, api_for, name)
    alice: Api = api_for(emu, "alice")
    manifest = _tree_manifest(ws, name)
    assert ws.apply(manifest).code == 0
    scans = alice.ok("GET", f"/entity/{ids['Scans']}")
    scans["parentId"] = ids["Old"]
    alice.ok("PUT", f"/entity/{ids['Scans']}", scans)
    planned = ws.plan_json(manifest)
    assert actionable(planned) == {f"project:{name}/folder:Raw/folder:Scans": "update"}
    change = next(c for c in planned["changes"] if c["action"] == "update")
    assert change["syn_id"] == ids["Scans"] and "moved by hand" in change["reason"]
    assert ws.apply(manifest).code == 0
    assert lookup(alice, "Scans", ids["Raw"]) == ids["Scans"]
    assert ws.plan(manifest, "--detailed-exitcode").code == 0


def test_the_folders_markers_are_read_only_in_the_adopting_plan(
    emu: Emulator, ws: Workspace, api_for: Any
) -> None:
    """Adopting costs one annotations read per declared folder that no other kind reads (here
    all three), once: the converged plan afterwards makes exactly the calls of the same tree
    created by synapse-declare."""
    name = "Adopted tree calls"
    _hand_made_tree(emu, api_for, name)
    manifest = _tree_manifest(ws, name)
    adopting = _calls(emu, ws, manifest)
    assert ws.apply(manifest).code == 0
    converged = _calls(emu, ws, manifest)
    assert adopting - converged == Counter({"POST bundle2": 3}), (adopting, converged)
    assert converged - adopting == Counter(), (adopting, converged)

    created = _tree_manifest(ws, "Created tree calls")
    assert ws.apply(created).code == 0
    assert _calls(emu, ws, created) == converged
