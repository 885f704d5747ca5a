"""Storage migration: move existing files of a container to another storage location, server-side.

Two phases, as in ``synapseutils`` but planned and verified:

1. :func:`index_migration` (read-only, called by ``plan``) walks the container and lists every
   file version to move (:class:`MigrationItem`), those already in the destination and those that
   cannot move, with the reason (:class:`SkippedItem`).
2. :func:`run_migration` (called by ``apply``) moves them. Per **source file handle** (a handle
   shared by several entities or versions is copied **once**):

   * **copy** by the cheapest path for that file (:mod:`synapse_declare.copypaths`: into an S3
     bucket of the user's, an S3 copy with the user's credentials for external-S3 sources or a
     relay for small Synapse-storage files, each registered with ``POST
     /externalFileHandle/s3``), else with Synapse's multipart copy
     (``MultipartUploadCopyRequest``): Synapse signs one S3 ``UploadPartCopy`` URL per part; we
     PUT each with exactly its signed headers (a separate HTTP session: the Synapse token never
     goes to S3), read the part ETag from S3's XML, report it with ``add/{n}`` and ``complete``
     the upload. No byte passes through this machine;
   * **verify** before anything points at the copy: the new handle is in the destination and
     carries the source MD5, and the destination object's size (HEAD) and MD5 equal the source
     handle's — the MD5 proven by the transfer, or the object streamed through a hash (a
     multipart ETag is never taken for an MD5), or for large copies under ``verify="auto"`` the
     size and S3's part checksums (:func:`copypaths.verification_plan`). A mismatch is a
     :class:`VerificationError` and the entity is **not** repointed;
   * **repoint** each entity version: ``latest``/``all`` swap the version's file handle in place
     (``PUT /entity/{id}/version/{n}/filehandle`` with the old handle id, so a version that
     changed since the plan answers 412 and is reported ``source_changed``); ``new`` creates a
     new version pointing at the copy (``PUT /entity/{id}?newVersion=true`` with the entity
     read just before the copy, refused when its etag differs from the planned one).

   Source objects and handles are never deleted or written: the copy reads them, nothing else.

Every step is recorded in a :class:`~synapse_declare.journal.Journal` as it completes, so a killed
run resumes: a verified copy is reused (no second copy), an unfinished multipart copy is resumed
(the identical request makes Synapse return the same upload and its ``partsState``; only missing
parts are copied), a repointed version is not touched again.

Version strategies: ``latest`` (default: the current version of each file is repointed in place;
the entity keeps its version number and history, only where the bytes live changes), ``all``
(every version repointed in place), ``new`` (synapseutils' default: a new version pointing at the
copy; older versions keep their source handles and their storage).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from .client.s3 import (
    DestinationReader,
    PartCopier,
    describe_exception,
    object_key_from_url,
)
from .client.synapse import SynapseAPI
from .copypaths import (
    DEFAULT_MD5_MAX,
    DEFAULT_RELAY_MAX,
    EXTERNAL_S3_LOCATION,
    CopyEstimate,
    CopyPath,
    FallBack,
    FastCopier,
    RelayUrls,
    adaptive_part_size,
    choose_path,
    composite_etag,
    estimate,
    verification_plan,
)
from .errors import (
    AmbiguousWrite,
    Forbidden,
    MigrationError,
    NotFound,
    PartCopyError,
    PreconditionFailed,
    S3AccessError,
    SynapseDeclareError,
    VerificationError,
)
from .journal import (
    COPY_COMPLETED,
    COPY_REJECTED,
    COPY_VERIFIED,
    ITEM_REPOINTED,
    CopyRecord,
    Journal,
)
from .progress import Progress
from .units import human_bytes

log = logging.getLogger(__name__)

T = TypeVar("T")

MODEL = "org.sagebionetworks.repo.model."
S3_FILE_HANDLE = MODEL + "file.S3FileHandle"
COPY_REQUEST = MODEL + "file.MultipartUploadCopyRequest"
MIB = 1024 * 1024
MIN_PART_SIZE = 5 * MIB
MAX_PART_SIZE = 5 * 1024 * MIB
MAX_PARTS = 10_000
URL_BATCH = 50  # presigned URLs per request: well inside their 15-minute life at any part size
RESEND_ATTEMPTS = 4
INDEX_FORMAT = 1


STATUSES = ("migrated", "already", "skipped", "failed", "source_changed", "not_attempted")
VERIFY_MODES = ("auto", "md5", "size", "none")
COPY_PATH_MODES = ("auto", "synapse")


class Strategy(StrEnum):
    """Which file versions move. Default :attr:`LATEST`."""

    LATEST = "latest"
    ALL = "all"
    NEW = "new"
    # The current version is copied and the file moved into another folder in one etag-guarded
    # update (same id, no new version): how existing files get behind STS storage.
    MOVE = "move"


DEFAULT_STRATEGY = Strategy.LATEST


# ---------------------------------------------------------------------------------------------
# The index (plan side)


@dataclass(frozen=True, slots=True)
class MigrationItem:
    """One file version to move."""

    entity_id: str
    version: int
    file_handle_id: str
    size: int
    md5: str
    file_name: str
    entity_etag: str | None  # Strategy.NEW: the new version is refused if the etag changed
    from_location: int | None = None
    # The source object (S3 handles): a direct S3 copy reads it with the user's credentials.
    bucket: str | None = None
    key: str | None = None
    content_type: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MigrationItem:
        location = data.get("from_location")
        etag = data.get("entity_etag")
        optional = {
            name: None if data.get(name) is None else str(data[name])
            for name in ("bucket", "key", "content_type")
        }
        return cls(
            entity_id=str(data["entity_id"]),
            version=int(data["version"]),
            file_handle_id=str(data["file_handle_id"]),
            size=int(data["size"]),
            md5=str(data["md5"]),
            file_name=str(data["file_name"]),
            entity_etag=None if etag is None else str(etag),
            from_location=None if location is None else int(location),
            **optional,
        )


@dataclass(frozen=True, slots=True)
class SkippedItem:
    """A file version that cannot move, and why."""

    entity_id: str
    version: int
    file_handle_id: str | None
    reason: str
    file_name: str = ""
    size: int | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SkippedItem:
        handle = data.get("file_handle_id")
        size = data.get("size")
        return cls(
            entity_id=str(data["entity_id"]),
            version=int(data["version"]),
            file_handle_id=None if handle is None else str(handle),
            reason=str(data["reason"]),
            file_name=str(data.get("file_name", "")),
            size=None if size is None else int(size),
        )


@dataclass(frozen=True, slots=True)
class MigrationIndex:
    container_id: str
    strategy: Strategy
    destination_id: int | None
    items: tuple[MigrationItem, ...]  # still to move
    already: tuple[MigrationItem, ...]  # already in the destination location
    skipped: tuple[SkippedItem, ...]
    # What the estimate needs: is the destination an S3 bucket of the user's (so the direct and
    # relay paths apply), and the stack's rate budget the plan was made under.
    destination_s3: bool = False
    per_minute: int = 600
    concurrency: int = 3

    def unique_handles(self) -> int:
        """Copies to make: file handles shared by several versions or entities count once."""
        return len({i.file_handle_id for i in self.items})

    def total_bytes(self) -> int:
        """Bytes to copy, each shared file handle counted once."""
        sizes = {i.file_handle_id: i.size for i in self.items}
        return sum(sizes.values())

    def estimate(
        self, *, verify: str = "auto", copy_path: str = "auto", parallel: int = 6
    ) -> CopyEstimate:
        """Calls, bytes and duration of this migration with each file's path chosen as apply
        will (see :func:`synapse_declare.copypaths.estimate` for the stated basis)."""
        return estimate(
            self.items,
            strategy=self.strategy.value,
            destination_s3=self.destination_s3,
            mode=copy_path,
            verify=verify,
            per_minute=self.per_minute,
            concurrency=self.concurrency,
            parallel=parallel,
        )

    def estimated_seconds(self, *, parallel: int = 6, verify: str = "auto") -> float:
        """The estimated duration in seconds (:meth:`estimate`)."""
        return self.estimate(verify=verify, parallel=parallel).seconds

    def plan_summary(self) -> dict[str, Any]:
        """What the plan states about how this migration runs and what it costs."""
        found = self.estimate()
        summary: dict[str, Any] = {
            "copy_paths": found.paths,
            "rest_calls": found.calls,
            "calls_per_file": round(found.calls_per_file, 2),
            "rate_budget": (
                f"{self.per_minute}/min, {self.concurrency} in flight"
                if self.per_minute
                else f"not paced, {self.concurrency} in flight"
            ),
            "bytes_copied_server_side": found.bytes_copied_server_side,
            "bytes_relayed": found.bytes_relayed,
            "bytes_to_verify": found.bytes_verified,
            "verify": "auto: relayed files by the MD5 of the bytes sent (S3 checks Content-MD5); "
            "S3 copies by their MD5 ETag; other copies <= "
            f"{human_bytes(DEFAULT_MD5_MAX)} streamed through MD5, larger ones by size and S3's "
            "part checksums",
        }
        return summary

    def skipped_reasons(self) -> dict[str, int]:
        reasons: dict[str, int] = {}
        for item in self.skipped:
            reasons[item.reason] = reasons.get(item.reason, 0) + 1
        return dict(sorted(reasons.items()))

    def to_json(self) -> dict[str, Any]:
        return {
            "format": INDEX_FORMAT,
            "container_id": self.container_id,
            "strategy": self.strategy.value,
            "destination_id": self.destination_id,
            "summary": {
                "to_move": len(self.items),
                "unique_handles": self.unique_handles(),
                "bytes": self.total_bytes(),
                "already": len(self.already),
                "skipped": len(self.skipped),
                "skipped_reasons": self.skipped_reasons(),
            },
            "destination_s3": self.destination_s3,
            "per_minute": self.per_minute,
            "concurrency": self.concurrency,
            "items": [i.to_json() for i in self.items],
            "already": [i.to_json() for i in self.already],
            "skipped": [i.to_json() for i in self.skipped],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MigrationIndex:
        if data.get("format", INDEX_FORMAT) != INDEX_FORMAT:
            raise MigrationError(f"unsupported migration index format {data.get('format')!r}")
        try:
            destination = data.get("destination_id")
            return cls(
                container_id=str(data["container_id"]),
                strategy=Strategy(data["strategy"]),
                destination_id=None if destination is None else int(destination),
                items=tuple(MigrationItem.from_json(i) for i in data.get("items", [])),
                already=tuple(MigrationItem.from_json(i) for i in data.get("already", [])),
                skipped=tuple(SkippedItem.from_json(i) for i in data.get("skipped", [])),
                destination_s3=bool(data.get("destination_s3", False)),
                per_minute=int(data.get("per_minute", 600)),
                concurrency=int(data.get("concurrency", 3)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise MigrationError(f"the migration index is damaged: {exc}") from exc


def part_size_for(size: int, preferred: int) -> int:
    """synapseutils' rule: at least ``preferred`` (100 MiB by default) and large enough that the
    file needs at most 10,000 parts; never below S3's 5 MiB minimum or above its 5 GiB maximum."""
    return min(MAX_PART_SIZE, max(preferred, MIN_PART_SIZE, math.ceil(size / MAX_PARTS)))


