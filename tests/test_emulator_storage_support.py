"""Helpers shared by the storage behaviour tests (no tests here).

Buckets for "external" storage are created in the emulator's embedded S3 server (moto), which is
process-wide: every helper makes uniquely named buckets.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import requests
from conftest import conforms

from synapse_declare.emulator import Emulator

MODEL = "org.sagebionetworks.repo.model."
PROJECT = MODEL + "project."
FILE = MODEL + "file."
S3_SETTING = PROJECT + "S3StorageLocationSetting"
EXTERNAL_S3 = PROJECT + "ExternalS3StorageLocationSetting"
EXTERNAL_GCS = PROJECT + "ExternalGoogleCloudStorageLocationSetting"
EXTERNAL_OBJECT = PROJECT + "ExternalObjectStorageLocationSetting"
EXTERNAL_STORAGE = PROJECT + "ExternalStorageLocationSetting"
PROXY = PROJECT + "ProxyStorageLocationSettings"
UPLOAD_LIST = PROJECT + "UploadDestinationListSetting"
S3_FILE_HANDLE = FILE + "S3FileHandle"
FILE_ENTITY = MODEL + "FileEntity"
FOLDER = MODEL + "Folder"
UPLOAD_REQUEST = FILE + "MultipartUploadRequest"
COPY_REQUEST = FILE + "MultipartUploadCopyRequest"
MIB = 1024 * 1024


def error_reason(response: requests.Response, status: int) -> str:
    """The reason of an error answered by an un-logged emulator, checked against ErrorResponse."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert conforms(MODEL + "ErrorResponse", body, strict=True) == []
    return str(body["reason"])


def make_bucket(
    emulator: Emulator, owner: str | None = "alice", base_key: str | None = None
) -> str:
    """A new bucket in the embedded S3, with ``[baseKey/]owner.txt`` naming ``owner``."""
    bucket = f"ext-{uuid.uuid4().hex[:16]}"
    s3 = emulator.s3_client()
    s3.create_bucket(Bucket=bucket)
    if owner is not None:
        key = "owner.txt" if base_key is None else f"{base_key}/owner.txt"
        s3.put_object(Bucket=bucket, Key=key, Body=owner.encode("utf-8"))
    return bucket


def external_location(
    api: Any, bucket: str, base_key: str | None = None, *, sts: bool | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"concreteType": EXTERNAL_S3, "bucket": bucket, "uploadType": "S3"}
    if base_key is not None:
        body["baseKey"] = base_key
    if sts is not None:
        body["stsEnabled"] = sts
    return dict(api.ok("POST", "/storageLocation", body))


def synapse_sts_location(api: Any) -> dict[str, Any]:
    return dict(
        api.ok("POST", "/storageLocation", {"concreteType": S3_SETTING, "stsEnabled": True})
    )


def set_locations(api: Any, container_id: str, locations: list[int]) -> dict[str, Any]:
    body = {
        "concreteType": UPLOAD_LIST,
        "settingsType": "upload",
        "projectId": container_id,
        "locations": locations,
    }
    return dict(api.ok("POST", "/projectSettings", body))


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def start_upload(
    api: Any,
    data: bytes,
    name: str = "data.bin",
    *,
    location: int | None = None,
    part_size: int = 5 * MIB,
    content_type: str = "application/octet-stream",
    force_restart: bool | None = None,
    generate_preview: bool = False,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "concreteType": UPLOAD_REQUEST,
        "fileName": name,
        "contentType": content_type,
        "contentMD5Hex": md5_hex(data),
        "fileSizeBytes": len(data),
        "partSizeBytes": part_size,
        "generatePreview": generate_preview,
    }
    if location is not None:
        body["storageLocationId"] = location
    params = {} if force_restart is None else {"forceRestart": str(force_restart).lower()}
    return dict(api.ok("POST", "/file/v1/file/multipart", body, **params))


def put_parts(api: Any, upload_id: str, data: bytes, part_size: int) -> None:
    """Upload every part to its presigned URL and add it (as a client does)."""
    count = max(1, -(-len(data) // part_size))
    urls = api.ok(
        "POST",
        f"/file/v1/file/multipart/{upload_id}/presigned/url/batch",
        {"uploadId": upload_id, "partNumbers": list(range(1, count + 1))},
    )["partPresignedUrls"]
    for item in urls:
        number = item["partNumber"]
        chunk = data[(number - 1) * part_size : number * part_size]
        put = requests.put(
            item["uploadPresignedUrl"],
            data=chunk,
            headers=item.get("signedHeaders") or {},
            timeout=30,
        )
        assert put.status_code == 200, put.text
        added = api.ok(
            "PUT",
            f"/file/v1/file/multipart/{upload_id}/add/{number}",
            partMD5Hex=md5_hex(chunk),
        )
        assert added["addPartState"] == "ADD_SUCCESS", added


def upload(
    api: Any,
    data: bytes,
    name: str = "data.bin",
    *,
    location: int | None = None,
    part_size: int = 5 * MIB,
    content_type: str = "application/octet-stream",
) -> dict[str, Any]:
    """Multipart-upload ``data``; returns the new S3FileHandle."""
    status = start_upload(
        api, data, name, location=location, part_size=part_size, content_type=content_type
    )
    upload_id = status["uploadId"]
    if status["state"] != "COMPLETED":
        put_parts(api, upload_id, data, part_size)
        status = api.ok("PUT", f"/file/v1/file/multipart/{upload_id}/complete")
    assert status["state"] == "COMPLETED", status
    handle = api.ok("GET", f"/file/v1/fileHandle/{status['resultFileHandleId']}")
    return dict(handle)


def file_entity(api: Any, parent: str, handle_id: str, name: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "concreteType": FILE_ENTITY,
        "parentId": parent,
        "dataFileHandleId": handle_id,
    }
    if name is not None:
        body["name"] = name
    return dict(api.ok("POST", "/entity", body))


def download(url: str) -> bytes:
    response = requests.get(url, timeout=30)
    assert response.status_code == 200, response.text
    return response.content
