"""Teams and memberships: a team (created, or an existing same-named team adopted) and one change
per person whose membership moves (synapse-api-2.md §1).

Membership is a protocol, not a set. A manager adds a user directly only when that user asked to
join (an open membership request); anyone else is invited, and the invitation is pending until
the user accepts it or it expires. So a pending invitation is not drift (the plan shows it and
does nothing), an expired one is no longer open and is sent again, and an invitation of someone
no longer listed is cancelled. Guards run in the planner, before any write: the operator keeps
their own management, a team keeps a manager, removals per run are capped, and every unknown
user is one located error, reported together.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from ..client.records import MembershipInvitation, Team, as_json
from ..client.teams import TeamsAPI
from ..errors import (
    ApiError,
    Forbidden,
    PlanError,
    PolicyViolation,
    PolicyViolations,
    ResolutionError,
)
from ..model import MembershipMode, Person, TeamSpec
from ..plan import Action, Change, FieldChange, Resource
from .base import ApplyContext, BundleFlags, Operation, PlanContext
from .payloads import required_field

if TYPE_CHECKING:
    from ..client.synapse import SynapseAPI
    from ..model import ContainerSpec, Manifest
    from ..state import LiveContainer, LiveState

INVITATION_DAYS = 30
DEFAULT_MAX_REMOVALS = 5


def alias_key(name: str) -> str:
    """Synapse matches user and team names ignoring case and non-alphanumerics."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def member_address(team: str, user: str) -> str:
    return f"team:{team}/member:{user}"


# ---------------------------------------------------------------------------------------------
# Typed apply payloads (``Change.desired`` of a membership; see resources/payloads.py)


class MembershipOp(StrEnum):
    KEEP = "keep"  # no-op: already as declared
    PENDING = "pending"  # no-op: invited, not accepted yet
    ADD = "add"  # direct add: the user asked to join
    INVITE = "invite"
    MAKE_MANAGER = "make_manager"
    UNMAKE_MANAGER = "unmake_manager"
    REMOVE = "remove"
    CANCEL_INVITATION = "cancel_invitation"


@dataclass(frozen=True, slots=True)
class MembershipDesired:
    op: MembershipOp
    team: str  # the team's address (its id comes from the plan or from its creation)
    user_id: str
    manager: bool = False  # ADD: make manager right after
    expires_on: str | None = None  # INVITE
    invitation_id: str | None = None  # CANCEL_INVITATION

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"op": self.op.value, "team": self.team, "user_id": self.user_id}
        if self.manager:
            data["manager"] = True
        if self.expires_on is not None:
            data["expires_on"] = self.expires_on
        if self.invitation_id is not None:
            data["invitation_id"] = self.invitation_id
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MembershipDesired:
        try:
            op = MembershipOp(required_field(data, "op", "team"))
        except ValueError:
            raise PlanError(
                f"the plan file is damaged: unknown membership operation {data['op']!r}",
                hint="run 'synapse-declare plan' again",
            ) from None
        desired = cls(
            op=op,
            team=str(required_field(data, "team", "team")),
            user_id=str(required_field(data, "user_id", "team")),
            manager=bool(data.get("manager", False)),
            expires_on=None if data.get("expires_on") is None else str(data["expires_on"]),
            invitation_id=None if data.get("invitation_id") is None else str(data["invitation_id"]),
        )
        if op is MembershipOp.INVITE and desired.expires_on is None:
            required_field(data, "expires_on", "team")
        if op is MembershipOp.CANCEL_INVITATION and desired.invitation_id is None:
            required_field(data, "invitation_id", "team")
        return desired


@dataclass(frozen=True, slots=True)
class TeamDesired:
    name: str
    description: str | None
    can_public_join: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "canPublicJoin": self.can_public_join,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TeamDesired:
        description = data.get("description")
        return cls(
            name=str(required_field(data, "name", "team")),
            description=None if description is None else str(description),
            can_public_join=bool(required_field(data, "canPublicJoin", "team")),
        )


