"""Desired (manifest) vs live (Synapse) → an ordered :class:`~synapse_declare.plan.Plan`.

A pure function: no I/O. Semantics (documented in the README):

* **Entities** are matched by name under their parent. A missing one is created; an existing one
  is updated where managed fields differ. Entities not in the manifest are never touched.
* **Adoption**: a project not yet marked as managed (the ``synapse_declare_managed`` annotation)
  is *adopted*: apply writes the marker; its existing folders show as adopted too. Once marked,
  unchanged entities are no-ops.
* **Annotations**: only keys in the manifest are managed; other keys are left alone. A managed
  key's type and values must match exactly (values in order).
* **ACL**: when given, it is the whole ACL of the entity (unlisted principals are removed);
  ``inherit`` removes a folder's own ACL; omitted leaves the ACL alone.
* **Wikis**: pages are matched by title path under the root page; pages not in the manifest are
  left alone; title and markdown are managed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from . import storage
from .consequences import access_consequences, plan_worlds
from .errors import PolicyViolation
from .leftovers import find_leftovers
from .lifecycle import (
    ADDRESS_KEY,
    MARKER_KEY,
    PROTECT_KEY,
    Relocation,
    project_rename,
    release_protection,
    relocation_reason,
)
from .model import (
    ANONYMOUS_ID,
    AUTHENTICATED_USERS_ID,
    INHERIT,
    PUBLIC_ID,
    AclEntry,
    AclSpec,
    ContainerSpec,
    Manifest,
    PrincipalKind,
    WikiSpec,
    level_for,
)
from .plan import DEFAULT_MAX_DELETIONS, Action, Change, FieldChange, Plan, Resource
from .policies import check_policies, undeclared_own_acls, user_principals
from .pruning import plan_deletions
from .resources import team as teams
from .resources.base import Address, owner_of, storage_address, sub_address
from .resources.payloads import (
    ContainerCreate,
    ContainerPrior,
    ContainerUpdate,
    EtagPrior,
    MigrationDesired,
    WikiOrderDesired,
    WikiPageDesired,
    WikiPagePrior,
)
from .state import (
    FOLDER_TYPE,
    PROJECT_TYPE,
    LiveContainer,
    LiveState,
    creator_of,
    orders_siblings,
)
from .units import human_bytes, human_seconds

MARKER_VALUE = {"type": "BOOLEAN", "value": ["true"]}


def build_plan(
    manifest: Manifest,
    live: LiveState,
    *,
    now: datetime | None = None,
    max_removals: int = teams.DEFAULT_MAX_REMOVALS,
    max_deletions: int = DEFAULT_MAX_DELETIONS,
) -> Plan:
    moment = now or datetime.now(UTC)
    # Teams first: ACLs below may name them (team:NAME) before they exist.
    team_changes = teams.plan_teams(manifest, live.teams, live.target.user_id, moment, max_removals)
    changes: list[Change] = []
    warnings: list[str] = [f"{w.location}: {w.message}; {w.hint}" for w in manifest.warnings]
    public: list[str] = []
    for project in manifest.projects:
        project_live = live.containers.get(project.address)
        adopting = project_live is not None and not project_live.managed_marker
        _plan_container(project, None, live, adopting, changes, warnings, public)
    ordered = [
        *team_changes,
        *teams.link_pending(_with_storage(manifest, live, changes, warnings), live.teams),
    ]
    deletions = plan_deletions(manifest, live, max_deletions)
    ordered.extend(deletions)
    gone = {Address.parse(c.address) for c in deletions}
    if live.certified is False:
        _refuse_uncertified(manifest, live, ordered)
    for name, problem in sorted(live.unreadable.items()):
        bucket = manifest.storage_locations[name].bucket
        warnings.append(
            f"storage location {name!r}: apply verifies each copy by reading s3://{bucket} with "
            f"this machine's AWS credentials, which cannot read it ({problem}); apply refuses "
            "before changing anything unless it runs where the bucket is readable or with "
            "--verify none"
        )
    public.extend(live.exposures)
    worlds = plan_worlds(manifest, live, _desired_acl)
    # Policies judge the world after this plan, before anything is written.
    check_policies(manifest, worlds, user_principals(manifest, live))
    warnings.extend(undeclared_own_acls(manifest, live))
    warnings.extend(live.notes)  # what the identity search could not settle (lifecycle.py)
    access_changes, unread = access_consequences(worlds)
    if unread:
        shown = ", ".join(unread[:3]) + (f" and {len(unread) - 3} more" if len(unread) > 3 else "")
        warnings.append(
            f"the effective-access summary leaves out {shown}: an own ACL governing "
            "them was not read (the manifest leaves it alone); declare its acl: to include them"
        )
    created_at = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return Plan(
        target=live.target,
        manifest_digest=manifest.digest,
        manifest_files=manifest.files,
        changes=tuple(ordered),
        observed=dict(live.observed),
        # One warning per line however many places produce it (warnings are printed once).
        warnings=tuple(dict.fromkeys(warnings)),
        created_at=created_at,
        public_access=tuple(dict.fromkeys(public)),
        audit_public=live.audit_public,
        access_changes=access_changes,
        leftovers=tuple(
            item
            for item in find_leftovers(manifest, live)
            if Address.parse(item.address).owner() not in gone
        ),
    )


def _needs_certified(change: Change) -> bool:
    """What Synapse refuses to a user who has not passed its certification quiz: creating any
    entity but a project, changing a folder, creating a wiki page (CREATE with no type), changing
    a folder's wiki page, and letting AUTHENTICATED_USERS download."""
    owner_is_folder = Address.parse(change.address).in_folder
    if change.resource is Resource.FOLDER:
        if change.action is Action.CREATE:
            return True
        if change.desired.get("entity_update") or change.desired.get("annotations"):
            return True
    if change.resource is Resource.WIKI_PAGE:
        if change.action is Action.CREATE or (change.action is Action.UPDATE and owner_is_folder):
            return True
    if change.resource in (Resource.PROJECT, Resource.FOLDER) and any(
        f.path == "acl.AUTHENTICATED_USERS" for f in change.fields
    ):
        granted = [
            entry
            for entry in change.desired.get("acl") or []
            if entry.get("principalId") == AUTHENTICATED_USERS_ID
        ]
        return any("DOWNLOAD" in entry.get("accessType", []) for entry in granted)
    return False


