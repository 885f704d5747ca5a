"""Issue 8 through the real CLI against the emulator over HTTP: operator-independent manifests,
readable ACL changes and public-access warnings, errors at their cause, and the smaller things a
user hit (EOF at the prompt, stale-plan summaries, `apply --plan` from anywhere, a non-Synapse
endpoint).
"""

from __future__ import annotations

import http.server
import io
import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Api
from reconcile_support import PUBLIC, Workspace, lookup, own_acl

from synapse_declare.emulator import Emulator

AUTHENTICATED = 273948


@pytest.fixture
def ws(emu: Emulator, tmp_path: Path) -> Workspace:
    return Workspace(emu, tmp_path)


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


def set_acl(api: Api, entity_id: str, entries: dict[int, list[str]]) -> None:
    """Give ``entity_id`` its own ACL (or replace it) through raw REST, as a person would."""
    body = {
        "id": entity_id,
        "resourceAccess": [{"principalId": p, "accessType": a} for p, a in entries.items()],
    }
    current = api.call("GET", f"/entity/{entity_id}/acl")
    if current.status_code == 200 and current.json().get("id") == entity_id:
        body["etag"] = current.json()["etag"]
        api.ok("PUT", f"/entity/{entity_id}/acl", body)
    else:
        api.ok("POST", f"/entity/{entity_id}/acl", body)


# ---------------------------------------------------------------------------------------------
# Operator-independent manifests


def test_two_operators_with_full_rights_both_plan_empty(
    ws: Workspace, emu: Emulator, api_for: Any
) -> None:
    name = unique("H two operators")
    manifest_text = f"""
        version: 1
        projects:
          - name: {name}
            acl:
              self: administer
              user:bob: administer
              team:Curators: view
            folders:
              - name: Shared
                acl:
                  self: administer
                  user:bob: administer
                  AUTHENTICATED_USERS: view
              - name: Plain
        """
    manifest = ws.manifest(manifest_text)
    assert ws.apply(manifest).code == 0
    for user in ("alice", "bob"):
        result = ws.plan(manifest, "--detailed-exitcode", user=user)
        assert result.code == 0, (user, result.both)
        assert "No changes" in result.out
    version = emu.state_version()
    assert ws.apply(manifest, user="bob").code == 0
    assert emu.state_version() == version  # bob's apply of alice's manifest changes nothing

    # `self` is each entity's creator: a folder bob adds is bob's, and alice agrees.
    grown = ws.manifest(
        manifest_text
        + """
              - name: Bob's
                acl:
                  self: administer
                  user:alice: administer
        """,
        "grown.yaml",
    )
    assert ws.apply(grown, user="bob").code == 0
    api = api_for(emu, "alice")
    project = lookup(api, name)
    assert project is not None
    bobs = lookup(api, "Bob's", project)
    assert bobs is not None
    acl = own_acl(api, bobs)
    assert acl is not None and set(acl) == {emu.principal_ids["bob"], emu.principal_ids["alice"]}
    for user in ("alice", "bob"):
        result = ws.plan(grown, "--detailed-exitcode", user=user)
        assert result.code == 0, (user, result.both)


def test_the_lockout_guard_protects_whoever_runs_it(ws: Workspace, emu: Emulator) -> None:
    name = unique("H lockout")
    first = ws.manifest(
        f"version: 1\nprojects:\n  - name: {name}\n    acl:\n      self: administer\n"
        "      user:bob: administer\n"
    )
    assert ws.apply(first).code == 0
    # Without bob's entry, bob (not the creator) would lose the rights to manage it.
    narrowed = ws.manifest(
        f"version: 1\nprojects:\n  - name: {name}\n    acl:\n      self: administer\n",
        "narrowed.yaml",
    )
    version = emu.state_version()
    result = ws.apply(narrowed, user="bob")
    assert result.code == 1
    assert "this ACL would leave you (bob) without" in result.err
    assert "narrowed.yaml:5:" in result.err
    assert emu.state_version() == version
    # alice, the creator (`self`), may narrow it.
    assert ws.plan(narrowed, "--detailed-exitcode").code == 2


