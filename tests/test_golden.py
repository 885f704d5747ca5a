"""Pure golden plans: ``build_plan(manifest, live)`` on recorded live state, no emulator.

Every case under ``tests/golden/`` plans its ``manifest.yaml`` against its ``live.json`` and
compares the JSON and text renderings with ``plan.json`` / ``plan.txt`` (or, for a refusal, the
error with ``error.txt``). ``UPDATE_GOLDEN=1`` rewrites the expected files; review the diff.
New cases: ``tests/golden_capture.py`` (see golden_support.py).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest
from golden_support import GOLDEN, case_names, plan_case, plan_json, plan_text

from synapse_declare import state_codec
from synapse_declare.errors import PlanError, SynapseDeclareError
from synapse_declare.plan import Plan
from synapse_declare.render import render_markdown
from synapse_declare.state import LiveContainer, LiveState
from synapse_declare.storage import LiveStorage

UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
CASES = case_names()


def _compare(path: Path, actual: str) -> None:
    if UPDATE:
        path.write_text(actual, encoding="utf-8")
        return
    assert path.exists(), f"{path} is missing; UPDATE_GOLDEN=1 creates it"
    assert actual == path.read_text(encoding="utf-8"), (
        f"{path.parent.name}/{path.name} differs (UPDATE_GOLDEN=1 regenerates it)"
    )


@pytest.mark.parametrize("name", CASES)
def test_golden(name: str) -> None:
    case = GOLDEN / name
    refused = case / "error.txt"
    if refused.exists():
        with pytest.raises(SynapseDeclareError) as caught:
            plan_case(case)
        _compare(refused, str(caught.value) + "\n")
        return
    plan = plan_case(case)
    _compare(case / "plan.json", plan_json(plan))
    _compare(case / "plan.txt", plan_text(plan))
    if plan.access_changes:
        # The effective-access summary heads the pull-request comment.
        _compare(case / "plan.md", render_markdown(plan))
    # The saved-plan codec round-trips every golden plan (what apply --plan reads back).
    assert Plan.from_json(plan.to_json()) == plan


def test_there_are_enough_cases_and_each_is_complete() -> None:
    assert len(CASES) >= 40
    for name in CASES:
        case = GOLDEN / name
        assert (case / "live.json").exists(), name
        assert (case / "error.txt").exists() or (case / "plan.json").exists() or UPDATE, name


@pytest.mark.parametrize("name", CASES)
def test_live_state_codec_round_trips(name: str) -> None:
    data = json.loads((GOLDEN / name / "live.json").read_text(encoding="utf-8"))
    assert state_codec.encode(state_codec.decode(data)) == data


def test_a_plan_from_an_older_version_is_refused_with_a_clear_message() -> None:
    plan = plan_case(GOLDEN / CASES[0]).to_json()
    plan["format_version"] = "1"
    with pytest.raises(PlanError) as caught:
        Plan.from_json(plan)
    assert "made by an older synapse-declare" in str(caught.value)
    assert "plan again" in str(caught.value)


def test_the_codec_writes_every_field_of_live_state() -> None:
    """A field added to LiveState (or its parts) without a codec entry would be lost from every
    captured live.json and silently default in the pure goldens."""
    data = json.loads((GOLDEN / "create_all" / "live.json").read_text(encoding="utf-8"))
    # prune_candidates is written only when a `prune:` container has some (golden "prune");
    # other_acls only when undeclared children have own ACLs (golden "policy_strict_inherit");
    # notes only when the identity reads had something to say.
    # walked and acl_permissions only when the project walk ran (golden "policy_strict_deep").
    optional = {
        "prune_candidates",
        "relocated",
        "trashed",
        "other_acls",
        "walked",
        "acl_permissions",
        "notes",
    }
    assert set(data) - {"format"} | optional == {f.name for f in dataclasses.fields(LiveState)}
    assert set(data["storage"]) == {f.name for f in dataclasses.fields(LiveStorage)}
    container = next(
        c
        for c in json.loads((GOLDEN / "no_change_full" / "live.json").read_text(encoding="utf-8"))[
            "containers"
        ].values()
        if c is not None
    )
    assert set(container) == {f.name for f in dataclasses.fields(LiveContainer)}
