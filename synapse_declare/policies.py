"""Checking ``policies:`` (parsed by policy_spec.py): ``check_policies`` runs inside
``build_plan`` over the after-apply access world (consequences.py) and the desired ACLs, and
raises one located violation per problem, before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping

from .access import Principal, PrincipalType, effective_access
from .consequences import PlanWorlds, principals_of
from .errors import PolicyViolation, PolicyViolations
from .model import PERMISSION_LEVELS, AclSpec, Manifest, PrincipalKind
from .policy_spec import Policies
from .state import LiveState

ADMIN = PERMISSION_LEVELS["administer"]


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root + "/")


def check_policies(manifest: Manifest, worlds: PlanWorlds, user_ids: frozenset[int]) -> None:
    """Refuse (every problem, each at the manifest entry that causes it) what the policies
    forbid in the world after this plan. ``user_ids`` are the principals that are users."""
    policies = manifest.policies
    if not policies.any:
        return
    problems: list[PolicyViolation] = []
    if policies.public_only_under is not None:
        problems.extend(_public_outside(policies, worlds))
    if policies.no_user_grants:
        problems.extend(_user_grants(manifest, user_ids, worlds.desired.principals))
    if policies.require_admin_team:
        problems.extend(_admin_team(manifest, worlds, policies.require_admin_team))
    if problems:
        # In manifest order, as a reader fixes them.
        problems.sort(
            key=lambda p: (
                (p.location.file, p.location.line, p.location.column)
                if p.location is not None
                else ("", 0, 0)
            )
        )
        raise PolicyViolations(problems)


def _public_outside(policies: Policies, worlds: PlanWorlds) -> list[PolicyViolation]:
    assert policies.public_only_under is not None
    allowed = [rule.path for rule in policies.public_only_under]
    report = effective_access(worlds.desired)
    problems: dict[str, PolicyViolation] = {}
    for row in report.rows:
        if row.principal.type not in (PrincipalType.PUBLIC, PrincipalType.AUTHENTICATED_USERS):
            continue
        if any(_under(row.entity.path, root) for root in allowed):
            continue
        spec = worlds.specs.get(row.benefactor_id)
        key = f"{row.benefactor_id}:{row.principal.label}"
        if key in problems:
            continue
        location = None
        if spec is not None and isinstance(spec.acl, AclSpec):
            # The entry that grants it (PUBLIC's READ also reaches AUTHENTICATED_USERS).
            granting = {g.principal.id for g in row.grants}
            entry = next((e for e in spec.acl.entries if e.principal.id in granting), None)
            location = entry.location if entry is not None else spec.acl.location
        where = ", ".join(allowed) if allowed else "nowhere"
        problems[key] = PolicyViolation(
            f"policy public_only_under: {row.principal.label} would reach {row.entity.path} "
            f"({', '.join(sorted(row.access))}) through the ACL of "
            f"{worlds.desired.path_of(row.benefactor_id)}; public access is allowed only "
            f"under {where}",
            location=location,
            hint="remove the PUBLIC / AUTHENTICATED_USERS entry, move the data under an "
            f"allowed path, or add the path to public_only_under ({policies.public_only_under_at})",
        )
    return list(problems.values())


def _user_grants(
    manifest: Manifest, user_ids: frozenset[int], principals: Mapping[int, Principal]
) -> list[PolicyViolation]:
    problems = []
    names = {p.id: p.label for p in principals.values()}
    for spec in manifest.walk():
        if not isinstance(spec.acl, AclSpec):
            continue
        for entry in spec.acl.entries:
            ref = entry.principal
            named_user = ref.kind is PrincipalKind.USER
            id_user = ref.kind is PrincipalKind.ID and ref.id in user_ids
            if named_user or id_user:
                problems.append(
                    PolicyViolation(
                        f"policy no_user_grants: {spec.address} grants {ref}"
                        + (f" ({names[ref.id]})" if id_user and ref.id in names else "")
                        + " directly",
                        location=entry.location,
                        hint="grant a team the user belongs to instead (Sage's advice: teams, "
                        "not individuals); `self` stays allowed for the managing account",
                    )
                )
    return problems


def _admin_team(manifest: Manifest, worlds: PlanWorlds, team: str) -> list[PolicyViolation]:
    problems = []
    by_spec = {spec.address: node_id for node_id, spec in worlds.specs.items()}
    for project in manifest.projects:
        node_id = by_spec.get(project.address)
        entries = worlds.desired.acls.get(node_id or "", {})
        if not isinstance(project.acl, AclSpec):
            problems.append(
                PolicyViolation(
                    f"policy require_admin_team: project {project.name!r} declares no acl:, so "
                    f"team:{team} administering it cannot be checked",
                    location=project.location,
                    hint=f"declare the project's acl: with `team:{team}: administer`",
                )
            )
            continue
        admins = [
            pid
            for pid, access in entries.items()
            if access >= ADMIN
            and worlds.desired.principal(pid).type is PrincipalType.TEAM
            and worlds.desired.principal(pid).name == team
        ]
        if not admins:
            problems.append(
                PolicyViolation(
                    f"policy require_admin_team: project {project.name!r} would not be "
                    f"administered by team:{team}",
                    location=project.acl.location,
                    hint=f"add `team:{team}: administer` to the project's acl",
                )
            )
    return problems


def user_principals(manifest: Manifest, live: LiveState) -> frozenset[int]:
    """Principal ids known to be users: named ``user:`` in the manifest or seen as users in
    live ACLs (a numeric id counts when the reader resolved it to a user)."""
    del manifest  # the resolved references in ``live`` already cover every ACL entry
    return frozenset(
        pid
        for pid, principal in principals_of(live).items()
        if principal.type is PrincipalType.USER
    )
