"""Folders moved by hand (issue 11): a declared folder that someone moved to another parent in
the web UI, renamed or not, is found anywhere under its project by the address marker written
when synapse-declare created it, and moved back keeping its id and files; never recreated."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import Api
from reconcile_support import Workspace, children, log_window, lookup
from test_emulator_storage_support import file_entity, upload

from synapse_declare.emulator import Emulator
from synapse_declare.lifecycle import WALK_LIMIT

BODY = "      - name: Archive\n        folders:\n          - name: Old\n      - name: Raw\n"


@pytest.fixture
def ws(emu: Emulator, tmp_path: Path) -> Workspace:
    return Workspace(emu, tmp_path)


def _project(ws: Workspace) -> str:
    return "Moves " + ws.root.name.removeprefix("test_")[:40]


def _manifest(ws: Workspace, body: str = BODY) -> Path:
    return ws.manifest(f"version: 1\nprojects:\n  - name: {_project(ws)}\n    folders:\n{body}")


def _names(api: Api, parent: str) -> list[str]:
    return sorted(str(c["name"]) for c in children(api, parent))


def _setup(emu: Emulator, ws: Workspace, api_for: Any) -> tuple[Api, str, str, str]:
    """The project applied, a file in Raw; (alice, project id, Raw's id, Archive/Old's id)."""
    assert ws.apply(_manifest(ws)).code == 0
    alice: Api = api_for(emu, "alice")
    project = lookup(alice, _project(ws))
    assert project is not None
    raw = lookup(alice, "Raw", project)
    archive = lookup(alice, "Archive", project)
    assert raw is not None and archive is not None
    old = lookup(alice, "Old", archive)
    assert old is not None
    handle = upload(alice, b"data", "a.txt")
    file_entity(alice, raw, str(handle["id"]), "a.txt")
    return alice, project, raw, old


def _move_by_hand(api: Api, syn_id: str, parent: str, name: str | None = None) -> None:
    entity = api.ok("GET", f"/entity/{syn_id}")
    entity["parentId"] = parent
    if name is not None:
        entity["name"] = name
    api.ok("PUT", f"/entity/{syn_id}", entity)


def _fields(plan: dict[str, Any]) -> tuple[str, str, list[tuple[str, Any, Any]]]:
    (change,) = [c for c in plan["changes"] if c["action"] != "no-op"]
    fields = [(f["path"], f["before"], f["after"]) for f in change["fields"]]
    return change["action"], change["syn_id"], fields


def test_a_folder_moved_by_hand_is_moved_back_keeping_id_and_files(
    emu: Emulator, ws: Workspace, api_for: Any
) -> None:
    alice, project, raw, old = _setup(emu, ws, api_for)
    _move_by_hand(alice, raw, old)  # Raw now lives in Archive/Old
    manifest = _manifest(ws)
    plan = ws.plan_json(manifest)
    assert _fields(plan) == (
        "update",
        raw,
        [("parent", f"{_project(ws)}/Archive/Old", _project(ws))],
    )
    assert plan["summary"]["create"] == 0
    assert plan["leftovers"] == []  # not "left alone" in Archive/Old: it is Raw, on its way back
    text = ws.plan(manifest).out
    assert "# moved by hand (found at 'Archive/Old/Raw'" in text
    assert ws.apply(manifest).code == 0
    assert _names(alice, project) == ["Archive", "Raw"]
    assert lookup(alice, "Raw", project) == raw and _names(alice, raw) == ["a.txt"]
    assert _names(alice, old) == []
    assert ws.plan(manifest, "--detailed-exitcode").code == 0


def test_a_folder_moved_and_renamed_by_hand_gets_both_back(
    emu: Emulator, ws: Workspace, api_for: Any
) -> None:
    alice, project, raw, old = _setup(emu, ws, api_for)
    _move_by_hand(alice, raw, old, "Raw (filed away)")
    manifest = _manifest(ws)
    plan = ws.plan_json(manifest)
    assert _fields(plan) == (
        "update",
        raw,
        [
            ("name", "Raw (filed away)", "Raw"),
            ("parent", f"{_project(ws)}/Archive/Old", _project(ws)),
        ],
    )
    (change,) = [c for c in plan["changes"] if c["action"] != "no-op"]
    assert change["reason"].startswith("moved and renamed by hand (found at 'Archive/Old/Raw (")
    assert ws.apply(manifest).code == 0
    assert _names(alice, project) == ["Archive", "Raw"]
    assert lookup(alice, "Raw", project) == raw and _names(alice, raw) == ["a.txt"]
    assert ws.plan(manifest, "--detailed-exitcode").code == 0


def test_a_nested_folder_moved_up_by_hand_goes_back_down(
    emu: Emulator, ws: Workspace, api_for: Any
) -> None:
    alice, project, _raw, old = _setup(emu, ws, api_for)
    _move_by_hand(alice, old, project)  # Archive/Old now beside Archive
    manifest = _manifest(ws)
    plan = ws.plan_json(manifest)
    assert _fields(plan) == ("update", old, [("parent", _project(ws), f"{_project(ws)}/Archive")])
    assert plan["leftovers"] == []
    assert ws.apply(manifest).code == 0
    archive = lookup(alice, "Archive", project)
    assert archive is not None and lookup(alice, "Old", archive) == old
    assert _names(alice, project) == ["Archive", "Raw"]
    assert ws.plan(manifest, "--detailed-exitcode").code == 0


def test_the_project_walk_is_made_only_when_a_declared_name_is_missing(
    emu: Emulator, ws: Workspace, api_for: Any
) -> None:
    """Cost: nothing missing → no walk; one missing → one folder listing per folder whose
    children page the plan did not read already, and one annotations read per folder not at a
    declared path."""
    alice, _project_id, raw, old = _setup(emu, ws, api_for)
    manifest = _manifest(ws)

    def counts() -> Counter[str]:
        with log_window(emu) as window:
            assert ws.plan(manifest).code in (0, 2)
        return Counter(f"{e['method']} {e['path'].rsplit('/', 1)[-1]}" for e in window)

    quiet = counts()
    _move_by_hand(alice, raw, old)
    moved = counts()
    # Listings: the project's and Archive's pages are the reader's (reused); the walk lists the
    # declared leaf Archive/Old and, below it, Raw (4 before the walk reused the pages).
    assert moved["POST children"] - quiet["POST children"] == 2, (quiet, moved)
    # Annotations: only Raw is away from a declared path; its bundle plus its own re-read.
    assert moved["POST bundle2"] - quiet["POST bundle2"] <= 2, (quiet, moved)


def test_adding_a_folder_to_a_converged_project_costs_the_trash_and_the_unread_leaves(
    emu: Emulator, ws: Workspace, api_for: Any
) -> None:
    """A new declared folder is missing under its name like a moved one: the plan reads the
    trash (one view) and walks the project, reusing the children pages it already read (the
    project's, Archive's), so the walk lists only the declared leaves Archive/Old and Raw.
    Exactly 3 calls more than the converged plan, and no marker read: every folder it saw is
    at a declared path."""
    _setup(emu, ws, api_for)

    def counts(manifest: Path) -> Counter[str]:
        with log_window(emu) as window:
            assert ws.plan(manifest).code in (0, 2)
        return Counter(f"{e['method']} {e['path'].rsplit('/', 1)[-1]}" for e in window)

    quiet = counts(_manifest(ws))
    added = counts(_manifest(ws, BODY + "      - name: New\n"))
    extra = added - quiet
    assert extra == Counter({"POST children": 2, "GET view": 1}), (quiet, added)
    assert sum(added.values()) - sum(quiet.values()) == 3
    assert ws.plan_json(_manifest(ws, BODY + "      - name: New\n"))["summary"]["create"] == 1


def test_a_hand_made_folder_elsewhere_is_not_taken_for_a_missing_one(
    emu: Emulator, ws: Workspace, api_for: Any
) -> None:
    """Only the address marker identifies a folder: a same-named stranger elsewhere is not it."""
    alice, _project_id, _raw, old = _setup(emu, ws, api_for)
    folder = {"concreteType": "org.sagebionetworks.repo.model.Folder", "parentId": old}
    alice.ok("POST", "/entity", {**folder, "name": "New"})
    plan = ws.plan_json(_manifest(ws, BODY + "      - name: New\n"))
    assert plan["summary"]["create"] == 1


def test_no_walk_in_a_project_synapse_declare_never_managed(
    emu: Emulator, ws: Workspace, api_for: Any
) -> None:
    """An unmanaged (to be adopted) project holds no folder with our marker: nothing to walk."""
    alice: Api = api_for(emu, "alice")
    project = alice.project(_project(ws))
    folder = {"concreteType": "org.sagebionetworks.repo.model.Folder"}
    outer = alice.ok("POST", "/entity", {**folder, "name": "Outer", "parentId": project["id"]})
    alice.ok("POST", "/entity", {**folder, "name": "Inner", "parentId": outer["id"]})
    with log_window(emu) as window:
        plan = ws.plan_json(_manifest(ws, "      - name: New\n"))
    assert plan["summary"]["create"] == 1
    listings = [e for e in window if e["path"].endswith("/entity/children")]
    assert len(listings) == 1  # the project's own page, read to match its declared folders


def test_the_walk_stops_at_its_limit_and_the_plan_says_so(
    emu: Emulator, ws: Workspace, api_for: Any
) -> None:
    """Cost bound: in a project with more folders than WALK_LIMIT, a new declared folder costs
    at most ~WALK_LIMIT listings and marker reads, and the plan warns that the search stopped."""
    alice, project, _raw, _old = _setup(emu, ws, api_for)
    archive = lookup(alice, "Archive", project)
    assert archive is not None
    folder = {"concreteType": "org.sagebionetworks.repo.model.Folder", "parentId": archive}
    for n in range(WALK_LIMIT + 20):
        alice.ok("POST", "/entity", {**folder, "name": f"Hand {n:03d}"})
    manifest = _manifest(ws, BODY + "      - name: New\n")
    with log_window(emu) as window:
        plan = ws.plan_json(manifest)
    assert plan["summary"]["create"] == 1
    assert any("stopped at" in w and "previously:" in w for w in plan["warnings"]), plan
    calls = Counter(e["path"].rsplit("/", 1)[-1] for e in window)
    assert calls["children"] <= WALK_LIMIT + 5 and calls["bundle2"] <= WALK_LIMIT + 5, calls


def test_a_folder_moved_into_a_crowded_folder_is_found_beyond_the_walk_limit(
    emu: Emulator, ws: Workspace, api_for: Any
) -> None:
    """Folders in the children pages the plan already read cost the walk nothing, so none of
    them is dropped at the limit: Raw moved by hand into Archive, behind WALK_LIMIT + 20
    hand-made folders, is found there with one marker read (same name first), not recreated."""
    alice, project, raw, _old = _setup(emu, ws, api_for)
    archive = lookup(alice, "Archive", project)
    assert archive is not None
    folder = {"concreteType": "org.sagebionetworks.repo.model.Folder", "parentId": archive}
    for n in range(WALK_LIMIT + 20):
        alice.ok("POST", "/entity", {**folder, "name": f"Hand {n:03d}"})
    _move_by_hand(alice, raw, archive)
    with log_window(emu) as window:
        plan = ws.plan_json(_manifest(ws))
    assert _fields(plan) == (
        "update",
        raw,
        [("parent", f"{_project(ws)}/Archive", _project(ws))],
    )
    assert plan["summary"]["create"] == 0
    calls = Counter(e["path"].rsplit("/", 1)[-1] for e in window)
    # The reader's pages only: the project's (1) and Archive's 323 children (7 pages of 50); the
    # walk lists nothing more. Bundles: Raw's marker (same name, read first) and the project's.
    assert calls["children"] == 8 and calls["bundle2"] == 2, calls
    assert ws.apply(_manifest(ws)).code == 0
    assert lookup(alice, "Raw", project) == raw and _names(alice, raw) == ["a.txt"]
