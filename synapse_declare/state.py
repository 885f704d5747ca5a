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

import dataclasses
import difflib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from . import acl_audit, storage
from .client.records import UserProfile, WikiHeader, as_json, as_json_list
from .client.s3 import check_owner_txt
from .client.synapse import SynapseAPI
from .errors import (
    ApiError,
    Forbidden,
    NotFound,
    PlanError,
    PolicyViolation,
    ResolutionError,
    ResolutionErrors,
    SourceLocation,
)
from .lifecycle import (
    MARKER_KEY,
    ProjectWalk,
    PruneCandidate,
    Relocation,
    find_elsewhere,
    find_previous,
    find_project_elsewhere,
    find_renamed,
    read_candidates,
)
from .migration import SkippedItem, Strategy, index_migration
from .model import (
    AclSpec,
    ContainerSpec,
    EntityKind,
    Manifest,
    PrincipalKind,
    PrincipalRef,
    Prune,
)
from .plan import DEFAULT_MAX_DELETIONS, Target
from .preflight import read_problem
from .resources import registry
from .resources import team as teams
from .resources.acl import creator_of as creator_of  # noqa: PLC0414
from .resources.base import Address, BundleFlags
from .resources.container import FOLDER_TYPE as FOLDER_TYPE  # noqa: PLC0414
from .resources.container import PROJECT_TYPE as PROJECT_TYPE  # noqa: PLC0414
from .resources.wiki import orders_siblings, wiki_paths
from .storage import LiveStorage

# Re-exported where they used to be defined: FOLDER_TYPE and PROJECT_TYPE (the container kind
# owns them; export, leftovers and the access summary import them from here) and creator_of
# (the ACL aspect owns what `self` means; the reader's lock-out groups use it too).

log = logging.getLogger(__name__)

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
    wiki_order: dict[str, Any] | None = None  # V2WikiOrderHint, read when sub-page order matters
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
    # Display names ("user:jdoe", "team:Curators") of principal ids seen in live ACLs.
    principal_names: dict[int, str] = field(default_factory=dict)
    # PUBLIC / AUTHENTICATED_USERS grants found on entities whose ACL the manifest leaves alone.
    exposures: list[str] = field(default_factory=list)
    # Certified user (read only when the manifest has folders or grants AUTHENTICATED_USERS
    # download: what Synapse refuses to uncertified users); None when not read.
    certified: bool | None = None
    audit_public: bool = False  # every ACL under the managed projects was checked
    # Migration destinations this machine cannot read (apply's --verify md5/size would fail):
    # location name → the reason, read only when a migration has files to copy there.
    unreadable: dict[str, str] = field(default_factory=dict)
    teams: teams.LiveTeams = field(default_factory=teams.LiveTeams)  # declared teams (teams:)
    # Undeclared folders under `prune:` containers (address → what deleting it takes).
    prune_candidates: dict[str, PruneCandidate] = field(default_factory=dict)
    # Declared folders found under an old name or path (`previously:`), and declared folders
    # found in the caller's trash (address → syn id): read only when a declared name is missing.
    relocated: dict[str, Relocation] = field(default_factory=dict)
    trashed: dict[str, str] = field(default_factory=dict)
    # Own ACLs of undeclared entities in the children pages, and in the walk when it ran (read
    # for the public-access audit), by syn id: the access summary and `folders_inherit: strict`
    # use them.
    other_acls: dict[str, LiveAcl] = field(default_factory=dict)
    # What the project walk listed beyond the children pages (`plan --audit-public`, and always
    # under `folders_inherit: strict`): every entity below the managed containers.
    walked: list[acl_audit.Walked] = field(default_factory=list)
    # Whether you may change the permissions of each ACL `folders_inherit: strict` removes (syn
    # id → canChangePermissions): read for those targets only, so plan refuses what apply could
    # not do.
    acl_permissions: dict[str, bool] = field(default_factory=dict)
    # What the identity search could not settle (a project walk that stopped at its limit).
    notes: list[str] = field(default_factory=list)


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


