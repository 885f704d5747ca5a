"""Multipart upload and server-side multipart copy (synapse-api.md §9.5).

An upload is a real S3 multipart upload on the embedded S3 server: parts are PUT by the client to
presigned URLs of temporary keys ``<key>/<partNumber>``; ``add`` makes the server copy the part into
the multipart upload (UploadPartCopy, after checking the part's MD5) and delete the temporary
object; ``complete`` completes the S3 upload and records an S3FileHandle with the request's MD5.

A copy (MultipartUploadCopyRequest) hands out presigned UploadPartCopy URLs whose copy-source
headers are signed; the client PUTs them to S3 and reports the part ETags; the new handle keeps the
source handle's MD5.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from botocore.exceptions import BotoCoreError, ClientError

from . import files, previews, s3gate, storage
from .filehandles import FILE, S3_FILE_HANDLE
from .routing import Reply, Route
from .util import (
    DEFAULT_STORAGE_LOCATION_ID,
    bad_request,
    forbidden,
    not_found,
    now,
    parse_int,
    validate_entity_name,
)

if TYPE_CHECKING:
    import sqlite3

    from .app import Ctx

UPLOAD_REQUEST = FILE + "MultipartUploadRequest"
COPY_REQUEST = FILE + "MultipartUploadCopyRequest"
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PART_SIZE = 5 * 1024 * 1024 * 1024
MAX_FILE_SIZE = 5 * 1024 * 1024 * 1024 * 1024
MAX_PARTS = 10_000
PART_URL_SECONDS = 15 * 60
MD5_MISMATCH = (
    "The provided MD5 does not match the MD5 of the uploaded part.  Please re-upload the part."
)
STARTER_ONLY = (
    "Only the user that started a multipart upload can get part upload pre-signed URLs for that "
    "file upload."
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS multipart_uploads (
    id INTEGER PRIMARY KEY,
    started_by INTEGER NOT NULL,
    started_on TEXT NOT NULL,
    updated_on TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    is_copy INTEGER NOT NULL,
    state TEXT NOT NULL,             -- UPLOADING | COMPLETED
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    s3_upload_id TEXT NOT NULL,
    part_size INTEGER NOT NULL,
    file_size INTEGER NOT NULL,
    number_of_parts INTEGER NOT NULL,
    parts TEXT NOT NULL DEFAULT '{}', -- {"<partNumber>": "<md5 / ETag>"}
    storage_location_id INTEGER NOT NULL,
    file_name TEXT NOT NULL,
    content_type TEXT,
    content_md5 TEXT NOT NULL,
    generate_preview INTEGER NOT NULL DEFAULT 1,
    source_bucket TEXT,
    source_key TEXT,
    source_etag TEXT,
    result_file_handle_id INTEGER
);
CREATE INDEX IF NOT EXISTS multipart_uploads_hash ON multipart_uploads(started_by, request_hash);
"""


# ---------------------------------------------------------------------------------------------
# Validation (PartUtils, MultipartUploadRequestHandler, MultipartUploadCopyRequestHandler)


