"""Entity endpoints: create/get/update/delete, versions, children, lookup, headers, path, trash."""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING, Any

from . import nodes
from .access_requirements import requirement_ids
from .nodes import TYPE_OF_CLASS, TYPES, check, check_create, entity_json, header_json
from .routing import Reply, Route
from .storage import inherited_setting, setting_is_sts
from .util import (
    ACT_GROUP,
    ROOT_ID,
    TRASH_ID,
    SynapseError,
    bad_request,
    conflict,
    forbidden,
    new_etag,
    not_found,
    now,
    page_results,
    paginate_offset,
    parse_int,
    parse_next_page_token,
    parse_syn_id,
    precondition_failed,
    syn,
    validate_entity_name,
)

if TYPE_CHECKING:
    from .app import Ctx
    from .principals import Caller
    from .store import Store

SCHEMA = ""

# Synapse's EntityType enum: the 12 values of SRS ae9a4d8 (synapse-api-2.md §5.1) plus the two
# newer ones synapseclient 4.14.0 sends by default ("recordset", a versioned file-like entity, and
# "searchindex", from its concrete type ...search.table.SearchIndex). Only the four types in
# nodes.TYPES are stored; the others are valid filters that match nothing (docs/emulator.md).
ENTITY_TYPE_ENUM = (
    "project",
    "folder",
    "file",
    "table",
    "link",
    "entityview",
    "dockerrepo",
    "submissionview",
    "dataset",
    "datasetcollection",
    "materializedview",
    "virtualtable",
    "recordset",
    "searchindex",
)


def _entity_type(body: dict[str, Any]) -> str:
    concrete = body.get("concreteType")
    if not concrete:
        bad_request("Cannot determine the entity type.  The entityType property is null")
    node_type = TYPE_OF_CLASS.get(str(concrete))
    if node_type is None:
        bad_request(
            f"Unknown entity type: {concrete}. Message: the local Synapse emulator supports "
            "Project, Folder, FileEntity and Link"
        )
    return node_type


def _check_lengths(body: dict[str, Any]) -> None:
    name = body.get("name")
    if isinstance(name, str) and len(name) > 256:
        bad_request("Name must be 256 characters or less")
    description = body.get("description")
    if isinstance(description, str) and len(description) > 1000:
        bad_request("Description must be 1000 characters or less")


def _check_alias(store: Store, alias: Any, node_id: int | None) -> str | None:
    if alias is None:
        return None
    text = str(alias)
    if not text or not all(c.isascii() and (c.isalnum() or c == "_") for c in text):
        bad_request("Aliases can only have letters (a-z and A-Z), digits (0-9) and underscores (_)")
    owner = store.scalar("SELECT id FROM nodes WHERE alias = ?", (text,))
    if owner is not None and owner != node_id:
        conflict(f"The friendly url name (alias): {text} is already taken.  Please select another.")
    return text


def _depth(store: Store, parent_id: int) -> int:
    return len(nodes.ancestors(store, parent_id))


def _check_limits(store: Store, node_type: str, parent_id: int) -> None:
    if node_type in ("file", "folder", "link") and parent_id not in (ROOT_ID, TRASH_ID):
        count = store.scalar(
            "SELECT COUNT(*) FROM nodes WHERE parent_id = ? AND type IN ('file','folder','link')",
            (parent_id,),
        )
        if int(count) >= nodes.MAX_CHILDREN:
            bad_request(
                f"Limit of {nodes.MAX_CHILDREN} children exceeded for parent: {syn(parent_id)}"
            )
    if _depth(store, parent_id) >= nodes.MAX_DEPTH:
        bad_request(
            f"Exceeded the maximum hierarchical depth of: {nodes.MAX_DEPTH} for parent: "
            f"{syn(parent_id)}"
        )


def _name_conflict(name: str, parent_text: str) -> SynapseError:
    return SynapseError(
        409, f"An entity with the name: {name} already exists with a parentId: {parent_text}"
    )


