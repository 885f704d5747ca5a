"""File handles, batch downloads, redirects, versions and STS placement over HTTP (synapse-api.md
§8.3, §9.1-§9.4, §9.6)."""

from __future__ import annotations

import gzip
import time
import uuid
from collections.abc import Callable
from typing import Any

import requests
from test_emulator_storage_support import (
    FILE,
    FILE_ENTITY,
    FOLDER,
    MODEL,
    S3_FILE_HANDLE,
    download,
    external_location,
    file_entity,
    make_bucket,
    md5_hex,
    set_locations,
    synapse_sts_location,
    upload,
)

from synapse_declare.emulator import Emulator, files

ApiFactory = Callable[..., Any]
FILE_STS = (
    "Files in STS-enabled storage locations can only be placed in folders with the same storage "
    "location"
)


def _name() -> str:
    return f"files-{uuid.uuid4().hex[:10]}"


def share(api: Any, entity_id: str, principal_id: int, access: list[str]) -> None:
    acl = api.ok("GET", f"/entity/{entity_id}/acl")
    acl["resourceAccess"].append({"principalId": principal_id, "accessType": access})
    api.ok("PUT", f"/entity/{entity_id}/acl", acl)


def association(handle_id: str, object_id: str, kind: str = "FileEntity") -> dict[str, str]:
    return {"fileHandleId": handle_id, "associateObjectId": object_id, "associateObjectType": kind}


def batch(api: Any, *items: dict[str, str], **flags: bool) -> list[dict[str, Any]]:
    body: dict[str, Any] = {"requestedFiles": list(items)}
    body.update(flags or {"includeFileHandles": True, "includePreSignedURLs": True})
    response = api.call("POST", "/file/v1/fileHandle/batch", body)
    assert response.status_code == 201, response.text
    return list(response.json()["requestedFiles"])


# ---------------------------------------------------------------------------------------------
# External S3 file handles


def test_external_s3_file_handle(shared_emulator: Emulator, alice: Any, bob: Any) -> None:
    bucket = make_bucket(shared_emulator, base_key="base")
    location = external_location(alice, bucket, "base")["storageLocationId"]
    s3 = shared_emulator.s3_client()
    s3.put_object(Bucket=bucket, Key="elsewhere/data.csv", Body=b"a,b\n1,2\n")
    body = {
        "concreteType": S3_FILE_HANDLE,
        "key": "elsewhere/data.csv",
        "bucketName": bucket,
        "fileName": "data.csv",
        "contentMd5": md5_hex(b"a,b\n1,2\n"),
        "storageLocationId": location,
        "contentType": "text/csv",
    }
    # The key need not start with the base key unless the location is STS-enabled.
    handle = alice.ok("POST", "/file/v1/externalFileHandle/s3", body)
    assert handle["concreteType"] == S3_FILE_HANDLE
    assert handle["contentSize"] == 8  # from the HEAD on the object
    assert handle["bucketName"] == bucket and handle["key"] == "elsewhere/data.csv"
    assert handle["storageLocationId"] == location and handle["status"] == "AVAILABLE"
    assert handle["createdBy"] == str(shared_emulator.principal_ids["alice"])
    assert handle["isPreview"] is False and "previewId" not in handle
    assert alice.ok("GET", f"/file/v1/fileHandle/{handle['id']}") == handle
    bare = alice.ok(
        "POST",
        "/file/v1/externalFileHandle/s3",
        {k: v for k, v in body.items() if k not in ("fileName", "contentType")}
        | {"contentSize": 99},
    )
    assert bare["fileName"] == "NOT_SET" and bare["contentType"] == "NOT_SET"
    assert bare["contentSize"] == 99  # a declared size is kept


