"""``GET /repo/v1/entity/md5/{md5}``: the entity versions whose file has that MD5
(synapse-api-2.md §6.2; SRS NodeDAOImpl SELECT_NODE_VERSION_BY_FILE_MD5, NodeManagerImpl).

One header per matching *revision* (not only current versions), at most 200 rows ordered by node
id before the caller's READ filter removes what it may not see (trashed entities included), so
the answer is 200 with an empty list when nothing matches or nothing is readable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import nodes
from .routing import Route

if TYPE_CHECKING:
    from .app import Ctx

SCHEMA = """
CREATE INDEX IF NOT EXISTS file_handles_md5 ON file_handles(content_md5);
CREATE INDEX IF NOT EXISTS revisions_file_handle ON revisions(file_handle_id);
"""

MAX_ROWS = 200


def entities_by_md5(ctx: Ctx, md5: str) -> dict[str, Any]:
    store, caller = ctx.store, ctx.caller
    rows = store.all(
        "SELECT n.*, r.rev AS match_rev FROM file_handles f "
        "JOIN revisions r ON r.file_handle_id = f.id JOIN nodes n ON n.id = r.node_id "
        "WHERE f.content_md5 = ? ORDER BY n.id, r.rev LIMIT ?",
        (md5, MAX_ROWS),
    )
    readable: dict[int, bool] = {}
    results: list[dict[str, Any]] = []
    for row in rows:
        node_id = int(row["id"])
        if node_id not in readable:
            readable[node_id] = nodes.can(store, caller, node_id, "READ")
        if readable[node_id]:
            results.append(nodes.header_json(store, row, rev=int(row["match_rev"])))
    return {"results": results, "totalNumberOfResults": len(results)}


ROUTES = [Route("GET", "/repo/v1/entity/md5/<md5>", entities_by_md5)]
