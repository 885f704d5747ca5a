"""What lives under a managed container but is not in the manifest: the plan's "left alone"
section (issue 11).

Found only in what the plan reads anyway, never with a read of its own:

* undeclared **folders**: in the children page of a container that declares folders (that
  page is how declared folders are matched). A container that declares no folders is not
  listed, so its undeclared children are not shown (listing it would cost one read);
* **own ACLs** on those undeclared folders (the children page's ``benefactorId``), and on
  declared folders whose ACL the manifest leaves out (``acl:`` omitted);
* undeclared **annotation keys**: wherever the bundle already carries annotations (every
  existing project; a folder that declares ``annotations:``, and every declared folder in the
  plan that adopts its project, which reads them to adopt it);
* undeclared **wiki pages**: in the wiki header tree read for a declared ``wiki:`` (one entry
  per undeclared subtree, its sub-pages counted).

Files and other entity types are not listed: the manifest never declares them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .lifecycle import ADDRESS_KEY, MARKER_KEY, PROTECT_KEY
from .model import EntityKind, Manifest
from .plan import Leftover, LeftoverKind
from .resources.base import Address, sub_address
from .state import FOLDER_TYPE, LiveContainer, LiveState

# Annotation keys synapse-declare writes for itself: never a leftover.
OWN_KEYS = frozenset({MARKER_KEY, PROTECT_KEY, ADDRESS_KEY})
MAX_DETAIL = 80


def find_leftovers(manifest: Manifest, live: LiveState) -> tuple[Leftover, ...]:
    found: list[Leftover] = []
    for spec in manifest.walk():
        current = live.containers.get(spec.address)
        if current is None:
            continue
        if spec.kind is EntityKind.FOLDER and spec.acl is None and current.own_acl:
            found.append(
                Leftover(
                    sub_address(spec.address, "acl"),
                    LeftoverKind.ACL,
                    current.syn_id,
                    "own ACL; the manifest has no acl: for this folder",
                )
            )
        # Any relocated folder, not only this container's own: one moved here by hand from
        # elsewhere is a declared folder on its way back, not a leftover.
        moved = {
            moved_live.syn_id
            for address in live.relocated
            if (moved_live := live.containers.get(address))
        }
        found.extend(_folders(spec.address, {c.name for c in spec.folders}, current, moved))
        declared_keys = set(spec.annotations or {}) | OWN_KEYS
        for key, value in sorted((current.annotations or {}).items()):
            if key not in declared_keys:
                found.append(
                    Leftover(
                        sub_address(spec.address, f"annotations.{key}"),
                        LeftoverKind.ANNOTATION,
                        current.syn_id,
                        _annotation_text(value),
                    )
                )
        found.extend(_wiki_pages(spec.address, current))
    return tuple(found)


def _folders(
    owner: str, declared: set[str], current: LiveContainer, moved: set[str]
) -> Iterable[Leftover]:
    for name, header in sorted((current.children or {}).items()):
        if name in declared or header.get("type") != FOLDER_TYPE or str(header["id"]) in moved:
            continue
        syn_id = str(header["id"])
        address = str(Address.container("folder", name, owner))
        yield Leftover(address, LeftoverKind.FOLDER, syn_id, "not in the manifest")
        if str(header.get("benefactorId")) == syn_id.removeprefix("syn"):
            yield Leftover(
                sub_address(address, "acl"),
                LeftoverKind.ACL,
                syn_id,
                "own ACL on a folder the manifest does not declare",
            )


def _wiki_pages(owner: str, current: LiveContainer) -> Iterable[Leftover]:
    if current.wiki_headers is None:
        return
    matched = {page.id for page in current.wiki_pages.values()}
    by_id = {str(h["id"]): h for h in current.wiki_headers}
    children: dict[str, list[str]] = {}
    for header in current.wiki_headers:
        parent = header.get("parentId")
        if parent is not None:
            children.setdefault(str(parent), []).append(str(header["id"]))

    def below(wiki_id: str) -> int:
        return sum(1 + below(child) for child in children.get(wiki_id, []))

    def title_path(wiki_id: str) -> list[str]:
        path: list[str] = []
        header: Mapping[str, Any] | None = by_id.get(wiki_id)
        # The root page is the address's "wiki" itself; its title is not a path segment.
        while header is not None and header.get("parentId") is not None:
            path.append(str(header.get("title") or header["id"]))
            header = by_id.get(str(header["parentId"]))
        return list(reversed(path))

    for header in current.wiki_headers:
        wiki_id, parent = str(header["id"]), header.get("parentId")
        # One entry per undeclared subtree: the topmost undeclared page under a declared one.
        if wiki_id in matched or parent is None or str(parent) not in matched:
            continue
        count = below(wiki_id)
        detail = "not in the manifest" + (
            f" (with {count} sub-page{'s' if count != 1 else ''})" if count else ""
        )
        yield Leftover(
            sub_address(owner, "wiki/" + "/".join(title_path(wiki_id))),
            LeftoverKind.WIKI_PAGE,
            wiki_id,
            detail,
        )


def _annotation_text(value: Mapping[str, Any]) -> str:
    values = ", ".join(str(v) for v in value.get("value", []))
    text = f"{value.get('type', 'STRING')}: {values}"
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 1] + "…"
