"""The resource registry and the Address type: pure, no emulator."""

from __future__ import annotations

import json

import pytest
from golden_support import GOLDEN, case_names, load_manifest
from hypothesis import given
from hypothesis import strategies as st
from test_layering import PACKAGE, imports_of

from synapse_declare import state_codec
from synapse_declare.errors import PlanError, SourceLocation
from synapse_declare.model import AclSpec, ContainerSpec, EntityKind
from synapse_declare.plan import Resource
from synapse_declare.resources import registry
from synapse_declare.resources.base import (
    Address,
    BundleFlags,
    Operation,
    UnsupportedOperation,
    owner_of,
    storage_address,
    sub_address,
)
from synapse_declare.resources.payloads import (
    ContainerCreate,
    ContainerUpdate,
    UploadDesired,
    WikiPageDesired,
)

FORMS = [
    "project:AD Portal",
    "project:AD Portal/folder:Raw Data/folder:RNAseq",
    "project:AD Portal/folder:Raw Data#acl",
    "project:AD Portal#wiki",
    "project:AD Portal#wiki/Methods/Imaging",
    "project:AD Portal#wiki-order",
    "project:AD Portal/folder:Pipelines#upload",
    "project:AD Portal#migration",
    "storage:lab-bucket",
    "principal:user:jdoe",
    "principal:team:Lab Admins",
    "acl:syn123",
]


@pytest.mark.parametrize("text", FORMS)
def test_every_address_form_round_trips(text: str) -> None:
    assert str(Address.parse(text)) == text


def test_address_parts() -> None:
    address = Address.parse("project:A/folder:B/folder:C#wiki/Sub/Page")
    assert address.segments == (("project", "A"), ("folder", "B"), ("folder", "C"))
    assert address.sub == "wiki/Sub/Page"
    assert address.kind == "folder" and address.in_folder
    assert address.display_path == "A/B/C"
    assert str(address.owner()) == "project:A/folder:B/folder:C"
    assert not Address.parse("project:A#acl").in_folder
    assert Address.parse("principal:user:jdoe").segments == (("principal", "user:jdoe"),)


def test_address_helpers_build_what_parse_reads() -> None:
    assert sub_address("project:A/folder:B", "acl") == "project:A/folder:B#acl"
    assert storage_address("lab") == "storage:lab"
    assert owner_of("project:A/folder:B#upload") == "project:A/folder:B"
    assert str(Address.container("folder", "C", "project:A/folder:B")) == (
        "project:A/folder:B/folder:C"
    )


def test_a_name_with_a_slash_stays_one_segment() -> None:
    address = Address.parse("storage:team/bucket")
    assert address.segments == (("storage", "team/bucket"),)


def test_not_an_address_is_refused() -> None:
    with pytest.raises(ValueError, match="not a resource address"):
        Address.parse("nonsense")


NAMES = st.text(
    alphabet=st.characters(blacklist_characters="#/", blacklist_categories=("Cs",)), min_size=1
)


@pytest.mark.property
@given(
    project=NAMES,
    folders=st.lists(NAMES, max_size=4),
    sub=st.none() | st.sampled_from(["acl", "upload", "wiki", "wiki/A/B", "wiki-order"]),
)
def test_parse_inverts_format(project: str, folders: list[str], sub: str | None) -> None:
    segments = (("project", project), *(("folder", f) for f in folders))
    address = Address(tuple(segments), sub)
    assert Address.parse(str(address)) == address


def test_every_plan_resource_has_exactly_one_kind() -> None:
    owners = [k for k in registry.KINDS for r in k.resources]
    assert len(owners) == len({r for k in registry.KINDS for r in k.resources})
    for resource in Resource:
        assert resource in registry.kind_of(resource).resources


@pytest.mark.parametrize(
    ("resource", "operation", "supported"),
    [
        (Resource.WIKI_PAGE, Operation.PRUNE, "apply, export, plan"),
        (Resource.MIGRATION, Operation.EXPORT, "apply, plan"),
    ],
)
def test_an_operation_a_kind_does_not_implement_is_refused_clearly(
    resource: Resource, operation: Operation, supported: str
) -> None:
    with pytest.raises(UnsupportedOperation) as caught:
        registry.require(resource, operation)
    message = str(caught.value)
    label = registry.kind_of(resource).label(resource)
    assert f"{operation.value} is not implemented for {label} resources" in message
    assert f"they support: {supported})" in message


def test_export_is_implemented_by_every_kind_but_migration() -> None:
    exporting = {r for r in Resource if Operation.EXPORT in registry.kind_of(r).operations}
    assert exporting == set(Resource) - {Resource.MIGRATION}


def test_folders_implement_prune() -> None:
    assert registry.require(Resource.FOLDER, Operation.PRUNE) is registry.kind_of(Resource.FOLDER)


