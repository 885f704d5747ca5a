"""Access requirements, read side (synapse-api-2.md §4): list, get, status, restriction info.

Creating requirements is the job of Sage's Access and Compliance Team, not of a REST client, so
the emulator has no create endpoint: requirements are seeded from the users file's
``access_requirements:`` section, ``EmulatorConfig.access_requirements``, or at runtime through
``Emulator.add_access_requirements`` / ``POST /emulator/v1/accessRequirements`` (not Synapse).
A requirement binds statically to entities (and so to all their descendants) or teams; an
"approval" is a user listed under ``approved``. Requirements bound dynamically through JSON
schemas (``_accessRequirementIds``) and exemptions are not modelled.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import nodes
from .routing import Route
from .seedfile import SeedProblem, unknown_keys
from .util import (
    MIGRATION_ADMIN,
    MODEL,
    SynapseError,
    bad_request,
    new_etag,
    not_found,
    now,
    parse_int,
    parse_syn_id,
    syn,
)

if TYPE_CHECKING:
    from .app import Ctx
    from .principals import Caller
    from .store import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS access_requirements (
    id INTEGER PRIMARY KEY,
    concrete_type TEXT NOT NULL,
    name TEXT NOT NULL UNIQUE,
    access_type TEXT NOT NULL,
    fields TEXT NOT NULL,            -- JSON: the type's own properties (termsOfUse, jiraKey, ...)
    etag TEXT NOT NULL,
    created_on TEXT NOT NULL,
    created_by INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS ar_subjects (
    ar_id INTEGER NOT NULL,
    subject_type TEXT NOT NULL,      -- ENTITY | TEAM
    subject_id INTEGER NOT NULL,
    PRIMARY KEY (ar_id, subject_type, subject_id)
);
CREATE INDEX IF NOT EXISTS ar_subjects_subject ON ar_subjects(subject_type, subject_id);
CREATE TABLE IF NOT EXISTS ar_approvals (
    ar_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    PRIMARY KEY (ar_id, user_id)
);
INSERT OR IGNORE INTO counters(name, value) VALUES ('access_requirement', 9600000);
"""

# concreteType (short name) -> the properties of that type a seed may set.
TYPE_FIELDS: dict[str, frozenset[str]] = {
    "TermsOfUseAccessRequirement": frozenset({"termsOfUse"}),
    "SelfSignAccessRequirement": frozenset(
        {"isCertifiedUserRequired", "isValidatedProfileRequired"}
    ),
    "ManagedACTAccessRequirement": frozenset(
        {
            "isCertifiedUserRequired",
            "isValidatedProfileRequired",
            "isDUCRequired",
            "ducTemplateFileHandleId",
            "isIRBApprovalRequired",
            "areOtherAttachmentsRequired",
            "expirationPeriod",
            "isIDUPublic",
            "isIDURequired",
            "isTwoFaRequired",
        }
    ),
    "ACTAccessRequirement": frozenset({"actContactInfo", "openJiraIssue"}),
    "LockAccessRequirement": frozenset({"jiraKey"}),
}
# AccessRequirementStats: which types make an object CONTROLLED_BY_ACT vs terms of use.
ACT_TYPES = frozenset(
    {"ManagedACTAccessRequirement", "ACTAccessRequirement", "LockAccessRequirement"}
)
SEED_KEYS = frozenset({"id", "name", "concreteType", "subjects", "approved", "accessType"})


@dataclass(frozen=True)
class SeedAccessRequirement:
    """One requirement to seed; ``subjects`` are ``syn123`` ids or ``team:NAME``."""

    name: str
    subjects: tuple[str, ...]
    concrete_type: str = "TermsOfUseAccessRequirement"
    approved: tuple[str, ...] = ()
    id: int | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)


