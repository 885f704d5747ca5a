"""Wikis v1 and v2 on entities (synapse-api.md §5).

The data model follows Synapse's V2 wiki DAO (V2_WIKI_PAGE, V2_WIKI_MARKDOWN, V2_WIKI_OWNERS,
V2_WIKI_ATTACHMENT_RESERVATION):

* ``wikis`` — one row per page: its tree position (``parent_id``, ``root_id``), etag, creation
  data, and (denormalised, for ``POST /file/v1/fileHandle/batch`` associations) the *current*
  ``markdown_handle_id`` and ``attachments`` (JSON list of file handle id strings).
* ``wiki_versions`` — the markdown history: title, markdown handle and attachments per version.
  Versions start at 0; only the newest ~100 are kept, as on Synapse.
* ``wiki_owners`` — one root per owner entity, with the order hint and its etag.
* ``wiki_reservations`` — every file handle a page ever used (an update re-checks only new ones).

Markdown is stored as on the real service: a v1 write gzips the markdown into an S3 object in
Synapse storage (``<wikiId>_markdown.txt.gz``, ``application/x-gzip; charset=UTF-8``) and records
an ``S3FileHandle`` created by the caller; a v1 read gunzips it; v2 exposes the handle id.

Wiki writes never change the owner entity's etag.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import uuid
from typing import TYPE_CHECKING, Any

from . import filehandles, nodes, storage
from .routing import Reply, Route
from .util import (
    DEFAULT_STORAGE_LOCATION_ID,
    SynapseError,
    bad_request,
    conflict,
    new_etag,
    not_found,
    now,
    page_results,
    paginate_offset,
    parse_syn_id,
    precondition_failed,
)

if TYPE_CHECKING:
    import sqlite3

    from .app import Ctx
    from .store import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS wikis (
    id INTEGER PRIMARY KEY,
    owner_id INTEGER NOT NULL,
    owner_type TEXT NOT NULL DEFAULT 'ENTITY',
    parent_id INTEGER,
    root_id INTEGER,
    title TEXT,
    etag TEXT NOT NULL,
    created_on TEXT NOT NULL,
    created_by INTEGER NOT NULL,
    modified_on TEXT NOT NULL,
    modified_by INTEGER NOT NULL,
    markdown_handle_id INTEGER,
    attachments TEXT NOT NULL DEFAULT '[]',
    version INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS wikis_owner ON wikis(owner_id, parent_id);
CREATE INDEX IF NOT EXISTS wikis_root ON wikis(root_id);
CREATE TABLE IF NOT EXISTS wiki_versions (
    wiki_id INTEGER NOT NULL,
    version INTEGER NOT NULL,
    title TEXT,
    markdown_handle_id INTEGER NOT NULL,
    attachments TEXT NOT NULL DEFAULT '[]',
    modified_on TEXT NOT NULL,
    modified_by INTEGER NOT NULL,
    PRIMARY KEY (wiki_id, version)
);
CREATE TABLE IF NOT EXISTS wiki_owners (
    owner_id INTEGER NOT NULL,
    owner_type TEXT NOT NULL,
    root_wiki_id INTEGER NOT NULL UNIQUE,
    etag TEXT NOT NULL,
    order_hint TEXT,                 -- JSON list of wiki id strings, or NULL
    PRIMARY KEY (owner_id, owner_type)
);
CREATE TABLE IF NOT EXISTS wiki_reservations (
    wiki_id INTEGER NOT NULL,
    file_handle_id INTEGER NOT NULL,
    PRIMARY KEY (wiki_id, file_handle_id)
);
"""

ENTITY = "ENTITY"
MAX_LIMIT = 50
MAX_MARKDOWN_RANK = 100
MARKDOWN_CONTENT_TYPE = "application/x-gzip; charset=UTF-8"
S3_FILE_HANDLE = filehandles.S3_FILE_HANDLE


# ---------------------------------------------------------------------------------------------
# Lookups shared with bundles and the storage half (fileHandle/batch associations)


def root_wiki_id(store: Store, owner_id: int) -> int | None:
    value = store.scalar(
        "SELECT root_wiki_id FROM wiki_owners WHERE owner_id = ? AND owner_type = ?",
        (owner_id, ENTITY),
    )
    return None if value is None else int(value)


def owner_of(store: Store, wiki_id: int) -> int | None:
    """The owner entity (numeric id) of a wiki page, or None."""
    value = store.scalar("SELECT owner_id FROM wikis WHERE id = ?", (wiki_id,))
    return None if value is None else int(value)


def markdown_handle_ids(store: Store, wiki_id: int) -> set[int]:
    """Every markdown handle of a page's kept history (WikiMarkdown associations)."""
    rows = store.all("SELECT markdown_handle_id FROM wiki_versions WHERE wiki_id = ?", (wiki_id,))
    return {int(r[0]) for r in rows}


