"""Who can see what, beyond the ACLs the manifest manages.

* :func:`find_exposures` reports PUBLIC and AUTHENTICATED_USERS grants on entities under a
  managed project whose ACL the manifest leaves unmanaged (no ``acl:``), and on the undeclared
  entities in the children pages the plan reads anyway. A children page's ``benefactorId``
  says which entities have their own ACL, so an ACL is read only for those (an entity that
  inherits shows its benefactor's grants, which are reported where they are set). With
  ``everywhere`` (``plan --audit-public``, and ``folders_inherit: strict``, which must see every
  own ACL under a managed project) it walks the whole tree, one children listing per folder, and
  records what it found beyond the children pages as :class:`Walked` entities.
* :func:`own_acls` lists the own ACLs on undeclared entities (children pages and the walk), with
  how many entities below inherit from each: what ``folders_inherit: strict`` removes.
* :func:`principal_names` turns the principal ids of live ACLs into ``user:NAME`` /
  ``team:NAME`` (one batch call for the ids the manifest does not already name), so that plans
  show names, not numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from .client.records import as_json_list
from .errors import Forbidden, NotFound
from .model import (
    ANONYMOUS_ID,
    AUTHENTICATED_USERS_ID,
    PUBLIC_ID,
    AclSpec,
    Manifest,
    PrincipalKind,
    PrincipalRef,
    level_for,
)
from .plan import Target
from .resources.base import Address, sub_address

if TYPE_CHECKING:
    from .client.synapse import SynapseAPI
    from .state import LiveContainer

T = TypeVar("T")
R = TypeVar("R")

EVERYONE = {PUBLIC_ID: "PUBLIC", AUTHENTICATED_USERS_ID: "AUTHENTICATED_USERS"}
# How an exposure ends: set by hand outside the manifest, or taken away by this very plan.
OUTSIDE = "set outside this manifest, which does not manage this ACL"
REMOVED = "removed by this plan (folders_inherit: strict): it will inherit from its parent"


@dataclass(frozen=True, slots=True)
class Walked:
    """An entity the project walk listed beyond the children pages the plan reads anyway."""

    syn_id: str
    name: str
    type: str  # Synapse's concrete type
    parent_id: str
    benefactor_id: str
    created_by: str | None
    path: str  # display path, from the project
    address: str  # the declared container's address, then folder:/entity: segments
    anchor: str  # the address of the closest declared container above it

    @property
    def own_acl(self) -> bool:
        return self.benefactor_id == self.syn_id.removeprefix("syn")


@dataclass(frozen=True, slots=True)
class OwnAcl:
    """An undeclared entity under a managed project with its own ACL."""

    syn_id: str
    type: str  # Synapse's concrete type
    path: str
    address: str
    anchor: str
    heirs: int  # entities below it (that the plan listed) inheriting from its ACL


@dataclass(frozen=True, slots=True)
class Exposure:
    """An ACL entry that gives PUBLIC or AUTHENTICATED_USERS access, found on live Synapse."""

    path: str
    syn_id: str
    principal: int
    access: frozenset[str]

    def describe(self, names: Mapping[int, str]) -> str:
        level = level_for(self.access) or ",".join(sorted(self.access))
        return (
            f"{self.path} ({self.syn_id}): {names.get(self.principal, EVERYONE[self.principal])} "
            f"has {level} — {OUTSIDE}"
        )


def removed_by_plan(lines: Iterable[str], syn_ids: Iterable[str]) -> list[str]:
    """The exposure lines (:meth:`Exposure.describe`), those on an entity whose own ACL this plan
    removes saying so: the grant is not left outside the manifest, the plan takes it away."""
    marks = tuple(f" ({syn_id}): " for syn_id in syn_ids)
    return [
        line.replace(OUTSIDE, REMOVED) if any(mark in line for mark in marks) else line
        for line in lines
    ]


def _parallel(api: SynapseAPI, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    if len(items) <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=max(1, api.t.options.max_concurrency)) as pool:
        return list(pool.map(fn, items))


def _entries(acl: Mapping[str, Any]) -> dict[int, frozenset[str]]:
    entries: dict[int, set[str]] = {}
    for entry in acl.get("resourceAccess", []):
        entries.setdefault(int(entry["principalId"]), set()).update(entry.get("accessType", []))
    return {k: frozenset(v) for k, v in entries.items()}


def _own_acl(header: Mapping[str, Any]) -> bool:
    syn_id = str(header.get("id", ""))
    return str(header.get("benefactorId")) == syn_id.removeprefix("syn")


def _is_folder(header: Mapping[str, Any]) -> bool:
    return str(header.get("type", "")).endswith("Folder")


def find_exposures(
    api: SynapseAPI,
    manifest: Manifest,
    containers: Mapping[str, LiveContainer | None],
    observed: dict[str, str | None],
    *,
    everywhere: bool = False,
    read_acls: dict[str, tuple[str, dict[int, frozenset[str]]]] | None = None,
    walked: list[Walked] | None = None,
) -> list[Exposure]:
    """PUBLIC / AUTHENTICATED_USERS grants on unmanaged ACLs under the manifest's projects.

    By default: the declared projects and folders, and every other entity in the children pages
    the plan reads anyway (no extra listing). With ``everywhere`` (``plan --audit-public``):
    every entity under the managed projects, one children listing per folder not yet listed.
    Every ACL read here is recorded in ``observed`` (``<address>#acl`` or ``acl:<syn id>``), so a
    saved plan is stale when one of them changes. ``read_acls`` (when given) receives every
    undeclared entity's ACL read here: syn id → (etag, entries), for the access summary and
    ``folders_inherit: strict``; ``walked`` (when given) every entity the walk listed.
    """
    jobs: list[tuple[str, str, str]] = []  # (observed key, display path, syn id)
    # Folders to list (everywhere): (display path, folder id, address, declared anchor).
    unlisted: list[tuple[str, str, str, str]] = []
    declared_ids = {c.syn_id for c in containers.values() if c is not None}
    for spec in manifest.walk():
        live = containers.get(spec.address)
        if live is None:
            continue
        path = Address.parse(spec.address).display_path
        if spec.acl is None and live.own_acl:
            jobs.append((sub_address(spec.address, "acl"), path, live.syn_id))
        if live.children is None:
            unlisted.append((path, live.syn_id, spec.address, spec.address))
            continue
        declared = {child.name for child in spec.folders}
        for name, header in sorted(live.children.items()):
            if name in declared:
                continue
            if _own_acl(header):
                jobs.append((f"acl:{header['id']}", f"{path}/{name}", str(header["id"])))
            if _is_folder(header) and str(header["id"]) not in declared_ids:
                folder = str(Address.container("folder", name, spec.address))
                unlisted.append((f"{path}/{name}", str(header["id"]), folder, spec.address))
    while everywhere and unlisted:

        def listing(
            item: tuple[str, str, str, str],
        ) -> tuple[tuple[str, str, str, str], list[dict[str, Any]]]:
            return item, as_json_list(api.children(item[1]))

        level, unlisted = unlisted, []
        for (path, parent_id, parent, anchor), headers in _parallel(api, listing, level):
            for header in headers:
                syn_id, name = str(header["id"]), str(header.get("name"))
                if syn_id in declared_ids:
                    continue  # a declared folder moved by hand: its own spec covers it
                child = f"{path}/{name}"
                kind = "folder" if _is_folder(header) else "entity"
                address = str(Address.container(kind, name, parent))
                if walked is not None:
                    created = header.get("createdBy")
                    walked.append(
                        Walked(
                            syn_id=syn_id,
                            name=name,
                            type=str(header.get("type", "")),
                            parent_id=parent_id,
                            benefactor_id=str(header.get("benefactorId")),
                            created_by=None if created is None else str(created),
                            path=child,
                            address=address,
                            anchor=anchor,
                        )
                    )
                if _own_acl(header):
                    jobs.append((f"acl:{syn_id}", child, syn_id))
                if _is_folder(header):
                    unlisted.append((child, syn_id, address, anchor))

    def read(job: tuple[str, str, str]) -> tuple[str, str, str, Mapping[str, Any] | None]:
        key, path, syn_id = job
        try:
            return key, path, syn_id, api.get_acl(syn_id)
        except (Forbidden, NotFound):
            # Not ours to read (or gone meanwhile): the report cannot cover it, the plan can
            # still be made; the observed "unreadable" marker keeps a saved plan honest.
            return key, path, syn_id, {"etag": "unreadable"}

    found: list[Exposure] = []
    for key, path, syn_id, acl in _parallel(api, read, jobs):
        observed[key] = None if acl is None else str(acl.get("etag"))
        if acl is None:
            continue
        if read_acls is not None and key.startswith("acl:") and acl.get("etag") != "unreadable":
            read_acls[syn_id] = (str(acl.get("etag")), _entries(acl))
        for principal, access in sorted(_entries(acl).items()):
            if principal in EVERYONE and access:
                found.append(Exposure(path, syn_id, principal, access))
    return found


def own_acls(
    manifest: Manifest,
    containers: Mapping[str, LiveContainer | None],
    walked: Sequence[Walked],
) -> list[OwnAcl]:
    """Every undeclared entity with its own ACL that the plan listed (the children pages, and
    the walk when it ran), parents before children, each with the number of listed entities
    that inherit from it (pure)."""
    declared_ids = {c.syn_id for c in containers.values() if c is not None}
    heirs: dict[str, int] = {}
    found: list[OwnAcl] = []
    for spec in manifest.walk():
        live = containers.get(spec.address)
        if live is None or not live.children:
            continue
        declared = {child.name for child in spec.folders}
        path = Address.parse(spec.address).display_path
        for name, header in sorted(live.children.items()):
            syn_id = str(header.get("id"))
            benefactor = str(header.get("benefactorId"))
            if not _own_acl(header):
                heirs[benefactor] = heirs.get(benefactor, 0) + 1
            if name in declared or syn_id in declared_ids or not _own_acl(header):
                continue
            kind = "folder" if _is_folder(header) else "entity"
            address = str(Address.container(kind, name, spec.address))
            found.append(
                OwnAcl(
                    syn_id, str(header.get("type", "")), f"{path}/{name}", address, spec.address, 0
                )
            )
    for entity in walked:
        if not entity.own_acl:
            heirs[entity.benefactor_id] = heirs.get(entity.benefactor_id, 0) + 1
            continue
        found.append(
            OwnAcl(entity.syn_id, entity.type, entity.path, entity.address, entity.anchor, 0)
        )
    return [
        OwnAcl(
            a.syn_id,
            a.type,
            a.path,
            a.address,
            a.anchor,
            heirs.get(a.syn_id.removeprefix("syn"), 0),
        )
        for a in found
    ]


def within(address: str, gone: Iterable[str]) -> bool:
    """Whether ``address`` is one of ``gone`` or below one (pruned with its folder)."""
    return any(address == g or address.startswith(f"{g}/") for g in gone)


def principal_names(
    api: SynapseAPI,
    manifest: Manifest,
    containers: Mapping[str, LiveContainer | None],
    exposures: Iterable[Exposure],
    target: Target,
    principals: Mapping[PrincipalRef, int],
    extra: Iterable[int] = (),
) -> dict[int, str]:
    """``user:NAME`` / ``team:NAME`` for every principal id a plan may show (``extra``: ids of
    other ACLs the plan changes, e.g. those ``folders_inherit: strict`` removes)."""
    names: dict[int, str] = {
        PUBLIC_ID: "PUBLIC",
        AUTHENTICATED_USERS_ID: "AUTHENTICATED_USERS",
        ANONYMOUS_ID: "anonymous",
        target.user_id: f"user:{target.user_name}",
    }
    for ref, pid in principals.items():
        if ref.kind in (PrincipalKind.USER, PrincipalKind.TEAM):
            names[pid] = str(ref)
    wanted: set[int] = {e.principal for e in exposures} | set(extra)
    for spec in manifest.walk():
        live = containers.get(spec.address)
        if live is None:
            continue
        if live.acl is not None:
            wanted.update(live.acl.entries)
        if isinstance(spec.acl, AclSpec) and live.created_by and live.created_by.isdigit():
            if any(e.principal.kind is PrincipalKind.SELF for e in spec.acl.entries):
                wanted.add(int(live.created_by))
    unknown = sorted(wanted - set(names))
    if unknown:
        for header in api.group_headers_by_ids(unknown):
            kind = "user" if header.get("isIndividual") else "team"
            names[int(header["ownerId"])] = f"{kind}:{header.get('userName')}"
    return names
