"""Copy paths of a storage migration that cost fewer Synapse calls than Synapse's multipart copy.

On Synapse the REST calls are the cost: 600 per minute and 3 in flight per user (synapse-api.md
§11.2), so a migration's speed is ``10 requests/s ÷ calls per file``. Synapse's multipart copy
(``migration.multipart``) needs start + URL batch + one ``add`` per part + complete, then the
repoint: 5 calls per file after the index read. When the destination is an S3 bucket the user
owns (an ``ExternalS3StorageLocationSetting``, STS or not), two paths need only the registration
of the copy (``POST /externalFileHandle/s3``) and the repoint:

* :attr:`CopyPath.DIRECT` — the source is in an S3 bucket too (an external S3 location) that the
  user's own AWS credentials can read: S3 copies it server-side with those credentials
  (``CopyObject``, or ``UploadPartCopy`` parts above 5 GiB), guarded by the source's ETag
  (``x-amz-copy-source-if-match``: a source that changes mid-copy is refused, never half-copied).
  No byte passes through this machine. If S3 refuses the credentials, the file falls back to
  Synapse's copy, and so does every later file of that bucket.
* :attr:`CopyPath.RELAY` — the source is in Synapse's storage, which only Synapse can read: small
  files (``relay_max_bytes``, default 16 MiB) are downloaded through presigned URLs fetched 100
  at a time (``POST /fileHandle/batch``: 0.01 calls per file), hashed, and ``PUT`` into the owned
  bucket with ``Content-MD5``. This costs client bandwidth (each byte in and out once), so larger
  files keep Synapse's server-side copy, where the extra 3 calls are cheaper than the transfer.

Both paths write only new objects under ``[baseKey/]<userId>/<uuid>/<fileName>`` in the
destination bucket (the layout Synapse uses) and only read the source. The key is journalled
before the write, so a resumed run writes the same object again instead of another one.

Verification (``verify="auto"``, the default) is decided per copy from what the transfer
already proves, see :func:`verification_plan`.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

from .client.s3 import PresignedDownloader, describe_exception, error_code
from .client.synapse import SynapseAPI
from .errors import Forbidden, MigrationError, S3AccessError, TransportError, VerificationError
from .journal import CopyRecord, Journal

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CopySourceTypeDef

log = logging.getLogger(__name__)

MIB = 1024 * 1024
GIB = 1024 * MIB
MIN_PART_SIZE = 5 * MIB
MAX_PART_SIZE = 5 * GIB  # S3's (and Synapse's) largest part, and CopyObject's largest object
MAX_PARTS = 10_000
URL_BATCH = 100  # POST /fileHandle/batch takes at most 100 associations
URL_MAX_AGE = 600.0  # presigned GET URLs are refetched after 10 minutes (they live 15)
SYNAPSE_STORAGE = 1  # Synapse's default storage location: only Synapse can read its bucket

DEFAULT_RELAY_MAX = 16 * MIB
DEFAULT_MD5_MAX = 64 * MIB

S3_FILE_HANDLE = "org.sagebionetworks.repo.model.file.S3FileHandle"
EXTERNAL_S3_LOCATION = "org.sagebionetworks.repo.model.project.ExternalS3StorageLocationSetting"

# Planning constants, stated so they can be checked and recalibrated (MigrationIndex.estimate).
SERVER_COPY_BYTES_PER_SECOND = 128 * MIB  # Synapse's guide: ~13 min per 100 GB per copy stream
CLIENT_BYTES_PER_SECOND = 50 * MIB  # this machine's network: relays and md5 verification


class SourceFile(Protocol):
    """What a copy path reads of a file version to move (``migration.MigrationItem``)."""

    @property
    def entity_id(self) -> str: ...
    @property
    def file_handle_id(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def md5(self) -> str: ...
    @property
    def file_name(self) -> str: ...
    @property
    def from_location(self) -> int | None: ...
    @property
    def bucket(self) -> str | None: ...
    @property
    def key(self) -> str | None: ...
    @property
    def content_type(self) -> str | None: ...


class CopyPath(StrEnum):
    SYNAPSE = "synapse"  # Synapse's multipart copy (migration/multipart.py)
    DIRECT = "s3-direct"  # S3 CopyObject/UploadPartCopy with the user's credentials
    RELAY = "relay"  # presigned download → PUT into the owned bucket


PATH_TEXT = {
    CopyPath.SYNAPSE: "Synapse server-side copy",
    CopyPath.DIRECT: "S3 copy with your AWS credentials",
    CopyPath.RELAY: "relayed through this machine",
}


def adaptive_part_size(size: int, preferred: int = 0) -> int:
    """Copy part size: ``preferred`` when given (at least enough for 10,000 parts); otherwise the
    fewest parts S3 allows (≤ 5 GiB each), split evenly — each part costs Synapse calls."""
    floor = max(MIN_PART_SIZE, math.ceil(size / MAX_PARTS))
    if preferred:
        return min(MAX_PART_SIZE, max(preferred, floor))
    parts = max(1, math.ceil(size / MAX_PART_SIZE))
    return min(MAX_PART_SIZE, max(floor, math.ceil(size / parts)))


def choose_path(
    *,
    size: int,
    from_location: int | None,
    bucket: str | None,
    key: str | None,
    destination_s3: bool,
    mode: str,
    relay_max: int,
) -> CopyPath:
    """The path for one source file handle. ``destination_s3``: the destination is an external
    S3 location (of the caller: Synapse copies only into one's own locations)."""
    if mode == "synapse" or not destination_s3:
        return CopyPath.SYNAPSE
    if bucket and key and from_location not in (None, SYNAPSE_STORAGE):
        return CopyPath.DIRECT
    if size <= relay_max:
        return CopyPath.RELAY
    return CopyPath.SYNAPSE


@dataclass(frozen=True, slots=True)
class VerifyPlan:
    """How one copy is verified under ``verify="auto"`` and what that costs."""

    stream_md5: bool  # read the copy back through a hash
    head: bool  # HEAD for the size (and ETag)


def verification_plan(mode: str, path: CopyPath, size: int, md5_max: int) -> VerifyPlan:
    """``auto``, safe by default and stated with its cost:

    * relayed files: the bytes' MD5 is computed as they pass and must equal the source's; the PUT
      carries it as ``Content-MD5``, so S3 stores them only if they arrived intact — proven with
      no read back (a HEAD confirms the size);
    * S3 direct copies: ``CopyObject`` answers the new object's ETag, which is its MD5 when the
      object is stored in one part; if it equals the source's MD5 that proves the copy (HEAD for
      the size), otherwise the copy is treated like a Synapse copy;
    * Synapse copies up to ``md5_max`` (64 MiB): the copy is streamed back through an MD5;
    * larger ones: the size (HEAD) and S3's own part checksums — the object's multipart ETag must
      be the one S3's UploadPartCopy answers compose (each part's MD5 as S3 computed it while
      copying), when this run copied every part; size only for a copy resumed across runs.

    ``md5``, ``size`` and ``none`` apply one rule to every copy."""
    if mode == "none":
        return VerifyPlan(False, False)
    if mode == "size":
        return VerifyPlan(False, True)
    if mode == "md5":
        return VerifyPlan(True, False)
    if path is CopyPath.RELAY:
        return VerifyPlan(False, True)
    return VerifyPlan(size <= md5_max, size > md5_max)


def composite_etag(part_etags: Sequence[str]) -> str:
    """The ETag S3 gives a multipart object: MD5 of the parts' binary MD5s, ``-<parts>``."""
    digest = hashlib.md5(usedforsecurity=False)
    for etag in part_etags:
        digest.update(bytes.fromhex(etag.strip('"')))
    return f"{digest.hexdigest()}-{len(part_etags)}"


# ---------------------------------------------------------------------------------------------
# Estimates (plan side)


@dataclass(frozen=True, slots=True)
class CopyEstimate:
    paths: dict[str, int]  # copies per path (PATH_TEXT wording)
    calls: int  # Synapse REST calls apply will make
    calls_per_file: float  # per version moved, including the plan's read of it
    bytes_copied_server_side: int
    bytes_relayed: int
    bytes_verified: int  # read back through this machine to verify
    seconds: float
    rate_per_second: float

    def describe(self) -> str:
        limit = self.rate_per_second / self.calls_per_file if self.calls_per_file else 0.0
        return (
            f"{self.calls_per_file:.2f} calls/file at {self.rate_per_second:g} requests/s "
            f"(at most {limit:.1f} files/s)"
        )


def estimate(
    items: Sequence[SourceFile],
    *,
    strategy: str,
    destination_s3: bool,
    mode: str = "auto",
    verify: str = "auto",
    relay_max: int = DEFAULT_RELAY_MAX,
    md5_max: int = DEFAULT_MD5_MAX,
    preferred_part: int = 0,
    per_minute: int = 600,
    concurrency: int = 3,
    parallel: int = 6,
    rest_seconds: float = 0.15,
) -> CopyEstimate:
    """Duration of a migration from the stack's rate budget and the calls of each file's path.

    Calls per copy: Synapse copy = start + ⌈parts/50⌉ URL batches + parts + complete; direct =
    register; relay = register + 1/100 URL batch. Per version: one repoint (+1 entity read for
    ``new`` and ``move``), plus the plan's read of it (one bundle per file, not counted in the
    duration: the plan made it). The duration is the largest of three bounds: the calls at
    ``min(per_minute/60, concurrency/rest_seconds)`` requests/s (the rate budget); the time
    each copy holds one of ``parallel`` copy slots (its calls at ``rest_seconds`` each, its
    server-side bytes at 128 MiB/s, its relayed and verified bytes at 50 MiB/s); and all
    relayed and verified bytes through this machine's 50 MiB/s."""
    handles: dict[str, SourceFile] = {}
    versions: dict[str, int] = {}
    for item in items:
        handles.setdefault(item.file_handle_id, item)
        versions[item.file_handle_id] = versions.get(item.file_handle_id, 0) + 1
    per_version = 2 if strategy in ("new", "move") else 1
    paths: dict[str, int] = {}
    calls = 0.0
    busy = 0.0  # seconds each copy occupies one of the `parallel` copy slots, summed
    server_bytes = relayed = verified = 0
    for handle_id, item in handles.items():
        path = choose_path(
            size=item.size,
            from_location=item.from_location,
            bucket=item.bucket,
            key=item.key,
            destination_s3=destination_s3,
            mode=mode,
            relay_max=relay_max,
        )
        paths[PATH_TEXT[path]] = paths.get(PATH_TEXT[path], 0) + 1
        server = client = 0
        if path is CopyPath.SYNAPSE:
            parts = max(1, math.ceil(item.size / adaptive_part_size(item.size, preferred_part)))
            own: float = 2 + parts + math.ceil(parts / 50)
            server = item.size
        elif path is CopyPath.DIRECT:
            own = 1
            server = item.size
        else:
            own = 1 + 1 / URL_BATCH
            client = item.size
        if verification_plan(verify, path, item.size, md5_max).stream_md5:
            verified += item.size
            client += item.size
        own += versions[handle_id] * per_version
        calls += own
        server_bytes += server
        relayed += item.size if path is CopyPath.RELAY else 0
        busy += (
            own * rest_seconds
            + server / SERVER_COPY_BYTES_PER_SECOND
            + client / CLIENT_BYTES_PER_SECOND
        )
    rate = min(per_minute / 60.0, concurrency / rest_seconds) if per_minute else 0.0
    rate = rate or concurrency / rest_seconds
    # The slowest of three limits: the rate budget, the copy slots, this machine's network.
    seconds = max(
        calls / rate,
        busy / max(1, parallel),
        (relayed + verified) / CLIENT_BYTES_PER_SECOND,
    )
    files = max(1, len(items))
    return CopyEstimate(
        paths=dict(sorted(paths.items())),
        calls=math.ceil(calls),
        calls_per_file=(calls + len(items)) / files,  # + the plan's bundle read per file
        bytes_copied_server_side=server_bytes,
        bytes_relayed=relayed,
        bytes_verified=verified,
        seconds=seconds,
        rate_per_second=rate,
    )


# ---------------------------------------------------------------------------------------------
# The run (apply side)


@dataclass
class FastCopy:
    new_handle_id: str
    key: str
    bytes_copied: int
    md5_proven: bool  # the transfer proved the object's MD5 equals the source's
    part_etags: tuple[str, ...] = ()  # direct multipart copies: S3's per-part MD5s


class FallBack(Exception):
    """This path cannot copy the file (e.g. S3 refused the user's credentials for the source
    bucket): copy it with Synapse's multipart copy instead."""


class RelayUrls:
    """Presigned download URLs for relayed files, fetched ``URL_BATCH`` at a time in the order the
    run will need them, so relaying costs 0.01 calls per file. URLs never leave this object
    except to be fetched; they are not logged."""

    def __init__(self, api: SynapseAPI, order: Sequence[tuple[str, str]]) -> None:
        self.api = api
        self.order = list(order)  # (file handle id, entity id) in run order
        self.next = 0  # order[:next] were all fetched once
        self.fetched: set[str] = set()
        self.cache: dict[str, tuple[float, str | None, str | None]] = {}
        self.lock = threading.Lock()

    def get(self, handle_id: str, entity_id: str, *, fresh: bool = False) -> str:
        with self.lock:
            cached = self.cache.pop(handle_id, None)
            if fresh or cached is None or time.monotonic() - cached[0] > URL_MAX_AGE:
                batch = self._batch_from(handle_id, entity_id)
                self._fetch(batch)
                cached = self.cache.pop(handle_id, None)
        assert cached is not None
        _, url, failure = cached
        if url is None:
            raise Forbidden(
                f"POST /fileHandle/batch: no download URL for file handle {handle_id} through "
                f"{entity_id} ({failure})",
                status=403,
                reason=str(failure),
                method="POST",
                path="/fileHandle/batch",
            )
        return url

    def _batch_from(self, handle_id: str, entity_id: str) -> list[tuple[str, str]]:
        """The requested URL plus the next ones the run will need that were never fetched
        (copies run several at a time, so requests arrive slightly out of order)."""
        batch = [(handle_id, entity_id)]
        self.fetched.add(handle_id)
        while self.next < len(self.order) and len(batch) < URL_BATCH:
            handle, entity = self.order[self.next]
            self.next += 1
            if handle not in self.fetched:
                self.fetched.add(handle)
                batch.append((handle, entity))
        return batch

    def _fetch(self, batch: list[tuple[str, str]]) -> None:
        body = {
            "requestedFiles": [
                {"fileHandleId": h, "associateObjectId": e, "associateObjectType": "FileEntity"}
                for h, e in batch
            ],
            "includeFileHandles": False,
            "includePreSignedURLs": True,
            "includePreviewPreSignedURLs": False,
        }
        results = self.api.file_handle_batch(body)
        now = time.monotonic()
        for result in results:
            handle = str(result.get("fileHandleId"))
            url = result.get("preSignedURL")
            self.cache[handle] = (now, None if url is None else str(url), result.get("failureCode"))


class FastCopier:
    """Runs :attr:`CopyPath.DIRECT` and :attr:`CopyPath.RELAY` copies for the migration runner
    (``migration.runner``): write the object, register it, journal each step. Verification is the
    runner's (with the proof this returns)."""

    def __init__(
        self,
        api: SynapseAPI,
        s3: S3Client,
        journal: Journal,
        *,
        location_id: int,
        bucket: str,
        base_key: str | None,
        user_id: int,
        relay_urls: RelayUrls,
        note: Callable[[str], None],
        resend: Callable[[str, Callable[[], Any]], Any],
        preferred_part: int = 0,
    ) -> None:
        self.api = api
        self.s3 = s3
        self.journal = journal
        self.location_id = location_id
        self.bucket = bucket
        self.base_key = (base_key or "").strip("/ \t") or None
        self.user_id = user_id
        self.urls = relay_urls
        self.note = note
        self.resend = resend
        self.preferred_part = preferred_part
        # What S3 refused these credentials for ("read s3://bucket", "relay"): copied by
        # Synapse for the rest of the run.
        self.refused: set[str] = set()
        self.lock = threading.Lock()
        self.downloads = PresignedDownloader()

    def close(self) -> None:
        self.downloads.close()

    def _key_for(
        self, path: CopyPath, handle_id: str, file_name: str, record: CopyRecord | None
    ) -> str:
        prefix = f"{path.value}:"
        if record is not None and str(record.upload_id or "").startswith(prefix):
            return str(record.upload_id)[len(prefix) :]  # the object an earlier run wrote
        safe = file_name.replace("/", "_") or f"file-{handle_id}"
        parts = [p for p in (self.base_key, str(self.user_id), str(uuid.uuid4()), safe) if p]
        return "/".join(parts)

    def copy(self, path: CopyPath, item: SourceFile, record: CopyRecord | None) -> FastCopy:
        if path is CopyPath.DIRECT and f"read s3://{item.bucket}" in self.refused:
            raise FallBack(f"s3://{item.bucket} is not readable with these AWS credentials")
        key = self._key_for(path, item.file_handle_id, item.file_name, record)
        self.journal.copy_started(
            item.file_handle_id,
            upload_id=f"{path.value}:{key}",
            part_size=0,
            associate_entity=item.entity_id,
            size=item.size,
            md5=item.md5,
        )
        result = self._direct(item, key) if path is CopyPath.DIRECT else self._relay(item, key)
        result.new_handle_id = self._register(item, key)
        self.journal.copy_completed(item.file_handle_id, result.new_handle_id, key)
        return result

    # -- S3 → S3 with the user's credentials -------------------------------------------------

    def _direct(self, item: SourceFile, key: str) -> FastCopy:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        source: CopySourceTypeDef = {"Bucket": str(item.bucket), "Key": str(item.key)}
        what = f"copy of file handle {item.file_handle_id} ({item.entity_id})"
        try:
            head = self.s3.head_object(Bucket=source["Bucket"], Key=source["Key"])
        except NoCredentialsError:
            self._refuse(source["Bucket"], "no AWS credentials")
        except ClientError as exc:
            code = error_code(exc)
            if code in ("403", "AccessDenied", "Forbidden"):
                self._refuse(source["Bucket"], code)
            raise MigrationError(
                f"{what}: cannot read the source s3://{item.bucket}/{item.key}: {code}"
            ) from None
        except BotoCoreError as exc:
            raise MigrationError(f"{what}: {describe_exception(exc)}") from None
        size = int(head["ContentLength"])
        source_etag = str(head.get("ETag", "")).strip('"')
        if size != item.size:
            raise MigrationError(
                f"{what}: the source object has {size} bytes, its file handle says {item.size}"
            )
        try:
            if size <= MAX_PART_SIZE:
                copied = self.s3.copy_object(
                    Bucket=self.bucket,
                    Key=key,
                    CopySource=source,
                    CopySourceIfMatch=source_etag,
                    MetadataDirective="COPY",
                )
                etag = str(copied.get("CopyObjectResult", {}).get("ETag", "")).strip('"')
                return FastCopy("", key, size, md5_proven=etag == item.md5)
            etags = self._direct_parts(source, source_etag, key, size, what)
            return FastCopy("", key, size, md5_proven=False, part_etags=tuple(etags))
        except ClientError as exc:
            code = error_code(exc)
            if code in ("PreconditionFailed", "412"):
                raise MigrationError(
                    f"{what}: the source object changed while it was being copied "
                    "(S3 refused the copy: its ETag no longer matches)"
                ) from None
            raise MigrationError(f"{what}: S3 refused the copy: {code}") from None
        except BotoCoreError as exc:
            raise MigrationError(f"{what}: {describe_exception(exc)}") from None

    def _direct_parts(
        self, source: CopySourceTypeDef, source_etag: str, key: str, size: int, what: str
    ) -> list[str]:
        """UploadPartCopy for objects above CopyObject's 5 GiB limit (adaptive part size)."""
        part_size = adaptive_part_size(size, self.preferred_part)
        count = max(1, math.ceil(size / part_size))
        upload = self.s3.create_multipart_upload(Bucket=self.bucket, Key=key)
        upload_id = upload["UploadId"]
        etags: list[str] = []
        try:
            for number in range(1, count + 1):
                first = (number - 1) * part_size
                last = min(size, first + part_size) - 1
                part = self.s3.upload_part_copy(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource={"Bucket": source["Bucket"], "Key": source["Key"]},
                    CopySourceRange=f"bytes={first}-{last}",
                    CopySourceIfMatch=source_etag,
                )
                etags.append(str(part["CopyPartResult"].get("ETag", "")).strip('"'))
                if count > 1:
                    self.note(f"{what}, part {number}/{count} copied")
            self.s3.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={
                    "Parts": [{"ETag": f'"{e}"', "PartNumber": n} for n, e in enumerate(etags, 1)]
                },
            )
        except BaseException:
            # Our own unfinished upload in the destination bucket (never the source).
            from botocore.exceptions import BotoCoreError, ClientError

            try:
                self.s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            except (BotoCoreError, ClientError) as exc:  # best effort; the first error stands
                log.debug("abort of an unfinished copy upload failed: %s", describe_exception(exc))
            raise
        return etags

    def _refuse(self, bucket: str, why: str) -> NoReturn:
        self._fall_back(
            f"read s3://{bucket}",
            f"S3 refused your AWS credentials for s3://{bucket} ({why}): its files are "
            "copied by Synapse instead",
            f"s3://{bucket}: {why}",
        )

    def _fall_back(self, refused: str, note: str, reason: str) -> NoReturn:
        """S3 refused these credentials: say so once, and Synapse copies this file and the
        rest that would need them."""
        with self.lock:
            fresh = refused not in self.refused
            self.refused.add(refused)
        if fresh:
            self.note(note)
        raise FallBack(reason)

    # -- relay --------------------------------------------------------------------------------

    def _relay(self, item: SourceFile, key: str) -> FastCopy:
        what = f"relay of file handle {item.file_handle_id} ({item.entity_id})"
        data = b""
        for attempt in (1, 2):
            url = self.urls.get(item.file_handle_id, item.entity_id, fresh=attempt == 2)
            try:
                status, data = self.downloads.download(url, item.size)
            except TransportError as exc:
                raise MigrationError(f"{what}: the download failed: {exc}") from None
            if status == 403 and attempt == 1:
                continue  # an expired URL: fetch a fresh one once
            if status != 200:
                raise MigrationError(f"{what}: the download answered {status}")
            break
        digest = hashlib.md5(data, usedforsecurity=False)
        if len(data) != item.size or digest.hexdigest() != item.md5:
            raise VerificationError(
                f"{what}: the bytes Synapse served ({len(data)} bytes, MD5 "
                f"{digest.hexdigest()}) are not the source's ({item.size} bytes, MD5 {item.md5})",
                hint="nothing was written; the next run tries again",
            )
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        if "relay" in self.refused:
            raise FallBack("relaying is off for this run")
        try:
            put = self.s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentMD5=base64.b64encode(digest.digest()).decode("ascii"),
                ContentType=item.content_type or "application/octet-stream",
            )
        except NoCredentialsError:
            self._stop_relaying("no AWS credentials")
        except ClientError as exc:
            code = error_code(exc)
            if code in ("403", "AccessDenied", "Forbidden"):
                self._stop_relaying(code)
            raise S3AccessError(
                f"{what}: S3 refused the upload to s3://{self.bucket}/{key}: {code}", code=code
            ) from None
        except BotoCoreError as exc:
            raise MigrationError(f"{what}: {describe_exception(exc)}") from None
        etag = str(put.get("ETag", "")).strip('"')
        # S3 checked the body against Content-MD5; an ETag equal to it confirms what was stored.
        return FastCopy("", key, len(data), md5_proven=etag in ("", item.md5))

    def _stop_relaying(self, why: str) -> NoReturn:
        """The destination bucket refuses these credentials: Synapse copies the rest."""
        self._fall_back(
            "relay",
            f"S3 refused your AWS credentials for writing to s3://{self.bucket} ({why}): "
            "files are copied by Synapse instead of relayed",
            f"s3://{self.bucket}: {why}",
        )

    # -- register -----------------------------------------------------------------------------

    def _register(self, item: SourceFile, key: str) -> str:
        body = {
            "concreteType": S3_FILE_HANDLE,
            "bucketName": self.bucket,
            "key": key,
            "fileName": item.file_name,
            "contentMd5": item.md5,
            "contentSize": item.size,
            "contentType": item.content_type or "application/octet-stream",
            "storageLocationId": self.location_id,
        }
        # A lost answer is resent: at worst Synapse keeps a second, unused handle for the object.
        handle = self.resend(
            f"register the copy of file handle {item.file_handle_id}",
            lambda: self.api.create_external_s3_handle(body),
        )
        return str(handle["id"])


__all__ = [
    "DEFAULT_MD5_MAX",
    "DEFAULT_RELAY_MAX",
    "PATH_TEXT",
    "CopyEstimate",
    "CopyPath",
    "FallBack",
    "FastCopier",
    "FastCopy",
    "RelayUrls",
    "VerifyPlan",
    "adaptive_part_size",
    "choose_path",
    "composite_etag",
    "estimate",
    "verification_plan",
]
