"""The effective-access engine as a pure function: benefactors, team expansion, the
certification and creator rules, and the live-vs-desired diff the planner will call."""

from __future__ import annotations

import pytest

from synapse_declare.access import (
    AUTHENTICATED_USERS_ID,
    PUBLIC_ID,
    AccessWorld,
    Node,
    Principal,
    PrincipalType,
    benefactors,
    diff_access,
    effective_access,
    summarize_changes,
    user_permissions,
)

ALICE = Principal(11, "alice", PrincipalType.USER)
CAROL = Principal(13, "carol", PrincipalType.USER)
CENTER_A = Principal(21, "Center A", PrincipalType.TEAM)
ADMIN = frozenset(
    {"READ", "DOWNLOAD", "CREATE", "UPDATE", "DELETE", "CHANGE_PERMISSIONS", "CHANGE_SETTINGS"}
)


def node(entity_id: str, parent: str | None, path: str, kind: str = "folder") -> Node:
    return Node(entity_id, path.rsplit("/", 1)[-1], kind, parent, ALICE.id, path)


WORLD = AccessWorld(
    nodes=(
        node("syn1", None, "P", "project"),
        node("syn2", "syn1", "P/Raw"),
        node("syn3", "syn2", "P/Raw/Batch 1"),
        node("syn4", "syn2", "P/Raw/Batch 2"),
        node("syn5", "syn1", "P/Releases"),
        node("syn6", "syn5", "P/Releases/v1.csv", "file"),
    ),
    acls={
        "syn1": {ALICE.id: ADMIN, CENTER_A.id: frozenset({"READ"})},
        "syn5": {ALICE.id: ADMIN, PUBLIC_ID: frozenset({"READ"})},
    },
    inherited_from={"syn1": None},
    principals={p.id: p for p in (ALICE, CAROL, CENTER_A)},
    members={CENTER_A.id: frozenset({CAROL.id})},
    certified=frozenset({ALICE.id}),
)


def test_benefactors_and_team_members() -> None:
    assert benefactors(WORLD) == {
        "syn1": "syn1",
        "syn2": "syn1",
        "syn3": "syn1",
        "syn4": "syn1",
        "syn5": "syn5",
        "syn6": "syn5",
    }
    report = effective_access(WORLD)
    carol = {r.entity.id: r for r in report.for_principal(CAROL.id)}
    assert set(carol) == {"syn1", "syn2", "syn3", "syn4"}  # through Center A, not Releases
    assert [g.principal for g in carol["syn3"].grants] == [CENTER_A]
    public = {r.entity.id for r in report.for_principal(PUBLIC_ID)}
    assert public == {"syn5", "syn6"}


def test_certification_creator_and_anonymous_rules() -> None:
    edit = frozenset({"READ", "UPDATE", "CREATE"})
    world = WORLD.with_acls({**WORLD.acls, "syn2": {ALICE.id: ADMIN, CAROL.id: edit}})
    on_folder = user_permissions(world, "syn2", CAROL.id)
    # Uncertified: UPDATE and CREATE are held but not usable (canCertifiedUser* say so).
    assert (on_folder.can_edit, on_folder.can_add_child) == (False, False)
    assert (on_folder.can_certified_user_edit, on_folder.can_certified_user_add_child) == (
        True,
        True,
    )
    # The certified creator may change settings with no CHANGE_SETTINGS entry at all.
    no_settings = WORLD.with_acls({**WORLD.acls, "syn1": {ALICE.id: frozenset({"READ"})}})
    assert user_permissions(no_settings, "syn2", ALICE.id).can_change_settings
    anonymous = user_permissions(WORLD, "syn6", None)
    assert (anonymous.can_view, anonymous.can_download) == (True, False)


def test_unknown_outside_benefactor_is_refused() -> None:
    orphan = AccessWorld(
        nodes=(node("syn9", "syn8", "P/Orphan"),),
        acls={},
        inherited_from={"syn9": None},
        principals={},
        members={},
        certified=frozenset(),
    )
    with pytest.raises(ValueError, match="inherits from outside the tree"):
        benefactors(orphan)


def test_diff_of_live_and_desired_acls_summarised_per_principal() -> None:
    """What a plan would say: Raw gets its own ACL giving Center A download, Releases loses
    its ACL (inherits the project's again) and with it PUBLIC's read."""
    download = frozenset({"READ", "DOWNLOAD"})
    desired = {
        "syn1": WORLD.acls["syn1"],
        "syn2": {ALICE.id: ADMIN, CENTER_A.id: download, AUTHENTICATED_USERS_ID: download},
    }
    changes = diff_access(effective_access(WORLD), effective_access(WORLD.with_acls(desired)))
    lines = [s.describe() for s in summarize_changes(changes)]
    assert lines == [
        "PUBLIC loses READ on 2 entities (1 file, 1 folder)",
        "AUTHENTICATED_USERS gains DOWNLOAD on 3 entities (3 folders)",
        "AUTHENTICATED_USERS gains READ on 3 entities (3 folders)",
        "team:Center A gains DOWNLOAD on 3 entities (3 folders)",
        "team:Center A gains READ on 2 entities (1 file, 1 folder)",
        "user:carol gains DOWNLOAD on 3 entities (3 folders)",
        "user:carol gains READ on 2 entities (1 file, 1 folder)",
    ]
