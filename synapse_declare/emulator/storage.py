"""Storage locations, project settings (upload destination lists) and upload destinations.

synapse-api.md §6 and §7. Storage locations are immutable rows; the server-side processing of
each type (baseKey sanitising, bucket-name validation, the generated STS base key, the owner.txt
check against the S3 server) happens once, at creation, and identical settings of one creator are
de-duplicated by a hash of the processed setting. Location ``1`` is Synapse's own storage (the
emulator's ``synapse_bucket``), owned by user 1.

This module also contributes the STS placement rules (synapse-api.md §8.3) to the entity code
through the ``nodes.*_VALIDATORS`` hooks, and ``known_buckets`` for the data-dir S3 snapshot.

The S3 calls (owner.txt) go to the embedded moto server.
``ExternalGoogleCloudStorageLocationSetting`` is stored as declared: there is no Google Cloud
Storage server to read ``owner.txt`` from, so its ownership check is skipped (docs/emulator.md,
"Storage and STS fidelity").
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from . import nodes, s3gate
from .principals import SYSTEM_GROUPS
from .routing import Reply, Route
from .util import (
    DEFAULT_STORAGE_LOCATION_ID,
    MODEL,
    ROOT_ID,
    TRASH_ID,
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

PROJECT = MODEL + "project."
S3_SETTING = PROJECT + "S3StorageLocationSetting"
EXTERNAL_S3 = PROJECT + "ExternalS3StorageLocationSetting"
EXTERNAL_GCS = PROJECT + "ExternalGoogleCloudStorageLocationSetting"
EXTERNAL_OBJECT = PROJECT + "ExternalObjectStorageLocationSetting"
EXTERNAL_STORAGE = PROJECT + "ExternalStorageLocationSetting"
PROXY = PROJECT + "ProxyStorageLocationSettings"
UPLOAD_LIST = PROJECT + "UploadDestinationListSetting"
FILE = MODEL + "file."

# The model fields a client may set on each type (anything else is ignored, as Synapse does).
COMMON_FIELDS = ("uploadType", "banner", "description")
TYPE_FIELDS: dict[str, tuple[str, ...]] = {
    S3_SETTING: ("baseKey", "stsEnabled"),
    EXTERNAL_S3: ("bucket", "baseKey", "stsEnabled", "endpointUrl"),
    EXTERNAL_GCS: ("bucket", "baseKey"),
    EXTERNAL_OBJECT: ("bucket", "endpointUrl"),
    EXTERNAL_STORAGE: ("url", "supportsSubfolders"),
    PROXY: ("proxyUrl", "secretKey", "benefactorId"),
}
BOOLEAN_FIELDS = ("stsEnabled", "supportsSubfolders")
BASE_KEY_TYPES = (S3_SETTING, EXTERNAL_S3, EXTERNAL_GCS)
BUCKET_TYPES = (EXTERNAL_S3, EXTERNAL_GCS, EXTERNAL_OBJECT)
STS_TYPES = (S3_SETTING, EXTERNAL_S3)
UPLOAD_TYPES = ("S3", "GOOGLECLOUDSTORAGE", "SFTP", "HTTPS", "PROXYLOCAL", "NONE")

MAX_LOCATIONS = 10
OWNER_MARKER = "owner.txt"
OWNER_MAX_LINES = 100
HELP_URL = (
    "https://help.synapse.org/docs/Custom-Storage-Locations.2048327803.html for more "
    "information on how to create a new external upload destination."
)
BUILTIN_CREATED_ON = "2012-01-01T00:00:00.000Z"

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS storage_locations (
    id INTEGER PRIMARY KEY,
    concrete_type TEXT NOT NULL,
    created_by INTEGER NOT NULL,
    created_on TEXT NOT NULL,
    etag TEXT NOT NULL,
    hash TEXT NOT NULL,
    body TEXT NOT NULL               -- JSON of the processed, type-specific fields
);
CREATE INDEX IF NOT EXISTS storage_locations_owner ON storage_locations(created_by, hash);
INSERT OR IGNORE INTO storage_locations(id, concrete_type, created_by, created_on, etag, hash, body)
VALUES ({DEFAULT_STORAGE_LOCATION_ID}, '{S3_SETTING}', 1, '{BUILTIN_CREATED_ON}',
        '00000000-0000-0000-0000-000000000001', 'builtin', '{{"uploadType": "S3"}}');
CREATE TABLE IF NOT EXISTS project_settings (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL,
    settings_type TEXT NOT NULL,
    etag TEXT NOT NULL,
    locations TEXT NOT NULL,         -- JSON list of storage location ids, default first
    UNIQUE (project_id, settings_type)
);
"""