def create_node(ctx: Ctx, body: dict[str, Any]) -> int:
    """The full create rule chain (synapse-api.md §2.3), shared by POST /entity and bundle2."""
    store, caller = ctx.store, ctx.caller
    node_type = _entity_type(body)
    _check_lengths(body)
    parent_raw = body.get("parentId")
    parent_id: int | None = parse_syn_id(parent_raw) if parent_raw is not None else None
    if node_type == "project":
        if parent_id not in (None, ROOT_ID):
            parent = nodes.get_row(store, parent_id) if parent_id is not None else None
            if parent is None:
                # The parent path is resolved before the type matrix is applied.
                not_found(f"Cannot find a node with id: {parent_raw}")
            nodes.bad_parent_type(node_type, parent["type"])
        parent_id = ROOT_ID
    elif parent_id is None:
        nodes.bad_parent_type(node_type, None)
    assert parent_id is not None
    parent = nodes.get_row(store, parent_id)
    if parent is None:
        not_found(f"Cannot find a node with id: {parent_raw}")
    if node_type != "project":
        if parent_id == ROOT_ID or parent["type"] not in ("project", "folder"):
            nodes.bad_parent_type(node_type, None if parent_id == ROOT_ID else parent["type"])
    for validator in nodes.CREATE_VALIDATORS:
        validator(ctx, node_type, parent_id)
    handle_id: int | None = None
    if node_type == "file":
        if body.get("dataFileHandleId") is None:
            bad_request("FileEntity.dataFileHandleId cannot be null")
        if body.get("fileNameOverride") is not None:
            bad_request("fileNameOverride field is deprecated and should not be set.")
        handle_id = parse_int(body["dataFileHandleId"], "dataFileHandleId")
        for validator in nodes.FILE_VALIDATORS:
            validator(ctx, parent_id, handle_id)
    raw_name = body.get("name")
    new_id = store.next_id("entity")
    name = validate_entity_name(raw_name) if raw_name is not None else syn(new_id)
    if nodes.in_trash(store, parent_id) or parent_id == TRASH_ID:
        not_found(f"The given parent: {parent_raw} does not exist")
    check_create(store, caller, parent_id, node_type)
    _check_limits(store, node_type, parent_id)
    if handle_id is not None:
        nodes.check_file_handle_creator(store, caller, handle_id)
    alias = _check_alias(store, body.get("alias"), None) if node_type == "project" else None
    if store.one("SELECT 1 FROM nodes WHERE parent_id = ? AND name = ?", (parent_id, name)):
        raise _name_conflict(name, syn(parent_id))
    created = now()
    links_to = None
    if node_type == "link":
        links_to = json.dumps(
            {"linksTo": body.get("linksTo"), "linksToClassName": body.get("linksToClassName")}
        )
    store.execute(
        "INSERT INTO nodes(id, parent_id, name, type, etag, description, alias, created_on, "
        "created_by, modified_on, modified_by, links_to) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            new_id,
            parent_id,
            name,
            node_type,
            new_etag(),
            body.get("description"),
            alias,
            created,
            caller.id,
            created,
            caller.id,
            links_to,
        ),
    )
    label = body.get("versionLabel") if node_type == "file" else None
    store.execute(
        "INSERT INTO revisions(node_id, rev, label, comment, file_handle_id, modified_on, "
        "modified_by) VALUES (?, 1, ?, ?, ?, ?, ?)",
        (
            new_id,
            str(label) if label else "1",
            body.get("versionComment") if node_type == "file" else None,
            handle_id,
            created,
            caller.id,
        ),
    )
    if node_type == "project":
        store.execute(
            "INSERT INTO acls(node_id, etag, creation_date, entries) VALUES (?,?,?,?)",
            (
                new_id,
                new_etag(),
                created,
                json.dumps([{"principalId": caller.id, "accessType": nodes.ADMIN_ACCESS}]),
            ),
        )
    for hook in nodes.WRITE_HOOKS:
        hook(ctx, new_id, None)
    return new_id


def create_entity(ctx: Ctx) -> Reply:
    new_id = create_node(ctx, ctx.json_body())
    row = nodes.get_row(ctx.store, new_id)
    assert row is not None
    return Reply(201, entity_json(ctx.store, row))


def get_entity(ctx: Ctx, entity_id: str) -> dict[str, Any]:
    row = check(ctx.store, ctx.caller, parse_syn_id(entity_id), "READ")
    return entity_json(ctx.store, row)


def _new_version(store: Store, row: sqlite3.Row, caller: Caller, label: Any, comment: Any) -> int:
    node_id = int(row["id"])
    current = nodes.revision(store, node_id, int(row["current_rev"]))
    assert current is not None
    if int(row["max_rev"]) >= 15_000:
        bad_request("Exceeded the maximum number of 15000 versions for a single Entity")
    new_rev = int(row["max_rev"]) + 1
    if comment is not None and len(str(comment)) > 256:
        bad_request("Version comment length exceeds 256.")
    label_text = str(label) if label is not None else str(new_rev)
    _check_label_free(store, node_id, label_text, None)
    store.execute(
        "INSERT INTO revisions(node_id, rev, label, comment, file_handle_id, annotations, "
        "modified_on, modified_by) VALUES (?,?,?,?,?,?,?,?)",
        (
            node_id,
            new_rev,
            label_text,
            comment,
            current["file_handle_id"],
            current["annotations"],
            now(),
            caller.id,
        ),
    )
    store.execute(
        "UPDATE nodes SET current_rev = ?, max_rev = ? WHERE id = ?", (new_rev, new_rev, node_id)
    )
    return new_rev


def _check_label_free(store: Store, node_id: int, label: str, rev: int | None) -> None:
    holder = store.scalar(
        "SELECT rev FROM revisions WHERE node_id = ? AND label = ? COLLATE NOCASE", (node_id, label)
    )
    if holder is not None and holder != rev:
        bad_request(
            f"Duplicate entry '{node_id}-{label}' for key 'OWNER_NODE_ID' "
            "(versionLabel must be unique for an entity)"
        )


