"""The read side of pruning (issue 11): what a ``prune:`` container's undeclared folders hold.

Read only for containers with ``prune:`` set, one bundle (entity + annotations: the markers
that say synapse-declare created it, or that it is protected) and one children listing per
folder of the candidate's subtree (files counted, bytes summed by Synapse in the same page).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from .model import Manifest, Prune
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