def _refuse_uncertified(manifest: Manifest, live: LiveState, changes: list[Change]) -> None:
    refused = [c for c in changes if _needs_certified(c)]
    if not refused:
        return
    specs = {spec.address: spec for spec in manifest.walk()}
    first = specs.get(owner_of(refused[0].address))
    shown = ", ".join(c.address for c in refused[:3])
    more = f" and {len(refused) - 3} more" if len(refused) > 3 else ""
    raise PolicyViolation(
        f"you ({live.target.user_name}) are not a certified Synapse user, and Synapse lets only "
        "certified users create or change folders and wiki pages (and let AUTHENTICATED_USERS "
        f"download); this plan needs that for {shown}{more}",
        location=first.location if first is not None else None,
        hint="pass Synapse's certification quiz (synapse.org → your profile → Certification), "
        "or have a certified user or CI bot apply the manifest; projects themselves need no "
        "certification",
    )


def _with_storage(
    manifest: Manifest, live: LiveState, changes: list[Change], warnings: list[str]
) -> list[Change]:
    """Storage locations first; each container's upload destination and migration after it."""
    if not manifest.storage_locations:
        return changes
    locations = storage.plan_locations(manifest, live.storage)
    for change in locations:
        name = str(change.desired["name"])
        declared = manifest.storage_locations[name]
        if declared.type != "external_s3":
            continue
        if name not in live.storage.owner_checks:
            warnings.append(
                f"storage location {name!r}: owner.txt in s3://{declared.bucket} was not checked "
                "here (no AWS access from this machine); Synapse checks it when apply creates "
                "the location"
            )
            continue
        problem = live.storage.owner_checks[name]
        if problem is not None:
            raise PolicyViolation(
                f"storage location {name!r}: {problem}, so Synapse would refuse to create it",
                location=declared.location,
                hint=storage.owner_hint(declared, live.target.user_name, live.target.user_id),
            )
    per_container: dict[str, list[Change]] = {}
    for spec in manifest.walk():
        current = live.containers.get(spec.address)
        syn_id = current.syn_id if current is not None else None
        extra = [
            storage.plan_upload_destination(spec, syn_id, live.storage, manifest),
            _migration_change(spec, live),
            _move_change(spec, live),
        ]
        per_container[spec.address] = [c for c in extra if c is not None]
    ordered = list(locations)
    for change in changes:
        ordered.append(change)
        ordered.extend(per_container.pop(change.address, []))
    return ordered


