"""Pruning (issue 11): ``prune:`` on a container makes the folders directly in it that the
manifest does not declare deletions, every guard checked at plan time, before any write:

* only folders synapse-declare created (its marker, written in the create call) are deleted;
* a protected folder (``protect: true`` once declared: the annotation stays on it) never is;
* a folder holding files only under ``prune: with-files`` (the plan shows files and bytes);
* at most ``max_deletions`` per run.

A deletion moves the folder and everything in it to the trash, restorable for 30 days by the
user who ran apply (``PUT /trashcan/restore/{id}``). Annotation keys and wiki pages are never
pruned: they stay "left alone", because a key or page someone added by hand is cheap to keep and
costly to lose, and neither has a trash to come back from.
"""

from __future__ import annotations

from .errors import PolicyViolation, PruneRefused
from .lifecycle import TRASH_RETENTION_DAYS, PruneCandidate
from .model import Manifest, Prune
from .plan import DEFAULT_MAX_DELETIONS, Action, Change, FieldChange, Resource
from .resources import registry
from .resources.base import Operation
from .state import LiveState
from .units import human_bytes

__all__ = ["DEFAULT_MAX_DELETIONS", "plan_deletions"]


def plan_deletions(manifest: Manifest, live: LiveState, max_deletions: int) -> list[Change]:
    changes: list[Change] = []
    problems: list[PolicyViolation] = []
    for spec in manifest.walk():
        if spec.prune is Prune.OFF:
            continue
        prefix = spec.address + "/"
        for address, found in sorted(live.prune_candidates.items()):
            if not address.startswith(prefix) or "/" in address[len(prefix) :]:
                continue
            where = f"{address.split(':', 1)[1].replace('/folder:', '/')} ({found.syn_id})"
            if not found.managed:
                problems.append(
                    PolicyViolation(
                        f"prune would delete {where}, which synapse-declare did not create "
                        "(it has no synapse_declare_managed annotation)",
                        location=spec.prune_location or spec.location,
                        hint="prune deletes only what synapse-declare made: declare the folder "
                        "to keep it, or delete it by hand",
                    )
                )
            elif found.protected:
                problems.append(
                    PolicyViolation(
                        f"prune would delete {where}, which is protected "
                        "(synapse_declare_protected is set on it)",
                        location=spec.prune_location or spec.location,
                        hint="declare the folder again to keep it; if it really may go, "
                        "declare it with `protect: false`, apply, then remove its entry",
                    )
                )
            elif found.files and spec.prune is not Prune.WITH_FILES:
                problems.append(
                    PolicyViolation(
                        f"prune would delete {where}, which holds {_files(found)}",
                        location=spec.prune_location or spec.location,
                        hint="set `prune: with-files` on this container if the data may go, "
                        "or declare the folder to keep it",
                    )
                )
            else:
                registry.require(Resource.FOLDER, Operation.PRUNE)
                changes.append(_deletion(address, spec.address, found))
    if len(changes) > max_deletions and not problems:
        problems.append(
            PolicyViolation(
                f"this plan would delete {len(changes)} folders; at most {max_deletions} may be "
                "deleted in one run",
                hint=f"review the deletions, then run again with --max-deletions {len(changes)}",
            )
        )
    if problems:
        raise PruneRefused(problems)
    return changes


def _files(found: PruneCandidate) -> str:
    return f"{found.files} file{'s' if found.files != 1 else ''} ({human_bytes(found.bytes)})"


def _deletion(address: str, parent: str, found: PruneCandidate) -> Change:
    fields = [FieldChange("files", found.files, None), FieldChange("bytes", found.bytes, None)]
    if found.folders:
        fields.append(FieldChange("folders", found.folders, None))
    return Change(
        address=address,
        resource=Resource.FOLDER,
        action=Action.DELETE,
        syn_id=found.syn_id,
        fields=tuple(fields),
        depends_on=(parent,),
        desired={},
        prior={"etag": found.etag},
        reason=f"not in the manifest, prune is on: to the trash (restorable for "
        f"{TRASH_RETENTION_DAYS} days)" + (f"; {_files(found)} go with it" if found.files else ""),
    )
