"""``folders_inherit: strict`` on entities the manifest does not declare, against the emulator.

Their own ACLs are removed, each dropped entry listed and the access it takes away in the
summary; apply converges; more removals than --max-deletions are refused before any write; a
saved plan whose ACL changed meanwhile is refused as stale. Strict mode walks the whole project
(as --audit-public), so own ACLs deep below undeclared folders, and on files, are removed too; a
removal the caller lacks CHANGE_PERMISSIONS for is refused at plan time with zero writes; and the
calls strict mode adds are counted. The exact wording is pinned by the pure goldens
``policy_strict_inherit`` and ``policy_strict_deep``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from conftest import Api, read_exchanges
from emulator_core_support import ADMIN_SET, make_file_handle, user_id
from reconcile_support import Workspace, children, log_window, lookup, mutating_exchanges, own_acl

from synapse_declare.emulator import Emulator

BEFORE = """
version: 1
projects:
  - name: {project}
    acl:
      self: administer
      team:Curators: view
    folders:
      - name: Kept
      - name: Stray A
        acl:
          self: administer
          user:bob: edit
      - name: Stray B
        acl:
          self: administer
          PUBLIC: view
"""
STRICT = """
version: 1
policies:
  folders_inherit: strict
projects:
  - name: {project}
    acl:
      self: administer
      team:Curators: view
    folders:
      - name: Kept
