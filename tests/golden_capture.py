"""Capture ``live.json`` for pure golden cases from a fresh emulator: cheap new cases.

    .venv/bin/python tests/golden_capture.py CASE [CASE...]
    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden.py -k CASE

For each case under ``tests/golden/``: start an emulator with the test users and teams, run the
case's ``setup.yaml`` (if any; the steps of ``test_golden_wire.run_setup``), read the live state
the manifest addresses with the real reader as alice, and write it through ``state_codec`` with
the emulator's address replaced by ``http://emulator``. The second command writes the expected
plan files; review both diffs.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from conftest import TEAMS, USERS, Api
from golden_support import ENDPOINT, GOLDEN, inside, load_manifest
from reconcile_support import Workspace
from test_golden_wire import run_setup

from synapse_declare import state_codec
from synapse_declare.auth import Credentials, Endpoints
from synapse_declare.emulator import Emulator, EmulatorConfig
from synapse_declare.engine import connect
from synapse_declare.state import read_state


def capture(case: Path) -> None:
    emulator = Emulator(EmulatorConfig(users=USERS, teams=TEAMS)).start()
    try:
        with tempfile.TemporaryDirectory() as scratch, inside(case):
            ws = Workspace(emulator, Path(scratch))
            run_setup(case, emulator, ws, lambda emu, user: Api(emu, emu.users[user]))
        manifest, _ = load_manifest(case)
        credentials = Credentials(
            token=emulator.users["alice"],
            source="golden capture",
            endpoints=Endpoints.from_base(emulator.base_url),
        )
        api = connect(credentials)
        try:
            live = read_state(api, manifest)
        finally:
            api.t.close()
    finally:
        emulator.stop()
    text = json.dumps(state_codec.encode(live), indent=2, ensure_ascii=False) + "\n"
    (case / "live.json").write_text(text.replace(emulator.base_url, ENDPOINT), encoding="utf-8")
    print(f"captured {case.name}/live.json")


def main(names: list[str]) -> int:
    if not names:
        print(__doc__, file=sys.stderr)
        return 2
    for name in names:
        capture(GOLDEN / name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