def test_external_s3_file_handle_checks_in_order(
    shared_emulator: Emulator, api_for: ApiFactory, alice: Any, bob: Any
) -> None:
    bucket = make_bucket(shared_emulator, base_key="base")
    sts = external_location(alice, bucket, "base", sts=True)["storageLocationId"]
    shared_emulator.s3_client().put_object(Bucket=bucket, Key="base/x.bin", Body=b"x")
    good = {
        "concreteType": S3_FILE_HANDLE,
        "key": "base/x.bin",
        "bucketName": bucket,
        "contentMd5": md5_hex(b"x"),
        "storageLocationId": sts,
    }
    path = "/file/v1/externalFileHandle/s3"
    anonymous = api_for(shared_emulator, None)
    assert anonymous.error(403, "POST", path, good) == "Anonymous cannot upload files."
    cases = [
        ({"storageLocationId": None}, "FileHandle.storageLocationId is required."),
        ({"bucketName": ""}, "FileHandle.bucket is required and must not be the empty string."),
        ({"key": None}, "FileHandle.key is required and must not be the empty string."),
        ({"contentMd5": ""}, "FileHandle.contentMd5 is required and must not be the empty string."),
        (
            {"contentMd5": "not-hex"},
            "The content MD5 digest must be a valid hexadecimal string of length 32.",
        ),
        (
            {"storageLocationId": 1},
            "StorageLocationSetting.id=1 was not of the expected type: "
            "org.sagebionetworks.repo.model.project.ExternalS3StorageLocationSetting",
        ),
        (
            {"bucketName": "another-bucket"},
            f"The bucket for ExternalS3StorageLocationSetting.id={sts} does not match the "
            "provided bucket: another-bucket",
        ),
        (
            {"key": "other/x.bin"},
            f"The baseKey for ExternalS3StorageLocationSetting.id={sts} does not match the "
            "provided key: other/x.bin",
        ),
        (
            {"key": "base/missing.bin"},
            f"Unable to access the file at bucket: {bucket} key: base/missing.bin.",
        ),
    ]
    for change, reason in cases:
        body = {k: v for k, v in {**good, **change}.items() if v is not None}
        assert alice.error(400, "POST", path, body) == reason, change
    assert bob.error(403, "POST", path, good) == (
        f"Only the creator of ExternalS3StorageLocationSetting.id={sts} can create an external "
        f"S3FileHandle with storageLocationId = {sts}"
    )
    assert alice.ok("POST", path, good)["key"] == "base/x.bin"


def test_external_url_handles(alice: Any) -> None:
    handle = alice.ok(
        "POST",
        "/file/v1/externalFileHandle",
        {
            "concreteType": FILE + "ExternalFileHandle",
            "externalURL": "https://data.example.org/a.csv",
            "fileName": "a.csv",
            "contentMd5": md5_hex(b"a"),
            "contentSize": 1,
        },
    )
    assert handle["externalURL"] == "https://data.example.org/a.csv"
    assert handle["concreteType"] == FILE + "ExternalFileHandle"
    assert "bucketName" not in handle
    reason = alice.error(
        400,
        "POST",
        "/file/v1/externalFileHandle",
        {"concreteType": FILE + "ExternalFileHandle", "externalURL": "not a url"},
    )
    assert reason == "The External URL is not a valid url: not a url"
    project = alice.project(_name())
    entity = file_entity(alice, project["id"], handle["id"])
    [result] = batch(alice, association(handle["id"], entity["id"]))
    assert result["preSignedURL"] == "https://data.example.org/a.csv"


def test_file_handle_is_readable_by_its_creator_only(
    shared_emulator: Emulator, alice: Any, bob: Any
) -> None:
    handle = upload(alice, b"private")
    bob_id = shared_emulator.principal_ids["bob"]
    assert bob.error(403, "GET", f"/file/v1/fileHandle/{handle['id']}") == (
        "Only the creator of a FileHandle can access it directly by its ID.  "
        f"FileHandleId = '{handle['id']}', UserId = '{bob_id}'"
    )
    assert alice.error(404, "GET", "/file/v1/fileHandle/987654321") == (
        "FileHandle: '987654321' cannot be found"
    )


# ---------------------------------------------------------------------------------------------
# Batch, redirects, entity file handles


