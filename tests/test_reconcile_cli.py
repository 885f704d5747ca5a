"""The CLI contract of plan/apply (engineering.md §B.1-B.4, §C.3 #2, #4, #5, #7, #8, #18):
exit codes, plan never writes, apply is idempotent, saved plans are refused when stale, errors
are located, output formats behave. Everything runs the real CLI against the emulator over HTTP.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import Api
from reconcile_support import (
    ADMIN,
    Workspace,
    actionable,
    annotations,
    children,
    log_window,
    lookup,
    mutating_exchanges,
)

from synapse_declare.emulator import Emulator
from synapse_declare.render import MARKDOWN_LIMIT

SMALL = """
    version: 1
    projects:
      - name: {name}
        description: Exit codes and friends.
        annotations:
          program: cli
        acl:
          self: administer
          team:Curators: edit
        wiki:
          title: Home
          markdown: Hello.
        folders:
          - name: Raw Data
            annotations: {{stage: raw}}
          - name: Releases
            acl:
              self: administer
              PUBLIC: view
"""


@pytest.fixture
def ws(emu: Emulator, tmp_path: Path) -> Workspace:
    return Workspace(emu, tmp_path)


def _name(request: pytest.FixtureRequest) -> str:
    return re.sub(r"[^A-Za-z0-9 ]", " ", request.node.name)[:60].strip()


@pytest.fixture
def small(ws: Workspace, request: pytest.FixtureRequest) -> Path:
    return ws.manifest(SMALL.format(name=f"CLI {_name(request)}"))


@pytest.fixture
def applied(ws: Workspace, small: Path) -> Path:
    result = ws.apply(small)
    assert result.code == 0, result.err
    return small


# ---------------------------------------------------------------------------------------------
# Exit-code matrix (§C.3 #4)


def test_validate_exit_codes(ws: Workspace, small: Path) -> None:
    ok = ws.run("validate", small)
    assert (ok.code, ok.err) == (0, "")
    assert ok.out.startswith("ok: 1 file(s), 1 project(s), 2 folder(s)")
    bad = ws.manifest("version: 1\nprojects:\n  - name: X\n    colour: red\n", "bad.yaml")
    invalid = ws.run("validate", bad)
    assert invalid.code == 1
    assert re.search(r"bad\.yaml:4:5: ", invalid.err), invalid.err


def test_plan_exit_codes(ws: Workspace, applied: Path, tmp_path: Path) -> None:
    unchanged = ws.plan(applied, "--detailed-exitcode")
    assert unchanged.code == 0, unchanged.err
    assert "No changes." in unchanged.out
    assert ws.plan(applied).code == 0

    changed_manifest = ws.manifest(
        applied.read_text().replace("Exit codes and friends.", "Changed."), "changed.yaml"
    )
    changed = ws.plan(changed_manifest, "--detailed-exitcode")
    assert changed.code == 2, changed.err
    assert "~ description" in changed.out
    plain = ws.plan(changed_manifest)
    assert plain.code == 0, "without --detailed-exitcode changes are not an error"


@pytest.mark.parametrize(
    "argv",
    [
        ["plan", "--bogus-flag", "x.yaml"],
        ["plan"],
        [],
        ["frobnicate"],
        ["plan", "x.yaml", "--format", "xml"],
        ["plan", "x.yaml", "--parallel", "many"],
        ["plan", "x.yaml", "--parallel", "0"],
        ["apply"],
        ["apply", "x.yaml", "--plan", "p.json"],
        ["plan", "x.yaml", "--color", "sometimes"],
    ],
    ids=lambda argv: " ".join(argv) or "(nothing)",
)
def test_usage_errors_exit_1_never_2(ws: Workspace, small: Path, argv: list[str]) -> None:
    argv = [str(small) if a == "x.yaml" else a for a in argv]
    extra = (
        ws.connection() if argv and argv[0] in ("plan", "apply") and "--parallel" in argv else []
    )
    result = ws.run(*argv, *extra)
    assert result.code == 1, (result.code, result.err)
    assert result.err.startswith("error: "), result.err
    assert "Traceback" not in result.err


def test_api_error_exit_1(ws: Workspace, small: Path, emu: Emulator) -> None:
    before = emu.state_version()
    result = ws.run("plan", small, *ws.connection("not-a-valid-token"))
    assert result.code == 1
    assert "401" in result.err and "hint:" in result.err
    result = ws.run("apply", small, "--auto-approve", *ws.connection("not-a-valid-token"))
    assert result.code == 1
    assert emu.state_version() == before


def test_apply_without_tty_or_approval_refuses(
    ws: Workspace, small: Path, emu: Emulator, alice: Api
) -> None:
    before = emu.state_version()
    result = ws.run("apply", small, *ws.connection())
    assert result.code == 1
    assert "refusing to apply without approval" in result.err
    assert "+ project" in result.out, "the plan is still shown"
    assert emu.state_version() == before
    assert lookup(alice, _project_name(small)) is None


class _Terminal(io.StringIO):
    """A stand-in for an interactive terminal on stdin (the OS boundary, not our code)."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("answer", ["no", "y", ""])
