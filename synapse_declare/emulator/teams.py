"""Teams, memberships, invitations and requests (synapse-api-2.md §1).

A team is a principal (``principals`` row of kind ``team``; its name is the principal's alias, so
team names share one namespace with user names and e-mails). The team's own fields live in
``teams``, its ACL in ``team_acls`` (separate from entity ACLs: team and entity ids are different
id spaces). A "manager" is a principal whose *own* ACL entry holds TEAM_MEMBERSHIP_UPDATE; checks
of what a caller may do use all of the caller's groups, as Synapse's ``canAccess`` does.

Membership follows ``TeamManagerImpl.canAddTeamMember``: a manager adds directly only a user who
has an open membership request; a user joins themself only with an open invitation (or into a
``canPublicJoin`` team). Accepting an invitation is the invitee's own ``PUT
/team/{id}/member/{ownId}``, made with the invitee's token.

The users file's ``teams:`` are seeded by :func:`seed_teams` through the same functions as the
REST handlers: the first manager creates the team, the seeder then adds the other members and
managers as a Synapse administrator would.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from . import access_requirements as ars
from .principals import (
    Caller,
    SeedTeam,
    alias_key,
    caller_for,
    group_header,
)
from .routing import Reply, Route
from .util import (
    AUTHENTICATED_USERS,
    MIGRATION_ADMIN,
    SynapseError,
    bad_request,
    forbidden,
    format_time,
    new_etag,
    next_page_token,
    not_found,
    now,
    paginate_offset,
    parse_int,
    parse_next_page_token,
    precondition_failed,
)

if TYPE_CHECKING:
    from .app import Ctx
    from .store import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS teams (
    team_id INTEGER PRIMARY KEY,
    description TEXT,
    icon TEXT,
    state TEXT NOT NULL,             -- PUBLIC | OPEN | CLOSED (TeamState)
    etag TEXT NOT NULL,
    created_on TEXT NOT NULL,
    created_by INTEGER NOT NULL,
    modified_on TEXT NOT NULL,
    modified_by INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS team_acls (
    team_id INTEGER PRIMARY KEY,
    etag TEXT NOT NULL,
    creation_date TEXT NOT NULL,
    entries TEXT NOT NULL            -- JSON [{"principalId": int, "accessType": [..]}]
);
CREATE TABLE IF NOT EXISTS membership_invitations (
    id INTEGER PRIMARY KEY,
    team_id INTEGER NOT NULL,
    invitee_id INTEGER,
    invitee_email TEXT,
    message TEXT,
    expires_on TEXT,
    created_on TEXT NOT NULL,
    created_by INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS invitations_team ON membership_invitations(team_id, invitee_id);
CREATE TABLE IF NOT EXISTS membership_requests (
    id INTEGER PRIMARY KEY,
    team_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    message TEXT,
    expires_on TEXT,
    created_on TEXT NOT NULL,
    created_by INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_team ON membership_requests(team_id, user_id);
INSERT OR IGNORE INTO counters(name, value) VALUES ('membership_invitation', 1);
INSERT OR IGNORE INTO counters(name, value) VALUES ('membership_request', 1);
"""

# ModelConstants.TEAM_ADMIN_PERMISSIONS / TEAM_MESSENGER_PERMISSIONS.
TEAM_ADMIN_PERMISSIONS = ("DELETE", "READ", "SEND_MESSAGE", "TEAM_MEMBERSHIP_UPDATE", "UPDATE")
TEAM_MESSENGER_PERMISSIONS = ("READ", "SEND_MESSAGE")
TMU = "TEAM_MEMBERSHIP_UPDATE"
# ACCESS_TYPE values an ACL of type TEAM may hold (AccessControlListUtils.validateACL).
TEAM_ACCESS_TYPES = frozenset(
    {
        "DELETE",
        "READ",
        "SEND_MESSAGE",
        "TEAM_MEMBERSHIP_UPDATE",
        "UPDATE",
        "CREATE",
        "DOWNLOAD",
        "CHANGE_PERMISSIONS",
        "CHANGE_SETTINGS",
        "MODERATE",
        "DELETE_SUBMISSION",
        "SUBMIT",
        "UPDATE_SUBMISSION",
        "PARTICIPATE",
    }
)
ALL_ACCESS_TYPES = TEAM_ACCESS_TYPES | {
    "UPLOAD",
    "READ_PRIVATE_SUBMISSION",
    "REVIEW_SUBMISSIONS",
    "EXEMPTION_ELIGIBLE",
}
TEAM_NAME_RE = re.compile(r"^[a-z0-9 ._-]{3,}")
NOT_USER_SPECIFIABLE = ("createdBy", "createdOn", "etag", "id", "modifiedBy", "modifiedOn")
MANAGER_REQUIRED = "Team must have at least one team manager."


# ---------------------------------------------------------------------------------------------
# Lookups and permissions


def team_row(store: Store, team_id: int) -> Any:
    """The team's principal joined with its team fields (bootstrap teams have none: OPEN)."""
    return store.one(
        "SELECT p.id, p.name, t.description, t.icon, COALESCE(t.state, 'OPEN') AS state, "
        "COALESCE(t.etag, p.etag) AS etag, COALESCE(t.created_on, p.created_on) AS created_on, "
        "COALESCE(t.created_by, p.created_by) AS created_by, "
        "COALESCE(t.modified_on, p.created_on) AS modified_on, "
        "COALESCE(t.modified_by, p.created_by) AS modified_by "
        "FROM principals p LEFT JOIN teams t ON t.team_id = p.id "
        "WHERE p.id = ? AND p.kind = 'team'",
        (team_id,),
    )


def require_team(store: Store, team_id: int) -> Any:
    row = team_row(store, team_id)
    if row is None:
        not_found(f"Team id: '{team_id}' does not exist")
    return row


def team_state(store: Store, team_id: int) -> str:
    """DBOTeamDAOImpl.getState: its own 404 text."""
    row = team_row(store, team_id)
    if row is None:
        not_found(f"Team {team_id} does not exist.")
    return str(row["state"])


