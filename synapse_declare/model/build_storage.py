"""The storage builder: storage locations, a container's upload destinations, STS folders.

The rules are what Synapse's storage-location processors and project-settings validators refuse
(synapse-api.md §6.2, §7.2, §8.3), checked before any plan proposes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from synapse_declare.manifest import JsonPath

from .build_core import BuildContext, destination_names, did_you_mean
from .names import BUCKET_RE, endpoint_url_problem
from .specs import EntityKind, StorageLocationSpec

MAX_UPLOAD_DESTINATIONS = 10


def build_storage_locations(
    ctx: BuildContext, raw: Mapping[str, Any]
) -> dict[str, StorageLocationSpec]:
    """The top-level ``storage_locations:``; records them on ``ctx`` for the containers."""
    ctx.storage_specs = dict(raw)
    out: dict[str, StorageLocationSpec] = {}
    for name, spec in raw.items():
        _location_rules(ctx, name, spec)
        out[name] = StorageLocationSpec(
            name=name,
            type=spec["type"],
            bucket=spec.get("bucket"),
            base_key=spec.get("base_key"),
            sts_enabled=spec.get("sts_enabled"),
            endpoint_url=spec.get("endpoint_url"),
            description=spec.get("description"),
            banner=spec.get("banner"),
            location=ctx.at(("storage_locations", name), key=True),
        )
    ctx.storage_names = frozenset(out)
    return out


def _location_rules(ctx: BuildContext, name: str, spec: Mapping[str, Any]) -> None:
    """What Synapse's storage-location processors would refuse (synapse-api.md §6.2)."""
    path: JsonPath = ("storage_locations", name)
    kind = spec["type"]
    needs_bucket = kind in ("external_s3", "external_google_cloud", "external_object_store")
    if needs_bucket and not spec.get("bucket"):
        ctx.error(path, f"an {kind} storage location needs a bucket", "add `bucket: NAME`")
    bucket = spec.get("bucket")
    if bucket and not BUCKET_RE.match(bucket):
        ctx.error(
            (*path, "bucket"),
            f"invalid bucket name {bucket!r}",
            "S3/GCS bucket names are 3-63 characters of lower-case letters, digits, dots and "
            "hyphens, starting and ending with a letter or digit",
        )
    if kind == "synapse_s3":
        for field in ("bucket", "base_key", "endpoint_url"):
            if spec.get(field) is not None:
                ctx.error(
                    (*path, field),
                    f"{field} cannot be set on a synapse_s3 location: Synapse chooses it",
                    "remove it, or use type: external_s3 for your own bucket",
                )
    endpoint = spec.get("endpoint_url")
    if endpoint is not None:
        problem = endpoint_url_problem(str(endpoint))
        if problem is not None:
            ctx.error((*path, "endpoint_url"), *problem)
    if kind == "external_object_store" and not spec.get("endpoint_url"):
        ctx.error(
            path,
            "an external_object_store location needs an endpoint_url",
            "add `endpoint_url: https://...` (the S3-compatible service)",
        )
    if spec.get("sts_enabled") and kind not in ("synapse_s3", "external_s3"):
        ctx.error(
            (*path, "sts_enabled"),
            f"STS is only available for synapse_s3 and external_s3 locations, not {kind}",
            "remove sts_enabled",
        )


def sts_names(ctx: BuildContext, names: list[str]) -> list[str]:
    """The STS-enabled locations among ``names`` (unknown names are not)."""
    return [n for n in names if (ctx.storage_specs.get(n) or {}).get("sts_enabled")]


def destination_rules(
    ctx: BuildContext, raw: Mapping[str, Any], path: JsonPath, kind: EntityKind
) -> None:
    """Upload-destination rules Synapse enforces (synapse-api.md §7.2, §8.3)."""
    names = destination_names(raw)
    spath: JsonPath = (*path, "storage")
    if len(names) > MAX_UPLOAD_DESTINATIONS:
        ctx.error(
            spath,
            f"{len(names)} upload destinations; Synapse allows at most 10",
            "keep the 10 you need; the first is the default",
        )
    sts = sts_names(ctx, names)
    if sts and kind is EntityKind.PROJECT:
        ctx.error(
            spath,
            f"STS-enabled storage location {sts[0]!r} cannot be a project's upload destination",
            "Synapse allows STS only on folders: put it on a (new, empty) folder",
        )
    if sts and len(names) > 1:
        ctx.error(
            spath,
            f"STS-enabled storage location {sts[0]!r} must be the folder's only upload destination",
            "an STS-enabled folder cannot add other upload destinations",
        )
    if names and ctx.sts_above:
        ctx.error(
            spath,
            f"cannot set upload destinations inside an STS-enabled folder ({ctx.sts_above[-1]})",
            "Synapse does not allow overriding storage below an STS-enabled folder; remove "
            "`storage` here",
        )


def enter_sts_folder(
    ctx: BuildContext, raw: Mapping[str, Any], kind: EntityKind, name: str
) -> bool:
    """Note a folder whose own destination is STS-enabled while its children are built (no
    child may set destinations); ``True`` when :func:`leave_sts_folder` must follow."""
    # A project cannot be STS-enabled (reported by destination_rules); only folders start one.
    own_sts = sts_names(ctx, destination_names(raw)) if kind is EntityKind.FOLDER else []
    if own_sts:
        ctx.sts_above.append(f"{name!r} uses {own_sts[0]!r}")
    return bool(own_sts)


def leave_sts_folder(ctx: BuildContext) -> None:
    ctx.sts_above.pop()


def build_destinations(
    ctx: BuildContext, raw: Mapping[str, Any], path: JsonPath
) -> tuple[str, ...] | None:
    """``storage:`` as the spec holds it (``None``: unmanaged); unknown names are errors."""
    if "storage" not in raw:
        return None
    refs = raw["storage"]
    if isinstance(refs, str):
        storage_ref(ctx, refs, (*path, "storage"))
        return (refs,)
    for i, ref in enumerate(refs):
        storage_ref(ctx, ref, (*path, "storage", i))
    return tuple(refs)


def storage_ref(ctx: BuildContext, name: str, path: JsonPath) -> None:
    """A name that must be one of the manifest's storage locations."""
    if name in ctx.storage_names:
        return
    if ctx.storage_names:
        known = ", ".join(sorted(ctx.storage_names))
        hint = f"{did_you_mean(name, ctx.storage_names)}defined storage locations: {known}"
    else:
        hint = "define it under the top-level storage_locations: mapping"
    ctx.error(path, f"unknown storage location {name!r}", hint)