def test_interactive_apply_needs_exactly_yes(
    ws: Workspace, small: Path, emu: Emulator, answer: str
) -> None:
    before = emu.state_version()
    result = ws.run("apply", small, *ws.connection(), stdin=_Terminal(answer + "\n"))
    assert result.code == 1
    assert "nothing was changed" in result.err
    assert emu.state_version() == before


def test_interactive_apply_yes(ws: Workspace, small: Path, alice: Api) -> None:
    result = ws.run("apply", small, *ws.connection(), stdin=_Terminal("yes\n"))
    assert result.code == 0, result.err
    assert lookup(alice, _project_name(small)) is not None


def test_internal_error_exit_3_with_redacted_log(
    ws: Workspace, small: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A bug surfacing from below (here: the HTTP library itself failing in an unexpected way,
    the only place a fault can be injected without patching our own code) → exit 3 and a
    traceback log that names where it happened and holds no token."""

    def broken_send(self: requests.Session, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("injected failure inside requests")

    monkeypatch.setattr(requests.Session, "send", broken_send)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    result = ws.plan(small)
    assert result.code == 3, result.err
    match = re.search(r"traceback was written to (\S+?);", result.err)
    assert match, result.err
    log = Path(match.group(1)).read_text(encoding="utf-8")
    assert "RuntimeError: injected failure inside requests" in log
    assert "Traceback" in log
    assert ws.emulator.users["alice"] not in log
    assert "Traceback" not in result.err


def _apply_in_child(
    ws: Workspace, manifest: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """``apply --auto-approve`` in a child process, for a test to interrupt."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "synapse_declare",
            "apply",
            str(manifest),
            "--auto-approve",
            *ws.connection(),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_sigint_exits_130(make_emulator: Any, tmp_path: Path) -> None:
    slow = make_emulator(latency_ms=3000)
    ws = Workspace(slow, tmp_path)
    manifest = ws.manifest(SMALL.format(name="CLI interrupted"))
    before = slow.state_version()
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env["PYTHONUNBUFFERED"] = "1"
    process = _apply_in_child(ws, manifest, env)
    try:
        deadline = time.monotonic() + 20
        # Wait until the CLI has a request in flight (the emulator sleeps 3 s on it).
        while time.monotonic() < deadline and not _request_started(slow):
            time.sleep(0.05)
        time.sleep(0.2)
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, (out, err)
    assert "interrupted" in err
    assert "Traceback" not in err
    assert time.monotonic() - started < 10
    assert slow.state_version() == before


def test_sigint_during_apply_exits_130_and_reapply_converges(
    make_emulator: Any, api_for: Any, tmp_path: Path
) -> None:
    emulator = make_emulator()
    ws = Workspace(emulator, tmp_path)
    manifest = ws.manifest(SMALL.format(name="CLI interrupted apply"))
    in_write = threading.Event()
    writes = itertools.count(1)

    def slow_third_write(ctx: Any) -> None:
        if ctx.request.method in ("POST", "PUT") and "/entity/child" not in ctx.request.path:
            if next(writes) == 3:
                in_write.set()
                time.sleep(2)

    emulator.knobs.before_write = slow_third_write
    process = _apply_in_child(ws, manifest)
    try:
        assert in_write.wait(30), "apply never reached its third write"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    emulator.knobs.before_write = None
    assert process.returncode == 130, (out, err)
    assert "interrupted" in err and "Traceback" not in err
    # The write in flight finished; the user is told what was done and what was not.
    assert "Apply stopped: " in err and "not attempted" in err, err
    again = ws.apply(manifest)
    assert again.code == 0, again.err
    assert ws.plan(manifest, "--detailed-exitcode").code == 0
    alice: Api = api_for(emulator, "alice")
    project = lookup(alice, "CLI interrupted apply")
    assert project is not None
    names = [c["name"] for c in children(alice, project)]
    assert sorted(names) == ["Raw Data", "Releases"]


def _request_started(emulator: Emulator) -> bool:
    # The log is written when an exchange ends; the throttle's in-flight counter shows one
    # started (an emulator internal: without it, give the CLI two seconds to get there).
    in_flight = getattr(emulator.knobs, "_in_flight", None)
    if in_flight is None:
        time.sleep(2)
        return True
    return any(count > 0 for count in in_flight.values())


# ---------------------------------------------------------------------------------------------
# Plan never writes (§C.3 #2); apply twice (§C.3 #5)


def test_plan_is_read_only_even_with_drift(
    ws: Workspace, applied: Path, emu: Emulator, alice: Api
) -> None:
    project = lookup(alice, _project_name(applied))
    assert project is not None
    _edit(alice, f"/entity/{project}/annotations2", program={"type": "STRING", "value": ["x"]})
    raw = lookup(alice, "Raw Data", project)
    alice.ok("POST", f"/entity/{raw}/acl", {"id": raw, "resourceAccess": _admin_only(emu)})
    before = emu.state_version()
    with log_window(emu) as exchanges:
        for fmt in ("text", "json", "markdown"):
            result = ws.plan(applied, "--format", fmt, "--out", ws.root / f"p.{fmt}")
            assert result.code == 0, result.err
    assert emu.state_version() == before
    assert exchanges, "the request log recorded the plans"
    assert mutating_exchanges(exchanges) == []
    document = json.loads(ws.plan(applied, "--json").out)
    assert actionable(document) == {f"project:{_project_name(applied)}": "update"}


def test_apply_twice_second_applies_nothing(ws: Workspace, applied: Path, emu: Emulator) -> None:
    before = emu.state_version()
    with log_window(emu) as exchanges:
        again = ws.apply(applied)
    assert again.code == 0, again.err
    assert "Nothing to apply." in again.err
    assert emu.state_version() == before
    assert mutating_exchanges(exchanges) == []
    assert ws.plan(applied, "--detailed-exitcode").code == 0


# ---------------------------------------------------------------------------------------------
# Saved plans (§C.3 #7, #8)


def test_saved_plan_applies_when_nothing_moved(ws: Workspace, small: Path, alice: Api) -> None:
    saved = ws.root / "plan.json"
    assert ws.plan(small, "--out", saved).code == 0
    shown = ws.run("show", saved)
    assert shown.code == 0 and "+ project" in shown.out
    result = ws.run("apply", "--plan", saved, *ws.connection())
    assert result.code == 0, result.err
    assert ws.plan(small, "--detailed-exitcode").code == 0


def _stale_check(ws: Workspace, saved: Path, *, user: str = "alice", **kw: Any) -> str:
    emulators = [ws.emulator, *kw.get("also", [])]
    versions = [e.state_version() for e in emulators]
    result = ws.run("apply", "--plan", saved, *ws.connection(user, endpoint=kw.get("endpoint")))
    assert result.code == 1, (result.out, result.err)
    assert "stale" in result.err and "nothing was changed" in result.err
    assert [e.state_version() for e in emulators] == versions, "a refused plan mutated Synapse"
    return result.err


def test_stale_saved_plan_after_out_of_band_edit(ws: Workspace, applied: Path, alice: Api) -> None:
    changed = ws.manifest(applied.read_text().replace("program: cli", "program: v2"), "v2.yaml")
    saved = ws.root / "plan.json"
    assert ws.plan(changed, "--out", saved).code == 0
    project = lookup(alice, _project_name(applied))
    _edit(alice, f"/entity/{project}/annotations2", extra={"type": "STRING", "value": ["oob"]})
    err = _stale_check(ws, saved)
    assert "changed since the plan was made" in err
    assert annotations(alice, str(project))["program"]["value"] == ["cli"]


def test_stale_saved_plan_when_a_planned_create_appeared(
    ws: Workspace, small: Path, alice: Api
) -> None:
    saved = ws.root / "plan.json"
    assert ws.plan(small, "--out", saved).code == 0
    alice.project(_project_name(small))
    err = _stale_check(ws, saved)
    assert "appeared since the plan was made" in err


def test_stale_saved_plan_when_an_unchanged_target_moved(
    ws: Workspace, applied: Path, alice: Api, emu: Emulator
) -> None:
    """The ACL of 'Releases' is not being changed, but the plan read it: a new etag there
    means the reviewed plan no longer describes reality."""
    changed = ws.manifest(applied.read_text().replace("program: cli", "program: v3"), "v3.yaml")
    saved = ws.root / "plan.json"
    assert ws.plan(changed, "--out", saved).code == 0
    project = lookup(alice, _project_name(applied))
    releases = lookup(alice, "Releases", project)
    acl = alice.ok("GET", f"/entity/{releases}/acl")
    acl["resourceAccess"].append({"principalId": emu.principal_ids["bob"], "accessType": ["READ"]})
    alice.ok("PUT", f"/entity/{releases}/acl", acl)
    err = _stale_check(ws, saved)
    assert "Releases#acl" in err


def test_saved_plan_refused_for_edited_manifest(ws: Workspace, small: Path) -> None:
    saved = ws.root / "plan.json"
    assert ws.plan(small, "--out", saved).code == 0
    small.write_text(small.read_text().replace("program: cli", "program: edited"))
    err = _stale_check(ws, saved)
    assert "the manifest changed" in err


def test_saved_plan_refused_for_other_user(ws: Workspace, small: Path) -> None:
    saved = ws.root / "plan.json"
    assert ws.plan(small, "--out", saved).code == 0
    err = _stale_check(ws, saved, user="bob")
    assert "made by user alice" in err


def test_saved_plan_refused_for_other_endpoint(
    ws: Workspace, small: Path, make_emulator: Any
) -> None:
    other = make_emulator()
    saved = ws.root / "plan.json"
    assert ws.plan(small, "--out", saved).code == 0
    err = _stale_check(ws, saved, endpoint=other.base_url, also=[other])
    assert f"not {other.repo_endpoint}" in err


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d.update(format_version="99"),
        lambda d: d.pop("target"),
        lambda d: d["target"].update(user_id=1e999),
        lambda d: d["changes"].append("not a change"),
        lambda d: d["changes"][0].update(action="explode"),
    ],
    ids=["version", "no-target", "huge-user-id", "bad-change", "bad-action"],
)
def test_damaged_plan_file_is_an_error_not_a_crash(
    ws: Workspace, small: Path, emu: Emulator, damage: Any
) -> None:
    saved = ws.root / "plan.json"
    assert ws.plan(small, "--out", saved).code == 0
    document = json.loads(saved.read_text())
    damage(document)
    saved.write_text(json.dumps(document))
    before = emu.state_version()
    for argv in (["show", saved], ["apply", "--plan", saved, *ws.connection()]):
        result = ws.run(*argv)
        assert result.code == 1, (argv[0], result.err)
        assert "Traceback" not in result.err
    assert emu.state_version() == before


