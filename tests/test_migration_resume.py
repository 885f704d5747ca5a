"""Migration journal: resume after a kill with zero extra copies, resume of a half-copied multipart
upload from ``partsState``, refusal of other settings, the lock (engineering.md §C.3 #26)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import read_exchanges
from test_emulator_storage_support import external_location, make_bucket
from test_migration_support import (
    MIB,
    Killed,
    Notes,
    World,
    multipart_starts,
    part_adds,
    record_s3,
    world,
)

from synapse_declare.emulator import Emulator
from synapse_declare.errors import LockError, MigrationError
from synapse_declare.journal import Journal, journal_path
from synapse_declare.migration import MigrationIndex, Strategy

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def w(emulator: Emulator, tmp_path: Path) -> Any:
    with world(emulator, tmp_path) as value:
        yield value


def _files(w: World, count: int, size: int = 3000) -> dict[str, bytes]:
    files = {}
    for n in range(count):
        data = bytes([65 + n]) * size
        entity, _ = w.put_file(data, f"f{n:02d}.bin")
        files[entity["id"]] = data
    return files


def _all_moved(w: World, files: dict[str, bytes]) -> None:
    for entity_id, data in files.items():
        handle = w.version_handle(entity_id, 1)
        assert int(handle["storageLocationId"]) == w.destination, entity_id
        assert w.handle_bytes(handle) == data


def _journal(w: World, container: str | None = None) -> Path:
    return journal_path(
        w.state_dir,
        endpoint=w.emulator.repo_endpoint,
        user_id=w.user_id,
        container_id=container or w.project,
    )


def test_killed_run_resumes_with_zero_extra_copies(w: World) -> None:
    files = _files(w, 6)
    index = w.index()
    kill_after_two = Notes(fail_when=lambda line: line.startswith("[2/6]"))
    with pytest.raises(Killed):
        w.migrate(index, progress=kill_after_two, parallel=1)
    first_run = read_exchanges(w.emulator)
    copied_first = {s["handle"] for s in multipart_starts(first_run)}
    assert len(copied_first) == 2
    # The report of the interrupted run was still written.
    partial = json.loads((w.reports / "report.json").read_text())
    assert partial["counts"]["migrated"] == 2 and partial["counts"]["not_attempted"] == 4

    notes = Notes()
    report = w.migrate(w.index(), progress=notes, parallel=1)

    assert report.ok
    assert report.counts["already"] == 2 and report.counts["migrated"] == 4
    second_run = read_exchanges(w.emulator)[len(first_run) :]
    starts = multipart_starts(second_run)
    assert not {s["handle"] for s in starts} & copied_first, "no second copy of copied handles"
    assert len(starts) == 4
    assert any(line.startswith("resuming the migration") for line in notes.lines)
    _all_moved(w, files)


def test_a_copy_made_before_the_kill_is_reused_not_copied_again(w: World) -> None:
    """Killed between verify and repoint (the costly copy exists, nothing points at it yet)."""
    files = _files(w, 3)
    victim = sorted(files, key=lambda e: int(e[3:]))[1]
    index = w.index()
    original = w.api.update_version_file_handle

    def dies_before(entity_id: str, version: int, old: str, new: str) -> None:
        if entity_id == victim:
            raise Killed(f"killed before repointing {entity_id}")
        original(entity_id, version, old, new)

    w.api.update_version_file_handle = dies_before  # type: ignore[method-assign]
    with pytest.raises(Killed):
        w.migrate(index, parallel=1)
    w.api.update_version_file_handle = original  # type: ignore[method-assign]
    first_run = read_exchanges(w.emulator)
    victim_handle = next(i.file_handle_id for i in index.items if i.entity_id == victim)
    assert victim_handle in {s["handle"] for s in multipart_starts(first_run)}

    report = w.migrate(w.index(), parallel=1)

    assert report.ok and report.copies_reused == 1
    second_run = read_exchanges(w.emulator)[len(first_run) :]
    assert victim_handle not in {s["handle"] for s in multipart_starts(second_run)}
    _all_moved(w, files)


def test_a_repoint_that_landed_before_the_kill_is_recognised(w: World) -> None:
    """Killed after Synapse applied a repoint but before the journal recorded it; the rerun
    uses the same (now stale) index, as applying a saved plan would."""
    files = _files(w, 2)
    index = w.index()
    original = w.api.update_version_file_handle

    def dies_after(entity_id: str, version: int, old: str, new: str) -> None:
        original(entity_id, version, old, new)
        raise Killed("killed after the repoint, before the journal")

    w.api.update_version_file_handle = dies_after  # type: ignore[method-assign]
    with pytest.raises(Killed):
        w.migrate(index, parallel=1)
    w.api.update_version_file_handle = original  # type: ignore[method-assign]
    first = len(read_exchanges(w.emulator))

    report = w.migrate(index, parallel=1)

    assert report.ok and report.counts["migrated"] == 2
    assert len(multipart_starts(read_exchanges(w.emulator)[first:])) == 1
    _all_moved(w, files)


def test_a_new_version_created_before_the_kill_is_recognised(w: World) -> None:
    """Strategy new: the new version landed, the journal never heard of it; the rerun with the
    saved index sees the entity changed *by this migration* and creates no second version."""
    files = _files(w, 2)
    index = w.index(Strategy.NEW)
    original = w.api.update_entity_new_version

    def dies_after(entity: dict[str, Any]) -> dict[str, Any]:
        original(entity)
        raise Killed("killed after the new version, before the journal")

    w.api.update_entity_new_version = dies_after  # type: ignore[method-assign]
    with pytest.raises(Killed):
        w.migrate(index, parallel=1)
    w.api.update_entity_new_version = original  # type: ignore[method-assign]
    first = len(read_exchanges(w.emulator))

    notes = Notes()
    report = w.migrate(index, parallel=1, progress=notes)

    assert report.ok and report.counts["migrated"] == 2, report.summary()
    assert len(multipart_starts(read_exchanges(w.emulator)[first:])) == 1
    assert any("done by an earlier run" in line for line in notes.lines)
    for entity_id, data in files.items():
        entity = w.raw.ok("GET", f"/entity/{entity_id}")
        assert entity["versionNumber"] == 2, "exactly one new version"
        handle = w.version_handle(entity_id, 2)
        assert int(handle["storageLocationId"]) == w.destination
        assert w.handle_bytes(handle) == data


def test_a_half_copied_multipart_upload_resumes_from_parts_state(w: World) -> None:
    data = os.urandom(11 * MIB)
    entity, _ = w.put_file(data, "big.bin")
    index = w.index()
    stop_after_first_part = Notes(fail_when=lambda line: "part 1/3 copied" in line)
    with pytest.raises(Killed):
        w.migrate(index, progress=stop_after_first_part, parallel=1)
    first_run = read_exchanges(w.emulator)
    [first_start] = multipart_starts(first_run)
    copy_adds = [a for a in part_adds(first_run) if a[0] == first_start["uploadId"]]
    assert copy_adds == [(first_start["uploadId"], 1)]

    notes = Notes()
    report = w.migrate(w.index(), progress=notes, parallel=1)

    assert report.ok
    second_run = read_exchanges(w.emulator)[len(first_run) :]
    [second_start] = multipart_starts(second_run)
    assert second_start["uploadId"] == first_start["uploadId"], "Synapse resumed the same upload"
    assert sorted(part_adds(second_run)) == [
        (first_start["uploadId"], 2),
        (first_start["uploadId"], 3),
    ]
    batch = [
        e["request"]["partNumbers"]
        for e in second_run
        if e["path"].endswith("/presigned/url/batch")
    ]
    assert batch == [[2, 3]]
    assert any("1 of 3 parts already copied" in line for line in notes.lines)
    handle = w.version_handle(entity["id"], 1)
    assert w.handle_bytes(handle) == data


def test_resuming_with_other_settings_is_refused(w: World) -> None:
    _files(w, 3)
    index = w.index()
    with pytest.raises(Killed):
        w.migrate(
            index, progress=Notes(fail_when=lambda line: line.startswith("[1/3]")), parallel=1
        )
    other = int(external_location(w.raw, make_bucket(w.emulator))["storageLocationId"])
    elsewhere = w.index(destination=other)
    with pytest.raises(MigrationError, match="different settings") as caught:
        w.migrate(elsewhere, destination=other)
    assert "destination_id" in str(caught.value)
    assert str(_journal(w)) in str(caught.value)
    assert caught.value.hint is not None and "delete the journal" in caught.value.hint
    with pytest.raises(MigrationError, match="strategy 'latest' \\(now 'all'\\)"):
        w.migrate(w.index(Strategy.ALL))

    # With the original settings it finishes; afterwards a new destination is fine (the finished
    # journal is archived).
    assert w.migrate(w.index()).ok
    report = w.migrate(w.index(destination=other), destination=other)
    assert report.ok and report.counts["migrated"] == 3
    archived = list(_journal(w).parent.glob("*.finished-*"))
    assert archived


def test_a_second_concurrent_run_is_locked_out(w: World) -> None:
    _files(w, 1)
    index = w.index()
    holder = Journal.open(
        w.state_dir,
        endpoint=w.emulator.repo_endpoint,
        user_id=w.user_id,
        container_id=w.project,
        destination_id=w.destination,
        strategy="latest",
    )
    try:
        with pytest.raises(LockError) as caught:
            w.migrate(index)
        text = str(caught.value)
        assert f"pid {os.getpid()} on " in text
        assert "started " in text and " ago" in text
    finally:
        holder.close()
    assert w.migrate(index).ok


def test_journal_records_each_step(w: World) -> None:
    files = _files(w, 2)
    w.migrate(w.index())
    with sqlite3.connect(_journal(w)) as db:
        copies = db.execute("SELECT state, upload_id, new_handle_id FROM copies").fetchall()
        items = db.execute("SELECT entity_id, state FROM items").fetchall()
        finished = db.execute("SELECT value FROM settings WHERE key='finished'").fetchone()
    assert {c[0] for c in copies} == {"verified"} and all(c[1] and c[2] for c in copies)
    assert sorted(items) == sorted((e, "repointed") for e in files)
    assert finished == ("1",)


# ---------------------------------------------------------------------------------------------
# A real kill: SIGKILL of a separate process mid-migration

CHILD = """
import json, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from test_migration_support import product_api_for
from synapse_declare.client.s3 import DestinationReader
from synapse_declare.migration import MigrationIndex, MigrationOptions, run_migration
from synapse_declare.progress import Progress
args = json.loads(sys.argv[1])
api = product_api_for(args["base_url"], args["token"])
index = MigrationIndex.from_json(json.loads(Path(args["index"]).read_text()))
reader = DestinationReader.from_settings(
    args["s3"], region="us-east-1", access_key_id="emulator-access-key",
    secret_access_key="emulator-secret-key")