"""


@pytest.fixture
def ws(emu: Emulator, tmp_path: Path) -> Workspace:
    return Workspace(emu, tmp_path)


def _setup(ws: Workspace, project: str) -> Path:
    before = ws.manifest(BEFORE.format(project=project), "before/manifest.yaml")
    assert ws.apply(before).code == 0
    return ws.manifest(STRICT.format(project=project))


def _ids(api: Api, project: str) -> dict[str, str]:
    project_id = lookup(api, project)
    assert project_id is not None
    return {str(c["name"]): str(c["id"]) for c in children(api, project_id)}


def test_strict_removes_undeclared_folders_own_acls_and_converges(
    ws: Workspace, alice: Api
) -> None:
    strict = _setup(ws, "Strict stray")
    ids = _ids(alice, "Strict stray")
    document = ws.plan_json(strict)
    removed = {
        c["address"].rsplit(":", 1)[-1]: c
        for c in document["changes"]
        if c["action"] == "update" and c["syn_id"] in (ids["Stray A"], ids["Stray B"])
    }
    assert set(removed) == {"Stray A", "Stray B"}
    fields = {f["path"]: f for f in removed["Stray A"]["fields"]}
    assert fields["acl"] == {"path": "acl", "before": "(own ACL)", "after": "(inherited)"}
    assert fields["acl.user:bob"]["after"] is None  # every dropped entry is shown
    assert "folders_inherit: strict" in removed["Stray A"]["reason"]
    lines = {(a["principal"], a["change"]): a for a in document["access_changes"]}
    assert [e["path"] for e in lines["user:bob", "loses"]["entities"]] == ["Strict stray/Stray A"]
    assert lines["PUBLIC", "loses"]["entities"][0]["path"] == "Strict stray/Stray B"
    assert {e["path"] for e in lines["team:Curators", "gains"]["entities"]} == {
        "Strict stray/Stray A",
        "Strict stray/Stray B",
    }
    assert ws.apply(strict).code == 0
    for name in ("Stray A", "Stray B"):
        assert own_acl(alice, ids[name]) is None  # inherits again
        benefactor = alice.ok("GET", f"/entity/{ids[name]}/benefactor")
        assert benefactor["id"] == lookup(alice, "Strict stray")
    assert _ids(alice, "Strict stray") == ids  # the folders themselves stay
    again = ws.plan_json(strict)
    assert not again["applyable"], again["changes"]
    assert not again.get("access_changes")


def test_strict_over_the_deletion_cap_is_refused_with_zero_writes(
    ws: Workspace, emu: Emulator, alice: Api
) -> None:
    strict = _setup(ws, "Strict capped")
    ids = _ids(alice, "Strict capped")
    before = emu.state_version()
    for command in ("plan", "apply"):
        args = ("--auto-approve",) if command == "apply" else ()
        result = ws.run(command, strict, "--max-deletions", "1", *args, *ws.connection())
        assert result.code == 1, result.err
        assert re.search(
            r"manifest\.yaml:3:\d+: policy folders_inherit: strict would remove the own ACLs "
            r"of 2 folders .*at most 1",
            result.err,
        ), result.err
        assert "--max-deletions 2" in result.err
        assert "Traceback" not in result.err
    assert emu.state_version() == before
    assert own_acl(alice, ids["Stray A"]) is not None
    # Within the cap it goes through.
    assert ws.apply(strict, "--max-deletions", "2").code == 0
    assert own_acl(alice, ids["Stray A"]) is None


def test_a_saved_strict_plan_is_refused_when_the_acl_changed_meanwhile(
    ws: Workspace, alice: Api
) -> None:
    strict = _setup(ws, "Strict stale")
    ids = _ids(alice, "Strict stale")
    saved = ws.root / "plan.json"
    assert ws.plan(strict, "--out", saved).code == 0
    acl = alice.ok("GET", f"/entity/{ids['Stray A']}/acl")
    acl["resourceAccess"].append({"principalId": 273948, "accessType": ["READ"]})
    alice.ok("PUT", f"/entity/{ids['Stray A']}/acl", acl)
    result = ws.run("apply", "--plan", saved, "--auto-approve", *ws.connection())
    assert result.code == 1, result.err
    assert "stale" in result.err and f"acl:{ids['Stray A']}" in result.err
    assert own_acl(alice, ids["Stray A"]) is not None
    assert own_acl(alice, ids["Stray B"]) is not None


@pytest.mark.fault
@pytest.mark.parametrize("seed", [1, 2])
def test_strict_removals_whose_answers_are_lost_converge(
    make_emulator: Any, tmp_path: Path, api_for: Any, seed: int
) -> None:
    """Every call may fail (half of them, after the write took effect or before): each ACL
    delete is resolved by reading the ACL back — gone means done — and the next plan is empty."""
    emulator = make_emulator()
    ws = Workspace(emulator, tmp_path)
    alice: Api = api_for(emulator, "alice")
    strict = _setup(ws, f"Strict faults {seed}")
    ids = _ids(alice, f"Strict faults {seed}")
    emulator.knobs.set_faults(0.5, seed, ["drop-after", "503-after", "500-after", "503-before"])
    result = ws.apply(strict)
    emulator.knobs.set_faults(0.0)
    assert result.code == 0, result.err
    deletes = [
        e
        for e in read_exchanges(emulator)
        if e["method"] == "DELETE" and e["path"].endswith("/acl")
    ]
    assert any(e["status"] != 200 for e in deletes), "no delete met a fault: pick another seed"
    assert own_acl(alice, ids["Stray A"]) is None
    assert own_acl(alice, ids["Stray B"]) is None
    assert ws.plan(strict, "--detailed-exitcode").code == 0


def test_a_pruned_folder_goes_to_the_trash_without_a_separate_acl_removal(
    ws: Workspace, alice: Api
) -> None:
    before = ws.manifest(BEFORE.format(project="Strict prune"), "before/manifest.yaml")
    assert ws.apply(before).code == 0
    pruning = ws.manifest(
        STRICT.format(project="Strict prune").replace(
            "    folders:\n      - name: Kept", "    prune: true\n    folders:\n      - name: Kept"
        )
    )
    document = ws.plan_json(pruning)
    touched = [
        (c["address"].rsplit(":", 1)[-1], c["action"])
        for c in document["changes"]
        if "Stray" in c["address"]
    ]
    assert sorted(touched) == [("Stray A", "delete"), ("Stray B", "delete")]
    assert ws.apply(pruning).code == 0
    assert set(_ids(alice, "Strict prune")) == {"Kept"}
    assert ws.plan(pruning, "--detailed-exitcode").code == 0


DEEP_BEFORE = """
version: 1
projects:
  - name: {project}
    acl:
      self: administer
      team:Curators: view
    folders:
      - name: Data