def parse_seeds(items: Any, source: str) -> list[SeedAccessRequirement]:
    """Validate an ``access_requirements:`` list; raises :class:`SeedProblem` (a ValueError)
    at the path of the first problem (``seedfile`` locates it in a users file)."""
    if items is None:
        return []
    top: tuple[str | int, ...] = ("access_requirements",)
    if not isinstance(items, list):
        raise SeedProblem(
            source, top, "access_requirements must be a list", "write each as `- name: NAME`"
        )
    out: list[SeedAccessRequirement] = []
    for index, item in enumerate(items):
        at = (*top, index)
        if not isinstance(item, Mapping):
            raise SeedProblem(
                source, at, "expected a mapping", "write it as {name: NAME, subjects: [syn123]}"
            )
        kind = str(item.get("concreteType") or "TermsOfUseAccessRequirement")
        kind = kind.removeprefix(MODEL)
        if kind not in TYPE_FIELDS:
            raise SeedProblem(
                source,
                (*at, "concreteType"),
                f"concreteType must be one of {sorted(TYPE_FIELDS)}",
                "omit it for a TermsOfUseAccessRequirement",
            )
        unknown_keys(source, at, item, SEED_KEYS | TYPE_FIELDS[kind], f"a {kind}")
        name = item.get("name")
        if not isinstance(name, str) or not name or len(name) > 50:
            raise SeedProblem(
                source,
                (*at, "name") if "name" in item else at,
                "name is required (at most 50 characters)",
                "give the requirement a `name:` (seeding again with the same name changes nothing)",
            )
        lists: dict[str, tuple[str, ...]] = {}
        for key in ("subjects", "approved"):
            value = item.get(key) or []
            if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
                raise SeedProblem(
                    source, (*at, key), f"{key} must be a list", f"write `{key}: [...]`"
                )
            lists[key] = tuple(str(v) for v in value)
        if not lists["subjects"]:
            raise SeedProblem(
                source,
                (*at, "subjects") if "subjects" in item else at,
                "subjects must name at least one entity or team:NAME",
                "write `subjects: [syn123]` or `subjects: ['team:NAME']`",
            )
        raw_id = item.get("id")
        if raw_id is not None and (not isinstance(raw_id, int) or raw_id < 2):
            raise SeedProblem(
                source,
                (*at, "id"),
                "id must be an integer above 1 (1 is Synapse's lock)",
                "omit id to have one assigned",
            )
        out.append(
            SeedAccessRequirement(
                name=name,
                subjects=lists["subjects"],
                concrete_type=kind,
                approved=lists["approved"],
                id=raw_id,
                fields={k: item[k] for k in TYPE_FIELDS[kind] if k in item},
            )
        )
    return out


def _subject(store: Store, text: str) -> tuple[str, int]:
    if text.startswith("team:"):
        row = store.one("SELECT id FROM principals WHERE kind = 'team' AND name = ?", (text[5:],))
        if row is None:
            bad_request(f"subject {text}: no such team")
        return "TEAM", int(row["id"])
    return "ENTITY", parse_syn_id(text)


def seed(store: Store, seeds: Sequence[SeedAccessRequirement], creator: int) -> dict[str, int]:
    """Create the requirements (or add subjects/approvals to one of that name); name -> id.

    Idempotent: seeding the same list again changes nothing. Raises SynapseError (400) for an
    unknown team or user, which the caller locates.
    """
    ids: dict[str, int] = {}
    for item in seeds:
        row = store.one("SELECT id FROM access_requirements WHERE name = ?", (item.name,))
        subjects = [_subject(store, s) for s in item.subjects]
        if row is None:
            ar_id = item.id if item.id is not None else store.next_id("access_requirement")
            if store.one("SELECT 1 FROM access_requirements WHERE id = ?", (ar_id,)):
                bad_request(f"access requirement id {ar_id} is already used")
            # AccessRequirementManagerImpl sets DOWNLOAD for entity subjects, PARTICIPATE for
            # teams (ACCESS_TYPE of the first subject's type).
            access = "PARTICIPATE" if subjects[0][0] == "TEAM" else "DOWNLOAD"
            store.execute(
                "INSERT INTO access_requirements(id, concrete_type, name, access_type, fields, "
                "etag, created_on, created_by) VALUES (?,?,?,?,?,?,?,?)",
                (
                    ar_id,
                    item.concrete_type,
                    item.name,
                    access,
                    json.dumps(dict(item.fields)),
                    new_etag(),
                    now(),
                    creator,
                ),
            )
        else:
            ar_id = int(row["id"])
        store.executemany(
            "INSERT OR IGNORE INTO ar_subjects(ar_id, subject_type, subject_id) VALUES (?,?,?)",
            [(ar_id, kind, sid) for kind, sid in subjects],
        )
        for user in item.approved:
            user_row = store.one(
                "SELECT id FROM principals WHERE kind = 'user' AND (name = ? OR CAST(id AS TEXT)"
                " = ?)",
                (user, user),
            )
            if user_row is None:
                bad_request(f"approved user {user} does not exist")
            store.execute(
                "INSERT OR IGNORE INTO ar_approvals(ar_id, user_id) VALUES (?, ?)",
                (ar_id, int(user_row["id"])),
            )
        ids[item.name] = ar_id
    return ids


