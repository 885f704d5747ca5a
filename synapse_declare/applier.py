"""Execute a plan: parents before children, etags on every write, no write ever sent twice.

Each change runs as its resource kind's apply step (``resources/``, looked up in the registry);
the kinds share :class:`~synapse_declare.resources.base.ApplyContext`, which resolves ambiguous
writes. A write answered with a conflict (412, or an object that appeared since the plan) is
reported and never overwritten. A write whose outcome is unknown (the
connection dropped, a 5xx after sending — :class:`AmbiguousWrite`) is resolved by reading the
object back: if it already has the desired state the step is done; if it is still exactly as the
plan saw it the write is retried (bounded); otherwise it is a conflict. A create is resolved by
looking the entity up by parent and name, so a lost response never creates a duplicate.

Apply stops starting new changes at the first failure, lets running ones finish, and returns what
was done, what failed and what was not attempted; re-running plan/apply converges.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from .client.s3 import DestinationReader
from .client.synapse import SynapseAPI
from .errors import ApiError, NotFound, SynapseDeclareError
from .migration import MigrationOptions
from .plan import Action, Change, Plan
from .progress import Progress
from .resources import registry
from .resources.base import ApplyContext, Operation

log = logging.getLogger(__name__)


@dataclass
class ApplyResult:
    done: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    not_attempted: list[str] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.not_attempted


@dataclass(frozen=True)
class StorageOptions:
    """What apply needs for storage migrations (the CLI builds it from its flags)."""

    migration: MigrationOptions | None = None  # None → its defaults
    # endpoint_url → the reader that verifies copies (None → DestinationReader.from_settings)
    reader_factory: Callable[[str | None], DestinationReader] | None = None


def _execute(ctx: ApplyContext, change: Change) -> str:
    """One actionable change, by its kind's apply step (the registry refuses a kind that has
    none)."""
    return registry.require(change.resource, Operation.APPLY).apply(ctx, change)


def apply_plan(
    api: SynapseAPI,
    plan: Plan,
    *,
    progress: Progress | None = None,
    parallel: int = 3,
    storage: StorageOptions | None = None,
) -> ApplyResult:
    """Apply every actionable change of ``plan`` in dependency order.

    Scheduling is a ready queue by dependency count (Kahn's algorithm): each change counts the
    prerequisites it still waits for, and a finished change decrements its dependents' counts, so
    the scheduler does O(changes + dependencies) work in all — it never rescans what is pending.
    Ready changes start in plan order (a heap on the plan position), at most ``parallel`` at a
    time. A prerequisite that is neither applied, a no-op nor in the plan keeps its dependents
    from starting; they are reported as not attempted.
    """
    progress = progress or Progress()
    options = storage or StorageOptions()
    run = ApplyContext(
        api,
        plan,
        progress,
        migration_options=options.migration,
        reader_factory=options.reader_factory,
    )
    result = ApplyResult()
    pending: list[Change] = []
    for change in plan.changes:
        if change.action is Action.NO_OP:
            registry.kind_of(change.resource).record_existing(run, change)
        else:
            pending.append(change)
    finished: set[str] = {c.address for c in plan.changes if c.action is Action.NO_OP}
    waiting: list[int] = [0] * len(pending)
    dependents: dict[str, list[int]] = {}
    ready: list[int] = []
    for position, change in enumerate(pending):
        for dep in set(change.depends_on):
            if dep not in finished:
                waiting[position] += 1
                dependents.setdefault(dep, []).append(position)
        if not waiting[position]:
            ready.append(position)
    heapq.heapify(ready)
    not_started = set(range(len(pending)))
    total = len(pending)
    started = 0
    stopping = False
    running: dict[Future[str], int] = {}
    interrupted = False
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        while ready or running:
            if interrupted:
                stopping = True
            if not stopping:
                # Start at most `parallel` changes at a time: a change handed to the pool early
                # would still run after a failure, which must stop new changes from starting.
                while ready and len(running) < max(1, parallel):
                    position = heapq.heappop(ready)
                    change = pending[position]
                    not_started.discard(position)
                    started += 1
                    progress.start(change, started, total)
                    running[pool.submit(_execute, run, change)] = position
            if not running:
                break
            try:
                completed, _ = wait(list(running), return_when=FIRST_COMPLETED)
            except KeyboardInterrupt:
                # Ctrl-C: start nothing new, let the writes in flight finish (a second Ctrl-C
                # aborts them), then say what was done.
                progress.note("interrupted: finishing the changes in flight, starting no more")
                interrupted = True
                continue
            for future in completed:
                change = pending[running.pop(future)]
                error = future.exception()
                if error is None:
                    detail = future.result()
                    finished.add(change.address)
                    result.done.append((change.address, detail))
                    progress.done(change, detail)
                    for dependent in dependents.pop(change.address, ()):
                        waiting[dependent] -= 1
                        if not waiting[dependent]:
                            heapq.heappush(ready, dependent)
                else:
                    stopping = True
                    message = str(error).splitlines()[0] if str(error) else type(error).__name__
                    result.failed.append((change.address, message))
                    progress.failed(change, error)
                    if not isinstance(error, (SynapseDeclareError, ApiError, NotFound)):
                        log.error("unexpected error applying %s", change.address, exc_info=error)
                        pool.shutdown(wait=True, cancel_futures=True)
                        raise error
    result.not_attempted = [pending[p].address for p in sorted(not_started)]
    result.failed.extend(run.soft_failures)
    result.ids = dict(run.ids)
    if interrupted:
        raise ApplyInterrupted(result)
    return result


class ApplyInterrupted(KeyboardInterrupt):
    """Ctrl-C during apply, raised after the changes in flight finished; carries the result."""

    def __init__(self, result: ApplyResult) -> None:
        super().__init__("apply interrupted")
        self.result = result
