"""``policies: folders_inherit: strict``: every own ACL under a managed project that the manifest
does not declare is drift to remove.

On a declared folder without ``acl:`` the container kind already removes it; this module covers
every entity the manifest does not declare. Strict mode turns on the project walk that ``plan
--audit-public`` makes (``acl_audit``: one children listing per folder, whose headers say which
entities have their own ACL; only those ACLs are read), so an own ACL five folders below an
undeclared folder is found like one on a direct child. Each becomes a change that deletes it
(``DELETE /entity/{id}/acl``) so the entity inherits from its parent again; the entity itself,
its annotations and its contents are left alone. Files, tables and views are included: Synapse
lets any entity but a project have its own ACL and deletes it the same way, and a file shared
by hand is as much drift as a folder (``~ entity`` in the plan).

Guards, before any write:

* the removals count against ``--max-deletions`` (the same cap as pruned folders, counted
  separately): a removed ACL can take access away from many people at once, and it has no trash
  to come back from — the plan shows every entry it drops, which is what would have to be
  restored by hand, and how many entities below inherit from it;
* a removal you could not make (no CHANGE_PERMISSIONS, read with one ``bundle2``
  ``includePermissions`` per target, at most ``--max-deletions`` of them) is refused, located at
  the policy, like the container kind's ``check_permissions``;
* an ACL the reader could not read is not removed (the plan could not show what it holds): a
  warning names it.

Apply goes through the container kind's ACL delete, guarded by the ACL's etag as read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .acl_audit import own_acls, removed_by_plan, within
from .errors import PolicyViolation, PolicyViolations
from .model import Manifest, level_for
from .plan import Action, Change, FieldChange, Resource
from .resources.base import Address, sub_address
from .resources.payloads import ContainerPrior, ContainerUpdate
from .state import FOLDER_TYPE, LiveAcl, LiveState


@dataclass(frozen=True, slots=True)
class Removal:
    """An undeclared entity whose own ACL strict mode removes."""

    address: str
    parent: str  # the closest declared container above it
    syn_id: str
    acl: LiveAcl
    folder: bool
    heirs: int  # entities below it that inherit from this ACL (and will from the parent's)


def removals(manifest: Manifest, live: LiveState) -> tuple[list[Removal], list[str]]:
    """The own ACLs strict mode removes, and warnings for those it cannot (pure)."""
    if not manifest.policies.folders_inherit_strict:
        return [], []
    found: list[Removal] = []
    warnings: list[str] = []
    specs = {spec.address: spec for spec in manifest.walk()}
    for own in own_acls(manifest, live.containers, live.walked):
        if within(own.address, live.prune_candidates):
            continue  # pruned with its ACL (or the prune is refused): not both
        acl = live.other_acls.get(own.syn_id)
        if acl is None:
            spec = specs.get(own.anchor)
            where = f"{spec.location}: " if spec is not None else ""
            warnings.append(
                f"{where}{own.path} ({own.syn_id}) has its own ACL, which you cannot read; "
                "folders_inherit: strict leaves it (the plan cannot show what removing it would "
                "take away) — ask for CHANGE_PERMISSIONS on it, or remove it by hand"
            )
            continue
        folder = own.type == FOLDER_TYPE
        found.append(Removal(own.address, own.anchor, own.syn_id, acl, folder, own.heirs))
    return found, warnings


def plan_removals(
    manifest: Manifest, live: LiveState, max_deletions: int, warnings: list[str]
) -> list[Change]:
    """The ``~ folder … acl: (own ACL) -> (inherited)`` changes, each entry it drops listed;
    refused (nothing written) when there are more than ``max_deletions``."""
    found, problems = removals(manifest, live)
    warnings.extend(problems)
    if len(found) > max_deletions:
        shown = ", ".join(Address.parse(r.address).display_path for r in found[:3])
        more = f" and {len(found) - 3} more" if len(found) > 3 else ""
        raise PolicyViolations(
            [
                PolicyViolation(
                    f"policy folders_inherit: strict would remove the own ACLs of {len(found)} "
                    f"{_noun(found)} the manifest does not declare ({shown}{more}); at most "
                    f"{max_deletions} may be removed in one run",
                    location=manifest.policies.folders_inherit_at,
                    hint="review them in `plan`, then run again with --max-deletions "
                    f"{len(found)}; or declare the entities whose ACL must stay (with acl:)",
                )
            ]
        )
    _refuse_unpermitted(manifest, live, found)
    names = live.principal_names
    return [_change(removal, names) for removal in found]


def _refuse_unpermitted(manifest: Manifest, live: LiveState, found: list[Removal]) -> None:
    """What Synapse would refuse mid-apply: deleting an ACL needs CHANGE_PERMISSIONS on the
    entity. Read for the targets only (``state.acl_permissions``); one violation per target."""
    refused = [r for r in found if live.acl_permissions.get(r.syn_id) is False]
    if not refused:
        return
    raise PolicyViolations(
        [
            PolicyViolation(
                f"policy folders_inherit: strict would remove the own ACL of "
                f"{Address.parse(r.address).display_path} ({r.syn_id}), and you "
                f"({live.target.user_name}) lack CHANGE_PERMISSIONS (to delete its ACL) there",
                location=manifest.policies.folders_inherit_at,
                hint="ask an administrator of the entity for CHANGE_PERMISSIONS, or declare it "
                "in the manifest with the acl: it should keep",
            )
            for r in refused
        ]
    )


def _change(removal: Removal, names: Mapping[int, str]) -> Change:
    dropped = sorted(
        (names.get(pid, str(pid)), access) for pid, access in removal.acl.entries.items()
    )
    fields = [
        FieldChange("acl", "(own ACL)", "(inherited)"),
        *(
            FieldChange(f"acl.{label}", level_for(access) or ",".join(sorted(access)), None)
            for label, access in dropped
        ),
    ]
    return Change(
        address=removal.address,
        resource=Resource.FOLDER if removal.folder else Resource.ENTITY,
        action=Action.UPDATE,
        syn_id=removal.syn_id,
        fields=tuple(fields),
        depends_on=(removal.parent,),
        desired=ContainerUpdate(
            entity_update=None, annotations=None, acl_op="delete", acl=None
        ).to_json(),
        prior=ContainerPrior(etag=None, entity=None, acl_etag=removal.acl.etag).to_json(),
        reason=reason(removal),
    )


def reason(removal: Removal) -> str:
    """Why the change exists, and how far it reaches: the entities below that inherit from it."""
    what = "a folder" if removal.folder else "an entity"
    reach = (
        f"; {removal.heirs} {'entity' if removal.heirs == 1 else 'entities'} below inherit "
        "from it, and will from the parent too"
        if removal.heirs
        else ""
    )
    return (
        f"own ACL on {what} the manifest does not declare (folders_inherit: strict): removed, "
        f"it inherits from its parent again{reach}"
    )


def _noun(found: list[Removal]) -> str:
    return "folders" if all(r.folder for r in found) else "entities"


def public_access(lines: Iterable[str], changes: Iterable[Change]) -> list[str]:
    """The public-access lines, those on an entity whose ACL this plan deletes (any change with
    ``acl_op: delete``; in practice strict removals, the only deleted ACLs an exposure is
    reported on) saying it is removed by the plan, not left outside it."""
    removed = [c.syn_id for c in changes if c.syn_id and c.desired.get("acl_op") == "delete"]
    return removed_by_plan(lines, removed)


def cleared(changes: list[Change]) -> frozenset[str]:
    """The ``#acl`` addresses these removals clear (no longer "left alone")."""
    return frozenset(sub_address(c.address, "acl") for c in changes)