def parts_for(size: int, part_size: int) -> int:
    return 1 if part_size >= size else math.ceil(size / part_size)


def _syn(entity_id: str) -> str:
    text = entity_id.strip().lower()
    return "syn" + text[3:] if text.startswith("syn") else "syn" + text


def _sort_key(entity_id: str, version: int) -> tuple[int, str, int]:
    digits = re.sub(r"\D", "", entity_id)
    return (int(digits) if digits else 0, entity_id, version)


def _short_type(concrete: str) -> str:
    return concrete.rsplit(".", 1)[-1] if concrete else "unknown file handle type"


_SKIP_REASONS = {
    "ExternalFileHandle": "external URL handle (not S3): Synapse cannot copy it",
    "GoogleCloudFileHandle": "GoogleCloudFileHandle: Synapse copies only S3 objects",
    "ExternalObjectStoreFileHandle": "ExternalObjectStoreFileHandle: not in an S3 bucket "
    "Synapse can read",
    "ProxyFileHandle": "ProxyFileHandle: not in a cloud bucket",
}


def _classify(
    entity: Mapping[str, Any],
    handles: Sequence[Mapping[str, Any]],
    version: int,
    strategy: Strategy,
    destination_id: int | None,
) -> tuple[str, MigrationItem | SkippedItem]:
    """("item" | "already" | "skipped", the record) for one file version."""
    entity_id = str(entity["id"])
    handle_id = entity.get("dataFileHandleId")
    handle_id = None if handle_id is None else str(handle_id)
    handle = next((h for h in handles if str(h.get("id")) == handle_id), None)
    name = str(entity.get("name", ""))
    if handle is None:
        return "skipped", SkippedItem(
            entity_id,
            version,
            handle_id,
            "file handle not readable (DOWNLOAD permission is needed to copy it)",
            name,
        )
    concrete = str(handle.get("concreteType", ""))
    size_raw = handle.get("contentSize")
    size = None if size_raw is None else int(size_raw)
    file_name = str(handle.get("fileName") or name)
    if concrete != S3_FILE_HANDLE:
        short = _short_type(concrete)
        reason = _SKIP_REASONS.get(short, f"{short}: Synapse copies only S3 file handles")
        return "skipped", SkippedItem(entity_id, version, handle_id, reason, file_name, size)
    if size is None:
        return "skipped", SkippedItem(
            entity_id, version, handle_id, "no size recorded: Synapse cannot copy it", file_name
        )
    if size == 0:
        return "skipped", SkippedItem(
            entity_id, version, handle_id, "zero-byte file: Synapse cannot copy it", file_name, 0
        )
    md5 = handle.get("contentMd5")
    if not md5:
        return "skipped", SkippedItem(
            entity_id,
            version,
            handle_id,
            "no MD5 recorded: Synapse cannot copy it",
            file_name,
            size,
        )
    location_raw = handle.get("storageLocationId")
    location = None if location_raw is None else int(location_raw)
    etag = entity.get("etag") if strategy is not Strategy.ALL else None
    item = MigrationItem(
        entity_id=entity_id,
        version=version,
        file_handle_id=str(handle_id),
        size=size,
        md5=str(md5).lower(),
        file_name=file_name,
        entity_etag=None if etag is None else str(etag),
        from_location=location,
        bucket=None if handle.get("bucketName") is None else str(handle["bucketName"]),
        key=None if handle.get("key") is None else str(handle["key"]),
        content_type=None if handle.get("contentType") is None else str(handle["contentType"]),
    )
    if destination_id is not None and location == destination_id:
        return "already", item
    return "item", item