# ---------------------------------------------------------------------------------------------
# Shared S3 client (one per emulator; boto3 clients are thread-safe)

_S3_CLIENTS: weakref.WeakKeyDictionary[Emulator, Any] = weakref.WeakKeyDictionary()


def s3_client(emulator: Emulator) -> Any:
    client = _S3_CLIENTS.get(emulator)
    if client is None:
        client = emulator.s3_client()
        _S3_CLIENTS[emulator] = client
    return client


def s3_error_code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def storage_failure(exc: Exception) -> SynapseError:
    """An S3 failure Synapse did not anticipate: its AmazonServiceException handler says 502."""
    return SynapseError(502, f"The S3 server failed: {exc}")


S3_ERRORS = (ClientError, BotoCoreError)


# ---------------------------------------------------------------------------------------------
# Storage location lookups


def get_location(store: Store, location_id: int | None) -> dict[str, Any] | None:
    """The stored setting as Synapse returns it (``None`` when there is no such location)."""
    if location_id is None:
        return None
    row = store.one("SELECT * FROM storage_locations WHERE id = ?", (location_id,))
    return None if row is None else location_json(row)


def require_location(store: Store, location_id: int) -> dict[str, Any]:
    location = get_location(store, location_id)
    if location is None:
        not_found(f"Storage location setting: '{location_id}' does not exist")
    return location


def location_json(row: sqlite3.Row) -> dict[str, Any]:
    body = json.loads(row["body"])
    return {
        "concreteType": row["concrete_type"],
        "storageLocationId": int(row["id"]),
        **body,
        "etag": row["etag"],
        "createdOn": row["created_on"],
        "createdBy": int(row["created_by"]),
    }


def is_sts(location: dict[str, Any] | None) -> bool:
    """StsStorageLocationSetting with ``stsEnabled: true`` (isStsStorageLocationSetting)."""
    return (
        location is not None
        and location["concreteType"] in STS_TYPES
        and location.get("stsEnabled") is True
    )


def location_bucket(emulator: Emulator, location: dict[str, Any]) -> str | None:
    """MultipartUtils.getBucket: Synapse's own bucket for S3StorageLocationSetting."""
    if location["concreteType"] == S3_SETTING:
        return emulator.synapse_bucket
    bucket = location.get("bucket")
    return str(bucket) if bucket is not None else None


def known_buckets(store: Store) -> list[str]:
    """Buckets named by storage locations (persisted with the data dir)."""
    names: set[str] = set()
    for row in store.all("SELECT body FROM storage_locations"):
        bucket = json.loads(row["body"]).get("bucket")
        if isinstance(bucket, str) and bucket:
            names.add(bucket)
    return sorted(names)


# ---------------------------------------------------------------------------------------------
# Project settings lookups


def setting_json(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "concreteType": UPLOAD_LIST,
        "id": str(row["id"]),
        "projectId": syn(int(row["project_id"])),
        "settingsType": row["settings_type"],
        "etag": row["etag"],
        "locations": json.loads(row["locations"]),
    }


def own_setting(store: Store, node_id: int) -> sqlite3.Row | None:
    return store.one(
        "SELECT * FROM project_settings WHERE project_id = ? AND settings_type = 'upload'",
        (node_id,),
    )


def inherited_setting(store: Store, node_id: int) -> sqlite3.Row | None:
    """The nearest ``upload`` setting on the node or its ancestors (getInheritedProjectSetting)."""
    for row in reversed(nodes.ancestors(store, node_id)):
        setting = own_setting(store, int(row["id"]))
        if setting is not None:
            return setting
    return None


def setting_locations(setting: sqlite3.Row) -> list[int]:
    return [int(i) for i in json.loads(setting["locations"])]


def setting_is_sts(store: Store, setting: sqlite3.Row | None) -> bool:
    """Only the first location is checked: an STS setting has exactly one."""
    if setting is None:
        return False
    locations = setting_locations(setting)
    return bool(locations) and is_sts(get_location(store, locations[0]))


def first_location(setting: sqlite3.Row | None) -> int | None:
    if setting is None:
        return None
    locations = setting_locations(setting)
    return locations[0] if locations else None


