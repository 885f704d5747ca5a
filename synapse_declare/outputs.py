"""Outputs: the Synapse ids of everything a manifest declares, for CI to commit or pass on.

Data coordinating centers keep project ids in committed files (HTAN's 17 project keys, a bot
committing id updates, ``jq`` rewriting study JSON). ``synapse-declare output`` (and
``apply --outputs FILE``) prints them instead, by address and, for fanned-out manifests, by
fan-out key::

    {
      "format_version": 1,
      "ids": {"project:HTAN Alpha": "syn123", "project:HTAN Alpha/folder:Raw Data": "syn124"},
      "storage_locations": {"lab-bucket": 10234},
      "teams": {"Center A": "3456789"},
      "instances": {"center-project[Alpha]": {"project:HTAN Alpha": "syn123", ...}}
    }

Declared teams are listed by name with their team (principal) ids. A declared entity that does
not exist yet has ``null``. Reading costs one lookup per project and
one children listing per existing container with declared folders (plus the storage-location
list when the manifest declares non-default locations); it never writes.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import yaml

from synapse_declare import storage
from synapse_declare.client.synapse import SynapseAPI
from synapse_declare.errors import PlanError
from synapse_declare.fanout import Instance
from synapse_declare.model import ContainerSpec, Manifest
from synapse_declare.resources.base import Address
from synapse_declare.resources.team import alias_key

FORMAT_VERSION = 1
FORMATS = ("json", "yaml", "env")

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Outputs:
    ids: Mapping[str, str | None]  # address → syn id (None: not created yet)
    storage_locations: Mapping[str, int | None]  # declared name → storage location id
    instances: Mapping[str, Mapping[str, str | None]]  # fan-out key → address → syn id
    teams: Mapping[str, str | None] = dataclasses.field(default_factory=dict)  # name → team id

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "ids": dict(self.ids),
            "storage_locations": dict(self.storage_locations),
            "instances": {key: dict(ids) for key, ids in self.instances.items()},
            "teams": dict(self.teams),
        }


def read_outputs(
    api: SynapseAPI,
    manifest: Manifest,
    instances: Mapping[str, tuple[Instance, ...]],
) -> Outputs:
    """Read the ids of every declared project, folder and storage location. Never writes."""
    ids: dict[str, str | None] = {}
    level: list[tuple[ContainerSpec, str | None]] = list(
        zip(
            manifest.projects,
            _parallel(api, lambda spec: api.lookup_child(None, spec.name), manifest.projects),
            strict=True,
        )
    )
    while level:
        for spec, syn_id in level:
            ids[spec.address] = syn_id
        listing = [(s, i) for s, i in level if i is not None and s.folders]

        def list_children(job: tuple[ContainerSpec, str | None]) -> dict[str, str]:
            assert job[1] is not None
            return {
                str(h["name"]): str(h["id"])
                for h in api.children(job[1], ["folder"])
                if str(h.get("type", "")).endswith(".Folder")
            }

        children = dict(
            zip(
                [s.address for s, _ in listing], _parallel(api, list_children, listing), strict=True
            )
        )
        next_level: list[tuple[ContainerSpec, str | None]] = []
        for spec, _syn_id in level:
            found = children.get(spec.address, {})
            next_level.extend((child, found.get(child.name)) for child in spec.folders)
        level = next_level
    locations: dict[str, int | None] = {}
    if manifest.storage_locations:
        live = storage.read_storage(api, manifest, ids)
        for name, location in sorted(manifest.storage_locations.items()):
            locations[name] = 1 if storage.is_default(location) else live.matched.get(name)
    by_instance: dict[str, dict[str, str | None]] = {}
    for address, chain in instances.items():
        if address in ids:
            by_instance.setdefault(chain[0].label, {})[address] = ids[address]
    return Outputs(dict(sorted(ids.items())), locations, by_instance, _team_ids(api, manifest))


def _team_ids(api: SynapseAPI, manifest: Manifest) -> dict[str, str | None]:
    """Declared teams' ids by name (one alias lookup); None for a team not created yet."""
    if not manifest.teams:
        return {}
    found = {
        alias_key(str(h["userName"])): str(h["ownerId"])
        for h in api.headers_by_alias([t.name for t in manifest.teams])
        if not h.get("isIndividual")
    }
    return {
        t.name: found.get(alias_key(t.name)) for t in sorted(manifest.teams, key=lambda t: t.name)
    }


def _parallel(api: SynapseAPI, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    if len(items) <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=max(1, api.t.options.max_concurrency)) as pool:
        return list(pool.map(fn, items))


_ENV_UNSAFE = re.compile(r"[^A-Z0-9]+")


def env_name(prefix: str, address: str) -> str:
    """``project:HTAN Alpha/folder:Raw Data`` → ``SYNAPSE_ID_HTAN_ALPHA__RAW_DATA``: kinds
    dropped, ``/`` becomes ``__``, anything else not a letter or digit ``_``."""
    segments = Address.parse(address).names
    parts = [_ENV_UNSAFE.sub("_", part.upper()).strip("_") for part in segments]
    return f"{prefix}_" + "__".join(parts)


def render_outputs(outputs: Outputs, fmt: str) -> str:
    """The outputs as JSON, YAML or ``NAME=value`` lines for a shell or ``$GITHUB_ENV``."""
    data = outputs.to_json()
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    if fmt == "yaml":
        return str(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    if fmt != "env":
        raise ValueError(fmt)
    lines: dict[str, str] = {}
    sources: dict[str, str] = {}
    pairs = (
        [("SYNAPSE_ID", address, value) for address, value in outputs.ids.items()]
        + [("SYNAPSE_STORAGE", name, value) for name, value in outputs.storage_locations.items()]
        + [("SYNAPSE_TEAM", f"team:{name}", value) for name, value in outputs.teams.items()]
    )
    for prefix, address, value in pairs:
        name = env_name(prefix, address)
        if name in sources:
            raise PlanError(
                f"outputs {sources[name]!r} and {address!r} both become {name} in env format",
                hint="use --format json or yaml, or rename one of them",
            )
        sources[name] = address
        lines[name] = "" if value is None else str(value)
    return "".join(f"{name}={value}\n" for name, value in lines.items())
