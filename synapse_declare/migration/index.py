"""The plan side of a storage migration: walk a container, classify every file version (to move,
already in the destination, cannot move and why), count and size what moves."""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from ..client.synapse import SynapseAPI
from ..copypaths import (
    DEFAULT_MD5_MAX,
    CopyEstimate,
    estimate,
)
from ..errors import (
    MigrationError,
)
from ..units import human_bytes

MODEL = "org.sagebionetworks.repo.model."
S3_FILE_HANDLE = MODEL + "file.S3FileHandle"
COPY_REQUEST = MODEL + "file.MultipartUploadCopyRequest"
MIB = 1024 * 1024
MIN_PART_SIZE = 5 * MIB
MAX_PART_SIZE = 5 * 1024 * MIB
MAX_PARTS = 10_000
INDEX_FORMAT = 1


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
        return cls(
            entity_id=str(data["entity_id"]),
            version=int(data["version"]),
            file_handle_id=str(data["file_handle_id"]),
            size=int(data["size"]),
            md5=str(data["md5"]),
            file_name=str(data["file_name"]),
            entity_etag=_optional(str, data.get("entity_etag")),
            from_location=_optional(int, data.get("from_location")),
            bucket=_optional(str, data.get("bucket")),
            key=_optional(str, data.get("key")),
            content_type=_optional(str, data.get("content_type")),
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
        return cls(
            entity_id=str(data["entity_id"]),
            version=int(data["version"]),
            file_handle_id=_optional(str, data.get("file_handle_id")),
            reason=str(data["reason"]),
            file_name=str(data.get("file_name", "")),
            size=_optional(int, data.get("size")),
        )


_Value = TypeVar("_Value", str, int)


def _optional(kind: Callable[[Any], _Value], value: object) -> _Value | None:
    """A nullable field of an index file: None stays None, anything else is converted."""
    return None if value is None else kind(value)


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


def sort_key(entity_id: str, version: int) -> tuple[int, str, int]:
    digits = re.sub(r"\D", "", entity_id)
    return (int(digits) if digits else 0, entity_id, version)


def short_type(concrete: str) -> str:
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
        short = short_type(concrete)
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
    files = _list_files(api, container_id, {_syn(e) for e in exclude}, recursive)
    read = functools.partial(_read_file, api, strategy, destination_id)
    results: list[tuple[str, MigrationItem | SkippedItem]] = []
    with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="index") as pool:
        for found in pool.map(read, files):
            results.extend(found)
    items = [r for k, r in results if k == "item" and isinstance(r, MigrationItem)]
    already = [r for k, r in results if k == "already" and isinstance(r, MigrationItem)]
    skipped = [r for _, r in results if isinstance(r, SkippedItem)]
    return MigrationIndex(
        container_id=container_id,
        strategy=strategy,
        destination_id=destination_id,
        items=_in_order(items),
        already=_in_order(already),
        skipped=_in_order(skipped),
        destination_s3=destination_s3,
        per_minute=api.t.options.max_per_window,
        concurrency=api.t.options.max_concurrency,
    )


_Found = TypeVar("_Found", MigrationItem, SkippedItem)


def _in_order(found: list[_Found]) -> tuple[_Found, ...]:
    return tuple(sorted(found, key=lambda i: sort_key(i.entity_id, i.version)))


def _list_files(
    api: SynapseAPI, container_id: str, excluded: set[str], recursive: bool
) -> list[str]:
    """The file ids below ``container_id``, not entering the ``excluded`` folders."""
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
    return files


def _read_file(
    api: SynapseAPI, strategy: Strategy, destination_id: int | None, entity_id: str
) -> list[tuple[str, MigrationItem | SkippedItem]]:
    """Each version of one file that the strategy moves, classified."""
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


# ---------------------------------------------------------------------------------------------
