"""Effective access: what each principal can do on every entity, after inheritance and teams.

Two halves, kept apart so the planner can reuse the first:

* **The engine** (:func:`effective_access`, :func:`user_permissions`, :func:`diff_access`,
  :func:`summarize_changes`) is pure: it works over an :class:`AccessWorld` — the entity tree,
  the ACLs of the entities that have their own, team memberships, who is certified — and never
  talks to Synapse. The same world with a *desired* ACL set (``world.with_acls(...)``) gives the
  access a plan would leave, and :func:`diff_access` says who gains or loses what where.
* **The reader** (:func:`read_access_world`) builds the live world with the fewest calls: one
  children listing per container (its headers carry ``benefactorId``, so it tells which
  entities have their own ACL), one ACL read per benefactor, one member listing per team named
  in an ACL, one bundle read per user (certification), and, unless turned off, one
  access-requirement listing per entity (Synapse has no batch read for them).

How Synapse decides (synapse-api-2.md §2.1; EntityAuthorizationUtils, UserEntityPermissionsState):
the benefactor is the nearest entity, self first, with its own ACL; a user holds an access type
when any ACL entry of the benefactor for one of the user's groups grants it — the user, every
team they belong to, AUTHENTICATED_USERS and PUBLIC. On top of that: editing anything but a
project, adding children and changing settings need certification; the entity's creator may
always change its settings (certified); anonymous visitors get READ only (PUBLIC entries may
carry nothing else); a project creator has no implicit rights beyond the project ACL Synapse wrote
at creation. Synapse administrators bypass ACLs and are not modelled (their membership is not
readable by ordinary users).

Download is further gated by access requirements (synapse-api-2.md §4.4): an unmet requirement on
the entity or an ancestor denies DOWNLOAD whatever the ACL says; the creator of a file counts as
approved for its requirements. Synapse lets a user read only their *own* approvals
(``GET /accessRequirement/{id}/status``), so the reader knows the caller's and nobody else's:
for everyone else (and for team / AUTHENTICATED_USERS rows) DOWNLOAD on an entity with
requirements is reported as gated (``canDownload`` false, the requirement ids on the row) — what
they get once approved is the ACL's DOWNLOAD. A world built with more knowledge (``approvals``)
gives exact answers; exemptions (``EXEMPTION_ELIGIBLE``) are not modelled.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from enum import Enum
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from .client.records import as_json_list
from .errors import ApiError, Forbidden, NotFound, ResolutionError

if TYPE_CHECKING:
    from .client.synapse import SynapseAPI
    from .errors import SourceLocation

T = TypeVar("T")
R = TypeVar("R")

PUBLIC_ID = 273949
AUTHENTICATED_USERS_ID = 273948
ANONYMOUS_ID = 273950
ROOT_ID = "syn4489"
# Synapse's own groups: never teams, so their member lists are not read.
SYSTEM_GROUPS = {
    PUBLIC_ID: "PUBLIC",
    AUTHENTICATED_USERS_ID: "AUTHENTICATED_USERS",
    ANONYMOUS_ID: "anonymous",
    2: "ADMINISTRATORS",
    3: "CERTIFIED_USERS",
}
CONTAINER_TYPES = frozenset({"project", "folder"})
_SYN_RE = re.compile(r"(?i)^syn(\d+)$")


class PrincipalType(Enum):
    USER = "user"
    TEAM = "team"
    PUBLIC = "PUBLIC"
    AUTHENTICATED_USERS = "AUTHENTICATED_USERS"
    GROUP = "group"


@dataclass(frozen=True, slots=True)
class Principal:
    id: int
    name: str
    type: PrincipalType

    @property
    def label(self) -> str:
        """``user:NAME``, ``team:NAME``, ``PUBLIC``, ``AUTHENTICATED_USERS`` or ``group:NAME``."""
        if self.type in (PrincipalType.PUBLIC, PrincipalType.AUTHENTICATED_USERS):
            return str(self.type.value)
        return f"{self.type.value}:{self.name}"


@dataclass(frozen=True, slots=True)
class Node:
    """An entity of the tree. ``type`` is Synapse's short type name (project, folder, file…)."""

    id: str
    name: str
    type: str
    parent_id: str | None
    created_by: int | None
    path: str