def update_node(ctx: Ctx, body: dict[str, Any], *, new_version: bool) -> int:
    """PUT /entity/{id} semantics (synapse-api.md §2.4); returns the node id."""
    store, caller = ctx.store, ctx.caller
    if body.get("id") is None:
        bad_request("Updated Entity cannot have a null id")
    sent_id = str(body["id"])
    node_id = parse_syn_id(sent_id)
    row = nodes.get_row(store, node_id)
    if row is None:
        not_found(f"Resource: '{syn(node_id)}' does not exist")
    if body.get("etag") is None:
        bad_request("The eTag of the node is required.")
    if body.get("parentId") is None:
        bad_request("The parent id of the node is required.")
    node_type = _entity_type(body)
    if node_type != row["type"]:
        bad_request(
            f"The Entity: {syn(node_id)} has an entityType={TYPES[row['type']]} and cannot be "
            f"changed to entityType={TYPES[node_type]}"
        )
    _check_lengths(body)
    check(store, caller, node_id, "UPDATE")
    if body["etag"] != row["etag"]:
        precondition_failed(
            f"Object: {sent_id} was updated since you last fetched it, retrieve it again and "
            "re-apply the update"
        )
    raw_name = body.get("name")
    name = validate_entity_name(raw_name) if raw_name is not None else str(row["name"])
    parent_text = str(body["parentId"])
    new_parent = parse_syn_id(parent_text)
    if row["type"] == "project":
        if new_parent != ROOT_ID:
            parent = nodes.get_row(store, new_parent)
            if parent is None:
                not_found(f"Cannot find a node with id: {parent_text}")
            nodes.bad_parent_type("project", parent["type"])
    if new_parent != row["parent_id"]:
        _move(ctx, row, new_parent)
    if name != row["name"] or new_parent != row["parent_id"]:
        clash = store.scalar(
            "SELECT id FROM nodes WHERE parent_id = ? AND name = ? AND id != ?",
            (new_parent, name, node_id),
        )
        if clash is not None:
            raise _name_conflict(name, parent_text)
    alias = row["alias"]
    if row["type"] == "project" and body.get("alias") != row["alias"]:
        if body.get("alias") is not None or row["alias"] is not None:
            check(store, caller, node_id, "CHANGE_SETTINGS")
        alias = _check_alias(store, body.get("alias"), node_id)
    store.execute(
        "UPDATE nodes SET name = ?, parent_id = ?, description = ?, alias = ? WHERE id = ?",
        (name, new_parent, body.get("description"), alias, node_id),
    )
    if row["type"] == "file":
        _update_file_revision(ctx, row, body, new_version=new_version)
    elif row["type"] == "link":
        store.execute(
            "UPDATE nodes SET links_to = ? WHERE id = ?",
            (
                json.dumps(
                    {
                        "linksTo": body.get("linksTo"),
                        "linksToClassName": body.get("linksToClassName"),
                    }
                ),
                node_id,
            ),
        )
    nodes.touch(store, node_id, caller)
    for hook in nodes.WRITE_HOOKS:
        hook(ctx, node_id, int(row["current_rev"]))
    return node_id


def _update_file_revision(
    ctx: Ctx, row: sqlite3.Row, body: dict[str, Any], *, new_version: bool
) -> None:
    store, caller = ctx.store, ctx.caller
    node_id = int(row["id"])
    if body.get("dataFileHandleId") is None:
        bad_request("FileEntity.dataFileHandleId cannot be null")
    if body.get("fileNameOverride") is not None:
        bad_request("fileNameOverride field is deprecated and should not be set.")
    new_handle = parse_int(body["dataFileHandleId"], "dataFileHandleId")
    current = nodes.revision(store, node_id, int(row["current_rev"]))
    assert current is not None
    old_handle = current["file_handle_id"]
    label, comment = body.get("versionLabel"), body.get("versionComment")
    if new_handle != old_handle:
        nodes.check_file_handle_creator(store, caller, new_handle)
    # STS placement (validateCanAddFile) runs against the *new* parent (already written by
    # update_node) whenever the file handle or the parent changes.
    parent_now = int(store.scalar("SELECT parent_id FROM nodes WHERE id = ?", (node_id,)))
    if new_handle != old_handle or parent_now != int(row["parent_id"]):
        for validator in nodes.FILE_VALIDATORS:
            validator(ctx, parent_now, new_handle)
    if new_version:
        _new_version(store, row, caller, label, comment)
    elif new_handle != old_handle:
        old_md5 = nodes.file_handle_md5(store, old_handle)
        new_md5 = nodes.file_handle_md5(store, new_handle)
        if old_md5 is None or new_md5 is None or old_md5 != new_md5:
            # Auto-versioning: a new file handle with different content makes a new version;
            # label and comment are reset (the label becomes the number).
            _new_version(store, row, caller, None, None)
    else:
        if label is not None and str(label) != current["label"]:
            _check_label_free(store, node_id, str(label), int(current["rev"]))
            store.execute(
                "UPDATE revisions SET label = ? WHERE node_id = ? AND rev = ?",
                (str(label), node_id, current["rev"]),
            )
        if comment is not None and len(str(comment)) > 256:
            bad_request("Version comment length exceeds 256.")
        store.execute(
            "UPDATE revisions SET comment = ? WHERE node_id = ? AND rev = ?",
            (comment, node_id, current["rev"]),
        )
    refreshed = nodes.get_row(store, node_id)
    assert refreshed is not None
    store.execute(
        "UPDATE revisions SET file_handle_id = ?, modified_on = ?, modified_by = ? "
        "WHERE node_id = ? AND rev = ?",
        (new_handle, now(), caller.id, node_id, refreshed["current_rev"]),
    )


