"""Declared teams against the emulator over HTTP: creation, adoption, invitations, direct adds
after a request, acceptance as the invitee (their own token), expiry, removal, invitation
cancel, and the guards (last manager, own management, removal cap, unknown users collected)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import USERS, Api, _log_dir
from emulator_core_support import uniq
from emulator_teams_support import iso
from reconcile_support import Workspace, actionable, actions

from synapse_declare.emulator import Emulator, EmulatorConfig, SeedUser

EXTRA = [SeedUser("dave", "dave-token"), SeedUser("erin", "erin-token")]


@pytest.fixture(scope="module")
def temu(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    log = _log_dir(request.config) / "test_teams-module.jsonl"
    emulator = Emulator(EmulatorConfig(users=[*USERS, *EXTRA], request_log=log)).start()
    yield emulator
    emulator.stop()


@pytest.fixture
def ws(temu: Emulator, tmp_path: Path) -> Workspace:
    return Workspace(temu, tmp_path)


def as_user(emu: Emulator, user: str) -> Api:
    return Api(emu, emu.users[user])


def uid(emu: Emulator, user: str) -> int:
    return emu.principal_ids[user]


def team_manifest(ws: Workspace, name: str, body: str, extra: str = "") -> Path:
    return ws.manifest(f"version: 1\nteams:\n  - name: {name}\n{body}{extra}")


def team_id(api: Api, name: str) -> str:
    headers = api.ok("POST", "/userGroupHeaders/aliases", {"list": [name]})["list"]
    assert len(headers) == 1 and not headers[0]["isIndividual"]
    return str(headers[0]["ownerId"])


def members(api: Api, tid: str) -> dict[str, bool]:
    page = api.ok("GET", f"/teamMembers/{tid}", limit=50)["results"]
    return {m["member"]["userName"]: m["isAdmin"] for m in page}


def invitations(api: Api, tid: str) -> dict[int, dict[str, Any]]:
    page = api.ok("GET", f"/team/{tid}/openInvitation", limit=50)["results"]
    return {int(i["inviteeId"]): i for i in page}


def accept(emu: Emulator, user: str, tid: str) -> None:
    """The invitee accepts through REST with their own token (``PUT /team/{id}/member/{ownId}``)."""
    as_user(emu, user).ok("PUT", f"/team/{tid}/member/{uid(emu, user)}")


def request_to_join(emu: Emulator, user: str, tid: str) -> None:
    as_user(emu, user).ok(
        "POST", "/membershipRequest", {"teamId": tid, "userId": str(uid(emu, user))}
    )


def saved_changes(ws: Workspace, manifest: Path) -> dict[str, dict[str, Any]]:
    """The plan file's changes by address (with the applier payloads ``plan --json`` omits)."""
    out = ws.root / "saved-plan.json"
    result = ws.plan(manifest, "--out", str(out))
    assert result.code == 0, result.both
    return {c["address"]: c for c in json.loads(out.read_text())["changes"]}


def applied(ws: Workspace, manifest: Path, *args: str) -> None:
    result = ws.apply(manifest, *args)
    assert result.code == 0, result.both


def test_create_invite_accept_then_no_drift(ws: Workspace, temu: Emulator) -> None:
    name = uniq("Center")
    m = team_manifest(
        ws, name, "    description: Center A\n    managers: [self]\n    members: [user:bob]\n"
    )
    plan = ws.plan_json(m)
    assert actionable(plan) == {
        f"team:{name}": "create",
        f"team:{name}/member:bob": "create",
    }
    text = ws.plan(m)
    assert "invited (expires in 30 days)" in text.out and "invited until 20" in text.out
    applied(ws, m)
    alice = as_user(temu, "alice")
    tid = team_id(alice, name)
    assert members(alice, tid) == {"alice": True}
    pending = invitations(alice, tid)
    assert list(pending) == [uid(temu, "bob")] and pending[uid(temu, "bob")]["expiresOn"]
    # A pending invitation is not drift: nothing to do, and no second invitation.
    again = ws.plan_json(m)
    assert actionable(again) == {}
    assert actions(again)[f"team:{name}/member:bob"] == "no-op"
    accept(temu, "bob", tid)
    assert members(alice, tid) == {"alice": True, "bob": False}
    assert actionable(ws.plan_json(m)) == {}
    assert ws.plan(m, "--detailed-exitcode").code == 0


