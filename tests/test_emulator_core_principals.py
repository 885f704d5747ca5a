"""Emulator behaviour over HTTP: authentication, profiles, bundles, principals, teams.

synapse-api.md §1 and §4.4-4.5.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from emulator_core_support import ANONYMOUS_ID, ERROR, project_body, uniq, user_id

from synapse_declare.emulator import Emulator


@pytest.fixture
def anon(emu: Emulator, api_for: Any) -> Any:
    return api_for(emu, None)


# ---------------------------------------------------------------------------------------------
# Authentication (§1.1)


def test_invalid_token_is_401_with_www_authenticate(emu: Emulator) -> None:
    for path in ("/userProfile", "/entity/syn4489", "/entity/children"):
        response = requests.get(
            emu.repo_endpoint + path, headers={"Authorization": "Bearer not-a-token"}, timeout=10
        )
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="Synapse Repository Services"'
        assert response.json() == {"concreteType": ERROR, "reason": "Invalid access token"}


def test_session_token_header_is_accepted(emu: Emulator) -> None:
    response = requests.get(
        emu.repo_endpoint + "/userProfile", headers={"sessionToken": "bob-token"}, timeout=10
    )
    assert response.status_code == 200
    assert response.json()["userName"] == "bob"


def test_no_token_is_anonymous(anon: Any, alice: Any) -> None:
    profile = anon.ok("GET", "/userProfile")
    assert profile["userName"] == "anonymous"
    assert profile["ownerId"] == str(ANONYMOUS_ID)
    assert "emails" not in profile
    reason = anon.error(403, "POST", "/entity", project_body(uniq()))
    assert reason == "Anonymous users have only READ access permission."
    # Anonymous may read what PUBLIC may read, nothing else.
    project = alice.project(uniq())
    assert anon.error(403, "GET", f"/entity/{project['id']}") == (
        "You lack READ access to the requested entity."
    )
    acl = alice.ok("GET", f"/entity/{project['id']}/acl")
    acl["resourceAccess"].append({"principalId": 273949, "accessType": ["READ"]})
    alice.ok("PUT", f"/entity/{project['id']}/acl", acl)
    assert anon.ok("GET", f"/entity/{project['id']}")["name"] == project["name"]


# ---------------------------------------------------------------------------------------------
# Profiles (§1.2)


def test_own_profile_with_and_without_trailing_slash(emu: Emulator, alice: Any) -> None:
    plain = alice.ok("GET", "/userProfile")
    slash = alice.ok("GET", "/userProfile/")
    assert plain == slash
    assert plain["userName"] == "alice"
    assert plain["ownerId"] == str(user_id(emu, "alice"))
    assert plain["emails"] == ["alice@example.org"]
    assert isinstance(plain["ownerId"], str)


def test_profile_by_id_hides_private_fields_of_others(emu: Emulator, alice: Any) -> None:
    bob_id = user_id(emu, "bob")
    other = alice.ok("GET", f"/userProfile/{bob_id}")
    assert other["userName"] == "bob"
    assert other["ownerId"] == str(bob_id)
    assert "emails" not in other
    mine = alice.ok("GET", f"/userProfile/{user_id(emu, 'alice')}")
    assert mine["emails"] == ["alice@example.org"]


def test_missing_profile_is_404(alice: Any) -> None:
    assert alice.error(404, "GET", "/userProfile/987654321") == (
        "UserProfile cannot be found for: 987654321"
    )


# ---------------------------------------------------------------------------------------------
# User bundles (§1.2 mask bits)


def test_user_bundle_mask_selects_fields(emu: Emulator, alice: Any) -> None:
    alice_id = str(user_id(emu, "alice"))
    assert alice.ok("GET", "/user/bundle", mask=0) == {"userId": alice_id}
    full = alice.ok("GET", "/user/bundle", mask=0x1 | 0x8 | 0x10 | 0x20 | 0x40)
    assert full["userId"] == alice_id
    assert full["userProfile"]["userName"] == "alice"
    assert full["isCertified"] is True
    assert full["isVerified"] is False
    assert full["isACTMember"] is False
    assert full["isARReviewer"] is False
    only_certified = alice.ok("GET", "/user/bundle", mask=0x8)
    assert set(only_certified) == {"userId", "isCertified"}


def test_other_users_bundle(emu: Emulator, alice: Any) -> None:
    carol = alice.ok("GET", f"/user/{user_id(emu, 'carol')}/bundle", mask=0x9)
    assert carol["isCertified"] is False
    assert carol["userProfile"]["userName"] == "carol"
    assert "emails" not in carol["userProfile"]
    bob = alice.ok("GET", f"/user/{user_id(emu, 'bob')}/bundle", mask=0x8)
    assert bob["isCertified"] is True
    assert alice.error(404, "GET", "/user/987654321/bundle", mask=1) == (
        "UserProfile cannot be found for: 987654321"
    )


# ---------------------------------------------------------------------------------------------
# Principals (§4.5)


def test_user_group_headers_prefix_search(emu: Emulator, alice: Any) -> None:
    page = alice.ok("GET", "/userGroupHeaders", prefix="al")
    assert page["prefixFilter"] == "al"
    names = [h["userName"] for h in page["children"]]
    assert "alice" in names
    header = next(h for h in page["children"] if h["userName"] == "alice")
    assert header == {
        "ownerId": str(user_id(emu, "alice")),
        "userName": "alice",
        "isIndividual": True,
    }
    teams = alice.ok("GET", "/userGroupHeaders", prefix="cur", typeFilter="TEAMS_ONLY")
    assert [(h["userName"], h["isIndividual"]) for h in teams["children"]] == [("Curators", False)]
    users_only = alice.ok("GET", "/userGroupHeaders", prefix="cur", typeFilter="USERS_ONLY")
    assert users_only["children"] == []
    # Word-prefix match on team names, offset paging until an empty page (as SPC pages).
    admins = alice.ok("GET", "/userGroupHeaders", prefix="adm")
    assert [h["userName"] for h in admins["children"]] == ["Lab Admins"]
    assert alice.ok("GET", "/userGroupHeaders", prefix="adm", offset=1)["children"] == []


def test_user_group_headers_by_aliases(emu: Emulator, alice: Any) -> None:
    response = alice.ok(
        "POST", "/userGroupHeaders/aliases", {"list": ["Lab Admins", "nobody-here", "bob", "alice"]}
    )
    assert [h["userName"] for h in response["list"]] == ["Lab Admins", "bob", "alice"]
    assert response["list"][0]["isIndividual"] is False
    assert response["list"][1]["ownerId"] == str(user_id(emu, "bob"))
    assert alice.error(400, "POST", "/userGroupHeaders/aliases", {"list": []}) == (
        "Request must include at least one alias."
    )
    too_many = {"list": [f"user{i}" for i in range(101)]}
    assert alice.error(400, "POST", "/userGroupHeaders/aliases", too_many) == (
        "Request exceeds the maximum number of 100 aliases."
    )
    hundred = {"list": ["alice"] + [f"user{i}" for i in range(99)]}
    assert len(alice.ok("POST", "/userGroupHeaders/aliases", hundred)["list"]) == 1


def test_principal_alias_lookup(emu: Emulator, alice: Any) -> None:
    alice_id = user_id(emu, "alice")
    for alias in ("alice", "ALICE", "a.lice", "Ali-ce"):
        found = alice.ok("POST", "/principal/alias", {"alias": alias, "type": "USER_NAME"})
        assert found == {"principalId": alice_id}
    assert (
        alice.error(404, "POST", "/principal/alias", {"alias": "zed", "type": "USER_NAME"})
        == "Alias: 'zed' of type: 'USER_NAME' does not exist"
    )
    assert (
        alice.error(400, "POST", "/principal/alias", {"alias": "Curators", "type": "TEAM_NAME"})
        == "Unsupported alias type TEAM_NAME"
    )


# ---------------------------------------------------------------------------------------------
# Teams (§4.5)


def _team_id(emu: Emulator, name: str) -> str:
    return str(emu.principal_ids[name])


def test_teams_by_fragment_and_id(emu: Emulator, alice: Any) -> None:
    page = alice.ok("GET", "/teams", fragment="cur")
    assert [t["name"] for t in page["results"]] == ["Curators"]
    assert page["totalNumberOfResults"] == 1
    word = alice.ok("GET", "/teams", fragment="admins")
    assert [t["name"] for t in word["results"]] == ["Lab Admins"]
    team = alice.ok("GET", f"/team/{_team_id(emu, 'Curators')}")
    assert team["id"] == _team_id(emu, "Curators")
    assert team["name"] == "Curators"
    assert {"etag", "createdOn", "modifiedOn", "canPublicJoin"} <= set(team)
    assert alice.error(400, "GET", "/teams", fragment="", limit=51)
    assert alice.error(404, "GET", "/team/987654321")


def test_team_members_and_users_teams(emu: Emulator, alice: Any) -> None:
    members = alice.ok("GET", f"/teamMembers/{_team_id(emu, 'Curators')}")
    assert [m["member"]["userName"] for m in members["results"]] == ["alice", "bob"]
    assert all(m["teamId"] == _team_id(emu, "Curators") for m in members["results"])
    alice_teams = alice.ok("GET", f"/user/{user_id(emu, 'alice')}/team", limit=20, offset=0)
    assert sorted(t["name"] for t in alice_teams["results"]) == ["Curators", "Lab Admins"]
    bob_teams = alice.ok("GET", f"/user/{user_id(emu, 'bob')}/team")
    assert [t["name"] for t in bob_teams["results"]] == ["Curators"]
    carol_teams = alice.ok("GET", f"/user/{user_id(emu, 'carol')}/team")
    assert carol_teams["results"] == []
    # SPC's _GET_paginated stops on the first empty page.
    assert alice.ok("GET", f"/user/{user_id(emu, 'bob')}/team", offset=1)["results"] == []


def test_team_membership_grants_access(emu: Emulator, alice: Any, bob: Any) -> None:
    project = alice.project(uniq())
    assert bob.error(403, "GET", f"/entity/{project['id']}")
    acl = alice.ok("GET", f"/entity/{project['id']}/acl")
    acl["resourceAccess"].append(
        {"principalId": int(_team_id(emu, "Curators")), "accessType": ["READ"]}
    )
    alice.ok("PUT", f"/entity/{project['id']}/acl", acl)
    assert bob.ok("GET", f"/entity/{project['id']}")["id"] == project["id"]
