"""File handles: external handles, reads, batch downloads with presigned URLs, redirects, and the
per-version file handle swap (synapse-api.md §9.1-§9.4, §9.6).

Presigned URLs are signed with the emulator's S3 credentials against the embedded S3 server, so a
client can really GET (and, for multipart parts, PUT) them; the S3 gateway in ``sts.py`` checks
their signatures, headers and expiry as S3 would.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import BotoCoreError, ClientError

from . import filehandles, nodes, s3gate, storage, wikis
from .filehandles import FILE, S3_FILE_HANDLE
from .routing import Reply, Route
from .util import (
    SynapseError,
    bad_request,
    forbidden,
    new_etag,
    not_found,
    now,
    parse_int,
    parse_syn_id,
    precondition_failed,
    syn,
)

if TYPE_CHECKING:
    import sqlite3

    from .app import Ctx
    from .server import Emulator
    from .store import Store

SCHEMA = ""

EXTERNAL_FILE_HANDLE = FILE + "ExternalFileHandle"
EXTERNAL_OBJECT_STORE_FILE_HANDLE = FILE + "ExternalObjectStoreFileHandle"
PROXY_FILE_HANDLE = FILE + "ProxyFileHandle"
GOOGLE_CLOUD_FILE_HANDLE = FILE + "GoogleCloudFileHandle"
CLOUD_HANDLES = (S3_FILE_HANDLE, GOOGLE_CLOUD_FILE_HANDLE)
NOT_SET = "NOT_SET"
MD5_RE = re.compile(r"^[0-9a-fA-F]{32}$")
DOWNLOAD_URL_SECONDS = 900
MAX_BATCH = 100
ASSOCIATE_TYPES = (
    "FileEntity",
    "TableEntity",
    "WikiAttachment",
    "WikiMarkdown",
    "UserProfileAttachment",
    "MessageAttachment",
    "TeamAttachment",
    "SubmissionAttachment",
    "VerificationSubmission",
    "AccessRequirementAttachment",
    "DataAccessRequestAttachment",
    "DataAccessSubmissionAttachment",
    "FormData",
)


# ---------------------------------------------------------------------------------------------
# Presigned URLs against the embedded S3 server


def presign(
    emulator: Emulator,
    method: str,
    bucket: str,
    key: str,
    *,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    expires: int = DOWNLOAD_URL_SECONDS,
) -> str:
    """A SigV4 query-signed URL; every header in ``headers`` is signed and must be sent."""
    from .server import S3_ACCESS_KEY, S3_REGION, S3_SECRET_KEY

    url = f"{emulator.s3_endpoint}/{quote(bucket, safe='')}/{quote(key, safe='/~')}"
    if query:
        url += "?" + "&".join(
            f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in query.items()
        )
    request = AWSRequest(method=method, url=url, headers=dict(headers or {}))
    signer = S3SigV4QueryAuth(
        Credentials(S3_ACCESS_KEY, S3_SECRET_KEY), "s3", S3_REGION, expires=expires
    )
    signer.add_auth(request)
    return str(request.url)


def download_url(ctx: Ctx, handle: sqlite3.Row) -> str:
    """getURLForFileHandle for each handle type."""
    concrete = handle["concrete_type"]
    extra = json.loads(handle["extra"]) if handle["extra"] else {}
    if concrete == S3_FILE_HANDLE:
        name = str(handle["file_name"] or "file")
        query = {"response-content-disposition": f"attachment; filename={name}"}
        if handle["content_type"] and handle["content_type"] != NOT_SET:
            query["response-content-type"] = str(handle["content_type"])
        return presign(ctx.emulator, "GET", handle["bucket"], handle["key"], query=query)
    if concrete == EXTERNAL_FILE_HANDLE:
        return str(extra.get("externalURL"))
    if concrete == GOOGLE_CLOUD_FILE_HANDLE:
        # There is no Google Cloud Storage server behind the emulator; the URL is unsigned.
        return f"https://storage.googleapis.com/{handle['bucket']}/{quote(handle['key'])}"
    if concrete == EXTERNAL_OBJECT_STORE_FILE_HANDLE:
        return f"{extra.get('endpointUrl')}/{extra.get('bucket')}/{extra.get('fileKey')}"
    if concrete == PROXY_FILE_HANDLE:
        location = storage.get_location(ctx.store, handle["storage_location_id"]) or {}
        return f"{location.get('proxyUrl')}/sftp/{extra.get('filePath')}"
    raise SynapseError(500, f"File handle {handle['id']} has no downloadable location")


# ---------------------------------------------------------------------------------------------
# Rows


def insert_handle(
    store: Store,
    *,
    concrete: str,
    created_by: int,
    file_name: str | None,
    content_type: str | None,
    content_md5: str | None,
    content_size: int | None,
    storage_location_id: int | None,
    bucket: str | None = None,
    key: str | None = None,
    preview_self: bool = False,
    extra: dict[str, Any] | None = None,
) -> int:
    handle_id = store.next_id("file_handle")
    store.execute(
        "INSERT INTO file_handles(id, concrete_type, created_by, created_on, etag, file_name, "
        "content_type, content_md5, content_size, storage_location_id, bucket, key, preview_id, "
        "extra) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            handle_id,
            concrete,
            created_by,
            now(),
            new_etag(),
            file_name,
            content_type,
            content_md5,
            content_size,
            storage_location_id,
            bucket,
            key,
            handle_id if preview_self else None,
            json.dumps(extra) if extra else None,
        ),
    )
    return handle_id


def handle_json(store: Store, handle_id: int) -> dict[str, Any]:
    row = filehandles.get_handle(store, handle_id)
    assert row is not None
    return filehandles.file_handle_json(row)


def require_handle(store: Store, handle_id: int) -> sqlite3.Row:
    row = filehandles.get_handle(store, handle_id)
    if row is None:
        not_found(f"FileHandle: '{handle_id}' cannot be found")
    return row


# ---------------------------------------------------------------------------------------------
# Associations: may the caller download this handle through this object?


def _wiki_handles(store: Store, wiki_id: int, kind: str) -> tuple[int | None, set[int]]:
    owner_of = getattr(wikis, "owner_of", None)
    if owner_of is not None:
        owner = owner_of(store, wiki_id)
        if kind == "WikiMarkdown":
            return owner, set(wikis.markdown_handle_ids(store, wiki_id))
        return owner, set(wikis.attachment_handle_ids(store, wiki_id))
    row = store.one(
        "SELECT owner_id, markdown_handle_id, attachments FROM wikis WHERE id = ?", (wiki_id,)
    )
    if row is None:
        return None, set()
    if kind == "WikiMarkdown":
        marker = row["markdown_handle_id"]
        return int(row["owner_id"]), {int(marker)} if marker is not None else set()
    return int(row["owner_id"]), {int(i) for i in json.loads(row["attachments"] or "[]")}


def association_denial(ctx: Ctx, handle_id: int, object_type: str, object_id: str) -> str | None:
    """None when allowed, else the reason (canDownLoadFile per association type)."""
    store, caller = ctx.store, ctx.caller
    not_associated = (
        f"The file handle {handle_id} is not associated with {object_type}: {object_id}"
    )
    try:
        if object_type == "FileEntity":
            node_id = parse_syn_id(object_id)
            nodes.check(store, caller, node_id, "DOWNLOAD")
            used = store.one(
                "SELECT 1 FROM revisions WHERE node_id = ? AND file_handle_id = ?",
                (node_id, handle_id),
            )
            return None if used is not None else not_associated
        if object_type in ("WikiMarkdown", "WikiAttachment"):
            wiki_id = parse_int(object_id, "associateObjectId")
            owner, handles = _wiki_handles(store, wiki_id, object_type)
            if owner is None:
                return f"Wiki page: {object_id} does not exist"
            nodes.check(store, caller, owner, "READ")
            return None if handle_id in handles else not_associated
    except SynapseError as err:
        return err.reason
    return f"The local Synapse emulator does not support {object_type} associations"


def check_association(ctx: Ctx, association: Any) -> tuple[int, str, str]:
    """Validate a FileHandleAssociation body; returns (handle id, type, object id)."""
    if not isinstance(association, dict):
        bad_request("FileHandleAssociation is required.")
    handle_raw = association.get("fileHandleId")
    object_id = association.get("associateObjectId")
    object_type = association.get("associateObjectType")
    if handle_raw is None:
        bad_request("FileHandleAssociation.fileHandleId is required.")
    if object_id is None:
        bad_request("FileHandleAssociation.associateObjectId is required.")
    if object_type is None:
        bad_request("FileHandleAssociation.associateObjectType is required.")
    if object_type not in ASSOCIATE_TYPES:
        bad_request(
            "No enum constant org.sagebionetworks.repo.model.file.FileHandleAssociateType."
            f"{object_type}"
        )
    return parse_int(handle_raw, "fileHandleId"), str(object_type), str(object_id)


# ---------------------------------------------------------------------------------------------
# Endpoints


def _require_user(ctx: Ctx) -> None:
    if ctx.caller.anonymous:
        forbidden("Anonymous cannot upload files.")


def _md5(value: Any) -> str:
    text = str(value)
    if not MD5_RE.match(text):
        bad_request("The content MD5 digest must be a valid hexadecimal string of length 32.")
    return text


def _required_text(body: dict[str, Any], name: str, label: str) -> str:
    value = body.get(name)
    if value is None or str(value) == "":
        bad_request(f"{label} is required and must not be the empty string.")
    return str(value)


def _optional_size(value: Any) -> int | None:
    return None if value is None else parse_int(value, "contentSize")


def _cloud_handle_request(
    ctx: Ctx, expected: str, setting_name: str
) -> tuple[dict[str, Any], str, str, str, int, dict[str, Any]]:
    """The checks external S3 and Google Cloud handles share, in Synapse's order: required
    fields, MD5 form, a storage location of the expected type, the matching bucket.
    Returns (body, bucket, key, md5, location id, location)."""
    _require_user(ctx)
    body = ctx.json_body()
    if body.get("storageLocationId") is None:
        bad_request("FileHandle.storageLocationId is required.")
    bucket = _required_text(body, "bucketName", "FileHandle.bucket")
    key = _required_text(body, "key", "FileHandle.key")
    md5 = _md5(_required_text(body, "contentMd5", "FileHandle.contentMd5"))
    location_id = parse_int(body["storageLocationId"], "storageLocationId")
    location = storage.require_location(ctx.store, location_id)
    if location["concreteType"] != expected:
        bad_request(
            f"StorageLocationSetting.id={location_id} was not of the expected type: {expected}"
        )
    if bucket != location.get("bucket"):
        bad_request(
            f"The bucket for {setting_name}.id={location_id} does not match the provided "
            f"bucket: {bucket}"
        )
    return body, bucket, key, md5, location_id, location


def _require_location_creator(
    ctx: Ctx, location: dict[str, Any], location_id: int, setting_name: str, handle_name: str
) -> None:
    if location["createdBy"] != ctx.caller.id:
        forbidden(
            f"Only the creator of {setting_name}.id={location_id} can create an external "
            f"{handle_name} with storageLocationId = {location_id}"
        )


def _insert_cloud_handle(
    ctx: Ctx,
    concrete: str,
    body: dict[str, Any],
    md5: str,
    size: int,
    location_id: int,
    where: tuple[str, str],
) -> dict[str, Any]:
    """An external S3 or Google Cloud handle of the caller's at ``where`` (bucket, key)."""
    bucket, key = where
    handle_id = insert_handle(
        ctx.store,
        concrete=concrete,
        created_by=ctx.caller.id,
        file_name=str(body.get("fileName") or NOT_SET),
        content_type=str(body.get("contentType") or NOT_SET),
        content_md5=md5,
        content_size=size,
        storage_location_id=location_id,
        bucket=bucket,
        key=key,
    )
    return handle_json(ctx.store, handle_id)