def test_direct_add_after_request_and_make_manager(ws: Workspace, temu: Emulator) -> None:
    name = uniq("Center")
    m = team_manifest(ws, name, "    managers: [self]\n")
    applied(ws, m)
    alice = as_user(temu, "alice")
    tid = team_id(alice, name)
    request_to_join(temu, "carol", tid)
    request_to_join(temu, "dave", tid)
    m = team_manifest(ws, name, "    managers: [self, user:carol]\n    members: [user:dave]\n")
    changes = saved_changes(ws, m)
    assert changes[f"team:{name}/member:carol"]["desired"]["op"] == "add"
    assert changes[f"team:{name}/member:dave"]["desired"]["op"] == "add"
    applied(ws, m)
    assert members(alice, tid) == {"alice": True, "carol": True, "dave": False}
    assert invitations(alice, tid) == {}
    assert actionable(ws.plan_json(m)) == {}


def test_expired_invitation_is_sent_again(ws: Workspace, temu: Emulator) -> None:
    name = uniq("Center")
    m = team_manifest(ws, name, "    managers: [self]\n")
    applied(ws, m)
    alice = as_user(temu, "alice")
    tid = team_id(alice, name)
    # An invitation that has already expired is not open: Synapse no longer lists it.
    alice.ok(
        "POST",
        "/membershipInvitation",
        {"teamId": tid, "inviteeId": str(uid(temu, "erin")), "expiresOn": iso(-timedelta(days=1))},
    )
    assert invitations(alice, tid) == {}
    m = team_manifest(ws, name, "    managers: [self]\n    members: [user:erin]\n")
    change = saved_changes(ws, m)[f"team:{name}/member:erin"]
    assert (change["action"], change["desired"]["op"]) == ("create", "invite")
    applied(ws, m)
    assert list(invitations(alice, tid)) == [uid(temu, "erin")]
    assert actionable(ws.plan_json(m)) == {}


def test_removal_and_invitation_cancel(ws: Workspace, temu: Emulator) -> None:
    name = uniq("Center")
    alice = as_user(temu, "alice")
    m = team_manifest(ws, name, "    managers: [self]\n    members: [user:bob, user:carol]\n")
    applied(ws, m)
    tid = team_id(alice, name)
    accept(temu, "bob", tid)
    m = team_manifest(ws, name, "    managers: [self]\n")
    changes = saved_changes(ws, m)
    assert changes[f"team:{name}/member:bob"]["desired"]["op"] == "remove"
    assert changes[f"team:{name}/member:carol"]["desired"]["op"] == "cancel_invitation"
    assert {changes[f"team:{name}/member:{u}"]["action"] for u in ("bob", "carol")} == {"delete"}
    applied(ws, m)
    assert members(alice, tid) == {"alice": True}
    assert invitations(alice, tid) == {}
    assert actionable(ws.plan_json(m)) == {}


def test_additive_never_removes(ws: Workspace, temu: Emulator) -> None:
    name = uniq("Center")
    alice = as_user(temu, "alice")
    applied(ws, team_manifest(ws, name, "    managers: [self]\n    members: [user:bob]\n"))
    tid = team_id(alice, name)
    accept(temu, "bob", tid)
    m = team_manifest(ws, name, "    managers: [self]\n    membership: additive\n")
    assert actionable(ws.plan_json(m)) == {}


def test_guards_own_management_last_manager_and_cap(ws: Workspace, temu: Emulator) -> None:
    name = uniq("Center")
    alice = as_user(temu, "alice")
    m = team_manifest(
        ws, name, "    managers: [self]\n    members: [user:bob, user:carol, user:dave]\n"
    )
    applied(ws, m)
    tid = team_id(alice, name)
    for user in ("bob", "carol", "dave"):
        accept(temu, user, tid)
    # The operator may not drop their own management (and the team would have no manager).
    own = team_manifest(
        ws, name, "    managers: [user:bob]\n    members: [user:carol, user:dave]\n"
    )
    result = ws.plan(own)
    assert result.code == 1, result.both
    assert "remove your own management" in result.err
    assert f"{own}:3:" in result.err  # located at the team's name
    # Removing three members is over a cap of 2: refused before any write.
    before = members(alice, tid)
    few = team_manifest(ws, name, "    managers: [self]\n")
    capped = ws.apply(few, "--max-removals", "2")
    assert capped.code == 1 and "more than the cap of 2" in capped.err, capped.both
    assert "--max-removals 3" in capped.err
    assert members(alice, tid) == before
    applied(ws, few, "--max-removals", "3")
    assert members(alice, tid) == {"alice": True}


