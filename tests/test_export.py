"""Export (issue 14): a project built by hand with ``synapseclient`` becomes a manifest directory
whose plan shows only the adoption of the project (``=``); the export never writes to Synapse,
re-exports byte-identically, and refuses bad input with nothing written.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from reconcile_support import (
    Workspace,
    actionable,
    log_window,
    mutating_exchanges,
    official_client,
    quiet,
)
from test_emulator_storage_support import make_bucket

from synapse_declare.emulator import Emulator

pytestmark = pytest.mark.interop

synapseclient = pytest.importorskip("synapseclient")

RELEASED = dt.datetime(2024, 5, 1, 12, 30, 15, 250000, tzinfo=dt.UTC)


@pytest.fixture
def syn(emulator: Emulator, hermetic_env: Path) -> Iterator[Any]:
    with official_client(emulator, hermetic_env) as client:
        yield client


@pytest.fixture
def ws(emulator: Emulator, tmp_path: Path) -> Workspace:
    return Workspace(emulator, tmp_path)


def _grant(syn: Any, entity: Any, principal: int, access: list[str]) -> None:
    quiet(
        syn.setPermissions,
        entity,
        principalId=principal,
        accessType=access,
        warn_if_inherits=False,
    )


def _build(syn: Any, emulator: Emulator, tmp_path: Path, name: str) -> dict[str, Any]:
    """Nested folders, own ACLs (users, a team, PUBLIC, AUTHENTICATED_USERS, a non-level set),
    annotations of every type (and text that looks like numbers), a three-level wiki, a file,
    a project storage location and an STS folder."""
    from synapseclient import File, Folder, Project, Wiki

    project = quiet(
        syn.store,
        Project(
            name,
            description="Built by hand with synapseclient.",
            annotations={
                "program": "handmade",
                "code": "00123",  # text that looks like a number stays text
                "version_tag": "1.10",
                "flag_text": "true",
                "date_text": "2024-05-01",
                "sample_count": 3,
                "big": 2**53 + 1,
                "coverage": 0.85,
                "whole_double": 2.0,
                "tiny": 1e-20,
                "reviewed": False,
                "released": RELEASED,
                "assays": ["rnaSeq", "wholeGenomeSeq"],
                "sizes": [1, 2, 3],
            },
        ),
    )
    raw = quiet(syn.store, Folder("Raw Data", parent=project, annotations={"stage": "raw"}))
    rnaseq = quiet(syn.store, Folder("RNAseq", parent=raw))
    quiet(syn.store, Folder("Batch 1", parent=rnaseq))
    data = tmp_path / "reads.txt"
    data.write_text("ACGT\n", encoding="utf-8")
    quiet(syn.store, File(str(data), parent=raw))
    shared = quiet(syn.store, Folder("Shared", parent=project))
    ids = emulator.principal_ids
    _grant(syn, shared, ids["bob"], ["READ", "DOWNLOAD"])
    _grant(syn, shared, ids["carol"], ["READ", "UPDATE"])  # matches no permission level
    _grant(syn, shared, ids["Curators"], ["CREATE", "READ", "DOWNLOAD", "UPDATE"])
    _grant(syn, shared, 273949, ["READ"])  # PUBLIC
    _grant(syn, shared, 273948, ["READ", "DOWNLOAD"])  # AUTHENTICATED_USERS
    home = quiet(syn.store, Wiki(title=name, markdown="# Home\n\nBuilt by hand.\n", owner=project))
    methods = quiet(
        syn.store,
        Wiki(title="Methods", markdown="Methods.", owner=project, parentWikiId=home.id),
    )
    quiet(
        syn.store,
        Wiki(
            title="Imaging", markdown="  indented\n\n- a\n", owner=project, parentWikiId=methods.id
        ),
    )
    bucket = make_bucket(emulator, owner="alice", base_key="portal")
    make_bucket_key(emulator, bucket, "pipelines")
    lab = quiet(
        syn.createStorageLocationSetting,
        "ExternalS3Storage",
        bucket=bucket,
        baseKey="portal",
        endpointUrl=emulator.s3_endpoint,
    )
    quiet(syn.setStorageLocation, project, lab["storageLocationId"])
    sts = quiet(
        syn.createStorageLocationSetting,
        "ExternalS3Storage",
        bucket=bucket,
        baseKey="pipelines",
        stsEnabled=True,
        endpointUrl=emulator.s3_endpoint,
    )
    pipelines = quiet(syn.store, Folder("Pipelines", parent=project))
    quiet(syn.setStorageLocation, pipelines, sts["storageLocationId"])
    return {"project": project.id, "shared": shared.id, "bucket": bucket}


def make_bucket_key(emulator: Emulator, bucket: str, base_key: str) -> None:
    emulator.s3_client().put_object(Bucket=bucket, Key=f"{base_key}/owner.txt", Body=b"alice")


def _export(ws: Workspace, *args: str | Path, user: str = "alice") -> Any:
    return ws.run("export", *args, *ws.connection(user))


def _files(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): p.read_text(encoding="utf-8")
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_handmade_project_round_trips_to_an_empty_plan(
    syn: Any, emulator: Emulator, ws: Workspace, tmp_path: Path
) -> None:
    name = f"Exported {uuid.uuid4().hex[:8]}"
    ids = _build(syn, emulator, tmp_path, name)
    out = tmp_path / "exported"

    before = emulator.state_version()
    with log_window(emulator) as exchanges:
        result = _export(ws, name, "--out", out)
    assert result.code == 0, result.err
    assert mutating_exchanges(exchanges) == []
    assert emulator.state_version() == before
    export_calls = len(exchanges)

    files = _files(out)
    stem = name.lower().replace(" ", "-")
    manifest = files[f"{stem}.yaml"]
    assert manifest.startswith("# yaml-language-server: $schema=")
    assert sorted(files) == [
        f"{stem}.wiki/home.md",
        f"{stem}.wiki/methods.md",
        f"{stem}.wiki/methods/imaging.md",
        f"{stem}.yaml",
        "teams.yaml",
    ]
    assert files[f"{stem}.wiki/methods/imaging.md"] == "  indented\n\n- a\n"
    # Principals by name, levels where they match, ACCESS_TYPE lists otherwise; no `self`.
    for line in (
        "PUBLIC: view",
        "AUTHENTICATED_USERS: download",
        "user:alice: administer",
        "user:bob: download",
        "user:carol: [READ, UPDATE]",
        "team:Curators: edit",
        "code: '00123'",
        "version_tag: '1.10'",
        "flag_text: 'true'",
        "released: 2024-05-01T12:30:15.250Z",
        "whole_double: 2.0",
        "sample_count: 3",
        "reviewed: false",
        "sts_enabled: true",
        f"storage: {ids['bucket']}-portal",
        f"storage: {ids['bucket']}-pipelines-sts",
        "# 1 file(s) here are listed, not exported (data is not infrastructure): reads.txt",
    ):
        assert line in manifest, (line, manifest)
    assert "self:" not in manifest and "synapse_declare_managed" not in manifest
    # The team the ACL grants to, which alice manages, is declared with its membership.
    assert "Teams declared with their members: Curators" in result.err
    assert "- name: Curators" in files["teams.yaml"]
    assert (
        "managers: [self]" in files["teams.yaml"] and "members: [user:bob]" in files["teams.yaml"]
    )

    validated = ws.run("validate", out)
    assert validated.code == 0, validated.both
    assert "warning" not in validated.both

    with log_window(emulator) as adopting_exchanges:
        planned = ws.plan_json(out)
    summary = planned["summary"]
    assert (summary["create"], summary["update"], summary["delete"]) == (0, 0, 0), actionable(
        planned
    )
    # Only adoptions: the project gets the managed marker; its folders, adopted with it, get the
    # marker and their address.
    adopted = actionable(planned)
    assert set(adopted.values()) == {"adopt"} and f"project:{name}" in adopted
    assert len(adopted) == 6  # the project and its five folders

    # --stdout: the same project in one document (markdown and teams inline) plans the same.
    inline = _export(ws, name, "--stdout")
    assert inline.code == 0, inline.err
    assert "markdown_file" not in inline.out and "teams:" in inline.out
    inline_plan = ws.plan_json(ws.manifest(inline.out, "inline/project.yaml"))
    assert actionable(inline_plan) == adopted

    # A re-export diffs cleanly: byte-identical.
    again = tmp_path / "again"
    assert _export(ws, ids["project"], "--out", again).code == 0
    assert _files(again) == files

    # After the adoption is applied, the plan is empty and the export unchanged.
    applied = ws.apply(out)
    assert applied.code == 0, applied.err
    with log_window(emulator) as plan_exchanges:
        assert ws.plan(out, "--detailed-exitcode").code == 0
    third = tmp_path / "third"
    assert _export(ws, name, "--out", third).code == 0
    assert _files(third) == files
    # The figure benchmarks/README.md quotes: export calls vs a no-op plan of the same tree.
    assert export_calls <= 3 * len(plan_exchanges), (export_calls, len(plan_exchanges))

    # Adopting reads the annotations of the folders no other kind reads (one bundle each, in
    # the adopting plan only: the converged plan above reads none of them).
    def calls(window: list[dict[str, Any]]) -> Counter[str]:
        return Counter(f"{e['method']} {e['path'].rsplit('/', 1)[-1]}" for e in window)

    # Here: 3 of the 5 folders (the other 2 are read for their annotations or ACL anyway).
    assert calls(adopting_exchanges) - calls(plan_exchanges) == Counter({"POST bundle2": 3})
    assert calls(plan_exchanges) - calls(adopting_exchanges) == Counter()


def test_folder_target_and_stdout(syn: Any, emulator: Emulator, ws: Workspace) -> None:
    from synapseclient import Folder, Project

    name = f"Folder target {uuid.uuid4().hex[:8]}"
    project = quiet(syn.store, Project(name, annotations={"n": 1}))
    outer = quiet(syn.store, Folder("Outer", parent=project))
    inner = quiet(syn.store, Folder("Inner", parent=outer, annotations={"k": "v"}))
    quiet(syn.store, Folder("Leaf", parent=inner))
    quiet(syn.store, Folder("Sibling", parent=project))

    by_path = _export(ws, f"{name}/Outer/Inner", "--stdout")
    by_id = _export(ws, inner.id, "--stdout")
    assert by_path.code == 0, by_path.err
    assert by_path.out == by_id.out
    text = by_path.out
    assert "Leaf" in text and "k: v" in text
    # Ancestors by name only (unmanaged); siblings and the project's fields left out.
    assert "Sibling" not in text and " n: 1" not in text and text.count("annotations:") == 1

    path = ws.manifest(text, "folder.yaml")
    planned = ws.plan_json(path)
    assert planned["summary"]["create"] == 0 and planned["summary"]["update"] == 0


def test_bad_input_is_refused_and_nothing_is_written(
    syn: Any, emulator: Emulator, ws: Workspace, tmp_path: Path
) -> None:
    from synapseclient import File, Folder, Project

    name = f"Refusals {uuid.uuid4().hex[:8]}"
    project = quiet(syn.store, Project(name))
    for i in range(4):
        quiet(syn.store, Folder(f"F{i}", parent=project))
    out = tmp_path / "out"

    unknown = _export(ws, "No such project anywhere", "--out", out)
    assert unknown.code == 1 and "no project named 'No such project anywhere'" in unknown.err
    assert not out.exists()

    missing = _export(ws, "syn999999999", "--out", out)
    assert missing.code == 1 and "syn999999999 does not exist" in missing.err

    private = _export(ws, project.id, "--out", out, user="carol")
    assert private.code == 1 and "carol cannot read" in private.err
    assert not out.exists()

    capped = _export(ws, name, "--out", out, "--max-entities", "3")
    assert capped.code == 1, capped.err
    assert "more than 3 entities (5 counted before stopping)" in capped.err
    assert not out.exists()
    assert not list(tmp_path.glob(".out.*")), "a staging directory was left behind"

    out.mkdir()
    (out / "keep.txt").write_text("mine", encoding="utf-8")
    busy = _export(ws, name, "--out", out)
    assert busy.code == 1 and "is not empty" in busy.err and "--force" in busy.err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]

    forced = _export(ws, name, "--out", out, "--force")
    assert forced.code == 0, forced.err
    assert sorted(p.name for p in out.iterdir()) == [name.lower().replace(" ", "-") + ".yaml"]

    empty = _export(ws, " / ", "--stdout")
    assert empty.code == 1 and "empty export target" in empty.err

    data = tmp_path / "data.txt"
    data.write_text("x", encoding="utf-8")
    quiet(syn.store, File(str(data), parent=project))
    a_file = _export(ws, f"{name}/data.txt", "--stdout")
    assert a_file.code == 1 and "'data.txt' in" in a_file.err and "is not a folder" in a_file.err

    both = _export(ws, name, "--out", tmp_path / "x", "--stdout")
    assert both.code == 1 and "exactly one of --out DIR or --stdout" in both.err


def test_what_cannot_be_expressed_is_a_warning_and_a_comment(
    syn: Any, emulator: Emulator, ws: Workspace, tmp_path: Path, api_for: Any
) -> None:
    from synapseclient import Folder, Link, Project, Wiki

    name = f"Odd {uuid.uuid4().hex[:8]}"
    project = quiet(syn.store, Project(name))
    holder = quiet(syn.store, Folder("Holder", parent=project))
    target = quiet(syn.store, Folder("Target", parent=holder))
    quiet(syn.store, Link(targetId=target.id, parent=project, name="A link"))
    figure = tmp_path / "figure.png"
    figure.write_bytes(b"\x89PNG not really")
    home = quiet(
        syn.store, Wiki(title=name, markdown="See figure.", owner=project, attachments=[figure])
    )
    for title in ("Zeta", "Alpha"):  # siblings with no order hint recorded
        quiet(syn.store, Wiki(title=title, markdown=title, owner=project, parentWikiId=home.id))
    bobs = api_for(emulator, "bob").ok("POST", "/team", {"name": f"Bobs Lab {name[-8:]}"})
    _grant(syn, project, int(bobs["id"]), ["READ"])
    out = tmp_path / "odd"
    result = _export(ws, name, "--out", out)
    assert result.code == 0, result.err
    manifest = (out / (name.lower().replace(" ", "-") + ".yaml")).read_text(encoding="utf-8")
    for text in (result.err, manifest):
        assert "Link 'Target' is not exported" in text, text
        assert "1 attachment(s) not exported (figure.png)" in text, text
        assert "no recorded order for some sibling pages" in text, text
    assert manifest.index("title: Alpha") < manifest.index("title: Zeta")
    assert "# Link 'Target' is not exported" in manifest
    # A team alice does not manage stays a reference (declaring it would manage its members).
    assert f"team:{bobs['name']}: view" in manifest and not (out / "teams.yaml").exists()
    assert "Teams left as team:NAME references (you do not manage them" in result.err


def test_a_pending_invitee_is_exported_by_user_name(ws: Workspace, tmp_path: Path) -> None:
    """A person only invited to a managed team comes back from Synapse as an id: the export
    names them (``user:bob``), so the exported directory plans with no error and no change."""
    name = f"Invited {uuid.uuid4().hex[:8]}"
    team = f"Team {uuid.uuid4().hex[:8]}"
    m = ws.manifest(
        f"version: 1\nteams:\n  - name: {team}\n    managers: [self]\n    members: [user:bob]\n"
        f"projects:\n  - name: {name}\n    acl:\n      self: administer\n"
        f"      team:{team}: edit\n"
    )
    assert ws.apply(m).code == 0
    out = tmp_path / "exported"
    result = _export(ws, name, "--out", out)
    assert result.code == 0, result.both
    teams = (out / "teams.yaml").read_text(encoding="utf-8")
    assert "members: [user:bob]" in teams, teams
    planned = ws.plan_json(out)
    summary = planned["summary"]
    assert (summary["create"], summary["update"], summary["delete"]) == (0, 0, 0), actionable(
        planned
    )


def test_a_protected_entity_is_exported_with_protect(
    syn: Any, ws: Workspace, tmp_path: Path
) -> None:
    """An entity carrying synapse-declare's protection marker (set by an earlier manifest) is
    exported as ``protect: true``, not as an annotation: the export plans as adoption only,
    and adoption writes nothing about protection (it is already there)."""
    from synapseclient import Folder, Project

    name = f"Guarded {uuid.uuid4().hex[:8]}"
    marker = {"synapse_declare_protected": True}
    project = quiet(syn.store, Project(name, annotations={**marker, "program": "p"}))
    quiet(syn.store, Folder("Keep", parent=project, annotations=marker))
    quiet(syn.store, Folder("Scratch", parent=project))
    out = tmp_path / "exported"
    result = _export(ws, name, "--out", out)
    assert result.code == 0, result.err
    text = (out / (name.lower().replace(" ", "-") + ".yaml")).read_text(encoding="utf-8")
    assert "synapse_declare_protected" not in text, text
    assert f"- name: {name}\n    protect: true\n" in text, text
    assert "  - name: Keep\n        protect: true\n" in text, text
    assert "program: p" in text and text.count("protect:") == 2, text

    planned = ws.plan_json(out)
    adopted = actionable(planned)
    assert set(adopted.values()) == {"adopt"}, adopted
    assert f"project:{name}" in adopted and len(adopted) == 3
    fields = [f["path"] for c in planned["changes"] for f in c.get("fields", [])]
    assert not any("protected" in f for f in fields), fields


def test_an_exported_protect_keeps_refusing_prune(ws: Workspace, tmp_path: Path) -> None:
    """A folder made with ``protect: true`` exports with it; the export plans with no change,
    and pruning its parent without its entry is still refused because it is protected."""
    name = f"Kept {uuid.uuid4().hex[:8]}"
    made = ws.manifest(
        f"version: 1\nprojects:\n  - name: {name}\n    folders:\n"
        "      - name: Keep\n        protect: true\n      - name: Scratch\n"
    )
    assert ws.apply(made).code == 0
    out = tmp_path / "exported"
    result = _export(ws, name, "--out", out)
    assert result.code == 0, result.err
    path = out / (name.lower().replace(" ", "-") + ".yaml")
    text = path.read_text(encoding="utf-8")
    assert "  - name: Keep\n        protect: true\n" in text, text
    assert "synapse_declare" not in text and text.count("protect:") == 1, text
    assert ws.plan(out, "--detailed-exitcode").code == 0

    pruned = text.replace(f"- name: {name}\n", f"- name: {name}\n    prune: true\n", 1)
    pruned = pruned.replace("  - name: Keep\n        protect: true\n", "", 1)
    assert "Keep" not in pruned and "prune: true" in pruned, pruned
    path.write_text(pruned, encoding="utf-8")
    refused = ws.plan(out)
    assert refused.code == 1, refused.both
    assert "Keep" in refused.err and "which is protected" in refused.err, refused.err
    assert "Traceback" not in refused.err