def _move(ctx: Ctx, row: sqlite3.Row, new_parent: int) -> None:
    store, caller = ctx.store, ctx.caller
    node_id = int(row["id"])
    parent = nodes.get_row(store, new_parent)
    if parent is None:
        not_found(f"Cannot find a node with id: {syn(new_parent)}")
    if row["type"] != "project" and (
        new_parent == ROOT_ID or parent["type"] not in nodes.CONTAINER_TYPES
    ):
        nodes.bad_parent_type(str(row["type"]), None if new_parent == ROOT_ID else parent["type"])
    if any(a["id"] == node_id for a in nodes.ancestors(store, new_parent)):
        bad_request("Invalid hierarchy: an entity cannot be an ancestor of itself")
    try:
        check_create(store, caller, new_parent, str(row["type"]))
    except SynapseError as err:
        forbidden(f"You cannot move content into the new location, {syn(new_parent)}. {err.reason}")
    if not nodes.can(store, caller, node_id, "CHANGE_PERMISSIONS"):
        forbidden("CHANGE_PERMISSIONS is required to move to a new location")
    _check_limits(store, str(row["type"]), new_parent)
    for validator in nodes.MOVE_VALIDATORS:
        validator(ctx, row, new_parent)


def update_entity(ctx: Ctx, entity_id: str) -> dict[str, Any]:
    del entity_id  # Synapse uses the body's id, not the path's.
    new_version = str(ctx.args.get("newVersion", "false")).lower() == "true"
    node_id = update_node(ctx, ctx.json_body(), new_version=new_version)
    row = nodes.get_row(ctx.store, node_id)
    assert row is not None
    return entity_json(ctx.store, row)


def trash_node(ctx: Ctx, node_id: int) -> None:
    """Move to the trash: rename to the id, reparent, drop every ACL in the subtree."""
    store, caller = ctx.store, ctx.caller
    row = nodes.get_row(store, node_id)
    if row is None or nodes.in_trash(store, node_id):
        return
    check(store, caller, node_id, "DELETE")
    subtree = [node_id]
    index = 0
    while index < len(subtree):
        subtree.extend(
            int(r[0])
            for r in store.all("SELECT id FROM nodes WHERE parent_id = ?", (subtree[index],))
        )
        index += 1
    store.executemany("DELETE FROM acls WHERE node_id = ?", [(i,) for i in subtree])
    store.execute(
        "INSERT OR REPLACE INTO trash(node_id, name, original_parent, deleted_by, deleted_on) "
        "VALUES (?,?,?,?,?)",
        (node_id, row["name"], row["parent_id"], caller.id, now()),
    )
    store.execute(
        "UPDATE nodes SET name = ?, parent_id = ?, etag = ? WHERE id = ?",
        (syn(node_id), TRASH_ID, new_etag(), node_id),
    )


def delete_entity(ctx: Ctx, entity_id: str) -> Reply:
    trash_node(ctx, parse_syn_id(entity_id))
    return Reply(204)


# ---------------------------------------------------------------------------------------------
# Versions


def _version_number(text: str) -> int:
    return parse_int(text, "versionNumber")


def list_versions(ctx: Ctx, entity_id: str) -> dict[str, Any]:
    node_id = parse_syn_id(entity_id)
    row = check(ctx.store, ctx.caller, node_id, "READ")
    offset, limit = paginate_offset(ctx.args, default_limit=10)
    revisions = ctx.store.all(
        "SELECT * FROM revisions WHERE node_id = ? ORDER BY rev DESC LIMIT ? OFFSET ?",
        (node_id, limit, offset),
    )
    results = []
    for rev in revisions:
        handle = ctx.store.one(
            "SELECT content_size, content_md5 FROM file_handles WHERE id = ?",
            (rev["file_handle_id"],),
        )
        results.append(
            {
                "id": syn(node_id),
                "versionNumber": int(rev["rev"]),
                "versionLabel": rev["label"],
                "versionComment": rev["comment"],
                "isLatestVersion": int(rev["rev"]) == int(row["max_rev"]),
                "modifiedBy": str(rev["modified_by"]),
                "modifiedByPrincipalId": str(rev["modified_by"]),
                "modifiedOn": rev["modified_on"],
                "contentSize": str(handle["content_size"]) if handle else None,
                "contentMd5": handle["content_md5"] if handle else None,
            }
        )
    more = len(results) == limit
    return {"results": results, "totalNumberOfResults": offset + len(results) + (1 if more else 0)}


