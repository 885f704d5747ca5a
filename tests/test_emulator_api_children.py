"""Emulator behaviour over HTTP: the entity types `POST /entity/children` accepts
(synapse-api-2.md §5) and children pages cut in SQL with Synapse's ordering and visibility
(synapse-api.md §2.6)."""

from __future__ import annotations

from typing import Any

import pytest
from emulator_core_support import grant, make_file_handle, uniq, user_id

from synapse_declare.emulator import Emulator

FILE = "org.sagebionetworks.repo.model.FileEntity"

# Every type synapseclient 4.14.0 sends in includeTypes (api/entity_services.py get_children,
# models/mixins/storable_container.py walk, access_control.py ENTITY_TYPE_MAPPING).
CLIENT_TYPES = [
    "project",
    "folder",
    "file",
    "table",
    "link",
    "entityview",
    "dockerrepo",
    "submissionview",
    "dataset",
    "datasetcollection",
    "materializedview",
    "virtualtable",
    "recordset",
    "searchindex",
]


@pytest.fixture
def unlogged(make_emulator: Any, api_for: Any) -> Any:
    """The types "searchindex" and "recordset" are newer than the JSON models the conformance
    gate checks requests against, so these exchanges are kept out of the request log."""
    return api_for(make_emulator(request_log=None), "alice")


def _children(api: Any, parent: str, token: str | None = None, **extra: Any) -> Any:
    body = {"parentId": parent, "includeTypes": ["folder", "file"], "nextPageToken": token, **extra}
    return api.ok("POST", "/entity/children", body)


def _all_names(api: Any, parent: str, **extra: Any) -> list[str]:
    names: list[str] = []
    token = None
    while True:
        page = _children(api, parent, token, **extra)
        names += [h["name"] for h in page["page"]]
        token = page.get("nextPageToken")
        if token is None:
            return names


def test_every_client_entity_type_is_accepted(unlogged: Any) -> None:
    project = unlogged.project(uniq())
    folder = unlogged.folder("data", project["id"])
    page = unlogged.ok(
        "POST", "/entity/children", {"parentId": project["id"], "includeTypes": CLIENT_TYPES}
    )
    assert [h["id"] for h in page["page"]] == [folder["id"]]
    for stored_elsewhere in ("searchindex", "recordset", "table", "dataset", "virtualtable"):
        only = unlogged.ok(
            "POST",
            "/entity/children",
            {
                "parentId": project["id"],
                "includeTypes": [stored_elsewhere],
                "includeTotalChildCount": True,
                "includeSumFileSizes": True,
            },
        )
        assert only == {"page": [], "totalChildCount": 0, "sumFileSizesBytes": 0}
    reason = unlogged.error(
        400, "POST", "/entity/children", {"parentId": project["id"], "includeTypes": ["widget"]}
    )
    assert reason == "No enum constant org.sagebionetworks.repo.model.EntityType.widget"


def test_pages_keep_order_and_ties_across_sorts(
    emu: Emulator, alice: Any, project: dict[str, Any]
) -> None:
    parent = alice.folder("wide", project["id"])
    names = [f"n{i:03d}" for i in range(0, 130)]
    created = [alice.folder(name, parent["id"]) for name in reversed(names)]
    # Equal timestamps: the id breaks the tie, in the sort's direction.
    with emu.store.transaction():
        emu.store.execute(
            "UPDATE nodes SET created_on = '2024-01-01T00:00:00.000Z', "
            "modified_on = '2024-01-01T00:00:00.000Z' WHERE parent_id = ?",
            (int(parent["id"][3:]),),
        )
    assert _all_names(alice, parent["id"]) == names
    assert _all_names(alice, parent["id"], sortDirection="DESC") == names[::-1]
    by_id = [f["name"] for f in created]
    assert _all_names(alice, parent["id"], sortBy="CREATED_ON") == by_id
    assert (
        _all_names(alice, parent["id"], sortBy="MODIFIED_ON", sortDirection="DESC") == (by_id[::-1])
    )
    middle = _children(alice, parent["id"], "20a100")
    assert [h["name"] for h in middle["page"]] == names[100:120]
    assert middle["nextPageToken"] == "20a120"
    end = _children(alice, parent["id"], "10a120")
    assert [h["name"] for h in end["page"]] == names[120:]
    assert "nextPageToken" not in end
    beyond = _children(alice, parent["id"], "50a500", includeTotalChildCount=True)
    assert beyond == {"page": [], "totalChildCount": 130}


def test_visibility_is_decided_per_benefactor_in_the_page(
    emu: Emulator, alice: Any, bob: Any, project: dict[str, Any]
) -> None:
    """Children with their own ACL are visible by that ACL (directly or through a team); the
    others by the parent's benefactor. Hidden children do not shorten a page."""
    parent = alice.folder("mixed", project["id"])
    names = [f"c{i:02d}" for i in range(60)]
    folders = {name: alice.folder(name, parent["id"]) for name in names}
    bob_id = user_id(emu, "bob")
    teams = alice.ok("GET", "/teams", fragment="Curators")["results"]
    curators = int(next(t["id"] for t in teams if t["name"] == "Curators"))
    hidden = names[::3]
    for name in hidden:
        grant(alice, folders[name]["id"], [])
    grant(alice, folders["c01"]["id"], [(curators, ["READ"])])
    grant(alice, folders["c02"]["id"], [(bob_id, ["DOWNLOAD"])])
    assert _all_names(alice, parent["id"]) == names
    assert bob.error(
        403, "POST", "/entity/children", {"parentId": parent["id"], "includeTypes": ["folder"]}
    ) == ("You lack READ access to the requested entity.")
    grant(alice, project["id"], [(bob_id, ["READ"])])
    expected = [n for n in names if n not in hidden and n != "c02"]
    first = _children(bob, parent["id"], includeTotalChildCount=True)
    assert [h["name"] for h in first["page"]] == expected[:50]
    assert first["totalChildCount"] == len(expected)
    assert _all_names(bob, parent["id"]) == expected
    headers = {h["name"]: h for h in first["page"]}
    assert headers["c01"]["benefactorId"] == int(folders["c01"]["id"][3:])
    assert headers["c04"]["benefactorId"] == int(project["id"][3:])


def test_sum_of_file_sizes_counts_visible_current_versions(
    emu: Emulator, alice: Any, project: dict[str, Any]
) -> None:
    parent = alice.folder("sizes", project["id"])
    for index, content in enumerate((b"12345", b"1234567890")):
        handle = make_file_handle(emu, "alice", content=content, file_name=f"f{index}.txt")
        alice.ok(
            "POST",
            "/entity",
            {
                "concreteType": FILE,
                "name": f"f{index}.txt",
                "parentId": parent["id"],
                "dataFileHandleId": handle,
            },
        )
    alice.folder("sub", parent["id"])
    page = _children(alice, parent["id"], includeSumFileSizes=True, includeTotalChildCount=True)
    assert page["sumFileSizesBytes"] == 15
    assert page["totalChildCount"] == 3
    assert [h["name"] for h in page["page"]] == ["f0.txt", "f1.txt", "sub"]
