"""The emulator's trash can against synapse-api-2.md §3.1 (TrashManagerImpl): who may trash,
restore and purge; a trashed parent takes its children; restore into a trashed or missing
parent, to the root, into an STS folder, past access requirements, onto a taken name; the
view's shape and paging; Synapse's error texts and status codes."""

from __future__ import annotations

from typing import Any

from emulator_core_support import grant, uniq, user_id
from test_emulator_storage_support import set_locations, synapse_sts_location

from synapse_declare.emulator import Emulator

ROOT = "syn4489"


def _view(api: Any, **params: Any) -> list[dict[str, Any]]:
    return list(api.ok("GET", "/trashcan/view", **params)["results"])


def _ids(api: Any) -> list[str]:
    return [str(i["entityId"]) for i in _view(api, limit=100)]


def test_trashing_a_parent_takes_its_children_with_one_row(
    emu: Emulator, alice: Any, project: dict[str, Any]
) -> None:
    parent = alice.folder("Parent", project["id"])
    child = alice.folder("Child", parent["id"])
    alice.ok("PUT", f"/trashcan/trash/{parent['id']}")
    assert alice.error(404, "GET", f"/entity/{child['id']}") == (
        f"Entity {child['id']} is in trash can."
    )
    rows = [i for i in _view(alice, limit=100) if i["entityId"] in (parent["id"], child["id"])]
    assert rows == [
        {
            "entityId": parent["id"],
            "entityName": "Parent",
            "entityType": "folder",
            "deletedByPrincipalId": str(user_id(emu, "alice")),
            "deletedOn": rows[0]["deletedOn"],
            "originalParentId": project["id"],
        }
    ]
    # Trashing what is already in the trash (or does not exist) is DELETE's no-op.
    assert alice.call("PUT", f"/trashcan/trash/{parent['id']}").status_code == 200
    assert alice.call("PUT", f"/trashcan/trash/{child['id']}").status_code == 200
    assert alice.call("PUT", "/trashcan/trash/syn999999998").status_code == 200
    alice.ok("PUT", f"/trashcan/restore/{parent['id']}")
    assert alice.ok("GET", f"/entity/{child['id']}")["parentId"] == parent["id"]


def test_trash_needs_delete_permission(alice: Any, bob: Any, project: dict[str, Any]) -> None:
    folder = alice.folder("Mine", project["id"])
    assert bob.error(403, "PUT", f"/trashcan/trash/{folder['id']}")
    assert alice.ok("GET", f"/entity/{folder['id']}")["name"] == "Mine"


def test_only_the_deleter_may_restore_or_purge(
    emu: Emulator, alice: Any, bob: Any, project: dict[str, Any]
) -> None:
    folder = alice.folder("Shared", project["id"])
    grant(alice, project["id"], [(user_id(emu, "bob"), ["READ", "DELETE", "CREATE", "UPDATE"])])
    bob.ok("PUT", f"/trashcan/trash/{folder['id']}")
    assert folder["id"] not in _ids(alice)
    alice_id = user_id(emu, "alice")
    assert alice.error(403, "PUT", f"/trashcan/restore/{folder['id']}") == (
        f"User {alice_id} not allowed to restore {folder['id']}. The node was deleted by a "
        "different user."
    )
    assert alice.error(403, "PUT", f"/trashcan/purge/{folder['id']}") == (
        f"Insufficient permissions for user {alice_id}"
    )
    bob.ok("PUT", f"/trashcan/restore/{folder['id']}")
    assert alice.ok("GET", f"/entity/{folder['id']}")["name"] == "Shared"


def test_restore_of_what_is_not_in_the_trash_is_404(alice: Any, project: dict[str, Any]) -> None:
    folder = alice.folder("Here", project["id"])
    assert alice.error(404, "PUT", f"/trashcan/restore/{folder['id']}") == (
        f"The node {folder['id']} is not in the trash can."
    )


def test_restore_into_a_trashed_or_missing_parent_is_403(
    alice: Any, project: dict[str, Any]
) -> None:
    parent = alice.folder("Parent", project["id"])
    child = alice.folder("Child", parent["id"])
    alice.ok("PUT", f"/trashcan/trash/{child['id']}")
    alice.ok("PUT", f"/trashcan/trash/{parent['id']}")
    assert alice.error(403, "PUT", f"/trashcan/restore/{child['id']}") == (
        f"The intended parent {parent['id']} is in the trash can and cannot be restored to."
    )
    alice.ok("PUT", f"/trashcan/purge/{parent['id']}")  # the original parent is gone now
    assert alice.error(403, "PUT", f"/trashcan/restore/{child['id']}") == (
        f"The intended parent {parent['id']} is in the trash can and cannot be restored to."
    )
    # Restored elsewhere, it comes back with its name.
    alice.ok("PUT", f"/trashcan/restore/{child['id']}/{project['id']}")
    restored = alice.ok("GET", f"/entity/{child['id']}")
    assert (restored["name"], restored["parentId"]) == ("Child", project["id"])


def test_restore_onto_a_taken_name_is_409_and_keeps_the_row(
    alice: Any, project: dict[str, Any]
) -> None:
    folder = alice.folder("Name", project["id"])
    alice.ok("PUT", f"/trashcan/trash/{folder['id']}")
    alice.folder("Name", project["id"])
    assert alice.error(409, "PUT", f"/trashcan/restore/{folder['id']}") == (
        f"An entity with the name: Name already exists with a parentId: {project['id']}"
    )
    assert folder["id"] in _ids(alice)


