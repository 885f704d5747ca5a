"""Projects and folders: created with their annotations and ACL in one ``bundle2`` call (a lost
response is resolved by looking the entity up by parent and name, so it is never duplicated),
updated field group by field group, each write guarded by the etag it read."""

from __future__ import annotations

from typing import Any

from ..errors import Conflict, Forbidden, NotFound, PreconditionFailed
from ..model import INHERIT, AclSpec, ContainerSpec
from ..plan import Action, Change, Resource
from .base import ApplyContext, BundleFlags, Operation
from .exporting import ExportContext, acl_data, annotations_data
from .payloads import ContainerCreate, ContainerPrior, ContainerUpdate


class ContainerKind:
    name = "container"
    resources = (Resource.PROJECT, Resource.FOLDER)
    operations = frozenset({Operation.PLAN, Operation.APPLY, Operation.PRUNE, Operation.EXPORT})

    def label(self, resource: Resource) -> str:
        return resource.value

    def export(
        self,
        ctx: ExportContext,
        entity: dict[str, Any],
        annotations: dict[str, Any],
        acl: dict[int, frozenset[str]] | None,
    ) -> dict[str, Any]:
        """A container's own fields as manifest data: name, description, alias, annotations
        and, only where it has its own, the ACL (omission means it inherits)."""
        where = str(entity.get("name"))
        data: dict[str, Any] = {"name": entity["name"]}
        if entity.get("description"):
            data["description"] = entity["description"]
        if entity.get("alias"):
            data["alias"] = entity["alias"]
        exported = annotations_data(ctx, annotations)
        if exported:
            data["annotations"] = exported
        if acl is not None:
            data["acl"] = acl_data(ctx, acl, where)
        return data

    def bundle_flags(self, spec: ContainerSpec, own_acl: bool) -> BundleFlags:
        is_project = spec.kind.value == "project"
        return BundleFlags(
            entity=is_project or spec.description is not None or spec.alias is not None
        )

    def record_existing(self, ctx: ApplyContext, change: Change) -> None:
        if change.syn_id is not None:
            ctx.record(change.address, change.syn_id)

    def apply(self, ctx: ApplyContext, change: Change) -> str:
        if change.action is Action.CREATE:
            return self.create(ctx, change)
        if change.action is Action.DELETE:
            return self.trash(ctx, change)
        if change.action is Action.RESTORE:
            return self.restore(ctx, change)
        return self.update(ctx, change)

    def restore(self, ctx: ApplyContext, change: Change) -> str:
        """Back from the trash to its original parent and name (the plan matched both)."""
        assert change.syn_id is not None
        syn_id = change.syn_id

        def attempt() -> str:
            ctx.api.restore_from_trash(syn_id)
            return syn_id

        def check() -> str | None:
            try:
                ctx.api.get_entity(syn_id)
            except NotFound:
                return None
            return syn_id

        ctx.resolve(f"restore {change.address}", attempt, check)
        ctx.record(change.address, syn_id)
        return f"{syn_id}: restored from the trash"

    def trash(self, ctx: ApplyContext, change: Change) -> str:
        """PRUNE: the folder to the trash, refused when it changed since the plan read it (its
        etag; the plan's guards were decided on that state)."""
        assert change.syn_id is not None
        syn_id = change.syn_id

        def attempt() -> str:
            try:
                current = ctx.api.get_entity(syn_id)
            except NotFound:
                return syn_id  # already in the trash (a re-run after an interrupted apply)
            if current.get("etag") != change.prior_etag:
                raise ctx.conflict(change, "it changed since the plan read it")
            ctx.api.trash_entity(syn_id)
            return syn_id

        def check() -> str | None:
            try:
                ctx.api.get_entity(syn_id)
            except NotFound:
                return syn_id
            return None

        ctx.resolve(f"delete {change.address}", attempt, check)
        return f"{syn_id}: to the trash"

    def create(self, ctx: ApplyContext, change: Change) -> str:
        desired = ContainerCreate.from_json(change.desired)
        entity = dict(desired.entity)
        parent_id = ctx.id_of(desired.parent) if desired.parent else None
        if parent_id is not None:
            entity["parentId"] = parent_id
        me = str(ctx.plan.target.user_id)
        # The typed ACL, with declared teams this apply created in place of their stand-in ids.
        acl = ctx.acl_entries(change)
        # The planner decides when the ACL cannot go in the create call (see planner.py).
        acl_later = desired.acl_after_create
        bundle_acl = None if acl_later else acl
        annotations = None if desired.annotations is None else dict(desired.annotations)

        def attempt() -> dict[str, Any]:
            try:
                return ctx.api.create_bundle(entity, annotations, bundle_acl)
            except Conflict as err:
                raise ctx.conflict(
                    change, f"an entity named {entity['name']!r} appeared there"
                ) from err

        def check() -> dict[str, Any] | None:
            found = ctx.api.lookup_child(parent_id, str(entity["name"]))
            if found is None:
                return None
            bundle = ctx.api.bundle(found, includeEntity=True)
            if bundle["entity"].get("createdBy") != me:
                raise ctx.conflict(change, f"{found} was created there by someone else")
            return bundle

        bundle = ctx.resolve(f"create {change.address}", attempt, check)
        syn_id = str(bundle["entity"]["id"])
        ctx.record(change.address, syn_id)
        if acl_later and acl is not None:
            _replace_new_acl(ctx, change, syn_id, acl)
        return syn_id

    def update(self, ctx: ApplyContext, change: Change) -> str:
        assert change.syn_id is not None
        syn_id = change.syn_id
        desired = ContainerUpdate.from_json(change.desired)
        prior = ContainerPrior.from_json(change.prior)
        etag = prior.etag
        done: list[str] = []
        wanted_fields = desired.entity_update
        if wanted_fields:
            entity = {**dict(prior.entity or {}), **wanted_fields, "etag": etag}

            def put_entity() -> dict[str, Any]:
                try:
                    return ctx.api.update_entity(entity)
                except PreconditionFailed as err:
                    raise ctx.conflict(change, "the entity changed (412)") from err

            def check_entity() -> dict[str, Any] | None:
                current = ctx.api.get_entity(syn_id)
                if all(current.get(k) == v for k, v in wanted_fields.items()):
                    return current
                if current.get("etag") == etag:
                    return None
                raise ctx.conflict(change, "the entity changed while its update was unconfirmed")

            etag = ctx.resolve(f"update {change.address}", put_entity, check_entity)["etag"]
            done.append("entity")
        annotations = None if desired.annotations is None else dict(desired.annotations)
        if annotations is not None:
            sent_etag = etag

            def put_annotations() -> dict[str, Any]:
                try:
                    return ctx.api.put_annotations(syn_id, str(sent_etag), annotations)
                except PreconditionFailed as err:
                    raise ctx.conflict(change, "its annotations changed (412)") from err

            def check_annotations() -> dict[str, Any] | None:
                current = ctx.api.get_annotations(syn_id)
                if current.get("annotations") == annotations:
                    return current
                if current.get("etag") == sent_etag:
                    return None
                raise ctx.conflict(change, "annotations changed while their update was unconfirmed")

            etag = ctx.resolve(
                f"annotations of {change.address}", put_annotations, check_annotations
            )["etag"]
            done.append("annotations")
        acl_op = desired.acl_op
        if acl_op:
            entries = ctx.acl_entries(change) or []
            apply_acl(ctx, change, syn_id, acl_op, entries, prior.acl_etag)
            done.append(f"acl {acl_op}")
        ctx.record(change.address, syn_id)
        return f"{syn_id}: " + ", ".join(done) if done else syn_id


