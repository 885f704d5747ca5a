"""The official synapseclient 4.14.0, unchanged, against the emulator (issue 2, "Interop").

synapseclient is pointed at the emulator only through ``~/.synapseConfig`` ``[endpoints]`` (HOME
is the hermetic fixture's temporary directory) and a token. Default constructor checks are on:
the client probes the four endpoint roots and its PyPI version check fails harmlessly offline.

One detail: synapseclient computes its default ``configPath`` when the module is first imported
(``CONFIG_FILE = expanduser("~/.synapseConfig")``), which may be before the fixture moved HOME.
The tests therefore name that same file explicitly: ``Path.home() / ".synapseConfig"``.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import read_exchanges
from emulator_core_support import ADMIN_SET, PUBLIC, uniq, user_id

from synapse_declare.emulator import Emulator

synapseclient = pytest.importorskip("synapseclient")
from synapseclient import Folder, Project, Synapse, Wiki  # noqa: E402
from synapseclient.core.exceptions import SynapseHTTPError  # noqa: E402
from synapseclient.models import Folder as FolderModel  # noqa: E402

pytestmark = pytest.mark.interop


def _client(emu: Emulator, home: Path, token: str | None = None) -> Any:
    config = home / ".synapseConfig"
    config.write_text(emu.synapse_config("alice"), encoding="utf-8")
    Synapse.allow_client_caching(False)
    syn = Synapse(configPath=str(config))
    if token is None:
        syn.login(silent=True)
    else:
        syn.login(authToken=token, silent=True)
    return syn


@pytest.fixture
def syn(emu: Emulator, hermetic_env: Path) -> Iterator[Any]:
    client = _client(emu, hermetic_env)
    yield client
    client.logout()


@pytest.fixture
def syn_bob(emu: Emulator, hermetic_env: Path) -> Iterator[Any]:
    client = _client(emu, hermetic_env, token=emu.users["bob"])
    yield client
    client.logout()


def test_login_and_profile(emu: Emulator, syn: Any) -> None:
    assert syn.credentials.username == "alice"
    assert str(syn.credentials.owner_id) == str(user_id(emu, "alice"))
    profile = syn.getUserProfile()
    assert profile["userName"] == "alice"
    assert profile["ownerId"] == str(user_id(emu, "alice"))
    assert syn.repoEndpoint == emu.repo_endpoint
    assert syn.fileHandleEndpoint == emu.file_endpoint


def test_store_projects_and_folders_create_or_update(emu: Emulator, syn: Any) -> None:
    name = uniq("Interop")
    project = syn.store(Project(name=name))
    assert project.id.startswith("syn") and project.parentId == "syn4489"
    # The same name again: 409, then synapseclient's lookup + merge + PUT path.
    again = syn.store(Project(name=name, description="updated through the 409 path"))
    assert again.id == project.id
    assert syn.get(project.id).description == "updated through the 409 path"
    with pytest.raises(SynapseHTTPError) as conflict:
        syn.store(Project(name=name), createOrUpdate=False)
    assert conflict.value.response.status_code == 409
    folder = syn.store(Folder(name="Data", parent=project))
    same = syn.store(Folder(name="Data", parent=project, description="d"))
    assert same.id == folder.id and same.description == "d"
    fetched = syn.get(folder.id)
    assert isinstance(fetched, Folder)
    assert (fetched.name, fetched.parentId) == ("Data", project.id)
    acl = syn.restGET(f"/entity/{project.id}/acl")
    assert {e["principalId"]: set(e["accessType"]) for e in acl["resourceAccess"]} == {
        user_id(emu, "alice"): ADMIN_SET
    }


def test_get_children_of_a_folder_with_more_than_50(emu: Emulator, syn: Any) -> None:
    project = syn.store(Project(name=uniq("Interop")))
    folder = syn.store(Folder(name="many", parent=project))
    names = [f"child{i:02d}" for i in range(57)]
    for name in names:
        syn.store(Folder(name=name, parent=folder), createOrUpdate=False)
    children = list(syn.getChildren(folder))
    assert [c["name"] for c in children] == names
    assert all(c["type"] == "org.sagebionetworks.repo.model.Folder" for c in children)
    pages = [
        e
        for e in read_exchanges(emu)
        if e["path"] == "/repo/v1/entity/children" and e["request"]["parentId"] == folder.id
    ]
    assert [p["request"].get("nextPageToken") for p in pages] == [None, "50a50"]


def test_annotations_of_all_five_types_round_trip(syn: Any) -> None:
    project = syn.store(Project(name=uniq("Interop")))
    when = datetime.datetime(2024, 5, 1, 12, 30, tzinfo=datetime.UTC)
    folder = Folder(name="annotated", parent=project)
    folder["species"] = ["human", "mouse"]
    folder["count"] = 12
    folder["ratio"] = 0.85
    folder["public"] = False
    folder["released"] = when
    stored = syn.store(folder)
    annotations = syn.get_annotations(stored)
    assert annotations["species"] == ["human", "mouse"]
    assert annotations["count"] == [12] and isinstance(annotations["count"][0], int)
    assert annotations["ratio"] == [0.85] and isinstance(annotations["ratio"][0], float)
    assert annotations["public"] == [False] and isinstance(annotations["public"][0], bool)
    assert annotations["released"] == [when]
    wire = syn.restGET(f"/entity/{stored.id}/annotations2")["annotations"]
    assert {k: v["type"] for k, v in wire.items()} == {
        "species": "STRING",
        "count": "LONG",
        "ratio": "DOUBLE",
        "public": "BOOLEAN",
        "released": "TIMESTAMP_MS",
    }
    assert wire["released"]["value"] == [str(int(when.timestamp() * 1000))]
    # Through get() as well, and a full replacement with set_annotations.
    fetched = syn.get(stored.id)
    assert fetched["count"] == [12] and fetched["released"] == [when]
    annotations["count"] = [13]
    del annotations["species"]
    updated = syn.set_annotations(annotations)
    assert "species" not in updated and updated["count"] == [13]
    with pytest.raises(SynapseHTTPError) as stale:
        syn.set_annotations(annotations)
    assert stale.value.response.status_code == 412


def test_permissions_inheritance_and_restore(emu: Emulator, syn: Any, syn_bob: Any) -> None:
    project = syn.store(Project(name=uniq("Interop")))
    folder = syn.store(Folder(name="shared", parent=project))
    child = syn.store(Folder(name="inside", parent=folder))
    bob = user_id(emu, "bob")
    assert sorted(syn.get_acl(project, principal_id=user_id(emu, "alice"))) == sorted(ADMIN_SET)
    assert syn.get_acl(folder, principal_id=bob) == []
    syn.setPermissions(
        folder, principalId=bob, accessType=["READ", "DOWNLOAD"], warn_if_inherits=False
    )
    assert syn.restGET(f"/entity/{folder.id}/benefactor")["id"] == folder.id
    assert sorted(syn.getPermissions(folder, bob)) == ["DOWNLOAD", "READ"]
    assert sorted(syn.get_acl(child, principal_id=bob)) == ["DOWNLOAD", "READ"]
    assert syn_bob.get(child.id).name == "inside"
    # The folder's ACL kept alice's administrator entry copied from the project's.
    assert sorted(syn.get_acl(folder, principal_id=user_id(emu, "alice"))) == sorted(ADMIN_SET)
    # Public read on the project, through synapseclient's PUBLIC default.
    syn.setPermissions(project, principalId=None, accessType=["READ"])
    assert syn.get_acl(project, principal_id=PUBLIC) == ["READ"]
    # Restore inheritance with the models API; a second call is a no-op for synapseclient.
    FolderModel(id=folder.id).delete_permissions(synapse_client=syn)
    FolderModel(id=folder.id).delete_permissions(synapse_client=syn)
    assert syn.restGET(f"/entity/{folder.id}/benefactor")["id"] == project.id
    assert syn.get_acl(folder, principal_id=bob) == ["READ"]  # now only PUBLIC's READ
    with pytest.raises(SynapseHTTPError) as inherits:
        syn.restGET(f"/entity/{folder.id}/acl")
    assert inherits.value.response.status_code == 404
    assert "inherits its permissions from" in str(inherits.value)


def test_wiki_v1_write_v2_read(emu: Emulator, syn: Any) -> None:
    project = syn.store(Project(name=uniq("Interop")))
    created = syn.store(Wiki(owner=project, title="Home", markdown="# First version"))
    assert created.id.isdigit()
    created.markdown = "# Second version\n\nwith *more* text"
    updated = syn.store(created)
    assert updated.etag != created.etag
    read = syn.getWiki(project)
    assert read.id == created.id
    assert read.title == "Home"
    assert read.markdown == "# Second version\n\nwith *more* text"
    assert read.markdownFileHandleId
    # Versions start at 0 (a version is addressed with the page id: GET .../wiki2 of the root
    # takes no wikiVersion on Synapse).
    assert syn.getWiki(project, subpageId=created.id, version=0).markdown == "# First version"
    assert syn.getWiki(project, subpageId=created.id, version=1).markdown == read.markdown
    sub = syn.store(
        Wiki(owner=project, title="Methods", markdown="methods", parentWikiId=created.id)
    )
    assert syn.getWiki(project, subpageId=sub.id).markdown == "methods"
    headers = syn.getWikiHeaders(project)
    assert [(h["id"], h["title"]) for h in headers] == [(created.id, "Home"), (sub.id, "Methods")]
    # A second root: 409, so synapseclient updates the existing root page instead.
    replaced = syn.store(Wiki(owner=project, title="Home again", markdown="# Replaced"))
    assert replaced.id == created.id
    assert syn.getWiki(project).markdown == "# Replaced"
    # Wikis never change the entity.
    assert syn.get(project.id).etag == project.etag


def test_delete_goes_to_trash_then_404(syn: Any) -> None:
    project = syn.store(Project(name=uniq("Interop")))
    folder = syn.store(Folder(name="temporary", parent=project))
    syn.delete(folder)
    with pytest.raises(SynapseHTTPError) as gone:
        syn.get(folder.id)
    assert gone.value.response.status_code == 404
    assert f"Entity {folder.id} is in trash can." in str(gone.value)
    trash = syn.restGET("/trashcan/view")["results"]
    assert any(item["entityId"] == folder.id for item in trash)
    # The name is free again at once.
    assert syn.store(Folder(name="temporary", parent=project)).id != folder.id


def test_second_user_without_access(emu: Emulator, syn: Any, syn_bob: Any) -> None:
    assert syn_bob.credentials.username == "bob"
    project = syn.store(Project(name=uniq("Interop")))
    with pytest.raises(SynapseHTTPError) as denied:
        syn_bob.get(project.id)
    assert denied.value.response.status_code == 403
    assert "You lack READ access to the requested entity." in str(denied.value)
    visible = syn.store(Folder(name="visible", parent=project))
    hidden = syn.store(Folder(name="hidden", parent=project))
    syn.setPermissions(project, principalId=user_id(emu, "bob"), accessType=["READ"])
    syn.setPermissions(
        hidden,
        principalId=user_id(emu, "alice"),
        accessType=sorted(ADMIN_SET),
        warn_if_inherits=False,
    )
    syn.setPermissions(
        hidden, principalId=user_id(emu, "bob"), accessType=[], warn_if_inherits=False
    )
    assert [c["id"] for c in syn_bob.getChildren(project)] == [visible.id]
    assert {c["id"] for c in syn.getChildren(project)} == {visible.id, hidden.id}
    with pytest.raises(SynapseHTTPError) as hidden_get:
        syn_bob.get(hidden.id)
    assert hidden_get.value.response.status_code == 403
    with pytest.raises(SynapseHTTPError) as no_write:
        syn_bob.store(Folder(name="bobs", parent=project), createOrUpdate=False)
    assert no_write.value.response.status_code == 403