def _migration_change(spec: ContainerSpec, live: LiveState) -> Change | None:
    migration = spec.migrate_existing
    if migration is None:
        return None
    index = live.storage.migrations.get(spec.address)
    depends = [spec.address]
    if spec.storage is not None:
        depends.append(sub_address(spec.address, "upload"))
    if migration.to not in live.storage.matched:
        depends.append(storage_address(migration.to))
    address = sub_address(spec.address, "migration")
    if index is None:
        return None  # the container is created by this plan: it holds no files yet
    skipped: dict[str, int] = {}
    for item in index.skipped:
        skipped[item.reason] = skipped.get(item.reason, 0) + 1
    summary = {
        "files": len({i.entity_id for i in index.items}),
        "versions": len(index.items),
        "bytes": index.total_bytes(),
        "size": human_bytes(index.total_bytes()),
        "copies": index.unique_handles(),
        "already_in_destination": len(index.already),
        "skipped": skipped,
        "estimated_duration": human_seconds(index.estimated_seconds()),
        **index.plan_summary(),
    }
    fields = tuple(
        FieldChange(key, None, value)
        for key, value in summary.items()
        if value not in ({}, 0) or key in ("files", "versions")
    )
    return Change(
        address=address,
        resource=Resource.MIGRATION,
        action=Action.MIGRATE if index.items else Action.NO_OP,
        syn_id=index.container_id,
        fields=fields if index.items else (),
        depends_on=tuple(depends),
        desired=MigrationDesired(
            container=spec.address,
            destination=migration.to,
            endpoint_url=live.storage.endpoints.get(migration.to),
            strategy=migration.versions,
            index=index.to_json(),
        ).to_json(),
        reason=(
            f"{migration.versions} version(s) to {migration.to}, copied by the cheapest path "
            "per file (see copy_paths), verified, sources kept"
            if index.items
            else f"nothing to migrate ({len(index.already)} already there, "
            f"{len(index.skipped)} skipped)"
        ),
    )


def _move_change(spec: ContainerSpec, live: LiveState) -> Change | None:
    """move_files_from: copy each file into this folder's STS storage, then move it here."""
    if spec.move_files_from is None or spec.storage is None:
        return None
    found = live.storage.moves.get(spec.address)
    if found is None:
        return None  # the project is new: there are no files to move yet
    source_id, index = found
    location = spec.storage[0]
    depends = [spec.address, sub_address(spec.address, "upload")]
    if location not in live.storage.matched:
        depends.append(storage_address(location))
    skipped: dict[str, int] = {}
    for item in index.skipped:
        skipped[item.reason] = skipped.get(item.reason, 0) + 1
    summary = {
        "from": f"{spec.move_files_from} ({source_id})",
        "files": len(index.items),
        "bytes": index.total_bytes(),
        "size": human_bytes(index.total_bytes()),
        "skipped": skipped,
        "estimated_duration": human_seconds(index.estimated_seconds()),
        **index.plan_summary(),
    }
    return Change(
        address=sub_address(spec.address, "move"),
        resource=Resource.MIGRATION,
        action=Action.MIGRATE if index.items else Action.NO_OP,
        syn_id=source_id,
        fields=tuple(
            FieldChange(k, None, v) for k, v in summary.items() if v not in ({}, 0) or k == "files"
        )
        if index.items
        else (),
        depends_on=tuple(depends),
        desired=MigrationDesired(
            container=spec.address,
            destination=location,
            endpoint_url=live.storage.endpoints.get(location),
            strategy="move",
            index=index.to_json(),
            move_to=spec.address,
        ).to_json(),
        reason=(
            f"files copied into {location} and moved here: same Synapse ids, sources kept"
            if index.items
            else f"nothing left to move from {spec.move_files_from}"
        ),
    )


MANAGE_ACCESS = frozenset({"READ", "UPDATE", "CHANGE_PERMISSIONS"})


def _check_permissions(
    spec: ContainerSpec, current: Any, live: LiveState, *, edit: bool, acl: bool, add_children: bool
) -> None:
    """Refuse at plan time what Synapse would refuse mid-apply for lack of permission."""
    permissions = current.permissions
    if permissions is None:
        return
    missing = []
    if edit and not permissions.get("canEdit"):
        missing.append("UPDATE (to change its annotations or description)")
    if acl and not permissions.get("canChangePermissions"):
        missing.append("CHANGE_PERMISSIONS (to change its ACL)")
    if add_children and not permissions.get("canAddChild"):
        missing.append("CREATE (to add the folders the manifest declares in it)")
    if missing:
        raise PolicyViolation(
            f"{spec.address} ({current.syn_id}): you ({live.target.user_name}) lack "
            + "; ".join(missing),
            location=spec.location,
            hint="ask an administrator of the entity for these rights, or remove those parts "
            "from the manifest",
        )


