"""Export: existing projects → a manifest directory whose plan is empty (issue 14).

Read-only: only GETs and Synapse's read-only POSTs (``/entity/child``, ``/entity/children``,
``bundle2`` reads). Per container: ONE ``bundle2`` (entity, annotations, ACL, root wiki id), its
children pages (folders recurse; files are listed, not exported: data is not infrastructure),
and its upload setting; per wiki, the header tree, each page, and the order hint where siblings
need one; one batch call for every principal name; one read per storage location.

Each kind turns what was read into manifest data through its EXPORT hook (the registry refuses a
kind without one); this module only reads, walks and lays the files out — one YAML file per
project with the yaml-language-server modeline, wiki pages as ``.md`` files beside it. What a
manifest cannot express becomes a warning and a comment in the file, never a silent drop.

Writing goes to a temporary directory next to ``--out`` that is renamed into place at the end,
so a failure leaves nothing half-written.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .client.records import WikiHeader, as_json
from .client.synapse import SynapseAPI
from .client.teams import TeamsAPI
from .errors import ExportError, Forbidden, NotFound
from .lifecycle import ADDRESS_KEY, MARKER_KEY, PROTECT_KEY
from .plan import Resource
from .resources import registry
from .resources.base import Operation
from .resources.container import ContainerKind
from .resources.exporting import (
    Commented,
    ExportContext,
    Principal,
    WikiNode,
    dump,
    slug,
    with_comment,
)
from .resources.storage import StorageLocationKind, UploadDestinationKind

# The teams kind's reader of ONE team (its read_teams starts from a manifest's declarations).
from .resources.team import TeamKind, _read_team
from .resources.wiki import WikiKind
from .state import FOLDER_TYPE, PROJECT_TYPE, whoami

SCHEMA_URL = "https://synapse-declare.dev/schemas/manifest.schema.json"
DEFAULT_MAX_ENTITIES = 5000
FILE_TYPE = "org.sagebionetworks.repo.model.FileEntity"


@dataclass(frozen=True, slots=True)
class ExportedProject:
    name: str
    syn_id: str
    manifest: str  # relative file name of its YAML
    containers: int
    files: int


@dataclass(frozen=True, slots=True)
class ExportResult:
    """Everything an export produces: file contents by relative path, and what to report."""

    files: dict[str, str]
    projects: tuple[ExportedProject, ...]
    warnings: tuple[str, ...]
    teams: tuple[str, ...]  # teams granted in the exported ACLs and declared in `teams:`
    references: tuple[str, ...]  # teams granted but left as team:NAME (the operator cannot manage)


@dataclass
class _Node:
    """One container as read."""

    syn_id: str
    entity: dict[str, Any]
    annotations: dict[str, Any]
    acl: dict[int, frozenset[str]] | None
    root_wiki: str | None
    upload: dict[str, Any] | None
    has_children: bool = True
    folders: list[_Node] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    others: list[tuple[str, str]] = field(default_factory=list)  # (name, type)
    wiki: WikiNode | None = None
    wiki_unordered: bool = False  # sibling pages the owner's order hint does not list
    only: bool = False  # an ancestor of a folder target: name only, nothing else managed


@dataclass
class _Walk:
    api: SynapseAPI
    cap: int
    target: str = ""
    user: str = ""
    seen: int = 0

    def count(self, more: int) -> None:
        self.seen += more
        if self.seen > self.cap:
            raise ExportError(
                f"{self.target} has more than {self.cap} entities ({self.seen} counted before "
                "stopping); nothing was written",
                hint="export a folder of it (PROJECT/FOLDER/...), or raise --max-entities",
            )


def _kinds() -> tuple[ContainerKind, WikiKind, StorageLocationKind, UploadDestinationKind]:
    container = registry.require(Resource.FOLDER, Operation.EXPORT)
    wiki = registry.require(Resource.WIKI_PAGE, Operation.EXPORT)
    location = registry.require(Resource.STORAGE_LOCATION, Operation.EXPORT)
    upload = registry.require(Resource.UPLOAD_DESTINATION, Operation.EXPORT)
    assert isinstance(container, ContainerKind) and isinstance(wiki, WikiKind)
    assert isinstance(location, StorageLocationKind)
    assert isinstance(upload, UploadDestinationKind)
    return container, wiki, location, upload


# ---------------------------------------------------------------------------------------------
# Reading


def _resolve(api: SynapseAPI, target: str, user: str) -> tuple[str, list[str]]:
    """A target → (project id, folder names from the project down to the target)."""
    text = target.strip()
    if text.lower().startswith("syn") and text[3:].isdigit():
        try:
            entity = api.get_entity(text)
        except NotFound:
            raise ExportError(f"{text} does not exist", hint="check the Synapse id") from None
        except Forbidden:
            raise _no_access(text, user) from None
        chain: list[str] = []
        while entity.get("concreteType") != PROJECT_TYPE:
            if entity.get("concreteType") != FOLDER_TYPE:
                raise ExportError(
                    f"{text} is a {str(entity.get('concreteType')).rsplit('.', 1)[-1]}, not a "
                    "project or folder",
                    hint="export the project or folder that holds it",
                )
            chain.insert(0, str(entity["name"]))
            entity = api.get_entity(str(entity["parentId"]))
        return str(entity["id"]), chain
    parts = [part for part in text.split("/") if part]
    if not parts:
        raise ExportError(
            f"empty export target {target!r}", hint="give a project name, a Synapse id or a path"
        )
    first, *rest = parts
    try:
        project = api.lookup_child(None, first)
    except Forbidden:
        raise _no_access(first, user) from None
    if project is None:
        raise ExportError(
            f"no project named {first!r} exists (or {user} cannot see it)",
            hint="project names are exact; give its Synapse id (syn123) instead",
        )
    parent = project
    for index, name in enumerate(rest):
        child = api.lookup_child(parent, name)
        if child is None:
            path = "/".join([first, *rest[: index + 1]])
            raise ExportError(f"no folder {path!r}", hint="check the folder path")
        parent = child
    return project, rest


def _no_access(target: str, user: str) -> ExportError:
    return ExportError(
        f"{user} cannot read {target}",
        hint="ask its owner to share it with you (view is enough to export)",
    )


def _read_node(walk: _Walk, syn_id: str, *, only: bool = False) -> _Node:
    api = walk.api
    try:
        bundle = api.bundle(
            syn_id,
            includeEntity=True,
            includeAnnotations=True,
            includeAccessControlList=True,
            includeRootWikiId=True,
            # Leaves (most of a tree) then need no children page.
            includeHasChildren=True,
        )
    except Forbidden:
        raise _no_access(syn_id, walk.user) from None
    entity = dict(bundle["entity"])
    acl = bundle.get("accessControlList")
    entries: dict[int, frozenset[str]] | None = None
    if acl is not None:
        merged: dict[int, set[str]] = {}
        for entry in acl.get("resourceAccess", []):
            merged.setdefault(int(entry["principalId"]), set()).update(entry["accessType"])
        entries = {k: frozenset(v) for k, v in merged.items()}
    return _Node(
        syn_id=syn_id,
        entity=entity,
        annotations=dict(bundle.get("annotations", {}).get("annotations", {})),
        acl=entries,
        root_wiki=bundle.get("rootWikiId"),
        has_children=bool(bundle.get("hasChildren", True)),
        upload=None if only else as_json(api.upload_setting(syn_id)),
        only=only,
    )


def _walk(walk: _Walk, node: _Node, chain: Sequence[str]) -> None:
    """Children of ``node``: the whole subtree, or only the next folder of ``chain``."""
    headers = walk.api.children(node.syn_id) if node.has_children or chain else []
    if chain:
        match = [h for h in headers if h.get("name") == chain[0] and h["type"] == FOLDER_TYPE]
        if not match:
            raise ExportError(
                f"{chain[0]!r} in {node.entity['name']!r} is not a folder",
                hint="export a project or a folder (files are listed with their folder)",
            )
        child = _read_node(walk, str(match[0]["id"]), only=len(chain) > 1)
        walk.count(1)
        node.folders.append(child)
        _walk(walk, child, chain[1:])
        return
    walk.count(len(headers))
    if not node.only:
        node.wiki = _read_wiki(walk.api, node)
    for header in headers:
        kind = str(header["type"])
        if kind == FOLDER_TYPE:
            child = _read_node(walk, str(header["id"]))
            node.folders.append(child)
            _walk(walk, child, ())
        elif kind == FILE_TYPE:
            node.files.append(str(header["name"]))
        else:
            node.others.append((str(header["name"]), kind.rsplit(".", 1)[-1]))


def _read_wiki(api: SynapseAPI, node: _Node) -> WikiNode | None:
    if node.root_wiki is None:
        return None
    headers = api.wiki_headers(node.syn_id)
    by_parent: dict[str | None, list[WikiHeader]] = {}
    for header in headers:
        by_parent.setdefault(header.get("parentId"), []).append(header)
    order: list[str] = []
    siblings = [
        str(h["id"]) for k, v in by_parent.items() if k is not None and len(v) > 1 for h in v
    ]
    if siblings:
        order = [str(i) for i in api.wiki_order_hint(node.syn_id).get("idList") or []]
        node.wiki_unordered = not set(siblings) <= set(order)
    rank = {page_id: i for i, page_id in enumerate(order)}

    def build(page_id: str) -> WikiNode:
        page = api.get_wiki(node.syn_id, page_id)
        children = sorted(
            by_parent.get(page_id, []),
            # The owner's order hint first (the web UI's order), then by title.
            key=lambda h: (rank.get(str(h["id"]), len(rank)), str(h.get("title"))),
        )
        attachments: tuple[str, ...] = ()
        if page.get("attachmentFileHandleIds"):
            attachments = tuple(sorted(api.wiki_attachment_names(node.syn_id, page_id)))
        return WikiNode(
            title=str(page.get("title") or ""),
            markdown=str(page.get("markdown") or ""),
            attachments=attachments,
            pages=tuple(build(str(h["id"])) for h in children),
        )

    return build(str(node.root_wiki))


# ---------------------------------------------------------------------------------------------
# Turning it into manifest data


def _container_data(
    ctx: ExportContext,
    node: _Node,
    path: str,
    wiki_dir: str,
    files: dict[str, str],
    inline_wiki: bool,
) -> Any:
    container, wiki_kind, _, upload_kind = _kinds()
    if node.only:
        data: dict[str, Any] = {"name": node.entity["name"]}
    else:
        data = container.export(ctx, node.entity, node.annotations, node.acl)
    comments: list[str] = []
    if node.upload is not None:
        data["storage"] = upload_kind.export(ctx, node.upload)
    if node.wiki is not None:
        data["wiki"], pages = wiki_kind.export(
            ctx, node.wiki, None if inline_wiki else wiki_dir, path
        )
        files.update(pages)
        if node.wiki_unordered:
            message = ctx.warn(
                f"{path} wiki",
                "Synapse has no recorded order for some sibling pages (they are written by "
                "title); plan will propose recording this order (a wiki-order change)",
            )
            data["wiki"] = with_comment(data["wiki"], message)
    if node.files:
        comments.append(
            f"{len(node.files)} file(s) here are listed, not exported (data is not "
            "infrastructure): " + ", ".join(sorted(node.files))
        )
    for name, kind in sorted(node.others):
        comments.append(
            ctx.warn(
                path,
                f"{kind} {name!r} is not exported (a manifest declares projects and folders)",
            )
        )
    if node.folders:
        taken: set[str] = set()
        data["folders"] = [
            _container_data(
                ctx,
                child,
                f"{path}/{child.entity['name']}",
                f"{wiki_dir}/{slug(str(child.entity['name']), taken)}",
                files,
                inline_wiki,
            )
            for child in sorted(node.folders, key=lambda c: str(c.entity["name"]))
        ]
    return Commented(data, tuple(comments)) if comments else data


def _locations(
    api: SynapseAPI, ctx: ExportContext, roots: Sequence[_Node], user_id: int
) -> dict[str, Any]:
    _, _, location_kind, _ = _kinds()
    ids: set[int] = set()
    stack = list(roots)
    while stack:
        node = stack.pop()
        if node.upload is not None:
            ids.update(int(i) for i in node.upload.get("locations", []))
        stack.extend(node.folders)
    out: dict[str, Any] = {}
    names: dict[int, str] = {}
    taken: set[str] = set()
    for location_id in sorted(ids):
        setting = as_json(api.get_storage_location(location_id))
        data = location_kind.export(setting)
        name = location_kind.export_name(setting, taken)
        if data is None:
            raise ExportError(
                f"storage location {location_id} is a {setting.get('concreteType')}, which a "
                "manifest cannot declare",
                hint="export the projects that do not use it, or change their upload "
                "destination first",
            )
        creator = setting.get("createdBy")
        if location_id != 1 and creator is not None and int(creator) != user_id:
            message = ctx.warn(
                f"storage location {name}",
                f"created by user {creator}, not you: plan matches only your own storage "
                "locations, so it would propose a new one with the same settings",
            )
            out[name] = Commented(data, (message,))
        else:
            out[name] = data
        names[location_id] = name
    ctx.location_names = names
    return out


def export_projects(
    api: SynapseAPI,
    targets: Sequence[str],
    *,
    max_entities: int = DEFAULT_MAX_ENTITIES,
    inline_wiki: bool = False,
) -> ExportResult:
    """Read ``targets`` (project names or ids, folder ids, or ``PROJECT/FOLDER/...`` paths) and
    build the manifest directory's files (``inline_wiki``: markdown in the YAML, for
    --stdout). Reads only; raises :class:`ExportError` for a bad
    target before anything is produced."""
    profile = whoami(api)
    user, user_id = str(profile["userName"]), int(profile["ownerId"])
    resolved = [_resolve(api, target, user) for target in targets]
    # A project named twice (two folders of it) is read once, with both chains.
    by_project: dict[str, list[list[str]]] = {}
    for project_id, chain in resolved:
        by_project.setdefault(project_id, []).append(chain)
    roots: list[_Node] = []
    for project_id, chains in by_project.items():
        walk = _Walk(api, max_entities, target=", ".join(targets), user=user)
        whole = any(not chain for chain in chains)
        root = _read_node(walk, project_id, only=not whole)
        walk.count(1)
        if whole:
            _walk(walk, root, ())
        else:
            for chain in chains:
                _walk(walk, root, chain)
        roots.append(root)
    # synapse-declare's own bookkeeping annotations are not the user's (protect: is declared
    # on the entry, not as an annotation).
    ctx = ExportContext(skip_keys=frozenset({MARKER_KEY, ADDRESS_KEY, PROTECT_KEY}))
    ids = sorted({pid for node in _all(roots) if node.acl for pid in node.acl})
    headers = api.group_headers_by_ids(ids) if ids else []
    ctx.principals = {
        int(h["ownerId"]): Principal(
            int(h["ownerId"]), h.get("userName") or None, bool(h.get("isIndividual"))
        )
        for h in headers
    }
    locations = _locations(api, ctx, roots, user_id)
    files: dict[str, str] = {}
    taken: set[str] = {"teams"}
    built: list[tuple[_Node, str, Any, dict[str, str], list[str]]] = []
    for root in sorted(roots, key=lambda n: str(n.entity["name"])):
        name = str(root.entity["name"])
        stem = slug(name, taken)
        project_files: dict[str, str] = {}
        before = len(ctx.warnings)
        data = _container_data(ctx, root, name, f"{stem}.wiki", project_files, inline_wiki)
        built.append((root, stem, data, project_files, ctx.warnings[before:]))
    # After the ACLs: they name the teams.
    teams, references = _teams(api, ctx, user_id)
    if teams and not inline_wiki:
        header = [
            f"yaml-language-server: $schema={SCHEMA_URL}",
            "",
            "Teams the exported ACLs grant to, that you manage: declared, membership included",
            "(pending invitations count as members).",
        ]
        files["teams.yaml"] = dump({"version": 1, "teams": teams}, header)
    projects: list[ExportedProject] = []
    for root, stem, data, project_files, warned in built:
        document: dict[str, Any] = {"version": 1}
        used = _used_locations(root, ctx)
        if used:
            document["storage_locations"] = {k: v for k, v in locations.items() if k in used}
        if teams and inline_wiki:
            document["teams"] = teams
        document["projects"] = [data]
        header = [
            f"yaml-language-server: $schema={SCHEMA_URL}",
            "",
            f"Exported from {api.t.endpoints.repo} ({root.syn_id}) by synapse-declare export.",
            "Omitted fields are unmanaged; a folder without `acl:` inherits its parent's.",
        ]
        header.extend(f"warning: {w}" for w in warned)
        files[f"{stem}.yaml"] = dump(document, header)
        files.update(project_files)
        projects.append(
            ExportedProject(
                name=str(root.entity["name"]),
                syn_id=root.syn_id,
                manifest=f"{stem}.yaml",
                containers=sum(1 for _ in _all([root])),
                files=sum(len(n.files) for n in _all([root])),
            )
        )
    return ExportResult(
        files=files,
        projects=tuple(projects),
        warnings=tuple(ctx.warnings),
        teams=tuple(str(t["name"]) for t in teams),
        references=references,
    )


def _teams(
    api: SynapseAPI, ctx: ExportContext, user_id: int
) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    """The teams kind's export of each team the ACLs grant to and the operator manages; the
    others stay team:NAME references (declaring a team makes its membership managed, which
    plan refuses for a team you do not manage)."""
    kind = registry.require(Resource.TEAM, Operation.EXPORT)
    assert isinstance(kind, TeamKind)
    client = TeamsAPI(api.t)
    ids = {p.name: p.id for p in ctx.principals.values() if not p.individual and p.name}
    names: dict[int, str] = {}
    declared: list[dict[str, Any]] = []
    references: list[str] = []
    read = [(name, _read_team(client, str(ids[name]), names)) for name in sorted(ctx.teams)]
    # Members come with their user names; people only invited come as ids, and the manifest
    # names users (`user:3350001` would be read back as a user *named* 3350001).
    invited = sorted({u for _, team in read for u in team.invitations if u not in names})
    if invited:
        for found in api.group_headers_by_ids(invited):
            names[int(found["ownerId"])] = str(found.get("userName"))
    for name, team in read:
        if team.manageable and team.members.get(user_id):
            declared.append(kind.export(team, names, user_id))
        else:
            references.append(name)
    return declared, tuple(references)


def _all(roots: Sequence[_Node]) -> list[_Node]:
    found: list[_Node] = []
    stack = list(roots)
    while stack:
        node = stack.pop()
        found.append(node)
        stack.extend(node.folders)
    return found


def _used_locations(root: _Node, ctx: ExportContext) -> set[str]:
    return {
        ctx.location_names[int(i)]
        for node in _all([root])
        if node.upload is not None
        for i in node.upload.get("locations", [])
    }


# ---------------------------------------------------------------------------------------------
# Writing


def write_export(result: ExportResult, out: Path, *, force: bool) -> None:
    """Write ``result`` under ``out`` atomically: into a temporary sibling directory, then one
    rename (an existing ``out`` is replaced only with ``force``)."""
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out} exists and is not a directory", hint="choose another path")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ExportError(
            f"--out {out} is not empty; nothing was written",
            hint="choose an empty or new directory, or pass --force to replace its contents",
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.export-", dir=out.parent))
    try:
        for relative, text in sorted(result.files.items()):
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8", newline="\n")
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, old / out.name)
            os.replace(staging, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, out)
    except OSError as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise ExportError(f"cannot write {out}: {err.strerror or err}") from err


__all__ = [
    "DEFAULT_MAX_ENTITIES",
    "ExportResult",
    "export_projects",
    "write_export",
]