run_migration(api, index, args["destination"], endpoint=args["endpoint"], user_id=args["user"],
    verifier=reader, options=MigrationOptions(state_dir=Path(args["state"]), parallel=2,
    copy_path=args["copy_path"]), progress=Progress())
"""


@pytest.mark.fault
@pytest.mark.parametrize("copy_path", ["synapse", "auto"])
def test_sigkill_mid_migration_then_resume_copies_nothing_twice(
    w: World, tmp_path: Path, copy_path: str
) -> None:
    """A real SIGKILL of the migrating process, then a resume: with Synapse's multipart copy
    (one completed upload per file) and with the default paths (small files relayed: one object
    per file in the destination, written again at most at the same key)."""
    files = _files(w, 16, size=20_000)
    s3_log = record_s3(w.emulator)
    index = w.index()
    index_file = tmp_path / "index.json"
    index_file.write_text(json.dumps(index.to_json()))
    w.emulator.knobs.latency_ms = 40  # slow enough to be killed half-way
    args = {
        "base_url": w.emulator.base_url,
        "token": w.emulator.users["alice"],
        "index": str(index_file),
        "s3": w.emulator.s3_endpoint,
        "destination": w.destination,
        "endpoint": w.emulator.repo_endpoint,
        "user": w.user_id,
        "state": str(w.state_dir),
        "copy_path": copy_path,
    }
    script = CHILD.format(tests=str(REPO / "tests"))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-c", script, json.dumps(args)], env=env)
    journal = _journal(w)
    deadline = time.monotonic() + 60
    repointed = 0
    try:
        while time.monotonic() < deadline and child.poll() is None:
            if journal.exists():
                try:
                    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True) as db:
                        repointed = db.execute(
                            "SELECT COUNT(*) FROM items WHERE state='repointed'"
                        ).fetchone()[0]
                except sqlite3.Error:
                    repointed = 0
            if repointed >= 4:
                child.send_signal(signal.SIGKILL)
                break
            time.sleep(0.01)
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL, "the child finished before it could be killed"
    w.emulator.knobs.latency_ms = 0
    killed_run = read_exchanges(w.emulator)
    with sqlite3.connect(journal) as db:
        copied = {
            row[0]
            for row in db.execute(
                "SELECT source_handle_id FROM copies WHERE state IN ('completed', 'verified')"
            )
        }
    assert copied

    # The saved (stale) index, as `apply plan.json` would; the child's settings (default part
    # size), so that even a copy started but not yet journaled is resumed, not started anew.
    report = w.migrate(index, parallel=2, part_size=0, copy_path=copy_path)

    assert report.ok, report.summary()
    resumed_run = read_exchanges(w.emulator)[len(killed_run) :]
    if copy_path == "auto":
        written = [r.key for r in s3_log.requests if r.bucket == w.bucket and r.method == "PUT"]
        assert len(set(written)) == len(files), "one destination object per file"
        assert multipart_starts(killed_run + resumed_run) == []
        _all_moved(w, files)
        return
    assert not {s["handle"] for s in multipart_starts(resumed_run)} & copied
    uploads = {s["uploadId"] for s in multipart_starts(killed_run + resumed_run)}
    completes = [e for e in killed_run + resumed_run if e["path"].endswith("/complete")]
    completed_uploads = {e["path"].split("/")[5] for e in completes if e["status"] == 201} & uploads
    assert len(completed_uploads) == len(files), "exactly one completed copy per file"
    assert len(uploads) == len(files)
    _all_moved(w, files)


def test_index_json_is_what_a_saved_plan_carries(w: World) -> None:
    _files(w, 2)
    index = w.index()
    assert MigrationIndex.from_json(json.loads(json.dumps(index.to_json()))) == index


def test_killed_during_verification_resumes_without_copying_again(w: World) -> None:
    """The copy completed but was not verified: the rerun verifies it instead of copying again —
    at its journaled key, or, when the key is unknown, found through the new file handle."""
    files = _files(w, 2)
    index = w.index()
    reader = w.reader()

    class DiesWhileReading(type(reader)):  # type: ignore[misc]
        def size_and_md5(self, bucket: str, key: str) -> tuple[int, str]:
            raise Killed("killed while verifying")

    with pytest.raises(Killed):
        w.migrate(index, verifier=DiesWhileReading(reader.client), parallel=2)
    with sqlite3.connect(_journal(w)) as db:
        assert {r[0] for r in db.execute("SELECT state FROM copies")} == {"completed"}
        first_handle = min(i.file_handle_id for i in index.items)
        db.execute("UPDATE copies SET new_key = NULL WHERE source_handle_id = ?", (first_handle,))
    first = len(read_exchanges(w.emulator))

    report = w.migrate(w.index())

    assert report.ok and report.copies_reused == 2 and report.copies_made == 0
    second = read_exchanges(w.emulator)[first:]
    assert multipart_starts(second) == []
    handle_reads = [e["path"] for e in second if e["path"].startswith("/file/v1/fileHandle/")]
    assert len(handle_reads) == 1
    _all_moved(w, files)


def test_a_journaled_copy_that_vanished_is_made_again(w: World) -> None:
    """A verified copy is reused only if a HEAD still finds it with the source's size."""
    files = _files(w, 2)
    index = w.index()
    original = w.api.update_version_file_handle

    def dies_before(entity_id: str, version: int, old: str, new: str) -> None:
        raise Killed("killed before any repoint")

    w.api.update_version_file_handle = dies_before  # type: ignore[method-assign]
    with pytest.raises(Killed):
        w.migrate(index, parallel=1)
    w.api.update_version_file_handle = original  # type: ignore[method-assign]
    with sqlite3.connect(_journal(w)) as db:
        [(handle, key)] = db.execute(
            "SELECT source_handle_id, new_key FROM copies WHERE state = 'verified'"
        ).fetchall()
    # Someone deletes the copy from the destination bucket before the rerun.
    w.emulator.s3_client().delete_object(Bucket=w.bucket, Key=key)
    notes = Notes()
    first = len(read_exchanges(w.emulator))

    report = w.migrate(index, progress=notes, parallel=1)

    assert report.ok and report.copies_made == 2
    assert any("is gone; copying file handle" in line for line in notes.lines)
    starts = multipart_starts(read_exchanges(w.emulator)[first:])
    assert {s["handle"] for s in starts} == {i.file_handle_id for i in index.items}
    assert next(s for s in starts if s["handle"] == handle)["force"] == "true"
    _all_moved(w, files)