# ---------------------------------------------------------------------------------------------
# Located errors (§C.3 #18)

BAD_MANIFESTS = {
    "schema": ("version: 1\nprojects:\n  - name: P\n    folders:\n      - nmae: F\n", 5, 9),
    "semantic": (
        "version: 1\nprojects:\n  - name: P\n    folders:\n      - name: F\n      - name: F\n",
        6,
        15,
    ),
    "yaml": ("version: 1\nprojects:\n  - name: P\n    name: Q\n", 4, 5),
    "principal syntax": (
        "version: 1\nprojects:\n  - name: P\n    acl:\n      bob: view\n",
        5,
        7,
    ),
}


@pytest.mark.parametrize("kind", sorted(BAD_MANIFESTS))
@pytest.mark.parametrize("command", ["validate", "plan", "apply"])
def test_bad_manifest_is_located_and_changes_nothing(
    ws: Workspace, emu: Emulator, kind: str, command: str
) -> None:
    text, line, column = BAD_MANIFESTS[kind]
    path = ws.manifest(text, "bad.yaml")
    before = emu.state_version()
    with log_window(emu) as exchanges:
        if command == "validate":
            result = ws.run("validate", path)
        elif command == "plan":
            result = ws.plan(path)
        else:
            result = ws.apply(path)
    assert result.code == 1
    assert f"bad.yaml:{line}:{column}: " in result.err, result.err
    assert "Traceback" not in result.err
    assert emu.state_version() == before
    assert exchanges == [], "a bad manifest is caught before any request"


