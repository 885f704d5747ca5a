"""The resource map: plan ``resource`` value → the kind that plans, applies and shows it.

Adding a kind is adding its module and one line here (see CONTRIBUTING.md). The registry is
also where an operation a kind does not implement is refused, with a clear error, instead of a
hook that pretends to work.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..model import ContainerSpec, Manifest
from ..plan import Resource
from ..storage import LiveStorage
from .acl import ACL, known_names
from .annotations import ANNOTATIONS
from .base import (
    BundleFlags,
    Operation,
    PlanContext,
    Reader,
    ResourceKind,
    StorageObserver,
    UnsupportedOperation,
)
from .container import CONTAINER
from .migration import MIGRATION
from .storage import STORAGE_LOCATION, UPLOAD_DESTINATION
from .team import TEAM
from .wiki import WIKI

if TYPE_CHECKING:
    from ..state import LiveContainer, LiveState

KINDS: tuple[ResourceKind[Any], ...] = (
    CONTAINER,
    WIKI,
    STORAGE_LOCATION,
    UPLOAD_DESTINATION,
    MIGRATION,
    TEAM,
)
# Everything the state reader asks for an entity's bundle: kinds, and the aspects written inside
# a container's own change.
READERS: tuple[Reader, ...] = (*KINDS, ANNOTATIONS, ACL)

# The planning order (the planner walks these; changes, warnings and refusals come out in it):
# 1. once per manifest, before anything else: teams (ACLs below may name them);
LEADING: tuple[ResourceKind[Manifest], ...] = (TEAM,)
# 2. per declared container, parents first: its own change, then its wiki (a container restored
#    from the trash stops here: what it holds is compared by the next plan);
TREE: tuple[ResourceKind[ContainerSpec], ...] = (CONTAINER, WIKI)
# 3. once per manifest, after the tree: storage locations (shown before every container);
SHARED: tuple[ResourceKind[Manifest], ...] = (STORAGE_LOCATION,)
# 4. per declared container, shown right after the container's own change (they need it).
ATTACHED: tuple[ResourceKind[ContainerSpec], ...] = (UPLOAD_DESTINATION, MIGRATION)
# What is observed from the storage read (after the entity walk) for stale-plan checks.
STORAGE_OBSERVERS: tuple[StorageObserver, ...] = (STORAGE_LOCATION, UPLOAD_DESTINATION, MIGRATION)

_BY_RESOURCE: dict[Resource, ResourceKind[Any]] = {
    r: kind for kind in KINDS for r in kind.resources
}


def kind_of(resource: Resource) -> ResourceKind[Any]:
    """The kind owning ``resource``; every :class:`Resource` value has exactly one."""
    try:
        return _BY_RESOURCE[resource]
    except KeyError:
        raise UnsupportedOperation(f"no resource kind handles {resource.value!r}") from None


def require(resource: Resource, operation: Operation) -> ResourceKind[Any]:
    """The kind for ``resource`` if it implements ``operation``; a clear error otherwise."""
    kind = kind_of(resource)
    if operation not in kind.operations:
        supported = ", ".join(sorted(op.value for op in kind.operations))
        raise UnsupportedOperation(
            f"{operation.value} is not implemented for {kind.label(resource)} resources "
            f"(they support: {supported})",
            hint=f"leave {kind.label(resource)} resources out of the {operation.value}",
        )
    return kind


def bundle_flags(spec: ContainerSpec, own_acl: bool) -> BundleFlags:
    """The union of what every reader needs from ``spec``'s ``bundle2``: one request per entity.
    Permissions ride along in that same request whenever one is made (no extra call), so the
    plan can refuse what the user may not do."""
    flags = BundleFlags()
    for reader in READERS:
        flags |= reader.bundle_flags(spec, own_acl)
    return flags | BundleFlags(permissions=True) if flags.any else flags


def observe(spec: ContainerSpec, live: LiveContainer | None) -> dict[str, str | None]:
    """Everything every reader observes of one declared entity (for stale-plan checks)."""
    observed: dict[str, str | None] = {}
    for reader in READERS:
        observed.update(reader.observe(spec, live))
    return observed


def observe_storage(manifest: Manifest, storage: LiveStorage) -> dict[str, str | None]:
    """What the storage kinds observe of the storage read."""
    observed: dict[str, str | None] = {}
    for observer in STORAGE_OBSERVERS:
        observed.update(observer.observe_storage(manifest, storage))
    return observed


def plan_context(
    manifest: Manifest, live: LiveState, *, now: datetime, max_removals: int
) -> PlanContext:
    """One plan run's context, its principal names read from ``live``; the manifest's own
    warnings first."""
    names: Mapping[int, str] = known_names(live)
    return PlanContext(
        manifest=manifest,
        now=now,
        max_removals=max_removals,
        names=names,
        warnings=[f"{w.location}: {w.message}; {w.hint}" for w in manifest.warnings],
    )