# ---------------------------------------------------------------------------------------------
# Queries used by other modules (teams, bundles)


def _subject_ids(store: Store, subject_type: str, object_id: int) -> list[int]:
    """The ids requirements can bind to: the entity's path (itself and ancestors), or the team."""
    if subject_type == "ENTITY":
        return [int(r["id"]) for r in nodes.ancestors(store, object_id)]
    return [object_id]


def requirement_ids(store: Store, subject_type: str, object_id: int) -> list[int]:
    subject_ids = _subject_ids(store, subject_type, object_id)
    if not subject_ids:
        return []
    rows = store.all(
        "SELECT DISTINCT ar_id FROM ar_subjects WHERE subject_type = ? AND subject_id IN (%s) "
        "ORDER BY ar_id" % ",".join("?" * len(subject_ids)),
        (subject_type, *subject_ids),
    )
    return [int(r[0]) for r in rows]


def _approved(store: Store, ar_id: int, user_id: int) -> bool:
    return (
        store.one("SELECT 1 FROM ar_approvals WHERE ar_id = ? AND user_id = ?", (ar_id, user_id))
        is not None
    )


def has_unmet(store: Store, user_id: int, subject_type: str, object_id: int) -> bool:
    """True when ``user_id`` lacks an approval for a requirement bound to the object."""
    return any(
        not _approved(store, ar_id, user_id)
        for ar_id in requirement_ids(store, subject_type, object_id)
    )


def entity_download_gated(store: Store, caller: Caller, node_id: int) -> bool:
    """Unmet requirements on the entity (or an ancestor) for the caller: not approved, and not
    the creator of a file (treated as approved). Exemptions are not modelled."""
    ar_ids = requirement_ids(store, "ENTITY", node_id)
    if not ar_ids:
        return False
    if caller.anonymous:
        return True
    row = nodes.get_row(store, node_id)
    if row is not None and row["type"] == "file" and int(row["created_by"]) == caller.id:
        return False
    return any(not _approved(store, ar_id, caller.id) for ar_id in ar_ids)


if entity_download_gated.__qualname__ not in {g.__qualname__ for g in nodes.DOWNLOAD_GATES}:
    nodes.DOWNLOAD_GATES.append(entity_download_gated)  # once, even if re-imported


def restriction_information(
    store: Store, caller: Caller, subject_type: str, object_id: int
) -> dict[str, Any]:
    """RestrictionInformationResponse (RestrictionInformationManagerImpl; §4.4)."""
    ar_ids = requirement_ids(store, subject_type, object_id)
    file_creator = False
    if subject_type == "ENTITY":
        row = nodes.get_row(store, object_id)
        # The creator of a *file* is treated as approved for every requirement on it.
        file_creator = (
            row is not None and row["type"] == "file" and int(row["created_by"]) == caller.id
        )
    details = []
    for ar_id in ar_ids:
        approved = file_creator or (not caller.anonymous and _approved(store, ar_id, caller.id))
        details.append(
            {
                "accessRequirementId": ar_id,
                "isApproved": approved,
                "isMet": approved,
                "isExempt": False,
            }
        )
    kinds = (
        {
            str(r[0])
            for r in store.all(
                "SELECT concrete_type FROM access_requirements WHERE id IN (%s)"
                % ",".join("?" * len(ar_ids)),
                ar_ids,
            )
        }
        if ar_ids
        else set()
    )
    if not ar_ids:
        level = "OPEN"
    elif kinds & ACT_TYPES:
        level = "CONTROLLED_BY_ACT"
    else:
        level = "RESTRICTED_BY_TERMS_OF_USE"
    return {
        "objectId": object_id,
        "restrictionLevel": level,
        "hasUnmetAccessRequirement": any(not d["isMet"] for d in details),
        "restrictionDetails": details,
    }


# ---------------------------------------------------------------------------------------------
# JSON and handlers