def create_external_s3_handle(ctx: Ctx) -> dict[str, Any]:
    """FileHandleManagerImpl.createExternalS3FileHandle, checks in Synapse's order."""
    setting_name = "ExternalS3StorageLocationSetting"
    body, bucket, key, md5, location_id, location = _cloud_handle_request(
        ctx, storage.EXTERNAL_S3, setting_name
    )
    base_key = location.get("baseKey")
    if location.get("stsEnabled") is True and base_key is not None and not key.startswith(base_key):
        bad_request(
            f"The baseKey for {setting_name}.id={location_id} does not match the provided "
            f"key: {key}"
        )
    _require_location_creator(ctx, location, location_id, setting_name, "S3FileHandle")
    try:
        head = storage.s3_client(ctx.emulator).head_object(Bucket=bucket, Key=key)
    except (ClientError, BotoCoreError):
        bad_request(f"Unable to access the file at bucket: {bucket} key: {key}.")
    size = _optional_size(body.get("contentSize"))
    if size is None:
        size = int(head["ContentLength"])
    return _insert_cloud_handle(ctx, S3_FILE_HANDLE, body, md5, size, location_id, (bucket, key))


def create_external_gcs_handle(ctx: Ctx) -> dict[str, Any]:
    """As Synapse, except that no Google Cloud server can confirm the object (stored as sent)."""
    setting_name = "ExternalGoogleCloudStorageLocationSetting"
    body, bucket, key, md5, location_id, location = _cloud_handle_request(
        ctx, storage.EXTERNAL_GCS, setting_name
    )
    _require_location_creator(ctx, location, location_id, setting_name, "GoogleCloudFileHandle")
    size = _optional_size(body.get("contentSize"))
    if size is None:
        bad_request(
            f"Unable to get the size of the file at bucket: {bucket} key: {key}. Please specify "
            "a content size."
        )
    return _insert_cloud_handle(
        ctx, GOOGLE_CLOUD_FILE_HANDLE, body, md5, size, location_id, (bucket, key)
    )


