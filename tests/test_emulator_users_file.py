"""The emulator's ``--users`` file is refused like a bad manifest: one error at file:line:col,
what is wrong (and where in the document), how to fix it; ``emulator serve`` exits 1 with no
traceback. The emulator has its own small located loader (it imports nothing from the product).
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from synapse_declare.cli import main
from synapse_declare.emulator import Emulator, EmulatorConfig
from synapse_declare.emulator.seedfile import SeedFileError

ANN = "users:\n  - {userName: ann, token: ann-token}\n"


@pytest.mark.parametrize(
    ("text", "line", "column", "message", "where", "hint"),
    [
        (
            "users:\n  - userName: ann\n    token: t\n    tokn: x\n",
            4,
            5,
            "unknown key 'tokn'",
            "users[0]",
            "did you mean 'token'? a user takes certified, email, firstName, lastName, token, "
            "userName",
        ),
        (
            "users:\n  - userName: ann\n    token: t\n  - userName: bob\n    certified: 'no'\n"
            "    token: u\n",
            5,
            16,
            "certified must be true or false",
            "users[1].certified",
            "write `certified: true` or `certified: false` (unquoted)",
        ),
        (
            "users:\n  - {userName: ann, token: t}\n  - {userName: ann, token: u}\n",
            3,
            16,
            "userName 'ann' is also given to users[0]",
            "users[1].userName",
            "each user needs its own userName",
        ),
        (
            ANN + "teams:\n  - name: Lab\n    members: [ann, zed]\n",
            5,
            20,
            "members ['zed'] are not listed under users",
            "teams[0].members[1]",
            "add them under users:, or correct the userName",
        ),
        (
            ANN + "teams:\n  - name: ab\n    members: [ann]\n",
            4,
            11,
            "Team names can only contain",
            "teams[0].name",
            "Synapse refuses this team: rename it",
        ),
        (
            ANN + "access_requirements:\n  - name: Terms\n    subjects: [syn1]\n    id: 1\n",
            6,
            9,
            "id must be an integer above 1 (1 is Synapse's lock)",
            "access_requirements[0].id",
            "omit id to have one assigned",
        ),
        (
            "usres: []\n",
            1,
            1,
            "unknown key 'usres'",
            "",
            "did you mean 'users'? the file takes access_requirements, teams, users",
        ),
        (
            "users:\n  - {userName: ann, token: 'unclosed}\n",
            3,
            1,
            "cannot read users file: found unexpected end of stream",
            "",
            "fix the YAML syntax here (indentation, closing quotes and brackets)",
        ),
    ],
    ids=[
        "unknown key",
        "quoted no is not a boolean",
        "duplicate userName",
        "team member not a user",
        "team name Synapse refuses",
        "requirement id",
        "unknown top-level key",
        "YAML syntax",
    ],
)
def test_a_bad_users_file_is_located(
    tmp_path: Path, text: str, line: int, column: int, message: str, where: str, hint: str
) -> None:
    users = tmp_path / "users.yaml"
    users.write_text(text, encoding="utf-8")
    emulator = Emulator(EmulatorConfig(users_file=users))
    try:
        with pytest.raises(SeedFileError) as refused:
            emulator.start()
    finally:
        emulator.stop()
    error = refused.value
    assert (error.file, error.line, error.column) == (str(users), line, column), str(error)
    assert error.message.startswith(message), error.message
    assert (error.where, error.hint) == (where, hint)


def test_serve_reports_it_like_a_manifest_error(tmp_path: Path) -> None:
    """Through the CLI: ``error: FILE:LINE:COL: what (at where)`` then the hint, exit 1."""
    users = tmp_path / "users.yaml"
    users.write_text(ANN + "teams:\n  - name: Lab\n    admins: [ann]\n", encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["emulator", "serve", "--port", "0", "--users", str(users)])
    assert code == 1
    assert err.getvalue() == (
        f"error: {users}:5:5: unknown key 'admins' (at teams[0])\n"
        "  hint: a team takes canPublicJoin, description, managers, members, name\n"
    )
    assert out.getvalue() == ""
