"""The manifest model: frozen, I/O-free specs the planner diffs against live Synapse.

:func:`build_model` turns schema-valid manifest data into a :class:`Manifest` and runs the
semantic checks that mirror Synapse's own validators (names, annotations, ACL content), so that a
plan never proposes something Synapse would reject. It collects every problem and raises them
together as :class:`~synapse_declare.errors.ManifestErrors`.

Semantics worth knowing:

* Names are trimmed like Java's ``String.trim()`` (characters <= U+0020), then checked.
* Plain annotation values infer their type: text -> STRING, ``true``/``false`` -> BOOLEAN,
  whole number -> LONG, decimal -> DOUBLE, date-time *with* timezone -> TIMESTAMP_MS. A date-time
  without timezone, or a bare date, is an error (ambiguous); quote it to keep it as text. Plain
  lists must hold values of one inferred type (``[1, 2.5]`` is an error; write ``1.0``).
* Wire forms (``AnnotationValue.values``) are the strings Synapse stores: LONG ``"3"``, DOUBLE
  ``repr(float)`` (``"1.5"``, ``"1e+20"``) or ``"NaN"``/``"Infinity"``/``"-Infinity"``, BOOLEAN
  ``"true"``/``"false"``, TIMESTAMP_MS epoch milliseconds (sub-millisecond digits truncated).
* Markdown read from ``markdown_file`` has CRLF line ends normalised to LF (so a Windows checkout
  does not change the plan); a page with neither ``markdown`` nor ``markdown_file`` is empty.
* A root wiki page without ``title`` has the title ``""``.
* The digest covers everything the plan depends on (not file names or positions), with folders,
  projects, wiki sub-pages, ACL entries and annotation keys in sorted order.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import hashlib
import json
import math
import re
import urllib.parse
from collections.abc import Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any, TypeVar

from synapse_declare.errors import ManifestError, ManifestErrors, SourceLocation
from synapse_declare.files import ConfinedFileError, read_confined
from synapse_declare.manifest import (
    JsonPath,
    Locator,
    SourceMap,
    YamlTimestamp,
)
from synapse_declare.model_teams import TeamSpec, build_teams
from synapse_declare.policy_spec import Policies, parse_policies
from synapse_declare.resources.base import Address

MANIFEST_VERSION = 1
MAX_NAME_LENGTH = 256
MAX_DESCRIPTION_LENGTH = 1000
MAX_ANNOTATION_KEYS = 100
MAX_ANNOTATION_VALUES = 100
MAX_STRING_ANNOTATION_CHARS = 500
RESERVED_ANNOTATION_KEYS = frozenset({"_accessrequirementids"})  # compared lower-cased

AUTHENTICATED_USERS_ID = 273948
PUBLIC_ID = 273949
ANONYMOUS_ID = 273950

NAME_RE = re.compile(r"^[a-zA-Z0-9,_. \-+()']+$")
NAME_CHARACTERS = "letters, numbers, spaces, and the characters , _ . - + ( ) '"
ALIAS_RE = re.compile(r"^[A-Za-z0-9_]+$")
ANNOTATION_KEY_RE = re.compile(r"^[a-zA-Z0-9,_.]+$")
_DIGITS_RE = re.compile(r"^[0-9]+$")
BUCKET_RE = re.compile(r"^(?=.{3,63}$)[a-z0-9][a-z0-9.-]*[a-z0-9]$")
_LONG_TEXT_RE = re.compile(r"^[-+]?[0-9]+$")
_DOUBLE_TEXT_RE = re.compile(r"^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$")
_JAVA_LONG_MIN = -(2**63)
_JAVA_LONG_MAX = 2**63 - 1
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_JAVA_TRIM = "".join(chr(c) for c in range(0x21))

PERMISSION_LEVELS: Mapping[str, frozenset[str]] = {
    "view": frozenset({"READ"}),
    "download": frozenset({"READ", "DOWNLOAD"}),
    "edit": frozenset({"CREATE", "READ", "DOWNLOAD", "UPDATE"}),
    "edit_delete": frozenset({"CREATE", "READ", "DOWNLOAD", "UPDATE", "DELETE"}),
    "administer": frozenset(
        {
            "READ",
            "DOWNLOAD",
            "UPDATE",
            "DELETE",
            "CREATE",
            "CHANGE_PERMISSIONS",
            "CHANGE_SETTINGS",
            "MODERATE",
        }
    ),
}
"""Permission levels of the Synapse web UI and their exact ACCESS_TYPE sets."""

ENTITY_ACCESS_TYPES: frozenset[str] = frozenset(
    {
        "CREATE",
        "DOWNLOAD",
        "READ",
        "CHANGE_PERMISSIONS",
        "CHANGE_SETTINGS",
        "DELETE",
        "MODERATE",
        "UPDATE",
        "SEND_MESSAGE",
        "TEAM_MEMBERSHIP_UPDATE",
        "DELETE_SUBMISSION",
        "PARTICIPATE",
        "READ_PRIVATE_SUBMISSION",
        "SUBMIT",
        "UPDATE_SUBMISSION",
        "UPLOAD",
    }
)
"""ACCESS_TYPE values Synapse accepts on entity ACLs."""

MIGRATION_VERSIONS = ("latest", "all", "new")


def level_for(access: frozenset[str]) -> str | None:
    """The permission level whose access set equals ``access`` exactly, if any."""
    for level, levels_access in PERMISSION_LEVELS.items():
        if levels_access == access:
            return level
    return None


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class FrozenMap(Mapping[K, V]):
    """An immutable, hashable mapping that keeps insertion order."""

    __slots__ = ("_data", "_hash")

    def __init__(self, items: Mapping[K, V] | Iterable[tuple[K, V]] = ()) -> None:
        self._data: dict[K, V] = dict(items)
        self._hash: int | None = None

    def __getitem__(self, key: K) -> V:
        return self._data[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._data.items()))
        return self._hash

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"


class AnnotationType(StrEnum):
    STRING = "STRING"
    LONG = "LONG"
    DOUBLE = "DOUBLE"
    BOOLEAN = "BOOLEAN"
    TIMESTAMP_MS = "TIMESTAMP_MS"


_EXPLICIT_TYPES = {
    "string": AnnotationType.STRING,
    "long": AnnotationType.LONG,
    "double": AnnotationType.DOUBLE,
    "boolean": AnnotationType.BOOLEAN,
    "timestamp": AnnotationType.TIMESTAMP_MS,
}


@dataclass(frozen=True, slots=True)
class AnnotationValue:
    """One annotation: its type and values in wire form (the strings Synapse stores)."""

    type: AnnotationType
    values: tuple[str, ...]


class PrincipalKind(StrEnum):
    SELF = "self"
    USER = "user"
    TEAM = "team"
    PUBLIC = "PUBLIC"
    AUTHENTICATED_USERS = "AUTHENTICATED_USERS"
    ID = "id"


@dataclass(frozen=True, slots=True)
class PrincipalRef:
    """A principal as written in an ACL; ``id`` is known for PUBLIC, AUTHENTICATED_USERS, digits."""

    kind: PrincipalKind
    name: str | None = None
    id: int | None = None

    def __str__(self) -> str:
        if self.kind in (PrincipalKind.USER, PrincipalKind.TEAM):
            return f"{self.kind.value}:{self.name}"
        if self.kind is PrincipalKind.ID:
            return str(self.id)
        return self.kind.value


PRINCIPAL_FORMS = (
    "self, user:NAME, team:NAME, PUBLIC, AUTHENTICATED_USERS, or a numeric principal id in "
    'quotes such as "3350396"'
)


def parse_principal(text: str) -> PrincipalRef:
    """Parse an ACL key; raises :class:`ValueError` (with a message) for bad syntax."""
    if text == "self":
        return PrincipalRef(PrincipalKind.SELF)
    if text == "PUBLIC":
        return PrincipalRef(PrincipalKind.PUBLIC, id=PUBLIC_ID)
    if text == "AUTHENTICATED_USERS":
        return PrincipalRef(PrincipalKind.AUTHENTICATED_USERS, id=AUTHENTICATED_USERS_ID)
    if _DIGITS_RE.match(text):
        return PrincipalRef(PrincipalKind.ID, id=int(text))
    prefix, sep, name = text.partition(":")
    if sep and prefix in ("user", "team"):
        name = name.strip()
        if name:
            return PrincipalRef(PrincipalKind(prefix), name=name)
        raise ValueError(f"principal {text!r} has no name after '{prefix}:'")
    raise ValueError(f"bad principal syntax: {text!r}")


def _principal_suggestion(text: str) -> str | None:
    for keyword in ("self", "PUBLIC", "AUTHENTICATED_USERS"):
        if text.strip().lower() == keyword.lower():
            return keyword
    prefix, sep, rest = text.partition(":")
    if sep and prefix.strip().lower() in ("user", "team") and rest.strip():
        return f"{prefix.strip().lower()}:{rest.strip()}"
    if not sep and text.strip() and " " not in text.strip():
        return f"user:{text.strip()}"
    return None


@dataclass(frozen=True, slots=True)
class AclEntry:
    principal: PrincipalRef
    access: frozenset[str]
    level: str | None
    """The permission level name when the manifest gave a level (for display)."""
    location: SourceLocation | None = field(default=None, compare=False)
    """Where the entry's principal is written (errors about the principal point here)."""


