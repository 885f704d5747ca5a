"""Projects and folders: created with their annotations and ACL in one ``bundle2`` call (a lost
response is resolved by looking the entity up by parent and name, so it is never duplicated),
updated field group by field group, each write guarded by the etag it read.

The diff (``plan``): entities are matched by name under their parent. A missing one is created
— or, when it is in the caller's trash, restored; an existing one is updated where managed fields
differ (description, alias, a ``previously:`` rename or move, annotations, ACL: the last two are
the aspects in ``resources.annotations`` and ``resources.acl``). A project not yet carrying the
managed marker is *adopted* (apply writes the marker), and so are its declared folders (their
marker and address marker). Entities not in the
manifest are never touched here (pruning is ``synapse_declare.pruning``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..client.records import Annotations, Entity, EntityBundle
from ..errors import Conflict, NotFound, PolicyViolation, PreconditionFailed
from ..lifecycle import PROTECT_KEY, project_rename, release_protection, relocation_reason
from ..model import AUTHENTICATED_USERS_ID, ContainerSpec, EntityKind
from ..plan import Action, Change, FieldChange, Resource
from . import acl as acls
from . import annotations as annotations_aspect
from .base import Address, ApplyContext, BundleFlags, Operation, PlanContext
from .exporting import ExportContext, acl_data, annotations_data
from .payloads import ContainerCreate, ContainerPrior, ContainerUpdate

if TYPE_CHECKING:
    from ..lifecycle import Relocation
    from ..state import LiveContainer, LiveState

FOLDER_TYPE = "org.sagebionetworks.repo.model.Folder"
PROJECT_TYPE = "org.sagebionetworks.repo.model.Project"


class ContainerKind:
    name = "container"
    # ENTITY: an undeclared file or table whose own ACL `folders_inherit: strict` removes (an
    # update carrying only the ACL delete).
    resources = (Resource.PROJECT, Resource.FOLDER, Resource.ENTITY)
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
        """A container's own fields as manifest data: name, description, alias, ``protect:
        true`` where it carries the protection marker, annotations and, only where it has its
        own, the ACL (omission means it inherits)."""
        where = str(entity.get("name"))
        data: dict[str, Any] = {"name": entity["name"]}
        if entity.get("description"):
            data["description"] = entity["description"]
        if entity.get("alias"):
            data["alias"] = entity["alias"]
        if PROTECT_KEY in annotations:
            # The marker is the tool's own key (kept out of `annotations:`); written as the
            # setting that keeps it, so the exported manifest still refuses its deletion and a
            # plan of it changes nothing here.
            data["protect"] = True
        exported = annotations_data(ctx, annotations)
        if exported:
            data["annotations"] = exported
        if acl is not None:
            data["acl"] = acl_data(ctx, acl, where)
        return data

    def needs_certification(self, change: Change) -> bool:
        """Synapse lets only certified users create a folder (not a project), change one, or
        let AUTHENTICATED_USERS download (on a project too)."""
        if change.resource is Resource.FOLDER and (
            change.action is Action.CREATE
            or change.desired.get("entity_update")
            or change.desired.get("annotations")
        ):
            return True
        if not any(f.path == "acl.AUTHENTICATED_USERS" for f in change.fields):
            return False
        return any(
            "DOWNLOAD" in entry.get("accessType", [])
            for entry in change.desired.get("acl") or []
            if entry.get("principalId") == AUTHENTICATED_USERS_ID
        )

    def bundle_flags(self, spec: ContainerSpec, own_acl: bool) -> BundleFlags:
        is_project = spec.kind.value == "project"
        return BundleFlags(
            entity=is_project or spec.description is not None or spec.alias is not None
        )

    def observe(self, spec: ContainerSpec, live: LiveContainer | None) -> dict[str, str | None]:
        """The entity's etag (annotations and entity fields are written under it), or, when no
        bundle was read, its id and whether it had its own ACL; None when it did not exist."""
        if live is None:
            return {spec.address: None}
        return {
            spec.address: f"{live.syn_id} etag={live.etag}"
            if live.etag
            else f"{live.syn_id} own_acl={live.own_acl}"
        }

    def plan(self, spec: ContainerSpec, live: LiveState, ctx: PlanContext) -> list[Change]:
        """One change for the container itself: restore, create, or update/adopt/no-op. The
        lock-out guard runs first, whichever it is."""
        current = live.containers.get(spec.address)
        desired_acl = acls.desired_acl(spec, live)
        if desired_acl is not None:
            acls.check_lockout(spec, desired_acl, live)
        if current is None and spec.address in live.trashed:
            ctx.restored.add(spec.address)
            return [plan_restore(spec, live, ctx)]
        names = acls.principal_names(spec, live, ctx.names)
        if current is None:
            return [plan_create(spec, live, desired_acl, names, ctx)]
        return [plan_update(spec, current, live, desired_acl, names, ctx)]

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
        # The plan decides when the ACL cannot go in the create call (see plan_create).
        acl_later = desired.acl_after_create
        bundle_acl = None if acl_later else acl
        annotations = None if desired.annotations is None else dict(desired.annotations)

        def attempt() -> EntityBundle:
            try:
                return ctx.api.create_bundle(entity, annotations, bundle_acl)
            except Conflict as err:
                raise ctx.conflict(
                    change, f"an entity named {entity['name']!r} appeared there"
                ) from err

        def check() -> EntityBundle | None:
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
            acls.replace_new_acl(ctx, change, syn_id, acl)
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

            def put_entity() -> Entity:
                try:
                    return ctx.api.update_entity(entity)
                except PreconditionFailed as err:
                    raise ctx.conflict(change, "the entity changed (412)") from err

            def check_entity() -> Entity | None:
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

            def put_annotations() -> Annotations:
                try:
                    return ctx.api.put_annotations(syn_id, str(sent_etag), annotations)
                except PreconditionFailed as err:
                    raise ctx.conflict(change, "its annotations changed (412)") from err

            def check_annotations() -> Annotations | None:
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
            acls.apply_acl(ctx, change, syn_id, acl_op, entries, prior.acl_etag)
            done.append(f"acl {acl_op}")
        ctx.record(change.address, syn_id)
        return f"{syn_id}: " + ", ".join(done) if done else syn_id


# ---------------------------------------------------------------------------------------------
# Planning: one function per decision


def parent_address(spec: ContainerSpec) -> str | None:
    """The declared parent's address; None for a project."""
    segments = Address.parse(spec.address).segments
    return str(Address(segments[:-1])) if len(segments) > 1 else None


