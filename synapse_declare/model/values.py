"""Annotation values: type inference for plain values, coercion for typed ones, wire forms.

Synapse stores every value as a string and parses it the way Java does: LONG is a 64-bit signed
integer, DOUBLE prints like ``repr(float)`` or ``NaN``/``Infinity``/``-Infinity``, TIMESTAMP_MS is
epoch milliseconds. A problem is raised as :class:`ValueProblem` for the builder to locate.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

from synapse_declare.manifest import YamlTimestamp

from .specs import AnnotationType

MAX_ANNOTATION_KEYS = 100
MAX_ANNOTATION_VALUES = 100
MAX_STRING_ANNOTATION_CHARS = 500
RESERVED_ANNOTATION_KEYS = frozenset({"_accessrequirementids"})  # compared lower-cased

_LONG_TEXT_RE = re.compile(r"^[-+]?[0-9]+$")
_DOUBLE_TEXT_RE = re.compile(r"^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$")
_JAVA_LONG_MIN = -(2**63)
_JAVA_LONG_MAX = 2**63 - 1
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

EXPLICIT_TYPES = {
    "string": AnnotationType.STRING,
    "long": AnnotationType.LONG,
    "double": AnnotationType.DOUBLE,
    "boolean": AnnotationType.BOOLEAN,
    "timestamp": AnnotationType.TIMESTAMP_MS,
}

PLAIN_TOKEN_RE = re.compile(r"[-+]?[0-9A-Za-z_.:]+(?:[eE][-+]?[0-9_]+)?")
_LEADING_ZERO_RE = re.compile(r"^[-+]?0[0-9_]")
_TRAILING_ZERO_RE = re.compile(r"\.[0-9_]*[0-9]0+$")


class ValueProblem(Exception):
    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def double_wire(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def _timestamp_millis(value: dt.datetime) -> int:
    return (value - _EPOCH) // dt.timedelta(milliseconds=1)


def _timestamp_from_yaml(value: YamlTimestamp) -> str:
    parsed = value.value
    text = str(value)
    if parsed is None:
        raise ValueProblem(
            f"{text!r} looks like a date but is not a valid date/time",
            f'fix the date, or quote it ("{text}") to store it as text',
        )
    if not isinstance(parsed, dt.datetime):
        raise ValueProblem(
            f"bare date {text!r} is ambiguous as a timestamp (no time and no timezone)",
            f'write {text}T00:00:00Z for a UTC timestamp, or quote it ("{text}") to store it '
            "as text",
        )
    if parsed.tzinfo is None:
        raise ValueProblem(
            f"timestamp {text!r} has no timezone",
            f'add Z (UTC) or an offset such as +02:00 ({text}Z), or quote it ("{text}") to '
            "store it as text",
        )
    return str(_timestamp_millis(parsed))


def _check_long(value: int) -> str:
    if not _JAVA_LONG_MIN <= value <= _JAVA_LONG_MAX:
        raise ValueProblem(
            f"{value} does not fit in a Synapse LONG (64-bit signed integer)",
            "use a smaller number, or {type: string, value: ...} to store it as text",
        )
    return str(value)


def infer_plain(value: Any) -> tuple[AnnotationType, str]:
    if isinstance(value, bool):
        return AnnotationType.BOOLEAN, "true" if value else "false"
    if isinstance(value, int):
        return AnnotationType.LONG, _check_long(value)
    if isinstance(value, float):
        return AnnotationType.DOUBLE, double_wire(value)
    if isinstance(value, YamlTimestamp):
        return AnnotationType.TIMESTAMP_MS, _timestamp_from_yaml(value)
    if isinstance(value, str):
        return AnnotationType.STRING, value
    raise ValueProblem(f"unsupported annotation value {value!r}")


def _as_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return double_wire(value)
    return str(value)


def _as_long(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return _check_long(value)
    if isinstance(value, str) and _LONG_TEXT_RE.match(value):
        return _check_long(int(value))
    raise ValueProblem(
        f"{value!r} is not a whole number (type: long)",
        "write an integer such as 3, or use type: double / string",
    )


def _as_double(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return double_wire(float(value))
    if isinstance(value, str):
        if value in ("NaN", "Infinity", "-Infinity"):
            return value
        if _DOUBLE_TEXT_RE.match(value):
            return double_wire(float(value))
    raise ValueProblem(
        f"{value!r} is not a number (type: double)",
        "write a number such as 1.5 (NaN, Infinity and -Infinity are allowed as text)",
    )


def _as_boolean(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower()
    raise ValueProblem(f"{value!r} is not a boolean (type: boolean)", "write true or false")


def _as_timestamp(value: Any) -> str:
    if isinstance(value, YamlTimestamp):
        return _timestamp_from_yaml(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return _check_long(value)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return str(_timestamp_millis(parsed))
        if parsed is not None:
            raise ValueProblem(
                f"timestamp {value!r} has no timezone", "add Z (UTC) or an offset such as +02:00"
            )
    raise ValueProblem(
        f"{value!r} is not a timestamp (type: timestamp)",
        "write an ISO 8601 date-time with a timezone (2024-05-01T00:00:00Z) or epoch milliseconds",
    )


_COERCIONS = {
    AnnotationType.STRING: _as_string,
    AnnotationType.LONG: _as_long,
    AnnotationType.DOUBLE: _as_double,
    AnnotationType.BOOLEAN: _as_boolean,
    AnnotationType.TIMESTAMP_MS: _as_timestamp,
}


def coerce(value: Any, target: AnnotationType) -> str:
    """Convert one value of an explicitly typed annotation to its wire form."""
    return _COERCIONS[target](value)


def is_lossy(written: str, value: int | float) -> bool:
    """True when the number a plain scalar becomes does not show what was written: leading
    zeros (``00123``), trailing decimal zeros beyond the first (``1.10``, ``2.50``), digit
    separators (``1_000``), sexagesimal or other bases."""
    if _LEADING_ZERO_RE.match(written) or "_" in written or ":" in written:
        return True
    if isinstance(value, int):
        return written.lstrip("+") != str(value)
    mantissa = re.split(r"[eE]", written)[0]
    return bool(_TRAILING_ZERO_RE.search(mantissa))