@dataclass(frozen=True, slots=True)
class AclSpec:
    """The whole ACL of an entity: principals not listed lose their access."""

    entries: tuple[AclEntry, ...]
    location: SourceLocation


class Inherit(Enum):
    """``acl: inherit`` on a folder: no own ACL, permissions come from the parent."""

    INHERIT = "inherit"

    def __repr__(self) -> str:
        return "INHERIT"


INHERIT = Inherit.INHERIT


@dataclass(frozen=True, slots=True)
class WikiSpec:
    title: str
    markdown: str
    pages: tuple[WikiSpec, ...]
    location: SourceLocation
    markdown_source: str | None
    """``markdown_file`` as written in the manifest, for display; ``None`` if inline/empty."""


@dataclass(frozen=True, slots=True)
class MigrationSpec:
    to: str
    versions: str
    location: SourceLocation


class Prune(StrEnum):
    """``prune:`` on a container: whether its undeclared child folders are deleted (issue 11)."""

    OFF = "off"
    FOLDERS = "folders"  # `prune: true`: folders that hold no files
    WITH_FILES = "with-files"  # the manifest says the data may go too


class EntityKind(StrEnum):
    PROJECT = "project"
    FOLDER = "folder"


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """A project or folder. ``None`` in a field means "unmanaged": leave live Synapse as it is."""

    kind: EntityKind
    name: str
    description: str | None
    alias: str | None
    annotations: Mapping[str, AnnotationValue] | None
    acl: AclSpec | Inherit | None
    wiki: WikiSpec | None
    folders: tuple[ContainerSpec, ...]
    storage: tuple[str, ...] | None
    migrate_existing: MigrationSpec | None
    location: SourceLocation
    address: str
    move_files_from: str | None = None  # folder path relative to the project (STS folders)
    """Stable resource address, e.g. ``project:AD Portal/folder:Raw Data/folder:RNAseq``."""
    prune: Prune = Prune.OFF
    protect: bool = False  # refuse its deletion; written on the entity (see lifecycle.py)
    unprotect: bool = False  # `protect: false` written: the marker is removed (lifecycle.py)
    previously: tuple[str, ...] = ()  # old names or project-relative paths (renames, moves)


@dataclass(frozen=True, slots=True)
class StorageLocationSpec:
    name: str
    type: str
    bucket: str | None
    base_key: str | None
    sts_enabled: bool | None
    endpoint_url: str | None
    description: str | None
    banner: str | None
    location: SourceLocation


@dataclass(frozen=True, slots=True)
class ManifestWarning:
    """Something valid but probably not meant (``00123`` read as the number 123): located."""

    message: str
    location: SourceLocation
    hint: str

    def __str__(self) -> str:
        return (
            f"{self.location}: warning: {self.message} (at {self.location.json_path})\n"
            f"  hint: {self.hint}"
        )


