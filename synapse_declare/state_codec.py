"""A JSON codec for :class:`~synapse_declare.state.LiveState`: what the reader produced, as data.

It exists so the pure planner (``build_plan(manifest, live)``) can be tested without Synapse:
``tests/golden/<case>/live.json`` holds the state a read produced, and the golden runner plans
against it. The encoding is exact (``decode(encode(s)) == s``): ids stay ints where the reader
keeps ints, access sets stay sets (written sorted so a capture diffs cleanly).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from .acl_audit import Walked
from .lifecycle import PruneCandidate, Relocation
from .migration import MigrationIndex
from .model import PrincipalRef, parse_principal
from .plan import Target
from .resources import team
from .state import LiveAcl, LiveContainer, LiveState, LiveWikiPage
from .storage import LiveStorage

FORMAT = 1


def encode(live: LiveState) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "target": {
            "endpoint": live.target.endpoint,
            "user_id": live.target.user_id,
            "user_name": live.target.user_name,
        },
        "principals": {_principal_key(ref): pid for ref, pid in _sorted_refs(live.principals)},
        "containers": {
            address: None if found is None else _container(found)
            for address, found in sorted(live.containers.items())
        },
        "observed": dict(sorted(live.observed.items())),
        "storage": _storage(live.storage),
        "identities": list(live.identities),
        "my_groups": sorted(live.my_groups),
        "principal_names": {str(k): v for k, v in sorted(live.principal_names.items())},
        "exposures": list(live.exposures),
        "certified": live.certified,
        "audit_public": live.audit_public,
        "unreadable": dict(sorted(live.unreadable.items())),
        "teams": team.encode(live.teams),
        # Only under `prune:` (issue 11); absent otherwise, so older captures still round-trip.
        **(
            {
                "prune_candidates": {
                    address: dataclasses.asdict(candidate)
                    for address, candidate in sorted(live.prune_candidates.items())
                }
            }
            if live.prune_candidates
            else {}
        ),
        **(
            {
                "relocated": {
                    address: dataclasses.asdict(moved)
                    for address, moved in sorted(live.relocated.items())
                }
            }
            if live.relocated
            else {}
        ),
        **({"trashed": dict(sorted(live.trashed.items()))} if live.trashed else {}),
        **(
            {
                "other_acls": {
                    syn_id: {"etag": acl.etag, "entries": _access(acl.entries)}
                    for syn_id, acl in sorted(live.other_acls.items())
                }
            }
            if live.other_acls
            else {}
        ),
        # Only when the project walk ran (--audit-public, folders_inherit: strict).
        **({"walked": [dataclasses.asdict(w) for w in live.walked]} if live.walked else {}),
        **(
            {"acl_permissions": dict(sorted(live.acl_permissions.items()))}
            if live.acl_permissions
            else {}
        ),
        **({"notes": list(live.notes)} if live.notes else {}),
    }


def decode(data: Mapping[str, Any]) -> LiveState:
    if data.get("format") != FORMAT:
        raise ValueError(f"unsupported live state format {data.get('format')!r}")
    target = data["target"]
    return LiveState(
        target=Target(
            endpoint=str(target["endpoint"]),
            user_id=int(target["user_id"]),
            user_name=str(target["user_name"]),
        ),
        principals={_principal_ref(k): int(v) for k, v in data["principals"].items()},
        containers={
            str(address): None if found is None else _live_container(found)
            for address, found in data["containers"].items()
        },
        observed={str(k): v for k, v in data["observed"].items()},
        storage=_live_storage(data["storage"]),
        identities=tuple(data["identities"]),
        my_groups=frozenset(int(g) for g in data["my_groups"]),
        principal_names={int(k): str(v) for k, v in data["principal_names"].items()},
        exposures=list(data["exposures"]),
        certified=data["certified"],
        audit_public=bool(data["audit_public"]),
        unreadable=dict(data["unreadable"]),
        teams=team.decode(data.get("teams")),  # absent in live states captured before teams
        prune_candidates={
            str(address): PruneCandidate(**candidate)
            for address, candidate in data.get("prune_candidates", {}).items()
        },
        relocated={
            str(address): Relocation(**item) for address, item in data.get("relocated", {}).items()
        },
        trashed={str(k): str(v) for k, v in data.get("trashed", {}).items()},
        other_acls={
            str(syn_id): LiveAcl(
                etag=str(acl["etag"]),
                entries={int(k): frozenset(v) for k, v in acl["entries"].items()},
            )
            for syn_id, acl in data.get("other_acls", {}).items()
        },
        walked=[Walked(**w) for w in data.get("walked", [])],
        acl_permissions={str(k): bool(v) for k, v in data.get("acl_permissions", {}).items()},
        notes=[str(n) for n in data.get("notes", [])],
    )


# -- principals --------------------------------------------------------------------------------


def _principal_key(ref: PrincipalRef) -> str:
    # ``str(ref)`` is the manifest spelling, which parse_principal reads back exactly.
    return str(ref)


def _principal_ref(key: str) -> PrincipalRef:
    return parse_principal(key)


def _sorted_refs(principals: Mapping[PrincipalRef, int]) -> list[tuple[PrincipalRef, int]]:
    return sorted(principals.items(), key=lambda item: str(item[0]))


# -- containers --------------------------------------------------------------------------------


def _access(entries: Mapping[int, frozenset[str]]) -> dict[str, list[str]]:
    return {str(pid): sorted(access) for pid, access in sorted(entries.items())}


def _container(live: LiveContainer) -> dict[str, Any]:
    return {
        "syn_id": live.syn_id,
        "concrete_type": live.concrete_type,
        "name": live.name,
        "own_acl": live.own_acl,
        "created_by": live.created_by,
        "entity": live.entity,
        "annotations": live.annotations,
        "etag": live.etag,
        "acl": None
        if live.acl is None
        else {"etag": live.acl.etag, "entries": _access(live.acl.entries)},
        "wiki_root_id": live.wiki_root_id,
        "wiki_headers": live.wiki_headers,
        "wiki_pages": {
            key: {
                "id": page.id,
                "etag": page.etag,
                "title": page.title,
                "parent_id": page.parent_id,
                "markdown": page.markdown,
                "raw": page.raw,
            }
            for key, page in live.wiki_pages.items()
        },
        "wiki_order": live.wiki_order,
        "children": live.children,
        "permissions": live.permissions,
    }


def _live_container(data: Mapping[str, Any]) -> LiveContainer:
    acl = data["acl"]
    return LiveContainer(
        syn_id=str(data["syn_id"]),
        concrete_type=str(data["concrete_type"]),
        name=str(data["name"]),
        own_acl=bool(data["own_acl"]),
        created_by=data["created_by"],
        entity=data["entity"],
        annotations=data["annotations"],
        etag=data["etag"],
        acl=None
        if acl is None
        else LiveAcl(
            etag=str(acl["etag"]),
            entries={int(k): frozenset(v) for k, v in acl["entries"].items()},
        ),
        wiki_root_id=data["wiki_root_id"],
        wiki_headers=data["wiki_headers"],
        wiki_pages={
            str(key): LiveWikiPage(
                id=str(page["id"]),
                etag=str(page["etag"]),
                title=str(page["title"]),
                parent_id=page["parent_id"],
                markdown=str(page["markdown"]),
                raw=dict(page["raw"]),
            )
            for key, page in data["wiki_pages"].items()
        },
        wiki_order=data["wiki_order"],
        children=data["children"],
        permissions=data["permissions"],
    )


# -- storage -----------------------------------------------------------------------------------


def _storage(live: LiveStorage) -> dict[str, Any]:
    return {
        "locations": {str(k): v for k, v in sorted(live.locations.items())},
        "matched": dict(sorted(live.matched.items())),
        "settings": dict(sorted(live.settings.items())),
        "children": dict(sorted(live.children.items())),
        "owner_checks": dict(sorted(live.owner_checks.items())),
        "migrations": {k: v.to_json() for k, v in sorted(live.migrations.items())},
        "endpoints": dict(sorted(live.endpoints.items())),
        "moves": {
            k: {"source": source, "index": index.to_json()}
            for k, (source, index) in sorted(live.moves.items())
        },
    }


def _live_storage(data: Mapping[str, Any]) -> LiveStorage:
    return LiveStorage(
        locations={int(k): dict(v) for k, v in data["locations"].items()},
        matched={str(k): int(v) for k, v in data["matched"].items()},
        settings=dict(data["settings"]),
        children={str(k): int(v) for k, v in data["children"].items()},
        owner_checks=dict(data["owner_checks"]),
        migrations={str(k): MigrationIndex.from_json(v) for k, v in data["migrations"].items()},
        endpoints=dict(data["endpoints"]),
        moves={
            str(k): (str(v["source"]), MigrationIndex.from_json(v["index"]))
            for k, v in data["moves"].items()
        },
    )
