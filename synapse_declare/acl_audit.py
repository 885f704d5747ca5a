"""Who can see what, beyond the ACLs the manifest manages.

* :func:`find_exposures` reports PUBLIC and AUTHENTICATED_USERS grants on entities under a
  managed project whose ACL the manifest leaves unmanaged (no ``acl:``), and on the undeclared
  entities in the children pages the plan reads anyway. A children page's ``benefactorId``
  says which entities have their own ACL, so an ACL is read only for those (an entity that
  inherits shows its benefactor's grants, which are reported where they are set).
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
            f"has {level} — set outside this manifest, which does not manage this ACL"
        )


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
) -> list[Exposure]:
    """PUBLIC / AUTHENTICATED_USERS grants on unmanaged ACLs under the manifest's projects.

    By default: the declared projects and folders, and every other entity in the children pages
    the plan reads anyway (no extra listing). With ``everywhere`` (``plan --audit-public``):
    every entity under the managed projects, one children listing per folder not yet listed.
    Every ACL read here is recorded in ``observed`` (``<address>#acl`` or ``acl:<syn id>``), so a
    saved plan is stale when one of them changes. ``read_acls`` (when given) receives every
    undeclared entity's ACL read here: syn id → (etag, entries), for the access summary and
    ``folders_inherit: strict``.
    """
    jobs: list[tuple[str, str, str]] = []  # (observed key, display path, syn id)
    unlisted: list[tuple[str, str]] = []  # (display path, folder id) to list (everywhere)
    for spec in manifest.walk():
        live = containers.get(spec.address)
        if live is None:
            continue
        path = Address.parse(spec.address).display_path
        if spec.acl is None and live.own_acl:
            jobs.append((sub_address(spec.address, "acl"), path, live.syn_id))
        if live.children is None:
            unlisted.append((path, live.syn_id))
            continue
        declared = {child.name for child in spec.folders}
        for name, header in sorted(live.children.items()):
            if name in declared:
                continue
            if _own_acl(header):
                jobs.append((f"acl:{header['id']}", f"{path}/{name}", str(header["id"])))
            if _is_folder(header):
                unlisted.append((f"{path}/{name}", str(header["id"])))
    while everywhere and unlisted:

        def listing(item: tuple[str, str]) -> tuple[str, list[dict[str, Any]]]:
            return item[0], as_json_list(api.children(item[1]))

        level, unlisted = unlisted, []
        for path, headers in _parallel(api, listing, level):
            for header in headers:
                child = f"{path}/{header.get('name')}"
                if _own_acl(header):
                    jobs.append((f"acl:{header['id']}", child, str(header["id"])))
                if _is_folder(header):
                    unlisted.append((child, str(header["id"])))

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