def _entries_of(manifest: Manifest, ref: PrincipalRef) -> list[SourceLocation]:
    """Where ``ref`` is written: the location of each ACL entry that names it."""
    found: list[SourceLocation] = []
    for spec in manifest.walk():
        if isinstance(spec.acl, AclSpec):
            for entry in spec.acl.entries:
                if entry.principal == ref:
                    found.append(entry.location or spec.acl.location)
    return found


def _entries_or_nowhere(manifest: Manifest, ref: PrincipalRef) -> list[SourceLocation | None]:
    return list(_entries_of(manifest, ref)) or [None]


def _suggest(api: SynapseAPI, name: str, *, users: bool) -> str | None:
    """The closest existing user (or team) name, for a did-you-mean (one prefix search)."""
    prefix = name.strip()[:3]
    if not prefix:
        return None
    try:
        headers = api.headers_by_prefix(prefix, users=users)
    except ApiError:
        return None
    names = [str(h.get("userName")) for h in headers if h.get("userName")]
    lowered = {n.lower(): n for n in names}
    if name.lower() in lowered:
        return lowered[name.lower()]
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[close[0]] if close else None


def resolve_principals(
    api: SynapseAPI, manifest: Manifest, user_id: int, will_exist: frozenset[str] = frozenset()
) -> dict[PrincipalRef, int]:
    """Principal ids by reference. Every reference that does not resolve is reported, each at
    every entry that writes it, in one :class:`ResolutionErrors`."""
    refs = _principal_refs(manifest)
    resolved: dict[PrincipalRef, int] = {}
    problems: list[tuple[PrincipalRef, str, str]] = []  # (ref, message, hint)
    named = sorted((r for r in refs if r.kind in (PrincipalKind.USER, PrincipalKind.TEAM)), key=str)
    numeric = sorted({r.id for r in refs if r.kind is PrincipalKind.ID and r.id is not None})
    for ref in refs:
        if ref.kind is PrincipalKind.SELF:
            resolved[ref] = user_id
        elif ref.kind in (PrincipalKind.PUBLIC, PrincipalKind.AUTHENTICATED_USERS):
            assert ref.id is not None
            resolved[ref] = ref.id
    where = api.t.endpoints.repo
    if named:
        headers = api.headers_by_alias(sorted({str(r.name) for r in named}))
        for ref in named:
            want_individual = ref.kind is PrincipalKind.USER
            kind = "user" if want_individual else "team"
            exact = [h for h in headers if h.get("userName") == ref.name]
            if not exact and not want_individual and teams.alias_key(str(ref.name)) in will_exist:
                continue  # a team this manifest declares and apply creates first
            if not exact:
                near = _suggest(api, str(ref.name), users=want_individual)
                hint = (
                    f"Synapse names are exact: did you mean {kind}:{near}?"
                    if near
                    else f"check the spelling; the {kind} must exist on this Synapse"
                )
                problems.append((ref, f"{ref} does not exist on {where}", hint))
                continue
            header = exact[0]
            if bool(header.get("isIndividual")) != want_individual:
                actual = "a user" if header.get("isIndividual") else "a team"
                problems.append(
                    (
                        ref,
                        f"{ref} names {actual}, not a {kind}",
                        f"write {'user' if header.get('isIndividual') else 'team'}:{ref.name}",
                    )
                )
                continue
            resolved[ref] = int(header["ownerId"])
    if numeric:
        known = {int(h["ownerId"]) for h in api.group_headers_by_ids(numeric)}
        for ref in sorted(refs, key=str):
            if ref.kind is PrincipalKind.ID and ref.id is not None:
                if ref.id not in known:
                    problems.append(
                        (
                            ref,
                            f"principal id {ref.id} does not exist on {where}",
                            "use user:NAME or team:NAME, or check the id",
                        )
                    )
                    continue
                resolved[ref] = ref.id
    if problems:
        errors = [
            ResolutionError(message, location=location, hint=hint)
            for ref, message, hint in problems
            for location in _entries_or_nowhere(manifest, ref)
        ]
        errors.sort(
            key=lambda e: (
                (e.location.file, e.location.line, e.location.column) if e.location else ("", 0, 0)
            )
        )
        raise ResolutionErrors(errors)
    return resolved


