"""Effective-access property: for random trees, ACL placements and team memberships built in
the emulator over HTTP, the engine's answer for every user (and an anonymous visitor) on every
entity equals what that user's own ``GET /entity/{id}/permissions`` says.

Each example: alice makes a project; bob (who first gets CREATE on it) makes some of the
entities, so creatorship varies; two fresh teams get random members (who join themselves, the
teams being open); then random own ACLs — users, the teams, PUBLIC, AUTHENTICATED_USERS, any
entity access types — are placed bottom-up (children first, so alice still holds
CHANGE_PERMISSIONS where she sets them) and the rest inherits. alice keeps READ everywhere (the
reader must see the tree) and CHANGE_PERMISSIONS where Synapse would refuse her losing it.
Random access requirements bind to some entities (and so to everything below them) with random
approvals: alice's the reader reads itself (Synapse shows a user only their own status); the
others' the test knows from the seed and hands to the engine, as an operator could not.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from conftest import Api
from emulator_core_support import FILE, make_file_handle, uniq
from emulator_teams_support import new_team
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synapse_declare.access import (
    NO_PERMISSIONS,
    Principal,
    PrincipalType,
    TargetSpec,
    effective_access,
    read_access_world,
)
from synapse_declare.auth import Credentials, Endpoints
from synapse_declare.client.http import ClientOptions
from synapse_declare.emulator import Emulator, EmulatorConfig, SeedUser
from synapse_declare.emulator.access_requirements import SeedAccessRequirement
from synapse_declare.engine import connect

pytestmark = pytest.mark.property

USERS = [
    SeedUser("alice", "alice-token"),
    SeedUser("bob", "bob-token"),
    SeedUser("carol", "carol-token", certified=False),
    SeedUser("dave", "dave-token"),
]
OTHERS = ["bob", "carol", "dave"]
ACCESS = [
    "READ",
    "DOWNLOAD",
    "CREATE",
    "UPDATE",
    "DELETE",
    "CHANGE_PERMISSIONS",
    "CHANGE_SETTINGS",
    "MODERATE",
]
PUBLIC, AUTHENTICATED = 273949, 273948
FIELDS = {
    "canView": "can_view",
    "canDownload": "can_download",
    "canEdit": "can_edit",
    "canDelete": "can_delete",
    "canChangePermissions": "can_change_permissions",
    "canChangeSettings": "can_change_settings",
    "canAddChild": "can_add_child",
    "canMove": "can_move",
    "canModerate": "can_moderate",
    "canCertifiedUserEdit": "can_certified_user_edit",
    "canCertifiedUserAddChild": "can_certified_user_add_child",
}


@pytest.fixture(scope="module")
def world_emulator(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    from conftest import _log_dir

    log = _log_dir(request.config) / "test_access_property-module.jsonl"
    with Emulator(EmulatorConfig(users=USERS, request_log=log)) as emulator:
        yield emulator


ACCESS_SETS = st.sets(st.sampled_from(ACCESS), min_size=1, max_size=5)


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(min_value=1, max_value=6))
    nodes: list[dict[str, Any]] = []
    for index in range(count):
        containers = [-1] + [i for i, n in enumerate(nodes) if n["type"] == "folder"]
        nodes.append(
            {
                "parent": draw(st.sampled_from(containers)),
                "type": draw(st.sampled_from(["folder", "folder", "file"])),
                "creator": draw(st.sampled_from(["alice", "alice", "bob"])),
                "name": f"n{index}",
            }
        )
    teams = [draw(st.sets(st.sampled_from(OTHERS))) for _ in range(2)]
    # -1 is the project, which always has its own ACL.
    owners = [-1, *sorted(draw(st.sets(st.sampled_from(range(count)))))]
    acls: dict[int, dict[str, set[str]]] = {}
    for owner in owners:
        entries: dict[str, set[str]] = {"alice": {"READ"} | draw(st.sets(st.sampled_from(ACCESS)))}
        for principal in (*OTHERS, "team0", "team1"):
            if draw(st.booleans()):
                entries[principal] = draw(ACCESS_SETS)
        if draw(st.booleans()):
            entries["PUBLIC"] = {"READ"}  # Synapse refuses anything else for PUBLIC
        if draw(st.booleans()):
            entries["AUTHENTICATED_USERS"] = draw(ACCESS_SETS)
        acls[owner] = entries
    requirements = [
        {
            "subject": draw(st.sampled_from([-1, *range(count)])),
            "approved": sorted(draw(st.sets(st.sampled_from(["alice", *OTHERS])))),
        }
        for _ in range(draw(st.integers(min_value=0, max_value=2)))
    ]
    return {"nodes": nodes, "teams": teams, "acls": acls, "requirements": requirements}


def _api(emulator: Emulator, user: str | None) -> Api:
    return Api(emulator, emulator.users[user] if user else None)


def build(
    emulator: Emulator, scenario: dict[str, Any]
) -> tuple[str, list[str], dict[str, frozenset[int]]]:
    apis = {u.user_name: _api(emulator, u.user_name) for u in USERS}
    ids = emulator.principal_ids
    alice = apis["alice"]
    project = alice.project(uniq("Access property"))
    acl = alice.ok("GET", f"/entity/{project['id']}/acl")
    entries = [
        *acl["resourceAccess"],
        {"principalId": ids["bob"], "accessType": ["READ", "CREATE"]},
    ]
    alice.ok("PUT", f"/entity/{project['id']}/acl", {**acl, "resourceAccess": entries})
    entity_ids: list[str] = []
    for node in scenario["nodes"]:
        parent = project["id"] if node["parent"] < 0 else entity_ids[node["parent"]]
        api = apis[node["creator"]]
        if node["type"] == "folder":
            made = api.folder(node["name"], parent)
        else:
            made = api.ok(
                "POST",
                "/entity",
                {
                    "concreteType": FILE,
                    "name": node["name"],
                    "parentId": parent,
                    "dataFileHandleId": make_file_handle(emulator, node["creator"]),
                },
            )
        entity_ids.append(str(made["id"]))
    team_ids = []
    for members in scenario["teams"]:
        team = new_team(alice, canPublicJoin=True)
        for member in sorted(members):
            apis[member].ok("PUT", f"/team/{team['id']}/member/{ids[member]}")
        team_ids.append(int(team["id"]))
    principals = {
        **{u: ids[u] for u in ("alice", *OTHERS)},
        "team0": team_ids[0],
        "team1": team_ids[1],
        "PUBLIC": PUBLIC,
        "AUTHENTICATED_USERS": AUTHENTICATED,
    }
    # Children before parents (highest index first, the project last): alice still holds
    # CHANGE_PERMISSIONS on each benefactor when she replaces it.
    for owner in sorted(scenario["acls"], reverse=True):
        entity_id = project["id"] if owner < 0 else entity_ids[owner]
        granted = {k: set(v) for k, v in scenario["acls"][owner].items()}
        creator = "alice" if owner < 0 else scenario["nodes"][owner]["creator"]
        if creator != "alice":
            granted["alice"].add("CHANGE_PERMISSIONS")  # Synapse: no revoking your own
        body = [
            {"principalId": principals[name], "accessType": sorted(access)}
            for name, access in granted.items()
        ]
        current = alice.call("GET", f"/entity/{entity_id}/acl")
        if current.status_code == 200:
            alice.ok("PUT", f"/entity/{entity_id}/acl", {**current.json(), "resourceAccess": body})
        else:
            alice.ok("POST", f"/entity/{entity_id}/acl", {"resourceAccess": body})
    approvals: dict[str, set[int]] = {u: set() for u in ("alice", *OTHERS)}
    for item in scenario["requirements"]:
        subject = project["id"] if item["subject"] < 0 else entity_ids[item["subject"]]
        name = uniq("AR")[:50]
        made = emulator.add_access_requirements(
            [SeedAccessRequirement(name, (subject,), approved=tuple(item["approved"]))]
        )
        for user in item["approved"]:
            approvals[user].add(made[name])
    known = {user: frozenset(ids) for user, ids in approvals.items()}
    return project["name"], [project["id"], *entity_ids], known


@settings(
    max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "12")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(scenario=scenarios())
def test_engine_equals_each_users_own_permissions(
    world_emulator: Emulator, scenario: dict[str, Any]
) -> None:
    emulator = world_emulator
    project_name, entity_ids, approvals = build(emulator, scenario)
    credentials = Credentials(
        token=emulator.users["alice"],
        source="test",
        endpoints=Endpoints.from_base(emulator.base_url),
    )
    api = connect(credentials, ClientOptions(backoff_factor=0.01))
    try:
        users = [
            Principal(emulator.principal_ids[u], u, PrincipalType.USER) for u in ("alice", *OTHERS)
        ]
        world, stats = read_access_world(api, [TargetSpec(project_name)], users=users)
    finally:
        api.t.close()
    ids = emulator.principal_ids
    if scenario["requirements"]:
        # The reader read alice's own approvals, and only hers.
        assert dict(world.approvals) == {ids["alice"]: approvals["alice"]}
    # The others' approvals, which no API shows alice, come from the seed.
    world = replace(world, approvals={**world.approvals, **{ids[u]: approvals[u] for u in OTHERS}})
    report = effective_access(world, users=users)
    rows = {(r.entity.id, r.principal.id): r for r in report.rows}
    assert sorted(n.id for n in world.nodes) == sorted(entity_ids)
    # One ACL read per benefactor, one listing per container.
    assert stats.acl_reads == len(scenario["acls"])
    folders = sum(1 for n in scenario["nodes"] if n["type"] == "folder")
    assert stats.children_pages == 1 + folders
    for name in ("alice", *OTHERS, None):
        caller = _api(emulator, name)
        principal_id = PUBLIC if name is None else emulator.principal_ids[name]
        for entity_id in entity_ids:
            oracle = caller.ok("GET", f"/entity/{entity_id}/permissions")
            row = rows.get((entity_id, principal_id))
            mine = row.permissions if row is not None else NO_PERMISSIONS
            got = {key: getattr(mine, attr) for key, attr in FIELDS.items()}
            want = {key: oracle[key] for key in FIELDS}
            assert got == want, (name, entity_id, scenario)
