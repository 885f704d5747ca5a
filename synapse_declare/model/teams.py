"""Declared teams as the model holds them: a team, its managers and members, its mode.

Membership mode ``authoritative`` is the default: a manifest's ACLs already are the whole ACL
(unlisted principals lose access), and a team is an access grant too, so the same file should
say who is in it. Its removals are guarded (the operator's own management, a last manager, a
cap per run), and ``additive`` is there for teams whose membership is also managed by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from synapse_declare.errors import SourceLocation

from .principals import DIGITS_RE, fold_name

PERSON_FORMS = 'user:NAME, self, or a numeric user id in quotes such as "3350396"'


class MembershipMode(StrEnum):
    AUTHORITATIVE = "authoritative"
    ADDITIVE = "additive"


@dataclass(frozen=True, slots=True)
class Person:
    """A team member as written: ``user:NAME``, ``self`` (the operator) or a numeric id."""

    name: str | None = None
    id: int | None = None
    is_self: bool = False
    location: SourceLocation | None = None

    def __str__(self) -> str:
        if self.is_self:
            return "self"
        return f"user:{self.name}" if self.name is not None else str(self.id)

    @property
    def key(self) -> str:
        """Identity within one team (names compare as Synapse's aliases do)."""
        if self.is_self:
            return "self"
        if self.name is not None:
            return "name:" + fold_name(self.name)
        return f"id:{self.id}"


@dataclass(frozen=True, slots=True)
class TeamSpec:
    name: str
    description: str | None
    can_public_join: bool
    managers: tuple[Person, ...]
    members: tuple[Person, ...]  # members who are not managers
    mode: MembershipMode
    location: SourceLocation

    @property
    def address(self) -> str:
        return f"team:{self.name}"

    def canonical(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "can_public_join": self.can_public_join,
            "managers": sorted(str(p) for p in self.managers),
            "members": sorted(str(p) for p in self.members),
            "mode": self.mode.value,
        }


def parse_person(text: str) -> Person:
    if text == "self":
        return Person(is_self=True)
    if DIGITS_RE.match(text):
        return Person(id=int(text))
    prefix, sep, name = text.partition(":")
    if sep and prefix == "user" and name.strip():
        return Person(name=name.strip())
    if sep and prefix == "team":
        raise ValueError(f"{text!r} is a team: Synapse team members are users")
    raise ValueError(f"bad team member {text!r}")
