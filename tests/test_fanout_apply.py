"""Fan-out against the emulator over HTTP: the six-center example converges, outputs give ids
by address and fan-out key, and a saved plan keeps the variables it was made with."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import yaml
from conftest import ALICE, USERS, Api
from reconcile_support import Workspace, lookup

from synapse_declare.emulator import SeedTeam

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "fan-out"
CENTERS = ["Alpha", "Beta", "Gamma", "Delta", "Epsilon", "Zeta"]
TEAMS = [SeedTeam("DCC Admins", (ALICE,))] + [SeedTeam(f"HTAN {c} Team", (ALICE,)) for c in CENTERS]


def _example(tmp_path: Path) -> Path:
    target = tmp_path / "fan-out"
    shutil.copytree(EXAMPLE, target)
    return target


def test_six_centers_plan_apply_plan_converges_and_outputs_list_every_id(
    make_emulator: Any, tmp_path: Path, api_for: Any
) -> None:
    emulator = make_emulator(users=USERS, teams=TEAMS)
    ws = Workspace(emulator, tmp_path / "ws")
    alice: Api = api_for(emulator, ALICE)
    manifest = _example(tmp_path)

    first = ws.plan(manifest, "--json")
    assert first.code == 0, first.err
    summary = json.loads(first.out)["summary"]
    assert summary["create"] == 6 * 5  # six projects, three folders and a wiki each

    outputs_file = tmp_path / "ids.json"
    applied = ws.apply(manifest, "--outputs", outputs_file)
    assert applied.code == 0, applied.err
    again = ws.plan(manifest, "--detailed-exitcode")
    assert again.code == 0, again.out + again.err
    assert "No changes" in again.out

    outputs = json.loads(outputs_file.read_text(encoding="utf-8"))
    gamma = lookup(alice, "HTAN Gamma")
    assert gamma is not None
    assert outputs["ids"]["project:HTAN Gamma"] == gamma
    raw = alice.ok("POST", "/entity/child", {"parentId": gamma, "entityName": "Raw Data"})["id"]
    assert outputs["ids"]["project:HTAN Gamma/folder:Raw Data"] == raw
    assert outputs["instances"]["center-project[Gamma]"] == {
        "project:HTAN Gamma": gamma,
        "project:HTAN Gamma/folder:Raw Data": raw,
        "project:HTAN Gamma/folder:Processed Data": outputs["ids"][
            "project:HTAN Gamma/folder:Processed Data"
        ],
        "project:HTAN Gamma/folder:Releases": outputs["ids"]["project:HTAN Gamma/folder:Releases"],
    }
    assert len(outputs["ids"]) == 24 and all(outputs["ids"].values())

    # `output` on demand: the same ids, in every format, and it never writes.
    before = emulator.state_version()
    as_json = ws.run("output", manifest, *ws.connection())
    assert as_json.code == 0, as_json.err
    assert json.loads(as_json.out) == outputs
    as_env = ws.run("output", manifest, "--format", "env", *ws.connection())
    assert f"SYNAPSE_ID_HTAN_GAMMA__RAW_DATA={raw}\n" in as_env.out
    as_yaml = ws.run("output", manifest, "--format", "yaml", *ws.connection())
    assert yaml.safe_load(as_yaml.out) == outputs
    assert emulator.state_version() == before


def test_output_before_apply_lists_nulls_and_a_saved_plan_keeps_its_variables(
    make_emulator: Any, tmp_path: Path
) -> None:
    emulator = make_emulator(users=USERS, teams=TEAMS)
    ws = Workspace(emulator, tmp_path / "ws")
    manifest = ws.manifest(
        """
        version: 1
        variables:
          program: HTAN
        projects:
          - name: ${var.program} Portal
            folders: [{name: Docs}]
        """
    )
    before = ws.run("output", manifest, *ws.connection())
    assert before.code == 0, before.err
    assert json.loads(before.out)["ids"] == {
        "project:HTAN Portal": None,
        "project:HTAN Portal/folder:Docs": None,
    }

    plan_file = tmp_path / "plan.json"
    planned = ws.plan(manifest, "--var", "program=GENIE", "--out", plan_file)
    assert planned.code == 0, planned.err
    saved = json.loads(plan_file.read_text(encoding="utf-8"))
    assert saved["manifest"]["variables"] == {"program": "GENIE"}
    refused = ws.run("apply", "--plan", plan_file, "--var", "program=NF", *ws.connection())
    assert refused.code == 1 and "--var cannot change a saved plan" in refused.err
    applied = ws.run("apply", "--plan", plan_file, *ws.connection())
    assert applied.code == 0, applied.err
    after = ws.run("output", manifest, "--var", "program=GENIE", *ws.connection())
    ids = json.loads(after.out)["ids"]
    assert (
        ids["project:GENIE Portal"] is not None
        and ids["project:GENIE Portal/folder:Docs"] is not None
    )


def test_a_bad_outputs_suffix_is_refused_before_anything_is_written(
    make_emulator: Any, tmp_path: Path
) -> None:
    emulator = make_emulator(users=USERS, teams=TEAMS)
    ws = Workspace(emulator, tmp_path / "ws")
    manifest = ws.manifest("version: 1\nprojects:\n  - name: Untouched\n")
    before = emulator.state_version()
    result = ws.apply(manifest, "--outputs", tmp_path / "ids.txt")
    assert result.code == 1
    assert "unknown format .txt" in result.err
    assert emulator.state_version() == before