@dataclass(frozen=True, slots=True)
class Requirement:
    """An access requirement bound to an entity or one of its ancestors."""

    id: int
    name: str
    kind: str
    subjects: tuple[str, ...]


AclSet = Mapping[str, Mapping[int, frozenset[str]]]
"""Own ACLs by entity id: principal id → ACCESS_TYPE set."""


@dataclass(frozen=True)
class AccessWorld:
    """Everything the engine needs; no Synapse calls behind it.

    ``nodes`` lists parents before their children. ``acls`` holds the own ACL of every entity
    that has one (and of the benefactors above the tree named in ``inherited_from``).
    ``inherited_from`` says, for each top node, which benefactor its parent has (what the top
    node inherits when it has no ACL of its own); None when unknown (a project: Synapse's root).
    """

    nodes: tuple[Node, ...]
    acls: AclSet
    inherited_from: Mapping[str, str | None]
    principals: Mapping[int, Principal]
    members: Mapping[int, frozenset[int]]
    certified: frozenset[int]
    requirements: Mapping[str, tuple[Requirement, ...]] = field(default_factory=dict)
    paths: Mapping[str, str] = field(default_factory=dict)
    """Display paths of benefactors above the tree (the nodes carry their own)."""
    approvals: Mapping[int, frozenset[int]] = field(default_factory=dict)
    """User id → the access requirement ids they are known to be approved for (Synapse shows a
    user only their own: the reader fills in the caller's)."""

    def unmet(self, node: Node, user_id: int | None) -> tuple[int, ...]:
        """Requirement ids gating download of ``node`` for this user (None: anyone — a team's
        or AUTHENTICATED_USERS' row, or an anonymous visitor), as far as approvals are known."""
        found = self.requirements.get(node.id, ())
        if not found:
            return ()
        if user_id is not None and node.type == "file" and node.created_by == user_id:
            return ()  # Synapse treats a file's creator as approved for its requirements
        approved = self.approvals.get(user_id, frozenset()) if user_id is not None else frozenset()
        return tuple(r.id for r in found if r.id not in approved)

    def with_acls(self, acls: AclSet) -> AccessWorld:
        """The same tree and memberships under another ACL set (e.g. a plan's after-apply ACLs:
        the live set with the plan's creates/updates applied and its deletes removed)."""
        return replace(self, acls=acls)

    def principal(self, principal_id: int) -> Principal:
        return self.principals.get(principal_id) or default_principal(principal_id)

    @cached_property
    def _node_paths(self) -> dict[str, str]:
        return {node.id: node.path for node in self.nodes}

    def path_of(self, entity_id: str) -> str:
        found = self._node_paths.get(entity_id)
        return found if found is not None else self.paths.get(entity_id, entity_id)


def default_principal(principal_id: int) -> Principal:
    """PUBLIC, AUTHENTICATED_USERS, Synapse's other groups, or an id nobody named."""
    if principal_id == PUBLIC_ID:
        return Principal(PUBLIC_ID, "PUBLIC", PrincipalType.PUBLIC)
    if principal_id == AUTHENTICATED_USERS_ID:
        return Principal(
            AUTHENTICATED_USERS_ID, "AUTHENTICATED_USERS", PrincipalType.AUTHENTICATED_USERS
        )
    return Principal(
        principal_id, SYSTEM_GROUPS.get(principal_id, str(principal_id)), PrincipalType.GROUP
    )


@dataclass(frozen=True, slots=True)
class Permissions:
    """The UserEntityPermissions decisions the engine reproduces (synapse-api-2.md §2.1)."""

    can_view: bool
    can_download: bool
    can_edit: bool
    can_delete: bool
    can_change_permissions: bool
    can_change_settings: bool
    can_add_child: bool
    can_move: bool
    can_moderate: bool
    can_certified_user_edit: bool
    can_certified_user_add_child: bool

    def as_json(self) -> dict[str, bool]:
        return {
            "canView": self.can_view,
            "canDownload": self.can_download,
            "canEdit": self.can_edit,
            "canDelete": self.can_delete,
            "canChangePermissions": self.can_change_permissions,
            "canChangeSettings": self.can_change_settings,
            "canAddChild": self.can_add_child,
            "canMove": self.can_move,
            "canModerate": self.can_moderate,
            "canCertifiedUserEdit": self.can_certified_user_edit,
            "canCertifiedUserAddChild": self.can_certified_user_add_child,
        }