def adopting(spec: ContainerSpec, live: LiveState) -> bool:
    """Whether this plan adopts the container's project: it exists but does not carry the
    managed marker yet (its declared folders are adopted with it)."""
    project = live.containers.get(str(Address(Address.parse(spec.address).segments[:1])))
    return project is not None and not project.managed_marker


def marks_folder(
    spec: ContainerSpec, current: LiveContainer, live: LiveState, ctx: PlanContext
) -> bool:
    """Whether an adopted folder gets its markers in this plan: its annotations were read (the
    reader does in an adopting plan) and the user may change a folder. Synapse lets only
    certified users do that; rather than refuse the whole adoption, an uncertified user's plan
    adopts the folder unmarked and says what that leaves out."""
    if spec.kind is EntityKind.PROJECT:
        return True
    if current.annotations is None:
        return False
    if live.certified is False:
        ctx.warnings.append(
            f"{spec.location}: {Address.parse(spec.address).display_path} is adopted without "
            "synapse-declare's marker: Synapse lets only certified users change a folder. Until "
            "a certified user applies this manifest, removing its entry under `prune:` is "
            "refused and a hand move of it is not found"
        )
        return False
    return True


def plan_restore(spec: ContainerSpec, live: LiveState, ctx: PlanContext) -> Change:
    """A declared folder found in the caller's trash comes back with its contents (never a new
    empty twin); what it holds is compared by the next plan, once it is readable again."""
    syn_id = live.trashed[spec.address]
    parent = parent_address(spec)
    if spec.folders or spec.annotations is not None or spec.acl is not None or spec.wiki:
        ctx.warnings.append(
            f"{spec.location}: {Address.parse(spec.address).display_path} is restored from the "
            "trash; its declared settings and sub-folders are compared by the next plan: run "
            "plan (or apply) again after this apply"
        )
    return Change(
        address=spec.address,
        resource=Resource.PROJECT if spec.kind is EntityKind.PROJECT else Resource.FOLDER,
        action=Action.RESTORE,
        syn_id=syn_id,
        fields=(FieldChange("name", None, spec.name),),
        depends_on=(parent,) if parent is not None else (),
        reason="in the trash: restored with its contents instead of created empty",
    )


