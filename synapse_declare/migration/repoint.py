"""Repointing a migrated file version at its verified copy: in place, as a new version, or moved
into another folder, each guarded against a version that changed since the plan, and each resolving
a write whose outcome is unknown by reading back before sending again."""

from __future__ import annotations

from dataclasses import dataclass

from ..client.records import Entity
from ..client.synapse import SynapseAPI
from ..errors import AmbiguousWrite, NotFound, PreconditionFailed
from ..journal import Journal
from ..progress import Progress
from .index import MigrationItem, Strategy

RESEND_ATTEMPTS = 4


class SourceChanged(Exception):
    """The entity version no longer is what the plan saw; it was not repointed."""


class AlreadyDone(Exception):
    """An earlier run already repointed this entity (its journal entry was lost to a kill)."""

    def __init__(self, new_handle_id: str, new_version: int) -> None:
        super().__init__(new_handle_id)
        self.new_handle_id = new_handle_id
        self.new_version = new_version


@dataclass(frozen=True)
class Repointer:
    api: SynapseAPI
    journal: Journal
    progress: Progress
    strategy: Strategy
    destination_id: int
    move_to: str | None

    def check_entity(self, item: MigrationItem) -> Entity:
        """Strategies NEW and MOVE: the entity as it is now, if it is still what the plan saw.
        Raises :class:`AlreadyDone` when it changed because an earlier run of this migration
        already updated it (killed before the journal recorded that)."""
        try:
            entity = self.api.get_entity(item.entity_id)
        except NotFound as exc:
            raise SourceChanged(f"{item.entity_id} no longer exists ({exc.reason})") from None
        if item.entity_etag is not None and entity.get("etag") != item.entity_etag:
            record = self.journal.copy(item.file_handle_id)
            copied = record.new_handle_id if record is not None else None
            if (
                copied is not None
                and str(entity.get("dataFileHandleId")) == copied
                and (self.move_to is None or entity.get("parentId") == self.move_to)
            ):
                raise AlreadyDone(copied, int(entity.get("versionNumber") or 0))
            raise SourceChanged(
                f"{item.entity_id} changed since the plan (etag {item.entity_etag} → "
                f"{entity.get('etag')})"
            )
        if str(entity.get("dataFileHandleId")) != item.file_handle_id:
            raise SourceChanged(
                f"{item.entity_id} now has file handle {entity.get('dataFileHandleId')}, not "
                f"{item.file_handle_id}"
            )
        return entity

    def repoint(self, item: MigrationItem, new_handle_id: str, entity: Entity | None) -> int | None:
        if self.strategy is Strategy.NEW:
            assert entity is not None
            return self._new_version(item, new_handle_id, entity)
        if self.strategy is Strategy.MOVE:
            assert entity is not None
            self._move(item, new_handle_id, entity)
            return None
        self._swap_in_place(item, new_handle_id)
        return None

    def _move(self, item: MigrationItem, new_handle_id: str, entity: Entity) -> None:
        """Strategy MOVE: into the target folder with the copy, one etag-guarded update. The
        copy has the source's MD5, so Synapse swaps the handle in place (no new version)."""
        assert self.move_to is not None
        body = {**entity, "parentId": self.move_to, "dataFileHandleId": new_handle_id}

        def landed() -> bool | None:
            current = self.api.get_entity(item.entity_id)
            if (
                current.get("parentId") == self.move_to
                and str(current.get("dataFileHandleId")) == new_handle_id
            ):
                return True
            if current.get("etag") == entity.get("etag"):
                return None
            raise SourceChanged(f"{item.entity_id} changed while its move was unconfirmed")

        for attempt in range(1, RESEND_ATTEMPTS + 1):
            try:
                self.api.update_entity(body)
                return
            except PreconditionFailed:
                raise SourceChanged(
                    f"{item.entity_id} changed since the plan (etag {entity.get('etag')})"
                ) from None
            except AmbiguousWrite as exc:
                if landed():
                    return
                if attempt == RESEND_ATTEMPTS:
                    raise
                self.progress.note(f"move {item.entity_id}: {exc}; not applied, sending again")
        raise AssertionError("unreachable")

    def version_handle(self, item: MigrationItem) -> str | None:
        try:
            bundle = self.api.version_bundle(item.entity_id, item.version, includeEntity=True)
        except NotFound:
            return None
        value = bundle.get("entity", {}).get("dataFileHandleId")
        return None if value is None else str(value)

    @staticmethod
    def changed_text(item: MigrationItem, current: str | None) -> str:
        if current is None:
            return f"{item.entity_id} version {item.version} no longer exists"
        return (
            f"version {item.version} now has file handle {current}, not {item.file_handle_id} "
            "(it changed since the plan)"
        )

    def _swap_in_place(self, item: MigrationItem, new_handle_id: str) -> None:
        for attempt in range(1, RESEND_ATTEMPTS + 1):
            try:
                self.api.update_version_file_handle(
                    item.entity_id, item.version, item.file_handle_id, new_handle_id
                )
                return
            except PreconditionFailed as err:
                current = self.version_handle(item)
                if current == new_handle_id:
                    return  # an earlier, unconfirmed attempt had done it
                if "MD5" in err.reason:
                    raise
                raise SourceChanged(self.changed_text(item, current)) from None
            except AmbiguousWrite as exc:
                current = self.version_handle(item)
                if current == new_handle_id:
                    return
                if current != item.file_handle_id or attempt == RESEND_ATTEMPTS:
                    if current == item.file_handle_id:
                        raise
                    raise SourceChanged(
                        f"version {item.version} changed while its repoint was unconfirmed "
                        f"(now {current})"
                    ) from exc
                self.progress.note(
                    f"repoint {item.entity_id} v{item.version}: {exc}; not applied, sending again"
                )
        raise AssertionError("unreachable")

    def _new_version(self, item: MigrationItem, new_handle_id: str, entity: Entity) -> int:
        body = dict(entity)
        body["dataFileHandleId"] = new_handle_id
        body.pop("versionLabel", None)  # the new version's label becomes its number
        body["versionComment"] = (
            f"File moved to storage location {self.destination_id} by synapse-declare "
            f"(was file handle {item.file_handle_id})"
        )
        for attempt in range(1, RESEND_ATTEMPTS + 1):
            try:
                updated = self.api.update_entity_new_version(body)
                return int(updated.get("versionNumber", 0))
            except PreconditionFailed:
                current = self.api.get_entity(item.entity_id)
                if str(current.get("dataFileHandleId")) == new_handle_id:
                    return int(current.get("versionNumber", 0))
                raise SourceChanged(
                    f"{item.entity_id} changed before its new version was created (412)"
                ) from None
            except AmbiguousWrite as exc:
                current = self.api.get_entity(item.entity_id)
                if str(current.get("dataFileHandleId")) == new_handle_id:
                    return int(current.get("versionNumber", 0))
                if current.get("etag") != body.get("etag"):
                    raise SourceChanged(
                        f"{item.entity_id} changed while its new version was unconfirmed"
                    ) from exc
                if attempt == RESEND_ATTEMPTS:
                    raise
                self.progress.note(
                    f"new version of {item.entity_id}: {exc}; not applied, sending again"
                )
        raise AssertionError("unreachable")
