"""Nodes (entities), revisions, ACLs and the authorization deciders.

Everything that decides "may this caller do X to entity Y" lives here, so the endpoint modules
(entities, ACLs, annotations, bundles, wikis, storage) apply one set of rules with Synapse's exact
messages (synapse-api.md §2.3, §2.10, §4).

Storage rules that touch entities (STS placement, files in STS folders) are contributed by the
storage modules through the ``*_VALIDATORS`` hook lists below, so this module does not import them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .util import (
    ADMINISTRATORS_GROUP,
    AUTHENTICATED_USERS,
    MODEL,
    PUBLIC,
    ROOT_ID,
    TRASH_ID,
    ZERO_ETAG,
    SynapseError,
    bad_request,
    forbidden,
    new_etag,
    not_found,
    now,
    syn,
)

if TYPE_CHECKING:
    import sqlite3

    from .app import Ctx
    from .principals import Caller
    from .store import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS nodes (
    id INTEGER PRIMARY KEY,
    parent_id INTEGER,
    name TEXT NOT NULL,
    type TEXT NOT NULL,              -- project | folder | file | link
    etag TEXT NOT NULL,
    description TEXT,
    alias TEXT UNIQUE,
    created_on TEXT NOT NULL,
    created_by INTEGER NOT NULL,
    modified_on TEXT NOT NULL,
    modified_by INTEGER NOT NULL,
    current_rev INTEGER NOT NULL DEFAULT 1,
    max_rev INTEGER NOT NULL DEFAULT 1,
    links_to TEXT,
    UNIQUE (parent_id, name)         -- BINARY collation: exact, case-sensitive, as utf8mb4_bin
);
CREATE TABLE IF NOT EXISTS revisions (
    node_id INTEGER NOT NULL,
    rev INTEGER NOT NULL,
    label TEXT NOT NULL,
    comment TEXT,
    file_handle_id INTEGER,
    annotations TEXT NOT NULL DEFAULT '{}',
    modified_on TEXT NOT NULL,
    modified_by INTEGER NOT NULL,
    PRIMARY KEY (node_id, rev)
);
-- Children pages sort by name, creation or modification; with the type these cover the scan
-- that skips a page's offset.
CREATE INDEX IF NOT EXISTS nodes_parent_name_type ON nodes(parent_id, name, id, type);
CREATE INDEX IF NOT EXISTS nodes_parent_created_type ON nodes(parent_id, created_on, id, type);
CREATE INDEX IF NOT EXISTS nodes_parent_modified_type ON nodes(parent_id, modified_on, id, type);
CREATE UNIQUE INDEX IF NOT EXISTS revisions_label ON revisions(node_id, label COLLATE NOCASE);
CREATE TABLE IF NOT EXISTS acls (
    node_id INTEGER PRIMARY KEY,
    etag TEXT NOT NULL,
    creation_date TEXT NOT NULL,
    entries TEXT NOT NULL            -- JSON [{"principalId": int, "accessType": [..]}]
);
CREATE TABLE IF NOT EXISTS trash (
    node_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    original_parent INTEGER NOT NULL,
    deleted_by INTEGER NOT NULL,
    deleted_on TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS file_handles (
    id INTEGER PRIMARY KEY,
    concrete_type TEXT NOT NULL,
    created_by INTEGER NOT NULL,
    created_on TEXT NOT NULL,
    etag TEXT NOT NULL,
    file_name TEXT,
    content_type TEXT,
    content_md5 TEXT,
    content_size INTEGER,
    storage_location_id INTEGER,
    bucket TEXT,
    key TEXT,
    preview_id INTEGER,
    is_preview INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'AVAILABLE',
    extra TEXT                       -- JSON of type-specific fields (externalURL, endpointUrl...)
);
"""

TYPES = {
    "project": MODEL + "Project",
    "folder": MODEL + "Folder",
    "file": MODEL + "FileEntity",
    "link": MODEL + "Link",
}
TYPE_OF_CLASS = {v: k for k, v in TYPES.items()}
CONTAINER_TYPES = ("project", "folder")
VERSIONABLE = ("file",)

ADMIN_ACCESS = [
    "READ",
    "DOWNLOAD",
    "UPDATE",
    "DELETE",
    "CREATE",
    "CHANGE_PERMISSIONS",
    "CHANGE_SETTINGS",
    "MODERATE",
]
MAX_CHILDREN = 10_000
MAX_DEPTH = 50

