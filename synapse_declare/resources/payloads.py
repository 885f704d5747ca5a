"""Typed apply payloads: what a change carries from plan to apply, per kind.

``Change.desired`` / ``Change.prior`` are the JSON encoding of these (that is what a saved plan
file holds); a kind's plan step builds them with ``to_json()`` and its apply step reads them back
with ``from_json()``, so both sides agree on one typed shape and a damaged plan file is refused
with a clear error instead of a ``KeyError`` deep inside a write. This module sits beside
``base`` (below the kinds, the planner and the state reader) so all of them can use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import PlanError


def required_field(data: Mapping[str, Any], key: str, what: str) -> Any:
    """``data[key]`` of a saved plan's payload; a damaged plan file is a clear error."""
    try:
        return data[key]
    except KeyError:
        raise PlanError(
            f"the plan file is damaged: a {what} change has no {key!r}",
            hint="run 'synapse-declare plan' again",
        ) from None


@dataclass(frozen=True, slots=True)
class WikiPageDesired:
    owner: str  # address of the project/folder owning the wiki
    parent: str | None  # address of the parent page (None for the root)
    title: str
    markdown: str

    def to_json(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "parent": self.parent,
            "title": self.title,
            "markdown": self.markdown,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WikiPageDesired:
        parent = required_field(data, "parent", "wiki page")
        return cls(
            owner=str(required_field(data, "owner", "wiki page")),
            parent=None if parent is None else str(parent),
            title=str(required_field(data, "title", "wiki page")),
            markdown=str(required_field(data, "markdown", "wiki page")),
        )


@dataclass(frozen=True, slots=True)
class WikiPagePrior:
    etag: str
    page: Mapping[str, Any] | None  # the V1 page as read (kept fields on update)

    def to_json(self) -> dict[str, Any]:
        return {"etag": self.etag, "page": None if self.page is None else dict(self.page)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WikiPagePrior:
        page = data.get("page")
        return cls(etag=str(required_field(data, "etag", "wiki page")), page=page)


@dataclass(frozen=True, slots=True)
class WikiOrderDesired:
    owner: str
    pages: tuple[str, ...]  # page addresses in the manifest's order
    others: tuple[str, ...]  # ids the manifest does not describe, kept after, in their order

    def to_json(self) -> dict[str, Any]:
        return {"owner": self.owner, "pages": list(self.pages), "others": list(self.others)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WikiOrderDesired:
        return cls(
            owner=str(required_field(data, "owner", "wiki order")),
            pages=tuple(str(p) for p in required_field(data, "pages", "wiki order")),
            others=tuple(str(i) for i in data.get("others", [])),
        )


@dataclass(frozen=True, slots=True)
class EtagPrior:
    """The etag a write is guarded by (None: the object did not exist when planned)."""

    etag: str | None

    def to_json(self) -> dict[str, Any]:
        return {"etag": self.etag}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EtagPrior:
        etag = data.get("etag")
        return cls(etag=None if etag is None else str(etag))


@dataclass(frozen=True, slots=True)
class LocationDesired:
    name: str
    setting: Mapping[str, Any]  # the StorageLocationSetting body to create

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "setting": dict(self.setting)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LocationDesired:
        return cls(
            name=str(required_field(data, "name", "storage location")),
            setting=dict(required_field(data, "setting", "storage location")),
        )


@dataclass(frozen=True, slots=True)
class LocationPrior:
    replaces: int  # the location a replacement supersedes in upload destinations

    def to_json(self) -> dict[str, Any]:
        return {"replaces": self.replaces}


@dataclass(frozen=True, slots=True)
class UploadDesired:
    container: str  # address of the project/folder
    locations: tuple[int | str, ...]  # existing ids, or "new:NAME" for a location this apply makes

    def to_json(self) -> dict[str, Any]:
        return {"container": self.container, "locations": list(self.locations)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UploadDesired:
        return cls(
            container=str(required_field(data, "container", "upload destination")),
            locations=tuple(required_field(data, "locations", "upload destination")),
        )


@dataclass(frozen=True, slots=True)
class UploadPrior:
    etag: str | None
    setting: Mapping[str, Any]  # the UploadDestinationListSetting as read

    def to_json(self) -> dict[str, Any]:
        return {"etag": self.etag, "setting": dict(self.setting)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UploadPrior:
        etag = data.get("etag")
        return cls(
            etag=None if etag is None else str(etag),
            setting=dict(required_field(data, "setting", "upload destination")),
        )


@dataclass(frozen=True, slots=True)
class ContainerCreate:
    entity: Mapping[str, Any]  # the Project/Folder body (parentId added at apply time)
    annotations: Mapping[str, Any] | None  # Annotations v2 map, sent in the create call
    acl: tuple[Mapping[str, Any], ...] | None  # resourceAccess entries
    # Set the ACL after the create (etag-guarded) instead of in it: see
    # resources.container.acl_after_create for why.
    acl_after_create: bool
    parent: str | None  # the parent's address (None for a project)

    def to_json(self) -> dict[str, Any]:
        return {
            "entity": dict(self.entity),
            "annotations": None if self.annotations is None else dict(self.annotations),
            "acl": None if self.acl is None else [dict(e) for e in self.acl],
            "acl_after_create": self.acl_after_create,
            "parent": self.parent,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ContainerCreate:
        annotations, acl, parent = data.get("annotations"), data.get("acl"), data.get("parent")
        return cls(
            entity=dict(required_field(data, "entity", "create")),
            annotations=None if annotations is None else dict(annotations),
            acl=None if acl is None else tuple(dict(e) for e in acl),
            acl_after_create=bool(data.get("acl_after_create")),
            parent=None if parent is None else str(parent),
        )


@dataclass(frozen=True, slots=True)
class ContainerUpdate:
    entity_update: Mapping[str, Any] | None  # entity fields to change (name, description...)
    annotations: Mapping[str, Any] | None  # the whole annotations map to PUT, when it changes
    acl_op: str | None  # "create", "update", "delete" or None
    acl: tuple[Mapping[str, Any], ...] | None

    def to_json(self) -> dict[str, Any]:
        return {
            "entity_update": None if self.entity_update is None else dict(self.entity_update),
            "annotations": None if self.annotations is None else dict(self.annotations),
            "acl_op": self.acl_op,
            "acl": None if self.acl is None else [dict(e) for e in self.acl],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ContainerUpdate:
        update, annotations = data.get("entity_update"), data.get("annotations")
        acl, op = data.get("acl"), data.get("acl_op")
        if op not in (None, "create", "update", "delete"):
            raise PlanError(f"the plan file is damaged: unknown ACL operation {op!r}")
        return cls(
            entity_update=None if not update else dict(update),
            annotations=None if annotations is None else dict(annotations),
            acl_op=op,
            acl=None if acl is None else tuple(dict(e) for e in acl),
        )


@dataclass(frozen=True, slots=True)
class ContainerPrior:
    etag: str | None  # the entity's etag as read
    entity: Mapping[str, Any] | None  # the entity as read, when its fields change
    acl_etag: str | None  # the own ACL's etag, when it has one

    def to_json(self) -> dict[str, Any]:
        return {
            "etag": self.etag,
            "entity": None if self.entity is None else dict(self.entity),
            "acl_etag": self.acl_etag,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ContainerPrior:
        etag, entity, acl_etag = data.get("etag"), data.get("entity"), data.get("acl_etag")
        return cls(
            etag=None if etag is None else str(etag),
            entity=None if entity is None else dict(entity),
            acl_etag=None if acl_etag is None else str(acl_etag),
        )


@dataclass(frozen=True, slots=True)
class MigrationDesired:
    container: str  # address of the project/folder whose files move
    destination: str  # the storage location's manifest name
    endpoint_url: str | None  # its S3 endpoint (for verification reads)
    strategy: str  # "all", "latest", "new" or "move" (move_files_from)
    index: Mapping[str, Any]  # migration.MigrationIndex.to_json(): what moves, what stays
    move_to: str | None = None  # move_files_from: the STS folder the files move into

    def to_json(self) -> dict[str, Any]:
        data = {
            "container": self.container,
            "destination": self.destination,
            "endpoint_url": self.endpoint_url,
            "strategy": self.strategy,
            "index": dict(self.index),
        }
        return data if self.move_to is None else {**data, "move_to": self.move_to}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MigrationDesired:
        endpoint, move_to = data.get("endpoint_url"), data.get("move_to")
        return cls(
            container=str(required_field(data, "container", "migration")),
            destination=str(required_field(data, "destination", "migration")),
            endpoint_url=None if endpoint is None else str(endpoint),
            strategy=str(required_field(data, "strategy", "migration")),
            index=dict(required_field(data, "index", "migration")),
            move_to=None if not move_to else str(move_to),
        )
