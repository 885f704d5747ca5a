"""Plan types and the plan file: what would change, why, and what it was based on.

A :class:`Plan` is immutable data. ``Change.reason`` is for people only; the applier never
branches on it. The plan file records every etag the plan read (``observed``) so that applying
it later can refuse, with no mutation, when anything changed in between — and it never contains a
token or any other secret (the client never puts one in a plan).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from . import __version__
from .errors import PlanError

# 2: addresses are formatted by resources.Address and each change's apply payload belongs to its
# resource kind (resources/). A version-1 plan may carry addresses this tool parses differently,
# so it is refused rather than guessed at.
FORMAT_VERSION = "2"
# Prune deletions one plan may hold unless --max-deletions says more (issue 11; peribolos'
# --maximum-removal-delta): a manifest edit that drops a subtree cannot empty a project at once.
DEFAULT_MAX_DELETIONS = 5


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    ADOPT = "adopt"
    NO_OP = "no-op"
    DELETE = "delete"
    REPLACE = "replace"
    MIGRATE = "migrate"
    RESTORE = "restore"


class Resource(StrEnum):
    PROJECT = "project"
    FOLDER = "folder"
    ENTITY = "entity"  # a file, table or view: only its own ACL is ever changed (strict mode)
    WIKI_PAGE = "wiki_page"
    WIKI_ORDER = "wiki_order"
    STORAGE_LOCATION = "storage_location"
    UPLOAD_DESTINATION = "upload_destination"
    MIGRATION = "migration"
    TEAM = "team"
    TEAM_MEMBER = "team_member"


SYMBOLS = {
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.ADOPT: "=",
    Action.NO_OP: " ",
    Action.DELETE: "-",
    Action.REPLACE: "±",
    Action.MIGRATE: "→",
    Action.RESTORE: "↺",
}


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field's before → after. ``None`` means absent/unset; values are JSON-able."""

    path: str
    before: Any
    after: Any


@dataclass(frozen=True, slots=True)
class Change:
    address: str
    resource: Resource
    action: Action
    syn_id: str | None
    fields: tuple[FieldChange, ...] = ()
    depends_on: tuple[str, ...] = ()
    # What the applier needs, as JSON-able data: desired values and the prior state they are
    # guarded by (etags). Not shown to users directly.
    desired: Mapping[str, Any] = field(default_factory=dict)
    prior: Mapping[str, Any] = field(default_factory=dict)
    reason: str = ""

    @property
    def prior_etag(self) -> str | None:
        value = self.prior.get("etag")
        return None if value is None else str(value)

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "resource": self.resource.value,
            "action": self.action.value,
            "syn_id": self.syn_id,
            "prior_etag": self.prior_etag,
            "fields": [{"path": f.path, "before": f.before, "after": f.after} for f in self.fields],
            "depends_on": list(self.depends_on),
            "reason": self.reason,
            "desired": dict(self.desired),
            "prior": dict(self.prior),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Change:
        return cls(
            address=str(data["address"]),
            resource=Resource(data["resource"]),
            action=Action(data["action"]),
            syn_id=data.get("syn_id"),
            fields=tuple(
                FieldChange(str(f["path"]), f.get("before"), f.get("after"))
                for f in data.get("fields", [])
            ),
            depends_on=tuple(data.get("depends_on", [])),
            desired=dict(data.get("desired", {})),
            prior=dict(data.get("prior", {})),
            reason=str(data.get("reason", "")),
        )

    def comparable(self) -> tuple[Any, ...]:
        """What must be equal between a saved plan and a fresh one for the saved one to apply."""
        return (
            self.address,
            self.action,
            self.syn_id,
            json.dumps([(f.path, f.before, f.after) for f in self.fields], sort_keys=True),
        )


class LeftoverKind(StrEnum):
    """What a "left alone" item is: something under a managed container that the manifest does
    not declare (issue 11). Informational: no change is planned for it."""

    FOLDER = "folder"
    ANNOTATION = "annotation"
    WIKI_PAGE = "wiki_page"
    ACL = "acl"


@dataclass(frozen=True, slots=True)
class Leftover:
    """One undeclared thing the plan saw (in reads it makes anyway) and leaves as it is."""

    address: str
    kind: LeftoverKind
    syn_id: str | None
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "kind": self.kind.value,
            "syn_id": self.syn_id,
            "detail": self.detail,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Leftover:
        return cls(
            address=str(data["address"]),
            kind=LeftoverKind(data["kind"]),
            syn_id=data.get("syn_id"),
            detail=str(data.get("detail", "")),
        )


