"""Adoption and drift with the official client (issue 4, "What it must show"; §C.3 #5):
a project built by hand with ``synapseclient`` and then described in a manifest plans as
adoptions and no-ops, never creations; out-of-band edits made with ``synapseclient`` show up as
exactly that drift, and apply puts them back.

synapseclient finds the emulator the way it finds any Synapse: ``~/.synapseConfig`` (HOME is a
temp dir), with the ``[endpoints]`` section the emulator writes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Api
from reconcile_support import (
    MARKER,
    Workspace,
    actionable,
    actions,
    annotations,
    children,
    log_window,
    lookup,
    mutating_exchanges,
    official_client,
    own_acl,
    quiet,
)

from synapse_declare.emulator import Emulator

pytestmark = pytest.mark.interop

synapseclient = pytest.importorskip("synapseclient")


@pytest.fixture
def syn(emulator: Emulator, hermetic_env: Path) -> Iterator[Any]:
    with official_client(emulator, hermetic_env) as client:
        yield client


@pytest.fixture
def ws(emulator: Emulator, tmp_path: Path) -> Workspace:
    return Workspace(emulator, tmp_path)


RELEASED = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)

HANDMADE = """
    version: 1
    projects:
      - name: Hand made
        description: Built with synapseclient.
        annotations:
          program: handmade
          sample_count: 3
          coverage: 0.85
          reviewed: false
          released: 2024-05-01T00:00:00Z
          assays: [rnaSeq, wholeGenomeSeq]
        wiki:
          title: Hand made
          markdown: "# Hand made\\n\\nWritten with synapseclient."
          pages:
            - title: Data access
              markdown: Ask alice.
        folders:
          - name: Raw Data
            annotations: {stage: raw}
            folders:
              - name: RNAseq
          - name: Shared
            acl:
              self: administer
              user:bob: download
