"""Apply under failure (engineering.md §C.3 #9, #12, #14-#17): write-time races, partial
applies, retries on throttling and server faults, no retry on client errors, lost responses,
timeouts. Faults are injected by the emulator (the HTTP boundary), never by patching our code.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import Api, read_exchanges
from reconcile_support import (
    READ_ONLY_POST_SUFFIXES,
    Workspace,
    actionable,
    annotations,
    lookup,
    mutating_exchanges,
    own_acl,
    tree,
)

from synapse_declare.emulator import Emulator
from synapse_declare.emulator.util import SynapseError

TREE = """
    version: 1
    projects:
      - name: {name}
        description: Under fire.
        annotations:
          program: faults
          sample_count: 3
        acl:
          self: administer
          team:Curators: edit
        wiki:
          title: Home
          markdown: Home page.
          pages:
            - title: Data access
              markdown: Ask.
            - title: Contributing
              markdown: Edit, plan, apply.
        folders:
          - name: Raw Data
            annotations: {{stage: raw}}
            folders:
              - name: RNAseq
              - name: WGS
                acl: inherit
          - name: Releases
            acl:
              self: administer
              PUBLIC: view
            folders:
              - name: "2024-05"
              - name: "2024-06"
          - name: Scratch
"""


EXPECTED_FOLDERS = {
    "Raw Data": ["RNAseq", "WGS"],
    "Releases": ["2024-05", "2024-06"],
    "Scratch": [],
}


def _check_converged(ws: Workspace, manifest: Path, name: str, api: Api) -> None:
    """Exactly one of each entity and wiki page, and the next plan is empty."""
    live = tree(api, name)
    assert live is not None
    children = live["children"]
    assert sorted(children) == sorted(EXPECTED_FOLDERS)
    for key, nodes in children.items():
        assert len(nodes) == 1, f"{key} appears {len(nodes)} times"
        assert sorted(nodes[0]["children"]) == EXPECTED_FOLDERS[key]
        for grandchild, more in nodes[0]["children"].items():
            assert len(more) == 1, f"{key}/{grandchild} appears {len(more)} times"
    assert live["annotations"] == {"program": ["faults"], "sample_count": ["3"]}
    assert live["wiki"] == [(None, "Home"), ("Home", "Contributing"), ("Home", "Data access")]
    assert children["Releases"][0]["acl"] is not None
    assert children["Raw Data"][0]["children"]["WGS"][0]["acl"] is None
    again = ws.plan(manifest, "--detailed-exitcode")
    assert again.code == 0, again.out + again.err


def _writes(exchanges: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in exchanges if e["method"] in ("POST", "PUT", "DELETE")]


# ---------------------------------------------------------------------------------------------
# Write-time races (§C.3 #9)


class Race:
    """A ``before_write`` hook that makes one out-of-band change (through the REST API, as a
    separate client) right before the first mutating request that ``matches``."""

    def __init__(self, emulator: Emulator, matches: Any, change: Any) -> None:
        self.matches, self.change = matches, change
        self.fired = threading.Event()
        self.api = Api(emulator, emulator.users["alice"])

    def __call__(self, ctx: Any) -> None:
        if self.fired.is_set() or not self.matches(ctx.request.method, ctx.request.path):
            return
        self.fired.set()  # before the change: its own request passes through this hook too
        self.change(self.api, ctx.request.path)


def _oob_annotation(api: Api, path: str) -> None:
    entity = path.split("/entity/")[1].split("/", maxsplit=1)[0]
    current = api.ok("GET", f"/entity/{entity}/annotations2")
    current["annotations"]["program"] = {"type": "STRING", "value": ["out-of-band"]}
    api.ok("PUT", f"/entity/{entity}/annotations2", current)


def _oob_description(api: Api, path: str) -> None:
    entity = path.split("/entity/")[1].split("/", maxsplit=1)[0]
    current = api.ok("GET", f"/entity/{entity}")
    current["description"] = "out-of-band"
    api.ok("PUT", f"/entity/{entity}", current)


def _oob_acl(api: Api, path: str) -> None:
    entity = path.split("/entity/")[1].split("/", maxsplit=1)[0]
    current = api.ok("GET", f"/entity/{entity}/acl")
    current["resourceAccess"].append({"principalId": 273948, "accessType": ["READ"]})
    api.ok("PUT", f"/entity/{entity}/acl", current)


def _oob_wiki(api: Api, path: str) -> None:
    current = api.ok("GET", path.split("/repo/v1")[1])
    current["markdown"] = "out-of-band"
    api.ok("PUT", path.split("/repo/v1")[1], current)


RACES = {
    "annotations": ("PUT", _oob_annotation, "program: faults", "program: v2"),
    "description": ("PUT", _oob_description, "Under fire.", "Changed."),
    "acl": ("PUT", _oob_acl, "team:Curators: edit", "team:Curators: view"),
    "wiki": ("PUT", _oob_wiki, "Home page.", "New home page."),
}


def _tree(
    make_emulator: Any, tmp_path: Path, api_for: Any, name: str
) -> tuple[Emulator, Workspace, Api, Path]:
    """A fresh emulator, a workspace, alice's REST access and the TREE manifest for ``name``."""
    emulator = make_emulator()
    ws = Workspace(emulator, tmp_path)
    return emulator, ws, api_for(emulator, "alice"), ws.manifest(TREE.format(name=name))


