"""Multipart upload and copy over HTTP, parts through the embedded S3 (synapse-api.md §9.5)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests
from test_emulator_storage_support import (
    COPY_REQUEST,
    EXTERNAL_GCS,
    FILE,
    MIB,
    S3_FILE_HANDLE,
    UPLOAD_REQUEST,
    download,
    external_location,
    file_entity,
    make_bucket,
    md5_hex,
    put_parts,
    start_upload,
    upload,
)

from synapse_declare.emulator import Emulator

ApiFactory = Callable[..., Any]
MULTIPART = "/file/v1/file/multipart"


def _data(size: int) -> bytes:
    seed = uuid.uuid4().bytes
    return (seed * (size // len(seed) + 1))[:size]


def _urls(api: Any, upload_id: str, parts: list[int], **extra: Any) -> list[dict[str, Any]]:
    body = {"uploadId": upload_id, "partNumbers": parts, **extra}
    return list(
        api.ok("POST", f"{MULTIPART}/{upload_id}/presigned/url/batch", body)["partPresignedUrls"]
    )


def _add(api: Any, upload_id: str, number: int, md5: str) -> dict[str, Any]:
    return dict(api.ok("PUT", f"{MULTIPART}/{upload_id}/add/{number}", partMD5Hex=md5))


# ---------------------------------------------------------------------------------------------
# Upload


def test_multipart_upload_into_synapse_storage(shared_emulator: Emulator, alice: Any) -> None:
    data = _data(11 * MIB)
    status = start_upload(alice, data, "big.bin", content_type="application/x-test")
    assert status["state"] == "UPLOADING" and status["partsState"] == "000"
    assert status["startedBy"] == str(shared_emulator.principal_ids["alice"])
    assert "resultFileHandleId" not in status
    upload_id = status["uploadId"]
    put_parts(alice, upload_id, data, 5 * MIB)
    done = alice.ok("PUT", f"{MULTIPART}/{upload_id}/complete")
    assert done["state"] == "COMPLETED" and done["partsState"] == "111"
    assert alice.ok("PUT", f"{MULTIPART}/{upload_id}/complete") == done  # idempotent
    handle = alice.ok("GET", f"/file/v1/fileHandle/{done['resultFileHandleId']}")
    user_id = shared_emulator.principal_ids["alice"]
    assert handle["concreteType"] == S3_FILE_HANDLE
    assert handle["contentMd5"] == md5_hex(data) and handle["contentSize"] == len(data)
    assert (
        handle["storageLocationId"] == 1 and handle["bucketName"] == shared_emulator.synapse_bucket
    )
    assert re.fullmatch(rf"{user_id}/[0-9a-f-]{{36}}/big\.bin", handle["key"])
    assert handle["contentType"] == "application/x-test" and handle["fileName"] == "big.bin"
    assert handle["previewId"] == handle["id"]  # generatePreview false
    s3 = shared_emulator.s3_client()
    stored = s3.get_object(Bucket=handle["bucketName"], Key=handle["key"])
    assert stored["Body"].read() == data
    assert stored["ContentType"] == "application/x-test"
    leftovers = s3.list_objects_v2(Bucket=handle["bucketName"], Prefix=handle["key"] + "/")
    assert leftovers.get("KeyCount", 0) == 0  # temporary part objects are deleted


def test_start_is_idempotent_per_request(shared_emulator: Emulator, alice: Any, bob: Any) -> None:
    data = _data(1000)
    first = start_upload(alice, data, "same.bin")
    assert start_upload(alice, data, "same.bin")["uploadId"] == first["uploadId"]
    assert start_upload(bob, data, "same.bin")["uploadId"] != first["uploadId"]
    restarted = start_upload(alice, data, "same.bin", force_restart=True)
    assert restarted["uploadId"] != first["uploadId"]
    put_parts(alice, restarted["uploadId"], data, 5 * MIB)
    done = alice.ok("PUT", f"{MULTIPART}/{restarted['uploadId']}/complete")
    again = start_upload(alice, data, "same.bin")
    assert again == done  # the completed upload is returned while its object exists
    handle = alice.ok("GET", f"/file/v1/fileHandle/{done['resultFileHandleId']}")
    shared_emulator.s3_client().delete_object(Bucket=handle["bucketName"], Key=handle["key"])
    fresh = start_upload(alice, data, "same.bin")
    assert fresh["uploadId"] not in (first["uploadId"], restarted["uploadId"])
    assert fresh["state"] == "UPLOADING"


def test_parts_are_checked(alice: Any, bob: Any) -> None:
    data = _data(11 * MIB)
    upload_id = start_upload(alice, data, "checked.bin")["uploadId"]
    [item] = _urls(alice, upload_id, [2])
    assert "signedHeaders" not in item
    wrong = b"not the part"
    assert requests.put(item["uploadPresignedUrl"], data=wrong, timeout=30).status_code == 200
    failed = _add(alice, upload_id, 2, md5_hex(data[5 * MIB : 10 * MIB]))
    assert failed == {
        "uploadId": upload_id,
        "partNumber": 2,
        "addPartState": "ADD_FAILED",
        "errorMessage": "The provided MD5 does not match the MD5 of the uploaded part.  Please "
        "re-upload the part.",
    }
    assert (
        alice.error(
            400,
            "POST",
            f"{MULTIPART}/{upload_id}/presigned/url/batch",
            {"uploadId": upload_id, "partNumbers": [4]},
        )
        == "Part number cannot be larger than number of parts. Number of parts: 3, provided part "
        "number: 4"
    )
    assert alice.error(400, "PUT", f"{MULTIPART}/{upload_id}/add/4", partMD5Hex="0" * 32) == (
        "Part number cannot be larger than number of parts. Number of parts: 3, provided part "
        "number: 4"
    )
    starter_only = (
        "Only the user that started a multipart upload can get part upload pre-signed URLs for "
        "that file upload."
    )
    assert (
        bob.error(
            403,
            "POST",
            f"{MULTIPART}/{upload_id}/presigned/url/batch",
            {"uploadId": upload_id, "partNumbers": [1]},
        )
        == starter_only
    )
    assert bob.error(403, "PUT", f"{MULTIPART}/{upload_id}/add/1", partMD5Hex="0" * 32) == (
        starter_only
    )
    assert bob.error(403, "PUT", f"{MULTIPART}/{upload_id}/complete") == starter_only
    assert alice.error(400, "PUT", f"{MULTIPART}/{upload_id}/complete") == (
        "Missing 3 part(s).  All parts must be successfully added before a file upload can be "
        "completed."
    )
    put_parts(alice, upload_id, data, 5 * MIB)
    alice.ok("PUT", f"{MULTIPART}/{upload_id}/complete")
    assert alice.error(400, "PUT", f"{MULTIPART}/{upload_id}/add/1", partMD5Hex="0" * 32) == (
        "Cannot add parts to completed file upload."
    )


def test_signed_content_type_must_be_sent(alice: Any) -> None:
    data = b"typed"
    upload_id = start_upload(alice, data, "typed.txt")["uploadId"]
    [item] = _urls(alice, upload_id, [1], contentType="text/plain")
    assert item["signedHeaders"] == {"Content-Type": "text/plain"}
    bare = requests.put(item["uploadPresignedUrl"], data=data, timeout=30)
    assert bare.status_code == 403 and "SignatureDoesNotMatch" in bare.text
    typed = requests.put(
        item["uploadPresignedUrl"], data=data, headers=item["signedHeaders"], timeout=30
    )
    assert typed.status_code == 200


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"partSizeBytes": 5 * MIB - 1}, "The part size must be at least 5242880 bytes."),
        ({"partSizeBytes": 5 * 1024 * MIB + 1}, "The part size must not exceed 5368709120 bytes."),
        ({"fileSizeBytes": 0}, "File size must be at least one byte"),
        ({"fileSizeBytes": 5 * 1024 * 1024 * MIB + 1}, "The maximum file size is 5 TB"),
        (
            {"fileSizeBytes": 5 * MIB * 10_000 + 1},
            "File Upload would require 10001 parts, which exceeds the maximum number of allowed "
            "parts of: 10000. Please choose a larger part size.",
        ),
        (
            {"fileName": "bad/name"},
            "Invalid Name: 'bad/name'. Names may only contain: letters, numbers, spaces, "
            "underscores, hyphens, periods, plus signs, apostrophes, and parentheses",
        ),
        ({"fileName": None}, "MultipartUploadRequest.fileName is required."),
        ({"contentMD5Hex": None}, "MultipartUploadRequest.contentMD5Hex is required."),
        ({"storageLocationId": 987654321}, "Storage location setting: '987654321' does not exist"),
    ],
)
def test_upload_request_limits(alice: Any, change: dict[str, Any], reason: str) -> None:
    body = {
        "concreteType": UPLOAD_REQUEST,
        "fileName": "limits.bin",
        "contentMD5Hex": "0" * 32,
        "fileSizeBytes": 10,
        "partSizeBytes": 5 * MIB,
        **change,
    }
    status = 404 if "storageLocationId" in change else 400
    assert (
        alice.error(status, "POST", MULTIPART, {k: v for k, v in body.items() if v is not None})
        == reason
    )


def test_upload_into_an_external_bucket(shared_emulator: Emulator, alice: Any) -> None:
    bucket = make_bucket(shared_emulator, base_key="lab/data")
    location = external_location(alice, bucket, "lab/data", sts=True)["storageLocationId"]
    data = _data(6 * MIB)
    handle = upload(alice, data, "ext.bin", location=location)
    user_id = shared_emulator.principal_ids["alice"]
    assert handle["bucketName"] == bucket and handle["storageLocationId"] == location
    assert re.fullmatch(rf"lab/data/{user_id}/[0-9a-f-]{{36}}/ext\.bin", handle["key"])
    body = shared_emulator.s3_client().get_object(Bucket=bucket, Key=handle["key"])["Body"].read()
    assert body == data


# ---------------------------------------------------------------------------------------------
# Copy


def _copy_request(handle_id: str, entity_id: str, location: int, **extra: Any) -> dict[str, Any]:
    return {
        "concreteType": COPY_REQUEST,
        "storageLocationId": location,
        "partSizeBytes": 5 * MIB,
        "generatePreview": True,
        "sourceFileHandleAssociation": {
            "fileHandleId": handle_id,
            "associateObjectId": entity_id,
            "associateObjectType": "FileEntity",
        },
        **extra,
    }


def _copy_part(item: dict[str, Any]) -> str:
    response = requests.put(item["uploadPresignedUrl"], headers=item["signedHeaders"], timeout=30)
    assert response.status_code == 200, response.text
    match = re.search(r"<ETag>(.*?)</ETag>", response.text)
    assert match is not None
    return match.group(1).replace("&quot;", "").replace('"', "")


def test_multipart_copy_to_an_external_bucket(shared_emulator: Emulator, alice: Any) -> None:
    project = alice.project(f"copy-{uuid.uuid4().hex[:8]}")
    data = _data(11 * MIB)
    source = upload(alice, data, "source.bin")
    entity = file_entity(alice, project["id"], source["id"])
    bucket = make_bucket(shared_emulator)
    location = external_location(alice, bucket)["storageLocationId"]
    status = alice.ok("POST", MULTIPART, _copy_request(source["id"], entity["id"], location))
    assert status["state"] == "UPLOADING" and status["partsState"] == "000"
    upload_id = status["uploadId"]
    items = _urls(alice, upload_id, [1, 2, 3])
    assert items[0]["signedHeaders"]["x-amz-copy-source-range"] == f"bytes=0-{5 * MIB - 1}"
    assert (
        items[2]["signedHeaders"]["x-amz-copy-source-range"] == f"bytes={10 * MIB}-{11 * MIB - 1}"
    )
    assert items[0]["signedHeaders"]["x-amz-copy-source"].startswith(
        shared_emulator.synapse_bucket + "/"
    )
    # The copy headers are signed: without them S3 refuses the URL.
    bare = requests.put(items[0]["uploadPresignedUrl"], timeout=30)
    assert bare.status_code == 403 and "SignatureDoesNotMatch" in bare.text
    for item in items:
        etag = _copy_part(item)
        assert etag == md5_hex(
            data[(item["partNumber"] - 1) * 5 * MIB : item["partNumber"] * 5 * MIB]
        )
        assert _add(alice, upload_id, item["partNumber"], etag)["addPartState"] == "ADD_SUCCESS"
    done = alice.ok("PUT", f"{MULTIPART}/{upload_id}/complete")
    copy = alice.ok("GET", f"/file/v1/fileHandle/{done['resultFileHandleId']}")
    assert copy["contentMd5"] == source["contentMd5"]  # carried over, not recomputed
    assert copy["contentSize"] == len(data) and copy["fileName"] == "source.bin"
    assert copy["bucketName"] == bucket and copy["storageLocationId"] == location
    assert "previewId" not in copy  # generatePreview true, but no preview generator for binary
    assert (
        shared_emulator.s3_client().get_object(Bucket=bucket, Key=copy["key"])["Body"].read()
        == data
    )
    # The source is untouched.
    assert shared_emulator.s3_client().head_object(Bucket=source["bucketName"], Key=source["key"])


def test_copy_source_must_not_change(shared_emulator: Emulator, alice: Any) -> None:
    project = alice.project(f"copy-{uuid.uuid4().hex[:8]}")
    source = upload(alice, b"original")
    entity = file_entity(alice, project["id"], source["id"])
    location = external_location(alice, make_bucket(shared_emulator))["storageLocationId"]
    request = _copy_request(source["id"], entity["id"], location, fileName="renamed.bin")
    upload_id = alice.ok("POST", MULTIPART, request)["uploadId"]
    # The file name is not part of the idempotency key.
    assert (
        alice.ok("POST", MULTIPART, {**request, "fileName": "other.bin"})["uploadId"] == upload_id
    )
    [item] = _urls(alice, upload_id, [1])
    assert item["signedHeaders"]["x-amz-copy-source-range"] == "bytes=0-7"
    shared_emulator.s3_client().put_object(
        Bucket=source["bucketName"], Key=source["key"], Body=b"changed!"
    )
    response = requests.put(item["uploadPresignedUrl"], headers=item["signedHeaders"], timeout=30)
    assert response.status_code == 412 and "PreconditionFailed" in response.text


def test_copy_rules(shared_emulator: Emulator, alice: Any, bob: Any) -> None:
    project = alice.project(f"copy-{uuid.uuid4().hex[:8]}")
    source = upload(alice, b"copy me")
    entity = file_entity(alice, project["id"], source["id"])
    mine = external_location(alice, make_bucket(shared_emulator))["storageLocationId"]
    bobs = external_location(bob, make_bucket(shared_emulator, owner="bob"))["storageLocationId"]
    assert alice.error(
        400,
        "POST",
        MULTIPART,
        {**_copy_request(source["id"], entity["id"], mine), "storageLocationId": None},
    ) == ("MultipartUploadCopyRequest.storageLocationId is required.")
    assert bob.error(403, "POST", MULTIPART, _copy_request(source["id"], entity["id"], bobs)) == (
        "The user is not authorized to access the source file."
    )
    assert alice.error(403, "POST", MULTIPART, _copy_request(source["id"], entity["id"], bobs)) == (
        "The user does not own the destination storage location."
    )
    assert alice.error(403, "POST", MULTIPART, _copy_request(source["id"], entity["id"], 1)) == (
        "The user does not own the destination storage location."
    )
    copied = alice.ok("POST", MULTIPART, _copy_request(source["id"], entity["id"], mine))
    [item] = _urls(alice, copied["uploadId"], [1])
    _add(alice, copied["uploadId"], 1, _copy_part(item))
    result = alice.ok("PUT", f"{MULTIPART}/{copied['uploadId']}/complete")["resultFileHandleId"]
    moved = alice.ok("PUT", f"/entity/{entity['id']}", {**entity, "dataFileHandleId": result})
    assert moved["versionNumber"] == 1  # same MD5: swapped in place
    assert alice.error(400, "POST", MULTIPART, _copy_request(result, entity["id"], mine)) == (
        "The source file handle is already in the given destination storage location."
    )
    external = alice.ok(
        "POST",
        "/file/v1/externalFileHandle",
        {
            "concreteType": FILE + "ExternalFileHandle",
            "externalURL": "https://x.org/f",
            "contentMd5": md5_hex(b"f"),
            "contentSize": 1,
        },
    )
    url_entity = file_entity(alice, project["id"], external["id"])
    assert alice.error(
        400, "POST", MULTIPART, _copy_request(external["id"], url_entity["id"], mine)
    ) == ("The source file must be stored in a cloud bucket accessible by Synapse.")
    sizeless = alice.ok(
        "POST",
        "/file/v1/externalFileHandle",
        {"concreteType": FILE + "ExternalFileHandle", "externalURL": "https://x.org/g"},
    )
    sizeless_entity = file_entity(alice, project["id"], sizeless["id"])
    assert alice.error(
        400, "POST", MULTIPART, _copy_request(sizeless["id"], sizeless_entity["id"], mine)
    ) == ("The source file handle does not define its size.")
    gcs = alice.ok(
        "POST", "/storageLocation", {"concreteType": EXTERNAL_GCS, "bucket": "gcs-bucket"}
    )
    assert alice.error(
        400, "POST", MULTIPART, _copy_request(result, entity["id"], gcs["storageLocationId"])
    ) == (
        "Copying a file that is stored in a different region than the destination is not supported."
    )


def test_zero_byte_files_cannot_be_copied(shared_emulator: Emulator, alice: Any) -> None:
    bucket = make_bucket(shared_emulator)
    location = external_location(alice, bucket)["storageLocationId"]
    shared_emulator.s3_client().put_object(Bucket=bucket, Key="empty.txt", Body=b"")
    empty = alice.ok(
        "POST",
        "/file/v1/externalFileHandle/s3",
        {
            "concreteType": S3_FILE_HANDLE,
            "bucketName": bucket,
            "key": "empty.txt",
            "contentMd5": md5_hex(b""),
            "storageLocationId": location,
        },
    )
    assert empty["contentSize"] == 0
    project = alice.project(f"copy-{uuid.uuid4().hex[:8]}")
    entity = file_entity(alice, project["id"], empty["id"])
    other = external_location(alice, make_bucket(shared_emulator, base_key="x"), "x")[
        "storageLocationId"
    ]
    assert alice.error(400, "POST", MULTIPART, _copy_request(empty["id"], entity["id"], other)) == (
        "File size must be at least one byte"
    )
    assert (
        download(
            alice.ok(
                "POST",
                "/file/v1/fileHandle/batch",
                {
                    "requestedFiles": [
                        {
                            "fileHandleId": empty["id"],
                            "associateObjectId": entity["id"],
                            "associateObjectType": "FileEntity",
                        }
                    ],
                    "includePreSignedURLs": True,
                },
            )["requestedFiles"][0]["preSignedURL"]
        )
        == b""
    )
