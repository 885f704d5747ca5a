"""Plans' effective-access consequences and ``policies:`` against the emulator over HTTP.

The summaries' exact wording is pinned by the pure goldens (tests/golden/policy_*, acl_*); here
the CLI reads real state: refusals are located and write nothing (the emulator's state version
is unchanged), strict inheritance removes a hand-made ACL, and the summary is absent once
Synapse matches the manifest.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import Api
from reconcile_support import Workspace, children, lookup, own_acl

from synapse_declare.emulator import Emulator


@pytest.fixture
def ws(emu: Emulator, tmp_path: Path) -> Workspace:
    return Workspace(emu, tmp_path)


def _folder_id(api: Api, project: str, folder: str) -> str:
    project_id = lookup(api, project)
    assert project_id is not None
    found = [c["id"] for c in children(api, project_id) if c["name"] == folder]
    assert found, f"{project}/{folder} does not exist"
    return str(found[0])


def test_policy_refusals_are_located_and_write_nothing(ws: Workspace, emu: Emulator) -> None:
    manifest = ws.manifest(
        """
        version: 1
        policies:
          public_only_under: [Pol refuse/Releases]
          no_user_grants: true
        projects:
          - name: Pol refuse
            acl:
              self: administer
              user:bob: view
            folders:
              - name: Releases
              - name: Raw
                acl:
                  self: administer
                  PUBLIC: view
        """
    )
    before = emu.state_version()
    for command in ("plan", "apply"):
        args = ("--auto-approve",) if command == "apply" else ()
        result = ws.run(command, manifest, *args, *ws.connection())
        assert result.code == 1, result.err
        lines = [line for line in result.err.splitlines() if ": policy " in line]
        assert len(lines) == 2, result.err
        # Each problem at its own entry: user:bob (line 9), PUBLIC (line 15).
        assert re.match(r".*manifest\.yaml:9:\d+: policy no_user_grants: .*user:bob", lines[0])
        assert re.match(r".*manifest\.yaml:15:\d+: policy public_only_under: PUBLIC", lines[1])
        assert "Traceback" not in result.err
    assert emu.state_version() == before


def test_a_plan_within_the_policies_applies(ws: Workspace, alice: Api) -> None:
    manifest = ws.manifest(
        """
        version: 1
        policies:
          public_only_under: [Pol allowed/Releases]
          require_admin_team: team:Lab Admins
        projects:
          - name: Pol allowed
            acl:
              self: administer
              team:Lab Admins: administer
            folders:
              - name: Releases
                acl:
                  self: administer
                  team:Lab Admins: administer
                  PUBLIC: view
        """
    )
    document = ws.plan_json(manifest)
    public = [a for a in document["access_changes"] if a["principal"] == "PUBLIC"]
    assert public == [
        {
            "principal": "PUBLIC",
            "principal_id": 273949,
            "change": "gains",
            "access": ["READ"],
            "count": 1,
            "entities": [{"path": "Pol allowed/Releases", "type": "folder", "id": None}],
        }
    ]
    assert ws.apply(manifest).code == 0
    releases = _folder_id(alice, "Pol allowed", "Releases")
    assert own_acl(alice, releases) is not None


def test_summary_says_who_gains_through_inheritance_and_is_gone_once_applied(
    ws: Workspace,
) -> None:
    base = """
        version: 1
        projects:
          - name: Pol summary
            acl:
              self: administer
{extra}
            folders:
              - name: A
              - name: B
                folders:
                  - name: C
              - name: Closed
                acl:
                  self: administer
        """
    first = ws.manifest(base.format(extra=""))
    assert ws.apply(first).code == 0
    second = ws.manifest(base.format(extra="              team:Curators: download"))
    document = ws.plan_json(second)
    lines = {(a["principal"], a["change"]): a for a in document["access_changes"]}
    curators = lines[("team:Curators", "gains")]
    assert curators["access"] == ["DOWNLOAD", "READ"]
    # The project and the three folders that inherit from it; not Closed (its own ACL).
    assert sorted(e["path"] for e in curators["entities"]) == [
        "Pol summary",
        "Pol summary/A",
        "Pol summary/B",
        "Pol summary/B/C",
    ]
    text = ws.plan(second).out
    assert "team:Curators gains download (DOWNLOAD, READ) on Pol summary and 3 folders" in text
    markdown = ws.plan(second, "--format", "markdown").out
    head = markdown.split("| |")[0]
    assert "**Effective access this plan changes**" in head
    assert ws.apply(second).code == 0
    after = ws.plan_json(second)
    assert "access_changes" not in after and not after["applyable"]
    assert "Effective access" not in ws.plan(second).out


def test_strict_inheritance_removes_a_hand_made_acl(ws: Workspace, alice: Api) -> None:
    ws.manifest(
        """
        version: 1
        projects:
          - name: Pol strict
            acl:
              self: administer
            folders:
              - name: Hand made
                acl:
                  self: administer
                  user:bob: edit
        """,
        "before/manifest.yaml",
    )
    assert ws.apply(ws.root / "before" / "manifest.yaml").code == 0
    strict = ws.manifest(
        """
        version: 1
        policies:
          folders_inherit: strict
        projects:
          - name: Pol strict
            acl:
              self: administer
            folders:
              - name: Hand made
        """
    )
    document = ws.plan_json(strict)
    change = next(c for c in document["changes"] if c["address"].endswith("Hand made"))
    assert change["action"] == "update"
    assert change["fields"] == [{"path": "acl", "before": "(own ACL)", "after": "(inherited)"}]
    bob = [a for a in document["access_changes"] if a["principal"] == "user:bob"]
    assert bob and bob[0]["change"] == "loses"
    assert ws.apply(strict).code == 0
    assert own_acl(alice, _folder_id(alice, "Pol strict", "Hand made")) is None
    assert not ws.plan_json(strict)["applyable"]


@pytest.mark.parametrize(
    ("policies", "expected"),
    [
        (
            "require_admin_team: user:bob",
            r"manifest\.yaml:3:\d+: invalid require_admin_team 'user:bob'",
        ),
        (
            "public_only_under: [Elsewhere/Data]",
            r"manifest\.yaml:3:\d+: public_only_under: 'Elsewhere/Data' is not under a project",
        ),
        ("folders_inherit: always", r"manifest\.yaml:3:\d+: .*folders_inherit"),
        ("no_user_grant: true", r"manifest\.yaml:3:\d+: .*no_user_grant"),
    ],
)
def test_bad_policy_specs_are_located(ws: Workspace, policies: str, expected: str) -> None:
    manifest = ws.manifest(
        f"""
        version: 1
        policies:
          {policies}
        projects:
          - name: Pol bad
        """
    )
    result = ws.run("validate", manifest)
    assert result.code == 1
    assert re.search(expected, result.err), result.err


def test_policies_declared_twice_is_an_error(ws: Workspace) -> None:
    one = "version: 1\npolicies:\n  no_user_grants: true\nprojects:\n  - name: Pol one\n"
    two = "version: 1\npolicies:\n  no_user_grants: false\nprojects:\n  - name: Pol two\n"
    ws.manifest(one, "m/a.yaml")
    ws.manifest(two, "m/b.yaml")
    result = ws.run("validate", ws.root / "m")
    assert result.code == 1
    assert re.search(r"b\.yaml:2:1: policies: is declared twice \(first at .*a\.yaml", result.err)
