"""``build_model``: the per-kind builders composed into a whole :class:`Manifest`."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from typing import Any

from synapse_declare.errors import ManifestErrors, SourceLocation
from synapse_declare.manifest import JsonPath, Locator, SourceMap
from synapse_declare.policy_spec import Policies, parse_policies

from .build_container import build_container
from .build_core import BuildContext, sorted_errors
from .build_storage import build_storage_locations
from .build_teams import build_teams
from .canonical import digest
from .specs import (
    INHERIT,
    MANIFEST_VERSION,
    ContainerSpec,
    EntityKind,
    FrozenMap,
    Manifest,
    StorageLocationSpec,
)


def build_model(raw: Mapping[str, Any], locations: Locator | SourceMap | None = None) -> Manifest:
    """Build the model from schema-valid manifest data; raise :class:`ManifestErrors` listing
    every semantic problem.

    ``locations`` maps JSON paths to source positions: a :class:`Locator` for merged files, a
    :class:`SourceMap` for one file; with ``None`` relative ``markdown_file`` paths resolve
    against the current directory and errors are located at ``<manifest>:1:1``.
    """
    if isinstance(locations, SourceMap):
        locator = Locator.for_source(locations)
    elif locations is None:
        locator = Locator()
    else:
        locator = locations
    return _manifest(BuildContext(locator), raw)


def _manifest(ctx: BuildContext, raw: Mapping[str, Any]) -> Manifest:
    version = raw.get("version")
    if isinstance(version, bool) or version != MANIFEST_VERSION:
        ctx.error(
            ("version",),
            f"unsupported manifest version {version!r}",
            "this synapse-declare reads manifests with `version: 1`",
        )
    storage = build_storage_locations(ctx, raw.get("storage_locations") or {})
    projects = _projects(ctx, raw.get("projects") or [])
    teams = build_teams(ctx, raw.get("teams") or [])
    policies = parse_policies(raw.get("policies"), [p.name for p in projects], ctx.error, ctx.at)
    _warn_near_misses(ctx, policies, projects)
    if policies.folders_inherit_strict:
        projects = [_strict_inheritance(p) for p in projects]
    if ctx.errors:
        raise ManifestErrors(sorted_errors(ctx.errors))
    frozen_storage: FrozenMap[str, StorageLocationSpec] = FrozenMap(storage)
    return Manifest(
        tuple(projects),
        frozen_storage,
        ctx.locator.files,
        digest(projects, frozen_storage, teams),
        tuple(ctx.warnings),
        teams,
        policies,
    )


def _warn_near_misses(ctx: BuildContext, policies: Policies, projects: list[ContainerSpec]) -> None:
    """A `public_only_under` path one typo away from a declared folder ("P/Relases") would
    silently allow public access nowhere there; an undeclared folder is a legitimate target,
    so this is a warning, and only when a declared path is that close."""
    declared: list[str] = []

    def collect(spec: ContainerSpec, prefix: str) -> None:
        path = f"{prefix}/{spec.name}" if prefix else spec.name
        declared.append(path)
        for child in spec.folders:
            collect(child, path)

    for project in projects:
        collect(project, "")
    for rule in policies.public_only_under or ():
        if rule.path in declared:
            continue
        close = difflib.get_close_matches(rule.path, declared, n=1, cutoff=0.85)
        if close:
            ctx.warn(
                f"public_only_under: {rule.path!r} is not a path this manifest declares",
                rule.location,
                f"did you mean {close[0]!r}? (a folder the manifest does not declare is a valid "
                "path too: then ignore this)",
            )


def _projects(ctx: BuildContext, raw: list[Mapping[str, Any]]) -> list[ContainerSpec]:
    """Every project; names and aliases are unique across Synapse."""
    projects: list[ContainerSpec] = []
    seen: dict[str, SourceLocation] = {}
    aliases: dict[str, SourceLocation] = {}
    for i, item in enumerate(raw):
        path: JsonPath = ("projects", i)
        spec = build_container(ctx, item, path, EntityKind.PROJECT, "")
        earlier = ctx.first_seen(seen, spec.name, (*path, "name"))
        if earlier is not None:
            ctx.error(
                (*path, "name"),
                f"duplicate project name {spec.name!r} (also defined at {earlier})",
                "project names are unique across Synapse; declare each project once",
            )
        if spec.alias is not None:
            used = ctx.first_seen(aliases, spec.alias, (*path, "alias"))
            if used is not None:
                ctx.error(
                    (*path, "alias"),
                    f"duplicate project alias {spec.alias!r} (also used at {used})",
                    "aliases are unique across Synapse",
                )
        projects.append(spec)
    return projects


def _strict_inheritance(spec: ContainerSpec) -> ContainerSpec:
    """``folders_inherit: strict``: a folder that declares no ``acl:`` must inherit, so an own
    ACL found on it is drift the plan removes."""
    folders = tuple(_strict_inheritance(child) for child in spec.folders)
    acl = spec.acl
    if acl is None and spec.kind is EntityKind.FOLDER:
        acl = INHERIT
    return dataclasses.replace(spec, acl=acl, folders=folders)