NO_PERMISSIONS = Permissions(*([False] * 11))


def derive_permissions(
    access: frozenset[str],
    *,
    entity_type: str,
    anonymous: bool = False,
    certified: bool = True,
    creator: bool = False,
    gated: bool = False,
) -> Permissions:
    """Synapse's decider chains over the raw access set (admins aside); ``gated``: unmet access
    requirements deny download."""
    if anonymous:
        # Anonymous callers: READ only; downloading needs OPEN_DATA, which this tree lacks.
        return replace(
            NO_PERMISSIONS,
            can_view="READ" in access,
            can_certified_user_edit="UPDATE" in access,
            can_certified_user_add_child="CREATE" in access,
        )
    can_edit = "UPDATE" in access and (entity_type == "project" or certified)
    can_change_permissions = "CHANGE_PERMISSIONS" in access
    return Permissions(
        can_view="READ" in access,
        can_download="DOWNLOAD" in access and not gated,
        can_edit=can_edit,
        can_delete="DELETE" in access,
        can_change_permissions=can_change_permissions,
        can_change_settings=certified and (creator or "CHANGE_SETTINGS" in access),
        can_add_child=certified and "CREATE" in access,
        can_move=can_edit and can_change_permissions,
        can_moderate="MODERATE" in access,
        can_certified_user_edit="UPDATE" in access,
        can_certified_user_add_child="CREATE" in access,
    )


@dataclass(frozen=True, slots=True)
class Grant:
    """One ACL entry that contributes to a row: on ``benefactor_id``, for ``principal``."""

    benefactor_id: str
    benefactor_path: str
    principal: Principal
    access: frozenset[str]


@dataclass(frozen=True, slots=True)
class AccessRow:
    """What ``principal`` can do on ``entity``, and through which ACL entries.

    For a user: everything that reaches them (own entry, their teams', AUTHENTICATED_USERS',
    PUBLIC's). For a team: its own entry (members add the rest on their own rows). For
    AUTHENTICATED_USERS: its entry and PUBLIC's (what any signed-in user gets). For PUBLIC:
    what an anonymous visitor gets. Group rows' decisions assume a certified member who did not
    create the entity; user rows use the user's real certification and creatorship.
    """

    entity: Node
    principal: Principal
    access: frozenset[str]
    permissions: Permissions
    grants: tuple[Grant, ...]
    benefactor_id: str
    download_gated_by: tuple[int, ...] = ()
    """Access requirements that deny this row's DOWNLOAD (not known to be met)."""

    @property
    def own_acl(self) -> bool:
        return self.benefactor_id == self.entity.id


@dataclass(frozen=True)
class AccessReport:
    world: AccessWorld
    rows: tuple[AccessRow, ...]
    benefactors: Mapping[str, str]

    def for_principal(self, principal_id: int) -> tuple[AccessRow, ...]:
        return tuple(row for row in self.rows if row.principal.id == principal_id)


def benefactors(world: AccessWorld) -> dict[str, str]:
    """Entity id → id of the entity whose ACL governs it (nearest with its own, self first)."""
    found: dict[str, str] = {}
    for node in world.nodes:
        if node.id in world.acls:
            found[node.id] = node.id
        elif node.parent_id is not None and node.parent_id in found:
            found[node.id] = found[node.parent_id]
        else:
            above = world.inherited_from.get(node.id)
            if above is None:
                raise ValueError(
                    f"{node.path} ({node.id}) has no ACL of its own and inherits from outside "
                    "the tree, but that benefactor is not known"
                )
            found[node.id] = above
    return found


def _teams_of(world: AccessWorld, user_id: int, entries: Mapping[int, frozenset[str]]) -> set[int]:
    return {
        pid
        for pid in entries
        if world.principal(pid).type is PrincipalType.TEAM
        and user_id in world.members.get(pid, frozenset())
    }