def team_json(row: Any) -> dict[str, Any]:
    state = str(row["state"])
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "description": row["description"],
        "icon": row["icon"],
        "canPublicJoin": state == "PUBLIC",
        "canRequestMembership": state == "OPEN",
        "etag": row["etag"],
        "createdOn": row["created_on"],
        "modifiedOn": row["modified_on"],
        "createdBy": str(row["created_by"]) if row["created_by"] is not None else None,
        "modifiedBy": str(row["modified_by"]) if row["modified_by"] is not None else None,
    }


def acl_entries(store: Store, team_id: int) -> list[dict[str, Any]] | None:
    row = store.one("SELECT entries FROM team_acls WHERE team_id = ?", (team_id,))
    return None if row is None else list(json.loads(row["entries"]))


def save_acl(store: Store, team_id: int, entries: list[dict[str, Any]]) -> None:
    store.execute(
        "UPDATE team_acls SET etag = ?, entries = ? WHERE team_id = ?",
        (new_etag(), json.dumps(entries), team_id),
    )


def allows(store: Store, caller: Caller, team_id: int, access: str) -> bool:
    """AuthorizationManagerImpl.canAccess for TEAM: admin, else an entry of any caller group."""
    if caller.admin:
        return True
    entries = acl_entries(store, team_id) or []
    return any(
        int(e["principalId"]) in caller.groups and access in e["accessType"] for e in entries
    )


def check(store: Store, caller: Caller, team_id: int, access: str) -> None:
    if not allows(store, caller, team_id, access):
        forbidden(f"Unauthorized to access Team {team_id} for {access}")


def admin_ids(store: Store, team_id: int) -> set[int]:
    """Principals whose own ACL entry holds TEAM_MEMBERSHIP_UPDATE (TeamMember.isAdmin)."""
    return {
        int(e["principalId"]) for e in acl_entries(store, team_id) or [] if TMU in e["accessType"]
    }


def is_member(store: Store, team_id: int, principal_id: int) -> bool:
    return (
        store.one(
            "SELECT 1 FROM memberships WHERE group_id = ? AND member_id = ?",
            (team_id, principal_id),
        )
        is not None
    )


def require_user(store: Store, principal_id: int) -> Caller:
    """UserManagerImpl.getUserInfo: the principal must exist and be an individual."""
    row = store.one("SELECT kind FROM principals WHERE id = ?", (principal_id,))
    if row is None:
        not_found(f"Principal '{principal_id}' does not exist")
    if row["kind"] != "user":
        bad_request(f"Principal: {principal_id} is not a User")
    return caller_for(store, principal_id)


def _parse_date(value: Any, field: str) -> str | None:
    """A JSON date-time as the server stores it (normalised to .SSS UTC)."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return format_time(datetime.fromtimestamp(value / 1000.0, UTC))
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        bad_request(f"Could not parse JSON: '{field}' is not a date-time: {value}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return format_time(moment)


def _open_clause(alias: str, member_column: str) -> str:
    """SELECT_OPEN_INVITATIONS_CORE: not expired, and the invitee is not already a member."""
    return (
        f"({alias}.expires_on IS NULL OR {alias}.expires_on > :now) AND NOT EXISTS ("
        f"SELECT 1 FROM memberships m WHERE m.group_id = {alias}.team_id "
        f"AND m.member_id = {alias}.{member_column})"
    )


def _limit_offset(ctx: Ctx) -> tuple[int, int]:
    """The team listings' paging checks (TeamServiceImpl: limit 1..50, offset >= 0)."""
    limit = parse_int(ctx.args.get("limit", 10), "limit")
    offset = parse_int(ctx.args.get("offset", 0), "offset")
    if limit < 1 or limit > 50:
        bad_request("limit must be between 1 and 50")
    if offset < 0:
        bad_request("'offset' may not be negative")
    return limit, offset


def _estimated(items: list[Any], limit: int, offset: int) -> dict[str, Any]:
    """PaginatedResults.createWithLimitAndOffset over an already-paged query (limit+1 rows)."""
    page = items[:limit]
    total = offset + len(page) + (1 if len(items) > limit else 0)
    return {"results": page, "totalNumberOfResults": total}


# ---------------------------------------------------------------------------------------------
# Core operations (shared by the handlers and the seeder)


def _bind_name(store: Store, team_id: int, name: str) -> None:
    """TeamManagerImpl.bindTeamName: 409 if the alias is anyone else's, then the syntax."""
    key = alias_key(name)
    taken = store.one("SELECT 1 FROM principals WHERE id != ? AND alias = ?", (team_id, key))
    # E-mails are aliases too (USER_EMAIL), compared by the same unique-alias key.
    emails = store.all(
        "SELECT email FROM principals WHERE email IS NOT NULL AND id != ?", (team_id,)
    )
    if taken is not None or any(alias_key(str(r["email"])) == key for r in emails):
        raise SynapseError(409, f"Name {name} is already used.")
    if not TEAM_NAME_RE.fullmatch(name.lower()):  # Java Matcher.matches(): the whole name
        bad_request(
            "Team names can only contain letters, numbers, spaces, dot (.), dash (-), "
            f"underscore (_) and must be at least 3 characters long. Value={name}"
        )
    store.execute("UPDATE principals SET name = ?, alias = ? WHERE id = ?", (name, key, team_id))


def _state(body: dict[str, Any]) -> str:
    """TeamUtils: the two booleans stored as one TeamState (null request flag = OPEN)."""
    public_join, request = body.get("canPublicJoin"), body.get("canRequestMembership")
    if public_join is True and request is True:
        bad_request("It is a conflict to set both canPublicJoin and canRequestMembership to true.")
    if public_join is True:
        return "PUBLIC"
    if request is False:
        return "CLOSED"
    return "OPEN"


def _check_icon(store: Store, caller: Caller, icon: Any) -> None:
    if icon is None:
        return
    handle = store.one(
        "SELECT created_by FROM file_handles WHERE id = ?", (parse_int(icon, "icon"),)
    )
    if handle is None or int(handle["created_by"]) != caller.id:
        forbidden("Only the user that uploaded the file can set it as the team icon.")


def _refuse_server_fields(body: dict[str, Any], keys: Sequence[str]) -> None:
    """Fields Synapse sets itself are refused when a client sends them."""
    for key in keys:
        if body.get(key) is not None:
            bad_request(f"'{key}' field is not user specifiable.")