def number_of_parts(file_size: int, part_size: int) -> int:
    if part_size > file_size:
        return 1
    return -(-file_size // part_size)


def _validate_sizes(part_size: Any, file_size: int) -> tuple[int, int]:
    if part_size is None:
        bad_request("MultipartRequest.partSizeBytes is required.")
    size = parse_int(part_size, "partSizeBytes")
    if size < MIN_PART_SIZE:
        bad_request(f"The part size must be at least {MIN_PART_SIZE} bytes.")
    if size > MAX_PART_SIZE:
        bad_request(f"The part size must not exceed {MAX_PART_SIZE} bytes.")
    if file_size < 1:
        bad_request("File size must be at least one byte")
    if file_size > MAX_FILE_SIZE:
        bad_request("The maximum file size is 5 TB")
    parts = number_of_parts(file_size, size)
    if parts > MAX_PARTS:
        bad_request(
            f"File Upload would require {parts} parts, which exceeds the maximum number of "
            f"allowed parts of: {MAX_PARTS}. Please choose a larger part size."
        )
    return size, parts


def _request_hash(body: dict[str, Any], *, exclude: tuple[str, ...] = ()) -> str:
    document = {k: v for k, v in body.items() if v is not None and k not in exclude}
    return hashlib.md5(json.dumps(document, sort_keys=True).encode("utf-8")).hexdigest()


def _destination(ctx: Ctx, location_id: int) -> tuple[dict[str, Any], str]:
    """The storage location and its bucket; uploads only go to S3 buckets Synapse can write."""
    if location_id == DEFAULT_STORAGE_LOCATION_ID:
        location = storage.require_location(ctx.store, location_id)
        return location, ctx.emulator.synapse_bucket
    location = storage.require_location(ctx.store, location_id)
    if location["concreteType"] not in (storage.S3_SETTING, storage.EXTERNAL_S3):
        bad_request(
            "Multipart upload is not supported for the storage location type "
            f"{location['concreteType']} (id={location_id})"
        )
    bucket = storage.location_bucket(ctx.emulator, location)
    assert bucket is not None
    return location, bucket


def _new_key(ctx: Ctx, location: dict[str, Any], file_name: str) -> str:
    """MultipartUtils.createNewKey: ``[baseKey/]<userId>/<uuid>/<fileName>``."""
    key = f"{ctx.caller.id}/{uuid.uuid4()}/{file_name}"
    base_key = location.get("baseKey")
    return f"{base_key}/{key}" if base_key else key


def _content_disposition(file_name: str) -> str:
    return f"attachment; filename={quote(file_name)}"


def status_json(row: sqlite3.Row) -> dict[str, Any]:
    parts = json.loads(row["parts"])
    states = "".join(
        "1" if str(n) in parts else "0" for n in range(1, int(row["number_of_parts"]) + 1)
    )
    result = row["result_file_handle_id"]
    return {
        "uploadId": str(row["id"]),
        "startedBy": str(row["started_by"]),
        "startedOn": row["started_on"],
        "updatedOn": row["updated_on"],
        "partsState": states,
        "state": row["state"],
        "resultFileHandleId": str(result) if result is not None else None,
    }


def _existing(ctx: Ctx, request_hash: str) -> sqlite3.Row | None:
    """The caller's latest upload of the same request, unless its result object is gone."""
    row = ctx.store.one(
        "SELECT * FROM multipart_uploads WHERE started_by = ? AND request_hash = ? "
        "ORDER BY id DESC LIMIT 1",
        (ctx.caller.id, request_hash),
    )
    if row is None:
        return None
    if row["state"] == "COMPLETED":
        try:
            storage.s3_client(ctx.emulator).head_object(Bucket=row["bucket"], Key=row["key"])
        except (ClientError, BotoCoreError):
            return None
    return row


def _start_s3_upload(
    ctx: Ctx, bucket: str, key: str, file_name: str, content_type: str | None, md5: str
) -> str:
    try:
        created = storage.s3_client(ctx.emulator).create_multipart_upload(
            Bucket=bucket,
            Key=key,
            ContentType=content_type or "application/octet-stream",
            ContentDisposition=_content_disposition(file_name),
            Metadata={"content-md5": md5},
            ACL="bucket-owner-full-control",
        )
    except ClientError as exc:
        if storage.s3_error_code(exc) == "NoSuchBucket":
            bad_request(f"The bucket {bucket} of the storage location does not exist.")
        raise storage.storage_failure(exc) from exc
    except BotoCoreError as exc:
        raise storage.storage_failure(exc) from exc
    upload_id: str = created["UploadId"]
    return upload_id


def _insert(ctx: Ctx, values: dict[str, Any]) -> sqlite3.Row:
    upload_id = ctx.store.next_id("multipart")
    stamp = now()
    values = {
        "id": upload_id,
        "started_by": ctx.caller.id,
        "started_on": stamp,
        "updated_on": stamp,
        "state": "UPLOADING",
        **values,
    }
    columns = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    ctx.store.execute(
        f"INSERT INTO multipart_uploads({columns}) VALUES ({marks})", tuple(values.values())
    )
    row = ctx.store.one("SELECT * FROM multipart_uploads WHERE id = ?", (upload_id,))
    assert row is not None
    return row


def _begin(
    ctx: Ctx,
    body: dict[str, Any],
    *,
    request_hash: str,
    location_id: int,
    file_name: str,
    content_type: str | None,
    md5: str,
    sizes: tuple[int, int, int],
    copy_source: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Start the S3 multipart upload at a new key of the destination and record it; a copy
    also records its source object (``sizes``: file size, part size, number of parts)."""
    location, bucket = _destination(ctx, location_id)
    key = _new_key(ctx, location, file_name)
    s3_upload_id = _start_s3_upload(ctx, bucket, key, file_name, content_type, md5)
    file_size, part_size, parts = sizes
    row = _insert(
        ctx,
        {
            "request_hash": request_hash,
            "is_copy": 0 if copy_source is None else 1,
            "bucket": bucket,
            "key": key,
            "s3_upload_id": s3_upload_id,
            "part_size": part_size,
            "file_size": file_size,
            "number_of_parts": parts,
            "storage_location_id": location_id,
            "file_name": file_name,
            "content_type": content_type,
            "content_md5": md5,
            "generate_preview": 0 if body.get("generatePreview") is False else 1,
            **(copy_source or {}),
        },
    )
    return status_json(row)


def _start_upload(ctx: Ctx, body: dict[str, Any], force_restart: bool) -> dict[str, Any]:
    file_name_raw = body.get("fileName")
    if file_name_raw is None:
        bad_request("MultipartUploadRequest.fileName is required.")
    file_name = validate_entity_name(file_name_raw)
    if body.get("fileSizeBytes") is None:
        bad_request("MultipartUploadRequest.fileSizeBytes is required.")
    md5 = body.get("contentMD5Hex")
    if md5 is None:
        bad_request("MultipartUploadRequest.contentMD5Hex is required.")
    file_size = parse_int(body["fileSizeBytes"], "fileSizeBytes")
    part_size, parts = _validate_sizes(body.get("partSizeBytes"), file_size)
    raw_location = body.get("storageLocationId")
    location_id = (
        DEFAULT_STORAGE_LOCATION_ID
        if raw_location is None
        else parse_int(raw_location, "storageLocationId")
    )
    request_hash = _request_hash(body)
    if not force_restart:
        existing = _existing(ctx, request_hash)
        if existing is not None:
            return status_json(existing)
    return _begin(
        ctx,
        body,
        request_hash=request_hash,
        location_id=location_id,
        file_name=file_name,
        content_type=body.get("contentType"),
        md5=str(md5),
        sizes=(file_size, part_size, parts),
    )


def _start_copy(ctx: Ctx, body: dict[str, Any], force_restart: bool) -> dict[str, Any]:
    store = ctx.store
    if body.get("storageLocationId") is None:
        bad_request("MultipartUploadCopyRequest.storageLocationId is required.")
    association = body.get("sourceFileHandleAssociation")
    if association is None:
        bad_request("MultipartUploadCopyRequest.sourceFileHandleAssociation is required.")
    handle_id, object_type, object_id = files.check_association(ctx, association)
    file_name_raw = body.get("fileName")
    if file_name_raw is not None:
        validate_entity_name(file_name_raw)
    location_id = parse_int(body["storageLocationId"], "storageLocationId")
    if files.association_denial(ctx, handle_id, object_type, object_id) is not None:
        forbidden("The user is not authorized to access the source file.")
    location = storage.require_location(store, location_id)
    if location["createdBy"] != ctx.caller.id and not ctx.caller.admin:
        forbidden("The user does not own the destination storage location.")
    source = files.require_handle(store, handle_id)
    if source["content_size"] is None:
        bad_request("The source file handle does not define its size.")
    if source["content_md5"] is None:
        bad_request("The source file handle does not define its content MD5.")
    if source["storage_location_id"] is not None and int(source["storage_location_id"]) == (
        location_id
    ):
        bad_request("The source file handle is already in the given destination storage location.")
    if source["concrete_type"] not in files.CLOUD_HANDLES:
        bad_request("The source file must be stored in a cloud bucket accessible by Synapse.")
    if source["concrete_type"] != S3_FILE_HANDLE or location["concreteType"] not in (
        storage.S3_SETTING,
        storage.EXTERNAL_S3,
    ):
        # Only S3 -> S3 copies within one region exist; the embedded S3 is one region.
        bad_request(
            "Copying a file that is stored in a different region than the destination is not "
            "supported."
        )
    file_size = int(source["content_size"])
    part_size, parts = _validate_sizes(body.get("partSizeBytes"), file_size)
    request_hash = _request_hash(body, exclude=("fileName",))
    if not force_restart:
        existing = _existing(ctx, request_hash)
        if existing is not None:
            return status_json(existing)
    try:
        head = storage.s3_client(ctx.emulator).head_object(
            Bucket=source["bucket"], Key=source["key"]
        )
    except (ClientError, BotoCoreError) as exc:
        raise storage.storage_failure(exc) from exc
    file_name = str(file_name_raw) if file_name_raw is not None else str(source["file_name"])
    return _begin(
        ctx,
        body,
        request_hash=request_hash,
        location_id=location_id,
        file_name=file_name,
        content_type=source["content_type"],
        md5=str(source["content_md5"]),
        sizes=(file_size, part_size, parts),
        copy_source={
            "source_bucket": source["bucket"],
            "source_key": source["key"],
            "source_etag": str(head["ETag"]).strip('"'),
        },
    )


def start(ctx: Ctx) -> Reply:
    if ctx.caller.anonymous:
        forbidden("Anonymous cannot upload files.")
    body = ctx.json_body()
    force_restart = str(ctx.args.get("forceRestart", "false")).lower() == "true"
    concrete = body.get("concreteType") or UPLOAD_REQUEST
    if concrete == UPLOAD_REQUEST:
        return Reply(201, _start_upload(ctx, body, force_restart))
    if concrete == COPY_REQUEST:
        return Reply(201, _start_copy(ctx, body, force_restart))
    bad_request(f"Unknown MultipartRequest type: {concrete}")


# ---------------------------------------------------------------------------------------------
# Parts


def _upload_row(ctx: Ctx, upload_id: str) -> sqlite3.Row:
    row = ctx.store.one(
        "SELECT * FROM multipart_uploads WHERE id = ?", (parse_int(upload_id, "uploadId"),)
    )
    if row is None:
        not_found(f"A multi-part upload with the id: {upload_id} does not exist")
    if int(row["started_by"]) != ctx.caller.id:
        forbidden(STARTER_ONLY)
    return row


def _check_part_number(row: sqlite3.Row, part_number: int) -> None:
    total = int(row["number_of_parts"])
    if part_number < 1:
        bad_request("Part numbers cannot be less than one.")
    if part_number > total:
        bad_request(
            "Part number cannot be larger than number of parts. Number of parts: "
            f"{total}, provided part number: {part_number}"
        )


def _part_range(row: sqlite3.Row, part_number: int) -> tuple[int, int]:
    size, part_size = int(row["file_size"]), int(row["part_size"])
    first = (part_number - 1) * part_size
    return first, min(first + part_size, size) - 1


def presigned_urls(ctx: Ctx, upload_id: str) -> Reply:
    row = _upload_row(ctx, upload_id)
    body = ctx.json_body()
    numbers = body.get("partNumbers")
    if not numbers:
        bad_request("BatchPresignedUploadUrlRequest.partNumbers must have at least one element.")
    content_type = body.get("contentType")
    urls: list[dict[str, Any]] = []
    for raw in numbers:
        number = parse_int(raw, "partNumber")
        _check_part_number(row, number)
        headers: dict[str, str] = {}
        if row["is_copy"]:
            # An UploadPartCopy of the part's byte range into the upload itself.
            first, last = _part_range(row, number)
            headers = {
                "x-amz-copy-source": (
                    f"{quote(row['source_bucket'], safe='')}/{quote(row['source_key'], safe='')}"
                ),
                "x-amz-copy-source-range": f"bytes={first}-{last}",
                "x-amz-copy-source-if-match": str(row["source_etag"]),
            }
            key = row["key"]
            query: dict[str, str] | None = {
                "partNumber": str(number),
                "uploadId": row["s3_upload_id"],
            }
        else:
            # A part is PUT to a temporary key; adding the part copies it into the upload.
            key, query = f"{row['key']}/{number}", None
        if content_type:
            headers["Content-Type"] = str(content_type)
        url = files.presign(
            ctx.emulator,
            "PUT",
            row["bucket"],
            key,
            query=query,
            headers=headers,
            expires=PART_URL_SECONDS,
        )
        item: dict[str, Any] = {"partNumber": number, "uploadPresignedUrl": url}
        if headers:
            item["signedHeaders"] = headers
        urls.append(item)
    return Reply(201, {"partPresignedUrls": urls})


def _add_response(row: sqlite3.Row, number: int, error: str | None) -> Reply:
    body: dict[str, Any] = {
        "uploadId": str(row["id"]),
        "partNumber": number,
        "addPartState": "ADD_FAILED" if error else "ADD_SUCCESS",
        "errorMessage": error,
    }
    return Reply(201, body)


def add_part(ctx: Ctx, upload_id: str, part_number: str) -> Reply:
    store = ctx.store
    row = _upload_row(ctx, upload_id)
    number = parse_int(part_number, "partNumber")
    md5 = ctx.args.get("partMD5Hex")
    if md5 is None:
        bad_request("Required request parameter 'partMD5Hex' for method parameter is not present")
    md5 = str(md5).strip().strip('"').lower()
    if row["state"] == "COMPLETED":
        bad_request("Cannot add parts to completed file upload.")
    _check_part_number(row, number)
    if not row["is_copy"]:
        # The server copies the part from its temporary key, only if the MD5 matches (If-Match).
        s3 = storage.s3_client(ctx.emulator)
        temp_key = f"{row['key']}/{number}"
        try:
            etag = str(s3.head_object(Bucket=row["bucket"], Key=temp_key)["ETag"]).strip('"')
            if etag != md5:
                return _add_response(row, number, MD5_MISMATCH)
            s3.upload_part_copy(
                Bucket=row["bucket"],
                Key=row["key"],
                UploadId=row["s3_upload_id"],
                PartNumber=number,
                CopySource={"Bucket": row["bucket"], "Key": temp_key},
                CopySourceIfMatch=f'"{md5}"',
            )
            s3.delete_object(Bucket=row["bucket"], Key=temp_key)
        except (ClientError, BotoCoreError) as exc:
            return _add_response(row, number, str(exc))
    parts = json.loads(row["parts"])
    parts[str(number)] = md5
    store.execute(
        "UPDATE multipart_uploads SET parts = ?, updated_on = ? WHERE id = ?",
        (json.dumps(parts), now(), row["id"]),
    )
    return _add_response(row, number, None)


def complete(ctx: Ctx, upload_id: str) -> Reply:
    store = ctx.store
    row = _upload_row(ctx, upload_id)
    if row["state"] == "COMPLETED":
        return Reply(201, status_json(row))
    parts = json.loads(row["parts"])
    missing = int(row["number_of_parts"]) - len(parts)
    if missing > 0:
        bad_request(
            f"Missing {missing} part(s).  All parts must be successfully added before a file "
            "upload can be completed."
        )
    s3 = storage.s3_client(ctx.emulator)
    try:
        s3.complete_multipart_upload(
            Bucket=row["bucket"],
            Key=row["key"],
            UploadId=row["s3_upload_id"],
            MultipartUpload={
                "Parts": [
                    {"PartNumber": int(n), "ETag": f'"{parts[n]}"'} for n in sorted(parts, key=int)
                ]
            },
        )
        size = int(s3.head_object(Bucket=row["bucket"], Key=row["key"])["ContentLength"])
    except ClientError as exc:
        if storage.s3_error_code(exc) in ("InvalidPart", "InvalidPartOrder", "EntityTooSmall"):
            bad_request(f"Unable to complete the multipart upload: {exc}")
        raise storage.storage_failure(exc) from exc
    except BotoCoreError as exc:
        raise storage.storage_failure(exc) from exc
    handle_id = files.insert_handle(
        store,
        concrete=S3_FILE_HANDLE,
        created_by=int(row["started_by"]),
        file_name=row["file_name"],
        content_type=row["content_type"],
        content_md5=row["content_md5"],
        content_size=size,
        storage_location_id=int(row["storage_location_id"]),
        bucket=row["bucket"],
        key=row["key"],
        preview_self=not row["generate_preview"],
    )
    if row["generate_preview"]:
        previews.generate(ctx, handle_id)
    store.execute(
        "UPDATE multipart_uploads SET state = 'COMPLETED', result_file_handle_id = ?, "
        "updated_on = ? WHERE id = ?",
        (handle_id, now(), row["id"]),
    )
    done = store.one("SELECT * FROM multipart_uploads WHERE id = ?", (row["id"],))
    assert done is not None
    return Reply(201, status_json(done))


ROUTES = s3gate.guarded(
    [
        Route("POST", "/file/v1/file/multipart", start),
        Route("POST", "/file/v1/file/multipart/<upload_id>/presigned/url/batch", presigned_urls),
        Route("PUT", "/file/v1/file/multipart/<upload_id>/add/<part_number>", add_part),
        Route("PUT", "/file/v1/file/multipart/<upload_id>/complete", complete),
    ]
)