# ---------------------------------------------------------------------------------------------
# Entities


def _bundle_flags(
    spec: ContainerSpec, live: LiveContainer, containers: Mapping[str, LiveContainer | None]
) -> BundleFlags:
    """The union of the flags every resource kind asks for; plus a folder's annotations when
    this plan adopts its project, so that the folder is adopted too (its managed marker and
    address, written by the container's update): a one-time read, since once the project
    carries its marker no folder of it is adopted again."""
    flags = registry.bundle_flags(spec, live.own_acl)
    if spec.kind is EntityKind.FOLDER and _adopting_project(spec_project(spec), containers):
        flags |= BundleFlags(annotations=True, permissions=True)
    return flags


def _adopting_project(project_address: str, containers: Mapping[str, LiveContainer | None]) -> bool:
    """Whether the project exists without synapse-declare's marker (read in its bundle, at the
    level before its folders'): this plan adopts it."""
    project = containers.get(project_address)
    return project is not None and not project.managed_marker


def _read_bundle(
    api: SynapseAPI,
    spec: ContainerSpec,
    live: LiveContainer,
    containers: Mapping[str, LiveContainer | None],
) -> None:
    """ONE ``bundle2`` read with the union of the flags every resource kind asks for."""
    flags = _bundle_flags(spec, live, containers)
    if not flags.any:
        return
    bundle = api.bundle(live.syn_id, **flags.query())
    if "permissions" in bundle:
        live.permissions = dict(bundle["permissions"])
    if "entity" in bundle:
        live.entity = as_json(bundle["entity"])
        live.etag = str(bundle["entity"]["etag"])
        live.created_by = bundle["entity"].get("createdBy")
    if "annotations" in bundle:
        live.annotations = dict(bundle["annotations"].get("annotations", {}))
        live.etag = str(bundle["annotations"]["etag"])
    if flags.acl:
        acl = bundle.get("accessControlList")
        if acl is not None:
            live.acl = LiveAcl(etag=str(acl["etag"]), entries=_acl_entries(as_json(acl)))
        else:
            live.own_acl = False
    if flags.root_wiki:
        live.wiki_root_id = bundle.get("rootWikiId")


def _acl_entries(acl: dict[str, Any]) -> dict[int, frozenset[str]]:
    entries: dict[int, set[str]] = {}
    for entry in acl.get("resourceAccess", []):
        entries.setdefault(int(entry["principalId"]), set()).update(entry.get("accessType", []))
    return {k: frozenset(v) for k, v in entries.items()}


def _read_wiki(api: SynapseAPI, spec: ContainerSpec, live: LiveContainer) -> None:
    if spec.wiki is None or live.wiki_root_id is None:
        return
    headers = api.wiki_headers(live.syn_id)
    live.wiki_headers = as_json_list(headers)
    by_parent: dict[str | None, list[WikiHeader]] = {}
    for header in headers:
        by_parent.setdefault(header.get("parentId"), []).append(header)
    # Match manifest pages to live pages by title path under the root.
    wanted: dict[tuple[str, ...], str] = {(): live.wiki_root_id}
    for path, _page in wiki_paths(spec.wiki):
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
            raw=as_json(raw),
        )

    for path, page in _parallel(api, fetch, pages):
        live.wiki_pages["/".join(path)] = page
    if orders_siblings(spec.wiki):
        live.wiki_order = as_json(api.wiki_order_hint(live.syn_id))