# ---------------------------------------------------------------------------------------------
# Readable ACL changes


def test_acl_changes_are_per_principal_with_names_and_public_grants_come_first(
    ws: Workspace, emu: Emulator, api_for: Any
) -> None:
    name = unique("H acl lines")
    before = ws.manifest(
        f"""
        version: 1
        projects:
          - name: {name}
            acl:
              self: administer
              user:bob: view
              AUTHENTICATED_USERS: view
        """
    )
    assert ws.apply(before).code == 0
    api = api_for(emu, "alice")
    project = lookup(api, name)
    assert project is not None
    live = own_acl(api, project)
    assert live is not None
    live[emu.principal_ids["carol"]] = frozenset({"READ"})  # granted by hand
    set_acl(api, project, {p: sorted(a) for p, a in live.items()})

    after = ws.manifest(
        f"""
        version: 1
        projects:
          - name: {name}
            acl:
              self: administer
              team:Curators: edit
              AUTHENTICATED_USERS: download
        """,
        "after.yaml",
    )
    text = ws.plan(after)
    assert text.code == 0, text.err
    lines = text.out.splitlines()
    acl_lines = lines[lines.index("      acl:") + 1 :][:4]
    assert acl_lines == [
        "        ~ AUTHENTICATED_USERS: view → download",
        "        + team:Curators: edit",
        "        - user:bob",
        "        - user:carol",  # a principal the manifest never named, shown by name
    ]
    warning = lines.index("WARNING: access for everyone (PUBLIC / AUTHENTICATED_USERS):")
    first_change = next(i for i, line in enumerate(lines) if line.startswith("  ~ project"))
    assert warning < first_change
    assert "this plan grants AUTHENTICATED_USERS download" in lines[warning + 1]
    assert str(emu.principal_ids["carol"]) not in text.out

    document = ws.plan_json(after)
    assert len(document["public_access"]) == 1
    assert "AUTHENTICATED_USERS download" in document["public_access"][0]
    change = next(c for c in document["changes"] if c["address"] == f"project:{name}")
    assert {"path": "acl.user:carol", "before": "view", "after": None} in change["fields"]

    markdown = ws.plan(after, "--format", "markdown").out.splitlines()
    assert markdown[3] == "> [!WARNING]"  # right under the heading
    assert "AUTHENTICATED_USERS download" in markdown[5]
    assert any("acl `~ AUTHENTICATED_USERS: view → download`" in line for line in markdown)


def test_out_of_band_public_grants_on_unmanaged_acls_are_reported(
    ws: Workspace, emu: Emulator, api_for: Any
) -> None:
    name = unique("H exposure")
    manifest = ws.manifest(
        f"""
        version: 1
        projects:
          - name: {name}
            folders:
              - name: Hand
              - name: Quiet
        """
    )
    assert ws.apply(manifest).code == 0
    api = api_for(emu, "alice")
    project = lookup(api, name)
    assert project is not None
    hand = lookup(api, "Hand", project)
    assert hand is not None
    extra = api.folder("Extra", project)["id"]
    alice = emu.principal_ids["alice"]
    set_acl(api, hand, {alice: ["READ", "CHANGE_PERMISSIONS"], PUBLIC: ["READ"]})
    set_acl(api, extra, {alice: ["READ", "CHANGE_PERMISSIONS"], AUTHENTICATED: ["READ"]})

    saved = ws.root / "plan.json"
    result = ws.plan(manifest, "--detailed-exitcode", "--out", saved)
    assert result.code == 0, result.both  # nothing to change: the ACLs are not managed
    assert f"{name}/Hand ({hand}): PUBLIC has view — set outside this manifest" in result.out
    assert f"{name}/Extra ({extra}): AUTHENTICATED_USERS has view" in result.out
    assert "Quiet" not in result.out.split("Plan:")[0]
    document = ws.plan_json(manifest)
    assert len(document["public_access"]) == 2
    # The ACLs read for the report are guarded like everything else the plan read.
    assert f"acl:{extra}" in document["observed"]
    set_acl(api, extra, {alice: ["READ", "CHANGE_PERMISSIONS"]})
    stale = ws.run("apply", "--plan", saved, *ws.connection())
    assert stale.code == 1
    assert f"acl:{extra} changed since the plan was made" in stale.err


