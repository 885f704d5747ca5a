"""The resource map: plan ``resource`` value → the kind that plans, applies and shows it.

Adding a kind is adding its module and one line here (see CONTRIBUTING.md). The registry is
also where an operation a kind does not implement is refused, with a clear error, instead of a
hook that pretends to work.
"""

from __future__ import annotations

from ..model import ContainerSpec
from ..plan import Resource
from .base import BundleFlags, Operation, Reader, ResourceKind, UnsupportedOperation
from .container import ACL, ANNOTATIONS, CONTAINER
from .migration import MIGRATION
from .storage import STORAGE_LOCATION, UPLOAD_DESTINATION
from .team import TEAM
from .wiki import WIKI

KINDS: tuple[ResourceKind, ...] = (
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

_BY_RESOURCE: dict[Resource, ResourceKind] = {r: kind for kind in KINDS for r in kind.resources}


def kind_of(resource: Resource) -> ResourceKind:
    """The kind owning ``resource``; every :class:`Resource` value has exactly one."""
    try:
        return _BY_RESOURCE[resource]
    except KeyError:
        raise UnsupportedOperation(f"no resource kind handles {resource.value!r}") from None


def require(resource: Resource, operation: Operation) -> ResourceKind:
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