# Hooks filled by the storage modules. Each gets (ctx, ...) and raises SynapseError to refuse.
# CREATE_VALIDATORS(ctx, new_type, parent_id); FILE_VALIDATORS(ctx, parent_id, file_handle_id);
# MOVE_VALIDATORS(ctx, node_row, new_parent_id); ACL_OVERRIDE_VALIDATORS(ctx, node_id);
# DELETE_HOOKS(ctx, node_id) runs after an entity moved to the trash.
CREATE_VALIDATORS: list[Callable[..., None]] = []
FILE_VALIDATORS: list[Callable[..., None]] = []
MOVE_VALIDATORS: list[Callable[..., None]] = []
ACL_OVERRIDE_VALIDATORS: list[Callable[..., None]] = []
# DOWNLOAD_GATES(store, caller, node_id) -> bool: True when the caller has unmet access
# requirements on the node (access_requirements.py), which denies DOWNLOAD (synapse-api-2.md §2.1).
DOWNLOAD_GATES: list[Callable[..., bool]] = []
# WRITE_HOOKS(ctx, node_id, previous_rev) run after an entity's create (previous_rev None) or
# update, in the same transaction (raising rolls the write back): provenance's ?generatedBy=.
WRITE_HOOKS: list[Callable[..., None]] = []


def bootstrap(store: Store) -> None:
    """Root ``syn4489`` (its ACL lets any logged-in user create projects) and trash."""
    created = now()
    for node_id, name in ((ROOT_ID, "root"), (TRASH_ID, "trashcan")):
        store.execute(
            "INSERT OR IGNORE INTO nodes(id, parent_id, name, type, etag, created_on, created_by,"
            " modified_on, modified_by) VALUES (?, ?, ?, 'folder', ?, ?, 1, ?, 1)",
            (node_id, None if node_id == ROOT_ID else ROOT_ID, name, new_etag(), created, created),
        )
        store.execute(
            "INSERT OR IGNORE INTO revisions(node_id, rev, label, modified_on, modified_by) "
            "VALUES (?, 1, '1', ?, 1)",
            (node_id, created),
        )
    root_acl = [{"principalId": AUTHENTICATED_USERS, "accessType": ["CREATE"]}]
    admin_acl = [{"principalId": ADMINISTRATORS_GROUP, "accessType": ADMIN_ACCESS}]
    for node_id, entries in ((ROOT_ID, root_acl), (TRASH_ID, admin_acl)):
        store.execute(
            "INSERT OR IGNORE INTO acls(node_id, etag, creation_date, entries) VALUES (?,?,?,?)",
            (node_id, new_etag(), created, json.dumps(entries)),
        )


# ---------------------------------------------------------------------------------------------
# Lookups


def get_row(store: Store, node_id: int) -> sqlite3.Row | None:
    return store.one("SELECT * FROM nodes WHERE id = ?", (node_id,))


def ancestors(store: Store, node_id: int) -> list[sqlite3.Row]:
    """The node and its ancestors, root first (depth is bounded by MAX_DEPTH)."""
    chain: list[sqlite3.Row] = []
    current: int | None = node_id
    while current is not None:
        row = get_row(store, current)
        if row is None:
            break
        chain.append(row)
        current = row["parent_id"]
        if len(chain) > MAX_DEPTH + 5:
            raise SynapseError(500, f"hierarchy too deep or cyclic at {syn(node_id)}")
    chain.reverse()
    return chain


def in_trash(store: Store, node_id: int) -> bool:
    return any(row["id"] == TRASH_ID for row in ancestors(store, node_id)[:-1]) or (
        node_id == TRASH_ID
    )


def benefactor_id(store: Store, node_id: int) -> int:
    for row in reversed(ancestors(store, node_id)):
        if store.one("SELECT 1 FROM acls WHERE node_id = ?", (row["id"],)) is not None:
            return int(row["id"])
    return ROOT_ID


def acl_entries(store: Store, node_id: int) -> list[dict[str, Any]]:
    row = store.one("SELECT entries FROM acls WHERE node_id = ?", (node_id,))
    return [] if row is None else list(json.loads(row["entries"]))


def access_types(store: Store, caller: Caller, node_id: int) -> set[str]:
    """The union of the benefactor's ACL entries for the caller's principals."""
    granted: set[str] = set()
    for entry in acl_entries(store, benefactor_id(store, node_id)):
        if int(entry["principalId"]) in caller.groups:
            granted.update(entry["accessType"])
    return granted


def require_node(store: Store, node_id: int) -> sqlite3.Row:
    """The entity-access deciders' first two steps: exists, not in the trash."""
    row = get_row(store, node_id)
    if row is None:
        not_found(f"Resource: '{syn(node_id)}' does not exist")
    if in_trash(store, node_id):
        not_found(f"Entity {syn(node_id)} is in trash can.")
    return row


# ---------------------------------------------------------------------------------------------
# Deciders (EntityAuthorizationUtils; synapse-api.md §2.10). Each returns the node row.


def _lack(access: str) -> SynapseError:
    return SynapseError(403, f"You lack {access} access to the requested entity.")


