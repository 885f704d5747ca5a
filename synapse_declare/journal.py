"""The migration journal: a small SQLite file that makes a storage migration resumable.

One journal per (Synapse endpoint, user, container), under ``<state_dir>/migrations/``. It records,
durably and as each step completes (WAL, ``synchronous=FULL``, one committed statement per step):

* per **source file handle**, the copy: the multipart ``uploadId``, the part size and the entity
  the copy request named (together they make Synapse's idempotent request hash, so a resumed run
  sends the identical request and gets the same upload back), the new file handle once the copy
  completed, and whether it was verified (or rejected — a rejected copy is never reused, the next
  attempt starts a fresh upload with ``forceRestart``);
* per **item** (entity version), whether it was repointed, to which handle, and any error.

A journal belongs to one destination and one version strategy. While it is unfinished, opening it
with other settings is refused (:class:`MigrationError`); a finished journal is archived and a new
one started. An exclusive lock (``fcntl.flock`` on ``<journal>.lock``, released by the OS when the
process dies, so a killed run never leaves a stale lock) keeps two runs off the same journal; the
lock file names the holder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from .errors import LockError, MigrationError

SCHEMA_VERSION = "1"

SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS copies (
    source_handle_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,            -- started | completed | verified | rejected
    upload_id TEXT,
    part_size INTEGER NOT NULL,
    associate_entity TEXT NOT NULL,
    new_handle_id TEXT,
    new_key TEXT,                   -- the copy's object key in the destination bucket
    size INTEGER NOT NULL,
    md5 TEXT NOT NULL,
    error TEXT,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
    entity_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    source_handle_id TEXT NOT NULL,
    state TEXT NOT NULL,            -- repointed | failed | source_changed
    new_handle_id TEXT,
    new_version INTEGER,
    error TEXT,
    updated_at REAL NOT NULL,
    PRIMARY KEY (entity_id, version)
);
"""

COPY_STARTED = "started"
COPY_COMPLETED = "completed"
COPY_VERIFIED = "verified"
COPY_REJECTED = "rejected"
ITEM_REPOINTED = "repointed"


@dataclass(frozen=True, slots=True)
class CopyRecord:
    source_handle_id: str
    state: str
    upload_id: str | None
    part_size: int
    associate_entity: str
    new_handle_id: str | None
    error: str | None
    new_key: str | None = None


@dataclass(frozen=True, slots=True)
class ItemRecord:
    entity_id: str
    version: int
    source_handle_id: str
    state: str
    new_handle_id: str | None
    new_version: int | None
    error: str | None


def journal_path(state_dir: Path, *, endpoint: str, user_id: int, container_id: str) -> Path:
    """``<state_dir>/migrations/<container>-u<user>-<endpoint digest>.sqlite3``."""
    digest = hashlib.sha256(endpoint.rstrip("/").encode("utf-8")).hexdigest()[:12]
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", container_id)
    return state_dir / "migrations" / f"{safe}-u{user_id}-{digest}.sqlite3"