@pytest.mark.parametrize("kind", sorted(RACES))
def test_write_time_412_is_a_conflict_never_an_overwrite(
    make_emulator: Any, tmp_path: Path, api_for: Any, kind: str
) -> None:
    name = f"Race {kind}"
    emulator, ws, alice, manifest = _tree(make_emulator, tmp_path, api_for, name)
    assert ws.apply(manifest).code == 0
    method, change, old, new = RACES[kind]
    manifest.write_text(manifest.read_text().replace(old, new))
    project = lookup(alice, name)
    assert project is not None
    target = {
        "annotations": f"/entity/{project}/annotations2",
        "description": f"/entity/{project}",
        "acl": f"/entity/{project}/acl",
        "wiki": f"/entity/{project}/wiki/",
    }[kind]
    race = Race(
        emulator,
        lambda m, p: m == method and (p.endswith(target) or (kind == "wiki" and target in p)),
        change,
    )
    emulator.knobs.before_write = race
    before = len(read_exchanges(emulator))
    result = ws.apply(manifest)
    emulator.knobs.before_write = None
    assert race.fired.is_set(), "the race never happened"
    assert result.code == 1, result.err
    assert "nothing was overwritten" in result.err
    assert "412" in result.err or "changed" in result.err
    # Our write was sent once and refused with 412; it was not retried.
    ours = [e for e in _writes(read_exchanges(emulator)[before:]) if e["status"] == 412]
    assert len(ours) == 1, ours
    # The out-of-band change survived.
    if kind == "annotations":
        assert annotations(alice, project)["program"]["value"] == ["out-of-band"]
    elif kind == "description":
        assert alice.ok("GET", f"/entity/{project}")["description"] == "out-of-band"
    elif kind == "acl":
        assert 273948 in (own_acl(alice, project) or {})
    else:
        root = alice.ok("GET", f"/entity/{project}/wiki")
        assert root["markdown"] == "out-of-band"


# ---------------------------------------------------------------------------------------------
# Partial apply (§C.3 #12)


class FailNth:
    """Answer the n-th write with a non-retryable error, before it runs."""

    def __init__(self, n: int, status: int = 403) -> None:
        self.n, self.status = n, status
        self.count = 0
        self.lock = threading.Lock()
        self.failed_path: str | None = None

    def __call__(self, ctx: Any) -> None:
        request = ctx.request
        if request.method == "POST" and request.path.endswith(READ_ONLY_POST_SUFFIXES):
            return  # Synapse's read-only POSTs (lookups, bundles) are not writes
        with self.lock:
            self.count += 1
            if self.count != self.n:
                return
            self.failed_path = ctx.request.path
        raise SynapseError(self.status, "You lack UPDATE access to the requested entity.")


