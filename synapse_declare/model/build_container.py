"""The container builder: a project or folder, its own fields, and its folders (recursively);
annotations, ACL, wiki, storage and migration come from their own builders."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from synapse_declare.errors import SourceLocation
from synapse_declare.manifest import JsonPath
from synapse_declare.resources.base import Address

from .build_acl import build_acl
from .build_annotations import build_annotations
from .build_core import BuildContext
from .build_migration import build_migration, build_move_files_from, migration_target_rules
from .build_storage import build_destinations, destination_rules, enter_sts_folder, leave_sts_folder
from .build_wiki import build_wiki
from .names import ALIAS_RE, java_trim, synapse_name_problem
from .specs import (
    INHERIT,
    MAX_DESCRIPTION_LENGTH,
    AclSpec,
    ContainerSpec,
    EntityKind,
    Inherit,
    Prune,
)


def build_container(
    ctx: BuildContext, raw: Mapping[str, Any], path: JsonPath, kind: EntityKind, parent: str
) -> ContainerSpec:
    raw_name: str = raw["name"]
    problem = synapse_name_problem(raw_name)
    if problem is not None:
        ctx.error((*path, "name"), *problem)
    name = java_trim(raw_name)
    address = str(Address.container(kind.value, name, parent or None))
    _check_fields(ctx, raw, path)
    annotations = None
    if "annotations" in raw:
        annotations = build_annotations(ctx, raw["annotations"], (*path, "annotations"))
    acl = _acl(ctx, raw, path, kind)
    wiki = build_wiki(ctx, raw["wiki"], (*path, "wiki")) if "wiki" in raw else None
    destination_rules(ctx, raw, path, kind)
    migration_target_rules(ctx, raw, path)
    in_sts = enter_sts_folder(ctx, raw, kind, name)
    folders = _folders(ctx, raw, path, kind, name, address)
    if in_sts:
        leave_sts_folder(ctx)
    storage = build_destinations(ctx, raw, path)
    migration = build_migration(ctx, raw, path)
    return ContainerSpec(
        kind=kind,
        name=name,
        description=raw.get("description"),
        alias=raw.get("alias"),
        annotations=annotations,
        acl=acl,
        wiki=wiki,
        folders=folders,
        storage=storage,
        migrate_existing=migration,
        move_files_from=build_move_files_from(ctx, raw, path),
        location=ctx.at(path),
        address=address,
        prune={True: Prune.FOLDERS, "with-files": Prune.WITH_FILES}.get(
            raw.get("prune", False), Prune.OFF
        ),
        protect=bool(raw.get("protect", False)),
        unprotect=raw.get("protect") is False,
        previously=tuple(str(p) for p in raw.get("previously") or ()),
        prune_location=ctx.at((*path, "prune"), key=True) if "prune" in raw else None,
    )


def _check_fields(ctx: BuildContext, raw: Mapping[str, Any], path: JsonPath) -> None:
    """Synapse's limits on the description and the project alias."""
    description = raw.get("description")
    if description is not None and len(description) > MAX_DESCRIPTION_LENGTH:
        ctx.error(
            (*path, "description"),
            f"description is {len(description)} characters long; Synapse allows at most "
            f"{MAX_DESCRIPTION_LENGTH}",
            "shorten it (use the wiki for long text)",
        )
    alias = raw.get("alias")
    if alias is not None and not ALIAS_RE.match(alias):
        ctx.error(
            (*path, "alias"),
            f"invalid project alias {alias!r}",
            "aliases may only contain letters (a-z, A-Z), digits (0-9) and underscores",
        )


def _acl(
    ctx: BuildContext, raw: Mapping[str, Any], path: JsonPath, kind: EntityKind
) -> AclSpec | Inherit | None:
    raw_acl = raw.get("acl")
    if raw_acl is None:
        return None
    if raw_acl != "inherit":
        return build_acl(ctx, raw_acl, (*path, "acl"))
    if kind is EntityKind.FOLDER:
        return INHERIT
    ctx.error(
        (*path, "acl"),
        "a project always has its own ACL; `acl: inherit` is only for folders",
        "list the project's ACL entries (keep `self: administer`), or omit acl to "
        "leave it unmanaged",
    )
    return None


def _folders(
    ctx: BuildContext,
    raw: Mapping[str, Any],
    path: JsonPath,
    kind: EntityKind,
    name: str,
    address: str,
) -> tuple[ContainerSpec, ...]:
    folders: list[ContainerSpec] = []
    seen: dict[str, SourceLocation] = {}
    for i, item in enumerate(raw.get("folders") or []):
        child_path: JsonPath = (*path, "folders", i)
        child = build_container(ctx, item, child_path, EntityKind.FOLDER, address)
        earlier = ctx.first_seen(seen, child.name, (*child_path, "name"))
        if earlier is not None:
            ctx.error(
                (*child_path, "name"),
                f"duplicate folder name {child.name!r} in {kind.value} {name!r} "
                f"(also defined at {earlier})",
                "names are unique among siblings (case-sensitively); rename or merge them",
            )
        folders.append(child)
    return tuple(folders)