def effective_access(acl: Mapping[int, frozenset[str]], groups: frozenset[int]) -> set[str]:
    granted: set[str] = set()
    for principal, access in acl.items():
        if principal in groups:
            granted |= access
    return granted


def _check_lockout(
    spec: ContainerSpec, desired_acl: Mapping[int, frozenset[str]], live: LiveState
) -> None:
    """Refuse an ACL that would take from the user what managing this entity needs: without
    READ it disappears from later plans (which then never converge), without UPDATE or
    CHANGE_PERMISSIONS its annotations or ACL can never be changed again."""
    missing = sorted(MANAGE_ACCESS - effective_access(desired_acl, live.my_groups))
    if not missing:
        return
    assert isinstance(spec.acl, AclSpec)
    raise PolicyViolation(
        f"{spec.address}: this ACL would leave you ({live.target.user_name}) without "
        f"{', '.join(missing)} — neither directly nor through a team you are in — so "
        "synapse-declare could no longer manage it",
        location=spec.acl.location,
        hint="add `self: administer` (or give a team you belong to these rights); to hand the "
        "entity over for good, change its ACL outside synapse-declare",
    )


def _desired_annotations(spec: ContainerSpec) -> dict[str, Any] | None:
    if spec.annotations is None:
        return None
    return {
        key: {"type": value.type.value, "value": list(value.values)}
        for key, value in sorted(spec.annotations.items())
    }


def _principal_id(entry: AclEntry, spec: ContainerSpec, live: LiveState) -> int:
    if entry.principal.kind is PrincipalKind.SELF:
        return creator_of(live.containers.get(spec.address), live.target.user_id)
    found = live.principals.get(entry.principal)
    if found is None:  # a declared team that apply creates first (a stand-in id until then)
        found = live.teams.placeholder(str(entry.principal.name))
    assert found is not None, f"unresolved principal {entry.principal}"
    return found


def _desired_acl(spec: ContainerSpec, live: LiveState) -> dict[int, frozenset[str]] | None:
    if not isinstance(spec.acl, AclSpec):
        return None
    entries: dict[int, set[str]] = {}
    for entry in spec.acl.entries:
        entries.setdefault(_principal_id(entry, spec, live), set()).update(entry.access)
    return {k: frozenset(v) for k, v in entries.items()}


def _level_text(access: frozenset[str]) -> str:
    return level_for(access) or ",".join(sorted(access))


def acl_field_changes(
    before: Mapping[int, frozenset[str]] | None,
    after: Mapping[int, frozenset[str]],
    names: Mapping[int, str],
) -> list[FieldChange]:
    """One field per principal whose access changes: ``acl.team:Curators`` (none) → ``edit``
    (added), ``edit`` → (none) (removed), ``view`` → ``download`` (changed); sorted by name."""
    old = before or {}
    out: list[tuple[str, FieldChange]] = []
    for principal in set(old) | set(after):
        was, now = old.get(principal), after.get(principal)
        if was == now:
            continue
        label = names.get(principal, str(principal))
        out.append(
            (
                label,
                FieldChange(
                    f"acl.{label}",
                    None if was is None else _level_text(was),
                    None if now is None else _level_text(now),
                ),
            )
        )
    return [change for _, change in sorted(out, key=lambda item: item[0])]


_EVERYONE = {
    PUBLIC_ID: ("PUBLIC", "anyone on the internet, logged in or not,"),
    AUTHENTICATED_USERS_ID: (
        "AUTHENTICATED_USERS",
        "every Synapse account (anyone can register one)",
    ),
}


def public_grants(
    address: str,
    before: Mapping[int, frozenset[str]] | None,
    after: Mapping[int, frozenset[str]],
) -> list[str]:
    """A line per access this ACL newly gives to PUBLIC or AUTHENTICATED_USERS."""
    lines = []
    for principal, (label, who) in _EVERYONE.items():
        added = after.get(principal, frozenset()) - (before or {}).get(principal, frozenset())
        if added:
            level = _level_text(after[principal])
            lines.append(
                f"{_display_path(address)}: this plan grants {label} {level} — {who} gets "
                f"{', '.join(sorted(added))}"
            )
    return lines


