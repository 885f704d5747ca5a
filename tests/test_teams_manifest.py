"""The teams: section offline: schema and semantic errors, each located, all collected."""

from __future__ import annotations

from pathlib import Path

import pytest

from synapse_declare.model import MembershipMode
from synapse_declare.validate import validate_paths


def check(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "m.yaml"
    path.write_text(text, encoding="utf-8")
    report = validate_paths(path)
    return [str(e) for e in report.errors]


def test_a_valid_team_and_its_defaults(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        "version: 1\nteams:\n  - name: Center A\n    managers: [self]\n"
        '    members: [user:jdoe, "3350412"]\n',
        encoding="utf-8",
    )
    report = validate_paths(path)
    assert not report.errors and report.manifest is not None
    (team,) = report.manifest.teams
    assert team.mode is MembershipMode.AUTHORITATIVE and team.can_public_join is False
    assert [str(p) for p in team.managers] == ["self"]
    assert [str(p) for p in team.members] == ["user:jdoe", "3350412"]
    assert team.members[0].location is not None and team.members[0].location.line == 5


def test_semantic_problems_are_all_reported_with_places(tmp_path: Path) -> None:
    errors = check(
        tmp_path,
        "version: 1\nteams:\n"
        "  - name: Center A\n    managers: [self, user:jdoe]\n    members: [user:JDoe]\n"
        "  - name: center-a\n    managers: [self]\n",
    )
    assert len(errors) == 2, errors
    assert "m.yaml:5:15: team 'Center A': user:JDoe is listed twice" in errors[0]
    assert "managers are members too" in errors[0]
    assert "m.yaml:6:11: team 'center-a' is declared twice" in errors[1]


def test_schema_problems_are_located(tmp_path: Path) -> None:
    errors = check(
        tmp_path,
        "version: 1\nteams:\n  - name: Center A\n    managers: []\n"
        "    members: [team:Other]\n    membership: sometimes\n",
    )
    text = "\n".join(errors)
    assert "m.yaml:4:" in text and "m.yaml:5:" in text and "m.yaml:6:" in text, text
    assert "a team member is user:NAME, self or a numeric user id" in text


def test_the_digest_covers_teams(tmp_path: Path) -> None:
    def digest(members: str) -> str:
        path = tmp_path / "m.yaml"
        path.write_text(
            f"version: 1\nteams:\n  - name: A\n    managers: [self]\n    members: {members}\n",
            encoding="utf-8",
        )
        report = validate_paths(path)
        assert report.manifest is not None
        return report.manifest.digest

    assert digest("[user:a, user:b]") == digest("[user:b, user:a]")
    assert digest("[user:a]") != digest("[user:a, user:b]")


def test_a_damaged_membership_payload_is_refused_clearly() -> None:
    from synapse_declare.errors import PlanError
    from synapse_declare.resources.team import MembershipDesired, MembershipOp

    good = MembershipDesired(MembershipOp.INVITE, "team:A", "7", expires_on="2030-01-01")
    assert MembershipDesired.from_json(good.to_json()) == good
    for damaged in (
        {"op": "invite", "team": "team:A", "user_id": "7"},
        {"op": "cancel_invitation", "team": "team:A", "user_id": "7"},
        {"op": "promote", "team": "team:A", "user_id": "7"},
        {"op": "add", "user_id": "7"},
    ):
        with pytest.raises(PlanError, match="the plan file is damaged"):
            MembershipDesired.from_json(damaged)


def test_validate_counts_the_teams(capsys: pytest.CaptureFixture[str]) -> None:
    from synapse_declare.cli import main

    examples = Path(__file__).resolve().parent.parent / "examples" / "teams"
    assert main(["validate", str(examples)]) == 0
    assert capsys.readouterr().out == "ok: 1 file(s), 1 project(s), 0 folder(s), 1 team(s)\n"