def is_empty_with_trash(store: Store, node_id: int) -> bool:
    """No children, and no trashed children (entities deleted out of this node)."""
    if store.one("SELECT 1 FROM nodes WHERE parent_id = ? LIMIT 1", (node_id,)) is not None:
        return False
    return store.one("SELECT 1 FROM trash WHERE original_parent = ? LIMIT 1", (node_id,)) is None


# ---------------------------------------------------------------------------------------------
# Storage location creation: the processors of StorageLocationProcessor, in Synapse's order


def _sanitize_base_key(value: Any) -> str | None:
    if value is None:
        return None
    stripped = str(value).strip("/ \t")
    return stripped or None


_DOMAIN_PART = re.compile(r"^[A-Za-z0-9_-]+$")


def valid_domain_name(name: str) -> bool:
    """Guava's InternetDomainName.isValid (what BucketStorageLocationProcessor applies)."""
    text = name.replace("\u3002", ".").replace("\uff0e", ".").replace("\uff61", ".")
    if text.endswith("."):
        text = text[:-1]
    if not text or len(text) > 253:
        return False
    parts = text.split(".")
    if len(parts) > 127:
        return False
    for index, part in enumerate(parts):
        if not 1 <= len(part) <= 63:
            return False
        ascii_chars = "".join(c for c in part if ord(c) < 128)
        if ascii_chars and not _DOMAIN_PART.match(ascii_chars):
            return False
        if part[0] in "-_" or part[-1] in "-_":
            return False
        if index == len(parts) - 1 and part[0].isdigit():
            return False
    return True


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*$")