def _display_path(address: str) -> str:
    return Address.parse(address).display_path


def _acl_wire(entries: Mapping[int, frozenset[str]]) -> tuple[dict[str, Any], ...]:
    return tuple({"principalId": p, "accessType": sorted(a)} for p, a in sorted(entries.items()))


def _principal_names(spec: ContainerSpec, live: LiveState) -> dict[int, str]:
    names = dict(live.principal_names)
    for ref, pid in live.principals.items():
        if ref.kind in (PrincipalKind.USER, PrincipalKind.TEAM):
            names[pid] = str(ref)
    names.setdefault(live.target.user_id, f"user:{live.target.user_name}")
    # Groups every Synapse has, named even when the manifest does not mention them.
    names.setdefault(PUBLIC_ID, "PUBLIC")
    names.setdefault(AUTHENTICATED_USERS_ID, "AUTHENTICATED_USERS")
    names.setdefault(ANONYMOUS_ID, "anonymous")
    if isinstance(spec.acl, AclSpec):
        for entry in spec.acl.entries:
            pid = _principal_id(entry, spec, live)
            if entry.principal.kind is PrincipalKind.SELF:
                # `self` is this entity's creator: show who that is.
                names[pid] = f"{names.get(pid, pid)} (self)"
            elif entry.principal.kind is not PrincipalKind.ID or pid not in names:
                names[pid] = str(entry.principal)
    return names