class AnnotationsAspect:
    """Managed annotation keys: read in the entity's bundle, written in the container's update
    (after the entity fields, guarded by the etag that write returned)."""

    name = "annotations"

    def bundle_flags(self, spec: ContainerSpec, own_acl: bool) -> BundleFlags:
        return BundleFlags(
            annotations=spec.kind.value == "project"
            or spec.annotations is not None
            or spec.protect
            or spec.unprotect
        )


class AclAspect:
    """A declared ACL: compared only where the entity has its own (its children page says so);
    written last in the container's update, or in the create call."""

    name = "acl"

    def bundle_flags(self, spec: ContainerSpec, own_acl: bool) -> BundleFlags:
        # Also read (no extra call: the bundle is read anyway): a project's ACL, which its
        # folders inherit, and an own ACL the manifest turns to `inherit` — the plan's
        # effective-access summary (consequences.py) needs both to say who gains and loses.
        wanted = (
            isinstance(spec.acl, AclSpec) or spec.acl is INHERIT or spec.kind.value == "project"
        )
        return BundleFlags(acl=wanted and own_acl)


def _replace_new_acl(
    ctx: ApplyContext, change: Change, syn_id: str, entries: list[dict[str, Any]]
) -> None:
    """Give a just-created project the planned ACL (skipped when the default matches)."""
    current = ctx.api.get_acl(syn_id)
    if current is None:
        apply_acl(ctx, change, syn_id, "create", entries, None)
        return
    wanted = {int(e["principalId"]): frozenset(e["accessType"]) for e in entries}
    have = {int(e["principalId"]): frozenset(e["accessType"]) for e in current["resourceAccess"]}
    if have != wanted:
        apply_acl(ctx, change, syn_id, "update", entries, str(current["etag"]))


def apply_acl(
    ctx: ApplyContext,
    change: Change,
    syn_id: str,
    op: str,
    entries: list[dict[str, Any]],
    acl_etag: str | None,
) -> None:
    wanted = {int(e["principalId"]): frozenset(e["accessType"]) for e in entries}

    def matches() -> bool | None:
        acl = ctx.api.get_acl(syn_id)
        if op == "delete":
            return True if acl is None else None
        if acl is None:
            return None
        current = {int(e["principalId"]): frozenset(e["accessType"]) for e in acl["resourceAccess"]}
        if current == wanted:
            return True
        if op == "update" and acl.get("etag") == acl_etag:
            return None
        raise ctx.conflict(change, "its ACL changed while the update was unconfirmed")

    def attempt() -> bool:
        try:
            if op == "create":
                ctx.api.create_acl(syn_id, entries)
            elif op == "update":
                assert acl_etag is not None
                ctx.api.update_acl(syn_id, acl_etag, entries)
            else:
                ctx.api.delete_acl(syn_id)
        except PreconditionFailed as err:
            raise ctx.conflict(change, "its ACL changed (412)") from err
        except Forbidden as err:
            if "already has an ACL" in err.reason or "already inherits" in err.reason:
                raise ctx.conflict(change, err.reason) from err
            raise
        return True

    ctx.resolve(f"ACL of {change.address}", attempt, matches)


CONTAINER = ContainerKind()
ANNOTATIONS = AnnotationsAspect()
ACL = AclAspect()
