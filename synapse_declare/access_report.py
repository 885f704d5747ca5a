"""Effective-access reports: text, JSON, CSV and Markdown (presentation only, no I/O).

Text and JSON list every entity; CSV and Markdown default to the *review* scope — the targets,
their top-level folders and every entity with its own ACL (everything else has exactly its
benefactor's access) — which is the periodic access-review export.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from .access import (
    AccessReport,
    AccessRow,
    Grant,
    Principal,
    PrincipalType,
    ReadStats,
)
from .model import level_for

REPORT_VERSION = 1
ACCESS_ORDER = (
    "READ",
    "DOWNLOAD",
    "CREATE",
    "UPDATE",
    "DELETE",
    "CHANGE_PERMISSIONS",
    "CHANGE_SETTINGS",
    "MODERATE",
)
DECISIONS = ("canView", "canDownload", "canEdit", "canDelete", "canChangePermissions")


class Scope(Enum):
    ALL = "all"
    REVIEW = "review"


SCOPE_TEXT = {
    Scope.ALL: "every entity",
    Scope.REVIEW: "projects, top-level folders and every entity with its own ACL",
}


@dataclass(frozen=True, slots=True)
class ReportRequest:
    """What was asked: the targets as given, an optional single principal, the scope."""

    targets: tuple[str, ...]
    focus: Principal | None
    scope: Scope


def _sorted_access(access: frozenset[str]) -> list[str]:
    rank = {name: i for i, name in enumerate(ACCESS_ORDER)}
    return sorted(access, key=lambda a: (rank.get(a, len(rank)), a))


def _level(access: frozenset[str]) -> str:
    if not access:
        return "none"  # e.g. a certified creator, who may still change the entity's settings
    return level_for(access) or "custom"


def _via(row: AccessRow, grant: Grant) -> str:
    how = "own entry" if grant.principal.id == row.principal.id else grant.principal.label
    where = (
        "" if grant.benefactor_id == row.entity.id else f" inherited from {grant.benefactor_path}"
    )
    return f"{how} ({' '.join(_sorted_access(grant.access))}) on {grant.benefactor_id}{where}"


def select_rows(report: AccessReport, request: ReportRequest) -> tuple[AccessRow, ...]:
    rows = report.rows
    if request.focus is not None:
        rows = report.for_principal(request.focus.id)
    if request.scope is Scope.REVIEW:
        roots = {n.id for n in report.world.nodes if n.id in report.world.inherited_from}
        rows = tuple(
            r
            for r in rows
            if r.entity.id in roots
            or (r.entity.parent_id in roots and r.entity.type == "folder")
            or r.own_acl
        )
    return rows


def _teams(report: AccessReport, rows: Sequence[AccessRow]) -> list[tuple[Principal, list[str]]]:
    world = report.world
    team_ids = sorted(
        {g.principal.id for r in rows for g in r.grants if g.principal.type is PrincipalType.TEAM}
        | {r.principal.id for r in rows if r.principal.type is PrincipalType.TEAM}
    )
    out = []
    for tid in team_ids:
        names = sorted(world.principal(uid).name for uid in world.members.get(tid, frozenset()))
        out.append((world.principal(tid), names))
    return out


def _requirements(report: AccessReport, entity_id: str) -> list[dict[str, Any]]:
    return [
        {"id": r.id, "name": r.name, "type": r.kind, "subjects": list(r.subjects)}
        for r in report.world.requirements.get(entity_id, ())
    ]


def _stats_json(stats: ReadStats) -> dict[str, int]:
    return {
        "targets": stats.targets,
        "childrenListings": stats.children_pages,
        "aclReads": stats.acl_reads,
        "teamMemberReads": stats.team_reads,
        "userReads": stats.user_reads,
        "accessRequirementReads": stats.requirement_reads,
        "total": stats.total,
    }


def row_json(report: AccessReport, row: AccessRow) -> dict[str, Any]:
    return {
        "entityId": row.entity.id,
        "path": row.entity.path,
        "entityType": row.entity.type,
        "principalId": row.principal.id,
        "principalName": row.principal.name,
        "principalType": row.principal.type.value,
        "principal": row.principal.label,
        "accessTypes": _sorted_access(row.access),
        "level": _level(row.access),
        **row.permissions.as_json(),
        "benefactorId": row.benefactor_id,
        "ownAcl": row.own_acl,
        "grants": [
            {
                "benefactorId": g.benefactor_id,
                "benefactorPath": g.benefactor_path,
                "principalId": g.principal.id,
                "principal": g.principal.label,
                "via": "own entry" if g.principal.id == row.principal.id else g.principal.label,
                "accessTypes": _sorted_access(g.access),
            }
            for g in row.grants
        ],
        "accessRequirementIds": [r.id for r in report.world.requirements.get(row.entity.id, ())],
        # Requirements not known to be met for this principal: they deny DOWNLOAD (canDownload).
        "downloadGatedBy": list(row.download_gated_by),
    }


def render_json(report: AccessReport, stats: ReadStats, request: ReportRequest) -> str:
    rows = select_rows(report, request)
    shown = {r.entity.id for r in rows}
    entities = [
        {
            "id": n.id,
            "path": n.path,
            "type": n.type,
            "benefactorId": report.benefactors[n.id],
            "accessRequirements": _requirements(report, n.id),
        }
        for n in report.world.nodes
        if (request.scope is Scope.ALL and request.focus is None) or n.id in shown
    ]
    document = {
        "version": REPORT_VERSION,
        "targets": list(request.targets),
        "principal": request.focus.label if request.focus else None,
        "scope": request.scope.value,
        "calls": _stats_json(stats),
        "entities": entities,
        "teams": [
            {"id": t.id, "name": t.name, "members": names} for t, names in _teams(report, rows)
        ],
        "rows": [row_json(report, r) for r in rows],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _flags(row: AccessRow) -> str:
    decided = row.permissions.as_json()
    short = {
        "canView": "view",
        "canDownload": "download",
        "canEdit": "edit",
        "canDelete": "delete",
        "canChangePermissions": "change-permissions",
    }
    return ", ".join(short[k] for k in DECISIONS if decided[k]) or "none of view/download/edit"


def _calls_line(stats: ReadStats) -> str:
    return (
        f"{stats.total} read-only calls: {stats.children_pages} children listings, "
        f"{stats.acl_reads} ACL reads (one per benefactor), {stats.team_reads} team member "
        f"lists, {stats.user_reads} user certification reads, {stats.requirement_reads} "
        "access-requirement listings"
    )


def render_text(report: AccessReport, stats: ReadStats, request: ReportRequest) -> str:
    rows = select_rows(report, request)
    lines: list[str] = []
    if request.focus is not None:
        reached = len({r.entity.id for r in rows})
        lines.append(
            f"{request.focus.label} reaches {reached} of {len(report.world.nodes)} entities "
            f"under {', '.join(request.targets)}"
        )
        lines.append("")
    by_entity: dict[str, list[AccessRow]] = {}
    for row in rows:
        by_entity.setdefault(row.entity.id, []).append(row)
    for node in report.world.nodes:
        entity_rows = by_entity.get(node.id)
        requirements = report.world.requirements.get(node.id, ())
        if not entity_rows and (request.focus is not None or request.scope is Scope.REVIEW):
            continue
        benefactor = report.benefactors[node.id]
        inherit = (
            "own ACL"
            if benefactor == node.id
            else f"inherits from {report.world.path_of(benefactor)} ({benefactor})"
        )
        lines.append(f"{node.path} ({node.id}, {node.type}; {inherit})")
        for req in requirements:
            lines.append(
                f"  ! download gated by access requirement {req.id} {req.name!r} ({req.kind})"
            )
        for row in entity_rows or []:
            access = " ".join(_sorted_access(row.access))
            lines.append(f"  {row.principal.label}: {_level(row.access)} [{access}]")
            lines.append(f"      can: {_flags(row)}")
            if row.download_gated_by:
                ids = ", ".join(str(i) for i in row.download_gated_by)
                why = (
                    "not approved"
                    if row.principal.id in report.world.approvals
                    else "approvals are readable only by the user themselves"
                )
                lines.append(f"      download gated by access requirement {ids} ({why})")
            for grant in row.grants:
                lines.append(f"      via {_via(row, grant)}")
        if not entity_rows:
            lines.append("  (nobody you can see has access)")
    teams = _teams(report, rows)
    if teams:
        lines.append("")
        lines.append("Teams:")
        for team, names in teams:
            lines.append(f"  {team.label} ({team.id}): {', '.join(names) or '(no members)'}")
    lines.append("")
    lines.append(_calls_line(stats))
    return "\n".join(lines) + "\n"


CSV_COLUMNS = (
    "entity_id",
    "path",
    "entity_type",
    "principal_id",
    "principal",
    "principal_type",
    "level",
    "access_types",
    *DECISIONS,
    "benefactor_id",
    "own_acl",
    "via",
    "access_requirements",
    "team_members",
)


def render_csv(report: AccessReport, stats: ReadStats, request: ReportRequest) -> str:
    rows = select_rows(report, request)
    members = dict(_teams(report, rows))
    members_by_id = {p.id: names for p, names in members.items()}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        decided = row.permissions.as_json()
        writer.writerow(
            [
                row.entity.id,
                row.entity.path,
                row.entity.type,
                row.principal.id,
                row.principal.label,
                row.principal.type.value,
                _level(row.access),
                " ".join(_sorted_access(row.access)),
                *("yes" if decided[k] else "no" for k in DECISIONS),
                row.benefactor_id,
                "yes" if row.own_acl else "no",
                "; ".join(_via(row, g) for g in row.grants),
                "; ".join(
                    f"{r.id} {r.name}" for r in report.world.requirements.get(row.entity.id, ())
                ),
                "; ".join(members_by_id.get(row.principal.id, []))
                if row.principal.type is PrincipalType.TEAM
                else "",
            ]
        )
    return buffer.getvalue()


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: AccessReport, stats: ReadStats, request: ReportRequest) -> str:
    rows = select_rows(report, request)
    who = f" of {request.focus.label}" if request.focus else ""
    lines = [
        f"# Access review{who}: {_md(', '.join(request.targets))}",
        "",
        f"Scope: {SCOPE_TEXT[request.scope]}. "
        "Decisions are Synapse's (inheritance, teams, PUBLIC, AUTHENTICATED_USERS, "
        "certification); downloads are further gated by the access requirements listed.",
        "",
    ]
    by_entity: dict[str, list[AccessRow]] = {}
    for row in rows:
        by_entity.setdefault(row.entity.id, []).append(row)
    for node in report.world.nodes:
        entity_rows = by_entity.get(node.id)
        if not entity_rows:
            continue
        benefactor = report.benefactors[node.id]
        own = "own ACL" if benefactor == node.id else f"inherits from `{benefactor}`"
        lines.append(f"## {_md(node.path)} (`{node.id}`, {node.type}, {own})")
        lines.append("")
        for req in report.world.requirements.get(node.id, ()):
            lines.append(f"- Download gated by access requirement {req.id}: {_md(req.name)}")
        if report.world.requirements.get(node.id):
            lines.append("")
        lines.append("| Principal | Level | View | Download | Edit | Delete | Permissions | Via |")
        lines.append("|---|---|---|---|---|---|---|---|")
        for row in entity_rows:
            decided = row.permissions.as_json()
            marks = " | ".join("✔" if decided[k] else "" for k in DECISIONS)
            via = "<br>".join(_md(_via(row, g)) for g in row.grants)
            lines.append(f"| {_md(row.principal.label)} | {_level(row.access)} | {marks} | {via} |")
        lines.append("")
    teams = _teams(report, rows)
    if teams:
        lines.append("## Team members")
        lines.append("")
        for team, names in teams:
            lines.append(f"- **{_md(team.name)}** ({team.id}): {_md(', '.join(names)) or '(none)'}")
        lines.append("")
    lines.append(f"_{_calls_line(stats)}._")
    return "\n".join(lines) + "\n"


RENDERERS = {
    "text": render_text,
    "json": render_json,
    "csv": render_csv,
    "markdown": render_markdown,
}
