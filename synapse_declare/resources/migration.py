"""Storage migration, the plan-side kind: a ``migrate`` change carries the planned index (what
moves, what is already there, what cannot move) and apply hands it to the migration engine
(:mod:`synapse_declare.migration`: server-side copies, verification, journal, resume)."""

from __future__ import annotations

from ..client.s3 import DestinationReader
from ..errors import MigrationError
from ..migration import MigrationIndex, MigrationOptions, run_migration
from ..model import ContainerSpec
from ..plan import Change, Resource
from .base import ApplyContext, BundleFlags, Operation
from .payloads import MigrationDesired


class MigrationKind:
    name = "migration"
    resources = (Resource.MIGRATION,)
    operations = frozenset({Operation.PLAN, Operation.APPLY})

    def label(self, resource: Resource) -> str:
        return "migration"

    def bundle_flags(self, spec: ContainerSpec, own_acl: bool) -> BundleFlags:
        return BundleFlags()  # files are indexed from children pages and file handles

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


MIGRATION = MigrationKind()