def create_external_handle(ctx: Ctx) -> dict[str, Any]:
    """ExternalFileHandle (URL), ExternalObjectStoreFileHandle and ProxyFileHandle."""
    _require_user(ctx)
    store = ctx.store
    body = ctx.json_body()
    concrete = str(body.get("concreteType") or EXTERNAL_FILE_HANDLE)
    md5 = body.get("contentMd5")
    size = _optional_size(body.get("contentSize"))
    if concrete == EXTERNAL_FILE_HANDLE:
        url = body.get("externalURL")
        if url is None:
            bad_request("ExternalURL is required.")
        if not storage.valid_url(str(url)):
            bad_request(f"The External URL is not a valid url: {url}")
        # No MD5 form check here: Synapse stores a URL handle's contentMd5 as sent (the 32-hex
        # rule belongs to handles whose bytes Synapse or an S3 bucket holds).
        location_id = body.get("storageLocationId")
        handle_id = insert_handle(
            store,
            concrete=concrete,
            created_by=ctx.caller.id,
            file_name=str(body.get("fileName") or NOT_SET),
            content_type=body.get("contentType"),
            content_md5=md5,
            content_size=size,
            storage_location_id=(
                parse_int(location_id, "storageLocationId") if location_id is not None else None
            ),
            extra={"externalURL": str(url)},
        )
        return handle_json(store, handle_id)
    if concrete == EXTERNAL_OBJECT_STORE_FILE_HANDLE:
        if body.get("storageLocationId") is None:
            bad_request("ExternalObjectStoreFileHandle.storageLocationId is required.")
        file_key = _required_text(body, "fileKey", "ExternalObjectStoreFileHandle.fileKey")
        md5 = _md5(_required_text(body, "contentMd5", "ExternalObjectStoreFileHandle.contentMd5"))
        if size is None:
            bad_request("ExternalObjectStoreFileHandle.contentSize is required.")
        location_id = parse_int(body["storageLocationId"], "storageLocationId")
        location = storage.require_location(store, location_id)
        if location["concreteType"] != storage.EXTERNAL_OBJECT:
            bad_request(
                f"StorageLocationSetting.id={location_id} was not of the expected type: "
                f"{storage.EXTERNAL_OBJECT}"
            )
        handle_id = insert_handle(
            store,
            concrete=concrete,
            created_by=ctx.caller.id,
            file_name=str(body.get("fileName") or NOT_SET),
            content_type=str(body.get("contentType") or NOT_SET),
            content_md5=md5,
            content_size=size,
            storage_location_id=location_id,
            extra={
                "fileKey": file_key,
                "endpointUrl": location.get("endpointUrl"),
                "bucket": location.get("bucket"),
            },
        )
        return handle_json(store, handle_id)
    if concrete == PROXY_FILE_HANDLE:
        md5 = _required_text(body, "contentMd5", "ProxyFileHandle.contentMd5")
        if size is None:
            bad_request("ProxyFileHandle.contentSize is required.")
        content_type = _required_text(body, "contentType", "ProxyFileHandle.contentType")
        file_name = _required_text(body, "fileName", "ProxyFileHandle.fileName")
        file_path = _required_text(body, "filePath", "ProxyFileHandle.filePath")
        if body.get("storageLocationId") is None:
            bad_request("ProxyFileHandle.storageLocationId is required.")
        location_id = parse_int(body["storageLocationId"], "storageLocationId")
        location = storage.require_location(store, location_id)
        if location["concreteType"] != storage.PROXY:
            bad_request(
                "ProxyFileHandle.storageLocationId must refer to a valid "
                "ProxyStorageLocationSettings."
            )
        _md5(md5)
        if location["createdBy"] != ctx.caller.id:
            benefactor = location.get("benefactorId")
            if benefactor is None or not nodes.can(
                store, ctx.caller, parse_syn_id(benefactor), "CREATE"
            ):
                forbidden(
                    "Only the creator of a ProxyStorageLocationSettings or a user with 'create' "
                    "permission on the benefactor can create a ProxyFileHandle"
                )
        handle_id = insert_handle(
            store,
            concrete=concrete,
            created_by=ctx.caller.id,
            file_name=file_name,
            content_type=content_type,
            content_md5=md5,
            content_size=size,
            storage_location_id=location_id,
            extra={"filePath": file_path},
        )
        return handle_json(store, handle_id)
    bad_request(f"Unsupported ExternalFileHandleInterface type: {concrete}")