@dataclass(frozen=True, slots=True)
class Manifest:
    projects: tuple[ContainerSpec, ...]
    storage_locations: Mapping[str, StorageLocationSpec]
    files: tuple[str, ...]
    digest: str
    """sha256 of the canonical JSON of the model; unchanged by file order, key order, layout."""
    warnings: tuple[ManifestWarning, ...] = ()
    """Located warnings (not part of the digest): shown by validate and in every plan."""
    teams: tuple[TeamSpec, ...] = ()
    policies: Policies = field(default_factory=Policies)
    """Access rules every plan is checked against (policies.py); not part of the digest, since
    they change what a plan may do, not what it does."""

    def walk(self) -> Iterator[ContainerSpec]:
        """Every project and folder, parents before children, in manifest order."""
        stack = list(reversed(self.projects))
        while stack:
            spec = stack.pop()
            yield spec
            stack.extend(reversed(spec.folders))


def java_trim(text: str) -> str:
    """Trim like Java's ``String.trim()``, which Synapse applies to names."""
    return text.strip(_JAVA_TRIM)


def synapse_name_problem(name: str) -> tuple[str, str] | None:
    """``(message, hint)`` if Synapse would reject ``name`` (before trimming), else ``None``."""
    trimmed = java_trim(name)
    if not trimmed:
        return "a name cannot be empty or only whitespace", "give the entity a name"
    if len(trimmed) > MAX_NAME_LENGTH:
        return (
            f"name is {len(trimmed)} characters long; Synapse allows at most {MAX_NAME_LENGTH}",
            "shorten the name",
        )
    if not NAME_RE.match(trimmed):
        bad = sorted({c for c in trimmed if not NAME_RE.match(c)})
        shown = " ".join(repr(c) for c in bad)
        return (
            f"invalid Synapse name {trimmed!r}: character(s) {shown} not allowed",
            f"names may only contain {NAME_CHARACTERS}",
        )
    return None


def endpoint_url_problem(url: str) -> tuple[str, str] | None:
    """``(message, hint)`` when ``url`` is not an http(s) URL boto3 can use as an S3 endpoint.

    Checked offline so that plan never meets it first (botocore raises a bare ``ValueError``
    for a malformed endpoint); credentials in the URL are refused, as they would be printed
    wherever the manifest is shown.
    """
    hint = "write the S3-compatible service's URL, e.g. https://s3.example.org or http://host:9000"
    if url != url.strip() or any(c.isspace() or ord(c) < 0x20 for c in url):
        return f"endpoint_url {url!r} contains whitespace or control characters", hint
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"endpoint_url is not a valid URL ({exc})", hint
    if parts.username is not None or parts.password is not None:
        return (
            f"endpoint_url for host {parts.hostname!r} contains credentials",
            "remove user:password@ from the URL; AWS credentials come from the environment or "
            "a profile, never from the manifest",
        )
    if parts.scheme not in ("http", "https"):
        return f"endpoint_url {url!r} must start with https:// or http://", hint
    if not parts.hostname:
        return f"endpoint_url {url!r} has no host name", hint
    if parts.query or parts.fragment:
        return f"endpoint_url {url!r} has a query or fragment", hint
    if port == 0:
        return f"endpoint_url {url!r} has port 0", hint
    return None


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _double_wire(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


class _ValueProblem(Exception):
    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def _timestamp_millis(value: dt.datetime) -> int:
    return (value - _EPOCH) // dt.timedelta(milliseconds=1)


def _timestamp_from_yaml(value: YamlTimestamp) -> str:
    parsed = value.value
    text = str(value)
    if parsed is None:
        raise _ValueProblem(
            f"{text!r} looks like a date but is not a valid date/time",
            f'fix the date, or quote it ("{text}") to store it as text',
        )
    if not isinstance(parsed, dt.datetime):
        raise _ValueProblem(
            f"bare date {text!r} is ambiguous as a timestamp (no time and no timezone)",
            f'write {text}T00:00:00Z for a UTC timestamp, or quote it ("{text}") to store it '
            "as text",
        )
    if parsed.tzinfo is None:
        raise _ValueProblem(
            f"timestamp {text!r} has no timezone",
            f'add Z (UTC) or an offset such as +02:00 ({text}Z), or quote it ("{text}") to '
            "store it as text",
        )
    return str(_timestamp_millis(parsed))


def _check_long(value: int) -> str:
    if not _JAVA_LONG_MIN <= value <= _JAVA_LONG_MAX:
        raise _ValueProblem(
            f"{value} does not fit in a Synapse LONG (64-bit signed integer)",
            "use a smaller number, or {type: string, value: ...} to store it as text",
        )
    return str(value)


def _infer_plain(value: Any) -> tuple[AnnotationType, str]:
    if isinstance(value, bool):
        return AnnotationType.BOOLEAN, "true" if value else "false"
    if isinstance(value, int):
        return AnnotationType.LONG, _check_long(value)
    if isinstance(value, float):
        return AnnotationType.DOUBLE, _double_wire(value)
    if isinstance(value, YamlTimestamp):
        return AnnotationType.TIMESTAMP_MS, _timestamp_from_yaml(value)
    if isinstance(value, str):
        return AnnotationType.STRING, value
    raise _ValueProblem(f"unsupported annotation value {value!r}")


def _coerce(value: Any, target: AnnotationType) -> str:
    """Convert one value of an explicitly typed annotation to its wire form."""
    if target is AnnotationType.STRING:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float):
            return _double_wire(value)
        return str(value)
    if target is AnnotationType.LONG:
        if isinstance(value, int) and not isinstance(value, bool):
            return _check_long(value)
        if isinstance(value, str) and _LONG_TEXT_RE.match(value):
            return _check_long(int(value))
        raise _ValueProblem(
            f"{value!r} is not a whole number (type: long)",
            "write an integer such as 3, or use type: double / string",
        )
    if target is AnnotationType.DOUBLE:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return _double_wire(float(value))
        if isinstance(value, str):
            if value in ("NaN", "Infinity", "-Infinity"):
                return value
            if _DOUBLE_TEXT_RE.match(value):
                return _double_wire(float(value))
        raise _ValueProblem(
            f"{value!r} is not a number (type: double)",
            "write a number such as 1.5 (NaN, Infinity and -Infinity are allowed as text)",
        )
    if target is AnnotationType.BOOLEAN:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower()
        raise _ValueProblem(f"{value!r} is not a boolean (type: boolean)", "write true or false")
    # TIMESTAMP_MS
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
            raise _ValueProblem(
                f"timestamp {value!r} has no timezone", "add Z (UTC) or an offset such as +02:00"
            )
    raise _ValueProblem(
        f"{value!r} is not a timestamp (type: timestamp)",
        "write an ISO 8601 date-time with a timezone (2024-05-01T00:00:00Z) or epoch milliseconds",
    )