def whoami(api: SynapseAPI) -> UserProfile:
    """The caller's profile, or a :class:`PlanError` that says the endpoint is not a Synapse
    server (a web page, another API, a wrong path) instead of a raw HTTP status."""
    endpoint = api.t.endpoints.repo
    hint = (
        "--endpoint takes the server root (https://repo-prod.prod.sagebase.org) or its repo URL "
        "(.../repo/v1); check it and the [endpoints] section of ~/.synapseConfig"
    )
    try:
        profile = api.my_profile()
    except (ValueError, TypeError) as err:  # a body that is not a JSON object
        raise PlanError(
            f"{endpoint} does not answer like Synapse's REST API (GET /userProfile did not "
            "return a user profile)",
            hint=hint,
        ) from err
    except ApiError as err:
        if err.status in (400, 404, 405) or (not err.reason and err.status < 500):
            raise PlanError(
                f"{endpoint} does not answer like Synapse's REST API (GET /userProfile: "
                f"{err.status or 'error'})",
                hint=hint,
            ) from err
        raise
    if not isinstance(profile, dict) or "ownerId" not in profile or "userName" not in profile:
        raise PlanError(
            f"{endpoint} does not answer like Synapse's REST API (GET /userProfile did not "
            "return a user profile)",
            hint=hint,
        )
    return profile


