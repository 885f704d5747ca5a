"""Storage migration, the plan-side kind: a ``migrate`` change carries the planned index (what
moves, what is already there, what cannot move) and apply hands it to the migration engine
(:mod:`synapse_declare.migration`: server-side copies, verification, journal, resume).

Two changes, each planned from an index the state reader built and observed under its own
address: ``migrate_existing`` (``#migration``) and ``move_files_from`` (``#move``: files copied
into the folder's STS storage, then moved there, same ids).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..client.s3 import DestinationReader
from ..errors import MigrationError
from ..migration import MigrationIndex, MigrationOptions, run_migration
from ..model import ContainerSpec, Manifest
from ..plan import Action, Change, FieldChange, Resource
from ..storage import LiveStorage
from ..units import human_bytes, human_seconds
from .base import ApplyContext, BundleFlags, Operation, PlanContext, storage_address, sub_address
from .payloads import MigrationDesired

if TYPE_CHECKING:
    from ..state import LiveContainer, LiveState


class MigrationKind:
    name = "migration"
    resources = (Resource.MIGRATION,)
    operations = frozenset({Operation.PLAN, Operation.APPLY})

    def label(self, resource: Resource) -> str:
        return "migration"

    def bundle_flags(self, spec: ContainerSpec, own_acl: bool) -> BundleFlags:
        return BundleFlags()  # files are indexed from children pages and file handles

    def observe(self, spec: ContainerSpec, live: LiveContainer | None) -> Mapping[str, str | None]:
        return {}  # indexed after the entity walk: see observe_storage

    def observe_storage(self, manifest: Manifest, storage: LiveStorage) -> dict[str, str | None]:
        """A digest of each planned index, under its change's address (``#migration``,
        ``#move``): a file added, moved or re-versioned since makes the saved plan stale, and
        the stale reason names the change it invalidates."""
        indexes = [
            *((sub_address(a, "migration"), index) for a, index in storage.migrations.items()),
            *((sub_address(a, "move"), index) for a, (_, index) in storage.moves.items()),
        ]
        return {address: _digest(index) for address, index in sorted(indexes, key=lambda i: i[0])}

    def plan(self, spec: ContainerSpec, live: LiveState, ctx: PlanContext) -> list[Change]:
        """The container's migration, then its move (each only when the reader indexed it)."""
        found = (migration_change(spec, live), move_change(spec, live))
        return [change for change in found if change is not None]

    def needs_certification(self, change: Change) -> bool:
        """Copying files repoints them (a new version, or a move): Synapse lets only certified
        users update an entity other than a project."""
        return change.action is Action.MIGRATE

    def record_existing(self, ctx: ApplyContext, change: Change) -> None:
        return  # a migration has no id other changes depend on

    def apply(self, ctx: ApplyContext, change: Change) -> str:
        desired = MigrationDesired.from_json(change.desired)
        index = MigrationIndex.from_json(desired.index)
        name = desired.destination
        with ctx.lock:
            destination = ctx.locations.get(name, index.destination_id)
        if destination is None:
            raise MigrationError(f"{change.address}: destination {name!r} was not created")
        options = ctx.migration_options or MigrationOptions()
        factory = ctx.reader_factory or DestinationReader.from_settings
        move_to = ctx.id_of(desired.move_to) if desired.move_to else None
        report = run_migration(
            ctx.api,
            index,
            int(destination),
            move_to=move_to,
            endpoint=ctx.plan.target.endpoint,
            user_id=ctx.plan.target.user_id,
            verifier=factory(desired.endpoint_url),
            options=options,
            progress=ctx.progress,
        )
        counts = ", ".join(f"{v} {k}" for k, v in sorted(report.counts.items()) if v)
        if not report.ok:
            message = f"{change.address}: migration incomplete ({counts})"
            if options.continue_on_error:
                with ctx.lock:
                    ctx.soft_failures.append((change.address, message))
                return counts + " (failures collected in the report)"
            raise MigrationError(message, hint="see the migration report; re-run apply to resume")
        return counts


def _digest(index: MigrationIndex) -> str:
    canonical = json.dumps(index.to_json(), sort_keys=True).encode("utf-8")
    return hashlib.sha256(canonical).hexdigest()[:16]


def migration_change(spec: ContainerSpec, live: LiveState) -> Change | None:
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


def move_change(spec: ContainerSpec, live: LiveState) -> Change | None:
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


MIGRATION = MigrationKind()