def test_batch_downloads_and_failure_codes(shared_emulator: Emulator, alice: Any, bob: Any) -> None:
    project = alice.project(_name())
    first = upload(alice, b"version one", "v.txt", content_type="text/plain")
    entity = file_entity(alice, project["id"], first["id"], "v.txt")
    second = upload(alice, b"version two", "v.txt", content_type="text/plain")
    alice.ok("PUT", f"/entity/{entity['id']}", {**entity, "dataFileHandleId": second["id"]})
    stray = upload(alice, b"not attached")
    results = batch(
        alice,
        association(second["id"], entity["id"]),
        association(first["id"], entity["id"]),  # an older version's handle is still associated
        association(stray["id"], entity["id"]),
        association(second["id"], "syn999999999"),
        includeFileHandles=True,
        includePreSignedURLs=True,
        includePreviewPreSignedURLs=True,
    )
    assert [r.get("failureCode") for r in results] == [None, None, "UNAUTHORIZED", "UNAUTHORIZED"]
    assert results[0]["fileHandle"]["id"] == second["id"]
    assert download(results[0]["preSignedURL"]) == b"version two"
    assert download(results[1]["preSignedURL"]) == b"version one"
    # generatePreview=false: the handle is its own preview.
    assert download(results[0]["previewPreSignedURL"]) == b"version two"
    response = requests.get(results[0]["preSignedURL"], timeout=30)
    assert response.headers["Content-Disposition"] == "attachment; filename=v.txt"
    assert response.headers["Content-Type"] == "text/plain"
    [denied] = batch(bob, association(second["id"], entity["id"]))
    assert denied == {"fileHandleId": second["id"], "failureCode": "UNAUTHORIZED"}
    [urls_only] = batch(alice, association(second["id"], entity["id"]), includePreSignedURLs=True)
    assert set(urls_only) == {"fileHandleId", "preSignedURL"}
    assert (
        alice.error(
            400,
            "POST",
            "/file/v1/fileHandle/batch",
            {"requestedFiles": [association(second["id"], entity["id"])]},
        )
        == "Must include either FileHandles or pre-signed URLs or preview pre-signed URLs"
    )
    too_many = [association(second["id"], entity["id"])] * 101
    assert (
        alice.error(
            400,
            "POST",
            "/file/v1/fileHandle/batch",
            {"requestedFiles": too_many, "includeFileHandles": True},
        )
        == "Request exceeds the maximum number of objects per request: 100"
    )
    # NOT_FOUND: associated, authorised, but the handle row is gone.
    with shared_emulator.store.transaction():
        shared_emulator.store.execute("DELETE FROM file_handles WHERE id = ?", (int(first["id"]),))
    [gone] = batch(alice, association(first["id"], entity["id"]))
    assert gone == {"fileHandleId": first["id"], "failureCode": "NOT_FOUND"}


def test_presigned_urls_are_signed_and_expire(shared_emulator: Emulator, alice: Any) -> None:
    project = alice.project(_name())
    handle = upload(alice, b"signed")
    entity = file_entity(alice, project["id"], handle["id"])
    [result] = batch(alice, association(handle["id"], entity["id"]), includePreSignedURLs=True)
    url = result["preSignedURL"]
    tampered = url.replace("response-content-disposition=", "response-content-disposition=x")
    response = requests.get(tampered, timeout=30)
    assert response.status_code == 403 and "SignatureDoesNotMatch" in response.text
    expired = files.presign(shared_emulator, "GET", handle["bucketName"], handle["key"], expires=1)
    time.sleep(1.2)
    response = requests.get(expired, timeout=30)
    assert response.status_code == 403 and "Request has expired" in response.text


def test_redirect_to_the_file(shared_emulator: Emulator, alice: Any, bob: Any) -> None:
    project = alice.project(_name())
    handle = upload(alice, b"redirected")
    entity = file_entity(alice, project["id"], handle["id"])
    params = {"fileAssociateType": "FileEntity", "fileAssociateId": entity["id"]}
    url = f"{shared_emulator.file_endpoint}/file/{handle['id']}"
    response = alice.session.get(url, params=params, allow_redirects=False, timeout=30)
    assert response.status_code == 307
    assert download(response.headers["Location"]) == b"redirected"
    response = alice.session.get(url, params={**params, "redirect": "false"}, timeout=30)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain")
    assert download(response.text) == b"redirected"
    response = bob.session.get(url, params=params, allow_redirects=False, timeout=30)
    assert response.status_code == 403
    assert response.json()["reason"] == "You lack DOWNLOAD access to the requested entity."


