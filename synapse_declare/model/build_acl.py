"""The ACL builder: principals, permission levels or access types, and Synapse's ACL rules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from synapse_declare.errors import SourceLocation
from synapse_declare.manifest import JsonPath

from .build_core import BuildContext, did_you_mean
from .principals import (
    ANONYMOUS_ID,
    AUTHENTICATED_USERS_ID,
    ENTITY_ACCESS_TYPES,
    PERMISSION_LEVELS,
    PRINCIPAL_FORMS,
    PUBLIC_ID,
    PrincipalRef,
    alias_key,
    parse_principal,
    principal_suggestion,
)
from .specs import AclEntry, AclSpec


def build_acl(ctx: BuildContext, raw: Mapping[str, Any], path: JsonPath) -> AclSpec:
    entries: list[AclEntry] = []
    identities: dict[tuple[str, object], tuple[str, SourceLocation]] = {}
    for key, value in raw.items():
        entry = _entry(ctx, key, value, (*path, key), identities)
        if entry is not None:
            entries.append(entry)
    return AclSpec(tuple(entries), ctx.at(path))


def _entry(
    ctx: BuildContext,
    key: str,
    value: Any,
    epath: JsonPath,
    identities: dict[tuple[str, object], tuple[str, SourceLocation]],
) -> AclEntry | None:
    """One ``principal: permission`` entry; ``None`` (with the problem recorded) if refused."""
    try:
        principal = parse_principal(key)
    except ValueError as exc:
        suggestion = principal_suggestion(key)
        prefix = f"did you mean {suggestion!r}? " if suggestion else ""
        ctx.error(epath, str(exc), f"{prefix}a principal is {PRINCIPAL_FORMS}", key=True)
        return None
    identity = _identity(principal)
    here = ctx.at(epath, key=True)
    if identity in identities:
        other, where = identities[identity]
        ctx.error(
            epath,
            f"{key!r} and {other!r} are the same principal (first at {where})",
            "give each principal one entry",
            key=True,
        )
        return None
    identities[identity] = (key, here)
    access, level = _permission(ctx, value, epath)
    if access is None or not _grant_allowed(ctx, key, principal, access, epath):
        return None
    return AclEntry(principal, access, level, here)


def _grant_allowed(
    ctx: BuildContext, key: str, principal: PrincipalRef, access: frozenset[str], epath: JsonPath
) -> bool:
    """What Synapse refuses for its well-known groups (and a warning for what it allows)."""
    if principal.id == ANONYMOUS_ID:
        ctx.error(
            epath,
            "permissions cannot be given to the anonymous user (273950)",
            "to share with everyone, use PUBLIC: view",
            key=True,
        )
        return False
    if principal.id == PUBLIC_ID and access != PERMISSION_LEVELS["view"]:
        ctx.error(
            epath,
            f"{key} may only be given view (READ); Synapse rejects any other access "
            "for the public group",
            "use `PUBLIC: view`; to let every logged-in user download, add "
            "`AUTHENTICATED_USERS: download`",
        )
        return False
    if principal.id == AUTHENTICATED_USERS_ID and access - {"READ", "DOWNLOAD"}:
        # Synapse accepts it, but anyone can register an account: say so at the entry.
        extra = ", ".join(sorted(access - {"READ", "DOWNLOAD"}))
        ctx.warn(
            f"{key} is given {extra}: every Synapse account (anyone can register "
            "one) gets these rights here",
            ctx.at(epath, key=True),
            "give write access to a team (team:NAME: edit) and at most "
            "`AUTHENTICATED_USERS: download`",
        )
    return True


def _identity(principal: PrincipalRef) -> tuple[str, object]:
    if principal.id is not None:
        return ("id", principal.id)
    if principal.name is not None:
        return (principal.kind.value, alias_key(principal.name))
    return (principal.kind.value, None)


def _permission(
    ctx: BuildContext, value: Any, path: JsonPath
) -> tuple[frozenset[str] | None, str | None]:
    """A level name (``edit``) or a list of access types: the access set and the level."""
    if isinstance(value, str):
        access = PERMISSION_LEVELS.get(value)
        if access is None:
            levels = ", ".join(PERMISSION_LEVELS)
            ctx.error(
                path,
                f"unknown permission level {value!r}",
                f"{did_you_mean(value, PERMISSION_LEVELS)}use one of {levels}, or a list "
                "of access types such as [READ, DOWNLOAD]",
            )
            return None, None
        return access, value
    ok = True
    for i, item in enumerate(value):
        if item not in ENTITY_ACCESS_TYPES:
            allowed = ", ".join(sorted(ENTITY_ACCESS_TYPES))
            ctx.error(
                (*path, i),
                f"unknown access type {item!r}",
                f"{did_you_mean(str(item), ENTITY_ACCESS_TYPES)}allowed: {allowed}",
            )
            ok = False
    if not value:
        ctx.error(path, "an ACL entry needs at least one access type", "e.g. [READ]")
        ok = False
    return (frozenset(value), None) if ok else (None, None)