def _grants(
    world: AccessWorld, benefactor: str, entries: Mapping[int, frozenset[str]], ids: Iterable[int]
) -> tuple[Grant, ...]:
    path = world.path_of(benefactor)
    grants = [
        Grant(benefactor, path, world.principal(pid), entries[pid])
        for pid in set(ids)
        if entries.get(pid)
    ]
    # The principal's own entry first, then teams, AUTHENTICATED_USERS, PUBLIC.
    grants.sort(key=lambda g: (-type_rank(g.principal), g.principal.name))
    return tuple(grants)


def _user_row(
    world: AccessWorld,
    node: Node,
    benefactor: str,
    entries: Mapping[int, frozenset[str]],
    user: Principal,
) -> AccessRow | None:
    groups = {user.id, AUTHENTICATED_USERS_ID, PUBLIC_ID} | _teams_of(world, user.id, entries)
    grants = _grants(world, benefactor, entries, groups)
    access = frozenset().union(*(g.access for g in grants)) if grants else frozenset()
    unmet = world.unmet(node, user.id) if "DOWNLOAD" in access else ()
    permissions = derive_permissions(
        access,
        entity_type=node.type,
        certified=user.id in world.certified,
        creator=node.created_by == user.id,
        gated=bool(unmet),
    )
    if not access and permissions == NO_PERMISSIONS:
        return None
    # A certified creator keeps canChangeSettings even when no ACL entry reaches them.
    return AccessRow(node, user, access, permissions, grants, benefactor, unmet)


def _group_row(
    world: AccessWorld,
    node: Node,
    benefactor: str,
    entries: Mapping[int, frozenset[str]],
    principal: Principal,
) -> AccessRow | None:
    ids = {principal.id}
    if principal.type is PrincipalType.AUTHENTICATED_USERS:
        ids.add(PUBLIC_ID)  # every signed-in user also holds PUBLIC's grants
    grants = _grants(world, benefactor, entries, ids)
    access = frozenset().union(*(g.access for g in grants)) if grants else frozenset()
    if not access:
        return None
    unmet = world.unmet(node, None) if "DOWNLOAD" in access else ()
    permissions = derive_permissions(
        access,
        entity_type=node.type,
        anonymous=principal.type is PrincipalType.PUBLIC,
        gated=bool(unmet),
    )
    return AccessRow(node, principal, access, permissions, grants, benefactor, unmet)


def effective_access(world: AccessWorld, *, users: Iterable[Principal] = ()) -> AccessReport:
    """A row per entity and principal with any access: every principal of the benefactor's ACL,
    every member of a team in it, the entity's creator, and each of ``users`` (who may reach an
    entity only through AUTHENTICATED_USERS or PUBLIC). Users reached only through
    AUTHENTICATED_USERS or PUBLIC are not listed one by one: those groups' rows stand for them."""
    extra = list(users)
    governing = benefactors(world)
    rows: list[AccessRow] = []
    for node in world.nodes:
        benefactor = governing[node.id]
        entries = world.acls.get(benefactor, {})
        user_ids: set[int] = {u.id for u in extra}
        if node.created_by is not None and (
            world.principal(node.created_by).type is PrincipalType.USER
        ):
            user_ids.add(node.created_by)
        group_ids: list[int] = []
        for pid in entries:
            principal = world.principal(pid)
            if principal.type is PrincipalType.USER:
                user_ids.add(pid)
            else:
                group_ids.append(pid)
                if principal.type is PrincipalType.TEAM:
                    user_ids.update(world.members.get(pid, frozenset()))
        by_id = {u.id: u for u in extra}
        for uid in user_ids:
            user = by_id.get(uid) or world.principal(uid)
            if user.type is not PrincipalType.USER:
                user = Principal(uid, user.name, PrincipalType.USER)
            row = _user_row(world, node, benefactor, entries, user)
            if row is not None:
                rows.append(row)
        for gid in group_ids:
            row = _group_row(world, node, benefactor, entries, world.principal(gid))
            if row is not None:
                rows.append(row)
    order = {node.id: index for index, node in enumerate(world.nodes)}
    rows.sort(key=lambda r: (order[r.entity.id], type_rank(r.principal), r.principal.name))
    return AccessReport(world, tuple(rows), governing)