def read_state(
    api: SynapseAPI,
    manifest: Manifest,
    *,
    audit_public: bool = False,
    max_deletions: int = DEFAULT_MAX_DELETIONS,
) -> LiveState:
    """Read what the manifest addresses. ``audit_public`` walks every entity under the managed
    projects (one children listing per folder); ``folders_inherit: strict`` turns that walk on,
    since any own ACL under a managed project is drift, and reads the permissions of the ACLs it
    would remove when there are at most ``max_deletions`` (more are refused by the plan anyway).
    """
    profile = whoami(api)
    user_id, user_name = int(profile["ownerId"]), str(profile["userName"])
    if user_name == "anonymous":
        raise PlanError("Synapse treats this request as anonymous; a token is required")
    target = Target(endpoint=api.t.endpoints.repo, user_id=user_id, user_name=user_name)
    team_observed: dict[str, str | None] = {}
    live_teams, team_errors = teams.read_teams(api, manifest, user_id, team_observed)
    try:
        principals = resolve_principals(api, manifest, user_id, teams.declared_team_keys(manifest))
    except ResolutionErrors as exc:  # unknown team members join the ACLs' unknown principals
        raise ResolutionErrors(_by_place([*exc.errors, *team_errors])) from None
    if team_errors:
        raise ResolutionErrors(_by_place(team_errors))
    containers: dict[str, LiveContainer | None] = {}
    # `self` is the entity's creator, not the operator (see creator_of): no observed id for it.
    observed: dict[str, str | None] = {
        f"principal:{ref}": str(pid)
        for ref, pid in sorted(principals.items(), key=lambda x: str(x[0]))
        if ref.kind is not PrincipalKind.SELF
    }
    observed.update(team_observed)

    relocated: dict[str, Relocation] = {}
    trashed: dict[str, str] = {}
    trash: list[list[dict[str, Any]]] = []  # the caller's trash, read once when first needed
    seen: dict[str, str | None] = {}  # undeclared folder id → its ADDRESS_KEY (renamed by hand)
    walks: dict[str, ProjectWalk] = {}  # project id → its folders (moved by hand)
    notes: list[str] = []
    declared_paths = {Address.parse(s.address).display_path for s in manifest.walk()}
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
    for spec, by_name in zip(manifest.projects, ids, strict=True):
        syn_id, name = by_name, spec.name
        if syn_id is None:  # renamed (`previously:`) or in the trash: see lifecycle.py
            syn_id, name = find_project_elsewhere(api, spec, relocated, trashed, trash)
        live = (
            LiveContainer(syn_id=syn_id, concrete_type=PROJECT_TYPE, name=name, own_acl=True)
            if syn_id
            else None
        )
        level.append((spec, live))

    # Declared folders missing under their name that `previously:`, the sibling markers and the
    # trash did not explain, in a project synapse-declare manages: looked for by the project
    # walk once the declared tree is read, so that the walk reuses its children pages.
    moved_by_hand: list[ContainerSpec] = []

    def read_tree(level: list[tuple[ContainerSpec, LiveContainer | None]]) -> None:
        while level:
            existing = [(spec, live) for spec, live in level if live is not None]
            for spec, live in level:
                containers[spec.address] = live
            bundle_jobs = [(s, lv) for s, lv in existing if _bundle_flags(s, lv, containers).any]
            _parallel(api, lambda job: _read_bundle(api, job[0], job[1], containers), bundle_jobs)
            _parallel(
                api, lambda job: _read_wiki(api, job[0], job[1]), [j for j in existing if j[0].wiki]
            )
            listing = [(s, lv) for s, lv in existing if s.folders or s.prune is not Prune.OFF]

            def list_children(job: tuple[ContainerSpec, LiveContainer]) -> None:
                job[1].children = {str(h["name"]): as_json(h) for h in api.children(job[1].syn_id)}

            _parallel(api, list_children, listing)
            for spec, live in level:
                observed.update(registry.observe(spec, live))
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
                    if child_live is None and live is not None and live.children is not None:
                        child_live = _identity(
                            api,
                            child,
                            live,
                            containers,
                            relocated,
                            trashed,
                            trash,
                            {c.name for c in spec.folders},
                            seen,
                        )
                        if (
                            child_live is None
                            and child.address not in trashed
                            and _walk_due(spec_project(child), containers)
                        ):
                            moved_by_hand.append(child)
                    next_level.append((child, child_live))
            level = next_level

    read_tree(level)
    while moved_by_hand:
        pending, moved_by_hand = moved_by_hand, []
        for child in pending:
            child_live = _find_moved_by_hand(
                api, child, containers, relocated, seen, (walks, declared_paths, notes)
            )
            if child_live is not None:  # its subtree, read as any declared container's
                read_tree([(child, child_live)])
    moved = {live.syn_id for a, live in containers.items() if live and a in relocated}
    candidates = read_candidates(api, manifest, containers, moved)
    for address, candidate in sorted(candidates.items()):
        observed[address] = f"{candidate.syn_id} etag={candidate.etag}"
    my_groups = _my_groups(api, manifest, principals, containers, user_id)
    certified = api.is_certified() if _needs_certification(manifest) else None
    read_acls: dict[str, tuple[str, dict[int, frozenset[str]]]] = {}
    strict = manifest.policies.folders_inherit_strict
    walked: list[acl_audit.Walked] = []
    exposures = acl_audit.find_exposures(
        api,
        manifest,
        containers,
        observed,
        everywhere=audit_public or strict,
        read_acls=read_acls,
        walked=walked,
    )
    acl_permissions = (
        _removal_permissions(
            api, manifest, containers, walked, read_acls, candidates, max_deletions
        )
        if strict
        else {}
    )
    names = acl_audit.principal_names(
        api,
        manifest,
        containers,
        exposures,
        target,
        principals,
        extra=[pid for _, entries in read_acls.values() for pid in entries] if strict else (),
    )
    identities = (str(user_id), user_name, *[str(e) for e in profile.get("emails", [])])
    live_storage = _read_storage(api, manifest, containers, identities)
    observed.update(registry.observe_storage(manifest, live_storage))
    unreadable = _unreadable_destinations(manifest, live_storage)
    return LiveState(
        target=target,
        principals=principals,
        containers=containers,
        observed=observed,
        storage=live_storage,
        identities=identities,
        my_groups=my_groups,
        principal_names=names,
        exposures=[e.describe(names) for e in exposures],
        certified=certified,
        # Strict mode walked every entity: a saved plan remembers it, as it does --audit-public.
        audit_public=audit_public or strict,
        unreadable=unreadable,
        teams=live_teams,
        prune_candidates=candidates,
        relocated=relocated,
        trashed=trashed,
        other_acls={k: LiveAcl(etag, entries) for k, (etag, entries) in read_acls.items()},
        walked=walked,
        acl_permissions=acl_permissions,
        notes=notes,
    )