def create_team(store: Store, caller: Caller, body: dict[str, Any]) -> int:
    """TeamManagerImpl.create, in its order; returns the new team's id."""
    if caller.anonymous:
        forbidden("Anonymous user cannot create Team.")
    _refuse_server_fields(body, NOT_USER_SPECIFIABLE)
    name = body.get("name")
    if name is None:
        bad_request("'name' field is required.")
    team_id = store.next_id("principal")
    created = now()
    store.execute(
        "INSERT INTO principals(id, kind, name, alias, etag, created_on, created_by) "
        "VALUES (?, 'team', ?, ?, ?, ?, ?)",
        (team_id, str(name), None, new_etag(), created, caller.id),
    )
    _bind_name(store, team_id, str(name))
    _check_icon(store, caller, body.get("icon"))
    _write_team(store, team_id, caller.id, body, created)
    store.execute(
        "INSERT INTO memberships(group_id, member_id) VALUES (?, ?)", (team_id, caller.id)
    )
    return team_id


def _write_team(
    store: Store, team_id: int, creator: int, body: dict[str, Any], created: str
) -> None:
    """The team row (state normalised) and the initial ACL (createInitialAcl)."""
    store.execute(
        "INSERT INTO teams(team_id, description, icon, state, etag, created_on, created_by, "
        "modified_on, modified_by) VALUES (?,?,?,?,?,?,?,?,?)",
        (
            team_id,
            body.get("description"),
            None if body.get("icon") is None else str(body["icon"]),
            _state(body),
            new_etag(),
            created,
            creator,
            created,
            creator,
        ),
    )
    entries = [
        {"principalId": creator, "accessType": list(TEAM_ADMIN_PERMISSIONS)},
        {"principalId": team_id, "accessType": list(TEAM_MESSENGER_PERMISSIONS)},
        {"principalId": AUTHENTICATED_USERS, "accessType": list(TEAM_MESSENGER_PERMISSIONS)},
    ]
    store.execute(
        "INSERT INTO team_acls(team_id, etag, creation_date, entries) VALUES (?,?,?,?)",
        (team_id, new_etag(), created, json.dumps(entries)),
    )


def _open_invitation_count(store: Store, team_id: int, user_id: int) -> int:
    return int(
        store.scalar(
            "SELECT COUNT(*) FROM membership_invitations i WHERE i.team_id = :team "
            "AND i.invitee_id = :user AND " + _open_clause("i", "invitee_id"),
            {"team": team_id, "user": user_id, "now": now()},
        )
    )


def _open_request_count(store: Store, team_id: int, user_id: int) -> int:
    return int(
        store.scalar(
            "SELECT COUNT(*) FROM membership_requests r WHERE r.team_id = :team "
            "AND r.user_id = :user AND " + _open_clause("r", "user_id"),
            {"team": team_id, "user": user_id, "now": now()},
        )
    )


def add_refusal(
    store: Store, caller: Caller, team_id: int, principal: Caller, already: bool
) -> str | None:
    """TeamManagerImpl.canAddTeamMember: None when allowed, else the 403 reason."""
    if caller.admin or already:
        return None
    if caller.id == principal.id:
        if not (
            allows(store, caller, team_id, TMU)
            or team_state(store, team_id) == "PUBLIC"
            or _open_invitation_count(store, team_id, principal.id) > 0
        ):
            return "An invitation is required to join the team."
        if ars.has_unmet(store, principal.id, "TEAM", team_id):
            return "You can't join the team until you meet the Access Requirements"
        return None
    if not allows(store, caller, team_id, TMU):
        return "You must be a team manager to perform this operation."
    if _open_request_count(store, team_id, principal.id) == 0:
        return "The prospective member must request to join the team."
    if ars.has_unmet(store, principal.id, "TEAM", team_id):
        return (
            "Cannot add member to team because they have not met all access restrictions. "
            "Please remove the pending request and then invite the member again. They will "
            "then be prompted to meet the requirement(s) before joining the team."
        )
    return None


def add_member(store: Store, caller: Caller, team_id: int, principal_id: int) -> None:
    """TeamManagerImpl.addMember: decide, add, then drop every invitation/request of the pair."""
    principal = require_user(store, principal_id)
    already = is_member(store, team_id, principal_id)
    refusal = add_refusal(store, caller, team_id, principal, already)
    if refusal is not None:
        forbidden(refusal)
    if not already:
        store.execute(
            "INSERT INTO memberships(group_id, member_id) VALUES (?, ?)", (team_id, principal_id)
        )
    store.execute(
        "DELETE FROM membership_invitations WHERE team_id = ? AND invitee_id = ?",
        (team_id, principal_id),
    )
    store.execute(
        "DELETE FROM membership_requests WHERE team_id = ? AND user_id = ?",
        (team_id, principal_id),
    )


def remove_member(store: Store, caller: Caller, team_id: int, principal_id: int) -> None:
    """TeamManagerImpl.removeMember."""
    if not (caller.admin or caller.id == principal_id or allows(store, caller, team_id, TMU)):
        forbidden("Cannot remove member from Team.")
    members = {
        int(r[0])
        for r in store.all("SELECT member_id FROM memberships WHERE group_id = ?", (team_id,))
    }
    if principal_id not in members:
        return
    if len(members) == 1:
        forbidden("Cannot remove the last member of a Team.")
    entries = acl_entries(store, team_id)
    if entries is not None:
        kept = [e for e in entries if int(e["principalId"]) != principal_id]
        if not caller.admin and not any(TMU in e["accessType"] for e in kept):
            bad_request(MANAGER_REQUIRED)
    store.execute(
        "DELETE FROM memberships WHERE group_id = ? AND member_id = ?", (team_id, principal_id)
    )
    if entries is not None:
        save_acl(store, team_id, kept)