def attachment_handle_ids(store: Store, wiki_id: int) -> set[int]:
    """Every attachment handle of a page's kept history (WikiAttachment associations)."""
    found: set[int] = set()
    for row in store.all("SELECT attachments FROM wiki_versions WHERE wiki_id = ?", (wiki_id,)):
        found.update(int(i) for i in json.loads(row[0]))
    return found


# ---------------------------------------------------------------------------------------------
# Errors with Synapse's texts (V2WikiManagerImpl, V2DBOWikiPageDaoImpl)


def _not_authorized(access: str, owner_text: str) -> SynapseError:
    return SynapseError(
        403,
        f"User is not authorized to '{access}' a WikiPage with an ownerId: '{owner_text}' "
        f"of type: '{ENTITY}'",
    )


def _require_root(store: Store, owner_id: int) -> int:
    root = root_wiki_id(store, owner_id)
    if root is None:
        not_found(f"A root wiki does not exist for ownerId: {owner_id} and ownerType: {ENTITY}")
    return root


def _authorize(ctx: Ctx, owner_id: int, owner_text: str, access: str) -> None:
    """The owner-entity check; every denial (missing, trashed, ...) is the wiki 403 text."""
    if access == "CREATE":
        row = nodes.get_row(ctx.store, owner_id)
        try:
            nodes.check_create(
                ctx.store, ctx.caller, owner_id, str(row["type"]) if row else "folder"
            )
        except SynapseError:
            raise _not_authorized("CREATE", owner_text) from None
        return
    if not nodes.can(ctx.store, ctx.caller, owner_id, access):
        raise _not_authorized(access, owner_text)


def _wiki_id(text: str) -> int:
    try:
        return int(str(text).strip())
    except ValueError:
        bad_request(f'For input string: "{text}"')


def _optional_long(value: Any) -> int | None:
    """An optional ``Long`` request parameter (Spring's type-mismatch 400 otherwise)."""
    if value is None or value == "":
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        bad_request(
            "Failed to convert value of type 'java.lang.String' to required type "
            f"'java.lang.Long'; For input string: \"{value}\""
        )


def _page_in_tree(store: Store, owner_id: int, wiki_id: int) -> sqlite3.Row:
    """getWikiPageDBO: the owner's root must exist and the page must belong to its tree."""
    root = _require_root(store, owner_id)
    row = store.one("SELECT * FROM wikis WHERE id = ? AND root_id = ?", (wiki_id, root))
    if row is None:
        not_found(f"No wiki page found with id: {wiki_id}")
    return row


def _version_row(store: Store, wiki_id: int, version: int) -> sqlite3.Row:
    row = store.one(
        "SELECT * FROM wiki_versions WHERE wiki_id = ? AND version = ?", (wiki_id, version)
    )
    if row is None:
        not_found(f"Wiki page of id: {wiki_id} was not found with version: {version}")
    return row


# ---------------------------------------------------------------------------------------------
# Markdown storage (WikiModelTranslationHelper)


def create_markdown_handle(ctx: Ctx, wiki_id: int | str, markdown: str | None) -> int:
    """Gzip the markdown into Synapse storage as an S3FileHandle created by the caller."""
    data = gzip.compress((markdown or "").encode("utf-8"), mtime=0)
    file_name = f"{wiki_id}_markdown.txt.gz"
    key = f"{ctx.caller.id}/{uuid.uuid4()}/{file_name}"
    bucket = ctx.emulator.synapse_bucket
    storage.s3_client(ctx.emulator).put_object(
        Bucket=bucket, Key=key, Body=data, ContentType=MARKDOWN_CONTENT_TYPE
    )
    handle_id = ctx.store.next_id("file_handle")
    ctx.store.execute(
        "INSERT INTO file_handles(id, concrete_type, created_by, created_on, etag, file_name, "
        "content_type, content_md5, content_size, storage_location_id, bucket, key) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            handle_id,
            S3_FILE_HANDLE,
            ctx.caller.id,
            now(),
            new_etag(),
            file_name,
            MARKDOWN_CONTENT_TYPE,
            hashlib.md5(data).hexdigest(),
            len(data),
            DEFAULT_STORAGE_LOCATION_ID,
            bucket,
            key,
        ),
    )
    return handle_id


def read_markdown(ctx: Ctx, handle_id: int) -> str:
    """Download and gunzip a markdown handle (plain text is accepted too, as Synapse does)."""
    handle = filehandles.get_handle(ctx.store, handle_id)
    if handle is None or handle["bucket"] is None or handle["key"] is None:
        raise SynapseError(500, f"Markdown file handle {handle_id} has no S3 object")
    try:
        body = storage.s3_client(ctx.emulator).get_object(
            Bucket=handle["bucket"], Key=handle["key"]
        )["Body"]
        raw: bytes = body.read()
    except Exception as exc:  # any storage failure is the server's 500
        message = f"Cannot read the markdown of file handle {handle_id}: {exc}"
        raise SynapseError(500, message) from exc
    with contextlib.suppress(OSError, EOFError):
        raw = gzip.decompress(raw)
    return raw.decode("utf-8", errors="replace")


