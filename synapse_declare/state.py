"""Read the live Synapse state a manifest addresses, with as few REST calls as possible.

Per level of the manifest tree, in parallel (bounded by the client's concurrency):

* a project is found by ``POST /entity/child`` (name lookup under the root);
* a folder is found in its parent's children pages (``POST /entity/children``; a page's
  ``benefactorId`` tells whether each child has its own ACL, so ``acl: inherit`` and "needs an
  ACL" are decided without another call);
* ``bundle2`` is read only for entities whose managed state a page does not show (description,
  annotations, an own ACL to compare, a wiki), with exactly the flags needed;
* children pages are read only for existing containers that have folders in the manifest;
* wiki pages are read (v1, markdown inline) only for pages the manifest describes.

Principals are resolved by exact name in one batch call (``user:``/``team:``) and one for numeric
ids; an absent, differently-spelled or wrong-kind principal is a located error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from . import storage
from .client.s3 import check_owner_txt
from .client.synapse import SynapseAPI
from .errors import Forbidden, PlanError, PolicyViolation, ResolutionError
from .model import INHERIT, AclSpec, ContainerSpec, Manifest, PrincipalKind, PrincipalRef, WikiSpec
from .plan import Target
from .storage import LiveStorage

log = logging.getLogger(__name__)

MARKER_KEY = "synapse_declare_managed"
FOLDER_TYPE = "org.sagebionetworks.repo.model.Folder"
PROJECT_TYPE = "org.sagebionetworks.repo.model.Project"

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class LiveAcl:
    etag: str
    entries: dict[int, frozenset[str]]


@dataclass
class LiveWikiPage:
    id: str
    etag: str
    title: str
    parent_id: str | None
    markdown: str
    raw: dict[str, Any]


@dataclass
class LiveContainer:
    syn_id: str
    concrete_type: str
    name: str
    own_acl: bool
    created_by: str | None = None
    entity: dict[str, Any] | None = None
    annotations: dict[str, Any] | None = None
    etag: str | None = None
    acl: LiveAcl | None = None
    wiki_root_id: str | None = None
    wiki_headers: list[dict[str, Any]] | None = None
    wiki_pages: dict[str, LiveWikiPage] = field(default_factory=dict)
    children: dict[str, dict[str, Any]] | None = None
    permissions: dict[str, Any] | None = None  # UserEntityPermissions, when a bundle was read

    @property
    def managed_marker(self) -> bool:
        return bool(self.annotations and MARKER_KEY in self.annotations)


@dataclass
class LiveState:
    target: Target
    principals: dict[PrincipalRef, int]
    containers: dict[str, LiveContainer | None]
    observed: dict[str, str | None]
    storage: LiveStorage = field(default_factory=LiveStorage)
    identities: tuple[str, ...] = ()  # user id, user name, emails (owner.txt checks)
    # The principals an ACL entry can grant the user rights through (lock-out checks).
    my_groups: frozenset[int] = frozenset()


def _parallel(api: SynapseAPI, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    if len(items) <= 1:
        return [fn(item) for item in items]
    workers = max(1, api.t.options.max_concurrency)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


# ---------------------------------------------------------------------------------------------
# Principals


def _principal_refs(manifest: Manifest) -> set[PrincipalRef]:
    refs: set[PrincipalRef] = set()
    for spec in manifest.walk():
        if isinstance(spec.acl, AclSpec):
            refs.update(entry.principal for entry in spec.acl.entries)
    return refs


def resolve_principals(
    api: SynapseAPI, manifest: Manifest, user_id: int
) -> dict[PrincipalRef, int]:
    refs = _principal_refs(manifest)
    resolved: dict[PrincipalRef, int] = {}
    named = sorted((r for r in refs if r.kind in (PrincipalKind.USER, PrincipalKind.TEAM)), key=str)
    numeric = sorted({r.id for r in refs if r.kind is PrincipalKind.ID and r.id is not None})
    for ref in refs:
        if ref.kind is PrincipalKind.SELF:
            resolved[ref] = user_id
        elif ref.kind in (PrincipalKind.PUBLIC, PrincipalKind.AUTHENTICATED_USERS):
            assert ref.id is not None
            resolved[ref] = ref.id
    if named:
        headers = api.headers_by_alias(sorted({str(r.name) for r in named}))
        for ref in named:
            want_individual = ref.kind is PrincipalKind.USER
            exact = [h for h in headers if h.get("userName") == ref.name]
            if not exact:
                near = [
                    h["userName"]
                    for h in headers
                    if str(h.get("userName", "")).lower() == str(ref.name).lower()
                ]
                kind = "user" if want_individual else "team"
                hint = (
                    f"Synapse names are exact: did you mean {kind}:{near[0]}?"
                    if near
                    else f"check the spelling; the {kind} must exist on this Synapse"
                )
                raise ResolutionError(
                    f"{ref} does not exist on {api.t.endpoints.repo}",
                    location=_location_of(manifest, ref),
                    hint=hint,
                )
            header = exact[0]
            if bool(header.get("isIndividual")) != want_individual:
                actual = "a user" if header.get("isIndividual") else "a team"
                raise ResolutionError(
                    f"{ref} names {actual}, not a {'user' if want_individual else 'team'}",
                    location=_location_of(manifest, ref),
                    hint=f"write {'user' if header.get('isIndividual') else 'team'}:{ref.name}",
                )
            resolved[ref] = int(header["ownerId"])
    if numeric:
        known = {int(h["ownerId"]) for h in api.group_headers_by_ids(numeric)}
        for ref in refs:
            if ref.kind is PrincipalKind.ID and ref.id is not None:
                if ref.id not in known:
                    raise ResolutionError(
                        f"principal id {ref.id} does not exist on {api.t.endpoints.repo}",
                        location=_location_of(manifest, ref),
                        hint="use user:NAME or team:NAME, or check the id",
                    )
                resolved[ref] = ref.id
    return resolved


def _location_of(manifest: Manifest, ref: PrincipalRef) -> Any:
    for spec in manifest.walk():
        if isinstance(spec.acl, AclSpec) and any(e.principal == ref for e in spec.acl.entries):
            return spec.acl.location
    return None


# ---------------------------------------------------------------------------------------------
# Entities


def _needs_bundle(spec: ContainerSpec, own_acl: bool) -> bool:
    return (
        spec.kind.value == "project"
        or spec.description is not None
        or spec.annotations is not None
        or (isinstance(spec.acl, AclSpec) and own_acl)
        or spec.wiki is not None
    )


def _read_bundle(api: SynapseAPI, spec: ContainerSpec, live: LiveContainer) -> None:
    is_project = spec.kind.value == "project"
    flags = {
        "includeEntity": is_project or spec.description is not None or spec.alias is not None,
        "includeAnnotations": is_project or spec.annotations is not None,
        "includeAccessControlList": isinstance(spec.acl, AclSpec) and live.own_acl,
        "includeRootWikiId": spec.wiki is not None,
        # Same call, no extra request: lets the plan refuse what the user may not do.
        "includePermissions": True,
    }
    bundle = api.bundle(live.syn_id, **{k: v for k, v in flags.items() if v})
    if "permissions" in bundle:
        live.permissions = dict(bundle["permissions"])
    if "entity" in bundle:
        live.entity = bundle["entity"]
        live.etag = str(bundle["entity"]["etag"])
        live.created_by = bundle["entity"].get("createdBy")
    if "annotations" in bundle:
        live.annotations = dict(bundle["annotations"].get("annotations", {}))
        live.etag = str(bundle["annotations"]["etag"])
    if flags["includeAccessControlList"]:
        acl = bundle.get("accessControlList")
        if acl is not None:
            live.acl = LiveAcl(etag=str(acl["etag"]), entries=_acl_entries(acl))
        else:
            live.own_acl = False
    if flags["includeRootWikiId"]:
        live.wiki_root_id = bundle.get("rootWikiId")


def _acl_entries(acl: dict[str, Any]) -> dict[int, frozenset[str]]:
    entries: dict[int, set[str]] = {}
    for entry in acl.get("resourceAccess", []):
        entries.setdefault(int(entry["principalId"]), set()).update(entry.get("accessType", []))
    return {k: frozenset(v) for k, v in entries.items()}


def _wiki_paths(
    spec: WikiSpec, prefix: tuple[str, ...] = ()
) -> Iterable[tuple[tuple[str, ...], WikiSpec]]:
    yield prefix, spec
    for page in spec.pages:
        yield from _wiki_paths(page, (*prefix, page.title))


def _read_wiki(api: SynapseAPI, spec: ContainerSpec, live: LiveContainer) -> None:
    if spec.wiki is None or live.wiki_root_id is None:
        return
    headers = api.wiki_headers(live.syn_id)
    live.wiki_headers = headers
    by_parent: dict[str | None, list[dict[str, Any]]] = {}
    for header in headers:
        by_parent.setdefault(header.get("parentId"), []).append(header)
    # Match manifest pages to live pages by title path under the root.
    wanted: dict[tuple[str, ...], str] = {(): live.wiki_root_id}
    for path, _page in _wiki_paths(spec.wiki):
        if not path:
            continue
        parent_id = wanted.get(path[:-1])
        if parent_id is None:
            continue
        match = [h for h in by_parent.get(parent_id, []) if h.get("title") == path[-1]]
        if match:
            wanted[path] = str(match[0]["id"])
    pages = list(wanted.items())

    def fetch(item: tuple[tuple[str, ...], str]) -> tuple[tuple[str, ...], LiveWikiPage]:
        path, wiki_id = item
        raw = api.get_wiki(live.syn_id, wiki_id)
        return path, LiveWikiPage(
            id=str(raw["id"]),
            etag=str(raw["etag"]),
            title=str(raw.get("title") or ""),
            parent_id=raw.get("parentWikiId"),
            markdown=str(raw.get("markdown") or ""),
            raw=raw,
        )

    for path, page in _parallel(api, fetch, pages):
        live.wiki_pages["/".join(path)] = page


def read_state(api: SynapseAPI, manifest: Manifest) -> LiveState:
    profile = api.my_profile()
    user_id, user_name = int(profile["ownerId"]), str(profile["userName"])
    if user_name == "anonymous":
        raise PlanError("Synapse treats this request as anonymous; a token is required")
    target = Target(endpoint=api.t.endpoints.repo, user_id=user_id, user_name=user_name)
    principals = resolve_principals(api, manifest, user_id)
    my_groups = _my_groups(api, manifest, principals, user_id)
    containers: dict[str, LiveContainer | None] = {}
    observed: dict[str, str | None] = {
        f"principal:{ref}": str(pid)
        for ref, pid in sorted(principals.items(), key=lambda x: str(x[0]))
    }

    # Level 0: projects by name lookup.
    level: list[tuple[ContainerSpec, LiveContainer | None]] = []

    def find_project(spec: ContainerSpec) -> str | None:
        try:
            return api.lookup_child(None, spec.name)
        except Forbidden as err:
            raise PlanError(
                f"{spec.location}: a project named {spec.name!r} exists on "
                f"{api.t.endpoints.repo}, but {user_name} cannot read it",
                hint="project names are unique across all of Synapse: ask its owner for "
                "access, or give your project another name",
            ) from err

    ids = _parallel(api, find_project, list(manifest.projects))
    for spec, syn_id in zip(manifest.projects, ids, strict=True):
        live = (
            LiveContainer(syn_id=syn_id, concrete_type=PROJECT_TYPE, name=spec.name, own_acl=True)
            if syn_id
            else None
        )
        level.append((spec, live))

    while level:
        existing = [(spec, live) for spec, live in level if live is not None]
        for spec, live in level:
            containers[spec.address] = live
        bundle_jobs = [(s, lv) for s, lv in existing if _needs_bundle(s, lv.own_acl)]
        _parallel(api, lambda job: _read_bundle(api, job[0], job[1]), bundle_jobs)
        _parallel(
            api, lambda job: _read_wiki(api, job[0], job[1]), [j for j in existing if j[0].wiki]
        )
        listing = [(s, lv) for s, lv in existing if s.folders]

        def list_children(job: tuple[ContainerSpec, LiveContainer]) -> None:
            job[1].children = {str(h["name"]): h for h in api.children(job[1].syn_id)}

        _parallel(api, list_children, listing)
        for spec, live in level:
            _observe(observed, spec, live)
        next_level: list[tuple[ContainerSpec, LiveContainer | None]] = []
        for spec, live in level:
            for child in spec.folders:
                child_live: LiveContainer | None = None
                if live is not None and live.children is not None:
                    header = live.children.get(child.name)
                    if header is not None:
                        if header.get("type") != FOLDER_TYPE:
                            raise PlanError(
                                f"{child.location}: {child.address}: an entity of type "
                                f"{str(header.get('type')).rsplit('.', 1)[-1]} named "
                                f"{child.name!r} already exists there ({header['id']})",
                                hint="rename the folder in the manifest, or move that entity",
                            )
                        child_live = LiveContainer(
                            syn_id=str(header["id"]),
                            concrete_type=FOLDER_TYPE,
                            name=child.name,
                            own_acl=str(header.get("benefactorId")) == str(header["id"])[3:],
                            created_by=header.get("createdBy"),
                        )
                next_level.append((child, child_live))
        level = next_level
    identities = (str(user_id), user_name, *[str(e) for e in profile.get("emails", [])])
    live_storage = _read_storage(api, manifest, containers, identities)
    storage.observe(manifest, live_storage, observed)
    return LiveState(
        target=target,
        principals=principals,
        containers=containers,
        observed=observed,
        storage=live_storage,
        identities=identities,
        my_groups=my_groups,
    )


def _my_groups(
    api: SynapseAPI, manifest: Manifest, principals: dict[PrincipalRef, int], user_id: int
) -> frozenset[int]:
    """The user, PUBLIC and AUTHENTICATED_USERS, plus the user's teams — read (one call) only
    when some ACL in the manifest names a team or id and does not already give the user the
    rights to manage the entity directly."""
    base = frozenset({user_id, 273948, 273949})
    for spec in manifest.walk():
        if not isinstance(spec.acl, AclSpec):
            continue
        granted: set[str] = set()
        others = False
        for entry in spec.acl.entries:
            pid = principals[entry.principal]
            if pid in base:
                granted |= entry.access
            else:
                others = True
        if others and not {"READ", "UPDATE", "CHANGE_PERMISSIONS"} <= granted:
            return base | frozenset(api.my_team_ids(user_id))
    return base


def _read_storage(
    api: SynapseAPI,
    manifest: Manifest,
    containers: dict[str, LiveContainer | None],
    identities: tuple[str, ...],
) -> LiveStorage:
    ids = {address: (c.syn_id if c is not None else None) for address, c in containers.items()}
    live = storage.read_storage(api, manifest, ids)
    used = storage.used_locations(manifest)
    for name, spec in sorted(manifest.storage_locations.items()):
        if name in live.matched or name not in used or spec.type != "external_s3":
            continue
        assert spec.bucket is not None
        check = check_owner_txt(
            spec.bucket, spec.base_key, identities, endpoint_url=spec.endpoint_url
        )
        if check.checked:
            live.owner_checks[name] = None if check.ok else check.error
        else:
            log.warning("owner.txt of storage location %r not checked here: %s", name, check.error)
    migrating = [s for s in manifest.walk() if s.migrate_existing and ids.get(s.address)]
    if migrating:
        from .migration import Strategy, index_migration

        def index(spec: ContainerSpec) -> tuple[str, Any]:
            assert spec.migrate_existing is not None
            own = {
                str(ids[d.address])
                for d in _descendants(spec)
                if d.migrate_existing is not None and ids.get(d.address)
            }
            return spec.address, index_migration(
                api,
                str(ids[spec.address]),
                Strategy(spec.migrate_existing.versions),
                live.matched.get(spec.migrate_existing.to),
                exclude=frozenset(own),
                destination_s3=_is_external_s3(manifest, spec.migrate_existing.to),
            )

        live.migrations = dict(_parallel(api, index, migrating))
    moving = [s for s in manifest.walk() if s.move_files_from]
    if moving:
        from .migration import Strategy, index_migration

        def index_move(spec: ContainerSpec) -> tuple[str, tuple[str, Any]] | None:
            assert spec.move_files_from is not None and spec.storage
            project_address = spec.address.split("/", 1)[0]
            source = _find_by_path(api, ids.get(project_address), spec.move_files_from)
            if source is None:
                if ids.get(project_address) is None:
                    return None  # a new project holds no files to move
                raise PolicyViolation(
                    f"{spec.address}: move_files_from: the project has no folder "
                    f"{spec.move_files_from!r}",
                    location=spec.location,
                    hint="write the folder's path from the project, e.g. `Raw Data/RNAseq`",
                )
            return spec.address, (
                source,
                index_migration(
                    api,
                    source,
                    Strategy.MOVE,
                    live.matched.get(spec.storage[0]),
                    recursive=False,
                    destination_s3=_is_external_s3(manifest, spec.storage[0]),
                ),
            )

        live.moves = dict(m for m in _parallel(api, index_move, moving) if m is not None)
    return live


def _is_external_s3(manifest: Manifest, location: str) -> bool:
    """A declared external_s3 location is the user's own bucket (owner.txt): the migration's
    direct and relay copy paths apply to it."""
    spec = manifest.storage_locations.get(location)
    return spec is not None and spec.type == "external_s3"


def _find_by_path(api: SynapseAPI, project_id: str | None, path: str) -> str | None:
    current = project_id
    for name in path.split("/"):
        if current is None:
            return None
        current = api.lookup_child(current, name)
    return current


def _descendants(spec: ContainerSpec) -> Iterable[ContainerSpec]:
    for child in spec.folders:
        yield child
        yield from _descendants(child)


def _observe(
    observed: dict[str, str | None], spec: ContainerSpec, live: LiveContainer | None
) -> None:
    if live is None:
        observed[spec.address] = None
        return
    observed[spec.address] = (
        f"{live.syn_id} etag={live.etag}" if live.etag else f"{live.syn_id} own_acl={live.own_acl}"
    )
    if live.acl is not None:
        observed[f"{spec.address}#acl"] = live.acl.etag
    elif isinstance(spec.acl, AclSpec) or spec.acl is INHERIT:
        observed[f"{spec.address}#acl"] = "own" if live.own_acl else "inherits"
    if spec.wiki is not None:
        observed[f"{spec.address}#wiki"] = live.wiki_root_id
        for path, page in sorted(live.wiki_pages.items()):
            observed[f"{spec.address}#wiki/{path}"] = page.etag
