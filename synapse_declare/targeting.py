"""``--target`` / ``--exclude`` (issue 11): a partial plan, as Terraform's ``-target`` and
OpenTofu's ``-exclude``.

An ADDRESS selects changes by:

* a resource address or a prefix of one: ``project:P``, ``project:P/folder:Raw`` (everything
  under it, its ACL, wiki and sub-folders included);
* a display path: ``P``, ``P/Raw`` (the same, written as people see it);
* a kind: ``kind:folder``, ``kind:wiki_page``, ``kind:storage_location``...;
* a fan-out key: ``center-project[Gamma]`` (what that instantiation made).

A change is kept when some target selects it (all when no target is given) and no exclude
does; then everything a kept change depends on is pulled back in (a folder needs its parent),
unless it is excluded, which is refused: the part could not be applied alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from .errors import AdoptionRefused, PolicyViolation, UsageError
from .model import Manifest
from .plan import Action, Change, Plan, Resource
from .resources.base import Address

if TYPE_CHECKING:
    from .fanout import Instance


def _selects(pattern: str, change: Change) -> bool:
    if pattern.startswith("kind:"):
        return change.resource.value == pattern[len("kind:") :]
    address = Address.parse(change.address)
    if ":" in pattern.split("/", 1)[0]:
        wanted = str(address)
        return wanted == pattern or wanted.startswith((pattern + "/", pattern + "#"))
    shown = address.display_path
    return shown == pattern or shown.startswith(pattern + "/")


def resolve_instances(
    patterns: Sequence[str], instances: Mapping[str, tuple[Instance, ...]]
) -> tuple[str, ...]:
    """A fan-out key (``center-project[Gamma]``, from the expansion's ``instances`` map) becomes
    the addresses that instantiation produced (the outermost ones: their subtrees follow)."""
    resolved: list[str] = []
    for pattern in patterns:
        if not pattern.endswith("]") or "[" not in pattern:
            resolved.append(pattern)
            continue
        made = sorted(a for a, chain in instances.items() if any(i.label == pattern for i in chain))
        outermost = [a for a in made if not any(a.startswith(o + "/") for o in made if o != a)]
        if not outermost:
            known = sorted({i.label for chain in instances.values() for i in chain})
            raise UsageError(
                f"no fan-out instance {pattern!r}",
                hint="instances of this manifest: " + (", ".join(known) or "(none)"),
            )
        resolved.extend(outermost)
    return tuple(resolved)


def refuse_adoption(manifest: Manifest, plan: Plan) -> None:
    """``--no-adopt``: create only. A declared project that exists without synapse-declare's
    marker (someone else's, or made by hand) is an error instead of a silent adoption."""
    where = {spec.address: spec.location for spec in manifest.walk()}
    problems: list[PolicyViolation] = [
        PolicyViolation(
            f"project {Address.parse(c.address).display_path!r} already exists ({c.syn_id}) "
            "and synapse-declare did not create it; --no-adopt only creates",
            location=where.get(c.address),
            hint="rename the project in the manifest, or plan without --no-adopt to adopt it "
            "(shown as '=')",
        )
        for c in plan.changes
        if c.action is Action.ADOPT and c.resource is Resource.PROJECT
    ]
    if problems:
        raise AdoptionRefused(problems)


def check_patterns(patterns: tuple[str, ...]) -> None:
    kinds = {r.value for r in Resource}
    for pattern in patterns:
        if pattern.startswith("kind:") and pattern[len("kind:") :] not in kinds:
            raise UsageError(
                f"unknown kind in {pattern!r}",
                hint="one of: " + ", ".join(f"kind:{k}" for k in sorted(kinds)),
            )


# Observed keys that are not one object's etag: principal ids (how every ACL in the plan is
# resolved) and the public-access report's ACL etags (keyed by syn id, not by address).
_SHARED_OBSERVATIONS = ("principal:", "acl:")


def part_observed(observed: Mapping[str, str | None], kept: set[str]) -> dict[str, str | None]:
    """What a partial plan records and re-checks before apply: the observations of the objects
    its changes touch (a change's own key, and the keys of the entity it belongs to: its ACL,
    wiki pages, upload setting...), so a change elsewhere does not make it stale."""
    owners = {str(Address.parse(address).owner()) for address in kept}
    part: dict[str, str | None] = {}
    for key, value in observed.items():
        if key.startswith(_SHARED_OBSERVATIONS):
            part[key] = value
            continue
        try:
            owner = str(Address.parse(key).owner())
        except ValueError:
            part[key] = value  # not an address: kept, as a full plan would
            continue
        if key in kept or owner in owners:
            part[key] = value
    return part


def select(plan: Plan, targets: tuple[str, ...], excludes: tuple[str, ...]) -> Plan:
    if not targets and not excludes:
        return plan
    check_patterns((*targets, *excludes))
    for pattern in (*targets, *excludes):
        if not any(_selects(pattern, c) for c in plan.changes):
            raise UsageError(
                f"{pattern!r} matches nothing this manifest manages",
                hint="give a project, a folder path (Project/Folder), an address "
                "(project:P/folder:F) or kind:KIND, as plan shows them",
            )
    by_address = {c.address: c for c in plan.changes}
    kept = {
        c.address
        for c in plan.changes
        if (not targets or any(_selects(t, c) for t in targets))
        and not any(_selects(e, c) for e in excludes)
    }
    pending = list(kept)
    while pending:
        for needed in by_address[pending.pop()].depends_on:
            change = by_address.get(needed)
            if change is None or needed in kept:
                continue
            if any(_selects(e, change) for e in excludes):
                raise UsageError(
                    f"{needed} is excluded, but a selected change depends on it",
                    hint="exclude what depends on it too, or stop excluding it",
                )
            kept.add(needed)
            pending.append(needed)
    return dataclasses.replace(
        plan,
        changes=tuple(c for c in plan.changes if c.address in kept),
        observed=part_observed(plan.observed, kept),
        leftovers=tuple(
            item
            for item in plan.leftovers
            if any(item.address == a or item.address.startswith((a + "/", a + "#")) for a in kept)
        ),
        targets=targets,
        excludes=excludes,
    )
