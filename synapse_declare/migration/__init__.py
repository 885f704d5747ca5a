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

from .index import (
    DEFAULT_STRATEGY,
    INDEX_FORMAT,
    MAX_PART_SIZE,
    MAX_PARTS,
    MIN_PART_SIZE,
    MigrationIndex,
    MigrationItem,
    SkippedItem,
    Strategy,
    index_migration,
    part_size_for,
    parts_for,
)
from .report import (
    COPY_PATH_MODES,
    STATUSES,
    VERIFY_MODES,
    MigrationOptions,
    MigrationReport,
    ReportRow,
)
from .runner import run_migration

__all__ = [
    "COPY_PATH_MODES",
    "DEFAULT_STRATEGY",
    "INDEX_FORMAT",
    "MAX_PARTS",
    "MAX_PART_SIZE",
    "MIN_PART_SIZE",
    "STATUSES",
    "VERIFY_MODES",
    "MigrationIndex",
    "MigrationItem",
    "MigrationOptions",
    "MigrationReport",
    "ReportRow",
    "SkippedItem",
    "Strategy",
    "index_migration",
    "part_size_for",
    "parts_for",
    "run_migration",
]