def _require_version(ctx: Ctx, node_id: int, version: int) -> sqlite3.Row:
    row = check(ctx.store, ctx.caller, node_id, "READ")
    if nodes.revision(ctx.store, node_id, version) is None:
        not_found(f"Cannot find a node with id {syn(node_id)} and version {version}")
    return row


def get_version(ctx: Ctx, entity_id: str, version: str) -> dict[str, Any]:
    node_id, number = parse_syn_id(entity_id), _version_number(version)
    row = _require_version(ctx, node_id, number)
    return entity_json(ctx.store, row, number)


def delete_version(ctx: Ctx, entity_id: str, version: str) -> Reply:
    store = ctx.store
    node_id, number = parse_syn_id(entity_id), _version_number(version)
    row = check(store, ctx.caller, node_id, "DELETE")
    if nodes.revision(store, node_id, number) is None:
        not_found(f"Cannot find a node with id {syn(node_id)} and version {number}")
    count = int(store.scalar("SELECT COUNT(*) FROM revisions WHERE node_id = ?", (node_id,)))
    if count <= 1:
        bad_request("Cannot delete the last version of a node")
    store.execute("DELETE FROM revisions WHERE node_id = ? AND rev = ?", (node_id, number))
    if number == int(row["current_rev"]):
        latest = int(store.scalar("SELECT MAX(rev) FROM revisions WHERE node_id = ?", (node_id,)))
        store.execute(
            "UPDATE nodes SET current_rev = ?, max_rev = ? WHERE id = ?", (latest, latest, node_id)
        )
    else:
        latest = int(store.scalar("SELECT MAX(rev) FROM revisions WHERE node_id = ?", (node_id,)))
        store.execute("UPDATE nodes SET max_rev = ? WHERE id = ?", (latest, node_id))
    nodes.touch(store, node_id, ctx.caller)
    return Reply(204)


# ---------------------------------------------------------------------------------------------
# Type, headers, path, permissions, access, benefactor


def get_type(ctx: Ctx, entity_id: str) -> dict[str, Any]:
    row = check(ctx.store, ctx.caller, parse_syn_id(entity_id), "READ")
    return header_json(ctx.store, row)


def get_type_batch(ctx: Ctx) -> dict[str, Any]:
    ids = [i for i in str(ctx.args.get("batch", "")).split(",") if i.strip()]
    results = []
    for raw in ids:
        try:
            row = check(ctx.store, ctx.caller, parse_syn_id(raw), "READ")
        except SynapseError:
            continue
        results.append(header_json(ctx.store, row))
    return {"results": results, "totalNumberOfResults": len(results)}


def post_headers(ctx: Ctx) -> dict[str, Any]:
    references = ctx.json_body().get("references") or []
    results = []
    for ref in references:
        try:
            node_id = parse_syn_id(ref.get("targetId"))
            row = check(ctx.store, ctx.caller, node_id, "READ")
            version = ref.get("targetVersionNumber")
            if version is not None and nodes.revision(ctx.store, node_id, int(version)) is None:
                continue
            results.append(
                header_json(ctx.store, row, rev=int(version) if version is not None else None)
            )
        except SynapseError:
            continue
    return {"results": results, "totalNumberOfResults": len(references)}


def get_path(ctx: Ctx, entity_id: str) -> dict[str, Any]:
    node_id = parse_syn_id(entity_id)
    check(ctx.store, ctx.caller, node_id, "READ")
    path = []
    for row in nodes.ancestors(ctx.store, node_id):
        readable = int(row["id"]) == ROOT_ID or nodes.can(
            ctx.store, ctx.caller, int(row["id"]), "READ"
        )
        path.append(
            {
                "id": syn(int(row["id"])),
                "name": row["name"] if readable else "Redacted",
                "type": TYPES[str(row["type"])],
            }
        )
    return {"path": path}


def get_permissions(ctx: Ctx, entity_id: str) -> dict[str, Any]:
    return nodes.permissions_json(ctx.store, ctx.caller, parse_syn_id(entity_id))


def has_access(ctx: Ctx, entity_id: str) -> dict[str, Any]:
    access = str(ctx.args.get("accessType", "READ"))
    node_id = parse_syn_id(entity_id)
    nodes.require_node(ctx.store, node_id)
    return {"result": nodes.can(ctx.store, ctx.caller, node_id, access)}


def get_benefactor(ctx: Ctx, entity_id: str) -> dict[str, Any]:
    node_id = parse_syn_id(entity_id)
    nodes.require_node(ctx.store, node_id)
    benefactor = nodes.benefactor_id(ctx.store, node_id)
    row = check(ctx.store, ctx.caller, benefactor, "READ")
    return header_json(ctx.store, row, benefactor=benefactor)


