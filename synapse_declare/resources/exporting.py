"""What every kind's EXPORT hook shares: the export context (principal names, location names,
warnings), the annotation and ACL forms a person would write, and a small YAML writer that can
put comments where the export has something to say (PyYAML cannot emit comments).

Live state → manifest data is pure here: the orchestrator (``synapse_declare/export.py``) does
every read and hands the kinds plain dicts.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..errors import ManifestError
from ..manifest import load_text
from ..model import (
    ANONYMOUS_ID,
    AUTHENTICATED_USERS_ID,
    PUBLIC_ID,
    AnnotationType,
    _infer_plain,
    _ValueProblem,
    level_for,
)

_EXPLICIT_NAMES = {
    AnnotationType.STRING: "string",
    AnnotationType.LONG: "long",
    AnnotationType.DOUBLE: "double",
    AnnotationType.BOOLEAN: "boolean",
    AnnotationType.TIMESTAMP_MS: "timestamp",
}


@dataclass(frozen=True, slots=True)
class Principal:
    """A principal id's header as read from Synapse (``name`` None when it could not be read)."""

    id: int
    name: str | None
    individual: bool


@dataclass(frozen=True, slots=True)
class Commented:
    """A value with comment lines written just before it (above its key or list item)."""

    value: Any
    comments: tuple[str, ...] = ()


def with_comment(value: Any, comment: str) -> Commented:
    """``value`` with one more comment line (merged into an existing :class:`Commented`)."""
    if isinstance(value, Commented):
        return Commented(value.value, (*value.comments, comment))
    return Commented(value, (comment,))


@dataclass
class ExportContext:
    """What the hooks need beyond one entity's state, and what they report back."""

    principals: Mapping[int, Principal] = field(default_factory=dict)
    location_names: Mapping[int, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    teams: set[str] = field(default_factory=set)  # team names the exported ACLs grant to
    # Annotation keys that are the tool's own (the managed marker: adoption writes it).
    skip_keys: frozenset[str] = frozenset()

    def warn(self, where: str, message: str) -> str:
        self.warnings.append(f"{where}: {message}")
        return message


# ---------------------------------------------------------------------------------------------
# Annotations


def _plain_scalar(kind: AnnotationType, wire: str) -> Any | None:
    """The plain YAML value that reads back as ``wire``; None when only {type, value} does."""
    candidate: Any
    if kind is AnnotationType.STRING:
        candidate = wire
    elif kind is AnnotationType.BOOLEAN:
        candidate = wire == "true"
    elif kind is AnnotationType.LONG:
        candidate = int(wire)
    elif kind is AnnotationType.DOUBLE:
        number = float(wire)
        if not math.isfinite(number):
            return None
        candidate = number
    else:
        millis = int(wire)
        moment = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=millis)
        candidate = Timestamp(_iso_millis(moment))
    # Proof, not belief: write it, read it with the manifest loader, infer as the model does.
    text = f"v: {scalar_text(candidate)}\n"
    try:
        loaded = load_text(text).data["v"]
        inferred = _infer_plain(loaded)
    except (ManifestError, _ValueProblem):
        return None
    if inferred != (kind, wire):
        return None
    # A number that reads back equal but looks different (00123, 1.10) would make validate warn.
    if kind in (AnnotationType.LONG, AnnotationType.DOUBLE) and scalar_text(candidate) != wire:
        if not (kind is AnnotationType.DOUBLE and float(scalar_text(candidate)) == float(wire)):
            return None
    return candidate


def _iso_millis(moment: dt.datetime) -> str:
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond // 1000:03d}"
    return text + "Z"


class Timestamp(str):
    """An ISO 8601 date-time written as a plain (unquoted) YAML scalar."""


def annotation_data(kind_name: str, values: Sequence[str]) -> Any:
    """One live annotation ({type, value: [wire...]}) as a person would write it."""
    kind = AnnotationType(kind_name)
    plain = [_plain_scalar(kind, v) for v in values]
    if values and all(p is not None for p in plain):
        return plain[0] if len(plain) == 1 else list(plain)
    explicit: list[Any] = list(values)
    if kind is AnnotationType.TIMESTAMP_MS:
        explicit = [int(v) for v in values]
    return {
        "type": _EXPLICIT_NAMES[kind],
        "value": explicit[0] if len(explicit) == 1 else explicit,
    }


