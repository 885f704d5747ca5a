"""Emulator behaviour over HTTP: teams, members, invitations, requests, team ACL (api-2 §1).

Each test makes its own uniquely named teams in the module's emulator. alice and bob are
certified, carol is not; the seeded teams are "Lab Admins" (alice) and "Curators" (alice, bob).
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import Api, conforms
from emulator_core_support import folder_body, uniq, user_id
from emulator_teams_support import invite, iso, member_names, new_team

from synapse_declare.emulator import Emulator, EmulatorConfig, SeedTeam, SeedUser

AUTHENTICATED = 273948
ADMIN_PERMS = ["DELETE", "READ", "SEND_MESSAGE", "TEAM_MEMBERSHIP_UPDATE", "UPDATE"]
MESSENGER = ["READ", "SEND_MESSAGE"]
MODEL = "org.sagebionetworks.repo.model."


# ---------------------------------------------------------------------------------------------
# Create, get, update, delete (§1.5)


def test_create_team_creator_is_admin_member_with_initial_acl(emu: Emulator, alice: Api) -> None:
    name = uniq("Team")
    response = alice.call("POST", "/team", {"name": name, "description": "d", "icon": None})
    assert response.status_code == 201
    team = response.json()
    alice_id = str(user_id(emu, "alice"))
    assert conforms(MODEL + "Team", team) == []
    assert team["name"] == name and team["description"] == "d"
    assert (team["canPublicJoin"], team["canRequestMembership"]) == (False, True)
    assert team["createdBy"] == team["modifiedBy"] == alice_id
    assert team["createdOn"] == team["modifiedOn"]
    assert alice.ok("GET", f"/team/{team['id']}") == team
    assert member_names(alice, team["id"]) == [("alice", True)]
    acl = alice.ok("GET", f"/team/{team['id']}/acl")
    assert conforms(MODEL + "AccessControlList", acl) == []
    assert acl["id"] == team["id"]
    assert {e["principalId"]: sorted(e["accessType"]) for e in acl["resourceAccess"]} == {
        int(alice_id): ADMIN_PERMS,
        int(team["id"]): MESSENGER,
        AUTHENTICATED: MESSENGER,
    }
    # The team is a principal: alias lookups and the user's teams see it at once.
    headers = alice.ok("POST", "/userGroupHeaders/aliases", {"list": [name]})["list"]
    assert [(h["ownerId"], h["isIndividual"]) for h in headers] == [(team["id"], False)]
    mine = alice.ok("GET", f"/user/{alice_id}/team", limit=50)["results"]
    assert team["id"] in [t["id"] for t in mine]


def test_create_validation_order_and_texts(alice: Api, api_for: Any, emu: Emulator) -> None:
    anonymous = api_for(emu, None)
    assert anonymous.error(403, "POST", "/team", {"name": uniq("Team")}) == (
        "Anonymous user cannot create Team."
    )
    assert alice.error(400, "POST", "/team", {"name": uniq("T"), "id": "1", "createdBy": "1"}) == (
        "'createdBy' field is not user specifiable."
    )
    assert alice.error(400, "POST", "/team", {"name": uniq("T"), "etag": "x"}) == (
        "'etag' field is not user specifiable."
    )
    assert alice.error(400, "POST", "/team", {"description": "no name"}) == (
        "'name' field is required."
    )
    taken = new_team(alice)["name"]
    # One alias namespace, case- and punctuation-insensitive, shared with user names.
    assert alice.error(409, "POST", "/team", {"name": taken.upper().replace(" ", "-")}) == (
        f"Name {taken.upper().replace(' ', '-')} is already used."
    )
    assert alice.error(409, "POST", "/team", {"name": "ALICE"}) == "Name ALICE is already used."
    syntax = (
        "Team names can only contain letters, numbers, spaces, dot (.), dash (-), underscore (_) "
        "and must be at least 3 characters long. Value="
    )
    assert alice.error(400, "POST", "/team", {"name": "ab"}) == syntax + "ab"
    assert alice.error(400, "POST", "/team", {"name": "Lab+Team!"}) == syntax + "Lab+Team!"
    name = uniq("Team")
    assert alice.error(
        400, "POST", "/team", {"name": name, "canPublicJoin": True, "canRequestMembership": True}
    ) == ("It is a conflict to set both canPublicJoin and canRequestMembership to true.")
    # All or nothing: the failed create left neither the team nor its name behind.
    assert alice.ok("GET", "/teams", fragment=name)["results"] == []
    assert new_team(alice, name=name)["name"] == name


def test_team_state_normalisation(alice: Api) -> None:
    public = new_team(alice, canPublicJoin=True)
    assert (public["canPublicJoin"], public["canRequestMembership"]) == (True, False)
    closed = new_team(alice, canRequestMembership=False)
    assert (closed["canPublicJoin"], closed["canRequestMembership"]) == (False, False)
    both_null = new_team(alice, canPublicJoin=None, canRequestMembership=None)
    assert (both_null["canPublicJoin"], both_null["canRequestMembership"]) == (False, True)


def test_get_team_missing_and_icon_rule(alice: Api) -> None:
    assert alice.error(404, "GET", "/team/987654321") == "Team id: '987654321' does not exist"
    assert alice.error(403, "POST", "/team", {"name": uniq("Team"), "icon": "1"}) == (
        "Only the user that uploaded the file can set it as the team icon."
    )


def test_update_team(emu: Emulator, alice: Api, bob: Api) -> None:
    team = new_team(alice, description="first")
    assert bob.error(403, "PUT", "/team", {**team, "description": "x"}) == (
        f"Unauthorized to access Team {team['id']} for UPDATE"
    )
    assert alice.error(400, "PUT", "/team", {**team, "etag": None}) == "'etag' field is missing."
    assert alice.error(400, "PUT", "/team", {**team, "id": None}) == "'id' field is missing."
    assert alice.error(400, "PUT", "/team", {**team, "name": None}) == "'name' field is required."
    new_name = uniq("Renamed")
    body = {k: v for k, v in team.items() if k != "description"}
    updated = alice.ok(
        "PUT", "/team", {**body, "name": new_name, "canRequestMembership": False, "createdBy": "1"}
    )
    assert conforms(MODEL + "Team", updated) == []
    assert updated["name"] == new_name
    assert "description" not in updated  # the body replaces the team: omitted is cleared
    assert (updated["canPublicJoin"], updated["canRequestMembership"]) == (False, False)
    assert updated["createdBy"] == team["createdBy"]  # kept from storage
    assert updated["etag"] != team["etag"]
    assert alice.error(412, "PUT", "/team", {**updated, "etag": team["etag"]}) == (
        "Use profile was updated since you last fetched it, retrieve it again and reapply the "
        "update."
    )
    # The old name is free again; the new one is taken.
    assert new_team(alice, name=team["name"])["name"] == team["name"]
    assert alice.error(409, "POST", "/team", {"name": new_name}) == (
        f"Name {new_name} is already used."
    )


def test_delete_team(emu: Emulator, alice: Api, bob: Api, project: dict[str, Any]) -> None:
    assert alice.call("DELETE", "/team/987654321").status_code == 204
    team = new_team(alice)
    assert bob.error(403, "DELETE", f"/team/{team['id']}") == (
        f"Unauthorized to access Team {team['id']} for DELETE"
    )
    acl = alice.ok("GET", f"/entity/{project['id']}/acl")
    shared = {
        **acl,
        "resourceAccess": [
            *acl["resourceAccess"],
            {"principalId": int(team["id"]), "accessType": ["READ"]},
        ],
    }
    acl = alice.ok("PUT", f"/entity/{project['id']}/acl", shared)
    assert alice.error(400, "DELETE", f"/team/{team['id']}") == (
        f"Can't delete the team {team['name']} (ID: {team['id']}), most likely because it is "
        "referenced by a submission, or an entity is shared with it. Contact the administrator "
        "of the submission queue to delete the submission, or unshare the entity."
    )
    unshared = [e for e in acl["resourceAccess"] if e["principalId"] != int(team["id"])]
    alice.ok("PUT", f"/entity/{project['id']}/acl", {**acl, "resourceAccess": unshared})
    assert alice.call("DELETE", f"/team/{team['id']}").status_code == 204
    assert alice.error(404, "GET", f"/team/{team['id']}")
    assert alice.ok("GET", f"/teamMembers/count/{team['id']}") == {"count": 0}
    # Its name is free again.
    assert new_team(alice, name=team["name"])["id"] != team["id"]


# ---------------------------------------------------------------------------------------------
# Listings


def test_list_teams_paging_and_fragment(alice: Api) -> None:
    tag = uniq("Zq").split()[1]
    made = [new_team(alice, name=f"Paging {tag} {i}") for i in range(3)]
    page = alice.ok("GET", "/teams", fragment=f"paging {tag}", limit=2)
    assert [t["id"] for t in page["results"]] == [made[0]["id"], made[1]["id"]]
    assert page["totalNumberOfResults"] == 3  # estimated: offset + page + 1 when full
    rest = alice.ok("GET", "/teams", fragment=f"paging {tag}", limit=2, offset=2)
    assert [t["id"] for t in rest["results"]] == [made[2]["id"]]
    assert rest["totalNumberOfResults"] == 3
    everything = alice.ok("GET", "/teams", limit=50)["results"]
    ids = [int(t["id"]) for t in everything]
    assert ids == sorted(ids)  # no fragment: all teams by id
    for bad in (0, 51):
        assert alice.error(400, "GET", "/teams", limit=bad) == "limit must be between 1 and 50"
    assert alice.error(400, "GET", "/teams", offset=-1) == "'offset' may not be negative"
    team_list = alice.ok("POST", "/teamList", {"list": [made[2]["id"], made[0]["id"]]})
    assert team_list["concreteType"] == MODEL + "Team"
    assert [t["id"] for t in team_list["list"]] == [made[2]["id"], made[0]["id"]]
    assert alice.error(404, "POST", "/teamList", {"list": [987654321]}) == (
        "Team with id 987654321 not found"
    )


def test_members_paging_fragment_type_and_count(emu: Emulator, alice: Api, bob: Api) -> None:
    team = new_team(alice, canPublicJoin=True)
    tid = team["id"]
    bob.ok("PUT", f"/team/{tid}/member/{user_id(emu, 'bob')}")
    assert member_names(alice, tid) == [("alice", True), ("bob", False)]
    assert member_names(alice, tid, memberType="ADMIN") == [("alice", True)]
    assert member_names(alice, tid, memberType="MEMBER") == [("bob", False)]
    assert member_names(alice, tid, fragment="bo") == [("bob", False)]
    first = alice.ok("GET", f"/teamMembers/{tid}", limit=1)
    assert first["totalNumberOfResults"] == 2
    assert alice.error(400, "GET", f"/teamMembers/{tid}", limit=51) == (
        "limit must be between 1 and 50"
    )
    assert alice.error(404, "GET", "/teamMembers/987654321") == (
        "Team id: '987654321' does not exist"
    )
    assert alice.ok("GET", f"/teamMembers/count/{tid}") == {"count": 2}
    assert alice.ok("GET", f"/teamMembers/count/{tid}", fragment="ali") == {"count": 1}
    assert alice.ok("GET", "/teamMembers/count/987654321") == {"count": 0}
    bob_member = alice.ok("GET", f"/team/{tid}/member/{user_id(emu, 'bob')}")
    assert bob_member["teamId"] == tid and bob_member["isAdmin"] is False
    assert bob_member["member"]["userName"] == "bob"
    assert "email" not in bob_member["member"]
    carol_id = user_id(emu, "carol")
    assert alice.error(404, "GET", f"/team/{tid}/member/{carol_id}") == (
        f"Could not find member {carol_id} in team {tid}"
    )
    listed = alice.ok("POST", f"/team/{tid}/memberList", {"list": [user_id(emu, "bob")]})
    assert [m["member"]["userName"] for m in listed["list"]] == ["bob"]
    assert alice.error(404, "POST", f"/team/{tid}/memberList", {"list": [carol_id]}) == (
        f"teamId: {tid} memberId: {carol_id}"
    )
    mine = alice.ok("POST", f"/user/{user_id(emu, 'bob')}/memberList", {"list": [tid]})
    assert [(m["teamId"], m["isAdmin"]) for m in mine["list"]] == [(tid, False)]


def test_user_team_queries(emu: Emulator, alice: Api, bob: Api) -> None:
    team = new_team(alice, name=f"Aaa {uniq('Q')}", canPublicJoin=True)
    bob.ok("PUT", f"/team/{team['id']}/member/{user_id(emu, 'bob')}")
    bob_teams = alice.ok("GET", f"/user/{user_id(emu, 'bob')}/team", limit=50)["results"]
    assert team["id"] in [t["id"] for t in bob_teams]
    assert "Curators" in [t["name"] for t in bob_teams]
    ids = alice.ok("GET", f"/user/{user_id(emu, 'bob')}/team/id", sort="TEAM_NAME")
    names = [alice.ok("GET", f"/team/{i}")["name"].lower() for i in ids["teamIds"]]
    assert names == sorted(names) and team["id"] in ids["teamIds"]
    one = alice.ok("GET", f"/user/{user_id(emu, 'bob')}/team/id", nextPageToken="1a0")
    assert len(one["teamIds"]) == 1 and one["nextPageToken"] == "1a1"


# ---------------------------------------------------------------------------------------------
# Membership: status, the add-member rules, removal (§1.6, §1.8, §1.9)


def test_invitation_then_acceptance_by_the_invitee(emu: Emulator, alice: Api, bob: Api) -> None:
    team = new_team(alice, canRequestMembership=False)
    tid, bob_id = team["id"], user_id(emu, "bob")
    status = alice.ok("GET", f"/team/{tid}/member/{bob_id}/membershipStatus")
    assert status == {
        "teamId": tid,
        "userId": str(bob_id),
        "isMember": False,
        "hasOpenInvitation": False,
        "hasOpenRequest": False,
        "canJoin": False,
        "membershipApprovalRequired": True,
        "hasUnmetAccessRequirement": False,
        "canSendEmail": True,  # through the AUTHENTICATED_USERS entry
    }
    # A manager cannot add someone who has not asked.
    assert alice.error(403, "PUT", f"/team/{tid}/member/{bob_id}") == (
        "The prospective member must request to join the team."
    )
    invitation = invite(alice, tid, bob_id, message="welcome", expiresOn=iso(timedelta(days=7)))
    assert invitation["teamId"] == tid and invitation["inviteeId"] == str(bob_id)
    assert invitation["message"] == "welcome" and invitation["createdBy"] == team["createdBy"]
    assert invitation["expiresOn"].endswith("Z") and "inviteeEmail" not in invitation
    assert bob.ok("GET", f"/membershipInvitation/{invitation['id']}") == invitation
    as_bob = bob.ok("GET", f"/team/{tid}/member/{bob_id}/membershipStatus")
    assert (as_bob["hasOpenInvitation"], as_bob["canJoin"]) == (True, True)
    # Still not for the manager: an invitation lets only the invitee join.
    assert alice.error(403, "PUT", f"/team/{tid}/member/{bob_id}")
    assert bob.ok("GET", "/membershipInvitation/openInvitationCount")["count"] >= 1
    mine = bob.ok("GET", f"/user/{bob_id}/openInvitation", teamId=tid)
    assert mine == {"results": [invitation], "totalNumberOfResults": 1}
    # Acceptance is the invitee's own PUT, with the invitee's token.
    assert bob.call("PUT", f"/team/{tid}/member/{bob_id}").status_code == 204
    assert member_names(alice, tid) == [("alice", True), ("bob", False)]
    assert bob.error(404, "GET", f"/membershipInvitation/{invitation['id']}") == (
        f"Membership invitation '{invitation['id']}' does not exist"
    )
    after = bob.ok("GET", f"/team/{tid}/member/{bob_id}/membershipStatus")
    assert (after["isMember"], after["hasOpenInvitation"], after["canJoin"]) == (True, False, True)
    # Idempotent: joining again is 204 and changes nothing.
    assert bob.call("PUT", f"/team/{tid}/member/{bob_id}").status_code == 204
    assert alice.ok("GET", f"/teamMembers/count/{tid}") == {"count": 2}


def test_self_join_needs_invitation_and_others_need_a_manager(
    emu: Emulator, alice: Api, bob: Api, carol: Api
) -> None:
    team = new_team(alice)
    tid = team["id"]
    carol_id = user_id(emu, "carol")
    assert carol.error(403, "PUT", f"/team/{tid}/member/{carol_id}") == (
        "An invitation is required to join the team."
    )
    assert bob.error(403, "PUT", f"/team/{tid}/member/{carol_id}") == (
        "You must be a team manager to perform this operation."
    )
    assert alice.error(404, "PUT", f"/team/{tid}/member/987654321") == (
        "Principal '987654321' does not exist"
    )
    assert alice.error(400, "PUT", f"/team/{tid}/member/{tid}") == f"Principal: {tid} is not a User"
    assert carol.error(404, "PUT", f"/team/987654321/member/{carol_id}") == (
        "Team 987654321 does not exist."
    )
    assert alice.error(404, "GET", f"/team/{tid}/member/987654321/membershipStatus") == (
        "Principal '987654321' does not exist"
    )


def test_request_then_manager_adds(emu: Emulator, alice: Api, bob: Api, carol: Api) -> None:
    team = new_team(alice)
    tid, bob_id = team["id"], user_id(emu, "bob")
    response = bob.call("POST", "/membershipRequest", {"teamId": tid, "message": "please"})
    assert response.status_code == 201
    request = response.json()
    assert request["teamId"] == tid and request["userId"] == str(bob_id)
    assert request["createdBy"] == str(bob_id) and request["message"] == "please"
    assert alice.ok("GET", f"/membershipRequest/{request['id']}") == request
    assert carol.error(403, "GET", f"/membershipRequest/{request['id']}") == (
        f"Unauthorized to READ membership request {request['id']}"
    )
    assert alice.ok("GET", f"/team/{tid}/openRequest") == {
        "results": [request],
        "totalNumberOfResults": 1,
    }
    assert alice.ok("GET", f"/team/{tid}/openRequest", requestorId=bob_id)["results"] == [request]
    assert bob.error(403, "GET", f"/team/{tid}/openRequest") == (
        "Cannot retrieve membership requests."
    )
    assert bob.ok("GET", f"/user/{bob_id}/openRequest", teamId=tid)["results"] == [request]
    assert alice.error(403, "GET", f"/user/{bob_id}/openRequest") == (
        "Cannot retrieve another's membership requests."
    )
    assert alice.ok("GET", "/membershipRequest/openRequestCount")["count"] >= 1
    status = alice.ok("GET", f"/team/{tid}/member/{bob_id}/membershipStatus")
    assert (status["hasOpenRequest"], status["canJoin"]) == (True, True)
    # bob himself still cannot join: a request is not an invitation.
    assert bob.error(403, "PUT", f"/team/{tid}/member/{bob_id}") == (
        "An invitation is required to join the team."
    )
    assert alice.call("PUT", f"/team/{tid}/member/{bob_id}").status_code == 204
    assert alice.error(404, "GET", f"/membershipRequest/{request['id']}") == (
        f"Membership request '{request['id']}' does not exist"
    )
    assert alice.ok("GET", f"/team/{tid}/openRequest")["results"] == []


def test_request_rules(emu: Emulator, alice: Api, bob: Api, api_for: Any) -> None:
    anonymous = api_for(emu, None)
    open_team = new_team(alice)
    assert anonymous.error(403, "POST", "/membershipRequest", {"teamId": open_team["id"]}) == (
        "anonymous user cannot create membership request."
    )
    assert bob.error(400, "POST", "/membershipRequest", {"teamId": "1", "id": "2"}) == (
        "'id' field is not user specifiable."
    )
    assert bob.error(
        400,
        "POST",
        "/membershipRequest",
        {"teamId": open_team["id"], "userId": str(user_id(emu, "carol"))},
    ) == ("May not specify a user id other than yourself.")
    assert bob.error(400, "POST", "/membershipRequest", {"message": "x"}) == (
        "'teamId' field is required."
    )
    assert bob.error(404, "POST", "/membershipRequest", {"teamId": "987654321"}) == (
        "Team 987654321 does not exist."
    )
    public = new_team(alice, canPublicJoin=True)
    assert bob.error(400, "POST", "/membershipRequest", {"teamId": public["id"]}) == (
        "This team is already open for the public to join, membership requests are not needed."
    )
    closed = new_team(alice, canRequestMembership=False)
    assert bob.error(400, "POST", "/membershipRequest", {"teamId": closed["id"]}) == (
        "This team has been closed to new membership requests."
    )
    request = bob.ok("POST", "/membershipRequest", {"teamId": open_team["id"]})
    assert alice.call("DELETE", f"/membershipRequest/{request['id']}").status_code == 204
    assert alice.call("DELETE", f"/membershipRequest/{request['id']}").status_code == 204
    expired = bob.ok(
        "POST",
        "/membershipRequest",
        {"teamId": open_team["id"], "expiresOn": iso(timedelta(hours=-1))},
    )
    # An expired request is not open: it does not let a manager add the user.
    assert alice.ok("GET", f"/team/{open_team['id']}/openRequest")["results"] == []
    assert alice.error(403, "PUT", f"/team/{open_team['id']}/member/{user_id(emu, 'bob')}")
    assert bob.ok("GET", f"/membershipRequest/{expired['id']}")["id"] == expired["id"]


def test_public_team_self_join(emu: Emulator, alice: Api, carol: Api) -> None:
    team = new_team(alice, canPublicJoin=True)
    carol_id = user_id(emu, "carol")
    status = carol.ok("GET", f"/team/{team['id']}/member/{carol_id}/membershipStatus")
    assert (status["canJoin"], status["membershipApprovalRequired"]) == (True, False)
    assert carol.call("PUT", f"/team/{team['id']}/member/{carol_id}").status_code == 204
    # Even a PUBLIC team is not something a manager can add others to directly.
    assert alice.error(403, "PUT", f"/team/{team['id']}/member/{user_id(emu, 'bob')}") == (
        "The prospective member must request to join the team."
    )


def test_invitation_expiry(emu: Emulator, alice: Api, bob: Api) -> None:
    team = new_team(alice)
    tid, bob_id = team["id"], user_id(emu, "bob")
    expired = invite(alice, tid, bob_id, expiresOn=iso(timedelta(minutes=-5)))
    status = bob.ok("GET", f"/team/{tid}/member/{bob_id}/membershipStatus")
    assert (status["hasOpenInvitation"], status["canJoin"]) == (False, False)
    assert bob.error(403, "PUT", f"/team/{tid}/member/{bob_id}") == (
        "An invitation is required to join the team."
    )
    assert alice.ok("GET", f"/team/{tid}/openInvitation") == {
        "results": [],
        "totalNumberOfResults": 0,
    }
    assert bob.ok("GET", f"/user/{bob_id}/openInvitation", teamId=tid)["results"] == []
    # Still readable by id (it exists, it is just not open).
    assert bob.ok("GET", f"/membershipInvitation/{expired['id']}")["id"] == expired["id"]
    fresh = invite(alice, tid, bob_id, expiresOn=iso(timedelta(days=1)))
    listed = alice.ok("GET", f"/team/{tid}/openInvitation")
    assert [i["id"] for i in listed["results"]] == [fresh["id"]]
    assert bob.call("PUT", f"/team/{tid}/member/{bob_id}").status_code == 204
    # Joining deleted every invitation of the pair, the expired one too.
    assert alice.error(404, "GET", f"/membershipInvitation/{expired['id']}")


def test_invitation_validation_and_access(
    emu: Emulator, alice: Api, bob: Api, carol: Api, api_for: Any
) -> None:
    team = new_team(alice)
    tid, bob_id = team["id"], user_id(emu, "bob")
    for body, text in [
        (
            {"teamId": tid, "inviteeId": "1", "createdOn": "x"},
            "'createdOn' field is not user specifiable.",
        ),
        (
            {"teamId": tid},
            "One and only one of the fields 'inviteeId' and 'inviteeEmail' is required",
        ),
        (
            {"teamId": tid, "inviteeId": "1", "inviteeEmail": "a@b.org"},
            "One and only one of the fields 'inviteeId' and 'inviteeEmail' is required",
        ),
        ({"inviteeId": str(bob_id)}, "'teamId' field is required."),
    ]:
        assert alice.error(400, "POST", "/membershipInvitation", body) == text
    assert bob.error(
        403, "POST", "/membershipInvitation", {"teamId": tid, "inviteeId": str(bob_id)}
    ) == ("Cannot create membership invitation.")
    by_email = alice.ok(
        "POST", "/membershipInvitation", {"teamId": tid, "inviteeEmail": "new@example.org"}
    )
    assert by_email["inviteeEmail"] == "new@example.org" and "inviteeId" not in by_email
    invitation = invite(alice, tid, bob_id)
    assert "expiresOn" not in invitation
    assert carol.error(403, "GET", f"/membershipInvitation/{invitation['id']}") == (
        "Cannot retrieve membership invitation."
    )
    assert carol.error(403, "DELETE", f"/membershipInvitation/{invitation['id']}") == (
        "Cannot delete membership invitation."
    )
    assert bob.error(403, "GET", f"/team/{tid}/openInvitation") == (
        f"Cannot retrieve membership invitations for team {tid}."
    )
    team_page = alice.ok("GET", f"/team/{tid}/openInvitation")
    assert [i["id"] for i in team_page["results"]] == [invitation["id"], by_email["id"]]
    filtered = alice.ok("GET", f"/team/{tid}/openInvitation", inviteeId=bob_id)
    # Synapse's count ignores the invitee filter.
    assert [i["id"] for i in filtered["results"]] == [invitation["id"]]
    assert filtered["totalNumberOfResults"] == 2
    # Anyone may list a user's open invitations, even anonymously.
    anonymous = api_for(emu, None)
    assert anonymous.ok("GET", f"/user/{bob_id}/openInvitation", teamId=tid)["results"] == [
        invitation
    ]
    assert bob.call("DELETE", f"/membershipInvitation/{invitation['id']}").status_code == 204
    assert bob.call("DELETE", f"/membershipInvitation/{invitation['id']}").status_code == 204
    assert alice.error(404, "GET", "/membershipInvitation/987654321") == (
        "Membership invitation '987654321' does not exist"
    )


def test_remove_member_rules(emu: Emulator, alice: Api, bob: Api, carol: Api) -> None:
    team = new_team(alice, canPublicJoin=True)
    tid = team["id"]
    alice_id, bob_id, carol_id = (user_id(emu, u) for u in ("alice", "bob", "carol"))
    assert alice.error(403, "DELETE", f"/team/{tid}/member/{alice_id}") == (
        "Cannot remove the last member of a Team."
    )
    bob.ok("PUT", f"/team/{tid}/member/{bob_id}")
    carol.ok("PUT", f"/team/{tid}/member/{carol_id}")
    assert bob.error(403, "DELETE", f"/team/{tid}/member/{carol_id}") == (
        "Cannot remove member from Team."
    )
    # The last manager cannot leave while others remain.
    assert alice.error(400, "DELETE", f"/team/{tid}/member/{alice_id}") == (
        "Team must have at least one team manager."
    )
    assert carol.call("DELETE", f"/team/{tid}/member/{carol_id}").status_code == 204  # leaving
    assert carol.call("DELETE", f"/team/{tid}/member/{carol_id}").status_code == 204  # no-op
    assert (
        alice.call("PUT", f"/team/{tid}/member/{bob_id}/permission?isAdmin=true").status_code == 204
    )
    assert member_names(alice, tid) == [("alice", True), ("bob", True)]
    acl_before = alice.ok("GET", f"/team/{tid}/acl")
    assert alice.call("DELETE", f"/team/{tid}/member/{alice_id}").status_code == 204
    acl_after = bob.ok("GET", f"/team/{tid}/acl")
    assert acl_after["etag"] != acl_before["etag"]
    assert alice_id not in [e["principalId"] for e in acl_after["resourceAccess"]]
    assert member_names(bob, tid) == [("bob", True)]


def test_permission_endpoint(emu: Emulator, alice: Api, bob: Api) -> None:
    team = new_team(alice, canPublicJoin=True)
    tid, alice_id, bob_id = team["id"], user_id(emu, "alice"), user_id(emu, "bob")
    bob.ok("PUT", f"/team/{tid}/member/{bob_id}")
    assert bob.error(403, "PUT", f"/team/{tid}/member/{bob_id}/permission", isAdmin="true") == (
        f"Unauthorized to access Team {tid} for UPDATE"
    )
    assert alice.error(400, "PUT", f"/team/{tid}/member/{bob_id}/permission")
    assert alice.error(
        400, "PUT", f"/team/{tid}/member/{alice_id}/permission", isAdmin="false"
    ) == ("Team must have at least one team manager.")
    alice.ok("PUT", f"/team/{tid}/member/{bob_id}/permission", isAdmin="true")
    alice.ok("PUT", f"/team/{tid}/member/{alice_id}/permission", isAdmin="false")
    assert member_names(bob, tid) == [("alice", False), ("bob", True)]
    # alice lost UPDATE with her admin entry.
    assert alice.error(403, "PUT", f"/team/{tid}/member/{alice_id}/permission", isAdmin="true")


def test_team_acl(emu: Emulator, alice: Api, bob: Api, carol: Api, api_for: Any) -> None:
    team = new_team(alice, canPublicJoin=True)
    tid, bob_id = team["id"], user_id(emu, "bob")
    bob.ok("PUT", f"/team/{tid}/member/{bob_id}")
    acl = carol.ok("GET", f"/team/{tid}/acl")  # every authenticated user may READ
    assert api_for(emu, None).error(403, "GET", f"/team/{tid}/acl") == (
        f"Unauthorized to access Team {tid} for READ"
    )
    assert (
        bob.error(403, "PUT", "/team/acl", acl) == f"Unauthorized to access Team {tid} for UPDATE"
    )
    for key in ("etag", "creationDate", "resourceAccess"):
        assert alice.error(400, "PUT", "/team/acl", {**acl, key: None}) == f"acl.{key} is required."
    assert alice.error(400, "PUT", "/team/acl", {**acl, "id": None}) == "acl.id is required."
    upload = [*acl["resourceAccess"], {"principalId": bob_id, "accessType": ["UPLOAD"]}]
    assert alice.error(400, "PUT", "/team/acl", {**acl, "resourceAccess": upload}) == (
        "The access type UPLOAD is not allowed for TEAM."
    )
    # Management through the team's own entry: bob can manage, but is not "isAdmin".
    entries = [
        e
        if e["principalId"] != int(tid)
        else {**e, "accessType": [*MESSENGER, "TEAM_MEMBERSHIP_UPDATE"]}
        for e in acl["resourceAccess"]
    ]
    updated = alice.ok("PUT", "/team/acl", {**acl, "resourceAccess": entries})
    assert updated["etag"] != acl["etag"]
    assert alice.error(412, "PUT", "/team/acl", acl) == "E-tags do not match."
    assert member_names(alice, tid) == [("alice", True), ("bob", False)]
    assert bob.ok("GET", f"/team/{tid}/openInvitation")["results"] == []
    # No "at least one manager" check on this path.
    nobody = [e for e in updated["resourceAccess"] if e["principalId"] == AUTHENTICATED]
    emptied = alice.ok("PUT", "/team/acl", {**updated, "resourceAccess": nobody})
    assert [e["principalId"] for e in emptied["resourceAccess"]] == [AUTHENTICATED]
    assert member_names(alice, tid) == [("alice", False), ("bob", False)]
    assert member_names(alice, tid, memberType="MEMBER") == [("alice", False), ("bob", False)]
    assert member_names(alice, tid, memberType="ADMIN") == []
    assert alice.error(400, "GET", f"/teamMembers/{tid}", memberType="OWNER") == (
        "No enum constant org.sagebionetworks.repo.model.TeamMemberTypeFilterOptions.OWNER"
    )


def test_team_grants_entity_access_after_joining(emu: Emulator, alice: Api, carol: Api) -> None:
    team = new_team(alice)
    project = alice.project(uniq())
    folder = alice.ok("POST", "/entity", folder_body("F", project["id"]))
    acl = alice.ok("GET", f"/entity/{project['id']}/acl")
    acl["resourceAccess"].append({"principalId": int(team["id"]), "accessType": ["READ"]})
    alice.ok("PUT", f"/entity/{project['id']}/acl", acl)
    carol_id = user_id(emu, "carol")
    assert carol.error(403, "GET", f"/entity/{folder['id']}")
    invite(alice, team["id"], carol_id)
    carol.ok("PUT", f"/team/{team['id']}/member/{carol_id}")
    assert carol.ok("GET", f"/entity/{folder['id']}")["id"] == folder["id"]


# ---------------------------------------------------------------------------------------------
# Seeding: the users file's teams go through the POST /team code


def test_seeded_teams_have_creator_admin_and_acl(emu: Emulator, alice: Api) -> None:
    curators = str(emu.principal_ids["Curators"])
    team = alice.ok("GET", f"/team/{curators}")
    assert team["createdBy"] == str(user_id(emu, "alice"))
    assert (team["canPublicJoin"], team["canRequestMembership"]) == (False, True)
    assert member_names(alice, curators) == [("alice", True), ("bob", False)]
    acl = alice.ok("GET", f"/team/{curators}/acl")
    assert {e["principalId"] for e in acl["resourceAccess"]} == {
        user_id(emu, "alice"),
        int(curators),
        AUTHENTICATED,
    }


def test_users_file_teams_managers_and_restart(
    tmp_path: Path, api_for: Any, make_emulator: Any
) -> None:
    users = tmp_path / "users.yaml"
    users.write_text(
        "users:\n"
        "  - {userName: ann, token: ann-token}\n"
        "  - {userName: ben, token: ben-token}\n"
        "  - {userName: cy, token: cy-token}\n"
        "teams:\n"
        "  - name: Center One\n"
        "    members: [ann, ben, cy]\n"
        "    managers: [ben, cy]\n"
        "    description: the first center\n"
        "    canPublicJoin: true\n",
        encoding="utf-8",
    )
    data = tmp_path / "data"
    first = make_emulator(users=[], teams=[], users_file=users, data_dir=data)
    api = api_for(first, "ann")
    tid = str(first.principal_ids["Center One"])
    team = api.ok("GET", f"/team/{tid}")
    assert team["createdBy"] == str(first.principal_ids["ben"])  # the first manager creates it
    assert (team["description"], team["canPublicJoin"]) == ("the first center", True)
    assert member_names(api, tid) == [("ann", False), ("ben", True), ("cy", True)]
    version = first.state_version()
    first.stop()
    again = make_emulator(users=[], teams=[], users_file=users, data_dir=data)
    assert again.principal_ids["Center One"] == int(tid)
    assert again.state_version() == version  # adopting the existing team changes nothing
    assert member_names(api_for(again, "ann"), tid) == [("ann", False), ("ben", True), ("cy", True)]


@pytest.mark.parametrize(
    ("team", "message"),
    [
        ("  - {name: ab, members: [ann]}\n", "Team names can only contain"),
        ("  - {name: Lonely}\n", "a team needs a manager"),
        ("  - {name: Bad Keys, members: [ann], admins: [ann]}\n", "unknown key 'admins'"),
        ("  - {name: Ghosts, members: [ann], managers: [zed]}\n", "managers ['zed'] are not"),
        ("  - {name: ann, members: [ann]}\n", "Name ann is already used."),
    ],
)
def test_users_file_bad_teams_are_refused(tmp_path: Path, team: str, message: str) -> None:
    users = tmp_path / "users.yaml"
    users.write_text(
        "users:\n  - {userName: ann, token: ann-token}\nteams:\n" + team, encoding="utf-8"
    )
    emulator = Emulator(EmulatorConfig(users_file=users))
    try:
        with pytest.raises(ValueError, match=r"users\.yaml") as refused:
            emulator.start()
    finally:
        emulator.stop()
    assert message in str(refused.value)


def test_config_teams_without_users_file() -> None:
    config = EmulatorConfig(
        users=[SeedUser("ann", "ann-token"), SeedUser("ben", "ben-token")],
        teams=[SeedTeam("Config Team", ("ann", "ben"), managers=("ben",))],
    )
    with Emulator(config) as emu:
        api = Api(emu, "ann-token")
        tid = str(emu.principal_ids["Config Team"])
        assert member_names(api, tid) == [("ann", False), ("ben", True)]


def test_team_from_an_older_data_dir_is_adopted(
    tmp_path: Path, api_for: Any, make_emulator: Any
) -> None:
    """A data dir written before teams had their own rows: the restart gives it its ACL."""
    users = tmp_path / "users.yaml"
    users.write_text(
        "users:\n  - {userName: ann, token: ann-token}\n"
        "teams:\n  - {name: Old Team, members: [ann]}\n",
        encoding="utf-8",
    )
    data = tmp_path / "data"
    first = make_emulator(users=[], teams=[], users_file=users, data_dir=data)
    tid = first.principal_ids["Old Team"]
    first.stop()
    with sqlite3.connect(data / "synapse.sqlite3") as conn:
        conn.execute("DELETE FROM teams")
        conn.execute("DELETE FROM team_acls")
    again = make_emulator(users=[], teams=[], users_file=users, data_dir=data)
    api = api_for(again, "ann")
    assert again.principal_ids["Old Team"] == tid
    assert member_names(api, str(tid)) == [("ann", True)]
    assert api.ok("GET", f"/team/{tid}")["createdBy"] == str(again.principal_ids["ann"])


@pytest.mark.parametrize(("kind", "committed"), [("503-before", False), ("503-after", True)])
def test_team_writes_under_faults_are_all_or_nothing(
    make_emulator: Any, api_for: Any, kind: str, committed: bool
) -> None:
    """A retried create never duplicates a team: the name is taken (409) if the first commit
    happened, and nothing of the team is left if it did not."""
    emu = make_emulator()
    alice = api_for(emu, "alice")
    name = uniq("Faulty")
    emu.knobs.set_faults(1.0, kinds=[kind])
    assert alice.call("POST", "/team", {"name": name}).status_code == 503
    emu.knobs.set_faults(0.0)
    found = alice.ok("GET", "/teams", fragment=name)["results"]
    assert len(found) == (1 if committed else 0)
    retry = alice.call("POST", "/team", {"name": name})
    assert retry.status_code == (409 if committed else 201)
    (team,) = alice.ok("GET", "/teams", fragment=name)["results"]
    assert member_names(alice, team["id"]) == [("alice", True)]
