"""Emulator behaviour over HTTP: wikis v1 and v2 (synapse-api.md §5)."""

from __future__ import annotations

import gzip
from typing import Any

import requests
from emulator_core_support import (
    S3_HANDLE,
    grant,
    make_file_handle,
    uniq,
    user_id,
)

from synapse_declare.emulator import Emulator


def _num(entity_id: str) -> str:
    return entity_id[3:]


def _denied(access: str, owner: str) -> str:
    return (
        f"User is not authorized to '{access}' a WikiPage with an ownerId: '{owner}' "
        "of type: 'ENTITY'"
    )


def _stale(owner: str) -> str:
    return (
        f"ObjectId: {owner} was updated since you last fetched it, retrieve it again and "
        "reapply the update"
    )


def _no_root(owner: str) -> str:
    return f"A root wiki does not exist for ownerId: {_num(owner)} and ownerType: ENTITY"


def _markdown_object(emu: Emulator, handle_id: str) -> tuple[dict[str, Any], bytes]:
    row = emu.store.one("SELECT * FROM file_handles WHERE id = ?", (int(handle_id),))
    assert row is not None
    obj = emu.s3_client().get_object(Bucket=row["bucket"], Key=row["key"])
    return dict(row), obj["Body"].read()


# ---------------------------------------------------------------------------------------------
# v1 create / read / update, markdown storage


def test_v1_create_stores_gzip_markdown_handle(
    emu: Emulator, alice: Any, project: dict[str, Any]
) -> None:
    response = alice.call(
        "POST", f"/entity/{project['id']}/wiki", {"title": "Home", "markdown": "# Hello ü"}
    )
    assert response.status_code == 201
    root = response.json()
    assert root["title"] == "Home" and root["markdown"] == "# Hello ü"
    assert root["id"].isdigit()
    assert root["createdBy"] == root["modifiedBy"] == str(user_id(emu, "alice"))
    assert root["attachmentFileHandleIds"] == []
    assert "parentWikiId" not in root and "markdownFileHandleId" not in root
    v2 = alice.ok("GET", f"/entity/{project['id']}/wiki2")
    assert v2["id"] == root["id"] and v2["etag"] == root["etag"]
    assert "markdown" not in v2
    handle, content = _markdown_object(emu, v2["markdownFileHandleId"])
    assert handle["file_name"] == f"{root['id']}_markdown.txt.gz"
    assert handle["content_type"] == "application/x-gzip; charset=UTF-8"
    assert handle["concrete_type"] == S3_HANDLE
    assert handle["created_by"] == user_id(emu, "alice")
    assert handle["storage_location_id"] == 1
    assert handle["bucket"] == emu.synapse_bucket
    assert gzip.decompress(content).decode("utf-8") == "# Hello ü"
    assert alice.ok("GET", f"/entity/{project['id']}/wiki") == root
    assert alice.ok("GET", f"/entity/{project['id']}/wiki/{root['id']}") == root
    key = alice.ok("GET", f"/entity/{project['id']}/wikikey")
    assert key == {
        "wikiPageId": root["id"],
        "ownerObjectId": project["id"],
        "ownerObjectType": "ENTITY",
    }


def test_wiki_writes_do_not_change_the_entity_etag(alice: Any, project: dict[str, Any]) -> None:
    root = alice.ok("POST", f"/entity/{project['id']}/wiki", {"title": "t", "markdown": "m"})
    alice.ok("PUT", f"/entity/{project['id']}/wiki/{root['id']}", {**root, "markdown": "m2"})
    assert alice.ok("GET", f"/entity/{project['id']}")["etag"] == project["etag"]


def test_one_root_per_owner(alice: Any, project: dict[str, Any]) -> None:
    alice.ok("POST", f"/entity/{project['id']}/wiki", {"title": "Home", "markdown": "a"})
    expected = (
        f"An owner already exists with the ownerId: {_num(project['id'])} and ownerType: ENTITY"
    )
    assert (
        alice.error(
            409, "POST", f"/entity/{project['id']}/wiki", {"title": "Again", "markdown": "b"}
        )
        == expected
    )
    assert (
        alice.error(
            409,
            "POST",
            f"/entity/{project['id']}/wiki2",
            {"title": "Again", "markdownFileHandleId": _handle(alice.emulator)},
        )
        == expected
    )


