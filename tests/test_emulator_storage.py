"""Storage locations, project settings and upload destinations over HTTP (synapse-api.md §6-§7)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests
from test_emulator_storage_support import (
    EXTERNAL_GCS,
    EXTERNAL_OBJECT,
    EXTERNAL_S3,
    EXTERNAL_STORAGE,
    FILE,
    PROXY,
    S3_SETTING,
    UPLOAD_LIST,
    download,
    error_reason,
    external_location,
    file_entity,
    make_bucket,
    set_locations,
    synapse_sts_location,
    upload,
)

from synapse_declare.emulator import Emulator

DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
EXPLANATION = (
    "For security purposes, Synapse needs to establish that the user has permission to write to "
    "the bucket. Please create an object in bucket '{bucket}' with key '{key}' that contains a "
    "line separated list of identifiers for the user. Valid identifiers are the id of the user or "
    "id of a team the user is part of. Also see "
    "https://help.synapse.org/docs/Custom-Storage-Locations.2048327803.html for more information "
    "on how to create a new external upload destination."
)

ApiFactory = Callable[..., Any]


def _name() -> str:
    return f"storage-{uuid.uuid4().hex[:10]}"


def share(api: Any, entity_id: str, principal_id: int, access: list[str]) -> None:
    """Add an entry to the entity's own ACL (the project's)."""
    acl = api.ok("GET", f"/entity/{entity_id}/acl")
    acl["resourceAccess"].append({"principalId": principal_id, "accessType": access})
    api.ok("PUT", f"/entity/{entity_id}/acl", acl)


# ---------------------------------------------------------------------------------------------
# Storage locations


def test_builtin_location_belongs_to_user_one(alice: Any) -> None:
    assert (
        alice.error(403, "GET", "/storageLocation/1")
        == "Only the creator can access storage location settings"
    )
    assert (
        alice.error(404, "GET", "/storageLocation/987654321")
        == "Storage location setting: '987654321' does not exist"
    )


def test_synapse_s3_location_is_created_deduplicated_and_private(
    shared_emulator: Emulator, alice: Any, bob: Any
) -> None:
    banner = f"banner {uuid.uuid4()}"
    body = {"concreteType": S3_SETTING, "banner": banner, "uploadType": "S3"}
    created = alice.ok("POST", "/storageLocation", body)
    assert created["concreteType"] == S3_SETTING
    assert created["uploadType"] == "S3"
    assert created["banner"] == banner
    assert created["createdBy"] == shared_emulator.principal_ids["alice"]
    assert DATE.match(created["createdOn"])
    assert "baseKey" not in created and created["etag"]
    again = alice.ok("POST", "/storageLocation", body)
    assert again == created  # same creator, identical setting: the existing one
    assert (
        bob.ok("POST", "/storageLocation", body)["storageLocationId"]
        != created["storageLocationId"]
    )
    different = alice.ok("POST", "/storageLocation", {**body, "description": "other"})
    assert different["storageLocationId"] != created["storageLocationId"]
    location_id = created["storageLocationId"]
    assert alice.ok("GET", f"/storageLocation/{location_id}") == created
    assert (
        bob.error(403, "GET", f"/storageLocation/{location_id}")
        == "Only the creator can access storage location settings"
    )
    listed = alice.ok("GET", "/storageLocation")
    assert listed["concreteType"] == "org.sagebionetworks.repo.model.project.StorageLocationSetting"
    ids = [item["storageLocationId"] for item in listed["list"]]
    assert ids == sorted(ids, reverse=True)
    assert location_id in ids and all(
        item["createdBy"] == shared_emulator.principal_ids["alice"] for item in listed["list"]
    )


def test_storage_locations_are_immutable(alice: Any) -> None:
    created = alice.ok("POST", "/storageLocation", {"concreteType": S3_SETTING})
    path = f"/storageLocation/{created['storageLocationId']}"
    assert alice.error(405, "PUT", path, created) == "Request method 'PUT' is not supported"
    assert alice.error(405, "DELETE", path) == "Request method 'DELETE' is not supported"


def test_sts_synapse_location_gets_a_generated_base_key(
    shared_emulator: Emulator, alice: Any
) -> None:
    first = synapse_sts_location(alice)
    second = synapse_sts_location(alice)
    user_id = shared_emulator.principal_ids["alice"]
    assert re.fullmatch(rf"{user_id}/[0-9a-f-]{{36}}", first["baseKey"])
    assert first["stsEnabled"] is True and first["uploadType"] == "S3"
    assert second["storageLocationId"] != first["storageLocationId"]  # random key: no dedup
    reason = alice.error(
        400, "POST", "/storageLocation", {"concreteType": S3_SETTING, "baseKey": "mine"}
    )
    assert reason == "Cannot specify baseKey when creating an S3StorageLocationSetting"
    # A blank base key is sanitised to none first.
    assert alice.ok("POST", "/storageLocation", {"concreteType": S3_SETTING, "baseKey": " / "})


def test_external_s3_location_sanitises_base_key_and_checks_owner(
    shared_emulator: Emulator, alice: Any
) -> None:
    bucket = make_bucket(shared_emulator, owner="ALICE", base_key="prefix/sub")
    created = external_location(alice, bucket, "/prefix/sub/ ", sts=True)
    assert created["concreteType"] == EXTERNAL_S3
    assert created["bucket"] == bucket
    assert created["baseKey"] == "prefix/sub"
    assert created["stsEnabled"] is True
    assert created["uploadType"] == "S3"
    # Dedup uses the processed setting: the sanitised key is the same setting.
    assert external_location(alice, bucket, "prefix/sub", sts=True) == created
    assert external_location(alice, bucket, "prefix/sub", sts=False) != created


@pytest.mark.parametrize(
    "identifier",
    ["{id}", "alice", "Alice@Example.org", "{team}", "someone-else, {id}", "x\n\n {id} \n"],
)
def test_owner_txt_accepts_the_callers_identifiers(
    shared_emulator: Emulator, alice: Any, identifier: str
) -> None:
    team = alice.ok("GET", f"/user/{shared_emulator.principal_ids['alice']}/team", limit=10)
    team_id = next(t["id"] for t in team["results"] if t["name"] == "Lab Admins")
    owner = identifier.format(id=shared_emulator.principal_ids["alice"], team=team_id)
    bucket = make_bucket(shared_emulator, owner=owner)
    assert external_location(alice, bucket)["bucket"] == bucket


def test_owner_txt_errors(shared_emulator: Emulator, alice: Any, bob: Any) -> None:
    bucket = make_bucket(shared_emulator, owner="alice", base_key="data")
    body = {"concreteType": EXTERNAL_S3, "bucket": bucket, "baseKey": "data"}
    key = "data/owner.txt"
    expl = EXPLANATION.format(bucket=bucket, key=key)
    assert bob.error(400, "POST", "/storageLocation", body) == (
        f"Could not find a valid user identifier under key {key} from bucket {bucket}. {expl}"
    )
    # System groups (authenticated users, public, certified) never count.
    shared_emulator.s3_client().put_object(Bucket=bucket, Key=key, Body=b"273948\n273949,3")
    assert alice.error(400, "POST", "/storageLocation", body).startswith(
        "Could not find a valid user identifier"
    )
    # Only the first 100 lines are read.
    late = "\n".join(["nobody"] * 100 + ["alice"]).encode()
    shared_emulator.s3_client().put_object(Bucket=bucket, Key=key, Body=late)
    assert alice.error(400, "POST", "/storageLocation", body) == (
        f"Could not find a valid user identifier under key {key} from bucket {bucket}. {expl}"
    )
    shared_emulator.s3_client().put_object(Bucket=bucket, Key=key, Body=b" , \n\n")
    assert alice.error(400, "POST", "/storageLocation", body) == (
        f"No user identifier found under key {key} from bucket {bucket}. {expl}"
    )
    missing_key = {**body, "baseKey": "elsewhere"}
    other = "elsewhere/owner.txt"
    assert alice.error(400, "POST", "/storageLocation", missing_key) == (
        f"Did not find S3 object at key {other} from bucket {bucket}. "
        + EXPLANATION.format(bucket=bucket, key=other)
    )
    no_bucket = f"missing-{uuid.uuid4().hex[:12]}"
    reason = alice.error(
        400, "POST", "/storageLocation", {"concreteType": EXTERNAL_S3, "bucket": no_bucket}
    )
    assert reason == (
        f"Did not find S3 bucket {no_bucket}. "
        + EXPLANATION.format(bucket=no_bucket, key="owner.txt")
    )


@pytest.mark.parametrize("bucket", ["-bad", "bad..name", "bad name", "a" * 64, "x.1abc"])
def test_bucket_names_must_be_domain_names(alice: Any, bucket: str) -> None:
    reason = alice.error(
        400, "POST", "/storageLocation", {"concreteType": EXTERNAL_S3, "bucket": bucket}
    )
    assert reason == "Invalid bucket name."


def test_bucket_is_required(make_emulator: Callable[..., Emulator]) -> None:
    # The request violates the model on purpose: this emulator keeps no request log.
    emulator = make_emulator(request_log=None)
    response = requests.post(
        emulator.repo_endpoint + "/storageLocation",
        json={"concreteType": EXTERNAL_S3},
        headers={"Authorization": f"Bearer {emulator.users['alice']}"},
        timeout=30,
    )
    assert error_reason(response, 400) == "The bucket name is required."


def test_other_location_types_are_stored_as_declared(shared_emulator: Emulator, alice: Any) -> None:
    gcs = alice.ok(
        "POST",
        "/storageLocation",
        {"concreteType": EXTERNAL_GCS, "bucket": "no-such-gcs-bucket", "baseKey": "/k/"},
    )
    assert gcs["uploadType"] == "GOOGLECLOUDSTORAGE" and gcs["baseKey"] == "k"
    obj = alice.ok(
        "POST",
        "/storageLocation",
        {
            "concreteType": EXTERNAL_OBJECT,
            "bucket": "object-bucket",
            "endpointUrl": " https://object.example.org/ ",
            "uploadType": "S3",
        },
    )
    assert obj["endpointUrl"] == "https://object.example.org" and obj["uploadType"] == "S3"
    bad_endpoint = {"concreteType": EXTERNAL_OBJECT, "bucket": "b-b-b", "endpointUrl": "nope"}
    assert (
        alice.error(400, "POST", "/storageLocation", bad_endpoint)
        == "The External URL is not a valid url: nope"
    )
    sftp = alice.ok(
        "POST",
        "/storageLocation",
        {
            "concreteType": EXTERNAL_STORAGE,
            "url": "sftp://sftp.example.org/data",
            "supportsSubfolders": True,
            "uploadType": "SFTP",
        },
    )
    assert sftp["uploadType"] == "SFTP" and sftp["supportsSubfolders"] is True
    assert (
        alice.error(400, "POST", "/storageLocation", {"concreteType": EXTERNAL_STORAGE})
        == "The url is required."
    )
    no_type = alice.ok(
        "POST", "/storageLocation", {"concreteType": EXTERNAL_STORAGE, "url": "https://x.org/a"}
    )
    assert no_type["uploadType"] == "NONE"
    proxy = {
        "concreteType": PROXY,
        "proxyUrl": "https://proxy.example.org",
        "uploadType": "PROXYLOCAL",
    }
    assert (
        alice.error(400, "POST", "/storageLocation", {**proxy, "secretKey": "short"})
        == "SecretKey must be at least: 36 characters but was: 5"
    )
    secret = "s" * 36
    assert (
        alice.error(
            400,
            "POST",
            "/storageLocation",
            {**proxy, "secretKey": secret, "proxyUrl": "http://proxy.example.org"},
        )
        == "The proxyUrl protocol must be be HTTPS"
    )
    assert alice.ok("POST", "/storageLocation", {**proxy, "secretKey": secret})["concreteType"] == (
        PROXY
    )


# ---------------------------------------------------------------------------------------------
# Project settings


def test_project_setting_lifecycle(shared_emulator: Emulator, alice: Any) -> None:
    project = alice.project(_name())
    path = f"/projectSettings/{project['id']}/type/upload"
    response = alice.call("GET", path)
    assert response.status_code == 200 and response.content == b""
    bucket = make_bucket(shared_emulator)
    external = external_location(alice, bucket)["storageLocationId"]
    setting = set_locations(alice, project["id"], [external, 1])
    assert setting == {
        "concreteType": UPLOAD_LIST,
        "id": setting["id"],
        "projectId": project["id"],
        "settingsType": "upload",
        "etag": setting["etag"],
        "locations": [external, 1],
    }
    assert alice.ok("GET", path) == setting
    assert alice.ok("GET", f"/projectSettings/{setting['id']}") == setting
    assert alice.error(400, "POST", "/projectSettings", {**setting, "id": None}) == (
        f"A project setting of type 'upload' for project {project['id']} already exists."
    )
    # Update: 200 with an empty body, new etag; a stale etag is a 412.
    updated = {**setting, "locations": [1, external]}
    response = alice.call("PUT", "/projectSettings", updated)
    assert response.status_code == 200 and response.content == b""
    fresh = alice.ok("GET", path)
    assert fresh["locations"] == [1, external] and fresh["etag"] != setting["etag"]
    assert alice.error(412, "PUT", "/projectSettings", updated) == (
        "Project setting was updated since you last fetched it, retrieve it again and reapply "
        "the update."
    )
    other = alice.project(_name())
    assert alice.error(400, "PUT", "/projectSettings", {**fresh, "projectId": other["id"]}) == (
        "You cannot change the project id with the update project settings call. Create a new "
        "project settings instead"
    )
    assert alice.error(400, "PUT", "/projectSettings", {**fresh, "id": None}) == (
        "The id is required."
    )
    assert alice.error(400, "PUT", "/projectSettings", {**fresh, "projectId": None}) == (
        "The project id is required."
    )
    response = alice.call("DELETE", f"/projectSettings/{setting['id']}")
    assert response.status_code == 204
    assert alice.call("GET", path).content == b""
    assert alice.error(404, "GET", f"/projectSettings/{setting['id']}") == (
        f"Project settings: '{setting['id']}' does not exist"
    )


def test_project_setting_validation(shared_emulator: Emulator, alice: Any, bob: Any) -> None:
    project = alice.project(_name())
    folder = alice.folder("f", project["id"])
    handle = upload(alice, b"x")
    file = file_entity(alice, folder["id"], handle["id"])
    body = {"concreteType": UPLOAD_LIST, "settingsType": "upload", "projectId": file["id"]}
    assert alice.error(400, "POST", "/projectSettings", {**body, "locations": [1]}) == (
        "The id is not the id of a project or folder entity"
    )
    body["projectId"] = project["id"]
    assert alice.error(400, "POST", "/projectSettings", body) == "settings.locations is required."
    assert alice.error(400, "POST", "/projectSettings", {**body, "locations": []}) == (
        "settings.locations must at least have one entry"
    )
    assert alice.error(400, "POST", "/projectSettings", {**body, "locations": [1] * 11}) == (
        "The maximum number of settings.locations is limited to 10"
    )
    assert alice.error(400, "POST", "/projectSettings", {**body, "locations": [1, 99999999]}) == (
        "uploadId 99999999 is not a valid upload destination location"
    )
    assert bob.error(403, "POST", "/projectSettings", {**body, "locations": [1]}) == (
        "You lack READ access to the requested entity."
    )
    share(alice, project["id"], shared_emulator.principal_ids["bob"], ["READ"])
    assert bob.error(403, "POST", "/projectSettings", {**body, "locations": [1]}) == (
        "Cannot create settings for this project"
    )
    setting = set_locations(alice, project["id"], [1])
    assert bob.error(403, "PUT", "/projectSettings", setting) == (
        "Cannot update settings on this project"
    )
    assert bob.error(403, "DELETE", f"/projectSettings/{setting['id']}") == (
        "Cannot delete settings from this project"
    )
    assert bob.ok("GET", f"/projectSettings/{setting['id']}") == setting
    private = alice.project(_name())
    private_setting = set_locations(alice, private["id"], [1])
    assert bob.error(403, "GET", f"/projectSettings/{private_setting['id']}") == (
        "The current user does not have READ access on the project this setting applies to."
    )
    assert bob.error(403, "GET", f"/projectSettings/{private['id']}/type/upload") == (
        f"The current user does not have READ access on the project {private['id']}."
    )


def test_external_s3_location_can_only_be_added_by_its_owner(
    shared_emulator: Emulator, alice: Any, bob: Any
) -> None:
    bucket = make_bucket(shared_emulator)
    external = external_location(alice, bucket)["storageLocationId"]
    project = bob.project(_name())
    reason = bob.error(
        403,
        "POST",
        "/projectSettings",
        {"concreteType": UPLOAD_LIST, "projectId": project["id"], "locations": [external]},
    )
    assert reason == (
        "Only the owner of the external S3 upload destination (user alice) can add this upload "
        "destination to a project. Either ask that user to perform this operation or follow the "
        "steps to create a new external s3 upload destination (see "
        "https://help.synapse.org/docs/Custom-Storage-Locations.2048327803.html for more "
        "information on how to create a new external upload destination."
    )
    # Anyone may use a Synapse-storage location of another user.
    synapse_location = alice.ok("POST", "/storageLocation", {"concreteType": S3_SETTING})
    assert set_locations(bob, project["id"], [synapse_location["storageLocationId"]])


def test_sts_setting_rules(shared_emulator: Emulator, alice: Any) -> None:
    sts = synapse_sts_location(alice)["storageLocationId"]
    project = alice.project(_name())
    body = {"concreteType": UPLOAD_LIST, "projectId": project["id"], "locations": [sts]}
    assert alice.error(400, "POST", "/projectSettings", body) == "Can only enable STS on a folder"
    folder = alice.folder("sts", project["id"])
    body["projectId"] = folder["id"]
    assert alice.error(400, "POST", "/projectSettings", {**body, "locations": [sts, 1]}) == (
        "An STS-enabled folder cannot add other upload destinations"
    )
    full = alice.folder("full", project["id"])
    alice.folder("child", full["id"])
    assert alice.error(400, "POST", "/projectSettings", {**body, "projectId": full["id"]}) == (
        "Can't enable STS in a non-empty folder"
    )
    trashed_only = alice.folder("trashed-only", project["id"])
    child = alice.folder("child", trashed_only["id"])
    alice.ok("DELETE", f"/entity/{child['id']}")
    assert (
        alice.error(400, "POST", "/projectSettings", {**body, "projectId": trashed_only["id"]})
        == "Can't enable STS in a non-empty folder"
    )
    setting = alice.ok("POST", "/projectSettings", body)
    sub = alice.folder("sub", folder["id"])
    assert (
        alice.error(
            400, "POST", "/projectSettings", {**body, "projectId": sub["id"], "locations": [1]}
        )
        == "Can't override project settings in an STS-enabled folder path"
    )
    # Now non-empty: STS can neither be switched off nor deleted.
    assert alice.error(400, "PUT", "/projectSettings", {**setting, "locations": [1]}) == (
        "Can't disable STS in a non-empty folder"
    )
    assert alice.error(400, "DELETE", f"/projectSettings/{setting['id']}") == (
        "Can't disable STS in a non-empty folder"
    )
    plain = alice.folder("plain", project["id"])
    alice.folder("child", plain["id"])
    plain_setting = set_locations(alice, plain["id"], [1])
    assert alice.error(400, "PUT", "/projectSettings", {**plain_setting, "locations": [sts]}) == (
        "Can't enable STS in a non-empty folder"
    )
    # An empty STS folder's setting can still go.
    empty = alice.folder("empty", project["id"])
    empty_setting = alice.ok("POST", "/projectSettings", {**body, "projectId": empty["id"]})
    assert alice.call("DELETE", f"/projectSettings/{empty_setting['id']}").status_code == 204


# ---------------------------------------------------------------------------------------------
# Upload destinations


def test_upload_destinations_follow_the_nearest_setting(
    shared_emulator: Emulator, alice: Any
) -> None:
    project = alice.project(_name())
    folder = alice.folder("a", project["id"])
    sub = alice.folder("b", folder["id"])
    assert alice.ok("GET", f"/file/v1/entity/{sub['id']}/uploadDestination") == {
        "concreteType": FILE + "S3UploadDestination",
        "storageLocationId": 1,
        "uploadType": "S3",
    }
    assert alice.ok("GET", f"/file/v1/entity/{sub['id']}/uploadDestinationLocations") == {
        "concreteType": FILE + "UploadDestinationLocation",
        "list": [{"storageLocationId": 1, "uploadType": "S3"}],
    }
    bucket = make_bucket(shared_emulator, base_key="base")
    external = alice.ok(
        "POST",
        "/storageLocation",
        {
            "concreteType": EXTERNAL_S3,
            "bucket": bucket,
            "baseKey": "base",
            "banner": "Hello",
            "description": "Lab bucket",
        },
    )
    set_locations(alice, project["id"], [external["storageLocationId"], 1])
    expected = {
        "concreteType": FILE + "ExternalS3UploadDestination",
        "bucket": bucket,
        "baseKey": "base",
        "storageLocationId": external["storageLocationId"],
        "uploadType": "S3",
        "banner": "Hello",
    }
    assert alice.ok("GET", f"/file/v1/entity/{sub['id']}/uploadDestination") == expected
    assert alice.ok("GET", f"/file/v1/entity/{sub['id']}/uploadDestinationLocations")["list"] == [
        {
            "storageLocationId": external["storageLocationId"],
            "description": "Lab bucket",
            "uploadType": "S3",
        },
        {"storageLocationId": 1, "uploadType": "S3"},
    ]
    listed = alice.ok("GET", f"/file/v1/entity/{sub['id']}/uploadDestinations")
    assert listed["concreteType"] == FILE + "UploadDestination"
    assert [d["storageLocationId"] for d in listed["list"]] == [external["storageLocationId"], 1]
    sts = synapse_sts_location(alice)
    set_locations(alice, sub["id"], [sts["storageLocationId"]])
    own = alice.ok("GET", f"/file/v1/entity/{sub['id']}/uploadDestination")
    assert own == {
        "concreteType": FILE + "S3UploadDestination",
        "baseKey": sts["baseKey"],
        "stsEnabled": True,
        "storageLocationId": sts["storageLocationId"],
        "uploadType": "S3",
    }
    by_id = alice.ok(
        "GET", f"/file/v1/entity/{folder['id']}/uploadDestination/{sts['storageLocationId']}"
    )
    assert by_id == own
    assert alice.error(404, "GET", "/file/v1/entity/syn999999999/uploadDestination") == (
        "Resource: 'syn999999999' does not exist"
    )


def test_external_and_object_store_destinations(alice: Any) -> None:
    project = alice.project(_name())
    folder = alice.folder("Sub folder", project["id"])
    sftp = alice.ok(
        "POST",
        "/storageLocation",
        {
            "concreteType": EXTERNAL_STORAGE,
            "url": "sftp://host.example.org/root",
            "supportsSubfolders": True,
            "uploadType": "SFTP",
        },
    )
    obj = alice.ok(
        "POST",
        "/storageLocation",
        {
            "concreteType": EXTERNAL_OBJECT,
            "bucket": "objects",
            "uploadType": "S3",
            "endpointUrl": "https://objects.example.org",
        },
    )
    set_locations(alice, project["id"], [sftp["storageLocationId"], obj["storageLocationId"]])
    first = alice.ok("GET", f"/file/v1/entity/{folder['id']}/uploadDestination")
    assert first["concreteType"] == FILE + "ExternalUploadDestination"
    prefix = f"sftp://host.example.org/root/{project['name']}/Sub%20folder/"
    assert first["url"].startswith(prefix) and len(first["url"]) == len(prefix) + 36
    second = alice.ok(
        "GET", f"/file/v1/entity/{folder['id']}/uploadDestination/{obj['storageLocationId']}"
    )
    assert second["concreteType"] == FILE + "ExternalObjectStoreUploadDestination"
    assert second["bucket"] == "objects" and second["endpointUrl"] == "https://objects.example.org"
    assert len(second["keyPrefixUUID"]) == 36


# ---------------------------------------------------------------------------------------------
# Restart persistence


def test_storage_state_survives_a_restart(
    make_emulator: Callable[..., Emulator], api_for: ApiFactory, tmp_path: Any
) -> None:
    data_dir = tmp_path / "data"
    first = make_emulator(data_dir=data_dir)
    api = api_for(first, "alice")
    project = api.project(_name())
    bucket = make_bucket(first)
    external = external_location(api, bucket)
    setting = set_locations(api, project["id"], [external["storageLocationId"]])
    content = b"persisted bytes " * 100
    handle = upload(api, content, "kept.txt", location=external["storageLocationId"])
    assert handle["bucketName"] == bucket
    entity = file_entity(api, project["id"], handle["id"])
    first.stop()
    # The snapshot holds the external bucket (known_buckets) with the uploaded object.
    index = json.loads((data_dir / "s3" / "index.json").read_text(encoding="utf-8"))
    assert {"owner.txt", handle["key"]} <= set(index[bucket])

    second = make_emulator(data_dir=data_dir)
    api = api_for(second, "alice")
    assert api.ok("GET", f"/storageLocation/{external['storageLocationId']}") == external
    assert api.ok("GET", f"/projectSettings/{project['id']}/type/upload") == setting
    assert api.ok("GET", f"/file/v1/fileHandle/{handle['id']}") == handle
    batch = api.ok(
        "POST",
        "/file/v1/fileHandle/batch",
        {
            "requestedFiles": [
                {
                    "fileHandleId": handle["id"],
                    "associateObjectId": entity["id"],
                    "associateObjectType": "FileEntity",
                }
            ],
            "includePreSignedURLs": True,
        },
    )
    assert download(batch["requestedFiles"][0]["preSignedURL"]) == content
    assert second.s3_client().get_object(Bucket=bucket, Key="owner.txt")["Body"].read() == b"alice"