def plan_create(
    spec: ContainerSpec,
    live: LiveState,
    desired_acl: Mapping[int, frozenset[str]] | None,
    names: Mapping[int, str],
    ctx: PlanContext,
) -> Change:
    """A new container, its annotations and ACL in one ``bundle2`` create call (the ACL after
    it when it cannot go in: see ``acl_after_create``)."""
    is_project = spec.kind is EntityKind.PROJECT
    desired_annotations = annotations_aspect.desired_annotations(spec, exists=False)
    fields: list[FieldChange] = [FieldChange("name", None, spec.name)]
    if spec.description is not None:
        fields.append(FieldChange("description", None, spec.description))
    if spec.alias is not None:
        fields.append(FieldChange("alias", None, spec.alias))
    fields.extend(annotations_aspect.created_fields(desired_annotations))
    acl = acls.created_fields(spec, desired_acl, names, live)
    fields.extend(acl.fields)
    ctx.public.extend(acl.public)
    entity: dict[str, Any] = {
        "concreteType": PROJECT_TYPE if is_project else FOLDER_TYPE,
        "name": spec.name,
    }
    if spec.description is not None:
        entity["description"] = spec.description
    if spec.alias is not None:
        entity["alias"] = spec.alias
    parent = parent_address(spec)
    return Change(
        address=spec.address,
        resource=Resource.PROJECT if is_project else Resource.FOLDER,
        action=Action.CREATE,
        syn_id=None,
        fields=tuple(fields),
        depends_on=(parent,) if parent is not None else (),
        desired=ContainerCreate(
            entity=entity,
            annotations=desired_annotations,
            acl=acls.acl_wire(desired_acl) if desired_acl is not None else None,
            acl_after_create=acl_after_create(spec, desired_acl, desired_annotations, live),
            parent=parent,
        ).to_json(),
        reason="does not exist",
    )


def acl_after_create(
    spec: ContainerSpec,
    desired_acl: Mapping[int, frozenset[str]] | None,
    desired_annotations: Mapping[str, Any] | None,
    live: LiveState,
) -> bool:
    """The ACL is set after the create, etag-guarded, when it cannot go in the bundle2/create
    call: a new project already has its creator's ACL, which Synapse would update and ask an
    etag for that nobody can know yet; and bundle2/create applies the ACL before the
    annotations, which need UPDATE that the new ACL may give us only through a team."""
    if desired_acl is None:
        return False
    if spec.kind is EntityKind.PROJECT:
        return True
    return bool(
        desired_annotations and "UPDATE" not in desired_acl.get(live.target.user_id, frozenset())
    )


def plan_update(
    spec: ContainerSpec,
    current: LiveContainer,
    live: LiveState,
    desired_acl: Mapping[int, frozenset[str]] | None,
    names: Mapping[int, str],
    ctx: PlanContext,
) -> Change:
    """An existing container against the manifest: entity fields, a rename/move, annotations,
    ACL — all in one change, written in that order under the etag the plan read."""
    is_project = spec.kind is EntityKind.PROJECT
    fields, entity_update = entity_changes(spec, current)
    relocation = live.relocated.get(spec.address)
    if relocation is not None and not is_project and current.entity is not None:
        fields.extend(relocate(spec, relocation, current, live, entity_update))
    elif relocation is not None and current.entity is not None:
        fields.extend(project_rename(spec, current, entity_update))
    # A project without the marker is adopted, and each of its declared folders that does not
    # carry the marker yet with it: the marker and the folder's address go in its annotations
    # update (read for it in an adopting plan only), so it may be pruned and is found if moved.
    adopts = adopting(spec, live) and (is_project or not current.managed_marker)
    annotations_after: dict[str, Any] | None = None
    desired_annotations = annotations_aspect.desired_annotations(
        spec, exists=True, adopt=adopts and marks_folder(spec, current, live, ctx)
    )
    if desired_annotations is not None and current.annotations is not None:
        changed, annotations_after = annotations_aspect.annotation_changes(
            current.annotations, desired_annotations
        )
        fields.extend(changed)
    # `protect: false`: the protect marker goes, so a later prune may delete the entity.
    annotations_after = release_protection(spec, current.annotations, annotations_after, fields)
    acl = acls.acl_diff(spec, current, desired_acl, names)
    fields.extend(acl.fields)
    ctx.public.extend(acl.public)
    check_permissions(
        spec,
        current,
        live,
        edit=bool(entity_update or annotations_after or (is_project and adopts)),
        acl=acl.op is not None,
        add_children=any(live.containers.get(c.address) is None for c in spec.folders),
    )
    action = update_action(adopts, bool(fields))
    parent = parent_address(spec)
    return Change(
        address=spec.address,
        resource=Resource.PROJECT if is_project else Resource.FOLDER,
        action=action,
        syn_id=current.syn_id,
        fields=tuple(fields),
        depends_on=(parent,) if parent is not None else (),
        desired=ContainerUpdate(
            entity_update=entity_update or None,
            annotations=annotations_after,
            acl_op=acl.op,
            acl=acls.acl_wire(desired_acl) if desired_acl is not None else None,
        ).to_json(),
        prior=ContainerPrior(
            etag=current.etag,
            entity=current.entity if entity_update else None,
            acl_etag=current.acl.etag if current.acl is not None else None,
        ).to_json(),
        reason=update_reason(action, relocation),
    )


