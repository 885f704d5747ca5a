"""Helpers shared by the team and access-requirement behaviour tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from conftest import Api
from emulator_core_support import uniq


def new_team(api: Api, **extra: Any) -> dict[str, Any]:
    response = api.call("POST", "/team", {"name": uniq("Team"), **extra})
    assert response.status_code == 201, response.text
    return dict(response.json())


def member_names(api: Api, team_id: str, **params: Any) -> list[tuple[str, bool]]:
    page = api.ok("GET", f"/teamMembers/{team_id}", **params)
    return [(m["member"]["userName"], m["isAdmin"]) for m in page["results"]]


def invite(api: Api, team_id: str, invitee: int, **extra: Any) -> dict[str, Any]:
    response = api.call(
        "POST", "/membershipInvitation", {"teamId": team_id, "inviteeId": str(invitee), **extra}
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%S.000Z")
