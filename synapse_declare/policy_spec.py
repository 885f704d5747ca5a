"""``policies:`` as written: access rules every plan must satisfy (checked by policies.py).

Parsed by the model builder after the projects (paths must start with a declared project), with
located errors for what the schema cannot say.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import SourceLocation

JsonPath = tuple[str | int, ...]
ErrorSink = Callable[[JsonPath, str, str], None]
Locate = Callable[[JsonPath], SourceLocation]


@dataclass(frozen=True, slots=True)
class PathRule:
    path: str
    location: SourceLocation


@dataclass(frozen=True, slots=True)
class Policies:
    """The manifest's ``policies:``; every rule is off unless declared."""

    public_only_under: tuple[PathRule, ...] | None = None
    public_only_under_at: SourceLocation | None = None
    require_admin_team: str | None = None  # the team's name
    require_admin_team_at: SourceLocation | None = None
    no_user_grants: bool = False
    no_user_grants_at: SourceLocation | None = None
    folders_inherit_strict: bool = False
    folders_inherit_at: SourceLocation | None = None

    @property
    def any(self) -> bool:
        return bool(
            self.public_only_under is not None
            or self.require_admin_team
            or self.no_user_grants
            or self.folders_inherit_strict
        )


def parse_policies(
    raw: Mapping[str, Any] | None,
    projects: Collection[str],
    error: ErrorSink,
    at: Locate,
) -> Policies:
    """The schema already checked shapes; this checks meaning: paths under declared projects,
    a ``team:NAME`` for the admin team."""
    if not raw:
        return Policies()
    public: tuple[PathRule, ...] | None = None
    if "public_only_under" in raw:
        rules = []
        for i, item in enumerate(raw.get("public_only_under") or []):
            here: JsonPath = ("policies", "public_only_under", i)
            path = "/".join(part.strip() for part in str(item).strip("/").split("/"))
            if path.split("/")[0] not in projects:
                error(
                    here,
                    f"public_only_under: {item!r} is not under a project this manifest declares",
                    "write a path that starts with a declared project's name, like "
                    f"'{next(iter(projects), 'Project')}/Releases'",
                )
                continue
            rules.append(PathRule(path, at(here)))
        public = tuple(rules)
    team: str | None = None
    if raw.get("require_admin_team") is not None:
        text = str(raw["require_admin_team"])
        here = ("policies", "require_admin_team")
        prefix, _, name = text.partition(":")
        if prefix != "team" or not name.strip():
            error(
                here,
                f"require_admin_team: {text!r} is not a team",
                "write team:NAME, the Synapse team that must administer every project",
            )
        else:
            team = name.strip()
    strict = raw.get("folders_inherit") == "strict"
    return Policies(
        public_only_under=public,
        public_only_under_at=at(("policies", "public_only_under")) if public is not None else None,
        require_admin_team=team,
        require_admin_team_at=at(("policies", "require_admin_team")) if team else None,
        no_user_grants=raw.get("no_user_grants") is True,
        no_user_grants_at=at(("policies", "no_user_grants")),
        folders_inherit_strict=strict,
        folders_inherit_at=at(("policies", "folders_inherit")) if strict else None,
    )
