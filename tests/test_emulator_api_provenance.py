"""Emulator behaviour over HTTP: activities and ``generatedBy`` on entity versions
(synapse-api-2.md §6.6)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from emulator_core_support import grant, make_file_handle, user_id

from synapse_declare.emulator import Emulator

USED_URL = "org.sagebionetworks.repo.model.provenance.UsedURL"
USED_ENTITY = "org.sagebionetworks.repo.model.provenance.UsedEntity"
FILE = "org.sagebionetworks.repo.model.FileEntity"


@pytest.fixture
def anon(emu: Emulator, api_for: Any) -> Any:
    return api_for(emu, None)


def _activity(api: Any, name: str = "analysis", **extra: Any) -> dict[str, Any]:
    body = {
        "name": name,
        "description": "ran the pipeline",
        "used": [
            {"concreteType": USED_URL, "url": "https://example.org/code", "wasExecuted": True}
        ],
        **extra,
    }
    response = api.call("POST", "/activity", body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _file(emu: Emulator, api: Any, parent: str, name: str, **params: Any) -> dict[str, Any]:
    handle = make_file_handle(emu, "alice", content=name.encode(), file_name=name)
    body = {"concreteType": FILE, "name": name, "parentId": parent, "dataFileHandleId": handle}
    return dict(api.ok("POST", "/entity", body, **params))


def test_activity_create_get_update_delete(
    emu: Emulator, alice: Any, bob: Any, anon: Any, project: dict[str, Any]
) -> None:
    created = _activity(alice, id="123")
    assert created["id"] != "123" and created["id"].isdigit()
    assert created["name"] == "analysis" and created["createdBy"] == str(user_id(emu, "alice"))
    assert created["createdOn"] == created["modifiedOn"]
    assert created["used"][0]["url"] == "https://example.org/code"
    assert alice.ok("GET", f"/activity/{created['id']}") == created
    assert bob.error(403, "GET", f"/activity/{created['id']}") == (
        f"User lacks permission to access Activity {created['id']}"
    )
    assert alice.error(404, "GET", "/activity/42") == "Activity with id '42' could not be found."
    assert anon.error(403, "POST", "/activity", {"name": "x"}) == (
        "Cannot create activity with anonymous user."
    )
    changed = alice.ok("PUT", f"/activity/{created['id']}", {**created, "name": "renamed"})
    assert changed["name"] == "renamed" and changed["etag"] != created["etag"]
    assert alice.error(412, "PUT", f"/activity/{created['id']}", {**created, "name": "stale"}) == (
        f"Node: {created['id']} was updated since you last fetched it, retrieve it again and "
        "reapply the update"
    )
    assert bob.error(403, "PUT", f"/activity/{created['id']}", changed) == (
        f"{user_id(emu, 'bob')} lacks change access to the requested object."
    )
    assert bob.error(403, "DELETE", f"/activity/{created['id']}") == (
        f"{user_id(emu, 'bob')} lacks change access to the requested object."
    )
    assert alice.call("DELETE", f"/activity/{created['id']}").status_code == 204
    assert alice.call("DELETE", f"/activity/{created['id']}").status_code == 204
    assert alice.error(404, "GET", f"/activity/{created['id']}") == (
        f"Activity with id '{created['id']}' could not be found."
    )


def test_generated_by_links_versions(
    emu: Emulator, alice: Any, bob: Any, project: dict[str, Any]
) -> None:
    activity = _activity(alice)
    entity = _file(emu, alice, project["id"], "out.txt", generatedBy=activity["id"])
    assert alice.ok("GET", f"/entity/{entity['id']}/generatedBy")["id"] == activity["id"]
    # A new version starts without an activity unless the write names one.
    unlabelled = {k: v for k, v in entity.items() if k != "versionLabel"}
    second = alice.ok(
        "PUT", f"/entity/{entity['id']}", unlabelled, newVersion="true", generatedBy=activity["id"]
    )
    assert alice.ok("GET", f"/entity/{entity['id']}/version/2/generatedBy")["id"] == activity["id"]
    other = _activity(alice, "second step")
    second = {k: v for k, v in second.items() if k != "versionLabel"}
    third = alice.ok(
        "PUT", f"/entity/{entity['id']}", second, newVersion="true", generatedBy=other["id"]
    )
    assert alice.ok("GET", f"/entity/{entity['id']}/generatedBy")["id"] == other["id"]
    assert alice.ok("GET", f"/entity/{entity['id']}/version/1/generatedBy")["id"] == activity["id"]
    fourth = alice.ok(
        "PUT",
        f"/entity/{entity['id']}",
        {k: v for k, v in third.items() if k != "versionLabel"},
        newVersion="true",
    )
    assert fourth["versionNumber"] == 4
    assert alice.error(404, "GET", f"/entity/{entity['id']}/generatedBy") == "No activity"
    refs = alice.ok("GET", f"/activity/{activity['id']}/generated")
    assert refs["results"] == [
        {"targetId": entity["id"], "targetVersionNumber": 1},
        {"targetId": entity["id"], "targetVersionNumber": 2},
    ]
    # Reading one generated entity is enough to read the activity.
    assert bob.error(403, "GET", f"/activity/{activity['id']}") == (
        f"User lacks permission to access Activity {activity['id']}"
    )
    grant(alice, entity["id"], [(user_id(emu, "bob"), ["READ"])])
    assert bob.ok("GET", f"/activity/{activity['id']}")["id"] == activity["id"]
    # Set and clear on the current version; each is an entity write.
    etag = fourth["etag"]
    linked = alice.ok("PUT", f"/entity/{entity['id']}/generatedBy", generatedBy=activity["id"])
    assert linked["id"] == activity["id"]
    now = alice.ok("GET", f"/entity/{entity['id']}")
    assert now["etag"] != etag
    assert alice.call("DELETE", f"/entity/{entity['id']}/generatedBy").status_code == 204
    assert alice.error(404, "GET", f"/entity/{entity['id']}/generatedBy") == "No activity"
    assert alice.ok("GET", f"/entity/{entity['id']}")["etag"] != now["etag"]
    assert alice.error(404, "GET", f"/entity/{entity['id']}/version/9/generatedBy") == (
        f"Cannot find a node with id {entity['id']} and version 9"
    )
    # -1 clears the link in a write.
    latest = alice.ok("PUT", f"/entity/{entity['id']}/generatedBy", generatedBy=other["id"])
    assert latest["id"] == other["id"]
    current = alice.ok("GET", f"/entity/{entity['id']}")
    alice.ok("PUT", f"/entity/{entity['id']}", current, generatedBy="-1")
    assert alice.error(404, "GET", f"/entity/{entity['id']}/generatedBy") == "No activity"


def test_generated_by_needs_an_existing_readable_activity(
    emu: Emulator, alice: Any, bob: Any, project: dict[str, Any]
) -> None:
    grant(alice, project["id"], [(user_id(emu, "bob"), ["READ", "CREATE", "UPDATE"])])
    hers = _activity(alice)
    handle = make_file_handle(emu, "bob", content=b"b", file_name="b.txt")
    body = {
        "concreteType": FILE,
        "name": "b.txt",
        "parentId": project["id"],
        "dataFileHandleId": handle,
    }
    assert bob.error(403, "POST", "/entity", body, generatedBy=hers["id"]) == (
        f"User lacks permission to access Activity {hers['id']}"
    )
    assert bob.error(404, "POST", "/entity", body, generatedBy="77") == (
        "Activity id 77 not found."
    )
    # The refused writes left nothing behind.
    children = bob.ok(
        "POST", "/entity/children", {"parentId": project["id"], "includeTypes": ["file"]}
    )
    assert children["page"] == []
    entity = bob.ok("POST", "/entity", body)
    assert bob.error(403, "PUT", f"/entity/{entity['id']}/generatedBy", generatedBy=hers["id"]) == (
        f"User lacks permission to access Activity {hers['id']}"
    )
    private = alice.project(f"private {uuid.uuid4().hex[:8]}")
    assert bob.error(
        403, "PUT", f"/entity/{private['id']}/generatedBy", generatedBy=hers["id"]
    ) == ("You lack UPDATE access to the requested entity.")


def test_used_entities_get_current_versions_and_urls_must_parse(
    emu: Emulator, alice: Any, project: dict[str, Any]
) -> None:
    target = _file(emu, alice, project["id"], "input.txt")
    unlabelled = {k: v for k, v in target.items() if k != "versionLabel"}
    alice.ok("PUT", f"/entity/{target['id']}", unlabelled, newVersion="true")
    created = _activity(
        alice,
        used=[
            {"concreteType": USED_ENTITY, "reference": {"targetId": target["id"]}},
            {
                "concreteType": USED_ENTITY,
                "reference": {"targetId": target["id"], "targetVersionNumber": 1},
            },
            {"concreteType": USED_URL, "url": "https://example.org/x", "wasExecuted": False},
        ],
    )
    references = [u.get("reference") for u in created["used"]]
    assert references[0] == {"targetId": target["id"], "targetVersionNumber": 2}
    assert references[1] == {"targetId": target["id"], "targetVersionNumber": 1}
    bad = {"name": "x", "used": [{"concreteType": USED_URL, "url": "not a url"}]}
    assert alice.error(400, "POST", "/activity", bad) == (
        "UsedURL url field is malformed: not a url"
    )
    # A non-numeric id matches no activity (MySQL's comparison with a BIGINT column).
    assert alice.error(404, "GET", "/activity/syn999999999") == (
        "Activity with id 'syn999999999' could not be found."
    )