def type_rank(principal: Principal) -> int:
    """Report order: PUBLIC, AUTHENTICATED_USERS, teams, groups, users."""
    ranks = {
        PrincipalType.PUBLIC: 0,
        PrincipalType.AUTHENTICATED_USERS: 1,
        PrincipalType.TEAM: 2,
        PrincipalType.GROUP: 3,
        PrincipalType.USER: 4,
    }
    return ranks[principal.type]


def user_permissions(world: AccessWorld, entity_id: str, user_id: int | None) -> Permissions:
    """What ``GET /entity/{id}/permissions`` answers for this user (None: anonymous)."""
    governing = benefactors(world)
    node = next(n for n in world.nodes if n.id == entity_id)
    entries = world.acls.get(governing[entity_id], {})
    if user_id is None:
        access = entries.get(PUBLIC_ID, frozenset())
        return derive_permissions(access, entity_type=node.type, anonymous=True)
    groups = {user_id, AUTHENTICATED_USERS_ID, PUBLIC_ID} | _teams_of(world, user_id, entries)
    access = frozenset().union(*(entries.get(g, frozenset()) for g in groups))
    return derive_permissions(
        access,
        entity_type=node.type,
        certified=user_id in world.certified,
        creator=node.created_by == user_id,
        gated=bool(world.unmet(node, user_id)),
    )


# ---------------------------------------------------------------------------------------------
# Diffs (for plans: live world vs. the same world with the plan's ACLs)


@dataclass(frozen=True, slots=True)
class AccessChange:
    entity: Node
    principal: Principal
    gained: frozenset[str]
    lost: frozenset[str]


@dataclass(frozen=True, slots=True)
class AccessSummary:
    """``team:Center A gains DOWNLOAD on 14 entities (12 folders, 2 files)``."""

    principal: Principal
    gained: bool
    access_type: str
    entities: tuple[Node, ...]

    def describe(self) -> str:
        counts: dict[str, int] = {}
        for node in self.entities:
            counts[node.type] = counts.get(node.type, 0) + 1
        kinds = ", ".join(f"{n} {t}{'s' if n != 1 else ''}" for t, n in sorted(counts.items()))
        verb = "gains" if self.gained else "loses"
        if len(self.entities) == 1:
            where = self.entities[0].path
        else:
            where = f"{len(self.entities)} entities ({kinds})"
        return f"{self.principal.label} {verb} {self.access_type} on {where}"


def diff_access(before: AccessReport, after: AccessReport) -> tuple[AccessChange, ...]:
    """Per entity and principal, the access types gained and lost from ``before`` to ``after``
    (entities only in one of them count as having no access in the other)."""
    old = {(r.entity.id, r.principal.id): r for r in before.rows}
    new = {(r.entity.id, r.principal.id): r for r in after.rows}
    changes: list[AccessChange] = []
    order = {n.id: i for i, n in enumerate((*after.world.nodes, *before.world.nodes))}
    for key in sorted(old.keys() | new.keys(), key=lambda k: (order.get(k[0], 0), k[1])):
        was, now = old.get(key), new.get(key)
        old_access = was.access if was else frozenset()
        new_access = now.access if now else frozenset()
        if old_access == new_access:
            continue
        row = now or was
        assert row is not None
        changes.append(
            AccessChange(
                row.entity, row.principal, new_access - old_access, old_access - new_access
            )
        )
    return tuple(changes)


def summarize_changes(changes: Iterable[AccessChange]) -> tuple[AccessSummary, ...]:
    """Group changes by principal, direction and access type (one line each in a plan)."""
    groups: dict[tuple[int, bool, str], tuple[Principal, list[Node]]] = {}
    for change in changes:
        for gained, types in ((True, change.gained), (False, change.lost)):
            for access_type in sorted(types):
                key = (change.principal.id, gained, access_type)
                groups.setdefault(key, (change.principal, []))[1].append(change.entity)
    summaries = [
        AccessSummary(principal, gained, access_type, tuple(nodes))
        for (_, gained, access_type), (principal, nodes) in groups.items()
    ]
    summaries.sort(key=lambda s: (type_rank(s.principal), s.principal.name, not s.gained))
    return tuple(summaries)


# ---------------------------------------------------------------------------------------------
# Reading the live world


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """What the user asked for: ``syn123``, ``Project``, ``Project/Folder``; ``location`` when
    it came from a manifest."""

    text: str
    location: SourceLocation | None = None


