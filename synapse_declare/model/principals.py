"""Principals and permissions as an ACL in a manifest writes them.

The well-known group ids, the principal forms (``self``, ``user:NAME``, ``team:NAME``, ``PUBLIC``,
``AUTHENTICATED_USERS``, a numeric id), the web UI's permission levels and the ACCESS_TYPE values
Synapse accepts on entity ACLs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from ..schema import keyword_principal

AUTHENTICATED_USERS_ID = 273948
PUBLIC_ID = 273949
ANONYMOUS_ID = 273950

DIGITS_RE = re.compile(r"^[0-9]+$")

PERMISSION_LEVELS: Mapping[str, frozenset[str]] = {
    "view": frozenset({"READ"}),
    "download": frozenset({"READ", "DOWNLOAD"}),
    "edit": frozenset({"CREATE", "READ", "DOWNLOAD", "UPDATE"}),
    "edit_delete": frozenset({"CREATE", "READ", "DOWNLOAD", "UPDATE", "DELETE"}),
    "administer": frozenset(
        {
            "READ",
            "DOWNLOAD",
            "UPDATE",
            "DELETE",
            "CREATE",
            "CHANGE_PERMISSIONS",
            "CHANGE_SETTINGS",
            "MODERATE",
        }
    ),
}
"""Permission levels of the Synapse web UI and their exact ACCESS_TYPE sets."""

ENTITY_ACCESS_TYPES: frozenset[str] = frozenset(
    {
        "CREATE",
        "DOWNLOAD",
        "READ",
        "CHANGE_PERMISSIONS",
        "CHANGE_SETTINGS",
        "DELETE",
        "MODERATE",
        "UPDATE",
        "SEND_MESSAGE",
        "TEAM_MEMBERSHIP_UPDATE",
        "DELETE_SUBMISSION",
        "PARTICIPATE",
        "READ_PRIVATE_SUBMISSION",
        "SUBMIT",
        "UPDATE_SUBMISSION",
        "UPLOAD",
    }
)
"""ACCESS_TYPE values Synapse accepts on entity ACLs."""


def level_for(access: frozenset[str]) -> str | None:
    """The permission level whose access set equals ``access`` exactly, if any."""
    for level, levels_access in PERMISSION_LEVELS.items():
        if levels_access == access:
            return level
    return None


class PrincipalKind(StrEnum):
    SELF = "self"
    USER = "user"
    TEAM = "team"
    PUBLIC = "PUBLIC"
    AUTHENTICATED_USERS = "AUTHENTICATED_USERS"
    ID = "id"


@dataclass(frozen=True, slots=True)
class PrincipalRef:
    """A principal as written in an ACL; ``id`` is known for PUBLIC, AUTHENTICATED_USERS, digits."""

    kind: PrincipalKind
    name: str | None = None
    id: int | None = None

    def __str__(self) -> str:
        if self.kind in (PrincipalKind.USER, PrincipalKind.TEAM):
            return f"{self.kind.value}:{self.name}"
        if self.kind is PrincipalKind.ID:
            return str(self.id)
        return self.kind.value


PRINCIPAL_FORMS = (
    "self, user:NAME, team:NAME, PUBLIC, AUTHENTICATED_USERS, or a numeric principal id in "
    'quotes such as "3350396"'
)


def parse_principal(text: str) -> PrincipalRef:
    """Parse an ACL key; raises :class:`ValueError` (with a message) for bad syntax."""
    if text == "self":
        return PrincipalRef(PrincipalKind.SELF)
    if text == "PUBLIC":
        return PrincipalRef(PrincipalKind.PUBLIC, id=PUBLIC_ID)
    if text == "AUTHENTICATED_USERS":
        return PrincipalRef(PrincipalKind.AUTHENTICATED_USERS, id=AUTHENTICATED_USERS_ID)
    if DIGITS_RE.match(text):
        return PrincipalRef(PrincipalKind.ID, id=int(text))
    prefix, sep, name = text.partition(":")
    if sep and prefix in ("user", "team"):
        name = name.strip()
        if name:
            return PrincipalRef(PrincipalKind(prefix), name=name)
        raise ValueError(f"principal {text!r} has no name after '{prefix}:'")
    raise ValueError(f"bad principal syntax: {text!r}")


def principal_suggestion(text: str) -> str | None:
    """What a mistyped principal probably meant: ``public`` is ``PUBLIC``, ``ann`` ``user:ann``."""
    keyword = keyword_principal(text)
    if keyword is not None:
        return keyword
    prefix, sep, rest = text.partition(":")
    if sep and prefix.strip().lower() in ("user", "team") and rest.strip():
        return f"{prefix.strip().lower()}:{rest.strip()}"
    if not sep and text.strip() and " " not in text.strip():
        return f"user:{text.strip()}"
    return None


def fold_name(name: str) -> str:
    """A user or team name as Synapse compares it: case-insensitive, non-alphanumerics ignored."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def alias_key(name: str) -> str:
    """:func:`fold_name`, or the name itself when nothing alphanumeric is left."""
    return fold_name(name) or name