def set_admin(store: Store, caller: Caller, team_id: int, principal_id: int, admin: bool) -> None:
    """TeamManagerImpl.setPermissions (PUT …/permission?isAdmin=)."""
    check(store, caller, team_id, "UPDATE")
    entries = acl_entries(store, team_id)
    if entries is None:
        not_found(f"ACL for '{team_id}' of type 'TEAM' does not exist")
    kept = [e for e in entries if int(e["principalId"]) != principal_id]
    if admin:
        kept.append({"principalId": principal_id, "accessType": list(TEAM_ADMIN_PERMISSIONS)})
    if not caller.admin and not any(TMU in e["accessType"] for e in kept):
        bad_request(MANAGER_REQUIRED)
    save_acl(store, team_id, kept)


# ---------------------------------------------------------------------------------------------
# Seeding the users file's teams (through the operations above)


def seed_teams(store: Store, teams: Sequence[SeedTeam], ids: dict[str, int]) -> dict[str, int]:
    """Create each team as its first manager, then add members and managers as an admin.

    A team that already exists under that name (a restart with ``--data-dir``) is adopted:
    only missing members and managers are added, so a plain restart changes nothing.
    Raises SynapseError with Synapse's text when a team cannot be made (the caller locates it).
    """
    seeder = caller_for(store, MIGRATION_ADMIN)
    out: dict[str, int] = {}
    for team in teams:
        managers = list(team.managers) or list(team.members[:1])
        if not managers:
            bad_request(f"Team {team.name} needs at least one member or manager")
        unknown = [n for n in (*managers, *team.members) if n not in ids]
        if unknown:
            bad_request(f"Team {team.name}: {unknown} are not seeded users")
        row = store.one("SELECT id FROM principals WHERE kind = 'team' AND name = ?", (team.name,))
        seed_body = {
            "name": team.name,
            "description": team.description,
            "canPublicJoin": team.can_public_join,
        }
        if row is None:
            team_id = create_team(store, caller_for(store, ids[managers[0]]), seed_body)
        else:
            team_id = int(row["id"])
            if store.one("SELECT 1 FROM teams WHERE team_id = ?", (team_id,)) is None:
                # A team seeded into a --data-dir before teams had their own rows and ACL.
                _write_team(store, team_id, ids[managers[0]], seed_body, now())
        for name in dict.fromkeys([*managers, *team.members]):
            if not is_member(store, team_id, ids[name]):
                add_member(store, seeder, team_id, ids[name])
        current = admin_ids(store, team_id)
        for name in managers:
            if ids[name] not in current:
                set_admin(store, seeder, team_id, ids[name], True)
        out[team.name] = team_id
    return out


# ---------------------------------------------------------------------------------------------
# Team handlers


def _team_id(value: str) -> int:
    return parse_int(value, "id")


def post_team(ctx: Ctx) -> Reply:
    team_id = create_team(ctx.store, ctx.caller, ctx.json_body())
    return Reply(201, team_json(require_team(ctx.store, team_id)))


def put_team(ctx: Ctx) -> dict[str, Any]:
    store, caller, body = ctx.store, ctx.caller, ctx.json_body()
    # Synapse checks UPDATE before validating the body; the id is needed for that check.
    if body.get("id") is None:
        bad_request("'id' field is missing.")
    team_id = parse_int(body["id"], "id")
    check(store, caller, team_id, "UPDATE")
    if body.get("etag") is None:
        bad_request("'etag' field is missing.")
    if body.get("name") is None:
        bad_request("'name' field is required.")
    row = require_team(store, team_id)
    _bind_name(store, team_id, str(body["name"]))
    icon = None if body.get("icon") is None else str(body["icon"])
    if icon != row["icon"]:
        _check_icon(store, caller, icon)
    if body["etag"] != row["etag"]:
        precondition_failed(
            "Use profile was updated since you last fetched it, retrieve it again and reapply "
            "the update."
        )
    state = _state(body)
    # The body replaces the stored team (omitted description/icon are cleared).
    store.execute(
        "INSERT INTO teams(team_id, description, icon, state, etag, created_on, created_by, "
        "modified_on, modified_by) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(team_id) DO UPDATE "
        "SET description = excluded.description, icon = excluded.icon, state = excluded.state,"
        " etag = excluded.etag, modified_on = excluded.modified_on, "
        "modified_by = excluded.modified_by",
        (
            team_id,
            body.get("description"),
            icon,
            state,
            new_etag(),
            row["created_on"],
            row["created_by"] if row["created_by"] is not None else caller.id,
            now(),
            caller.id,
        ),
    )
    return team_json(require_team(store, team_id))


def get_team(ctx: Ctx, team_id: str) -> dict[str, Any]:
    return team_json(require_team(ctx.store, _team_id(team_id)))


def delete_team(ctx: Ctx, team_id: str) -> Reply:
    store = ctx.store
    tid = _team_id(team_id)
    row = team_row(store, tid)
    if row is None:
        return Reply(204)
    check(store, ctx.caller, tid, "DELETE")
    # The principal is still referenced by an entity ACL: Synapse's foreign key refuses.
    shared = store.one(
        "SELECT 1 FROM acls, json_each(acls.entries) AS e "
        "WHERE json_extract(e.value, '$.principalId') = ? LIMIT 1",
        (tid,),
    )
    if shared is not None:
        bad_request(
            f"Can't delete the team {row['name']} (ID: {tid}), most likely because it is "
            "referenced by a submission, or an entity is shared with it. Contact the "
            "administrator of the submission queue to delete the submission, or unshare the "
            "entity."
        )
    for sql in (
        "DELETE FROM team_acls WHERE team_id = ?",
        "DELETE FROM teams WHERE team_id = ?",
        "DELETE FROM memberships WHERE group_id = ?",
        "DELETE FROM membership_invitations WHERE team_id = ?",
        "DELETE FROM membership_requests WHERE team_id = ?",
        "DELETE FROM principals WHERE id = ?",
    ):
        store.execute(sql, (tid,))
    return Reply(204)


def _name_matches(name: str, fragment: str) -> bool:
    lowered = name.lower()
    return lowered.startswith(fragment) or any(w.startswith(fragment) for w in lowered.split())


