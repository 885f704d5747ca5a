"""Emulator behaviour over HTTP: entity create/update rules, versions, trash, children, lookup,
headers, path, permissions, access, benefactor and limits (synapse-api.md §2, §2.10, §12)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from emulator_core_support import (
    ADMIN_SET,
    FILE,
    FOLDER,
    LINK,
    PROJECT,
    PUBLIC,
    ROOT,
    TRASH,
    ZERO_ETAG,
    entries_of,
    file_body,
    folder_body,
    grant,
    make_file_handle,
    project_body,
    uniq,
    user_id,
)

from synapse_declare.emulator import Emulator

NAME_RULES = (
    "Names may only contain: letters, numbers, spaces, underscores, hyphens, periods, "
    "plus signs, apostrophes, and parentheses"
)


@pytest.fixture
def anon(emu: Emulator, api_for: Any) -> Any:
    return api_for(emu, None)


@pytest.fixture
def unlogged(make_emulator: Any, api_for: Any) -> Any:
    """For requests that are deliberately not valid Synapse models: the session's conformance
    gate checks requests as well as responses, so these exchanges are not logged."""
    return api_for(make_emulator(request_log=None), "alice")


# ---------------------------------------------------------------------------------------------
# Create (§2.3)


def test_project_shape_parent_and_creator_acl(emu: Emulator, alice: Any) -> None:
    name = uniq()
    created = alice.call("POST", "/entity", project_body(name, id="syn1", etag="x"))
    assert created.status_code == 201
    body = created.json()
    assert body["concreteType"] == PROJECT
    assert body["name"] == name
    assert body["parentId"] == ROOT
    assert body["id"].startswith("syn") and body["id"] != "syn1"
    assert body["etag"] != "x"
    assert body["createdBy"] == body["modifiedBy"] == str(user_id(emu, "alice"))
    assert body["createdOn"].endswith("Z") and len(body["createdOn"]) == 24
    acl = alice.ok("GET", f"/entity/{body['id']}/acl")
    assert entries_of(acl) == {user_id(emu, "alice"): ADMIN_SET}
    explicit_root = alice.ok("POST", "/entity", project_body(uniq(), parentId=ROOT))
    assert explicit_root["parentId"] == ROOT


def test_length_checks_come_first(alice: Any, project: dict[str, Any]) -> None:
    long_name = "n" * 257
    # Even with a missing parent, the length rule answers first.
    assert alice.error(400, "POST", "/entity", folder_body(long_name, "syn999999999")) == (
        "Name must be 256 characters or less"
    )
    assert (
        alice.error(
            400, "POST", "/entity", folder_body("ok", project["id"], description="d" * 1001)
        )
        == "Description must be 1000 characters or less"
    )
    assert alice.ok(
        "POST", "/entity", folder_body("n" * 256, project["id"], description="d" * 1000)
    )


def test_missing_and_unknown_concrete_type(unlogged: Any) -> None:
    project = unlogged.project(uniq())
    assert unlogged.error(400, "POST", "/entity", {"name": "x", "parentId": project["id"]}) == (
        "Cannot determine the entity type.  The entityType property is null"
    )
    reason = unlogged.error(
        400, "POST", "/entity", {"concreteType": "org.example.Thing", "name": "x"}
    )
    assert reason.startswith("Unknown entity type: org.example.Thing. Message: ")


def test_missing_parent_is_404(alice: Any) -> None:
    assert alice.error(404, "POST", "/entity", folder_body("x", "syn999999999")) == (
        "Cannot find a node with id: syn999999999"
    )
    assert alice.error(404, "POST", "/entity", project_body(uniq(), parentId="syn999999999")) == (
        "Cannot find a node with id: syn999999999"
    )


def test_parent_type_matrix(alice: Any, project: dict[str, Any]) -> None:
    folder = alice.folder("f", project["id"])
    null_parent = f"Entity type: {FOLDER} cannot have a parent of type: null"
    assert alice.error(400, "POST", "/entity", {"concreteType": FOLDER, "name": "x"}) == null_parent
    assert alice.error(400, "POST", "/entity", folder_body("x", ROOT)) == null_parent
    assert alice.error(400, "POST", "/entity", project_body(uniq(), parentId=folder["id"])) == (
        f"Entity type: {PROJECT} cannot have a parent of type: {FOLDER}"
    )
    assert alice.error(400, "POST", "/entity", project_body(uniq(), parentId=project["id"])) == (
        f"Entity type: {PROJECT} cannot have a parent of type: {PROJECT}"
    )
    # Folders and links go in projects and folders.
    assert alice.folder("sub", folder["id"])["parentId"] == folder["id"]
    link = {
        "concreteType": LINK,
        "name": "l",
        "parentId": folder["id"],
        "linksTo": {"targetId": project["id"]},
        "linksToClassName": PROJECT,
    }
    created = alice.ok("POST", "/entity", link)
    assert created["linksTo"] == {"targetId": project["id"]}
    assert created["linksToClassName"] == PROJECT


def test_file_entity_field_rules(emu: Emulator, alice: Any, project: dict[str, Any]) -> None:
    assert alice.error(
        400, "POST", "/entity", {"concreteType": FILE, "name": "f", "parentId": project["id"]}
    ) == ("FileEntity.dataFileHandleId cannot be null")
    handle = make_file_handle(emu, "alice")
    assert (
        alice.error(
            400, "POST", "/entity", file_body("f", project["id"], handle, fileNameOverride="x")
        )
        == "fileNameOverride field is deprecated and should not be set."
    )
    created = alice.ok("POST", "/entity", file_body("f", project["id"], handle))
    assert created["dataFileHandleId"] == handle
    assert created["versionNumber"] == 1
    assert created["versionLabel"] == "1"
    assert created["isLatestVersion"] is True


def test_file_handle_must_be_created_by_caller(
    emu: Emulator, alice: Any, bob: Any, project: dict[str, Any]
) -> None:
    grant(alice, project["id"], [(user_id(emu, "bob"), ["READ", "CREATE", "UPDATE"])])
    handle = make_file_handle(emu, "alice")
    bob_id = user_id(emu, "bob")
    assert bob.error(403, "POST", "/entity", file_body("f", project["id"], handle)) == (
        "Only the creator of a FileHandle can access it directly by its ID.  "
        f"FileHandleId = '{handle}', UserId = '{bob_id}'"
    )


def test_names_are_trimmed_defaulted_and_validated(alice: Any, project: dict[str, Any]) -> None:
    assert alice.folder("  padded  ", project["id"])["name"] == "padded"
    unnamed = alice.ok("POST", "/entity", {"concreteType": FOLDER, "parentId": project["id"]})
    assert unnamed["name"] == unnamed["id"]
    for blank in ("", "   "):
        assert alice.error(400, "POST", "/entity", folder_body(blank, project["id"])) == (
            "Name cannot be only whitespace or empty string"
        )
    assert alice.error(400, "POST", "/entity", folder_body(" bad/name ", project["id"])) == (
        f"Invalid Name: 'bad/name'. {NAME_RULES}"
    )
    allowed = "Aa 0_.-+()',x"
    assert alice.folder(allowed, project["id"])["name"] == allowed


def test_parent_in_trash_is_404(alice: Any, project: dict[str, Any]) -> None:
    folder = alice.folder("doomed", project["id"])
    alice.ok("DELETE", f"/entity/{folder['id']}")
    assert alice.error(404, "POST", "/entity", folder_body("x", folder["id"])) == (
        f"The given parent: {folder['id']} does not exist"
    )
    assert alice.error(404, "POST", "/entity", folder_body("x", TRASH)) == (
        f"The given parent: {TRASH} does not exist"
    )


def test_create_authorization(
    anon: Any, bob: Any, carol: Any, alice: Any, project: dict[str, Any], emu: Emulator
) -> None:
    assert anon.error(403, "POST", "/entity", folder_body("x", project["id"])) == (
        "Anonymous users have only READ access permission."
    )
    assert bob.error(403, "POST", "/entity", folder_body("x", project["id"])) == (
        "You lack CREATE access to the requested entity."
    )
    # Carol is not certified: she may create projects, but no other content.
    carols = carol.project(uniq("Carol"))
    assert carol.error(403, "POST", "/entity", folder_body("x", carols["id"])) == (
        "Only certified users may create or update content in Synapse."
    )
    grant(alice, project["id"], [(user_id(emu, "carol"), ["READ", "CREATE"])])
    assert carol.error(403, "POST", "/entity", folder_body("x", project["id"])) == (
        "Only certified users may create or update content in Synapse."
    )


def test_name_conflicts_are_409_and_case_sensitive(
    alice: Any, bob: Any, project: dict[str, Any]
) -> None:
    alice.folder("Data", project["id"])
    assert alice.error(409, "POST", "/entity", folder_body("Data", project["id"])) == (
        f"An entity with the name: Data already exists with a parentId: {project['id']}"
    )
    assert alice.error(409, "POST", "/entity", folder_body(" Data ", project["id"])) == (
        f"An entity with the name: Data already exists with a parentId: {project['id']}"
    )
    assert alice.folder("data", project["id"])["name"] == "data"
    # Project names are unique across all of Synapse (every project's parent is the root).
    assert bob.error(409, "POST", "/entity", project_body(project["name"])) == (
        f"An entity with the name: {project['name']} already exists with a parentId: {ROOT}"
    )


def test_project_alias_rules(alice: Any, bob: Any) -> None:
    alias = f"alias_{uniq('a').split()[1]}"
    created = alice.ok("POST", "/entity", project_body(uniq(), alias=alias))
    assert created["alias"] == alias
    assert alice.error(400, "POST", "/entity", project_body(uniq(), alias="bad-alias")) == (
        "Aliases can only have letters (a-z and A-Z), digits (0-9) and underscores (_)"
    )
    assert bob.error(409, "POST", "/entity", project_body(uniq(), alias=alias)) == (
        f"The friendly url name (alias): {alias} is already taken.  Please select another."
    )


# ---------------------------------------------------------------------------------------------
# Update (§2.4)


def test_update_required_fields_and_type(alice: Any, project: dict[str, Any]) -> None:
    folder = alice.folder("f", project["id"])
    path = f"/entity/{folder['id']}"
    without = {k: v for k, v in folder.items() if k != "id"}
    assert alice.error(400, "PUT", path, without) == "Updated Entity cannot have a null id"
    without = {k: v for k, v in folder.items() if k != "etag"}
    assert alice.error(400, "PUT", path, without) == "The eTag of the node is required."
    without = {k: v for k, v in folder.items() if k != "parentId"}
    assert alice.error(400, "PUT", path, without) == "The parent id of the node is required."
    assert alice.error(400, "PUT", path, {**folder, "concreteType": PROJECT}) == (
        f"The Entity: {folder['id']} has an entityType={FOLDER} and cannot be changed to "
        f"entityType={PROJECT}"
    )


def test_update_etag_and_412(alice: Any, project: dict[str, Any]) -> None:
    folder = alice.folder("f", project["id"])
    updated = alice.ok("PUT", f"/entity/{folder['id']}", {**folder, "description": "new"})
    assert updated["etag"] != folder["etag"]
    assert updated["description"] == "new"
    assert alice.error(412, "PUT", f"/entity/{folder['id']}", {**folder, "description": "x"}) == (
        f"Object: {folder['id']} was updated since you last fetched it, retrieve it again and "
        "re-apply the update"
    )
    # The body's id is used, not the path's.
    other = alice.folder("g", project["id"])
    renamed = alice.ok("PUT", f"/entity/{other['id']}", {**updated, "name": "f2"})
    assert renamed["id"] == folder["id"] and renamed["name"] == "f2"
    assert alice.ok("GET", f"/entity/{other['id']}")["name"] == "g"


def test_update_authorization(
    emu: Emulator, alice: Any, bob: Any, carol: Any, project: dict[str, Any]
) -> None:
    folder = alice.folder("f", project["id"])
    grant(alice, project["id"], [(user_id(emu, "bob"), ["READ"])])
    assert bob.error(403, "PUT", f"/entity/{folder['id']}", {**folder, "name": "z"}) == (
        "You lack UPDATE access to the requested entity."
    )
    grant(
        alice,
        project["id"],
        [(user_id(emu, "bob"), ["READ"]), (user_id(emu, "carol"), ["READ", "UPDATE"])],
    )
    assert carol.error(403, "PUT", f"/entity/{folder['id']}", {**folder, "name": "z"}) == (
        "Only certified users may create or update content in Synapse."
    )
    # ... but an uncertified user may edit a project.
    fresh = alice.ok("GET", f"/entity/{project['id']}")
    assert carol.ok("PUT", f"/entity/{project['id']}", {**fresh, "description": "by carol"})


def test_rename_conflict_uses_parent_as_sent(alice: Any, project: dict[str, Any]) -> None:
    alice.folder("taken", project["id"])
    folder = alice.folder("mine", project["id"])
    numeric_parent = project["id"].replace("syn", "")
    assert (
        alice.error(
            409,
            "PUT",
            f"/entity/{folder['id']}",
            {**folder, "name": "taken", "parentId": numeric_parent},
        )
        == f"An entity with the name: taken already exists with a parentId: {numeric_parent}"
    )
    assert alice.error(400, "PUT", f"/entity/{folder['id']}", {**folder, "name": "a/b"}) == (
        f"Invalid Name: 'a/b'. {NAME_RULES}"
    )


def test_move_rules(emu: Emulator, alice: Any, bob: Any, project: dict[str, Any]) -> None:
    a = alice.folder("a", project["id"])
    b = alice.folder("b", a["id"])
    c = alice.folder("c", b["id"])
    assert alice.error(400, "PUT", f"/entity/{a['id']}", {**a, "parentId": c["id"]}) == (
        "Invalid hierarchy: an entity cannot be an ancestor of itself"
    )
    assert alice.error(400, "PUT", f"/entity/{a['id']}", {**a, "parentId": a["id"]}) == (
        "Invalid hierarchy: an entity cannot be an ancestor of itself"
    )
    moved = alice.ok("PUT", f"/entity/{c['id']}", {**c, "parentId": a["id"]})
    assert moved["parentId"] == a["id"]
    # Bob may edit inside the project but lacks CHANGE_PERMISSIONS; elsewhere he lacks CREATE.
    grant(alice, project["id"], [(user_id(emu, "bob"), ["READ", "CREATE", "UPDATE"])])
    current = alice.ok("GET", f"/entity/{b['id']}")
    assert bob.error(403, "PUT", f"/entity/{b['id']}", {**current, "parentId": project["id"]}) == (
        "CHANGE_PERMISSIONS is required to move to a new location"
    )
    elsewhere = alice.project(uniq())
    assert bob.error(
        403, "PUT", f"/entity/{b['id']}", {**current, "parentId": elsewhere["id"]}
    ) == (
        f"You cannot move content into the new location, {elsewhere['id']}. "
        "You lack CREATE access to the requested entity."
    )
    assert alice.error(400, "PUT", f"/entity/{b['id']}", {**current, "parentId": ROOT}) == (
        f"Entity type: {FOLDER} cannot have a parent of type: null"
    )
    moved = alice.ok("PUT", f"/entity/{b['id']}", {**current, "parentId": elsewhere["id"]})
    assert moved["parentId"] == elsewhere["id"]


# ---------------------------------------------------------------------------------------------
# Versions (§2.1, §2.4)


def test_versions_list_get_delete(emu: Emulator, alice: Any, project: dict[str, Any]) -> None:
    h1 = make_file_handle(emu, "alice", content=b"one")
    h2 = make_file_handle(emu, "alice", content=b"two")
    v1 = alice.ok("POST", "/entity", file_body("file.txt", project["id"], h1))
    v2 = alice.ok(
        "PUT",
        f"/entity/{v1['id']}",
        {**v1, "versionLabel": "second", "versionComment": "c2"},
        newVersion="true",
    )
    assert (v2["versionNumber"], v2["versionLabel"], v2["versionComment"]) == (2, "second", "c2")
    v3 = alice.ok("PUT", f"/entity/{v1['id']}", {**v2, "dataFileHandleId": h2})
    # A different file handle (different MD5) auto-versions and resets label/comment.
    assert (v3["versionNumber"], v3["versionLabel"]) == (3, "3")
    assert "versionComment" not in v3
    listed = alice.ok("GET", f"/entity/{v1['id']}/version")
    assert [v["versionNumber"] for v in listed["results"]] == [3, 2, 1]
    assert listed["results"][0]["isLatestVersion"] is True
    assert listed["results"][1]["versionLabel"] == "second"
    paged = alice.ok("GET", f"/entity/{v1['id']}/version", offset=1, limit=1)
    assert [v["versionNumber"] for v in paged["results"]] == [2]
    assert alice.error(400, "GET", f"/entity/{v1['id']}/version", offset=-1) == (
        "pagination offset must be 0 or greater"
    )
    assert alice.error(400, "GET", f"/entity/{v1['id']}/version", limit=0) == (
        "pagination limit must be 1 or greater"
    )
    old = alice.ok("GET", f"/entity/{v1['id']}/version/1")
    assert old["etag"] == ZERO_ETAG
    assert old["dataFileHandleId"] == h1
    assert old["isLatestVersion"] is False
    assert alice.ok("GET", f"/entity/{v1['id']}/version/3")["etag"] == v3["etag"]
    alice.ok("DELETE", f"/entity/{v1['id']}/version/1")
    alice.ok("DELETE", f"/entity/{v1['id']}/version/3")
    current = alice.ok("GET", f"/entity/{v1['id']}")
    assert current["versionNumber"] == 2
    assert alice.error(400, "DELETE", f"/entity/{v1['id']}/version/2") == (
        "Cannot delete the last version of a node"
    )


def test_same_md5_replaces_handle_in_place(
    emu: Emulator, alice: Any, project: dict[str, Any]
) -> None:
    h1 = make_file_handle(emu, "alice", content=b"same")
    h2 = make_file_handle(emu, "alice", content=b"same")
    created = alice.ok("POST", "/entity", file_body("f", project["id"], h1))
    updated = alice.ok("PUT", f"/entity/{created['id']}", {**created, "dataFileHandleId": h2})
    assert updated["versionNumber"] == 1
    assert updated["dataFileHandleId"] == h2


def test_version_comment_limit(emu: Emulator, alice: Any, project: dict[str, Any]) -> None:
    created = alice.ok(
        "POST", "/entity", file_body("f", project["id"], make_file_handle(emu, "alice"))
    )
    assert (
        alice.error(
            400,
            "PUT",
            f"/entity/{created['id']}",
            {**created, "versionComment": "c" * 257},
            newVersion="true",
        )
        == "Version comment length exceeds 256."
    )


# ---------------------------------------------------------------------------------------------
# Trash (§2.5)


def test_delete_moves_to_trash(emu: Emulator, alice: Any, project: dict[str, Any]) -> None:
    folder = alice.folder("Results", project["id"])
    child = alice.folder("child", folder["id"])
    grant(alice, folder["id"], [(PUBLIC, ["READ"])])
    grant(alice, child["id"], [(PUBLIC, ["READ"])])
    response = alice.call("DELETE", f"/entity/{folder['id']}")
    assert response.status_code == 204 and response.content == b""
    assert alice.error(404, "GET", f"/entity/{folder['id']}") == (
        f"Entity {folder['id']} is in trash can."
    )
    assert alice.error(404, "GET", f"/entity/{child['id']}") == (
        f"Entity {child['id']} is in trash can."
    )
    # The name is free again at once; DELETE is idempotent, also for unknown ids.
    assert alice.folder("Results", project["id"])["name"] == "Results"
    assert alice.call("DELETE", f"/entity/{folder['id']}").status_code == 204
    assert alice.call("DELETE", "/entity/syn999999999").status_code == 204
    view = alice.ok("GET", "/trashcan/view")
    item = next(i for i in view["results"] if i["entityId"] == folder["id"])
    assert item["entityName"] == "Results"
    assert item["originalParentId"] == project["id"]
    assert item["deletedByPrincipalId"] == str(user_id(emu, "alice"))
    # Restoring into the old parent now conflicts by name; restore elsewhere instead.
    assert alice.error(409, "PUT", f"/trashcan/restore/{folder['id']}")
    other = alice.folder("other", project["id"])
    alice.ok("PUT", f"/trashcan/restore/{folder['id']}/{other['id']}")
    restored = alice.ok("GET", f"/entity/{folder['id']}")
    assert (restored["name"], restored["parentId"]) == ("Results", other["id"])
    # Every ACL of the subtree was dropped by the trip through the trash.
    for entity in (folder, child):
        reason = alice.error(404, "GET", f"/entity/{entity['id']}/acl")
        assert reason.endswith(f"/entity/{project['id']}/acl")


def test_trash_restore_and_purge(alice: Any, bob: Any, project: dict[str, Any]) -> None:
    folder = alice.folder("x", project["id"])
    alice.ok("PUT", f"/trashcan/trash/{folder['id']}")
    assert (
        alice.error(404, "GET", f"/entity/{folder['id']}")
        == f"Entity {folder['id']} is in trash can."
    )
    assert any(i["entityId"] == folder["id"] for i in alice.ok("GET", "/trashcan/view")["results"])
    assert not any(
        i["entityId"] == folder["id"] for i in bob.ok("GET", "/trashcan/view")["results"]
    )
    alice.ok("PUT", f"/trashcan/restore/{folder['id']}")
    assert alice.ok("GET", f"/entity/{folder['id']}")["name"] == "x"
    alice.ok("DELETE", f"/entity/{folder['id']}")
    alice.ok("PUT", f"/trashcan/purge/{folder['id']}")
    assert alice.error(404, "GET", f"/entity/{folder['id']}") == (
        f"Resource: '{folder['id']}' does not exist"
    )
    assert not any(
        i["entityId"] == folder["id"] for i in alice.ok("GET", "/trashcan/view")["results"]
    )


def test_delete_needs_delete_permission(
    emu: Emulator, alice: Any, bob: Any, project: dict[str, Any]
) -> None:
    folder = alice.folder("x", project["id"])
    grant(alice, project["id"], [(user_id(emu, "bob"), ["READ", "UPDATE"])])
    assert bob.error(403, "DELETE", f"/entity/{folder['id']}") == (
        "You lack DELETE access to the requested entity."
    )
    anonymous = type(bob)(emu, None)
    assert anonymous.error(403, "DELETE", f"/entity/{folder['id']}") == (
        "Anonymous users have only READ access permission."
    )
    assert alice.ok("GET", f"/entity/{folder['id']}")["id"] == folder["id"]


# ---------------------------------------------------------------------------------------------
# Children (§2.6) and lookup (§2.7)


def _children(api: Any, parent: str | None, token: str | None = None, **extra: Any) -> Any:
    body = {"parentId": parent, "includeTypes": ["folder", "file"], "nextPageToken": token, **extra}
    return api.ok("POST", "/entity/children", body)


def test_children_token_paging(alice: Any, project: dict[str, Any]) -> None:
    parent = alice.folder("many", project["id"])
    names = [f"item{i:03d}" for i in range(120)]
    for name in names:
        alice.folder(name, parent["id"])
    first = _children(alice, parent["id"])
    assert len(first["page"]) == 50 and first["nextPageToken"] == "50a50"
    second = _children(alice, parent["id"], first["nextPageToken"])
    assert len(second["page"]) == 50 and second["nextPageToken"] == "50a100"
    third = _children(alice, parent["id"], second["nextPageToken"])
    assert len(third["page"]) == 20 and "nextPageToken" not in third
    assert [h["name"] for h in first["page"] + second["page"] + third["page"]] == names
    header = first["page"][0]
    assert header["type"] == FOLDER
    assert header["benefactorId"] == int(project["id"][3:])
    assert {"id", "name", "versionNumber", "versionLabel", "isLatestVersion", "createdOn"} <= set(
        header
    )
    desc = _children(
        alice, parent["id"], sortBy="NAME", sortDirection="DESC", includeTotalChildCount=True
    )
    assert desc["page"][0]["name"] == "item119"
    assert desc["totalChildCount"] == 120
    small = _children(alice, parent["id"], "10a115")
    assert [h["name"] for h in small["page"]] == names[115:]


def test_children_request_errors(alice: Any, project: dict[str, Any]) -> None:
    def bad(body: dict[str, Any]) -> str:
        return str(
            alice.error(400, "POST", "/entity/children", {"parentId": project["id"], **body})
        )

    assert bad({}) == "EntityChildrenRequest.includeTypes is required."
    assert bad({"includeTypes": []}) == (
        "EntityChildrenRequest.includeTypes must include at least one type"
    )
    assert bad({"includeTypes": ["folder"], "nextPageToken": "abc"}) == "Unknow token format: abc"
    assert bad({"includeTypes": ["folder"], "nextPageToken": "51a0"}) == "Limit must not exceed: 50"


def test_children_of_null_parent_are_readable_projects(alice: Any, bob: Any) -> None:
    mine = alice.project(uniq("Listed"))
    seen: list[str] = []
    token = None
    while True:
        page = alice.ok("POST", "/entity/children", {"parentId": None, "nextPageToken": token})
        seen += [h["id"] for h in page["page"]]
        token = page.get("nextPageToken")
        if token is None:
            break
    assert mine["id"] in seen
    bobs = bob.ok("POST", "/entity/children", {"parentId": None, "includeTypes": ["folder"]})
    assert mine["id"] not in [h["id"] for h in bobs["page"]]


def test_unreadable_children_are_hidden(
    emu: Emulator, alice: Any, bob: Any, project: dict[str, Any]
) -> None:
    visible = alice.folder("visible", project["id"])
    hidden = alice.folder("hidden", project["id"])
    grant(alice, project["id"], [(user_id(emu, "bob"), ["READ"])])
    grant(alice, hidden["id"], [])
    alice_ids = [h["id"] for h in _children(alice, project["id"])["page"]]
    bob_page = _children(bob, project["id"], includeTotalChildCount=True)
    assert set(alice_ids) == {visible["id"], hidden["id"]}
    assert [h["id"] for h in bob_page["page"]] == [visible["id"]]
    assert bob_page["totalChildCount"] == 1
    assert bob.error(
        403, "POST", "/entity/child", {"parentId": project["id"], "entityName": "hidden"}
    ) == ("Lack of READ permission on the requested entity.")
    private = alice.project(uniq())
    assert bob.error(
        403, "POST", "/entity/children", {"parentId": private["id"], "includeTypes": ["folder"]}
    ) == ("You lack READ access to the requested entity.")


def test_child_lookup(alice: Any, bob: Any, project: dict[str, Any]) -> None:
    folder = alice.folder("Data", project["id"])
    found = alice.ok("POST", "/entity/child", {"parentId": project["id"], "entityName": "Data"})
    assert found == {"id": folder["id"]}
    assert alice.error(
        404, "POST", "/entity/child", {"parentId": project["id"], "entityName": "data"}
    ) == (f"Child not found for parent: '{project['id']}' with name: 'data'")
    assert alice.ok("POST", "/entity/child", {"parentId": None, "entityName": project["name"]}) == {
        "id": project["id"]
    }
    assert alice.error(404, "POST", "/entity/child", {"entityName": "no such project"}) == (
        "Child not found for parent: '4489' with name: 'no such project'"
    )
    assert alice.error(400, "POST", "/entity/child", {"parentId": project["id"]}) == (
        "EntityLookupRequest.entityName is required."
    )
    assert bob.error(
        403, "POST", "/entity/child", {"parentId": project["id"], "entityName": "Data"}
    ) == ("Lack of READ permission on the parent entity.")
    assert alice.error(
        403, "POST", "/entity/child", {"parentId": "syn999999999", "entityName": "x"}
    ) == ("Lack of READ permission on the parent entity.")


# ---------------------------------------------------------------------------------------------
# Headers, type, path (§2.8)


def test_header_batch_excludes_failures(
    emu: Emulator, alice: Any, bob: Any, project: dict[str, Any]
) -> None:
    readable = alice.folder("r", project["id"])
    private = alice.project(uniq())
    grant(alice, readable["id"], [(user_id(emu, "bob"), ["READ"])])
    refs = [{"targetId": readable["id"]}, {"targetId": private["id"]}, {"targetId": "syn999999999"}]
    result = bob.ok("POST", "/entity/header", {"references": refs})
    assert [h["id"] for h in result["results"]] == [readable["id"]]
    assert result["totalNumberOfResults"] == 3
    header = result["results"][0]
    assert header["type"] == FOLDER and header["benefactorId"] == int(readable["id"][3:])
    typed = alice.ok("GET", f"/entity/{readable['id']}/type")
    assert typed["id"] == readable["id"] and typed["type"] == FOLDER
    batch = bob.ok("GET", "/entity/type", batch=f"{readable['id']},{private['id']}")
    assert [h["id"] for h in batch["results"]] == [readable["id"]]


def test_invalid_synapse_id(alice: Any) -> None:
    assert alice.error(400, "GET", "/entity/synXYZ") == "synXYZ is not a valid Synapse ID."
    project = alice.project(uniq())
    numeric = project["id"][3:]
    assert alice.ok("GET", f"/entity/{numeric}")["id"] == project["id"]
    assert alice.ok("GET", f"/entity/SYN{numeric}")["id"] == project["id"]


def test_path_redacts_unreadable_ancestors(
    emu: Emulator, alice: Any, bob: Any, project: dict[str, Any]
) -> None:
    folder = alice.folder("f", project["id"])
    sub = alice.folder("s", folder["id"])
    path = alice.ok("GET", f"/entity/{sub['id']}/path")["path"]
    assert path == [
        {"id": ROOT, "name": "root", "type": FOLDER},
        {"id": project["id"], "name": project["name"], "type": PROJECT},
        {"id": folder["id"], "name": "f", "type": FOLDER},
        {"id": sub["id"], "name": "s", "type": FOLDER},
    ]
    grant(alice, sub["id"], [(user_id(emu, "bob"), ["READ"])])
    bobs = bob.ok("GET", f"/entity/{sub['id']}/path")["path"]
    assert [p["name"] for p in bobs] == ["root", "Redacted", "Redacted", "s"]
    assert bob.error(403, "GET", f"/entity/{folder['id']}/path")


# ---------------------------------------------------------------------------------------------
# Permissions, access, benefactor (§2.9, §2.10)


def test_permissions_of_owner_reader_and_uncertified(
    emu: Emulator, alice: Any, bob: Any, carol: Any, project: dict[str, Any]
) -> None:
    folder = alice.folder("f", project["id"])
    mine = alice.ok("GET", f"/entity/{folder['id']}/permissions")
    for flag in (
        "canView",
        "canEdit",
        "canMove",
        "canAddChild",
        "canChangePermissions",
        "canChangeSettings",
        "canDelete",
        "canDownload",
        "isCertifiedUser",
    ):
        assert mine[flag] is True, flag
    assert mine["ownerPrincipalId"] == user_id(emu, "alice")
    assert mine["canPublicRead"] is False
    # Synapse does not check for an own ACL (synapse-api-2.md §2.1): CHANGE_PERMISSIONS is enough.
    assert mine["canEnableInheritance"] is True
    grant(
        alice,
        project["id"],
        [
            (user_id(emu, "bob"), ["READ"]),
            (user_id(emu, "carol"), ["READ", "UPDATE", "CREATE"]),
            (PUBLIC, ["READ"]),
        ],
    )
    bobs = bob.ok("GET", f"/entity/{folder['id']}/permissions")
    assert (bobs["canView"], bobs["canEdit"], bobs["canDelete"], bobs["canAddChild"]) == (
        True,
        False,
        False,
        False,
    )
    assert bobs["canPublicRead"] is True
    carols = carol.ok("GET", f"/entity/{folder['id']}/permissions")
    assert carols["isCertifiedUser"] is False
    assert carols["canEdit"] is False and carols["canCertifiedUserEdit"] is True
    assert carols["canAddChild"] is False and carols["canCertifiedUserAddChild"] is True
    grant(alice, folder["id"], [])
    assert alice.ok("GET", f"/entity/{folder['id']}/permissions")["canEnableInheritance"] is True


def test_access_and_benefactor(
    emu: Emulator, alice: Any, bob: Any, project: dict[str, Any]
) -> None:
    folder = alice.folder("f", project["id"])
    sub = alice.folder("s", folder["id"])
    assert alice.ok("GET", f"/entity/{sub['id']}/access", accessType="UPDATE") == {"result": True}
    assert bob.ok("GET", f"/entity/{sub['id']}/access", accessType="READ") == {"result": False}
    benefactor = alice.ok("GET", f"/entity/{sub['id']}/benefactor")
    assert benefactor["id"] == project["id"] and benefactor["type"] == PROJECT
    grant(alice, folder["id"], [(user_id(emu, "bob"), ["READ"])])
    assert alice.ok("GET", f"/entity/{sub['id']}/benefactor")["id"] == folder["id"]
    assert bob.ok("GET", f"/entity/{sub['id']}/access", accessType="READ") == {"result": True}
    assert bob.ok("GET", f"/entity/{sub['id']}/benefactor")["id"] == folder["id"]
    private = alice.folder("p", project["id"])
    assert bob.error(403, "GET", f"/entity/{private['id']}/benefactor") == (
        "You lack READ access to the requested entity."
    )


# ---------------------------------------------------------------------------------------------
# Limits (§2.3-6)


def test_depth_limit(alice: Any, project: dict[str, Any]) -> None:
    parent = project["id"]
    depth = 2  # root, project
    while depth < 50:
        parent = alice.folder(f"d{depth}", parent)["id"]
        depth += 1
    assert alice.error(400, "POST", "/entity", folder_body("too deep", parent)) == (
        f"Exceeded the maximum hierarchical depth of: 50 for parent: {parent}"
    )


def test_children_limit(emu: Emulator, alice: Any, project: dict[str, Any]) -> None:
    """10,000 children per container: the rows are written directly (cheap), the 10,001st
    create goes over HTTP. Projects under the root are not limited."""
    parent = alice.folder("full", project["id"])
    parent_id = int(parent["id"][3:])
    store = emu.store
    with store.transaction():
        first = store.next_id("entity")
        for _ in range(9_999):
            store.next_id("entity")
        created = "2024-01-01T00:00:00.000Z"
        store.executemany(
            "INSERT INTO nodes(id, parent_id, name, type, etag, created_on, created_by, "
            "modified_on, modified_by) VALUES (?, ?, ?, 'folder', 'e', ?, 1, ?, 1)",
            [(first + i, parent_id, f"n{i}", created, created) for i in range(10_000)],
        )
        store.executemany(
            "INSERT INTO revisions(node_id, rev, label, modified_on, modified_by) "
            "VALUES (?, 1, '1', ?, 1)",
            [(first + i, created) for i in range(10_000)],
        )
    assert alice.error(400, "POST", "/entity", folder_body("one more", parent["id"])) == (
        f"Limit of 10000 children exceeded for parent: {parent['id']}"
    )
    page = _children(alice, parent["id"], "50a9990")
    assert len(page["page"]) == 10 and "nextPageToken" not in page


def test_entity_json_has_no_nulls(alice: Any, project: dict[str, Any]) -> None:
    folder = alice.folder("f", project["id"])
    raw = alice.call("GET", f"/entity/{folder['id']}").text
    assert "null" not in raw
    assert json.loads(raw)["concreteType"] == FOLDER


def test_create_checks_run_in_synapses_order(
    emu: Emulator, alice: Any, bob: Any, project: dict[str, Any]
) -> None:
    """§2.3: lengths → parent → type matrix → name rules → parent in trash → authorization →
    limits → name conflict. Each pair below would fail both checks; the earlier one answers."""
    trashed = alice.folder("trashed", project["id"])
    alice.ok("DELETE", f"/entity/{trashed['id']}")
    # Parent type before name rules.
    assert alice.error(400, "POST", "/entity", folder_body("bad/name", ROOT)) == (
        f"Entity type: {FOLDER} cannot have a parent of type: null"
    )
    # Name rules before the trash check.
    assert alice.error(400, "POST", "/entity", folder_body("bad/name", trashed["id"])) == (
        f"Invalid Name: 'bad/name'. {NAME_RULES}"
    )
    # The trash check before authorization.
    assert bob.error(404, "POST", "/entity", folder_body("x", trashed["id"])) == (
        f"The given parent: {trashed['id']} does not exist"
    )
    # Authorization before the name conflict.
    alice.folder("taken", project["id"])
    assert bob.error(403, "POST", "/entity", folder_body("taken", project["id"])) == (
        "You lack CREATE access to the requested entity."
    )
    # The file handle creator check before the name conflict.
    grant(alice, project["id"], [(user_id(emu, "bob"), ["READ", "CREATE"])])
    handle = make_file_handle(emu, "alice")
    assert bob.error(403, "POST", "/entity", file_body("taken", project["id"], handle)).startswith(
        "Only the creator of a FileHandle can access it directly by its ID."
    )


def test_global_conventions(emu: Emulator, alice: Any, project: dict[str, Any]) -> None:
    """§0.2 and §11.1: unknown paths, methods, oversized bodies, charset defaults."""
    assert alice.error(404, "GET", "/no/such/thing") == (
        "GET was not found. Please reference API documentation at https://rest-docs.synapse.org/rest/"
    )
    assert alice.call("PATCH", f"/entity/{project['id']}", {}).status_code == 405
    huge = folder_body("big", project["id"], description="x" * (2 * 1024 * 1024 + 1))
    assert alice.call("POST", "/entity", huge).status_code == 413
    # Without a charset the body is read as ISO-8859-1, as Synapse does.
    raw = json.dumps(folder_body("latin", project["id"], description="café"), ensure_ascii=False)
    response = alice.session.post(
        emu.repo_endpoint + "/entity",
        data=raw.encode("utf-8"),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 201
    assert response.json()["description"] == "cafÃ©"
    utf8 = alice.ok("POST", "/entity", folder_body("utf8", project["id"], description="café"))
    assert utf8["description"] == "café"


def test_malformed_json_is_400(unlogged: Any) -> None:
    response = unlogged.session.post(
        unlogged.emulator.repo_endpoint + "/entity", data=b"{not json", timeout=10
    )
    assert response.status_code == 400
    assert response.json()["concreteType"] == "org.sagebionetworks.repo.model.ErrorResponse"
