"""Team creation and invitations converge under injected faults: lost responses and server
errors on every kind of request, and never a second team or a second invitation."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import read_exchanges
from reconcile_support import Workspace

MANIFEST = """
version: 1
teams:
  - name: Fault Center {seed}
    managers: [self]
    members: [user:bob, user:carol]
  - name: Fault Curators {seed}
    managers: [self, user:bob]
projects:
  - name: Fault Project {seed}
    acl:
      self: administer
      team:Fault Center {seed}: edit
      team:Fault Curators {seed}: view
"""


@pytest.mark.fault
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
@pytest.mark.parametrize("kinds", [None, ["drop-after", "503-after", "500-after"]])
def test_teams_and_invitations_converge_under_faults(
    make_emulator: Any, tmp_path: Path, api_for: Any, seed: int, kinds: list[str] | None
) -> None:
    emulator = make_emulator()
    ws = Workspace(emulator, tmp_path)
    manifest = ws.manifest(MANIFEST.format(seed=seed))
    if kinds is None:
        emulator.knobs.set_faults(0.3, seed)
    else:
        emulator.knobs.set_faults(0.3, seed, kinds)
    result = ws.apply(manifest)
    emulator.knobs.set_faults(0.0)
    assert result.code == 0, result.both
    exchanges = read_exchanges(emulator)
    statuses = Counter(e["status"] for e in exchanges)
    assert statuses[503] + statuses[500] + statuses[None] >= 1, statuses
    alice = api_for(emulator, "alice")
    for name in (f"Fault Center {seed}", f"Fault Curators {seed}"):
        teams = alice.ok("GET", "/teams", fragment=name, limit=50)["results"]
        assert [t["name"] for t in teams] == [name], "a team was created twice"
        invited = alice.ok("GET", f"/team/{teams[0]['id']}/openInvitation", limit=50)["results"]
        counts = Counter(i["inviteeId"] for i in invited)
        assert all(n == 1 for n in counts.values()), f"an invitation was sent twice: {counts}"
    again = ws.plan(manifest, "--detailed-exitcode")
    assert again.code == 0, again.out
