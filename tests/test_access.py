"""``synapse-declare access``: effective access per entity and principal, read-only.

Every test builds a small tree in the emulator over HTTP (ACLs set as alice, the creator) and
runs the real CLI against it::

    P (own ACL: alice admin, team Curators edit)
    ├── Raw (own ACL: alice admin, team Lab Admins view, bob view; an access requirement)
    │   └── Sub (inherits from Raw)
    ├── Releases (own ACL: alice admin, PUBLIC view, AUTHENTICATED_USERS download)
    │   └── data.txt (a file, inherits from Releases)
    └── Docs (inherits from P)
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import Api, read_exchanges
from emulator_core_support import ADMIN_SET, FILE, make_file_handle, uniq, user_id
from reconcile_support import Workspace, log_window, mutating_exchanges

from synapse_declare.emulator import Emulator, SeedAccessRequirement

PUBLIC, AUTHENTICATED = 273949, 273948
EDIT = ["CREATE", "READ", "DOWNLOAD", "UPDATE"]


@pytest.fixture
def ws(emu: Emulator, tmp_path: Path) -> Workspace:
    return Workspace(emu, tmp_path / "ws")


def set_acl(api: Api, entity_id: str, entries: dict[int, list[str]]) -> None:
    body = [{"principalId": p, "accessType": a} for p, a in entries.items()]
    current = api.call("GET", f"/entity/{entity_id}/acl")
    if current.status_code == 200:
        acl = current.json()
        api.ok("PUT", f"/entity/{entity_id}/acl", {**acl, "resourceAccess": body})
    else:
        api.ok("POST", f"/entity/{entity_id}/acl", {"resourceAccess": body})


@pytest.fixture
def tree(emu: Emulator, alice: Api) -> dict[str, Any]:
    ids = emu.principal_ids
    me = user_id(emu, "alice")
    admin = sorted(ADMIN_SET)
    project = alice.project(uniq("Access"))
    set_acl(alice, project["id"], {me: admin, ids["Curators"]: EDIT})
    raw = alice.folder("Raw", project["id"])
    set_acl(alice, raw["id"], {me: admin, ids["Lab Admins"]: ["READ"], ids["bob"]: ["READ"]})
    sub = alice.folder("Sub", raw["id"])
    releases = alice.folder("Releases", project["id"])
    set_acl(
        alice,
        releases["id"],
        {me: admin, PUBLIC: ["READ"], AUTHENTICATED: ["READ", "DOWNLOAD"]},
    )
    handle = make_file_handle(emu, "alice")
    data = alice.ok(
        "POST",
        "/entity",
        {
            "concreteType": FILE,
            "name": "data.txt",
            "parentId": releases["id"],
            "dataFileHandleId": handle,
        },
    )
    docs = alice.folder("Docs", project["id"])
    terms = uniq("Terms")
    alice.ok(
        "POST",
        "/emulator/v1/accessRequirements",
        {"access_requirements": [{"name": terms, "subjects": [raw["id"]], "termsOfUse": "t"}]},
    )
    return {
        "project": project,
        "raw": raw,
        "sub": sub,
        "releases": releases,
        "data": data,
        "docs": docs,
        "terms": terms,
    }


def run_json(ws: Workspace, *args: str) -> dict[str, Any]:
    result = ws.run("access", *args, "--format", "json", *ws.connection("alice"))
    assert result.code == 0, result.err
    return dict(json.loads(result.out))


def rows_by(document: dict[str, Any], principal: str) -> dict[str, dict[str, Any]]:
    return {r["path"].split("/", 1)[-1]: r for r in document["rows"] if r["principal"] == principal}


def test_every_entity_and_principal_with_the_grant_it_comes_from(
    ws: Workspace, tree: dict[str, Any]
) -> None:
    name = tree["project"]["name"]
    document = run_json(ws, name)
    paths = [e["path"] for e in document["entities"]]
    assert paths == [
        name,
        f"{name}/Docs",
        f"{name}/Raw",
        f"{name}/Raw/Sub",
        f"{name}/Releases",
        f"{name}/Releases/data.txt",
    ]
    bob = rows_by(document, "user:bob")
    # bob is a Curator: edit on the project and on Docs, which inherits from it.
    assert bob[name]["accessTypes"] == ["READ", "DOWNLOAD", "CREATE", "UPDATE"]
    assert [g["via"] for g in bob[name]["grants"]] == ["team:Curators"]
    assert bob["Docs"]["grants"][0]["benefactorId"] == tree["project"]["id"]
    assert (bob["Docs"]["canEdit"], bob["Docs"]["canDelete"]) == (True, False)
    # On Raw only his own entry counts (Curators are not in Raw's ACL); Sub inherits it.
    assert bob["Raw"]["accessTypes"] == ["READ"]
    assert bob["Raw"]["grants"][0]["via"] == "own entry"
    assert bob["Raw/Sub"]["benefactorId"] == tree["raw"]["id"]
    assert bob["Raw/Sub"]["canDownload"] is False
    # Releases names neither bob nor his teams: the AUTHENTICATED_USERS row stands for every
    # signed-in user (its download plus PUBLIC's read); --user gives one person's full picture.
    assert "Releases" not in bob
    everyone = rows_by(document, "AUTHENTICATED_USERS")["Releases"]
    assert everyone["accessTypes"] == ["READ", "DOWNLOAD"]
    assert {g["via"] for g in everyone["grants"]} == {"own entry", "PUBLIC"}
    public = rows_by(document, "PUBLIC")
    assert set(public) == {"Releases", "Releases/data.txt"}
    assert public["Releases/data.txt"]["canView"] is True
    assert public["Releases/data.txt"]["canDownload"] is False  # anonymous: READ only
    curators = rows_by(document, "team:Curators")
    assert set(curators) == {name, "Docs"}
    # The access requirement on Raw is listed beside Raw and Sub (it binds downward).
    gated = {e["path"]: e["accessRequirements"] for e in document["entities"]}
    assert [r["name"] for r in gated[f"{name}/Raw/Sub"]] == [tree["terms"]]
    assert gated[f"{name}/Docs"] == []
    # The fewest calls: one listing per container, one ACL read per benefactor.
    calls = document["calls"]
    assert calls["childrenListings"] == 5  # P, Docs, Raw, Releases, Sub
    assert calls["aclReads"] == 3  # P, Raw, Releases
    assert calls["teamMemberReads"] == 2  # Curators, Lab Admins


def test_unmet_requirements_gate_download_and_the_callers_approvals_are_read(
    ws: Workspace, emu: Emulator, alice: Api, tree: dict[str, Any]
) -> None:
    """Raw's requirement is unmet for everyone: alice (admin) may not download there, and the
    report says so from her own status; bob's and the groups' approvals cannot be read, so their
    DOWNLOAD under Raw is reported as gated. Once alice is approved her rows say she can."""
    ids = emu.principal_ids
    name = tree["project"]["name"]
    set_acl(
        alice,
        tree["raw"]["id"],
        {user_id(emu, "alice"): sorted(ADMIN_SET), ids["bob"]: ["READ", "DOWNLOAD"]},
    )
    document = run_json(ws, name)
    (requirement,) = [r["id"] for r in document["entities"][2]["accessRequirements"]]
    mine = rows_by(document, "user:alice")
    assert (mine["Raw"]["canDownload"], mine["Raw"]["downloadGatedBy"]) == (False, [requirement])
    assert mine["Docs"]["canDownload"] is True  # no requirement there
    bob = rows_by(document, "user:bob")
    assert (bob["Raw/Sub"]["canDownload"], bob["Raw/Sub"]["downloadGatedBy"]) == (
        False,
        [requirement],
    )
    # The emulator agrees for the caller (the oracle the property test uses for everyone).
    oracle = alice.ok("GET", f"/entity/{tree['raw']['id']}/permissions")
    assert oracle["canDownload"] is False
    text = ws.run("access", name, *ws.connection("alice"))
    assert f"download gated by access requirement {requirement} (not approved)" in text.out
    assert "approvals are readable only by the user themselves" in text.out
    # Approving alice (seeding the same requirement again adds the approval).
    emu.add_access_requirements(
        [SeedAccessRequirement(tree["terms"], (tree["raw"]["id"],), approved=("alice",))]
    )
    after = rows_by(run_json(ws, name), "user:alice")
    assert (after["Raw"]["canDownload"], after["Raw"]["downloadGatedBy"]) == (True, [])
    assert alice.ok("GET", f"/entity/{tree['raw']['id']}/permissions")["canDownload"] is True
    assert rows_by(run_json(ws, name), "user:bob")["Raw"]["canDownload"] is False


def test_user_focus_includes_grants_that_never_name_them(
    ws: Workspace, tree: dict[str, Any]
) -> None:
    """carol is in no ACL and no team: she reaches Releases through AUTHENTICATED_USERS, and
    being uncertified changes nothing there (view and download need no certification)."""
    document = run_json(ws, tree["project"]["name"], "--user", "carol")
    assert document["principal"] == "user:carol"
    carol = rows_by(document, "user:carol")
    assert set(carol) == {"Releases", "Releases/data.txt"}
    assert carol["Releases"]["canDownload"] is True
    assert carol["Releases"]["canEdit"] is False
    text = ws.run("access", tree["project"]["name"], "--user", "carol", *ws.connection())
    assert text.code == 0, text.err
    assert "user:carol reaches 2 of 6 entities" in text.out
    assert "via AUTHENTICATED_USERS (READ DOWNLOAD)" in text.out


def test_nested_and_repeated_targets_are_read_once(ws: Workspace, tree: dict[str, Any]) -> None:
    name = tree["project"]["name"]
    alone = run_json(ws, name)
    nested = run_json(ws, f"{name}/Raw", name, tree["project"]["id"])
    assert nested["entities"] == alone["entities"]
    assert nested["rows"] == alone["rows"]


def test_team_focus_and_folder_path_target(ws: Workspace, tree: dict[str, Any]) -> None:
    name = tree["project"]["name"]
    document = run_json(ws, f"{name}/Raw", "--team", "lab admins")
    assert document["principal"] == "team:Lab Admins"
    assert [r["path"] for r in document["rows"]] == [f"{name}/Raw", f"{name}/Raw/Sub"]
    assert document["teams"] == [
        {"id": document["rows"][0]["principalId"], "name": "Lab Admins", "members": ["alice"]}
    ]
    # A folder target inherits from outside the tree: its benefactor's ACL is read once.
    inherited = run_json(ws, f"{name}/Docs")
    assert inherited["calls"]["aclReads"] == 1
    assert rows_by(inherited, "team:Curators")["Docs"]["grants"][0]["benefactorPath"] == name


def test_csv_and_markdown_are_the_review_export(ws: Workspace, tree: dict[str, Any]) -> None:
    name = tree["project"]["name"]
    result = ws.run("access", name, "--format", "csv", *ws.connection())
    assert result.code == 0, result.err
    rows = list(csv.DictReader(io.StringIO(result.out)))
    # Review scope: the project, its top-level folders and entities with their own ACL.
    assert {r["path"] for r in rows} == {name, f"{name}/Raw", f"{name}/Releases", f"{name}/Docs"}
    curators = next(r for r in rows if r["principal"] == "team:Curators" and r["path"] == name)
    assert curators["team_members"] == "alice; bob"
    assert curators["level"] == "edit"
    assert curators["canEdit"] == "yes"
    raw = next(r for r in rows if r["path"] == f"{name}/Raw" and r["principal"] == "user:bob")
    assert raw["access_requirements"].endswith(tree["terms"])
    everything = ws.run("access", name, "--format", "csv", "--scope", "all", *ws.connection())
    assert f"{name}/Raw/Sub" in everything.out
    markdown = ws.run("access", name, "--format", "markdown", *ws.connection())
    assert markdown.code == 0, markdown.err
    assert markdown.out.startswith(f"# Access review: {name}\n")
    assert "## Team members" in markdown.out
    assert "- **Curators**" in markdown.out and "alice, bob" in markdown.out
    assert "Download gated by access requirement" in markdown.out


def test_manifest_targets_name_every_declared_project(ws: Workspace, tree: dict[str, Any]) -> None:
    name = tree["project"]["name"]
    manifest = ws.manifest(f"version: 1\nprojects:\n  - name: {name}\n")
    document = run_json(ws, str(manifest), "--team", "Curators")
    assert document["targets"] == [name]
    assert len(document["rows"]) == 2
    missing = ws.manifest("version: 1\nprojects:\n  - name: Not There Yet\n", "missing.yaml")
    result = ws.run("access", missing, *ws.connection())
    assert result.code == 1
    assert f"{missing}:3:" in result.err
    assert "no entity named 'Not There Yet'" in result.err


def test_unknown_targets_users_and_teams_are_clear_errors(
    ws: Workspace, tree: dict[str, Any]
) -> None:
    name = tree["project"]["name"]
    cases = {
        ("No Such Project",): "access target 'No Such Project': no entity named",
        (f"{name}/Nope",): f"no entity named 'Nope' in {name}",
        ("syn999999999",): "syn999999999 does not exist",
        (name, "--user", "zed"): "--user 'zed': no Synapse user of that name",
        (name, "--team", "Cur"): "--team 'Cur': no team of exactly that name",
        (name, "--team", "Zebras"): "--team 'Zebras': no Synapse team of that name",
        (name, "--user", "x", "--team", "y"): "not allowed with argument",
        ("nothing.yaml",): "nothing.yaml: no such manifest file",
    }
    for args, message in cases.items():
        result = ws.run("access", *args, *ws.connection())
        assert result.code == 1, (args, result.err)
        assert message in result.err, (args, result.err)
        assert "Traceback" not in result.err
    assert (
        "did you mean 'Curators'" in ws.run("access", name, "--team", "Cur", *ws.connection()).err
    )


def test_read_only_and_no_secrets(ws: Workspace, emu: Emulator, tree: dict[str, Any]) -> None:
    before = emu.state_version()
    with log_window(emu) as window:
        for fmt in ("text", "json", "csv", "markdown"):
            result = ws.run("access", tree["project"]["name"], "--format", fmt, *ws.connection())
            assert result.code == 0, result.err
            assert emu.users["alice"] not in result.both
    assert emu.state_version() == before
    assert window and not mutating_exchanges(window)
    assert read_exchanges(emu)  # the log the window came from is the emulator's own


def test_no_requirements_skips_the_per_entity_listing(ws: Workspace, tree: dict[str, Any]) -> None:
    document = run_json(ws, tree["project"]["name"], "--no-requirements")
    assert document["calls"]["accessRequirementReads"] == 0
    assert all(e["accessRequirements"] == [] for e in document["entities"])


def test_the_example_reviews_a_team_based_project(make_emulator: Any, tmp_path: Path) -> None:
    """examples/access: applied, then cleo (uncertified) holds Center B's edit grant there but
    cannot edit; ben reaches his center's folders and the releases, nothing of Center B."""
    example = Path(__file__).resolve().parent.parent / "examples" / "access"
    emulator = make_emulator(users=None, teams=(), users_file=example / "emulator-users.txt")
    ws = Workspace(emulator, tmp_path / "example")
    applied = ws.run(
        "apply", example / "access.yaml", "--auto-approve", *ws.connection("dcc-admin")
    )
    assert applied.code == 0, applied.err
    connection = ws.connection("dcc-admin")
    cleo = ws.run(
        "access", example / "access.yaml", "--user", "cleo", "--format", "json", *connection
    )
    assert cleo.code == 0, cleo.err
    rows = {r["path"]: r for r in json.loads(cleo.out)["rows"]}
    center_b = rows["Access review example/Center B"]
    assert center_b["level"] == "edit" and center_b["canEdit"] is False
    assert center_b["grants"][0]["principal"] == "team:Center B"
    ben = ws.run(
        "access", "Access review example", "--user", "ben", "--format", "json", *connection
    )
    reached = {r["path"].removeprefix("Access review example") for r in json.loads(ben.out)["rows"]}
    assert reached == {
        "",
        "/Center A",
        "/Center A/Raw",
        "/Center A/Processed",
        "/Releases",
        "/Releases/2024-05",
    }
    review = ws.run("access", example / "access.yaml", "--format", "markdown", *connection)
    assert "- **Center A** (" in review.out and "ana, ben, dcc-admin" in review.out


def test_a_reviewer_sees_only_what_they_can_read(
    ws: Workspace, emu: Emulator, alice: Api, tree: dict[str, Any]
) -> None:
    """Synapse lists only readable children: bob's review leaves out a folder closed to him,
    and says nothing false about the rest (his rows equal alice's view of him)."""
    private = alice.folder("Private", tree["project"]["id"])
    set_acl(alice, private["id"], {user_id(emu, "alice"): sorted(ADMIN_SET)})
    name = tree["project"]["name"]
    as_bob = ws.run("access", name, "--user", "bob", "--format", "json", *ws.connection("bob"))
    assert as_bob.code == 0, as_bob.err
    bob_view = json.loads(as_bob.out)
    assert f"{name}/Private" not in [e["path"] for e in bob_view["entities"]]
    assert f"{name}/Private" in [e["path"] for e in run_json(ws, name)["entities"]]
    assert bob_view["rows"] == run_json(ws, name, "--user", "bob")["rows"]