def index_migration(
    api: SynapseAPI,
    container_id: str,
    strategy: Strategy,
    destination_id: int | None,
    *,
    exclude: frozenset[str] = frozenset(),
    parallel: int = 3,
    recursive: bool = True,
    destination_s3: bool = False,
) -> MigrationIndex:
    """List what a migration of ``container_id``'s subtree would move. Read-only.

    Folders whose id is in ``exclude`` are not entered (they have their own migration). REST
    calls: one children listing per folder (pages of 50), then per file one bundle (entity + file
    handles) for ``latest``/``new``, or the version list plus one bundle per version for ``all``.
    ``destination_id`` None means the destination is created by the same apply, so nothing can be
    in it yet. File reads run ``parallel`` at a time. ``destination_s3``: the destination is an
    external S3 location of the caller's (the estimate then counts the direct and relay paths).
    """
    strategy = Strategy(strategy)
    excluded = {_syn(e) for e in exclude}
    files: list[str] = []
    folders = [container_id]
    while folders:
        parent = folders.pop()
        for header in api.children_of_types(parent, ["folder", "file"]):
            child = str(header["id"])
            kind = str(header.get("type", ""))
            if kind.endswith("Folder") or kind == "folder":
                if recursive and _syn(child) not in excluded:
                    folders.append(child)
            elif kind.endswith("FileEntity") or kind == "file":
                files.append(child)

    def read(entity_id: str) -> list[tuple[str, MigrationItem | SkippedItem]]:
        if strategy is Strategy.ALL:
            found = []
            for info in api.entity_versions(entity_id):
                number = int(info["versionNumber"])
                bundle = api.version_bundle(
                    entity_id, number, includeEntity=True, includeFileHandles=True
                )
                found.append(
                    _classify(
                        bundle["entity"],
                        bundle.get("fileHandles") or [],
                        number,
                        strategy,
                        destination_id,
                    )
                )
            return found
        bundle = api.bundle(entity_id, includeEntity=True, includeFileHandles=True)
        entity = bundle["entity"]
        return [
            _classify(
                entity,
                bundle.get("fileHandles") or [],
                int(entity.get("versionNumber", 1)),
                strategy,
                destination_id,
            )
        ]

    results: list[tuple[str, MigrationItem | SkippedItem]] = []
    with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="index") as pool:
        for found in pool.map(read, files):
            results.extend(found)
    items = sorted(
        (r for k, r in results if k == "item" and isinstance(r, MigrationItem)),
        key=lambda i: _sort_key(i.entity_id, i.version),
    )
    already = sorted(
        (r for k, r in results if k == "already" and isinstance(r, MigrationItem)),
        key=lambda i: _sort_key(i.entity_id, i.version),
    )
    skipped = sorted(
        (r for r in (r for _, r in results) if isinstance(r, SkippedItem)),
        key=lambda i: _sort_key(i.entity_id, i.version),
    )
    return MigrationIndex(
        container_id=container_id,
        strategy=strategy,
        destination_id=destination_id,
        items=tuple(items),
        already=tuple(already),
        skipped=tuple(skipped),
        destination_s3=destination_s3,
        per_minute=api.t.options.max_per_window,
        concurrency=api.t.options.max_concurrency,
    )


# ---------------------------------------------------------------------------------------------
# Options and report


@dataclass(frozen=True, slots=True)
class MigrationOptions:
    continue_on_error: bool = False
    # "auto" (copypaths.verification_plan: MD5 where cheap or proven by the transfer, size and
    # S3's part checksums for large copies), "md5" (stream every copy), "size", "none"
    verify: str = "auto"
    # 0: adaptive (the fewest parts, up to 5 GiB each); else per file max(this, ceil(size/10000))
    part_size: int = 0
    # Copies in flight. Twice the 3 request slots, so that S3 work overlaps other files' REST
    # calls; the client's limiter still keeps REST requests at 3 in flight.
    parallel: int = 6
    copy_path: str = "auto"  # "auto" (direct / relay / Synapse per file) or "synapse" only
    relay_max_bytes: int = DEFAULT_RELAY_MAX  # Synapse-storage files up to this are relayed
    md5_max_bytes: int = DEFAULT_MD5_MAX  # verify="auto": Synapse copies up to this get an MD5
    state_dir: Path = Path(".synapse-declare")  # where journals live
    report_json: Path | None = None
    report_csv: Path | None = None

    def validate(self) -> None:
        if self.verify not in VERIFY_MODES:
            raise MigrationError(
                f"unknown verify mode {self.verify!r}", hint=f"use one of {', '.join(VERIFY_MODES)}"
            )
        if self.copy_path not in COPY_PATH_MODES:
            raise MigrationError(
                f"unknown copy path {self.copy_path!r}",
                hint=f"use one of {', '.join(COPY_PATH_MODES)}",
            )
        if self.part_size and self.part_size < MIN_PART_SIZE:
            raise MigrationError(
                f"part size {self.part_size} is below S3's minimum of {MIN_PART_SIZE} bytes"
            )
        if self.parallel < 1:
            raise MigrationError("parallel must be at least 1")


@dataclass(slots=True)
class ReportRow:
    entity_id: str
    version: int
    name: str
    from_handle: str | None
    to_handle: str | None
    size: int | None
    status: str
    error: str = ""
    new_version: int | None = None

    FIELDS = (
        "entity_id",
        "version",
        "name",
        "from_handle",
        "to_handle",
        "size",
        "status",
        "error",
        "new_version",
    )

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.FIELDS}


