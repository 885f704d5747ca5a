"""Entity ACLs: create (override inheritance), get, update, delete (restore inheritance)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from . import nodes
from .routing import Reply, Route
from .util import (
    ANONYMOUS,
    AUTHENTICATED_USERS,
    PUBLIC,
    SynapseError,
    bad_request,
    forbidden,
    new_etag,
    not_found,
    now,
    parse_syn_id,
    precondition_failed,
    syn,
)

if TYPE_CHECKING:
    from .app import Ctx
    from .store import Store

SCHEMA = ""

ALLOWED_ENTITY_ACCESS = {
    "CREATE",
    "DOWNLOAD",
    "READ",
    "CHANGE_PERMISSIONS",
    "CHANGE_SETTINGS",
    "DELETE",
    "MODERATE",
    "UPDATE",
    "SEND_MESSAGE",
    "TEAM_MEMBERSHIP_UPDATE",
    "DELETE_SUBMISSION",
    "PARTICIPATE",
    "READ_PRIVATE_SUBMISSION",
    "SUBMIT",
    "UPDATE_SUBMISSION",
    "UPLOAD",
}
ALL_ACCESS_TYPES = ALLOWED_ENTITY_ACCESS | {"REVIEW_SUBMISSIONS", "EXEMPTION_ELIGIBLE"}


def acl_json(store: Store, node_id: int) -> dict[str, Any]:
    row = store.one("SELECT * FROM acls WHERE node_id = ?", (node_id,))
    assert row is not None
    return {
        "id": syn(node_id),
        "etag": row["etag"],
        "creationDate": row["creation_date"],
        "resourceAccess": json.loads(row["entries"]),
    }


def validate_content(ctx: Ctx, node_id: int, resource_access: Any) -> list[dict[str, Any]]:
    """PermissionsManagerUtils.validateACLContent (synapse-api.md §4.3)."""
    if resource_access is None:
        resource_access = []
    if not isinstance(resource_access, list):
        bad_request("resourceAccess must be a list")
    merged: dict[int, set[str]] = {}
    for entry in resource_access:
        if entry is None:
            bad_request("ACL row is null.")
        if entry.get("principalId") is None:
            bad_request("Group ID is null")
        access = entry.get("accessType")
        if not access:
            bad_request("No access types specified.")
        principal = int(entry["principalId"])
        for access_type in access:
            if access_type not in ALL_ACCESS_TYPES:
                bad_request(
                    f"No enum constant org.sagebionetworks.repo.model.ACCESS_TYPE.{access_type}"
                )
            if access_type not in ALLOWED_ENTITY_ACCESS:
                bad_request(f"The access type {access_type} is not allowed for ENTITY.")
        if principal == ANONYMOUS:
            bad_request(
                "Cannot assign permissions to anonymous. To share resources with anonymous "
                "users, use the PUBLIC group id (273949)"
            )
        if principal == PUBLIC and set(access) - {"READ"}:
            bad_request("Only READ permissions can be assigned to the public group")
        if principal == AUTHENTICATED_USERS and "DOWNLOAD" in access and not ctx.caller.certified:
            raise SynapseError(
                403,
                "Only certified users can allow authenticated users to download.",
                error_code="USER_CERTIFICATION_REQUIRED",
            )
        if ctx.store.one("SELECT 1 FROM principals WHERE id = ?", (principal,)) is None:
            # Synapse wraps the foreign-key failure; the exact text is not in its code.
            bad_request(f"Principal ID {principal} does not exist (foreign key USER_GROUP)")
        merged.setdefault(principal, set()).update(access)
    caller = ctx.caller
    node = nodes.get_row(ctx.store, node_id)
    assert node is not None
    if not caller.admin and int(node["created_by"]) != caller.id:
        keeps = any(
            principal in caller.groups and "CHANGE_PERMISSIONS" in access
            for principal, access in merged.items()
        )
        if not keeps:
            bad_request("Caller is trying to revoke their own ACL editing permissions.")
    return [
        {"principalId": principal, "accessType": sorted(access)}
        for principal, access in merged.items()
    ]


def create_acl_for(ctx: Ctx, node_id: int, body: dict[str, Any]) -> None:
    store = ctx.store
    nodes.require_node(store, node_id)
    if store.one("SELECT 1 FROM acls WHERE node_id = ?", (node_id,)):
        forbidden("Resource already has an ACL.")
    nodes.check(store, ctx.caller, nodes.benefactor_id(store, node_id), "CHANGE_PERMISSIONS")
    for validator in nodes.ACL_OVERRIDE_VALIDATORS:
        validator(ctx, node_id)
    entries = validate_content(ctx, node_id, body.get("resourceAccess"))
    store.execute(
        "INSERT INTO acls(node_id, etag, creation_date, entries) VALUES (?,?,?,?)",
        (node_id, new_etag(), body.get("creationDate") or now(), json.dumps(entries)),
    )
    nodes.touch(store, node_id, ctx.caller)


def update_acl_for(ctx: Ctx, node_id: int, body: dict[str, Any]) -> None:
    store = ctx.store
    nodes.require_node(store, node_id)
    row = store.one("SELECT * FROM acls WHERE node_id = ?", (node_id,))
    if row is None:
        forbidden("Cannot update ACL for a resource which inherits its permissions.")
    nodes.check(store, ctx.caller, node_id, "CHANGE_PERMISSIONS")
    if not body.get("etag"):
        bad_request("acl.etag is required.")
    if body["etag"] != row["etag"]:
        precondition_failed("E-tags do not match.")
    entries = validate_content(ctx, node_id, body.get("resourceAccess"))
    store.execute(
        "UPDATE acls SET etag = ?, entries = ? WHERE node_id = ?",
        (new_etag(), json.dumps(entries), node_id),
    )
    nodes.touch(store, node_id, ctx.caller)


def get_acl(ctx: Ctx, entity_id: str) -> dict[str, Any]:
    store = ctx.store
    node_id = parse_syn_id(entity_id)
    if nodes.get_row(store, node_id) is None:
        not_found(f"Benefactor not found for: {syn(node_id)}")
    benefactor = nodes.benefactor_id(store, node_id)
    if benefactor != node_id:
        not_found(
            "The requested ACL does not exist. This entity inherits its permissions from: "
            f"{ctx.emulator.repo_endpoint}/entity/{syn(benefactor)}/acl"
        )
    return acl_json(store, node_id)


def create_acl(ctx: Ctx, entity_id: str) -> Reply:
    # The body's id/etag are ignored: synapseclient POSTs the benefactor's ACL body here.
    node_id = parse_syn_id(entity_id)
    create_acl_for(ctx, node_id, ctx.json_body())
    return Reply(201, acl_json(ctx.store, node_id))


def update_acl(ctx: Ctx, entity_id: str) -> dict[str, Any]:
    body = ctx.json_body()
    node_id = parse_syn_id(entity_id)
    if body.get("id") is not None and parse_syn_id(body["id"]) != node_id:
        bad_request(f"The path ID: {entity_id} does not match the ACL's ID: {body['id']}")
    update_acl_for(ctx, node_id, body)
    return acl_json(ctx.store, node_id)


def delete_acl(ctx: Ctx, entity_id: str) -> Reply:
    # EntityAclManagerImpl.restoreInheritance: benefactor, CHANGE_PERMISSIONS, own ACL, parent.
    store = ctx.store
    node_id = parse_syn_id(entity_id)
    if nodes.get_row(store, node_id) is None:
        not_found(f"Benefactor not found for: {syn(node_id)}")
    row = nodes.check(store, ctx.caller, node_id, "CHANGE_PERMISSIONS")
    if store.one("SELECT 1 FROM acls WHERE node_id = ?", (node_id,)) is None:
        forbidden("Resource already inherits its permissions.")
    if row["type"] == "project":
        forbidden("Cannot restore inheritance for resource which has no parent.")
    store.execute("DELETE FROM acls WHERE node_id = ?", (node_id,))
    nodes.touch(store, node_id, ctx.caller)
    return Reply(204)


ROUTES = [
    Route("GET", "/repo/v1/entity/<entity_id>/acl", get_acl),
    Route("POST", "/repo/v1/entity/<entity_id>/acl", create_acl),
    Route("PUT", "/repo/v1/entity/<entity_id>/acl", update_acl),
    Route("DELETE", "/repo/v1/entity/<entity_id>/acl", delete_acl),
]
