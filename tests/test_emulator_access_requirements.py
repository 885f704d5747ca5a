"""Emulator behaviour over HTTP: access requirements, read side (synapse-api-2.md §4).

Requirements are seeded (Synapse has no client-side create: that is the ACT's job) through
``Emulator.add_access_requirements``, the users file, or ``POST /emulator/v1/accessRequirements``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import Api, conforms
from emulator_core_support import file_body, folder_body, make_file_handle, uniq, user_id
from emulator_teams_support import invite, new_team

from synapse_declare.emulator import Emulator, EmulatorConfig, SeedAccessRequirement

MODEL = "org.sagebionetworks.repo.model."


def tree(alice: Api) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    project = alice.project(uniq())
    folder = alice.ok("POST", "/entity", folder_body("Raw", project["id"]))
    sub = alice.ok("POST", "/entity", folder_body("Sub", folder["id"]))
    return project, folder, sub


def seed(emu: Emulator, *requirements: SeedAccessRequirement) -> list[int]:
    ids = emu.add_access_requirements(list(requirements))
    return [ids[r.name] for r in requirements]


def test_no_requirements_is_an_empty_page(alice: Api, project: dict[str, Any]) -> None:
    page = alice.ok("GET", f"/entity/{project['id']}/accessRequirement")
    assert page == {"results": [], "totalNumberOfResults": 0}
    # synapseclient's copy asks with offset/limit 1 first.
    assert alice.ok("GET", f"/entity/{project['id']}/accessRequirement", offset=0, limit=1) == page


def test_requirements_of_entity_and_ancestors(emu: Emulator, alice: Api, bob: Api) -> None:
    project, folder, sub = tree(alice)
    on_project, on_folder, elsewhere = seed(
        emu,
        SeedAccessRequirement(uniq("ToU"), (project["id"],), fields={"termsOfUse": "be nice"}),
        SeedAccessRequirement(uniq("ACT"), (folder["id"],), concrete_type="ACTAccessRequirement"),
        SeedAccessRequirement(uniq("Other"), ("syn1",)),
    )
    assert elsewhere > on_folder > on_project
    page = bob.ok("GET", f"/entity/{sub['id']}/accessRequirement")  # no READ needed
    assert [r["id"] for r in page["results"]] == [on_project, on_folder]
    assert page["totalNumberOfResults"] == 2
    top = page["results"][0]
    assert top["concreteType"] == MODEL + "TermsOfUseAccessRequirement"
    assert top["termsOfUse"] == "be nice" and top["accessType"] == "DOWNLOAD"
    assert top["subjectIds"] == [{"id": project["id"], "type": "ENTITY"}]
    assert top["versionNumber"] == 1 and top["subjectsDefinedByAnnotations"] is False
    assert {"etag", "createdOn", "modifiedOn", "createdBy", "modifiedBy", "name"} <= set(top)
    assert page["results"][1]["concreteType"] == MODEL + "ACTAccessRequirement"
    only_project = alice.ok("GET", f"/entity/{project['id']}/accessRequirement")
    assert [r["id"] for r in only_project["results"]] == [on_project]
    # "Misused" total: the size of this page, not of the whole list.
    second = alice.ok("GET", f"/entity/{sub['id']}/accessRequirement", limit=1, offset=1)
    assert [r["id"] for r in second["results"]] == [on_folder]
    assert second["totalNumberOfResults"] == 1
    assert alice.ok("GET", f"/entity/{sub['id']}/accessRequirement", offset=2)["results"] == []
    assert alice.ok("GET", f"/accessRequirement/{on_project}") == top


def test_paging_errors_and_unknown_ids(alice: Api, project: dict[str, Any]) -> None:
    path = f"/entity/{project['id']}/accessRequirement"
    for bad in (0, 51):
        assert alice.error(400, "GET", path, limit=bad) == "limit must be between 1 and 50"
    assert alice.error(400, "GET", path, offset=-1) == "offset must be at least 0"
    assert alice.ok("GET", "/entity/syn987654321/accessRequirement")["results"] == []
    assert alice.error(404, "GET", "/accessRequirement/987654321") == (
        "The resource you are attempting to access cannot be found"
    )


def test_restriction_information(emu: Emulator, alice: Api, bob: Api) -> None:
    project, folder, _sub = tree(alice)
    body = {"restrictableObjectType": "ENTITY", "objectId": folder["id"]}
    open_info = bob.ok("POST", "/restrictionInformation", body)
    assert conforms(MODEL + "RestrictionInformationResponse", open_info) == []
    assert open_info["restrictionLevel"] == "OPEN"
    assert (open_info["hasUnmetAccessRequirement"], open_info["restrictionDetails"]) == (False, [])
    assert open_info["objectId"] == int(folder["id"][3:])
    assert open_info["userEntityPermissions"]["canView"] is False  # bob has no access
    (tou,) = seed(emu, SeedAccessRequirement(uniq("ToU"), (project["id"],), approved=("alice",)))
    mine = alice.ok("POST", "/restrictionInformation", body)
    assert mine["restrictionLevel"] == "RESTRICTED_BY_TERMS_OF_USE"
    assert mine["hasUnmetAccessRequirement"] is False
    assert mine["restrictionDetails"] == [
        {"accessRequirementId": tou, "isApproved": True, "isMet": True, "isExempt": False}
    ]
    theirs = bob.ok("POST", "/restrictionInformation", body)
    assert theirs["hasUnmetAccessRequirement"] is True
    assert theirs["restrictionDetails"][0]["isMet"] is False
    seed(
        emu,
        SeedAccessRequirement(uniq("Lock"), (folder["id"],), concrete_type="LockAccessRequirement"),
    )
    locked = alice.ok("POST", "/restrictionInformation", body)
    assert locked["restrictionLevel"] == "CONTROLLED_BY_ACT"
    assert locked["hasUnmetAccessRequirement"] is True
    assert alice.error(400, "POST", "/restrictionInformation", {"objectId": "syn1"}) == (
        "RestrictionInformationRequest.restrictableObjectType is required."
    )
    assert alice.error(
        400, "POST", "/restrictionInformation", {"restrictableObjectType": "ENTITY"}
    ) == ("RestrictionInformationRequest.objectId is required.")
    assert alice.error(
        400,
        "POST",
        "/restrictionInformation",
        {"restrictableObjectType": "EVALUATION", "objectId": "1"},
    ) == ("Unsupported type: EVALUATION")


def test_file_creator_is_approved_and_bundle_reports_it(
    emu: Emulator, alice: Api, bob: Api
) -> None:
    project, folder, _sub = tree(alice)
    handle = make_file_handle(emu, "alice")
    entity = alice.ok("POST", "/entity", file_body("data.txt", folder["id"], handle))
    acl = alice.ok("GET", f"/entity/{project['id']}/acl")
    acl["resourceAccess"].append(
        {"principalId": user_id(emu, "bob"), "accessType": ["READ", "DOWNLOAD"]}
    )
    alice.ok("PUT", f"/entity/{project['id']}/acl", acl)
    seed(emu, SeedAccessRequirement(uniq("ToU"), (folder["id"],)))
    flags = {"includeEntity": True, "includeRestrictionInformation": True}
    own = alice.ok("POST", f"/entity/{entity['id']}/bundle2", flags)["restrictionInformation"]
    assert own["hasUnmetAccessRequirement"] is False  # the file's creator
    assert own["restrictionDetails"][0]["isApproved"] is True
    other = bob.ok("POST", f"/entity/{entity['id']}/bundle2", flags)["restrictionInformation"]
    assert other["restrictionLevel"] == "RESTRICTED_BY_TERMS_OF_USE"
    assert other["hasUnmetAccessRequirement"] is True
    # The folder is not a file: its creator gets no such pass.
    folder_info = alice.ok("POST", f"/entity/{folder['id']}/bundle2", flags)
    assert folder_info["restrictionInformation"]["hasUnmetAccessRequirement"] is True


def test_requirement_status(emu: Emulator, alice: Api, bob: Api) -> None:
    basic, managed = seed(
        emu,
        SeedAccessRequirement(uniq("ToU"), ("syn1",), approved=("alice",)),
        SeedAccessRequirement(
            uniq("Managed"),
            ("syn1",),
            concrete_type="ManagedACTAccessRequirement",
            fields={"isDUCRequired": True},
        ),
    )
    assert alice.ok("GET", f"/accessRequirement/{basic}/status") == {
        "concreteType": MODEL + "dataaccess.BasicAccessRequirementStatus",
        "accessRequirementId": str(basic),
        "isApproved": True,
    }
    assert bob.ok("GET", f"/accessRequirement/{basic}/status")["isApproved"] is False
    managed_status = bob.ok("GET", f"/accessRequirement/{managed}/status")
    assert managed_status["concreteType"] == MODEL + "dataaccess.ManagedACTAccessRequirementStatus"
    assert alice.ok("GET", f"/accessRequirement/{managed}")["isDUCRequired"] is True


def test_team_requirements_gate_joining(emu: Emulator, alice: Api, bob: Api, carol: Api) -> None:
    team = new_team(alice)
    tid, bob_id, carol_id = team["id"], user_id(emu, "bob"), user_id(emu, "carol")
    (ar,) = seed(
        emu, SeedAccessRequirement(uniq("Team ToU"), (f"team:{team['name']}",), approved=("carol",))
    )
    page = bob.ok("GET", f"/team/{tid}/accessRequirement")
    assert [(r["id"], r["accessType"]) for r in page["results"]] == [(ar, "PARTICIPATE")]
    assert page["results"][0]["subjectIds"] == [{"id": tid, "type": "TEAM"}]
    assert bob.error(403, "POST", "/membershipRequest", {"teamId": tid}) == (
        "Requested member has unmet access requirements which must be met before asking to "
        "join the Team."
    )
    invite(alice, tid, bob_id)
    status = bob.ok("GET", f"/team/{tid}/member/{bob_id}/membershipStatus")
    assert (status["hasUnmetAccessRequirement"], status["canJoin"]) == (True, False)
    assert bob.error(403, "PUT", f"/team/{tid}/member/{bob_id}") == (
        "You can't join the team until you meet the Access Requirements"
    )
    # carol holds the approval: her request is accepted and a manager may add her.
    carol.ok("POST", "/membershipRequest", {"teamId": tid})
    assert alice.call("PUT", f"/team/{tid}/member/{carol_id}").status_code == 204
    team_info = bob.ok(
        "POST", "/restrictionInformation", {"restrictableObjectType": "TEAM", "objectId": tid}
    )
    assert (team_info["restrictionLevel"], team_info["hasUnmetAccessRequirement"]) == (
        "RESTRICTED_BY_TERMS_OF_USE",
        True,
    )
    assert "userEntityPermissions" not in team_info


def test_seeding_over_http_and_its_errors(
    emu: Emulator, alice: Api, project: dict[str, Any]
) -> None:
    name = uniq("Http")
    document = {
        "access_requirements": [{"name": name, "subjects": [project["id"]], "termsOfUse": "t"}]
    }
    first = alice.ok("POST", "/emulator/v1/accessRequirements", document)
    again = alice.ok("POST", "/emulator/v1/accessRequirements", document)
    assert first == again  # idempotent by name
    page = alice.ok("GET", f"/entity/{project['id']}/accessRequirement")
    assert [r["id"] for r in page["results"]] == [first["ids"][name]]
    bad = {"access_requirements": [{"name": "x", "subjects": [], "termsOfUse": "t"}]}
    assert "subjects must name at least one" in alice.error(
        400, "POST", "/emulator/v1/accessRequirements", bad
    )
    wrong_key = {"access_requirements": [{"name": "x", "subjects": ["syn1"], "jiraKey": "J"}]}
    assert "unknown key 'jiraKey'" in alice.error(
        400, "POST", "/emulator/v1/accessRequirements", wrong_key
    )
    no_team = {"access_requirements": [{"name": uniq("T"), "subjects": ["team:Nobody here"]}]}
    assert alice.error(400, "POST", "/emulator/v1/accessRequirements", no_team) == (
        "subject team:Nobody here: no such team"
    )


def test_users_file_access_requirements(tmp_path: Path, make_emulator: Any, api_for: Any) -> None:
    users = tmp_path / "users.yaml"
    users.write_text(
        "users:\n"
        "  - {userName: ann, token: ann-token}\n"
        "teams:\n"
        "  - {name: Center Two, members: [ann]}\n"
        "access_requirements:\n"
        "  - name: Center terms\n"
        "    id: 9700001\n"
        "    concreteType: org.sagebionetworks.repo.model.SelfSignAccessRequirement\n"
        "    isCertifiedUserRequired: true\n"
        "    subjects: ['team:Center Two', syn2000000]\n"
        "    approved: [ann]\n",
        encoding="utf-8",
    )
    emulator = make_emulator(users=[], teams=[], users_file=users)
    api = api_for(emulator, "ann")
    tid = emulator.principal_ids["Center Two"]
    (requirement,) = api.ok("GET", f"/team/{tid}/accessRequirement")["results"]
    assert requirement["id"] == 9700001
    assert requirement["concreteType"] == MODEL + "SelfSignAccessRequirement"
    assert requirement["isCertifiedUserRequired"] is True
    assert requirement["subjectIds"] == [
        {"id": "syn2000000", "type": "ENTITY"},
        {"id": str(tid), "type": "TEAM"},
    ]
    project = api.project(uniq())  # the first entity id of a fresh emulator
    assert project["id"] == "syn2000000"
    listed = api.ok("GET", f"/entity/{project['id']}/accessRequirement")["results"]
    assert [r["id"] for r in listed] == [9700001]


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("  - {name: a, subjects: [syn1], concreteType: Nope}\n", "concreteType must be one of"),
        ("  - {subjects: [syn1]}\n", "name is required"),
        ("  - {name: a, subjects: [syn1], id: 1}\n", "id must be an integer above 1"),
        ("  - {name: a, subjects: [syn1], approved: [zed]}\n", "approved user zed does not exist"),
        ("  - {name: a, subjects: ['team:None']}\n", "subject team:None: no such team"),
    ],
)
def test_users_file_bad_requirements_are_refused(
    tmp_path: Path, section: str, message: str
) -> None:
    users = tmp_path / "users.yaml"
    users.write_text(
        "users:\n  - {userName: ann, token: ann-token}\naccess_requirements:\n" + section,
        encoding="utf-8",
    )
    emulator = Emulator(EmulatorConfig(users_file=users))
    try:
        with pytest.raises(ValueError, match=r"users\.yaml:4:\d+: ") as refused:
            emulator.start()
    finally:
        emulator.stop()
    assert message in str(refused.value)


def test_unmet_requirements_deny_download_and_can_download(
    emu: Emulator, alice: Api, bob: Api
) -> None:
    """synapse-api-2.md §2.1: the DOWNLOAD decider denies on unmet requirements (before the
    ACL), so ``canDownload`` is false and the file cannot be fetched; an approval, or being
    the file's creator, meets them."""
    project, folder, _sub = tree(alice)
    handle = make_file_handle(emu, "alice")
    entity = alice.ok("POST", "/entity", file_body("data.txt", folder["id"], handle))
    acl = alice.ok("GET", f"/entity/{project['id']}/acl")
    acl["resourceAccess"].append(
        {"principalId": user_id(emu, "bob"), "accessType": ["READ", "DOWNLOAD"]}
    )
    alice.ok("PUT", f"/entity/{project['id']}/acl", acl)
    assert bob.ok("GET", f"/entity/{entity['id']}/permissions")["canDownload"] is True
    (tou,) = seed(emu, SeedAccessRequirement(uniq("ToU"), (folder["id"],)))
    bobs = bob.ok("GET", f"/entity/{entity['id']}/permissions")
    assert (bobs["canView"], bobs["canDownload"]) == (True, False)
    assert bob.ok("GET", f"/entity/{folder['id']}/permissions")["canDownload"] is False
    assert bob.error(403, "GET", f"/entity/{entity['id']}/file") == (
        "There are unmet access requirements that must be met to read content in the "
        "requested container."
    )
    # The file's creator counts as approved; the folder's creator does not.
    assert alice.ok("GET", f"/entity/{entity['id']}/permissions")["canDownload"] is True
    assert alice.ok("GET", f"/entity/{folder['id']}/permissions")["canDownload"] is False
    # Above the requirement's subject, nothing is gated.
    assert bob.ok("GET", f"/entity/{project['id']}/permissions")["canDownload"] is True
    seed(emu, SeedAccessRequirement(uniq("ToU2"), (folder["id"],), approved=("bob",)))
    assert bob.ok("GET", f"/entity/{entity['id']}/permissions")["canDownload"] is False  # tou
    status = bob.ok("GET", f"/accessRequirement/{tou}/status")
    assert status["isApproved"] is False


def test_can_enable_inheritance_does_not_need_an_own_acl(
    emu: Emulator, alice: Api, bob: Api
) -> None:
    """synapse-api-2.md §2.1: the "can delete ACL" chain — false on projects, else
    CHANGE_PERMISSIONS; whether the entity has its own ACL is not checked."""
    project, _folder, sub = tree(alice)
    assert alice.ok("GET", f"/entity/{project['id']}/permissions")["canEnableInheritance"] is False
    assert alice.ok("GET", f"/entity/{sub['id']}/permissions")["canEnableInheritance"] is True
    acl = alice.ok("GET", f"/entity/{project['id']}/acl")
    acl["resourceAccess"].append({"principalId": user_id(emu, "bob"), "accessType": ["READ"]})
    alice.ok("PUT", f"/entity/{project['id']}/acl", acl)
    assert bob.ok("GET", f"/entity/{sub['id']}/permissions")["canEnableInheritance"] is False
