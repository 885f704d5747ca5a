"""Storage locations (immutable in Synapse: created, or replaced by a new one) and a container's
upload destinations (the project setting listing its locations, first is the default).

Both are diffed here against what :func:`synapse_declare.storage.read_storage` read: a declared
location is *matched* against the caller's locations by its settings (Synapse de-duplicates
identical settings per creator); no match means a new one, shown as a replacement (``±``) when a
container's current destination holds a location of the same kind at that position. The plan
refuses, before anything is written, what Synapse would refuse mid-apply (owner.txt, STS on a
non-empty folder, STS off on a folder holding files).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..client.records import ProjectSetting, StorageLocation
from ..client.s3 import owner_txt_key
from ..errors import BadRequest, PolicyViolation, PreconditionFailed
from ..model import ContainerSpec, Manifest, StorageLocationSpec
from ..plan import Action, Change, FieldChange, Resource
from ..storage import (
    DEFAULT_LOCATION_ID,
    KIND_OF,
    LiveStorage,
    comparable,
    display_setting,
    has_sts,
    match_locations_by_body,
    setting_body,
    used_locations,
)
from .base import ApplyContext, BundleFlags, Operation, PlanContext, storage_address, sub_address
from .exporting import ExportContext, slug
from .payloads import LocationDesired, LocationPrior, UploadDesired, UploadPrior

if TYPE_CHECKING:
    from ..state import LiveContainer, LiveState


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

    def observe(self, spec: ContainerSpec, live: LiveContainer | None) -> Mapping[str, str | None]:
        return {}  # nothing per entity: see observe_storage

    def observe_storage(self, manifest: Manifest, storage: LiveStorage) -> dict[str, str | None]:
        """Each declared location's matched id (None: none matched, the plan creates it)."""
        return {
            storage_address(name): None
            if (found := storage.matched.get(name)) is None
            else str(found)
            for name in sorted(manifest.storage_locations)
        }

    def plan(self, spec: Manifest, live: LiveState, ctx: PlanContext) -> list[Change]:
        """The declared locations that do not exist yet (created, or replacing one), each after
        its owner.txt pre-flight."""
        changes = plan_locations(spec, live.storage)
        for change in changes:
            name = str(change.desired["name"])
            check_owner_txt(name, spec.storage_locations[name], live, ctx)
        warn_unreadable(spec, live, ctx)
        return changes

    def needs_certification(self, change: Change) -> bool:
        return False  # any user may create a storage location

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

    def observe(self, spec: ContainerSpec, live: LiveContainer | None) -> Mapping[str, str | None]:
        return {}  # read after the entity walk: see observe_storage

    def observe_storage(self, manifest: Manifest, storage: LiveStorage) -> dict[str, str | None]:
        """Each read upload setting's etag (None: the container had none)."""
        return {
            sub_address(address, "upload"): None if setting is None else str(setting.get("etag"))
            for address, setting in sorted(storage.settings.items())
        }

    def plan(self, spec: ContainerSpec, live: LiveState, ctx: PlanContext) -> list[Change]:
        current = live.containers.get(spec.address)
        change = plan_upload_destination(
            spec, current.syn_id if current is not None else None, live.storage, ctx.manifest
        )
        return [] if change is None else [change]

    def needs_certification(self, change: Change) -> bool:
        return False  # a container's upload setting needs its CHANGE_SETTINGS, not the quiz

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
        wanted = display_setting(body)
        previous = _similar(name, spec, manifest, live)
        if previous is not None:
            before = display_setting(previous)
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
        if setting is not None and comparable(setting)["type"] == spec.type:
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
    sts_now = current is not None and has_sts(current, live)
    children = live.children.get(spec.address, 0)
    if wants_sts and not sts_now and children:
        raise PolicyViolation(
            f"{spec.address}: Synapse only enables STS on an empty folder, and this folder has "
            f"{children} item(s)",
            location=spec.location,
            hint=(
                "declare a new folder with this STS storage and `move_files_from: "
                f"{spec.name}` to move the files in (same Synapse ids), or empty the folder"
            ),
        )
    if sts_now and not wants_sts:
        raise PolicyViolation(
            f"{spec.address}: Synapse does not let an STS-enabled folder change to non-STS "
            "storage while it holds files",
            location=spec.location,
            hint="keep its STS storage location, or move its files elsewhere first",
        )


def check_owner_txt(
    name: str, declared: StorageLocationSpec, live: LiveState, ctx: PlanContext
) -> None:
    """An external bucket must name its owner in owner.txt, or Synapse refuses to create the
    location: refused here when this machine could read the bucket and found it wrong, a warning
    when it could not look (no AWS access here; Synapse still checks at apply)."""
    if declared.type != "external_s3":
        return
    if name not in live.storage.owner_checks:
        ctx.warnings.append(
            f"storage location {name!r}: owner.txt in s3://{declared.bucket} was not checked "
            "here (no AWS access from this machine); Synapse checks it when apply creates "
            "the location"
        )
        return
    problem = live.storage.owner_checks[name]
    if problem is not None:
        raise PolicyViolation(
            f"storage location {name!r}: {problem}, so Synapse would refuse to create it",
            location=declared.location,
            hint=owner_hint(declared, live.target.user_name, live.target.user_id),
        )


def warn_unreadable(manifest: Manifest, live: LiveState, ctx: PlanContext) -> None:
    """Migration destinations this machine cannot read: apply's verification would refuse
    before its first write, so the plan says it now (the reader tried them)."""
    for name, problem in sorted(live.unreadable.items()):
        bucket = manifest.storage_locations[name].bucket
        ctx.warnings.append(
            f"storage location {name!r}: apply verifies each copy by reading s3://{bucket} with "
            f"this machine's AWS credentials, which cannot read it ({problem}); apply refuses "
            "before changing anything unless it runs where the bucket is readable or with "
            "--verify none"
        )


def owner_hint(spec: StorageLocationSpec, user_name: str, user_id: int) -> str:
    key = owner_txt_key(spec.base_key)
    endpoint = f" --endpoint-url {spec.endpoint_url}" if spec.endpoint_url else ""
    return (
        f"write s3://{spec.bucket}/{key} containing one line with your Synapse user name "
        f"or id, e.g.: echo {user_name} | aws s3 cp - s3://{spec.bucket}/{key}{endpoint} "
        f"(accepted: {user_name}, {user_id}, your email, or a team id you belong to)"
    )


STORAGE_LOCATION = StorageLocationKind()
UPLOAD_DESTINATION = UploadDestinationKind()