@dataclass(frozen=True, slots=True)
class ReadStats:
    """How many calls the read took, by purpose (the "fewest calls" figure)."""

    targets: int
    children_pages: int
    acl_reads: int
    team_reads: int
    user_reads: int
    requirement_reads: int
    total: int


def _parallel(api: SynapseAPI, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    if len(items) <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=max(1, api.t.options.max_concurrency)) as pool:
        return list(pool.map(fn, items))


def _short_type(concrete: str) -> str:
    name = concrete.rsplit(".", 1)[-1]
    return {
        "FileEntity": "file",
        "EntityView": "entityview",
        "SubmissionView": "submissionview",
        "DockerRepository": "dockerrepo",
        "DatasetCollection": "datasetcollection",
        "MaterializedView": "materializedview",
        "VirtualTable": "virtualtable",
        "TableEntity": "table",
    }.get(name, name.lower())


def _syn_number(entity_id: str) -> str:
    return entity_id.lower().removeprefix("syn")


def _not_found(target: TargetSpec, message: str, hint: str) -> ResolutionError:
    return ResolutionError(
        f"access target {target.text!r}: {message}", location=target.location, hint=hint
    )


def _resolve(api: SynapseAPI, target: TargetSpec) -> str:
    text = target.text.strip()
    match = _SYN_RE.match(text)
    if match:
        return f"syn{match.group(1)}"
    parts = [p for p in text.split("/") if p]
    if not parts:
        raise _not_found(target, "empty", "give a project name, 'Project/Folder' or a syn id")
    parent: str | None = None
    for depth, name in enumerate(parts):
        found = api.lookup_child(parent, name)
        if found is None:
            where = "/".join(parts[:depth]) or "Synapse (no project of that name you can see)"
            raise _not_found(
                target,
                f"no entity named {name!r} in {where}",
                "names are exact and case-sensitive; give a project name, a path "
                "'Project/Folder' or a syn id",
            )
        parent = found
    assert parent is not None
    return parent


def _target_root(api: SynapseAPI, target: TargetSpec) -> tuple[Node, str]:
    """The target's node and its benefactor id (3 calls: path, entity, benefactor)."""
    entity_id = _resolve(api, target)
    try:
        path = [h for h in api.entity_path(entity_id) if h.get("id") != ROOT_ID]
        entity = api.get_entity(entity_id)
        benefactor = api.benefactor(entity_id)
    except NotFound as err:
        raise _not_found(target, f"{entity_id} does not exist", "check the syn id") from err
    except Forbidden as err:
        raise _not_found(
            target,
            f"you may not read {entity_id}",
            "an access review needs READ on the entity and its benefactor",
        ) from err
    node_type = _short_type(str(entity.get("concreteType", "")))
    parent = entity.get("parentId")
    node = Node(
        id=str(entity["id"]),
        name=str(entity["name"]),
        type=node_type,
        parent_id=str(parent) if parent else None,
        created_by=int(entity["createdBy"]) if entity.get("createdBy") else None,
        path="/".join(str(h["name"]) for h in path) or str(entity["name"]),
    )
    return node, f"syn{_syn_number(str(benefactor['id']))}"


def _entries(acl: Mapping[str, Any] | None) -> dict[int, frozenset[str]]:
    merged: dict[int, set[str]] = {}
    for entry in (acl or {}).get("resourceAccess", []):
        merged.setdefault(int(entry["principalId"]), set()).update(entry.get("accessType", []))
    return {pid: frozenset(access) for pid, access in merged.items()}


def _requirement(body: Mapping[str, Any]) -> Requirement:
    subjects = tuple(str(s.get("id")) for s in body.get("subjectIds", []) or [])
    return Requirement(
        id=int(body["id"]),
        name=str(body.get("name") or ""),
        kind=str(body.get("concreteType", "")).rsplit(".", 1)[-1],
        subjects=subjects,
    )