def test_entity_file_handles(shared_emulator: Emulator, alice: Any, bob: Any) -> None:
    project = alice.project(_name())
    first = upload(alice, b"one")
    entity = file_entity(alice, project["id"], first["id"])
    second = upload(alice, b"two")
    alice.ok("PUT", f"/entity/{entity['id']}", {**entity, "dataFileHandleId": second["id"]})
    assert alice.ok("GET", f"/entity/{entity['id']}/filehandles") == {"list": [second]}
    assert alice.ok("GET", f"/entity/{entity['id']}/version/1/filehandles") == {"list": [first]}
    assert alice.error(404, "GET", f"/entity/{entity['id']}/version/7/filehandles") == (
        f"Cannot find a node with id {entity['id']} and version 7"
    )
    assert bob.error(403, "GET", f"/entity/{entity['id']}/filehandles") == (
        "You lack DOWNLOAD access to the requested entity."
    )
    share(alice, project["id"], shared_emulator.principal_ids["bob"], ["READ"])
    assert bob.error(403, "GET", f"/entity/{entity['id']}/filehandles") == (
        "You lack DOWNLOAD access to the requested entity."
    )


def test_wiki_associations(shared_emulator: Emulator, alice: Any, bob: Any) -> None:
    project = alice.project(_name())
    attachment = upload(alice, b"attached bytes", "notes.txt")
    page = alice.ok(
        "POST",
        f"/entity/{project['id']}/wiki",
        {"title": "Home", "markdown": "# Hello", "attachmentFileHandleIds": [attachment["id"]]},
    )
    v2 = alice.ok("GET", f"/entity/{project['id']}/wiki2/{page['id']}")
    markdown, attached = batch(
        alice,
        association(v2["markdownFileHandleId"], page["id"], "WikiMarkdown"),
        association(attachment["id"], page["id"], "WikiAttachment"),
    )
    assert gzip.decompress(download(markdown["preSignedURL"])) == b"# Hello"
    assert download(attached["preSignedURL"]) == b"attached bytes"
    wrong_kind, bob_denied = (
        batch(alice, association(attachment["id"], page["id"], "WikiMarkdown")),
        batch(bob, association(attachment["id"], page["id"], "WikiAttachment")),
    )
    assert wrong_kind[0]["failureCode"] == "UNAUTHORIZED"
    assert bob_denied[0]["failureCode"] == "UNAUTHORIZED"


# ---------------------------------------------------------------------------------------------
# Versions: MD5 auto-versioning and the per-version file handle swap


def test_md5_auto_versioning(alice: Any) -> None:
    project = alice.project(_name())
    first = upload(alice, b"same content")
    entity = file_entity(alice, project["id"], first["id"])
    assert entity["versionNumber"] == 1
    twin = upload(alice, b"same content", "twin.bin")  # a new handle, same MD5
    swapped = alice.ok("PUT", f"/entity/{entity['id']}", {**entity, "dataFileHandleId": twin["id"]})
    assert swapped["versionNumber"] == 1 and swapped["dataFileHandleId"] == twin["id"]
    changed = upload(alice, b"other content")
    body = {**swapped, "dataFileHandleId": changed["id"], "versionLabel": "ignored"}
    versioned = alice.ok("PUT", f"/entity/{entity['id']}", body)
    assert versioned["versionNumber"] == 2 and versioned["versionLabel"] == "2"
    explicit = alice.ok(
        "PUT",
        f"/entity/{entity['id']}",
        {**versioned, "versionLabel": "v-three", "versionComment": "by hand"},
        newVersion="true",
    )
    assert explicit["versionNumber"] == 3 and explicit["versionLabel"] == "v-three"
    assert explicit["versionComment"] == "by hand"
    versions = alice.ok("GET", f"/entity/{entity['id']}/version")["results"]
    assert [v["versionNumber"] for v in versions] == [3, 2, 1]
    assert versions[2]["contentMd5"] == md5_hex(b"same content")


