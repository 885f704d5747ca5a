"""Emulator behaviour over HTTP: ACLs (§4), annotations v2 (§3) and entity bundles v2 (§2.9)."""

from __future__ import annotations

from typing import Any

import pytest
from emulator_core_support import (
    ADMIN_SET,
    ANONYMOUS_ID,
    AUTHENTICATED,
    FOLDER,
    PROJECT,
    PUBLIC,
    ROOT,
    ZERO_ETAG,
    entries_of,
    file_body,
    folder_body,
    grant,
    make_file_handle,
    uniq,
    user_id,
)

from synapse_declare.emulator import Emulator


@pytest.fixture
def unlogged(make_emulator: Any, api_for: Any) -> Any:
    """For requests that are deliberately not valid Synapse models: the session's conformance
    gate checks requests as well as responses, so these exchanges are not logged."""
    return api_for(make_emulator(request_log=None), "alice")


def _inherits(emu: Emulator, benefactor: str) -> str:
    return (
        "The requested ACL does not exist. This entity inherits its permissions from: "
        f"{emu.repo_endpoint}/entity/{benefactor}/acl"
    )


# ---------------------------------------------------------------------------------------------
# ACLs: get / create / update / delete, inheritance (§4.1)


def test_get_acl(emu: Emulator, alice: Any, bob: Any, project: dict[str, Any]) -> None:
    acl = alice.ok("GET", f"/entity/{project['id']}/acl")
    assert acl["id"] == project["id"]
    assert {"etag", "creationDate"} <= set(acl)
    assert isinstance(acl["resourceAccess"][0]["principalId"], int)
    # No READ check on GET .../acl.
    assert bob.ok("GET", f"/entity/{project['id']}/acl")["id"] == project["id"]
    folder = alice.folder("f", project["id"])
    assert alice.error(404, "GET", f"/entity/{folder['id']}/acl") == _inherits(emu, project["id"])
    assert alice.error(404, "GET", "/entity/syn999999999/acl") == (
        "Benefactor not found for: syn999999999"
    )


def test_create_acl_overrides_inheritance(
    emu: Emulator, alice: Any, bob: Any, project: dict[str, Any]
) -> None:
    folder = alice.folder("f", project["id"])
    child = alice.folder("c", folder["id"])
    before = alice.ok("GET", f"/entity/{folder['id']}")
    # synapseclient POSTs the benefactor's ACL body, id and etag included: both are ignored.
    benefactor_acl = alice.ok("GET", f"/entity/{project['id']}/acl")
    body = {
        **benefactor_acl,
        "resourceAccess": benefactor_acl["resourceAccess"]
        + [{"principalId": user_id(emu, "bob"), "accessType": ["READ"]}],
    }
    response = alice.call("POST", f"/entity/{folder['id']}/acl", body)
    assert response.status_code == 201
    created = response.json()
    assert created["id"] == folder["id"]
    assert created["etag"] != benefactor_acl["etag"]
    assert entries_of(created)[user_id(emu, "bob")] == {"READ"}
    # The entity was touched; the folder is now the benefactor of its subtree.
    assert alice.ok("GET", f"/entity/{folder['id']}")["etag"] != before["etag"]
    assert alice.ok("GET", f"/entity/{child['id']}/benefactor")["id"] == folder["id"]
    assert alice.error(404, "GET", f"/entity/{child['id']}/acl") == _inherits(emu, folder["id"])
    assert bob.ok("GET", f"/entity/{child['id']}")["id"] == child["id"]
    assert bob.error(403, "GET", f"/entity/{project['id']}")
    assert (
        alice.error(403, "POST", f"/entity/{folder['id']}/acl", body)
        == "Resource already has an ACL."
    )


