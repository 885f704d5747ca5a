"""What every resource kind shares: the :class:`Address`, the operations, the kind protocol and
the apply context (the ambiguous-write resolution every apply step goes through).

An address names one managed thing, the way Terraform's resource addresses do::

    project:AD Portal                          a project
    project:AD Portal/folder:Raw Data          a folder (path segments: type:name)
    project:AD Portal/folder:Raw Data#acl      a sub-resource of a container (sub-key)
    project:AD Portal#wiki/Methods/Imaging     a wiki page by title path
    storage:lab-bucket                         a storage location
    team:Center A                              a team
    team:Center A/member:jdoe                  one person's membership of a team
    principal:user:jdoe                        a resolved principal (observed keys)

It is the one place addresses are parsed and formatted; plan changes, ``depends_on``, observed
keys, plan files and display all go through it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ..errors import AmbiguousWrite, ConflictError, SynapseDeclareError
from ..plan import Change, Plan, Resource

if TYPE_CHECKING:
    # Type-only: the client and progress reporter are handed in by the applier at run time, and
    # the model builds its addresses with this module (a runtime import would be a cycle).
    from ..client.s3 import DestinationReader
    from ..client.synapse import SynapseAPI
    from ..migration import MigrationOptions
    from ..model import ContainerSpec, Manifest
    from ..progress import Progress
    from ..state import LiveContainer, LiveState
    from ..storage import LiveStorage

T = TypeVar("T")
# What a kind plans from: a ContainerSpec for kinds planned per declared container, the whole
# Manifest for kinds planned once (teams, storage locations).
S_contra = TypeVar("S_contra", contravariant=True)
MAX_AMBIGUOUS_ATTEMPTS = 4

# Segment types, in the order they may nest. A path part not starting with one of them belongs
# to the previous segment's name (a name may contain "/" where Synapse allows it, e.g. wikis).
# "entity": a file, table or view below a managed container (only ``folders_inherit: strict``
# addresses one, to remove its own ACL).
SEGMENT_TYPES = ("project", "folder", "entity", "storage", "principal", "acl", "team", "member")


@dataclass(frozen=True, slots=True, order=True)
class Address:
    """Kind-qualified path segments plus an optional sub-key (``#acl``, ``#wiki/Sub``, ...)."""

    segments: tuple[tuple[str, str], ...]
    sub: str | None = None

    @classmethod
    def parse(cls, text: str) -> Address:
        path, hash_, sub = text.partition("#")
        segments: list[tuple[str, str]] = []
        for part in path.split("/"):
            kind, colon, name = part.partition(":")
            if colon and kind in SEGMENT_TYPES:
                segments.append((kind, name))
            elif segments:
                last_kind, last_name = segments[-1]
                segments[-1] = (last_kind, f"{last_name}/{part}")
            else:
                raise ValueError(f"not a resource address: {text!r}")
        return cls(tuple(segments), sub if hash_ else None)

    @classmethod
    def container(cls, kind: str, name: str, parent: str | None = None) -> Address:
        base = cls.parse(parent).segments if parent else ()
        return cls((*base, (kind, name)))

    @classmethod
    def storage(cls, name: str) -> Address:
        return cls((("storage", name),))

    def __str__(self) -> str:
        path = "/".join(f"{kind}:{name}" for kind, name in self.segments)
        return path if self.sub is None else f"{path}#{self.sub}"

    def owner(self) -> Address:
        """The container (or location) this address belongs to: the address without sub-key."""
        return Address(self.segments)

    def with_sub(self, sub: str) -> Address:
        return Address(self.segments, sub)

    @property
    def kind(self) -> str:
        """The last segment's type: ``project``, ``folder``, ``storage``..."""
        return self.segments[-1][0]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for _, name in self.segments)

    @property
    def display_path(self) -> str:
        """``project:A/folder:B#acl`` → ``A/B`` (what people see)."""
        return "/".join(self.names)

    @property
    def in_folder(self) -> bool:
        """Whether the owner is a folder (not a project or a location)."""
        return self.kind == "folder"