@pytest.mark.parametrize("parallel", ["1", "3"])
def test_partial_apply_reports_and_converges(
    make_emulator: Any, tmp_path: Path, api_for: Any, parallel: str
) -> None:
    name = f"Partial {parallel}"
    emulator, ws, alice, manifest = _tree(make_emulator, tmp_path, api_for, name)
    planned = ws.plan_json(manifest)
    total = len(actionable(planned))
    failer = FailNth(4)
    emulator.knobs.before_write = failer
    result = ws.run("apply", manifest, "--auto-approve", "--parallel", parallel, *ws.connection())
    emulator.knobs.before_write = None
    assert result.code == 1
    summary = [line for line in result.err.splitlines() if line.startswith("Apply stopped")]
    assert len(summary) == 1, result.err
    done = int(summary[0].split(": ")[1].split(" done")[0])
    failed = [line for line in result.err.splitlines() if line.startswith("  failed: ")]
    skipped = [line for line in result.err.splitlines() if line.startswith("  not attempted: ")]
    assert len(failed) == 1
    assert "403" in failed[0]
    assert done + len(failed) + len(skipped) == total
    assert skipped, "a failure part-way leaves later changes not attempted"
    if parallel == "1":
        # One change at a time: nothing starts after the failure.
        assert done <= 3
    # The remainder is exactly what a new plan shows.
    remainder = actionable(ws.plan_json(manifest))
    assert len(remainder) == len(failed) + len(skipped)
    # Re-applying converges without duplicates.
    again = ws.apply(manifest)
    assert again.code == 0, again.err
    _check_converged(ws, manifest, name, alice)


def test_uncertified_user_is_refused_before_any_write(
    make_emulator: Any, tmp_path: Path, api_for: Any
) -> None:
    """carol is not certified: Synapse would let her create the project and then refuse every
    folder, so the plan refuses up front (issue 8) — no write at all, not a half-built tree.
    (A 403 that does happen is never retried: test_client_errors_are_attempted_exactly_once.)"""
    emulator = make_emulator()
    ws = Workspace(emulator, tmp_path)
    manifest = ws.manifest(TREE.format(name="Carol partial").replace("team:Curators: edit", ""))
    result = ws.apply(manifest, user="carol")
    assert result.code == 1
    assert "you (carol) are not a certified Synapse user" in result.err
    assert mutating_exchanges(read_exchanges(emulator)) == []


# ---------------------------------------------------------------------------------------------
# No retry on client errors (§C.3 #15)


@pytest.mark.parametrize("status", [400, 403, 404, 409, 412])
def test_client_errors_are_attempted_exactly_once(
    make_emulator: Any, tmp_path: Path, status: int
) -> None:
    emulator = make_emulator()
    ws = Workspace(emulator, tmp_path)
    manifest = ws.manifest("version: 1\nprojects:\n  - name: Once\n    folders:\n      - name: F\n")
    failer = FailNth(1, status)
    emulator.knobs.before_write = failer
    result = ws.apply(manifest)
    emulator.knobs.before_write = None
    assert result.code == 1, result.err
    attempts = [e for e in _writes(read_exchanges(emulator)) if e["path"] == failer.failed_path]
    assert [e["status"] for e in attempts] == [status]


def test_lookup_404_and_bad_token_401_are_not_retried(make_emulator: Any, tmp_path: Path) -> None:
    emulator = make_emulator()
    ws = Workspace(emulator, tmp_path)
    manifest = ws.manifest("version: 1\nprojects:\n  - name: Nowhere\n")
    assert ws.plan(manifest).code == 0
    lookups = [e for e in read_exchanges(emulator) if e["path"].endswith("/entity/child")]
    assert [e["status"] for e in lookups] == [404]
    before = len(read_exchanges(emulator))
    assert ws.run("plan", manifest, *ws.connection("wrong-token")).code == 1
    assert [e["status"] for e in read_exchanges(emulator)[before:]] == [401]


def test_name_conflict_at_write_time_is_reported_once(
    make_emulator: Any, tmp_path: Path, api_for: Any
) -> None:
    """Someone creates the folder between plan and write: 409, reported as a conflict, the
    other folder untouched, nothing created twice."""
    emulator = make_emulator()
    ws = Workspace(emulator, tmp_path)
    bob: Api = api_for(emulator, "bob")
    base = ws.manifest(
        "version: 1\nprojects:\n  - name: Clash\n    acl:\n      self: administer\n"
        "      user:bob: edit\n",
        "base.yaml",
    )
    assert ws.apply(base).code == 0
    manifest = ws.manifest(base.read_text() + "    folders:\n      - name: F\n", "with-folder.yaml")
    alice: Api = api_for(emulator, "alice")
    project = lookup(alice, "Clash")
    race = Race(
        emulator,
        lambda m, p: p.endswith("/entity/bundle2/create"),
        lambda api, path: bob.folder("F", str(project)),
    )
    emulator.knobs.before_write = race
    result = ws.apply(manifest)
    emulator.knobs.before_write = None
    assert race.fired.is_set()
    assert result.code == 1
    assert "appeared there" in result.err and "nothing was overwritten" in result.err
    creates = [e for e in read_exchanges(emulator) if e["path"].endswith("/bundle2/create")]
    assert [e["status"] for e in creates][-1] == 409
    assert sum(1 for e in creates if e["status"] == 409) == 1
    folder = lookup(alice, "F", project)
    assert alice.ok("GET", f"/entity/{folder}")["createdBy"] == str(emulator.principal_ids["bob"])


