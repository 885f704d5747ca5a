"""Storage half of the emulator: storage locations, project settings, STS, file handles,
multipart upload and copy (synapse-api.md §6-§10). Filled in by the storage work."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .routing import Route

if TYPE_CHECKING:
    from .store import Store

SCHEMA = ""


def known_buckets(store: Store) -> list[str]:
    """Buckets named by storage locations (persisted with the data dir)."""
    del store
    return []


ROUTES: list[Route] = []