# ---------------------------------------------------------------------------------------------
# Live state


@dataclass
class LiveTeam:
    id: str
    etag: str
    name: str
    description: str | None
    can_public_join: bool
    created_by: str | None
    raw: dict[str, Any]
    members: dict[int, bool] = field(default_factory=dict)  # user id → is manager
    invitations: dict[int, tuple[str, str | None]] = field(default_factory=dict)  # → (id, expiry)
    requests: frozenset[int] = frozenset()
    manageable: bool = True  # False: the operator may not read its invitations (not a manager)

    def membership_digest(self) -> str:
        state = [sorted(self.members.items()), sorted(self.invitations), sorted(self.requests)]
        return hashlib.sha256(json.dumps(state).encode()).hexdigest()[:16]


@dataclass
class LiveTeams:
    teams: dict[str, LiveTeam | None] = field(default_factory=dict)  # team address → live
    users: dict[str, int] = field(default_factory=dict)  # Person.key → user id
    names: dict[int, str] = field(default_factory=dict)  # user id → user name

    def placeholder(self, name: str) -> int | None:
        """A stand-in principal id for a declared team that does not exist yet: negative (no
        real principal has one), stable within a plan; apply swaps in the created team's id."""
        missing = sorted(a for a, t in self.teams.items() if t is None)
        for i, address in enumerate(missing):
            if alias_key(address.removeprefix("team:")) == alias_key(name):
                return -(i + 1)
        return None


def declared_team_keys(manifest: Manifest) -> frozenset[str]:
    return frozenset(alias_key(t.name) for t in manifest.teams)


def read_teams(
    api: SynapseAPI, manifest: Manifest, user_id: int, observed: dict[str, str | None]
) -> tuple[LiveTeams, list[ResolutionError]]:
    """Each declared team (by exact name), its members, open invitations and requests, and every
    listed person's user id. Unknown users come back as located errors, all of them."""
    live = LiveTeams()
    if not manifest.teams:
        return live, []
    teams = TeamsAPI(api.t)
    people = [p for t in manifest.teams for p in (*t.managers, *t.members)]
    names = sorted(
        {str(p.name) for p in people if p.name is not None} | {t.name for t in manifest.teams}
    )
    headers = {alias_key(str(h.get("userName"))): h for h in api.headers_by_alias(names)}
    numeric = sorted({p.id for p in people if p.id is not None})
    known_ids = {int(h["ownerId"]): h for h in api.group_headers_by_ids(numeric)} if numeric else {}
    errors: list[ResolutionError] = []
    where = api.t.endpoints.repo
    for person in people:
        if person.is_self:
            live.users[person.key] = user_id
        elif person.name is not None:
            header = headers.get(alias_key(person.name))
            if header is None or not header.get("isIndividual"):
                what = "is a team, not a user" if header else f"does not exist on {where}"
                errors.append(
                    ResolutionError(
                        f"{person} {what}",
                        location=person.location,
                        hint="team members are users: check the spelling (user names are exact)",
                    )
                )
                continue
            live.users[person.key] = int(header["ownerId"])
            live.names[int(header["ownerId"])] = str(header["userName"])
        elif person.id is not None:
            found = known_ids.get(person.id)
            if found is None or not found.get("isIndividual"):
                errors.append(
                    ResolutionError(
                        f"user id {person.id} does not exist on {where}",
                        location=person.location,
                        hint="write user:NAME, or check the id",
                    )
                )
                continue
            live.users[person.key] = person.id
            live.names[person.id] = str(found.get("userName"))
    for spec in manifest.teams:
        header = headers.get(alias_key(spec.name))
        if header is None:
            live.teams[spec.address] = None
            observed[spec.address] = None
            continue
        if header.get("isIndividual"):
            errors.append(
                ResolutionError(
                    f"team {spec.name!r}: that name belongs to a user on {where}",
                    location=spec.location,
                    hint="team and user names share one namespace: choose another team name",
                )
            )
            continue
        team = _read_team(teams, str(header["ownerId"]), live.names)
        live.teams[spec.address] = team
        observed[spec.address] = team.etag
        observed[f"{spec.address}#members"] = team.membership_digest()
    invited = {u for t in live.teams.values() if t is not None for u in t.invitations}
    unnamed = sorted(u for u in invited if u not in live.names)
    if unnamed:
        for found in api.group_headers_by_ids(unnamed):
            live.names[int(found["ownerId"])] = str(found.get("userName"))
    return live, errors