# ---------------------------------------------------------------------------------------------
# Errors at their cause


def test_every_bad_principal_is_reported_at_its_own_line_in_one_run(
    ws: Workspace, emu: Emulator
) -> None:
    path = ws.manifest(
        f"""
        version: 1
        projects:
          - name: {unique("H principals")}
            acl:
              self: administer
              user:alise: view
              team:Curatorz: view
            folders:
              - name: F
                acl:
                  self: administer
                  user:alise: download
                  "99999999": view
        """,
        "who.yaml",
    )
    version = emu.state_version()
    result = ws.plan(path)
    assert result.code == 1
    errors = [
        line for line in result.err.splitlines() if line.startswith("error: ") or ": " in line
    ]
    text = result.err
    assert f"{path}:6:7: user:alise does not exist" in text
    assert f"{path}:7:7: team:Curatorz does not exist" in text
    assert f"{path}:12:11: user:alise does not exist" in text
    assert f"{path}:13:11: principal id 99999999 does not exist" in text
    assert text.count("did you mean user:alice?") == 2
    assert "did you mean team:Curators?" in text
    assert errors
    assert emu.state_version() == version
    as_json = ws.plan(path, "--json")
    diagnostics = [json.loads(line) for line in as_json.err.splitlines()]
    assert [(d["line"], d["column"]) for d in diagnostics] == [(6, 7), (7, 7), (12, 11), (13, 11)]


class _NotSynapse(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<html><body>Not Found</body></html>"
        self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        del format, args


@pytest.fixture
def not_synapse() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotSynapse)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_endpoint_that_is_not_synapse_says_so(ws: Workspace, not_synapse: str) -> None:
    path = ws.manifest("version: 1\nprojects:\n  - name: P\n")
    result = ws.run("plan", path, *ws.connection(endpoint=not_synapse))
    assert result.code == 1
    assert f"{not_synapse}/repo/v1 does not answer like Synapse's REST API" in result.err
    assert "--endpoint takes the server root" in result.err
    sts = ws.run("sts", "P/F", *ws.connection(endpoint=not_synapse))
    assert sts.code == 1 and sts.out == ""
    assert "does not answer like Synapse's REST API" in sts.err


# ---------------------------------------------------------------------------------------------
# Smaller things


class _Terminal(io.StringIO):
    """A terminal whose user pressed Ctrl-D at the prompt."""

    def isatty(self) -> bool:
        return True


def test_eof_at_the_approval_prompt_is_not_approved(ws: Workspace, emu: Emulator) -> None:
    path = ws.manifest(f"version: 1\nprojects:\n  - name: {unique('H eof')}\n")
    version = emu.state_version()
    result = ws.run("apply", path, *ws.connection(), stdin=_Terminal(""))
    assert result.code == 1, result.both
    assert "Apply cancelled; nothing was changed." in result.err
    assert "bug" not in result.err
    assert emu.state_version() == version