def test_unwritable_outputs_are_errors_not_crashes(ws: Workspace, small: Path) -> None:
    missing = ws.root / "no such dir"
    for argv in (
        ["plan", small, "--out", missing / "p.json", *ws.connection()],
        ["plan", small, "--out", ws.root, *ws.connection()],
        ["--log-file", missing / "debug.log", "plan", small, *ws.connection()],
        ["show", ws.root],
    ):
        result = ws.run(*argv)
        assert result.code == 1, (argv, result.err)
        assert "unexpected internal error" not in result.err


def test_validate_json_diagnostics(ws: Workspace) -> None:
    path = ws.manifest(BAD_MANIFESTS["semantic"][0], "bad.yaml")
    result = ws.run("validate", path, "--json")
    assert result.code == 1
    document = json.loads(result.out)
    assert document["valid"] is False
    first = document["diagnostics"][0]
    assert first["severity"] == "error"
    assert (first["line"], first["column"]) == (6, 15)
    assert first["file"].endswith("bad.yaml")
    assert first["json_path"] == "$.projects[0].folders[1].name"
    ok = ws.run("validate", ws.manifest(SMALL.format(name="P"), "ok.yaml"), "--json")
    assert ok.code == 0 and json.loads(ok.out) == {
        "valid": True,
        "files": [str(ws.root / "ok.yaml")],
        "diagnostics": [],
    }


