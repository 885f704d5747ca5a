"""The ACL aspect of a container: read in the entity's bundle where it has its own, diffed here,
written last in the container's update (or in its create call) — an aspect, not a kind.

When given, a declared ACL is the whole ACL of the entity (unlisted principals are removed);
``inherit`` removes a folder's own ACL; omitted leaves the ACL alone. Changes are shown per
principal by name; new grants to PUBLIC or AUTHENTICATED_USERS are also said at the top of the
plan; an ACL that would lock the operator out of managing the entity is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import Forbidden, PolicyViolation, PreconditionFailed
from ..model import (
    ANONYMOUS_ID,
    AUTHENTICATED_USERS_ID,
    INHERIT,
    PUBLIC_ID,
    AclEntry,
    AclSpec,
    ContainerSpec,
    PrincipalKind,
    level_for,
)
from ..plan import Change, FieldChange
from .base import Address, ApplyContext, BundleFlags, sub_address

if TYPE_CHECKING:
    from ..state import LiveContainer, LiveState

# What managing an entity needs: READ (or it vanishes from later plans), UPDATE (annotations),
# CHANGE_PERMISSIONS (its ACL).
MANAGE_ACCESS = frozenset({"READ", "UPDATE", "CHANGE_PERMISSIONS"})

_EVERYONE = {
    PUBLIC_ID: ("PUBLIC", "anyone on the internet, logged in or not,"),
    AUTHENTICATED_USERS_ID: (
        "AUTHENTICATED_USERS",
        "every Synapse account (anyone can register one)",
    ),
}


class AclAspect:
    """A declared ACL: compared only where the entity has its own (its children page says so);
    written last in the container's update, or in the create call."""

    name = "acl"

    def bundle_flags(self, spec: ContainerSpec, own_acl: bool) -> BundleFlags:
        # Also read (no extra call: the bundle is read anyway): a project's ACL, which its
        # folders inherit, and an own ACL the manifest turns to `inherit` — the plan's
        # effective-access summary (consequences.py) needs both to say who gains and loses.
        wanted = (
            isinstance(spec.acl, AclSpec) or spec.acl is INHERIT or spec.kind.value == "project"
        )
        return BundleFlags(acl=wanted and own_acl)

    def observe(self, spec: ContainerSpec, live: LiveContainer | None) -> dict[str, str | None]:
        """The ACL's etag when it was read; otherwise, for a declared ACL or ``inherit``, whether
        the entity had its own (an ACL created or deleted meanwhile makes the plan stale)."""
        if live is None:
            return {}
        if live.acl is not None:
            return {sub_address(spec.address, "acl"): live.acl.etag}
        if isinstance(spec.acl, AclSpec) or spec.acl is INHERIT:
            return {sub_address(spec.address, "acl"): "own" if live.own_acl else "inherits"}
        return {}


# ---------------------------------------------------------------------------------------------
# Planning


@dataclass(frozen=True, slots=True)
class AclDiff:
    """What the container's update does to its ACL: the fields shown, the operation (``create``
    an own ACL, ``update`` it, ``delete`` it to inherit) or None, and new public grants."""

    fields: tuple[FieldChange, ...] = ()
    op: str | None = None
    public: tuple[str, ...] = ()


def creator_of(live: LiveContainer | None, operator_id: int) -> int:
    """Who ``self`` means in an entity's ACL: the user who created it. For an entity this plan
    creates, that is the operator; for an existing one, its ``createdBy`` — so the desired ACL is
    the same whoever plans (two admins, or a person and a CI bot, never swap each other out)."""
    if live is None or not live.created_by:
        return operator_id
    try:
        return int(live.created_by)
    except ValueError:
        return operator_id


def principal_id(entry: AclEntry, spec: ContainerSpec, live: LiveState) -> int:
    if entry.principal.kind is PrincipalKind.SELF:
        return creator_of(live.containers.get(spec.address), live.target.user_id)
    found = live.principals.get(entry.principal)
    if found is None:  # a declared team that apply creates first (a stand-in id until then)
        found = live.teams.placeholder(str(entry.principal.name))
    assert found is not None, f"unresolved principal {entry.principal}"
    return found


def desired_acl(spec: ContainerSpec, live: LiveState) -> dict[int, frozenset[str]] | None:
    """The declared ACL by principal id (entries for one principal merged); None unless the
    manifest declares an ACL (``inherit`` and omission are not ACLs)."""
    if not isinstance(spec.acl, AclSpec):
        return None
    entries: dict[int, set[str]] = {}
    for entry in spec.acl.entries:
        entries.setdefault(principal_id(entry, spec, live), set()).update(entry.access)
    return {k: frozenset(v) for k, v in entries.items()}