ANONYMOUS_READ_ONLY = "Anonymous users have only READ access permission."
CERTIFIED_ONLY = "Only certified users may create or update content in Synapse."
UNMET_REQUIREMENTS = (
    "There are unmet access requirements that must be met to read content in the requested "
    "container."
)


def can(store: Store, caller: Caller, node_id: int, access: str) -> bool:
    """True when the decider for ``access`` would allow (no exception)."""
    try:
        check(store, caller, node_id, access)
    except SynapseError:
        return False
    return True


def check(store: Store, caller: Caller, node_id: int, access: str) -> sqlite3.Row:
    if access == "DELETE":
        row = get_row(store, node_id)
        if row is None:
            not_found(f"Resource: '{syn(node_id)}' does not exist")
        if caller.admin:
            return row
        if in_trash(store, node_id):
            not_found(f"Entity {syn(node_id)} is in trash can.")
    else:
        row = require_node(store, node_id)
        if caller.admin:
            return row
    if access == "DOWNLOAD":
        # The download decider: unmet access requirements deny before anything else.
        if any(gate(store, caller, node_id) for gate in DOWNLOAD_GATES):
            forbidden(UNMET_REQUIREMENTS)
        if caller.anonymous:
            forbidden(ANONYMOUS_READ_ONLY)
        if "DOWNLOAD" not in access_types(store, caller, node_id):
            raise _lack("DOWNLOAD")
        return row
    if access == "READ":
        if "READ" not in access_types(store, caller, node_id):
            raise _lack("READ")
        return row
    if caller.anonymous:
        forbidden(ANONYMOUS_READ_ONLY)
    if access == "UPDATE" and row["type"] != "project" and not caller.certified:
        forbidden(CERTIFIED_ONLY)
    if access == "CHANGE_SETTINGS":
        if not caller.certified:
            forbidden(CERTIFIED_ONLY)
        if int(row["created_by"]) == caller.id:
            return row
    if access not in access_types(store, caller, node_id):
        raise _lack(access)
    return row


def check_create(store: Store, caller: Caller, parent_id: int, new_type: str) -> None:
    """The CREATE decider on the parent (EntityAuthorizationUtils.determineCreateAccess)."""
    row = get_row(store, parent_id)
    if row is None:
        not_found(f"Resource: '{syn(parent_id)}' does not exist")
    if in_trash(store, parent_id):
        not_found(f"Entity {syn(parent_id)} is in trash can.")
    if caller.admin:
        return
    if caller.anonymous:
        forbidden(ANONYMOUS_READ_ONLY)
    if new_type != "project" and not caller.certified:
        forbidden(CERTIFIED_ONLY)
    if "CREATE" not in access_types(store, caller, parent_id):
        raise _lack("CREATE")


def permissions_json(store: Store, caller: Caller, node_id: int) -> dict[str, Any]:
    """UserEntityPermissions of the caller on an existing, non-trashed node."""
    row = require_node(store, node_id)
    granted = access_types(store, caller, node_id)
    public_read = any(
        int(e["principalId"]) == PUBLIC and "READ" in e["accessType"]
        for e in acl_entries(store, benefactor_id(store, node_id))
    )
    is_project = row["type"] == "project"
    parent_benefactor = (
        benefactor_id(store, int(row["parent_id"])) if row["parent_id"] is not None else None
    )
    return {
        "canView": can(store, caller, node_id, "READ"),
        "canEdit": can(store, caller, node_id, "UPDATE"),
        "canMove": can(store, caller, node_id, "UPDATE")
        and can(store, caller, node_id, "CHANGE_PERMISSIONS"),
        "canAddChild": can(store, caller, node_id, "CREATE") and caller.certified,
        "canCertifiedUserEdit": "UPDATE" in granted or caller.admin,
        "canCertifiedUserAddChild": "CREATE" in granted or caller.admin,
        "isCertifiedUser": caller.certified,
        "canChangePermissions": can(store, caller, node_id, "CHANGE_PERMISSIONS"),
        "canChangeSettings": can(store, caller, node_id, "CHANGE_SETTINGS"),
        "canDelete": can(store, caller, node_id, "DELETE"),
        "canDownload": can(store, caller, node_id, "DOWNLOAD"),
        "canUpload": not caller.anonymous,
        # The "can delete ACL" chain: it does not check that the entity has its own ACL.
        "canEnableInheritance": (
            not is_project
            and parent_benefactor is not None
            and can(store, caller, node_id, "CHANGE_PERMISSIONS")
        ),
        "ownerPrincipalId": int(row["created_by"]),
        "canPublicRead": public_read,
        "canModerate": can(store, caller, node_id, "MODERATE"),
        "isCertificationRequired": True,
        "isEntityOpenData": False,
        "isDataContributor": False,
    }


