"""The deprecated entity download redirects (synapse-api-2.md §6.3; SRS EntityController,
RedirectUtils): ``GET /repo/v1/entity/{id}/file``, ``…/version/{n}/file`` and their
``filepreview`` variants.

DOWNLOAD on the entity decides (the same decider as everywhere else); the answer is a presigned
URL for the version's file handle (or its preview): 307 with ``Location``, or the URL as
``text/plain`` with ``redirect=false``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import filehandles, files, nodes, s3gate
from .routing import Reply, Route
from .util import not_found, parse_int, parse_syn_id, syn

if TYPE_CHECKING:
    from .app import Ctx

SCHEMA = ""


def _redirect(ctx: Ctx, entity_id: str, version: str | None, *, preview: bool) -> Reply:
    store = ctx.store
    node_id = parse_syn_id(entity_id)
    row = nodes.check(store, ctx.caller, node_id, "DOWNLOAD")
    number = int(row["current_rev"]) if version is None else parse_int(version, "versionNumber")
    revision = nodes.revision(store, node_id, number)
    if revision is None:
        not_found(f"Cannot find a node with id {syn(node_id)} and version {number}")
    handle_id = revision["file_handle_id"]
    if row["type"] != "file" or handle_id is None:
        not_found(f"Object {syn(node_id)} does not have a file handle associated with it.")
    handle = files.require_handle(store, int(handle_id))
    if preview:
        preview_id = handle["preview_id"]
        preview_row = filehandles.get_handle(store, int(preview_id)) if preview_id else None
        if preview_row is None:
            not_found(f"A preview does not exist for file {handle['id']}")
        handle = preview_row
    url = files.download_url(ctx, handle)
    if str(ctx.args.get("redirect", "true")).lower() == "false":
        return Reply(200, url, content_type="text/plain")
    return Reply(307, None, headers={"Location": url})


def entity_file(ctx: Ctx, entity_id: str) -> Reply:
    return _redirect(ctx, entity_id, None, preview=False)


def entity_file_preview(ctx: Ctx, entity_id: str) -> Reply:
    return _redirect(ctx, entity_id, None, preview=True)


def version_file(ctx: Ctx, entity_id: str, version: str) -> Reply:
    return _redirect(ctx, entity_id, version, preview=False)


def version_file_preview(ctx: Ctx, entity_id: str, version: str) -> Reply:
    return _redirect(ctx, entity_id, version, preview=True)


ROUTES = s3gate.guarded(
    [
        Route("GET", "/repo/v1/entity/<entity_id>/file", entity_file),
        Route("GET", "/repo/v1/entity/<entity_id>/filepreview", entity_file_preview),
        Route("GET", "/repo/v1/entity/<entity_id>/version/<version>/file", version_file),
        Route(
            "GET", "/repo/v1/entity/<entity_id>/version/<version>/filepreview", version_file_preview
        ),
    ]
)