def test_create_acl_needs_change_permissions_on_benefactor(
    emu: Emulator, alice: Any, bob: Any, project: dict[str, Any]
) -> None:
    folder = alice.folder("f", project["id"])
    grant(alice, project["id"], [(user_id(emu, "bob"), ["READ", "UPDATE", "CREATE"])])
    body = {"resourceAccess": [{"principalId": user_id(emu, "bob"), "accessType": ["READ"]}]}
    assert bob.error(403, "POST", f"/entity/{folder['id']}/acl", body) == (
        "You lack CHANGE_PERMISSIONS access to the requested entity."
    )


def test_update_acl(emu: Emulator, alice: Any, project: dict[str, Any]) -> None:
    folder = alice.folder("f", project["id"])
    acl = alice.ok("GET", f"/entity/{project['id']}/acl")
    before = alice.ok("GET", f"/entity/{project['id']}")
    acl["resourceAccess"].append({"principalId": PUBLIC, "accessType": ["READ"]})
    updated = alice.ok("PUT", f"/entity/{project['id']}/acl", acl)
    assert updated["etag"] != acl["etag"]
    assert entries_of(updated)[PUBLIC] == {"READ"}
    assert alice.ok("GET", f"/entity/{project['id']}")["etag"] != before["etag"]
    assert alice.error(412, "PUT", f"/entity/{project['id']}/acl", acl) == "E-tags do not match."
    no_etag = {k: v for k, v in updated.items() if k != "etag"}
    assert (
        alice.error(400, "PUT", f"/entity/{project['id']}/acl", no_etag) == "acl.etag is required."
    )
    assert alice.error(400, "PUT", f"/entity/{folder['id']}/acl", updated) == (
        f"The path ID: {folder['id']} does not match the ACL's ID: {project['id']}"
    )
    assert alice.error(
        403, "PUT", f"/entity/{folder['id']}/acl", {**updated, "id": folder["id"]}
    ) == ("Cannot update ACL for a resource which inherits its permissions.")
    # Full replacement of resourceAccess.
    replaced = alice.ok(
        "PUT",
        f"/entity/{project['id']}/acl",
        {
            **updated,
            "resourceAccess": [
                {"principalId": user_id(emu, "alice"), "accessType": ["READ", "CHANGE_PERMISSIONS"]}
            ],
        },
    )
    assert entries_of(replaced) == {user_id(emu, "alice"): {"READ", "CHANGE_PERMISSIONS"}}


def test_delete_acl_restores_inheritance(
    emu: Emulator, alice: Any, bob: Any, project: dict[str, Any]
) -> None:
    folder = alice.folder("f", project["id"])
    grant(alice, folder["id"], [(user_id(emu, "bob"), ["READ"])])
    assert bob.ok("GET", f"/entity/{folder['id']}")["id"] == folder["id"]
    # Bob lacks CHANGE_PERMISSIONS: that is checked before anything else.
    assert bob.error(403, "DELETE", f"/entity/{folder['id']}/acl") == (
        "You lack CHANGE_PERMISSIONS access to the requested entity."
    )
    before = alice.ok("GET", f"/entity/{folder['id']}")
    response = alice.call("DELETE", f"/entity/{folder['id']}/acl")
    assert response.status_code == 204
    assert alice.ok("GET", f"/entity/{folder['id']}")["etag"] != before["etag"]
    assert alice.error(404, "GET", f"/entity/{folder['id']}/acl") == _inherits(emu, project["id"])
    assert (
        bob.error(403, "GET", f"/entity/{folder['id']}")
        == "You lack READ access to the requested entity."
    )
    assert alice.error(403, "DELETE", f"/entity/{folder['id']}/acl") == (
        "Resource already inherits its permissions."
    )
    assert alice.error(403, "DELETE", f"/entity/{project['id']}/acl") == (
        "Cannot restore inheritance for resource which has no parent."
    )
    assert alice.error(404, "DELETE", "/entity/syn999999999/acl") == (
        "Benefactor not found for: syn999999999"
    )


# ---------------------------------------------------------------------------------------------
# ACL content validation (§4.3)