def _presigned(ctx: Ctx, handle: sqlite3.Row) -> str:
    if handle["bucket"] is not None and handle["key"] is not None:
        # As every Synapse download URL: the response names the file (clients save previews as
        # "preview.txt" from this header, not from the key).
        params = {
            "Bucket": handle["bucket"],
            "Key": handle["key"],
            "ResponseContentDisposition": f"attachment; filename={handle['file_name'] or 'file'}",
        }
        url: str = storage.s3_client(ctx.emulator).generate_presigned_url(
            "get_object", Params=params, ExpiresIn=900
        )
        return url
    extra = json.loads(handle["extra"]) if handle["extra"] else {}
    external = extra.get("externalURL")
    if isinstance(external, str):
        return external
    raise SynapseError(500, f"File handle {handle['id']} has no downloadable location")


# ---------------------------------------------------------------------------------------------
# Writing (V2WikiManagerImpl.createWikiPage / updateWikiPage and the DAO)


def _handle(store: Store, raw: Any) -> sqlite3.Row:
    if raw is None:
        bad_request("Id cannot be null")
    text = str(raw).strip()
    handle = filehandles.get_handle(store, int(text)) if text.isdigit() else None
    if handle is None:
        not_found(f"FileHandle: '{raw}' cannot be found")
    return handle


def _attachments(store: Store, raw: Any) -> list[sqlite3.Row]:
    """buildFileNameMap: one handle per file name; the newest (by createdOn) wins."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        bad_request("attachmentFileHandleIds must be a list")
    handles = [_handle(store, item) for item in raw]
    handles.sort(key=lambda h: str(h["created_on"]))
    by_name: dict[str, sqlite3.Row] = {}
    for handle in handles:
        by_name[str(handle["file_name"])] = handle
    return list(by_name.values())


def _check_creator(ctx: Ctx, handles: list[sqlite3.Row], already: set[int]) -> list[int]:
    fresh = []
    for handle in handles:
        if int(handle["id"]) in already:
            continue
        nodes.check_file_handle_creator(ctx.store, ctx.caller, int(handle["id"]))
        fresh.append(int(handle["id"]))
    return fresh


def _check_cycle(store: Store, owner_id: int, parent_raw: Any, child_id: int | None) -> int:
    """checkForParentCycle: walks the parent chain (each step a 404 if missing)."""
    parent_id = _wiki_id(str(parent_raw))
    current: int | None = parent_id
    seen = 0
    while current is not None:
        if child_id is not None and current == child_id:
            bad_request("There will be a cycle if this wiki is updated. Put in valid parentId")
        row = _page_in_tree(store, owner_id, current)
        current = None if row["parent_id"] is None else int(row["parent_id"])
        seen += 1
        if seen > 10_000:
            bad_request("There will be a cycle if this wiki is updated. Put in valid parentId")
    return parent_id


def _write_version(
    ctx: Ctx,
    wiki_id: int,
    version: int,
    *,
    title: Any,
    markdown_row: Any,
    attachments: list[int],
    moment: str,
    fresh: list[int],
) -> None:
    """The page's version row, and the reservation of the handles it is the first to use."""
    ctx.store.execute(
        "INSERT INTO wiki_versions(wiki_id, version, title, markdown_handle_id, attachments, "
        "modified_on, modified_by) VALUES (?,?,?,?,?,?,?)",
        (
            wiki_id,
            version,
            title,
            int(markdown_row["id"]),
            json.dumps([str(a) for a in attachments]),
            moment,
            ctx.caller.id,
        ),
    )
    ctx.store.executemany(
        "INSERT OR IGNORE INTO wiki_reservations(wiki_id, file_handle_id) VALUES (?, ?)",
        [(wiki_id, h) for h in fresh],
    )