def sub_address(owner: str, sub: str) -> str:
    """``owner#sub`` as a string, e.g. for observed keys and change addresses."""
    return str(Address.parse(owner).with_sub(sub))


def storage_address(name: str) -> str:
    return str(Address.storage(name))


def owner_of(address: str) -> str:
    return str(Address.parse(address).owner())


# ---------------------------------------------------------------------------------------------
# Operations and the kind protocol


class Operation(StrEnum):
    """What can be done to a kind. ``prune`` (issue 11) and ``export`` (issue 14) are declared
    here so the registry can refuse them clearly for a kind that does not implement them."""

    PLAN = "plan"
    APPLY = "apply"
    PRUNE = "prune"
    EXPORT = "export"


class UnsupportedOperation(SynapseDeclareError):
    """An operation asked of a resource kind that does not implement it."""


@dataclass(frozen=True, slots=True)
class BundleFlags:
    """The ``bundle2`` flags a kind needs for one entity; the reader sends the union of every
    kind's flags in ONE request per entity."""

    entity: bool = False
    annotations: bool = False
    acl: bool = False
    root_wiki: bool = False
    permissions: bool = False

    def __or__(self, other: BundleFlags) -> BundleFlags:
        return BundleFlags(
            entity=self.entity or other.entity,
            annotations=self.annotations or other.annotations,
            acl=self.acl or other.acl,
            root_wiki=self.root_wiki or other.root_wiki,
            permissions=self.permissions or other.permissions,
        )

    @property
    def any(self) -> bool:
        return self.entity or self.annotations or self.acl or self.root_wiki

    def query(self) -> dict[str, bool]:
        """As ``SynapseAPI.bundle`` keyword arguments (only the flags that are set)."""
        named = {
            "includeEntity": self.entity,
            "includeAnnotations": self.annotations,
            "includeAccessControlList": self.acl,
            "includeRootWikiId": self.root_wiki,
            "includePermissions": self.permissions,
        }
        return {k: v for k, v in named.items() if v}


@dataclass
class ApplyContext:
    """One apply run's shared state, handed to every kind's apply step.

    ``ids``/``wiki_ids``/``locations`` carry what earlier changes created to the changes that
    depend on them (a folder needs its parent's new id; an upload destination a new location).
    """

    api: SynapseAPI
    plan: Plan
    progress: Progress
    migration_options: MigrationOptions | None = None  # None → its defaults
    # endpoint_url → the reader that verifies copies (None → DestinationReader.from_settings)
    reader_factory: Callable[[str | None], DestinationReader] | None = None
    ids: dict[str, str] = field(default_factory=dict)
    wiki_ids: dict[str, str] = field(default_factory=dict)
    locations: dict[str, int] = field(default_factory=dict)
    soft_failures: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def id_of(self, address: str) -> str:
        with self.lock:
            return self.ids[address]

    def record(self, address: str, syn_id: str) -> None:
        with self.lock:
            self.ids[address] = syn_id

    def resolve(self, what: str, attempt: Callable[[], T], check: Callable[[], T | None]) -> T:
        """Run a write; on an unknown outcome, ``check`` returns the result if it took effect,
        None if the object is untouched (then retry), or raises ConflictError."""
        for number in range(1, MAX_AMBIGUOUS_ATTEMPTS + 1):
            try:
                return attempt()
            except AmbiguousWrite as exc:
                self.progress.note(f"{what}: {exc}; reading it back")
                found = check()
                if found is not None:
                    self.progress.note(f"{what}: the write had taken effect")
                    return found
                if number == MAX_AMBIGUOUS_ATTEMPTS:
                    raise
                self.progress.note(f"{what}: not applied yet; retrying ({number})")
        raise AssertionError("unreachable")

    def acl_entries(self, change: Change) -> list[dict[str, Any]] | None:
        """The change's desired ACL, with each declared team that this apply created in place of
        its stand-in id (``pending_teams``: placeholder → team address; see resources.team)."""
        entries = change.desired.get("acl")
        if entries is None:
            return None
        pending = change.desired.get("pending_teams") or {}
        return [
            {**e, "principalId": int(self.id_of(pending[str(e["principalId"])]))}
            if str(e["principalId"]) in pending
            else dict(e)
            for e in entries
        ]

    @staticmethod
    def conflict(change: Change, detail: str) -> ConflictError:
        return ConflictError(
            f"{change.address}: {detail}; nothing was overwritten",
            hint="someone changed it since the plan was made: run 'synapse-declare plan' again",
        )