def _put_entries(api: Any, entity_id: str, entries: list[Any]) -> Any:
    acl = api.ok("GET", f"/entity/{entity_id}/acl")
    return api.call("PUT", f"/entity/{entity_id}/acl", {**acl, "resourceAccess": entries})


def test_acl_content_validation(emu: Emulator, alice: Any, project: dict[str, Any]) -> None:
    me = {"principalId": user_id(emu, "alice"), "accessType": sorted(ADMIN_SET)}
    cases = [
        (
            [me, {"principalId": ANONYMOUS_ID, "accessType": ["READ"]}],
            "Cannot assign permissions to anonymous. To share resources with anonymous users, use "
            "the PUBLIC group id (273949)",
        ),
        (
            [me, {"principalId": PUBLIC, "accessType": ["READ", "DOWNLOAD"]}],
            "Only READ permissions can be assigned to the public group",
        ),
        ([me, {"principalId": PUBLIC, "accessType": []}], "No access types specified."),
        (
            [me, {"principalId": PUBLIC, "accessType": ["REVIEW_SUBMISSIONS"]}],
            "The access type REVIEW_SUBMISSIONS is not allowed for ENTITY.",
        ),
    ]
    for entries, reason in cases:
        response = _put_entries(alice, project["id"], entries)
        assert response.status_code == 400, response.text
        assert response.json()["reason"] == reason
    # Nothing was changed by the refused updates.
    assert entries_of(alice.ok("GET", f"/entity/{project['id']}/acl")) == {
        user_id(emu, "alice"): ADMIN_SET
    }


def test_acl_null_rows_and_principals(unlogged: Any) -> None:
    project = unlogged.project(uniq())
    me = int(unlogged.ok("GET", "/userProfile")["ownerId"])
    mine = {"principalId": me, "accessType": ["READ", "CHANGE_PERMISSIONS"]}
    response = _put_entries(unlogged, project["id"], [mine, None])
    assert (response.status_code, response.json()["reason"]) == (400, "ACL row is null.")
    response = _put_entries(unlogged, project["id"], [mine, {"accessType": ["READ"]}])
    assert (response.status_code, response.json()["reason"]) == (400, "Group ID is null")


def test_only_certified_users_may_let_authenticated_users_download(
    emu: Emulator, carol: Any, alice: Any
) -> None:
    carols = carol.project(uniq("Carol"))
    entries = [
        {"principalId": user_id(emu, "carol"), "accessType": sorted(ADMIN_SET)},
        {"principalId": AUTHENTICATED, "accessType": ["READ", "DOWNLOAD"]},
    ]
    response = _put_entries(carol, carols["id"], entries)
    assert response.status_code == 403
    assert response.json() == {
        "concreteType": "org.sagebionetworks.repo.model.ErrorResponse",
        "reason": "Only certified users can allow authenticated users to download.",
        "errorCode": "USER_CERTIFICATION_REQUIRED",
    }
    allowed = _put_entries(
        alice,
        alice.project(uniq())["id"],
        [
            {"principalId": user_id(emu, "alice"), "accessType": sorted(ADMIN_SET)},
            {"principalId": AUTHENTICATED, "accessType": ["READ", "DOWNLOAD"]},
        ],
    )
    assert allowed.status_code == 200