@dataclass(frozen=True, slots=True)
class AccessConsequence:
    """One line of a plan's effective-access summary: ``principal`` gains (or loses) the
    ACCESS_TYPEs ``access`` on ``entities`` — (path, type, id) each, id None for entities the plan
    creates — through inheritance as well as the ACLs the plan writes."""

    principal: str
    principal_id: int
    gained: bool
    access: tuple[str, ...]
    entities: tuple[tuple[str, str, str | None], ...]
    # A person whose membership of a managed team this plan changes: the teams it comes through,
    # and whether it waits for them to accept an invitation.
    through: tuple[str, ...] = ()
    pending_invitation: bool = False
    # A managed team's line: its members (and open invitations) in the world the line describes.
    members: int | None = None
    invited: int = 0

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "principal": self.principal,
            "principal_id": self.principal_id,
            "change": "gains" if self.gained else "loses",
            "access": list(self.access),
            "count": len(self.entities),
            "entities": [{"path": p, "type": t, "id": i} for p, t, i in self.entities],
        }
        if self.through:
            data["through"] = list(self.through)
            data["pending_invitation"] = self.pending_invitation
        if self.members is not None:
            data["members"] = self.members
            data["invited"] = self.invited
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AccessConsequence:
        members = data.get("members")
        return cls(
            principal=str(data["principal"]),
            principal_id=int(data["principal_id"]),
            gained=data["change"] == "gains",
            access=tuple(str(a) for a in data["access"]),
            entities=tuple(
                (str(e["path"]), str(e["type"]), None if e.get("id") is None else str(e["id"]))
                for e in data["entities"]
            ),
            through=tuple(str(t) for t in data.get("through", [])),
            pending_invitation=bool(data.get("pending_invitation", False)),
            members=None if members is None else int(members),
            invited=int(data.get("invited", 0)),
        )


@dataclass(frozen=True, slots=True)
class Target:
    endpoint: str
    user_id: int
    user_name: str


