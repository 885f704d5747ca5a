"""Minimal provenance: activities and the ``generatedBy`` link of entity versions
(synapse-api-2.md §6.6; SRS ActivityController, ActivityManagerImpl, EntityController,
NodeManagerImpl.canConnectToActivity).

An activity is readable by an admin, its creator, or anyone who can READ an entity version it
generated; only its creator (or an admin) may change or delete it. The link lives on the
revision: ``PUT /entity/{id}/generatedBy`` and ``?generatedBy=`` on entity and bundle writes set
the current revision's activity (``-1`` clears it), a new version starts without an activity
unless the write names one, and every link change is an entity write (new etag).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from . import nodes
from .routing import Reply, Route
from .util import (
    SynapseError,
    bad_request,
    forbidden,
    new_etag,
    not_found,
    now,
    paginate_offset,
    parse_int,
    parse_syn_id,
    precondition_failed,
    syn,
)

if TYPE_CHECKING:
    import sqlite3

    from .app import Ctx
    from .principals import Caller
    from .store import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS activities (
    id INTEGER PRIMARY KEY,
    name TEXT,
    description TEXT,
    used TEXT,                       -- JSON list of UsedEntity / UsedURL, as sent
    etag TEXT NOT NULL,
    created_on TEXT NOT NULL,
    created_by INTEGER NOT NULL,
    modified_on TEXT NOT NULL,
    modified_by INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS generated_by (
    node_id INTEGER NOT NULL,
    rev INTEGER NOT NULL,
    activity_id INTEGER NOT NULL,
    PRIMARY KEY (node_id, rev)
);
CREATE INDEX IF NOT EXISTS generated_by_activity ON generated_by(activity_id, node_id, rev);
INSERT OR IGNORE INTO counters(name, value) VALUES ('activity', 9600000);
"""

# NodeDAO.DELETE_ACTIVITY_VALUE: ?generatedBy=-1 removes the link.
DELETE_ACTIVITY_VALUE = -1


def activity_json(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "description": row["description"],
        "used": json.loads(row["used"]) if row["used"] else None,
        "etag": row["etag"],
        "createdOn": row["created_on"],
        "createdBy": str(row["created_by"]),
        "modifiedOn": row["modified_on"],
        "modifiedBy": str(row["modified_by"]),
    }


def _row(store: Store, activity_id: int) -> sqlite3.Row | None:
    return store.one("SELECT * FROM activities WHERE id = ?", (activity_id,))


def _activity_id(text: str) -> int:
    """The id as MySQL compares it with a BIGINT column: text that is not a number matches no
    activity (404 with the text as sent), as on Synapse."""
    value = str(text).strip()
    if not value.isdigit():
        not_found(f"Activity with id '{text}' could not be found.")
    return int(value)


def can_read(store: Store, caller: Caller, row: sqlite3.Row) -> bool:
    if caller.admin or int(row["created_by"]) == caller.id:
        return True
    generated = store.all(
        "SELECT DISTINCT node_id FROM generated_by WHERE activity_id = ?", (row["id"],)
    )
    return any(nodes.can(store, caller, int(g["node_id"]), "READ") for g in generated)


def _lacks_permission(activity_id: int) -> None:
    forbidden(f"User lacks permission to access Activity {activity_id}")


def _readable(ctx: Ctx, activity_id: int) -> sqlite3.Row:
    row = _row(ctx.store, activity_id)
    if row is None:
        not_found(f"Activity with id '{activity_id}' could not be found.")
    if not can_read(ctx.store, ctx.caller, row):
        _lacks_permission(activity_id)
    return row


USED_ENTITY = "org.sagebionetworks.repo.model.provenance.UsedEntity"
USED_URL = "org.sagebionetworks.repo.model.provenance.UsedURL"
# java.net.URL knows these protocols; any other makes `new URL(...)` throw.
URL_PROTOCOLS = ("http", "https", "ftp", "file", "jar", "mailto")


def _used(store: Store, body: dict[str, Any]) -> str | None:
    """ActivityServiceImpl.verifyUsedEntries: a UsedEntity without a version gets the target's
    current version; a UsedURL must parse as a URL."""
    used = body.get("used")
    if used is None:
        return None
    if not isinstance(used, list):
        bad_request("Activity.used must be a list")
    for item in used:
        if not isinstance(item, dict):
            continue
        if item.get("concreteType") == USED_URL:
            url = str(item.get("url"))
            if urlsplit(url).scheme.lower() not in URL_PROTOCOLS:
                bad_request(f"UsedURL url field is malformed: {url}")
            continue
        reference = item.get("reference")
        if not isinstance(reference, dict) or reference.get("targetId") is None:
            continue
        if reference.get("targetVersionNumber") is None:
            try:
                target = parse_syn_id(reference["targetId"])
            except SynapseError:
                continue
            current = store.scalar("SELECT current_rev FROM nodes WHERE id = ?", (target,))
            if current is not None:
                reference["targetVersionNumber"] = int(current)
    return json.dumps(used)