def test_caller_may_not_revoke_own_acl_editing(
    emu: Emulator, alice: Any, bob: Any, project: dict[str, Any]
) -> None:
    grant(alice, project["id"], [(user_id(emu, "bob"), ["READ", "CHANGE_PERMISSIONS"])])
    acl = bob.ok("GET", f"/entity/{project['id']}/acl")
    without_bob = [e for e in acl["resourceAccess"] if e["principalId"] != user_id(emu, "bob")]
    assert bob.error(
        400, "PUT", f"/entity/{project['id']}/acl", {**acl, "resourceAccess": without_bob}
    ) == ("Caller is trying to revoke their own ACL editing permissions.")
    # Keeping CHANGE_PERMISSIONS through a team is enough.
    via_team = [
        *without_bob,
        {"principalId": emu.principal_ids["Curators"], "accessType": ["CHANGE_PERMISSIONS"]},
    ]
    assert bob.ok("PUT", f"/entity/{project['id']}/acl", {**acl, "resourceAccess": via_team})
    # The creator may drop their own entry.
    acl = alice.ok("GET", f"/entity/{project['id']}/acl")
    only_public = [{"principalId": PUBLIC, "accessType": ["READ"]}]
    assert entries_of(
        alice.ok("PUT", f"/entity/{project['id']}/acl", {**acl, "resourceAccess": only_public})
    ) == {PUBLIC: {"READ"}}


# ---------------------------------------------------------------------------------------------
# Annotations v2 (§3)

ALL_TYPES = {
    "species": {"type": "STRING", "value": ["human", "mouse"]},
    "count": {"type": "LONG", "value": ["3"]},
    "ratio": {"type": "DOUBLE", "value": ["0.5"]},
    "when": {"type": "TIMESTAMP_MS", "value": ["1700000000000"]},
    "ok": {"type": "BOOLEAN", "value": ["true"]},
}


def test_annotations_roundtrip_and_etags(alice: Any, project: dict[str, Any]) -> None:
    folder = alice.folder("f", project["id"])
    empty = alice.ok("GET", f"/entity/{folder['id']}/annotations2")
    assert empty == {"id": folder["id"], "etag": folder["etag"], "annotations": {}}
    put = alice.ok(
        "PUT", f"/entity/{folder['id']}/annotations2", {**empty, "annotations": ALL_TYPES}
    )
    assert put["annotations"] == ALL_TYPES
    assert put["etag"] != folder["etag"]
    entity = alice.ok("GET", f"/entity/{folder['id']}")
    assert entity["etag"] == put["etag"]
    assert alice.ok("GET", f"/entity/{folder['id']}/annotations2") == put
    # Full replacement, and stale etags are refused.
    replaced = alice.ok(
        "PUT",
        f"/entity/{folder['id']}/annotations2",
        {**put, "annotations": {"only": {"type": "STRING", "value": ["x"]}}},
    )
    assert list(replaced["annotations"]) == ["only"]
    assert alice.error(412, "PUT", f"/entity/{folder['id']}/annotations2", put) == (
        f"Object: {folder['id']} was updated since you last fetched it, retrieve it again and "
        "re-apply the update"
    )
    # Empty value lists pass validation.
    emptied = alice.ok(
        "PUT",
        f"/entity/{folder['id']}/annotations2",
        {**replaced, "annotations": {"none": {"type": "STRING", "value": []}}},
    )
    assert emptied["annotations"] == {"none": {"type": "STRING", "value": []}}


def test_annotations_required_fields_and_permission(
    emu: Emulator, alice: Any, bob: Any, project: dict[str, Any]
) -> None:
    folder = alice.folder("f", project["id"])
    current = alice.ok("GET", f"/entity/{folder['id']}/annotations2")
    path = f"/entity/{folder['id']}/annotations2"
    assert alice.error(400, "PUT", path, {"etag": current["etag"], "annotations": {}}) == (
        "Annotations must have a non-null id"
    )
    for etag in (None, ""):
        assert alice.error(
            400, "PUT", path, {"id": folder["id"], "etag": etag, "annotations": {}}
        ) == ("etag is required and must not be the empty string.")
    grant(alice, project["id"], [(user_id(emu, "bob"), ["READ"])])
    assert bob.ok("GET", path)["id"] == folder["id"]
    assert bob.error(403, "PUT", path, current) == "You lack UPDATE access to the requested entity."