# ---------------------------------------------------------------------------------------------
# JSON


def revision(store: Store, node_id: int, rev: int) -> sqlite3.Row | None:
    return store.one("SELECT * FROM revisions WHERE node_id = ? AND rev = ?", (node_id, rev))


def entity_json(store: Store, row: sqlite3.Row, rev: int | None = None) -> dict[str, Any]:
    node_type = str(row["type"])
    current = int(row["current_rev"])
    version = current if rev is None else rev
    body: dict[str, Any] = {
        "concreteType": TYPES[node_type],
        "id": syn(int(row["id"])),
        "name": row["name"],
        "description": row["description"],
        "etag": row["etag"] if version == current else ZERO_ETAG,
        "createdOn": row["created_on"],
        "modifiedOn": row["modified_on"],
        "createdBy": str(row["created_by"]),
        "modifiedBy": str(row["modified_by"]),
        "parentId": syn(int(row["parent_id"])) if row["parent_id"] is not None else None,
    }
    if node_type == "project":
        body["alias"] = row["alias"]
    if node_type == "file":
        rev_row = revision(store, int(row["id"]), version)
        if rev_row is None:
            not_found(
                f"A file entity with id {syn(int(row['id']))} and revision {version} "
                "does not exist."
            )
        body.update(
            {
                "dataFileHandleId": str(rev_row["file_handle_id"]),
                "versionNumber": version,
                "versionLabel": rev_row["label"],
                "versionComment": rev_row["comment"],
                "isLatestVersion": version == int(row["max_rev"]),
                "modifiedOn": rev_row["modified_on"],
                "modifiedBy": str(rev_row["modified_by"]),
            }
        )
    if node_type == "link":
        links = json.loads(row["links_to"] or "{}")
        body["linksTo"] = links.get("linksTo")
        body["linksToClassName"] = links.get("linksToClassName")
    return body


def header_json(
    store: Store, row: sqlite3.Row, *, benefactor: int | None = None, rev: int | None = None
) -> dict[str, Any]:
    node_id = int(row["id"])
    version = int(row["current_rev"]) if rev is None else rev
    rev_row: Any
    if rev is None and "rev_label" in row.keys():  # noqa: SIM118 - Row "in" tests values
        # The current revision's columns were joined in by the caller (children pages).
        rev_row = {
            "label": row["rev_label"],
            "modified_on": row["rev_modified_on"],
            "modified_by": row["rev_modified_by"],
        }
    else:
        rev_row = revision(store, node_id, version)
    return {
        "id": syn(node_id),
        "name": row["name"],
        "type": TYPES[str(row["type"])],
        "versionNumber": version,
        "versionLabel": rev_row["label"] if rev_row is not None else str(version),
        "isLatestVersion": version == int(row["max_rev"]),
        "benefactorId": benefactor if benefactor is not None else benefactor_id(store, node_id),
        "createdOn": row["created_on"],
        "createdBy": str(row["created_by"]),
        "modifiedOn": rev_row["modified_on"] if rev_row is not None else row["modified_on"],
        "modifiedBy": str(rev_row["modified_by"] if rev_row is not None else row["modified_by"]),
    }


def touch(store: Store, node_id: int, caller: Caller) -> str:
    """New etag + modifiedOn/By: every write to an entity, its annotations or its ACL."""
    etag = new_etag()
    store.execute(
        "UPDATE nodes SET etag = ?, modified_on = ?, modified_by = ? WHERE id = ?",
        (etag, now(), caller.id, node_id),
    )
    return etag


def file_handle_md5(store: Store, handle_id: int | None) -> str | None:
    if handle_id is None:
        return None
    value = store.scalar("SELECT content_md5 FROM file_handles WHERE id = ?", (handle_id,))
    return None if value is None else str(value)


def check_file_handle_creator(store: Store, caller: Caller, handle_id: int) -> None:
    """Only the creator of a FileHandle may attach it (admin excepted). Two spaces, sic."""
    created_by = store.scalar("SELECT created_by FROM file_handles WHERE id = ?", (handle_id,))
    if created_by is None:
        not_found(f"FileHandle: '{handle_id}' cannot be found")
    if int(created_by) != caller.id and not caller.admin:
        forbidden(
            "Only the creator of a FileHandle can access it directly by its ID.  "
            f"FileHandleId = '{handle_id}', UserId = '{caller.id}'"
        )


def require_caller_node(ctx: Ctx, node_id: int, access: str = "READ") -> sqlite3.Row:
    return check(ctx.store, ctx.caller, node_id, access)


def bad_parent_type(node_type: str, parent_type: str | None) -> None:
    parent_class = TYPES.get(parent_type, "null") if parent_type else "null"
    bad_request(f"Entity type: {TYPES[node_type]} cannot have a parent of type: {parent_class}")