def _removal_permissions(
    api: SynapseAPI,
    manifest: Manifest,
    containers: Mapping[str, LiveContainer | None],
    walked: Sequence[acl_audit.Walked],
    read_acls: Mapping[str, tuple[str, dict[int, frozenset[str]]]],
    candidates: Mapping[str, PruneCandidate],
    cap: int,
) -> dict[str, bool]:
    """canChangePermissions on each own ACL ``folders_inherit: strict`` would remove (readable,
    not pruned with its folder): one bundle per target, none when there are more than ``cap``
    (the plan refuses that many removals before asking)."""
    targets = [
        found.syn_id
        for found in acl_audit.own_acls(manifest, containers, walked)
        if found.syn_id in read_acls and not acl_audit.within(found.address, candidates)
    ]
    if not targets or len(targets) > cap:
        return {}

    def can_change(syn_id: str) -> bool | None:
        try:
            bundle = api.bundle(syn_id, includePermissions=True)
        except (Forbidden, NotFound):
            # Gone (or hidden) since its ACL was read: nothing to refuse here; the ACL's etag,
            # observed, makes apply refuse a saved plan whose target changed.
            return None
        return bool((bundle.get("permissions") or {}).get("canChangePermissions"))

    answers = zip(targets, _parallel(api, can_change, targets), strict=True)
    return {syn_id: can for syn_id, can in answers if can is not None}


def _by_place(errors: Sequence[ResolutionError]) -> list[ResolutionError]:
    return sorted(
        errors,
        key=lambda e: (
            (e.location.file, e.location.line, e.location.column) if e.location else ("", 0, 0)
        ),
    )


def _identity(
    api: SynapseAPI,
    spec: ContainerSpec,
    parent: LiveContainer,
    containers: dict[str, LiveContainer | None],
    relocated: dict[str, Relocation],
    trashed: dict[str, str],
    trash: list[list[dict[str, Any]]],
    declared: set[str],
    seen: dict[str, str | None],
) -> LiveContainer | None:
    """A declared folder missing under its name: renamed or moved (``previously:``), renamed by
    hand (its address marker, on an undeclared sibling), or in the caller's trash. Costs reads
    only here, when a declared name is missing. Moved by hand elsewhere in the project is looked
    for later (``_find_moved_by_hand``), once the declared tree's pages are read."""
    project = containers.get(spec_project(spec))
    found = (
        find_previous(api, spec.previously, parent.children or {}, project.syn_id)
        if spec.previously and project is not None
        else None
    )
    how = ""  # `previously:`
    if found is None:
        how = "renamed by hand"
        # Renamed by hand: the undeclared sibling carrying this folder's address marker.
        parent_address = str(Address(Address.parse(spec.address).segments[:-1]))
        wanted = {spec.address} | {
            str(Address.container("folder", old, parent_address))
            for old in spec.previously
            if "/" not in old
        }
        found = find_renamed(api, wanted, parent.children or {}, declared, seen)
    if found is None:
        _in_trash(api, spec, parent, trashed, trash)
        return None
    return _relocated(api, spec, found, how, relocated)


def spec_project(spec: ContainerSpec) -> str:
    """The address of the project a declared container is in."""
    return str(Address(Address.parse(spec.address).segments[:1]))


