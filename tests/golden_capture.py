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
import os
import sys
import tempfile
from pathlib import Path

from conftest import TEAMS, USERS, Api
from golden_support import ENDPOINT, GOLDEN, S3_ENDPOINT, S3_VARIABLE, inside, load_manifest
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
        uses_s3 = S3_VARIABLE in (case / "manifest.yaml").read_text(encoding="utf-8")
        overrides = {S3_VARIABLE: emulator.s3_endpoint} if uses_s3 else None
        manifest, _ = load_manifest(case, overrides)
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
    text = text.replace(emulator.s3_endpoint, S3_ENDPOINT).replace(emulator.base_url, ENDPOINT)
    (case / "live.json").write_text(text, encoding="utf-8")
    print(f"captured {case.name}/live.json")


def main(names: list[str]) -> int:
    # boto3 (the owner.txt check) reaches the embedded S3 with any credentials.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "golden-capture")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "golden-capture")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    if not names:
        print(__doc__, file=sys.stderr)
        return 2
    for name in names:
        capture(GOLDEN / name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