def test_unknown_users_are_collected_and_located(ws: Workspace, temu: Emulator) -> None:
    m = ws.manifest(
        f"""
        version: 1
        teams:
          - name: {uniq("Center")}
            managers: [self, user:nobody-here]
            members: [user:bob, user:ghost-user, "999999999"]
        projects:
          - name: {uniq("P")}
            acl:
              user:also-missing: view
        """
    )
    result = ws.plan(m)
    assert result.code == 1, result.both
    for needle in ("user:nobody-here", "user:ghost-user", "999999999", "user:also-missing"):
        assert needle in result.err
    assert f"{m}:4:" in result.err and f"{m}:5:" in result.err and f"{m}:9:" in result.err
    assert "Traceback" not in result.both


def test_team_in_acl_is_created_first_and_granted(ws: Workspace, temu: Emulator) -> None:
    team, project = uniq("Center"), uniq("P")
    m = ws.manifest(
        f"""
        version: 1
        teams:
          - name: {team}
            managers: [self]
        projects:
          - name: {project}
            acl:
              self: administer
              team:{team}: edit
        """
    )
    plan = ws.plan_json(m)
    changes = {c["address"]: c for c in plan["changes"]}
    assert f"team:{team}" in changes[f"project:{project}"]["depends_on"]
    applied(ws, m)
    alice = as_user(temu, "alice")
    tid = int(team_id(alice, team))
    pid = alice.ok("POST", "/entity/child", {"entityName": project})["id"]
    acl = alice.ok("GET", f"/entity/{pid}/acl")
    assert tid in {e["principalId"] for e in acl["resourceAccess"]}
    assert actionable(ws.plan_json(m)) == {}


def test_existing_team_is_adopted_not_duplicated(ws: Workspace, temu: Emulator) -> None:
    name = uniq("Center")
    bob = as_user(temu, "bob")
    created = bob.ok("POST", "/team", {"name": name, "description": "by hand"})
    # bob makes alice a manager (she asked to join, so he can add her directly).
    request_to_join(temu, "alice", created["id"])
    bob.ok("PUT", f"/team/{created['id']}/member/{uid(temu, 'alice')}")
    bob.ok("PUT", f"/team/{created['id']}/member/{uid(temu, 'alice')}/permission", isAdmin="true")
    m = team_manifest(ws, name, "    description: declared\n    managers: [self, user:bob]\n")
    plan = ws.plan_json(m)
    assert actionable(plan) == {f"team:{name}": "adopt"}
    assert "= team" in ws.plan(m).out
    applied(ws, m)
    alice = as_user(temu, "alice")
    assert team_id(alice, name) == created["id"]
    assert alice.ok("GET", f"/team/{created['id']}")["description"] == "declared"
    assert actionable(ws.plan_json(m)) == {}


def test_saved_plan_is_stale_after_membership_changes(ws: Workspace, temu: Emulator) -> None:
    name = uniq("Center")
    m = team_manifest(ws, name, "    managers: [self]\n    members: [user:bob]\n")
    applied(ws, m)
    tid = team_id(as_user(temu, "alice"), name)
    out = ws.root / "plan.json"
    m2 = team_manifest(ws, name, "    managers: [self]\n")
    assert ws.plan(m2, "--out", str(out)).code == 0
    accept(temu, "bob", tid)
    result = ws.run("apply", "--plan", str(out), "--auto-approve", *ws.connection())
    assert result.code == 1 and "changed since the plan was made" in result.err, result.both
    assert json.loads(out.read_text())["changes"]