def test_plan_json_mode_prints_json_diagnostics(ws: Workspace) -> None:
    """§B.3: with --json, stdout stays clean and each diagnostic is a JSON object on stderr."""
    path = ws.manifest(BAD_MANIFESTS["semantic"][0], "bad.yaml")
    for argv in (["plan", path, "--json"], ["plan", path, "--format", "json"]):
        result = ws.run(*argv, *ws.connection())
        assert result.code == 1
        assert result.out == ""
        diagnostics = [json.loads(line) for line in result.err.splitlines()]
        assert diagnostics[0]["summary"].startswith("duplicate folder name 'F'")
        assert (diagnostics[0]["line"], diagnostics[0]["column"]) == (6, 15)
        assert diagnostics[0]["json_path"] == "$.projects[0].folders[1].name"
    api_error = ws.run(
        "plan", ws.manifest(SMALL.format(name="P"), "ok.yaml"), "--json", *ws.connection("nope")
    )
    assert api_error.code == 1 and api_error.out == ""
    (diagnostic,) = [json.loads(line) for line in api_error.err.splitlines()]
    assert diagnostic["severity"] == "error" and "401" in diagnostic["summary"]
    assert diagnostic["line"] is None


def test_unknown_principal_is_located_and_changes_nothing(ws: Workspace, emu: Emulator) -> None:
    path = ws.manifest(
        """
        version: 1
        projects:
          - name: CLI unknown principal
            acl:
              self: administer
              user:Bob: view
        """,
        "who.yaml",
    )
    before = emu.state_version()
    for result in (ws.plan(path), ws.apply(path)):
        assert result.code == 1
        assert re.search(r"who\.yaml:\d+:\d+: user:Bob does not exist", result.err), result.err
        assert "did you mean user:bob" in result.err
    assert emu.state_version() == before


