"""The ``teams:`` section of a manifest: declared teams, their managers and members.

Membership mode ``authoritative`` is the default: a manifest's ACLs already are the whole ACL
(unlisted principals lose access), and a team is an access grant too, so the same file should
say who is in it. Its removals are guarded (the operator's own management, a last manager, a
cap per run), and ``additive`` is there for teams whose membership is also managed by hand.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .errors import ManifestError, SourceLocation
from .manifest import JsonPath, Locator

_DIGITS = re.compile(r"^[0-9]+$")
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
            return "name:" + re.sub(r"[^a-z0-9]", "", self.name.lower())
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
    if _DIGITS.match(text):
        return Person(id=int(text))
    prefix, sep, name = text.partition(":")
    if sep and prefix == "user" and name.strip():
        return Person(name=name.strip())
    if sep and prefix == "team":
        raise ValueError(f"{text!r} is a team: Synapse team members are users")
    raise ValueError(f"bad team member {text!r}")


def build_teams(
    raw: Sequence[Mapping[str, Any]], locator: Locator, errors: list[ManifestError]
) -> tuple[TeamSpec, ...]:
    """Every declared team; problems are appended to ``errors`` (all of them, located)."""
    teams: list[TeamSpec] = []
    seen: dict[str, SourceLocation] = {}
    for i, item in enumerate(raw):
        path: JsonPath = ("teams", i)
        name = str(item["name"]).strip()
        here = locator.locate((*path, "name"))
        folded = re.sub(r"[^a-z0-9]", "", name.lower())
        if folded in seen:
            errors.append(
                ManifestError(
                    f"team {name!r} is declared twice (also at {seen[folded]})",
                    location=here,
                    hint="Synapse team names are unique (ignoring case and punctuation): "
                    "declare each team once",
                )
            )
            continue
        seen[folded] = here
        people: dict[str, SourceLocation] = {}
        lists: dict[str, list[Person]] = {"managers": [], "members": []}
        for field in ("managers", "members"):
            for j, written in enumerate(item.get(field) or []):
                where = locator.locate((*path, field, j))
                try:
                    person = parse_person(str(written))
                except ValueError as exc:
                    errors.append(
                        ManifestError(str(exc), location=where, hint=f"write {PERSON_FORMS}")
                    )
                    continue
                if person.key in people:
                    errors.append(
                        ManifestError(
                            f"team {name!r}: {written} is listed twice (also at "
                            f"{people[person.key]})",
                            location=where,
                            hint="managers are members too: list each person once, under "
                            "managers or members",
                        )
                    )
                    continue
                people[person.key] = where
                lists[field].append(Person(person.name, person.id, person.is_self, location=where))
        if not lists["managers"] and not item.get("managers"):
            errors.append(
                ManifestError(
                    f"team {name!r} has no managers",
                    location=here,
                    hint="Synapse keeps at least one manager per team: list one under "
                    "managers (e.g. self)",
                )
            )
        teams.append(
            TeamSpec(
                name=name,
                description=item.get("description"),
                can_public_join=bool(item.get("can_public_join", False)),
                managers=tuple(lists["managers"]),
                members=tuple(lists["members"]),
                mode=MembershipMode(item.get("membership", MembershipMode.AUTHORITATIVE.value)),
                location=here,
            )
        )
    return tuple(teams)
