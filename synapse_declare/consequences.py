"""What a plan does to effective access: the live world and the after-apply world, both built
from what the state reader already holds (no extra Synapse calls), diffed by the access engine.

The live world's nodes are the managed projects and folders plus the children the reader listed
(their headers carry ``benefactorId`` and ``createdBy``); its ACLs are the ones the reader read.
An own ACL that was not read (the manifest leaves it alone, or an unlisted child has one) is the
same before and after, so it enters both worlds empty: nothing under it changes, and nothing
under it is reported.

Teams are reported as teams. The member lists of managed teams (``teams:``, read for their own
plan) are used for the people whose membership the plan changes: someone added, invited or
removed gets their own line, "user:jdoe gains DOWNLOAD on 14 folders through team:Center A", and
a managed team's line counts its members. Members of teams the manifest does not manage are not
read, so their access shows as the team's line only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from .access import (
    AccessChange,
    AccessReport,
    AccessRow,
    AccessWorld,
    Node,
    Principal,
    PrincipalType,
    default_principal,
    diff_access,
    effective_access,
    type_rank,
)
from .model import (
    AUTHENTICATED_USERS_ID,
    INHERIT,
    PUBLIC_ID,
    ContainerSpec,
    Manifest,
    PrincipalKind,
)
from .plan import AccessConsequence, Change, Resource
from .resources.team import MembershipDesired, MembershipOp
from .state import PROJECT_TYPE, LiveContainer, LiveState
from .strict_acls import removals

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
class Membership:
    """A managed team's people before and after the plan (invitees counted apart: they reach
    what the team reaches once they accept)."""

    members_before: frozenset[int]
    invited_before: frozenset[int]
    members_after: frozenset[int]
    invited_after: frozenset[int]

    def status(self, user_id: int, after: bool) -> str:
        members = self.members_after if after else self.members_before
        invited = self.invited_after if after else self.invited_before
        return "member" if user_id in members else "invited" if user_id in invited else "none"

    def moved(self) -> frozenset[int]:
        """The people whose membership the plan changes."""
        everyone = (
            self.members_before | self.invited_before | self.members_after | self.invited_after
        )
        return frozenset(u for u in everyone if self.status(u, False) != self.status(u, True))


@dataclass(frozen=True)
class PlanWorlds:
    live: AccessWorld
    desired: AccessWorld
    specs: Mapping[str, ContainerSpec]
    """Entity id (live or ``new:<address>``) → the manifest entry that declares it."""
    unread: frozenset[str]
    """Entities with an own ACL the reader did not read (the manifest leaves it alone)."""
    teams: Mapping[int, Membership] = field(default_factory=dict)
    """Managed teams by principal id (a stand-in id for a team the plan creates)."""


def _short(concrete: object) -> str:
    """``org.sagebionetworks.repo.model.FileEntity`` → ``file`` (``folder``, ``table``...)."""
    if not concrete:
        return "entity"
    name = str(concrete).rsplit(".", 1)[-1].lower()
    return name.removesuffix("entity") or name


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
    for uid, name in live.teams.names.items():
        found.setdefault(uid, Principal(uid, name, PrincipalType.USER))
    user = live.target
    found[user.user_id] = Principal(user.user_id, user.user_name, PrincipalType.USER)
    return found


def team_memberships(live: LiveState, team_changes: Sequence[Change]) -> dict[int, Membership]:
    """Each managed team's members and invitees, as read and as the plan's membership changes
    leave them (a team the plan creates starts with its creator, the operator, as manager)."""
    moves: dict[str, list[MembershipDesired]] = {}
    for change in team_changes:
        if change.resource is Resource.TEAM_MEMBER:
            desired = MembershipDesired.from_json(change.desired)
            moves.setdefault(desired.team, []).append(desired)
    found: dict[int, Membership] = {}
    for address, team in sorted(live.teams.teams.items()):
        if team is None:
            stand_in = live.teams.placeholder(address.removeprefix("team:"))
            if stand_in is None:
                continue
            team_id = stand_in
            members: set[int] = set()
            invited: set[int] = set()
            members_after = {live.target.user_id}
        else:
            team_id = int(team.id)
            members, invited = set(team.members), set(team.invitations)
            members_after = set(members)
        invited_after = set(invited)
        for move in moves.get(address, []):
            uid = int(move.user_id)
            if move.op is MembershipOp.ADD:
                members_after.add(uid)
                invited_after.discard(uid)
            elif move.op is MembershipOp.INVITE:
                invited_after.add(uid)
            elif move.op is MembershipOp.REMOVE:
                members_after.discard(uid)
            elif move.op is MembershipOp.CANCEL_INVITATION:
                invited_after.discard(uid)
        found[team_id] = Membership(
            frozenset(members),
            frozenset(invited - members),
            frozenset(members_after),
            frozenset(invited_after - members_after),
        )
    return found


def plan_worlds(
    manifest: Manifest,
    live: LiveState,
    desired_acl: DesiredAcl,
    team_changes: Sequence[Change] = (),
) -> PlanWorlds:
    """The live world and the world after the plan's ACL creates, updates and inherits (and, in
    ``teams``, the managed teams' memberships before and after ``team_changes``)."""
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
                spec,
                current,
                node_id,
                here,
                live,
                inherit_again,
                nodes,
                after_nodes,
                acls,
                after,
                unread,
            )
        specs[node_id] = spec
        for child in spec.folders:
            visit(child, node_id, here, current is not None)

    inherit_again = {r.syn_id for r in removals(manifest, live)[0]}
    for project in manifest.projects:
        visit(project, None, "", True)
    _walked(live, inherit_again, nodes, after_nodes, acls, after, unread)
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
    teams = team_memberships(live, team_changes)
    return PlanWorlds(live_world, desired, specs, frozenset(unread), teams)