# ---------------------------------------------------------------------------------------------
# Children and lookup


SORT_COLUMNS = {"NAME": "name", "CREATED_ON": "created_on", "MODIFIED_ON": "modified_on"}
# Covering indexes of the children scan (nodes.SCHEMA); named because, without statistics,
# SQLite prefers the UNIQUE (parent_id, name) index, which lacks the type.
SORT_INDEXES = {
    "NAME": "nodes_parent_name_type",
    "CREATED_ON": "nodes_parent_created_type",
    "MODIFIED_ON": "nodes_parent_modified_type",
}


def get_children(ctx: Ctx) -> dict[str, Any]:
    store, caller = ctx.store, ctx.caller
    body = ctx.json_body()
    parent_raw = body.get("parentId")
    include_types = body.get("includeTypes")
    if parent_raw is None:
        parent_id, include_types = ROOT_ID, ["project"]
    else:
        parent_id = parse_syn_id(parent_raw)
        if include_types is None:
            bad_request("EntityChildrenRequest.includeTypes is required.")
        if not include_types:
            bad_request("EntityChildrenRequest.includeTypes must include at least one type")
        unknown = [t for t in include_types if t not in ENTITY_TYPE_ENUM]
        if unknown:
            bad_request(f"No enum constant org.sagebionetworks.repo.model.EntityType.{unknown[0]}")
        check(store, caller, parent_id, "READ")
    sort_by = str(body.get("sortBy") or "NAME")
    direction = str(body.get("sortDirection") or "ASC")
    if sort_by not in SORT_COLUMNS:
        bad_request(f"No enum constant SortBy.{sort_by}")
    if direction not in ("ASC", "DESC"):
        bad_request(f"No enum constant Direction.{direction}")
    limit, offset = parse_next_page_token(body.get("nextPageToken"))
    wanted = [t for t in include_types if t in nodes.TYPES]
    response: dict[str, Any] = {"page": []}
    if not wanted:
        if body.get("includeTotalChildCount"):
            response["totalChildCount"] = 0
        if body.get("includeSumFileSizes"):
            response["sumFileSizesBytes"] = 0
        return response
    parent_benefactor = nodes.benefactor_id(store, parent_id)
    parent_readable = caller.admin or "READ" in nodes.access_types(store, caller, parent_benefactor)
    # The page is cut in SQLite (ORDER BY + LIMIT over the (parent_id, <sort>) indexes), so its
    # cost does not grow with the container's width. A child is visible when its benefactor
    # grants READ: its own ACL when it has one (decided in SQL over the ACL's JSON entries),
    # else the parent's benefactor (decided once, above).
    groups = sorted(caller.groups)
    own_acl_readable = (
        "EXISTS (SELECT 1 FROM json_each(a.entries) e, "
        "json_each(json_extract(e.value, '$.accessType')) t "
        "WHERE t.value = 'READ' "
        "AND CAST(json_extract(e.value, '$.principalId') AS INTEGER) IN (%s))"
        % ",".join("?" * len(groups))
    )
    visible_sql = (
        "n.parent_id = ? AND n.type IN (%s) AND "
        "CASE WHEN a.node_id IS NULL THEN ? WHEN ? THEN 1 ELSE %s END"
        % (",".join("?" * len(wanted)), own_acl_readable)
    )
    params = (parent_id, *wanted, int(parent_readable), int(caller.admin), *groups)
    column = SORT_COLUMNS[sort_by]
    order = f"ORDER BY n.{column} {direction}, n.id {direction}"
    # The inner query walks only the covering (parent_id, <sort>, type) index and the ACL rows to
    # skip ``offset`` children; the full rows and their revisions are read for the page alone.
    rows = store.all(
        "SELECT n.*, (a.node_id IS NOT NULL) AS own_acl, r.label AS rev_label, "
        "r.modified_on AS rev_modified_on, r.modified_by AS rev_modified_by FROM ("
        f"SELECT n.id AS page_id FROM nodes n INDEXED BY {SORT_INDEXES[sort_by]} "
        "LEFT JOIN acls a ON a.node_id = n.id "
        f"WHERE {visible_sql} {order} LIMIT ? OFFSET ?) AS page "
        "JOIN nodes n ON n.id = page.page_id LEFT JOIN acls a ON a.node_id = n.id "
        f"LEFT JOIN revisions r ON r.node_id = n.id AND r.rev = n.current_rev {order}",
        (*params, limit + 1, offset),
    )
    response["page"] = [
        header_json(store, row, benefactor=int(row["id"]) if row["own_acl"] else parent_benefactor)
        for row in rows[:limit]
    ]
    response["nextPageToken"] = f"{limit}a{offset + limit}" if len(rows) > limit else None
    if body.get("includeTotalChildCount"):
        response["totalChildCount"] = int(
            store.scalar(
                "SELECT COUNT(*) FROM nodes n LEFT JOIN acls a ON a.node_id = n.id "
                f"WHERE {visible_sql}",
                params,
            )
        )
    if body.get("includeSumFileSizes"):
        response["sumFileSizesBytes"] = int(
            store.scalar(
                "SELECT COALESCE(SUM(f.content_size), 0) FROM nodes n "
                "LEFT JOIN acls a ON a.node_id = n.id "
                "JOIN revisions r ON r.node_id = n.id AND r.rev = n.current_rev "
                "JOIN file_handles f ON f.id = r.file_handle_id "
                f"WHERE {visible_sql} AND n.type = 'file'",
                params,
            )
        )
    return response