ANNOTATION_ERRORS = [
    ({"": {"type": "STRING", "value": ["x"]}}, "Annotation names cannot be empty strings"),
    ({"  ": {"type": "STRING", "value": ["x"]}}, "Annotation names cannot be empty strings"),
    (
        {"bad key": {"type": "STRING", "value": ["x"]}},
        "Invalid annotation name: 'bad key'. Annotation names may only contain; letters, "
        "numbers, '_' and '.'",
    ),
    (
        {"_AccessRequirementIds": {"type": "STRING", "value": ["x"]}},
        "Invalid annotation name: '_AccessRequirementIds'. The annotation name is a system "
        "reserved annotation.",
    ),
    ({"k": {"type": "STRING"}}, "value list for key=k can not be null"),
    ({"k": {"type": "STRING", "value": None}}, "value list for key=k can not be null"),
    (
        {"k": {"type": "STRING", "value": [str(i) for i in range(101)]}},
        "key=k has exceeded the maximum number of values allowed: 100",
    ),
    (
        {"k": {"value": ["x"]}},
        "a value or a value type must be set for values associated with key=k",
    ),
    (
        {"k": {"type": "STRING", "value": ["a", None]}},
        "null is not allowed. To indicate no values, use an empty list.",
    ),
    (
        {"k": {"type": "STRING", "value": ["x" * 300, "y" * 201]}},
        "Total String value too long. Can be at most 500 characters.",
    ),
    (
        {"k": {"type": "LONG", "value": ["1.5"]}},
        "Value associated with key=k is not valid for type=LONG: 1.5",
    ),
    (
        {"k": {"type": "TIMESTAMP_MS", "value": ["yesterday"]}},
        "Value associated with key=k is not valid for type=TIMESTAMP_MS: yesterday",
    ),
    (
        {"k": {"type": "DOUBLE", "value": ["one"]}},
        "Value associated with key=k is not valid for type=DOUBLE: one",
    ),
    (
        {"k": {"type": "BOOLEAN", "value": ["yes"]}},
        "Value associated with key=k is not valid for type=BOOLEAN: yes",
    ),
    (
        {f"k{i}": {"type": "STRING", "value": ["x"]} for i in range(101)},
        "Exceeded maximum number of annotation keys: 100",
    ),
]


@pytest.mark.parametrize(("annotations", "reason"), ANNOTATION_ERRORS)
def test_annotation_validation(unlogged: Any, annotations: Any, reason: str) -> None:
    project = unlogged.project(uniq())
    current = unlogged.ok("GET", f"/entity/{project['id']}/annotations2")
    assert (
        unlogged.error(
            400,
            "PUT",
            f"/entity/{project['id']}/annotations2",
            {**current, "annotations": annotations},
        )
        == reason
    )


def test_annotation_values_accepted_as_synapse_does(alice: Any, project: dict[str, Any]) -> None:
    current = alice.ok("GET", f"/entity/{project['id']}/annotations2")
    accepted = {
        "b": {"type": "BOOLEAN", "value": ["TRUE", "False"]},
        "d": {
            "type": "DOUBLE",
            "value": ["NaN", "Infinity", "-Infinity", "1e3", " 2.5 ", "1.5d", "-INF", "nan", "∞"],
        },
        "l": {"type": "LONG", "value": ["-9223372036854775808", "9223372036854775807"]},
        "s": {"type": "STRING", "value": ["x" * 250, "y" * 250]},
        "k.with_dots,and_commas": {"type": "STRING", "value": ["ok"]},
    }
    stored = alice.ok(
        "PUT", f"/entity/{project['id']}/annotations2", {**current, "annotations": accepted}
    )
    assert stored["annotations"] == accepted
    hundred = {f"k{i}": {"type": "LONG", "value": [str(i)]} for i in range(100)}
    assert (
        len(
            alice.ok(
                "PUT", f"/entity/{project['id']}/annotations2", {**stored, "annotations": hundred}
            )["annotations"]
        )
        == 100
    )


