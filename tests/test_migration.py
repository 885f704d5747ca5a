"""Storage migration: index, copy + verify + repoint per strategy, shared handles, multipart copies,
corrupted copies, untouched sources, changed sources, reports (engineering.md §C.3 #24, #25, #27,
#29). Everything runs over HTTP against the emulator and its S3 (moto)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import pytest
from conftest import Api, read_exchanges
from test_emulator_storage_support import S3_SETTING, external_location, make_bucket
from test_migration_support import (
    MIB,
    Notes,
    World,
    md5,
    multipart_starts,
    part_adds,
    record_s3,
    world,
)

from synapse_declare.client.s3 import DestinationReader, object_key_from_url
from synapse_declare.emulator import Emulator
from synapse_declare.errors import MigrationError, VerificationError
from synapse_declare.migration import (
    MigrationIndex,
    Strategy,
    part_size_for,
)
from synapse_declare.redact import redact_text


@pytest.fixture
def w(emulator: Emulator, tmp_path: Path) -> Any:
    with world(emulator, tmp_path) as value:
        yield value


def _blob(size: int, seed: int = 0) -> bytes:
    return (bytes([seed % 251]) + os.urandom(15)) * (size // 16) + os.urandom(size % 16)


# ---------------------------------------------------------------------------------------------
# Index


def test_index_counts_bytes_already_skipped_and_exclude(w: World) -> None:
    raw_folder = w.folder("Raw")
    sub = w.folder("Deep", raw_folder)
    excluded = w.folder("Own migration")
    a, _ = w.put_file(b"a" * 1000, "a.txt")
    b, _ = w.put_file(b"b" * 2000, "b.txt", parent=raw_folder)
    c, _ = w.put_file(b"c" * 3000, "c.txt", parent=sub)
    w.put_file(b"x" * 4000, "x.txt", parent=excluded)
    there, _ = w.put_file(b"t" * 500, "there.txt", location=w.destination)
    url = w.external_url_file("linked.txt")
    empty = w.zero_byte_file("empty.txt")
    before = w.emulator.state_version()

    index = w.index(exclude=frozenset({excluded}))

    assert w.emulator.state_version() == before, "indexing must not write"
    assert [(i.entity_id, i.version) for i in index.items] == sorted(
        [(a["id"], 1), (b["id"], 1), (c["id"], 1)], key=lambda p: int(p[0][3:])
    )
    assert index.total_bytes() == 6000
    assert index.unique_handles() == 3
    assert [i.entity_id for i in index.already] == [there["id"]]
    skipped = {s.entity_id: s.reason for s in index.skipped}
    assert skipped[url] == "external URL handle (not S3): Synapse cannot copy it"
    assert skipped[empty] == "zero-byte file: Synapse cannot copy it"
    assert index.skipped_reasons() == {
        "external URL handle (not S3): Synapse cannot copy it": 1,
        "zero-byte file: Synapse cannot copy it": 1,
    }
    item = next(i for i in index.items if i.entity_id == a["id"])
    assert item.md5 == md5(b"a" * 1000)
    assert item.size == 1000
    assert item.file_name == "a.txt"
    assert item.from_location == 1
    assert item.entity_etag == a["etag"]
    assert index.estimated_seconds() > 0
    assert index.estimated_seconds(verify="none") <= index.estimated_seconds(verify="md5")
    assert index.estimate(verify="none").bytes_verified == 0
    assert index.estimate(verify="md5").bytes_verified == index.total_bytes()


def test_index_without_destination_yet_has_nothing_already_there(w: World) -> None:
    w.put_file(b"t" * 500, "there.txt", location=w.destination)
    index = w.index(destination=None)
    assert index.destination_id is None
    assert len(index.items) == 1
    assert index.already == ()


def test_index_per_strategy_and_json_round_trip(w: World) -> None:
    entity, first = w.put_file(b"one" * 100, "f.txt")
    w.new_version(entity["id"], b"two" * 100)
    latest = w.index(Strategy.LATEST)
    everything = w.index(Strategy.ALL)
    new = w.index(Strategy.NEW)

    assert [(i.entity_id, i.version) for i in latest.items] == [(entity["id"], 2)]
    assert [(i.entity_id, i.version) for i in everything.items] == [
        (entity["id"], 1),
        (entity["id"], 2),
    ]
    assert everything.items[0].file_handle_id == first["id"]
    assert [i.version for i in new.items] == [2]
    current = w.raw.ok("GET", f"/entity/{entity['id']}")
    assert new.items[0].entity_etag == current["etag"]
    for index in (latest, everything, new):
        document = json.loads(json.dumps(index.to_json()))
        assert MigrationIndex.from_json(document) == index
    assert everything.to_json()["summary"]["to_move"] == 2


def test_part_size_rule() -> None:
    assert part_size_for(1, 100 * MIB) == 100 * MIB
    assert part_size_for(2 * 1024**4, 100 * MIB) == 2 * 1024**4 // 10_000 + 1
    assert part_size_for(10, 1) == 5 * MIB


# ---------------------------------------------------------------------------------------------
# Copy, verify, repoint


def _assert_moved(w: World, entity_id: str, version: int, data: bytes) -> dict[str, Any]:
    handle = w.version_handle(entity_id, version)
    assert int(handle["storageLocationId"]) == w.destination
    assert handle["bucketName"] == w.bucket
    assert handle["contentMd5"] == md5(data)
    assert w.handle_bytes(handle) == data
    return handle


def test_latest_copies_verifies_and_repoints_in_place(w: World) -> None:
    folder = w.folder("Data")
    files = {}
    for n in range(4):
        data = _blob(1000 + n * 777, n)
        entity, handle = w.put_file(data, f"f{n}.bin", parent=folder if n % 2 else None)
        files[entity["id"]] = (data, handle)
    recorder = record_s3(w.emulator)
    index = w.index()
    notes = Notes()

    report = w.migrate(index, progress=notes)

    assert report.ok and report.exit_ok
    assert report.counts["migrated"] == 4
    assert report.copies_made == 4 and report.copies_reused == 0
    assert report.bytes_copied == sum(len(d) for d, _ in files.values())
    for entity_id, (data, source) in files.items():
        moved = _assert_moved(w, entity_id, 1, data)
        entity = w.raw.ok("GET", f"/entity/{entity_id}")
        assert entity["versionNumber"] == 1, "latest repoints in place: no new version"
        # The source object is still there, byte-identical, and nothing wrote to it.
        assert w.handle_bytes(source) == data
        assert recorder.writes_to(source["bucketName"], source["key"]) == []
        row = next(r for r in report.rows if r.entity_id == entity_id)
        assert (row.from_handle, row.to_handle, row.status) == (
            source["id"],
            moved["id"],
            "migrated",
        )
    # No S3 request carried the Synapse token.
    assert not any("Bearer" in r.authorization for r in recorder.requests)
    assert any("→" in line and line.endswith("ok") for line in notes.lines)
    assert notes.lines[0].startswith("[1/4] syn")
    # Afterwards the index has nothing left to move.
    again = w.index()
    assert again.items == () and len(again.already) == 4


def test_all_versions_are_repointed(w: World) -> None:
    entity, _ = w.put_file(b"first" * 300, "f.txt")
    w.new_version(entity["id"], b"second" * 300)
    w.new_version(entity["id"], b"third" * 300)
    report = w.migrate(w.index(Strategy.ALL))
    assert report.ok and report.counts["migrated"] == 3
    for version, data in ((1, b"first" * 300), (2, b"second" * 300), (3, b"third" * 300)):
        _assert_moved(w, entity["id"], version, data)
    assert w.raw.ok("GET", f"/entity/{entity['id']}")["versionNumber"] == 3


def test_new_strategy_creates_a_version_and_keeps_the_old_one(w: World) -> None:
    data = b"payload" * 500
    entity, source = w.put_file(data, "f.txt")
    w.raw.ok(
        "PUT",
        f"/entity/{entity['id']}/annotations2",
        {
            "id": entity["id"],
            "etag": entity["etag"],
            "annotations": {"tissue": {"type": "STRING", "value": ["liver"]}},
        },
    )
    index = w.index(Strategy.NEW)
    report = w.migrate(index)
    assert report.ok
    row = next(r for r in report.rows if r.entity_id == entity["id"])
    assert row.new_version == 2
    current = w.raw.ok("GET", f"/entity/{entity['id']}")
    assert current["versionNumber"] == 2
    assert current["versionLabel"] == "2"
    assert "synapse-declare" in current["versionComment"]
    _assert_moved(w, entity["id"], 2, data)
    assert w.version_handle(entity["id"], 1)["id"] == source["id"], "old version untouched"
    annotations = w.raw.ok("GET", f"/entity/{entity['id']}/annotations2")
    assert annotations["annotations"]["tissue"]["value"] == ["liver"]


def test_shared_file_handle_is_copied_once(w: World) -> None:
    data = b"shared" * 1000
    first, handle = w.put_file(data, "one.bin")
    second = w.entity_with_handle(handle["id"], "two.bin")
    index = w.index()
    assert index.unique_handles() == 1 and len(index.items) == 2
    assert index.total_bytes() == len(data)
    log_start = len(read_exchanges(w.emulator))

    report = w.migrate(index)

    exchanges = read_exchanges(w.emulator)[log_start:]
    assert len(multipart_starts(exchanges)) == 1
    assert report.copies_made == 1 and report.counts["migrated"] == 2
    targets = {_assert_moved(w, e, 1, data)["id"] for e in (first["id"], second)}
    assert len(targets) == 1, "both entities point at the one copy"


def test_one_handle_shared_by_many_entities_and_versions(w: World) -> None:
    """51 entities (two children pages) and two versions of one of them share one file handle:
    strategy ``all`` copies it once and repoints all 52 versions."""
    data = b"common" * 100
    first, handle = w.put_file(data, "first.bin")
    folder = w.folder("Many")
    others = [w.entity_with_handle(handle["id"], f"copy-{n:02d}.bin", folder) for n in range(50)]
    entity = w.raw.ok("GET", f"/entity/{first['id']}")
    entity.pop("versionLabel")
    w.raw.ok("PUT", f"/entity/{first['id']}", entity, newVersion="true")  # v2, same handle
    index = w.index(Strategy.ALL)
    assert len(index.items) == 52 and index.unique_handles() == 1
    log_start = len(read_exchanges(w.emulator))

    report = w.migrate(index)

    assert report.ok and report.counts["migrated"] == 52 and report.copies_made == 1
    assert len(multipart_starts(read_exchanges(w.emulator)[log_start:])) == 1
    targets = {_assert_moved(w, e, 1, data)["id"] for e in others}
    targets |= {_assert_moved(w, first["id"], v, data)["id"] for v in (1, 2)}
    assert len(targets) == 1


def test_multipart_copy_of_a_file_larger_than_one_part(w: World) -> None:
    data = _blob(11 * MIB + 123, 7)
    entity, source = w.put_file(data, "big.bin")
    log_start = len(read_exchanges(w.emulator))
    notes = Notes()

    report = w.migrate(w.index(), progress=notes)

    assert report.ok
    moved = _assert_moved(w, entity["id"], 1, data)
    head = w.emulator.s3_client().head_object(Bucket=moved["bucketName"], Key=moved["key"])
    # A multipart object's ETag is not its MD5 (and was not used as one).
    assert head["ETag"].strip('"').endswith("-3")
    assert head["ETag"].strip('"') != source["contentMd5"]
    exchanges = read_exchanges(w.emulator)[log_start:]
    starts = multipart_starts(exchanges)
    assert len(starts) == 1
    assert sorted(n for _, n in part_adds(exchanges)) == [1, 2, 3]
    assert sum("part " in line and "copied" in line for line in notes.lines) == 3


def test_a_corrupted_copy_is_not_repointed(w: World) -> None:
    good, _ = w.put_file(b"good" * 400, "good.bin")
    data = b"precious" * 400
    bad, source = w.put_file(data, "bad.bin")
    # Bit rot in the source object: same length, other bytes; its handle's MD5 is the original.
    s3 = w.emulator.s3_client()
    s3.put_object(Bucket=source["bucketName"], Key=source["key"], Body=b"X" * len(data))
    index = w.index()

    report = w.migrate(index, continue_on_error=True)

    assert not report.ok
    assert report.exit_ok, "continue_on_error collects the failure"
    row = next(r for r in report.rows if r.entity_id == bad["id"])
    assert row.status == "failed"
    assert row.error.startswith("VerificationError")
    assert "MD5" in row.error
    assert w.version_handle(bad["id"], 1)["id"] == source["id"], "not repointed"
    assert next(r for r in report.rows if r.entity_id == good["id"]).status == "migrated"
    with pytest.raises(VerificationError):
        report.raise_for_failures()

    # Repaired source: the next run makes a fresh copy (the rejected one is never reused).
    s3.put_object(Bucket=source["bucketName"], Key=source["key"], Body=data)
    log_start = len(read_exchanges(w.emulator))
    again = w.migrate(w.index())
    assert again.ok and again.counts["migrated"] == 1
    starts = multipart_starts(read_exchanges(w.emulator)[log_start:])
    assert [s["force"] for s in starts] == ["true"]
    assert _assert_moved(w, bad["id"], 1, data)["id"] != row.to_handle


def test_a_destination_changed_after_the_copy_fails_verification(w: World) -> None:
    entity, source = w.put_file(b"abc" * 1000, "f.bin")
    s3 = w.emulator.s3_client()

    class Tampering(DestinationReader):
        def head(self, bucket: str, key: str) -> int:
            s3.put_object(Bucket=bucket, Key=key, Body=b"truncated")
            return super().head(bucket, key)

    report = w.migrate(w.index(), verify="size", verifier=Tampering(s3))
    assert report.counts["failed"] == 1 and not report.exit_ok
    assert "9 bytes, the source 3000" in report.rows[0].error
    assert w.version_handle(entity["id"], 1)["id"] == source["id"]


def test_without_continue_on_error_the_run_stops_at_the_first_failure(w: World) -> None:
    _, source = w.put_file(b"1" * 100, "a.bin")
    w.put_file(b"2" * 100, "b.bin")
    w.put_file(b"3" * 100, "c.bin")
    w.emulator.s3_client().put_object(
        Bucket=source["bucketName"], Key=source["key"], Body=b"0" * 100
    )
    report = w.migrate(w.index(), parallel=1)
    assert report.counts == {
        "migrated": 0,
        "already": 0,
        "skipped": 0,
        "failed": 1,
        "source_changed": 0,
        "not_attempted": 2,
    }
    assert not report.exit_ok
    with pytest.raises(VerificationError, match="1 failed, 2 not attempted"):
        report.raise_for_failures()


def test_source_changed_between_plan_and_copy_latest(w: World) -> None:
    data = b"same" * 250
    changed, source = w.put_file(data, "changed.bin")
    other, _ = w.put_file(b"other" * 100, "other.bin")
    index = w.index()
    # After the plan, someone swaps the version's handle for another with the same content.
    replacement, _ = w.put_file(data, "replacement.bin")
    new_handle = w.version_handle(replacement["id"], 1)["id"]
    w.raw.ok(
        "PUT",
        f"/entity/{changed['id']}/version/1/filehandle",
        {"oldFileHandleId": source["id"], "newFileHandleId": new_handle},
    )

    report = w.migrate(index, continue_on_error=True)

    row = next(r for r in report.rows if r.entity_id == changed["id"])
    assert row.status == "source_changed", row.error
    assert f"now has file handle {new_handle}" in row.error
    assert w.version_handle(changed["id"], 1)["id"] == new_handle, "not repointed"
    assert next(r for r in report.rows if r.entity_id == other["id"]).status == "migrated"
    assert not report.ok and report.exit_ok
    with pytest.raises(MigrationError, match="source_changed"):
        report.raise_for_failures()


def test_source_changed_between_plan_and_copy_new_makes_no_copy(w: World) -> None:
    changed, _ = w.put_file(b"x" * 300, "changed.bin")
    index = w.index(Strategy.NEW)
    entity = w.raw.ok("GET", f"/entity/{changed['id']}")
    entity["description"] = "edited after the plan"
    w.raw.ok("PUT", f"/entity/{changed['id']}", entity)
    log_start = len(read_exchanges(w.emulator))

    report = w.migrate(index)

    assert report.rows[0].status == "source_changed"
    assert "changed since the plan" in report.rows[0].error
    assert multipart_starts(read_exchanges(w.emulator)[log_start:]) == []
    assert w.raw.ok("GET", f"/entity/{changed['id']}")["versionNumber"] == 1
    assert not report.exit_ok


def test_reports_are_written_as_json_and_csv(w: World) -> None:
    moved, _ = w.put_file(b"m" * 100, "moved.bin")
    w.put_file(b"t" * 100, "there.bin", location=w.destination)
    w.zero_byte_file("empty.bin")
    report = w.migrate(w.index())
    document = json.loads((w.reports / "report.json").read_text())
    assert document["ok"] is True
    assert document["counts"]["migrated"] == 1
    assert document["counts"]["already"] == 1
    assert document["counts"]["skipped"] == 1
    with (w.reports / "report.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == [
        "entity_id",
        "version",
        "name",
        "from_handle",
        "to_handle",
        "size",
        "status",
        "error",
        "new_version",
    ]
    by_status = {r["status"]: r for r in rows}
    assert by_status["migrated"]["entity_id"] == moved["id"]
    assert by_status["migrated"]["to_handle"] == report.rows[0].to_handle or any(
        r.to_handle == by_status["migrated"]["to_handle"] for r in report.rows
    )
    assert by_status["skipped"]["error"] == "zero-byte file: Synapse cannot copy it"


def test_nothing_to_move_needs_no_journal(w: World) -> None:
    w.put_file(b"t" * 100, "there.bin", location=w.destination)
    report = w.migrate(w.index())
    assert report.ok and report.counts["already"] == 1
    assert report.journal_path is None
    assert not (w.state_dir / "migrations").exists()


def test_a_destination_the_user_does_not_own_is_refused_up_front(w: World) -> None:
    w.put_file(b"a" * 10, "a.bin")
    bob = Api(w.emulator, w.emulator.users["bob"])
    theirs = int(external_location(bob, make_bucket(w.emulator, owner="bob"))["storageLocationId"])
    before = w.emulator.state_version()
    with pytest.raises(MigrationError, match=f"cannot use storage location {theirs}") as caught:
        w.migrate(w.index(destination=theirs), destination=theirs)
    assert caught.value.hint is not None and "you created" in caught.value.hint
    assert w.emulator.state_version() == before


def test_copies_into_synapse_storage_cannot_be_verified_by_reading(w: World) -> None:
    w.put_file(b"a" * 10, "a.bin")
    sts = int(
        w.raw.ok("POST", "/storageLocation", {"concreteType": S3_SETTING})["storageLocationId"]
    )
    with pytest.raises(MigrationError, match="cannot be verified"):
        w.migrate(w.index(destination=sts), destination=sts)


def test_object_key_from_presigned_urls() -> None:
    assert object_key_from_url("https://b.s3.amazonaws.com/a/b%20c.bin?x=1", "b") == "a/b c.bin"
    assert object_key_from_url("http://127.0.0.1:9/b/k/1/f.bin?partNumber=1", "b") == "k/1/f.bin"
    assert object_key_from_url("https://s3.us-east-1.amazonaws.com/b/k", "b") == "k"
    assert object_key_from_url("https://other.s3.amazonaws.com/b/k", "b") is None
    assert object_key_from_url("https://host/c/k", "b") is None


def test_a_run_for_another_destination_than_planned_is_refused(w: World) -> None:
    w.put_file(b"a" * 10, "a.bin")
    index = w.index()
    with pytest.raises(MigrationError, match="planned for storage location"):
        w.migrate(index, destination=w.destination + 1)


def test_presigned_urls_and_signed_headers_never_reach_output(
    w: World, caplog: pytest.LogCaptureFixture
) -> None:
    w.put_file(_blob(6 * MIB, 3), "big.bin")
    caplog.set_level("DEBUG")
    notes = Notes()
    w.migrate(w.index(), progress=notes)
    ours = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("synapse_declare")
        and not r.name.startswith("synapse_declare.emulator")
    ]
    text = "\n".join(notes.lines + ours) + (w.reports / "report.json").read_text()
    assert "X-Amz-" not in text
    assert "x-amz-copy-source" not in text.lower()
    assert w.emulator.users["alice"] not in text
    # urllib3 logs each request line at DEBUG; the CLI's RedactingFilter masks the signature.
    part_puts = [
        r.getMessage()
        for r in caplog.records
        if r.name == "urllib3.connectionpool" and "partNumber=" in r.getMessage()
    ]
    assert part_puts, "the part copies went through urllib3"
    for line in part_puts:
        assert "X-Amz-Signature=***" in redact_text(line)
        assert "X-Amz-Credential=***" in redact_text(line)
