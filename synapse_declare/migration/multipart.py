"""Synapse's multipart copy of one source file handle (``MultipartUploadCopyRequest``): Synapse
signs one S3 ``UploadPartCopy`` URL per part; each is PUT with exactly its signed headers (a
separate HTTP session: the Synapse token never goes to S3), its ETag reported with ``add/{n}``,
and the upload completed. A journal records the upload, so a killed run resumes it: the identical
request makes Synapse answer with the same upload and its ``partsState``."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from ..client.s3 import PartCopier, object_key_from_url
from ..client.synapse import SynapseAPI
from ..copypaths import CopyPath, adaptive_part_size
from ..errors import AmbiguousWrite, Forbidden, MigrationError, NotFound, PartCopyError
from ..journal import COPY_REJECTED, CopyRecord, Journal
from ..progress import Progress
from .index import MODEL, MigrationItem, parts_for
from .repoint import RESEND_ATTEMPTS

T = TypeVar("T")

COPY_REQUEST = MODEL + "file.MultipartUploadCopyRequest"
URL_BATCH = 50  # presigned URLs per request: well inside their 15-minute life at any part size


@dataclass
class Copy:
    new_handle_id: str
    made: bool  # this run copied at least one part
    key: str | None = None  # the destination object, as addressed by the part-copy URLs
    path: CopyPath = CopyPath.SYNAPSE
    md5_proven: bool = False  # the transfer proved the object's MD5 (copypaths)
    part_etags: tuple[str, ...] = ()  # every part's S3 ETag, when this run copied them all
    bytes_copied: int = 0  # by this run


class AssociationRefused(Exception):
    """Synapse refused to copy through the named entity (403/404 on the copy start)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def resend(what: str, call: Callable[[], T], note: Callable[[str], None]) -> T:
    """For calls Synapse makes idempotent (multipart start by request hash, URL batches, add
    part, complete): an unknown outcome is resolved by sending the same call again."""
    for attempt in range(1, RESEND_ATTEMPTS + 1):
        try:
            return call()
        except AmbiguousWrite as exc:
            if attempt == RESEND_ATTEMPTS:
                raise
            note(f"{what}: {exc}; sending it again (idempotent)")
            time.sleep(min(0.25 * 2**attempt, 4.0))
    raise AssertionError("unreachable")


class MultipartCopier:
    """Copies source file handles into one destination storage location with Synapse's
    multipart copy, ``parallel`` parts at a time across every copy in flight."""

    def __init__(
        self,
        api: SynapseAPI,
        journal: Journal,
        progress: Progress,
        *,
        destination_id: int,
        destination_bucket: str | None,
        preferred_part: int,
        parallel: int,
        aborted: threading.Event,
    ) -> None:
        self.api = api
        self.journal = journal
        self.progress = progress
        self.destination_id = destination_id
        self.destination_bucket = destination_bucket
        self.preferred_part = preferred_part
        self.aborted = aborted
        self.copier = PartCopier(pool=max(4, parallel * 2))
        self.parts = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="migrate-part")

    def close(self) -> None:
        self.parts.shutdown(wait=True, cancel_futures=True)
        self.copier.close()

    def _resend(self, what: str, call: Callable[[], T]) -> T:
        return resend(what, call, self.progress.note)

    def copy(self, handle_id: str, items: list[MigrationItem], record: CopyRecord | None) -> Copy:
        """Copy ``handle_id`` through one of ``items`` (the entities that use it), resuming the
        upload ``record`` names when the journal has one."""
        first = items[0]
        if record is not None and not str(record.upload_id or "").isdigit():
            record = None  # started on another path: Synapse's copy starts afresh
        entities = {i.entity_id for i in items}
        force_restart = record is not None and record.state == COPY_REJECTED
        if record is not None and not force_restart and record.associate_entity in entities:
            # The identical request (same association and part size) makes Synapse answer with
            # the upload it already has for it: a resumed copy continues, a finished one is reused.
            associate, part_size = record.associate_entity, record.part_size
        else:
            associate = first.entity_id
            part_size = adaptive_part_size(first.size, self.preferred_part)
        what = f"copy of file handle {handle_id} ({first.entity_id})"
        status = self._start(handle_id, associate, part_size, force_restart, what)
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
        return Copy(str(result), made=bool(copied), key=key, part_etags=etags, bytes_copied=copied)

    def _start(
        self, handle_id: str, associate: str, part_size: int, force_restart: bool, what: str
    ) -> Mapping[str, Any]:
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
        try:
            return self._resend(
                f"start {what}",
                lambda: self.api.start_multipart(request, force_restart=force_restart),
            )
        except (Forbidden, NotFound) as exc:
            raise AssociationRefused(exc) from exc

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
        except BaseException as exc:
            # An error is the caller's to judge; a kill (KeyboardInterrupt, a signal turned into
            # an exception) stops every part: none further starts.
            if not isinstance(exc, Exception):
                self.aborted.set()
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