def _handle(emu: Emulator, user: str = "alice") -> str:
    """A gzip markdown file handle for v2 writes."""
    return make_file_handle(emu, user, content=b"# md", gzip_content=True, file_name="md.gz")


def test_missing_root_and_pages_are_404(alice: Any, project: dict[str, Any]) -> None:
    owner = project["id"]
    for path in (
        "/wiki",
        "/wiki2",
        "/wikikey",
        "/wiki2orderhint",
        "/wikiheadertree",
        "/wikiheadertree2",
    ):
        assert alice.error(404, "GET", f"/entity/{owner}{path}") == _no_root(owner), path
    assert alice.error(404, "GET", f"/entity/{owner}/wiki2/12345") == _no_root(owner)
    root = alice.ok("POST", f"/entity/{owner}/wiki", {"title": "Home", "markdown": "a"})
    assert (
        alice.error(404, "GET", f"/entity/{owner}/wiki2/99999999")
        == "No wiki page found with id: 99999999"
    )
    assert alice.error(404, "GET", f"/entity/{owner}/wiki2/{root['id']}", wikiVersion=7) == (
        f"Wiki page of id: {root['id']} was not found with version: 7"
    )
    # A page of another owner is not found through this owner.
    other = alice.project(uniq())
    foreign = alice.ok("POST", f"/entity/{other['id']}/wiki", {"title": "x", "markdown": "y"})
    assert alice.error(404, "GET", f"/entity/{owner}/wiki/{foreign['id']}") == (
        f"No wiki page found with id: {foreign['id']}"
    )
    assert alice.error(
        404,
        "POST",
        f"/entity/{owner}/wiki",
        {"title": "s", "markdown": "m", "parentWikiId": foreign["id"]},
    ) == (f"No wiki page found with id: {foreign['id']}")
    lonely = alice.project(uniq())
    assert alice.error(
        404,
        "POST",
        f"/entity/{lonely['id']}/wiki",
        {"title": "s", "markdown": "m", "parentWikiId": root["id"]},
    ) == (_no_root(lonely["id"]))


def test_subpages_header_trees_and_cascading_delete(alice: Any, project: dict[str, Any]) -> None:
    owner = project["id"]
    root = alice.ok("POST", f"/entity/{owner}/wiki", {"title": "Home", "markdown": "root"})
    b = alice.ok(
        "POST",
        f"/entity/{owner}/wiki",
        {"title": "beta", "markdown": "b", "parentWikiId": root["id"]},
    )
    a = alice.ok(
        "POST",
        f"/entity/{owner}/wiki",
        {"title": "Alpha", "markdown": "a", "parentWikiId": root["id"]},
    )
    c = alice.ok(
        "POST",
        f"/entity/{owner}/wiki2",
        {
            "title": "child",
            "markdownFileHandleId": _handle(alice.emulator),
            "parentWikiId": b["id"],
        },
    )
    assert c["parentWikiId"] == b["id"]
    expected = [
        {"id": root["id"], "title": "Home"},
        {"id": a["id"], "title": "Alpha", "parentId": root["id"]},
        {"id": b["id"], "title": "beta", "parentId": root["id"]},
        {"id": c["id"], "title": "child", "parentId": b["id"]},
    ]
    for path in ("wikiheadertree", "wikiheadertree2"):
        tree = alice.ok("GET", f"/entity/{owner}/{path}")
        assert tree == {"results": expected, "totalNumberOfResults": 4}
        page = alice.ok("GET", f"/entity/{owner}/{path}", offset=1, limit=2)
        assert page["results"] == expected[1:3]
        assert page["totalNumberOfResults"] == 4  # full page: offset + size + 1
        assert (
            alice.error(400, "GET", f"/entity/{owner}/{path}", limit=51)
            == "Limit cannot exceed: 50"
        )
        assert alice.ok("GET", f"/entity/{owner}/{path}", offset=4, limit=20)["results"] == []
    # Deleting a page removes its sub-pages; DELETE answers 200 with an empty body.
    response = alice.call("DELETE", f"/entity/{owner}/wiki/{b['id']}")
    assert (response.status_code, response.content) == (200, b"")
    assert [h["id"] for h in alice.ok("GET", f"/entity/{owner}/wikiheadertree2")["results"]] == [
        root["id"],
        a["id"],
    ]
    assert (
        alice.error(404, "GET", f"/entity/{owner}/wiki2/{c['id']}")
        == f"No wiki page found with id: {c['id']}"
    )
    # Deleting the root removes the whole tree and frees the owner for a new root.
    assert alice.call("DELETE", f"/entity/{owner}/wiki2/{root['id']}").status_code == 200
    assert alice.error(404, "GET", f"/entity/{owner}/wiki2") == _no_root(owner)
    assert alice.call("DELETE", f"/entity/{owner}/wiki2/{root['id']}").status_code == 200
    assert (
        alice.ok("POST", f"/entity/{owner}/wiki", {"title": "New home", "markdown": "n"})["title"]
        == "New home"
    )