_PLAIN_TOKEN_RE = re.compile(r"[-+]?[0-9A-Za-z_.:]+(?:[eE][-+]?[0-9_]+)?")
_LEADING_ZERO_RE = re.compile(r"^[-+]?0[0-9_]")
_TRAILING_ZERO_RE = re.compile(r"\.[0-9_]*[0-9]0+$")


def _is_lossy(written: str, value: int | float) -> bool:
    """True when the number a plain scalar becomes does not show what was written: leading
    zeros (``00123``), trailing decimal zeros beyond the first (``1.10``, ``2.50``), digit
    separators (``1_000``), sexagesimal or other bases."""
    if _LEADING_ZERO_RE.match(written) or "_" in written or ":" in written:
        return True
    if isinstance(value, int):
        return written.lstrip("+") != str(value)
    mantissa = re.split(r"[eE]", written)[0]
    return bool(_TRAILING_ZERO_RE.search(mantissa))


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if not close:
        close = [c for c in choices if c.lower() == word.lower()]
    return f"did you mean {close[0]!r}? " if close else ""


def _alias_key(name: str) -> str:
    # Synapse matches user and team names case-insensitively, ignoring non-alphanumerics.
    normalized = re.sub(r"[^a-z0-9]", "", name.lower())
    return normalized or name


