"""The annotations builder: keys, plain (inferred) and typed values, Synapse's limits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from synapse_declare.manifest import JsonPath

from .build_core import BuildContext
from .names import ANNOTATION_KEY_RE
from .specs import AnnotationType, AnnotationValue, FrozenMap
from .values import (
    EXPLICIT_TYPES,
    MAX_ANNOTATION_KEYS,
    MAX_ANNOTATION_VALUES,
    MAX_STRING_ANNOTATION_CHARS,
    RESERVED_ANNOTATION_KEYS,
    ValueProblem,
    coerce,
    double_wire,
    infer_plain,
    is_lossy,
    utf16_length,
)


def build_annotations(
    ctx: BuildContext, raw: Mapping[str, Any], path: JsonPath
) -> FrozenMap[str, AnnotationValue]:
    if len(raw) > MAX_ANNOTATION_KEYS:
        ctx.error(
            path,
            f"{len(raw)} annotation keys; Synapse allows at most {MAX_ANNOTATION_KEYS}",
            "remove some keys",
        )
    out: dict[str, AnnotationValue] = {}
    for key, value in raw.items():
        kpath: JsonPath = (*path, key)
        if key.lower() in RESERVED_ANNOTATION_KEYS:
            ctx.error(
                kpath,
                f"annotation key {key!r} is reserved by Synapse",
                "choose another key",
                key=True,
            )
            continue
        if not ANNOTATION_KEY_RE.match(key):
            ctx.error(
                kpath,
                f"invalid annotation key {key!r}",
                "annotation keys may only contain letters, numbers, '_', '.' and ','",
                key=True,
            )
            continue
        parsed = _annotation(ctx, key, value, kpath)
        if parsed is not None:
            out[key] = parsed
    return FrozenMap(out)


def _annotation(ctx: BuildContext, key: str, value: Any, path: JsonPath) -> AnnotationValue | None:
    if isinstance(value, Mapping):
        return _typed(ctx, key, value, path)
    return _plain(ctx, key, value, path)


def _typed(
    ctx: BuildContext, key: str, value: Mapping[str, Any], path: JsonPath
) -> AnnotationValue | None:
    """``{type: ..., value: ...}``: every value coerced to the declared type."""
    target = EXPLICIT_TYPES[value["type"]]
    raw_values = value["value"]
    vpath: JsonPath = (*path, "value")
    items = raw_values if isinstance(raw_values, list) else [raw_values]
    wires: list[str] = []
    ok = True
    for i, item in enumerate(items):
        ipath = (*vpath, i) if isinstance(raw_values, list) else vpath
        if target is AnnotationType.STRING:
            _check_lossy(ctx, key, item, ipath)
        try:
            wires.append(coerce(item, target))
        except ValueProblem as problem:
            ctx.error(ipath, f"annotation {key!r}: {problem.message}", problem.hint)
            ok = False
    if not ok:
        return None
    return _finish(ctx, key, target, wires, path)


def _plain(ctx: BuildContext, key: str, value: Any, path: JsonPath) -> AnnotationValue | None:
    """A plain value or list: the type is inferred, and must be the same for every value."""
    items = value if isinstance(value, list) else [value]
    inferred: list[tuple[AnnotationType, str]] = []
    ok = True
    for i, item in enumerate(items):
        ipath = (*path, i) if isinstance(value, list) else path
        _check_lossy(ctx, key, item, ipath)
        try:
            inferred.append(infer_plain(item))
        except ValueProblem as problem:
            ctx.error(ipath, f"annotation {key!r}: {problem.message}", problem.hint)
            ok = False
            continue
        first_type = inferred[0][0]
        this_type = inferred[-1][0]
        if this_type is not first_type:
            ctx.error(
                ipath,
                f"annotation {key!r} mixes value types: {this_type.value} after {first_type.value}",
                "make every value of the list the same type (write 1.0 for a DOUBLE), or "
                "use {type: string, value: [...]} to store all of them as text",
            )
            return None
    if not ok:
        return None
    return _finish(ctx, key, inferred[0][0], [w for _, w in inferred], path)


def _finish(
    ctx: BuildContext, key: str, type_: AnnotationType, wires: list[str], path: JsonPath
) -> AnnotationValue | None:
    """Synapse's limits on one key's values."""
    if not wires:
        ctx.error(path, f"annotation {key!r} has no values", "remove the key instead")
        return None
    if len(wires) > MAX_ANNOTATION_VALUES:
        ctx.error(
            path,
            f"annotation {key!r} has {len(wires)} values; Synapse allows at most "
            f"{MAX_ANNOTATION_VALUES}",
            "store fewer values",
        )
        return None
    if type_ is AnnotationType.STRING:
        total = sum(utf16_length(w) for w in wires)
        if total > MAX_STRING_ANNOTATION_CHARS:
            ctx.error(
                path,
                f"annotation {key!r} has {total} characters of text in total; Synapse allows "
                f"at most {MAX_STRING_ANNOTATION_CHARS} per key",
                "shorten the values (long text belongs in the wiki or description)",
            )
            return None
    return AnnotationValue(type_, tuple(wires))


def _check_lossy(ctx: BuildContext, key: str, value: Any, path: JsonPath) -> None:
    """Warn when a plain number's stored form loses what was written (``00123``, ``1.10``):
    almost always a code or a version meant as text."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    written = ctx.written(path)
    if written is None or not is_lossy(written, value):
        return
    stored = double_wire(value) if isinstance(value, float) else str(value)
    ctx.warn(
        f"annotation {key!r}: {written} is read as the number {stored}, which loses "
        "how it was written",
        ctx.at(path),
        f'quote it ("{written}") to keep it as text, or write {stored} if the number is meant',
    )
