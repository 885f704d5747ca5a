"""Entity bundle v2: read with flags, create and update (synapse-api.md §2.9)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import access_requirements, acl, entities, filehandles, nodes, wikis
from . import annotations as annotations_v2
from .routing import Reply, Route
from .util import bad_request, not_found, parse_int, parse_syn_id, syn

if TYPE_CHECKING:
    from .app import Ctx

SCHEMA = ""


def build_bundle(
    ctx: Ctx, node_id: int, flags: dict[str, Any], rev: int | None = None
) -> dict[str, Any]:
    store, caller = ctx.store, ctx.caller
    row = nodes.check(store, caller, node_id, "READ")
    if rev is not None and nodes.revision(store, node_id, rev) is None:
        not_found(f"Cannot find a node with id {syn(node_id)} and version {rev}")
    version = int(row["current_rev"]) if rev is None else rev
    bundle: dict[str, Any] = {}
    if flags.get("includeEntity"):
        bundle["entity"] = nodes.entity_json(store, row, rev)
        bundle["entityType"] = row["type"]
    if flags.get("includeAnnotations"):
        bundle["annotations"] = annotations_v2.annotations_json(store, node_id, rev)
    if flags.get("includePermissions"):
        bundle["permissions"] = nodes.permissions_json(store, caller, node_id)
    if flags.get("includeEntityPath"):
        bundle["path"] = entities.get_path(ctx, syn(node_id))
    if flags.get("includeHasChildren"):
        bundle["hasChildren"] = (
            store.one("SELECT 1 FROM nodes WHERE parent_id = ? LIMIT 1", (node_id,)) is not None
        )
    benefactor = nodes.benefactor_id(store, node_id)
    if flags.get("includeAccessControlList") and benefactor == node_id:
        bundle["accessControlList"] = acl.acl_json(store, node_id)
    if flags.get("includeBenefactorACL"):
        bundle["benefactorAcl"] = acl.acl_json(store, benefactor)
    handle = None
    if row["type"] == "file":
        rev_row = nodes.revision(store, node_id, version)
        handle = filehandles.get_handle(store, rev_row["file_handle_id"] if rev_row else None)
    if flags.get("includeFileHandles"):
        handles: list[dict[str, Any]] = []
        if handle is not None and nodes.can(store, caller, node_id, "DOWNLOAD"):
            handles.append(filehandles.file_handle_json(handle))
            preview = handle["preview_id"]
            if preview is not None and preview != handle["id"]:
                preview_row = filehandles.get_handle(store, int(preview))
                if preview_row is not None:
                    handles.append(filehandles.file_handle_json(preview_row))
        bundle["fileHandles"] = handles
    if flags.get("includeRootWikiId"):
        root = wikis.root_wiki_id(store, node_id)
        bundle["rootWikiId"] = str(root) if root is not None else None
    if flags.get("includeFileName") and handle is not None:
        bundle["fileName"] = handle["file_name"]
    if flags.get("includeThreadCount"):
        bundle["threadCount"] = 0
    if flags.get("includeRestrictionInformation"):
        bundle["restrictionInformation"] = access_requirements.restriction_information(
            store, caller, "ENTITY", node_id
        )
    return bundle


def get_bundle(ctx: Ctx, entity_id: str) -> dict[str, Any]:
    return build_bundle(ctx, parse_syn_id(entity_id), ctx.body or {})


def get_version_bundle(ctx: Ctx, entity_id: str, version: str) -> dict[str, Any]:
    return build_bundle(
        ctx, parse_syn_id(entity_id), ctx.body or {}, parse_int(version, "versionNumber")
    )


def _apply_acl(ctx: Ctx, node_id: int, body: Any) -> None:
    """EntityServiceImpl.createOrUpdateEntityACL: update (body etag checked) if the entity
    has its own ACL, else create (override inheritance)."""
    if not isinstance(body, dict):
        bad_request("accessControlList must be an AccessControlList object")
    own = ctx.store.one("SELECT etag FROM acls WHERE node_id = ?", (node_id,))
    if own is None:
        acl.create_acl_for(ctx, node_id, body)
    else:
        acl.update_acl_for(ctx, node_id, body)


def _merge_annotations(ctx: Ctx, node_id: int, body: dict[str, Any]) -> None:
    """The entity's current annotations with the given keys put over them (putAll)."""
    store = ctx.store
    row = nodes.check(store, ctx.caller, node_id, "UPDATE")
    incoming = annotations_v2.validate(body.get("annotations"))
    rev = int(row["current_rev"])
    merged = {**annotations_v2.read(store, node_id, rev), **incoming}
    annotations_v2.validate(merged)
    annotations_v2.write(store, node_id, rev, merged)
    nodes.touch(store, node_id, ctx.caller)


def _result(ctx: Ctx, node_id: int, body: dict[str, Any]) -> dict[str, Any]:
    return build_bundle(
        ctx,
        node_id,
        {
            "includeEntity": body.get("entity") is not None,
            "includeAnnotations": body.get("annotations") is not None,
            "includeAccessControlList": body.get("accessControlList") is not None,
        },
    )


def _annotations_part(body: dict[str, Any]) -> dict[str, Any] | None:
    annos = body.get("annotations")
    if annos is None:
        return None
    if not isinstance(annos, dict):
        bad_request("annotations must be an Annotations object")
    return annos


def create_bundle(ctx: Ctx) -> Reply:
    """EntityBundleServiceImpl.createEntityBundle: entity, then ACL, then annotations."""
    body = ctx.json_body()
    entity = body.get("entity")
    if not isinstance(entity, dict):
        bad_request("entityBundleCreate.entity is required.")
    annos = _annotations_part(body)
    if annos is not None and annos.get("annotations") is None:
        bad_request("entityBundleCreate.annotations.annotations is required.")
    node_id = entities.create_node(ctx, entity)
    if body.get("accessControlList") is not None:
        _apply_acl(ctx, node_id, body["accessControlList"])
    if annos is not None:
        _merge_annotations(ctx, node_id, annos)
    return Reply(201, _result(ctx, node_id, {**body, "entity": entity}))


def update_bundle(ctx: Ctx, entity_id: str) -> dict[str, Any]:
    """EntityBundleServiceImpl.updateEntityBundle: entity (never a new version), ACL
    create-or-update, annotations merged; each part must name the path's entity."""
    body = ctx.json_body()
    node_id = parse_syn_id(entity_id)
    entity = body.get("entity")
    if entity is not None:
        if not isinstance(entity, dict) or entity.get("id") != entity_id:
            bad_request("Entity does not match requested entity ID")
        entities.update_node(ctx, entity, new_version=False)
    acl_body = body.get("accessControlList")
    if acl_body is not None:
        if (
            not isinstance(acl_body, dict)
            or acl_body.get("id") is None
            or (parse_syn_id(acl_body["id"]) != node_id)
        ):
            bad_request("ACL does not match requested entity ID")
        _apply_acl(ctx, node_id, acl_body)
    annos = _annotations_part(body)
    if annos is not None:
        if annos.get("id") != entity_id:
            bad_request("Annotations do not match requested entity ID")
        _merge_annotations(ctx, node_id, annos)
    return _result(ctx, node_id, body)


ROUTES = [
    Route("POST", "/repo/v1/entity/bundle2/create", create_bundle),
    Route("POST", "/repo/v1/entity/<entity_id>/bundle2", get_bundle),
    Route("PUT", "/repo/v1/entity/<entity_id>/bundle2", update_bundle),
    Route("POST", "/repo/v1/entity/<entity_id>/version/<version>/bundle2", get_version_bundle),
]
