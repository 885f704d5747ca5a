"""The migration's cheaper copy paths (copypaths.py), over HTTP against the emulator and its S3:

* external S3 → external S3: S3 copies the object with the user's credentials, Synapse only
  registers it (``POST /externalFileHandle/s3``) and repoints — verified, resumable after a kill,
  the source objects never written;
* Synapse storage → an owned bucket: small files relayed through presigned URLs fetched in
  batches (``POST /fileHandle/batch``), larger ones still copied by Synapse, as the plan says.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from conftest import read_exchanges
from test_emulator_storage_support import external_location, make_bucket
from test_migration_support import (
    S3_FILE_HANDLE,
    Killed,
    Notes,
    World,
    md5_hex,
    multipart_starts,
    record_s3,
    world,
)

from synapse_declare.client.s3 import DestinationReader
from synapse_declare.emulator import Emulator
from synapse_declare.journal import journal_path
from synapse_declare.migration import MigrationIndex, Strategy, index_migration


@pytest.fixture
def w(emulator: Emulator, tmp_path: Path) -> Any:
    with world(emulator, tmp_path, "Copy paths") as value:
        yield value


def _blob(size: int) -> bytes:
    return os.urandom(size)


def _external_files(w: World, count: int, size: int = 3000) -> tuple[str, list[tuple[str, bytes]]]:
    """``count`` files whose handles live in another external S3 bucket of alice's."""
    bucket = make_bucket(w.emulator)
    location = int(external_location(w.raw, bucket)["storageLocationId"])
    s3 = w.emulator.s3_client()
    files = []
    for n in range(count):
        data = _blob(size + n)
        key = f"lab/data-{n}.bin"
        s3.put_object(Bucket=bucket, Key=key, Body=data)
        handle = w.raw.ok(
            "POST",
            "/file/v1/externalFileHandle/s3",
            {
                "concreteType": S3_FILE_HANDLE,
                "bucketName": bucket,
                "key": key,
                "fileName": f"data-{n}.bin",
                "contentMd5": md5_hex(data),
                "contentSize": len(data),
                "storageLocationId": location,
            },
        )
        files.append((w.entity_with_handle(str(handle["id"]), f"data-{n}.bin"), data))
    return bucket, files


def _index(w: World, strategy: Strategy = Strategy.LATEST) -> MigrationIndex:
    return index_migration(w.api, w.project, strategy, w.destination, destination_s3=True)


def _apply_calls(w: World, since: int) -> list[str]:
    return [f"{e['method']} {e['path']}" for e in read_exchanges(w.emulator)[since:]]


def _moved(w: World, files: list[tuple[str, bytes]], version: int = 1) -> None:
    for entity_id, data in files:
        handle = w.version_handle(entity_id, version)
        assert int(handle["storageLocationId"]) == w.destination
        assert handle["bucketName"] == w.bucket
        assert w.handle_bytes(handle) == data
        assert handle["contentMd5"] == md5_hex(data)


def test_external_to_external_copies_in_s3_with_three_calls_per_file(w: World) -> None:
    source_bucket, files = _external_files(w, 4)
    s3_log = record_s3(w.emulator)
    start = len(read_exchanges(w.emulator))
    index = _index(w)
    assert index.plan_summary()["copy_paths"] == {"S3 copy with your AWS credentials": 4}

    report = w.migrate(index, copy_path="auto")

    calls = _apply_calls(w, start)
    assert report.ok and report.counts["migrated"] == 4 and report.copies_made == 4
    _moved(w, files)
    per_file = [c for c in calls if "/entity/children" not in c and "/storageLocation/" not in c]
    assert len(per_file) == 3 * 4  # bundle (plan) + register + repoint, per file
    assert sum("/externalFileHandle/s3" in c for c in calls) == 4
    assert multipart_starts(read_exchanges(w.emulator)[start:]) == []
    copies = [r for r in s3_log.requests if r.method == "PUT" and r.copy_source]
    assert len(copies) == 4 and all(r.bucket == w.bucket for r in copies)
    # Sources: read, never written; their handles still name them.
    for n, (_, data) in enumerate(files):
        assert s3_log.writes_to(source_bucket, f"lab/data-{n}.bin") == []
        assert w.object_bytes(source_bucket, f"lab/data-{n}.bin") == data


def test_a_direct_copy_killed_before_its_repoint_resumes_without_copying_again(
    w: World,
) -> None:
    source_bucket, files = _external_files(w, 3)
    s3_log = record_s3(w.emulator)
    index = _index(w)
    reader = w.reader()
    seen: list[str] = []

    class DiesOnSecondCheck(DestinationReader):
        def head(self, bucket: str, key: str) -> int:
            seen.append(key)
            if len(seen) == 2:
                raise Killed("killed while verifying")
            return super().head(bucket, key)

    with pytest.raises(Killed):
        w.migrate(index, copy_path="auto", verifier=DiesOnSecondCheck(reader.client), parallel=1)
    journal = journal_path(
        w.state_dir, endpoint=w.emulator.repo_endpoint, user_id=w.user_id, container_id=w.project
    )
    with sqlite3.connect(journal) as db:
        states = sorted(r[0] for r in db.execute("SELECT state FROM copies"))
    assert states == ["completed", "verified"]

    report = w.migrate(_index(w), copy_path="auto")

    # The first file was repointed before the kill (the new index finds it in place), the
    # second's copy is reused from the journal, only the third is copied now.
    assert report.ok and (report.counts["already"], report.counts["migrated"]) == (1, 2)
    assert report.copies_made == 1 and report.copies_reused == 1
    _moved(w, files)
    copies = [r.copy_source for r in s3_log.requests if r.method == "PUT" and r.copy_source]
    assert len(copies) == 3, "a copy was made twice"
    for n, (_, data) in enumerate(files):
        assert s3_log.writes_to(source_bucket, f"lab/data-{n}.bin") == []
        assert w.object_bytes(source_bucket, f"lab/data-{n}.bin") == data


