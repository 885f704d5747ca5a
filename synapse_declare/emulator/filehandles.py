"""File handle JSON and lookups shared by bundles, wikis and the storage endpoints."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .util import MODEL

if TYPE_CHECKING:
    import sqlite3

    from .store import Store

FILE = MODEL + "file."
S3_FILE_HANDLE = FILE + "S3FileHandle"


def get_handle(store: Store, handle_id: int | None) -> sqlite3.Row | None:
    if handle_id is None:
        return None
    return store.one("SELECT * FROM file_handles WHERE id = ?", (handle_id,))


def file_handle_json(row: sqlite3.Row) -> dict[str, Any]:
    """A FileHandle as Synapse writes it (S3FileHandle and the other concrete types)."""
    body: dict[str, Any] = {
        "concreteType": row["concrete_type"],
        "id": str(row["id"]),
        "etag": row["etag"],
        "createdBy": str(row["created_by"]),
        "createdOn": row["created_on"],
        "modifiedOn": row["created_on"],
        "contentType": row["content_type"],
        "contentMd5": row["content_md5"],
        "fileName": row["file_name"],
        "storageLocationId": row["storage_location_id"],
        "contentSize": row["content_size"],
        "status": row["status"],
    }
    if row["concrete_type"] in (S3_FILE_HANDLE, FILE + "GoogleCloudFileHandle"):
        body["bucketName"] = row["bucket"]
        body["key"] = row["key"]
        body["previewId"] = str(row["preview_id"]) if row["preview_id"] is not None else None
        body["isPreview"] = bool(row["is_preview"])
    extra = json.loads(row["extra"]) if row["extra"] else {}
    body.update(extra)
    return body
