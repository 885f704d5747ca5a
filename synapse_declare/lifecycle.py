"""The read side of the lifecycle (issue 11), and the small pure pieces the planner calls.

Pruning: what a ``prune:`` container's undeclared folders hold, read only for containers with
``prune:`` set: one bundle (entity + annotations: the markers that say synapse-declare created
it, or that it is protected) and one children listing per folder of the candidate's subtree
(files counted, bytes summed by Synapse in the same page).

Identity beyond the path, read only when a declared name is missing: ``previously:`` names and
paths, the address marker on an undeclared sibling (renamed by hand), the caller's trash, and
the project walk (moved by hand); for projects, ``previously:`` names and the trash.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from .client.records import as_json_list
from .errors import Forbidden, NotFound
from .model import ContainerSpec, Manifest, Prune
from .plan import FieldChange
from .resources.base import Address

if TYPE_CHECKING:
    from .client.synapse import SynapseAPI
    from .state import LiveContainer

T = TypeVar("T")
R = TypeVar("R")

MARKER_KEY = "synapse_declare_managed"  # written at create (projects and folders) and adoption
PROTECT_KEY = "synapse_declare_protected"  # written for `protect: true`; refuses deletion
# A folder's address when synapse-declare created it (in the create call): how a folder renamed by
# hand is recognised among its parent's undeclared folders.
ADDRESS_KEY = "synapse_declare_address"
FOLDER_TYPE = "org.sagebionetworks.repo.model.Folder"
FILE_TYPE = "org.sagebionetworks.repo.model.FileEntity"
TRASH_RETENTION_DAYS = 30  # Synapse's trash worker purges older rows (synapse-api-2.md §3.1)


@dataclass(frozen=True, slots=True)
class PruneCandidate:
    """An undeclared folder directly under a ``prune:`` container, and what deleting it takes."""

    syn_id: str
    etag: str
    managed: bool  # carries synapse-declare's marker
    protected: bool
    files: int
    bytes: int
    folders: int  # sub-folders that would go with it


@dataclass(frozen=True, slots=True)
class Relocation:
    """A declared folder found under a name or path from its ``previously:`` list."""

    previous: str  # the old name (same parent) or project-relative path
    parent_id: str  # where it is now
    # How it got there when found by its address marker ("renamed by hand", "moved by hand",
    # "moved and renamed by hand"); empty when found through `previously:`.
    by_hand: str = ""


def relocation_reason(relocation: Relocation) -> str:
    """Why a found folder's update renames or moves it (the plan's reason)."""
    if relocation.by_hand:
        return (
            f"{relocation.by_hand} (found at {relocation.previous!r} by its address marker): "
            "put back, keeping its id and contents"
        )
    return (
        f"found at its previous name {relocation.previous!r}: renamed/moved, keeping its id "
        "and contents"
    )


def find_previous(
    api: SynapseAPI,
    previously: Sequence[str],
    siblings: dict[str, dict[str, Any]],
    project_id: str,
) -> tuple[str, str] | None:
    """(syn id, old name or path) of the first ``previously`` entry that exists as a folder.
    An old name costs nothing (the parent's children page is already read); an old path one
    lookup per segment."""
    for old in previously:
        if "/" not in old:
            header = siblings.get(old)
            if header is not None and header.get("type") == FOLDER_TYPE:
                return str(header["id"]), old
            continue
        current: str | None = project_id
        for name in old.strip("/").split("/"):
            current = api.lookup_child(current, name) if current else None
        if current is not None:
            return current, old
    return None


def find_renamed(
    api: SynapseAPI,
    wanted: set[str],
    siblings: dict[str, dict[str, Any]],
    declared: set[str],
    seen: dict[str, str | None],
) -> tuple[str, str] | None:
    """(syn id, name) of the undeclared sibling folder whose ADDRESS_KEY is one of ``wanted``:
    a folder renamed by hand. One annotations read per undeclared sibling (``seen`` caches them
    across the missing folders of one parent), only when a declared name is missing."""
    for name, header in sorted(siblings.items()):
        if name in declared or header.get("type") != FOLDER_TYPE:
            continue
        syn_id = str(header["id"])
        if syn_id not in seen:
            keys = api.bundle(syn_id, includeAnnotations=True).get("annotations", {})
            value = keys.get("annotations", {}).get(ADDRESS_KEY, {}).get("value") or []
            seen[syn_id] = value[0] if value else None
        if seen[syn_id] in wanted:
            return syn_id, name
    return None


@dataclass(frozen=True, slots=True)
class WalkedFolder:
    """A folder somewhere under a project, found by the project walk (``find_moved``)."""

    syn_id: str
    name: str
    path: str  # project-relative, "Archive/Raw"


# The project walk lists no more once it has seen this many folders, and reads at most this many
# address markers: at most ~WALK_LIMIT listings and as many marker reads (about a minute of
# Synapse's 600 requests/minute), once per plan. Folders in the children pages the reader already
# listed are seen for free (and count towards the limit, so the walk covers at least what it did
# when it listed them itself). Beyond it, a folder moved by hand is found only where the walk
# reached; the plan says so (see find_elsewhere).
WALK_LIMIT = 300


@dataclass(frozen=True, slots=True)
class ProjectWalk:
    """What the project walk saw (``walk_project``), kept for every missing folder of a plan."""

    folders: tuple[WalkedFolder, ...]
    complete: bool  # False: the project has more than WALK_LIMIT folders; not all were seen


def walk_project(
    api: SynapseAPI,
    project_id: str,
    pages: Mapping[str, Sequence[Mapping[str, Any]]],
    limit: int = WALK_LIMIT,
) -> ProjectWalk:
    """The folders under the project, level by level until ``limit`` folders are seen.
    ``pages`` holds the children pages the state reader already listed (syn id → headers: the
    declared containers with declared folders or ``prune:``): they are reused, so the walk lists
    (folders only, in parallel) just the folders whose page was not read — undeclared folders'
    subtrees and declared leaves. Made only when a declared folder is missing under its name and
    its ``previously:``/sibling markers and the trash did not explain it, once per project per
    plan, after the declared tree is read."""
    found: list[WalkedFolder] = []
    level: list[tuple[str, str]] = [(project_id, "")]
    while level:
        if len(found) >= limit:
            # Every folder seen is kept: the listings stop here, and find_moved bounds the marker
            # reads (folders at a declared path, most of what the reader's pages show, cost none).
            return ProjectWalk(tuple(found), complete=False)

        def listing(job: tuple[str, str]) -> list[WalkedFolder]:
            syn_id, path = job
            try:
                headers = api.children(syn_id, ["folder"])
            except (Forbidden, NotFound):
                return []  # trashed or closed to us since its parent's page: nothing to find
            return _walked(headers, path)

        unread = [job for job in level if job[0] not in pages]
        listed = dict(zip(unread, _parallel(api, listing, unread), strict=True))
        below = [
            f
            for job in level
            for f in (_walked(pages[job[0]], job[1]) if job[0] in pages else listed[job])
        ]
        found.extend(below)
        level = [(f.syn_id, f.path) for f in below]
    return ProjectWalk(tuple(found), complete=True)


def _walked(headers: Iterable[Mapping[str, Any]], path: str) -> list[WalkedFolder]:
    return [
        WalkedFolder(str(h["id"]), str(h["name"]), f"{path}/{h['name']}".lstrip("/"))
        for h in headers
        if h.get("type") == FOLDER_TYPE
    ]


def find_moved(
    api: SynapseAPI,
    wanted: set[str],
    name: str,
    folders: Sequence[WalkedFolder],
    declared_paths: set[str],
    seen: dict[str, str | None],
    limit: int = WALK_LIMIT,
) -> tuple[str, str] | None:
    """(syn id, project-relative path) of the folder anywhere in the project whose ADDRESS_KEY
    is one of ``wanted``: a folder moved by hand to another parent (renamed or not). Folders at
    a declared path are skipped (they are that declared folder); folders with the missing
    folder's name are read first (a plain move), then every other one, nearest the project
    first, at most ``limit`` of them: one annotations read each, cached in ``seen`` across the
    plan's missing folders."""
    candidates = sorted(
        (f for f in folders if f.path not in declared_paths),
        key=lambda f: (f.name != name, f.path.count("/"), f.path),
    )[:limit]
    first = [f for f in candidates if f.name == name]
    for batch in (first, candidates[len(first) :]):
        unread = [f.syn_id for f in batch if f.syn_id not in seen]
        for syn_id, value in zip(unread, _parallel(api, _address_marker(api), unread), strict=True):
            seen[syn_id] = value
        for folder in batch:
            if seen[folder.syn_id] in wanted:
                return folder.syn_id, folder.path
    return None


def find_elsewhere(
    api: SynapseAPI,
    address: str,
    project_id: str,
    declared: set[str],
    walks: dict[str, ProjectWalk],
    seen: dict[str, str | None],
    notes: list[str],
    pages: Mapping[str, Sequence[Mapping[str, Any]]],
) -> tuple[str, str] | None:
    """A declared folder moved by hand anywhere under its project, by its address marker: the
    project walk (``walk_project``, reusing the children ``pages`` already read) once per
    project, then ``find_moved``. ``declared`` holds every declared container's display path
    ("P/Raw/RNAseq"). When the walk stopped at its limit and did not find the folder, ``notes``
    says so (the plan shows it as a warning)."""
    parsed = Address.parse(address)
    project = parsed.names[0]
    if project_id not in walks:
        walks[project_id] = walk_project(api, project_id, pages)
    walk = walks[project_id]
    at_declared = {p.removeprefix(project + "/") for p in declared if p.startswith(project + "/")}
    found = find_moved(api, {address}, parsed.names[-1], walk.folders, at_declared, seen)
    unread = sum(1 for f in walk.folders if f.path not in at_declared) > WALK_LIMIT
    if found is None and (unread or not walk.complete):
        notes.append(
            f"{parsed.display_path} is not in Synapse under its declared name; it is created, "
            f"after a search for a folder moved by hand that stopped at {WALK_LIMIT} of the "
            f"project's folders: if it was moved or renamed, declare `previously: [its path]` "
            "to move it back instead"
        )
    return found


def _address_marker(api: SynapseAPI) -> Callable[[str], str | None]:
    def read(syn_id: str) -> str | None:
        try:
            keys = api.bundle(syn_id, includeAnnotations=True).get("annotations", {})
        except (Forbidden, NotFound):
            return None  # gone or closed since the walk listed it: not the missing folder
        value = keys.get("annotations", {}).get(ADDRESS_KEY, {}).get("value")
        return str(value[0]) if value else None

    return read


ROOT_ID = "syn4489"  # every project's parent


def find_project_elsewhere(
    api: SynapseAPI,
    spec: ContainerSpec,
    relocated: dict[str, Relocation],
    trashed: dict[str, str],
    trash: list[list[dict[str, Any]]],
) -> tuple[str | None, str]:
    """A declared project missing under its name: (syn id, the name it has) when it is found
    under a ``previously:`` name (one lookup each; it is renamed back), else (None, name) after
    looking in the caller's trash (one trash view per plan, shared with folders; a trashed project
    is restored). Made only when a declared project's name is missing."""
    for old in spec.previously:
        try:
            syn_id = api.lookup_child(None, old)
        except Forbidden:
            continue  # someone else's project of that name: not ours to rename
        if syn_id is not None:
            relocated[spec.address] = Relocation(old, ROOT_ID)
            return syn_id, old
    if not trash:
        trash.append(as_json_list(api.trash_view()))
    for row in trash[0]:
        if (
            row.get("entityName") == spec.name
            and row.get("originalParentId") == ROOT_ID
            and str(row.get("entityType", "")).lower().endswith("project")
        ):
            trashed[spec.address] = str(row["entityId"])
            break
    return None, spec.name


def project_rename(
    spec: ContainerSpec, current: LiveContainer, entity_update: dict[str, Any]
) -> list[FieldChange]:
    """``~ name`` for a project found under a ``previously:`` name: the container's one
    etag-guarded ``PUT /entity`` carries it (a project's parent is always the root)."""
    if current.name == spec.name:
        return []
    entity_update["name"] = spec.name
    return [FieldChange("name", current.name, spec.name)]


def release_protection(
    spec: ContainerSpec,
    live: Mapping[str, Any] | None,
    after: dict[str, Any] | None,
    fields: list[FieldChange],
) -> dict[str, Any] | None:
    """``protect: false`` on an entity that carries PROTECT_KEY: the key goes (in the
    container's one etag-guarded annotations write), so a later prune may delete it. ``after``
    is the annotations the update writes already (None: none); the result replaces it."""
    if not spec.unprotect or live is None or PROTECT_KEY not in live:
        return after
    released = dict(after if after is not None else live)
    del released[PROTECT_KEY]
    fields.append(FieldChange(f"annotations.{PROTECT_KEY}", "true", None))
    return released


def _parallel(api: SynapseAPI, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    if len(items) <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=max(1, api.t.options.max_concurrency)) as pool:
        return list(pool.map(fn, items))


def read_candidates(
    api: SynapseAPI,
    manifest: Manifest,
    containers: dict[str, LiveContainer | None],
    relocated_ids: set[str],
) -> dict[str, PruneCandidate]:
    """``relocated_ids``: declared folders found under an old name; never candidates."""
    jobs: list[tuple[str, str]] = []  # (address, syn id)
    for spec in manifest.walk():
        live = containers.get(spec.address)
        if spec.prune is Prune.OFF or live is None or live.children is None:
            continue
        declared = {child.name for child in spec.folders}
        for name, header in sorted(live.children.items()):
            if (
                name not in declared
                and header.get("type") == FOLDER_TYPE
                and str(header["id"]) not in relocated_ids
            ):
                address = str(Address.container("folder", name, spec.address))
                jobs.append((address, str(header["id"])))

    def read(job: tuple[str, str]) -> tuple[str, PruneCandidate]:
        address, syn_id = job
        bundle = api.bundle(syn_id, includeEntity=True, includeAnnotations=True)
        keys = bundle.get("annotations", {}).get("annotations", {})
        files = size = folders = 0
        pending = [syn_id]
        while pending:
            headers, total = api.children_census(pending.pop())
            size += total
            for header in headers:
                if header.get("type") == FOLDER_TYPE:
                    folders += 1
                    pending.append(str(header["id"]))
                elif header.get("type") == FILE_TYPE:
                    files += 1
        return address, PruneCandidate(
            syn_id=syn_id,
            etag=str(bundle["entity"]["etag"]),
            managed=MARKER_KEY in keys,
            protected=PROTECT_KEY in keys,
            files=files,
            bytes=size,
            folders=folders,
        )

    return dict(_parallel(api, read, jobs))
