"""Apply's scheduler (a ready queue by dependency count): every change starts only after the
changes it depends on are done, ready changes start in plan order, and a failure stops new starts
while its dependents are reported as not attempted. Against the emulator over HTTP."""

from __future__ import annotations

import textwrap
import threading
from pathlib import Path
from typing import Any

from test_migration_support import product_api

from synapse_declare.applier import apply_plan
from synapse_declare.emulator import Emulator
from synapse_declare.engine import plan_manifest
from synapse_declare.plan import Action, Change, Plan
from synapse_declare.progress import Progress
from synapse_declare.validate import load_manifest

MANIFEST = """
    version: 1
    projects:
      - name: {name}
        wiki:
          title: Home
          markdown: Home.
          pages:
            - {{title: A, markdown: a, pages: [{{title: A1, markdown: a1}}]}}
            - {{title: B, markdown: b}}
        folders:
          - name: One
            folders:
              - name: One.1
                folders: [{{name: One.1.1}}, {{name: One.1.2}}]
              - name: One.2
          - name: Two
            folders: [{{name: Two.1}}, {{name: Two.2}}]
          - name: Three
"""


class Recorder(Progress):
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def start(self, change: Change, index: int, total: int) -> None:
        with self.lock:
            self.events.append(("start", change.address))

    def done(self, change: Change, detail: str) -> None:
        with self.lock:
            self.events.append(("done", change.address))

    def failed(self, change: Change, error: BaseException) -> None:
        with self.lock:
            self.events.append(("failed", change.address))


def _plan(emulator: Emulator, tmp_path: Path, name: str) -> Plan:
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(MANIFEST.format(name=name)).lstrip(), encoding="utf-8")
    return plan_manifest(product_api(emulator), load_manifest([path]))


def _reference_order(plan: Plan) -> list[str]:
    """Sequential reference: repeatedly the first change in plan order whose prerequisites are
    done (what the old rescanning scheduler did, at O(n²))."""
    pending = [c for c in plan.changes if c.action is not Action.NO_OP]
    done = {c.address for c in plan.changes if c.action is Action.NO_OP}
    order = []
    while pending:
        change = next(c for c in pending if all(d in done for d in c.depends_on))
        pending.remove(change)
        done.add(change.address)
        order.append(change.address)
    return order


def test_one_at_a_time_follows_dependencies_then_plan_order(
    emulator: Emulator, tmp_path: Path
) -> None:
    plan = _plan(emulator, tmp_path, "Scheduled serially")
    assert len([c for c in plan.changes if c.depends_on]) >= 10
    recorder = Recorder()
    result = apply_plan(product_api(emulator), plan, progress=recorder, parallel=1)
    assert result.ok
    started = [address for kind, address in recorder.events if kind == "start"]
    assert started == _reference_order(plan)


def test_in_parallel_nothing_starts_before_its_prerequisites_are_done(
    emulator: Emulator, tmp_path: Path
) -> None:
    plan = _plan(emulator, tmp_path, "Scheduled in parallel")
    recorder = Recorder()
    result = apply_plan(product_api(emulator), plan, progress=recorder, parallel=3)
    assert result.ok
    by_address = {c.address: c for c in plan.changes}
    done: set[str] = {c.address for c in plan.changes if c.action is Action.NO_OP}
    overlapping = 0
    running: set[str] = set()
    for kind, address in recorder.events:
        if kind == "start":
            missing = [d for d in by_address[address].depends_on if d not in done]
            assert not missing, f"{address} started before {missing} were done"
            running.add(address)
            overlapping = max(overlapping, len(running))
        else:
            done.add(address)
            running.discard(address)
    assert overlapping > 1, "independent changes never ran side by side"
    assert sorted(a for k, a in recorder.events if k == "done") == sorted(
        c.address for c in plan.changes if c.action is not Action.NO_OP
    )


def test_a_failure_leaves_its_dependents_not_attempted(
    emulator: Emulator, tmp_path: Path, api_for: Any
) -> None:
    plan = _plan(emulator, tmp_path, "Scheduled to fail")
    # Someone else takes the project's name between plan and apply: its create fails (409).
    api_for(emulator, "bob").project("Scheduled to fail")
    recorder = Recorder()
    result = apply_plan(product_api(emulator), plan, progress=recorder, parallel=3)
    assert not result.ok
    assert [a for k, a in recorder.events if k == "start"] == [a for a, _ in result.failed]
    everything = {c.address for c in plan.changes if c.action is not Action.NO_OP}
    assert set(result.not_attempted) == everything - {a for a, _ in result.failed}
    assert result.not_attempted == sorted(
        result.not_attempted, key=[c.address for c in plan.changes].index
    )