def create_page(ctx: Ctx, owner_id: int, owner_text: str, body: dict[str, Any], *, v1: bool) -> int:
    store = ctx.store
    _authorize(ctx, owner_id, owner_text, "CREATE")
    requested_id = body.get("id")
    attachments = _attachments(store, body.get("attachmentFileHandleIds"))
    wiki_id = _wiki_id(str(requested_id)) if requested_id is not None else store.next_id("wiki")
    if v1:
        markdown = create_markdown_handle(ctx, wiki_id, body.get("markdown"))
        markdown_row = _handle(store, markdown)
    else:
        markdown_row = _handle(store, body.get("markdownFileHandleId"))
    fresh = _check_creator(ctx, [markdown_row, *attachments], set())
    if requested_id is not None and store.one("SELECT 1 FROM wikis WHERE id = ?", (wiki_id,)):
        bad_request(f"A wiki page already exists with ID: {wiki_id}")
    parent_raw = body.get("parentWikiId")
    parent_id = None
    if parent_raw is not None:
        parent_id = _check_cycle(store, owner_id, parent_raw, wiki_id)
        root_id = _require_root(store, owner_id)
    else:
        root_id = wiki_id
        if root_wiki_id(store, owner_id) is not None:
            conflict(
                f"An owner already exists with the ownerId: {owner_id} and ownerType: {ENTITY}"
            )
    moment = now()
    attachment_ids = [int(a["id"]) for a in attachments]
    store.execute(
        "INSERT INTO wikis(id, owner_id, owner_type, parent_id, root_id, title, etag, created_on,"
        " created_by, modified_on, modified_by, markdown_handle_id, attachments, version) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,0)",
        (
            wiki_id,
            owner_id,
            ENTITY,
            parent_id,
            root_id,
            body.get("title"),
            new_etag(),
            moment,
            ctx.caller.id,
            moment,
            ctx.caller.id,
            int(markdown_row["id"]),
            json.dumps([str(a) for a in attachment_ids]),
        ),
    )
    if parent_id is None:
        store.execute(
            "INSERT INTO wiki_owners(owner_id, owner_type, root_wiki_id, etag) VALUES (?,?,?,?)",
            (owner_id, ENTITY, wiki_id, new_etag()),
        )
    _write_version(
        ctx,
        wiki_id,
        0,
        title=body.get("title"),
        markdown_row=markdown_row,
        attachments=attachment_ids,
        moment=moment,
        fresh=fresh,
    )
    return wiki_id


def update_page(
    ctx: Ctx,
    owner_id: int,
    owner_text: str,
    body: dict[str, Any],
    *,
    v1: bool,
    restored_markdown: int | None = None,
) -> int:
    store = ctx.store
    _authorize(ctx, owner_id, owner_text, "UPDATE")
    wiki_id = _wiki_id(str(body.get("id")))
    current = store.one("SELECT * FROM wikis WHERE id = ?", (wiki_id,))
    if current is None:
        not_found("The wiki page to update could not be found.")
    if body.get("etag") != current["etag"]:
        precondition_failed(
            f"ObjectId: {owner_text} was updated since you last fetched it, retrieve it again "
            "and reapply the update"
        )
    # Only the newest versions are kept (V2WikiManagerImpl.MAX_WIKI_MARKDOWN_RANK).
    keep_from = store.scalar(
        "SELECT version FROM wiki_versions WHERE wiki_id = ? ORDER BY version DESC "
        "LIMIT 1 OFFSET ?",
        (wiki_id, MAX_MARKDOWN_RANK),
    )
    store.execute(
        "DELETE FROM wiki_versions WHERE wiki_id = ? AND version < ?",
        (wiki_id, int(keep_from or 0)),
    )
    attachments = _attachments(store, body.get("attachmentFileHandleIds"))
    if restored_markdown is not None:
        markdown_row = _handle(store, restored_markdown)
    elif v1:
        markdown_row = _handle(store, create_markdown_handle(ctx, wiki_id, body.get("markdown")))
    else:
        markdown_row = _handle(store, body.get("markdownFileHandleId"))
    used = {
        int(r[0])
        for r in store.all(
            "SELECT file_handle_id FROM wiki_reservations WHERE wiki_id = ?", (wiki_id,)
        )
    } | markdown_handle_ids(store, wiki_id)
    fresh = _check_creator(ctx, [markdown_row, *attachments], used)
    parent_raw = body.get("parentWikiId")
    parent_id = None
    if parent_raw is not None:
        parent_id = _check_cycle(store, owner_id, parent_raw, wiki_id)
    old = _page_in_tree(store, owner_id, wiki_id)
    version = int(old["version"]) + 1
    root_id = wiki_id if parent_id is None else _require_root(store, owner_id)
    moment = now()
    attachment_ids = [int(a["id"]) for a in attachments]
    store.execute(
        "UPDATE wikis SET parent_id = ?, root_id = ?, title = ?, etag = ?, modified_on = ?, "
        "modified_by = ?, markdown_handle_id = ?, attachments = ?, version = ? WHERE id = ?",
        (
            parent_id,
            root_id,
            body.get("title"),
            new_etag(),
            moment,
            ctx.caller.id,
            int(markdown_row["id"]),
            json.dumps([str(a) for a in attachment_ids]),
            version,
            wiki_id,
        ),
    )
    _write_version(
        ctx,
        wiki_id,
        version,
        title=body.get("title"),
        markdown_row=markdown_row,
        attachments=attachment_ids,
        moment=moment,
        fresh=fresh,
    )
    return wiki_id


