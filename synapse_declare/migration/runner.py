"""The apply side of a storage migration: copy, verify and repoint each source file handle."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

from ..client.records import Entity, StorageLocation
from ..client.s3 import (
    DestinationReader,
    describe_exception,
)
from ..client.synapse import SynapseAPI
from ..copypaths import (
    EXTERNAL_S3_LOCATION,
    CopyPath,
    FallBack,
    FastCopier,
    RelayUrls,
    choose_path,
)
from ..errors import (
    Forbidden,
    MigrationError,
    NotFound,
    S3AccessError,
    SynapseDeclareError,
    VerificationError,
)
from ..journal import (
    COPY_COMPLETED,
    COPY_REJECTED,
    COPY_VERIFIED,
    ITEM_REPOINTED,
    CopyRecord,
    Journal,
)
from ..progress import Progress
from ..units import human_bytes
from .index import (
    MigrationIndex,
    MigrationItem,
    Strategy,
    short_type,
    sort_key,
)
from .multipart import AssociationRefused, Copy, MultipartCopier, resend
from .repoint import AlreadyDone, Repointer, SourceChanged
from .report import MigrationOptions, MigrationReport, ReportRow, pre_rows, write_reports
from .verify import CopyChecker

T = TypeVar("T")


class _Runner:
    def __init__(
        self,
        api: SynapseAPI,
        index: MigrationIndex,
        destination_id: int,
        verifier: DestinationReader | None,
        options: MigrationOptions,
        progress: Progress,
        journal: Journal,
        report: MigrationReport,
        destination_bucket: str | None,
        move_to: str | None = None,
        destination: Mapping[str, Any] | None = None,
        user_id: int = 0,
    ) -> None:
        self.api = api
        self.destination_bucket = destination_bucket
        self.index = index
        self.destination_id = destination_id
        self.verifier = verifier
        self.options = options
        self.progress = progress
        self.journal = journal
        self.report = report
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.total = len(index.items)
        self.finished = 0
        self.rows: dict[tuple[str, int], ReportRow] = {}
        self.aborted = threading.Event()
        self.multipart = MultipartCopier(
            api,
            journal,
            progress,
            destination_id=destination_id,
            destination_bucket=destination_bucket,
            preferred_part=options.part_size,
            parallel=options.parallel,
            aborted=self.aborted,
        )
        self.checker = CopyChecker(api, verifier, options, destination_id, destination_bucket)
        self.repointer = Repointer(api, journal, progress, index.strategy, destination_id, move_to)
        self.fast = self._fast_copier(destination or {}, user_id)

    def _fast_copier(self, destination: Mapping[str, Any], user_id: int) -> FastCopier | None:
        """The direct and relay paths (copypaths): only into an external S3 location, with S3
        access from this machine (the verifier's credentials, which must reach that bucket)."""
        if (
            self.options.copy_path != "auto"
            or destination.get("concreteType") != EXTERNAL_S3_LOCATION
            or self.verifier is None
            or not self.destination_bucket
        ):
            return None
        order: list[tuple[str, str]] = []
        seen: set[str] = set()
        for item in self.index.items:
            if item.file_handle_id not in seen and self._chosen(item) is CopyPath.RELAY:
                seen.add(item.file_handle_id)
                order.append((item.file_handle_id, item.entity_id))
        return FastCopier(
            self.api,
            self.verifier.client,
            self.journal,
            location_id=self.destination_id,
            bucket=self.destination_bucket,
            base_key=None if destination.get("baseKey") is None else str(destination["baseKey"]),
            user_id=user_id,
            relay_urls=RelayUrls(self.api, order),
            note=self.progress.note,
            resend=self._resend,
            preferred_part=self.options.part_size,
        )

    def _chosen(self, item: MigrationItem) -> CopyPath:
        return choose_path(
            size=item.size,
            from_location=item.from_location,
            bucket=item.bucket,
            key=item.key,
            destination_s3=True,
            mode=self.options.copy_path,
            relay_max=self.options.relay_max_bytes,
        )

    def _path_for(self, item: MigrationItem, record: CopyRecord | None) -> CopyPath:
        """A copy an earlier run started keeps its path (its object key is in the journal)."""
        if self.fast is None:
            return CopyPath.SYNAPSE
        if record is not None and record.state != COPY_REJECTED:
            for path in (CopyPath.DIRECT, CopyPath.RELAY):
                if str(record.upload_id or "").startswith(f"{path.value}:"):
                    return path
            if record.upload_id:
                return CopyPath.SYNAPSE
        return self._chosen(item)

    def close(self) -> None:
        self.multipart.close()
        if self.fast is not None:
            self.fast.close()

    # -- bookkeeping -------------------------------------------------------------------------

    def _row(
        self,
        item: MigrationItem,
        status: str,
        *,
        to_handle: str | None = None,
        error: str = "",
        new_version: int | None = None,
        note: str = "",
    ) -> None:
        row = ReportRow(
            entity_id=item.entity_id,
            version=item.version,
            name=item.file_name,
            from_handle=item.file_handle_id,
            to_handle=to_handle,
            size=item.size,
            status=status,
            error=error,
            new_version=new_version,
        )
        with self.lock:
            self.rows[(item.entity_id, item.version)] = row
            self.finished += 1
            counter = f"[{self.finished}/{self.total}]"
        target = f" → {to_handle}" if to_handle else ""
        size = human_bytes(item.size)
        if status == "migrated":
            outcome = "ok" + (f", new version {new_version}" if new_version else "") + note
        elif status == "source_changed":
            outcome = f"SOURCE CHANGED, not repointed: {error}"
        else:
            outcome = f"FAILED, not repointed: {error}"
        self.progress.note(f"{counter} {item.entity_id} v{item.version}{target} ({size}) {outcome}")

    def _resend(self, what: str, call: Callable[[], T]) -> T:
        return resend(what, call, self.progress.note)

    # -- one source handle -------------------------------------------------------------------

    def run_group(self, handle_id: str, items: list[MigrationItem]) -> bool:
        """Copy, verify and repoint every version that uses ``handle_id``; False on a failure."""
        pending = self._not_yet_repointed(items)
        if not pending:
            return True
        ok = True
        entities: dict[tuple[str, int], Entity] = {}
        if self.index.strategy in (Strategy.NEW, Strategy.MOVE):
            pending, entities, ok = self._read_entities(pending)
            if not pending:
                return ok
        copy, pending, copied_ok = self._copy_through_unchanged(handle_id, pending)
        if copy is None:
            return False
        repointed_ok = self._repoint_all(pending, copy, entities)
        return ok and copied_ok and repointed_ok

    def _not_yet_repointed(self, items: list[MigrationItem]) -> list[MigrationItem]:
        """The items an earlier run has not repointed; the others are reported as done."""
        pending: list[MigrationItem] = []
        for item in items:
            record = self.journal.item(item.entity_id, item.version)
            if record is not None and record.state == ITEM_REPOINTED:
                self._row(
                    item,
                    "migrated",
                    to_handle=record.new_handle_id,
                    new_version=record.new_version,
                    note=" (done by an earlier run)",
                )
            else:
                pending.append(item)
        return pending

    def _read_entities(
        self, pending: list[MigrationItem]
    ) -> tuple[list[MigrationItem], dict[tuple[str, int], Entity], bool]:
        """Strategies NEW and MOVE read each entity before copying: a changed one is reported
        without a useless copy, and this read is the body of the etag-guarded update. Returns
        the items still to copy, their entities, and whether none failed."""
        ok = True
        still: list[MigrationItem] = []
        entities: dict[tuple[str, int], Entity] = {}
        for item in pending:
            try:
                entities[(item.entity_id, item.version)] = self.repointer.check_entity(item)
                still.append(item)
            except AlreadyDone as done:
                self._repointed(
                    item,
                    done.new_handle_id,
                    done.new_version if self.index.strategy is Strategy.NEW else None,
                    note=" (done by an earlier run)",
                )
            except SourceChanged as exc:
                ok = False
                self._source_changed(item, str(exc))
            except SynapseDeclareError as exc:
                ok = False
                self._failed(item, exc)
        return still, entities, ok

    def _copy_through_unchanged(
        self, handle_id: str, pending: list[MigrationItem]
    ) -> tuple[Copy | None, list[MigrationItem], bool]:
        """The verified copy (None when it failed: every item is reported), the items still
        using the source handle, and whether none of them changed since the plan."""
        ok = True
        while True:
            try:
                return self._copy_and_verify(handle_id, pending), pending, ok
            except AssociationRefused as refused:
                # Synapse copies only through an entity that still uses the handle: find the
                # versions that changed since the plan, and copy through one that did not.
                unchanged = self._unchanged(pending)
                if len(unchanged) == len(pending):
                    for item in pending:
                        self._failed(item, refused.error)
                    return None, [], False
                ok = False
                pending = unchanged
                if not pending:
                    return None, [], False
            except SynapseDeclareError as exc:
                for item in pending:
                    self._failed(item, exc)
                return None, [], False

    def _unchanged(self, pending: list[MigrationItem]) -> list[MigrationItem]:
        """The items whose version still uses the planned handle; the others are reported."""
        unchanged: list[MigrationItem] = []
        for item in pending:
            current = self.repointer.version_handle(item)
            if current == item.file_handle_id:
                unchanged.append(item)
            else:
                self._source_changed(item, self.repointer.changed_text(item, current))
        return unchanged

    def _repoint_all(
        self,
        pending: list[MigrationItem],
        copy: Copy,
        entities: Mapping[tuple[str, int], Entity],
    ) -> bool:
        ok = True
        for item in pending:
            try:
                new_version = self.repointer.repoint(
                    item, copy.new_handle_id, entities.get((item.entity_id, item.version))
                )
            except SourceChanged as exc:
                ok = False
                self._source_changed(item, str(exc), to_handle=copy.new_handle_id)
                continue
            except SynapseDeclareError as exc:
                ok = False
                self._failed(item, exc, to_handle=copy.new_handle_id)
                continue
            self._repointed(item, copy.new_handle_id, new_version)
        return ok

    def _repointed(
        self, item: MigrationItem, new_handle_id: str, new_version: int | None, note: str = ""
    ) -> None:
        self._settle(item, ITEM_REPOINTED, new_handle_id, new_version=new_version)
        self._row(item, "migrated", to_handle=new_handle_id, new_version=new_version, note=note)

    def _failed(
        self, item: MigrationItem, exc: BaseException, to_handle: str | None = None
    ) -> None:
        text = describe_exception(exc)
        hint = getattr(exc, "hint", None)
        if hint and isinstance(exc, VerificationError):
            text += f" ({hint})"
        self._not_repointed(item, "failed", text, to_handle)

    def _source_changed(self, item: MigrationItem, text: str, to_handle: str | None = None) -> None:
        self._not_repointed(item, "source_changed", text, to_handle)

    def _not_repointed(
        self, item: MigrationItem, status: str, text: str, to_handle: str | None
    ) -> None:
        self._settle(item, status, to_handle, error=text)
        self._row(item, status, to_handle=to_handle, error=text)

    def _settle(
        self,
        item: MigrationItem,
        state: str,
        to_handle: str | None,
        *,
        new_version: int | None = None,
        error: str | None = None,
    ) -> None:
        """Journal the item's outcome (a rerun skips a repointed one, retries the others)."""
        self.journal.record_item(
            item.entity_id,
            item.version,
            source_handle_id=item.file_handle_id,
            state=state,
            new_handle_id=to_handle,
            new_version=new_version,
            error=error,
        )

    # -- copy ----------------------------------------------------------------------------------

    def _copy_and_verify(self, handle_id: str, items: list[MigrationItem]) -> Copy:
        first = items[0]
        record = self.journal.copy(handle_id)
        if record is not None and record.state == COPY_VERIFIED and record.new_handle_id:
            if self._still_there(first, record):
                with self.lock:
                    self.report.copies_reused += 1
                return Copy(str(record.new_handle_id), made=False, key=record.new_key)
            record = self.journal.copy(handle_id)  # rejected now: copy anew
        if record is not None and record.state == COPY_COMPLETED and record.new_handle_id:
            copy = Copy(str(record.new_handle_id), made=False, key=record.new_key)
            with self.lock:
                self.report.copies_reused += 1
        else:
            copy = self._copy(handle_id, items, record)
        try:
            key = self.checker.verify(first, copy)
        except VerificationError as exc:
            self.journal.copy_rejected(handle_id, describe_exception(exc))
            raise
        self.journal.copy_verified(handle_id, key)
        return copy

    def _still_there(self, item: MigrationItem, record: CopyRecord) -> bool:
        """A copy verified by an earlier run is reused after a HEAD shows it is still there with
        the source's size (no REST call: its key is in the journal). A missing or resized object
        is rejected, and the handle is copied anew."""
        if self.options.verify == "none" or not record.new_key or not self.destination_bucket:
            return True
        assert self.verifier is not None
        try:
            size: int | None = self.verifier.head(self.destination_bucket, record.new_key)
        except S3AccessError as exc:
            if exc.code not in ("404", "NoSuchKey", "NotFound"):
                raise
            size = None
        if size == item.size:
            return True
        problem = "is gone" if size is None else f"now has {size} bytes, not {item.size}"
        text = (
            f"the copy {record.new_handle_id} made by an earlier run "
            f"(s3://{self.destination_bucket}/{record.new_key}) {problem}"
        )
        self.journal.copy_rejected(item.file_handle_id, text)
        self.progress.note(f"{text}; copying file handle {item.file_handle_id} again")
        return False

    def _copy(self, handle_id: str, items: list[MigrationItem], record: CopyRecord | None) -> Copy:
        first = items[0]
        path = self._path_for(first, record)
        if path is not CopyPath.SYNAPSE:
            fast = self._fast_copy(path, first, record)
            if fast is not None:
                self._count(fast)
                return fast
            record = None  # copied by Synapse instead, as a new request
        copy = self.multipart.copy(handle_id, items, record)
        self._count(copy)
        return copy

    def _fast_copy(
        self, path: CopyPath, item: MigrationItem, record: CopyRecord | None
    ) -> Copy | None:
        """A direct or relayed copy (copypaths); None when it falls back to Synapse's copy."""
        assert self.fast is not None
        try:
            fast = self.fast.copy(path, item, record)
        except FallBack:
            return None
        except (Forbidden, NotFound) as exc:
            raise AssociationRefused(exc) from exc
        return Copy(
            fast.new_handle_id,
            made=True,
            key=fast.key,
            path=path,
            md5_proven=fast.md5_proven,
            part_etags=fast.part_etags,
            bytes_copied=fast.bytes_copied,
        )

    def _count(self, copy: Copy) -> None:
        with self.lock:
            if copy.made:
                self.report.copies_made += 1
                self.report.bytes_copied += copy.bytes_copied
            else:
                self.report.copies_reused += 1

    # -- driver --------------------------------------------------------------------------------

    def run(self) -> None:
        groups: dict[str, list[MigrationItem]] = {}
        for item in self.index.items:
            groups.setdefault(item.file_handle_id, []).append(item)
        queue = iter(groups.items())
        in_flight: dict[Future[bool], str] = {}
        abort: BaseException | None = None
        with ThreadPoolExecutor(
            max_workers=self.options.parallel, thread_name_prefix="migrate"
        ) as pool:
            while True:
                while not self.stop.is_set() and len(in_flight) < self.options.parallel:
                    nxt = next(queue, None)
                    if nxt is None:
                        break
                    in_flight[pool.submit(self.run_group, nxt[0], nxt[1])] = nxt[0]
                if not in_flight:
                    break
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    in_flight.pop(future)
                    try:
                        ok = future.result()
                    except BaseException as exc:  # a kill, KeyboardInterrupt, a bug
                        abort = abort or exc
                        self.aborted.set()
                        self.stop.set()
                        continue
                    if not ok and not self.options.continue_on_error:
                        self.stop.set()
        if abort is not None:
            raise abort


def run_migration(
    api: SynapseAPI,
    index: MigrationIndex,
    destination_id: int,
    *,
    endpoint: str,
    user_id: int,
    verifier: DestinationReader | None,
    options: MigrationOptions,
    progress: Progress,
    move_to: str | None = None,
) -> MigrationReport:
    """Copy, verify and repoint everything in ``index.items``; returns the per-file report
    (also written to ``options.report_json``/``report_csv``). Failures are rows in the report,
    not exceptions: with ``continue_on_error`` False the run stops starting new copies after the
    first one (running copies finish) and the rest is ``not_attempted``. Raises
    :class:`MigrationError` when the run cannot start (other settings in an unfinished journal,
    a destination other than the planned one) and :class:`~synapse_declare.errors.LockError`
    when another run holds the journal. A BaseException (KeyboardInterrupt, a kill signal turned
    into an exception) stops the run after the running steps, writes the report, and propagates.
    """
    _check_start(index, destination_id, options, verifier is not None, move_to)
    started = time.perf_counter()
    location = _destination(api, destination_id, options) if index.items else {}
    destination_bucket = None if location.get("bucket") is None else str(location["bucket"])
    report = MigrationReport(
        container_id=index.container_id,
        destination_id=destination_id,
        strategy=index.strategy,
        rows=pre_rows(index),
        continue_on_error=options.continue_on_error,
    )
    if not index.items:
        report.elapsed_seconds = time.perf_counter() - started
        write_reports(report, options)
        return report
    journal = _open_journal(index, destination_id, options, endpoint, user_id, progress)
    report.journal_path = str(journal.path)
    runner = _Runner(
        api,
        index,
        destination_id,
        verifier,
        options,
        progress,
        journal,
        report,
        destination_bucket,
        move_to,
        location,
        user_id,
    )
    try:
        runner.run()
    finally:
        runner.close()
        _finish(report, runner.rows, index, journal, options, started)
    return report


def _destination(
    api: SynapseAPI, destination_id: int, options: MigrationOptions
) -> StorageLocation:
    """Read the destination once: Synapse copies only into a location the caller created (so a
    wrong one fails here, not on every file); verification needs its bucket, and the direct and
    relay paths its type and base key."""
    try:
        location = api.get_storage_location(destination_id)
    except (Forbidden, NotFound) as exc:
        raise MigrationError(
            f"cannot use storage location {destination_id} as the destination: {exc.reason}",
            hint="Synapse copies files only into a storage location you created",
        ) from exc
    bucket = location.get("bucket")
    if options.verify != "none" and not bucket:
        raise MigrationError(
            f"storage location {destination_id} ({short_type(str(location.get('concreteType')))})"
            f" has no bucket this tool can read, so copies into it cannot be verified",
            hint="verify copies into Synapse's own storage with verify 'none' (Synapse's checks "
            "only)",
        )
    return location


def _check_start(
    index: MigrationIndex,
    destination_id: int,
    options: MigrationOptions,
    can_verify: bool,
    move_to: str | None,
) -> None:
    """Refuse a run that cannot start, before any write."""
    options.validate()
    if index.strategy is Strategy.MOVE and move_to is None:
        raise MigrationError(f"moving the files of {index.container_id} needs a target folder")
    if index.destination_id is not None and index.destination_id != destination_id:
        raise MigrationError(
            f"the migration of {index.container_id} was planned for storage location "
            f"{index.destination_id}, not {destination_id}",
            hint="run 'synapse-declare plan' again",
        )
    if options.verify != "none" and not can_verify and index.items:
        raise MigrationError(
            f"verify={options.verify!r} needs read access to the destination bucket",
            hint="give AWS credentials for the destination, or choose verify 'none' "
            "(Synapse's own checks only)",
        )


def _open_journal(
    index: MigrationIndex,
    destination_id: int,
    options: MigrationOptions,
    endpoint: str,
    user_id: int,
    progress: Progress,
) -> Journal:
    journal = Journal.open(
        options.state_dir,
        endpoint=endpoint,
        user_id=user_id,
        container_id=index.container_id,
        destination_id=destination_id,
        strategy=index.strategy.value,
    )
    if journal.resumed:
        counts = journal.counts()
        progress.note(
            f"resuming the migration of {index.container_id} from {journal.path} "
            f"({counts['copies'].get(COPY_VERIFIED, 0)} verified copies, "
            f"{counts['items'].get(ITEM_REPOINTED, 0)} versions repointed)"
        )
    return journal


def _finish(
    report: MigrationReport,
    rows: dict[tuple[str, int], ReportRow],
    index: MigrationIndex,
    journal: Journal,
    options: MigrationOptions,
    started: float,
) -> None:
    """Complete the report (every item not reached is ``not_attempted``), close the journal
    (finished when nothing is left to do) and write the report files."""
    for item in index.items:
        key = (item.entity_id, item.version)
        if key not in rows:
            rows[key] = ReportRow(
                item.entity_id,
                item.version,
                item.file_name,
                item.file_handle_id,
                None,
                item.size,
                "not_attempted",
            )
    report.rows.extend(rows[(i.entity_id, i.version)] for i in index.items)
    report.rows.sort(key=lambda r: sort_key(r.entity_id, r.version))
    report.elapsed_seconds = time.perf_counter() - started
    if all(r.status in ("migrated", "already", "skipped") for r in report.rows):
        journal.mark_finished()
    journal.close()
    write_reports(report, options)