def test_outputs_list_team_ids_by_name(ws: Workspace, temu: Emulator) -> None:
    name, later = uniq("Center"), uniq("Center")
    applied(ws, team_manifest(ws, name, "    managers: [self]\n"))
    m = ws.manifest(
        f"version: 1\nteams:\n  - name: {name}\n    managers: [self]\n"
        f"  - name: {later}\n    managers: [self]\n"
    )
    result = ws.run("output", m, "--format", "json", *ws.connection())
    assert result.code == 0, result.both
    tid = team_id(as_user(temu, "alice"), name)
    assert json.loads(result.out)["teams"] == {name: tid, later: None}
    env = ws.run("output", m, "--format", "env", *ws.connection())
    key = "SYNAPSE_TEAM_" + name.upper().replace(" ", "_")
    assert f"{key}={tid}\n" in env.out, env.both


def test_export_hook_declares_the_live_team(ws: Workspace, temu: Emulator) -> None:
    """Issue 14's export: live team state → the teams: entry that declares it (a pending
    invitee counts as a member), and that entry plans as no change."""
    import yaml

    from synapse_declare.auth import Credentials, Endpoints
    from synapse_declare.engine import connect
    from synapse_declare.plan import Resource
    from synapse_declare.resources import registry
    from synapse_declare.resources.base import Operation
    from synapse_declare.resources.team import TeamKind
    from synapse_declare.state import read_state
    from synapse_declare.validate import validate_paths

    name = uniq("Center")
    m = team_manifest(
        ws,
        name,
        "    description: exported\n    managers: [self]\n    members: [user:bob, user:carol]\n",
    )
    applied(ws, m)
    accept(temu, "bob", team_id(as_user(temu, "alice"), name))
    report = validate_paths([str(m)])
    assert report.manifest is not None
    api = connect(Credentials(temu.users["alice"], "test", Endpoints.from_base(temu.base_url)))
    try:
        live = read_state(api, report.manifest)
    finally:
        api.t.close()
    kind = registry.require(Resource.TEAM, Operation.EXPORT)
    assert isinstance(kind, TeamKind)
    team = live.teams.teams[f"team:{name}"]
    assert team is not None
    entry = kind.export(team, live.teams.names, live.target.user_id)
    assert entry == {
        "name": name,
        "description": "exported",
        "managers": ["self"],
        "members": ["user:bob", "user:carol"],
    }
    exported = ws.manifest(yaml.safe_dump({"version": 1, "teams": [entry]}), "exported.yaml")
    assert actionable(ws.plan_json(exported)) == {}


def test_an_existing_team_you_do_not_manage_is_refused(ws: Workspace, temu: Emulator) -> None:
    name = uniq("Center")
    as_user(temu, "bob").ok("POST", "/team", {"name": name})
    m = team_manifest(ws, name, "    managers: [self]\n")
    result = ws.plan(m)
    assert result.code == 1, result.both
    assert f"{m}:3:" in result.err and "you are not one of its managers" in result.err
    teams = as_user(temu, "alice").ok("GET", "/teams", fragment=name, limit=10)["results"]
    assert len(teams) == 1


def test_a_saved_plan_with_invitations_applies_later(ws: Workspace, temu: Emulator) -> None:
    """The invitation's expiry moves with the time of planning; the saved plan still matches a
    fresh one (it is compared on what changes, not on the clock) and applies its own expiry."""
    name = uniq("Center")
    m = team_manifest(ws, name, "    managers: [self]\n    members: [user:bob, user:carol]\n")
    out = ws.root / "reviewed.json"
    assert ws.plan(m, "--out", str(out)).code == 0
    saved = json.loads(out.read_text())
    expiry = next(c for c in saved["changes"] if c["address"].endswith("/member:bob"))
    # Expiries have one-second resolution: let the clock move on, so an apply that re-planned at
    # its own moment (instead of the saved plan's) would send a different expiry.
    time.sleep(1.1)
    result = ws.run("apply", "--plan", str(out), "--auto-approve", *ws.connection())
    assert result.code == 0, result.both
    alice = as_user(temu, "alice")
    pending = invitations(alice, team_id(alice, name))
    assert pending[uid(temu, "bob")]["expiresOn"] == expiry["desired"]["expires_on"]
    assert sorted(pending) == sorted([uid(temu, "bob"), uid(temu, "carol")])