# ---------------------------------------------------------------------------------------------
# /activity


def create_activity(ctx: Ctx) -> Reply:
    if ctx.caller.anonymous:
        forbidden("Cannot create activity with anonymous user.")
    body = ctx.json_body()
    store = ctx.store
    activity_id = store.next_id("activity")  # any id in the body is ignored
    created = now()
    store.execute(
        "INSERT INTO activities(id, name, description, used, etag, created_on, created_by, "
        "modified_on, modified_by) VALUES (?,?,?,?,?,?,?,?,?)",
        (
            activity_id,
            body.get("name"),
            body.get("description"),
            _used(store, body),
            new_etag(),
            created,
            ctx.caller.id,
            created,
            ctx.caller.id,
        ),
    )
    row = _row(store, activity_id)
    assert row is not None
    return Reply(201, activity_json(row))


def get_activity(ctx: Ctx, activity_id: str) -> dict[str, Any]:
    return activity_json(_readable(ctx, _activity_id(activity_id)))


def update_activity(ctx: Ctx, activity_id: str) -> dict[str, Any]:
    del activity_id  # Synapse uses the body's id; the path's is not compared.
    store, caller = ctx.store, ctx.caller
    body = ctx.json_body()
    if body.get("id") is None:
        bad_request("Activity id cannot be null")
    number = _activity_id(str(body["id"]))
    row = _row(store, number)
    if row is None:
        not_found(f"Activity with id '{number}' could not be found.")
    if not caller.admin and int(row["created_by"]) != caller.id:
        forbidden(f"{caller.id} lacks change access to the requested object.")
    if body.get("etag") != row["etag"]:
        precondition_failed(
            f"Node: {number} was updated since you last fetched it, retrieve it again and "
            "reapply the update"
        )
    store.execute(
        "UPDATE activities SET name = ?, description = ?, used = ?, etag = ?, modified_on = ?, "
        "modified_by = ? WHERE id = ?",
        (
            body.get("name"),
            body.get("description"),
            _used(store, body),
            new_etag(),
            now(),
            caller.id,
            number,
        ),
    )
    updated = _row(store, number)
    assert updated is not None
    return activity_json(updated)


def delete_activity(ctx: Ctx, activity_id: str) -> Reply:
    store, caller = ctx.store, ctx.caller
    number = _activity_id(activity_id)
    row = _row(store, number)
    if row is None:
        return Reply(204)
    if not caller.admin and int(row["created_by"]) != caller.id:
        forbidden(f"{caller.id} lacks change access to the requested object.")
    store.execute("DELETE FROM generated_by WHERE activity_id = ?", (number,))
    store.execute("DELETE FROM activities WHERE id = ?", (number,))
    return Reply(204)


def generated(ctx: Ctx, activity_id: str) -> dict[str, Any]:
    row = _readable(ctx, _activity_id(activity_id))
    offset, limit = paginate_offset(ctx.args, default_limit=10)
    refs = ctx.store.all(
        "SELECT node_id, rev FROM generated_by WHERE activity_id = ? ORDER BY node_id, rev "
        "LIMIT ? OFFSET ?",
        (row["id"], limit, offset),
    )
    results = [
        {"targetId": syn(int(r["node_id"])), "targetVersionNumber": int(r["rev"])} for r in refs
    ]
    more = len(results) == limit
    return {"results": results, "totalNumberOfResults": offset + len(results) + (1 if more else 0)}


# ---------------------------------------------------------------------------------------------
# Entity links


def _connectable(ctx: Ctx, raw: object) -> int:
    """canConnectToActivity: the activity exists and the caller may read it."""
    number = parse_int(raw, "generatedBy")
    row = _row(ctx.store, number)
    if row is None:
        not_found(f"Activity id {number} not found.")
    if not can_read(ctx.store, ctx.caller, row):
        _lacks_permission(number)
    return number