class _ModelBuilder:
    def __init__(self, locator: Locator) -> None:
        self.locator = locator
        self.errors: list[ManifestError] = []
        self.storage_names: frozenset[str] = frozenset()
        self.storage_specs: dict[str, Mapping[str, Any]] = {}
        self.sts_above: list[str] = []
        self.warnings: list[ManifestWarning] = []
        self.texts: dict[str, list[str] | None] = {}

    def at(self, path: JsonPath, *, key: bool = False) -> SourceLocation:
        return self.locator.locate(path, key=key)

    def error(
        self, path: JsonPath, message: str, hint: str | None = None, *, key: bool = False
    ) -> None:
        self.errors.append(ManifestError(message, location=self.at(path, key=key), hint=hint))

    def written(self, path: JsonPath) -> str | None:
        """The characters of the plain scalar at ``path`` as written in its file, if readable."""
        source = self.locator.source_for(path)
        if source.path is None:
            return None
        key = str(source.path)
        if key not in self.texts:
            try:
                self.texts[key] = source.path.read_text(encoding="utf-8-sig").splitlines()
            except (OSError, UnicodeDecodeError):
                self.texts[key] = None
        lines = self.texts[key]
        loc = self.at(path)
        if lines is None or not 1 <= loc.line <= len(lines):
            return None
        match = _PLAIN_TOKEN_RE.match(lines[loc.line - 1][loc.column - 1 :])
        return match.group(0) if match else None

    def check_lossy(self, key: str, value: Any, path: JsonPath) -> None:
        """Warn when a plain number's stored form loses what was written (``00123``, ``1.10``):
        almost always a code or a version meant as text."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return
        written = self.written(path)
        if written is None or not _is_lossy(written, value):
            return
        stored = _double_wire(value) if isinstance(value, float) else str(value)
        self.warnings.append(
            ManifestWarning(
                f"annotation {key!r}: {written} is read as the number {stored}, which loses "
                "how it was written",
                self.at(path),
                f'quote it ("{written}") to keep it as text, or write {stored} if the number '
                "is meant",
            )
        )

    # -- top level ---------------------------------------------------------------------------

    def manifest(self, raw: Mapping[str, Any]) -> Manifest:
        version = raw.get("version")
        if isinstance(version, bool) or version != MANIFEST_VERSION:
            self.error(
                ("version",),
                f"unsupported manifest version {version!r}",
                "this synapse-declare reads manifests with `version: 1`",
            )
        self.storage_specs = dict(raw.get("storage_locations") or {})
        storage = self.storage_locations(raw.get("storage_locations") or {})
        self.storage_names = frozenset(storage)
        projects: list[ContainerSpec] = []
        seen: dict[str, SourceLocation] = {}
        aliases: dict[str, SourceLocation] = {}
        for i, item in enumerate(raw.get("projects") or []):
            path: JsonPath = ("projects", i)
            spec = self.container(item, path, EntityKind.PROJECT, "")
            if spec.name in seen:
                self.error(
                    (*path, "name"),
                    f"duplicate project name {spec.name!r} (also defined at {seen[spec.name]})",
                    "project names are unique across Synapse; declare each project once",
                )
            else:
                seen[spec.name] = self.at((*path, "name"))
            if spec.alias is not None:
                if spec.alias in aliases:
                    self.error(
                        (*path, "alias"),
                        f"duplicate project alias {spec.alias!r} "
                        f"(also used at {aliases[spec.alias]})",
                        "aliases are unique across Synapse",
                    )
                else:
                    aliases[spec.alias] = self.at((*path, "alias"))
            projects.append(spec)
        teams = build_teams(raw.get("teams") or [], self.locator, self.errors)
        policies = parse_policies(
            raw.get("policies"),
            [p.name for p in projects],
            self.error,
            self.at,
        )
        if policies.folders_inherit_strict:
            projects = [_strict_inheritance(p) for p in projects]
        if self.errors:
            raise ManifestErrors(_sorted(self.errors))
        frozen_storage: FrozenMap[str, StorageLocationSpec] = FrozenMap(storage)
        digest = _digest(projects, frozen_storage, teams)
        return Manifest(
            tuple(projects),
            frozen_storage,
            self.locator.files,
            digest,
            tuple(self.warnings),
            teams,
            policies,
        )

    def storage_locations(self, raw: Mapping[str, Any]) -> dict[str, StorageLocationSpec]:
        out: dict[str, StorageLocationSpec] = {}
        for name, spec in raw.items():
            self.storage_location_rules(name, spec)
            out[name] = StorageLocationSpec(
                name=name,
                type=spec["type"],
                bucket=spec.get("bucket"),
                base_key=spec.get("base_key"),
                sts_enabled=spec.get("sts_enabled"),
                endpoint_url=spec.get("endpoint_url"),
                description=spec.get("description"),
                banner=spec.get("banner"),
                location=self.at(("storage_locations", name), key=True),
            )
        return out

    def storage_location_rules(self, name: str, spec: Mapping[str, Any]) -> None:
        """What Synapse's storage-location processors would refuse (synapse-api.md §6.2)."""
        path: JsonPath = ("storage_locations", name)
        kind = spec["type"]
        needs_bucket = kind in ("external_s3", "external_google_cloud", "external_object_store")
        if needs_bucket and not spec.get("bucket"):
            self.error(path, f"an {kind} storage location needs a bucket", "add `bucket: NAME`")
        bucket = spec.get("bucket")
        if bucket and not BUCKET_RE.match(bucket):
            self.error(
                (*path, "bucket"),
                f"invalid bucket name {bucket!r}",
                "S3/GCS bucket names are 3-63 characters of lower-case letters, digits, dots and "
                "hyphens, starting and ending with a letter or digit",
            )
        if kind == "synapse_s3":
            for field in ("bucket", "base_key", "endpoint_url"):
                if spec.get(field) is not None:
                    self.error(
                        (*path, field),
                        f"{field} cannot be set on a synapse_s3 location: Synapse chooses it",
                        "remove it, or use type: external_s3 for your own bucket",
                    )
        endpoint = spec.get("endpoint_url")
        if endpoint is not None:
            problem = endpoint_url_problem(str(endpoint))
            if problem is not None:
                self.error((*path, "endpoint_url"), *problem)
        if kind == "external_object_store" and not spec.get("endpoint_url"):
            self.error(
                path,
                "an external_object_store location needs an endpoint_url",
                "add `endpoint_url: https://...` (the S3-compatible service)",
            )
        if spec.get("sts_enabled") and kind not in ("synapse_s3", "external_s3"):
            self.error(
                (*path, "sts_enabled"),
                f"STS is only available for synapse_s3 and external_s3 locations, not {kind}",
                "remove sts_enabled",
            )

    def storage_rules(self, raw: Mapping[str, Any], path: JsonPath, kind: EntityKind) -> None:
        """Upload-destination rules Synapse enforces (synapse-api.md §7.2, §8.3)."""
        refs = raw.get("storage")
        names = [refs] if isinstance(refs, str) else list(refs or [])
        known = [n for n in names if n in self.storage_specs]
        if len(names) > 10:
            self.error(
                (*path, "storage"),
                f"{len(names)} upload destinations; Synapse allows at most 10",
                "keep the 10 you need; the first is the default",
            )
        sts = [n for n in known if self.storage_specs[n].get("sts_enabled")]
        if sts and kind is EntityKind.PROJECT:
            self.error(
                (*path, "storage"),
                f"STS-enabled storage location {sts[0]!r} cannot be a project's upload destination",
                "Synapse allows STS only on folders: put it on a (new, empty) folder",
            )
        if sts and len(names) > 1:
            self.error(
                (*path, "storage"),
                f"STS-enabled storage location {sts[0]!r} must be the folder's only upload "
                "destination",
                "an STS-enabled folder cannot add other upload destinations",
            )
        if names and self.sts_above:
            self.error(
                (*path, "storage"),
                "cannot set upload destinations inside an STS-enabled folder "
                f"({self.sts_above[-1]})",
                "Synapse does not allow overriding storage below an STS-enabled folder; remove "
                "`storage` here",
            )
        migration = raw.get("migrate_existing")
        if migration is not None and migration.get("to") in self.storage_specs:
            target = self.storage_specs[migration["to"]]
            mpath: JsonPath = (*path, "migrate_existing", "to")
            if target["type"] not in ("synapse_s3", "external_s3"):
                self.error(
                    mpath,
                    f"files can only be migrated into S3 storage, not {target['type']}",
                    "Synapse's server-side copy works between S3 locations only",
                )
            elif target["type"] == "synapse_s3" and not any(
                target.get(f) for f in ("sts_enabled", "description", "banner")
            ):
                self.error(
                    mpath,
                    f"{migration['to']!r} is Synapse's default storage (id 1), which Synapse "
                    "does not let users copy files into",
                    "migrate into a storage location you create: an external_s3 bucket, or a "
                    "synapse_s3 location with a description",
                )
            if target.get("sts_enabled"):
                self.error(
                    mpath,
                    f"cannot migrate existing files into STS-enabled location {migration['to']!r}",
                    "Synapse only lets files with STS storage live in a folder whose own upload "
                    "destination is that location, and only lets an empty folder get one: "
                    "declare a new folder with `storage: "
                    f"{migration['to']}` and `move_files_from: <folder with the files>`",
                )

    # -- containers --------------------------------------------------------------------------

    def container(
        self, raw: Mapping[str, Any], path: JsonPath, kind: EntityKind, parent: str
    ) -> ContainerSpec:
        raw_name: str = raw["name"]
        problem = synapse_name_problem(raw_name)
        if problem is not None:
            self.error((*path, "name"), *problem)
        name = java_trim(raw_name)
        address = str(Address.container(kind.value, name, parent or None))

        description = raw.get("description")
        if description is not None and len(description) > MAX_DESCRIPTION_LENGTH:
            self.error(
                (*path, "description"),
                f"description is {len(description)} characters long; Synapse allows at most "
                f"{MAX_DESCRIPTION_LENGTH}",
                "shorten it (use the wiki for long text)",
            )

        alias = raw.get("alias")
        if alias is not None and not ALIAS_RE.match(alias):
            self.error(
                (*path, "alias"),
                f"invalid project alias {alias!r}",
                "aliases may only contain letters (a-z, A-Z), digits (0-9) and underscores",
            )

        annotations = None
        if "annotations" in raw:
            annotations = self.annotations(raw["annotations"], (*path, "annotations"))

        acl: AclSpec | Inherit | None = None
        raw_acl = raw.get("acl")
        if raw_acl == "inherit":
            if kind is EntityKind.PROJECT:
                self.error(
                    (*path, "acl"),
                    "a project always has its own ACL; `acl: inherit` is only for folders",
                    "list the project's ACL entries (keep `self: administer`), or omit acl to "
                    "leave it unmanaged",
                )
            else:
                acl = INHERIT
        elif raw_acl is not None:
            acl = self.acl(raw_acl, (*path, "acl"))

        wiki = self.wiki(raw["wiki"], (*path, "wiki"), root=True) if "wiki" in raw else None

        self.storage_rules(raw, path, kind)
        refs = raw.get("storage")
        own_sts = [
            n
            for n in ([refs] if isinstance(refs, str) else list(refs or []))
            if (self.storage_specs.get(n) or {}).get("sts_enabled")
        ]
        # A project cannot be STS-enabled (reported above); only folders start an STS path.
        own_sts = own_sts if kind is EntityKind.FOLDER else []
        if own_sts:
            self.sts_above.append(f"{name!r} uses {own_sts[0]!r}")
        folders: list[ContainerSpec] = []
        seen: dict[str, SourceLocation] = {}
        for i, item in enumerate(raw.get("folders") or []):
            child_path: JsonPath = (*path, "folders", i)
            child = self.container(item, child_path, EntityKind.FOLDER, address)
            if child.name in seen:
                self.error(
                    (*child_path, "name"),
                    f"duplicate folder name {child.name!r} in {kind.value} {name!r} "
                    f"(also defined at {seen[child.name]})",
                    "names are unique among siblings (case-sensitively); rename or merge them",
                )
            else:
                seen[child.name] = self.at((*child_path, "name"))
            folders.append(child)
        if own_sts:
            self.sts_above.pop()

        storage = None
        if "storage" in raw:
            refs = raw["storage"]
            if isinstance(refs, str):
                storage = (refs,)
                self.storage_ref(refs, (*path, "storage"))
            else:
                storage = tuple(refs)
                for i, ref in enumerate(refs):
                    self.storage_ref(ref, (*path, "storage", i))

        migration = None
        if "migrate_existing" in raw:
            spec = raw["migrate_existing"]
            mpath: JsonPath = (*path, "migrate_existing")
            self.storage_ref(spec["to"], (*mpath, "to"))
            migration = MigrationSpec(spec["to"], spec.get("versions", "latest"), self.at(mpath))

        return ContainerSpec(
            kind=kind,
            name=name,
            description=description,
            alias=alias,
            annotations=annotations,
            acl=acl,
            wiki=wiki,
            folders=tuple(folders),
            storage=storage,
            migrate_existing=migration,
            move_files_from=self.move_files_from(raw, path, name),
            location=self.at(path),
            address=address,
            prune={True: Prune.FOLDERS, "with-files": Prune.WITH_FILES}.get(
                raw.get("prune", False), Prune.OFF
            ),
            protect=bool(raw.get("protect", False)),
            unprotect=raw.get("protect") is False,
            previously=tuple(str(p) for p in raw.get("previously") or ()),
        )

    def move_files_from(self, raw: Mapping[str, Any], path: JsonPath, name: str) -> str | None:
        source = raw.get("move_files_from")
        if source is None:
            return None
        spath: JsonPath = (*path, "move_files_from")
        parts = [p for p in source.split("/") if p.strip()]
        if not parts or any(synapse_name_problem(p) for p in parts):
            self.error(
                spath,
                f"invalid folder path {source!r}",
                "write the folder's path from the project, e.g. `Raw Data` or `Raw Data/RNAseq`",
            )
            return None
        refs = raw.get("storage")
        names = [refs] if isinstance(refs, str) else list(refs or [])
        sts = [n for n in names if (self.storage_specs.get(n) or {}).get("sts_enabled")]
        if len(names) != 1 or not sts:
            self.error(
                spath,
                "move_files_from moves files into this folder's STS-enabled storage, but the "
                "folder has none",
                "give this folder `storage: <an sts_enabled location>` as its only destination",
            )
        if "migrate_existing" in raw:
            self.error(
                spath,
                "use either move_files_from or migrate_existing on a folder, not both",
                "files moved in are already copied into this folder's storage",
            )
        return "/".join(java_trim(p) for p in parts)

    def storage_ref(self, name: str, path: JsonPath) -> None:
        if name in self.storage_names:
            return
        if self.storage_names:
            known = ", ".join(sorted(self.storage_names))
            hint = f"{_did_you_mean(name, self.storage_names)}defined storage locations: {known}"
        else:
            hint = "define it under the top-level storage_locations: mapping"
        self.error(path, f"unknown storage location {name!r}", hint)

    # -- annotations -------------------------------------------------------------------------

    def annotations(
        self, raw: Mapping[str, Any], path: JsonPath
    ) -> FrozenMap[str, AnnotationValue]:
        if len(raw) > MAX_ANNOTATION_KEYS:
            self.error(
                path,
                f"{len(raw)} annotation keys; Synapse allows at most {MAX_ANNOTATION_KEYS}",
                "remove some keys",
            )
        out: dict[str, AnnotationValue] = {}
        for key, value in raw.items():
            kpath: JsonPath = (*path, key)
            if key.lower() in RESERVED_ANNOTATION_KEYS:
                self.error(
                    kpath,
                    f"annotation key {key!r} is reserved by Synapse",
                    "choose another key",
                    key=True,
                )
                continue
            if not ANNOTATION_KEY_RE.match(key):
                self.error(
                    kpath,
                    f"invalid annotation key {key!r}",
                    "annotation keys may only contain letters, numbers, '_', '.' and ','",
                    key=True,
                )
                continue
            parsed = self.annotation(key, value, kpath)
            if parsed is not None:
                out[key] = parsed
        return FrozenMap(out)

    def annotation(self, key: str, value: Any, path: JsonPath) -> AnnotationValue | None:
        if isinstance(value, Mapping):
            target = _EXPLICIT_TYPES[value["type"]]
            raw_values = value["value"]
            vpath: JsonPath = (*path, "value")
            items = raw_values if isinstance(raw_values, list) else [raw_values]
            wires: list[str] = []
            ok = True
            for i, item in enumerate(items):
                ipath = (*vpath, i) if isinstance(raw_values, list) else vpath
                if target is AnnotationType.STRING:
                    self.check_lossy(key, item, ipath)
                try:
                    wires.append(_coerce(item, target))
                except _ValueProblem as problem:
                    self.error(ipath, f"annotation {key!r}: {problem.message}", problem.hint)
                    ok = False
            if not ok:
                return None
            return self.finish_annotation(key, target, wires, path)

        items = value if isinstance(value, list) else [value]
        inferred: list[tuple[AnnotationType, str]] = []
        ok = True
        for i, item in enumerate(items):
            ipath = (*path, i) if isinstance(value, list) else path
            self.check_lossy(key, item, ipath)
            try:
                inferred.append(_infer_plain(item))
            except _ValueProblem as problem:
                self.error(ipath, f"annotation {key!r}: {problem.message}", problem.hint)
                ok = False
                continue
            first_type = inferred[0][0]
            this_type = inferred[-1][0]
            if this_type is not first_type:
                self.error(
                    ipath,
                    f"annotation {key!r} mixes value types: {this_type.value} after "
                    f"{first_type.value}",
                    "make every value of the list the same type (write 1.0 for a DOUBLE), or "
                    "use {type: string, value: [...]} to store all of them as text",
                )
                return None
        if not ok:
            return None
        return self.finish_annotation(key, inferred[0][0], [w for _, w in inferred], path)

    def finish_annotation(
        self, key: str, type_: AnnotationType, wires: list[str], path: JsonPath
    ) -> AnnotationValue | None:
        if not wires:
            self.error(path, f"annotation {key!r} has no values", "remove the key instead")
            return None
        if len(wires) > MAX_ANNOTATION_VALUES:
            self.error(
                path,
                f"annotation {key!r} has {len(wires)} values; Synapse allows at most "
                f"{MAX_ANNOTATION_VALUES}",
                "store fewer values",
            )
            return None
        if type_ is AnnotationType.STRING:
            total = sum(_utf16_length(w) for w in wires)
            if total > MAX_STRING_ANNOTATION_CHARS:
                self.error(
                    path,
                    f"annotation {key!r} has {total} characters of text in total; Synapse allows "
                    f"at most {MAX_STRING_ANNOTATION_CHARS} per key",
                    "shorten the values (long text belongs in the wiki or description)",
                )
                return None
        return AnnotationValue(type_, tuple(wires))

    # -- ACLs --------------------------------------------------------------------------------

    def acl(self, raw: Mapping[str, Any], path: JsonPath) -> AclSpec:
        entries: list[AclEntry] = []
        identities: dict[tuple[str, object], tuple[str, SourceLocation]] = {}
        for key, value in raw.items():
            epath: JsonPath = (*path, key)
            try:
                principal = parse_principal(key)
            except ValueError as exc:
                suggestion = _principal_suggestion(key)
                prefix = f"did you mean {suggestion!r}? " if suggestion else ""
                self.error(epath, str(exc), f"{prefix}a principal is {PRINCIPAL_FORMS}", key=True)
                continue
            identity = self.identity(principal)
            here = self.at(epath, key=True)
            if identity in identities:
                other, where = identities[identity]
                self.error(
                    epath,
                    f"{key!r} and {other!r} are the same principal (first at {where})",
                    "give each principal one entry",
                    key=True,
                )
                continue
            identities[identity] = (key, here)
            access, level = self.permission(value, epath)
            if access is None:
                continue
            if principal.id == ANONYMOUS_ID:
                self.error(
                    epath,
                    "permissions cannot be given to the anonymous user (273950)",
                    "to share with everyone, use PUBLIC: view",
                    key=True,
                )
                continue
            if principal.id == PUBLIC_ID and access != PERMISSION_LEVELS["view"]:
                self.error(
                    epath,
                    f"{key} may only be given view (READ); Synapse rejects any other access "
                    "for the public group",
                    "use `PUBLIC: view`; to let every logged-in user download, add "
                    "`AUTHENTICATED_USERS: download`",
                )
                continue
            if principal.id == AUTHENTICATED_USERS_ID and access - {"READ", "DOWNLOAD"}:
                # Synapse accepts it, but anyone can register an account: say so at the entry.
                extra = ", ".join(sorted(access - {"READ", "DOWNLOAD"}))
                self.warnings.append(
                    ManifestWarning(
                        f"{key} is given {extra}: every Synapse account (anyone can register "
                        "one) gets these rights here",
                        here,
                        "give write access to a team (team:NAME: edit) and at most "
                        "`AUTHENTICATED_USERS: download`",
                    )
                )
            entries.append(AclEntry(principal, access, level, here))
        return AclSpec(tuple(entries), self.at(path))

    @staticmethod
    def identity(principal: PrincipalRef) -> tuple[str, object]:
        if principal.id is not None:
            return ("id", principal.id)
        if principal.name is not None:
            return (principal.kind.value, _alias_key(principal.name))
        return (principal.kind.value, None)

    def permission(self, value: Any, path: JsonPath) -> tuple[frozenset[str] | None, str | None]:
        if isinstance(value, str):
            access = PERMISSION_LEVELS.get(value)
            if access is None:
                levels = ", ".join(PERMISSION_LEVELS)
                self.error(
                    path,
                    f"unknown permission level {value!r}",
                    f"{_did_you_mean(value, PERMISSION_LEVELS)}use one of {levels}, or a list "
                    "of access types such as [READ, DOWNLOAD]",
                )
                return None, None
            return access, value
        ok = True
        for i, item in enumerate(value):
            if item not in ENTITY_ACCESS_TYPES:
                allowed = ", ".join(sorted(ENTITY_ACCESS_TYPES))
                self.error(
                    (*path, i),
                    f"unknown access type {item!r}",
                    f"{_did_you_mean(str(item), ENTITY_ACCESS_TYPES)}allowed: {allowed}",
                )
                ok = False
        if not value:
            self.error(path, "an ACL entry needs at least one access type", "e.g. [READ]")
            ok = False
        return (frozenset(value), None) if ok else (None, None)

    # -- wikis -------------------------------------------------------------------------------

    def wiki(self, raw: Mapping[str, Any], path: JsonPath, *, root: bool) -> WikiSpec:
        title = raw.get("title", "")
        markdown = raw.get("markdown")
        source = raw.get("markdown_file")
        if markdown is not None and source is not None:
            self.error(
                (*path, "markdown_file"),
                "a wiki page takes either markdown or markdown_file, not both",
                "keep one of them",
                key=True,
            )
        elif source is not None:
            markdown = self.read_markdown(source, (*path, "markdown_file"))
        pages: list[WikiSpec] = []
        seen: dict[str, SourceLocation] = {}
        for i, item in enumerate(raw.get("pages") or []):
            ppath: JsonPath = (*path, "pages", i)
            page = self.wiki(item, ppath, root=False)
            if page.title in seen:
                self.error(
                    (*ppath, "title"),
                    f"duplicate wiki page title {page.title!r} under the same page "
                    f"(also at {seen[page.title]})",
                    "sub-pages are matched by title; give each sub-page of a page its own title",
                )
            else:
                seen[page.title] = self.at((*ppath, "title"))
            pages.append(page)
        return WikiSpec(
            title=title,
            markdown=markdown or "",
            pages=tuple(pages),
            location=self.at(path),
            markdown_source=source,
        )

    def read_markdown(self, written: str, path: JsonPath) -> str | None:
        base = self.locator.source_for(path).base_dir
        try:
            data = read_confined(written, base)
        except ConfinedFileError as problem:
            self.error(path, problem.message, problem.hint)
            return None
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            self.error(path, f"markdown_file {written!r} is not UTF-8 text", "save it as UTF-8")
            return None
        return text.replace("\r\n", "\n")