def test_annotations_per_version(emu: Emulator, alice: Any, project: dict[str, Any]) -> None:
    created = alice.ok(
        "POST", "/entity", file_body("f", project["id"], make_file_handle(emu, "alice"))
    )
    annos = alice.ok("GET", f"/entity/{created['id']}/annotations2")
    v1 = alice.ok(
        "PUT",
        f"/entity/{created['id']}/annotations2",
        {**annos, "annotations": {"v": {"type": "LONG", "value": ["1"]}}},
    )
    entity = alice.ok("GET", f"/entity/{created['id']}")
    # Like synapseclient, name the new version (labels are unique per entity).
    alice.ok("PUT", f"/entity/{created['id']}", {**entity, "versionLabel": "2"}, newVersion="true")
    # The new version starts with a copy of the previous version's annotations.
    current = alice.ok("GET", f"/entity/{created['id']}/annotations2")
    assert current["annotations"] == v1["annotations"]
    alice.ok(
        "PUT",
        f"/entity/{created['id']}/annotations2",
        {**current, "annotations": {"v": {"type": "LONG", "value": ["2"]}}},
    )
    old = alice.ok("GET", f"/entity/{created['id']}/version/1/annotations2")
    assert old == {
        "id": created["id"],
        "etag": ZERO_ETAG,
        "annotations": {"v": {"type": "LONG", "value": ["1"]}},
    }
    new = alice.ok("GET", f"/entity/{created['id']}/version/2/annotations2")
    assert new["annotations"] == {"v": {"type": "LONG", "value": ["2"]}}
    assert new["etag"] == alice.ok("GET", f"/entity/{created['id']}")["etag"]
    bundle = alice.ok(
        "POST",
        f"/entity/{created['id']}/version/1/bundle2",
        {"includeEntity": True, "includeAnnotations": True},
    )
    assert bundle["entity"]["versionNumber"] == 1 and bundle["entity"]["etag"] == ZERO_ETAG
    assert bundle["annotations"]["annotations"] == {"v": {"type": "LONG", "value": ["1"]}}
    assert alice.error(404, "GET", f"/entity/{created['id']}/version/9/annotations2")


# ---------------------------------------------------------------------------------------------
# Entity bundle v2 (§2.9)


def test_bundle_flags(emu: Emulator, alice: Any, project: dict[str, Any]) -> None:
    folder = alice.folder("f", project["id"])
    assert alice.ok("POST", f"/entity/{folder['id']}/bundle2", {}) == {}
    everything = {
        flag: True
        for flag in (
            "includeEntity",
            "includeAnnotations",
            "includePermissions",
            "includeEntityPath",
            "includeHasChildren",
            "includeAccessControlList",
            "includeFileHandles",
            "includeTableBundle",
            "includeRootWikiId",
            "includeBenefactorACL",
            "includeDOIAssociation",
            "includeFileName",
            "includeThreadCount",
            "includeRestrictionInformation",
            "includeActivity",
        )
    }
    bundle = alice.ok("POST", f"/entity/{folder['id']}/bundle2", everything)
    assert bundle["entity"]["id"] == folder["id"] and bundle["entityType"] == "folder"
    assert bundle["annotations"] == {"id": folder["id"], "etag": folder["etag"], "annotations": {}}
    assert bundle["permissions"]["canEdit"] is True
    assert [p["id"] for p in bundle["path"]["path"]] == [ROOT, project["id"], folder["id"]]
    assert bundle["hasChildren"] is False
    assert "accessControlList" not in bundle  # inherits: absent, no error
    assert bundle["benefactorAcl"]["id"] == project["id"]
    assert bundle["fileHandles"] == []
    assert bundle["threadCount"] == 0
    assert bundle["restrictionInformation"]["hasUnmetAccessRequirement"] is False
    assert bundle["restrictionInformation"]["restrictionLevel"] == "OPEN"
    for absent in ("rootWikiId", "doiAssociation", "activity", "tableBundle", "fileName"):
        assert absent not in bundle
    alice.folder("child", folder["id"])
    wiki = alice.ok("POST", f"/entity/{folder['id']}/wiki", {"title": "w", "markdown": "m"})
    again = alice.ok("POST", f"/entity/{folder['id']}/bundle2", everything)
    assert again["hasChildren"] is True
    assert again["rootWikiId"] == wiki["id"]
    # A wiki does not change the entity's etag.
    assert again["entity"]["etag"] == folder["etag"]
    own = alice.ok(
        "POST",
        f"/entity/{project['id']}/bundle2",
        {"includeAccessControlList": True, "includeBenefactorACL": True},
    )
    assert own["accessControlList"] == own["benefactorAcl"]


