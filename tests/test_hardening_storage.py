"""Issue 8: every accepted storage plan converges in one apply (STS folders inside a migrated
project, uncertified users, --verify md5 without read access), and the `sts` command's hints.

Everything runs through the real CLI against the emulator over HTTP and its moto S3.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from reconcile_support import Workspace, lookup, storage_workspace
from test_emulator_storage_support import file_entity, upload

from synapse_declare.emulator import Emulator

BUCKET = "lab-data"


@pytest.fixture
def ws(emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    return storage_workspace(emulator, tmp_path, monkeypatch, BUCKET, ("portal", "pipes"))


def whole_project_manifest(ws: Workspace) -> Path:
    endpoint = ws.emulator.s3_endpoint
    return ws.manifest(
        f"""
        version: 1
        storage_locations:
          lab: {{type: external_s3, bucket: {BUCKET}, base_key: portal,
                 endpoint_url: "{endpoint}"}}
          lab-sts: {{type: external_s3, bucket: {BUCKET}, base_key: pipes, sts_enabled: true,
                     endpoint_url: "{endpoint}"}}
        projects:
          - name: Storage project
            storage: lab
            migrate_existing: {{to: lab}}
            folders:
              - name: Raw Data
              - name: Pipelines
                storage: lab-sts
              - name: Raw Data (STS)
                storage: lab-sts
                move_files_from: Raw Data
        """
    )


def seed_files(emulator: Emulator, api_for: Any) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    api = api_for(emulator, "alice")
    project = api.project("Storage project")
    raw = api.folder("Raw Data", project["id"])
    other = api.folder("Other", project["id"])
    files = {}
    for i in range(2):
        handle = upload(api, bytes([70 + i]) * 1500, f"r{i}.txt")
        files[f"r{i}"] = file_entity(api, raw["id"], handle["id"], f"r{i}.txt")
        handle = upload(api, bytes([80 + i]) * 700, f"o{i}.txt")
        files[f"o{i}"] = file_entity(api, other["id"], handle["id"], f"o{i}.txt")
    return api, project, files


def test_project_migration_with_sts_folders_and_a_move_converges_in_one_apply(
    ws: Workspace, emulator: Emulator, api_for: Any
) -> None:
    api, project, files = seed_files(emulator, api_for)
    manifest = whole_project_manifest(ws)
    planned = ws.plan(manifest, "--detailed-exitcode")
    assert planned.code == 2, planned.both

    applied = ws.run(
        "apply", manifest, "--auto-approve", "--state-dir", ws.root / "state", *ws.connection()
    )
    assert applied.code == 0, applied.both

    again = ws.plan(manifest, "--detailed-exitcode")
    assert again.code == 0, again.both
    locations = {loc["baseKey"]: loc["storageLocationId"] for loc in my_locations(api)}
    sts_folder = lookup(api, "Raw Data (STS)", project["id"])
    for key, entity in files.items():
        now = api.ok("GET", f"/entity/{entity['id']}")
        handle = api.ok("GET", f"/file/v1/fileHandle/{now['dataFileHandleId']}")
        if key.startswith("r"):  # moved behind STS, not migrated to the project's bucket
            assert now["parentId"] == sts_folder
            assert handle["storageLocationId"] == locations["pipes"]
        else:  # the rest of the project moved to its bucket
            assert handle["storageLocationId"] == locations["portal"]


def test_a_saved_plan_with_a_migration_and_a_move_is_stale_when_either_index_changes(
    ws: Workspace, emulator: Emulator, api_for: Any
) -> None:
    """Each index is observed under its own change's address: a file added to the project's
    migrated files, or to the folder a move empties, refuses the saved plan and names the
    change it invalidates."""
    api, project, _ = seed_files(emulator, api_for)
    manifest = whole_project_manifest(ws)
    migration = "project:Storage project#migration"
    move = "project:Storage project/folder:Raw Data (STS)#move"
    for folder, name, invalidated, untouched in (
        ("Other", "o9.txt", migration, move),
        ("Raw Data", "r9.txt", move, migration),
    ):
        saved = ws.root / f"{name}.plan.json"
        assert ws.plan(manifest, "--out", saved, "--detailed-exitcode").code == 2
        observed = json.loads(saved.read_text())["observed"]
        assert {migration, move} <= set(observed), observed
        parent = lookup(api, folder, project["id"])
        assert parent is not None
        file_entity(api, parent, upload(api, b"late" * 300, name)["id"], name)
        version = emulator.state_version()
        result = ws.run(
            "apply", "--plan", saved, "--state-dir", ws.root / "state", *ws.connection()
        )
        assert result.code == 1, result.both
        assert "stale" in result.err, result.err
        assert f"{invalidated} changed since the plan was made" in result.err, result.err
        assert untouched not in result.err, result.err
        assert emulator.state_version() == version, "a refused plan mutated Synapse"


def my_locations(api: Any) -> list[dict[str, Any]]:
    return list(api.ok("GET", "/storageLocation")["list"])


def test_sts_command_explains_a_folder_without_sts(ws: Workspace, emulator: Emulator) -> None:
    assert ws.apply(whole_project_manifest(ws)).code == 0
    result = ws.run("sts", "Storage project/Raw Data", *ws.connection())
    assert result.code == 1
    assert result.out == ""
    assert "is not in an STS-enabled folder" in result.err
    assert "sts_enabled: true" in result.err
    assert "Entity must have" not in result.err  # Synapse's raw text is replaced by the cause


def test_sts_boto_format_carries_the_endpoint_of_an_s3_compatible_store(
    ws: Workspace, emulator: Emulator
) -> None:
    assert ws.apply(whole_project_manifest(ws)).code == 0
    boto = ws.run("sts", "Storage project/Pipelines", "--format", "boto", *ws.connection())
    assert boto.code == 0, boto.err
    assert json.loads(boto.out)["endpoint_url"] == emulator.s3_endpoint
    shell = ws.run("sts", "Storage project/Pipelines", *ws.connection())
    assert f"export AWS_ENDPOINT_URL_S3={emulator.s3_endpoint}" in shell.out


def test_verify_md5_without_read_access_is_refused_before_any_change(
    ws: Workspace, emulator: Emulator, api_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_files(emulator, api_for)
    endpoint = emulator.s3_endpoint
    manifest = ws.manifest(
        f"""
        version: 1
        storage_locations:
          lab: {{type: external_s3, bucket: {BUCKET}, base_key: portal,
                 endpoint_url: "{endpoint}"}}
        projects:
          - name: Storage project
            migrate_existing: {{to: lab}}
        """
    )
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    before = emulator.state_version()
    planned = ws.plan(manifest)
    assert planned.code == 0, planned.both
    assert "apply verifies each copy by reading s3://lab-data" in planned.out
    assert "cannot read it (no AWS credentials found)" in planned.out
    # The default (--verify auto) reads copies back too, unless the transfer proved them.
    automatic = ws.run(
        "apply", manifest, "--auto-approve", "--state-dir", ws.root / "state", *ws.connection()
    )
    assert automatic.code == 1, automatic.both
    assert "--verify auto reads" in automatic.err
    result = ws.run(
        "apply",
        manifest,
        "--auto-approve",
        "--verify",
        "md5",
        "--state-dir",
        ws.root / "state",
        *ws.connection(),
    )
    assert result.code == 1, result.both
    assert "--verify md5 reads every copy back from s3://lab-data" in result.err
    assert "no AWS credentials found" in result.err
    assert "manifest.yaml:3:3:" in result.err  # located at the destination's declaration
    assert "--verify none" in result.err
    assert emulator.state_version() == before  # nothing created, not even the location

    # Without verification reading the bucket, the same apply goes ahead.
    done = ws.run(
        "apply",
        manifest,
        "--auto-approve",
        "--verify",
        "none",
        "--state-dir",
        ws.root / "state",
        *ws.connection(),
    )
    assert done.code == 0, done.both


def test_an_uncertified_user_is_refused_at_plan_time_not_half_way(
    ws: Workspace, emulator: Emulator
) -> None:
    manifest = ws.manifest(
        """
        version: 1
        projects:
          - name: Carol's project
            folders:
              - name: Raw Data
              - name: Results
        """
    )
    before = emulator.state_version()
    for result in (ws.plan(manifest, user="carol"), ws.apply(manifest, user="carol")):
        assert result.code == 1, result.both
        assert "you (carol) are not a certified Synapse user" in result.err
        assert "folder:Raw Data" in result.err and "folder:Results" in result.err
        assert "manifest.yaml:5:9:" in result.err  # the first folder that needs certification
        assert "certification quiz" in result.err
    assert emulator.state_version() == before
    # A project's wiki page does (Synapse refuses its creation): refused before the project.
    wiki = ws.manifest(
        "version: 1\nprojects:\n  - name: Carol's wiki\n    wiki: {title: Home, markdown: Hi}\n",
        "wiki.yaml",
    )
    refused = ws.apply(wiki, user="carol")
    assert refused.code == 1, refused.both
    assert "project:Carol's wiki#wiki" in refused.err
    assert emulator.state_version() == before
    # A bare project needs no certification.
    bare = ws.manifest("version: 1\nprojects:\n  - name: Carol's project\n", "bare.yaml")
    assert ws.apply(bare, user="carol").code == 0


def test_an_unchecked_owner_txt_is_warned_once(
    ws: Workspace, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    result = ws.plan(whole_project_manifest(ws))
    assert result.code == 0, result.both
    # Two locations, one warning each: not also a log line on stderr.
    assert result.both.count("not checked here") == 2
    assert result.both.count("storage location 'lab':") == 1
    assert result.both.count("storage location 'lab-sts':") == 1
