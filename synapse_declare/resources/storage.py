"""Storage locations (immutable in Synapse: created, or replaced by a new one) and a container's
upload destinations (the project setting listing its locations, first is the default)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..client.records import ProjectSetting, StorageLocation
from ..errors import BadRequest, PreconditionFailed
from ..model import ContainerSpec
from ..plan import Action, Change, Resource
from ..storage import DEFAULT_LOCATION_ID, KIND_OF, match_locations_by_body
from .base import ApplyContext, BundleFlags, Operation
from .exporting import ExportContext, slug
from .payloads import LocationDesired, UploadDesired, UploadPrior


class StorageLocationKind:
    name = "storage_location"
    resources = (Resource.STORAGE_LOCATION,)
    operations = frozenset({Operation.PLAN, Operation.APPLY, Operation.EXPORT})

    def label(self, resource: Resource) -> str:
        return "storage location"

    def export(self, setting: dict[str, Any]) -> dict[str, Any] | None:
        """A live location setting as a ``storage_locations:`` entry; None for a kind the
        manifest cannot declare (its ``concreteType`` is not one of the four)."""
        kind = KIND_OF.get(str(setting.get("concreteType")))
        if kind is None:
            return None
        data: dict[str, Any] = {"type": kind}
        fields = [
            ("bucket", "bucket"),
            ("baseKey", "base_key"),
            ("endpointUrl", "endpoint_url"),
            ("stsEnabled", "sts_enabled"),
            ("description", "description"),
            ("banner", "banner"),
        ]
        for wire, key in fields:
            value = setting.get(wire)
            if kind == "synapse_s3" and wire == "baseKey":
                continue  # Synapse generates it for STS-enabled Synapse storage
            if value not in (None, "", False):
                data[key] = value
        return data

    def export_name(self, setting: dict[str, Any], taken: set[str]) -> str:
        """A readable, unique name: the bucket (and base key), else ``synapse-storage``."""
        if int(setting.get("storageLocationId", 0)) == DEFAULT_LOCATION_ID:
            return slug("synapse-default", taken)
        parts = [str(setting.get("bucket") or "synapse-storage")]
        if setting.get("baseKey") and KIND_OF.get(str(setting.get("concreteType"))) != "synapse_s3":
            parts.append(str(setting["baseKey"]))
        if setting.get("stsEnabled"):
            parts.append("sts")
        return slug("-".join(parts), taken)

    def bundle_flags(self, spec: ContainerSpec, own_acl: bool) -> BundleFlags:
        return BundleFlags()  # read from the caller's location list, not from entities

    def record_existing(self, ctx: ApplyContext, change: Change) -> None:
        if change.syn_id is not None:
            ctx.record(change.address, change.syn_id)

    def apply(self, ctx: ApplyContext, change: Change) -> str:
        desired = LocationDesired.from_json(change.desired)
        setting, name = dict(desired.setting), desired.name

        def attempt() -> StorageLocation:
            return ctx.api.create_storage_location(setting)

        def check() -> dict[str, Any] | None:
            # Synapse de-duplicates identical settings per creator, so a location that was
            # created before the response got lost is found by its settings.
            return match_locations_by_body(setting, ctx.api.my_storage_locations())

        created = ctx.resolve(f"create storage location {name}", attempt, check)
        location_id = int(created["storageLocationId"])
        with ctx.lock:
            ctx.locations[name] = location_id
        return f"storage location {location_id}"


class UploadDestinationKind:
    name = "upload_destination"
    resources = (Resource.UPLOAD_DESTINATION,)
    operations = frozenset({Operation.PLAN, Operation.APPLY, Operation.EXPORT})

    def label(self, resource: Resource) -> str:
        return "upload destination"

    def export(self, ctx: ExportContext, setting: dict[str, Any]) -> str | list[str]:
        """A container's upload setting as ``storage:`` (one name, or the list, first is the
        default), by the names the storage locations were exported under."""
        names = [ctx.location_names[int(i)] for i in setting.get("locations", [])]
        return names[0] if len(names) == 1 else names

    def bundle_flags(self, spec: ContainerSpec, own_acl: bool) -> BundleFlags:
        return BundleFlags()  # one projectSettings read per container with `storage:`

    def record_existing(self, ctx: ApplyContext, change: Change) -> None:
        if change.syn_id is not None:
            ctx.record(change.address, change.syn_id)

    def apply(self, ctx: ApplyContext, change: Change) -> str:
        desired = UploadDesired.from_json(change.desired)
        prior = UploadPrior.from_json(change.prior) if change.action is Action.UPDATE else None
        container_id = ctx.id_of(desired.container)
        wanted = _location_ids(ctx, desired.locations)

        def check() -> ProjectSetting | None:
            current = ctx.api.upload_setting(container_id)
            if current is not None and [int(i) for i in current.get("locations", [])] == wanted:
                return current
            if change.action is Action.CREATE and current is None:
                return None
            if prior is not None and current is not None and current.get("etag") == prior.etag:
                return None
            raise ctx.conflict(change, "the upload destinations changed meanwhile")

        if change.action is Action.CREATE:

            def create() -> ProjectSetting:
                try:
                    return ctx.api.create_upload_setting(container_id, wanted)
                except BadRequest as err:
                    if "already exists" in err.reason:
                        raise ctx.conflict(change, err.reason) from err
                    raise

            ctx.resolve(f"set upload destinations of {change.address}", create, check)
        else:
            assert prior is not None  # an update was planned from the setting it read
            setting = {**dict(prior.setting), "locations": wanted}

            def update() -> dict[str, Any]:
                try:
                    ctx.api.update_upload_setting(setting)
                except PreconditionFailed as err:
                    raise ctx.conflict(change, "the upload destinations changed (412)") from err
                return setting

            ctx.resolve(f"update upload destinations of {change.address}", update, check)
        return "locations " + ", ".join(str(i) for i in wanted)


def _location_ids(ctx: ApplyContext, refs: Sequence[int | str]) -> list[int]:
    """Plan references to locations: an existing id, or ``new:NAME`` for one this run made."""
    ids: list[int] = []
    with ctx.lock:
        for ref in refs:
            if isinstance(ref, str) and ref.startswith("new:"):
                ids.append(ctx.locations[ref[4:]])
            else:
                ids.append(int(ref))
    return ids


STORAGE_LOCATION = StorageLocationKind()
UPLOAD_DESTINATION = UploadDestinationKind()