class _Lock:
    """An exclusive advisory lock on ``path``; its content names the holder."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def acquire(self, what: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release()
        try:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # pragma: no cover - platforms without flock
            self._acquire_without_flock(handle, what)
        except OSError:
            handle.seek(0)
            holder = handle.read()
            handle.close()
            raise LockError(
                f"another run is using {what}: {_describe_holder(holder)}",
                hint="wait for it to finish (the lock is released as soon as that process "
                "exits, even if it is killed), then run again",
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(
            json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()})
        )
        handle.flush()
        self._file = handle

    def _acquire_without_flock(
        self, handle: IO[str], what: str
    ) -> None:  # pragma: no cover - Windows
        handle.seek(0)
        holder = handle.read().strip()
        if holder:
            try:
                info = json.loads(holder)
                alive = info.get("host") != socket.gethostname() or _pid_alive(int(info["pid"]))
            except (ValueError, KeyError, TypeError):
                alive = False
            if alive:
                handle.close()
                raise LockError(f"another run is using {what}: {_describe_holder(holder)}")

    def release(self) -> None:
        if self._file is None:
            return
        with contextlib.suppress(OSError):
            self._file.seek(0)
            self._file.truncate()
            self._file.flush()
        self._file.close()  # closing the descriptor releases the flock
        self._file = None


def _pid_alive(pid: int) -> bool:  # pragma: no cover - Windows fallback only
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _describe_holder(text: str) -> str:
    try:
        info = json.loads(text)
        age = max(0.0, time.time() - float(info["started"]))
        return f"pid {info['pid']} on {info['host']}, started {_age(age)} ago"
    except (ValueError, KeyError, TypeError):
        return "an unidentified process"


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class Journal:
    """Thread-safe: one connection, one lock, one committed statement per recorded step."""

    def __init__(self, path: Path, conn: sqlite3.Connection, lock: _Lock) -> None:
        self.path = path
        self._conn = conn
        self._lock = lock
        self._mutex = threading.Lock()
        self.resumed = False

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        state_dir: Path,
        *,
        endpoint: str,
        user_id: int,
        container_id: str,
        destination_id: int,
        strategy: str,
    ) -> Journal:
        """Lock and open (or create) the journal for this migration; refuse other settings while
        an unfinished journal exists."""
        path = journal_path(
            state_dir, endpoint=endpoint, user_id=user_id, container_id=container_id
        )
        lock = _Lock(path.with_name(path.name + ".lock"))
        lock.acquire(f"the migration journal {path}")
        try:
            journal = cls._open_locked(
                path,
                lock,
                {
                    "schema": SCHEMA_VERSION,
                    "endpoint": endpoint.rstrip("/"),
                    "user_id": str(user_id),
                    "container_id": container_id,
                    "destination_id": str(destination_id),
                    "strategy": strategy,
                },
            )
        except BaseException:
            lock.release()
            raise
        return journal

    @classmethod
    def _open_locked(cls, path: Path, lock: _Lock, wanted: dict[str, str]) -> Journal:
        conn = _connect(path)
        existing = dict(conn.execute("SELECT key, value FROM settings").fetchall())
        if existing:
            differences = [
                f"{name} {existing.get(name)!r} (now {wanted[name]!r})"
                for name in ("destination_id", "strategy", "container_id", "user_id")
                if existing.get(name) != wanted[name]
            ]
            if differences and existing.get("finished") != "1":
                conn.close()
                raise MigrationError(
                    f"an unfinished migration of {wanted['container_id']} was started with "
                    f"different settings: {', '.join(differences)}; its journal is {path}",
                    hint="finish it first with the settings it was started with (put them back "
                    "in the manifest and apply), or delete the journal to abandon it — nothing "
                    "in Synapse changes when it is deleted, but copies it recorded are then not "
                    "reused",
                )
            if differences:
                conn.close()
                stamp = time.strftime("%Y%m%dT%H%M%S")
                for suffix in ("", "-wal", "-shm"):
                    old = Path(str(path) + suffix)
                    if old.exists():
                        old.replace(Path(f"{path}.finished-{stamp}{suffix}"))
                conn = _connect(path)
                existing = {}
        journal = cls(path, conn, lock)
        journal.resumed = bool(existing) and existing.get("finished") != "1"
        with journal._mutex:
            for key, value in {**wanted, "finished": "0"}.items():
                conn.execute(
                    "INSERT INTO settings(key, value) VALUES (?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )
            if not existing:
                conn.execute(
                    "INSERT INTO settings(key, value) VALUES ('created', ?)",
                    (str(time.time()),),
                )
        return journal

    def close(self) -> None:
        with self._mutex, contextlib.suppress(sqlite3.Error):
            self._conn.close()
        self._lock.release()

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- settings --------------------------------------------------------------------------

    def settings(self) -> dict[str, str]:
        with self._mutex:
            return dict(self._conn.execute("SELECT key, value FROM settings").fetchall())

    def mark_finished(self, finished: bool = True) -> None:
        with self._mutex:
            self._conn.execute(
                "UPDATE settings SET value = ? WHERE key = 'finished'", ("1" if finished else "0",)
            )

    # -- copies ----------------------------------------------------------------------------

    def copy(self, source_handle_id: str) -> CopyRecord | None:
        with self._mutex:
            row = self._conn.execute(
                "SELECT source_handle_id, state, upload_id, part_size, associate_entity, "
                "new_handle_id, error, new_key FROM copies WHERE source_handle_id = ?",
                (source_handle_id,),
            ).fetchone()
        if row is None:
            return None
        return CopyRecord(
            source_handle_id=str(row[0]),
            state=str(row[1]),
            upload_id=row[2],
            part_size=int(row[3]),
            associate_entity=str(row[4]),
            new_handle_id=row[5],
            error=row[6],
            new_key=row[7],
        )

    def copy_started(
        self,
        source_handle_id: str,
        *,
        upload_id: str,
        part_size: int,
        associate_entity: str,
        size: int,
        md5: str,
    ) -> None:
        self._write(
            "INSERT INTO copies(source_handle_id, state, upload_id, part_size, associate_entity, "
            "size, md5, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(source_handle_id) DO UPDATE SET state = excluded.state, "
            "upload_id = excluded.upload_id, part_size = excluded.part_size, "
            "associate_entity = excluded.associate_entity, new_handle_id = NULL, new_key = NULL, "
            "error = NULL, "
            "updated_at = excluded.updated_at",
            (
                source_handle_id,
                COPY_STARTED,
                upload_id,
                part_size,
                associate_entity,
                size,
                md5,
                time.time(),
            ),
        )

    def copy_completed(
        self, source_handle_id: str, new_handle_id: str, new_key: str | None = None
    ) -> None:
        self._update_copy(
            source_handle_id, COPY_COMPLETED, new_handle_id=new_handle_id, new_key=new_key
        )

    def copy_verified(self, source_handle_id: str, new_key: str | None = None) -> None:
        self._update_copy(source_handle_id, COPY_VERIFIED, new_key=new_key)

    def copy_rejected(self, source_handle_id: str, error: str) -> None:
        self._update_copy(source_handle_id, COPY_REJECTED, error=error)

    def _update_copy(
        self,
        source_handle_id: str,
        state: str,
        *,
        new_handle_id: str | None = None,
        new_key: str | None = None,
        error: str | None = None,
    ) -> None:
        self._write(
            "UPDATE copies SET state = ?, new_handle_id = COALESCE(?, new_handle_id), "
            "new_key = COALESCE(?, new_key), error = ?, updated_at = ? WHERE source_handle_id = ?",
            (state, new_handle_id, new_key, error, time.time(), source_handle_id),
        )

    # -- items -----------------------------------------------------------------------------

    def item(self, entity_id: str, version: int) -> ItemRecord | None:
        with self._mutex:
            row = self._conn.execute(
                "SELECT entity_id, version, source_handle_id, state, new_handle_id, new_version, "
                "error FROM items WHERE entity_id = ? AND version = ?",
                (entity_id, version),
            ).fetchone()
        if row is None:
            return None
        return ItemRecord(
            entity_id=str(row[0]),
            version=int(row[1]),
            source_handle_id=str(row[2]),
            state=str(row[3]),
            new_handle_id=row[4],
            new_version=row[5],
            error=row[6],
        )

    def record_item(
        self,
        entity_id: str,
        version: int,
        *,
        source_handle_id: str,
        state: str,
        new_handle_id: str | None = None,
        new_version: int | None = None,
        error: str | None = None,
    ) -> None:
        self._write(
            "INSERT INTO items(entity_id, version, source_handle_id, state, new_handle_id, "
            "new_version, error, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(entity_id, version) DO UPDATE SET source_handle_id = "
            "excluded.source_handle_id, state = excluded.state, new_handle_id = "
            "excluded.new_handle_id, new_version = excluded.new_version, error = excluded.error, "
            "updated_at = excluded.updated_at",
            (
                entity_id,
                version,
                source_handle_id,
                state,
                new_handle_id,
                new_version,
                error,
                time.time(),
            ),
        )

    def counts(self) -> dict[str, dict[str, int]]:
        """Rows per state, for diagnostics: ``{"copies": {...}, "items": {...}}``."""
        with self._mutex:
            copies = self._conn.execute(
                "SELECT state, COUNT(*) FROM copies GROUP BY state"
            ).fetchall()
            items = self._conn.execute(
                "SELECT state, COUNT(*) FROM items GROUP BY state"
            ).fetchall()
        return {
            "copies": {str(s): int(n) for s, n in copies},
            "items": {str(s): int(n) for s, n in items},
        }

    def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        with self._mutex:
            self._conn.execute(sql, params)


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # Autocommit (isolation_level=None): every statement is its own durable transaction.
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(SCHEMA)
    except sqlite3.DatabaseError as exc:
        raise MigrationError(
            f"the migration journal {path} cannot be used: {exc}",
            hint="if the file is damaged, move it aside; the next run then copies anew what it "
            "recorded (nothing in Synapse depends on it)",
        ) from exc
    return conn