def get_file_handle(ctx: Ctx, handle_id: str) -> dict[str, Any]:
    number = parse_int(handle_id, "handleId")
    nodes.check_file_handle_creator(ctx.store, ctx.caller, number)
    return handle_json(ctx.store, number)


def _flag(body: dict[str, Any], name: str) -> bool:
    return body.get(name) is True


def batch(ctx: Ctx) -> Reply:
    """POST /fileHandle/batch (getFileHandleAndUrlBatch)."""
    store = ctx.store
    body = ctx.json_body()
    requested = body.get("requestedFiles")
    if requested is None:
        bad_request("requestedFiles is required.")
    if not isinstance(requested, list):
        bad_request("requestedFiles must be a list")
    with_handles = _flag(body, "includeFileHandles")
    with_urls = _flag(body, "includePreSignedURLs")
    with_previews = _flag(body, "includePreviewPreSignedURLs")
    if not (with_handles or with_urls or with_previews):
        bad_request("Must include either FileHandles or pre-signed URLs or preview pre-signed URLs")
    if len(requested) > MAX_BATCH:
        bad_request(f"Request exceeds the maximum number of objects per request: {MAX_BATCH}")
    results: list[dict[str, Any]] = []
    for association in requested:
        handle_id, object_type, object_id = check_association(ctx, association)
        result: dict[str, Any] = {"fileHandleId": str(handle_id)}
        results.append(result)
        if association_denial(ctx, handle_id, object_type, object_id) is not None:
            result["failureCode"] = "UNAUTHORIZED"
            continue
        handle = filehandles.get_handle(store, handle_id)
        if handle is None:
            result["failureCode"] = "NOT_FOUND"
            continue
        if with_handles:
            result["fileHandle"] = filehandles.file_handle_json(handle)
        if with_urls:
            result["preSignedURL"] = download_url(ctx, handle)
        if with_previews and handle["preview_id"] is not None:
            preview = filehandles.get_handle(store, int(handle["preview_id"]))
            if preview is not None:
                result["previewPreSignedURL"] = download_url(ctx, preview)
    return Reply(201, {"requestedFiles": results})


