"""Storage locations, upload destinations and migrations: live state and planned changes.

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

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .client.records import as_json
from .client.s3 import owner_txt_key
from .client.synapse import SynapseAPI
from .errors import PolicyViolation
from .model import ContainerSpec, Manifest, StorageLocationSpec
from .plan import Action, Change, FieldChange, Resource
from .resources.base import storage_address, sub_address
from .resources.payloads import LocationDesired, LocationPrior, UploadDesired, UploadPrior

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


def _comparable(setting: Mapping[str, Any]) -> dict[str, Any]:
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


def _display(setting: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in _comparable(setting).items() if v not in (None, False)}


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
        wanted = _comparable(setting_body(spec))
        for setting in newest_first:
            if _comparable(setting) == wanted:
                matched[name] = int(setting["storageLocationId"])
                break
    return matched


def match_locations_by_body(
    body: Mapping[str, Any], mine: Iterable[Mapping[str, Any]]
) -> dict[str, Any] | None:
    """The newest of the caller's locations whose settings equal a POST body's."""
    wanted = _comparable(body)
    for setting in sorted(mine, key=lambda s: int(s.get("storageLocationId", 0)), reverse=True):
        if _comparable(setting) == wanted:
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
            if current is None or not _has_sts(current, live):
                live.children[spec.address] = api.count_children(
                    syn_id, ["file", "folder", "link", "table", "entityview"]
                )
    return live


def _has_sts(setting: Mapping[str, Any], live: LiveStorage) -> bool:
    return any(
        bool(live.locations.get(int(i), {}).get("stsEnabled")) for i in setting.get("locations", [])
    )


def observe(manifest: Manifest, live: LiveStorage, observed: dict[str, str | None]) -> None:
    for name in sorted(manifest.storage_locations):
        found = live.matched.get(name)
        observed[storage_address(name)] = None if found is None else str(found)
    for address, setting in sorted(live.settings.items()):
        observed[sub_address(address, "upload")] = (
            None if setting is None else str(setting.get("etag"))
        )
    moved = {sub_address(a, "move"): index for a, (_, index) in live.moves.items()}
    for address, index in sorted({**live.migrations, **moved}.items()):
        digest = hashlib.sha256(
            json.dumps(index.to_json(), sort_keys=True).encode("utf-8")
        ).hexdigest()[:16]
        observed[sub_address(address, "migration")] = digest


# ---------------------------------------------------------------------------------------------
# Planning


def plan_locations(manifest: Manifest, live: LiveStorage) -> list[Change]:
    """Create (or replace) the declared locations that do not exist yet."""
    changes: list[Change] = []
    used = used_locations(manifest)
    for name in sorted(manifest.storage_locations):
        spec = manifest.storage_locations[name]
        if name in live.matched or name not in used:
            continue
        body = setting_body(spec)
        wanted = _display(body)
        previous = _similar(name, spec, manifest, live)
        if previous is not None:
            before = _display(previous)
            fields = tuple(
                FieldChange(key, before.get(key), wanted.get(key))
                for key in sorted(set(before) | set(wanted))
                if before.get(key) != wanted.get(key)
            )
            changes.append(
                Change(
                    address=storage_address(name),
                    resource=Resource.STORAGE_LOCATION,
                    action=Action.REPLACE,
                    syn_id=None,
                    fields=fields,
                    desired=LocationDesired(name, body).to_json(),
                    prior=LocationPrior(int(previous["storageLocationId"])).to_json(),
                    reason=(
                        f"storage locations are immutable: a new location replaces "
                        f"{previous['storageLocationId']} in the upload destinations below"
                    ),
                )
            )
        else:
            changes.append(
                Change(
                    address=storage_address(name),
                    resource=Resource.STORAGE_LOCATION,
                    action=Action.CREATE,
                    syn_id=None,
                    fields=tuple(FieldChange(k, None, v) for k, v in wanted.items()),
                    desired=LocationDesired(name, body).to_json(),
                    reason="no existing location of yours has these settings",
                )
            )
    return changes


def _similar(
    name: str, spec: StorageLocationSpec, manifest: Manifest, live: LiveStorage
) -> dict[str, Any] | None:
    """The location this declared one replaces: the one at the same position in the current
    upload destinations of the containers that list it (of the same kind)."""
    for container in manifest.walk():
        if container.storage is None or name not in container.storage:
            continue
        current = live.settings.get(container.address)
        if current is None:
            continue
        position = container.storage.index(name)
        ids = [int(i) for i in current.get("locations", [])]
        if position >= len(ids):
            continue
        setting = live.locations.get(ids[position])
        if setting is not None and _comparable(setting)["type"] == spec.type:
            return setting
    return None


def location_ref(name: str, live: LiveStorage) -> int | str:
    """An existing id, or ``"new:NAME"`` for a location this apply creates."""
    found = live.matched.get(name)
    return found if found is not None else f"new:{name}"


def plan_upload_destination(
    spec: ContainerSpec, syn_id: str | None, live: LiveStorage, manifest: Manifest
) -> Change | None:
    if spec.storage is None:
        return None
    address = sub_address(spec.address, "upload")
    wanted = [location_ref(n, live) for n in spec.storage]
    depends = [spec.address] + [storage_address(n) for n in spec.storage if n not in live.matched]
    shown_after = [
        f"{n} (new)" if n not in live.matched else f"{n} (id {live.matched[n]})"
        for n in spec.storage
    ]
    current = live.settings.get(spec.address) if syn_id is not None else None
    if syn_id is not None:
        _check_sts_transition(spec, current, live, manifest)
    if current is None:
        return Change(
            address=address,
            resource=Resource.UPLOAD_DESTINATION,
            action=Action.CREATE,
            syn_id=None,
            fields=(FieldChange("locations", None, shown_after),),
            depends_on=tuple(depends),
            desired=UploadDesired(spec.address, tuple(wanted)).to_json(),
            reason="first is the default upload destination",
        )
    have = [int(i) for i in current.get("locations", [])]
    if have == wanted:
        return Change(
            address=address,
            resource=Resource.UPLOAD_DESTINATION,
            action=Action.NO_OP,
            syn_id=str(current.get("id")),
            depends_on=tuple(depends),
            desired=UploadDesired(spec.address, tuple(wanted)).to_json(),
            prior=UploadPrior(current.get("etag"), current).to_json(),
            reason="matches the manifest",
        )
    return Change(
        address=address,
        resource=Resource.UPLOAD_DESTINATION,
        action=Action.UPDATE,
        syn_id=str(current.get("id")),
        fields=(FieldChange("locations", have, shown_after),),
        depends_on=tuple(depends),
        desired=UploadDesired(spec.address, tuple(wanted)).to_json(),
        prior=UploadPrior(current.get("etag"), current).to_json(),
        reason="differs from the manifest",
    )


def _check_sts_transition(
    spec: ContainerSpec,
    current: Mapping[str, Any] | None,
    live: LiveStorage,
    manifest: Manifest,
) -> None:
    assert spec.storage is not None
    wants_sts = any(manifest.storage_locations[n].sts_enabled for n in spec.storage)
    has_sts = current is not None and _has_sts(current, live)
    children = live.children.get(spec.address, 0)
    if wants_sts and not has_sts and children:
        raise PolicyViolation(
            f"{spec.address}: Synapse only enables STS on an empty folder, and this folder has "
            f"{children} item(s)",
            location=spec.location,
            hint=(
                "declare a new folder with this STS storage and `move_files_from: "
                f"{spec.name}` to move the files in (same Synapse ids), or empty the folder"
            ),
        )
    if has_sts and not wants_sts:
        raise PolicyViolation(
            f"{spec.address}: Synapse does not let an STS-enabled folder change to non-STS "
            "storage while it holds files",
            location=spec.location,
            hint="keep its STS storage location, or move its files elsewhere first",
        )


# ---------------------------------------------------------------------------------------------
# owner.txt pre-flight


def owner_hint(spec: StorageLocationSpec, user_name: str, user_id: int) -> str:
    key = owner_txt_key(spec.base_key)
    endpoint = f" --endpoint-url {spec.endpoint_url}" if spec.endpoint_url else ""
    return (
        f"write s3://{spec.bucket}/{key} containing one line with your Synapse user name "
        f"or id, e.g.: echo {user_name} | aws s3 cp - s3://{spec.bucket}/{key}{endpoint} "
        f"(accepted: {user_name}, {user_id}, your email, or a team id you belong to)"
    )