def test_update_rules(alice: Any, project: dict[str, Any]) -> None:
    owner = project["id"]
    root = alice.ok("POST", f"/entity/{owner}/wiki", {"title": "Home", "markdown": "one"})
    sub = alice.ok(
        "POST",
        f"/entity/{owner}/wiki",
        {"title": "Sub", "markdown": "s", "parentWikiId": root["id"]},
    )
    subsub = alice.ok(
        "POST",
        f"/entity/{owner}/wiki",
        {"title": "SubSub", "markdown": "ss", "parentWikiId": sub["id"]},
    )
    assert alice.error(400, "PUT", f"/entity/{owner}/wiki/{sub['id']}", root) == (
        "Path variable wikiId does not match the ID of the passed WikiPage"
    )
    updated = alice.ok(
        "PUT", f"/entity/{owner}/wiki/{root['id']}", {**root, "title": "Home 2", "markdown": "two"}
    )
    assert (updated["title"], updated["markdown"]) == ("Home 2", "two")
    assert updated["etag"] != root["etag"]
    assert updated["createdOn"] == root["createdOn"]
    stale = alice.error(412, "PUT", f"/entity/{owner}/wiki/{root['id']}", {**root, "markdown": "x"})
    assert stale == _stale(owner)
    assert alice.error(
        412,
        "PUT",
        f"/entity/{_num(owner)}/wiki2/{sub['id']}",
        {**alice.ok("GET", f"/entity/{owner}/wiki2/{sub['id']}"), "etag": "x"},
    ) == _stale(_num(owner))
    cycle = "There will be a cycle if this wiki is updated. Put in valid parentId"
    current_root = alice.ok("GET", f"/entity/{owner}/wiki/{root['id']}")
    assert (
        alice.error(
            400,
            "PUT",
            f"/entity/{owner}/wiki/{root['id']}",
            {**current_root, "parentWikiId": subsub["id"]},
        )
        == cycle
    )
    assert (
        alice.error(
            400, "PUT", f"/entity/{owner}/wiki/{sub['id']}", {**sub, "parentWikiId": sub["id"]}
        )
        == cycle
    )
    assert alice.error(404, "PUT", f"/entity/{owner}/wiki/99999999", {**sub, "id": "99999999"}) == (
        "The wiki page to update could not be found."
    )
    moved = alice.ok(
        "PUT", f"/entity/{owner}/wiki/{subsub['id']}", {**subsub, "parentWikiId": root["id"]}
    )
    assert moved["parentWikiId"] == root["id"]


