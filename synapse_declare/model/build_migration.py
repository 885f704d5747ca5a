"""The migration builder: ``migrate_existing`` (copy a container's files into another storage
location) and ``move_files_from`` (move a folder's files into an STS folder's storage)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from synapse_declare.manifest import JsonPath

from .build_core import BuildContext, destination_names
from .build_storage import storage_ref, sts_names
from .names import java_trim, synapse_name_problem
from .specs import MigrationSpec


def migration_target_rules(ctx: BuildContext, raw: Mapping[str, Any], path: JsonPath) -> None:
    """Where Synapse's server-side copy can put files (S3, not its default storage, not STS)."""
    migration = raw.get("migrate_existing")
    if migration is None or migration.get("to") not in ctx.storage_specs:
        return
    target = ctx.storage_specs[migration["to"]]
    mpath: JsonPath = (*path, "migrate_existing", "to")
    if target["type"] not in ("synapse_s3", "external_s3"):
        ctx.error(
            mpath,
            f"files can only be migrated into S3 storage, not {target['type']}",
            "Synapse's server-side copy works between S3 locations only",
        )
    elif target["type"] == "synapse_s3" and not any(
        target.get(f) for f in ("sts_enabled", "description", "banner")
    ):
        ctx.error(
            mpath,
            f"{migration['to']!r} is Synapse's default storage (id 1), which Synapse "
            "does not let users copy files into",
            "migrate into a storage location you create: an external_s3 bucket, or a "
            "synapse_s3 location with a description",
        )
    if target.get("sts_enabled"):
        ctx.error(
            mpath,
            f"cannot migrate existing files into STS-enabled location {migration['to']!r}",
            "Synapse only lets files with STS storage live in a folder whose own upload "
            "destination is that location, and only lets an empty folder get one: "
            "declare a new folder with `storage: "
            f"{migration['to']}` and `move_files_from: <folder with the files>`",
        )


def build_migration(
    ctx: BuildContext, raw: Mapping[str, Any], path: JsonPath
) -> MigrationSpec | None:
    if "migrate_existing" not in raw:
        return None
    spec = raw["migrate_existing"]
    mpath: JsonPath = (*path, "migrate_existing")
    storage_ref(ctx, spec["to"], (*mpath, "to"))
    return MigrationSpec(spec["to"], spec.get("versions", "latest"), ctx.at(mpath))


def build_move_files_from(ctx: BuildContext, raw: Mapping[str, Any], path: JsonPath) -> str | None:
    """The project-relative folder path whose files move into this STS folder's storage."""
    source = raw.get("move_files_from")
    if source is None:
        return None
    spath: JsonPath = (*path, "move_files_from")
    parts = [p for p in source.split("/") if p.strip()]
    if not parts or any(synapse_name_problem(p) for p in parts):
        ctx.error(
            spath,
            f"invalid folder path {source!r}",
            "write the folder's path from the project, e.g. `Raw Data` or `Raw Data/RNAseq`",
        )
        return None
    names = destination_names(raw)
    if len(names) != 1 or not sts_names(ctx, names):
        ctx.error(
            spath,
            "move_files_from moves files into this folder's STS-enabled storage, but the "
            "folder has none",
            "give this folder `storage: <an sts_enabled location>` as its only destination",
        )
    if "migrate_existing" in raw:
        ctx.error(
            spath,
            "use either move_files_from or migrate_existing on a folder, not both",
            "files moved in are already copied into this folder's storage",
        )
    return "/".join(java_trim(p) for p in parts)
