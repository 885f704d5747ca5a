"""Leftovers ("left alone"): what lives under a managed container but is not in the manifest.

Pure: planned from recorded live state (tests/golden/leftovers, captured from the emulator by
its setup.yaml), so the section is checked in text and JSON by test_golden and in Markdown here.
"""

from __future__ import annotations

import dataclasses
import json
import os

from golden_support import GOLDEN, plan_case

from synapse_declare import state_codec
from synapse_declare.plan import LeftoverKind, Plan
from synapse_declare.render import render_markdown, render_text
from synapse_declare.state import LiveState

UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
CASE = GOLDEN / "leftovers"


def test_markdown_lists_what_is_left_alone() -> None:
    expected = CASE / "plan.md"
    actual = render_markdown(plan_case(CASE))
    if UPDATE:
        expected.write_text(actual, encoding="utf-8")
    assert actual == expected.read_text(encoding="utf-8")


def test_every_kind_of_leftover_is_found_once() -> None:
    plan = plan_case(CASE)
    kinds = sorted(item.kind.value for item in plan.leftovers)
    assert kinds == ["acl", "acl", "annotation", "folder", "folder", "wiki_page"]
    assert plan.to_json()["summary"]["left_alone"] == 6
    assert not plan.has_changes  # informational: nothing to apply


def test_the_marker_and_declared_keys_are_not_leftovers() -> None:
    keys = [i.address for i in plan_case(CASE).leftovers if i.kind is LeftoverKind.ANNOTATION]
    assert keys == ["project:Golden leftovers#annotations.curator"]


def test_a_container_whose_children_were_not_listed_shows_no_folders() -> None:
    """Children are listed only where folders are declared: nothing is guessed for the rest."""
    live = _live()
    raw = live.containers["project:Golden leftovers/folder:Raw"]
    assert raw is not None and raw.children is None
    folders = [i for i in plan_case(CASE).leftovers if i.kind is LeftoverKind.FOLDER]
    assert all(i.address.startswith("project:Golden leftovers/folder:") for i in folders)
    assert {i.address.count("/") for i in folders} == {1}


def test_a_saved_plan_keeps_its_leftovers() -> None:
    plan = plan_case(CASE)
    assert Plan.from_json(plan.to_json()).leftovers == plan.leftovers


def test_text_summary_counts_leftovers_and_no_leftovers_says_nothing() -> None:
    plan = plan_case(CASE)
    assert "; 6 left alone." in render_text(plan)
    bare = dataclasses.replace(plan, leftovers=())
    assert "left alone" not in render_text(bare)
    assert "Left alone" not in render_markdown(bare)


def _live() -> LiveState:
    return state_codec.decode(json.loads((CASE / "live.json").read_text(encoding="utf-8")))