@pytest.mark.parametrize(
    ("principal", "message"),
    [
        ("team:Nobody", r"team:Nobody does not exist"),
        ("user:Curators", r"user:Curators names a team, not a user.*\n  hint: write team:Curators"),
        ("team:alice", r"team:alice names a user, not a team"),
        ('"9999999"', r"principal id 9999999 does not exist"),
    ],
)
def test_principal_resolution_errors_are_located(
    ws: Workspace, emu: Emulator, principal: str, message: str
) -> None:
    path = ws.manifest(
        f"version: 1\nprojects:\n  - name: CLI principals\n    acl:\n"
        f"      self: administer\n      {principal}: view\n",
        "who.yaml",
    )
    before = emu.state_version()
    result = ws.apply(path)
    assert result.code == 1
    assert re.search(r"who\.yaml:\d+:\d+: " + message, result.err), result.err
    assert emu.state_version() == before


def test_project_name_taken_by_someone_else(ws: Workspace, emu: Emulator, api_for: Any) -> None:
    """Project names are global: an unreadable project of the same name is a clear error."""
    api_for(emu, "bob").project("CLI bob's project")
    path = ws.manifest("version: 1\nprojects:\n  - name: CLI bob's project\n", "taken.yaml")
    before = emu.state_version()
    for result in (ws.plan(path), ws.apply(path)):
        assert result.code == 1
        assert re.search(r"taken\.yaml:3:\d+: a project named .* cannot read it", result.err)
        assert "unique across all of Synapse" in result.err
    assert emu.state_version() == before


def test_an_acl_that_locks_you_out_is_refused(ws: Workspace, emu: Emulator) -> None:
    """A folder's own ACL without you: after apply you could not read it, and later plans
    could not manage it (they would never converge). The plan refuses, located, before any
    write — unless a team you are in gives you the rights."""
    path = ws.manifest(
        """
        version: 1
        projects:
          - name: CLI lockout
            folders:
              - name: Bob only
                acl: {user:bob: administer}
        """
    )
    before = emu.state_version()
    result = ws.apply(path)
    assert result.code == 1
    assert "manifest.yaml:6:14: project:CLI lockout/folder:Bob only: this ACL would leave you " in (
        result.err
    )
    assert "without CHANGE_PERMISSIONS, READ, UPDATE" in result.err
    assert "self: administer" in result.err
    assert emu.state_version() == before

    through_team = ws.manifest(
        """
        version: 1
        projects:
          - name: CLI lockout
            folders:
              - name: Admins only
                acl: {team:Lab Admins: administer, user:bob: view}
        """,
        "team.yaml",
    )
    planned = ws.plan(through_team, "--json")
    assert planned.code == 0, planned.err  # alice is in Lab Admins
    assert json.loads(planned.out)["warnings"] == []


def test_name_taken_by_another_type_is_an_error(ws: Workspace, emu: Emulator, alice: Api) -> None:
    project = alice.project("CLI name clash")
    alice.ok(
        "POST",
        "/entity",
        {
            "concreteType": "org.sagebionetworks.repo.model.Link",
            "name": "Data",
            "parentId": project["id"],
            "linksTo": {"targetId": project["id"]},
        },
    )
    path = ws.manifest(
        "version: 1\nprojects:\n  - name: CLI name clash\n    folders:\n      - name: Data\n"
    )
    before = emu.state_version()
    result = ws.apply(path)
    assert result.code == 1
    assert "an entity of type Link named 'Data' already exists" in result.err
    assert emu.state_version() == before


