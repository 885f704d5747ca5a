"""Emulator-only endpoints under ``/emulator/v1`` (not Synapse's API): state for tests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .routing import Route

if TYPE_CHECKING:
    from .app import Ctx

SCHEMA = ""


def state(ctx: Ctx) -> dict[str, Any]:
    return {"stateVersion": int(ctx.store.get_meta("state_version") or 0)}


ROUTES = [Route("GET", "/emulator/v1/state", state)]
