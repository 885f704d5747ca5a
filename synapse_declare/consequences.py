"""What a plan does to effective access: the live world and the after-apply world, both built
from what the state reader already holds (no extra Synapse calls), diffed by the access engine.

The live world's nodes are the managed projects and folders plus the children the reader listed
(their headers carry ``benefactorId`` and ``createdBy``); its ACLs are the ones the reader read.
An own ACL that was not read (the manifest leaves it alone, or an unlisted child has one) is the
same before and after, so it enters both worlds empty: nothing under it changes, and nothing
under it is reported. Teams are reported as teams: their members are not read, so a member's
gain shows as the team's line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from .access import (
    AccessSummary,
    AccessWorld,
    Node,
    Principal,
    PrincipalType,
    default_principal,
    diff_access,
    effective_access,
    summarize_changes,
)
from .model import INHERIT, ContainerSpec, Manifest, PrincipalKind
from .plan import AccessConsequence
from .state import PROJECT_TYPE, LiveContainer, LiveState

DesiredAcl = Callable[[ContainerSpec, LiveState], Mapping[int, frozenset[str]] | None]

# What Synapse gives the creator of a new project that declares no ACL.
CREATOR_ACCESS = frozenset(
    {
        "READ",
        "DOWNLOAD",
        "CREATE",
        "UPDATE",
        "DELETE",
        "CHANGE_PERMISSIONS",
        "CHANGE_SETTINGS",
        "MODERATE",
    }
)


@dataclass(frozen=True)
class PlanWorlds:
    live: AccessWorld
    desired: AccessWorld
    specs: Mapping[str, ContainerSpec]
    """Entity id (live or ``new:<address>``) → the manifest entry that declares it."""
    unread: frozenset[str]
    """Entities with an own ACL the reader did not read (the manifest leaves it alone)."""


def _short(concrete: object) -> str:
    return str(concrete).rsplit(".", 1)[-1].lower() if concrete else "entity"


def principals_of(live: LiveState) -> dict[int, Principal]:
    """Principal id → who it is, from the names the reader resolved and saw in live ACLs."""
    found: dict[int, Principal] = {}
    for pid, label in live.principal_names.items():
        kind, _, name = label.partition(":")
        if kind == "user" and name:
            found[pid] = Principal(pid, name, PrincipalType.USER)
        elif kind == "team" and name:
            found[pid] = Principal(pid, name, PrincipalType.TEAM)
    for ref, pid in live.principals.items():
        if ref.kind is PrincipalKind.USER and ref.name:
            found[pid] = Principal(pid, ref.name, PrincipalType.USER)
        elif ref.kind is PrincipalKind.TEAM and ref.name:
            found[pid] = Principal(pid, ref.name, PrincipalType.TEAM)
        elif pid not in found:
            found[pid] = default_principal(pid)
    # A declared team that does not exist yet is named in ACLs by its stand-in id (team.py).
    for address, team in live.teams.teams.items():
        if team is None:
            name = address.removeprefix("team:")
            stand_in = live.teams.placeholder(name)
            if stand_in is not None:
                found[stand_in] = Principal(stand_in, name, PrincipalType.TEAM)
    user = live.target
    found[user.user_id] = Principal(user.user_id, user.user_name, PrincipalType.USER)
    return found


def plan_worlds(manifest: Manifest, live: LiveState, desired_acl: DesiredAcl) -> PlanWorlds:
    """The live world and the world after the plan's ACL creates, updates and inherits."""
    nodes: list[Node] = []
    after_nodes: list[Node] = []
    acls: dict[str, dict[int, frozenset[str]]] = {}
    after: dict[str, dict[int, frozenset[str]]] = {}
    specs: dict[str, ContainerSpec] = {}
    unread: set[str] = set()
    operator = live.target.user_id

    def visit(spec: ContainerSpec, parent_id: str | None, path: str, parent_exists: bool) -> None:
        current = live.containers.get(spec.address) if parent_exists else None
        is_project = parent_id is None
        declared = desired_acl(spec, live)
        here = f"{path}/{spec.name}" if path else spec.name
        if current is None:
            node_id = f"new:{spec.address}"
            kind = "project" if is_project else "folder"
            node = Node(node_id, spec.name, kind, parent_id, operator, here)
            after_nodes.append(node)
            if declared is not None:
                after[node_id] = dict(declared)
            elif is_project:
                after[node_id] = {operator: CREATOR_ACCESS}
        else:
            node_id = current.syn_id
            creator = current.created_by or ""
            created = int(creator) if creator.isdigit() else None
            node = Node(
                node_id,
                spec.name,
                "project" if current.concrete_type == PROJECT_TYPE else "folder",
                parent_id,
                created,
                here,
            )
            nodes.append(node)
            after_nodes.append(node)
            if current.own_acl:
                if current.acl is None:
                    unread.add(node_id)
                entries = dict(current.acl.entries) if current.acl is not None else {}
                acls[node_id] = entries
                after[node_id] = entries
            if declared is not None:
                after[node_id] = dict(declared)
            elif spec.acl is INHERIT and not is_project:
                after.pop(node_id, None)
            _unlisted_children(
                spec, current, node_id, here, nodes, after_nodes, acls, after, unread
            )
        specs[node_id] = spec
        for child in spec.folders:
            visit(child, node_id, here, current is not None)

    for project in manifest.projects:
        visit(project, None, "", True)
    principals = principals_of(live)
    live_world = AccessWorld(
        nodes=tuple(nodes),
        acls=acls,
        inherited_from={},
        principals=principals,
        members={},
        certified=frozenset(),
    )
    desired = replace(live_world, nodes=tuple(after_nodes), acls=after)
    return PlanWorlds(live_world, desired, specs, frozenset(unread))


