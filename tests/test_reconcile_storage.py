"""Storage in the reconciler: locations, upload destinations, pre-flight refusals, STS, `sts`.

Everything runs through the real CLI against the emulator over HTTP and its moto S3.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import Api
from reconcile_support import Workspace, lookup, storage_workspace
from test_emulator_storage_support import file_entity, upload

from synapse_declare.emulator import Emulator

BUCKET = "lab-data"


@pytest.fixture
def ws(emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    return storage_workspace(
        emulator, tmp_path, monkeypatch, BUCKET, ("portal", "portal-v2", "pipes")
    )


def storage_manifest(ws: Workspace, *, portal_key: str = "portal", extra: str = "") -> Path:
    endpoint = ws.emulator.s3_endpoint
    return ws.manifest(
        f"""
        version: 1
        storage_locations:
          lab: {{type: external_s3, bucket: {BUCKET}, base_key: {portal_key},
                 endpoint_url: "{endpoint}", description: lab bucket}}
          lab-sts: {{type: external_s3, bucket: {BUCKET}, base_key: pipes, sts_enabled: true,
                     endpoint_url: "{endpoint}"}}
          synapse: {{type: synapse_s3}}
        projects:
          - name: Storage project
            storage: [lab, synapse]
            folders:
              - name: Pipelines
                storage: lab-sts
        {extra}
        """
    )


def my_locations(api: Api) -> list[dict[str, Any]]:
    return list(api.ok("GET", "/storageLocation")["list"])


def upload_locations(api: Api, entity_id: str) -> list[int] | None:
    response = api.call("GET", f"/projectSettings/{entity_id}/type/upload")
    assert response.status_code == 200
    return response.json()["locations"] if response.content.strip() else None


def test_locations_and_destinations_are_created_then_reused(
    ws: Workspace, emulator: Emulator, api_for: Any
) -> None:
    manifest = storage_manifest(ws)
    plan = ws.plan_json(manifest)
    by_address = {c["address"]: c["action"] for c in plan["changes"]}
    assert by_address["storage:lab"] == "create"
    assert by_address["storage:lab-sts"] == "create"
    assert "storage:synapse" not in by_address  # the default storage (id 1) is never created
    assert by_address["project:Storage project#upload"] == "create"
    assert by_address["project:Storage project/folder:Pipelines#upload"] == "create"

    applied = ws.apply(manifest)
    assert applied.code == 0, applied.err
    api = api_for(emulator, "alice")
    locations = {loc["baseKey"]: loc for loc in my_locations(api)}
    assert set(locations) == {"portal", "pipes"}
    assert locations["pipes"]["stsEnabled"] is True
    project = lookup(api, "Storage project")
    assert project is not None
    folder = lookup(api, "Pipelines", project)
    assert folder is not None
    assert upload_locations(api, project) == [locations["portal"]["storageLocationId"], 1]
    assert upload_locations(api, folder) == [locations["pipes"]["storageLocationId"]]

    version = emulator.state_version()
    again = ws.plan(manifest, "--detailed-exitcode")
    assert again.code == 0, again.both
    assert "No changes" in again.out
    assert emulator.state_version() == version
    # Re-applying creates no second location (matched by settings, not by name).
    assert ws.apply(manifest).code == 0
    assert len(my_locations(api)) == 2


def test_a_changed_setting_is_a_replacement_and_repoints(
    ws: Workspace, emulator: Emulator, api_for: Any
) -> None:
    assert ws.apply(storage_manifest(ws)).code == 0
    api = api_for(emulator, "alice")
    old = {loc["baseKey"]: loc["storageLocationId"] for loc in my_locations(api)}["portal"]

    changed = storage_manifest(ws, portal_key="portal-v2")
    result = ws.plan(changed, "--detailed-exitcode")
    assert result.code == 2, result.both
    assert '± storage location "lab"' in result.out
    assert f"replaces {old}" in result.out
    assert 'base_key: "portal" -> "portal-v2"' in result.out
    document = ws.plan_json(changed)
    replace = next(c for c in document["changes"] if c["address"] == "storage:lab")
    assert replace["action"] == "replace"
    destination = next(
        c for c in document["changes"] if c["address"] == "project:Storage project#upload"
    )
    assert destination["action"] == "update"

    assert ws.apply(changed).code == 0
    locations = {loc["baseKey"]: loc["storageLocationId"] for loc in my_locations(api)}
    assert set(locations) == {"portal", "portal-v2", "pipes"}  # the old one still exists
    project = lookup(api, "Storage project")
    assert project is not None
    assert upload_locations(api, project) == [locations["portal-v2"], 1]


def test_missing_or_foreign_owner_txt_is_refused_at_plan_time(
    ws: Workspace, emulator: Emulator
) -> None:
    s3 = emulator.s3_client()
    s3.delete_object(Bucket=BUCKET, Key="portal/owner.txt")
    manifest = storage_manifest(ws)
    version = emulator.state_version()
    result = ws.plan(manifest)
    assert result.code == 1
    assert "manifest.yaml:3:3: storage location 'lab'" in result.err
    assert "Did not find S3 object at key portal/owner.txt from bucket lab-data" in result.err
    assert f"s3://{BUCKET}/portal/owner.txt" in result.err
    assert "echo alice" in result.err

    s3.put_object(Bucket=BUCKET, Key="portal/owner.txt", Body=b"somebody-else\n")
    result = ws.plan(manifest)
    assert result.code == 1
    assert "owner.txt" in result.err
    applied = ws.apply(manifest)
    assert applied.code == 1
    assert emulator.state_version() == version  # refused before any write


def test_owner_txt_not_checkable_without_aws_access_is_a_warning(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    result = ws.plan(storage_manifest(ws))
    assert result.code == 0, result.both
    assert "was not checked here" in result.out
    assert ws.apply(storage_manifest(ws)).code == 0  # Synapse's own check passes


def test_sts_on_a_non_empty_folder_is_explained_not_attempted(
    ws: Workspace, emulator: Emulator, api_for: Any
) -> None:
    api = api_for(emulator, "alice")
    project = api.project("Storage project")
    folder = api.folder("Pipelines", project["id"])
    api.folder("already here", folder["id"])
    version = emulator.state_version()
    result = ws.plan(storage_manifest(ws))
    assert result.code == 1
    assert "Synapse only enables STS on an empty folder, and this folder has 1 item(s)" in (
        result.err
    )
    assert "move_files_from" in result.err
    assert emulator.state_version() == version


def test_sts_command_formats_and_boto3_access(
    ws: Workspace, emulator: Emulator, capfd: pytest.CaptureFixture[str]
) -> None:
    assert ws.apply(storage_manifest(ws)).code == 0
    conn = ws.connection()
    shell = ws.run("sts", "Storage project/Pipelines", *conn)
    assert shell.code == 0, shell.err
    lines = shell.out.strip().splitlines()
    assert [line.split("=")[0] for line in lines] == [
        "export SYNAPSE_STS_S3_LOCATION",
        "export AWS_ACCESS_KEY_ID",
        "export AWS_SECRET_ACCESS_KEY",
        "export AWS_SESSION_TOKEN",
        "export AWS_ENDPOINT_URL_S3",  # the location's endpoint_url (moto here)
    ]
    assert lines[0] == f"export SYNAPSE_STS_S3_LOCATION=s3://{BUCKET}/pipes"

    raw = ws.run("sts", "Storage project/Pipelines", "--format", "json", *conn)
    document = json.loads(raw.out)
    assert document["bucket"] == BUCKET and document["baseKey"] == "pipes"
    assert document["expiration"].endswith("Z")

    boto = ws.run(
        "-vv",
        "sts",
        "Storage project/Pipelines",
        "--format",
        "boto",
        "--permission",
        "read_write",
        *conn,
    )
    credentials = json.loads(boto.out)
    assert set(credentials) == {
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "endpoint_url",
    }
    assert credentials["endpoint_url"] == emulator.s3_endpoint
    # Only the credentials reach stdout; nothing secret reaches stderr (even at -vv).
    for key in ("aws_access_key_id", "aws_secret_access_key", "aws_session_token"):
        assert credentials[key] not in boto.err
    s3 = boto3.client("s3", region_name="us-east-1", **credentials)
    s3.put_object(Bucket=BUCKET, Key="pipes/run/out.txt", Body=b"ok")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="pipes/run/")["Contents"]]
    assert keys == ["pipes/run/out.txt"]

    missing = ws.run("sts", "Storage project/Nope", *conn)
    assert missing.code == 1
    assert missing.out == ""
    assert "no entity named 'Nope'" in missing.err

    not_sts = ws.run("sts", "Storage project", *conn)
    assert not_sts.code == 1
    assert "is not in an STS-enabled folder" in not_sts.err
    assert not_sts.out == ""


def test_existing_files_are_moved_behind_sts_keeping_their_ids(
    ws: Workspace, emulator: Emulator, api_for: Any
) -> None:
    """The documented path to STS: a new STS folder with `move_files_from` (Synapse enables STS
    only on empty folders and only accepts files whose storage is the folder's)."""
    api = api_for(emulator, "alice")
    project = api.project("Storage project")
    raw = api.folder("Raw Data", project["id"])
    sub = api.folder("sub", raw["id"])
    contents = {f"f{i}.txt": bytes([65 + i]) * (1000 * (i + 1)) for i in range(3)}
    files = {}
    for name, data in contents.items():
        handle = upload(api, data, name)
        files[name] = file_entity(api, raw["id"], handle["id"], name)
    endpoint = emulator.s3_endpoint
    manifest = ws.manifest(
        f"""
        version: 1
        storage_locations:
          lab-sts: {{type: external_s3, bucket: {BUCKET}, base_key: pipes, sts_enabled: true,
                     endpoint_url: "{endpoint}"}}
        projects:
          - name: Storage project
            folders:
              - name: Raw Data
              - name: Raw Data (STS)
                storage: lab-sts
                move_files_from: Raw Data
        """
    )
    plan = ws.plan_json(manifest)
    move = next(c for c in plan["changes"] if c["address"].endswith("#move"))
    assert move["action"] == "migrate"
    assert {f["path"]: f["after"] for f in move["fields"]}["files"] == 3
    assert set(move["depends_on"]) == {
        "project:Storage project/folder:Raw Data (STS)",
        "project:Storage project/folder:Raw Data (STS)#upload",
        "storage:lab-sts",
    }

    applied = ws.run(
        "apply", manifest, "--auto-approve", "--state-dir", ws.root / "state", *ws.connection()
    )
    assert applied.code == 0, applied.both
    target = lookup(api, "Raw Data (STS)", project["id"])
    assert target is not None
    sts_location = next(loc for loc in my_locations(api) if loc.get("stsEnabled"))
    for name, entity in files.items():
        now = api.ok("GET", f"/entity/{entity['id']}")
        assert now["parentId"] == target  # moved, same id
        assert now["versionNumber"] == 1  # the handle was swapped in place
        handle = api.ok("GET", f"/file/v1/fileHandle/{now['dataFileHandleId']}")
        assert handle["storageLocationId"] == sts_location["storageLocationId"]
        assert handle["contentMd5"] == hashlib.md5(contents[name]).hexdigest()
        body = emulator.s3_client().get_object(Bucket=BUCKET, Key=handle["key"])["Body"].read()
        assert body == contents[name]
        source = api.ok("GET", f"/file/v1/fileHandle/{entity['dataFileHandleId']}")
        kept = emulator.s3_client().get_object(Bucket=source["bucketName"], Key=source["key"])
        assert kept["Body"].read() == contents[name]  # the source object is untouched
    assert lookup(api, "sub", raw["id"]) == sub["id"]  # folders are not moved
    again = ws.plan(manifest, "--detailed-exitcode")
    assert again.code == 0, again.both


@pytest.mark.interop
def test_after_apply_the_official_client_agrees(
    ws: Workspace, emulator: Emulator, api_for: Any, hermetic_env: Path
) -> None:
    """`apply` of a manifest with migrate_existing (all versions) leaves synapseutils nothing to
    migrate, and every file downloads byte-identical with synapseclient."""
    synapseclient = pytest.importorskip("synapseclient")
    import synapseutils

    api = api_for(emulator, "alice")
    project = api.project("Storage project")
    folder = api.folder("Data", project["id"])
    contents = {"a.txt": b"alpha\n" * 300, "b.bin": bytes(range(256)) * 40}
    ids = {}
    for name, data in contents.items():
        handle = upload(api, data, name)
        ids[name] = file_entity(api, folder["id"], handle["id"], name)["id"]
    # A second version of a.txt: `all` must move both.
    entity = api.ok("GET", f"/entity/{ids['a.txt']}")
    newer = upload(api, b"alpha v2\n" * 300, "a.txt")
    api.ok("PUT", f"/entity/{ids['a.txt']}", {**entity, "dataFileHandleId": newer["id"]})
    contents["a.txt"] = b"alpha v2\n" * 300
    endpoint = emulator.s3_endpoint
    manifest = ws.manifest(
        f"""
        version: 1
        storage_locations:
          lab: {{type: external_s3, bucket: {BUCKET}, base_key: portal,
                 endpoint_url: "{endpoint}"}}
        projects:
          - name: Storage project
            storage: lab
            migrate_existing: {{to: lab, versions: all}}
        """
    )
    applied = ws.run(
        "apply", manifest, "--auto-approve", "--state-dir", ws.root / "state", *ws.connection()
    )
    assert applied.code == 0, applied.both
    destination = next(int(loc["storageLocationId"]) for loc in my_locations(api))

    config = hermetic_env / ".synapseConfig"
    config.write_text(emulator.synapse_config("alice"), encoding="utf-8")
    synapseclient.Synapse.allow_client_caching(False)
    syn = synapseclient.Synapse(
        configPath=str(config), cache_root_dir=str(hermetic_env / "cache"), silent=True
    )
    syn.login(silent=True)
    result = synapseutils.index_files_for_migration(
        syn,
        project["id"],
        str(destination),
        str(ws.root / "su.db"),
        file_version_strategy="all",
    )
    counts = result.get_counts_by_status()
    assert counts["INDEXED"] == 0 and counts["ERRORED"] == 0, counts
    assert counts["ALREADY_MIGRATED"] == 3, counts  # a.txt v1, a.txt v2, b.bin v1
    for name, entity_id in ids.items():
        got = syn.get(entity_id, downloadLocation=str(ws.root / "dl" / name))
        assert Path(got.path).read_bytes() == contents[name]
        assert int(got._file_handle["storageLocationId"]) == destination
    syn.logout()