# ---------------------------------------------------------------------------------------------
# Output: determinism, markdown cap, colour (§B.3, §B.4, §C.3 #3)


def test_plan_json_is_deterministic(ws: Workspace, applied: Path, alice: Api) -> None:
    project = lookup(alice, _project_name(applied))
    _edit(alice, f"/entity/{project}/annotations2", program={"type": "STRING", "value": ["d"]})
    first = ws.plan(applied, "--json").out
    second = ws.plan(applied, "--json").out
    assert first == second, "same live state, same bytes"
    text_a, text_b = ws.plan(applied).out, ws.plan(applied).out
    assert text_a == text_b


def test_plan_json_ignores_manifest_key_order(ws: Workspace, alice: Api) -> None:
    """Annotation keys and ACL entries in another order: the same plan, byte for byte."""
    first = ws.manifest(
        """
        version: 1
        projects:
          - name: CLI key order
            annotations: {a: 1, b: two, c: [x, y]}
            acl: {self: administer, user:bob: view, PUBLIC: view, team:Curators: edit}
        """,
        "first.yaml",
    )
    second = ws.manifest(
        """
        version: 1
        projects:
          - name: CLI key order
            acl: {team:Curators: edit, PUBLIC: view, user:bob: view, self: administer}
            annotations: {c: [x, y], b: two, a: 1}
        """,
        "second.yaml",
    )

    def normalised(path: Path) -> dict[str, Any]:
        document = json.loads(ws.plan(path, "--json").out)
        document["manifest"].pop("files")
        return dict(document)

    assert normalised(first) == normalised(second)
    assert ws.apply(first).code == 0
    assert normalised(first) == normalised(second)


def test_children_beyond_one_page(ws: Workspace, emu: Emulator) -> None:
    """More folders than one children page (50): all found, none created twice."""
    folders = "".join(f"      - name: F{i:03d}\n" for i in range(120))
    path = ws.manifest(
        "version: 1\nprojects:\n  - name: CLI many folders\n    folders:\n" + folders
    )
    assert ws.apply(path).code == 0
    with log_window(emu) as exchanges:
        again = ws.plan(path, "--detailed-exitcode")
    assert again.code == 0, again.out
    pages = [e for e in exchanges if e["path"].endswith("/entity/children")]
    assert len(pages) == 3, "120 children are three pages of 50"


def test_markdown_is_capped_for_pull_request_comments(ws: Workspace) -> None:
    folders = "\n".join(
        f"      - name: Folder {i:04d}\n"
        f"        description: {'A long description to make rows wide. ' * 6}\n"
        f"        annotations: {{stage: raw, index: {i}}}"
        for i in range(400)
    )
    # A storage location whose owner.txt cannot be checked here (no AWS credentials in the
    # hermetic environment) carries a warning: it must survive the cap.
    path = ws.manifest(
        "version: 1\nstorage_locations:\n  lab: {type: external_s3, bucket: lab-data}\n"
        "projects:\n  - name: CLI many changes\n    storage: lab\n    folders:\n" + folders + "\n"
    )
    full = ws.plan(path, "--format", "markdown")
    assert full.code == 0, full.err
    assert len(full.out) <= MARKDOWN_LIMIT
    assert re.search(r"\d+ more rows omitted", full.out)
    assert "> **Warning:**" in full.out and "owner.txt" in full.out
    assert full.out.startswith("<!-- synapse-declare-plan -->")
    assert "403 to create" in full.out, "the summary counts everything, shown or not"
    small = ws.plan(
        ws.manifest("version: 1\nprojects:\n  - name: CLI few changes\n", "few.yaml"),
        "--format",
        "markdown",
    )
    assert "omitted" not in small.out