def _read_team(teams: TeamsAPI, team_id: str, names: dict[int, str]) -> LiveTeam:
    raw = teams.get_team(team_id) or {}
    team = LiveTeam(
        id=team_id,
        etag=str(raw.get("etag")),
        name=str(raw.get("name")),
        description=raw.get("description"),
        can_public_join=bool(raw.get("canPublicJoin")),
        created_by=raw.get("createdBy"),
        raw=as_json(raw),
    )
    for record in teams.members(team_id):
        uid = int(record["member"]["ownerId"])
        team.members[uid] = bool(record.get("isAdmin"))
        names.setdefault(uid, str(record["member"].get("userName")))
    try:
        team.invitations = {
            int(i["inviteeId"]): (str(i["id"]), i.get("expiresOn"))
            for i in teams.open_invitations(team_id)
            if i.get("inviteeId") is not None
        }
        team.requests = frozenset(int(r["userId"]) for r in teams.open_requests(team_id))
    except Forbidden:
        team.manageable = False
    return team


# ---------------------------------------------------------------------------------------------
# Planning


def plan_teams(
    manifest: Manifest,
    live: LiveTeams,
    operator: int,
    now: datetime,
    max_removals: int = DEFAULT_MAX_REMOVALS,
) -> list[Change]:
    """One change per team and per person whose membership moves; raises PolicyViolations with
    every guard the plan would break (before anything is written)."""
    changes: list[Change] = []
    problems: list[PolicyViolation] = []
    removals: list[str] = []
    expires = (now + timedelta(days=INVITATION_DAYS)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    for spec in manifest.teams:
        team = live.teams.get(spec.address)
        if team is not None and not team.manageable:
            problems.append(
                PolicyViolation(
                    f"team {spec.name!r} ({team.id}) exists and you are not one of its managers",
                    location=spec.location,
                    hint="ask a manager of the team to make you a manager, or choose another "
                    "team name",
                )
            )
            continue
        changes.append(_team_change(spec, team, operator))
        changes.extend(_people(spec, team, live, operator, expires, problems, removals))
    if len(removals) > max_removals:
        problems.append(
            PolicyViolation(
                f"this plan removes {len(removals)} team members ({', '.join(removals)}), more "
                f"than the cap of {max_removals} per run",
                location=manifest.teams[0].location if manifest.teams else None,
                hint="check the members lists; if the removals are meant, raise the cap with "
                f"--max-removals {len(removals)}",
            )
        )
    if problems:
        raise PolicyViolations(problems)
    return changes


def _team_change(spec: TeamSpec, team: LiveTeam | None, operator: int) -> Change:
    wanted = TeamDesired(spec.name, spec.description, spec.can_public_join)
    desired = {
        "name": spec.name,
        "description": spec.description,
        "canPublicJoin": spec.can_public_join,
    }
    if team is None:
        return Change(
            address=spec.address,
            resource=Resource.TEAM,
            action=Action.CREATE,
            syn_id=None,
            fields=tuple(FieldChange(k, None, v) for k, v in desired.items() if v is not None),
            desired={"team": wanted.to_json()},
            reason="no team of this name exists",
        )
    fields = []
    if spec.description != team.description:
        fields.append(FieldChange("description", team.description, spec.description))
    if spec.can_public_join != team.can_public_join:
        fields.append(FieldChange("canPublicJoin", team.can_public_join, spec.can_public_join))
    adopted = team.created_by != str(operator)
    if not fields:
        reason = "matches the manifest"
        if adopted:
            reason = f"existing team (created by {team.created_by}); matches the manifest"
        return Change(spec.address, Resource.TEAM, Action.NO_OP, team.id, reason=reason)
    return Change(
        address=spec.address,
        resource=Resource.TEAM,
        # An existing team someone else made is taken over visibly the first time it changes.
        action=Action.ADOPT if adopted else Action.UPDATE,
        syn_id=team.id,
        fields=tuple(fields),
        desired={"update": {f.path: f.after for f in fields}},
        prior={"etag": team.etag, "team": team.raw},
        reason=(
            f"adopting the existing team {team.id} (created by {team.created_by})"
            if adopted
            else "its fields differ from the manifest"
        ),
    )


def _people(
    spec: TeamSpec,
    team: LiveTeam | None,
    live: LiveTeams,
    operator: int,
    expires: str,
    problems: list[PolicyViolation],
    removals: list[str],
) -> list[Change]:
    wanted: dict[int, tuple[bool, Person]] = {}
    for manager in spec.managers:
        if manager.key in live.users:
            wanted[live.users[manager.key]] = (True, manager)
    for member in spec.members:
        if member.key in live.users:
            wanted.setdefault(live.users[member.key], (False, member))
    authoritative = spec.mode is MembershipMode.AUTHORITATIVE
    members = dict(team.members) if team is not None else {operator: True}
    invitations = team.invitations if team is not None else {}
    requests = team.requests if team is not None else frozenset()
    team_id = team.id if team is not None else None
    out: list[Change] = []

    def change(
        uid: int,
        action: Action,
        op: MembershipOp,
        before: Any,
        after: Any,
        reason: str,
        **extra: Any,
    ) -> None:
        name = live.names.get(uid, str(uid))
        out.append(
            Change(
                address=member_address(spec.name, name),
                resource=Resource.TEAM_MEMBER,
                action=action,
                syn_id=team_id,
                fields=(FieldChange("membership", before, after),)
                if action is not Action.NO_OP
                else (),
                depends_on=(spec.address,),
                desired=MembershipDesired(op, spec.address, str(uid), **extra).to_json(),
                reason=reason,
            )
        )

    managers_after = {u for u, admin in members.items() if admin}
    operator_listed = wanted.get(operator, (False, None))[0]
    if authoritative and members.get(operator) and not operator_listed:
        problems.append(
            PolicyViolation(
                f"team {spec.name!r}: this plan would remove your own management of the team",
                location=spec.location,
                hint="list self (or your user name) under managers; another manager can remove "
                "you later",
            )
        )
    for uid, (want_admin, _) in sorted(wanted.items()):
        role = "manager" if want_admin else "member"
        if uid in members:
            is_admin = members[uid]
            if want_admin and not is_admin:
                managers_after.add(uid)
                change(
                    uid,
                    Action.UPDATE,
                    MembershipOp.MAKE_MANAGER,
                    "member",
                    "manager",
                    "listed under managers",
                )
            elif is_admin and not want_admin and authoritative:
                managers_after.discard(uid)
                change(
                    uid,
                    Action.UPDATE,
                    MembershipOp.UNMAKE_MANAGER,
                    "manager",
                    "member",
                    "listed under members, not managers",
                )
            elif team is not None:
                change(uid, Action.NO_OP, MembershipOp.KEEP, role, role, f"already a {role}")
        elif uid in requests:
            if want_admin:
                managers_after.add(uid)
            change(
                uid,
                Action.CREATE,
                MembershipOp.ADD,
                None,
                role,
                "asked to join: added directly",
                manager=want_admin,
            )
        elif uid in invitations:
            _, expiry = invitations[uid]
            change(
                uid,
                Action.NO_OP,
                MembershipOp.PENDING,
                f"invited (until {expiry})",
                f"invited (until {expiry})",
                f"invited, pending until {expiry}: not drift (they accept in Synapse)",
            )
        else:
            later = "; made manager once they accept" if want_admin else ""
            change(
                uid,
                Action.CREATE,
                MembershipOp.INVITE,
                None,
                # The field is what a saved plan is compared on: the date (which moves with the
                # time of planning) stays in the reason and the payload.
                f"invited (expires in {INVITATION_DAYS} days)",
                f"invited until {expires[:10]} (Synapse adds directly only those who asked to "
                f"join){later}",
                expires_on=expires,
            )
    if authoritative and team is not None:
        for uid, is_admin in sorted(members.items()):
            if uid in wanted or uid == operator:
                continue
            managers_after.discard(uid)
            removals.append(f"{spec.name}: {live.names.get(uid, uid)}")
            change(
                uid,
                Action.DELETE,
                MembershipOp.REMOVE,
                "manager" if is_admin else "member",
                None,
                "not listed (authoritative membership)",
            )
        for uid, (invitation_id, expiry) in sorted(invitations.items()):
            if uid in wanted or uid in members:
                continue
            change(
                uid,
                Action.DELETE,
                MembershipOp.CANCEL_INVITATION,
                f"invited (until {expiry})",
                None,
                "no longer listed: pending invitation cancelled",
                invitation_id=invitation_id,
            )
    if not managers_after:
        problems.append(
            PolicyViolation(
                f"team {spec.name!r} would be left without a manager",
                location=spec.location,
                hint="Synapse requires at least one manager: keep one of the current managers "
                "under managers until the new one has accepted",
            )
        )
    return out


# ---------------------------------------------------------------------------------------------
# Apply and export


class TeamKind:
    name = "team"
    resources = (Resource.TEAM, Resource.TEAM_MEMBER)
    operations = frozenset({Operation.PLAN, Operation.APPLY, Operation.EXPORT})

    def label(self, resource: Resource) -> str:
        return "team" if resource is Resource.TEAM else "team member"

    def bundle_flags(self, spec: ContainerSpec, own_acl: bool) -> BundleFlags:
        return BundleFlags()

    def observe(self, spec: ContainerSpec, live: LiveContainer | None) -> Mapping[str, str | None]:
        return {}  # teams are observed as read_teams reads them (not per entity)

    def plan(self, spec: Manifest, live: LiveState, ctx: PlanContext) -> list[Change]:
        """The declared teams and memberships (planned first: ACLs may name the teams)."""
        return plan_teams(spec, live.teams, live.target.user_id, ctx.now, ctx.max_removals)

    def needs_certification(self, change: Change) -> bool:
        return False  # teams and memberships are open to every registered user

    def record_existing(self, ctx: ApplyContext, change: Change) -> None:
        if change.resource is Resource.TEAM and change.syn_id is not None:
            ctx.record(change.address, change.syn_id)

    def apply(self, ctx: ApplyContext, change: Change) -> str:
        teams = TeamsAPI(ctx.api.t)
        if change.resource is Resource.TEAM:
            if change.action is Action.CREATE:
                return self.create(ctx, teams, change)
            return self.update(ctx, teams, change)
        return self.membership(ctx, teams, change)

    def create(self, ctx: ApplyContext, teams: TeamsAPI, change: Change) -> str:
        wanted = TeamDesired.from_json(required_field(change.desired, "team", "team"))
        me = str(ctx.plan.target.user_id)

        def attempt() -> Team:
            return teams.create_team(wanted.name, wanted.description, wanted.can_public_join)

        def check() -> Team | None:
            # A lost response: the team exists if its name resolves (never create a second).
            found = [
                h for h in ctx.api.headers_by_alias([wanted.name]) if not h.get("isIndividual")
            ]
            if not found:
                return None
            team = teams.get_team(str(found[0]["ownerId"]))
            if team is None or team.get("createdBy") != me:
                raise ctx.conflict(change, "a team of this name was created by someone else")
            return team

        team = ctx.resolve(f"create {change.address}", attempt, check)
        ctx.record(change.address, str(team["id"]))
        return f"team {team['id']}"

    def update(self, ctx: ApplyContext, teams: TeamsAPI, change: Change) -> str:
        assert change.syn_id is not None
        team_id = change.syn_id
        update = dict(required_field(change.desired, "update", "team"))
        etag = str(required_field(change.prior, "etag", "team"))
        body = {**dict(required_field(change.prior, "team", "team")), **update, "etag": etag}

        def attempt() -> Team:
            try:
                return teams.update_team(body)
            except ApiError as err:
                if err.status == 412:
                    raise ctx.conflict(change, "the team changed (412)") from err
                raise

        def check() -> Team | None:
            current = teams.get_team(team_id) or {}
            if all(current.get(k) == v for k, v in update.items()):
                return current
            if current.get("etag") == etag:
                return None
            raise ctx.conflict(change, "the team changed while its update was unconfirmed")

        ctx.resolve(f"update {change.address}", attempt, check)
        ctx.record(change.address, team_id)
        return f"team {team_id}"

    def membership(self, ctx: ApplyContext, teams: TeamsAPI, change: Change) -> str:
        desired = MembershipDesired.from_json(change.desired)
        team_id = ctx.id_of(desired.team)
        uid, op = desired.user_id, desired.op

        def status() -> tuple[bool, bool, set[str]]:
            members = {
                str(m["member"]["ownerId"]): bool(m.get("isAdmin")) for m in teams.members(team_id)
            }
            invited = {str(i.get("inviteeId")) for i in teams.open_invitations(team_id)}
            return uid in members, members.get(uid, False), invited

        if op is MembershipOp.INVITE:
            expires = str(desired.expires_on)

            def invite() -> MembershipInvitation:
                return teams.invite(team_id, uid, expires)

            def invited() -> dict[str, Any] | None:
                # Never a second invitation: an open one for this user means the first arrived.
                member, _, open_ = status()
                return {"invited": True} if member or uid in open_ else None

            ctx.resolve(f"invite {change.address}", invite, invited)
            return f"invited until {expires}"
        if op is MembershipOp.ADD:

            def add() -> bool:
                teams.add_member(team_id, uid)
                return True

            ctx.resolve(f"add {change.address}", add, lambda: True if status()[0] else None)
            if desired.manager:
                self._set_manager(ctx, teams, change, team_id, uid, True, status)
            return "added"
        if op in (MembershipOp.MAKE_MANAGER, MembershipOp.UNMAKE_MANAGER):
            manager = op is MembershipOp.MAKE_MANAGER
            self._set_manager(ctx, teams, change, team_id, uid, manager, status)
            return "manager" if manager else "member"
        if op is MembershipOp.REMOVE:

            def remove() -> bool:
                teams.remove_member(team_id, uid)
                return True

            ctx.resolve(f"remove {change.address}", remove, lambda: None if status()[0] else True)
            return "removed"
        if op is MembershipOp.CANCEL_INVITATION:
            invitation = str(desired.invitation_id)

            def cancel() -> bool:
                teams.delete_invitation(invitation)
                return True

            ctx.resolve(
                f"cancel invitation {change.address}",
                cancel,
                lambda: None if uid in status()[2] else True,
            )
            return "invitation cancelled"
        raise PlanError(
            f"{change.address}: a {op.value} membership change has nothing to apply",
            hint="run 'synapse-declare plan' again",
        )

    @staticmethod
    def _set_manager(
        ctx: ApplyContext,
        teams: TeamsAPI,
        change: Change,
        team_id: str,
        uid: str,
        manager: bool,
        status: Any,
    ) -> None:
        def put() -> bool:
            teams.set_manager(team_id, uid, manager)
            return True

        ctx.resolve(
            f"manager of {change.address}", put, lambda: True if status()[1] == manager else None
        )

    def export(self, team: LiveTeam, names: Mapping[int, str], operator: int) -> dict[str, Any]:
        """The ``teams:`` entry that declares ``team`` as it is (issue 14's export): members by
        user name, pending invitations counted as members (the manifest lists who belongs)."""

        def person(uid: int) -> str:
            if uid == operator:
                return "self"
            # A user whose name could not be read is written as its id, which the manifest
            # reads as an id only without the `user:` prefix.
            return f"user:{names[uid]}" if uid in names else str(uid)

        managers = sorted(person(u) for u, admin in team.members.items() if admin)
        members = sorted(
            {person(u) for u, admin in team.members.items() if not admin}
            | {person(u) for u in team.invitations if u not in team.members}
        )
        entry: dict[str, Any] = {"name": team.name}
        if team.description:
            entry["description"] = team.description
        if team.can_public_join:
            entry["can_public_join"] = True
        entry["managers"] = managers
        if members:
            entry["members"] = members
        return entry


def export_teams(live: LiveTeams, operator: int) -> list[dict[str, Any]]:
    return [
        TEAM.export(t, live.names, operator) for _, t in sorted(live.teams.items()) if t is not None
    ]


# ---------------------------------------------------------------------------------------------
# Pending teams in ACLs, and the live-state codec


def link_pending(changes: Sequence[Change], live: LiveTeams) -> list[Change]:
    """An ACL naming a declared team that does not exist yet carries its placeholder id: record
    which team each placeholder stands for and make the change wait for the team's creation."""
    pending = {
        live.placeholder(address.removeprefix("team:")): address
        for address, team in live.teams.items()
        if team is None
    }
    out: list[Change] = []
    for change in changes:
        acl = change.desired.get("acl") or []
        used = {
            str(e["principalId"]): pending[e["principalId"]]
            for e in acl
            if e.get("principalId") in pending
        }
        if not used:
            out.append(change)
            continue
        out.append(
            dataclasses.replace(
                change,
                depends_on=tuple(dict.fromkeys((*change.depends_on, *used.values()))),
                desired={**change.desired, "pending_teams": used},
            )
        )
    return out


def encode(live: LiveTeams) -> dict[str, Any]:
    return {
        "teams": {
            address: None
            if t is None
            else {
                "id": t.id,
                "etag": t.etag,
                "name": t.name,
                "description": t.description,
                "can_public_join": t.can_public_join,
                "created_by": t.created_by,
                "raw": t.raw,
                "members": {str(u): a for u, a in sorted(t.members.items())},
                "invitations": {str(u): list(i) for u, i in sorted(t.invitations.items())},
                "requests": sorted(t.requests),
                "manageable": t.manageable,
            }
            for address, t in sorted(live.teams.items())
        },
        "users": dict(sorted(live.users.items())),
        "names": {str(u): n for u, n in sorted(live.names.items())},
    }


def decode(data: Mapping[str, Any] | None) -> LiveTeams:
    if not data:
        return LiveTeams()
    teams: dict[str, LiveTeam | None] = {}
    for address, t in data["teams"].items():
        teams[address] = (
            None
            if t is None
            else LiveTeam(
                id=t["id"],
                etag=t["etag"],
                name=t["name"],
                description=t["description"],
                can_public_join=t["can_public_join"],
                created_by=t["created_by"],
                raw=dict(t["raw"]),
                members={int(u): bool(a) for u, a in t["members"].items()},
                invitations={int(u): (str(i[0]), i[1]) for u, i in t["invitations"].items()},
                requests=frozenset(int(u) for u in t["requests"]),
                manageable=bool(t["manageable"]),
            )
        )
    return LiveTeams(
        teams=teams,
        users={str(k): int(v) for k, v in data["users"].items()},
        names={int(u): str(n) for u, n in data["names"].items()},
    )


TEAM = TeamKind()
