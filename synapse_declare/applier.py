"""Execute a plan: parents before children, etags on every write, no write ever sent twice.

Every change runs as explicit steps. A write answered with a conflict (412, or an object that
appeared since the plan) is reported and never overwritten. A write whose outcome is unknown (the
connection dropped, a 5xx after sending — :class:`AmbiguousWrite`) is resolved by reading the
object back: if it already has the desired state the step is done; if it is still exactly as the
plan saw it the write is retried (bounded); otherwise it is a conflict. A create is resolved by
looking the entity up by parent and name, so a lost response never creates a duplicate.

Apply stops starting new changes at the first failure, lets running ones finish, and returns what
was done, what failed and what was not attempted; re-running plan/apply converges.
"""

from __future__ import annotations

import heapq
import logging
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .client.http import AmbiguousWrite
from .client.synapse import SynapseAPI
from .errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    MigrationError,
    NotFound,
    PreconditionFailed,
    SynapseDeclareError,
)
from .plan import Action, Change, Plan, Resource
from .progress import Progress

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_AMBIGUOUS_ATTEMPTS = 4


class ConflictError(SynapseDeclareError):
    """Someone else changed the object since it was read; nothing was overwritten."""


@dataclass
class ApplyResult:
    done: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    not_attempted: list[str] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.not_attempted


@dataclass(frozen=True)
class StorageOptions:
    """What apply needs for storage migrations (the CLI builds it from its flags)."""

    migration: Any = None  # migration.MigrationOptions; None → its defaults
    reader_factory: Callable[[str | None], Any] | None = None  # endpoint_url → DestinationReader


