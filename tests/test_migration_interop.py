"""After a synapse-declare migration, the official client agrees: ``synapseutils`` finds nothing
left to migrate, and every file downloads byte-identical with ``synapseclient``."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_migration_support import MIB, World, world

from synapse_declare.emulator import Emulator
from synapse_declare.migration import Strategy

synapseclient = pytest.importorskip("synapseclient")
import synapseutils  # noqa: E402
from synapseclient import Synapse  # noqa: E402

pytestmark = pytest.mark.interop


@pytest.fixture
def syn(emulator: Emulator, hermetic_env: Path) -> Iterator[Any]:
    config = hermetic_env / ".synapseConfig"
    config.write_text(emulator.synapse_config("alice"), encoding="utf-8")
    Synapse.allow_client_caching(False)
    client = Synapse(
        configPath=str(config), cache_root_dir=str(hermetic_env / "cache"), silent=True
    )
    client.login(silent=True)
    yield client
    client.logout()


def _statuses(db_path: Path) -> dict[int, int]:
    with sqlite3.connect(db_path) as db:
        rows = db.execute(
            "SELECT status, COUNT(*) FROM migrations WHERE type = 3 GROUP BY status"
        ).fetchall()
    return {int(status): int(count) for status, count in rows}


@pytest.mark.parametrize("strategy", [Strategy.LATEST, Strategy.ALL, Strategy.NEW])
def test_synapseutils_finds_nothing_left_and_downloads_are_identical(
    emulator: Emulator, tmp_path: Path, syn: Any, strategy: Strategy
) -> None:
    with world(emulator, tmp_path) as w:
        files = _populate(w)
        report = w.migrate(w.index(strategy))
        assert report.ok, report.summary()

        db_path = tmp_path / f"su-{strategy}.db"
        result = synapseutils.index_files_for_migration(
            syn,
            w.project,
            str(w.destination),
            str(db_path),
            file_version_strategy=strategy.value,
        )
        counts = result.get_counts_by_status()
        expected = 4 if strategy is Strategy.ALL else 3
        assert counts["INDEXED"] == 0, counts
        assert counts["ERRORED"] == 0, counts
        assert counts["ALREADY_MIGRATED"] == expected, counts
        assert _statuses(db_path) == {3: expected}  # 3 = ALREADY_MIGRATED

        for entity_id, data in files.items():
            target = tmp_path / "downloads" / entity_id
            entity = syn.get(entity_id, downloadLocation=str(target), ifcollision="overwrite.local")
            assert Path(entity.path).read_bytes() == data, entity_id
            assert int(entity._file_handle["storageLocationId"]) == w.destination


def _populate(w: World) -> dict[str, bytes]:
    folder = w.folder("Data")
    small, _ = w.put_file(b"small file\n" * 50, "small.txt")
    big_data = os.urandom(11 * MIB + 5)
    big, _ = w.put_file(big_data, "big.bin", parent=folder)
    versioned, _ = w.put_file(b"version one\n" * 30, "versioned.txt", parent=folder)
    w.new_version(versioned["id"], b"version two\n" * 40)
    return {
        small["id"]: b"small file\n" * 50,
        big["id"]: big_data,
        versioned["id"]: b"version two\n" * 40,
    }