def _link(store: Store, node_id: int, rev: int, activity_id: int | None) -> None:
    if activity_id is None:
        store.execute("DELETE FROM generated_by WHERE node_id = ? AND rev = ?", (node_id, rev))
    else:
        store.execute(
            "INSERT OR REPLACE INTO generated_by(node_id, rev, activity_id) VALUES (?,?,?)",
            (node_id, rev, activity_id),
        )


def activity_of(store: Store, node_id: int, rev: int) -> int | None:
    value = store.scalar(
        "SELECT activity_id FROM generated_by WHERE node_id = ? AND rev = ?", (node_id, rev)
    )
    return None if value is None else int(value)


def on_entity_write(ctx: Ctx, node_id: int, previous_rev: int | None) -> None:
    """?generatedBy= on entity and bundle writes; a new version has only the link it is given."""
    store = ctx.store
    current = int(store.scalar("SELECT current_rev FROM nodes WHERE id = ?", (node_id,)))
    raw = ctx.args.get("generatedBy")
    if raw is not None and str(raw).strip() != "":
        number = parse_int(raw, "generatedBy")
        target = None if number == DELETE_ACTIVITY_VALUE else _connectable(ctx, number)
        _link(store, node_id, current, target)
    elif previous_rev is None or current != previous_rev:
        # A new revision starts without an activity unless the write names one (NodeManagerImpl
        # passes the request's activity id, null when absent, to the new revision); clearing also
        # drops a stale link when a deleted version's number is reused.
        _link(store, node_id, current, None)


def _entity_activity(ctx: Ctx, node_id: int, rev: int | None) -> dict[str, Any]:
    store = ctx.store
    row = nodes.check(store, ctx.caller, node_id, "READ")
    number = int(row["current_rev"]) if rev is None else rev
    if nodes.revision(store, node_id, number) is None:
        not_found(f"Cannot find a node with id {syn(node_id)} and version {number}")
    activity_id = activity_of(store, node_id, number)
    activity = _row(store, activity_id) if activity_id is not None else None
    if activity is None:
        not_found("No activity")
    return activity_json(activity)


def get_generated_by(ctx: Ctx, entity_id: str) -> dict[str, Any]:
    return _entity_activity(ctx, parse_syn_id(entity_id), None)


def get_version_generated_by(ctx: Ctx, entity_id: str, version: str) -> dict[str, Any]:
    return _entity_activity(ctx, parse_syn_id(entity_id), parse_int(version, "versionNumber"))


def set_generated_by(ctx: Ctx, entity_id: str) -> dict[str, Any]:
    store = ctx.store
    node_id = parse_syn_id(entity_id)
    row = nodes.check(store, ctx.caller, node_id, "UPDATE")
    raw = ctx.args.get("generatedBy")
    if raw is None:
        bad_request(
            "Required request parameter 'generatedBy' for method parameter type String is not "
            "present"
        )
    activity_id = _connectable(ctx, raw)
    _link(store, node_id, int(row["current_rev"]), activity_id)
    nodes.touch(store, node_id, ctx.caller)
    activity = _row(store, activity_id)
    assert activity is not None
    return activity_json(activity)


def delete_generated_by(ctx: Ctx, entity_id: str) -> Reply:
    store = ctx.store
    node_id = parse_syn_id(entity_id)
    row = nodes.check(store, ctx.caller, node_id, "UPDATE")
    _link(store, node_id, int(row["current_rev"]), None)
    nodes.touch(store, node_id, ctx.caller)
    return Reply(204)


def _register() -> None:
    # Idempotent: a re-imported module must not add its hook twice.
    key = (on_entity_write.__module__, on_entity_write.__qualname__)
    if all((h.__module__, h.__qualname__) != key for h in nodes.WRITE_HOOKS):
        nodes.WRITE_HOOKS.append(on_entity_write)


_register()

ROUTES = [
    Route("POST", "/repo/v1/activity", create_activity),
    Route("GET", "/repo/v1/activity/<activity_id>", get_activity),
    Route("PUT", "/repo/v1/activity/<activity_id>", update_activity),
    Route("DELETE", "/repo/v1/activity/<activity_id>", delete_activity),
    Route("GET", "/repo/v1/activity/<activity_id>/generated", generated),
    Route("GET", "/repo/v1/entity/<entity_id>/generatedBy", get_generated_by),
    Route(
        "GET", "/repo/v1/entity/<entity_id>/version/<version>/generatedBy", get_version_generated_by
    ),
    Route("PUT", "/repo/v1/entity/<entity_id>/generatedBy", set_generated_by),
    Route("DELETE", "/repo/v1/entity/<entity_id>/generatedBy", delete_generated_by),
]
