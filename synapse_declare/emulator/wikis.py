"""Wikis v1 and v2 (synapse-api.md §5). Owned by the wiki work; bundles read ``root_wiki_id``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .routing import Route

if TYPE_CHECKING:
    from .store import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS wikis (
    id INTEGER PRIMARY KEY,
    owner_id INTEGER NOT NULL,
    owner_type TEXT NOT NULL DEFAULT 'ENTITY',
    parent_id INTEGER,
    title TEXT,
    etag TEXT NOT NULL,
    created_on TEXT NOT NULL,
    created_by INTEGER NOT NULL,
    modified_on TEXT NOT NULL,
    modified_by INTEGER NOT NULL,
    markdown_handle_id INTEGER,
    attachments TEXT NOT NULL DEFAULT '[]',
    version INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS wikis_owner ON wikis(owner_id, parent_id);
"""


def root_wiki_id(store: Store, owner_id: int) -> int | None:
    value = store.scalar(
        "SELECT id FROM wikis WHERE owner_id = ? AND owner_type = 'ENTITY' AND parent_id IS NULL",
        (owner_id,),
    )
    return None if value is None else int(value)


ROUTES: list[Route] = []
