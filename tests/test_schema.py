"""The published JSON Schema: well-formed, documented, and turned into actionable messages."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator
from jsonschema.exceptions import best_match

from synapse_declare.errors import ManifestError
from synapse_declare.manifest import format_json_path, load_text
from synapse_declare.model import ENTITY_ACCESS_TYPES, PERMISSION_LEVELS
from synapse_declare.schema import (
    SCHEMA_ID,
    SCHEMA_RESOURCE,
    check_schema,
    load_schema,
    schema_errors,
    schema_text,
    validator,
)

REPO = Path(__file__).resolve().parent.parent
REPO_SCHEMA = REPO / "schemas" / "manifest.schema.json"


def errors_of(text: str) -> list[ManifestError]:
    doc = load_text(text, "m.yaml")
    return schema_errors(doc.data, doc.source)


def one_error(text: str) -> ManifestError:
    errors = errors_of(text)
    assert len(errors) == 1, [str(e) for e in errors]
    return errors[0]


def where(error: ManifestError) -> tuple[int, int, str]:
    assert error.location is not None
    return error.location.line, error.location.column, error.location.json_path


def subschemas(node: Any, path: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from subschemas(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from subschemas(value, f"{path}/{i}")


# -- the schema itself ---------------------------------------------------------------------------


def test_schema_is_valid_draft7() -> None:
    Draft7Validator.check_schema(load_schema())
    check_schema()
    assert load_schema()["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert load_schema()["$id"] == SCHEMA_ID


def test_loaded_schema_is_the_repository_copy() -> None:
    assert schema_text() == REPO_SCHEMA.read_text(encoding="utf-8")


def test_every_property_has_a_description() -> None:
    missing = [
        f"{path}/properties/{name}"
        for path, node in subschemas(load_schema())
        if isinstance(node.get("properties"), dict)
        for name, prop in node["properties"].items()
        if "description" not in prop
    ]
    assert missing == []


def test_every_object_with_properties_forbids_unknown_keys() -> None:
    open_objects = [
        path
        for path, node in subschemas(load_schema())
        if "properties" in node and node.get("additionalProperties") is not False
    ]
    assert open_objects == []


def test_every_definition_is_described() -> None:
    undocumented = [n for n, d in load_schema()["definitions"].items() if "description" not in d]
    assert undocumented == []


def test_enum_like_choices_are_documented() -> None:
    for path, node in subschemas(load_schema()):
        for branch in node.get("oneOf", []):
            if "const" in branch:
                assert branch.get("description"), f"{path}: {branch['const']!r} has no description"


def test_definition_names_are_stable() -> None:
    # Other tools reference these paths; renaming one is a breaking change.
    assert {
        "project",
        "folder",
        "synapseName",
        "annotations",
        "annotationKey",
        "annotationValue",
        "annotationScalar",
        "annotationList",
        "typedAnnotation",
        "annotationType",
        "acl",
        "principal",
        "permission",
        "permissionLevel",
        "accessType",
        "wiki",
        "wikiPage",
        "storageLocation",
        "storageLocationName",
        "storageLocationType",
        "storageRef",
        "migrateExisting",
    } <= set(load_schema()["definitions"])


def test_schema_levels_and_access_types_match_the_model() -> None:
    defs = load_schema()["definitions"]
    assert [b["const"] for b in defs["permissionLevel"]["oneOf"]] == list(PERMISSION_LEVELS)
    assert {b["const"] for b in defs["accessType"]["oneOf"]} == ENTITY_ACCESS_TYPES


def test_schema_file_is_canonically_formatted() -> None:
    text = REPO_SCHEMA.read_text(encoding="utf-8")
    assert text == json.dumps(json.loads(text), indent=2, ensure_ascii=False) + "\n"


# -- messages ------------------------------------------------------------------------------------


def test_valid_document_has_no_errors() -> None:
    assert errors_of("version: 1\nprojects:\n  - name: P\n    acl: {self: administer}\n") == []


def test_unknown_key_suggests_and_points_at_the_key() -> None:
    error = one_error("version: 1\nprojects:\n  - name: P\n    foldrs: []\n")
    assert error.message == "unknown key 'foldrs' in project"
    assert where(error) == (4, 5, "$.projects[0].foldrs")
    assert error.hint is not None and error.hint.startswith("did you mean 'folders'? allowed keys:")


def test_missing_name() -> None:
    error = one_error("version: 1\nprojects:\n  - description: x\n")
    assert error.message == "project is missing the required key 'name'"
    assert where(error) == (3, 5, "$.projects[0]")


def test_missing_version() -> None:
    error = one_error("projects: []\n")
    assert error.message == "synapse-declare manifest is missing the required key 'version'"


@pytest.mark.parametrize("version", ["2", '"1"', "0"])
def test_wrong_version(version: str) -> None:
    error = one_error(f"version: {version}\n")
    assert error.message == "unsupported manifest version; this synapse-declare reads version: 1"
    assert error.hint == "write `version: 1`"
    assert where(error) == (1, 10, "$.version")


def test_unknown_permission_level_lists_the_levels() -> None:
    error = one_error("version: 1\nprojects:\n  - name: P\n    acl:\n      team:X: admin\n")
    assert error.message == "'admin' is not a valid permission level"
    assert where(error) == (5, 15, "$.projects[0].acl['team:X']")
    assert error.hint is not None
    assert error.hint.startswith("did you mean 'administer'? allowed: view (Can view: READ), ")
    for level in ("view", "download", "edit", "edit_delete", "administer"):
        assert f"{level} (" in error.hint
    assert error.hint.endswith("or a list of access types such as [READ, DOWNLOAD]")


def test_unknown_access_type_points_at_the_item() -> None:
    error = one_error('version: 1\nprojects:\n  - name: P\n    acl:\n      "1": [READ, DOWNLOD]\n')
    assert error.message == "'DOWNLOD' is not a valid access type"
    assert where(error) == (5, 19, "$.projects[0].acl['1'][1]")
    assert error.hint is not None and error.hint.startswith("did you mean 'DOWNLOAD'? allowed: ")


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [("alice", "'user:alice' or 'team:alice'"), ("public", "'PUBLIC'"), ("group:x", None)],
)
def test_bad_principal_syntax_points_at_the_key(key: str, suggestion: str | None) -> None:
    error = one_error(f"version: 1\nprojects:\n  - name: P\n    acl:\n      {key}: view\n")
    assert error.message.startswith(f"bad principal syntax {key!r}")
    assert where(error)[:2] == (5, 7)
    assert error.hint is not None
    assert "self, user:NAME, team:NAME, PUBLIC, AUTHENTICATED_USERS" in error.hint
    if suggestion:
        assert error.hint.startswith(f"did you mean {suggestion}?")
    else:
        assert not error.hint.startswith("did you mean")


def test_project_acl_inherit_is_explained() -> None:
    error = one_error("version: 1\nprojects:\n  - name: P\n    acl: inherit\n")
    assert error.message == "a project always has its own ACL; `acl: inherit` is only for folders"
    assert where(error) == (4, 10, "$.projects[0].acl")


def test_folder_acl_must_be_inherit_or_mapping() -> None:
    error = one_error(
        "version: 1\nprojects:\n  - name: P\n    folders:\n"
        "      - name: F\n        acl: inherited\n"
    )
    assert error.message == "expected 'inherit', got the text 'inherited'"
    assert where(error) == (6, 14, "$.projects[0].folders[0].acl")


def test_number_where_text_is_expected_suggests_quoting() -> None:
    error = one_error("version: 1\nprojects:\n  - name: 2024\n")
    assert error.message == "expected text, got the number 2024"
    assert error.hint == 'quote the value to make it text: "2024"'


def test_invalid_name_lists_allowed_characters() -> None:
    error = one_error("version: 1\nprojects:\n  - name: a/b\n")
    assert error.message == (
        "invalid Synapse name 'a/b': Synapse names may only contain letters, numbers, spaces, "
        "and the characters , _ . - + ( ) '"
    )


def test_annotation_key_and_value_errors() -> None:
    errors = errors_of(
        "version: 1\nprojects:\n  - name: P\n    annotations:\n"
        '      "bad key": 1\n      empty:\n      none: []\n      typed: {type: integer, value: 1}\n'
    )
    messages = [(where(e)[:2], e.message) for e in sorted(errors, key=where)]
    assert messages == [
        (
            (5, 7),
            "invalid annotation key 'bad key': annotation keys may only contain letters, "
            "numbers, '_', '.' and ','",
        ),
        (
            (6, 13),
            "an annotation value must be text, a number, true/false, a list of those, or "
            "{type: ..., value: ...}",
        ),
        ((7, 13), "the list is empty"),
        ((8, 21), "'integer' is not a valid annotation type"),
    ]


def test_markdown_and_markdown_file_together() -> None:
    error = one_error(
        "version: 1\nprojects:\n  - name: P\n    wiki:\n"
        "      markdown: x\n      markdown_file: x.md\n"
    )
    assert error.message == "a wiki page takes either markdown or markdown_file, not both"
    assert where(error) == (5, 7, "$.projects[0].wiki")


def test_wiki_subpage_needs_a_title() -> None:
    error = one_error(
        "version: 1\nprojects:\n  - name: P\n    wiki:\n      pages:\n        - markdown: x\n"
    )
    assert error.message == "wiki page is missing the required key 'title'"


def test_storage_reference_and_location_shapes() -> None:
    errors = errors_of(
        "version: 1\nstorage_locations:\n  s3: {type: s3}\n  bad name: {type: synapse_s3}\n"
        "projects:\n  - name: P\n    storage: [s3, s3]\n"
        "    migrate_existing: {to: s3, versions: some}\n"
    )
    assert [e.message for e in sorted(errors, key=where)] == [
        "'s3' is not a valid storage location type",
        "invalid storage location name 'bad name': storage location names start with a letter or "
        "digit and contain only letters, digits, '_', '.' and '-'",
        "the list contains the same value twice",
        "'some' is not a valid value",
    ]


def test_all_errors_of_a_document_are_reported() -> None:
    errors = errors_of(
        "version: 1\nprojects:\n  - name: A\n    x: 1\n  - name: B\n    acl: {bob: view}\n  - {}\n"
    )
    assert [where(e)[0] for e in sorted(errors, key=where)] == [4, 6, 7]


def test_best_match_comes_first_then_by_relevance() -> None:
    errors = errors_of(
        "version: 1\nprojects:\n  - name: P\n"
        "    folders:\n      - name: F\n        acl:\n          team:X: admin\n    bogus: 1\n"
    )
    doc = load_text(
        "version: 1\nprojects:\n  - name: P\n"
        "    folders:\n      - name: F\n        acl:\n          team:X: admin\n    bogus: 1\n",
        "m.yaml",
    )
    best = best_match(validator().iter_errors(doc.data))
    assert best is not None
    assert errors[0].location is not None
    # Not position order: best_match prefers the shallower error, the unknown key.
    assert best.validator == "additionalProperties"
    assert format_json_path(tuple(best.absolute_path)) == "$.projects[0]"
    assert [where(e)[2] for e in errors] == [
        "$.projects[0].bogus",
        "$.projects[0].folders[0].acl['team:X']",
    ]


def test_wheel_ships_the_schema_where_the_loader_looks() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    force = config["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert force["schemas"] == "synapse_declare/schemas"
    assert SCHEMA_RESOURCE == "schemas/manifest.schema.json"
    packaged = resources.files("synapse_declare").joinpath(SCHEMA_RESOURCE)
    if packaged.is_file():  # installed from a wheel: the copy must be byte-equal
        assert packaged.read_bytes() == REPO_SCHEMA.read_bytes()
