"""``POST /file/v1/filehandles/copy``: metadata-only copies of file handles the caller may
download (synapse-api-2.md §6.1; SRS FileHandleManagerImpl.copyFileHandles).

A copy is a new handle row pointing at the same object (bucket/key or URL): nothing is copied in
S3, exactly as on Synapse, so the copy is owned by the caller while the bytes stay shared.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import files
from .routing import Route
from .util import bad_request, forbidden, new_etag, now

if TYPE_CHECKING:
    from .app import Ctx

SCHEMA = ""

MAX_COPIES = 100


def copy_file_handles(ctx: Ctx) -> dict[str, Any]:
    store = ctx.store
    if ctx.caller.anonymous:
        forbidden("Anonymous cannot copy files.")
    requests = ctx.json_body().get("copyRequests")
    if requests is None:
        bad_request("BatchFileHandleCopyRequest.copyRequests is required.")
    if not isinstance(requests, list):
        bad_request("BatchFileHandleCopyRequest.copyRequests must be a list")
    if len(requests) > MAX_COPIES:
        bad_request(f"Request exceeds the maximum number of objects per request: {MAX_COPIES}")
    associations: list[tuple[int, str, str]] = []
    for request in requests:
        if not isinstance(request, dict):
            bad_request("FileHandleCopyRequest is required.")
        associations.append(files.check_association(ctx, request.get("originalFile")))
    if len(set(associations)) != len(associations):
        bad_request("Request contains duplicated FileHandleId.")
    results: list[dict[str, Any]] = []
    for request, (handle_id, object_type, object_id) in zip(requests, associations, strict=True):
        result: dict[str, Any] = {"originalFileHandleId": str(handle_id)}
        results.append(result)
        if files.association_denial(ctx, handle_id, object_type, object_id) is not None:
            result["failureCode"] = "UNAUTHORIZED"
            continue
        original = store.one("SELECT * FROM file_handles WHERE id = ?", (handle_id,))
        if original is None:
            result["failureCode"] = "NOT_FOUND"
            continue
        new_id = store.next_id("file_handle")
        new_name = request.get("newFileName")
        new_type = request.get("newContentType")
        # Everything but the identity, the creator and the preview is carried over.
        store.execute(
            "INSERT INTO file_handles(id, concrete_type, created_by, created_on, etag, file_name, "
            "content_type, content_md5, content_size, storage_location_id, bucket, key, "
            "preview_id, is_preview, status, extra) "
            "SELECT ?, concrete_type, ?, ?, ?, ?, ?, content_md5, content_size, "
            "storage_location_id, bucket, key, NULL, is_preview, status, extra "
            "FROM file_handles WHERE id = ?",
            (
                new_id,
                ctx.caller.id,
                now(),
                new_etag(),
                str(new_name) if new_name is not None else original["file_name"],
                str(new_type) if new_type is not None else original["content_type"],
                handle_id,
            ),
        )
        result["newFileHandle"] = files.handle_json(store, new_id)
    return {"copyResults": results}


ROUTES = [Route("POST", "/file/v1/filehandles/copy", copy_file_handles)]
