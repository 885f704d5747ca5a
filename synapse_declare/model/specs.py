"""The model's frozen, I/O-free specs: what a manifest declares, as the planner diffs it."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import TypeVar

from synapse_declare.errors import SourceLocation
from synapse_declare.policy_spec import Policies

from .principals import PrincipalRef
from .teams import TeamSpec

MANIFEST_VERSION = 1
MAX_DESCRIPTION_LENGTH = 1000
MIGRATION_VERSIONS = ("latest", "all", "new")

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


@dataclass(frozen=True, slots=True)
class AnnotationValue:
    """One annotation: its type and values in wire form (the strings Synapse stores)."""

    type: AnnotationType
    values: tuple[str, ...]


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
    # Where `prune:` is written (its key), so a refused prune points at the setting that asked
    # for it rather than at the container's first line; None when no `prune:` is written.
    prune_location: SourceLocation | None = field(default=None, compare=False)


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
