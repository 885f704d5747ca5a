"""Start and stop a local Synapse: the REST app on one port, moto's S3/STS server on another.

``Emulator`` is both the pytest/benchmark API and what ``synapse-declare emulator serve`` runs::

    with Emulator(EmulatorConfig(users=[SeedUser("alice", "alice-token")])) as emu:
        emu.repo_endpoint   # http://127.0.0.1:PORT/repo/v1
        emu.s3_endpoint     # http://127.0.0.1:PORT2 (moto)

Only loopback addresses are ever bound or contacted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from . import (
    access_requirements,
    acl,
    bundles,
    control,
    downloads,
    entities,
    filecopy,
    files,
    md5,
    multipart,
    nodes,
    principals,
    provenance,
    s3gate,
    seedfile,
    storage,
    sts,
    teams,
    wikis,
)
from . import annotations as annotations_v2
from .access_requirements import SeedAccessRequirement
from .app import FAULT_KINDS, Knobs, RequestLog, SynapseApp
from .principals import SeedTeam, SeedUser
from .store import Store
from .util import MIGRATION_ADMIN, SynapseError

log = logging.getLogger(__name__)

# Every endpoint module; each contributes SCHEMA (DDL) and ROUTES.
MODULES: Sequence[Any] = (
    principals,
    nodes,
    entities,
    annotations_v2,
    acl,
    bundles,
    wikis,
    storage,
    s3gate,
    files,
    multipart,
    sts,
    filecopy,
    md5,
    downloads,
    provenance,
    control,
    teams,
    access_requirements,
)

S3_REGION = "us-east-1"
# moto accepts any credentials; these never leave the machine.
S3_ACCESS_KEY = "emulator-access-key"
S3_SECRET_KEY = "emulator-secret-key"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class EmulatorConfig:
    host: str = "127.0.0.1"
    port: int = 0
    data_dir: Path | None = None
    users_file: Path | None = None
    users: Sequence[SeedUser] | None = None
    teams: Sequence[SeedTeam] = ()
    access_requirements: Sequence[SeedAccessRequirement] = ()
    latency_ms: float = 0.0
    max_concurrent: int | None = None
    max_per_minute: int | None = None
    fault_rate: float = 0.0
    fault_seed: int = 0
    fault_kinds: Sequence[str] = FAULT_KINDS
    request_log: Path | None = None
    s3_port: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.debug("%s %s %s", self.command, self.path.split("?")[0], code)

    def log_error(self, format: str, *args: Any) -> None:
        log.debug(format, *args)


class Emulator:
    """A running local Synapse. Use as a context manager or call start()/stop()."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        if self.config.host not in LOOPBACK:
            raise ValueError(
                f"the emulator only listens on loopback (127.0.0.1, localhost, ::1), not "
                f"{self.config.host!r}"
            )
        self.knobs = Knobs(
            latency_ms=self.config.latency_ms,
            max_concurrent=self.config.max_concurrent,
            max_per_minute=self.config.max_per_minute,
            fault_rate=self.config.fault_rate,
            fault_seed=self.config.fault_seed,
            fault_kinds=self.config.fault_kinds,
        )
        self.users: dict[str, str] = {}  # userName -> token
        self.principal_ids: dict[str, int] = {}
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._moto: Any = None
        self.s3_endpoint = ""
        self.base_url = ""
        self.store: Store
        self.app: SynapseApp
        self.synapse_bucket = ""

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Emulator:
        from moto.server import ThreadedMotoServer

        # moto's request handler logs every S3 call through werkzeug's logger at INFO.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._moto = ThreadedMotoServer(
            ip_address=self.config.host, port=self.config.s3_port, verbose=False
        )
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        self.s3_endpoint = f"http://{_url_host(host)}:{port}"

        db_path = None
        if self.config.data_dir is not None:
            self.config.data_dir.mkdir(parents=True, exist_ok=True)
            db_path = self.config.data_dir / "synapse.sqlite3"
        self.store = Store(db_path, [m.SCHEMA for m in MODULES if getattr(m, "SCHEMA", "")])
        with self.store.transaction():
            if self.store.is_new:
                principals.bootstrap(self.store)
                nodes.bootstrap(self.store)
                # Each emulator gets its own Synapse bucket: moto's state is process-wide.
                self.store.set_meta("synapse_bucket", f"synapse-emulator-{uuid.uuid4().hex[:12]}")
                self.store.set_meta("bootstrapped", "1")
            self.synapse_bucket = str(self.store.get_meta("synapse_bucket"))
            self._seed_users()
        self._restore_s3()
        # Put the S3 gateway (STS policies, presigned-URL signatures) in front of moto before
        # anyone can reach it, so credentials reloaded from a data dir are enforced at once.
        from .s3gate import ensure_gateway

        ensure_gateway(self)

        routes = [route for module in MODULES for route in getattr(module, "ROUTES", [])]
        self.app = SynapseApp(self, routes)
        if self.config.request_log is not None:
            self.app.request_log = RequestLog(str(self.config.request_log))
        self._server = make_server(
            self.config.host,
            self.config.port,
            self.app,
            threaded=True,
            request_handler=_QuietHandler,
        )
        # make_server(threaded=True) returns a ThreadedWSGIServer (a ThreadingMixIn).
        self._server.daemon_threads = True  # type: ignore[attr-defined]
        bound_host, bound_port = self._server.server_address[:2]
        self.base_url = f"http://{_url_host(str(bound_host))}:{bound_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="synapse-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if getattr(self, "app", None) is not None:
            # Handler threads outlive serve_forever (they are daemons): let the ones still
            # running finish before their database and request log close under them.
            self.app.wait_idle(timeout=10)
        if self.config.data_dir is not None and self._moto is not None:
            self._persist_s3()
        if self._moto is not None:
            moto_server = getattr(self._moto, "_server", None)
            if moto_server is not None:
                _shutdown_promptly(moto_server)
            self._moto.stop()
            self._moto = None
        if getattr(self, "app", None) is not None and self.app.request_log is not None:
            self.app.request_log.close()
            self.app.request_log = None
        if getattr(self, "store", None) is not None:
            self.store.close()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ endpoints

    @property
    def repo_endpoint(self) -> str:
        return f"{self.base_url}/repo/v1"

    @property
    def file_endpoint(self) -> str:
        return f"{self.base_url}/file/v1"

    @property
    def auth_endpoint(self) -> str:
        return f"{self.base_url}/auth/v1"

    @property
    def portal_endpoint(self) -> str:
        return f"{self.base_url}/portal/"

    def synapse_config(self, user: str | None = None) -> str:
        """A ``~/.synapseConfig`` pointing synapseclient (or synapse-declare) at this emulator."""
        lines = []
        if user is not None:
            lines += [
                "[authentication]",
                f"username = {user}",
                f"authtoken = {self.users[user]}",
                "",
            ]
        lines += [
            "[endpoints]",
            f"repoEndpoint = {self.repo_endpoint}",
            f"authEndpoint = {self.auth_endpoint}",
            f"fileHandleEndpoint = {self.file_endpoint}",
            f"portalEndpoint = {self.portal_endpoint}",
            "",
        ]
        return "\n".join(lines)

    def state_version(self) -> int:
        """Increases by one per committed mutating request: "no mutation" checks compare it."""
        return self.store.state_version()

    def s3_client(self) -> Any:
        """A boto3 S3 client for the embedded S3 server (moto), independent of AWS_* vars."""
        return boto3.client(
            "s3",
            endpoint_url=self.s3_endpoint,
            region_name=S3_REGION,
            aws_access_key_id=S3_ACCESS_KEY,
            aws_secret_access_key=S3_SECRET_KEY,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    def sts_client(self) -> Any:
        return boto3.client(
            "sts",
            endpoint_url=self.s3_endpoint,
            region_name=S3_REGION,
            aws_access_key_id=S3_ACCESS_KEY,
            aws_secret_access_key=S3_SECRET_KEY,
        )

    # ------------------------------------------------------------------ seeding and S3 state

    def _seed_users(self) -> None:
        users: list[SeedUser] = list(self.config.users or [])
        teams_: list[SeedTeam] = list(self.config.teams)
        requirements = list(self.config.access_requirements)
        source = "EmulatorConfig"
        users_file: seedfile.SeedFile | None = None
        if self.config.users_file is not None:
            users_file = seedfile.load(self.config.users_file)
            source = str(users_file.path)
            document = users_file.data
            try:
                file_users, file_teams = principals.parse_users_document(document, source)
                requirements += access_requirements.parse_seeds(
                    document.get("access_requirements"), source
                )
            except seedfile.SeedProblem as problem:
                raise users_file.locate(problem) from problem
            users += file_users
            teams_ += file_teams
        if not users and not self.config.users_file:
            existing = self.store.one(
                "SELECT name, token FROM principals WHERE kind='user' AND name='demo'"
            )
            token = str(existing["token"]) if existing else principals.new_token()
            users = [SeedUser("demo", token, email="demo@example.org", certified=True)]
        ids = principals.seed(self.store, users)
        from_config = len(self.config.teams)  # the file's teams come after the config's
        for index, team in enumerate(teams_):
            try:
                ids.update(teams.seed_teams(self.store, [team], ids))
            except SynapseError as err:
                at = ("teams", index - from_config) if index >= from_config else ("teams",)
                refused = seedfile.SeedProblem(
                    source, (*at, "name"), err.reason, "Synapse refuses this team: rename it"
                )
                raise (refused if users_file is None else users_file.locate(refused)) from err
        self.principal_ids = ids
        self.users = {u.user_name: u.token for u in users}
        try:
            self.add_access_requirements(requirements, source=source)
        except seedfile.SeedProblem as problem:
            raise (problem if users_file is None else users_file.locate(problem)) from problem

    def add_access_requirements(
        self, requirements: Sequence[SeedAccessRequirement], *, source: str = "EmulatorConfig"
    ) -> dict[str, int]:
        """Seed access requirements (what Sage's ACT would create); returns name -> id.

        Usable while running: tests bind a requirement to an entity they just created.
        """
        with self.store.transaction():
            try:
                return access_requirements.seed(self.store, requirements, MIGRATION_ADMIN)
            except SynapseError as err:
                raise seedfile.SeedProblem(
                    source,
                    ("access_requirements",),
                    err.reason,
                    "correct the subject or approved user named here",
                ) from err

    def _s3_snapshot_dir(self) -> Path:
        assert self.config.data_dir is not None
        return self.config.data_dir / "s3"

    def _restore_s3(self) -> None:
        s3 = self.s3_client()
        buckets = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
        if self.synapse_bucket not in buckets:
            s3.create_bucket(Bucket=self.synapse_bucket)
        if self.config.data_dir is None:
            return
        snapshot = self._s3_snapshot_dir()
        index_file = snapshot / "index.json"
        if not index_file.exists():
            return
        index = json.loads(index_file.read_text(encoding="utf-8"))
        for bucket, objects in index.items():
            if bucket not in buckets and bucket != self.synapse_bucket:
                s3.create_bucket(Bucket=bucket)
            for key, meta in objects.items():
                body = (snapshot / meta["file"]).read_bytes()
                s3.put_object(
                    Bucket=bucket,
                    Key=key,
                    Body=body,
                    ContentType=meta.get("contentType", "application/octet-stream"),
                )

    def _persist_s3(self) -> None:
        """Snapshot every bucket this emulator knows into the data dir (graceful stop only)."""
        s3 = self.s3_client()
        snapshot = self._s3_snapshot_dir()
        snapshot.mkdir(parents=True, exist_ok=True)
        buckets = {self.synapse_bucket}
        with self.store.lock:
            for row in self.store.all(
                "SELECT DISTINCT bucket FROM file_handles WHERE bucket IS NOT NULL"
            ):
                buckets.add(str(row[0]))
            buckets |= set(storage.known_buckets(self.store))
        index: dict[str, dict[str, Any]] = {}
        counter = 0
        for bucket in sorted(buckets):
            objects: dict[str, Any] = {}
            try:
                paginator = s3.get_paginator("list_objects_v2")
                for page in paginator.paginate(Bucket=bucket):
                    for item in page.get("Contents", []):
                        obj = s3.get_object(Bucket=bucket, Key=item["Key"])
                        name = f"obj-{counter:08d}"
                        counter += 1
                        (snapshot / name).write_bytes(obj["Body"].read())
                        objects[item["Key"]] = {
                            "file": name,
                            "contentType": obj.get("ContentType", "application/octet-stream"),
                        }
            except s3.exceptions.NoSuchBucket:
                continue
            index[bucket] = objects
        tmp = snapshot / "index.json.tmp"
        tmp.write_text(json.dumps(index), encoding="utf-8")
        os.replace(tmp, snapshot / "index.json")


def _shutdown_promptly(server: Any) -> None:
    """socketserver.shutdown() waits up to one poll interval (moto's is 0.5 s); a connection
    wakes the serve loop at once, which keeps per-test emulators cheap to stop."""
    address = server.server_address[:2]
    worker = threading.Thread(target=server.shutdown, daemon=True)
    worker.start()
    while worker.is_alive():
        with contextlib.suppress(OSError):
            socket.create_connection(address, timeout=0.2).close()
        worker.join(0.02)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