def _sorted(errors: list[ManifestError]) -> list[ManifestError]:
    def key(e: ManifestError) -> tuple[str, int, int]:
        loc = e.location
        return (loc.file, loc.line, loc.column) if loc else ("", 0, 0)

    return sorted(errors, key=key)


def _canonical_wiki(wiki: WikiSpec) -> dict[str, Any]:
    return {
        "title": wiki.title,
        "markdown": wiki.markdown,
        "pages": [_canonical_wiki(p) for p in sorted(wiki.pages, key=lambda p: p.title)],
    }


def _canonical_container(spec: ContainerSpec) -> dict[str, Any]:
    acl: Any
    if spec.acl is None:
        acl = None
    elif isinstance(spec.acl, Inherit):
        acl = spec.acl.value
    else:
        acl = {str(e.principal): sorted(e.access) for e in spec.acl.entries}
    return {
        "kind": spec.kind.value,
        "name": spec.name,
        "description": spec.description,
        "alias": spec.alias,
        "annotations": None
        if spec.annotations is None
        else {k: [v.type.value, list(v.values)] for k, v in spec.annotations.items()},
        "acl": acl,
        "wiki": None if spec.wiki is None else _canonical_wiki(spec.wiki),
        "folders": [_canonical_container(f) for f in sorted(spec.folders, key=lambda f: f.name)],
        "storage": None if spec.storage is None else list(spec.storage),
        "migrate_existing": None
        if spec.migrate_existing is None
        else [spec.migrate_existing.to, spec.migrate_existing.versions],
        "move_files_from": spec.move_files_from,
    }