def entity_changes(
    spec: ContainerSpec, current: LiveContainer
) -> tuple[list[FieldChange], dict[str, Any]]:
    """Description and alias, where declared and different (read only when declared): the
    fields shown and the entity fields to PUT."""
    fields: list[FieldChange] = []
    entity_update: dict[str, Any] = {}
    if current.entity is None:
        return fields, entity_update
    if spec.description is not None and (current.entity.get("description") or None) != (
        spec.description or None
    ):
        fields.append(
            FieldChange("description", current.entity.get("description"), spec.description)
        )
        entity_update["description"] = spec.description
    if spec.alias is not None and current.entity.get("alias") != spec.alias:
        fields.append(FieldChange("alias", current.entity.get("alias"), spec.alias))
        entity_update["alias"] = spec.alias
    return fields, entity_update


def relocate(
    spec: ContainerSpec,
    relocation: Relocation,
    current: LiveContainer,
    live: LiveState,
    entity_update: dict[str, Any],
) -> list[FieldChange]:
    """``~ name`` / ``~ parent`` for a folder found under a ``previously:`` name or path: one
    etag-guarded ``PUT /entity`` carries both (the container's entity update)."""
    fields: list[FieldChange] = []
    if current.name != spec.name:
        fields.append(FieldChange("name", current.name, spec.name))
        entity_update["name"] = spec.name
    parent = parent_address(spec)
    assert parent is not None  # only folders are relocated
    parent_live = live.containers.get(parent)
    if parent_live is not None and relocation.parent_id != parent_live.syn_id:
        new_parent = Address.parse(parent)
        old_dir = relocation.previous.strip("/").rpartition("/")[0]
        old_parent = "/".join(filter(None, (new_parent.names[0], old_dir)))
        fields.append(FieldChange("parent", old_parent, new_parent.display_path))
        entity_update["parentId"] = parent_live.syn_id
    return fields


def check_permissions(
    spec: ContainerSpec,
    current: LiveContainer,
    live: LiveState,
    *,
    edit: bool,
    acl: bool,
    add_children: bool,
) -> None:
    """Refuse at plan time what Synapse would refuse mid-apply for lack of permission."""
    permissions = current.permissions
    if permissions is None:
        return
    missing = []
    if edit and not permissions.get("canEdit"):
        missing.append("UPDATE (to change its annotations or description)")
    if acl and not permissions.get("canChangePermissions"):
        missing.append("CHANGE_PERMISSIONS (to change its ACL)")
    if add_children and not permissions.get("canAddChild"):
        missing.append("CREATE (to add the folders the manifest declares in it)")
    if missing:
        raise PolicyViolation(
            f"{spec.address} ({current.syn_id}): you ({live.target.user_name}) lack "
            + "; ".join(missing),
            location=spec.location,
            hint="ask an administrator of the entity for these rights, or remove those parts "
            "from the manifest",
        )


def update_action(adopts: bool, changed: bool) -> Action:
    """Adoption shows as ``=`` adopt (the entity's changes ride on it: apply writes its marker
    in the same update); otherwise update when anything differs."""
    if adopts:
        return Action.ADOPT
    return Action.UPDATE if changed else Action.NO_OP


def update_reason(action: Action, relocation: Relocation | None) -> str:
    """Why the change is what it is; a folder found under a ``previously:`` name says so."""
    if action is Action.ADOPT:
        return "exists, not yet managed by synapse-declare"
    if action is Action.UPDATE:
        if relocation is not None:
            return relocation_reason(relocation)
        return "differs from the manifest"
    return "matches the manifest"


CONTAINER = ContainerKind()
