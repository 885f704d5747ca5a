"""The team builder: the ``teams:`` section (declared teams, their managers and members)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from synapse_declare.errors import SourceLocation
from synapse_declare.manifest import JsonPath

from .build_core import BuildContext
from .principals import fold_name
from .teams import PERSON_FORMS, MembershipMode, Person, TeamSpec, parse_person


def build_teams(ctx: BuildContext, raw: Sequence[Mapping[str, Any]]) -> tuple[TeamSpec, ...]:
    """Every declared team; problems are recorded on ``ctx`` (all of them, located)."""
    teams: list[TeamSpec] = []
    seen: dict[str, SourceLocation] = {}
    for i, item in enumerate(raw):
        path: JsonPath = ("teams", i)
        name = str(item["name"]).strip()
        here = ctx.at((*path, "name"))
        earlier = ctx.first_seen(seen, fold_name(name), (*path, "name"))
        if earlier is not None:
            ctx.error(
                (*path, "name"),
                f"team {name!r} is declared twice (also at {earlier})",
                "Synapse team names are unique (ignoring case and punctuation): "
                "declare each team once",
            )
            continue
        lists = _people(ctx, item, path, name)
        if not lists["managers"] and not item.get("managers"):
            ctx.error(
                (*path, "name"),
                f"team {name!r} has no managers",
                "Synapse keeps at least one manager per team: list one under managers (e.g. self)",
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


def _people(
    ctx: BuildContext, item: Mapping[str, Any], path: JsonPath, name: str
) -> dict[str, list[Person]]:
    """A team's managers and members, each person once across both lists."""
    people: dict[str, SourceLocation] = {}
    lists: dict[str, list[Person]] = {"managers": [], "members": []}
    for field in ("managers", "members"):
        for j, written in enumerate(item.get(field) or []):
            ipath: JsonPath = (*path, field, j)
            where = ctx.at(ipath)
            try:
                person = parse_person(str(written))
            except ValueError as exc:
                ctx.error(ipath, str(exc), f"write {PERSON_FORMS}")
                continue
            earlier = ctx.first_seen(people, person.key, ipath)
            if earlier is not None:
                ctx.error(
                    ipath,
                    f"team {name!r}: {written} is listed twice (also at {earlier})",
                    "managers are members too: list each person once, under managers or members",
                )
                continue
            lists[field].append(Person(person.name, person.id, person.is_self, location=where))
    return lists