def lookup_child(ctx: Ctx) -> dict[str, Any]:
    store, caller = ctx.store, ctx.caller
    body = ctx.json_body()
    name = body.get("entityName")
    if name is None:
        bad_request("EntityLookupRequest.entityName is required.")
    parent_raw = body.get("parentId")
    parent_id = ROOT_ID if parent_raw is None else parse_syn_id(parent_raw)
    if parent_id != ROOT_ID and not nodes.can(store, caller, parent_id, "READ"):
        forbidden("Lack of READ permission on the parent entity.")
    child = store.scalar(
        "SELECT id FROM nodes WHERE parent_id = ? AND name = ?", (parent_id, str(name))
    )
    if child is None:
        shown = parent_raw if parent_raw is not None else str(ROOT_ID)
        not_found(f"Child not found for parent: '{shown}' with name: '{name}'")
    if not nodes.can(store, caller, int(child), "READ"):
        forbidden("Lack of READ permission on the requested entity.")
    return {"id": syn(int(child))}


# ---------------------------------------------------------------------------------------------
# Trash can


def trash_entity(ctx: Ctx, entity_id: str) -> Reply:
    """``PUT /trashcan/trash/{id}[?priorityPurge=]``: the rules of ``DELETE /entity/{id}``
    (synapse-api.md §2.5: a missing or already trashed entity is a no-op). ``priorityPurge``
    flags the row for the purge worker, which this emulator runs at once (see ``purge``)."""
    node_id = parse_syn_id(entity_id)
    trash_node(ctx, node_id)
    if ctx.args.get("priorityPurge", "").lower() == "true":
        row = ctx.store.one("SELECT deleted_by FROM trash WHERE node_id = ?", (node_id,))
        if row is not None and int(row["deleted_by"]) == ctx.caller.id:
            _purge_subtree(ctx.store, node_id)
    return Reply(200)


def _restorable_row(ctx: Ctx, node_id: int) -> sqlite3.Row:
    """Restore's first two rules (synapse-api-2.md §3.1): in the trash, deleted by the caller."""
    row = ctx.store.one("SELECT * FROM trash WHERE node_id = ?", (node_id,))
    if row is None:
        not_found(f"The node {syn(node_id)} is not in the trash can.")
    if int(row["deleted_by"]) != ctx.caller.id and not ctx.caller.admin:
        forbidden(
            f"User {ctx.caller.id} not allowed to restore {syn(node_id)}. The node was deleted "
            "by a different user."
        )
    return row


def restore(ctx: Ctx, entity_id: str, parent: str | None = None) -> Reply:
    """``PUT /trashcan/restore/{id}[/{parentId}]``, in TrashManagerImpl's order (§3.1)."""
    store, caller = ctx.store, ctx.caller
    node_id = parse_syn_id(entity_id)
    trashed = _restorable_row(ctx, node_id)
    original = int(trashed["original_parent"])
    parent_id = parse_syn_id(parent) if parent else original
    if nodes.get_row(store, parent_id) is None or nodes.in_trash(store, parent_id):
        forbidden(
            f"The intended parent {syn(parent_id)} is in the trash can and cannot be restored to."
        )
    node = nodes.get_row(store, node_id)
    assert node is not None
    # Synapse asks the create decider with no entity type, so an uncertified user is refused
    # even when the entity is a project ("" is never "project" below).
    check_create(store, caller, parent_id, "")
    if not (caller.admin or ACT_GROUP in caller.groups or parent_id == original):
        lost = set(requirement_ids(store, "ENTITY", original)) - set(
            requirement_ids(store, "ENTITY", parent_id)
        )
        if lost:
            forbidden(
                "Cannot move restricted entity to a location having fewer access restrictions."
            )
    if parent_id == ROOT_ID and node["type"] != "project":
        bad_request("Ony projects can be restored to root")  # sic, Synapse's text
    if (
        parent_id != original
        and node["type"] in ("file", "folder")
        and setting_is_sts(store, inherited_setting(store, parent_id))
    ):
        bad_request(
            "Entities can be restored to STS-enabled folders only if that were its original parent"
        )
    if store.one(
        "SELECT 1 FROM nodes WHERE parent_id = ? AND name = ?", (parent_id, trashed["name"])
    ):
        raise _name_conflict(str(trashed["name"]), syn(parent_id))
    store.execute(
        "UPDATE nodes SET name = ?, parent_id = ?, etag = ? WHERE id = ?",
        (trashed["name"], parent_id, new_etag(), node_id),
    )
    if parent_id == ROOT_ID:
        # The subtree's ACLs went at trash time; a project back at the root gets the
        # restoring user's project-admin ACL (anything else inherits from its new parent).
        store.execute(
            "INSERT OR IGNORE INTO acls(node_id, etag, creation_date, entries) VALUES (?,?,?,?)",
            (
                node_id,
                new_etag(),
                now(),
                json.dumps([{"principalId": ctx.caller.id, "accessType": nodes.ADMIN_ACCESS}]),
            ),
        )
    store.execute("DELETE FROM trash WHERE node_id = ?", (node_id,))
    return Reply(200)