def _plan_container(
    spec: ContainerSpec,
    parent: ContainerSpec | None,
    live: LiveState,
    adopting: bool,
    changes: list[Change],
    warnings: list[str],
    public: list[str],
) -> None:
    current = live.containers.get(spec.address)
    is_project = parent is None
    resource = Resource.PROJECT if is_project else Resource.FOLDER
    desired_annotations = _desired_annotations(spec)
    if is_project or current is None:
        # The marker says synapse-declare created (or adopted) it: only such folders are pruned.
        # A folder gets it in its create call (no extra write).
        desired_annotations = {**(desired_annotations or {}), MARKER_KEY: MARKER_VALUE}
        if not is_project:
            # Recognises the folder if it is renamed by hand (read only when its name is missing).
            desired_annotations[ADDRESS_KEY] = {"type": "STRING", "value": [spec.address]}
    if spec.protect:
        # Kept on the entity, so removing the manifest entry cannot delete it (see pruning.py).
        desired_annotations = {**(desired_annotations or {}), PROTECT_KEY: MARKER_VALUE}
    desired_acl = _desired_acl(spec, live)
    names = _principal_names(spec, live)
    depends = (parent.address,) if parent is not None else ()
    if desired_acl is not None:
        _check_lockout(spec, desired_acl, live)

    if current is None and spec.address in live.trashed:
        _plan_restore(spec, live, depends, changes, warnings)
        return
    if current is None:
        fields: list[FieldChange] = [FieldChange("name", None, spec.name)]
        if spec.description is not None:
            fields.append(FieldChange("description", None, spec.description))
        if spec.alias is not None:
            fields.append(FieldChange("alias", None, spec.alias))
        for key, value in (desired_annotations or {}).items():
            fields.append(FieldChange(f"annotations.{key}", None, _annotation_display(value)))
        if desired_acl is not None:
            fields.extend(acl_field_changes(None, desired_acl, names))
            public.extend(public_grants(spec.address, None, desired_acl))
        elif is_project:
            fields.append(FieldChange(f"acl.user:{live.target.user_name}", None, "administer"))
        entity: dict[str, Any] = {
            "concreteType": PROJECT_TYPE if is_project else FOLDER_TYPE,
            "name": spec.name,
        }
        if spec.description is not None:
            entity["description"] = spec.description
        if spec.alias is not None:
            entity["alias"] = spec.alias
        changes.append(
            Change(
                address=spec.address,
                resource=resource,
                action=Action.CREATE,
                syn_id=None,
                fields=tuple(fields),
                depends_on=depends,
                desired=ContainerCreate(
                    entity=entity,
                    annotations=desired_annotations,
                    acl=_acl_wire(desired_acl) if desired_acl is not None else None,
                    # The ACL is set after the create, etag-guarded, when it cannot go in the
                    # bundle2/create call: a new project already has its creator's ACL, which
                    # Synapse would update and ask an etag for that nobody can know yet; and
                    # bundle2/create applies the ACL before the annotations, which need UPDATE
                    # that the new ACL may give us only through a team.
                    acl_after_create=desired_acl is not None
                    and (
                        is_project
                        or bool(
                            desired_annotations
                            and "UPDATE" not in desired_acl.get(live.target.user_id, frozenset())
                        )
                    ),
                    parent=parent.address if parent is not None else None,
                ).to_json(),
                reason="does not exist",
            )
        )
        if spec.wiki is not None:
            _plan_wiki(spec, spec.wiki, None, (), True, changes)
            _plan_wiki_order(spec, spec.wiki, None, changes)
        for child in spec.folders:
            _plan_container(child, spec, live, False, changes, warnings, public)
        return

    fields = []
    entity_update: dict[str, Any] = {}
    if current.entity is not None:
        if spec.description is not None and (current.entity.get("description") or None) != (
            spec.description or None
        ):
            fields.append(
                FieldChange("description", current.entity.get("description"), spec.description)
            )
            entity_update["description"] = spec.description
        if spec.alias is not None and current.entity.get("alias") != spec.alias:
            fields.append(FieldChange("alias", current.entity.get("alias"), spec.alias))
            entity_update["alias"] = spec.alias
    relocation = live.relocated.get(spec.address)
    if relocation is not None and parent is not None and current.entity is not None:
        fields.extend(_relocate(spec, parent, relocation, current, live, entity_update))
    elif relocation is not None and current.entity is not None:
        fields.extend(project_rename(spec, current, entity_update))
    annotations_after: dict[str, Any] | None = None
    if desired_annotations is not None and current.annotations is not None:
        merged = dict(current.annotations)
        for key, value in desired_annotations.items():
            before = current.annotations.get(key)
            if before is not None and _same_annotation(before, value):
                continue  # the same value, perhaps spelled differently by another client
            fields.append(
                FieldChange(
                    f"annotations.{key}",
                    _annotation_display(before) if before is not None else None,
                    _annotation_display(value),
                )
            )
            merged[key] = value
        if merged != current.annotations:
            annotations_after = merged
    annotations_after = release_protection(spec, current.annotations, annotations_after, fields)
    acl_op: str | None = None
    if desired_acl is not None:
        if not current.own_acl:
            fields.append(FieldChange("acl", "(inherited)", "(own ACL)"))
            fields.extend(acl_field_changes(None, desired_acl, names))
            public.extend(public_grants(spec.address, None, desired_acl))
            acl_op = "create"
        elif current.acl is not None and current.acl.entries != desired_acl:
            fields.extend(acl_field_changes(current.acl.entries, desired_acl, names))
            public.extend(public_grants(spec.address, current.acl.entries, desired_acl))
            acl_op = "update"
    elif spec.acl is INHERIT and current.own_acl:
        fields.append(FieldChange("acl", "(own ACL)", "(inherited)"))
        acl_op = "delete"

    writes_marker = is_project and adopting
    _check_permissions(
        spec,
        current,
        live,
        edit=bool(entity_update or annotations_after or writes_marker),
        acl=acl_op is not None,
        add_children=any(live.containers.get(c.address) is None for c in spec.folders),
    )
    if fields:
        action = Action.ADOPT if is_project and adopting else Action.UPDATE
    elif adopting:
        action = Action.ADOPT
    else:
        action = Action.NO_OP
    reason = {
        Action.ADOPT: "exists, not yet managed by synapse-declare",
        Action.UPDATE: relocation_reason(relocation) if relocation else "differs from the manifest",
        Action.NO_OP: "matches the manifest",
    }[action]
    changes.append(
        Change(
            address=spec.address,
            resource=resource,
            action=action,
            syn_id=current.syn_id,
            fields=tuple(fields),
            depends_on=depends,
            desired=ContainerUpdate(
                entity_update=entity_update or None,
                annotations=annotations_after,
                acl_op=acl_op,
                acl=_acl_wire(desired_acl) if desired_acl is not None else None,
            ).to_json(),
            prior=ContainerPrior(
                etag=current.etag,
                entity=current.entity if entity_update else None,
                acl_etag=current.acl.etag if current.acl is not None else None,
            ).to_json(),
            reason=reason,
        )
    )
    if spec.wiki is not None:
        _plan_wiki(spec, spec.wiki, current, (), False, changes)
        _plan_wiki_order(spec, spec.wiki, current, changes)
    for child in spec.folders:
        _plan_container(child, spec, live, adopting, changes, warnings, public)


