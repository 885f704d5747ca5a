"""Typed apply payloads: what a change carries from plan to apply, per kind.

``Change.desired`` / ``Change.prior`` are the JSON encoding of these (that is what a saved plan
file holds); the planner builds them with ``to_json()`` and a kind's apply step reads them back
with ``from_json()``, so both sides agree on one typed shape and a damaged plan file is refused
with a clear error instead of a ``KeyError`` deep inside a write. This module sits beside
``base`` (below the planner, the storage planner and the kinds) so all of them can use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import PlanError


def _field(data: Mapping[str, Any], key: str, what: str) -> Any:
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
        parent = _field(data, "parent", "wiki page")
        return cls(
            owner=str(_field(data, "owner", "wiki page")),
            parent=None if parent is None else str(parent),
            title=str(_field(data, "title", "wiki page")),
            markdown=str(_field(data, "markdown", "wiki page")),
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
        return cls(etag=str(_field(data, "etag", "wiki page")), page=page)


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
            owner=str(_field(data, "owner", "wiki order")),
            pages=tuple(str(p) for p in _field(data, "pages", "wiki order")),
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
            name=str(_field(data, "name", "storage location")),
            setting=dict(_field(data, "setting", "storage location")),
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
            container=str(_field(data, "container", "upload destination")),
            locations=tuple(_field(data, "locations", "upload destination")),
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
            setting=dict(_field(data, "setting", "upload destination")),
        )