def list_teams(ctx: Ctx) -> dict[str, Any]:
    limit, offset = _limit_offset(ctx)
    fragment = str(ctx.args.get("fragment", "") or "").strip().lower()
    rows = ctx.store.all("SELECT id FROM principals WHERE kind = 'team' ORDER BY id")
    # No fragment: every team by id; with one: the principal-prefix match (names and words).
    ids = [int(r["id"]) for r in rows]
    if fragment:
        names = {
            int(r["id"]): str(r["name"])
            for r in ctx.store.all("SELECT id, name FROM principals WHERE kind = 'team'")
        }
        ids = [i for i in ids if _name_matches(names[i], fragment)]
    page = ids[offset : offset + limit + 1]
    return _estimated([team_json(team_row(ctx.store, i)) for i in page], limit, offset)


def team_list(ctx: Ctx) -> dict[str, Any]:
    ids = ctx.json_body().get("list") or []
    out = []
    for raw in ids:
        row = team_row(ctx.store, parse_int(raw, "list"))
        if row is None:
            not_found(f"Team with id {raw} not found")
        out.append(team_json(row))
    return {"concreteType": "org.sagebionetworks.repo.model.Team", "list": out}


def _member_json(team_id: int, member: Any, admins: set[int]) -> dict[str, Any]:
    return {
        "teamId": str(team_id),
        "member": group_header(member),
        "isAdmin": int(member["id"]) in admins,
    }


def _members_query(
    tid: int, fragment: str, admins: set[int] | None, want_admins: bool
) -> tuple[str, list[Any]]:
    """FROM/WHERE over a team's user members, filtered in SQL so pages cost O(page)."""
    # Only users are listed (Synapse's query joins USER_PROFILE).
    sql = (
        "FROM memberships m JOIN principals p ON p.id = m.member_id "
        "WHERE m.group_id = ? AND p.kind = 'user'"
    )
    params: list[Any] = [tid]
    if fragment:
        # A prefix of the user name, first or last name (case-insensitive, no LIKE escaping).
        sql += (
            " AND ("
            + " OR ".join(
                f"substr(lower(COALESCE(p.{column}, '')), 1, ?) = ?"
                for column in ("name", "first_name", "last_name")
            )
            + ")"
        )
        params += [len(fragment), fragment] * 3
    if admins is not None and (admins or want_admins):
        marks = ",".join("?" * len(admins))
        # An empty IN () is not SQL: no admins means no ADMIN rows and every MEMBER row.
        sql += f" AND p.id {'IN' if want_admins else 'NOT IN'} ({marks})" if admins else " AND 0"
        params += sorted(admins)
    return sql, params


def _fragment(ctx: Ctx) -> str:
    return str(ctx.args.get("fragment", "") or "").strip().lower()


def team_members(ctx: Ctx, team_id: str) -> dict[str, Any]:
    store = ctx.store
    tid = _team_id(team_id)
    require_team(store, tid)
    limit, offset = _limit_offset(ctx)
    member_type = ctx.args.get("memberType") or "ALL"
    if member_type not in ("ADMIN", "MEMBER", "ALL"):
        bad_request(
            f"No enum constant org.sagebionetworks.repo.model.TeamMemberTypeFilterOptions."
            f"{member_type}"
        )
    admins = admin_ids(store, tid)
    sql, params = _members_query(
        tid, _fragment(ctx), None if member_type == "ALL" else admins, member_type == "ADMIN"
    )
    # Synapse has no ORDER BY here; member id is the emulator's stable choice.
    rows = store.all(
        f"SELECT p.* {sql} ORDER BY p.id LIMIT ? OFFSET ?", [*params, limit + 1, offset]
    )
    return _estimated([_member_json(tid, r, admins) for r in rows], limit, offset)


def team_member_count(ctx: Ctx, team_id: str) -> dict[str, Any]:
    # No existence check: an unknown team simply has no members.
    sql, params = _members_query(_team_id(team_id), _fragment(ctx), None, False)
    return {"count": int(ctx.store.scalar(f"SELECT COUNT(*) {sql}", params))}


def _member_row(store: Store, team_id: int, principal_id: int) -> Any:
    return store.one(
        "SELECT p.* FROM memberships m JOIN principals p ON p.id = m.member_id "
        "WHERE m.group_id = ? AND m.member_id = ?",
        (team_id, principal_id),
    )


def get_member(ctx: Ctx, team_id: str, principal_id: str) -> dict[str, Any]:
    store = ctx.store
    tid, pid = _team_id(team_id), parse_int(principal_id, "principalId")
    row = _member_row(store, tid, pid)
    if row is None:
        not_found(f"Could not find member {pid} in team {tid}")
    return _member_json(tid, row, admin_ids(store, tid))


def _listed_members(ctx: Ctx, pairs: Iterator[tuple[int, int]]) -> dict[str, Any]:
    """Memberships by (team, member), in the order asked; one that does not exist is a 404.
    ``pairs`` is lazy so that each id is parsed when its turn comes, as Synapse does."""
    out = []
    for tid, pid in pairs:
        row = _member_row(ctx.store, tid, pid)
        if row is None:
            not_found(f"teamId: {tid} memberId: {pid}")
        out.append(_member_json(tid, row, admin_ids(ctx.store, tid)))
    return {"concreteType": "org.sagebionetworks.repo.model.TeamMember", "list": out}


def team_member_list(ctx: Ctx, team_id: str) -> dict[str, Any]:
    tid = _team_id(team_id)
    listed = ctx.json_body().get("list") or []
    return _listed_members(ctx, ((tid, parse_int(raw, "list")) for raw in listed))


def user_member_list(ctx: Ctx, user_id: str) -> dict[str, Any]:
    pid = parse_int(user_id, "id")
    listed = ctx.json_body().get("list") or []
    return _listed_members(ctx, ((parse_int(raw, "list"), pid) for raw in listed))


def user_teams(ctx: Ctx, user_id: str) -> dict[str, Any]:
    uid = parse_int(user_id, "id")
    offset, limit = paginate_offset(ctx.args, default_limit=10)
    rows = ctx.store.all(
        "SELECT m.group_id FROM memberships m JOIN principals p ON p.id = m.group_id "
        "WHERE m.member_id = ? AND p.kind = 'team' ORDER BY m.group_id LIMIT ? OFFSET ?",
        (uid, limit + 1, offset),
    )
    teams = [team_json(team_row(ctx.store, int(r[0]))) for r in rows]
    return _estimated(teams, limit, offset)