def test_v2_create_update_and_file_handle_rules(
    emu: Emulator, alice: Any, bob: Any, project: dict[str, Any]
) -> None:
    owner = project["id"]
    md = make_file_handle(
        emu, "alice", content=b"# v2 page", gzip_content=True, file_name="page.md.gz"
    )
    attachment = make_file_handle(emu, "alice", file_name="figure.png", content_type="image/png")
    response = alice.call(
        "POST",
        f"/entity/{owner}/wiki2",
        {"title": "V2", "markdownFileHandleId": md, "attachmentFileHandleIds": [attachment]},
    )
    assert response.status_code == 201
    page = response.json()
    assert page["markdownFileHandleId"] == md
    assert page["attachmentFileHandleIds"] == [attachment]
    # v1 reads gunzip the markdown of a v2 page.
    assert alice.ok("GET", f"/entity/{owner}/wiki/{page['id']}")["markdown"] == "# v2 page"
    handles = alice.ok("GET", f"/entity/{owner}/wiki2/{page['id']}/attachmenthandles")
    assert [h["id"] for h in handles["list"]] == [attachment]
    assert handles["list"][0]["fileName"] == "figure.png"
    assert alice.ok("GET", f"/entity/{owner}/wiki/{page['id']}/attachmenthandles") == handles
    # Handles must exist and (when new to the page) be created by the caller.
    grant(alice, owner, [(user_id(emu, "bob"), ["READ", "UPDATE", "CREATE"])])
    assert alice.error(
        404,
        "POST",
        f"/entity/{alice.project(uniq())['id']}/wiki2",
        {"title": "x", "markdownFileHandleId": "987654321"},
    ) == ("FileHandle: '987654321' cannot be found")
    bobs_md = make_file_handle(emu, "bob", content=b"bob", gzip_content=True)
    other = alice.project(uniq())
    creator = (
        "Only the creator of a FileHandle can access it directly by its ID.  "
        f"FileHandleId = '{bobs_md}', UserId = '{user_id(emu, 'alice')}'"
    )
    assert (
        alice.error(
            403,
            "POST",
            f"/entity/{other['id']}/wiki2",
            {"title": "x", "markdownFileHandleId": bobs_md},
        )
        == creator
    )
    # Bob may update the page keeping alice's handles (already used by it), not add his own.
    current = bob.ok("GET", f"/entity/{owner}/wiki2/{page['id']}")
    kept = bob.ok("PUT", f"/entity/{owner}/wiki2/{page['id']}", {**current, "title": "by bob"})
    assert kept["modifiedBy"] == str(user_id(emu, "bob"))
    assert kept["createdBy"] == str(user_id(emu, "alice"))
    bob_attachment = make_file_handle(emu, "bob", file_name="b.txt")
    alice_new = make_file_handle(emu, "alice", file_name="c.txt")
    assert bob.error(
        403,
        "PUT",
        f"/entity/{owner}/wiki2/{page['id']}",
        {**kept, "attachmentFileHandleIds": [attachment, alice_new]},
    ) == (
        "Only the creator of a FileHandle can access it directly by its ID.  "
        f"FileHandleId = '{alice_new}', UserId = '{user_id(emu, 'bob')}'"
    )
    with_bobs = bob.ok(
        "PUT",
        f"/entity/{owner}/wiki2/{page['id']}",
        {**kept, "attachmentFileHandleIds": [attachment, bob_attachment]},
    )
    assert with_bobs["attachmentFileHandleIds"] == [attachment, bob_attachment]


def test_duplicate_attachment_names_newest_wins(
    emu: Emulator, alice: Any, project: dict[str, Any]
) -> None:
    older = make_file_handle(
        emu, "alice", file_name="same.txt", created_on="2024-01-01T00:00:00.000Z"
    )
    newer = make_file_handle(
        emu, "alice", file_name="same.txt", created_on="2024-06-01T00:00:00.000Z"
    )
    other = make_file_handle(emu, "alice", file_name="other.txt")
    page = alice.ok(
        "POST",
        f"/entity/{project['id']}/wiki",
        {"title": "t", "markdown": "m", "attachmentFileHandleIds": [newer, other, older]},
    )
    assert sorted(page["attachmentFileHandleIds"]) == sorted([newer, other])