# ---------------------------------------------------------------------------------------------
# Timeouts and lost responses (§C.3 #16, #17)


def test_read_timeout_is_typed_and_bounded(make_emulator: Any, tmp_path: Path) -> None:
    emulator = make_emulator(latency_ms=2500)
    ws = Workspace(emulator, tmp_path)
    manifest = ws.manifest("version: 1\nprojects:\n  - name: Slow\n")
    result = ws.run("plan", manifest, *ws.connection(), "--timeout", "0.5")
    assert result.code == 1
    assert "no answer from Synapse within 0.5s" in result.err
    assert result.seconds < 0.5 + 1.0, f"took {result.seconds:.1f}s: retried a timeout?"


def test_write_whose_response_times_out_is_resolved_not_duplicated(
    make_emulator: Any, tmp_path: Path, api_for: Any
) -> None:
    """The first create is slow (it commits after the client gave up): apply reads back, and
    whichever way the race goes, exactly one project and one folder exist."""
    emulator = make_emulator()
    ws = Workspace(emulator, tmp_path)
    alice: Api = api_for(emulator, "alice")
    manifest = ws.manifest(
        "version: 1\nprojects:\n  - name: Timed out\n    folders:\n      - name: F\n"
    )
    slow_once = threading.Event()

    def delay_first_create(ctx: Any) -> None:
        if ctx.request.path.endswith("/bundle2/create") and not slow_once.is_set():
            slow_once.set()
            time.sleep(1.5)

    emulator.knobs.before_write = delay_first_create
    result = ws.run("apply", manifest, "--auto-approve", "--timeout", "0.5", *ws.connection())
    time.sleep(1.2)  # let the slow request finish on the server
    emulator.knobs.before_write = None
    assert slow_once.is_set()
    assert result.code in (0, 1), result.err
    assert "Traceback" not in result.err, result.err
    project = lookup(alice, "Timed out")
    assert project is not None
    assert [c["name"] for c in _children(alice, project)] in ([], ["F"])
    final = ws.apply(manifest)
    assert final.code == 0, final.err
    assert [c["name"] for c in _children(alice, project)] == ["F"]


def _children(api: Api, parent: str) -> list[dict[str, Any]]:
    return list(
        api.ok("POST", "/entity/children", {"parentId": parent, "includeTypes": ["folder"]})["page"]
    )


# ---------------------------------------------------------------------------------------------
# Retries under injected faults (§C.3 #14, #16)


@pytest.mark.fault
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_apply_converges_under_server_faults(
    make_emulator: Any, tmp_path: Path, api_for: Any, seed: int
) -> None:
    name = f"Faults {seed}"
    emulator, ws, alice, manifest = _tree(make_emulator, tmp_path, api_for, name)
    emulator.knobs.set_faults(0.3, seed)
    result = ws.apply(manifest)
    emulator.knobs.set_faults(0.0)
    assert result.code == 0, result.err
    statuses = Counter(e["status"] for e in read_exchanges(emulator))
    assert statuses[503] + statuses[500] + statuses[None] >= 2, statuses
    _check_converged(ws, manifest, name, alice)


GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.fault
@pytest.mark.parametrize("seed", [11, 12, 13])
@pytest.mark.parametrize("case", ["update", "acl_inherit"])
def test_updates_converge_under_server_faults(
    make_emulator: Any, tmp_path: Path, case: str, seed: int
) -> None:
    """Entity, annotation, ACL (update, create, delete) and wiki updates, each write
    answered by a fault 30% of the time: resolved by reading back, never overwritten."""
    emulator = make_emulator()
    ws = Workspace(emulator, tmp_path)
    before = ws.apply(GOLDEN / case / "before.yaml")
    assert before.code == 0, before.err
    manifest = GOLDEN / case / "manifest.yaml"
    emulator.knobs.set_faults(0.3, seed)
    result = ws.apply(manifest)
    emulator.knobs.set_faults(0.0)
    assert result.code == 0, result.err
    faulted = [e for e in _writes(read_exchanges(emulator)) if e["status"] in (None, 500, 503)]
    assert faulted, "no write met a fault: pick other seeds"
    again = ws.plan(manifest, "--detailed-exitcode")
    assert again.code == 0, again.out


@pytest.mark.fault
@pytest.mark.parametrize("kind", ["drop-after", "503-after", "500-after"])
def test_create_whose_response_was_lost_is_not_repeated(
    make_emulator: Any, tmp_path: Path, api_for: Any, kind: str
) -> None:
    """The create committed but its answer was lost: apply finds the entity by parent and
    name (or the wiki page by title) instead of creating it again; no 409, no duplicate."""
    name = f"Lost {kind}"
    emulator, ws, alice, manifest = _tree(make_emulator, tmp_path, api_for, name)
    emulator.knobs.set_faults(0.3, 7, [kind])
    result = ws.apply(manifest)
    emulator.knobs.set_faults(0.0)
    assert result.code == 0, result.err
    exchanges = read_exchanges(emulator)
    lost_creates = [
        e
        for e in exchanges
        if e["method"] == "POST"
        and (e["path"].endswith("/bundle2/create") or e["path"].endswith("/wiki"))
        and e["status"] != 201
    ]
    assert lost_creates, "no create lost its response: pick another seed"
    assert not [e for e in exchanges if e["status"] == 409]
    assert "the write had taken effect" in result.err
    _check_converged(ws, manifest, name, alice)


@pytest.mark.fault
def test_apply_converges_under_concurrency_throttle(
    make_emulator: Any, tmp_path: Path, api_for: Any
) -> None:
    # 20 ms per request: parallel changes overlap even on a loaded machine, so the limit bites.
    emulator = make_emulator(max_concurrent=1, latency_ms=20)
    ws = Workspace(emulator, tmp_path)
    alice: Api = api_for(emulator, "alice")
    manifest = ws.manifest(TREE.format(name="Throttled"))
    result = ws.run("apply", manifest, "--auto-approve", "--parallel", "3", *ws.connection())
    assert result.code == 0, result.err
    assert any(e["status"] == 429 for e in read_exchanges(emulator)), "never throttled"
    emulator.knobs.max_concurrent = None
    _check_converged(ws, manifest, "Throttled", alice)


def test_default_parallelism_never_trips_synapses_concurrency_throttle(
    make_emulator: Any, tmp_path: Path
) -> None:
    """Synapse allows 3 concurrent requests per user; plan and apply stay within it."""
    emulator = make_emulator(max_concurrent=3, latency_ms=20)
    ws = Workspace(emulator, tmp_path)
    manifest = ws.manifest(TREE.format(name="Within the throttle"))
    assert ws.apply(manifest).code == 0
    assert ws.plan(manifest, "--detailed-exitcode").code == 0
    assert not [e for e in read_exchanges(emulator) if e["status"] == 429]


@pytest.mark.fault
@pytest.mark.slow
def test_apply_converges_under_rate_throttle(
    make_emulator: Any, tmp_path: Path, api_for: Any
) -> None:
    """Synapse allows N requests per minute and sends no Retry-After: the client's default
    backoff must outlast the window."""
    emulator = make_emulator(max_per_minute=10)
    ws = Workspace(emulator, tmp_path)
    alice: Api = api_for(emulator, "alice")
    manifest = ws.manifest(TREE.format(name="Rate limited"))
    token = ws.token_file("alice")
    result = ws.run(
        "apply",
        manifest,
        "--auto-approve",
        "--endpoint",
        emulator.base_url,
        "--token-file",
        token,
    )
    assert result.code == 0, result.err
    assert any(e["status"] == 429 for e in read_exchanges(emulator)), "never throttled"
    emulator.knobs.max_per_minute = None
    _check_converged(ws, manifest, "Rate limited", alice)
