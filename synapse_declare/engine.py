"""The library API: connect, plan, apply — what the CLI (and any Python caller) composes.

Example::

    api = connect(resolve_credentials())
    plan = plan_manifest(api, load_manifest(["synapse.yaml"]))
    result = apply_plan(api, plan)
"""

from __future__ import annotations

from datetime import datetime

from .applier import ApplyResult, apply_plan
from .client.synapse import SynapseAPI, connect
from .model import Manifest
from .plan import DEFAULT_MAX_DELETIONS, Plan
from .planner import build_plan
from .resources.team import DEFAULT_MAX_REMOVALS
from .state import read_state
from .targeting import refuse_adoption, select

__all__ = ["ApplyResult", "apply_plan", "connect", "plan_manifest"]


def plan_manifest(
    api: SynapseAPI,
    manifest: Manifest,
    *,
    audit_public: bool = False,
    max_removals: int = DEFAULT_MAX_REMOVALS,
    max_deletions: int = DEFAULT_MAX_DELETIONS,
    targets: tuple[str, ...] = (),
    excludes: tuple[str, ...] = (),
    adopt: bool = True,
    now: datetime | None = None,
) -> Plan:
    """Read exactly the live state the manifest addresses and diff it. Never writes.

    ``audit_public``: also look for PUBLIC / AUTHENTICATED_USERS grants on every entity under
    the managed projects (one children listing per folder), not only on what the plan reads.
    ``max_deletions``: a plan that would prune more folders, or remove more undeclared own ACLs
    (``folders_inherit: strict``, which also turns the walk on), is refused (pruning.py,
    strict_acls.py).
    ``now``: the moment the plan is made at (a saved plan is re-made at its own moment, so what
    depends on the clock, such as an invitation's expiry, is what was reviewed).
    """
    live = read_state(api, manifest, audit_public=audit_public, max_deletions=max_deletions)
    plan = build_plan(
        manifest, live, now=now, max_removals=max_removals, max_deletions=max_deletions
    )
    if not adopt:
        refuse_adoption(manifest, plan)
    # A partial plan (--target/--exclude) reads and checks everything, and keeps only its part.
    return select(plan, targets, excludes)