def annotations_data(ctx: ExportContext, live: Mapping[str, Any]) -> dict[str, Any]:
    """Live annotations (``{key: {type, value}}``) in key order, the tool's own keys left out."""
    out: dict[str, Any] = {}
    for key in sorted(live):
        if key in ctx.skip_keys:
            continue
        entry = live[key]
        out[key] = annotation_data(str(entry["type"]), [str(v) for v in entry.get("value", [])])
    return out


# ---------------------------------------------------------------------------------------------
# ACLs


def principal_key(ctx: ExportContext, principal_id: int, where: str) -> tuple[str, str | None]:
    """The ACL key for a principal id, and a comment when the name could not be read."""
    if principal_id == PUBLIC_ID:
        return "PUBLIC", None
    if principal_id == AUTHENTICATED_USERS_ID:
        return "AUTHENTICATED_USERS", None
    header = ctx.principals.get(principal_id)
    if header is None or not header.name:
        message = ctx.warn(
            where, f"the name of principal {principal_id} cannot be read; written as its id"
        )
        return str(principal_id), message
    if header.individual:
        return f"user:{header.name}", None
    ctx.teams.add(header.name)
    return f"team:{header.name}", None


def acl_data(ctx: ExportContext, entries: Mapping[int, frozenset[str]], where: str) -> Any:
    """An own ACL as ``{principal: level or [ACCESS_TYPE...]}`` in a stable order: PUBLIC,
    AUTHENTICATED_USERS, then users and teams by name. ``self`` is never written: it means each
    entity's creator, which is right only by coincidence for a hand-made project."""
    rows: list[tuple[tuple[int, str], str, Any]] = []
    for principal_id, access in entries.items():
        if principal_id == ANONYMOUS_ID:
            ctx.warn(where, "the anonymous user (273950) has access; a manifest cannot grant it")
            continue
        key, comment = principal_key(ctx, principal_id, where)
        level = level_for(frozenset(access))
        value: Any = level if level is not None else sorted(access)
        if comment is not None:
            value = Commented(value, (comment,))
        order = {"PUBLIC": 0, "AUTHENTICATED_USERS": 1}.get(key, 2)
        rows.append(((order, key.lower()), key, value))
    rows.sort(key=lambda r: r[0])
    return {key: value for _, key, value in rows}


# ---------------------------------------------------------------------------------------------
# A YAML writer with comments


class _Dumper(yaml.SafeDumper):
    pass


def _timestamp(dumper: yaml.SafeDumper, value: Timestamp) -> yaml.Node:
    # Tagged as a timestamp so the emitter leaves it plain (it resolves back to a timestamp).
    return dumper.represent_scalar("tag:yaml.org,2002:timestamp", str(value))


_Dumper.add_representer(Timestamp, _timestamp)


def scalar_text(value: Any) -> str:
    """One scalar as YAML flow text, quoted only where YAML would read it as something else."""
    if isinstance(value, float) and math.isfinite(value):
        text = repr(value)
        mantissa, e, exponent = text.partition("e")
        if "." not in mantissa:  # YAML 1.1 floats need a dot: 1e+20 would read as text
            text = f"{mantissa}.0{e}{exponent}"
        return text
    dumped = yaml.dump(
        value, Dumper=_Dumper, default_flow_style=True, width=10**9, allow_unicode=True
    )
    return dumped.removesuffix("\n").removesuffix("\n...").strip()


def _flow(value: Any) -> str | None:
    """A short list of scalars on one line, e.g. ``[READ, DOWNLOAD]``; None otherwise."""
    if isinstance(value, list) and all(not isinstance(v, (dict, list, Commented)) for v in value):
        text = "[" + ", ".join(_flow_item(v) for v in value) + "]"
        return text if len(text) <= 80 else None
    return None