@dataclass
class MigrationReport:
    container_id: str
    destination_id: int
    strategy: Strategy
    rows: list[ReportRow] = field(default_factory=list)
    bytes_copied: int = 0
    copies_made: int = 0
    copies_reused: int = 0
    elapsed_seconds: float = 0.0
    journal_path: str | None = None
    continue_on_error: bool = False

    @property
    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for row in self.rows:
            counts[row.status] = counts.get(row.status, 0) + 1
        return counts

    @property
    def ok(self) -> bool:
        """Nothing failed, changed under us, or was left unattempted."""
        counts = self.counts
        return not (counts["failed"] or counts["source_changed"] or counts["not_attempted"])

    @property
    def exit_ok(self) -> bool:
        """Whether apply may exit 0: ``ok``, or failures collected under continue_on_error."""
        return self.ok or (self.continue_on_error and not self.counts["not_attempted"])

    def failures(self) -> list[ReportRow]:
        return [r for r in self.rows if r.status in ("failed", "source_changed", "not_attempted")]

    def summary(self) -> str:
        counts = self.counts
        parts = [f"{counts[s]} {s.replace('_', ' ')}" for s in STATUSES if counts[s]]
        return (
            f"migration of {self.container_id} to storage location {self.destination_id}: "
            f"{', '.join(parts) or 'nothing to do'}; {self.copies_made} copies made "
            f"({human_bytes(self.bytes_copied)}), {self.copies_reused} reused"
        )

    def raise_for_failures(self) -> None:
        """Raise :class:`VerificationError` if a copy failed verification, else
        :class:`MigrationError` if anything failed or changed; do nothing when ``ok``."""
        if self.ok:
            return
        failures = self.failures()
        listed = "; ".join(
            f"{r.entity_id} v{r.version}: {r.status}{' (' + r.error + ')' if r.error else ''}"
            for r in failures[:5]
        )
        more = f" (and {len(failures) - 5} more)" if len(failures) > 5 else ""
        message = f"{self.summary()}. {listed}{more}"
        hint = "nothing was repointed for these items; see the report for every file"
        if any(r.error.startswith("VerificationError") for r in failures):
            raise VerificationError(message, hint=hint)
        raise MigrationError(message, hint=hint)

    def to_json(self) -> dict[str, Any]:
        return {
            "container_id": self.container_id,
            "destination_id": self.destination_id,
            "strategy": self.strategy.value,
            "ok": self.ok,
            "counts": self.counts,
            "bytes_copied": self.bytes_copied,
            "copies_made": self.copies_made,
            "copies_reused": self.copies_reused,
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "journal": self.journal_path,
            "rows": [r.to_json() for r in self.rows],
        }

    def write_json(self, path: Path) -> None:
        _write_atomic(path, json.dumps(self.to_json(), indent=2) + "\n")

    def write_csv(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(ReportRow.FIELDS)
            for row in self.rows:
                writer.writerow(
                    ["" if getattr(row, n) is None else getattr(row, n) for n in ReportRow.FIELDS]
                )
        tmp.replace(path)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


# ---------------------------------------------------------------------------------------------
# The run (apply side)


class _SourceChanged(Exception):
    """The entity version no longer is what the plan saw; it was not repointed."""


class _AlreadyDone(Exception):
    """An earlier run already repointed this entity (its journal entry was lost to a kill)."""

    def __init__(self, new_handle_id: str, new_version: int) -> None:
        super().__init__(new_handle_id)
        self.new_handle_id = new_handle_id
        self.new_version = new_version


class _AssociationRefused(Exception):
    """Synapse refused to copy through the named entity (403/404 on the copy start)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass
class _Copy:
    new_handle_id: str
    made: bool  # this run copied at least one part
    key: str | None = None  # the destination object, as addressed by the part-copy URLs
    path: CopyPath = CopyPath.SYNAPSE
    md5_proven: bool = False  # the transfer proved the object's MD5 (copypaths)
    part_etags: tuple[str, ...] = ()  # every part's S3 ETag, when this run copied them all


class _Runner:
    def __init__(
        self,
        api: SynapseAPI,
        index: MigrationIndex,
        destination_id: int,
        verifier: DestinationReader | None,
        options: MigrationOptions,
        progress: Progress,
        journal: Journal,
        report: MigrationReport,
        destination_bucket: str | None,
        move_to: str | None = None,
        destination: Mapping[str, Any] | None = None,
        user_id: int = 0,
    ) -> None:
        self.api = api
        self.move_to = move_to
        self.destination_bucket = destination_bucket
        self.index = index
        self.destination_id = destination_id
        self.verifier = verifier
        self.options = options
        self.progress = progress
        self.journal = journal
        self.report = report
        self.copier = PartCopier(pool=max(4, options.parallel * 2))
        self.parts = ThreadPoolExecutor(
            max_workers=options.parallel, thread_name_prefix="migrate-part"
        )
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.total = len(index.items)
        self.finished = 0
        self.rows: dict[tuple[str, int], ReportRow] = {}
        self.aborted = threading.Event()
        self.fast = self._fast_copier(destination or {}, user_id)

    def _fast_copier(self, destination: Mapping[str, Any], user_id: int) -> FastCopier | None:
        """The direct and relay paths (copypaths): only into an external S3 location, with S3
        access from this machine (the verifier's credentials, which must reach that bucket)."""
        if (
            self.options.copy_path != "auto"
            or destination.get("concreteType") != EXTERNAL_S3_LOCATION
            or self.verifier is None
            or not self.destination_bucket
        ):
            return None
        order: list[tuple[str, str]] = []
        seen: set[str] = set()
        for item in self.index.items:
            if item.file_handle_id not in seen and self._chosen(item) is CopyPath.RELAY:
                seen.add(item.file_handle_id)
                order.append((item.file_handle_id, item.entity_id))
        return FastCopier(
            self.api,
            self.verifier.client,
            self.journal,
            location_id=self.destination_id,
            bucket=self.destination_bucket,
            base_key=None if destination.get("baseKey") is None else str(destination["baseKey"]),
            user_id=user_id,
            relay_urls=RelayUrls(self.api, order),
            note=self.progress.note,
            resend=self._resend,
            preferred_part=self.options.part_size,
        )

    def _chosen(self, item: MigrationItem) -> CopyPath:
        return choose_path(
            size=item.size,
            from_location=item.from_location,
            bucket=item.bucket,
            key=item.key,
            destination_s3=True,
            mode=self.options.copy_path,
            relay_max=self.options.relay_max_bytes,
        )

    def _path_for(self, item: MigrationItem, record: CopyRecord | None) -> CopyPath:
        """A copy an earlier run started keeps its path (its object key is in the journal)."""
        if self.fast is None:
            return CopyPath.SYNAPSE
        if record is not None and record.state != COPY_REJECTED:
            for path in (CopyPath.DIRECT, CopyPath.RELAY):
                if str(record.upload_id or "").startswith(f"{path.value}:"):
                    return path
            if record.upload_id:
                return CopyPath.SYNAPSE
        return self._chosen(item)

    def close(self) -> None:
        self.parts.shutdown(wait=True, cancel_futures=True)
        self.copier.close()
        if self.fast is not None:
            self.fast.close()

    # -- bookkeeping -------------------------------------------------------------------------

    def _row(
        self,
        item: MigrationItem,
        status: str,
        *,
        to_handle: str | None = None,
        error: str = "",
        new_version: int | None = None,
        note: str = "",
    ) -> None:
        row = ReportRow(
            entity_id=item.entity_id,
            version=item.version,
            name=item.file_name,
            from_handle=item.file_handle_id,
            to_handle=to_handle,
            size=item.size,
            status=status,
            error=error,
            new_version=new_version,
        )
        with self.lock:
            self.rows[(item.entity_id, item.version)] = row
            self.finished += 1
            counter = f"[{self.finished}/{self.total}]"
        target = f" → {to_handle}" if to_handle else ""
        size = human_bytes(item.size)
        if status == "migrated":
            outcome = "ok" + (f", new version {new_version}" if new_version else "") + note
        elif status == "source_changed":
            outcome = f"SOURCE CHANGED, not repointed: {error}"
        else:
            outcome = f"FAILED, not repointed: {error}"
        self.progress.note(f"{counter} {item.entity_id} v{item.version}{target} ({size}) {outcome}")

    # -- REST calls that are safe to send again ----------------------------------------------

    def _resend(self, what: str, call: Callable[[], T]) -> T:
        """For calls Synapse makes idempotent (multipart start by request hash, URL batches,
        add part, complete): an unknown outcome is resolved by sending the same call again."""
        for attempt in range(1, RESEND_ATTEMPTS + 1):
            try:
                return call()
            except AmbiguousWrite as exc:
                if attempt == RESEND_ATTEMPTS:
                    raise
                self.progress.note(f"{what}: {exc}; sending it again (idempotent)")
                time.sleep(min(0.25 * 2**attempt, 4.0))
        raise AssertionError("unreachable")

    # -- one source handle -------------------------------------------------------------------

    def run_group(self, handle_id: str, items: list[MigrationItem]) -> bool:
        """Copy, verify and repoint every version that uses ``handle_id``; False on a failure."""
        pending: list[MigrationItem] = []
        for item in items:
            record = self.journal.item(item.entity_id, item.version)
            if record is not None and record.state == ITEM_REPOINTED:
                self._row(
                    item,
                    "migrated",
                    to_handle=record.new_handle_id,
                    new_version=record.new_version,
                    note=" (done by an earlier run)",
                )
            else:
                pending.append(item)
        if not pending:
            return True
        ok = True
        entities: dict[tuple[str, int], dict[str, Any]] = {}
        if self.index.strategy in (Strategy.NEW, Strategy.MOVE):
            # Read each entity before copying: a changed one is reported without a useless copy,
            # and this read is the body of the new-version PUT (etag-guarded).
            still: list[MigrationItem] = []
            for item in pending:
                try:
                    entities[(item.entity_id, item.version)] = self._check_entity(item)
                    still.append(item)
                except _AlreadyDone as done:
                    self._repointed(
                        item,
                        done.new_handle_id,
                        done.new_version if self.index.strategy is Strategy.NEW else None,
                        note=" (done by an earlier run)",
                    )
                except _SourceChanged as exc:
                    ok = False
                    self._source_changed(item, str(exc))
                except SynapseDeclareError as exc:
                    ok = False
                    self._failed(item, exc)
            pending = still
            if not pending:
                return ok
        copy: _Copy | None = None
        while copy is None:
            try:
                copy = self._copy_and_verify(handle_id, pending)
            except _AssociationRefused as refused:
                # Synapse copies only through an entity that still uses the handle: find the
                # versions that changed since the plan, and copy through one that did not.
                unchanged = []
                for item in pending:
                    current = self._version_handle(item)
                    if current == item.file_handle_id:
                        unchanged.append(item)
                    else:
                        ok = False
                        self._source_changed(item, self._changed_text(item, current))
                if len(unchanged) == len(pending):
                    for item in pending:
                        self._failed(item, refused.error)
                    return False
                pending = unchanged
                if not pending:
                    return False
            except SynapseDeclareError as exc:
                for item in pending:
                    self._failed(item, exc)
                return False
        for item in pending:
            try:
                new_version = self._repoint(
                    item, copy.new_handle_id, entities.get((item.entity_id, item.version))
                )
            except _SourceChanged as exc:
                ok = False
                self._source_changed(item, str(exc), to_handle=copy.new_handle_id)
                continue
            except SynapseDeclareError as exc:
                ok = False
                self._failed(item, exc, to_handle=copy.new_handle_id)
                continue
            self._repointed(item, copy.new_handle_id, new_version)
        return ok

    def _repointed(
        self, item: MigrationItem, new_handle_id: str, new_version: int | None, note: str = ""
    ) -> None:
        self.journal.record_item(
            item.entity_id,
            item.version,
            source_handle_id=item.file_handle_id,
            state=ITEM_REPOINTED,
            new_handle_id=new_handle_id,
            new_version=new_version,
        )
        self._row(item, "migrated", to_handle=new_handle_id, new_version=new_version, note=note)

    def _failed(
        self, item: MigrationItem, exc: BaseException, to_handle: str | None = None
    ) -> None:
        text = describe_exception(exc)
        hint = getattr(exc, "hint", None)
        if hint and isinstance(exc, VerificationError):
            text += f" ({hint})"
        self.journal.record_item(
            item.entity_id,
            item.version,
            source_handle_id=item.file_handle_id,
            state="failed",
            new_handle_id=to_handle,
            error=text,
        )
        self._row(item, "failed", to_handle=to_handle, error=text)

    def _source_changed(self, item: MigrationItem, text: str, to_handle: str | None = None) -> None:
        self.journal.record_item(
            item.entity_id,
            item.version,
            source_handle_id=item.file_handle_id,
            state="source_changed",
            new_handle_id=to_handle,
            error=text,
        )
        self._row(item, "source_changed", to_handle=to_handle, error=text)

    # -- copy ----------------------------------------------------------------------------------

    def _copy_and_verify(self, handle_id: str, items: list[MigrationItem]) -> _Copy:
        first = items[0]
        record = self.journal.copy(handle_id)
        if record is not None and record.state == COPY_VERIFIED and record.new_handle_id:
            if self._still_there(first, record):
                with self.lock:
                    self.report.copies_reused += 1
                return _Copy(str(record.new_handle_id), made=False, key=record.new_key)
            record = self.journal.copy(handle_id)  # rejected now: copy anew
        if record is not None and record.state == COPY_COMPLETED and record.new_handle_id:
            copy = _Copy(str(record.new_handle_id), made=False, key=record.new_key)
            with self.lock:
                self.report.copies_reused += 1
        else:
            copy = self._copy(handle_id, items, record)
        try:
            key = self._verify(first, copy)
        except VerificationError as exc:
            self.journal.copy_rejected(handle_id, describe_exception(exc))
            raise
        self.journal.copy_verified(handle_id, key)
        return copy

    def _still_there(self, item: MigrationItem, record: CopyRecord) -> bool:
        """A copy verified by an earlier run is reused after a HEAD shows it is still there with
        the source's size (no REST call: its key is in the journal). A missing or resized object
        is rejected, and the handle is copied anew."""
        if self.options.verify == "none" or not record.new_key or not self.destination_bucket:
            return True
        assert self.verifier is not None
        try:
            size: int | None = self.verifier.head(self.destination_bucket, record.new_key)
        except S3AccessError as exc:
            if exc.code not in ("404", "NoSuchKey", "NotFound"):
                raise
            size = None
        if size == item.size:
            return True
        problem = "is gone" if size is None else f"now has {size} bytes, not {item.size}"
        text = (
            f"the copy {record.new_handle_id} made by an earlier run "
            f"(s3://{self.destination_bucket}/{record.new_key}) {problem}"
        )
        self.journal.copy_rejected(item.file_handle_id, text)
        self.progress.note(f"{text}; copying file handle {item.file_handle_id} again")
        return False

    def _copy(self, handle_id: str, items: list[MigrationItem], record: CopyRecord | None) -> _Copy:
        first = items[0]
        path = self._path_for(first, record)
        if path is not CopyPath.SYNAPSE:
            assert self.fast is not None
            try:
                fast = self.fast.copy(path, first, record)
            except FallBack:
                record = None  # copied by Synapse instead, as a new request
            except (Forbidden, NotFound) as exc:
                raise _AssociationRefused(exc) from exc
            else:
                with self.lock:
                    self.report.copies_made += 1
                    self.report.bytes_copied += fast.bytes_copied
                return _Copy(
                    fast.new_handle_id,
                    made=True,
                    key=fast.key,
                    path=path,
                    md5_proven=fast.md5_proven,
                    part_etags=fast.part_etags,
                )
        if record is not None and not str(record.upload_id or "").isdigit():
            record = None  # started on another path: Synapse's copy starts afresh
        entities = {i.entity_id for i in items}
        force_restart = record is not None and record.state == COPY_REJECTED
        if record is not None and not force_restart and record.associate_entity in entities:
            # The identical request (same association and part size) makes Synapse answer with
            # the upload it already has for it: a resumed copy continues, a finished one is reused.
            associate, part_size = record.associate_entity, record.part_size
        else:
            associate, part_size = (
                first.entity_id,
                adaptive_part_size(first.size, self.options.part_size),
            )
        request = {
            "concreteType": COPY_REQUEST,
            "fileName": None,
            "generatePreview": True,
            "partSizeBytes": part_size,
            "storageLocationId": self.destination_id,
            "sourceFileHandleAssociation": {
                "fileHandleId": handle_id,
                "associateObjectId": associate,
                "associateObjectType": "FileEntity",
            },
        }
        what = f"copy of file handle {handle_id} ({first.entity_id})"
        try:
            status = self._resend(
                f"start {what}",
                lambda: self.api.start_multipart(request, force_restart=force_restart),
            )
        except (Forbidden, NotFound) as exc:
            raise _AssociationRefused(exc) from exc
        upload_id = str(status["uploadId"])
        if record is not None and record.upload_id and record.upload_id != upload_id:
            if not force_restart:
                self.progress.note(
                    f"{what}: Synapse started upload {upload_id} instead of resuming "
                    f"{record.upload_id}"
                )
        self.journal.copy_started(
            handle_id,
            upload_id=upload_id,
            part_size=part_size,
            associate_entity=associate,
            size=first.size,
            md5=first.md5,
        )
        copied, key, etags = 0, None, tuple[str, ...]()
        if status.get("state") != "COMPLETED":
            copied, key, etags = self._copy_parts(upload_id, status, first.size, part_size, what)
            status = self._resend(
                f"complete {what}", lambda: self.api.complete_multipart(upload_id)
            )
            if status.get("state") != "COMPLETED":
                raise MigrationError(f"{what}: Synapse did not complete upload {upload_id}")
        result = status.get("resultFileHandleId")
        if not result:
            raise MigrationError(f"{what}: upload {upload_id} completed without a file handle")
        self.journal.copy_completed(handle_id, str(result), key)
        with self.lock:
            if copied:
                self.report.copies_made += 1
                self.report.bytes_copied += copied
            else:
                self.report.copies_reused += 1
        return _Copy(str(result), made=bool(copied), key=key, part_etags=etags)

    def _copy_parts(
        self, upload_id: str, status: Mapping[str, Any], size: int, part_size: int, what: str
    ) -> tuple[int, str | None, tuple[str, ...]]:
        """Copy the parts ``partsState`` says are missing; returns the bytes copied, the
        destination object's key as the part URLs address it (None if not recognisable) and,
        when this run copied every part, their ETags in part order (S3's MD5 of each part)."""
        count = parts_for(size, part_size)
        state = str(status.get("partsState") or "")
        if len(state) != count:
            state = "0" * count
        missing = [n for n in range(1, count + 1) if state[n - 1] != "1"]
        if len(missing) < count:
            self.progress.note(
                f"{what}: resuming upload {upload_id}, {count - len(missing)} of {count} parts "
                "already copied"
            )
        copied = 0
        etags: dict[int, str] = {}
        keys: set[str | None] = set()
        for start in range(0, len(missing), URL_BATCH):
            if self.aborted.is_set():
                raise MigrationError(f"{what}: the run is stopping")
            batch = missing[start : start + URL_BATCH]
            urls = self._resend(
                f"part URLs for {what}",
                functools.partial(self.api.presigned_part_urls, upload_id, batch),
            )
            if self.destination_bucket is not None:
                keys.update(
                    object_key_from_url(str(u["uploadPresignedUrl"]), self.destination_bucket)
                    for u in urls
                )
            futures = [
                self.parts.submit(self._copy_part, upload_id, url, count, what) for url in urls
            ]
            error: BaseException | None = None
            for future in futures:
                try:
                    number, etag = future.result()
                except BaseException as exc:
                    error = error or exc
                    continue
                etags[number] = etag
                first = (number - 1) * part_size
                copied += min(part_size, size - first)
            if error is not None:
                raise error
        key = keys.pop() if len(keys) == 1 else None
        whole = tuple(etags[n] for n in range(1, count + 1)) if len(etags) == count else ()
        return copied, key, whole

    def _copy_part(
        self, upload_id: str, url: Mapping[str, Any], count: int, what: str
    ) -> tuple[int, str]:
        if self.aborted.is_set():
            raise MigrationError(f"{what}: the run is stopping")
        try:
            return self._copy_one_part(upload_id, url, count, what)
        except Exception:
            raise  # an error: the caller decides; only a kill below stops every part
        except BaseException:
            self.aborted.set()  # a kill: start no further part
            raise

    def _copy_one_part(
        self, upload_id: str, url: Mapping[str, Any], count: int, what: str
    ) -> tuple[int, str]:
        number = int(url["partNumber"])
        label = f"{what}, part {number}/{count}"
        current: Mapping[str, Any] = url
        for attempt in (1, 2):
            try:
                etag = self.copier.copy_part(
                    str(current["uploadPresignedUrl"]), current.get("signedHeaders"), what=label
                )
            except PartCopyError as exc:
                if exc.source_changed:
                    raise MigrationError(
                        f"{label}: the source object changed while it was being copied "
                        "(S3 refused the copy: its ETag no longer matches)"
                    ) from None
                if exc.expired and attempt == 1:
                    # Presigned URLs live 15 minutes: fetch a fresh one once.
                    current = self._resend(
                        f"part URL for {label}",
                        lambda: self.api.presigned_part_urls(upload_id, [number]),
                    )[0]
                    continue
                raise
            added = self._resend(
                f"add {label}", functools.partial(self.api.add_part, upload_id, number, etag)
            )
            if added.get("addPartState") != "ADD_SUCCESS":
                raise MigrationError(
                    f"{label}: Synapse did not accept the part: {added.get('errorMessage')}"
                )
            if count > 1:
                self.progress.note(f"{label} copied")
            return number, etag
        raise AssertionError("unreachable")

    # -- verify --------------------------------------------------------------------------------

    def _verify(self, item: MigrationItem, copy: _Copy) -> str | None:
        """Size (HEAD) or size and MD5 (streamed) of the destination object against the source
        handle, as ``verify`` says (``auto``: :func:`copypaths.verification_plan` — no read back
        when the transfer proved the MD5, S3's part checksums for large copies). The object is
        the one the part copies wrote (its key from the URLs Synapse
        signed, in the destination bucket read at the start of the run); when the copy was
        finished by an earlier run, the new handle is read to find it, and its storage location
        and recorded MD5 are checked too."""
        if self.options.verify == "none":
            return copy.key
        assert self.verifier is not None
        problems: list[str] = []
        new_handle_id = copy.new_handle_id
        if copy.key is not None and self.destination_bucket is not None:
            bucket, key = self.destination_bucket, copy.key
        else:
            handle = self.api.get_file_handle(new_handle_id)
            location = handle.get("storageLocationId")
            if location is None or int(location) != self.destination_id:
                problems.append(
                    f"the copy is in storage location {location}, not {self.destination_id}"
                )
            if str(handle.get("contentMd5", "")).lower() != item.md5:
                problems.append(
                    f"its handle records MD5 {handle.get('contentMd5')}, not {item.md5}"
                )
            bucket, key = str(handle.get("bucketName", "")), str(handle.get("key", ""))
        plan = verification_plan(
            self.options.verify, copy.path, item.size, self.options.md5_max_bytes
        )
        auto = self.options.verify == "auto"
        if not bucket or not key:
            problems.append("its handle names no bucket and key")
        elif not plan.stream_md5 or (auto and copy.md5_proven):
            etag: str | None = None
            if auto and not copy.md5_proven and copy.part_etags:
                size, etag = self.verifier.head_etag(bucket, key)
            else:
                size = self.verifier.head(bucket, key)
            if size != item.size:
                problems.append(f"the object has {size} bytes, the source {item.size}")
            if etag is not None:
                expected = composite_etag(copy.part_etags)
                if etag != expected:
                    problems.append(
                        f"the object's ETag is {etag}, not {expected} as composed from the "
                        "checksums S3 answered for its parts"
                    )
        else:
            size, md5 = self.verifier.size_and_md5(bucket, key)
            if size != item.size:
                problems.append(f"the object has {size} bytes, the source {item.size}")
            if md5 != item.md5:
                problems.append(f"the object's MD5 is {md5}, the source's {item.md5}")
        if problems:
            raise VerificationError(
                f"copy {new_handle_id} of file handle {item.file_handle_id} "
                f"(s3://{bucket}/{key}) does not match its source: {'; '.join(problems)}",
                hint=f"nothing points at file handle {new_handle_id}; the next run copies anew",
            )
        return key

    # -- repoint -------------------------------------------------------------------------------

    def _check_entity(self, item: MigrationItem) -> dict[str, Any]:
        """Strategies NEW and MOVE: the entity as it is now, if it is still what the plan saw.
        Raises :class:`_AlreadyDone` when it changed because an earlier run of this migration
        already updated it (killed before the journal recorded that)."""
        try:
            entity = self.api.get_entity(item.entity_id)
        except NotFound as exc:
            raise _SourceChanged(f"{item.entity_id} no longer exists ({exc.reason})") from None
        if item.entity_etag is not None and entity.get("etag") != item.entity_etag:
            record = self.journal.copy(item.file_handle_id)
            copied = record.new_handle_id if record is not None else None
            if (
                copied is not None
                and str(entity.get("dataFileHandleId")) == copied
                and (self.move_to is None or entity.get("parentId") == self.move_to)
            ):
                raise _AlreadyDone(copied, int(entity.get("versionNumber") or 0))
            raise _SourceChanged(
                f"{item.entity_id} changed since the plan (etag {item.entity_etag} → "
                f"{entity.get('etag')})"
            )
        if str(entity.get("dataFileHandleId")) != item.file_handle_id:
            raise _SourceChanged(
                f"{item.entity_id} now has file handle {entity.get('dataFileHandleId')}, not "
                f"{item.file_handle_id}"
            )
        return entity

    def _repoint(
        self, item: MigrationItem, new_handle_id: str, entity: dict[str, Any] | None
    ) -> int | None:
        if self.index.strategy is Strategy.NEW:
            assert entity is not None
            return self._new_version(item, new_handle_id, entity)
        if self.index.strategy is Strategy.MOVE:
            assert entity is not None
            self._move(item, new_handle_id, entity)
            return None
        self._swap_in_place(item, new_handle_id)
        return None

    def _move(self, item: MigrationItem, new_handle_id: str, entity: dict[str, Any]) -> None:
        """Strategy MOVE: into the target folder with the copy, one etag-guarded update. The
        copy has the source's MD5, so Synapse swaps the handle in place (no new version)."""
        assert self.move_to is not None
        body = {**entity, "parentId": self.move_to, "dataFileHandleId": new_handle_id}

        def landed() -> bool | None:
            current = self.api.get_entity(item.entity_id)
            if (
                current.get("parentId") == self.move_to
                and str(current.get("dataFileHandleId")) == new_handle_id
            ):
                return True
            if current.get("etag") == entity.get("etag"):
                return None
            raise _SourceChanged(f"{item.entity_id} changed while its move was unconfirmed")

        for attempt in range(1, RESEND_ATTEMPTS + 1):
            try:
                self.api.update_entity(body)
                return
            except PreconditionFailed:
                raise _SourceChanged(
                    f"{item.entity_id} changed since the plan (etag {entity.get('etag')})"
                ) from None
            except AmbiguousWrite as exc:
                if landed():
                    return
                if attempt == RESEND_ATTEMPTS:
                    raise
                self.progress.note(f"move {item.entity_id}: {exc}; not applied, sending again")
        raise AssertionError("unreachable")

    def _version_handle(self, item: MigrationItem) -> str | None:
        try:
            bundle = self.api.version_bundle(item.entity_id, item.version, includeEntity=True)
        except NotFound:
            return None
        value = bundle.get("entity", {}).get("dataFileHandleId")
        return None if value is None else str(value)

    @staticmethod
    def _changed_text(item: MigrationItem, current: str | None) -> str:
        if current is None:
            return f"{item.entity_id} version {item.version} no longer exists"
        return (
            f"version {item.version} now has file handle {current}, not {item.file_handle_id} "
            "(it changed since the plan)"
        )

    def _swap_in_place(self, item: MigrationItem, new_handle_id: str) -> None:
        for attempt in range(1, RESEND_ATTEMPTS + 1):
            try:
                self.api.update_version_file_handle(
                    item.entity_id, item.version, item.file_handle_id, new_handle_id
                )
                return
            except PreconditionFailed as err:
                current = self._version_handle(item)
                if current == new_handle_id:
                    return  # an earlier, unconfirmed attempt had done it
                if "MD5" in err.reason:
                    raise
                raise _SourceChanged(self._changed_text(item, current)) from None
            except AmbiguousWrite as exc:
                current = self._version_handle(item)
                if current == new_handle_id:
                    return
                if current != item.file_handle_id or attempt == RESEND_ATTEMPTS:
                    if current == item.file_handle_id:
                        raise
                    raise _SourceChanged(
                        f"version {item.version} changed while its repoint was unconfirmed "
                        f"(now {current})"
                    ) from exc
                self.progress.note(
                    f"repoint {item.entity_id} v{item.version}: {exc}; not applied, sending again"
                )
        raise AssertionError("unreachable")

    def _new_version(self, item: MigrationItem, new_handle_id: str, entity: dict[str, Any]) -> int:
        body = dict(entity)
        body["dataFileHandleId"] = new_handle_id
        body.pop("versionLabel", None)  # the new version's label becomes its number
        body["versionComment"] = (
            f"File moved to storage location {self.destination_id} by synapse-declare "
            f"(was file handle {item.file_handle_id})"
        )
        for attempt in range(1, RESEND_ATTEMPTS + 1):
            try:
                updated = self.api.update_entity_new_version(body)
                return int(updated.get("versionNumber", 0))
            except PreconditionFailed:
                current = self.api.get_entity(item.entity_id)
                if str(current.get("dataFileHandleId")) == new_handle_id:
                    return int(current.get("versionNumber", 0))
                raise _SourceChanged(
                    f"{item.entity_id} changed before its new version was created (412)"
                ) from None
            except AmbiguousWrite as exc:
                current = self.api.get_entity(item.entity_id)
                if str(current.get("dataFileHandleId")) == new_handle_id:
                    return int(current.get("versionNumber", 0))
                if current.get("etag") != body.get("etag"):
                    raise _SourceChanged(
                        f"{item.entity_id} changed while its new version was unconfirmed"
                    ) from exc
                if attempt == RESEND_ATTEMPTS:
                    raise
                self.progress.note(
                    f"new version of {item.entity_id}: {exc}; not applied, sending again"
                )
        raise AssertionError("unreachable")

    # -- driver --------------------------------------------------------------------------------

    def run(self) -> None:
        groups: dict[str, list[MigrationItem]] = {}
        for item in self.index.items:
            groups.setdefault(item.file_handle_id, []).append(item)
        queue = iter(groups.items())
        in_flight: dict[Future[bool], str] = {}
        abort: BaseException | None = None
        with ThreadPoolExecutor(
            max_workers=self.options.parallel, thread_name_prefix="migrate"
        ) as pool:
            while True:
                while not self.stop.is_set() and len(in_flight) < self.options.parallel:
                    nxt = next(queue, None)
                    if nxt is None:
                        break
                    in_flight[pool.submit(self.run_group, nxt[0], nxt[1])] = nxt[0]
                if not in_flight:
                    break
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    in_flight.pop(future)
                    try:
                        ok = future.result()
                    except BaseException as exc:  # a kill, KeyboardInterrupt, a bug
                        abort = abort or exc
                        self.aborted.set()
                        self.stop.set()
                        continue
                    if not ok and not self.options.continue_on_error:
                        self.stop.set()
        if abort is not None:
            raise abort


def _pre_rows(index: MigrationIndex) -> list[ReportRow]:
    rows = [
        ReportRow(
            i.entity_id,
            i.version,
            i.file_name,
            i.file_handle_id,
            i.file_handle_id,
            i.size,
            "already",
        )
        for i in index.already
    ]
    rows += [
        ReportRow(
            s.entity_id, s.version, s.file_name, s.file_handle_id, None, s.size, "skipped", s.reason
        )
        for s in index.skipped
    ]
    return rows


def run_migration(
    api: SynapseAPI,
    index: MigrationIndex,
    destination_id: int,
    *,
    endpoint: str,
    user_id: int,
    verifier: DestinationReader | None,
    options: MigrationOptions,
    progress: Progress,
    move_to: str | None = None,
) -> MigrationReport:
    """Copy, verify and repoint everything in ``index.items``; returns the per-file report
    (also written to ``options.report_json``/``report_csv``). Failures are rows in the report,
    not exceptions: with ``continue_on_error`` False the run stops starting new copies after the
    first one (running copies finish) and the rest is ``not_attempted``. Raises
    :class:`MigrationError` when the run cannot start (other settings in an unfinished journal,
    a destination other than the planned one) and :class:`~synapse_declare.errors.LockError`
    when another run holds the journal. A BaseException (KeyboardInterrupt, a kill signal turned
    into an exception) stops the run after the running steps, writes the report, and propagates.
    """
    options.validate()
    if index.strategy is Strategy.MOVE and move_to is None:
        raise MigrationError(f"moving the files of {index.container_id} needs a target folder")
    if index.destination_id is not None and index.destination_id != destination_id:
        raise MigrationError(
            f"the migration of {index.container_id} was planned for storage location "
            f"{index.destination_id}, not {destination_id}",
            hint="run 'synapse-declare plan' again",
        )
    if options.verify != "none" and verifier is None and index.items:
        raise MigrationError(
            f"verify={options.verify!r} needs read access to the destination bucket",
            hint="give AWS credentials for the destination, or choose verify 'none' "
            "(Synapse's own checks only)",
        )
    started = time.perf_counter()
    location = _destination(api, destination_id, options) if index.items else {}
    destination_bucket = None if location.get("bucket") is None else str(location["bucket"])
    report = MigrationReport(
        container_id=index.container_id,
        destination_id=destination_id,
        strategy=index.strategy,
        rows=_pre_rows(index),
        continue_on_error=options.continue_on_error,
    )
    if not index.items:
        report.elapsed_seconds = time.perf_counter() - started
        _write_reports(report, options)
        return report
    journal = Journal.open(
        options.state_dir,
        endpoint=endpoint,
        user_id=user_id,
        container_id=index.container_id,
        destination_id=destination_id,
        strategy=index.strategy.value,
    )
    report.journal_path = str(journal.path)
    if journal.resumed:
        counts = journal.counts()
        progress.note(
            f"resuming the migration of {index.container_id} from {journal.path} "
            f"({counts['copies'].get(COPY_VERIFIED, 0)} verified copies, "
            f"{counts['items'].get(ITEM_REPOINTED, 0)} versions repointed)"
        )
    runner = _Runner(
        api,
        index,
        destination_id,
        verifier,
        options,
        progress,
        journal,
        report,
        destination_bucket,
        move_to,
        location,
        user_id,
    )
    try:
        runner.run()
    finally:
        runner.close()
        for item in index.items:
            key = (item.entity_id, item.version)
            if key not in runner.rows:
                runner.rows[key] = ReportRow(
                    item.entity_id,
                    item.version,
                    item.file_name,
                    item.file_handle_id,
                    None,
                    item.size,
                    "not_attempted",
                )
        report.rows.extend(runner.rows[(i.entity_id, i.version)] for i in index.items)
        report.rows.sort(key=lambda r: _sort_key(r.entity_id, r.version))
        report.elapsed_seconds = time.perf_counter() - started
        if all(r.status in ("migrated", "already", "skipped") for r in report.rows):
            journal.mark_finished()
        journal.close()
        _write_reports(report, options)
    return report


def _destination(api: SynapseAPI, destination_id: int, options: MigrationOptions) -> dict[str, Any]:
    """Read the destination once: Synapse copies only into a location the caller created (so a
    wrong one fails here, not on every file); verification needs its bucket, and the direct and
    relay paths its type and base key."""
    try:
        location = api.get_storage_location(destination_id)
    except (Forbidden, NotFound) as exc:
        raise MigrationError(
            f"cannot use storage location {destination_id} as the destination: {exc.reason}",
            hint="Synapse copies files only into a storage location you created",
        ) from exc
    bucket = location.get("bucket")
    if options.verify != "none" and not bucket:
        raise MigrationError(
            f"storage location {destination_id} ({_short_type(str(location.get('concreteType')))})"
            f" has no bucket this tool can read, so copies into it cannot be verified",
            hint="verify copies into Synapse's own storage with verify 'none' (Synapse's checks "
            "only)",
        )
    return location


def _write_reports(report: MigrationReport, options: MigrationOptions) -> None:
    if options.report_json is not None:
        report.write_json(options.report_json)
    if options.report_csv is not None:
        report.write_csv(options.report_csv)