def user_team_ids(ctx: Ctx, user_id: str) -> dict[str, Any]:
    uid = parse_int(user_id, "id")
    sort = ctx.args.get("sort")
    if sort is not None and sort != "TEAM_NAME":
        bad_request(f"Unsupported sort: {sort}")
    ascending = str(ctx.args.get("ascending", "true")).lower() != "false"
    limit, offset = parse_next_page_token(ctx.args.get("nextPageToken"))
    rows = ctx.store.all(
        "SELECT p.id FROM memberships m JOIN principals p ON p.id = m.group_id "
        "WHERE m.member_id = ? AND p.kind = 'team' ORDER BY "
        + ("lower(p.name) " + ("ASC" if ascending else "DESC") + ", " if sort else "")
        + "p.id LIMIT ? OFFSET ?",
        (uid, limit + 1, offset),
    )
    ids = [str(r[0]) for r in rows]
    return {
        "teamIds": ids[:limit],
        "nextPageToken": next_page_token(limit, offset) if len(ids) > limit else None,
    }


def membership_status(ctx: Ctx, team_id: str, principal_id: str) -> dict[str, Any]:
    store, caller = ctx.store, ctx.caller
    tid, pid = _team_id(team_id), parse_int(principal_id, "principalId")
    principal = require_user(store, pid)
    member = is_member(store, tid, pid)
    can_join = add_refusal(store, caller, tid, principal, member) is None
    approval = not (
        principal.admin or allows(store, principal, tid, TMU) or team_state(store, tid) == "PUBLIC"
    )
    return {
        "teamId": str(tid),
        "userId": str(pid),
        "isMember": member,
        "hasOpenInvitation": _open_invitation_count(store, tid, pid) > 0,
        "hasOpenRequest": _open_request_count(store, tid, pid) > 0,
        "canJoin": can_join,
        "hasUnmetAccessRequirement": ars.has_unmet(store, pid, "TEAM", tid),
        "membershipApprovalRequired": approval,
        "canSendEmail": allows(store, principal, tid, "SEND_MESSAGE"),
    }


def put_member(ctx: Ctx, team_id: str, principal_id: str) -> Reply:
    add_member(ctx.store, ctx.caller, _team_id(team_id), parse_int(principal_id, "principalId"))
    return Reply(204)


def delete_member(ctx: Ctx, team_id: str, principal_id: str) -> Reply:
    remove_member(ctx.store, ctx.caller, _team_id(team_id), parse_int(principal_id, "principalId"))
    return Reply(204)


def put_permission(ctx: Ctx, team_id: str, principal_id: str) -> Reply:
    raw = ctx.args.get("isAdmin")
    if raw is None:
        bad_request(
            "Required request parameter 'isAdmin' for method parameter type Boolean is not present"
        )
    set_admin(
        ctx.store,
        ctx.caller,
        _team_id(team_id),
        parse_int(principal_id, "principalId"),
        str(raw).lower() == "true",
    )
    return Reply(204)


# ---------------------------------------------------------------------------------------------
# Team ACL


def _acl_json(store: Store, team_id: int) -> dict[str, Any]:
    row = store.one("SELECT * FROM team_acls WHERE team_id = ?", (team_id,))
    if row is None:
        not_found(f"ACL for '{team_id}' of type 'TEAM' does not exist")
    return {
        "id": str(team_id),
        "etag": row["etag"],
        "creationDate": row["creation_date"],
        "resourceAccess": json.loads(row["entries"]),
    }


def get_acl(ctx: Ctx, team_id: str) -> dict[str, Any]:
    tid = _team_id(team_id)
    check(ctx.store, ctx.caller, tid, "READ")
    return _acl_json(ctx.store, tid)


def put_acl(ctx: Ctx) -> dict[str, Any]:
    store, body = ctx.store, ctx.json_body()
    if body.get("id") is None:
        bad_request("acl.id is required.")
    tid = parse_int(body["id"], "acl.id")
    check(store, ctx.caller, tid, "UPDATE")
    for key in ("etag", "creationDate", "resourceAccess"):
        if body.get(key) is None:
            bad_request(f"acl.{key} is required.")
    if not isinstance(body["resourceAccess"], list):
        bad_request("acl.resourceAccess is required.")
    entries: list[dict[str, Any]] = []
    for entry in body["resourceAccess"]:
        if not isinstance(entry, dict) or entry.get("principalId") is None:
            bad_request("ResourceAccess.principalId is required.")
        access = entry.get("accessType") or []
        for access_type in access:
            if access_type not in ALL_ACCESS_TYPES:
                bad_request(
                    f"No enum constant org.sagebionetworks.repo.model.ACCESS_TYPE.{access_type}"
                )
            if access_type not in TEAM_ACCESS_TYPES:
                bad_request(f"The access type {access_type} is not allowed for TEAM.")
        entries.append(
            {"principalId": parse_int(entry["principalId"], "principalId"), "accessType": access}
        )
    row = store.one("SELECT etag FROM team_acls WHERE team_id = ?", (tid,))
    if row is None:
        not_found(f"ACL for '{tid}' of type 'TEAM' does not exist")
    if body["etag"] != row["etag"]:
        precondition_failed("E-tags do not match.")
    save_acl(store, tid, entries)
    return _acl_json(store, tid)


# ---------------------------------------------------------------------------------------------
# Membership invitations


def _invitation_json(row: Any) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "teamId": str(row["team_id"]),
        "inviteeId": None if row["invitee_id"] is None else str(row["invitee_id"]),
        "inviteeEmail": row["invitee_email"],
        "message": row["message"],
        "expiresOn": row["expires_on"],
        "createdOn": row["created_on"],
        "createdBy": str(row["created_by"]),
    }