def known_names(live: LiveState) -> dict[int, str]:
    """Display names of every principal the plan can show: those seen in live ACLs, those the
    manifest resolved, the operator, and the groups every Synapse has."""
    names = dict(live.principal_names)
    for ref, pid in live.principals.items():
        if ref.kind in (PrincipalKind.USER, PrincipalKind.TEAM):
            names[pid] = str(ref)
    names.setdefault(live.target.user_id, f"user:{live.target.user_name}")
    # Groups every Synapse has, named even when the manifest does not mention them.
    names.setdefault(PUBLIC_ID, "PUBLIC")
    names.setdefault(AUTHENTICATED_USERS_ID, "AUTHENTICATED_USERS")
    names.setdefault(ANONYMOUS_ID, "anonymous")
    return names


def principal_names(
    spec: ContainerSpec, live: LiveState, known: Mapping[int, str]
) -> dict[int, str]:
    """``known`` plus what only this spec says: who ``self`` is here, and the names its entries
    were written with."""
    names = dict(known)
    if isinstance(spec.acl, AclSpec):
        for entry in spec.acl.entries:
            pid = principal_id(entry, spec, live)
            if entry.principal.kind is PrincipalKind.SELF:
                # `self` is this entity's creator: show who that is.
                names[pid] = f"{names.get(pid, pid)} (self)"
            elif entry.principal.kind is not PrincipalKind.ID or pid not in names:
                names[pid] = str(entry.principal)
    return names


def granted_through(acl: Mapping[int, frozenset[str]], groups: frozenset[int]) -> set[str]:
    """What an ACL grants through any of ``groups`` (the user and the teams they are in)."""
    granted: set[str] = set()
    for principal, access in acl.items():
        if principal in groups:
            granted |= access
    return granted


def check_lockout(
    spec: ContainerSpec, desired: Mapping[int, frozenset[str]], live: LiveState
) -> None:
    """Refuse an ACL that would take from the user what managing this entity needs: without
    READ it disappears from later plans (which then never converge), without UPDATE or
    CHANGE_PERMISSIONS its annotations or ACL can never be changed again."""
    missing = sorted(MANAGE_ACCESS - granted_through(desired, live.my_groups))
    if not missing:
        return
    assert isinstance(spec.acl, AclSpec)
    raise PolicyViolation(
        f"{spec.address}: this ACL would leave you ({live.target.user_name}) without "
        f"{', '.join(missing)} — neither directly nor through a team you are in — so "
        "synapse-declare could no longer manage it",
        location=spec.acl.location,
        hint="add `self: administer` (or give a team you belong to these rights); to hand the "
        "entity over for good, change its ACL outside synapse-declare",
    )


def created_fields(
    spec: ContainerSpec,
    desired: Mapping[int, frozenset[str]] | None,
    names: Mapping[int, str],
    live: LiveState,
) -> AclDiff:
    """A new entity's ACL: the declared one, or — for a project, which Synapse gives its
    creator's ACL — the operator as administrator."""
    if desired is not None:
        return AclDiff(
            tuple(acl_field_changes(None, desired, names)),
            public=tuple(public_grants(spec.address, None, desired)),
        )
    if spec.kind.value == "project":
        return AclDiff((FieldChange(f"acl.user:{live.target.user_name}", None, "administer"),))
    return AclDiff()


def acl_diff(
    spec: ContainerSpec,
    current: LiveContainer,
    desired: Mapping[int, frozenset[str]] | None,
    names: Mapping[int, str],
) -> AclDiff:
    """An existing entity's ACL against the manifest: an own ACL created where it inherits,
    replaced where it differs, deleted for ``inherit``; nothing when omitted."""
    if desired is not None:
        if not current.own_acl:
            return AclDiff(
                (
                    FieldChange("acl", "(inherited)", "(own ACL)"),
                    *acl_field_changes(None, desired, names),
                ),
                "create",
                tuple(public_grants(spec.address, None, desired)),
            )
        if current.acl is not None and current.acl.entries != desired:
            return AclDiff(
                tuple(acl_field_changes(current.acl.entries, desired, names)),
                "update",
                tuple(public_grants(spec.address, current.acl.entries, desired)),
            )
        return AclDiff()
    if spec.acl is INHERIT and current.own_acl:
        return AclDiff((FieldChange("acl", "(own ACL)", "(inherited)"),), "delete")
    return AclDiff()