"""


def _build_by_hand(syn: Any, emulator: Emulator) -> dict[str, Any]:
    from synapseclient import Folder, Project, Wiki

    project = quiet(
        syn.store,
        Project(
            "Hand made",
            description="Built with synapseclient.",
            annotations={
                "program": "handmade",
                "sample_count": 3,
                "coverage": 0.85,
                "reviewed": False,
                "released": RELEASED,
                "assays": ["rnaSeq", "wholeGenomeSeq"],
                "not_in_manifest": "keep me",
            },
        ),
    )
    raw = quiet(syn.store, Folder("Raw Data", parent=project, annotations={"stage": "raw"}))
    rnaseq = quiet(syn.store, Folder("RNAseq", parent=raw))
    shared = quiet(syn.store, Folder("Shared", parent=project))
    quiet(syn.store, Folder("Not in the manifest", parent=project))
    quiet(
        syn.setPermissions,
        shared,
        principalId=emulator.principal_ids["bob"],
        accessType=["READ", "DOWNLOAD"],
        warn_if_inherits=False,
    )
    home = quiet(
        syn.store,
        Wiki(
            title="Hand made",
            markdown="# Hand made\n\nWritten with synapseclient.",
            owner=project,
        ),
    )
    quiet(
        syn.store,
        Wiki(title="Data access", markdown="Ask alice.", owner=project, parentWikiId=home.id),
    )
    return {"project": project.id, "raw": raw.id, "rnaseq": rnaseq.id, "shared": shared.id}


def test_handmade_project_is_adopted_not_created(
    syn: Any, emulator: Emulator, ws: Workspace, api_for: Any
) -> None:
    ids = _build_by_hand(syn, emulator)
    alice: Api = api_for(emulator, "alice")
    manifest = ws.manifest(HANDMADE)

    planned = ws.plan_json(manifest)
    assert planned["summary"]["create"] == 0, actionable(planned)
    assert planned["summary"]["update"] == 0, actionable(planned)
    assert actions(planned) == {
        "project:Hand made": "adopt",
        "project:Hand made#wiki": "no-op",
        "project:Hand made#wiki/Data access": "no-op",
        "project:Hand made/folder:Raw Data": "adopt",
        "project:Hand made/folder:Raw Data/folder:RNAseq": "adopt",
        "project:Hand made/folder:Shared": "adopt",
    }
    project_change = planned["changes"][0]
    assert project_change["syn_id"] == ids["project"]
    assert [f["path"] for f in project_change["fields"]] == [f"annotations.{MARKER}"]
    text = ws.plan(manifest).out
    assert '= project "Hand made"' in text and "+ " not in text.replace("+ annotations", "")

    before = emulator.state_version()
    with log_window(emulator) as exchanges:
        applied = ws.apply(manifest)
    assert applied.code == 0, applied.err
    # The project's marker, and each declared folder's marker and address (adopted with it).
    folders = ("raw", "rnaseq", "shared")
    assert sorted(mutating_exchanges(exchanges)) == sorted(
        f"PUT /repo/v1/entity/{ids[k]}/annotations2" for k in ("project", *folders)
    )
    assert emulator.state_version() == before + 4
    for key, path in zip(folders, ("Raw Data", "Raw Data/folder:RNAseq", "Shared"), strict=True):
        marked = annotations(alice, ids[key])
        assert marked[MARKER] == {"type": "BOOLEAN", "value": ["true"]}
        assert marked["synapse_declare_address"]["value"] == [f"project:Hand made/folder:{path}"]
    assert annotations(alice, ids["raw"])["stage"]["value"] == ["raw"]  # their own keys kept

    # Marked, nothing else touched: same ids, same unmanaged key, same children.
    live = annotations(alice, ids["project"])
    assert live[MARKER] == {"type": "BOOLEAN", "value": ["true"]}
    assert live["not_in_manifest"]["value"] == ["keep me"]
    assert sorted(c["name"] for c in children(alice, ids["project"])) == [
        "Not in the manifest",
        "Raw Data",
        "Shared",
    ]
    assert lookup(alice, "Hand made") == ids["project"]
    assert ws.plan(manifest, "--detailed-exitcode").code == 0

    # synapseclient still reads it as it wrote it.
    entity = quiet(syn.get, ids["project"], downloadFile=False)
    assert entity.annotations["program"] == ["handmade"]
    assert entity.annotations["released"] == [RELEASED]


def test_drift_made_with_synapseclient_is_shown_and_fixed(
    syn: Any, emulator: Emulator, ws: Workspace, api_for: Any
) -> None:
    manifest = ws.manifest(HANDMADE.replace("Hand made", "Drifting"))
    assert ws.apply(manifest).code == 0
    alice: Api = api_for(emulator, "alice")
    project_id = lookup(alice, "Drifting")
    assert project_id is not None
    shared = lookup(alice, "Shared", project_id)
    assert shared is not None

    # Out of band, with the official client: a managed annotation edited, an unmanaged one
    # added, an ACL entry added, a wiki page edited.
    project = quiet(syn.get, project_id, downloadFile=False)
    project.annotations["sample_count"] = [4]
    project.annotations["added_by_hand"] = ["fine"]
    quiet(syn.store, project, forceVersion=False)
    quiet(
        syn.setPermissions,
        shared,
        principalId=273948,
        accessType=["READ"],
        warn_if_inherits=False,
    )
    from synapseclient import Wiki

    headers = quiet(syn.getWikiHeaders, project_id)
    sub_id = next(h["id"] for h in headers if h["title"] == "Data access")
    page = quiet(syn.getWiki, project_id, sub_id)
    page.markdown = "Ask bob instead."
    quiet(syn.store, page)
    assert isinstance(page, Wiki)

    planned = ws.plan_json(manifest)
    drift = {
        c["address"]: [(f["path"], f["before"], f["after"]) for f in c["fields"]]
        for c in planned["changes"]
        if c["action"] != "no-op"
    }
    assert drift == {
        "project:Drifting": [
            (
                "annotations.sample_count",
                {"type": "LONG", "value": 4},
                {"type": "LONG", "value": 3},
            )
        ],
        "project:Drifting#wiki/Data access": [
            ("markdown", drift_md(planned), drift_md(planned, 1))
        ],
        # One field per principal whose access changes: only the grant made by hand goes.
        "project:Drifting/folder:Shared": [("acl.AUTHENTICATED_USERS", "view", None)],
    }

    assert ws.apply(manifest).code == 0
    assert ws.plan(manifest, "--detailed-exitcode").code == 0
    live = annotations(alice, project_id)
    assert live["sample_count"]["value"] == ["3"]
    assert live["added_by_hand"]["value"] == ["fine"], "unmanaged keys are left alone"
    assert 273948 not in (own_acl(alice, shared) or {})
    assert quiet(syn.getWiki, project_id, sub_id).markdown == "Ask alice."


def drift_md(planned: dict[str, Any], index: int = 0) -> Any:
    change = next(c for c in planned["changes"] if c["address"].endswith("Data access"))
    value = change["fields"][0]["before" if index == 0 else "after"]
    assert value.startswith("(") and "sha256" in value
    return value
