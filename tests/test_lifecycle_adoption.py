"""Adoption on purpose (issue 11): --no-adopt refuses an existing project before any write;
plan --observe reports drift (exit 2) and its saved plan can never be applied."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import Api
from reconcile_support import Workspace, log_window, lookup, mutating_exchanges

from synapse_declare.emulator import Emulator


@pytest.fixture
def ws(emu: Emulator, tmp_path: Path) -> Workspace:
    return Workspace(emu, tmp_path)


def _hand_made(emu: Emulator, api_for: Any, name: str) -> str:
    alice: Api = api_for(emu, "alice")
    made = alice.ok("POST", "/entity", {"concreteType": PROJECT, "name": name})
    return str(made["id"])


PROJECT = "org.sagebionetworks.repo.model.Project"


def test_no_adopt_refuses_an_existing_project_before_any_write(
    emu: Emulator, ws: Workspace, api_for: Any
) -> None:
    syn_id = _hand_made(emu, api_for, "Adopt me not")
    manifest = ws.manifest("version: 1\nprojects:\n  - name: Adopt me not\n  - name: Brand new\n")
    with log_window(emu) as window:
        result = ws.apply(manifest, "--no-adopt")
    assert result.code == 1, result.both
    assert f"'Adopt me not' already exists ({syn_id})" in result.err
    assert "manifest.yaml:3:" in result.err  # at the project's entry
    assert mutating_exchanges(window) == []
    alice: Api = api_for(emu, "alice")
    assert lookup(alice, "Brand new") is None
    # Without the flag adoption stays the default, and visible.
    assert "= project" in ws.plan(manifest).out


def test_no_adopt_creates_what_is_missing(emu: Emulator, ws: Workspace, api_for: Any) -> None:
    manifest = ws.manifest("version: 1\nprojects:\n  - name: Only new\n")
    assert ws.apply(manifest, "--no-adopt").code == 0
    # Its own project is not an adoption: a re-run with --no-adopt is fine.
    assert ws.plan(manifest, "--no-adopt", "--detailed-exitcode").code == 0


def test_observe_reports_drift_and_its_plan_is_never_applied(
    emu: Emulator, ws: Workspace, api_for: Any
) -> None:
    manifest = ws.manifest("version: 1\nprojects:\n  - name: Observed\n")
    assert ws.apply(manifest).code == 0
    assert ws.plan(manifest, "--observe").code == 0
    changed = ws.manifest("version: 1\nprojects:\n  - name: Observed\n    description: New.\n")
    saved = ws.root / "observe.json"
    with log_window(emu) as window:
        result = ws.plan(changed, "--observe", "--out", str(saved))
    assert result.code == 2 and "OBSERVE: a drift report" in result.out
    assert mutating_exchanges(window) == []
    refused = ws.apply("--plan", str(saved))
    assert refused.code == 1 and "made with --observe" in refused.err