def _delete_subtree(store: Store, wiki_id: int) -> None:
    """ON DELETE CASCADE of PARENT_ID / ROOT_ID, markdown versions, reservations, owner row."""
    doomed = [wiki_id]
    index = 0
    while index < len(doomed):
        doomed.extend(
            int(r[0])
            for r in store.all(
                "SELECT id FROM wikis WHERE (parent_id = ? OR root_id = ?) AND id != ?",
                (doomed[index], doomed[index], doomed[index]),
            )
            if int(r[0]) not in doomed
        )
        index += 1
    for table, column in (
        ("wikis", "id"),
        ("wiki_versions", "wiki_id"),
        ("wiki_reservations", "wiki_id"),
        ("wiki_owners", "root_wiki_id"),
    ):
        store.executemany(f"DELETE FROM {table} WHERE {column} = ?", [(i,) for i in doomed])


# ---------------------------------------------------------------------------------------------
# JSON


def page_json(store: Store, row: sqlite3.Row, version: int | None = None) -> dict[str, Any]:
    """A V2WikiPage (title, modifiedOn/By, markdown and attachments come from the version)."""
    ver = _version_row(store, int(row["id"]), int(row["version"]) if version is None else version)
    return {
        "id": str(row["id"]),
        "etag": row["etag"],
        "createdOn": row["created_on"],
        "createdBy": str(row["created_by"]),
        "modifiedOn": ver["modified_on"],
        "modifiedBy": str(ver["modified_by"]),
        "parentWikiId": str(row["parent_id"]) if row["parent_id"] is not None else None,
        "title": ver["title"],
        "markdownFileHandleId": str(ver["markdown_handle_id"]),
        "attachmentFileHandleIds": list(json.loads(ver["attachments"])),
    }


def v1_json(ctx: Ctx, page: dict[str, Any]) -> dict[str, Any]:
    """WikiModelTranslationHelper.convertToWikiPage: inline the gunzipped markdown."""
    v1 = {k: v for k, v in page.items() if k != "markdownFileHandleId"}
    v1["markdown"] = read_markdown(ctx, int(page["markdownFileHandleId"]))
    return v1


def _handles_json(store: Store, ids: list[str]) -> dict[str, Any]:
    """FileHandleResults with previews included (getAllFileHandles(ids, true))."""
    out: list[dict[str, Any]] = []
    for raw in ids:
        handle = filehandles.get_handle(store, int(raw))
        if handle is None:
            continue
        out.append(filehandles.file_handle_json(handle))
        preview = handle["preview_id"]
        if preview is not None and int(preview) != int(handle["id"]):
            preview_row = filehandles.get_handle(store, int(preview))
            if preview_row is not None:
                out.append(filehandles.file_handle_json(preview_row))
    return {"list": out}


# ---------------------------------------------------------------------------------------------
# Handlers


def _owner(owner_text: str) -> int:
    return parse_syn_id(owner_text)


def _page_body(ctx: Ctx) -> dict[str, Any]:
    body = ctx.body
    if not isinstance(body, dict):
        bad_request("WikiPage cannot be null")
    return body


def _check_path_id(wiki_id: str, body: dict[str, Any]) -> None:
    if body.get("id") is None or str(body["id"]) != wiki_id:
        bad_request("Path variable wikiId does not match the ID of the passed WikiPage")


def _read(ctx: Ctx, owner_text: str, wiki_text: str | None) -> dict[str, Any]:
    """getRootWikiPage (root lookup first) / getWikiPage (READ first), with ?wikiVersion=."""
    store = ctx.store
    owner_id = _owner(owner_text)
    if wiki_text is None:
        wiki_id = _require_root(store, owner_id)
        _authorize(ctx, owner_id, owner_text, "READ")
        version = None
    else:
        _authorize(ctx, owner_id, owner_text, "READ")
        wiki_id = _wiki_id(wiki_text)
        version = _optional_long(ctx.args.get("wikiVersion"))
    row = _page_in_tree(store, owner_id, wiki_id)
    return page_json(store, row, version)


def create_v1(ctx: Ctx, owner_id: str) -> Reply:
    wiki_id = create_page(ctx, _owner(owner_id), owner_id, _page_body(ctx), v1=True)
    row = _page_in_tree(ctx.store, _owner(owner_id), wiki_id)
    return Reply(201, v1_json(ctx, page_json(ctx.store, row)))


def create_v2(ctx: Ctx, owner_id: str) -> Reply:
    wiki_id = create_page(ctx, _owner(owner_id), owner_id, _page_body(ctx), v1=False)
    row = _page_in_tree(ctx.store, _owner(owner_id), wiki_id)
    return Reply(201, page_json(ctx.store, row))


