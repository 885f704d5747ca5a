"""Planner semantics against live values other clients wrote (README "semantics" table):
what counts as a change, and what never crashes the plan."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import Api
from reconcile_support import Workspace, lookup

from synapse_declare.emulator import Emulator


@pytest.fixture
def ws(emu: Emulator, tmp_path: Path) -> Workspace:
    return Workspace(emu, tmp_path)


def _set_annotations(api: Api, entity: str, values: dict[str, Any]) -> None:
    current = api.ok("GET", f"/entity/{entity}/annotations2")
    current["annotations"].update(values)
    api.ok("PUT", f"/entity/{entity}/annotations2", current)


def test_semantically_equal_annotation_values_are_not_drift(
    emu: Emulator, ws: Workspace, api_for: Any
) -> None:
    """Synapse keeps annotation values as sent (validated with Long/Double/Boolean parsers):
    other clients write "2" for a DOUBLE 2.0, "TRUE" for true, "+3" for 3. Same values."""
    manifest = ws.manifest(
        """
        version: 1
        projects:
          - name: Equal values
            annotations:
              ratio: 2.0
              small: 0.0000001
              ok: true
              count: 3
              when: 2024-05-01T00:00:00Z
        """
    )
    assert ws.apply(manifest).code == 0
    alice: Api = api_for(emu, "alice")
    project = lookup(alice, "Equal values")
    current = alice.ok("GET", f"/entity/{project}/annotations2")
    current["annotations"].update(
        {
            "ratio": {"type": "DOUBLE", "value": ["2"]},
            "small": {"type": "DOUBLE", "value": ["1.0E-7"]},
            "ok": {"type": "BOOLEAN", "value": ["TRUE"]},
            "count": {"type": "LONG", "value": ["+3"]},
            "when": {"type": "TIMESTAMP_MS", "value": ["01714521600000"]},
        }
    )
    alice.ok("PUT", f"/entity/{project}/annotations2", current)
    result = ws.plan(manifest, "--detailed-exitcode")
    assert result.code == 0, result.out
    # A real change of value is still a change.
    current = alice.ok("GET", f"/entity/{project}/annotations2")
    current["annotations"]["ratio"] = {"type": "DOUBLE", "value": ["2.5"]}
    alice.ok("PUT", f"/entity/{project}/annotations2", current)
    document = json.loads(ws.plan(manifest, "--json").out)
    assert [f["path"] for c in document["changes"] for f in c["fields"]] == ["annotations.ratio"]


def test_odd_but_valid_live_values_never_crash_the_plan(
    emu: Emulator, ws: Workspace, api_for: Any
) -> None:
    """Values Synapse accepts (Java parsers) but Python or JSON cannot hold as numbers."""
    manifest = ws.manifest(
        """
        version: 1
        projects:
          - name: Odd values
            annotations:
              a: 1.5
              b: 2.5
              c: 2024-05-01T00:00:00Z
              d: 1.0
        """
    )
    assert ws.apply(manifest).code == 0
    alice: Api = api_for(emu, "alice")
    project = lookup(alice, "Odd values")
    assert project is not None
    _set_annotations(
        alice,
        project,
        {
            "a": {"type": "DOUBLE", "value": ["NaN"]},
            "b": {"type": "DOUBLE", "value": ["2.5d"]},
            "c": {"type": "TIMESTAMP_MS", "value": ["9223372036854775807"]},
            "d": {"type": "DOUBLE", "value": ["-Infinity"]},
        },
    )
    result = ws.plan(manifest, "--json")
    assert result.code == 0, result.err
    document = json.loads(result.out)  # strict JSON: no NaN/Infinity literals
    fields = {f["path"]: f for c in document["changes"] for f in c["fields"]}
    assert fields["annotations.a"]["before"] == {"type": "DOUBLE", "value": "NaN"}
    assert fields["annotations.c"]["before"]["value"] == 9223372036854775807 or isinstance(
        fields["annotations.c"]["before"]["value"], str
    )
    assert "NaN" not in result.out.replace('"NaN"', "")
    assert ws.apply(manifest).code == 0
    assert ws.plan(manifest, "--detailed-exitcode").code == 0


def test_unmanaged_annotation_keys_are_kept_when_managed_ones_change(
    emu: Emulator, ws: Workspace, api_for: Any
) -> None:
    manifest = ws.manifest(
        "version: 1\nprojects:\n  - name: Kept keys\n    annotations: {program: one}\n"
    )
    assert ws.apply(manifest).code == 0
    alice: Api = api_for(emu, "alice")
    project = lookup(alice, "Kept keys")
    assert project is not None
    _set_annotations(alice, project, {"by_hand": {"type": "LONG", "value": ["7"]}})
    manifest.write_text(manifest.read_text().replace("program: one", "program: two"))
    assert ws.apply(manifest).code == 0
    live = alice.ok("GET", f"/entity/{project}/annotations2")["annotations"]
    assert live["program"]["value"] == ["two"]
    assert live["by_hand"] == {"type": "LONG", "value": ["7"]}