def redirect_url(ctx: Ctx, handle_id: str) -> Reply:
    """GET /file/{id}?fileAssociateType&fileAssociateId[&redirect=false]."""
    number = parse_int(handle_id, "id")
    object_type = ctx.args.get("fileAssociateType")
    object_id = ctx.args.get("fileAssociateId")
    for name, value in (("fileAssociateType", object_type), ("fileAssociateId", object_id)):
        if value is None:
            bad_request(f"Required request parameter '{name}' for method parameter is not present")
    if object_type not in ASSOCIATE_TYPES:
        bad_request(
            "No enum constant org.sagebionetworks.repo.model.file.FileHandleAssociateType."
            f"{object_type}"
        )
    denial = association_denial(ctx, number, str(object_type), str(object_id))
    if denial is not None:
        forbidden(denial)
    url = download_url(ctx, require_handle(ctx.store, number))
    if str(ctx.args.get("redirect", "true")).lower() == "false":
        return Reply(200, url, content_type="text/plain")
    return Reply(307, None, headers={"Location": url})


def _handles_for_revision(ctx: Ctx, node_id: int, rev: int | None) -> dict[str, Any]:
    store = ctx.store
    row = nodes.check(store, ctx.caller, node_id, "DOWNLOAD")
    version = int(row["current_rev"]) if rev is None else rev
    revision = nodes.revision(store, node_id, version)
    if revision is None:
        not_found(f"Cannot find a node with id {syn(node_id)} and version {version}")
    handles: list[dict[str, Any]] = []
    if row["type"] == "file" and revision["file_handle_id"] is not None:
        handle = filehandles.get_handle(store, int(revision["file_handle_id"]))
        if handle is not None:
            handles.append(filehandles.file_handle_json(handle))
            preview = handle["preview_id"]
            if preview is not None and int(preview) != int(handle["id"]):
                preview_row = filehandles.get_handle(store, int(preview))
                if preview_row is not None:
                    handles.append(filehandles.file_handle_json(preview_row))
    return {"list": handles}