def _relocate(
    spec: ContainerSpec,
    parent: ContainerSpec,
    relocation: Relocation,
    current: LiveContainer,
    live: LiveState,
    entity_update: dict[str, Any],
) -> list[FieldChange]:
    """``~ name`` / ``~ parent`` for a folder found under a ``previously:`` name or path: one
    etag-guarded ``PUT /entity`` carries both (the container's entity update)."""
    fields: list[FieldChange] = []
    if current.name != spec.name:
        fields.append(FieldChange("name", current.name, spec.name))
        entity_update["name"] = spec.name
    parent_live = live.containers.get(parent.address)
    if parent_live is not None and relocation.parent_id != parent_live.syn_id:
        new_parent = Address.parse(parent.address)
        old_dir = relocation.previous.strip("/").rpartition("/")[0]
        old_parent = "/".join(filter(None, (new_parent.names[0], old_dir)))
        fields.append(FieldChange("parent", old_parent, new_parent.display_path))
        entity_update["parentId"] = parent_live.syn_id
    return fields


def _plan_restore(
    spec: ContainerSpec,
    live: LiveState,
    depends: tuple[str, ...],
    changes: list[Change],
    warnings: list[str],
) -> None:
    """A declared folder found in the caller's trash comes back with its contents (never a new
    empty twin); what it holds is compared by the next plan, once it is readable again."""
    syn_id = live.trashed[spec.address]
    changes.append(
        Change(
            address=spec.address,
            resource=Resource.FOLDER if spec.kind.value == "folder" else Resource.PROJECT,
            action=Action.RESTORE,
            syn_id=syn_id,
            fields=(FieldChange("name", None, spec.name),),
            depends_on=depends,
            reason="in the trash: restored with its contents instead of created empty",
        )
    )
    if spec.folders or spec.annotations is not None or spec.acl is not None or spec.wiki:
        warnings.append(
            f"{spec.location}: {Address.parse(spec.address).display_path} is restored from the "
            "trash; its declared settings and sub-folders are compared by the next plan: run "
            "plan (or apply) again after this apply"
        )


