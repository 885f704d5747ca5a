"""Helpers for the storage-migration tests (no tests here).

A :class:`World` is one emulator with a project of alice's whose files live in Synapse storage, an
external S3 bucket (in the emulator's moto) registered as alice's ExternalS3StorageLocationSetting
(the migration's destination), the product client, and a state directory for journals.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conftest import Api
from test_emulator_storage_support import (
    FILE_ENTITY,
    MIB,
    external_location,
    file_entity,
    make_bucket,
    md5_hex,
    upload,
)

from synapse_declare.auth import Credentials, Endpoints
from synapse_declare.client.http import ClientOptions, Transport
from synapse_declare.client.s3 import DestinationReader
from synapse_declare.client.synapse import SynapseAPI
from synapse_declare.emulator import Emulator, s3gate
from synapse_declare.migration import (
    MigrationIndex,
    MigrationOptions,
    MigrationReport,
    Strategy,
    index_migration,
    run_migration,
)
from synapse_declare.progress import Progress

__all__ = ["FILE_ENTITY", "MIB", "md5_hex"]

FOLDER = "org.sagebionetworks.repo.model.Folder"
EXTERNAL_FILE_HANDLE = "org.sagebionetworks.repo.model.file.ExternalFileHandle"
S3_FILE_HANDLE = "org.sagebionetworks.repo.model.file.S3FileHandle"


def product_api_for(base_url: str, token: str, options: ClientOptions | None = None) -> SynapseAPI:
    endpoints = Endpoints.from_base(base_url)
    credentials = Credentials(token=token, source="test", endpoints=endpoints)
    return SynapseAPI(Transport(credentials, endpoints, options or ClientOptions(read_timeout=30)))


def product_api(emulator: Emulator, user: str = "alice") -> SynapseAPI:
    """The product client paced to the emulator's throttle knobs (none: no pacing)."""
    knobs = emulator.knobs
    options = ClientOptions(
        read_timeout=30,
        max_concurrency=knobs.max_concurrent or 3,
        max_per_window=knobs.max_per_minute or 0,
    )
    return product_api_for(emulator.base_url, emulator.users[user], options)


class Notes(Progress):
    """Collects progress notes; ``fail_when(note)`` returning True raises :class:`Killed`."""

    def __init__(self, fail_when: Callable[[str], bool] | None = None) -> None:
        self.lines: list[str] = []
        self.fail_when = fail_when
        self._lock = threading.Lock()

    def note(self, message: str) -> None:
        with self._lock:
            self.lines.append(message)
        if self.fail_when is not None and self.fail_when(message):
            raise Killed(message)


class Killed(BaseException):
    """Stands for the process dying at a chosen point (raised from a progress callback)."""


@dataclass
class S3Request:
    method: str
    bucket: str
    key: str
    query: str
    copy_source: str | None
    authorization: str


