"""Typed Synapse REST calls for teams, memberships and invitations (synapse-api-2.md §1)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from ..errors import NotFound
from .http import Transport
from .records import MembershipInvitation, MembershipRequest, Team, TeamMember

PAGE = 50


class TeamsAPI:
    def __init__(self, transport: Transport) -> None:
        self.t = transport

    def _pages(self, path: str, **params: Any) -> list[Any]:
        """Every result of an offset-paged list (``PaginatedResults``)."""
        found: list[Any] = []
        offset = 0
        while True:
            body = self.t.request("GET", path, params={**params, "offset": offset, "limit": PAGE})
            page = list(body.get("results", [])) if isinstance(body, dict) else []
            found.extend(page)
            if len(page) < PAGE:
                return found
            offset += PAGE

    def get_team(self, team_id: str) -> Team | None:
        try:
            return cast(Team, dict(self.t.request("GET", f"/team/{team_id}")))
        except NotFound:
            return None

    def create_team(self, name: str, description: str | None, can_public_join: bool) -> Team:
        body = {"name": name, "description": description, "canPublicJoin": can_public_join}
        created = self.t.request("POST", "/team", body={k: v for k, v in body.items() if v})
        return cast(Team, dict(created))

    def update_team(self, team: Mapping[str, Any]) -> Team:
        return cast(Team, dict(self.t.request("PUT", "/team", body=team)))

    def members(self, team_id: str) -> list[TeamMember]:
        """``TeamMember`` records (users only, with ``isAdmin``)."""
        return self._pages(f"/teamMembers/{team_id}")

    def open_invitations(self, team_id: str) -> list[MembershipInvitation]:
        return self._pages(f"/team/{team_id}/openInvitation")

    def open_requests(self, team_id: str) -> list[MembershipRequest]:
        return self._pages(f"/team/{team_id}/openRequest")

    def add_member(self, team_id: str, user_id: str) -> None:
        self.t.request("PUT", f"/team/{team_id}/member/{user_id}")

    def remove_member(self, team_id: str, user_id: str) -> None:
        self.t.request("DELETE", f"/team/{team_id}/member/{user_id}")

    def set_manager(self, team_id: str, user_id: str, manager: bool) -> None:
        self.t.request(
            "PUT",
            f"/team/{team_id}/member/{user_id}/permission",
            params={"isAdmin": "true" if manager else "false"},
        )

    def invite(self, team_id: str, user_id: str, expires_on: str) -> MembershipInvitation:
        body = {"teamId": team_id, "inviteeId": user_id, "expiresOn": expires_on}
        return cast(
            MembershipInvitation, dict(self.t.request("POST", "/membershipInvitation", body=body))
        )

    def delete_invitation(self, invitation_id: str) -> None:
        self.t.request("DELETE", f"/membershipInvitation/{invitation_id}")