def test_a_stale_plan_refusal_is_summarised(ws: Workspace, emu: Emulator, api_for: Any) -> None:
    name = unique("H stale")
    folders = "".join(
        f"      - name: F{i}\n        annotations: {{stage: raw}}\n" for i in range(8)
    )
    path = ws.manifest(f"version: 1\nprojects:\n  - name: {name}\n    folders:\n{folders}")
    assert ws.apply(path).code == 0
    saved = ws.root / "plan.json"
    # A change so that the saved plan is applyable, then drift on every folder.
    changed = ws.manifest(
        f"version: 1\nprojects:\n  - name: {name}\n    description: new\n    folders:\n{folders}",
        "changed.yaml",
    )
    assert ws.plan(changed, "--out", saved).code == 0
    api = api_for(emu, "alice")
    project = lookup(api, name)
    assert project is not None
    for i in range(8):
        folder = lookup(api, f"F{i}", project)
        current = api.ok("GET", f"/entity/{folder}/annotations2")
        current["annotations"]["note"] = {"type": "STRING", "value": ["drift"]}
        api.ok("PUT", f"/entity/{folder}/annotations2", current)
    version = emu.state_version()
    result = ws.run("apply", "--plan", saved, *ws.connection())
    assert result.code == 1
    assert "the saved plan is stale (8 differences from Synapse now); nothing was changed" in (
        result.err
    )
    assert result.err.count(" changed since the plan was made") == 5
    assert "… and 3 more" in result.err
    assert emu.state_version() == version


