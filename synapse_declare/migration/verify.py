"""Verifying a copy before anything points at it: the destination object's size (HEAD), and its
MD5 (streamed, proven by the transfer, or composed from S3's part checksums) against the source
handle's, as the ``verify`` mode says (:func:`synapse_declare.copypaths.verification_plan`)."""

from __future__ import annotations

from dataclasses import dataclass

from ..client.s3 import DestinationReader
from ..client.synapse import SynapseAPI
from ..copypaths import composite_etag, verification_plan
from ..errors import VerificationError
from .index import MigrationItem
from .multipart import Copy
from .report import MigrationOptions


@dataclass(frozen=True)
class CopyChecker:
    api: SynapseAPI
    reader: DestinationReader | None
    options: MigrationOptions
    destination_id: int
    destination_bucket: str | None

    def verify(self, item: MigrationItem, copy: Copy) -> str | None:
        """Size (HEAD) or size and MD5 (streamed) of the destination object against the source
        handle, as ``verify`` says (``auto``: :func:`copypaths.verification_plan` — no read back
        when the transfer proved the MD5, S3's part checksums for large copies). The object is
        the one the part copies wrote (its key from the URLs Synapse signed, in the destination
        bucket read at the start of the run); when the copy was finished by an earlier run, the
        new handle is read to find it, and its storage location and recorded MD5 are checked
        too. Returns the object's key."""
        if self.options.verify == "none":
            return copy.key
        problems: list[str] = []
        if copy.key is not None and self.destination_bucket is not None:
            bucket, key = self.destination_bucket, copy.key
        else:
            bucket, key = self._read_handle(item, copy.new_handle_id, problems)
        if not bucket or not key:
            problems.append("its handle names no bucket and key")
        else:
            problems.extend(self._object_problems(item, copy, bucket, key))
        if problems:
            raise VerificationError(
                f"copy {copy.new_handle_id} of file handle {item.file_handle_id} "
                f"(s3://{bucket}/{key}) does not match its source: {'; '.join(problems)}",
                hint=f"nothing points at file handle {copy.new_handle_id}; "
                "the next run copies anew",
            )
        return key

    def _read_handle(
        self, item: MigrationItem, new_handle_id: str, problems: list[str]
    ) -> tuple[str, str]:
        handle = self.api.get_file_handle(new_handle_id)
        location = handle.get("storageLocationId")
        if location is None or int(location) != self.destination_id:
            problems.append(
                f"the copy is in storage location {location}, not {self.destination_id}"
            )
        if str(handle.get("contentMd5", "")).lower() != item.md5:
            problems.append(f"its handle records MD5 {handle.get('contentMd5')}, not {item.md5}")
        return str(handle.get("bucketName", "")), str(handle.get("key", ""))

    def _object_problems(self, item: MigrationItem, copy: Copy, bucket: str, key: str) -> list[str]:
        assert self.reader is not None
        problems: list[str] = []
        plan = verification_plan(
            self.options.verify, copy.path, item.size, self.options.md5_max_bytes
        )
        auto = self.options.verify == "auto"
        if plan.stream_md5 and not (auto and copy.md5_proven):
            size, md5 = self.reader.size_and_md5(bucket, key)
            if size != item.size:
                problems.append(f"the object has {size} bytes, the source {item.size}")
            if md5 != item.md5:
                problems.append(f"the object's MD5 is {md5}, the source's {item.md5}")
            return problems
        etag: str | None = None
        if auto and not copy.md5_proven and copy.part_etags:
            size, etag = self.reader.head_etag(bucket, key)
        else:
            size = self.reader.head(bucket, key)
        if size != item.size:
            problems.append(f"the object has {size} bytes, the source {item.size}")
        if etag is not None:
            expected = composite_etag(copy.part_etags)
            if etag != expected:
                problems.append(
                    f"the object's ETag is {etag}, not {expected} as composed from the "
                    "checksums S3 answered for its parts"
                )
        return problems
