"""``policies: folders_inherit: strict`` for folders the manifest does not declare.

Strict mode says every own ACL under a managed project that the manifest does not declare is
drift. On a declared folder without ``acl:`` the planner already removes it; this module covers
the undeclared folders the plan's children pages list (the direct children of every declared
container that declares folders or prunes): their own ACL, read anyway for the public-access
audit (``acl_audit``), becomes a change that deletes it (``DELETE /entity/{id}/acl``) so the
folder inherits from its parent again. The folder itself, its annotations and its contents are
left alone.

Guards, before any write:

* the removals count against ``--max-deletions`` (the same cap as pruned folders, counted
  separately): a removed ACL can take access away from many people at once, and it has no trash
  to come back from — the plan shows every entry it drops, which is what would have to be
  restored by hand;
* an ACL the reader could not read is not removed (the plan could not show what it holds): a
  warning names it; so is an own ACL on an undeclared entity that is not a folder (a file or a
  table), which strict mode reports but does not touch.

Apply goes through the container kind's ACL delete, guarded by the ACL's etag as read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .errors import PolicyViolation, PolicyViolations
from .model import Manifest, Prune, level_for
from .plan import Action, Change, FieldChange, Resource
from .resources.base import Address, sub_address
from .resources.payloads import ContainerPrior, ContainerUpdate
from .state import FOLDER_TYPE, LiveAcl, LiveState

REASON = (
    "own ACL on a folder the manifest does not declare (folders_inherit: strict): removed, "
    "the folder inherits from its parent again"
)


@dataclass(frozen=True, slots=True)
class Removal:
    """An undeclared folder whose own ACL strict mode removes."""

    address: str
    parent: str  # the declared container it is in
    syn_id: str
    acl: LiveAcl


def removals(manifest: Manifest, live: LiveState) -> tuple[list[Removal], list[str]]:
    """The own ACLs strict mode removes, and warnings for those it cannot (pure)."""
    if not manifest.policies.folders_inherit_strict:
        return [], []
    found: list[Removal] = []
    warnings: list[str] = []
    declared_ids = {c.syn_id for c in live.containers.values() if c is not None}
    for spec in manifest.walk():
        current = live.containers.get(spec.address)
        if current is None or not current.children:
            continue
        declared = {child.name for child in spec.folders}
        path = Address.parse(spec.address).display_path
        for name, header in sorted(current.children.items()):
            child_id = str(header.get("id"))
            if name in declared or child_id in declared_ids:
                continue
            if str(header.get("benefactorId")) != child_id.removeprefix("syn"):
                continue
            where = f"{spec.location}: {path}/{name} ({child_id})"
            acl = live.other_acls.get(child_id)
            if header.get("type") != FOLDER_TYPE:
                kind = str(header.get("type", "entity")).rsplit(".", 1)[-1]
                warnings.append(
                    f"{where} is a {kind} with its own ACL, not in the manifest; "
                    "folders_inherit: strict removes own ACLs on folders only — remove it by "
                    "hand if it should inherit"
                )
            elif acl is None:
                warnings.append(
                    f"{where} has its own ACL, which you cannot read; folders_inherit: strict "
                    "leaves it (the plan cannot show what removing it would take away) — ask "
                    "for CHANGE_PERMISSIONS on it, or remove it by hand"
                )
            else:
                address = str(Address.container("folder", name, spec.address))
                if spec.prune is not Prune.OFF and address in live.prune_candidates:
                    continue  # pruned with its ACL (or the prune is refused): not both
                found.append(Removal(address, spec.address, child_id, acl))
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
                    f"folders the manifest does not declare ({shown}{more}); at most "
                    f"{max_deletions} may be removed in one run",
                    location=manifest.policies.folders_inherit_at,
                    hint="review them in `plan`, then run again with --max-deletions "
                    f"{len(found)}; or declare the folders whose ACL must stay (with acl:)",
                )
            ]
        )
    names = live.principal_names
    return [_change(removal, names) for removal in found]


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
        resource=Resource.FOLDER,
        action=Action.UPDATE,
        syn_id=removal.syn_id,
        fields=tuple(fields),
        depends_on=(removal.parent,),
        desired=ContainerUpdate(
            entity_update=None, annotations=None, acl_op="delete", acl=None
        ).to_json(),
        prior=ContainerPrior(etag=None, entity=None, acl_etag=removal.acl.etag).to_json(),
        reason=REASON,
    )


def cleared(changes: list[Change]) -> frozenset[str]:
    """The ``#acl`` addresses these removals clear (no longer "left alone")."""
    return frozenset(sub_address(c.address, "acl") for c in changes)