def _walk_due(project_address: str, containers: Mapping[str, LiveContainer | None]) -> bool:
    """Whether a missing folder is looked for by the project walk: only in a project
    synapse-declare manages (its marker), since in any other no folder carries our marker."""
    project = containers.get(project_address)
    return project is not None and project.managed_marker


def _find_moved_by_hand(
    api: SynapseAPI,
    spec: ContainerSpec,
    containers: dict[str, LiveContainer | None],
    relocated: dict[str, Relocation],
    seen: dict[str, str | None],
    walk: tuple[dict[str, ProjectWalk], set[str], list[str]],
) -> LiveContainer | None:
    """A declared folder moved by hand to another parent: the project walk (see lifecycle.py),
    made after the declared tree is read so that it lists only the folders whose children page
    the reader did not read (undeclared subtrees, declared leaves)."""
    project_address = spec_project(spec)
    project = containers.get(project_address)
    if project is None:
        return None
    # The children pages read so far in this project (folders found by the walk included).
    pages = {
        live.syn_id: list(live.children.values())
        for address, live in containers.items()
        if live is not None
        and live.children is not None
        and (address == project_address or address.startswith(project_address + "/"))
    }
    walks, declared_paths, notes = walk
    found = find_elsewhere(
        api, spec.address, project.syn_id, declared_paths, walks, seen, notes, pages
    )
    if found is None:
        return None
    renamed = found[1].rpartition("/")[2] != spec.name
    how = "moved and renamed by hand" if renamed else "moved by hand"
    return _relocated(api, spec, found, how, relocated)


def _relocated(
    api: SynapseAPI,
    spec: ContainerSpec,
    found: tuple[str, str],
    how: str,
    relocated: dict[str, Relocation],
) -> LiveContainer:
    """The found folder, read (entity and whether it has its own ACL), and its relocation."""
    syn_id, previous = found
    entity = api.get_entity(syn_id)
    relocated[spec.address] = Relocation(previous, str(entity.get("parentId")), how)
    return LiveContainer(
        syn_id=syn_id,
        concrete_type=FOLDER_TYPE,
        name=str(entity["name"]),
        own_acl=api.get_acl(syn_id) is not None,
        created_by=entity.get("createdBy"),
        entity=as_json(entity),
        etag=str(entity["etag"]),
    )


def _in_trash(
    api: SynapseAPI,
    spec: ContainerSpec,
    parent: LiveContainer,
    trashed: dict[str, str],
    trash: list[list[dict[str, Any]]],
) -> bool:
    """Whether the caller's trash holds this declared folder (read once per plan, when needed)."""
    if not trash:
        trash.append(as_json_list(api.trash_view()))
    for row in trash[0]:
        if row.get("entityName") == spec.name and row.get("originalParentId") == parent.syn_id:
            trashed[spec.address] = str(row["entityId"])
            return True
    return False


def _needs_certification(manifest: Manifest) -> bool:
    """Folders (created or changed), wiki pages, migrated files and AUTHENTICATED_USERS
    download grants need a certified user on Synapse (the kinds' ``needs_certification``);
    a manifest of bare projects does not."""
    for spec in manifest.walk():
        if spec.kind.value == "folder" or spec.wiki is not None or spec.migrate_existing:
            return True
        if isinstance(spec.acl, AclSpec) and any(
            e.principal.kind is PrincipalKind.AUTHENTICATED_USERS and "DOWNLOAD" in e.access
            for e in spec.acl.entries
        ):
            return True
    return False


