"""The official synapseclient 4.14.0, unchanged, against the emulator's storage half (issue 3).

synapseclient is pointed at the emulator only through ``~/.synapseConfig`` (HOME is the hermetic
fixture's temporary directory; the file is named explicitly because synapseclient computes its
default path at import time). External buckets, with their ``owner.txt``, are made with boto3
against the embedded S3 server, as a lab would make them in AWS.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from test_emulator_storage_support import EXTERNAL_S3, S3_SETTING, UPLOAD_LIST, make_bucket

from synapse_declare.emulator import Emulator

synapseclient = pytest.importorskip("synapseclient")
import synapseutils  # noqa: E402
from synapseclient import File, Folder, Project, Synapse  # noqa: E402

pytestmark = pytest.mark.interop

MIB = 1024 * 1024


@pytest.fixture
def syn(emu: Emulator, hermetic_env: Path) -> Iterator[Any]:
    config = hermetic_env / ".synapseConfig"
    config.write_text(emu.synapse_config("alice"), encoding="utf-8")
    Synapse.allow_client_caching(False)
    client = Synapse(configPath=str(config), cache_root_dir=str(hermetic_env / "cache"))
    client.login(silent=True)
    yield client
    client.logout()


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _content(seed: str, size: int) -> bytes:
    block = hashlib.sha256(seed.encode()).digest()
    return (block * (size // len(block) + 1))[:size]


def _s3_with(emu: Emulator, credentials: dict[str, str]) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=emu.s3_endpoint,
        region_name="us-east-1",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        **credentials,
    )


def _downloaded(syn: Any, entity_id: str, target: Path, version: int | None = None) -> bytes:
    entity = syn.get(
        entity_id, version=version, downloadLocation=str(target), ifcollision="overwrite.local"
    )
    return Path(entity.path).read_bytes()


# ---------------------------------------------------------------------------------------------


def test_storage_locations_settings_and_sts_tokens(emu: Emulator, syn: Any) -> None:
    bucket = make_bucket(emu, owner="alice", base_key="interop")
    emu.s3_client().put_object(Bucket=bucket, Key="owner.txt", Body=b"alice")
    project = syn.store(Project(name=_name("storage")))
    folder, location, setting = syn.create_s3_storage_location(
        parent=project,
        folder_name="external",
        bucket_name=bucket,
        base_key="interop",
        sts_enabled=True,
    )
    assert location["concreteType"] == EXTERNAL_S3
    assert location["bucket"] == bucket and location["baseKey"] == "interop"
    assert location["stsEnabled"] is True
    assert setting["concreteType"] == UPLOAD_LIST
    assert setting["projectId"] == folder.id and setting["locations"] == [
        location["storageLocationId"]
    ]
    # Idempotent per user: the same setting is the same location.
    again = syn.createStorageLocationSetting(
        "ExternalS3Storage", bucket=bucket, baseKey="interop", stsEnabled=True
    )
    assert again["storageLocationId"] == location["storageLocationId"]
    assert syn.getMyStorageLocationSetting(location["storageLocationId"]) == location

    synapse_folder, synapse_location, _ = syn.create_s3_storage_location(
        parent=project, folder_name="synapse-sts", sts_enabled=True
    )
    assert synapse_location["concreteType"] == S3_SETTING and synapse_location["stsEnabled"] is True

    # setStorageLocation: POST when the project has no setting, PUT when it has one.
    plain = syn.createStorageLocationSetting("ExternalS3Storage", bucket=bucket)[
        "storageLocationId"
    ]
    assert syn.getProjectSetting(project, "upload") is None
    created = syn.setStorageLocation(project, plain)
    assert created["locations"] == [plain]
    updated = syn.setStorageLocation(project, [plain, 1])
    assert updated["locations"] == [plain, 1]
    assert syn.getProjectSetting(project, "upload")["locations"] == [plain, 1]

    token = syn.get_sts_storage_token(folder, "read_write", output_format="json")
    assert token["bucket"] == bucket and token["baseKey"] == "interop"
    boto = syn.get_sts_storage_token(folder, "read_write", output_format="boto")
    assert set(boto) == {"aws_access_key_id", "aws_secret_access_key", "aws_session_token"}
    for shell in ("shell", "bash"):
        exported = syn.get_sts_storage_token(folder, "read_write", output_format=shell)
        assert f'export SYNAPSE_STS_S3_LOCATION="s3://{bucket}/interop"' in exported
        assert f'export AWS_ACCESS_KEY_ID="{token["accessKeyId"]}"' in exported
    assert 'set AWS_SESSION_TOKEN="' in syn.get_sts_storage_token(
        folder, "read_write", output_format="cmd"
    )
    assert '$Env:AWS_SECRET_ACCESS_KEY="' in syn.get_sts_storage_token(
        folder, "read_write", output_format="powershell"
    )
    s3 = _s3_with(emu, boto)
    s3.put_object(Bucket=bucket, Key="interop/from-sts/hello.txt", Body=b"hello via STS")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="interop/")
    assert "interop/from-sts/hello.txt" in {item["Key"] for item in listed["Contents"]}
    with pytest.raises(ClientError):
        s3.put_object(Bucket=bucket, Key="elsewhere.txt", Body=b"outside the base key")
    read_only = _s3_with(
        emu, syn.get_sts_storage_token(synapse_folder, "read_only", output_format="boto")
    )
    with pytest.raises(ClientError):
        read_only.put_object(
            Bucket=emu.synapse_bucket, Key=f"{synapse_location['baseKey']}/x", Body=b"x"
        )


def test_upload_and_download_in_synapse_and_external_storage(
    emu: Emulator, syn: Any, tmp_path: Path
) -> None:
    project = syn.store(Project(name=_name("files")))
    data = _content("synapse storage", 9 * MIB + 123)  # more than one 8 MiB upload part
    stored = syn.store(File(str(_write(tmp_path / "up" / "big.bin", data)), parent=project))
    handle = stored._file_handle
    assert handle["storageLocationId"] == 1 and handle["bucketName"] == emu.synapse_bucket
    assert handle["contentMd5"] == hashlib.md5(data).hexdigest()
    assert _downloaded(syn, stored.id, tmp_path / "down") == data
    odd = b"a name that needs URL encoding"
    named = syn.store(
        File(str(_write(tmp_path / "up" / "notes (draft) v2+final.txt", odd)), parent=project)
    )
    assert named._file_handle["key"].endswith("/notes (draft) v2+final.txt")
    assert _downloaded(syn, named.id, tmp_path / "down-named") == odd

    bucket = make_bucket(emu, owner="alice", base_key="lab")
    folder, location, _ = syn.create_s3_storage_location(
        parent=project, folder_name="external", bucket_name=bucket, base_key="lab"
    )
    small = _content("external storage", 70_000)
    external = syn.store(File(str(_write(tmp_path / "up" / "ext.csv", small)), parent=folder))
    ext_handle = external._file_handle
    assert ext_handle["storageLocationId"] == location["storageLocationId"]
    assert ext_handle["bucketName"] == bucket and ext_handle["key"].startswith("lab/")
    assert emu.s3_client().get_object(Bucket=bucket, Key=ext_handle["key"])["Body"].read() == small
    assert _downloaded(syn, external.id, tmp_path / "down-ext") == small


def test_external_s3_file_handle_and_file(emu: Emulator, syn: Any, tmp_path: Path) -> None:
    bucket = make_bucket(emu, owner="alice", base_key="raw")
    project = syn.store(Project(name=_name("external-handle")))
    folder, location, _ = syn.create_s3_storage_location(
        parent=project, folder_name="raw", bucket_name=bucket, base_key="raw"
    )
    data = b"sample,value\nA,1\nB,2\n"
    emu.s3_client().put_object(Bucket=bucket, Key="raw/instrument/run1.csv", Body=data)
    local = _write(tmp_path / "run1.csv", data)
    handle = syn.create_external_s3_file_handle(
        bucket, "raw/instrument/run1.csv", str(local), parent=folder
    )
    assert handle["storageLocationId"] == location["storageLocationId"]
    assert handle["contentMd5"] == hashlib.md5(data).hexdigest() and handle["contentSize"] == len(
        data
    )
    entity = syn.store(File(parentId=folder.id, name="run1.csv", dataFileHandleId=handle["id"]))
    assert entity.dataFileHandleId == handle["id"]
    assert _downloaded(syn, entity.id, tmp_path / "down") == data


def test_migration_to_an_external_location(emu: Emulator, syn: Any, tmp_path: Path) -> None:
    project = syn.store(Project(name=_name("migrate")))
    folder = syn.store(Folder(name="data", parent=project))
    contents: dict[tuple[str, int], bytes] = {}

    def put(name: str, data: bytes, parent: Any) -> Any:
        # A fresh directory per upload: synapseclient caches MD5s by path and modification time.
        local = _write(tmp_path / f"src-{len(contents)}" / name, data)
        entity = syn.store(File(str(local), parent=parent))
        contents[(entity.id, entity.versionNumber)] = data
        return entity

    versioned = put("versioned.txt", b"version one", project)
    versioned = put("versioned.txt", b"version two, longer", project)
    assert versioned.versionNumber == 2
    shared = put("shared.bin", b"shared bytes", folder)
    twin = syn.store(
        File(parentId=folder.id, name="twin.bin", dataFileHandleId=shared.dataFileHandleId)
    )
    contents[(twin.id, 1)] = b"shared bytes"
    large = put("large.bin", _content("large", 9 * MIB), folder)

    sources = {}
    for (entity_id, version), _data in contents.items():
        handle = syn.get(entity_id, version=version, downloadFile=False)._file_handle
        assert handle["storageLocationId"] == 1
        sources[(entity_id, version)] = handle

    bucket = make_bucket(emu, owner="alice", base_key="migrated")
    destination = syn.createStorageLocationSetting(
        "ExternalS3Storage", bucket=bucket, baseKey="migrated"
    )["storageLocationId"]
    db = str(tmp_path / "migration.db")
    index = synapseutils.index_files_for_migration(
        syn, project, destination, db, file_version_strategy="all"
    )
    assert index.get_counts_by_status()["INDEXED"] == len(contents)
    result = synapseutils.migrate_indexed_files(syn, db, force=True)
    counts = result.get_counts_by_status()
    assert counts["MIGRATED"] == len(contents) and counts["ERRORED"] == 0

    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT id, version, status, from_file_handle_id, to_file_handle_id FROM migrations "
            "WHERE type = 3"
        ).fetchall()
    assert len(rows) == len(contents) and {row[2] for row in rows} == {2}
    to_handle = {(row[0], row[1]): row[4] for row in rows}
    assert to_handle[(shared.id, 1)] == to_handle[(twin.id, 1)]  # one copy for a shared handle

    s3 = emu.s3_client()
    for (entity_id, version), data in contents.items():
        entity = syn.get(entity_id, version=version, downloadFile=False)
        assert entity.versionNumber == version  # migrated in place, no new version
        handle = entity._file_handle
        assert handle["id"] == to_handle[(entity_id, version)]
        assert handle["storageLocationId"] == destination and handle["bucketName"] == bucket
        assert handle["key"].startswith("migrated/")
        assert handle["contentMd5"] == sources[(entity_id, version)]["contentMd5"]
        assert handle["contentMd5"] == hashlib.md5(data).hexdigest()
        assert (
            _downloaded(syn, entity_id, tmp_path / f"check-{entity_id}-{version}", version) == data
        )
        source = sources[(entity_id, version)]
        assert s3.head_object(Bucket=source["bucketName"], Key=source["key"])  # still there
    assert large.versionNumber == 1


def test_migration_with_new_versions(emu: Emulator, syn: Any, tmp_path: Path) -> None:
    project = syn.store(Project(name=_name("migrate-new")))
    data = b"annotated content"
    entity = syn.store(File(str(_write(tmp_path / "a.txt", data)), parent=project))
    entity.tissue = ["liver"]
    entity = syn.store(entity, forceVersion=False)
    bucket = make_bucket(emu, owner="alice")
    destination = syn.createStorageLocationSetting("ExternalS3Storage", bucket=bucket)[
        "storageLocationId"
    ]
    db = str(tmp_path / "new.db")
    synapseutils.index_files_for_migration(syn, project, destination, db)
    result = synapseutils.migrate_indexed_files(syn, db, force=True)
    assert result.get_counts_by_status()["MIGRATED"] == 1
    latest = syn.get(entity.id, downloadLocation=str(tmp_path / "out"))
    assert latest.versionNumber == entity.versionNumber + 1
    assert latest._file_handle["storageLocationId"] == destination
    assert latest.tissue == ["liver"]
    assert Path(latest.path).read_bytes() == data
    settings = json.loads(
        sqlite3.connect(db).execute("SELECT settings FROM migration_settings").fetchone()[0]
    )
    assert settings["file_version_strategy"] == "new"