def test_apply_is_implemented_by_every_kind() -> None:
    for resource in Resource:
        assert registry.require(resource, Operation.APPLY) is registry.kind_of(resource)


HERE = SourceLocation("manifest.yaml", 1, 1)


def _folder(description: str | None = None, acl: AclSpec | None = None) -> ContainerSpec:
    return ContainerSpec(
        kind=EntityKind.FOLDER,
        name="F",
        description=description,
        alias=None,
        annotations=None,
        acl=acl,
        wiki=None,
        folders=(),
        storage=None,
        migrate_existing=None,
        location=HERE,
        address="project:P/folder:F",
    )


def test_one_bundle_carries_the_union_of_every_kinds_flags() -> None:
    bare = _folder()
    assert registry.bundle_flags(bare, own_acl=True) == BundleFlags()
    acl = AclSpec(entries=(), location=HERE)
    both = _folder(description="d", acl=acl)
    flags = registry.bundle_flags(both, own_acl=True)
    assert flags == BundleFlags(entity=True, acl=True, permissions=True)
    assert flags.query() == {
        "includeEntity": True,
        "includeAccessControlList": True,
        "includePermissions": True,
    }
    # An inheriting folder's ACL is not read: its children page already said it inherits.
    assert registry.bundle_flags(_folder(acl=acl), own_acl=False) == BundleFlags()


def test_a_damaged_payload_is_a_clear_plan_error_not_a_key_error() -> None:
    with pytest.raises(PlanError, match="a wiki page change has no 'parent'"):
        WikiPageDesired.from_json({"title": "T", "markdown": ""})
    with pytest.raises(PlanError, match="unknown ACL operation 'explode'"):
        ContainerUpdate.from_json({"acl_op": "explode"})


def test_payloads_round_trip_through_their_json() -> None:
    create = ContainerCreate(
        entity={"name": "F", "concreteType": "org.sagebionetworks.repo.model.Folder"},
        annotations={"k": {"type": "STRING", "value": ["v"]}},
        acl=({"principalId": 1, "accessType": ["READ"]},),
        acl_after_create=True,
        parent="project:P",
    )
    assert ContainerCreate.from_json(create.to_json()) == create
    update = ContainerUpdate(
        entity_update={"description": "d"}, annotations=None, acl_op="delete", acl=None
    )
    assert ContainerUpdate.from_json(update.to_json()) == update
    page = WikiPageDesired("project:P", None, "Home", "# Hi")
    assert WikiPageDesired.from_json(page.to_json()) == page
    upload = UploadDesired("project:P", (1, "new:lab"))
    assert UploadDesired.from_json(upload.to_json()) == upload


# ---------------------------------------------------------------------------------------------
# The plan step and observation belong to the kinds (issue 10)


def test_every_kind_that_plans_is_walked_in_exactly_one_planning_phase() -> None:
    phases = [*registry.LEADING, *registry.TREE, *registry.SHARED, *registry.ATTACHED]
    for kind in registry.KINDS:
        assert Operation.PLAN in kind.operations
        assert sum(walked is kind for walked in phases) == 1, kind.name


def test_the_planner_reaches_kind_diffs_only_through_the_registry() -> None:
    """planner.py orchestrates: it may name the registry and base, the team links (a
    dependency) and the desired ACL handed to the access summary — no other kind module."""
    allowed = {"registry", "base", "team", "acl"}
    found = {
        name.split(".")[2]
        for name in imports_of(PACKAGE / "planner.py")
        if name.startswith("synapse_declare.resources.")
    }
    assert found, "the check must see the planner's imports"
    assert found <= allowed, sorted(found - allowed)


@pytest.mark.parametrize("name", case_names())
def test_each_kinds_observation_is_what_the_reader_recorded(name: str) -> None:
    """Every golden live.json was recorded by the reader (observation included); the kinds'
    observe steps, asked about the same live state, give the same keys and values."""
    case = GOLDEN / name
    manifest, _ = load_manifest(case)
    live = state_codec.decode(json.loads((case / "live.json").read_text(encoding="utf-8")))
    produced: dict[str, str | None] = {}
    for spec in manifest.walk():
        if spec.address in live.containers:
            produced.update(registry.observe(spec, live.containers[spec.address]))
    produced.update(registry.observe_storage(manifest, live.storage))
    assert {k: live.observed.get(k, "<missing>") for k in produced} == produced
    # And nothing the reader recorded for a declared container is left unobserved, except what
    # the reader observes itself: principals, teams, prune candidates (undeclared folders) and
    # the ACLs the public-access audit reads where the manifest declares none (acl_audit.py).
    specs = {spec.address: spec for spec in manifest.walk()}
    for key in live.observed:
        owner, _, sub = key.partition("#")
        if key.startswith(("principal:", "team:")) or (owner not in specs and not sub):
            continue
        if sub == "acl" and owner in specs and specs[owner].acl is None:
            continue
        assert key in produced, key