def test_a_direct_copy_that_does_not_match_is_not_repointed(w: World) -> None:
    """A copy whose object differs from the source (here: overwritten after the copy) fails
    verification; nothing points at it."""
    _, files = _external_files(w, 1, size=70 * 1024)
    s3 = w.emulator.s3_client()

    class Tampering(DestinationReader):
        def head(self, bucket: str, key: str) -> int:
            s3.put_object(Bucket=bucket, Key=key, Body=b"truncated")
            return super().head(bucket, key)

    report = w.migrate(_index(w), copy_path="auto", verifier=Tampering(s3))

    assert report.counts["failed"] == 1
    entity_id, data = files[0]
    handle = w.version_handle(entity_id, 1)
    assert handle["bucketName"] != w.bucket and w.handle_bytes(handle) == data


@pytest.mark.parametrize("strategy", [Strategy.LATEST, Strategy.NEW])
def test_small_synapse_files_are_relayed_and_large_ones_copied_by_synapse(
    w: World, strategy: Strategy
) -> None:
    small = [w.put_file(_blob(2000 + n), f"small-{n}.bin") for n in range(5)]
    large = [w.put_file(_blob(40 * 1024), "large.bin")]
    s3_log = record_s3(w.emulator)
    start = len(read_exchanges(w.emulator))
    index = _index(w, strategy)

    report = w.migrate(index, copy_path="auto", relay_max_bytes=32 * 1024)

    exchanges = read_exchanges(w.emulator)[start:]
    calls = _apply_calls(w, start)
    assert report.ok and report.counts["migrated"] == 6
    version = 2 if strategy is Strategy.NEW else 1
    _moved(w, [(e["id"], w.handle_bytes(h)) for e, h in small + large], version)
    assert sum("/fileHandle/batch" in c for c in calls) == 1  # 5 URLs in one request
    assert sum("/externalFileHandle/s3" in c for c in calls) == 5
    starts = multipart_starts(exchanges)
    assert [s["handle"] for s in starts] == [large[0][1]["id"]]
    # The source objects in Synapse's bucket are read, never written.
    for _, handle in small + large:
        assert s3_log.writes_to(handle["bucketName"], handle["key"]) == []
    if strategy is Strategy.LATEST:
        relayed = [c for c in calls if "/entity/children" not in c and "/storageLocation/" not in c]
        # 6 bundles (plan), 1 URL batch, 5 registrations, 6 repoints, 1 Synapse copy (4 calls)
        assert len(relayed) == 6 + 1 + 5 + 6 + 4


def test_the_plan_states_paths_calls_bytes_and_verification(w: World) -> None:
    for n in range(3):
        w.put_file(_blob(1000 + n), f"s-{n}.bin")
    w.put_file(_blob(20 * 1024 * 1024), "big.bin")
    summary = _index(w).plan_summary()
    assert summary["copy_paths"] == {
        "Synapse server-side copy": 1,
        "relayed through this machine": 3,
    }
    assert summary["bytes_relayed"] == 3000 + 0 + 1 + 2
    assert summary["bytes_copied_server_side"] == 20 * 1024 * 1024
    assert summary["bytes_to_verify"] == 20 * 1024 * 1024  # ≤ 64 MiB Synapse copy: MD5
    # 3 relays: register + repoint + 1/100 batch; the Synapse copy 4 + repoint; + 4 bundles.
    assert summary["calls_per_file"] == round((3 * 2.01 + 5 + 4) / 4, 2)
    synapse_only = _index(w).estimate(copy_path="synapse")
    assert synapse_only.paths == {"Synapse server-side copy": 4}
    assert synapse_only.calls > _index(w).estimate().calls


def test_without_credentials_for_the_bucket_files_are_copied_by_synapse(w: World) -> None:
    """S3 refuses the relay's upload (no AWS credentials here): the files are copied by Synapse
    instead, and the run says so once."""
    files = [w.put_file(_blob(1500 + n), f"f-{n}.bin") for n in range(3)]
    start = len(read_exchanges(w.emulator))
    notes = Notes()
    reader = DestinationReader.from_settings(w.emulator.s3_endpoint, region="us-east-1")

    report = w.migrate(_index(w), copy_path="auto", verify="none", verifier=reader, progress=notes)

    assert report.ok and report.counts["migrated"] == 3
    starts = multipart_starts(read_exchanges(w.emulator)[start:])
    assert sorted(s["handle"] for s in starts) == sorted(h["id"] for _, h in files)
    assert len([n for n in notes.lines if "copied by Synapse instead" in n]) == 1
    _moved(w, [(e["id"], w.handle_bytes(h)) for e, h in files])
