"""Storage locations, upload destinations and migrations: the live state plan reads (the diffs
are the kinds' own, in :mod:`synapse_declare.resources.storage` and ``resources.migration``).

Synapse storage locations are immutable and de-duplicated per creator (identical settings return
the existing location). So a declared location is *matched* against the caller's locations by its
settings: a match is reused; no match means a new location — and when the entity's current upload
destination points at a location of the same kind and bucket, the plan shows it as a replacement
(``±``) with the settings that differ, then repoints the destinations. Nothing is deleted (Synapse
has no delete for storage locations).

``synapse_s3`` with no settings is Synapse's default storage (location id 1). The plan refuses,
before anything is written, what Synapse would refuse mid-apply: a missing or wrong ``owner.txt``
(checked with boto3 where AWS credentials allow), STS on a non-empty folder, turning STS off on a
non-empty folder.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .client.records import as_json
from .client.synapse import SynapseAPI
from .model import Manifest, StorageLocationSpec

log = logging.getLogger(__name__)

PROJECT_MODEL = "org.sagebionetworks.repo.model.project."
CONCRETE = {
    "synapse_s3": PROJECT_MODEL + "S3StorageLocationSetting",
    "external_s3": PROJECT_MODEL + "ExternalS3StorageLocationSetting",
    "external_google_cloud": PROJECT_MODEL + "ExternalGoogleCloudStorageLocationSetting",
    "external_object_store": PROJECT_MODEL + "ExternalObjectStorageLocationSetting",
}
KIND_OF = {v: k for k, v in CONCRETE.items()}
DEFAULT_LOCATION_ID = 1


def is_default(spec: StorageLocationSpec) -> bool:
    """``synapse_s3`` with no settings names Synapse's default storage (id 1)."""
    return spec.type == "synapse_s3" and not (spec.sts_enabled or spec.description or spec.banner)


def _base_key(value: str | None) -> str | None:
    """Synapse's sanitizeBaseKey: strip '/', spaces and tabs at both ends; blank → None."""
    if value is None:
        return None
    stripped = value.strip("/ \t")
    return stripped or None


def setting_body(spec: StorageLocationSpec) -> dict[str, Any]:
    """The POST /storageLocation body for a declared location."""
    body: dict[str, Any] = {"concreteType": CONCRETE[spec.type]}
    if spec.type in ("synapse_s3", "external_s3", "external_object_store"):
        body["uploadType"] = "S3"
    if spec.type == "external_google_cloud":
        body["uploadType"] = "GOOGLECLOUDSTORAGE"
    for key, value in (
        ("bucket", spec.bucket),
        ("baseKey", _base_key(spec.base_key)),
        ("stsEnabled", spec.sts_enabled),
        ("endpointUrl", spec.endpoint_url),
        ("description", spec.description),
        ("banner", spec.banner),
    ):
        if value is not None:
            body[key] = value
    return body


def comparable(setting: Mapping[str, Any]) -> dict[str, Any]:
    """A location setting in the terms a declaration is compared in (Synapse's generated parts
    left out)."""
    kind = KIND_OF.get(str(setting.get("concreteType")), "?")
    base_key = setting.get("baseKey")
    if kind == "synapse_s3":
        base_key = None  # Synapse generates "<user>/<uuid>" for STS-enabled Synapse storage
    return {
        "type": kind,
        "bucket": setting.get("bucket"),
        "base_key": _base_key(base_key),
        "sts_enabled": bool(setting.get("stsEnabled")),
        "endpoint_url": (setting.get("endpointUrl") or None),
        "description": setting.get("description"),
        "banner": setting.get("banner"),
    }


def display_setting(setting: Mapping[str, Any]) -> dict[str, Any]:
    """The settings a plan shows: the comparable ones that are set."""
    return {k: v for k, v in comparable(setting).items() if v not in (None, False)}


@dataclass
class LiveStorage:
    """What the plan read about storage."""

    locations: dict[int, dict[str, Any]] = field(default_factory=dict)  # the caller's, by id
    matched: dict[str, int] = field(default_factory=dict)  # declared name → existing id
    settings: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # address → setting
    children: dict[str, int] = field(default_factory=dict)  # address → child count (STS checks)
    owner_checks: dict[str, str | None] = field(default_factory=dict)  # name → problem or None
    migrations: dict[str, Any] = field(default_factory=dict)  # address → MigrationIndex
    endpoints: dict[str, str | None] = field(default_factory=dict)  # name → S3 endpoint URL
    moves: dict[str, tuple[str, Any]] = field(default_factory=dict)  # address → (source, index)


def used_locations(manifest: Manifest) -> set[str]:
    names: set[str] = set()
    for spec in manifest.walk():
        names.update(spec.storage or ())
        if spec.migrate_existing is not None:
            names.add(spec.migrate_existing.to)
    return names


def match_locations(manifest: Manifest, mine: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Declared name → the newest of the caller's locations with identical settings."""
    newest_first = sorted(mine, key=lambda s: int(s.get("storageLocationId", 0)), reverse=True)
    matched: dict[str, int] = {}
    for name, spec in manifest.storage_locations.items():
        if is_default(spec):
            matched[name] = DEFAULT_LOCATION_ID
            continue
        wanted = comparable(setting_body(spec))
        for setting in newest_first:
            if comparable(setting) == wanted:
                matched[name] = int(setting["storageLocationId"])
                break
    return matched


def match_locations_by_body(
    body: Mapping[str, Any], mine: Iterable[Mapping[str, Any]]
) -> dict[str, Any] | None:
    """The newest of the caller's locations whose settings equal a POST body's."""
    wanted = comparable(body)
    for setting in sorted(mine, key=lambda s: int(s.get("storageLocationId", 0)), reverse=True):
        if comparable(setting) == wanted:
            return dict(setting)
    return None


def read_storage(
    api: SynapseAPI,
    manifest: Manifest,
    container_ids: Mapping[str, str | None],
) -> LiveStorage:
    """Read the storage state the manifest addresses (only when it declares any)."""
    live = LiveStorage()
    if not manifest.storage_locations:
        return live
    needs_list = any(not is_default(s) for s in manifest.storage_locations.values())
    if needs_list:
        for setting in api.my_storage_locations():
            live.locations[int(setting["storageLocationId"])] = as_json(setting)
    live.matched = match_locations(manifest, live.locations.values())
    live.endpoints = {n: s.endpoint_url for n, s in manifest.storage_locations.items()}
    for spec in manifest.walk():
        syn_id = container_ids.get(spec.address)
        if syn_id is None or spec.storage is None:
            continue
        live.settings[spec.address] = as_json(api.upload_setting(syn_id))
        if any(manifest.storage_locations[n].sts_enabled for n in spec.storage):
            current = live.settings[spec.address]
            if current is None or not has_sts(current, live):
                live.children[spec.address] = api.count_children(
                    syn_id, ["file", "folder", "link", "table", "entityview"]
                )
    return live


def has_sts(setting: Mapping[str, Any], live: LiveStorage) -> bool:
    """Whether an upload setting lists an STS-enabled location of the caller's."""
    return any(
        bool(live.locations.get(int(i), {}).get("stsEnabled")) for i in setting.get("locations", [])
    )
