"""``folders_inherit: strict`` on folders the manifest does not declare, against the emulator.

Their own ACLs (in the children pages the plan reads) are removed, each dropped entry listed and
the access it takes away in the summary; apply converges; more removals than --max-deletions are
refused before any write; a saved plan whose ACL changed meanwhile is refused as stale. The exact
wording is pinned by the pure golden ``policy_strict_inherit``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from conftest import Api, read_exchanges
from reconcile_support import Workspace, children, lookup, own_acl

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
