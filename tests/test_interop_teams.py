"""The official synapseclient 4.14.0, unchanged, against the emulator's teams and access
requirements: its Team API (models and the deprecated ``Synapse`` methods) sees teams and members
as they were made, an invitation is accepted as the invitee, and restrictions reach ``get``.
Configured only through ``~/.synapseConfig`` and a token, as in ``test_interop_core``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from emulator_core_support import uniq, user_id

from synapse_declare.emulator import Emulator, SeedAccessRequirement

synapseclient = pytest.importorskip("synapseclient")
import synapseutils  # noqa: E402
from synapseclient import File, Folder, Project, Synapse  # noqa: E402
from synapseclient.core.exceptions import (  # noqa: E402
    SynapseHTTPError,
    SynapseUnmetAccessRestrictions,
)
from synapseclient.models import Team  # noqa: E402

pytestmark = pytest.mark.interop


def _client(emu: Emulator, home: Path, user: str) -> Any:
    config = home / ".synapseConfig"
    config.write_text(emu.synapse_config("alice"), encoding="utf-8")
    Synapse.allow_client_caching(False)
    syn = Synapse(configPath=str(config))
    syn.login(authToken=emu.users[user], silent=True)
    return syn


@pytest.fixture
def syn(emu: Emulator, hermetic_env: Path) -> Iterator[Any]:
    client = _client(emu, hermetic_env, "alice")
    yield client
    client.logout()


@pytest.fixture
def syn_bob(emu: Emulator, hermetic_env: Path) -> Iterator[Any]:
    client = _client(emu, hermetic_env, "bob")
    yield client
    client.logout()


def test_team_lifecycle_through_the_official_client(emu: Emulator, syn: Any, syn_bob: Any) -> None:
    name = uniq("Interop Team")
    team = Team(name=name, description="made by synapseclient").create(synapse_client=syn)
    assert team.id and team.name == name and team.can_public_join is False
    found = Team.from_name(name=name, synapse_client=syn)
    assert found.id == team.id and found.description == "made by synapseclient"
    legacy = syn.getTeam(name)  # the deprecated lookup: /teams?fragment= then exact match
    assert str(legacy["id"]) == str(team.id)
    members = team.members(synapse_client=syn)
    assert [(m.member.user_name, m.is_admin) for m in members] == [("alice", True)]

    bob_id = user_id(emu, "bob")
    invitation = team.invite(user="bob", message="join us", force=False, synapse_client=syn)
    assert invitation is not None and invitation["inviteeId"] == str(bob_id)
    # Not sent twice while one is open (synapseclient reads membershipStatus and openInvitation).
    assert team.invite(user="bob", message="again", force=False, synapse_client=syn) is None
    open_invitations = team.open_invitations(synapse_client=syn)
    assert [i["id"] for i in open_invitations] == [invitation["id"]]
    status = syn_bob.get_membership_status(bob_id, team.id)
    assert (status["hasOpenInvitation"], status["isMember"], status["canJoin"]) == (
        True,
        False,
        True,
    )
    # bob accepts with his own token: his PUT of himself into the team.
    syn_bob.restPUT(f"/team/{team.id}/member/{bob_id}")
    listed = [(m["member"]["userName"], m["isAdmin"]) for m in syn.getTeamMembers(team.id)]
    assert listed == [("alice", True), ("bob", False)]
    assert team.open_invitations(synapse_client=syn) == []
    assert team.get_user_membership_status(user_id=str(bob_id), synapse_client=syn).is_member
    # Already a member: synapseclient sends nothing.
    assert team.invite(user="bob", message="x", force=False, synapse_client=syn) is None
    bob_teams = [t.name for t in syn._find_teams_for_principal(str(bob_id))]
    assert name in bob_teams

    pending = team.invite(user="carol", message="later", force=False, synapse_client=syn)
    assert pending is not None
    team.delete_invitation(invitation_id=pending["id"], synapse_client=syn)
    assert team.open_invitations(synapse_client=syn) == []

    team.delete(synapse_client=syn)
    with pytest.raises(SynapseHTTPError) as gone:
        syn.getTeam(team.id)
    assert gone.value.response.status_code == 404


def test_seeded_team_is_seen_by_the_client(emu: Emulator, syn: Any) -> None:
    curators = syn.getTeam("Curators")
    assert int(curators["id"]) == emu.principal_ids["Curators"]
    members = {m["member"]["userName"]: m["isAdmin"] for m in syn.getTeamMembers(curators)}
    assert members == {"alice": True, "bob": False}


def test_restrictions_reach_get_and_copy(
    emu: Emulator, syn: Any, syn_bob: Any, tmp_path: Path
) -> None:
    project = syn.store(Project(name=uniq("Restricted")))
    folder = syn.store(Folder(name="Raw", parent=project))
    local = tmp_path / "data.csv"
    local.write_text("a,b\n1,2\n", encoding="utf-8")
    entity = syn.store(File(str(local), parent=folder))
    syn.setPermissions(project, user_id(emu, "bob"), ["READ", "DOWNLOAD"], warn_if_inherits=False)
    emu.add_access_requirements(
        [SeedAccessRequirement(uniq("Raw data terms"), (folder.id,), fields={"termsOfUse": "t"})]
    )
    # bob has not accepted the terms: synapseclient refuses the download.
    with pytest.raises(SynapseUnmetAccessRestrictions):
        syn_bob.get(entity.id, downloadLocation=str(tmp_path / "bob"))
    assert syn_bob.get(entity.id, downloadFile=False).id == entity.id
    # alice created the file, so she is treated as approved.
    fetched = syn.get(entity.id, downloadLocation=str(tmp_path / "alice"))
    assert Path(fetched.path).read_text(encoding="utf-8") == "a,b\n1,2\n"
    # synapseutils.copy asks /entity/{id}/accessRequirement first and skips restricted files.
    target = syn.store(Project(name=uniq("Copy target")))
    mapping = synapseutils.copy(syn, entity.id, destinationId=target.id)
    assert entity.id not in mapping
    assert list(syn.getChildren(target.id)) == []