def test_color_flags_and_no_color(
    ws: Workspace, small: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ansi = "\x1b["
    # The hermetic fixture sets NO_COLOR=1.
    assert ansi not in ws.plan(small).out
    assert ansi not in ws.plan(small, "--color", "auto").out
    assert ansi in ws.plan(small, "--color", "always").out, "--color always beats NO_COLOR"
    monkeypatch.delenv("NO_COLOR")
    assert ansi not in ws.plan(small).out, "auto: stdout is not a terminal"
    assert ansi not in ws.plan(small, "--color", "never").out
    for fmt in ("json", "markdown"):
        assert ansi not in ws.plan(small, "--format", fmt, "--color", "always").out
    coloured = ws.plan(small, "--color", "always").out
    plain = re.sub(r"\x1b\[[0-9;]*m", "", coloured)
    assert plain == ws.plan(small, "--color", "never").out, "colour only decorates"


def test_use_color_auto_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    from synapse_declare.render import use_color

    tty = _Terminal()
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.delenv("TERM", raising=False)
    assert use_color("auto", tty) is True
    monkeypatch.setenv("TERM", "dumb")
    assert use_color("auto", tty) is False
    monkeypatch.delenv("TERM")
    monkeypatch.setenv("NO_COLOR", "1")
    assert use_color("auto", tty) is False
    monkeypatch.setenv("NO_COLOR", "")
    assert use_color("auto", tty) is True, "an empty NO_COLOR does not disable colour"
    assert use_color("never", tty) is False


def test_json_and_text_go_to_stdout_and_progress_to_stderr(ws: Workspace, small: Path) -> None:
    planned = ws.plan(small, "--json")
    json.loads(planned.out)  # stdout is exactly the document
    applied = ws.apply(small, "--json")
    assert applied.code == 0
    json.loads(applied.out)
    assert "[1/" in applied.err and "Apply complete" in applied.err


# ---------------------------------------------------------------------------------------------


def _project_name(manifest: Path) -> str:
    match = re.search(r"- name: (.+)", manifest.read_text())
    assert match
    return match.group(1).strip()


def _edit(api: Api, path: str, **annotations_to_set: Any) -> None:
    current = api.ok("GET", path)
    current["annotations"].update(annotations_to_set)
    api.ok("PUT", path, current)


def _admin_only(emu: Emulator) -> list[dict[str, Any]]:
    return [
        {
            "principalId": emu.principal_ids["alice"],
            "accessType": sorted(ADMIN),
        }
    ]


def test_missing_permissions_are_refused_at_plan_time(
    ws: Workspace, emu: Emulator, api_for: Any
) -> None:
    """A project alice may only read: the plan says what she lacks instead of failing mid-apply."""
    bob = api_for(emu, "bob")
    project = bob.project("CLI read only")
    acl = bob.ok("GET", f"/entity/{project['id']}/acl")
    acl["resourceAccess"].append(
        {"principalId": emu.principal_ids["alice"], "accessType": ["READ"]}
    )
    bob.ok("PUT", f"/entity/{project['id']}/acl", acl)
    path = ws.manifest(
        """
        version: 1
        projects:
          - name: CLI read only
            annotations: {stage: raw}
            folders:
              - name: New folder
        """
    )
    before = emu.state_version()
    result = ws.apply(path)
    assert result.code == 1
    assert f"project:CLI read only ({project['id']}): you (alice) lack UPDATE" in result.err
    assert "CREATE (to add the folders the manifest declares in it)" in result.err
    assert emu.state_version() == before


def test_a_saved_plan_applies_from_another_directory(
    ws: Workspace, small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan_file = ws.root / "plans" / "plan.json"
    plan_file.parent.mkdir()
    assert ws.plan(small, "--out", plan_file).code == 0
    stored = json.loads(plan_file.read_text(encoding="utf-8"))["manifest"]["files"]
    assert stored == [f"../{small.name}"]  # relative to the plan file
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = ws.run("apply", "--plan", plan_file, *ws.connection())
    assert result.code == 0, result.both
    assert "Apply complete" in result.err