class _Run:
    def __init__(
        self, api: SynapseAPI, plan: Plan, progress: Progress, storage: StorageOptions
    ) -> None:
        self.api = api
        self.plan = plan
        self.progress = progress
        self.storage = storage
        self.ids: dict[str, str] = {}
        self.wiki_ids: dict[str, str] = {}
        self.locations: dict[str, int] = {}  # storage location name → id created by this run
        self.soft_failures: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    # -- helpers ---------------------------------------------------------------------------

    def _id(self, address: str) -> str:
        with self.lock:
            return self.ids[address]

    def _resolve(
        self,
        what: str,
        attempt: Callable[[], T],
        check: Callable[[], T | None],
    ) -> T:
        """Run a write; on an unknown outcome, ``check`` returns the result if it took effect,
        None if the object is untouched (then retry), or raises ConflictError."""
        for number in range(1, MAX_AMBIGUOUS_ATTEMPTS + 1):
            try:
                return attempt()
            except AmbiguousWrite as exc:
                self.progress.note(f"{what}: {exc}; reading it back")
                found = check()
                if found is not None:
                    self.progress.note(f"{what}: the write had taken effect")
                    return found
                if number == MAX_AMBIGUOUS_ATTEMPTS:
                    raise
                self.progress.note(f"{what}: not applied yet; retrying ({number})")
        raise AssertionError("unreachable")

    @staticmethod
    def _conflict(change: Change, detail: str) -> ConflictError:
        return ConflictError(
            f"{change.address}: {detail}; nothing was overwritten",
            hint="someone changed it since the plan was made: run 'synapse-declare plan' again",
        )

    # -- containers ------------------------------------------------------------------------

    def create_container(self, change: Change) -> str:
        desired = change.desired
        entity = dict(desired["entity"])
        parent_address = desired.get("parent")
        parent_id = self._id(parent_address) if parent_address else None
        if parent_id is not None:
            entity["parentId"] = parent_id
        me = str(self.plan.target.user_id)
        acl = desired.get("acl")
        # The planner decides when the ACL cannot go in the create call (see planner.py).
        acl_later = bool(desired.get("acl_after_create"))
        bundle_acl = None if acl_later else acl

        def attempt() -> dict[str, Any]:
            try:
                return self.api.create_bundle(entity, desired.get("annotations"), bundle_acl)
            except Conflict as err:
                raise self._conflict(
                    change, f"an entity named {entity['name']!r} appeared there"
                ) from err

        def check() -> dict[str, Any] | None:
            found = self.api.lookup_child(parent_id, str(entity["name"]))
            if found is None:
                return None
            bundle = self.api.bundle(found, includeEntity=True)
            if bundle["entity"].get("createdBy") != me:
                raise self._conflict(change, f"{found} was created there by someone else")
            return bundle

        bundle = self._resolve(f"create {change.address}", attempt, check)
        syn_id = str(bundle["entity"]["id"])
        with self.lock:
            self.ids[change.address] = syn_id
        if acl_later and acl is not None:
            self._replace_new_acl(change, syn_id, acl)
        return syn_id

    def _replace_new_acl(self, change: Change, syn_id: str, entries: list[dict[str, Any]]) -> None:
        """Give a just-created project the planned ACL (skipped when the default matches)."""
        current = self.api.get_acl(syn_id)
        if current is None:
            self._apply_acl(change, syn_id, "create", entries, None)
            return
        wanted = {int(e["principalId"]): frozenset(e["accessType"]) for e in entries}
        have = {
            int(e["principalId"]): frozenset(e["accessType"]) for e in current["resourceAccess"]
        }
        if have != wanted:
            self._apply_acl(change, syn_id, "update", entries, str(current["etag"]))

    def update_container(self, change: Change) -> str:
        assert change.syn_id is not None
        syn_id = change.syn_id
        desired, prior = change.desired, change.prior
        etag = prior.get("etag")
        done: list[str] = []
        if desired.get("entity_update"):
            entity = {**dict(prior["entity"]), **desired["entity_update"], "etag": etag}

            def put_entity() -> dict[str, Any]:
                try:
                    return self.api.update_entity(entity)
                except PreconditionFailed as err:
                    raise self._conflict(change, "the entity changed (412)") from err

            def check_entity() -> dict[str, Any] | None:
                current = self.api.get_entity(syn_id)
                if all(current.get(k) == v for k, v in desired["entity_update"].items()):
                    return current
                if current.get("etag") == etag:
                    return None
                raise self._conflict(change, "the entity changed while its update was unconfirmed")

            etag = self._resolve(f"update {change.address}", put_entity, check_entity)["etag"]
            done.append("entity")
        annotations = desired.get("annotations")
        if annotations is not None:
            sent_etag = etag

            def put_annotations() -> dict[str, Any]:
                try:
                    return self.api.put_annotations(syn_id, str(sent_etag), annotations)
                except PreconditionFailed as err:
                    raise self._conflict(change, "its annotations changed (412)") from err

            def check_annotations() -> dict[str, Any] | None:
                current = self.api.get_annotations(syn_id)
                if current.get("annotations") == annotations:
                    return current
                if current.get("etag") == sent_etag:
                    return None
                raise self._conflict(
                    change, "annotations changed while their update was unconfirmed"
                )

            etag = self._resolve(
                f"annotations of {change.address}", put_annotations, check_annotations
            )["etag"]
            done.append("annotations")
        acl_op = desired.get("acl_op")
        if acl_op:
            self._apply_acl(change, syn_id, acl_op, desired.get("acl") or [], prior.get("acl_etag"))
            done.append(f"acl {acl_op}")
        with self.lock:
            self.ids[change.address] = syn_id
        return f"{syn_id}: " + ", ".join(done) if done else syn_id

    def _apply_acl(
        self,
        change: Change,
        syn_id: str,
        op: str,
        entries: list[dict[str, Any]],
        acl_etag: str | None,
    ) -> None:
        wanted = {int(e["principalId"]): frozenset(e["accessType"]) for e in entries}

        def matches() -> bool | None:
            acl = self.api.get_acl(syn_id)
            if op == "delete":
                return True if acl is None else None
            if acl is None:
                return None
            current = {
                int(e["principalId"]): frozenset(e["accessType"]) for e in acl["resourceAccess"]
            }
            if current == wanted:
                return True
            if op == "update" and acl.get("etag") == acl_etag:
                return None
            raise self._conflict(change, "its ACL changed while the update was unconfirmed")

        def attempt() -> bool:
            try:
                if op == "create":
                    self.api.create_acl(syn_id, entries)
                elif op == "update":
                    assert acl_etag is not None
                    self.api.update_acl(syn_id, acl_etag, entries)
                else:
                    self.api.delete_acl(syn_id)
            except PreconditionFailed as err:
                raise self._conflict(change, "its ACL changed (412)") from err
            except Forbidden as err:
                if "already has an ACL" in err.reason or "already inherits" in err.reason:
                    raise self._conflict(change, err.reason) from err
                raise
            return True

        self._resolve(f"ACL of {change.address}", attempt, matches)

    # -- wikis -----------------------------------------------------------------------------

    def create_wiki(self, change: Change) -> str:
        desired = change.desired
        owner_id = self._id(str(desired["owner"]))
        parent_address = desired.get("parent")
        with self.lock:
            parent_wiki = self.wiki_ids[parent_address] if parent_address else None
        title, markdown = str(desired["title"]), str(desired["markdown"])

        def attempt() -> dict[str, Any]:
            try:
                return self.api.create_wiki(owner_id, title, markdown, parent_wiki)
            except Conflict as err:
                raise self._conflict(change, "a root wiki page appeared") from err

        def check() -> dict[str, Any] | None:
            for header in self.api.wiki_headers(owner_id):
                if header.get("parentId") == parent_wiki and header.get("title") == title:
                    page = self.api.get_wiki(owner_id, str(header["id"]))
                    if page.get("markdown") == markdown:
                        return page
                    raise self._conflict(change, f"a page titled {title!r} appeared")
            return None

        page = self._resolve(f"create {change.address}", attempt, check)
        with self.lock:
            self.wiki_ids[change.address] = str(page["id"])
        return f"wiki {page['id']}"

    def update_wiki(self, change: Change) -> str:
        desired, prior = change.desired, change.prior
        owner_id = self._id(str(desired["owner"]))
        page = {
            **dict(prior["page"]),
            "title": desired["title"],
            "markdown": desired["markdown"],
            "etag": prior["etag"],
        }

        def attempt() -> dict[str, Any]:
            try:
                return self.api.update_wiki(owner_id, page)
            except PreconditionFailed as err:
                raise self._conflict(change, "the wiki page changed (412)") from err

        def check() -> dict[str, Any] | None:
            current = self.api.get_wiki(owner_id, str(page["id"]))
            if (
                current.get("title") == page["title"]
                and current.get("markdown") == page["markdown"]
            ):
                return current
            if current.get("etag") == prior["etag"]:
                return None
            raise self._conflict(change, "the wiki page changed while its update was unconfirmed")

        result = self._resolve(f"update {change.address}", attempt, check)
        with self.lock:
            self.wiki_ids[change.address] = str(result["id"])
        return f"wiki {result['id']}"

    def set_wiki_order(self, change: Change) -> str:
        """Put the owner's wiki order hint; etag-guarded (the plan's, or for a root this apply
        created, the one read now)."""
        owner_id = self._id(str(change.desired["owner"]))
        with self.lock:
            pages = [self.wiki_ids[str(a)] for a in change.desired["pages"]]
        wanted = [*pages, *[str(i) for i in change.desired.get("others", [])]]
        prior = change.prior.get("etag")
        etag = prior if prior is not None else self.api.wiki_order_hint(owner_id).get("etag")
        body = {"ownerId": owner_id, "ownerObjectType": "ENTITY", "idList": wanted, "etag": etag}

        def attempt() -> dict[str, Any]:
            try:
                return self.api.put_wiki_order_hint(owner_id, body)
            except PreconditionFailed as err:
                raise self._conflict(change, "the wiki page order changed (412)") from err

        def check() -> dict[str, Any] | None:
            current = self.api.wiki_order_hint(owner_id)
            if [str(i) for i in current.get("idList") or []] == wanted:
                return current
            if current.get("etag") == etag:
                return None
            raise self._conflict(change, "the wiki page order changed while unconfirmed")

        self._resolve(f"order wiki pages of {change.address}", attempt, check)
        return f"{len(pages)} page(s) ordered"

    # -- dispatch --------------------------------------------------------------------------

    def record_noop(self, change: Change) -> None:
        if change.syn_id is None:
            return
        with self.lock:
            if change.resource is Resource.WIKI_PAGE:
                self.wiki_ids[change.address] = change.syn_id
            else:
                self.ids[change.address] = change.syn_id

    # -- storage ---------------------------------------------------------------------------

    def create_location(self, change: Change) -> str:
        from .storage import match_locations_by_body

        setting = dict(change.desired["setting"])
        name = str(change.desired["name"])

        def attempt() -> dict[str, Any]:
            return self.api.create_storage_location(setting)

        def check() -> dict[str, Any] | None:
            # Synapse de-duplicates identical settings per creator, so a location that was
            # created before the response got lost is found by its settings.
            return match_locations_by_body(setting, self.api.my_storage_locations())

        created = self._resolve(f"create storage location {name}", attempt, check)
        location_id = int(created["storageLocationId"])
        with self.lock:
            self.locations[name] = location_id
        return f"storage location {location_id}"

    def _location_ids(self, refs: list[Any]) -> list[int]:
        ids: list[int] = []
        with self.lock:
            for ref in refs:
                if isinstance(ref, str) and ref.startswith("new:"):
                    ids.append(self.locations[ref[4:]])
                else:
                    ids.append(int(ref))
        return ids

    def upload_destination(self, change: Change) -> str:
        container_id = self._id(str(change.desired["container"]))
        wanted = self._location_ids(list(change.desired["locations"]))

        def check() -> dict[str, Any] | None:
            current = self.api.upload_setting(container_id)
            if current is not None and [int(i) for i in current.get("locations", [])] == wanted:
                return current
            if change.action is Action.CREATE and current is None:
                return None
            if (
                change.action is Action.UPDATE
                and current is not None
                and current.get("etag") == change.prior.get("etag")
            ):
                return None
            raise self._conflict(change, "the upload destinations changed meanwhile")

        if change.action is Action.CREATE:

            def create() -> dict[str, Any]:
                try:
                    return self.api.create_upload_setting(container_id, wanted)
                except BadRequest as err:
                    if "already exists" in err.reason:
                        raise self._conflict(change, err.reason) from err
                    raise

            self._resolve(f"set upload destinations of {change.address}", create, check)
        else:
            setting = {**dict(change.prior["setting"]), "locations": wanted}

            def update() -> dict[str, Any]:
                try:
                    self.api.update_upload_setting(setting)
                except PreconditionFailed as err:
                    raise self._conflict(change, "the upload destinations changed (412)") from err
                return setting

            self._resolve(f"update upload destinations of {change.address}", update, check)
        return "locations " + ", ".join(str(i) for i in wanted)

    def migrate(self, change: Change) -> str:
        from .migration import MigrationIndex, MigrationOptions, run_migration

        desired = change.desired
        index = MigrationIndex.from_json(desired["index"])
        name = str(desired["destination"])
        with self.lock:
            destination = self.locations.get(name, index.destination_id)
        if destination is None:
            raise MigrationError(f"{change.address}: destination {name!r} was not created")
        options = self.storage.migration or MigrationOptions()
        factory = self.storage.reader_factory
        if factory is None:
            from .client.s3 import DestinationReader

            factory = DestinationReader.from_settings
        move_to = self._id(str(desired["move_to"])) if desired.get("move_to") else None
        report = run_migration(
            self.api,
            index,
            int(destination),
            move_to=move_to,
            endpoint=self.plan.target.endpoint,
            user_id=self.plan.target.user_id,
            verifier=factory(desired.get("endpoint_url")),
            options=options,
            progress=self.progress,
        )
        counts = ", ".join(f"{v} {k}" for k, v in sorted(report.counts.items()) if v)
        if not report.ok:
            message = f"{change.address}: migration incomplete ({counts})"
            if getattr(options, "continue_on_error", False):
                with self.lock:
                    self.soft_failures.append((change.address, message))
                return counts + " (failures collected in the report)"
            raise MigrationError(message, hint="see the migration report; re-run apply to resume")
        return counts

    def execute(self, change: Change) -> str:
        if change.resource in (Resource.PROJECT, Resource.FOLDER):
            if change.action is Action.CREATE:
                return self.create_container(change)
            return self.update_container(change)
        if change.resource is Resource.WIKI_PAGE:
            if change.action is Action.CREATE:
                return self.create_wiki(change)
            return self.update_wiki(change)
        if change.resource is Resource.WIKI_ORDER:
            return self.set_wiki_order(change)
        if change.resource is Resource.STORAGE_LOCATION:
            return self.create_location(change)
        if change.resource is Resource.UPLOAD_DESTINATION:
            return self.upload_destination(change)
        if change.resource is Resource.MIGRATION:
            return self.migrate(change)
        raise SynapseDeclareError(f"{change.address}: {change.resource} changes are not supported")