def test_history_versions_and_restore(emu: Emulator, alice: Any, project: dict[str, Any]) -> None:
    owner = project["id"]
    root = alice.ok("POST", f"/entity/{owner}/wiki", {"title": "First", "markdown": "one"})
    second = alice.ok(
        "PUT", f"/entity/{owner}/wiki/{root['id']}", {**root, "title": "Second", "markdown": "two"}
    )
    history = alice.ok("GET", f"/entity/{owner}/wiki2/{root['id']}/wikihistory", offset=0, limit=10)
    assert [h["version"] for h in history["results"]] == ["1", "0"]
    assert history["results"][0]["modifiedBy"] == str(user_id(emu, "alice"))
    assert history["totalNumberOfResults"] == 2
    assert (
        alice.ok("GET", f"/entity/{owner}/wiki2/{root['id']}/wikihistory", offset=1, limit=1)[
            "results"
        ][0]["version"]
        == "0"
    )
    assert alice.error(400, "GET", f"/entity/{owner}/wiki2/{root['id']}/wikihistory", limit=10) == (
        "Required request parameter 'offset' for method parameter type Long is not present"
    )
    # Old versions: title, markdown and modifiedOn of that version; the current etag.
    v0 = alice.ok("GET", f"/entity/{owner}/wiki2/{root['id']}", wikiVersion=0)
    assert v0["title"] == "First" and v0["etag"] == second["etag"]
    assert alice.ok("GET", f"/entity/{owner}/wiki/{root['id']}", wikiVersion=0)["markdown"] == "one"
    assert alice.ok("GET", f"/entity/{owner}/wiki/{root['id']}")["markdown"] == "two"
    restored = alice.ok("PUT", f"/entity/{owner}/wiki2/{root['id']}/0")
    assert (
        restored["title"] == "First"
        and restored["markdownFileHandleId"] == v0["markdownFileHandleId"]
    )
    assert restored["etag"] != second["etag"]
    history = alice.ok("GET", f"/entity/{owner}/wiki2/{root['id']}/wikihistory", offset=0, limit=10)
    assert [h["version"] for h in history["results"]] == ["2", "1", "0"]
    assert alice.ok("GET", f"/entity/{owner}/wiki/{root['id']}")["markdown"] == "one"
    assert alice.error(404, "PUT", f"/entity/{owner}/wiki2/{root['id']}/9") == (
        f"No wiki page found with id: {root['id']} and version: 9"
    )
    assert [h["title"] for h in alice.ok("GET", f"/entity/{owner}/wikiheadertree2")["results"]] == [
        "First"
    ]


