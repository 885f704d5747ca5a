"""Deletes and restores whose outcome is lost (issue 11): the response of the one
``PUT /trashcan/trash`` or ``PUT /trashcan/restore`` is dropped or answered 5xx by the emulator
(the HTTP boundary) after or before the write ran; apply reads the folder back and ends with one
outcome: never a second delete or restore of the same folder, and the next plan is empty."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import Api, read_exchanges
from reconcile_support import Workspace, children, lookup
from test_emulator_storage_support import file_entity, upload

from synapse_declare.emulator import Emulator

PROJECT = "Lifecycle faults"
AFTER = ["drop-after", "503-after", "500-after"]  # the write ran; its answer is lost
BEFORE = ["drop-before", "503-before"]  # the write never ran; it is sent again


def _once(method: str, prefix: str, kind: str) -> Callable[[str, str], str | None]:
    """A fault on the first request matching (method, path prefix), none after."""
    fired: list[bool] = []

    def choose(request_method: str, path: str) -> str | None:
        if fired or request_method != method or not path.startswith(prefix):
            return None
        fired.append(True)
        return kind

    return choose


def _manifest(ws: Workspace, folders: list[str], prune: bool) -> Path:
    listed = "".join(f"\n      - name: {name}" for name in folders)
    head = f"version: 1\nprojects:\n  - name: {PROJECT}\n    prune: {str(prune).lower()}\n"
    return ws.manifest(f"{head}    folders:{listed}\n")


def _setup(make_emulator: Any, tmp_path: Path, api_for: Any) -> tuple[Emulator, Workspace, Api]:
    emulator: Emulator = make_emulator()
    ws = Workspace(emulator, tmp_path)
    assert ws.apply(_manifest(ws, ["Keep", "Old"], prune=False)).code == 0
    return emulator, ws, api_for(emulator, "alice")


def _writes(emulator: Emulator, prefix: str) -> int:
    return sum(
        1
        for e in read_exchanges(emulator)
        if e["method"] == "PUT" and e["path"].startswith(f"/repo/v1/trashcan/{prefix}/")
    )


def _trash_ids(api: Api) -> list[str]:
    return [
        str(t["entityId"]) for t in api.ok("GET", "/trashcan/view?offset=0&limit=50")["results"]
    ]


@pytest.mark.fault
@pytest.mark.parametrize("kind", AFTER + BEFORE)
def test_a_prune_whose_trash_response_is_lost_deletes_once(
    make_emulator: Any, tmp_path: Path, api_for: Any, kind: str
) -> None:
    emulator, ws, alice = _setup(make_emulator, tmp_path, api_for)
    project = lookup(alice, PROJECT)
    assert project is not None
    old = lookup(alice, "Old", project)
    manifest = _manifest(ws, ["Keep"], prune=True)
    emulator.knobs.fault_for = _once("PUT", "/repo/v1/trashcan/trash/", kind)
    result = ws.apply(manifest)
    emulator.knobs.fault_for = None
    assert result.code == 0, result.both
    assert "reading it back" in result.both
    # One delete: sent once when it ran (its lost answer is read back), twice when it did not.
    assert _writes(emulator, "trash") == (1 if kind in AFTER else 2)
    assert _trash_ids(alice) == [old]
    assert sorted(str(c["name"]) for c in children(alice, project)) == ["Keep"]
    again = ws.plan(manifest, "--detailed-exitcode")
    assert again.code == 0, again.out


@pytest.mark.fault
@pytest.mark.parametrize("kind", AFTER + BEFORE)
def test_a_restore_whose_response_is_lost_restores_once(
    make_emulator: Any, tmp_path: Path, api_for: Any, kind: str
) -> None:
    emulator, ws, alice = _setup(make_emulator, tmp_path, api_for)
    project = lookup(alice, PROJECT)
    assert project is not None
    old = lookup(alice, "Old", project)
    assert old is not None
    handle = upload(alice, b"data", "a.txt")
    file_entity(alice, old, str(handle["id"]), "a.txt")
    alice.ok("PUT", f"/trashcan/trash/{old}")
    manifest = _manifest(ws, ["Keep", "Old"], prune=False)
    emulator.knobs.fault_for = _once("PUT", "/repo/v1/trashcan/restore/", kind)
    result = ws.apply(manifest)
    emulator.knobs.fault_for = None
    assert result.code == 0, result.both
    assert "reading it back" in result.both
    assert _writes(emulator, "restore") == (1 if kind in AFTER else 2)
    assert _trash_ids(alice) == []
    assert lookup(alice, "Old", project) == old
    assert [str(c["name"]) for c in children(alice, old)] == ["a.txt"]
    assert sorted(str(c["name"]) for c in children(alice, project)) == ["Keep", "Old"]
    again = ws.plan(manifest, "--detailed-exitcode")
    assert again.code == 0, again.out


@pytest.mark.fault
@pytest.mark.parametrize("kind", ["drop-after", "503-before"])
def test_a_project_restore_whose_response_is_lost_restores_once(
    make_emulator: Any, tmp_path: Path, api_for: Any, kind: str
) -> None:
    emulator, ws, alice = _setup(make_emulator, tmp_path, api_for)
    project = lookup(alice, PROJECT)
    assert project is not None
    alice.ok("PUT", f"/trashcan/trash/{project}")
    manifest = _manifest(ws, ["Keep", "Old"], prune=False)
    emulator.knobs.fault_for = _once("PUT", "/repo/v1/trashcan/restore/", kind)
    result = ws.apply(manifest)
    emulator.knobs.fault_for = None
    assert result.code == 0, result.both
    assert _writes(emulator, "restore") == (1 if kind == "drop-after" else 2)
    assert lookup(alice, PROJECT) == project
    projects = alice.ok("POST", "/entity/children", {"parentId": None, "includeTypes": ["project"]})
    assert [p["name"] for p in projects["page"]].count(PROJECT) == 1
    again = ws.plan(manifest, "--detailed-exitcode")
    assert again.code == 0, again.out


@pytest.mark.fault
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_prune_and_restore_converge_under_random_faults(
    make_emulator: Any, tmp_path: Path, api_for: Any, seed: int
) -> None:
    """30% of every request faulted (before or after the write, dropped or 5xx): one prune and
    one restore in the same apply end with one outcome each; a re-run (if the faults exhausted
    the retries) converges, and the next plan is empty."""
    emulator: Emulator = make_emulator()
    ws = Workspace(emulator, tmp_path)
    assert ws.apply(_manifest(ws, ["Keep", "Old", "Gone"], prune=False)).code == 0
    alice: Api = api_for(emulator, "alice")
    project = lookup(alice, PROJECT)
    assert project is not None
    old, gone = lookup(alice, "Old", project), lookup(alice, "Gone", project)
    alice.ok("PUT", f"/trashcan/trash/{gone}")
    manifest = _manifest(ws, ["Keep", "Gone"], prune=True)
    emulator.knobs.set_faults(0.3, seed)
    first = ws.apply(manifest)
    emulator.knobs.set_faults(0.0)
    assert "Traceback" not in first.both
    statuses = [e["status"] for e in read_exchanges(emulator)]
    assert sum(1 for s in statuses if s in (500, 503, None)) >= 1, "no fault was injected"
    if first.code != 0:
        assert ws.apply(manifest).code == 0
    assert _trash_ids(alice) == [old]
    assert lookup(alice, "Gone", project) == gone
    assert sorted(str(c["name"]) for c in children(alice, project)) == ["Gone", "Keep"]
    again = ws.plan(manifest, "--detailed-exitcode")
    assert again.code == 0, again.out