def read_access_world(
    api: SynapseAPI,
    targets: Sequence[TargetSpec],
    *,
    users: Sequence[Principal] = (),
    requirements: bool = True,
) -> tuple[AccessWorld, ReadStats]:
    """Read the trees under ``targets`` and everything the engine needs about them."""
    start = api.t.total_calls()
    roots = [_target_root(api, target) for target in targets]
    nodes: list[Node] = []
    seen: set[str] = set()
    own_acl: set[str] = set()
    inherited: dict[str, str | None] = {}
    outside: set[str] = set()
    children_pages = 0
    level: list[Node] = []
    for node, benefactor in roots:
        if node.id in seen:
            continue
        seen.add(node.id)
        nodes.append(node)
        level.append(node)
        if benefactor == node.id:
            own_acl.add(node.id)
            inherited[node.id] = None
        else:
            inherited[node.id] = benefactor
            outside.add(benefactor)
    # Breadth first, one listing per container (in parallel): parents precede their children.
    while level:
        containers = [n for n in level if n.type in CONTAINER_TYPES]
        children_pages += len(containers)
        listings = _parallel(api, lambda n: (n, as_json_list(api.children(n.id))), containers)
        level = []
        for parent, headers in listings:
            for header in headers:
                child_id = str(header["id"])
                if child_id in seen:
                    continue  # a target inside another target
                seen.add(child_id)
                created_by = header.get("createdBy")
                child = Node(
                    id=child_id,
                    name=str(header["name"]),
                    type=_short_type(str(header.get("type", ""))),
                    parent_id=parent.id,
                    created_by=int(created_by) if created_by else None,
                    path=f"{parent.path}/{header['name']}",
                )
                if str(header.get("benefactorId")) == _syn_number(child_id):
                    own_acl.add(child_id)
                nodes.append(child)
                level.append(child)
    # A target nested in another target was listed twice: keep tree order (parents first).
    nodes = _parents_first(nodes)
    in_tree = {n.id for n in nodes}
    for node in nodes:
        if node.id in inherited and node.parent_id in in_tree:
            inherited.pop(node.id)
    benefactor_ids = sorted(own_acl | outside)
    # Readable by construction: Synapse lists only children whose benefactor grants the caller
    # READ, and a readable target's benefactor grants READ too (GET .../acl needs READ).
    acl_bodies = _parallel(api, api.get_acl, benefactor_ids)
    acls = {bid: _entries(body) for bid, body in zip(benefactor_ids, acl_bodies, strict=True)}
    creators = {n.created_by for n in nodes if n.created_by is not None}
    principal_ids = sorted({pid for entries in acls.values() for pid in entries} | creators)
    principals: dict[int, Principal] = {u.id: u for u in users}
    unnamed = [pid for pid in principal_ids if pid not in SYSTEM_GROUPS]
    for start_at in range(0, len(unnamed), 100):
        for header in as_json_list(api.group_headers_by_ids(unnamed[start_at : start_at + 100])):
            pid = int(header["ownerId"])
            individual = bool(header.get("isIndividual"))
            principals[pid] = Principal(
                pid,
                str(header.get("userName") or pid),
                PrincipalType.USER if individual else PrincipalType.TEAM,
            )
    for pid in principal_ids:
        principals.setdefault(pid, default_principal(pid))
    team_ids = [pid for pid, p in principals.items() if p.type is PrincipalType.TEAM]
    members: dict[int, frozenset[int]] = {}
    for team_id, member_headers in zip(
        team_ids, _parallel(api, _members_or_none(api), team_ids), strict=True
    ):
        if member_headers is None:
            # Not a team (a group only Synapse staff can list): its grants stay on its row.
            principals[team_id] = replace(principals[team_id], type=PrincipalType.GROUP)
            continue
        ids: set[int] = set()
        for header in member_headers:
            uid = int(header["ownerId"])
            ids.add(uid)
            principals.setdefault(
                uid, Principal(uid, str(header.get("userName") or uid), PrincipalType.USER)
            )
        members[team_id] = frozenset(ids)
    user_ids = sorted(pid for pid, p in principals.items() if p.type is PrincipalType.USER)
    flags = _parallel(api, api.user_is_certified, user_ids)
    certified = frozenset(uid for uid, ok in zip(user_ids, flags, strict=True) if ok)
    found_requirements: dict[str, tuple[Requirement, ...]] = {}
    approvals: dict[int, frozenset[int]] = {}
    status_reads = 0
    if requirements:
        listed = _parallel(api, api.entity_access_requirements, [n.id for n in nodes])
        for node, bodies in zip(nodes, listed, strict=True):
            if bodies:
                found_requirements[node.id] = tuple(_requirement(b) for b in bodies)
        distinct = sorted({r.id for found in found_requirements.values() for r in found})
        if distinct:
            # The caller's own approvals: the only ones Synapse lets anyone read.
            caller = int(api.my_profile()["ownerId"])
            statuses = _parallel(api, api.access_requirement_status, distinct)
            status_reads = len(distinct) + 1
            approvals[caller] = frozenset(
                ar
                for ar, status in zip(distinct, statuses, strict=True)
                if status.get("isApproved")
            )
    paths: dict[str, str] = {}
    for bid in outside:
        try:
            paths[bid] = "/".join(
                str(h["name"]) for h in api.entity_path(bid) if h.get("id") != ROOT_ID
            )
        except ApiError:
            paths[bid] = bid
    world = AccessWorld(
        nodes=tuple(nodes),
        acls=acls,
        inherited_from=inherited,
        principals=principals,
        members=members,
        certified=certified,
        requirements=found_requirements,
        paths=paths,
        approvals=approvals,
    )
    stats = ReadStats(
        targets=len(roots),
        children_pages=children_pages,
        acl_reads=len(benefactor_ids),
        team_reads=len(team_ids),
        user_reads=len(user_ids),
        requirement_reads=(len(nodes) if requirements else 0) + status_reads,
        total=api.t.total_calls() - start,
    )
    return world, stats