"""
DEEP_STRICT = DEEP_BEFORE.replace(
    "version: 1\n", "version: 1\npolicies:\n  folders_inherit: strict\n"
)


def _entity(api: Api, name: str, parent: str, concrete: str = "Folder", **extra: Any) -> str:
    body = {"concreteType": f"org.sagebionetworks.repo.model.{concrete}", "name": name}
    return str(api.ok("POST", "/entity", {**body, "parentId": parent, **extra})["id"])


def _give_acl(api: Api, entity_id: str, entries: dict[int, set[str]]) -> None:
    access = [{"principalId": p, "accessType": sorted(a)} for p, a in entries.items()]
    api.ok("POST", f"/entity/{entity_id}/acl", {"id": entity_id, "resourceAccess": access})


def _deep(ws: Workspace, emu: Emulator, alice: Api, project: str) -> tuple[Path, dict[str, str]]:
    """Data (declared) / Raw / Center A (own ACL: PUBLIC view) / Private, a file in Center A,
    and Raw/shared.txt (own ACL: bob downloads): two own ACLs below the children pages."""
    before = ws.manifest(DEEP_BEFORE.format(project=project), "before/manifest.yaml")
    assert ws.apply(before).code == 0
    project_id = lookup(alice, project)
    assert project_id is not None
    data = lookup(alice, "Data", project_id)
    assert data is not None
    ids = {"project": project_id, "Data": data}
    ids["Raw"] = _entity(alice, "Raw", data)
    ids["Center A"] = _entity(alice, "Center A", ids["Raw"])
    me = user_id(emu, "alice")
    _give_acl(alice, ids["Center A"], {me: ADMIN_SET, 273949: {"READ"}})
    ids["Private"] = _entity(alice, "Private", ids["Center A"])
    handle = make_file_handle(emu, "alice")
    ids["notes.txt"] = _entity(
        alice, "notes.txt", ids["Center A"], "FileEntity", dataFileHandleId=handle
    )
    handle = make_file_handle(emu, "alice", file_name="shared.txt")
    ids["shared.txt"] = _entity(
        alice, "shared.txt", ids["Raw"], "FileEntity", dataFileHandleId=handle
    )
    _give_acl(alice, ids["shared.txt"], {me: ADMIN_SET, user_id(emu, "bob"): {"READ", "DOWNLOAD"}})
    return ws.manifest(DEEP_STRICT.format(project=project)), ids


def test_strict_removes_deep_own_acls_on_folders_and_files_and_converges(
    ws: Workspace, emu: Emulator, alice: Api, bob: Api
) -> None:
    strict, ids = _deep(ws, emu, alice, "Strict deep")
    document = ws.plan_json(strict)
    removed = {c["syn_id"]: c for c in document["changes"] if c["action"] == "update"}
    assert set(removed) == {ids["Center A"], ids["shared.txt"]}
    center, shared = removed[ids["Center A"]], removed[ids["shared.txt"]]
    assert center["resource"] == "folder" and shared["resource"] == "entity"
    assert center["address"] == "project:Strict deep/folder:Data/folder:Raw/folder:Center A"
    assert shared["address"] == "project:Strict deep/folder:Data/folder:Raw/entity:shared.txt"
    assert "2 entities below inherit from it" in center["reason"]  # Private and notes.txt
    assert document["audit_public"] is True  # the walk ran; a saved plan remembers it
    (exposure,) = document["public_access"]
    assert ids["Center A"] in exposure and "removed by this plan" in exposure
    lines = {(a["principal"], a["change"]): a for a in document["access_changes"]}
    lost = {e["path"] for e in lines["PUBLIC", "loses"]["entities"]}
    assert lost == {f"Strict deep/Data/Raw/Center A{p}" for p in ("", "/Private", "/notes.txt")}
    assert [e["path"] for e in lines["user:bob", "loses"]["entities"]] == [
        "Strict deep/Data/Raw/shared.txt"
    ]
    assert bob.call("GET", f"/entity/{ids['shared.txt']}").status_code == 200
    assert ws.apply(strict).code == 0
    project = ids["project"]
    for name in ("Center A", "Private", "notes.txt", "shared.txt"):
        benefactor = alice.ok("GET", f"/entity/{ids[name]}/benefactor")
        assert benefactor["id"] == project, name  # all inherit the project's ACL now
    assert own_acl(alice, ids["Center A"]) is None and own_acl(alice, ids["shared.txt"]) is None
    assert bob.ok("GET", f"/entity/{ids['shared.txt']}/permissions")["canDownload"] is False
    again = ws.plan_json(strict)
    assert not again["applyable"], again["changes"]
    assert not again.get("public_access") and not again.get("access_changes")


def test_a_strict_removal_without_change_permissions_is_refused_with_zero_writes(
    ws: Workspace, emu: Emulator, alice: Api, bob: Api
) -> None:
    """bob administers "Shared" (alice's), makes "Bob's" below it with an ACL that lets alice
    only view it: alice can read that ACL, not delete it — plan refuses, located at the policy,
    having read the permissions of the four removal targets only, and written nothing."""
    strict, ids = _deep(ws, emu, alice, "Strict unpermitted")
    me, bob_id = user_id(emu, "alice"), user_id(emu, "bob")
    shared = _entity(alice, "Shared", ids["Data"])
    _give_acl(alice, shared, {me: ADMIN_SET, bob_id: ADMIN_SET})
    bobs = _entity(bob, "Bob's", shared)
    _give_acl(bob, bobs, {bob_id: ADMIN_SET, me: {"READ"}})
    before = emu.state_version()
    with log_window(emu) as window:
        result = ws.plan(strict)
    assert result.code == 1, result.err
    assert re.search(
        r"manifest\.yaml:3:\d+: policy folders_inherit: strict would remove the own ACL of "
        rf"Strict unpermitted/Data/Shared/Bob's \({bobs}\), and you \(alice\) lack "
        r"CHANGE_PERMISSIONS",
        result.err,
    ), result.err
    assert "Traceback" not in result.err
    assert emu.state_version() == before
    assert mutating_exchanges(window) == []
    asked = [e["path"] for e in window if e["path"].endswith("/bundle2")]
    # The project's own bundle, then one permissions bundle per removal target.
    targets = {ids["project"], ids["Center A"], ids["shared.txt"], shared, bobs}
    assert sorted(asked) == sorted(f"/repo/v1/entity/{t}/bundle2" for t in targets)
    assert own_acl(alice, bobs) is not None


def test_strict_plans_pay_for_the_walk_only(ws: Workspace, emu: Emulator, alice: Api) -> None:
    """Against the same tree, a strict plan adds exactly: one children listing per folder the
    plain plan does not list (Data, which declares no folders; Raw, Center A, Private), one ACL
    read per own ACL the walk finds (Center A, shared.txt), one permissions bundle per removal
    target, and one batch of names for the principals in the ACLs it removes (bob)."""
    strict, _ = _deep(ws, emu, alice, "Strict counted")
    plain = ws.manifest(DEEP_BEFORE.format(project="Strict counted"), "plain/manifest.yaml")
    counts = {}
    for name, manifest in (("plain", plain), ("strict", strict)):
        with log_window(emu) as window:
            assert ws.plan(manifest).code in (0, 2)
        counts[name] = window
    plain_calls, strict_calls = counts["plain"], counts["strict"]

    def kinds(window: list[dict[str, Any]]) -> dict[str, int]:
        tally: dict[str, int] = {}
        for e in window:
            path = re.sub(r"syn\d+", "{id}", e["path"])
            key = f"{e['method']} {path}"
            tally[key] = tally.get(key, 0) + 1
        return tally

    plain_kinds, strict_kinds = kinds(plain_calls), kinds(strict_calls)
    extra = {
        k: strict_kinds.get(k, 0) - plain_kinds.get(k, 0)
        for k in set(plain_kinds) | set(strict_kinds)
        if strict_kinds.get(k, 0) != plain_kinds.get(k, 0)
    }
    assert extra == {
        "POST /repo/v1/entity/children": 4,
        "GET /repo/v1/entity/{id}/acl": 2,
        "POST /repo/v1/entity/{id}/bundle2": 2,
        "GET /repo/v1/userGroupHeaders/batch": 1,
    }, (extra, plain_kinds, strict_kinds)
    assert len(strict_calls) - len(plain_calls) == 9
