"""Convergence property (engineering.md §C.3 #6): for random small manifests — folder trees,
annotations, ACL choices (unmanaged, inherit, own), wikis — applying manifest A, then some
out-of-band drift, then manifest B leaves Synapse exactly as B says and the next plan empty.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import TEAMS, USERS, Api
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reconcile_support import MARKER, Workspace, annotations, children, lookup, own_acl

from synapse_declare.emulator import Emulator, EmulatorConfig

pytestmark = pytest.mark.property

FOLDER_NAMES = ["Raw Data", "Processed", "Releases", "Scratch"]
CHILD_NAMES = ["A", "B", "C"]
ANNOTATION_VALUES = st.one_of(
    st.sampled_from(["raw", "done", "yes", "on", "2024.05", "x y"]),
    st.integers(min_value=-5, max_value=10_000),
    st.booleans(),
    st.sampled_from([0.5, 1.25, 2.0, -3.75]),
    st.lists(st.sampled_from(["a", "b", "c"]), min_size=2, max_size=3),
)
ANNOTATIONS = st.none() | st.dictionaries(
    st.sampled_from(["stage", "count", "flag", "ratio", "tags"]), ANNOTATION_VALUES, max_size=3
)
LEVELS = st.sampled_from(["view", "download", "edit", "edit_delete", "administer"])


@st.composite
def own_acls(draw: st.DrawFn) -> dict[str, Any]:
    # Always keep 'self: administer': an ACL without it locks the user out (see report).
    acl: dict[str, Any] = {"self": "administer"}
    if draw(st.booleans()):
        acl["user:bob"] = draw(LEVELS)
    if draw(st.booleans()):
        acl["team:Curators"] = draw(LEVELS)
    if draw(st.booleans()):
        acl["PUBLIC"] = "view"
    if draw(st.booleans()):
        acl["AUTHENTICATED_USERS"] = draw(st.sampled_from(["view", "download"]))
    return acl


@st.composite
def folders(draw: st.DrawFn, names: list[str], depth: int) -> list[dict[str, Any]]:
    chosen = draw(st.lists(st.sampled_from(names), unique=True, max_size=3))
    out = []
    for name in chosen:
        folder: dict[str, Any] = {"name": name}
        found = draw(ANNOTATIONS)
        if found is not None:
            folder["annotations"] = found
        acl = draw(st.sampled_from(["unmanaged", "inherit", "own"]))
        if acl == "inherit":
            folder["acl"] = "inherit"
        elif acl == "own":
            folder["acl"] = draw(own_acls())
        if depth > 0:
            sub = draw(folders(CHILD_NAMES, depth - 1))
            if sub:
                folder["folders"] = sub
        out.append(folder)
    return out


@st.composite
def wikis(draw: st.DrawFn) -> dict[str, Any] | None:
    if not draw(st.booleans()):
        return None
    text = st.text(alphabet="abc XYZ#*\n", min_size=0, max_size=40)
    pages = draw(st.lists(st.sampled_from(["Intro", "Access", "FAQ"]), unique=True, max_size=2))
    return {
        "title": "Home",
        "markdown": draw(text),
        "pages": [{"title": p, "markdown": draw(text)} for p in pages],
    }


@st.composite
def projects(draw: st.DrawFn) -> dict[str, Any]:
    project: dict[str, Any] = {"description": draw(st.sampled_from([None, "one", "two"]))}
    found = draw(ANNOTATIONS)
    if found is not None:
        project["annotations"] = found
    if draw(st.booleans()):
        project["acl"] = draw(own_acls())
    wiki = draw(wikis())
    if wiki is not None:
        project["wiki"] = wiki
    project["folders"] = draw(folders(FOLDER_NAMES, 1))
    return {k: v for k, v in project.items() if v is not None and v != []}


DRIFTS = st.lists(st.sampled_from(["annotation", "acl", "folder", "description"]), max_size=3)


@pytest.fixture(scope="module")
def property_emulator() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(users=USERS, teams=TEAMS)) as emulator:
        yield emulator


COUNTER = itertools.count(1)


def _manifest(ws: Workspace, name: str, body: dict[str, Any], file: str) -> Path:
    document = {"version": 1, "projects": [{"name": name, **body}]}
    path = ws.root / file
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def _drift(api: Api, emulator: Emulator, project: str, kinds: list[str]) -> None:
    for kind in kinds:
        if kind == "annotation":
            current = api.ok("GET", f"/entity/{project}/annotations2")
            current["annotations"]["stage"] = {"type": "STRING", "value": ["drifted"]}
            api.ok("PUT", f"/entity/{project}/annotations2", current)
        elif kind == "acl":
            acl = api.ok("GET", f"/entity/{project}/acl")
            acl["resourceAccess"] = [
                e for e in acl["resourceAccess"] if e["principalId"] != 273948
            ] + [{"principalId": 273948, "accessType": ["READ"]}]
            api.ok("PUT", f"/entity/{project}/acl", acl)
        elif kind == "folder" and lookup(api, "Scratch", project) is None:
            api.folder("Scratch", project)
        elif kind == "description":
            entity = api.ok("GET", f"/entity/{project}")
            entity["description"] = "drifted"
            api.ok("PUT", f"/entity/{project}", entity)


def _check_matches(api: Api, emulator: Emulator, entity: str, spec: dict[str, Any]) -> None:
    """The live entity has what the manifest manages (and nothing it manages differs)."""
    live = annotations(api, entity)
    for key, value in (spec.get("annotations") or {}).items():
        values = value if isinstance(value, list) else [value]
        assert len(live[key]["value"]) == len(values), (key, live[key], value)
    acl = spec.get("acl")
    if acl == "inherit":
        assert own_acl(api, entity) is None
    elif isinstance(acl, dict):
        assert own_acl(api, entity) is not None
    names = sorted(c["name"] for c in children(api, entity))
    for folder in spec.get("folders", []):
        assert names.count(folder["name"]) == 1
        child = lookup(api, folder["name"], entity)
        assert child is not None
        _check_matches(api, emulator, child, folder)


@settings(
    max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "6")),
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(first=projects(), second=projects(), drift=DRIFTS)
def test_apply_converges(
    property_emulator: Emulator,
    first: dict[str, Any],
    second: dict[str, Any],
    drift: list[str],
) -> None:
    emulator = property_emulator
    ws = Workspace(emulator, Path(tempfile.mkdtemp(prefix="sd-property-")))
    api = Api(emulator, emulator.users["alice"])
    name = f"Property {next(COUNTER)}"
    for step, body in enumerate((first, second)):
        manifest = _manifest(ws, name, body, f"step{step}.yaml")
        result = ws.apply(manifest)
        assert result.code == 0, (yaml.safe_dump(body), result.out, result.err)
        again = ws.plan(manifest, "--detailed-exitcode")
        assert again.code == 0, (yaml.safe_dump(body), again.out)
        project = lookup(api, name)
        assert project is not None
        assert MARKER in annotations(api, project)
        _check_matches(api, emulator, project, body)
        if step == 0:
            _drift(api, emulator, project, drift)