@pytest.mark.fault
@pytest.mark.parametrize("seed", [2, 3, 4])
def test_server_faults_never_copy_twice_and_a_rerun_converges(w: World, seed: int) -> None:
    """Every REST call fails 45% of the time (5xx or a dropped connection, before or after the
    server acted). Idempotent multipart calls are sent again, repoints are read back; whatever
    the first run could not finish, a second run (no faults) does — with one copy per file."""
    files = _files(w, 8)
    big = os.urandom(11 * MIB)
    entity, _ = w.put_file(big, "big.bin")
    files[entity["id"]] = big
    w.emulator.knobs.set_faults(0.45, seed)
    try:
        first = w.migrate(w.index(), continue_on_error=True, parallel=2)
    finally:
        w.emulator.knobs.set_faults(0.0)
    exchanges = read_exchanges(w.emulator)
    assert sum(1 for e in exchanges if e["status"] in (None, 500, 503)) >= 3
    second = w.migrate(w.index())
    assert second.ok, second.summary()
    assert first.counts["migrated"] + second.counts["migrated"] == len(files)
    _all_moved(w, files)
    starts = multipart_starts(read_exchanges(w.emulator))
    uploads_per_handle: dict[str, set[str]] = {}
    for start in starts:
        uploads_per_handle.setdefault(start["handle"], set()).add(start["uploadId"])
    assert all(len(u) == 1 for u in uploads_per_handle.values()), uploads_per_handle
    assert not any(s["force"] == "true" for s in starts)