def test_only_projects_are_restored_to_the_root(alice: Any, project: dict[str, Any]) -> None:
    folder = alice.folder("Leaf", project["id"])
    alice.ok("PUT", f"/trashcan/trash/{folder['id']}")
    assert alice.error(400, "PUT", f"/trashcan/restore/{folder['id']}/{ROOT}") == (
        "Ony projects can be restored to root"
    )
    other = alice.project(uniq("Trashed project"))
    alice.ok("PUT", f"/trashcan/trash/{other['id']}")
    alice.ok("PUT", f"/trashcan/restore/{other['id']}")
    acl = alice.ok("GET", f"/entity/{other['id']}/acl")
    assert [e["principalId"] for e in acl["resourceAccess"]] == [int(other["createdBy"])]


def test_an_uncertified_user_cannot_restore_even_a_project(carol: Any) -> None:
    own = carol.project(uniq("Carol's"))
    carol.ok("PUT", f"/trashcan/trash/{own['id']}")
    assert carol.error(403, "PUT", f"/trashcan/restore/{own['id']}") == (
        "Only certified users may create or update content in Synapse."
    )


def test_restore_elsewhere_keeps_access_requirements(alice: Any, project: dict[str, Any]) -> None:
    restricted = alice.folder("Restricted", project["id"])
    open_folder = alice.folder("Open", project["id"])
    inner = alice.folder("Inner", restricted["id"])
    terms = uniq("Terms")[:40]
    alice.ok(
        "POST",
        "/emulator/v1/accessRequirements",
        {"access_requirements": [{"name": terms, "subjects": [restricted["id"]]}]},
    )
    alice.ok("PUT", f"/trashcan/trash/{inner['id']}")
    assert alice.error(403, "PUT", f"/trashcan/restore/{inner['id']}/{open_folder['id']}") == (
        "Cannot move restricted entity to a location having fewer access restrictions."
    )
    alice.ok("PUT", f"/trashcan/restore/{inner['id']}")  # back where it was: no check


def test_restore_into_an_sts_folder_only_to_the_original_parent(
    alice: Any, project: dict[str, Any]
) -> None:
    sts = alice.folder("STS", project["id"])
    set_locations(alice, sts["id"], [int(synapse_sts_location(alice)["storageLocationId"])])
    loose = alice.folder("Loose", project["id"])
    alice.ok("PUT", f"/trashcan/trash/{loose['id']}")
    assert alice.error(400, "PUT", f"/trashcan/restore/{loose['id']}/{sts['id']}") == (
        "Entities can be restored to STS-enabled folders only if that were its original parent"
    )


def test_purge_removes_for_good_and_is_a_noop_when_not_in_the_trash(
    alice: Any, project: dict[str, Any]
) -> None:
    folder = alice.folder("Purged", project["id"])
    child = alice.folder("Inside", folder["id"])
    assert alice.call("PUT", f"/trashcan/purge/{folder['id']}").status_code == 200  # not trashed
    assert alice.ok("GET", f"/entity/{folder['id']}")["name"] == "Purged"
    alice.ok("PUT", f"/trashcan/trash/{folder['id']}")
    alice.ok("PUT", f"/trashcan/purge/{folder['id']}")
    assert folder["id"] not in _ids(alice)
    for gone in (folder, child):
        assert alice.error(404, "GET", f"/entity/{gone['id']}") == (
            f"Resource: '{gone['id']}' does not exist"
        )
    assert alice.error(404, "PUT", f"/trashcan/restore/{folder['id']}") == (
        f"The node {folder['id']} is not in the trash can."
    )
    assert alice.call("PUT", f"/trashcan/purge/{folder['id']}").status_code == 200  # again


def test_priority_purge_on_trash_is_never_listed_or_restorable(
    alice: Any, project: dict[str, Any]
) -> None:
    folder = alice.folder("Urgent", project["id"])
    alice.ok("PUT", f"/trashcan/trash/{folder['id']}", priorityPurge="true")
    assert folder["id"] not in _ids(alice)
    assert alice.error(404, "PUT", f"/trashcan/restore/{folder['id']}")


def test_view_is_newest_first_with_synapse_paging(alice: Any, project: dict[str, Any]) -> None:
    made = [alice.folder(f"Paged {n}", project["id"]) for n in range(3)]
    for folder in made:
        alice.ok("PUT", f"/trashcan/trash/{folder['id']}")
    mine = [i for i in _ids(alice) if i in {f["id"] for f in made}]
    assert mine == [f["id"] for f in reversed(made)]
    page = alice.ok("GET", "/trashcan/view", offset=0, limit=1)
    assert len(page["results"]) == 1 and page["totalNumberOfResults"] == 2  # estimated
    assert alice.ok("GET", "/trashcan/view", limit=0)["results"] == []
    assert alice.error(400, "GET", "/trashcan/view", offset=-1) == (
        "pagination offset must be 0 or greater"
    )
    assert alice.error(400, "GET", "/trashcan/view", limit=-1) == (
        "pagination limit must be 0 or greater"
    )