def test_apply_plan_works_from_any_directory(
    ws: Workspace, emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project_dir = ws.root / "repo"
    (project_dir / "wikis").mkdir(parents=True)
    (project_dir / "wikis" / "home.md").write_text("# Home\n", encoding="utf-8")
    name = unique("H anywhere")
    ws.manifest(
        f"version: 1\nprojects:\n  - name: {name}\n    wiki:\n      markdown_file: wikis/home.md\n",
        "repo/manifest.yaml",
    )
    monkeypatch.chdir(project_dir)
    saved = Path("plan.json")
    # The manifest as a directory, the plan file relative: both as a CI job writes them.
    assert ws.plan(Path("."), "--out", saved).code == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = ws.run("apply", "--plan", project_dir / "plan.json", *ws.connection())
    assert result.code == 0, result.both
    again = ws.plan(project_dir / "manifest.yaml", "--detailed-exitcode")
    assert again.code == 0, again.both


def wiki_order(api: Api, owner: str) -> list[str]:
    hint = api.ok("GET", f"/entity/{owner}/wiki2orderhint")
    titles = {
        h["id"]: h["title"]
        for h in api.ok("GET", f"/entity/{owner}/wikiheadertree", offset=0, limit=50)["results"]
    }
    return [titles[i] for i in hint.get("idList") or [] if i in titles]


def test_wiki_sub_page_order_follows_the_manifest(
    ws: Workspace, emu: Emulator, api_for: Any
) -> None:
    name = unique("H wiki order")
    template = """
        version: 1
        projects:
          - name: {name}
            wiki:
              title: Home
              pages:
                - title: {first}
                - title: {second}
                  pages: [{{title: Inner}}]
        """
    first = ws.manifest(template.format(name=name, first="Zeta", second="Alpha"))
    assert ws.apply(first).code == 0
    api = api_for(emu, "alice")
    project = lookup(api, name)
    assert project is not None
    assert wiki_order(api, project) == ["Zeta", "Alpha", "Inner"]
    assert ws.plan(first, "--detailed-exitcode").code == 0

    swapped = ws.manifest(template.format(name=name, first="Alpha", second="Zeta"), "b.yaml")
    result = ws.plan(swapped, "--detailed-exitcode")
    assert result.code == 2, result.both
    assert f'~ wiki "{name}" sub-page order' in result.out
    assert 'order: ["Zeta", "Alpha"] -> ["Alpha", "Zeta", "Zeta/Inner"]' in result.out
    assert ws.apply(swapped).code == 0
    assert wiki_order(api, project)[:2] == ["Alpha", "Zeta"]
    assert ws.plan(swapped, "--detailed-exitcode").code == 0


def test_a_slow_plan_shows_progress_on_stderr_and_a_quick_one_does_not(
    make_emulator: Any, tmp_path: Path
) -> None:
    slow = make_emulator(latency_ms=700)
    ws = Workspace(slow, tmp_path / "slow")
    folders = "".join(f"      - name: F{i}\n" for i in range(3))
    path = ws.manifest(f"version: 1\nprojects:\n  - name: Slow\n    folders:\n{folders}")
    result = ws.plan(path)
    assert result.code == 0, result.err
    assert "reading Synapse: " in result.err
    assert "read Synapse in " in result.err
    assert result.err.index("reading Synapse") < result.err.index("read Synapse in")
    assert "reading Synapse" not in result.out  # stdout stays the plan alone
    quiet = ws.run("-q", "plan", path, *ws.connection())
    assert quiet.code == 0 and "Synapse:" not in quiet.err
    quick = Workspace(make_emulator(), tmp_path / "quick")
    assert "reading Synapse" not in quick.plan(quick.manifest("version: 1\n")).err


def test_audit_public_finds_grants_anywhere_under_a_managed_project(
    ws: Workspace, emu: Emulator, api_for: Any
) -> None:
    name = unique("H audit")
    manifest = ws.manifest(
        f"version: 1\nprojects:\n  - name: {name}\n    folders:\n      - name: A\n"
    )
    assert ws.apply(manifest).code == 0
    api = api_for(emu, "alice")
    project = lookup(api, name)
    assert project is not None
    a = lookup(api, "A", project)
    assert a is not None
    deep = api.folder("deep", api.folder("hidden", a)["id"])["id"]
    set_acl(
        api, deep, {emu.principal_ids["alice"]: ["READ", "CHANGE_PERMISSIONS"], PUBLIC: ["READ"]}
    )
    plain = ws.plan(manifest)
    assert "deep" not in plain.out  # A is a leaf of the manifest: its listing is not read
    saved = ws.root / "audit.json"
    audited = ws.plan(manifest, "--audit-public", "--out", saved, "--detailed-exitcode")
    assert audited.code == 0, audited.both
    assert f"{name}/A/hidden/deep ({deep}): PUBLIC has view" in audited.out
    # apply --plan re-reads the same ACLs: unchanged, it applies (nothing to do)...
    assert ws.run("apply", "--plan", saved, *ws.connection()).code == 0
    # ... and a change to one of them makes the saved plan stale.
    set_acl(api, deep, {emu.principal_ids["alice"]: ["READ", "CHANGE_PERMISSIONS"]})
    stale = ws.run("apply", "--plan", saved, *ws.connection())
    assert stale.code == 1 and f"acl:{deep} changed" in stale.err


def test_a_wiki_page_made_after_the_plan_makes_it_stale(
    ws: Workspace, emu: Emulator, api_for: Any
) -> None:
    name = unique("H wiki stale")
    first = ws.manifest(f"version: 1\nprojects:\n  - name: {name}\n    wiki: {{title: Home}}\n")
    assert ws.apply(first).code == 0
    more = ws.manifest(
        f"version: 1\nprojects:\n  - name: {name}\n    wiki:\n      title: Home\n"
        "      pages: [{title: New, markdown: x}]\n",
        "more.yaml",
    )
    saved = ws.root / "wiki.json"
    assert ws.plan(more, "--out", saved).code == 0
    api = api_for(emu, "alice")
    project = lookup(api, name)
    root = api.ok("GET", f"/entity/{project}/wiki")
    api.ok(
        "POST",
        f"/entity/{project}/wiki",
        {"title": "New", "markdown": "by hand", "parentWikiId": root["id"]},
    )
    version = emu.state_version()
    result = ws.run("apply", "--plan", saved, *ws.connection())
    assert result.code == 1
    assert f"project:{name}#wiki/New appeared since the plan was made" in result.err
    assert emu.state_version() == version