def post_invitation(ctx: Ctx) -> Reply:
    store, caller, body = ctx.store, ctx.caller, ctx.json_body()
    _refuse_server_fields(body, ("createdBy", "createdOn", "id"))
    if (body.get("inviteeId") is None) == (body.get("inviteeEmail") is None):
        bad_request("One and only one of the fields 'inviteeId' and 'inviteeEmail' is required")
    if body.get("teamId") is None:
        bad_request("'teamId' field is required.")
    tid = parse_int(body["teamId"], "teamId")
    if not allows(store, caller, tid, TMU):
        forbidden("Cannot create membership invitation.")
    invitee = None if body.get("inviteeId") is None else parse_int(body["inviteeId"], "inviteeId")
    if invitee is None and not caller.certified:
        bad_request("You must be a certified user to send email invitations")
    return _create_offer(
        ctx,
        _INVITATIONS,
        {"team_id": tid, "invitee_id": invitee, "invitee_email": body.get("inviteeEmail")},
    )


# Invitations and requests are two kinds of open membership offer with the same rules for
# reading, deleting and listing; they differ in the table and in whose offer it is.
_INVITATIONS = "membership_invitations"
_REQUESTS = "membership_requests"


def _offer_kind(table: str) -> tuple[str, str, Callable[[Any], dict[str, Any]]]:
    """The table's alias, its member column (whose offer it is) and its JSON."""
    if table == _INVITATIONS:
        return "i", "invitee_id", _invitation_json
    return "r", "user_id", _request_json


def _create_offer(ctx: Ctx, table: str, columns: dict[str, Any]) -> Reply:
    """Store a new invitation or request (its message, expiry and creation stamped here)."""
    body = ctx.json_body()
    values = {
        "id": ctx.store.next_id(table.removesuffix("s")),
        **columns,
        "message": body.get("message"),
        "expires_on": _parse_date(body.get("expiresOn"), "expiresOn"),
        "created_on": now(),
        "created_by": ctx.caller.id,
    }
    ctx.store.execute(
        f"INSERT INTO {table}({', '.join(values)}) VALUES ({', '.join('?' for _ in values)})",
        tuple(values.values()),
    )
    row = ctx.store.one(f"SELECT * FROM {table} WHERE id = ?", (values["id"],))
    return Reply(201, _offer_kind(table)[2](row))


def _offer(ctx: Ctx, table: str, offer_id: str) -> Any:
    return ctx.store.one(f"SELECT * FROM {table} WHERE id = ?", (parse_int(offer_id, "id"),))


def _may_see_offer(ctx: Ctx, table: str, row: Any) -> bool:
    """The offer's member (invitee or requester), the team's managers, or an admin."""
    caller, member = ctx.caller, row[_offer_kind(table)[1]]
    return (
        caller.admin
        or (member is not None and int(member) == caller.id)
        or allows(ctx.store, caller, int(row["team_id"]), TMU)
    )


def _get_offer(ctx: Ctx, table: str, offer_id: str, missing: str, refused: str) -> dict[str, Any]:
    row = _offer(ctx, table, offer_id)
    if row is None:
        not_found(missing)
    if not _may_see_offer(ctx, table, row):
        forbidden(refused)
    return _offer_kind(table)[2](row)


def _delete_offer(ctx: Ctx, table: str, offer_id: str, refused: str) -> Reply:
    row = _offer(ctx, table, offer_id)
    if row is None:
        return Reply(204)
    if not _may_see_offer(ctx, table, row):
        forbidden(refused)
    ctx.store.execute(f"DELETE FROM {table} WHERE id = ?", (row["id"],))
    return Reply(204)


def _open_page(
    ctx: Ctx,
    table: str,
    where: str,
    params: dict[str, Any],
    *,
    narrow: tuple[str, str],
    count_narrowed: bool = True,
) -> dict[str, Any]:
    """A page of the open offers matching ``where``, createdOn DESC, with the exact total.

    ``narrow`` is an optional query argument and the column it filters (``teamId`` →
    ``team_id``); the total counts the narrowed set unless ``count_narrowed`` is false.
    """
    alias, member_column, to_json = _offer_kind(table)
    arg, column = narrow
    page_where = where
    params = {**params, "now": now()}
    if ctx.args.get(arg):
        page_where += f" AND {alias}.{column} = :narrow"
        params["narrow"] = parse_int(ctx.args[arg], arg)
    offset, limit = paginate_offset(ctx.args, default_limit=10)
    params.update(limit=limit, offset=offset)
    source = f"FROM {table} {alias} WHERE {{}} AND {_open_clause(alias, member_column)}"
    rows = ctx.store.all(
        f"SELECT {alias}.* {source.format(page_where)} "
        f"ORDER BY {alias}.created_on DESC, {alias}.id DESC LIMIT :limit OFFSET :offset",
        params,
    )
    counted = source.format(page_where if count_narrowed else where)
    total = int(ctx.store.scalar(f"SELECT COUNT(*) {counted}", params))
    return {"results": [to_json(r) for r in rows], "totalNumberOfResults": total}


def get_invitation(ctx: Ctx, invitation_id: str) -> dict[str, Any]:
    return _get_offer(
        ctx,
        _INVITATIONS,
        invitation_id,
        f"Membership invitation '{invitation_id}' does not exist",
        "Cannot retrieve membership invitation.",
    )


def delete_invitation(ctx: Ctx, invitation_id: str) -> Reply:
    return _delete_offer(ctx, _INVITATIONS, invitation_id, "Cannot delete membership invitation.")


def user_open_invitations(ctx: Ctx, user_id: str) -> dict[str, Any]:
    uid = parse_int(user_id, "id")
    return _open_page(
        ctx, _INVITATIONS, "i.invitee_id = :user", {"user": uid}, narrow=("teamId", "team_id")
    )


def team_open_invitations(ctx: Ctx, team_id: str) -> dict[str, Any]:
    tid = _team_id(team_id)
    if not allows(ctx.store, ctx.caller, tid, TMU):
        forbidden(f"Cannot retrieve membership invitations for team {tid}.")
    # Synapse counts the team's open invitations even when the page is filtered by invitee.
    return _open_page(
        ctx,
        _INVITATIONS,
        "i.team_id = :team",
        {"team": tid},
        narrow=("inviteeId", "invitee_id"),
        count_narrowed=False,
    )


def open_invitation_count(ctx: Ctx) -> dict[str, Any]:
    count = ctx.store.scalar(
        "SELECT COUNT(*) FROM membership_invitations i WHERE i.invitee_id = :user AND "
        + _open_clause("i", "invitee_id"),
        {"user": ctx.caller.id, "now": now()},
    )
    return {"count": int(count)}