def _unlisted_children(
    spec: ContainerSpec,
    current: LiveContainer,
    node_id: str,
    path: str,
    nodes: list[Node],
    after_nodes: list[Node],
    acls: dict[str, dict[int, frozenset[str]]],
    after: dict[str, dict[int, frozenset[str]]],
    unread: set[str],
) -> None:
    """Children the reader listed that the manifest does not declare: they inherit (or not)
    whatever their parent's plan says, so they belong in both worlds."""
    if not current.children:
        return
    declared = {child.name for child in spec.folders}
    for name, header in sorted(current.children.items()):
        if name in declared:
            continue
        child_id = str(header.get("id"))
        created = str(header.get("createdBy") or "")
        node = Node(
            child_id,
            name,
            _short(header.get("type")),
            node_id,
            int(created) if created.isdigit() else None,
            f"{path}/{name}",
        )
        nodes.append(node)
        after_nodes.append(node)
        if str(header.get("benefactorId")) == child_id.removeprefix("syn"):
            # Its own ACL, not read and not changed by this plan.
            acls[child_id] = {}
            after[child_id] = {}
            unread.add(child_id)


def access_consequences(
    worlds: PlanWorlds,
) -> tuple[tuple[AccessConsequence, ...], tuple[str, ...]]:
    """Per principal and direction, what this plan changes on which entities; and the paths of
    entities left out because an ACL governing them (before or after) was not read."""
    before, after = effective_access(worlds.live), effective_access(worlds.desired)
    unknown = {
        node.id
        for report in (before, after)
        for node in report.world.nodes
        if report.benefactors[node.id] in worlds.unread
    }
    every = diff_access(before, after)
    changes = [c for c in every if c.entity.id not in unknown]
    skipped = sorted({c.entity.path for c in every if c.entity.id in unknown})
    # The engine summarises per access type; a plan reads better with one line per principal,
    # direction and set of entities ("team:X gains READ, DOWNLOAD on 14 folders").
    grouped: dict[tuple[int, bool, tuple[str, ...]], tuple[AccessSummary, list[str]]] = {}
    for summary in summarize_changes(changes):
        key = (summary.principal.id, summary.gained, tuple(n.id for n in summary.entities))
        grouped.setdefault(key, (summary, []))[1].append(summary.access_type)
    return tuple(
        AccessConsequence(
            principal=summary.principal.label,
            principal_id=summary.principal.id,
            gained=summary.gained,
            access=tuple(sorted(types)),
            entities=tuple(_entity(node) for node in summary.entities),
        )
        for summary, types in grouped.values()
    ), tuple(skipped)


def _entity(node: Node) -> tuple[str, str, str | None]:
    return (node.path, node.type, None if node.id.startswith("new:") else node.id)