def test_version_file_handle_swap(shared_emulator: Emulator, alice: Any, bob: Any) -> None:
    project = alice.project(_name())
    first = upload(alice, b"first")
    entity = file_entity(alice, project["id"], first["id"])
    second = upload(alice, b"second")
    current = alice.ok(
        "PUT", f"/entity/{entity['id']}", {**entity, "dataFileHandleId": second["id"]}
    )
    assert current["versionNumber"] == 2
    copy = upload(alice, b"first", "copy.bin")
    path = f"/entity/{entity['id']}/version/1/filehandle"
    response = alice.call(
        "PUT", path, {"oldFileHandleId": first["id"], "newFileHandleId": copy["id"]}
    )
    assert response.status_code == 200 and response.content == b""
    assert alice.ok("GET", f"/entity/{entity['id']}/version/1")["dataFileHandleId"] == copy["id"]
    after = alice.ok("GET", f"/entity/{entity['id']}")
    assert after["etag"] != current["etag"] and after["dataFileHandleId"] == second["id"]
    assert alice.error(
        412, "PUT", path, {"oldFileHandleId": first["id"], "newFileHandleId": copy["id"]}
    ) == (
        f"The id of the provided file handle id (request.oldFileHandleId: {first['id']}) does not "
        "match the current file handle id."
    )
    assert alice.error(
        412, "PUT", path, {"oldFileHandleId": copy["id"], "newFileHandleId": second["id"]}
    ) == (
        "The MD5 of the new file handle does not match the MD5 of the current file handle, a new "
        "version must be created."
    )
    same = alice.call("PUT", path, {"oldFileHandleId": copy["id"], "newFileHandleId": copy["id"]})
    assert same.status_code == 200
    assert alice.error(400, "PUT", path, {"newFileHandleId": copy["id"]}) == (
        "The updateRequest.oldFileHandleId is required."
    )
    assert alice.error(400, "PUT", path, {"oldFileHandleId": copy["id"]}) == (
        "The updateRequest.newFileHandleId is required."
    )
    assert (
        alice.error(
            404,
            "PUT",
            f"/entity/{entity['id']}/version/9/filehandle",
            {"oldFileHandleId": copy["id"], "newFileHandleId": copy["id"]},
        )
        == f"A file entity with id {entity['id']} and revision 9 does not exist."
    )
    share(alice, project["id"], shared_emulator.principal_ids["bob"], ["READ"])
    assert bob.error(
        403, "PUT", path, {"oldFileHandleId": copy["id"], "newFileHandleId": first["id"]}
    ) == ("You lack UPDATE access to the requested entity.")
    share(alice, project["id"], shared_emulator.principal_ids["bob"], ["READ", "UPDATE"])
    bob_id = shared_emulator.principal_ids["bob"]
    assert bob.error(
        403, "PUT", path, {"oldFileHandleId": copy["id"], "newFileHandleId": first["id"]}
    ) == (
        "Only the creator of a FileHandle can access it directly by its ID.  "
        f"FileHandleId = '{first['id']}', UserId = '{bob_id}'"
    )


# ---------------------------------------------------------------------------------------------
# STS placement rules


def _sts_folder(api: Any, project_id: str, name: str = "sts") -> tuple[dict[str, Any], int]:
    location = synapse_sts_location(api)["storageLocationId"]
    folder = api.folder(name, project_id)
    set_locations(api, folder["id"], [location])
    return folder, location


def test_sts_folders_only_take_files_of_their_location(alice: Any) -> None:
    project = alice.project(_name())
    folder, location = _sts_folder(alice, project["id"])
    plain = upload(alice, b"plain")
    assert alice.error(
        400,
        "POST",
        "/entity",
        {"concreteType": FILE_ENTITY, "parentId": folder["id"], "dataFileHandleId": plain["id"]},
    ) == (
        "Folders with STS-enabled storage locations can only accept files with the same storage "
        "location"
    )
    inside = upload(alice, b"sts bytes", "in.bin", location=location)
    assert inside["key"].startswith(synapse_key_prefix(alice, location))
    assert (
        alice.error(
            400,
            "POST",
            "/entity",
            {
                "concreteType": FILE_ENTITY,
                "parentId": project["id"],
                "dataFileHandleId": inside["id"],
            },
        )
        == FILE_STS
    )
    entity = file_entity(alice, folder["id"], inside["id"], "in.bin")
    # Moving the file out, or swapping its handle for one elsewhere, is refused as well.
    assert alice.error(
        400, "PUT", f"/entity/{entity['id']}", {**entity, "parentId": project["id"]}
    ) == (
        "Files in STS-enabled storage locations can only be placed in folders with the same "
        "storage location"
    )
    assert alice.error(
        400, "PUT", f"/entity/{entity['id']}", {**entity, "dataFileHandleId": plain["id"]}
    ) == (
        "Folders with STS-enabled storage locations can only accept files with the same storage "
        "location"
    )
    outside = file_entity(alice, project["id"], upload(alice, b"sts bytes", "o.bin")["id"])
    assert (
        alice.error(
            400,
            "PUT",
            f"/entity/{outside['id']}/version/1/filehandle",
            {"oldFileHandleId": outside["dataFileHandleId"], "newFileHandleId": inside["id"]},
        )
        == FILE_STS
    )


