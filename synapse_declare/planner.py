"""Desired (manifest) vs live (Synapse) → an ordered :class:`~synapse_declare.plan.Plan`.

A pure function: no I/O. The planner orchestrates; each kind owns its diff (``plan`` on the
:class:`~synapse_declare.resources.base.ResourceKind` protocol, in ``resources/<kind>.py``). What
is decided here is what spans kinds: the order the registry gives (teams, the container tree,
storage locations, each container's attached changes), dependencies on declared teams
(``link_pending``), pruning, the guards (certification, policies), and the summaries (effective
access, leftovers). Semantics are in the README.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from .consequences import access_consequences, plan_worlds
from .errors import PolicyViolation
from .leftovers import find_leftovers
from .model import ContainerSpec, Manifest
from .plan import DEFAULT_MAX_DELETIONS, Change, Plan
from .policies import check_policies, user_principals
from .pruning import plan_deletions
from .resources import registry
from .resources import team as teams
from .resources.acl import desired_acl
from .resources.base import Address, PlanContext, ResourceKind, owner_of
from .state import LiveState
from .strict_acls import cleared, plan_removals, public_access


def build_plan(
    manifest: Manifest,
    live: LiveState,
    *,
    now: datetime | None = None,
    max_removals: int = teams.DEFAULT_MAX_REMOVALS,
    max_deletions: int = DEFAULT_MAX_DELETIONS,
) -> Plan:
    moment = now or datetime.now(UTC)
    ctx = registry.plan_context(manifest, live, now=moment, max_removals=max_removals)
    leading = _plan_once(registry.LEADING, manifest, live, ctx)
    tree = [c for project in manifest.projects for c in _plan_tree(project, live, ctx)]
    shared = _plan_once(registry.SHARED, manifest, live, ctx)
    attached = {spec.address: _plan_attached(spec, live, ctx) for spec in manifest.walk()}
    ordered = [
        *leading,
        *teams.link_pending([*shared, *_attach(tree, attached)], live.teams),
    ]
    deletions = plan_deletions(manifest, live, max_deletions)
    ordered.extend(deletions)
    gone = {Address.parse(c.address) for c in deletions}
    warnings, public = ctx.warnings, ctx.public
    inherit_again = plan_removals(manifest, live, max_deletions, warnings)  # strict mode
    ordered.extend(inherit_again)
    if live.certified is False:
        _refuse_uncertified(manifest, live, ordered)  # each kind says what Synapse refuses
    # An exposure whose ACL this plan removes is not left outside the manifest: it goes.
    public.extend(public_access(live.exposures, ordered))
    worlds = plan_worlds(manifest, live, desired_acl, leading)
    # Policies judge the world after this plan, before anything is written.
    check_policies(manifest, worlds, user_principals(manifest, live))
    warnings.extend(live.notes)  # what the identity search could not settle (lifecycle.py)
    access_changes, unread = access_consequences(worlds)
    if unread:
        shown = ", ".join(unread[:3]) + (f" and {len(unread) - 3} more" if len(unread) > 3 else "")
        warnings.append(
            f"the effective-access summary leaves out {shown}: an own ACL governing "
            "them was not read (the manifest leaves it alone); declare its acl: to include them"
        )
    created_at = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return Plan(
        target=live.target,
        manifest_digest=manifest.digest,
        manifest_files=manifest.files,
        changes=tuple(ordered),
        observed=dict(live.observed),
        # One warning per line however many places produce it (warnings are printed once).
        warnings=tuple(dict.fromkeys(warnings)),
        created_at=created_at,
        public_access=tuple(dict.fromkeys(public)),
        audit_public=live.audit_public,
        access_changes=access_changes,
        leftovers=tuple(
            item
            for item in find_leftovers(manifest, live)
            if Address.parse(item.address).owner() not in gone
            and item.address not in cleared(inherit_again)
        ),
    )


def _plan_once(
    kinds: Sequence[ResourceKind[Manifest]], manifest: Manifest, live: LiveState, ctx: PlanContext
) -> list[Change]:
    """Kinds planned once for the whole manifest, in the registry's order."""
    return [change for kind in kinds for change in kind.plan(manifest, live, ctx)]


def _plan_tree(spec: ContainerSpec, live: LiveState, ctx: PlanContext) -> list[Change]:
    """A container's tree kinds, then its sub-folders depth first: parents before children, so
    a create's dependants follow it. A container restored from the trash ends its branch: what
    it holds is read, and compared, by the next plan."""
    changes: list[Change] = []
    for kind in registry.TREE:
        if spec.address in ctx.restored:
            return changes
        changes.extend(kind.plan(spec, live, ctx))
    for child in spec.folders:
        changes.extend(_plan_tree(child, live, ctx))
    return changes


def _plan_attached(spec: ContainerSpec, live: LiveState, ctx: PlanContext) -> list[Change]:
    """A container's attached kinds (upload destination, migration) when the manifest
    declares storage: they are shown right after the container's own change."""
    if not ctx.manifest.storage_locations:
        return []
    return [change for kind in registry.ATTACHED for change in kind.plan(spec, live, ctx)]


def _attach(tree: Sequence[Change], attached: dict[str, list[Change]]) -> list[Change]:
    """Each container's attached changes right after its own; those of a container with no
    change (inside one restored from the trash) wait for the next plan."""
    ordered: list[Change] = []
    for change in tree:
        ordered.append(change)
        ordered.extend(attached.pop(change.address, []))
    return ordered


def _refuse_uncertified(manifest: Manifest, live: LiveState, changes: list[Change]) -> None:
    refused = [c for c in changes if registry.kind_of(c.resource).needs_certification(c)]
    if not refused:
        return
    specs = {spec.address: spec for spec in manifest.walk()}
    first = specs.get(owner_of(refused[0].address))
    shown = ", ".join(c.address for c in refused[:3])
    more = f" and {len(refused) - 3} more" if len(refused) > 3 else ""
    raise PolicyViolation(
        f"you ({live.target.user_name}) are not a certified Synapse user, and Synapse lets only "
        "certified users create or change folders, files and wiki pages (and let "
        f"AUTHENTICATED_USERS download); this plan needs that for {shown}{more}",
        location=first.location if first is not None else None,
        hint="pass Synapse's certification quiz (synapse.org → your profile → Certification), "
        "or have a certified user or CI bot apply the manifest; projects themselves need no "
        "certification",
    )