@dataclass
class PlanContext:
    """What one plan run shares with every kind it walks: the manifest, the clock and the guard
    limits, the display names of principals (every ACL field is shown by name), and the sinks
    where kinds leave warnings and the lines about new PUBLIC / AUTHENTICATED_USERS grants (the
    planner puts both at the top of the plan, once each)."""

    manifest: Manifest
    now: datetime
    max_removals: int
    # principal id → "user:jdoe", "team:Curators", "PUBLIC"... (live ACLs, resolved principals
    # and the groups every Synapse has); a kind adds what only its spec knows (``self``).
    names: Mapping[int, str]
    warnings: list[str] = field(default_factory=list)
    public: list[str] = field(default_factory=list)
    # Containers this plan restores from the trash: what they hold is compared by the next plan
    # (it cannot be read until they are back), so the planner does not descend into them.
    restored: set[str] = field(default_factory=set)


class Reader(Protocol):
    """Anything the state reader must fetch for: a kind, or an aspect of an entity that has no
    change of its own (annotations and ACL are written inside the container's etag-guarded
    update, so they are aspects, not kinds). The reader batches: it asks every reader, then
    sends ONE request per entity."""

    name: str

    def bundle_flags(self, spec: ContainerSpec, own_acl: bool) -> BundleFlags:
        """What ``bundle2`` must include for ``spec`` (an existing entity; ``own_acl`` from its
        children page)."""
        ...

    def observe(self, spec: ContainerSpec, live: LiveContainer | None) -> Mapping[str, str | None]:
        """The etags (or absence, ``None``) a saved plan re-checks before applying: what this
        reader's part of the plan was decided on. Keys are addresses."""
        ...


class StorageObserver(Protocol):
    """A kind whose live state is read once per manifest after the entity walk (storage
    locations, upload destinations, migration indexes): what it observes for stale plans."""

    def observe_storage(
        self, manifest: Manifest, storage: LiveStorage
    ) -> Mapping[str, str | None]: ...


class ResourceKind(Reader, Protocol[S_contra]):
    """One kind of managed thing. A kind module defines one object satisfying this protocol and
    the registry maps its :class:`~synapse_declare.plan.Resource` values to it.

    ``S_contra`` is what the kind plans from: a :class:`~synapse_declare.model.ContainerSpec`
    (called once per declared project or folder, in tree order) or the whole
    :class:`~synapse_declare.model.Manifest` (called once per plan); the registry says which."""

    def plan(self, spec: S_contra, live: LiveState, ctx: PlanContext) -> Sequence[Change]:
        """The diff: the changes (no-ops included: apply records their ids) that make live
        Synapse match ``spec``, with ``Address``-built addresses, ``depends_on`` on what must
        exist first and typed payloads (``resources.payloads``). Pure: no I/O. Bad or refused
        input raises a located :class:`~synapse_declare.errors.PolicyViolation`."""
        ...

    @property
    def resources(self) -> tuple[Resource, ...]:
        """The plan ``resource`` values this kind's changes carry."""
        ...

    @property
    def operations(self) -> frozenset[Operation]:
        """What this kind implements; the registry refuses anything else."""
        ...

    def label(self, resource: Resource) -> str:
        """The noun a plan shows for a change of this kind (``folder``, ``wiki page``)."""
        ...

    def apply(self, ctx: ApplyContext, change: Change) -> str:
        """Carry out one actionable change; returns a short description of what was done."""
        ...

    def record_existing(self, ctx: ApplyContext, change: Change) -> None:
        """A no-op change: remember its id for the changes that depend on it."""
        ...

    def needs_certification(self, change: Change) -> bool:
        """Whether Synapse refuses ``change`` to a user who has not passed its certification
        quiz (the planner refuses such a plan before anything is written). Pure."""
        ...