@dataclass(frozen=True, slots=True)
class Plan:
    target: Target
    manifest_digest: str
    manifest_files: tuple[str, ...]
    changes: tuple[Change, ...]
    observed: Mapping[str, str | None]
    warnings: tuple[str, ...] = ()
    # The manifest's resolved variables (fan-out), so `apply --plan` expands it the same way.
    variables: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    created_at: str = ""
    tool_version: str = __version__
    public_access: tuple[str, ...] = ()
    """Grants to PUBLIC / AUTHENTICATED_USERS this plan makes, and such grants found on ACLs the
    manifest does not manage: shown first, in every format."""
    audit_public: bool = False
    """Made with ``plan --audit-public``: ``apply --plan`` re-reads the same (every) ACL."""
    access_changes: tuple[AccessConsequence, ...] = ()
    """Effective access this plan changes, per principal (consequences.py). In JSON only when
    not empty, so that a plan that changes no one's access keeps its bytes."""
    leftovers: tuple[Leftover, ...] = ()
    """Undeclared things under managed containers, left alone (informational, never applied)."""
    observe: bool = False
    """``plan --observe``: a drift report for scheduled checks; ``apply --plan`` refuses it."""

    targets: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    """``--target`` / ``--exclude``: a partial plan (``apply --plan`` applies only this part)."""

    @property
    def partial(self) -> bool:
        return bool(self.targets or self.excludes)

    @property
    def made_at(self) -> datetime | None:
        """``created_at`` as a moment (UTC), or None for a plan without one."""
        try:
            return datetime.strptime(self.created_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            return None

    @property
    def actionable(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.action is not Action.NO_OP)

    @property
    def has_changes(self) -> bool:
        """ADOPT changes write a marker, so they count: a plan with adoptions is not empty."""
        return bool(self.actionable)

    def summary(self) -> dict[str, int]:
        counts = {a.value: 0 for a in Action}
        for change in self.changes:
            counts[change.action.value] += 1
        return counts

    def to_json(self) -> dict[str, Any]:
        summary = self.summary()
        return {
            "format_version": FORMAT_VERSION,
            "tool": {"name": "synapse-declare", "version": self.tool_version},
            "created_at": self.created_at,
            "target": {
                "endpoint": self.target.endpoint,
                "user_id": self.target.user_id,
                "user_name": self.target.user_name,
            },
            "manifest": {
                "digest": self.manifest_digest,
                "files": list(self.manifest_files),
                **({"variables": dict(self.variables)} if self.variables else {}),
            },
            "applyable": self.has_changes,
            "summary": {
                **{k.replace("-", "_"): v for k, v in summary.items()},
                "left_alone": len(self.leftovers),
            },
            "public_access": list(self.public_access),
            "audit_public": self.audit_public,
            **(
                {"access_changes": [a.to_json() for a in self.access_changes]}
                if self.access_changes
                else {}
            ),
            "observe": self.observe,
            "partial": {"targets": list(self.targets), "excludes": list(self.excludes)}
            if self.partial
            else None,
            "warnings": list(self.warnings),
            "observed": dict(sorted(self.observed.items())),
            "changes": [c.to_json() for c in self.changes],
            "leftovers": [item.to_json() for item in self.leftovers],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Plan:
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise PlanError(_version_problem(version), hint="run 'synapse-declare plan' again")
        try:
            target = data["target"]
            return cls(
                target=Target(
                    endpoint=str(target["endpoint"]),
                    user_id=int(target["user_id"]),
                    user_name=str(target["user_name"]),
                ),
                manifest_digest=str(data["manifest"]["digest"]),
                manifest_files=tuple(data["manifest"]["files"]),
                variables=dict(data["manifest"].get("variables", {})),
                changes=tuple(Change.from_json(c) for c in data["changes"]),
                observed=dict(data.get("observed", {})),
                warnings=tuple(data.get("warnings", [])),
                public_access=tuple(data.get("public_access", [])),
                audit_public=bool(data.get("audit_public", False)),
                access_changes=tuple(
                    AccessConsequence.from_json(a) for a in data.get("access_changes", [])
                ),
                leftovers=tuple(Leftover.from_json(x) for x in data.get("leftovers", [])),
                observe=bool(data.get("observe", False)),
                targets=tuple((data.get("partial") or {}).get("targets", [])),
                excludes=tuple((data.get("partial") or {}).get("excludes", [])),
                created_at=str(data.get("created_at", "")),
                tool_version=str(data.get("tool", {}).get("version", "")),
            )
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise PlanError(
                f"the plan file is damaged or not a synapse-declare plan: {exc}"
            ) from exc


def _version_problem(version: object) -> str:
    made_by = "an older" if _older(version) else "a newer or unknown"
    return (
        f"the plan file (format_version {version!r}) was made by {made_by} synapse-declare; "
        f"this one reads format_version {FORMAT_VERSION!r}: plan again"
    )


def _older(version: object) -> bool:
    try:
        return int(str(version)) < int(FORMAT_VERSION)
    except ValueError:
        return False


def save_plan(plan: Plan, path: Path) -> None:
    """Write the plan; manifest paths are stored relative to the plan file, so ``apply --plan``
    works from any directory (and from another checkout with the same layout)."""
    base = path.resolve().parent
    relative = tuple(
        os.path.relpath(Path(f).resolve(), base) if not _is_url(f) else f
        for f in plan.manifest_files
    )
    document = dataclasses.replace(plan, manifest_files=relative).to_json()
    text = json.dumps(document, indent=2, sort_keys=False) + "\n"
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise PlanError(f"cannot write the plan file {path}: {exc.strerror or exc}") from exc


_NOT_A_PLAN = (
    "--plan takes the file 'synapse-declare plan MANIFEST --out FILE' wrote; to plan and apply "
    "a manifest, give its path without --plan"
)


def load_plan(path: Path) -> Plan:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PlanError(f"cannot read plan file {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise PlanError(
            f"{path} is not a plan file (invalid JSON: {exc})", hint=_NOT_A_PLAN
        ) from exc
    if not isinstance(data, dict):
        raise PlanError(f"{path} is not a plan file", hint=_NOT_A_PLAN)
    plan = Plan.from_json(data)
    base = path.resolve().parent
    return dataclasses.replace(
        plan,
        manifest_files=tuple(str(base / f) if not _is_url(f) else f for f in plan.manifest_files),
    )


def _is_url(text: str) -> bool:
    return "://" in text


def stale_reasons(saved: Plan, fresh: Plan) -> list[str]:
    """Why a saved plan may not be applied now; empty when it still describes reality."""
    reasons: list[str] = []
    if saved.target.endpoint != fresh.target.endpoint:
        reasons.append(
            f"the plan was made against {saved.target.endpoint}, not {fresh.target.endpoint}"
        )
    if saved.target.user_id != fresh.target.user_id:
        reasons.append(
            f"the plan was made by user {saved.target.user_name} ({saved.target.user_id}), "
            f"not {fresh.target.user_name} ({fresh.target.user_id})"
        )
    if saved.manifest_digest != fresh.manifest_digest:
        reasons.append("the manifest changed since the plan was made")
    if reasons:
        return reasons
    for key in sorted(set(saved.observed) | set(fresh.observed)):
        before, now = saved.observed.get(key), fresh.observed.get(key)
        if before != now:
            if before is None:
                reasons.append(f"{key} appeared since the plan was made")
            elif now is None:
                reasons.append(f"{key} disappeared since the plan was made")
            else:
                reasons.append(f"{key} changed since the plan was made (etag {before} → {now})")
    if not reasons:
        saved_changes = [c.comparable() for c in saved.changes]
        fresh_changes = [c.comparable() for c in fresh.changes]
        if saved_changes != fresh_changes:
            reasons.append("the changes computed now differ from the saved plan")
    return reasons


def changes_by_address(changes: Sequence[Change]) -> dict[str, Change]:
    return {c.address: c for c in changes}