class S3Recorder:
    """WSGI middleware between the emulator's S3 gateway and moto: records every S3 request."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.requests: list[S3Request] = []
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        from urllib.parse import unquote

        path = unquote(str(environ.get("PATH_INFO", "/"))).lstrip("/")
        bucket, _, key = path.partition("/")
        record = S3Request(
            method=str(environ.get("REQUEST_METHOD", "")),
            bucket=bucket,
            key=key,
            query=str(environ.get("QUERY_STRING", "")),
            copy_source=environ.get("HTTP_X_AMZ_COPY_SOURCE"),
            authorization=str(environ.get("HTTP_AUTHORIZATION", "")),
        )
        with self._lock:
            self.requests.append(record)
        return self.app(environ, start_response)

    def writes_to(self, bucket: str, key: str) -> list[S3Request]:
        return [
            r
            for r in self.requests
            if r.bucket == bucket and r.key == key and r.method in ("PUT", "POST", "DELETE")
        ]


def record_s3(emulator: Emulator) -> S3Recorder:
    gateway = s3gate.ensure_gateway(emulator)
    assert gateway is not None
    recorder = S3Recorder(gateway.app)
    gateway.app = recorder
    return recorder


@dataclass
class World:
    emulator: Emulator
    raw: Api
    api: SynapseAPI
    user_id: int
    project: str
    bucket: str
    destination: int
    state_dir: Path
    reports: Path
    _counter: list[int] = field(default_factory=lambda: [0])

    # -- content -------------------------------------------------------------------------------

    def folder(self, name: str, parent: str | None = None) -> str:
        return str(self.raw.folder(name, parent or self.project)["id"])

    def put_file(
        self,
        data: bytes,
        name: str | None = None,
        *,
        parent: str | None = None,
        location: int | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Upload ``data`` (multipart, 5 MiB parts) and make a FileEntity of it."""
        self._counter[0] += 1
        name = name or f"file-{self._counter[0]}.bin"
        handle = upload(self.raw, data, name, location=location)
        entity = file_entity(self.raw, parent or self.project, handle["id"], name)
        return entity, handle

    def new_version(self, entity_id: str, data: bytes, name: str = "v.bin") -> dict[str, Any]:
        """A new version of ``entity_id`` holding ``data`` (different MD5: auto-versioning)."""
        handle = upload(self.raw, data, name)
        entity = self.raw.ok("GET", f"/entity/{entity_id}")
        entity["dataFileHandleId"] = handle["id"]
        entity.pop("versionLabel", None)
        return dict(self.raw.ok("PUT", f"/entity/{entity_id}", entity, newVersion="true"))

    def entity_with_handle(self, handle_id: str, name: str, parent: str | None = None) -> str:
        return str(file_entity(self.raw, parent or self.project, handle_id, name)["id"])

    def external_url_file(self, name: str) -> str:
        handle = self.raw.ok(
            "POST",
            "/file/v1/externalFileHandle",
            {
                "concreteType": EXTERNAL_FILE_HANDLE,
                "externalURL": f"https://example.org/{name}",
                "fileName": name,
            },
        )
        return self.entity_with_handle(str(handle["id"]), name)

    def zero_byte_file(self, name: str) -> str:
        """A zero-byte S3FileHandle in another external bucket of alice's."""
        bucket = make_bucket(self.emulator)
        location = external_location(self.raw, bucket)["storageLocationId"]
        self.emulator.s3_client().put_object(Bucket=bucket, Key=f"data/{name}", Body=b"")
        handle = self.raw.ok(
            "POST",
            "/file/v1/externalFileHandle/s3",
            {
                "concreteType": S3_FILE_HANDLE,
                "bucketName": bucket,
                "key": f"data/{name}",
                "fileName": name,
                "contentMd5": md5_hex(b""),
                "contentSize": 0,
                "storageLocationId": location,
            },
        )
        return self.entity_with_handle(str(handle["id"]), name)

    # -- reading state -------------------------------------------------------------------------

    def version_handle(self, entity_id: str, version: int) -> dict[str, Any]:
        bundle = self.raw.ok(
            "POST",
            f"/entity/{entity_id}/version/{version}/bundle2",
            {"includeEntity": True, "includeFileHandles": True},
        )
        wanted = bundle["entity"]["dataFileHandleId"]
        return dict(next(h for h in bundle["fileHandles"] if h["id"] == wanted))

    def object_bytes(self, bucket: str, key: str) -> bytes:
        body: bytes = self.emulator.s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()
        return body

    def handle_bytes(self, handle: dict[str, Any]) -> bytes:
        return self.object_bytes(handle["bucketName"], handle["key"])

    # -- running -------------------------------------------------------------------------------

    def index(
        self,
        strategy: Strategy = Strategy.LATEST,
        *,
        container: str | None = None,
        destination: int | str | None = "default",
        exclude: frozenset[str] = frozenset(),
    ) -> MigrationIndex:
        dest = self.destination if destination == "default" else destination
        assert dest is None or isinstance(dest, int)
        return index_migration(self.api, container or self.project, strategy, dest, exclude=exclude)

    def options(self, **overrides: Any) -> MigrationOptions:
        values: dict[str, Any] = {
            "state_dir": self.state_dir,
            "part_size": 5 * MIB,
            # These helpers exercise Synapse's multipart copy; the direct and relay paths are
            # chosen with copy_path="auto" (test_migration_paths.py).
            "copy_path": "synapse",
            "report_json": self.reports / "report.json",
            "report_csv": self.reports / "report.csv",
        }
        values.update(overrides)
        return MigrationOptions(**values)

    def reader(self) -> DestinationReader:
        return DestinationReader(self.emulator.s3_client())

    def migrate(
        self,
        index: MigrationIndex,
        *,
        destination: int | None = None,
        progress: Progress | None = None,
        verifier: DestinationReader | None = None,
        **options: Any,
    ) -> MigrationReport:
        return run_migration(
            self.api,
            index,
            destination or self.destination,
            endpoint=self.emulator.repo_endpoint,
            user_id=self.user_id,
            verifier=verifier or self.reader(),
            options=self.options(**options),
            progress=progress or Notes(),
        )


@contextmanager
def world(emulator: Emulator, tmp_path: Path, name: str = "Migration test") -> Iterator[World]:
    raw = Api(emulator, emulator.users["alice"])
    api = product_api(emulator)
    bucket = make_bucket(emulator)
    destination = int(external_location(raw, bucket)["storageLocationId"])
    project = str(raw.project(name)["id"])
    try:
        yield World(
            emulator=emulator,
            raw=raw,
            api=api,
            user_id=emulator.principal_ids["alice"],
            project=project,
            bucket=bucket,
            destination=destination,
            state_dir=tmp_path / "state",
            reports=tmp_path / "reports",
        )
    finally:
        api.t.close()


def multipart_starts(exchanges: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The multipart copy starts (not uploads) in a request log, as
    ``[{"handle", "uploadId", "force", "state"}]``."""
    found = []
    for e in exchanges:
        if e["method"] == "POST" and e["path"] == "/file/v1/file/multipart" and e["status"] == 201:
            association = (e.get("request") or {}).get("sourceFileHandleAssociation")
            if association is None:
                continue  # an upload, not a copy
            found.append(
                {
                    "handle": str(association.get("fileHandleId")),
                    "uploadId": str((e.get("response") or {}).get("uploadId")),
                    "force": e.get("query", {}).get("forceRestart"),
                    "state": (e.get("response") or {}).get("state"),
                }
            )
    return found


def part_adds(exchanges: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """(uploadId, part number) of every ``add`` call."""
    found = []
    for e in exchanges:
        parts = e["path"].split("/")
        if e["method"] == "PUT" and len(parts) == 8 and parts[6] == "add":
            found.append((parts[5], int(parts[7])))
    return found


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()