def _flow_item(value: Any) -> str:
    """A scalar inside ``[...]``: text is dumped in a flow sequence, so that the emitter quotes
    flow indicators (``0,`` is plain text on its own line, but two items inside brackets)."""
    if isinstance(value, str) and any(c in value for c in ",[]{}"):
        dumped = yaml.dump(
            [value], Dumper=_Dumper, default_flow_style=True, width=10**9, allow_unicode=True
        )
        return dumped.strip().removeprefix("[").removesuffix("]")
    return scalar_text(value)


def _comment_lines(comments: Sequence[str], indent: str) -> list[str]:
    lines: list[str] = []
    for comment in comments:
        for line in comment.splitlines() or [""]:
            lines.append(f"{indent}# {line}".rstrip())
    return lines


def dump(value: Mapping[str, Any], header: Sequence[str] = ()) -> str:
    """A mapping as block YAML, with :class:`Commented` values' comments above them."""
    lines = _comment_lines(header, "")
    _mapping(value, 0, lines)
    return "\n".join(lines) + "\n"


def _mapping(value: Mapping[str, Any], depth: int, lines: list[str]) -> None:
    indent = "  " * depth
    for key, raw in value.items():
        item = raw
        if isinstance(raw, Commented):
            lines.extend(_comment_lines(raw.comments, indent))
            item = raw.value
        head = f"{indent}{scalar_text(key)}:"
        _value(head, item, depth, lines)


def _value(head: str, item: Any, depth: int, lines: list[str]) -> None:
    flow = _flow(item)
    if flow is not None:
        lines.append(f"{head} {flow}")
    elif isinstance(item, dict):
        if not item:
            lines.append(f"{head} {{}}")
        else:
            lines.append(head)
            _mapping(item, depth + 1, lines)
    elif isinstance(item, list):
        lines.append(head)
        _sequence(item, depth + 1, lines)
    elif isinstance(item, str) and "\n" in item and _literal_ok(item):
        indicator = "|" if item.endswith("\n") and not item.endswith("\n\n") else "|-"
        if item.endswith("\n\n"):
            indicator = "|+"
        if item.startswith(" "):
            indicator += "2"
        lines.append(f"{head} {indicator}")
        body = item[:-1] if item.endswith("\n") else item
        pad = "  " * (depth + 1)
        lines.extend(f"{pad}{line}" if line else "" for line in body.split("\n"))
    else:
        lines.append(f"{head} {scalar_text(item)}")


def _literal_ok(text: str) -> bool:
    """Whether a block literal (``|``) reproduces ``text`` exactly: printable characters,
    LF line ends, no trailing blanks at the end of a line that is only blanks."""
    return all(c == "\n" or (c.isprintable() and c != "\t") for c in text) and not any(
        line and not line.strip() for line in text.split("\n")
    )


def _sequence(items: Sequence[Any], depth: int, lines: list[str]) -> None:
    indent = "  " * depth
    for raw in items:
        item = raw
        if isinstance(raw, Commented):
            lines.extend(_comment_lines(raw.comments, indent))
            item = raw.value
        if isinstance(item, dict) and item:
            sub: list[str] = []
            _mapping(item, depth + 1, sub)
            first = sub[0]
            # The first key goes on the dash line (comments stay above the dash).
            lead = len(indent) + 2
            while first.lstrip().startswith("#"):
                lines.append(indent + first.lstrip())
                sub.pop(0)
                first = sub[0]
            lines.append(f"{indent}- {first[lead:]}")
            lines.extend(sub[1:])
        else:
            lines.append(f"{indent}- {scalar_text(item)}")


# ---------------------------------------------------------------------------------------------
# Wiki pages and file names


@dataclass(frozen=True, slots=True)
class WikiNode:
    """One live wiki page and its sub-pages (in the owner's order)."""

    title: str
    markdown: str
    attachments: tuple[str, ...] = ()  # attachment file names (a manifest cannot hold them)
    pages: tuple[WikiNode, ...] = ()


def slug(text: str, taken: set[str]) -> str:
    """A file-name-safe, lower-case form of ``text``, unique within ``taken`` (which it joins)."""
    base = "".join(c.lower() if c.isalnum() else "-" for c in text).strip("-")
    base = "-".join(part for part in base.split("-") if part) or "page"
    name, number = base, 2
    while name in taken:
        name, number = f"{base}-{number}", number + 1
    taken.add(name)
    return name