def entity_file_handles(ctx: Ctx, entity_id: str) -> dict[str, Any]:
    return _handles_for_revision(ctx, parse_syn_id(entity_id), None)


def version_file_handles(ctx: Ctx, entity_id: str, version: str) -> dict[str, Any]:
    return _handles_for_revision(ctx, parse_syn_id(entity_id), parse_int(version, "versionNumber"))


def update_version_file_handle(ctx: Ctx, entity_id: str, version: str) -> Reply:
    """PUT /entity/{id}/version/{n}/filehandle (NodeManagerImpl.updateNodeFileHandle)."""
    store, caller = ctx.store, ctx.caller
    body = ctx.json_body()
    old_raw, new_raw = body.get("oldFileHandleId"), body.get("newFileHandleId")
    if old_raw is None:
        bad_request("The updateRequest.oldFileHandleId is required.")
    if new_raw is None:
        bad_request("The updateRequest.newFileHandleId is required.")
    node_id, number = parse_syn_id(entity_id), parse_int(version, "versionNumber")
    row = nodes.check(store, caller, node_id, "READ")
    revision = nodes.revision(store, node_id, number)
    if row["type"] != "file" or revision is None:
        not_found(f"A file entity with id {syn(node_id)} and revision {number} does not exist.")
    nodes.check(store, caller, node_id, "UPDATE")
    old_id, new_id = parse_int(old_raw, "oldFileHandleId"), parse_int(new_raw, "newFileHandleId")
    nodes.check_file_handle_creator(store, caller, new_id)
    current = revision["file_handle_id"]
    if current is None or int(current) != old_id:
        precondition_failed(
            f"The id of the provided file handle id (request.oldFileHandleId: {old_raw}) does not "
            "match the current file handle id."
        )
    if new_id == old_id:
        return Reply(200, None)
    if nodes.file_handle_md5(store, new_id) != nodes.file_handle_md5(store, old_id):
        precondition_failed(
            "The MD5 of the new file handle does not match the MD5 of the current file handle, "
            "a new version must be created."
        )
    for validator in nodes.FILE_VALIDATORS:
        validator(ctx, int(row["parent_id"]), new_id)
    store.execute(
        "UPDATE revisions SET file_handle_id = ? WHERE node_id = ? AND rev = ?",
        (new_id, node_id, number),
    )
    nodes.touch(store, node_id, caller)
    return Reply(200, None)


ROUTES = s3gate.guarded(
    [
        Route("POST", "/file/v1/externalFileHandle/s3", create_external_s3_handle),
        Route("POST", "/file/v1/externalFileHandle/googleCloud", create_external_gcs_handle),
        Route("POST", "/file/v1/externalFileHandle", create_external_handle),
        Route("GET", "/file/v1/fileHandle/<handle_id>", get_file_handle),
        Route("POST", "/file/v1/fileHandle/batch", batch),
        Route("GET", "/file/v1/file/<handle_id>", redirect_url),
        Route("GET", "/repo/v1/entity/<entity_id>/filehandles", entity_file_handles),
        Route(
            "GET", "/repo/v1/entity/<entity_id>/version/<version>/filehandles", version_file_handles
        ),
        Route(
            "PUT",
            "/repo/v1/entity/<entity_id>/version/<version>/filehandle",
            update_version_file_handle,
        ),
    ]
)