def _same_annotation(live: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """Equal as Synapse values: Synapse stores annotation values as sent (checked with Java's
    Long/Double/Boolean parsers), so other clients may write "2" for the DOUBLE 2.0, "TRUE" for
    true or "+3" for 3; those are not changes."""
    kind = str(desired.get("type"))
    if str(live.get("type")) != kind:
        return False
    before, after = list(live.get("value", [])), list(desired.get("value", []))
    return len(before) == len(after) and all(
        _annotation_value_key(kind, str(a)) == _annotation_value_key(kind, str(b))
        for a, b in zip(before, after, strict=True)
    )


def _annotation_value_key(kind: str, value: str) -> object:
    try:
        if kind in ("LONG", "TIMESTAMP_MS"):
            return int(value)
        if kind == "DOUBLE":
            return repr(float(value))  # repr: NaN equals NaN
    except ValueError:
        return value
    if kind == "BOOLEAN":
        return value.lower()
    return value


def _annotation_display(value: Mapping[str, Any]) -> Any:
    """Typed values for people and JSON; a value Python cannot read as its type (Java accepts
    "2.5d" as a DOUBLE) or JSON cannot hold (NaN, a year past 9999) is shown as stored."""
    kind = str(value.get("type", "STRING"))
    shown = [_display_one(kind, str(item)) for item in value.get("value", [])]
    return {"type": kind, "value": shown[0] if len(shown) == 1 else shown}


def _display_one(kind: str, item: str) -> Any:
    try:
        if kind == "LONG":
            return int(item)
        if kind == "TIMESTAMP_MS":
            when = datetime.fromtimestamp(int(item) / 1000, UTC)
            return when.isoformat().replace("+00:00", "Z")
        if kind == "DOUBLE":
            number = float(item)
            return number if math.isfinite(number) else item
    except (ValueError, OverflowError, OSError):
        return item
    if kind == "BOOLEAN":
        return item.lower() == "true"
    return item


def _plan_wiki(
    owner: ContainerSpec,
    page: WikiSpec,
    live: LiveContainer | None,
    path: tuple[str, ...],
    owner_created: bool,
    changes: list[Change],
) -> None:
    key = "/".join(path)
    address = sub_address(owner.address, "wiki" + (f"/{key}" if key else ""))
    parent_address = None
    if path:
        parent_key = "/".join(path[:-1])
        parent_address = sub_address(
            owner.address, "wiki" + (f"/{parent_key}" if parent_key else "")
        )
    depends = tuple(a for a in (owner.address, parent_address) if a)
    current = None if live is None else live.wiki_pages.get(key)
    if current is None:
        changes.append(
            Change(
                address=address,
                resource=Resource.WIKI_PAGE,
                action=Action.CREATE,
                syn_id=None,
                fields=(
                    FieldChange("title", None, page.title),
                    FieldChange(
                        "markdown", None, _markdown_summary(page.markdown, page.markdown_source)
                    ),
                ),
                depends_on=depends,
                desired=WikiPageDesired(
                    owner.address, parent_address, page.title, page.markdown
                ).to_json(),
                reason="does not exist",
            )
        )
    else:
        fields: list[FieldChange] = []
        if current.title != page.title:
            fields.append(FieldChange("title", current.title, page.title))
        if current.markdown != page.markdown:
            fields.append(
                FieldChange(
                    "markdown",
                    _markdown_summary(current.markdown, None),
                    _markdown_summary(page.markdown, page.markdown_source),
                )
            )
        changes.append(
            Change(
                address=address,
                resource=Resource.WIKI_PAGE,
                action=Action.UPDATE if fields else Action.NO_OP,
                syn_id=current.id,
                fields=tuple(fields),
                depends_on=depends,
                desired=WikiPageDesired(
                    owner.address, parent_address, page.title, page.markdown
                ).to_json(),
                prior=WikiPagePrior(current.etag, current.raw if fields else None).to_json(),
                reason="differs from the manifest" if fields else "matches the manifest",
            )
        )
    for sub in page.pages:
        _plan_wiki(owner, sub, live, (*path, sub.title), owner_created, changes)


def _sub_pages(page: WikiSpec, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Title paths of every sub-page, depth first, in manifest order."""
    found: list[tuple[str, ...]] = []
    for sub in page.pages:
        found.append((*path, sub.title))
        found.extend(_sub_pages(sub, (*path, sub.title)))
    return found


def _plan_wiki_order(
    owner: ContainerSpec, wiki: WikiSpec, live: LiveContainer | None, changes: list[Change]
) -> None:
    """Sub-pages in the manifest's order, through Synapse's wiki order hint (``idList``: the
    web UI lists sibling pages in its order). Pages not in the manifest keep their relative
    order after the manifest's."""
    if not orders_siblings(wiki):
        return
    paths = _sub_pages(wiki)
    addresses = [sub_address(owner.address, "wiki/" + "/".join(p)) for p in paths]
    hint = live.wiki_order if live is not None else None
    ids = [
        live.wiki_pages["/".join(p)].id if live and "/".join(p) in live.wiki_pages else None
        for p in paths
    ]
    current = [str(i) for i in (hint or {}).get("idList") or []]
    known = [i for i in ids if i is not None]
    in_live_order = [i for i in current if i in set(known)]
    matches = None not in ids and in_live_order == known
    titles = ["/".join(p) for p in paths]
    before = None
    if current:
        by_id = {i: t for i, t in zip(ids, titles, strict=True) if i is not None}
        before = [by_id[i] for i in in_live_order]
    changes.append(
        Change(
            address=sub_address(owner.address, "wiki-order"),
            resource=Resource.WIKI_ORDER,
            action=Action.NO_OP if matches else (Action.UPDATE if hint else Action.CREATE),
            syn_id=None,
            fields=() if matches else (FieldChange("order", before, titles),),
            depends_on=(owner.address, *addresses),
            desired=WikiOrderDesired(
                owner.address,
                tuple(addresses),
                # Ids the manifest does not describe stay, after its pages, in their order.
                tuple(i for i in current if i not in set(known)),
            ).to_json(),
            prior=EtagPrior(hint.get("etag") if hint else None).to_json(),
            reason="matches the manifest" if matches else "sub-pages in the manifest's order",
        )
    )


def _markdown_summary(markdown: str, source: str | None) -> str:
    lines = markdown.count("\n") + (1 if markdown and not markdown.endswith("\n") else 0)
    import hashlib

    digest = hashlib.sha256(markdown.encode("utf-8")).hexdigest()[:12]
    origin = f"{source}, " if source else ""
    size = len(markdown.encode("utf-8"))
    plural = "" if lines == 1 else "s"
    return f"({origin}{lines} line{plural}, {size} bytes, sha256 {digest})"