def synapse_key_prefix(api: Any, location: int) -> str:
    return str(api.ok("GET", f"/storageLocation/{location}")["baseKey"]) + "/"


def test_sts_folders_only_hold_files_and_folders_and_keep_their_acl(
    shared_emulator: Emulator, alice: Any
) -> None:
    project = alice.project(_name())
    folder, _ = _sts_folder(alice, project["id"])
    link = {
        "concreteType": MODEL + "Link",
        "name": "a link",
        "parentId": folder["id"],
        "linksTo": {"targetId": project["id"]},
        "linksToClassName": MODEL + "Project",
    }
    assert alice.error(400, "POST", "/entity", link) == (
        "Can only create Files and Folders inside STS-enabled folders"
    )
    sub = alice.folder("sub", folder["id"])
    acl = {
        "id": sub["id"],
        "resourceAccess": [
            {
                "principalId": shared_emulator.principal_ids["alice"],
                "accessType": ["READ", "CHANGE_PERMISSIONS"],
            }
        ],
    }
    assert alice.error(400, "POST", f"/entity/{sub['id']}/acl", acl) == (
        "Cannot override ACLs in a child of an STS-enabled folder"
    )
    own = alice.call("POST", f"/entity/{folder['id']}/acl", {**acl, "id": folder["id"]})
    assert own.status_code == 201


def test_sts_folder_moves(alice: Any) -> None:
    project = alice.project(_name())
    first, _ = _sts_folder(alice, project["id"], "first")
    second, _ = _sts_folder(alice, project["id"], "second")
    sub = alice.folder("sub", first["id"])
    plain = alice.folder("plain", project["id"])

    def move(folder: dict[str, Any], parent: str) -> Any:
        current = alice.ok("GET", f"/entity/{folder['id']}")
        return alice.call("PUT", f"/entity/{folder['id']}", {**current, "parentId": parent})

    response = move(first, second["id"])
    assert response.status_code == 400 and response.json()["reason"] == (
        "Cannot place an STS-enabled folder inside another STS-enabled folder"
    )
    response = move(plain, first["id"])
    assert response.json()["reason"] == (
        "Non-STS-enabled folders cannot be placed inside STS-enabled folders"
    )
    response = move(sub, project["id"])
    assert response.json()["reason"] == (
        "Folders in STS-enabled storage locations can only be placed in folders with the same "
        "storage location"
    )
    response = move(first, plain["id"])  # an STS root may go anywhere outside STS
    assert response.status_code == 200
    assert alice.ok("GET", f"/entity/{first['id']}")["parentId"] == plain["id"]
    folder_json = alice.ok("GET", f"/entity/{plain['id']}")
    assert folder_json["concreteType"] == FOLDER


def test_names_that_need_encoding(shared_emulator: Emulator, alice: Any) -> None:
    project = alice.project(_name())
    name = "my data (v1)+final's copy.txt"
    data = b"encoded names survive signing"
    handle = upload(alice, data, name, content_type="text/plain; charset=UTF-8")
    assert handle["key"].endswith("/" + name)
    entity = file_entity(alice, project["id"], handle["id"])
    [result] = batch(alice, association(handle["id"], entity["id"]), includePreSignedURLs=True)
    response = requests.get(result["preSignedURL"], timeout=30)
    assert response.status_code == 200 and response.content == data
    assert response.headers["Content-Disposition"] == f"attachment; filename={name}"
