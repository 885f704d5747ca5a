"""Users and groups: bearer-token authentication, profiles, bundles, alias lookups.

The ``--users`` file format is a public contract (teams live in ``teams.py``, access
requirements in ``access_requirements.py``; both are seeded through their REST code)::

    users:
      - userName: alice
        token: alice-token        # the bearer token this user presents
        email: alice@example.org
        certified: true           # default true
    teams:
      - name: Lab Admins
        members: [alice, bob]     # the first member creates the team and manages it
        managers: [alice]         # optional; the first manager is the creator
        description: optional
        canPublicJoin: false      # optional
    access_requirements:
      - name: Terms for the raw data
        subjects: [syn2000001]    # entity ids or team:NAME
        approved: [alice]         # users holding an approval
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .routing import Route
from .seedfile import SeedProblem, unknown_keys
from .util import (
    ACT_GROUP,
    ADMINISTRATORS_GROUP,
    ANONYMOUS,
    AUTHENTICATED_USERS,
    CERTIFIED_USERS,
    MIGRATION_ADMIN,
    PUBLIC,
    SAGE_BIONETWORKS,
    SynapseError,
    bad_request,
    new_etag,
    not_found,
    now,
    page_results,
    paginate_offset,
    parse_int,
)

if TYPE_CHECKING:
    from .app import Ctx
    from .store import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS principals (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,              -- 'user' | 'team' | 'group'
    name TEXT NOT NULL,
    alias TEXT,                      -- normalised unique alias (lower-case letters and digits)
    email TEXT,
    token TEXT UNIQUE,
    first_name TEXT,
    last_name TEXT,
    description TEXT,
    etag TEXT NOT NULL,
    created_on TEXT NOT NULL,
    created_by INTEGER
);
CREATE INDEX IF NOT EXISTS principals_alias ON principals(alias);
CREATE TABLE IF NOT EXISTS memberships (
    group_id INTEGER NOT NULL,
    member_id INTEGER NOT NULL,
    PRIMARY KEY (group_id, member_id)
);
CREATE INDEX IF NOT EXISTS memberships_member ON memberships(member_id);
"""

# Groups a user belongs to that never count as a "team" (owner.txt rules, user's teams).
SYSTEM_GROUPS = frozenset({AUTHENTICATED_USERS, PUBLIC, CERTIFIED_USERS})