def test_bundle_file_handles_and_file_name(
    emu: Emulator, alice: Any, bob: Any, project: dict[str, Any]
) -> None:
    handle = make_file_handle(emu, "alice", file_name="reads.fastq")
    created = alice.ok("POST", "/entity", file_body("reads", project["id"], handle))
    flags = {"includeEntity": True, "includeFileHandles": True, "includeFileName": True}
    bundle = alice.ok("POST", f"/entity/{created['id']}/bundle2", flags)
    assert [h["id"] for h in bundle["fileHandles"]] == [handle]
    assert (
        bundle["fileHandles"][0]["concreteType"]
        == "org.sagebionetworks.repo.model.file.S3FileHandle"
    )
    assert bundle["fileName"] == "reads.fastq"
    grant(alice, project["id"], [(user_id(emu, "bob"), ["READ"])])
    # Without DOWNLOAD the handles are simply left out.
    assert bob.ok("POST", f"/entity/{created['id']}/bundle2", flags)["fileHandles"] == []
    assert bob.error(403, "POST", f"/entity/{alice.project(uniq())['id']}/bundle2", flags) == (
        "You lack READ access to the requested entity."
    )


def test_bundle_create(emu: Emulator, alice: Any, project: dict[str, Any]) -> None:
    body = {
        "entity": folder_body("made", project["id"]),
        "annotations": {"annotations": {"a": {"type": "STRING", "value": ["1"]}}},
        "accessControlList": {
            "resourceAccess": [
                {"principalId": user_id(emu, "alice"), "accessType": sorted(ADMIN_SET)},
                {"principalId": PUBLIC, "accessType": ["READ"]},
            ]
        },
    }
    response = alice.call("POST", "/entity/bundle2/create", body)
    assert response.status_code == 201
    bundle = response.json()
    folder_id = bundle["entity"]["id"]
    assert bundle["entity"]["concreteType"] == FOLDER
    assert bundle["annotations"]["annotations"] == {"a": {"type": "STRING", "value": ["1"]}}
    assert bundle["accessControlList"]["id"] == folder_id
    assert entries_of(bundle["accessControlList"])[PUBLIC] == {"READ"}
    assert bundle["annotations"]["etag"] == bundle["entity"]["etag"]
    assert alice.error(
        400, "POST", "/entity/bundle2/create", {"annotations": body["annotations"]}
    ) == ("entityBundleCreate.entity is required.")
    # A new project already has its ACL, so the bundle's ACL is an update: its etag is checked.
    project_bundle = {
        "entity": {"concreteType": PROJECT, "name": uniq()},
        "accessControlList": body["accessControlList"],
    }
    assert (
        alice.error(400, "POST", "/entity/bundle2/create", project_bundle)
        == "acl.etag is required."
    )
    assert alice.error(
        404, "POST", "/entity/child", {"entityName": project_bundle["entity"]["name"]}
    )


