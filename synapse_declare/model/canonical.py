"""The model's canonical form and digest: what a plan depends on, independent of file names,
positions, layout and order (folders, projects, wiki sub-pages, ACL entries and annotation keys
sorted)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from .specs import MANIFEST_VERSION, ContainerSpec, Inherit, StorageLocationSpec, WikiSpec
from .teams import TeamSpec


def _canonical_wiki(wiki: WikiSpec) -> dict[str, Any]:
    return {
        "title": wiki.title,
        "markdown": wiki.markdown,
        "pages": [_canonical_wiki(p) for p in sorted(wiki.pages, key=lambda p: p.title)],
    }


def _canonical_container(spec: ContainerSpec) -> dict[str, Any]:
    acl: Any
    if spec.acl is None:
        acl = None
    elif isinstance(spec.acl, Inherit):
        acl = spec.acl.value
    else:
        acl = {str(e.principal): sorted(e.access) for e in spec.acl.entries}
    return {
        "kind": spec.kind.value,
        "name": spec.name,
        "description": spec.description,
        "alias": spec.alias,
        "annotations": None
        if spec.annotations is None
        else {k: [v.type.value, list(v.values)] for k, v in spec.annotations.items()},
        "acl": acl,
        "wiki": None if spec.wiki is None else _canonical_wiki(spec.wiki),
        "folders": [_canonical_container(f) for f in sorted(spec.folders, key=lambda f: f.name)],
        "storage": None if spec.storage is None else list(spec.storage),
        "migrate_existing": None
        if spec.migrate_existing is None
        else [spec.migrate_existing.to, spec.migrate_existing.versions],
        "move_files_from": spec.move_files_from,
    }


def canonical_form(
    projects: Iterable[ContainerSpec], storage_locations: Mapping[str, StorageLocationSpec]
) -> dict[str, Any]:
    """The JSON-able form the digest is computed over (no file names or positions)."""
    return {
        "version": MANIFEST_VERSION,
        "projects": [_canonical_container(p) for p in sorted(projects, key=lambda p: p.name)],
        "storage_locations": {
            name: {
                "type": s.type,
                "bucket": s.bucket,
                "base_key": s.base_key,
                "sts_enabled": s.sts_enabled,
                "endpoint_url": s.endpoint_url,
                "description": s.description,
                "banner": s.banner,
            }
            for name, s in storage_locations.items()
        },
    }


def digest(
    projects: Iterable[ContainerSpec],
    storage_locations: Mapping[str, StorageLocationSpec],
    teams: tuple[TeamSpec, ...] = (),
) -> str:
    """sha256 of the canonical JSON (sorted keys, no whitespace, UTF-8)."""
    form = canonical_form(projects, storage_locations)
    if teams:  # absent when no teams, so manifests without teams keep their digest
        form["teams"] = [t.canonical() for t in teams]
    text = json.dumps(
        form,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