def alias_key(name: str) -> str:
    """AliasUtils.getUniqueAliasName: case-insensitive, non-alphanumerics ignored."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


@dataclass(frozen=True)
class Caller:
    id: int
    user_name: str
    anonymous: bool
    certified: bool
    admin: bool
    groups: frozenset[int]

    def teams(self) -> frozenset[int]:
        return self.groups - SYSTEM_GROUPS - {self.id}


ANONYMOUS_CALLER = Caller(
    id=ANONYMOUS,
    user_name="anonymous",
    anonymous=True,
    certified=False,
    admin=False,
    groups=frozenset({ANONYMOUS, PUBLIC}),
)


def caller_for(store: Store, user_id: int) -> Caller:
    row = store.one("SELECT id, name FROM principals WHERE id = ? AND kind = 'user'", (user_id,))
    if row is None or user_id == ANONYMOUS:
        return ANONYMOUS_CALLER
    groups = {
        r[0] for r in store.all("SELECT group_id FROM memberships WHERE member_id = ?", (user_id,))
    }
    groups |= {user_id, AUTHENTICATED_USERS, PUBLIC}
    admin = user_id == MIGRATION_ADMIN or ADMINISTRATORS_GROUP in groups
    return Caller(
        id=user_id,
        user_name=str(row["name"]),
        anonymous=False,
        certified=CERTIFIED_USERS in groups or admin,
        admin=admin,
        groups=frozenset(groups),
    )


def resolve_caller(store: Store, token: str | None) -> Caller:
    if not token:
        return ANONYMOUS_CALLER
    with store.lock:
        row = store.one("SELECT id FROM principals WHERE token = ? AND kind = 'user'", (token,))
        if row is None:
            raise SynapseError(
                401,
                "Invalid access token",
                headers={"WWW-Authenticate": 'Bearer realm="Synapse Repository Services"'},
            )
        return caller_for(store, int(row["id"]))


# ---------------------------------------------------------------------------------------------
# Seeding


def bootstrap(store: Store) -> None:
    """Bootstrap principals as on the real service (synapse-api.md §4.4)."""
    created = now()
    rows = [
        (MIGRATION_ADMIN, "user", "migrationAdmin"),
        (ADMINISTRATORS_GROUP, "group", "ADMINISTRATORS"),
        (CERTIFIED_USERS, "group", "CERTIFIED_USERS"),
        (AUTHENTICATED_USERS, "group", "AUTHENTICATED_USERS"),
        (PUBLIC, "group", "PUBLIC"),
        (ANONYMOUS, "user", "anonymous"),
        (ACT_GROUP, "group", "ACT"),
        (SAGE_BIONETWORKS, "team", "Sage Bionetworks"),
    ]
    for pid, kind, name in rows:
        store.execute(
            "INSERT OR IGNORE INTO principals(id, kind, name, alias, etag, created_on) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (pid, kind, name, alias_key(name), new_etag(), created),
        )
    store.execute(
        "INSERT OR IGNORE INTO memberships(group_id, member_id) VALUES (?, ?)",
        (ADMINISTRATORS_GROUP, MIGRATION_ADMIN),
    )


@dataclass(frozen=True)
class SeedUser:
    user_name: str
    token: str
    email: str | None = None
    certified: bool = True
    first_name: str | None = None
    last_name: str | None = None


@dataclass(frozen=True)
class SeedTeam:
    """A team to seed: created by its first manager (default: its first member)."""

    name: str
    members: tuple[str, ...] = ()
    managers: tuple[str, ...] = ()
    description: str | None = None
    can_public_join: bool = False


USER_KEYS = frozenset({"userName", "token", "email", "certified", "firstName", "lastName"})
TEAM_KEYS = frozenset({"name", "members", "managers", "description", "canPublicJoin"})


def parse_users_document(
    document: Any, source: str = "users file"
) -> tuple[list[SeedUser], list[SeedTeam]]:
    """Validate the ``--users`` YAML document; raises :class:`SeedProblem` (a ValueError) at
    the path of the first problem (``seedfile`` turns it into file:line:col)."""
    if not isinstance(document, Mapping):
        raise SeedProblem(
            source,
            (),
            "expected a mapping with 'users' and optional 'teams'",
            "start the file with `users:`, a list of {userName: NAME, token: TOKEN}",
        )
    unknown_keys(source, (), document, {"users", "teams", "access_requirements"}, "the file")
    users = _parse_users(document.get("users"), source)
    names = [u.user_name for u in users]
    teams: list[SeedTeam] = []
    raw_teams = document.get("teams") or []
    if not isinstance(raw_teams, list):
        raise SeedProblem(
            source, ("teams",), "teams must be a list", "write each team as `- name: NAME`"
        )
    for index, item in enumerate(raw_teams):
        teams.append(_parse_team(item, ("teams", index), names, source))
    return users, teams


def _parse_users(raw: Any, source: str) -> list[SeedUser]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise SeedProblem(
            source,
            ("users",),
            "users must be a list",
            "write each user as `- {userName: NAME, token: TOKEN}`",
        )
    users: list[SeedUser] = []
    first: dict[tuple[str, str], int] = {}  # (field, value) -> the index that listed it first
    for index, item in enumerate(raw):
        at: tuple[str | int, ...] = ("users", index)
        if not isinstance(item, Mapping):
            raise SeedProblem(
                source, at, "expected a mapping", "write the user as {userName: NAME, token: TOKEN}"
            )
        unknown_keys(source, at, item, USER_KEYS, "a user")
        name, token = item.get("userName"), item.get("token")
        if not isinstance(name, str) or not name:
            raise SeedProblem(
                source, at, "userName is required", "add `userName: NAME` (text) to this user"
            )
        if not isinstance(token, str) or not token:
            raise SeedProblem(
                source,
                at,
                # Worded so that no text follows "token:" or "bearer": the CLI's redaction
                # would mask it as a credential.
                "token is required (what requests present to act as this user)",
                "add the user's token under the key `token` (any text; quote it if it looks "
                "like a number)",
            )
        for field_name, value in (("userName", name), ("token", token)):
            earlier = first.setdefault((field_name, value), index)
            if earlier != index:
                # The token's value is not repeated: it is a credential, even a local one.
                shown = f" {value!r}" if field_name == "userName" else ""
                raise SeedProblem(
                    source,
                    (*at, field_name),
                    f"{field_name}{shown} is also given to users[{earlier}]",
                    f"each user needs its own {field_name}",
                )
        certified = item.get("certified", True)
        if not isinstance(certified, bool):
            raise SeedProblem(
                source,
                (*at, "certified"),
                "certified must be true or false",
                "write `certified: true` or `certified: false` (unquoted)",
            )
        users.append(
            SeedUser(
                user_name=name,
                token=token,
                email=item.get("email"),
                certified=certified,
                first_name=item.get("firstName"),
                last_name=item.get("lastName"),
            )
        )
    return users


def _parse_team(
    item: Any, at: tuple[str | int, ...], names: Sequence[str], source: str
) -> SeedTeam:
    if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
        raise SeedProblem(
            source, at, "expected a mapping with a name", "write the team as `- name: NAME`"
        )
    unknown_keys(source, at, item, TEAM_KEYS, "a team")
    people: dict[str, tuple[str, ...]] = {}
    for key in ("members", "managers"):
        listed = item.get(key) or []
        if not isinstance(listed, list) or not all(isinstance(m, str) for m in listed):
            raise SeedProblem(
                source, (*at, key), f"{key} must be a list of userNames", f"write `{key}: [alice]`"
            )
        missing = [m for m in listed if m not in names]
        if missing:
            raise SeedProblem(
                source,
                (*at, key, listed.index(missing[0])),
                f"{key} {missing} are not listed under users",
                "add them under users:, or correct the userName",
            )
        people[key] = tuple(listed)
    if not people["members"] and not people["managers"]:
        raise SeedProblem(
            source,
            at,
            "a team needs a manager (its creator)",
            "list its members (the first creates the team) or managers",
        )
    description = item.get("description")
    if description is not None and not isinstance(description, str):
        raise SeedProblem(
            source, (*at, "description"), "description must be text", "quote the description"
        )
    public_join = item.get("canPublicJoin", False)
    if not isinstance(public_join, bool):
        raise SeedProblem(
            source,
            (*at, "canPublicJoin"),
            "canPublicJoin must be true or false",
            "write `canPublicJoin: true` or `canPublicJoin: false` (unquoted)",
        )
    return SeedTeam(
        name=item["name"],
        members=people["members"],
        managers=people["managers"],
        description=description,
        can_public_join=public_join,
    )


def seed(store: Store, users: Sequence[SeedUser]) -> dict[str, int]:
    """Create (or update the token/certification of) users; returns userName → id.

    Teams are seeded by ``teams.seed_teams`` through the same code as ``POST /team``.
    """
    ids: dict[str, int] = {}
    created = now()
    for user in users:
        row = store.one(
            "SELECT id FROM principals WHERE kind='user' AND name = ?", (user.user_name,)
        )
        if row is None:
            pid = store.next_id("principal")
            store.execute(
                "INSERT INTO principals(id, kind, name, alias, email, token, first_name, "
                "last_name, etag, created_on) VALUES (?, 'user', ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    pid,
                    user.user_name,
                    alias_key(user.user_name),
                    user.email,
                    user.token,
                    user.first_name,
                    user.last_name,
                    new_etag(),
                    created,
                ),
            )
        else:
            pid = int(row["id"])
            # Only a real change counts as one (state_version stays put on a plain restart).
            store.execute(
                "UPDATE principals SET token = ?, email = COALESCE(?, email) WHERE id = ? "
                "AND (token IS NOT ? OR email IS NOT COALESCE(?, email))",
                (user.token, user.email, pid, user.token, user.email),
            )
        if user.certified:
            store.execute(
                "INSERT OR IGNORE INTO memberships(group_id, member_id) VALUES (?, ?)",
                (CERTIFIED_USERS, pid),
            )
        else:
            store.execute(
                "DELETE FROM memberships WHERE group_id = ? AND member_id = ?",
                (CERTIFIED_USERS, pid),
            )
        ids[user.user_name] = pid
    return ids


def new_token() -> str:
    return "demo-" + secrets.token_hex(16)


# ---------------------------------------------------------------------------------------------
# JSON shapes


def user_profile(store: Store, user_id: int, *, private: bool) -> dict[str, Any]:
    row = store.one("SELECT * FROM principals WHERE id = ? AND kind = 'user'", (user_id,))
    if row is None:
        not_found(f"UserProfile cannot be found for: {user_id}")
    profile: dict[str, Any] = {
        "ownerId": str(row["id"]),
        "etag": row["etag"],
        "firstName": row["first_name"] or "",
        "lastName": row["last_name"] or "",
        "userName": row["name"],
        "openIds": [],
        "createdOn": row["created_on"],
    }
    if private:
        profile["emails"] = [row["email"]] if row["email"] else []
        profile["twoFactorAuthEnabled"] = False
    return profile


def group_header(row: Any) -> dict[str, Any]:
    individual = row["kind"] == "user"
    return {
        "ownerId": str(row["id"]),
        "userName": row["name"],
        "firstName": (row["first_name"] or None) if individual else None,
        "lastName": (row["last_name"] or None) if individual else None,
        "isIndividual": individual,
    }


# ---------------------------------------------------------------------------------------------
# Handlers


def get_my_profile(ctx: Ctx) -> dict[str, Any]:
    if ctx.caller.anonymous:
        return user_profile(ctx.store, ANONYMOUS, private=False)
    return user_profile(ctx.store, ctx.caller.id, private=True)


def get_profile(ctx: Ctx, profile_id: str) -> dict[str, Any]:
    pid = parse_int(profile_id, "profileId")
    return user_profile(ctx.store, pid, private=(pid == ctx.caller.id and not ctx.caller.anonymous))


def _bundle(ctx: Ctx, user_id: int) -> dict[str, Any]:
    mask = parse_int(ctx.args.get("mask", 0), "mask")
    row = ctx.store.one("SELECT id FROM principals WHERE id = ? AND kind='user'", (user_id,))
    if row is None:
        not_found(f"UserProfile cannot be found for: {user_id}")
    target = caller_for(ctx.store, user_id)
    bundle: dict[str, Any] = {"userId": str(user_id)}
    if mask & 0x1:
        bundle["userProfile"] = user_profile(ctx.store, user_id, private=(user_id == ctx.caller.id))
    if mask & 0x8:
        bundle["isCertified"] = target.certified
    if mask & 0x10:
        bundle["isVerified"] = False
    if mask & 0x20:
        bundle["isACTMember"] = ACT_GROUP in target.groups
    if mask & 0x40:
        bundle["isARReviewer"] = False
    return bundle


def get_my_bundle(ctx: Ctx) -> dict[str, Any]:
    if ctx.caller.anonymous:
        raise SynapseError(401, "Invalid access token")
    return _bundle(ctx, ctx.caller.id)


def get_user_bundle(ctx: Ctx, user_id: str) -> dict[str, Any]:
    return _bundle(ctx, parse_int(user_id, "id"))


def principal_alias(ctx: Ctx) -> dict[str, Any]:
    body = ctx.json_body()
    alias, alias_type = body.get("alias"), body.get("type")
    if alias_type != "USER_NAME":
        bad_request(f"Unsupported alias type {alias_type}")
    row = ctx.store.one(
        "SELECT id FROM principals WHERE kind='user' AND alias = ?", (alias_key(str(alias)),)
    )
    if row is None or int(row["id"]) == ANONYMOUS:
        not_found(f"Alias: '{alias}' of type: '{alias_type}' does not exist")
    return {"principalId": int(row["id"])}


def headers_by_aliases(ctx: Ctx) -> dict[str, Any]:
    aliases = ctx.json_body().get("list")
    if not aliases:
        bad_request("Request must include at least one alias.")
    if len(aliases) > 100:
        bad_request("Request exceeds the maximum number of 100 aliases.")
    found = []
    for alias in aliases:
        row = ctx.store.one(
            "SELECT * FROM principals WHERE alias = ? AND kind IN ('user','team','group') "
            "AND id != ? ORDER BY kind DESC LIMIT 1",
            (alias_key(str(alias)), ANONYMOUS),
        )
        if row is not None:
            found.append(group_header(row))
    return {"list": found}


def headers_by_prefix(ctx: Ctx) -> dict[str, Any]:
    prefix = ctx.args.get("prefix", "")
    type_filter = ctx.args.get("typeFilter", "ALL")
    offset, limit = paginate_offset(ctx.args, default_limit=10)
    kinds = {
        "ALL": ("user", "team"),
        "USERS_ONLY": ("user",),
        "TEAMS_ONLY": ("team",),
    }.get(type_filter)
    if kinds is None:
        bad_request(f"No enum constant TypeFilter.{type_filter}")
    rows = ctx.store.all(
        "SELECT * FROM principals WHERE kind IN (%s) AND id NOT IN (?, ?) ORDER BY name"
        % ",".join("?" * len(kinds)),
        (*kinds, ANONYMOUS, MIGRATION_ADMIN),
    )
    needle = prefix.lower()
    matches = [
        group_header(r)
        for r in rows
        if not needle
        or str(r["name"]).lower().startswith(needle)
        or any(w.startswith(needle) for w in str(r["name"]).lower().split())
        or str(r["email"] or "").lower().startswith(needle)
    ]
    page = page_results(matches, offset, limit)
    return {
        "children": page["results"],
        "prefixFilter": prefix,
        "totalNumberOfResults": page["totalNumberOfResults"],
    }


def headers_batch(ctx: Ctx) -> dict[str, Any]:
    ids = [i for i in str(ctx.args.get("ids", "")).split(",") if i.strip()]
    out = []
    for raw in ids:
        row = ctx.store.one("SELECT * FROM principals WHERE id = ?", (parse_int(raw, "ids"),))
        if row is not None:
            out.append(group_header(row))
    return {"children": out, "totalNumberOfResults": len(out)}


def _routes() -> list[Route]:
    return [
        Route("GET", "/repo/v1/userProfile", get_my_profile),
        Route("GET", "/repo/v1/userProfile/<profile_id>", get_profile),
        Route("GET", "/repo/v1/user/bundle", get_my_bundle),
        Route("GET", "/repo/v1/user/<user_id>/bundle", get_user_bundle),
        Route("POST", "/repo/v1/principal/alias", principal_alias),
        Route("POST", "/repo/v1/userGroupHeaders/aliases", headers_by_aliases),
        Route("GET", "/repo/v1/userGroupHeaders", headers_by_prefix),
        Route("GET", "/repo/v1/userGroupHeaders/batch", headers_batch),
    ]


ROUTES = _routes()