# ---------------------------------------------------------------------------------------------
# Membership requests


def _request_json(row: Any) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "teamId": str(row["team_id"]),
        "userId": str(row["user_id"]),
        "message": row["message"],
        "expiresOn": row["expires_on"],
        "createdOn": row["created_on"],
        "createdBy": str(row["created_by"]),
    }


def post_request(ctx: Ctx) -> Reply:
    store, caller, body = ctx.store, ctx.caller, ctx.json_body()
    if caller.anonymous:
        forbidden("anonymous user cannot create membership request.")
    _refuse_server_fields(body, ("createdBy", "createdOn", "id"))
    user_id = caller.id
    if body.get("userId") is not None:
        user_id = parse_int(body["userId"], "userId")
        if user_id != caller.id and not caller.admin:
            bad_request("May not specify a user id other than yourself.")
    if body.get("teamId") is None:
        bad_request("'teamId' field is required.")
    tid = parse_int(body["teamId"], "teamId")
    if not caller.admin and ars.has_unmet(store, user_id, "TEAM", tid):
        forbidden(
            "Requested member has unmet access requirements which must be met before asking "
            "to join the Team."
        )
    state = team_state(store, tid)
    if state == "PUBLIC":
        bad_request(
            "This team is already open for the public to join, membership requests are not needed."
        )
    if state == "CLOSED":
        bad_request("This team has been closed to new membership requests.")
    return _create_offer(ctx, _REQUESTS, {"team_id": tid, "user_id": user_id})


def get_request(ctx: Ctx, request_id: str) -> dict[str, Any]:
    return _get_offer(
        ctx,
        _REQUESTS,
        request_id,
        f"Membership request '{request_id}' does not exist",
        f"Unauthorized to READ membership request {request_id}",
    )


def delete_request(ctx: Ctx, request_id: str) -> Reply:
    return _delete_offer(
        ctx, _REQUESTS, request_id, f"Unauthorized to DELETE membership request {request_id}"
    )


def team_open_requests(ctx: Ctx, team_id: str) -> dict[str, Any]:
    tid = _team_id(team_id)
    if not allows(ctx.store, ctx.caller, tid, TMU):
        forbidden("Cannot retrieve membership requests.")
    return _open_page(
        ctx, _REQUESTS, "r.team_id = :team", {"team": tid}, narrow=("requestorId", "user_id")
    )


def user_open_requests(ctx: Ctx, user_id: str) -> dict[str, Any]:
    uid = parse_int(user_id, "id")
    if uid != ctx.caller.id:
        forbidden("Cannot retrieve another's membership requests.")
    return _open_page(
        ctx, _REQUESTS, "r.user_id = :user", {"user": uid}, narrow=("teamId", "team_id")
    )


def open_request_count(ctx: Ctx) -> dict[str, Any]:
    """Open requests across the teams whose ACL makes the caller a manager (own entry)."""
    store = ctx.store
    managed = [
        int(r["team_id"])
        for r in store.all("SELECT team_id FROM team_acls")
        if ctx.caller.id in admin_ids(store, int(r["team_id"]))
    ]
    count = 0
    for tid in managed:
        count += int(
            store.scalar(
                "SELECT COUNT(*) FROM membership_requests r WHERE r.team_id = :team AND "
                + _open_clause("r", "user_id"),
                {"team": tid, "now": now()},
            )
        )
    return {"count": count}


ROUTES = [
    Route("POST", "/repo/v1/team", post_team),
    Route("PUT", "/repo/v1/team", put_team),
    Route("GET", "/repo/v1/teams", list_teams),
    Route("POST", "/repo/v1/teamList", team_list),
    Route("PUT", "/repo/v1/team/acl", put_acl),
    Route("GET", "/repo/v1/team/<team_id>", get_team),
    Route("DELETE", "/repo/v1/team/<team_id>", delete_team),
    Route("GET", "/repo/v1/team/<team_id>/acl", get_acl),
    Route("GET", "/repo/v1/teamMembers/<team_id>", team_members),
    Route("GET", "/repo/v1/teamMembers/count/<team_id>", team_member_count),
    Route("POST", "/repo/v1/team/<team_id>/memberList", team_member_list),
    Route("POST", "/repo/v1/user/<user_id>/memberList", user_member_list),
    Route("GET", "/repo/v1/team/<team_id>/member/<principal_id>", get_member),
    Route("PUT", "/repo/v1/team/<team_id>/member/<principal_id>", put_member),
    Route("DELETE", "/repo/v1/team/<team_id>/member/<principal_id>", delete_member),
    Route(
        "GET", "/repo/v1/team/<team_id>/member/<principal_id>/membershipStatus", membership_status
    ),
    Route("PUT", "/repo/v1/team/<team_id>/member/<principal_id>/permission", put_permission),
    Route("GET", "/repo/v1/user/<user_id>/team", user_teams),
    Route("GET", "/repo/v1/user/<user_id>/team/id", user_team_ids),
    Route("POST", "/repo/v1/membershipInvitation", post_invitation),
    Route("GET", "/repo/v1/membershipInvitation/openInvitationCount", open_invitation_count),
    Route("GET", "/repo/v1/membershipInvitation/<invitation_id>", get_invitation),
    Route("DELETE", "/repo/v1/membershipInvitation/<invitation_id>", delete_invitation),
    Route("GET", "/repo/v1/user/<user_id>/openInvitation", user_open_invitations),
    Route("GET", "/repo/v1/team/<team_id>/openInvitation", team_open_invitations),
    Route("POST", "/repo/v1/membershipRequest", post_request),
    Route("GET", "/repo/v1/membershipRequest/openRequestCount", open_request_count),
    Route("GET", "/repo/v1/membershipRequest/<request_id>", get_request),
    Route("DELETE", "/repo/v1/membershipRequest/<request_id>", delete_request),
    Route("GET", "/repo/v1/team/<team_id>/openRequest", team_open_requests),
    Route("GET", "/repo/v1/user/<user_id>/openRequest", user_open_requests),
]