def valid_url(url: str) -> bool:
    """Close to commons-validator's UrlValidator(ALLOW_2_SLASHES | ALLOW_ALL_SCHEMES)."""
    if not url or any(c.isspace() for c in url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if not parts.scheme or not _SCHEME.match(parts.scheme):
        return False
    if parts.scheme.lower() == "file":
        return True
    return bool(parts.netloc) and not parts.netloc.startswith(("@", ":"))


def _explanation(bucket: str, key: str) -> str:
    return (
        "For security purposes, Synapse needs to establish that the user has permission to write "
        f"to the bucket. Please create an object in bucket '{bucket}' with key '{key}' that "
        "contains a line separated list of identifiers for the user. Valid identifiers are the "
        "id of the user or id of a team the user is part of. Also see " + HELP_URL
    )


def owner_aliases(ctx: Ctx) -> set[str]:
    """User id, user name and emails, and the ids of the caller's groups except the system ones."""
    caller = ctx.caller
    aliases = {str(caller.id)}
    row = ctx.store.one("SELECT name, email FROM principals WHERE id = ?", (caller.id,))
    if row is not None:
        for value in (row["name"], row["email"]):
            if value:
                aliases.add(str(value).strip().lower())
    aliases.update(str(g) for g in caller.groups if g not in SYSTEM_GROUPS)
    return aliases


def verify_bucket_owner(ctx: Ctx, bucket: str, base_key: str | None) -> None:
    """BucketOwnerVerifierImpl + S3BucketObjectReader against the embedded S3 server."""
    key = OWNER_MARKER if base_key is None else f"{base_key}/{OWNER_MARKER}"
    suffix = ". " + _explanation(bucket, key)
    try:
        body = s3_client(ctx.emulator).get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        code = s3_error_code(exc)
        if code == "NoSuchBucket":
            bad_request(f"Did not find S3 bucket {bucket}{suffix}")
        if code in ("NoSuchKey", "404", "NotFound"):
            bad_request(f"Did not find S3 object at key {key} from bucket {bucket}{suffix}")
        bad_request(f"Could not read S3 object at key {key} from bucket {bucket}: {exc}{suffix}")
    except BotoCoreError as exc:
        bad_request(f"Could not read S3 object at key {key} from bucket {bucket}: {exc}{suffix}")
    text = body.decode("utf-8", errors="replace")
    tokens = [
        token.strip().lower()
        for line in text.splitlines()[:OWNER_MAX_LINES]
        for token in line.split(",")
    ]
    tokens = [t for t in tokens if t]
    if not tokens:
        bad_request(f"No user identifier found under key {key} from bucket {bucket}{suffix}")
    aliases = owner_aliases(ctx)
    if not any(token in aliases for token in tokens):
        bad_request(
            f"Could not find a valid user identifier under key {key} from bucket {bucket}{suffix}"
        )


def _string_field(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool | dict | list):
        bad_request(f"Could not parse the StorageLocationSetting: '{name}' must be a string")
    return str(value)


def process_location(ctx: Ctx, concrete: str, sent: dict[str, Any]) -> dict[str, Any]:
    """Apply Synapse's processors; returns the fields to store (no id/etag/createdOn/By)."""
    fields: dict[str, Any] = {}
    for name in COMMON_FIELDS + TYPE_FIELDS[concrete]:
        value = sent.get(name)
        if value is None:
            continue
        if name in BOOLEAN_FIELDS:
            if not isinstance(value, bool):
                bad_request(
                    f"Could not parse the StorageLocationSetting: '{name}' must be a boolean"
                )
            fields[name] = value
        else:
            fields[name] = _string_field(sent, name)
    upload_type = fields.get("uploadType")
    if upload_type is not None and upload_type not in UPLOAD_TYPES:
        bad_request(
            f"No enum constant org.sagebionetworks.repo.model.file.UploadType.{upload_type}"
        )
    # BaseKeyStorageLocationProcessor
    if concrete in BASE_KEY_TYPES and "baseKey" in sent:
        base_key = _sanitize_base_key(fields.get("baseKey"))
        if base_key is None:
            fields.pop("baseKey", None)
        else:
            fields["baseKey"] = base_key
    # BucketStorageLocationProcessor
    if concrete in BUCKET_TYPES:
        bucket = fields.get("bucket")
        if bucket is None:
            bad_request("The bucket name is required.")
        if not valid_domain_name(bucket):
            bad_request("Invalid bucket name.")
    if concrete == EXTERNAL_GCS:
        fields["uploadType"] = "GOOGLECLOUDSTORAGE"
    if concrete == EXTERNAL_OBJECT:
        endpoint = (fields.get("endpointUrl") or "").strip("/ \t")
        if not valid_url(endpoint):
            bad_request(f"The External URL is not a valid url: {endpoint}")
        fields["endpointUrl"] = endpoint
    if concrete == EXTERNAL_S3:
        fields["uploadType"] = "S3"
    if concrete == EXTERNAL_STORAGE:
        url = fields.get("url")
        if url is None:
            bad_request("The url is required.")
        if not valid_url(url):
            bad_request(f"The External URL is not a valid url: {url}")
    if concrete == PROXY:
        proxy_url, secret = fields.get("proxyUrl"), fields.get("secretKey")
        if proxy_url is None:
            bad_request("The proxyUrl is required.")
        if secret is None:
            bad_request("The secretKey is required.")
        if len(secret) < 36:
            bad_request(f"SecretKey must be at least: 36 characters but was: {len(secret)}")
        parts = urlsplit(proxy_url)
        if not parts.scheme or not parts.netloc:
            bad_request(f"The proxyUrl is malformed: no protocol: {proxy_url}")
        if parts.scheme != "https":
            bad_request("The proxyUrl protocol must be be HTTPS")
    if concrete == S3_SETTING:
        if fields.get("baseKey") is not None:
            bad_request("Cannot specify baseKey when creating an S3StorageLocationSetting")
        if fields.get("stsEnabled") is True:
            fields["baseKey"] = f"{ctx.caller.id}/{uuid.uuid4()}"
        fields["uploadType"] = "S3"
    # BucketOwnerStorageLocationProcessor (last). Google Cloud: stored as declared.
    if concrete == EXTERNAL_S3 and not ctx.caller.admin:
        verify_bucket_owner(ctx, str(fields["bucket"]), fields.get("baseKey"))
    if fields.get("uploadType") is None:
        fields["uploadType"] = "NONE"
    return fields


def _location_hash(concrete: str, created_by: int, fields: dict[str, Any]) -> str:
    document = {"concreteType": concrete, "createdBy": created_by, **fields}
    return hashlib.md5(json.dumps(document, sort_keys=True).encode("utf-8")).hexdigest()


def create_storage_location(ctx: Ctx) -> Reply:
    store, caller = ctx.store, ctx.caller
    if caller.anonymous:
        forbidden("Anonymous users cannot create storage locations.")
    body = ctx.json_body()
    concrete = body.get("concreteType")
    if concrete is None:
        bad_request("The concreteType of the StorageLocationSetting is required.")
    if concrete not in TYPE_FIELDS:
        bad_request(f"Unknown StorageLocationSetting type: {concrete}")
    fields = process_location(ctx, str(concrete), body)
    digest = _location_hash(str(concrete), caller.id, fields)
    existing = store.one(
        "SELECT * FROM storage_locations WHERE created_by = ? AND hash = ? ORDER BY id DESC",
        (caller.id, digest),
    )
    if existing is not None:
        return Reply(201, location_json(existing))
    location_id = store.next_id("storage_location")
    store.execute(
        "INSERT INTO storage_locations(id, concrete_type, created_by, created_on, etag, hash, body)"
        " VALUES (?,?,?,?,?,?,?)",
        (location_id, concrete, caller.id, now(), new_etag(), digest, json.dumps(fields)),
    )
    created = get_location(store, location_id)
    return Reply(201, created)


def get_storage_location(ctx: Ctx, location_id: str) -> dict[str, Any]:
    location = require_location(ctx.store, parse_int(location_id, "storageLocationId"))
    if location["createdBy"] != ctx.caller.id and not ctx.caller.admin:
        forbidden("Only the creator can access storage location settings")
    return location


def list_storage_locations(ctx: Ctx) -> dict[str, Any]:
    rows = ctx.store.all(
        "SELECT * FROM storage_locations WHERE created_by = ? ORDER BY id DESC LIMIT 100",
        (ctx.caller.id,),
    )
    return {
        "concreteType": PROJECT + "StorageLocationSetting",
        "list": [location_json(r) for r in rows],
    }


# ---------------------------------------------------------------------------------------------
# Project settings (ProjectSettingsManagerImpl)


def _owner_name(store: Store, user_id: int) -> str:
    value = store.scalar("SELECT name FROM principals WHERE id = ?", (user_id,))
    return str(value) if value is not None else str(user_id)


def _locations_of(body: dict[str, Any]) -> list[int]:
    raw = body.get("locations")
    if raw is None:
        bad_request("settings.locations is required.")
    if not isinstance(raw, list):
        bad_request("settings.locations must be a list of storage location ids")
    locations = [parse_int(value, "settings.locations") for value in raw]
    if len(locations) < 1:
        bad_request("settings.locations must at least have one entry")
    if len(locations) > MAX_LOCATIONS:
        bad_request(f"The maximum number of settings.locations is limited to {MAX_LOCATIONS}")
    return locations


def _validate_setting(ctx: Ctx, node_id: int, body: dict[str, Any]) -> list[int]:
    """validateProjectSetting / validateUploadDestinationListSetting."""
    concrete = body.get("concreteType")
    if concrete is not None and concrete != UPLOAD_LIST:
        bad_request(f"Cannot handle project setting of type {concrete}")
    locations = _locations_of(body)
    for location_id in locations:
        location = get_location(ctx.store, location_id)
        if location is None:
            bad_request(f"uploadId {location_id} is not a valid upload destination location")
        if location["concreteType"] == EXTERNAL_S3:
            owner = int(location["createdBy"])
            if not ctx.caller.admin and owner != ctx.caller.id:
                forbidden(
                    "Only the owner of the external S3 upload destination (user "
                    f"{_owner_name(ctx.store, owner)}) can add this upload destination to a "
                    "project. Either ask that user to perform this operation or follow the steps "
                    "to create a new external s3 upload destination (see " + HELP_URL
                )
        if is_sts(location):
            node = nodes.get_row(ctx.store, node_id)
            if node is None or node["type"] != "folder":
                bad_request("Can only enable STS on a folder")
            if len(locations) != 1:
                bad_request("An STS-enabled folder cannot add other upload destinations")
    return locations


def _settings_type(body: dict[str, Any]) -> None:
    value = body.get("settingsType")
    if value is not None and value != "upload":
        bad_request(
            f"No enum constant org.sagebionetworks.repo.model.project.ProjectSettingsType.{value}"
        )


def create_project_setting(ctx: Ctx) -> Reply:
    store, caller = ctx.store, ctx.caller
    body = ctx.json_body()
    if body.get("projectId") is None:
        bad_request("projectId is required.")
    node_id = parse_syn_id(body["projectId"])
    node = nodes.check(store, caller, node_id, "READ")
    if node["type"] not in ("project", "folder"):
        bad_request("The id is not the id of a project or folder entity")
    if not nodes.can(store, caller, node_id, "CREATE"):
        forbidden("Cannot create settings for this project")
    if setting_is_sts(store, inherited_setting(store, node_id)):
        bad_request("Can't override project settings in an STS-enabled folder path")
    _settings_type(body)
    locations = _validate_setting(ctx, node_id, body)
    if is_sts(get_location(store, locations[0])) and not is_empty_with_trash(store, node_id):
        bad_request("Can't enable STS in a non-empty folder")
    if own_setting(store, node_id) is not None:
        bad_request(
            f"A project setting of type 'upload' for project {syn(node_id)} already exists."
        )
    setting_id = store.next_id("project_setting")
    store.execute(
        "INSERT INTO project_settings(id, project_id, settings_type, etag, locations) "
        "VALUES (?, ?, 'upload', ?, ?)",
        (setting_id, node_id, new_etag(), json.dumps(locations)),
    )
    row = store.one("SELECT * FROM project_settings WHERE id = ?", (setting_id,))
    assert row is not None
    return Reply(201, setting_json(row))


def _setting_row(store: Store, setting_id: str) -> sqlite3.Row:
    row = store.one("SELECT * FROM project_settings WHERE id = ?", (parse_int(setting_id, "id"),))
    if row is None:
        not_found(f"Project settings: '{setting_id}' does not exist")
    return row


def _can_on_project(ctx: Ctx, node_id: int, access: str) -> bool:
    nodes.require_node(ctx.store, node_id)
    return nodes.can(ctx.store, ctx.caller, node_id, access)


def get_project_setting(ctx: Ctx, setting_id: str) -> dict[str, Any]:
    row = _setting_row(ctx.store, setting_id)
    if not _can_on_project(ctx, int(row["project_id"]), "READ"):
        forbidden(
            "The current user does not have READ access on the project this setting applies to."
        )
    return setting_json(row)


def get_project_setting_by_type(ctx: Ctx, project_id: str, settings_type: str) -> Any:
    node_id = parse_syn_id(project_id)
    if settings_type != "upload":
        bad_request(
            "No enum constant org.sagebionetworks.repo.model.project.ProjectSettingsType."
            f"{settings_type}"
        )
    if not _can_on_project(ctx, node_id, "READ"):
        forbidden(f"The current user does not have READ access on the project {project_id}.")
    row = own_setting(ctx.store, node_id)
    if row is None:
        # Synapse answers "no setting" with 200 and an empty body (SPC turns "" into None).
        return Reply(200, None)
    return setting_json(row)


def update_project_setting(ctx: Ctx) -> Reply:
    store = ctx.store
    body = ctx.json_body()
    if body.get("id") is None:
        bad_request("The id is required.")
    if body.get("projectId") is None:
        bad_request("The project id is required.")
    node_id = parse_syn_id(body["projectId"])
    if not _can_on_project(ctx, node_id, "UPDATE"):
        forbidden("Cannot update settings on this project")
    _settings_type(body)
    locations = _validate_setting(ctx, node_id, body)
    row = _setting_row(store, str(body["id"]))
    if int(row["project_id"]) != node_id:
        bad_request(
            "You cannot change the project id with the update project settings call. Create a "
            "new project settings instead"
        )
    if not is_empty_with_trash(store, node_id):
        old_sts = setting_is_sts(store, row)
        new_sts = is_sts(get_location(store, locations[0]))
        if new_sts and not old_sts:
            bad_request("Can't enable STS in a non-empty folder")
        if old_sts and (not new_sts or locations != setting_locations(row)):
            bad_request("Can't disable STS in a non-empty folder")
    if body.get("etag") != row["etag"]:
        precondition_failed(
            "Project setting was updated since you last fetched it, retrieve it again and "
            "reapply the update."
        )
    store.execute(
        "UPDATE project_settings SET locations = ?, etag = ? WHERE id = ?",
        (json.dumps(locations), new_etag(), row["id"]),
    )
    return Reply(200, None)


def delete_project_setting(ctx: Ctx, setting_id: str) -> Reply:
    store = ctx.store
    row = _setting_row(store, setting_id)
    node_id = int(row["project_id"])
    if not _can_on_project(ctx, node_id, "DELETE"):
        forbidden("Cannot delete settings from this project")
    if setting_is_sts(store, row) and not is_empty_with_trash(store, node_id):
        bad_request("Can't disable STS in a non-empty folder")
    store.execute("DELETE FROM project_settings WHERE id = ?", (row["id"],))
    return Reply(204)


# ---------------------------------------------------------------------------------------------
# Upload destinations (FileHandleManagerImpl.getUploadDestination*)


def upload_destination(ctx: Ctx, node_id: int, location_id: int) -> dict[str, Any]:
    if location_id == DEFAULT_STORAGE_LOCATION_ID:
        return {
            "concreteType": FILE + "S3UploadDestination",
            "storageLocationId": DEFAULT_STORAGE_LOCATION_ID,
            "uploadType": "S3",
        }
    location = require_location(ctx.store, location_id)
    concrete = location["concreteType"]
    destination: dict[str, Any]
    if concrete == S3_SETTING:
        destination = {"concreteType": FILE + "S3UploadDestination"}
    elif concrete == EXTERNAL_S3:
        destination = {
            "concreteType": FILE + "ExternalS3UploadDestination",
            "bucket": location.get("bucket"),
        }
    elif concrete == EXTERNAL_GCS:
        destination = {
            "concreteType": FILE + "ExternalGoogleCloudUploadDestination",
            "bucket": location.get("bucket"),
        }
    elif concrete == EXTERNAL_STORAGE:
        url = str(location.get("url") or "")
        if not url:
            bad_request("The url for the external upload destination setting is empty")
        if not url.endswith("/"):
            url += "/"
        if location.get("supportsSubfolders") is True:
            nodes.check(ctx.store, ctx.caller, node_id, "READ")
            for row in nodes.ancestors(ctx.store, node_id)[1:]:
                url += quote(str(row["name"]), safe="") + "/"
        destination = {
            "concreteType": FILE + "ExternalUploadDestination",
            "url": url + str(uuid.uuid4()),
        }
    elif concrete == EXTERNAL_OBJECT:
        destination = {
            "concreteType": FILE + "ExternalObjectStoreUploadDestination",
            "keyPrefixUUID": str(uuid.uuid4()),
            "endpointUrl": location.get("endpointUrl"),
            "bucket": location.get("bucket"),
        }
    else:
        bad_request(f"Cannot handle upload destination location setting of type: {concrete}")
    if concrete in BASE_KEY_TYPES:
        destination["baseKey"] = location.get("baseKey")
    if concrete in STS_TYPES:
        destination["stsEnabled"] = location.get("stsEnabled")
    destination["storageLocationId"] = location_id
    destination["uploadType"] = location.get("uploadType")
    destination["banner"] = location.get("banner")
    return destination


def _destination_ids(store: Store, node_id: int) -> list[int]:
    setting = inherited_setting(store, node_id)
    locations = setting_locations(setting) if setting is not None else []
    return locations or [DEFAULT_STORAGE_LOCATION_ID]


def _existing_node(ctx: Ctx, entity_id: str) -> int:
    node_id = parse_syn_id(entity_id)
    nodes.require_node(ctx.store, node_id)
    return node_id


def get_default_upload_destination(ctx: Ctx, entity_id: str) -> dict[str, Any]:
    node_id = _existing_node(ctx, entity_id)
    return upload_destination(ctx, node_id, _destination_ids(ctx.store, node_id)[0])


def get_upload_destination(ctx: Ctx, entity_id: str, location_id: str) -> dict[str, Any]:
    node_id = _existing_node(ctx, entity_id)
    return upload_destination(ctx, node_id, parse_int(location_id, "storageLocationId"))


def get_upload_destination_locations(ctx: Ctx, entity_id: str) -> dict[str, Any]:
    node_id = _existing_node(ctx, entity_id)
    setting = inherited_setting(ctx.store, node_id)
    items: list[dict[str, Any]] = []
    if setting is None or not setting_locations(setting):
        items.append({"storageLocationId": DEFAULT_STORAGE_LOCATION_ID, "uploadType": "S3"})
    else:
        for location_id in setting_locations(setting):
            location = get_location(ctx.store, location_id)
            if location is None:
                continue
            items.append(
                {
                    "storageLocationId": location_id,
                    "description": location.get("description"),
                    "uploadType": location.get("uploadType"),
                }
            )
    return {"concreteType": FILE + "UploadDestinationLocation", "list": items}


def get_upload_destinations(ctx: Ctx, entity_id: str) -> dict[str, Any]:
    node_id = _existing_node(ctx, entity_id)
    return {
        "concreteType": FILE + "UploadDestination",
        "list": [
            upload_destination(ctx, node_id, location_id)
            for location_id in _destination_ids(ctx.store, node_id)
        ],
    }


# ---------------------------------------------------------------------------------------------
# STS placement rules (StsManagerImpl.validateCanAddFile / validateCanMoveFolder and the entity
# validators), contributed to nodes' hooks.


def _parent_setting_info(store: Store, parent_id: int) -> tuple[bool, int | None]:
    setting = inherited_setting(store, parent_id)
    return setting_is_sts(store, setting), first_location(setting)


def validate_can_add_file(ctx: Ctx, parent_id: int, handle_id: int) -> None:
    store = ctx.store
    handle = store.one("SELECT storage_location_id FROM file_handles WHERE id = ?", (handle_id,))
    if handle is None:
        return  # the creator check that follows answers 404 for a missing handle
    file_location = handle["storage_location_id"]
    file_location_id = int(file_location) if file_location is not None else None
    file_sts = is_sts(get_location(store, file_location_id))
    parent_sts, parent_location = _parent_setting_info(store, parent_id)
    if (file_sts or parent_sts) and file_location_id != parent_location:
        if file_sts:
            bad_request(
                "Files in STS-enabled storage locations can only be placed in folders with the "
                "same storage location"
            )
        bad_request(
            "Folders with STS-enabled storage locations can only accept files with the same "
            "storage location"
        )


def validate_can_move(ctx: Ctx, row: sqlite3.Row, new_parent: int) -> None:
    if row["type"] != "folder":
        return  # files are checked by validate_can_add_file with their new parent
    store = ctx.store
    old_parent = row["parent_id"]
    if old_parent is None or int(old_parent) == new_parent:
        return
    own = own_setting(store, int(row["id"]))
    if own is not None:
        is_root, old_sts, old_location = True, setting_is_sts(store, own), first_location(own)
    else:
        is_root = False
        old_sts, old_location = _parent_setting_info(store, int(old_parent))
    new_sts, new_location = _parent_setting_info(store, new_parent)
    if is_root and old_sts:
        if new_sts:
            bad_request("Cannot place an STS-enabled folder inside another STS-enabled folder")
    elif (old_sts or new_sts) and old_location != new_location:
        if old_sts:
            bad_request(
                "Folders in STS-enabled storage locations can only be placed in folders with the "
                "same storage location"
            )
        bad_request("Non-STS-enabled folders cannot be placed inside STS-enabled folders")


def validate_create(ctx: Ctx, new_type: str, parent_id: int) -> None:
    if new_type in ("file", "folder") or parent_id in (ROOT_ID, TRASH_ID):
        return
    if nodes.get_row(ctx.store, parent_id) is None:
        return
    if setting_is_sts(ctx.store, inherited_setting(ctx.store, parent_id)):
        bad_request("Can only create Files and Folders inside STS-enabled folders")


def validate_acl_override(ctx: Ctx, node_id: int) -> None:
    row = nodes.get_row(ctx.store, node_id)
    if row is None or row["parent_id"] is None:
        return
    if setting_is_sts(ctx.store, inherited_setting(ctx.store, int(row["parent_id"]))):
        bad_request("Cannot override ACLs in a child of an STS-enabled folder")


def _register(hooks: list[Callable[..., None]], validator: Callable[..., None]) -> None:
    """Idempotent (a re-imported module must not register its rules twice)."""
    key = (validator.__module__, validator.__qualname__)
    if all(
        (getattr(h, "__module__", None), getattr(h, "__qualname__", None)) != key for h in hooks
    ):
        hooks.append(validator)


_register(nodes.FILE_VALIDATORS, validate_can_add_file)
_register(nodes.MOVE_VALIDATORS, validate_can_move)
_register(nodes.CREATE_VALIDATORS, validate_create)
_register(nodes.ACL_OVERRIDE_VALIDATORS, validate_acl_override)


ROUTES = s3gate.guarded(
    [
        Route("POST", "/repo/v1/storageLocation", create_storage_location),
        Route("GET", "/repo/v1/storageLocation", list_storage_locations),
        Route("GET", "/repo/v1/storageLocation/<location_id>", get_storage_location),
        Route("POST", "/repo/v1/projectSettings", create_project_setting),
        Route("PUT", "/repo/v1/projectSettings", update_project_setting),
        Route("GET", "/repo/v1/projectSettings/<setting_id>", get_project_setting),
        Route("DELETE", "/repo/v1/projectSettings/<setting_id>", delete_project_setting),
        Route(
            "GET",
            "/repo/v1/projectSettings/<project_id>/type/<settings_type>",
            get_project_setting_by_type,
        ),
        Route(
            "GET", "/file/v1/entity/<entity_id>/uploadDestination", get_default_upload_destination
        ),
        Route(
            "GET",
            "/file/v1/entity/<entity_id>/uploadDestination/<location_id>",
            get_upload_destination,
        ),
        Route(
            "GET",
            "/file/v1/entity/<entity_id>/uploadDestinationLocations",
            get_upload_destination_locations,
        ),
        Route("GET", "/file/v1/entity/<entity_id>/uploadDestinations", get_upload_destinations),
    ]
)
