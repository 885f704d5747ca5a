"""Annotations v2: typed, per version, full replacement on PUT (synapse-api.md §3)."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from . import nodes
from .routing import Route
from .util import (
    ZERO_ETAG,
    bad_request,
    not_found,
    parse_int,
    parse_syn_id,
    precondition_failed,
    syn,
)

if TYPE_CHECKING:
    from .app import Ctx
    from .store import Store

SCHEMA = ""

KEY_RE = re.compile(r"^[a-zA-Z0-9,_.]+$")
TYPES = ("STRING", "DOUBLE", "LONG", "TIMESTAMP_MS", "BOOLEAN")
LONG_RE = re.compile(r"[+-]?[0-9]+")
JAVA_DOUBLE_RE = re.compile(
    r"[+-]?(?:NaN|Infinity|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[fFdD]?)"
)
JAVA_TRIM = "".join(chr(c) for c in range(33))  # String.trim() removes chars <= U+0020
DOUBLE_ALIASES = {  # AbstractDouble's names, compared ignoring case
    "inf",
    "+inf",
    "infinity",
    "+infinity",
    "\u221e",
    "+\u221e",
    "-inf",
    "-infinity",
    "-\u221e",
    "nan",
}


def validate(annotations: Any) -> dict[str, dict[str, Any]]:
    """AnnotationsV2Utils validation with Synapse's messages; returns the normalised map."""
    if annotations is None:
        return {}
    if not isinstance(annotations, dict):
        bad_request("annotations must be a map of key to {type, value}")
    if len(annotations) > 100:
        bad_request("Exceeded maximum number of annotation keys: 100")
    result: dict[str, dict[str, Any]] = {}
    for raw_key, entry in annotations.items():
        key = str(raw_key).strip()
        if not key:
            bad_request("Annotation names cannot be empty strings")
        if not KEY_RE.match(key):
            bad_request(
                f"Invalid annotation name: '{key}'. Annotation names may only contain; letters, "
                "numbers, '_' and '.'"
            )
        if key.lower() == "_accessrequirementids":
            bad_request(
                f"Invalid annotation name: '{key}'. The annotation name is a system reserved "
                "annotation."
            )
        if not isinstance(entry, dict):
            bad_request(f"value list for key={key} can not be null")
        values = entry.get("value")
        if values is None:
            bad_request(f"value list for key={key} can not be null")
        if not isinstance(values, list):
            bad_request(f"value list for key={key} can not be null")
        if len(values) > 100:
            bad_request(f"key={key} has exceeded the maximum number of values allowed: 100")
        value_type = entry.get("type")
        if value_type is None:
            bad_request(f"a value or a value type must be set for values associated with key={key}")
        if value_type not in TYPES:
            bad_request(f"No enum constant AnnotationsValueType.{value_type}")
        if any(v is None for v in values):
            bad_request("null is not allowed. To indicate no values, use an empty list.")
        strings = [v if isinstance(v, str) else json.dumps(v) for v in values]
        if value_type == "STRING" and sum(len(v) for v in strings) > 500:
            bad_request("Total String value too long. Can be at most 500 characters.")
        for value in strings:
            if not _valid(value_type, value):
                bad_request(
                    f"Value associated with key={key} is not valid for type={value_type}: {value}"
                )
        result[key] = {"type": value_type, "value": strings}
    return result


def _valid(value_type: str, value: str) -> bool:
    if value_type in ("LONG", "TIMESTAMP_MS"):
        # Long.valueOf: an optional sign and digits, no whitespace, 64-bit range.
        return bool(LONG_RE.fullmatch(value)) and -(2**63) <= int(value) < 2**63
    if value_type == "DOUBLE":
        # DoubleUtils.fromString: Double.valueOf (which trims), else AbstractDouble's names.
        if JAVA_DOUBLE_RE.fullmatch(value.strip(JAVA_TRIM)):
            return True
        return value.lower() in DOUBLE_ALIASES
    if value_type == "BOOLEAN":
        return value.lower() in ("true", "false")
    return True


def read(store: Store, node_id: int, rev: int) -> dict[str, Any]:
    raw = store.scalar(
        "SELECT annotations FROM revisions WHERE node_id = ? AND rev = ?", (node_id, rev)
    )
    return {} if raw is None else dict(json.loads(raw))


def write(store: Store, node_id: int, rev: int, annotations: dict[str, Any]) -> None:
    store.execute(
        "UPDATE revisions SET annotations = ? WHERE node_id = ? AND rev = ?",
        (json.dumps(annotations, sort_keys=True), node_id, rev),
    )


def annotations_json(store: Store, node_id: int, rev: int | None = None) -> dict[str, Any]:
    row = nodes.get_row(store, node_id)
    assert row is not None
    current = int(row["current_rev"])
    version = current if rev is None else rev
    return {
        "id": syn(node_id),
        "etag": row["etag"] if version == current else ZERO_ETAG,
        "annotations": read(store, node_id, version),
    }


def get_annotations(ctx: Ctx, entity_id: str) -> dict[str, Any]:
    node_id = parse_syn_id(entity_id)
    nodes.check(ctx.store, ctx.caller, node_id, "READ")
    return annotations_json(ctx.store, node_id)


def get_version_annotations(ctx: Ctx, entity_id: str, version: str) -> dict[str, Any]:
    node_id = parse_syn_id(entity_id)
    number = parse_int(version, "versionNumber")
    nodes.check(ctx.store, ctx.caller, node_id, "READ")
    if nodes.revision(ctx.store, node_id, number) is None:
        not_found(f"Cannot find a node with id {syn(node_id)} and version {number}")
    return annotations_json(ctx.store, node_id, number)


def put_annotations(ctx: Ctx, entity_id: str) -> dict[str, Any]:
    body = ctx.json_body()
    del entity_id
    if body.get("id") is None:
        bad_request("Annotations must have a non-null id")
    node_id = parse_syn_id(body["id"])
    if not body.get("etag"):
        bad_request("etag is required and must not be the empty string.")
    row = nodes.check(ctx.store, ctx.caller, node_id, "UPDATE")
    if body["etag"] != row["etag"]:
        precondition_failed(
            f"Object: {body['id']} was updated since you last fetched it, retrieve it again and "
            "re-apply the update"
        )
    annotations = validate(body.get("annotations"))
    write(ctx.store, node_id, int(row["current_rev"]), annotations)
    nodes.touch(ctx.store, node_id, ctx.caller)
    return annotations_json(ctx.store, node_id)


ROUTES = [
    Route("GET", "/repo/v1/entity/<entity_id>/annotations2", get_annotations),
    Route("PUT", "/repo/v1/entity/<entity_id>/annotations2", put_annotations),
    Route(
        "GET", "/repo/v1/entity/<entity_id>/version/<version>/annotations2", get_version_annotations
    ),
]