def get_root_v1(ctx: Ctx, owner_id: str) -> dict[str, Any]:
    return v1_json(ctx, _read(ctx, owner_id, None))


def get_root_v2(ctx: Ctx, owner_id: str) -> dict[str, Any]:
    return _read(ctx, owner_id, None)


def get_v1(ctx: Ctx, owner_id: str, wiki_id: str) -> dict[str, Any]:
    return v1_json(ctx, _read(ctx, owner_id, wiki_id))


def get_v2(ctx: Ctx, owner_id: str, wiki_id: str) -> dict[str, Any]:
    return _read(ctx, owner_id, wiki_id)


def get_key(ctx: Ctx, owner_id: str) -> dict[str, Any]:
    root = _require_root(ctx.store, _owner(owner_id))
    _authorize(ctx, _owner(owner_id), owner_id, "READ")
    return {"wikiPageId": str(root), "ownerObjectId": owner_id, "ownerObjectType": ENTITY}


def update_v1(ctx: Ctx, owner_id: str, wiki_id: str) -> dict[str, Any]:
    body = _page_body(ctx)
    _check_path_id(wiki_id, body)
    updated = update_page(ctx, _owner(owner_id), owner_id, body, v1=True)
    row = _page_in_tree(ctx.store, _owner(owner_id), updated)
    return v1_json(ctx, page_json(ctx.store, row))


def update_v2(ctx: Ctx, owner_id: str, wiki_id: str) -> dict[str, Any]:
    body = _page_body(ctx)
    _check_path_id(wiki_id, body)
    updated = update_page(ctx, _owner(owner_id), owner_id, body, v1=False)
    row = _page_in_tree(ctx.store, _owner(owner_id), updated)
    return page_json(ctx.store, row)


def restore_v2(ctx: Ctx, owner_id: str, wiki_id: str, wiki_version: str) -> dict[str, Any]:
    """restoreWikiPage: a new version carrying an old version's title, markdown, attachments."""
    store = ctx.store
    owner = _owner(owner_id)
    version = _optional_long(wiki_version)
    assert version is not None
    _authorize(ctx, owner, owner_id, "UPDATE")
    page_id = _wiki_id(wiki_id)
    row = _page_in_tree(store, owner, page_id)
    old = store.one(
        "SELECT * FROM wiki_versions WHERE wiki_id = ? AND version = ?", (page_id, version)
    )
    if old is None:
        not_found(f"No wiki page found with id: {page_id} and version: {version}")
    body = {
        "id": str(page_id),
        "etag": row["etag"],
        "parentWikiId": str(row["parent_id"]) if row["parent_id"] is not None else None,
        "title": old["title"],
        "attachmentFileHandleIds": json.loads(old["attachments"]),
    }
    update_page(
        ctx, owner, owner_id, body, v1=False, restored_markdown=int(old["markdown_handle_id"])
    )
    return page_json(store, _page_in_tree(store, owner, page_id))


def delete_page(ctx: Ctx, owner_id: str, wiki_id: str) -> Reply:
    owner = _owner(owner_id)
    _authorize(ctx, owner, owner_id, "DELETE")
    page_id = _wiki_id(wiki_id)
    root = root_wiki_id(ctx.store, owner)
    if root is not None and ctx.store.one(
        "SELECT 1 FROM wikis WHERE id = ? AND root_id = ?", (page_id, root)
    ):
        _delete_subtree(ctx.store, page_id)
    return Reply(200)


def _header_tree(ctx: Ctx, owner_text: str) -> dict[str, Any]:
    owner = _owner(owner_text)
    limit_raw, offset_raw = ctx.args.get("limit"), ctx.args.get("offset")
    args = {"limit": limit_raw or str(MAX_LIMIT), "offset": offset_raw or "0"}
    offset, limit = paginate_offset(args, default_limit=MAX_LIMIT)
    if limit > MAX_LIMIT:
        bad_request(f"Limit cannot exceed: {MAX_LIMIT}")
    _authorize(ctx, owner, owner_text, "READ")
    root = _require_root(ctx.store, owner)
    rows = ctx.store.all(
        "SELECT id, title, parent_id FROM wikis WHERE root_id = ? "
        "ORDER BY parent_id IS NOT NULL, parent_id, title COLLATE NOCASE, id",
        (root,),
    )
    headers = [
        {
            "id": str(r["id"]),
            "title": r["title"],
            "parentId": str(r["parent_id"]) if r["parent_id"] is not None else None,
        }
        for r in rows
    ]
    return page_results(headers, offset, limit)


def header_tree_v1(ctx: Ctx, owner_id: str) -> dict[str, Any]:
    return _header_tree(ctx, owner_id)


def header_tree_v2(ctx: Ctx, owner_id: str) -> dict[str, Any]:
    return _header_tree(ctx, owner_id)


