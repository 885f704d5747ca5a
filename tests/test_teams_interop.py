"""The official synapseclient sees declared teams as the manifest says: the team by name, its
managers and members, and the pending invitation (then the member once accepted)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from emulator_core_support import uniq
from reconcile_support import Workspace

from synapse_declare.emulator import Emulator

synapseclient = pytest.importorskip("synapseclient")
from synapseclient import Synapse  # noqa: E402
from synapseclient.models import Team  # noqa: E402

pytestmark = pytest.mark.interop


@pytest.fixture
def syn(emu: Emulator, hermetic_env: Path) -> Iterator[Any]:
    config = hermetic_env / ".synapseConfig"
    config.write_text(emu.synapse_config("alice"), encoding="utf-8")
    Synapse.allow_client_caching(False)
    client = Synapse(configPath=str(config))
    client.login(authToken=emu.users["alice"], silent=True)
    yield client
    client.logout()


def test_synapseclient_sees_the_declared_team(
    emu: Emulator, tmp_path: Path, hermetic_env: Path, syn: Any
) -> None:
    ws = Workspace(emu, tmp_path)
    name = uniq("Declared Center")
    manifest = ws.manifest(
        f"""
        version: 1
        teams:
          - name: {name}
            description: declared by synapse-declare
            managers: [self]
            members: [user:bob]
        """
    )
    result = ws.apply(manifest)
    assert result.code == 0, result.both
    team = Team.from_name(name=name, synapse_client=syn)
    assert team.description == "declared by synapse-declare" and team.can_public_join is False
    members = team.members(synapse_client=syn)
    assert [(m.member.user_name, m.is_admin) for m in members] == [("alice", True)]
    invitations = team.open_invitations(synapse_client=syn)
    bob_id = str(emu.principal_ids["bob"])
    assert [i["inviteeId"] for i in invitations] == [bob_id]
    # bob accepts with his own token; the official client then lists him as declared.
    bob = Synapse(configPath=str(hermetic_env / ".synapseConfig"))
    bob.login(authToken=emu.users["bob"], silent=True)
    try:
        bob.restPUT(f"/team/{team.id}/member/{bob_id}")
    finally:
        bob.logout()
    listed = {m["member"]["userName"]: m["isAdmin"] for m in syn.getTeamMembers(team.id)}
    assert listed == {"alice": True, "bob": False}
    again = ws.plan(manifest, "--detailed-exitcode")
    assert again.code == 0, again.both