def _members_or_none(api: SynapseAPI) -> Callable[[int], list[dict[str, Any]] | None]:
    def read(team_id: int) -> list[dict[str, Any]] | None:
        try:
            return as_json_list(api.team_member_ids(team_id))
        except (NotFound, Forbidden):
            return None

    return read


def _parents_first(nodes: list[Node]) -> list[Node]:
    """Depth-first tree order (each parent, then its children by name), so reports read like a
    file tree; a target nested in another target lands under its parent."""
    ids = {n.id for n in nodes}
    children: dict[str | None, list[Node]] = {}
    for node in nodes:
        children.setdefault(node.parent_id if node.parent_id in ids else None, []).append(node)
    for siblings in children.values():
        siblings.sort(key=lambda n: n.name)  # as the listings (by name), wherever a node came from
    ordered: list[Node] = []
    stack = list(reversed(children.get(None, [])))
    while stack:
        node = stack.pop()
        ordered.append(node)
        stack.extend(reversed(children.get(node.id, [])))
    return ordered


# ---------------------------------------------------------------------------------------------
# Resolving --user / --team


def resolve_user(api: SynapseAPI, name: str) -> Principal:
    """A user by user name (or numeric principal id); a clear error when there is none."""
    text = name.strip().removeprefix("user:")
    if text.isdigit():
        headers = api.group_headers_by_ids([int(text)])
    else:
        headers = api.headers_by_alias([text])
    for header in headers:
        if header.get("isIndividual"):
            return Principal(int(header["ownerId"]), str(header["userName"]), PrincipalType.USER)
    raise ResolutionError(
        f"--user {name!r}: no Synapse user of that name",
        hint="give the user name exactly as on their profile (or their numeric user id); for a "
        "team use --team",
    )


def resolve_team(api: SynapseAPI, name: str) -> Principal:
    """A team by exact name (case-insensitive, as Synapse's team names) or numeric id."""
    text = name.strip().removeprefix("team:")
    if text.isdigit():
        for header in api.group_headers_by_ids([int(text)]):
            if not header.get("isIndividual"):
                return Principal(
                    int(header["ownerId"]), str(header["userName"]), PrincipalType.TEAM
                )
    else:
        candidates = api.teams_by_fragment(text)
        for team in candidates:
            if str(team.get("name", "")).casefold() == text.casefold():
                return Principal(int(team["id"]), str(team["name"]), PrincipalType.TEAM)
        if candidates:
            names = ", ".join(repr(str(t.get("name"))) for t in candidates[:5])
            raise ResolutionError(
                f"--team {name!r}: no team of exactly that name",
                hint=f"did you mean {names}?",
            )
    raise ResolutionError(
        f"--team {name!r}: no Synapse team of that name",
        hint="give the team name exactly as on Synapse, or its numeric id",
    )