def history(ctx: Ctx, owner_id: str, wiki_id: str) -> dict[str, Any]:
    """V2 history, newest first; ``offset`` and ``limit`` are required parameters."""
    for name in ("offset", "limit"):
        if ctx.args.get(name) is None:
            bad_request(
                f"Required request parameter '{name}' for method parameter type Long is not present"
            )
    offset, limit = paginate_offset(ctx.args)
    owner = _owner(owner_id)
    _authorize(ctx, owner, owner_id, "READ")
    page_id = _wiki_id(wiki_id)
    if ctx.store.one("SELECT 1 FROM wikis WHERE id = ?", (page_id,)) is None:
        not_found(f"Wiki page with id: {page_id} does not exist.")
    rows = ctx.store.all(
        "SELECT version, modified_on, modified_by FROM wiki_versions WHERE wiki_id = ? "
        "ORDER BY version DESC",
        (page_id,),
    )
    snapshots = [
        {
            "version": str(r["version"]),
            "modifiedOn": r["modified_on"],
            "modifiedBy": str(r["modified_by"]),
        }
        for r in rows
    ]
    return page_results(snapshots, offset, limit)


def _attachment_ids(ctx: Ctx, owner_id: str, wiki_id: str, version: int | None) -> list[str]:
    owner = _owner(owner_id)
    _authorize(ctx, owner, owner_id, "READ")
    page_id = _wiki_id(wiki_id)
    if version is None:
        row = ctx.store.one("SELECT attachments FROM wikis WHERE id = ?", (page_id,))
        if row is None:
            not_found(f"Wiki page '{page_id}' does not exist")
        return list(json.loads(row["attachments"]))
    return list(json.loads(_version_row(ctx.store, page_id, version)["attachments"]))


def attachment_handles_v1(ctx: Ctx, owner_id: str, wiki_id: str) -> dict[str, Any]:
    return _handles_json(ctx.store, _attachment_ids(ctx, owner_id, wiki_id, None))


def attachment_handles_v2(ctx: Ctx, owner_id: str, wiki_id: str) -> dict[str, Any]:
    version = _optional_long(ctx.args.get("wikiVersion"))
    return _handles_json(ctx.store, _attachment_ids(ctx, owner_id, wiki_id, version))


def _redirect(ctx: Ctx, handle: sqlite3.Row) -> Reply:
    """RedirectUtils.handleRedirect: 307 + Location, or the URL as text with redirect=false."""
    url = _presigned(ctx, handle)
    if str(ctx.args.get("redirect", "true")).lower() == "false":
        return Reply(200, url, content_type="text/plain")
    return Reply(307, None, headers={"Location": url})


def _attachment(ctx: Ctx, owner_id: str, wiki_id: str, *, preview: bool) -> Reply:
    file_name = ctx.args.get("fileName")
    if file_name is None:
        bad_request(
            "Required request parameter 'fileName' for method parameter type String is not present"
        )
    version = _optional_long(ctx.args.get("wikiVersion"))
    ids = _attachment_ids(ctx, owner_id, wiki_id, version)
    for raw in ids:
        handle = filehandles.get_handle(ctx.store, int(raw))
        if handle is not None and handle["file_name"] == file_name:
            if preview:
                if handle["preview_id"] is None:
                    not_found(f"A preview does not exist for file {handle['id']}")
                preview_row = filehandles.get_handle(ctx.store, int(handle["preview_id"]))
                if preview_row is None:
                    not_found(f"A preview does not exist for file {handle['id']}")
                return _redirect(ctx, preview_row)
            return _redirect(ctx, handle)
    not_found(
        f"Cannot find a wiki attachment for OwnerID: {owner_id}, ObjectType: {ENTITY}, "
        f"WikiPageId: {wiki_id}, fileName: {file_name}"
    )


def attachment(ctx: Ctx, owner_id: str, wiki_id: str) -> Reply:
    return _attachment(ctx, owner_id, wiki_id, preview=False)


def attachment_preview(ctx: Ctx, owner_id: str, wiki_id: str) -> Reply:
    return _attachment(ctx, owner_id, wiki_id, preview=True)


def markdown_redirect(ctx: Ctx, owner_id: str, wiki_id: str) -> Reply:
    owner = _owner(owner_id)
    _authorize(ctx, owner, owner_id, "READ")
    page_id = _wiki_id(wiki_id)
    version = _optional_long(ctx.args.get("wikiVersion"))
    row = _page_in_tree(ctx.store, owner, page_id)
    ver = _version_row(ctx.store, page_id, int(row["version"]) if version is None else version)
    handle = filehandles.get_handle(ctx.store, int(ver["markdown_handle_id"]))
    if handle is None:
        not_found(f"FileHandle: '{ver['markdown_handle_id']}' cannot be found")
    return _redirect(ctx, handle)