def view_trash(ctx: Ctx) -> dict[str, Any]:
    """Only the caller's rows, newest first; Synapse's own paging checks (limit 0 allowed)."""
    offset = parse_int(ctx.args.get("offset", 0), "offset")
    limit = parse_int(ctx.args.get("limit", 10), "limit")
    if offset < 0:
        bad_request("pagination offset must be 0 or greater")
    if limit < 0:
        bad_request("pagination limit must be 0 or greater")
    rows = ctx.store.all(
        "SELECT t.*, n.type FROM trash t JOIN nodes n ON n.id = t.node_id "
        "WHERE t.deleted_by = ? ORDER BY t.deleted_on DESC, t.rowid DESC",
        (ctx.caller.id,),
    )
    items = [
        {
            "entityId": syn(int(r["node_id"])),
            "entityName": r["name"],
            "entityType": r["type"],
            "deletedByPrincipalId": str(r["deleted_by"]),
            "deletedOn": r["deleted_on"],
            "originalParentId": syn(int(r["original_parent"])),
        }
        for r in rows
    ]
    return page_results(items, offset, limit)


def purge(ctx: Ctx, entity_id: str) -> Reply:
    """``PUT /trashcan/purge/{id}``: Synapse flags the row and a worker deletes the tree later;
    here the worker runs at once (docs/emulator.md). Not in the trash → 200, nothing done."""
    node_id = parse_syn_id(entity_id)
    row = ctx.store.one("SELECT deleted_by FROM trash WHERE node_id = ?", (node_id,))
    if row is None:
        return Reply(200)
    if int(row["deleted_by"]) != ctx.caller.id and not ctx.caller.admin:
        forbidden(f"Insufficient permissions for user {ctx.caller.id}")
    _purge_subtree(ctx.store, node_id)
    return Reply(200)


def _purge_subtree(store: Store, node_id: int) -> None:
    subtree = [node_id]
    index = 0
    while index < len(subtree):
        subtree.extend(
            int(r[0])
            for r in store.all("SELECT id FROM nodes WHERE parent_id = ?", (subtree[index],))
        )
        index += 1
    for table, column in (
        ("nodes", "id"),
        ("revisions", "node_id"),
        ("acls", "node_id"),
        ("trash", "node_id"),
    ):
        store.executemany(f"DELETE FROM {table} WHERE {column} = ?", [(i,) for i in subtree])


ROUTES = [
    Route("POST", "/repo/v1/entity", create_entity),
    Route("GET", "/repo/v1/entity/type", get_type_batch),
    Route("POST", "/repo/v1/entity/header", post_headers),
    Route("POST", "/repo/v1/entity/children", get_children),
    Route("POST", "/repo/v1/entity/child", lookup_child),
    Route("GET", "/repo/v1/entity/<entity_id>", get_entity),
    Route("PUT", "/repo/v1/entity/<entity_id>", update_entity),
    Route("DELETE", "/repo/v1/entity/<entity_id>", delete_entity),
    Route("GET", "/repo/v1/entity/<entity_id>/version", list_versions),
    Route("GET", "/repo/v1/entity/<entity_id>/version/<version>", get_version),
    Route("DELETE", "/repo/v1/entity/<entity_id>/version/<version>", delete_version),
    Route("GET", "/repo/v1/entity/<entity_id>/type", get_type),
    Route("GET", "/repo/v1/entity/<entity_id>/path", get_path),
    Route("GET", "/repo/v1/entity/<entity_id>/permissions", get_permissions),
    Route("GET", "/repo/v1/entity/<entity_id>/access", has_access),
    Route("GET", "/repo/v1/entity/<entity_id>/benefactor", get_benefactor),
    Route("PUT", "/repo/v1/trashcan/trash/<entity_id>", trash_entity),
    Route("PUT", "/repo/v1/trashcan/restore/<entity_id>", restore),
    Route("PUT", "/repo/v1/trashcan/restore/<entity_id>/<parent>", restore),
    Route("GET", "/repo/v1/trashcan/view", view_trash),
    Route("PUT", "/repo/v1/trashcan/purge/<entity_id>", purge),
]