def test_markdown_and_attachment_redirects(
    emu: Emulator, alice: Any, project: dict[str, Any]
) -> None:
    owner = project["id"]
    attachment = make_file_handle(emu, "alice", content=b"PNG", file_name="fig.png")
    root = alice.ok(
        "POST",
        f"/entity/{owner}/wiki",
        {"title": "t", "markdown": "# redirected", "attachmentFileHandleIds": [attachment]},
    )
    response = alice.session.get(
        f"{emu.repo_endpoint}/entity/{owner}/wiki2/{root['id']}/markdown",
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 307
    assert (
        gzip.decompress(requests.get(response.headers["Location"], timeout=10).content)
        == b"# redirected"
    )
    plain = alice.session.get(
        f"{emu.repo_endpoint}/entity/{owner}/wiki2/{root['id']}/attachment",
        params={"fileName": "fig.png", "redirect": "false"},
        timeout=10,
    )
    assert plain.status_code == 200 and plain.headers["Content-Type"].startswith("text/plain")
    assert requests.get(plain.text, timeout=10).content == b"PNG"
    assert alice.error(
        404, "GET", f"/entity/{owner}/wiki2/{root['id']}/attachment", fileName="nope.png"
    ) == (
        f"Cannot find a wiki attachment for OwnerID: {owner}, ObjectType: ENTITY, "
        f"WikiPageId: {root['id']}, fileName: nope.png"
    )
    assert alice.error(
        404, "GET", f"/entity/{owner}/wiki2/{root['id']}/attachmentpreview", fileName="fig.png"
    ) == (f"A preview does not exist for file {attachment}")


def test_order_hint(emu: Emulator, alice: Any, bob: Any, project: dict[str, Any]) -> None:
    owner = project["id"]
    root = alice.ok("POST", f"/entity/{owner}/wiki", {"title": "Home", "markdown": "m"})
    sub = alice.ok(
        "POST",
        f"/entity/{owner}/wiki",
        {"title": "Sub", "markdown": "s", "parentWikiId": root["id"]},
    )
    hint = alice.ok("GET", f"/entity/{owner}/wiki2orderhint")
    assert hint["ownerId"] == _num(owner) and hint["ownerObjectType"] == "ENTITY"
    assert "idList" not in hint
    updated = alice.ok(
        "PUT", f"/entity/{owner}/wiki2orderhint", {**hint, "idList": [sub["id"], root["id"]]}
    )
    assert updated["idList"] == [sub["id"], root["id"]]
    assert updated["etag"] != hint["etag"]
    assert alice.ok("GET", f"/entity/{owner}/wiki2orderhint") == updated
    assert alice.error(412, "PUT", f"/entity/{owner}/wiki2orderhint", hint) == _stale(_num(owner))
    grant(alice, owner, [(user_id(emu, "bob"), ["READ"])])
    # Synapse words a refused order-hint update with 'READ' (sic).
    assert bob.error(403, "PUT", f"/entity/{owner}/wiki2orderhint", updated) == _denied(
        "READ", _num(owner)
    )
    # Page writes do not touch the order hint.
    alice.ok("PUT", f"/entity/{owner}/wiki/{sub['id']}", {**sub, "markdown": "s2"})
    assert alice.ok("GET", f"/entity/{owner}/wiki2orderhint")["etag"] == updated["etag"]


def test_permissions(
    emu: Emulator, alice: Any, bob: Any, carol: Any, project: dict[str, Any]
) -> None:
    owner = project["id"]
    root = alice.ok("POST", f"/entity/{owner}/wiki", {"title": "Home", "markdown": "m"})
    folder = alice.folder("f", owner)
    body = {"title": "x", "markdown": "y"}
    assert bob.error(403, "POST", f"/entity/{folder['id']}/wiki", body) == _denied(
        "CREATE", folder["id"]
    )
    assert bob.error(403, "GET", f"/entity/{owner}/wiki2/{root['id']}") == _denied("READ", owner)
    assert bob.error(403, "GET", f"/entity/{owner}/wiki") == _denied("READ", owner)
    assert bob.error(403, "GET", f"/entity/{owner}/wikiheadertree") == _denied("READ", owner)
    assert bob.error(
        403, "GET", f"/entity/{owner}/wiki2/{root['id']}/wikihistory", offset=0, limit=10
    ) == _denied("READ", owner)
    assert bob.error(403, "PUT", f"/entity/{owner}/wiki/{root['id']}", root) == _denied(
        "UPDATE", owner
    )
    assert bob.error(403, "DELETE", f"/entity/{owner}/wiki/{root['id']}") == _denied(
        "DELETE", owner
    )
    anonymous = type(alice)(emu, None)
    assert anonymous.error(403, "POST", f"/entity/{folder['id']}/wiki", body) == _denied(
        "CREATE", folder["id"]
    )
    grant(
        alice,
        owner,
        [(user_id(emu, "bob"), ["READ"]), (user_id(emu, "carol"), ["READ", "CREATE", "UPDATE"])],
    )
    assert bob.ok("GET", f"/entity/{owner}/wiki")["markdown"] == "m"
    assert bob.error(403, "PUT", f"/entity/{owner}/wiki/{root['id']}", root) == _denied(
        "UPDATE", owner
    )
    # Certification: carol (not certified) may write a project's wiki, not a folder's.
    assert carol.error(403, "POST", f"/entity/{folder['id']}/wiki", body) == _denied(
        "CREATE", folder["id"]
    )
    assert (
        carol.ok("PUT", f"/entity/{owner}/wiki/{root['id']}", {**root, "markdown": "carol"})[
            "markdown"
        ]
        == "carol"
    )
    # Denials also cover missing and trashed owners.
    assert alice.error(403, "POST", "/entity/syn999999999/wiki", body) == _denied(
        "CREATE", "syn999999999"
    )
    alice.ok("DELETE", f"/entity/{folder['id']}")
    assert alice.error(403, "POST", f"/entity/{folder['id']}/wiki", body) == _denied(
        "CREATE", folder["id"]
    )


def test_wiki_on_folder_and_file_owners(emu: Emulator, alice: Any, project: dict[str, Any]) -> None:
    folder = alice.folder("docs", project["id"])
    page = alice.ok(
        "POST", f"/entity/{folder['id']}/wiki", {"title": "Folder wiki", "markdown": "f"}
    )
    assert alice.ok("GET", f"/entity/{folder['id']}/wiki")["id"] == page["id"]
    bundle = alice.ok("POST", f"/entity/{folder['id']}/bundle2", {"includeRootWikiId": True})
    assert bundle == {"rootWikiId": page["id"]}