def test_bundle_update(emu: Emulator, alice: Any, project: dict[str, Any]) -> None:
    folder = alice.folder("f", project["id"])
    annos = alice.ok("GET", f"/entity/{folder['id']}/annotations2")
    alice.ok(
        "PUT",
        f"/entity/{folder['id']}/annotations2",
        {**annos, "annotations": {"keep": {"type": "STRING", "value": ["k"]}}},
    )
    entity = alice.ok("GET", f"/entity/{folder['id']}")
    body = {
        "entity": {**entity, "description": "via bundle"},
        "annotations": {
            "id": folder["id"],
            "annotations": {"added": {"type": "LONG", "value": ["5"]}},
        },
        "accessControlList": {
            "id": folder["id"],
            "resourceAccess": [
                {"principalId": user_id(emu, "alice"), "accessType": sorted(ADMIN_SET)}
            ],
        },
    }
    bundle = alice.ok("PUT", f"/entity/{folder['id']}/bundle2", body)
    assert bundle["entity"]["description"] == "via bundle"
    assert bundle["annotations"]["annotations"] == {
        "keep": {"type": "STRING", "value": ["k"]},
        "added": {"type": "LONG", "value": ["5"]},
    }
    assert bundle["accessControlList"]["id"] == folder["id"]
    # The ACL now exists, so a second bundle update must carry its etag.
    assert (
        alice.error(
            412,
            "PUT",
            f"/entity/{folder['id']}/bundle2",
            {"accessControlList": {**body["accessControlList"], "etag": "stale"}},
        )
        == "E-tags do not match."
    )
    assert alice.error(
        400, "PUT", f"/entity/{folder['id']}/bundle2", {"entity": {**entity, "id": project["id"]}}
    ) == ("Entity does not match requested entity ID")
    assert alice.error(
        400,
        "PUT",
        f"/entity/{folder['id']}/bundle2",
        {"accessControlList": {**body["accessControlList"], "id": project["id"]}},
    ) == ("ACL does not match requested entity ID")
    assert alice.error(
        400,
        "PUT",
        f"/entity/{folder['id']}/bundle2",
        {"annotations": {**body["annotations"], "id": project["id"]}},
    ) == ("Annotations do not match requested entity ID")
    # Never a new version, even for files.
    handle = make_file_handle(emu, "alice")
    file_entity = alice.ok("POST", "/entity", file_body("x", project["id"], handle))
    updated = alice.ok(
        "PUT", f"/entity/{file_entity['id']}/bundle2", {"entity": {**file_entity, "name": "y"}}
    )
    assert updated["entity"]["versionNumber"] == 1 and updated["entity"]["name"] == "y"


def test_acl_principal_must_exist(emu: Emulator, alice: Any, project: dict[str, Any]) -> None:
    # Synapse refuses the foreign key; its exact text is not in its code (§4.3, UNVERIFIED).
    response = _put_entries(
        alice,
        project["id"],
        [
            {"principalId": user_id(emu, "alice"), "accessType": sorted(ADMIN_SET)},
            {"principalId": 987654321, "accessType": ["READ"]},
        ],
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("value_type", "value"),
    [
        ("LONG", " 3"),
        ("LONG", "1_000"),
        ("LONG", "9223372036854775808"),
        ("TIMESTAMP_MS", "1.7e12"),
        ("DOUBLE", "1_000.5"),
        ("DOUBLE", "-nan"),
        ("DOUBLE", "NaNd"),
        ("BOOLEAN", " true"),
    ],
)
def test_annotation_values_java_would_refuse(
    alice: Any, project: dict[str, Any], value_type: str, value: str
) -> None:
    """Long.valueOf / DoubleUtils.fromString / Boolean rules, not Python's int() and float()."""
    current = alice.ok("GET", f"/entity/{project['id']}/annotations2")
    body = {**current, "annotations": {"k": {"type": value_type, "value": [value]}}}
    assert alice.error(400, "PUT", f"/entity/{project['id']}/annotations2", body) == (
        f"Value associated with key=k is not valid for type={value_type}: {value}"
    )