def canonical_form(
    projects: Iterable[ContainerSpec], storage_locations: Mapping[str, StorageLocationSpec]
) -> dict[str, Any]:
    """The JSON-able form the digest is computed over (no file names or positions)."""
    return {
        "version": MANIFEST_VERSION,
        "projects": [_canonical_container(p) for p in sorted(projects, key=lambda p: p.name)],
        "storage_locations": {
            name: {
                "type": s.type,
                "bucket": s.bucket,
                "base_key": s.base_key,
                "sts_enabled": s.sts_enabled,
                "endpoint_url": s.endpoint_url,
                "description": s.description,
                "banner": s.banner,
            }
            for name, s in storage_locations.items()
        },
    }


def _digest(
    projects: Iterable[ContainerSpec],
    storage_locations: Mapping[str, StorageLocationSpec],
    teams: tuple[TeamSpec, ...] = (),
) -> str:
    form = canonical_form(projects, storage_locations)
    if teams:  # absent when no teams, so manifests without teams keep their digest
        form["teams"] = [t.canonical() for t in teams]
    text = json.dumps(
        form,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _strict_inheritance(spec: ContainerSpec) -> ContainerSpec:
    """``folders_inherit: strict``: a folder that declares no ``acl:`` must inherit, so an own
    ACL found on it is drift the plan removes."""
    folders = tuple(_strict_inheritance(child) for child in spec.folders)
    acl = spec.acl
    if acl is None and spec.kind is EntityKind.FOLDER:
        acl = INHERIT
    return dataclasses.replace(spec, acl=acl, folders=folders)


def build_model(raw: Mapping[str, Any], locations: Locator | SourceMap | None = None) -> Manifest:
    """Build the model from schema-valid manifest data; raise :class:`ManifestErrors` listing
    every semantic problem.

    ``locations`` maps JSON paths to source positions: a :class:`Locator` for merged files, a
    :class:`SourceMap` for one file; with ``None`` relative ``markdown_file`` paths resolve
    against the current directory and errors are located at ``<manifest>:1:1``.
    """
    if isinstance(locations, SourceMap):
        locator = Locator.for_source(locations)
    elif locations is None:
        locator = Locator()
    else:
        locator = locations
    return _ModelBuilder(locator).manifest(raw)


__all__ = [
    "ENTITY_ACCESS_TYPES",
    "INHERIT",
    "PERMISSION_LEVELS",
    "AclEntry",
    "AclSpec",
    "AnnotationType",
    "AnnotationValue",
    "ContainerSpec",
    "EntityKind",
    "FrozenMap",
    "Inherit",
    "Manifest",
    "ManifestWarning",
    "MigrationSpec",
    "PrincipalKind",
    "PrincipalRef",
    "StorageLocationSpec",
    "WikiSpec",
    "build_model",
    "canonical_form",
    "level_for",
    "parse_principal",
    "synapse_name_problem",
]
