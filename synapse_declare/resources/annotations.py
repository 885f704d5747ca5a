"""The annotations aspect of a container: read in the entity's bundle, diffed here, written in
the container's own change (in the create call, or after the entity fields in its etag-guarded
update) — an aspect, not a kind: it has no change of its own.

Only the keys the manifest declares are managed; other keys are left alone. A managed key's type
and values must match exactly (values in order), as Synapse values: other clients may spell the
same value differently. synapse-declare's own keys (the managed marker, a folder's address, the
protection flag: see :mod:`synapse_declare.lifecycle`) are added here too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..lifecycle import ADDRESS_KEY, MARKER_KEY, PROTECT_KEY
from ..model import ContainerSpec, EntityKind
from ..plan import FieldChange
from .base import BundleFlags

if TYPE_CHECKING:
    from ..state import LiveContainer

MARKER_VALUE = {"type": "BOOLEAN", "value": ["true"]}


class AnnotationsAspect:
    """Managed annotation keys: read in the entity's bundle, written in the container's update
    (after the entity fields, guarded by the etag that write returned)."""

    name = "annotations"

    def bundle_flags(self, spec: ContainerSpec, own_acl: bool) -> BundleFlags:
        return BundleFlags(
            annotations=spec.kind.value == "project"
            or spec.annotations is not None
            or spec.protect
            or spec.unprotect
        )

    def observe(self, spec: ContainerSpec, live: LiveContainer | None) -> dict[str, str | None]:
        return {}  # guarded by the container's own etag (see the container kind)


def desired_annotations(
    spec: ContainerSpec, *, exists: bool, adopt: bool = False
) -> dict[str, Any] | None:
    """The annotation keys this plan manages on ``spec``, as Synapse values; None when the
    manifest manages none (and no marker is due). ``adopt``: an existing folder adopted with its
    project gets the marker and its address too."""
    declared = _declared(spec)
    is_project = spec.kind is EntityKind.PROJECT
    if is_project or not exists or adopt:
        # The marker says synapse-declare created (or adopted) it: only such folders are pruned.
        # A folder gets it in its create call (no extra write), or in its adoption's update.
        declared = {**(declared or {}), MARKER_KEY: MARKER_VALUE}
        if not is_project:
            # Recognises the folder if it is renamed by hand (read only when its name is missing).
            declared[ADDRESS_KEY] = {"type": "STRING", "value": [spec.address]}
    if spec.protect:
        # Kept on the entity, so removing the manifest entry cannot delete it (see pruning.py).
        declared = {**(declared or {}), PROTECT_KEY: MARKER_VALUE}
    return declared


def _declared(spec: ContainerSpec) -> dict[str, Any] | None:
    if spec.annotations is None:
        return None
    return {
        key: {"type": value.type.value, "value": list(value.values)}
        for key, value in sorted(spec.annotations.items())
    }


def created_fields(desired: Mapping[str, Any] | None) -> list[FieldChange]:
    """``+ annotations.KEY`` for each key a create call writes."""
    return [
        FieldChange(f"annotations.{key}", None, annotation_display(value))
        for key, value in (desired or {}).items()
    ]


def annotation_changes(
    live: Mapping[str, Any], desired: Mapping[str, Any]
) -> tuple[list[FieldChange], dict[str, Any] | None]:
    """The fields that differ, and the whole annotation map to write (live keys kept, managed
    keys replaced), or None when nothing is to be written."""
    fields: list[FieldChange] = []
    merged = dict(live)
    for key, value in desired.items():
        before = live.get(key)
        if before is not None and same_annotation(before, value):
            continue  # the same value, perhaps spelled differently by another client
        fields.append(
            FieldChange(
                f"annotations.{key}",
                annotation_display(before) if before is not None else None,
                annotation_display(value),
            )
        )
        merged[key] = value
    return fields, (merged if merged != live else None)


def same_annotation(live: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """Equal as Synapse values: Synapse stores annotation values as sent (checked with Java's
    Long/Double/Boolean parsers), so other clients may write "2" for the DOUBLE 2.0, "TRUE" for
    true or "+3" for 3; those are not changes."""
    kind = str(desired.get("type"))
    if str(live.get("type")) != kind:
        return False
    before, after = list(live.get("value", [])), list(desired.get("value", []))
    return len(before) == len(after) and all(
        _annotation_value_key(kind, str(a)) == _annotation_value_key(kind, str(b))
        for a, b in zip(before, after, strict=True)
    )


def _annotation_value_key(kind: str, value: str) -> object:
    try:
        if kind in ("LONG", "TIMESTAMP_MS"):
            return int(value)
        if kind == "DOUBLE":
            return repr(float(value))  # repr: NaN equals NaN
    except ValueError:
        return value
    if kind == "BOOLEAN":
        return value.lower()
    return value


def annotation_display(value: Mapping[str, Any]) -> Any:
    """Typed values for people and JSON; a value Python cannot read as its type (Java accepts
    "2.5d" as a DOUBLE) or JSON cannot hold (NaN, a year past 9999) is shown as stored."""
    kind = str(value.get("type", "STRING"))
    shown = [_display_one(kind, str(item)) for item in value.get("value", [])]
    return {"type": kind, "value": shown[0] if len(shown) == 1 else shown}


def _display_one(kind: str, item: str) -> Any:
    try:
        if kind == "LONG":
            return int(item)
        if kind == "TIMESTAMP_MS":
            when = datetime.fromtimestamp(int(item) / 1000, UTC)
            return when.isoformat().replace("+00:00", "Z")
        if kind == "DOUBLE":
            number = float(item)
            return number if math.isfinite(number) else item
    except (ValueError, OverflowError, OSError):
        return item
    if kind == "BOOLEAN":
        return item.lower() == "true"
    return item


ANNOTATIONS = AnnotationsAspect()
