"""The emulator's state: one SQLite database (a file under ``--data-dir``, or in memory).

Requests are serialised through one lock around one connection. That is the simplest way to give
every handler the all-or-nothing semantics of a Synapse transaction, and SQLite answers the
emulator's queries in microseconds, so the lock is never what limits throughput (see
``benchmarks/emulator``). Latency emulation sleeps *outside* the lock, so concurrent clients still
overlap as they would against the real service.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CORE_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

# First ids handed out; below them live the bootstrap objects (root syn4489, trash syn1681355,
# principals 1..3 and 2739xx).
COUNTER_STARTS = {
    "entity": 2_000_000,
    "principal": 3_350_000,
    "wiki": 10_000,
    "file_handle": 100_000,
    "storage_location": 10_000,
    "project_setting": 5_000,
    "multipart": 1,
}


class Store:
    """A locked SQLite connection plus id counters and a mutation counter."""

    def __init__(self, path: Path | None, schemas: Sequence[str]) -> None:
        self.path = path
        target = str(path) if path is not None else ":memory:"
        self._conn = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA foreign_keys = OFF")
        if path is not None:
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
        self.lock = threading.RLock()
        self._depth = 0
        self._changes_at_start = 0
        with self.lock:
            self._conn.executescript(CORE_SCHEMA)
            for schema in schemas:
                self._conn.executescript(schema)
            for name, start in COUNTER_STARTS.items():
                self._conn.execute(
                    "INSERT OR IGNORE INTO counters(name, value) VALUES (?, ?)", (name, start)
                )
            self._conn.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('state_version', '0')"
            )

    @property
    def is_new(self) -> bool:
        return self.get_meta("bootstrapped") is None

    def close(self) -> None:
        with self.lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[Store]:
        """Serialise and make atomic. Re-entrant; a committed change bumps ``state_version``."""
        with self.lock:
            if self._depth == 0:
                self._conn.execute("BEGIN IMMEDIATE")
                self._changes_at_start = self._conn.total_changes
            self._depth += 1
            try:
                yield self
            except BaseException:
                self._depth -= 1
                if self._depth == 0:
                    self._conn.execute("ROLLBACK")
                raise
            self._depth -= 1
            if self._depth == 0:
                if self._conn.total_changes != self._changes_at_start:
                    self._conn.execute(
                        "UPDATE meta SET value = CAST(value AS INTEGER) + 1 "
                        "WHERE key = 'state_version'"
                    )
                self._conn.execute("COMMIT")

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        return self._conn.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> sqlite3.Cursor:
        return self._conn.executemany(sql, rows)

    def one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self._conn.execute(sql, params).fetchone()
        return row

    def all(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        return list(self._conn.execute(sql, params).fetchall())

    def scalar(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        row = self._conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def next_id(self, counter: str) -> int:
        with self.transaction():
            value = int(self.scalar("SELECT value FROM counters WHERE name = ?", (counter,)))
            self.execute("UPDATE counters SET value = ? WHERE name = ?", (value + 1, counter))
            return value

    def get_meta(self, key: str) -> str | None:
        value = self.scalar("SELECT value FROM meta WHERE key = ?", (key,))
        return None if value is None else str(value)

    def set_meta(self, key: str, value: str) -> None:
        self.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def state_version(self) -> int:
        with self.lock:
            return int(self.get_meta("state_version") or 0)
