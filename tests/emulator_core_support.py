"""Helpers shared by the emulator core behaviour tests (``test_emulator_core_*.py``).

File handles belong to the storage half of the emulator; the core tests only need rows that
look like Synapse's, so they are written straight into the emulator's store (and S3 for wiki
markdown) rather than through the upload endpoints.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import uuid
from typing import Any

from synapse_declare.emulator import Emulator

MODEL = "org.sagebionetworks.repo.model."
PROJECT = MODEL + "Project"
FOLDER = MODEL + "Folder"
FILE = MODEL + "FileEntity"
LINK = MODEL + "Link"
S3_HANDLE = MODEL + "file.S3FileHandle"
ERROR = MODEL + "ErrorResponse"
ZERO_ETAG = "00000000-0000-0000-0000-000000000000"
ROOT = "syn4489"
TRASH = "syn1681355"
PUBLIC, AUTHENTICATED, ANONYMOUS_ID, CERTIFIED = 273949, 273948, 273950, 3
ADMIN_SET = {
    "READ",
    "DOWNLOAD",
    "UPDATE",
    "DELETE",
    "CREATE",
    "CHANGE_PERMISSIONS",
    "CHANGE_SETTINGS",
    "MODERATE",
}


def uniq(prefix: str = "P") -> str:
    """A globally unique entity name (project names are unique across Synapse)."""
    return f"{prefix} {uuid.uuid4().hex[:10]}"


def user_id(emulator: Emulator, user: str) -> int:
    return emulator.principal_ids[user]


def make_file_handle(
    emulator: Emulator,
    user: str,
    *,
    content: bytes = b"hello",
    file_name: str = "data.txt",
    content_type: str = "text/plain",
    gzip_content: bool = False,
    created_on: str | None = None,
    md5: str | None = None,
) -> str:
    """An S3FileHandle in Synapse storage created by ``user``, with its object in (moto) S3."""
    body = gzip.compress(content) if gzip_content else content
    store = emulator.store
    key = f"{user_id(emulator, user)}/{uuid.uuid4()}/{file_name}"
    emulator.s3_client().put_object(
        Bucket=emulator.synapse_bucket, Key=key, Body=body, ContentType=content_type
    )
    with store.transaction():
        handle_id = store.next_id("file_handle")
        store.execute(
            "INSERT INTO file_handles(id, concrete_type, created_by, created_on, etag, file_name,"
            " content_type, content_md5, content_size, storage_location_id, bucket, key) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                handle_id,
                S3_HANDLE,
                user_id(emulator, user),
                created_on or "2024-01-01T00:00:00.000Z",
                str(uuid.uuid4()),
                file_name,
                content_type,
                md5 or hashlib.md5(body).hexdigest(),
                len(body),
                1,
                emulator.synapse_bucket,
                key,
            ),
        )
    return str(handle_id)


def project_body(name: str, **extra: Any) -> dict[str, Any]:
    return {"concreteType": PROJECT, "name": name, **extra}


def folder_body(name: str, parent: str, **extra: Any) -> dict[str, Any]:
    return {"concreteType": FOLDER, "name": name, "parentId": parent, **extra}


def file_body(name: str, parent: str, handle: str, **extra: Any) -> dict[str, Any]:
    return {
        "concreteType": FILE,
        "name": name,
        "parentId": parent,
        "dataFileHandleId": handle,
        **extra,
    }


def grant(api: Any, entity_id: str, entries: list[tuple[int, list[str]]]) -> dict[str, Any]:
    """Give ``entity_id`` its own ACL (or replace it): [(principalId, accessTypes), ...].

    The caller keeps its own entry from the current ACL so it does not lock itself out.
    """
    owner = int(api.ok("GET", "/userProfile")["ownerId"])
    resource = [{"principalId": p, "accessType": a} for p, a in entries]
    if not any(e["principalId"] == owner for e in resource):
        resource.append({"principalId": owner, "accessType": sorted(ADMIN_SET)})
    response = api.call("GET", f"/entity/{entity_id}/acl")
    if response.status_code == 200:
        acl = response.json()
        return dict(api.ok("PUT", f"/entity/{entity_id}/acl", {**acl, "resourceAccess": resource}))
    return dict(api.ok("POST", f"/entity/{entity_id}/acl", {"resourceAccess": resource}))


def entries_of(acl: dict[str, Any]) -> dict[int, set[str]]:
    return {int(e["principalId"]): set(e["accessType"]) for e in acl["resourceAccess"]}


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