def apply_plan(
    api: SynapseAPI,
    plan: Plan,
    *,
    progress: Progress | None = None,
    parallel: int = 3,
    storage: StorageOptions | None = None,
) -> ApplyResult:
    """Apply every actionable change of ``plan`` in dependency order.

    Scheduling is a ready queue by dependency count (Kahn's algorithm): each change counts the
    prerequisites it still waits for, and a finished change decrements its dependents' counts, so
    the scheduler does O(changes + dependencies) work in all — it never rescans what is pending.
    Ready changes start in plan order (a heap on the plan position), at most ``parallel`` at a
    time. A prerequisite that is neither applied, a no-op nor in the plan keeps its dependents
    from starting; they are reported as not attempted.
    """
    progress = progress or Progress()
    run = _Run(api, plan, progress, storage or StorageOptions())
    result = ApplyResult()
    pending: list[Change] = []
    for change in plan.changes:
        if change.action is Action.NO_OP:
            run.record_noop(change)
        else:
            pending.append(change)
    finished: set[str] = {c.address for c in plan.changes if c.action is Action.NO_OP}
    waiting: list[int] = [0] * len(pending)
    dependents: dict[str, list[int]] = {}
    ready: list[int] = []
    for position, change in enumerate(pending):
        for dep in set(change.depends_on):
            if dep not in finished:
                waiting[position] += 1
                dependents.setdefault(dep, []).append(position)
        if not waiting[position]:
            ready.append(position)
    heapq.heapify(ready)
    not_started = set(range(len(pending)))
    total = len(pending)
    started = 0
    stopping = False
    running: dict[Future[str], int] = {}
    interrupted = False
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        while ready or running:
            if interrupted:
                stopping = True
            if not stopping:
                # Start at most `parallel` changes at a time: a change handed to the pool early
                # would still run after a failure, which must stop new changes from starting.
                while ready and len(running) < max(1, parallel):
                    position = heapq.heappop(ready)
                    change = pending[position]
                    not_started.discard(position)
                    started += 1
                    progress.start(change, started, total)
                    running[pool.submit(run.execute, change)] = position
            if not running:
                break
            try:
                completed, _ = wait(list(running), return_when=FIRST_COMPLETED)
            except KeyboardInterrupt:
                # Ctrl-C: start nothing new, let the writes in flight finish (a second Ctrl-C
                # aborts them), then say what was done.
                progress.note("interrupted: finishing the changes in flight, starting no more")
                interrupted = True
                continue
            for future in completed:
                change = pending[running.pop(future)]
                error = future.exception()
                if error is None:
                    detail = future.result()
                    finished.add(change.address)
                    result.done.append((change.address, detail))
                    progress.done(change, detail)
                    for dependent in dependents.pop(change.address, ()):
                        waiting[dependent] -= 1
                        if not waiting[dependent]:
                            heapq.heappush(ready, dependent)
                else:
                    stopping = True
                    message = str(error).splitlines()[0] if str(error) else type(error).__name__
                    result.failed.append((change.address, message))
                    progress.failed(change, error)
                    if not isinstance(error, (SynapseDeclareError, ApiError, NotFound)):
                        log.error("unexpected error applying %s", change.address, exc_info=error)
                        pool.shutdown(wait=True, cancel_futures=True)
                        raise error
    result.not_attempted = [pending[p].address for p in sorted(not_started)]
    result.failed.extend(run.soft_failures)
    result.ids = dict(run.ids)
    if interrupted:
        raise ApplyInterrupted(result)
    return result


class ApplyInterrupted(KeyboardInterrupt):
    """Ctrl-C during apply, raised after the changes in flight finished; carries the result."""

    def __init__(self, result: ApplyResult) -> None:
        super().__init__("apply interrupted")
        self.result = result