def _level_text(access: frozenset[str]) -> str:
    return level_for(access) or ",".join(sorted(access))


def acl_field_changes(
    before: Mapping[int, frozenset[str]] | None,
    after: Mapping[int, frozenset[str]],
    names: Mapping[int, str],
) -> list[FieldChange]:
    """One field per principal whose access changes: ``acl.team:Curators`` (none) → ``edit``
    (added), ``edit`` → (none) (removed), ``view`` → ``download`` (changed); sorted by name."""
    old = before or {}
    out: list[tuple[str, FieldChange]] = []
    for principal in set(old) | set(after):
        was, now = old.get(principal), after.get(principal)
        if was == now:
            continue
        label = names.get(principal, str(principal))
        out.append(
            (
                label,
                FieldChange(
                    f"acl.{label}",
                    None if was is None else _level_text(was),
                    None if now is None else _level_text(now),
                ),
            )
        )
    return [change for _, change in sorted(out, key=lambda item: item[0])]


def public_grants(
    address: str,
    before: Mapping[int, frozenset[str]] | None,
    after: Mapping[int, frozenset[str]],
) -> list[str]:
    """A line per access this ACL newly gives to PUBLIC or AUTHENTICATED_USERS."""
    lines = []
    for principal, (label, who) in _EVERYONE.items():
        added = after.get(principal, frozenset()) - (before or {}).get(principal, frozenset())
        if added:
            level = _level_text(after[principal])
            lines.append(
                f"{Address.parse(address).display_path}: this plan grants {label} {level} — "
                f"{who} gets {', '.join(sorted(added))}"
            )
    return lines


def acl_wire(entries: Mapping[int, frozenset[str]]) -> tuple[dict[str, Any], ...]:
    """The ACL as the plan carries it (``resourceAccess`` entries, sorted)."""
    return tuple({"principalId": p, "accessType": sorted(a)} for p, a in sorted(entries.items()))


# ---------------------------------------------------------------------------------------------
# Apply (called from the container's create and update)


def replace_new_acl(
    ctx: ApplyContext, change: Change, syn_id: str, entries: list[dict[str, Any]]
) -> None:
    """Give a just-created project the planned ACL (skipped when the default matches)."""
    current = ctx.api.get_acl(syn_id)
    if current is None:
        apply_acl(ctx, change, syn_id, "create", entries, None)
        return
    wanted = {int(e["principalId"]): frozenset(e["accessType"]) for e in entries}
    have = {int(e["principalId"]): frozenset(e["accessType"]) for e in current["resourceAccess"]}
    if have != wanted:
        apply_acl(ctx, change, syn_id, "update", entries, str(current["etag"]))


def apply_acl(
    ctx: ApplyContext,
    change: Change,
    syn_id: str,
    op: str,
    entries: list[dict[str, Any]],
    acl_etag: str | None,
) -> None:
    wanted = {int(e["principalId"]): frozenset(e["accessType"]) for e in entries}

    def matches() -> bool | None:
        acl = ctx.api.get_acl(syn_id)
        if op == "delete":
            return True if acl is None else None
        if acl is None:
            return None
        current = {int(e["principalId"]): frozenset(e["accessType"]) for e in acl["resourceAccess"]}
        if current == wanted:
            return True
        if op == "update" and acl.get("etag") == acl_etag:
            return None
        raise ctx.conflict(change, "its ACL changed while the update was unconfirmed")

    def attempt() -> bool:
        try:
            if op == "create":
                ctx.api.create_acl(syn_id, entries)
            elif op == "update":
                assert acl_etag is not None
                ctx.api.update_acl(syn_id, acl_etag, entries)
            else:
                # DELETE /entity/{id}/acl takes no etag: compare the one the plan read first.
                if acl_etag is not None:
                    current = ctx.api.get_acl(syn_id)
                    if current is None:
                        return True  # it inherits already: what was wanted
                    if current.get("etag") != acl_etag:
                        raise ctx.conflict(change, "its ACL changed since the plan read it")
                ctx.api.delete_acl(syn_id)
        except PreconditionFailed as err:
            raise ctx.conflict(change, "its ACL changed (412)") from err
        except Forbidden as err:
            if "already has an ACL" in err.reason or "already inherits" in err.reason:
                raise ctx.conflict(change, err.reason) from err
            raise
        return True

    ctx.resolve(f"ACL of {change.address}", attempt, matches)


ACL = AclAspect()