def requirement_json(store: Store, ar_id: int) -> dict[str, Any]:
    row = store.one("SELECT * FROM access_requirements WHERE id = ?", (ar_id,))
    if row is None:
        not_found("The resource you are attempting to access cannot be found")
    subjects = [
        {
            "id": syn(int(s["subject_id"]))
            if s["subject_type"] == "ENTITY"
            else str(s["subject_id"]),
            "type": s["subject_type"],
        }
        for s in store.all(
            "SELECT * FROM ar_subjects WHERE ar_id = ? ORDER BY subject_type, subject_id",
            (ar_id,),
        )
    ]
    return {
        "id": ar_id,
        "versionNumber": 1,
        "name": row["name"],
        "etag": row["etag"],
        "createdOn": row["created_on"],
        "modifiedOn": row["created_on"],
        "createdBy": str(row["created_by"]),
        "modifiedBy": str(row["created_by"]),
        "subjectsDefinedByAnnotations": False,
        "subjectIds": subjects,
        "accessType": row["access_type"],
        "concreteType": MODEL + str(row["concrete_type"]),
        **json.loads(row["fields"]),
    }


def _page(ctx: Ctx, subject_type: str, object_id: int) -> dict[str, Any]:
    limit = parse_int(ctx.args.get("limit", 50), "limit")
    offset = parse_int(ctx.args.get("offset", 0), "offset")
    if limit < 1 or limit > 50:
        bad_request("limit must be between 1 and 50")
    if offset < 0:
        bad_request("offset must be at least 0")
    ids = requirement_ids(ctx.store, subject_type, object_id)[offset : offset + limit]
    # "Misused" PaginatedResults: the total is the size of this page.
    return {
        "results": [requirement_json(ctx.store, i) for i in ids],
        "totalNumberOfResults": len(ids),
    }


def entity_requirements(ctx: Ctx, entity_id: str) -> dict[str, Any]:
    return _page(ctx, "ENTITY", parse_syn_id(entity_id))


def team_requirements(ctx: Ctx, team_id: str) -> dict[str, Any]:
    return _page(ctx, "TEAM", parse_int(team_id, "id"))


def get_requirement(ctx: Ctx, requirement_id: str) -> dict[str, Any]:
    return requirement_json(ctx.store, parse_int(requirement_id, "requirementId"))


def requirement_status(ctx: Ctx, requirement_id: str) -> dict[str, Any]:
    ar_id = parse_int(requirement_id, "requirementId")
    row = requirement_json(ctx.store, ar_id)
    managed = row["concreteType"] == MODEL + "ManagedACTAccessRequirement"
    caller = ctx.caller
    return {
        "concreteType": MODEL
        + (
            "dataaccess.ManagedACTAccessRequirementStatus"
            if managed
            else "dataaccess.BasicAccessRequirementStatus"
        ),
        "accessRequirementId": str(ar_id),
        "isApproved": not caller.anonymous and _approved(ctx.store, ar_id, caller.id),
    }


def post_restriction_information(ctx: Ctx) -> dict[str, Any]:
    body = ctx.json_body()
    if body.get("objectId") is None:
        bad_request("RestrictionInformationRequest.objectId is required.")
    kind = body.get("restrictableObjectType")
    if kind is None:
        bad_request("RestrictionInformationRequest.restrictableObjectType is required.")
    if kind not in ("ENTITY", "TEAM", "EVALUATION"):
        bad_request(f"No enum constant {MODEL}RestrictableObjectType.{kind}")
    if kind == "ENTITY":
        node_id = parse_syn_id(body["objectId"])
        nodes.require_node(ctx.store, node_id)
        info = restriction_information(ctx.store, ctx.caller, "ENTITY", node_id)
        info["userEntityPermissions"] = nodes.permissions_json(ctx.store, ctx.caller, node_id)
        return info
    if kind == "TEAM":
        return restriction_information(
            ctx.store, ctx.caller, "TEAM", parse_int(body["objectId"], "objectId")
        )
    bad_request(f"Unsupported type: {kind}")


def seed_over_http(ctx: Ctx) -> dict[str, Any]:
    """Emulator-only: seed requirements at runtime (same document shape as the users file)."""
    body = ctx.json_body()
    try:
        seeds = parse_seeds(body.get("access_requirements"), "request body")
    except ValueError as exc:
        raise SynapseError(400, str(exc)) from exc
    ids = seed(ctx.store, seeds, MIGRATION_ADMIN)
    return {"ids": ids}


ROUTES = [
    Route("GET", "/repo/v1/entity/<entity_id>/accessRequirement", entity_requirements),
    Route("GET", "/repo/v1/team/<team_id>/accessRequirement", team_requirements),
    Route("GET", "/repo/v1/accessRequirement/<requirement_id>", get_requirement),
    Route("GET", "/repo/v1/accessRequirement/<requirement_id>/status", requirement_status),
    Route("POST", "/repo/v1/restrictionInformation", post_restriction_information),
    Route("POST", "/emulator/v1/accessRequirements", seed_over_http),
]