def _my_groups(
    api: SynapseAPI,
    manifest: Manifest,
    principals: dict[PrincipalRef, int],
    containers: dict[str, LiveContainer | None],
    user_id: int,
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
            pid = principals.get(entry.principal, -1)  # -1: a team apply creates first
            if entry.principal.kind is PrincipalKind.SELF:
                pid = creator_of(containers.get(spec.address), user_id)
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
            # The plan shows this as a warning; logging it too would print it twice.
            log.info("owner.txt of storage location %r not checked here: %s", name, check.error)
    moving = [s for s in manifest.walk() if s.move_files_from]
    if moving:

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
    migrating = [s for s in manifest.walk() if s.migrate_existing and ids.get(s.address)]
    if migrating:

        def index(spec: ContainerSpec) -> tuple[str, Any]:
            assert spec.migrate_existing is not None
            # Not entered: subfolders with their own migration, and STS folders — Synapse only
            # accepts files of an STS folder's own storage there, so repointing them elsewhere
            # would fail on every apply.
            own = {
                str(ids[d.address])
                for d in _descendants(spec)
                if (d.migrate_existing is not None or _is_sts(manifest, d)) and ids.get(d.address)
            }
            return spec.address, index_migration(
                api,
                str(ids[spec.address]),
                Strategy(spec.migrate_existing.versions),
                live.matched.get(spec.migrate_existing.to),
                exclude=frozenset(own),
                destination_s3=_is_external_s3(manifest, spec.migrate_existing.to),
            )

        moved = {item.entity_id for _, found in live.moves.values() for item in found.items} | {
            item.entity_id for _, found in live.moves.values() for item in found.skipped
        }
        sts_ids = {int(i) for i, loc in live.locations.items() if loc.get("stsEnabled")} | {
            live.matched[n]
            for n, s in manifest.storage_locations.items()
            if s.sts_enabled and n in live.matched
        }
        live.migrations = {
            address: _outside_sts(found, moved, frozenset(sts_ids))
            for address, found in _parallel(api, index, migrating)
        }
    return live


def _unreadable_destinations(manifest: Manifest, live: LiveStorage) -> dict[str, str]:
    """external_s3 destinations of migrations with files to copy that this machine's AWS
    credentials cannot read (so that plan can say what apply's verification will refuse)."""

    names = {
        spec.migrate_existing.to
        for spec in manifest.walk()
        if spec.migrate_existing is not None
        and (index := live.migrations.get(spec.address)) is not None
        and index.items
    } | {
        spec.storage[0]
        for spec in manifest.walk()
        if spec.storage and (found := live.moves.get(spec.address)) is not None and found[1].items
    }
    problems: dict[str, str] = {}
    for name in sorted(names):
        declared = manifest.storage_locations.get(name)
        if declared is None or declared.type != "external_s3" or declared.bucket is None:
            continue
        problem = read_problem(declared.bucket, declared.base_key, declared.endpoint_url)
        if problem is not None:
            problems[name] = problem
    return problems


STS_SKIP_REASON = "in an STS-enabled folder (it keeps that folder's storage)"


def _is_sts(manifest: Manifest, spec: ContainerSpec) -> bool:
    return any(
        (manifest.storage_locations.get(name) is not None)
        and bool(manifest.storage_locations[name].sts_enabled)
        for name in spec.storage or ()
    )


def _outside_sts(index: Any, moved: set[str], sts_ids: frozenset[int]) -> Any:
    """A container migration without the files a ``move_files_from`` moves (the move copies
    them into its STS folder; migrating them too would race it) and with files already in an
    STS location listed as skipped: Synapse refuses any other storage for them."""

    kept = []
    skipped = list(index.skipped)
    for item in index.items:
        if item.entity_id in moved:
            continue
        if item.from_location is not None and int(item.from_location) in sts_ids:
            skipped.append(
                SkippedItem(
                    entity_id=item.entity_id,
                    version=item.version,
                    file_handle_id=item.file_handle_id,
                    reason=STS_SKIP_REASON,
                    file_name=item.file_name,
                    size=item.size,
                )
            )
            continue
        kept.append(item)
    return dataclasses.replace(
        index,
        items=tuple(kept),
        already=tuple(i for i in index.already if i.entity_id not in moved),
        skipped=tuple(i for i in skipped if i.entity_id not in moved),
    )


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