def _unlisted_children(
    spec: ContainerSpec,
    current: LiveContainer,
    node_id: str,
    path: str,
    live: LiveState,
    inherit_again: set[str],
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
            read = live.other_acls.get(child_id)
            if read is None:
                # Its own ACL, not read and not changed by this plan.
                acls[child_id] = {}
                after[child_id] = {}
                unread.add(child_id)
                continue
            acls[child_id] = dict(read.entries)
            if child_id not in inherit_again:  # folders_inherit: strict removes it
                after[child_id] = dict(read.entries)


def _walked(
    live: LiveState,
    inherit_again: set[str],
    nodes: list[Node],
    after_nodes: list[Node],
    acls: dict[str, dict[int, frozenset[str]]],
    after: dict[str, dict[int, frozenset[str]]],
    unread: set[str],
) -> None:
    """What the project walk listed below the children pages (``--audit-public``, strict mode):
    in both worlds, so that removing a deep own ACL shows who loses what below it. The walk lists
    parents before children, so each node's parent is already there."""
    known = {node.id for node in nodes}
    for entity in live.walked:
        if entity.syn_id in known or entity.parent_id not in known:
            continue
        known.add(entity.syn_id)
        creator = entity.created_by or ""
        node = Node(
            entity.syn_id,
            entity.name,
            _short(entity.type),
            entity.parent_id,
            int(creator) if creator.isdigit() else None,
            entity.path,
        )
        nodes.append(node)
        after_nodes.append(node)
        if not entity.own_acl:
            continue
        read = live.other_acls.get(entity.syn_id)
        if read is None:
            acls[entity.syn_id] = {}
            after[entity.syn_id] = {}
            unread.add(entity.syn_id)
            continue
        acls[entity.syn_id] = dict(read.entries)
        if entity.syn_id not in inherit_again:
            after[entity.syn_id] = dict(read.entries)


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
    skipped = sorted({c.entity.path for c in every if c.entity.id in unknown})
    moved = frozenset().union(*(m.moved() for m in worlds.teams.values()))
    tagged = [Tagged(c, (), False) for c in every if c.principal.id not in moved]
    if moved:
        # The people who join or leave a managed team: their whole access, with the team's
        # membership before and after, replaces their membership-blind lines — less what
        # everyone gains or loses (PUBLIC, AUTHENTICATED_USERS): their own lines say that.
        everyone = _everyones(every)
        tagged.extend(
            kept for t in _moved_people(worlds, moved) if (kept := _less(t, everyone)) is not None
        )
    lines = _grouped(t for t in tagged if t.change.entity.id not in unknown)
    return tuple(_counted(line, worlds.teams) for line in lines), tuple(skipped)


def _everyones(every: Iterable[AccessChange]) -> dict[tuple[str, bool], frozenset[str]]:
    """(entity id, gained?) → the access types PUBLIC or AUTHENTICATED_USERS gain or lose there."""
    found: dict[tuple[str, bool], frozenset[str]] = {}
    for change in every:
        if change.principal.id not in (PUBLIC_ID, AUTHENTICATED_USERS_ID):
            continue
        for gained, types in ((True, change.gained), (False, change.lost)):
            key = (change.entity.id, gained)
            found[key] = found.get(key, frozenset()) | types
    return found


def _less(tagged: Tagged, everyone: Mapping[tuple[str, bool], frozenset[str]]) -> Tagged | None:
    """A moved person's change without what everyone gets there (kept when a team brings it)."""
    if tagged.through:
        return tagged
    change = tagged.change
    gained = bool(change.gained)
    types = (change.gained or change.lost) - everyone.get((change.entity.id, gained), frozenset())
    if not types:
        return None
    part = AccessChange(
        change.entity,
        change.principal,
        types if gained else frozenset(),
        frozenset() if gained else types,
    )
    return Tagged(part, tagged.through, tagged.pending)


@dataclass(frozen=True, slots=True)
class Tagged:
    change: AccessChange
    through: tuple[str, ...]  # the managed teams the change comes through (moved people only)
    pending: bool  # it waits for an invitation to be accepted


def _moved_people(worlds: PlanWorlds, moved: frozenset[int]) -> list[Tagged]:
    def world(base: AccessWorld, after: bool) -> AccessWorld:
        members = {
            team_id: frozenset(u for u in moved if membership.status(u, after) != "none")
            for team_id, membership in worlds.teams.items()
        }
        return replace(base, members=members)

    people = [worlds.desired.principal(uid) for uid in sorted(moved)]
    users = [
        p if p.type is PrincipalType.USER else Principal(p.id, p.name, PrincipalType.USER)
        for p in people
    ]
    before = effective_access(world(worlds.live, False), users=users)
    after = effective_access(world(worlds.desired, True), users=users)
    rows_before = _rows_of(before, moved)
    rows_after = _rows_of(after, moved)
    out: list[Tagged] = []
    for change in diff_access(before, after):
        if change.principal.id not in moved:
            continue
        key = (change.entity.id, change.principal.id)
        for gained, types, rows in (
            (True, change.gained, rows_after),
            (False, change.lost, rows_before),
        ):
            if not types:
                continue
            teams = _through(rows.get(key), types, worlds.teams, change.principal.id)
            part = AccessChange(
                change.entity,
                change.principal,
                types if gained else frozenset(),
                frozenset() if gained else types,
            )
            pending = bool(teams) and all(
                worlds.teams[tid].status(change.principal.id, gained) == "invited"
                for tid, _ in teams
            )
            out.append(Tagged(part, tuple(label for _, label in teams), pending))
    return out


def _rows_of(report: AccessReport, moved: frozenset[int]) -> dict[tuple[str, int], AccessRow]:
    return {(r.entity.id, r.principal.id): r for r in report.rows if r.principal.id in moved}


def _through(
    row: AccessRow | None, types: frozenset[str], teams: Mapping[int, Membership], user_id: int
) -> list[tuple[int, str]]:
    """The managed teams whose membership change brings (or takes) ``types``: those of the
    row's grants that give a type no other grant of the row gives."""
    grants = row.grants if row is not None else ()
    changed = {
        tid for tid, m in teams.items() if m.status(user_id, False) != m.status(user_id, True)
    }
    others: set[str] = set()
    for grant in grants:
        if grant.principal.id not in changed:
            others |= grant.access
    needed = types - others
    return sorted(
        (
            (grant.principal.id, grant.principal.label)
            for grant in grants
            if grant.principal.id in changed and grant.access & needed
        ),
        key=lambda item: item[1],
    )


def _grouped(tagged: Iterable[Tagged]) -> list[AccessConsequence]:
    """One line per principal, direction, tags and set of entities ("team:X gains READ, DOWNLOAD
    on 14 folders"), in the order the engine's summaries use (PUBLIC first, then teams...)."""
    by_type: dict[tuple[int, bool, str, tuple[str, ...], bool], tuple[Principal, list[Node]]] = {}
    for item in tagged:
        change = item.change
        for gained, types in ((True, change.gained), (False, change.lost)):
            for access_type in sorted(types):
                key = (change.principal.id, gained, access_type, item.through, item.pending)
                by_type.setdefault(key, (change.principal, []))[1].append(change.entity)
    ordered = sorted(
        by_type.items(),
        key=lambda kv: (type_rank(kv[1][0]), kv[1][0].name, not kv[0][1]),
    )
    lines: dict[
        tuple[int, bool, tuple[str, ...], tuple[str, ...], bool],
        tuple[Principal, list[str], list[Node]],
    ] = {}
    for (pid, gained, access_type, through, pending), (principal, nodes) in ordered:
        line = (pid, gained, tuple(n.id for n in nodes), through, pending)
        lines.setdefault(line, (principal, [], nodes))[1].append(access_type)
    return [
        AccessConsequence(
            principal=principal.label,
            principal_id=principal.id,
            gained=gained,
            access=tuple(sorted(types)),
            entities=tuple(_entity(node) for node in nodes),
            through=through,
            pending_invitation=pending,
        )
        for (_, gained, _, through, pending), (principal, types, nodes) in lines.items()
    ]


def _counted(line: AccessConsequence, teams: Mapping[int, Membership]) -> AccessConsequence:
    """A managed team's line says how many people it stands for."""
    membership = teams.get(line.principal_id)
    if membership is None:
        return line
    after = line.gained
    members = membership.members_after if after else membership.members_before
    invited = membership.invited_after if after else membership.invited_before
    return replace(line, members=len(members), invited=len(invited))


def _entity(node: Node) -> tuple[str, str, str | None]:
    return (node.path, node.type, None if node.id.startswith("new:") else node.id)