def _order_hint_json(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "ownerId": str(row["owner_id"]),
        "ownerObjectType": row["owner_type"],
        "etag": row["etag"],
        "idList": json.loads(row["order_hint"]) if row["order_hint"] is not None else None,
    }


def get_order_hint(ctx: Ctx, owner_id: str) -> dict[str, Any]:
    owner = _owner(owner_id)
    _require_root(ctx.store, owner)
    _authorize(ctx, owner, owner_id, "READ")
    row = ctx.store.one(
        "SELECT * FROM wiki_owners WHERE owner_id = ? AND owner_type = ?", (owner, ENTITY)
    )
    assert row is not None
    return _order_hint_json(row)


def put_order_hint(ctx: Ctx, owner_id: str) -> dict[str, Any]:
    """updateOrderHint works from the body's ownerId (the path's is not used, as on Synapse)."""
    del owner_id
    body = ctx.body
    if not isinstance(body, dict):
        bad_request("OrderHint cannot be null.")
    if body.get("ownerId") is None:
        bad_request("ownerId cannot be null")
    if body.get("ownerObjectType") != ENTITY:
        bad_request("The emulator supports wiki order hints for ENTITY owners only")
    body_owner = str(body["ownerId"])
    owner = parse_syn_id(body_owner)
    _require_root(ctx.store, owner)
    if not nodes.can(ctx.store, ctx.caller, owner, "UPDATE"):
        # Synapse's validateUpdateAccess formats this denial with 'READ' (sic).
        raise _not_authorized("READ", body_owner)
    row = ctx.store.one(
        "SELECT * FROM wiki_owners WHERE owner_id = ? AND owner_type = ?", (owner, ENTITY)
    )
    assert row is not None
    if body.get("etag") != row["etag"]:
        precondition_failed(
            f"ObjectId: {body_owner} was updated since you last fetched it, retrieve it again "
            "and reapply the update"
        )
    id_list = body.get("idList")
    if id_list is not None and not isinstance(id_list, list):
        bad_request("idList must be a list of wiki ids")
    ctx.store.execute(
        "UPDATE wiki_owners SET etag = ?, order_hint = ? WHERE owner_id = ? AND owner_type = ?",
        (
            new_etag(),
            json.dumps([str(i) for i in id_list]) if id_list is not None else None,
            owner,
            ENTITY,
        ),
    )
    updated = ctx.store.one(
        "SELECT * FROM wiki_owners WHERE owner_id = ? AND owner_type = ?", (owner, ENTITY)
    )
    assert updated is not None
    return _order_hint_json(updated)


def _routes() -> list[Route]:
    base = "/repo/v1/entity/<owner_id>"
    return [
        Route("POST", f"{base}/wiki", create_v1),
        Route("GET", f"{base}/wiki", get_root_v1),
        Route("GET", f"{base}/wikikey", get_key),
        Route("GET", f"{base}/wiki/<wiki_id>", get_v1),
        Route("PUT", f"{base}/wiki/<wiki_id>", update_v1),
        Route("DELETE", f"{base}/wiki/<wiki_id>", delete_page),
        Route("GET", f"{base}/wikiheadertree", header_tree_v1),
        Route("GET", f"{base}/wiki/<wiki_id>/attachmenthandles", attachment_handles_v1),
        Route("GET", f"{base}/wiki/<wiki_id>/attachment", attachment),
        Route("GET", f"{base}/wiki/<wiki_id>/attachmentpreview", attachment_preview),
        Route("POST", f"{base}/wiki2", create_v2),
        Route("GET", f"{base}/wiki2", get_root_v2),
        Route("GET", f"{base}/wiki2/<wiki_id>", get_v2),
        Route("PUT", f"{base}/wiki2/<wiki_id>", update_v2),
        Route("PUT", f"{base}/wiki2/<wiki_id>/<wiki_version>", restore_v2),
        Route("DELETE", f"{base}/wiki2/<wiki_id>", delete_page),
        Route("GET", f"{base}/wikiheadertree2", header_tree_v2),
        Route("GET", f"{base}/wiki2/<wiki_id>/wikihistory", history),
        Route("GET", f"{base}/wiki2/<wiki_id>/attachmenthandles", attachment_handles_v2),
        Route("GET", f"{base}/wiki2/<wiki_id>/attachment", attachment),
        Route("GET", f"{base}/wiki2/<wiki_id>/attachmentpreview", attachment_preview),
        Route("GET", f"{base}/wiki2/<wiki_id>/markdown", markdown_redirect),
        Route("GET", f"{base}/wiki2orderhint", get_order_hint),
        Route("PUT", f"{base}/wiki2orderhint", put_order_hint),
    ]


ROUTES = _routes()
