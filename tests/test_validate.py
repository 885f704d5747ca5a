"""Offline validation end to end: examples, semantic checks, the model, and JSON diagnostics."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from synapse_declare.errors import ManifestError, ManifestErrors
from synapse_declare.manifest import YamlTimestamp
from synapse_declare.model import (
    ENTITY_ACCESS_TYPES,
    INHERIT,
    PERMISSION_LEVELS,
    AclSpec,
    AnnotationType,
    AnnotationValue,
    EntityKind,
    Manifest,
    PrincipalKind,
    PrincipalRef,
    build_model,
    level_for,
    parse_principal,
)
from synapse_declare.schema import validator
from synapse_declare.validate import (
    ValidationReport,
    diagnostics_to_json,
    load_manifest,
    validate_paths,
)

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
MODELINE = "# yaml-language-server: $schema=../../schemas/manifest.schema.json"


def write(tmp_path: Path, text: str, name: str = "m.yaml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def project(body: str = "", name: str = "P") -> str:
    """A one-project manifest; ``body`` is indented under the project (4 spaces)."""
    lines = "".join(f"    {line}\n" for line in body.splitlines())
    return f"version: 1\nprojects:\n  - name: {name}\n{lines}"


def errors_in(tmp_path: Path, text: str) -> list[ManifestError]:
    report = validate_paths(write(tmp_path, text))
    assert report.manifest is None
    return list(report.errors)


def one(tmp_path: Path, text: str) -> ManifestError:
    errors = errors_in(tmp_path, text)
    assert len(errors) == 1, [str(e) for e in errors]
    return errors[0]


def pos(error: ManifestError) -> tuple[int, int, str]:
    assert error.location is not None
    return error.location.line, error.location.column, error.location.json_path


def manifest_of(tmp_path: Path, text: str) -> Manifest:
    return load_manifest(write(tmp_path, text))


# -- examples ------------------------------------------------------------------------------------


def example_files() -> list[Path]:
    return sorted(EXAMPLES.rglob("*.yaml")) + sorted(EXAMPLES.rglob("*.yml"))


def test_there_are_examples() -> None:
    names = {p.relative_to(EXAMPLES).as_posix() for p in example_files()}
    assert "quickstart/quickstart.yaml" in names
    assert len([n for n in names if n.startswith("multi-file/")]) in (2, 3)


@pytest.mark.parametrize("path", example_files(), ids=lambda p: p.relative_to(EXAMPLES).as_posix())
def test_every_example_starts_with_the_modeline(path: Path) -> None:
    first_line = path.read_text(encoding="utf-8").splitlines()[0]
    assert first_line == MODELINE
    assert (path.parent / "../../schemas/manifest.schema.json").resolve().is_file()


@pytest.mark.parametrize("target", ["quickstart/quickstart.yaml", "multi-file", "quickstart"])
def test_examples_validate(target: str) -> None:
    report = validate_paths(EXAMPLES / target)
    assert report.errors == ()
    assert report.ok and report.manifest is not None


@pytest.mark.parametrize(
    "directory", sorted(p for p in EXAMPLES.iterdir() if p.is_dir()), ids=lambda p: p.name
)
def test_every_example_directory_validates_without_warnings(directory: Path) -> None:
    """Each examples/ directory is a manifest a new user validates first: clean, no warnings."""
    report = validate_paths(directory)
    assert report.errors == (), [str(e) for e in report.errors]
    assert report.warnings == (), [str(w) for w in report.warnings]
    assert report.ok and report.manifest is not None


def test_quickstart_uses_only_principals_that_always_exist() -> None:
    manifest = load_manifest(EXAMPLES / "quickstart" / "quickstart.yaml")
    always = {PrincipalKind.SELF, PrincipalKind.PUBLIC, PrincipalKind.AUTHENTICATED_USERS}
    kinds = set()
    for spec in manifest.walk():
        if isinstance(spec.acl, AclSpec):
            kinds |= {e.principal.kind for e in spec.acl.entries}
    assert kinds <= always | {PrincipalKind.ID}


def test_quickstart_covers_the_features_it_demonstrates() -> None:
    manifest = load_manifest(EXAMPLES / "quickstart" / "quickstart.yaml")
    (proj,) = manifest.projects
    assert proj.name == "synapse-declare quickstart"
    assert isinstance(proj.acl, AclSpec)
    assert any(
        e.principal.kind is PrincipalKind.SELF and e.level == "administer" for e in proj.acl.entries
    )
    assert proj.annotations is not None
    assert {v.type for v in proj.annotations.values()} == set(AnnotationType)
    assert proj.wiki is not None and len(proj.wiki.pages) == 2
    assert proj.wiki.markdown_source == "wikis/home.md" and proj.wiki.markdown.startswith("# ")
    sources = [p.markdown_source for p in proj.wiki.pages]
    assert None in sources and any(s and s.endswith(".md") for s in sources)
    folders = list(manifest.walk())[1:]
    assert any(f.acl is INHERIT for f in folders)
    assert any(isinstance(f.acl, AclSpec) for f in folders)
    assert any(f.folders for f in proj.folders)


# -- semantic errors -----------------------------------------------------------------------------


def test_duplicate_folder_names_are_case_sensitive(tmp_path: Path) -> None:
    error = one(
        tmp_path,
        project("folders:\n  - name: Raw\n  - name: raw\n  - name: ' Raw '\n"),
    )
    assert pos(error) == (7, 15, "$.projects[0].folders[2].name")
    assert error.message == (
        f"duplicate folder name 'Raw' in project 'P' (also defined at {tmp_path / 'm.yaml'}:5:15)"
    )


def test_duplicate_project_across_files_cites_both(tmp_path: Path) -> None:
    write(tmp_path, "version: 1\nprojects:\n  - name: Same\n", "a.yaml")
    write(tmp_path, "version: 1\n\nprojects:\n  - name: Other\n  - name: Same\n", "b.yaml")
    report = validate_paths(tmp_path)
    (error,) = report.errors
    assert error.location is not None
    assert (Path(error.location.file).name, error.location.line, error.location.column) == (
        "b.yaml",
        5,
        11,
    )
    assert error.location.json_path == "$.projects[1].name"
    assert re.search(r"also defined at .*a\.yaml:3:11\)$", error.message)


def test_errors_are_collected_across_files(tmp_path: Path) -> None:
    write(tmp_path, "version: 1\nprojects:\n  - name: A\n    acl: {self: admin}\n", "a.yaml")
    write(tmp_path, "version: 1\nversion: 1\n", "b.yaml")
    write(tmp_path, project("annotations: {d: 2024-01-01}", name="C"), "c.yaml")
    report = validate_paths(tmp_path)
    assert [Path(e.location.file).name for e in report.errors if e.location] == [
        "a.yaml",
        "b.yaml",
        "c.yaml",
    ]


def test_a_bad_character_in_a_name_is_named_in_the_hint(tmp_path: Path) -> None:
    error = one(tmp_path, project("folders:\n  - name: Raw/Data\n"))
    assert error.message.startswith("invalid Synapse name 'Raw/Data': Synapse names may only")
    assert error.hint == "remove or replace '/'"
    assert pos(error) == (5, 15, "$.projects[0].folders[0].name")


def test_a_mapping_where_a_list_belongs_says_how_to_write_a_list(tmp_path: Path) -> None:
    error = one(tmp_path, project("folders:\n  name: A\n"))
    assert error.message == "expected a list, got a mapping"
    assert error.hint == "write a list: each entry on its own line starting with `- `"
    assert pos(error) == (5, 7, "$.projects[0].folders")


def test_a_list_where_a_mapping_belongs_says_to_drop_the_dashes(tmp_path: Path) -> None:
    error = one(tmp_path, project("annotations:\n  - stage: raw\n"))
    assert error.message == "expected a mapping (key: value), got a list"
    assert error.hint == "write `key: value` lines here, without a leading `- `"


@pytest.mark.parametrize(
    ("text", "where", "message", "hint"),
    [
        (
            "version: 1\nprojects:\n  - name: P\n    folders:\n      - name: A\n     - name: B\n",
            (6, 6),
            "invalid YAML: expected the end of an indented block, but found a list item ('- ') "
            "(in the 'key: value' lines starting at line 3)",
            "this line is indented differently from the entries it belongs with: give it the "
            "same number of spaces as its siblings",
        ),
        (
            'version: 1\nprojects:\n  - name: "P\n',
            (4, 1),
            "invalid YAML: found unexpected end of the file (while reading quoted text at line 3)",
            "a quote opened there is never closed: add the closing quote",
        ),
        (
            "version: 1\nprojects: [\n",
            (3, 1),
            "invalid YAML: expected a value, but found the end of the file (while reading a [ ] "
            "or { } value at line 3)",
            "a [ or { above is never closed: add the closing ] or }",
        ),
        (
            "version: 1\n---\nversion: 1\n",
            (2, 1),
            "invalid YAML: found another document (expected a single document in the file at "
            "line 1)",
            "put one document per file (remove '---' separators) or split the file",
        ),
    ],
    ids=["indentation", "unclosed quote", "unclosed bracket", "two documents"],
)
def test_yaml_syntax_errors_speak_the_authors_words(
    tmp_path: Path, text: str, where: tuple[int, int], message: str, hint: str
) -> None:
    """PyYAML's token names (`<block end>`, `<block sequence start>`) are for parser authors."""
    error = one(tmp_path, text)
    assert (error.message, error.hint) == (message, hint)
    assert pos(error)[:2] == where
    assert "<" not in str(error)


def test_yes_where_a_boolean_belongs_says_only_true_and_false_are(tmp_path: Path) -> None:
    errors = errors_in(tmp_path, project('prune: yes\nfolders:\n  - {name: A, protect: "false"}\n'))
    by_path = {pos(e)[2]: e for e in errors}
    prune = by_path["$.projects[0].prune"]
    assert prune.message == "expected true, false or 'with-files', got the text 'yes'"
    assert pos(prune)[:2] == (4, 12)  # the `prune:` value, not the project's line
    assert prune.hint == (
        "only true and false, unquoted, are booleans in a manifest: write `prune: true` or "
        "`prune: false`, or `prune: with-files`"
    )
    protect = by_path["$.projects[0].folders[0].protect"]
    assert protect.hint == (
        "only true and false, unquoted, are booleans in a manifest: write `protect: true` or "
        "`protect: false`"
    )
    # A keyword that is not an alternative to a boolean keeps its own hint.
    acl = one(tmp_path, project("folders:\n  - {name: A, acl: yes}\n"))
    assert (acl.message, acl.hint) == (
        "expected 'inherit', got the text 'yes'",
        "write `acl: inherit`",
    )


def test_a_missing_team_or_user_prefix_is_suggested(tmp_path: Path) -> None:
    team = one(tmp_path, "version: 1\npolicies: {require_admin_team: DCC Admins}\nprojects: []\n")
    assert team.hint == "did you mean 'team:DCC Admins'?"
    member = one(tmp_path, "version: 1\nteams:\n  - {name: T, managers: [self], members: [jdoe]}\n")
    assert member.message.startswith("invalid team member 'jdoe'")
    assert member.hint == "did you mean 'user:jdoe'?"


def test_a_mistyped_keyword_principal_is_suggested_as_the_keyword(tmp_path: Path) -> None:
    """PUBLIK is PUBLIC misspelled, not a user called PUBLIK."""
    error = one(
        tmp_path, "version: 1\nprojects:\n  - name: P\n    acl: {self: administer, PUBLIK: view}\n"
    )
    assert error.message.startswith("bad principal syntax 'PUBLIK'")
    assert error.hint is not None and error.hint.startswith("did you mean 'PUBLIC'?")
    raw = {"version": 1, "projects": [{"name": "P", "acl": {"AUTHENTICATED_USER": "view"}}]}
    with pytest.raises(ManifestErrors) as info:
        build_model(raw)
    (model_error,) = info.value.errors
    assert model_error.hint is not None
    assert model_error.hint.startswith("did you mean 'AUTHENTICATED_USERS'?")


def test_another_tools_yaml_in_the_directory_is_one_error(tmp_path: Path) -> None:
    """The emulator's users file beside the manifests: one error saying what it is, not one
    per key it lacks or has."""
    write(tmp_path, project(), "m.yaml")
    users = write(tmp_path, "users:\n  - {userName: alice, token: t}\nteams: []\n", "users.yaml")
    report = validate_paths(tmp_path)
    (error,) = report.errors
    assert error.location is not None and Path(error.location.file) == users
    assert (error.location.line, error.location.column) == (1, 1)
    assert error.message == (
        "not a synapse-declare manifest: it has no `version: 1` and its top-level key 'users' "
        "is not a manifest key"
    )
    assert error.hint is not None and "keep other YAML" in error.hint
    # A manifest that only forgot `version:` still gets the schema's own message.
    (missing,) = errors_in(tmp_path / "other", "projects: []\n")
    assert missing.message == "synapse-declare manifest is missing the required key 'version'"


def test_a_public_only_under_path_one_typo_from_a_declared_folder_is_warned(
    tmp_path: Path,
) -> None:
    text = (
        "version: 1\npolicies:\n  public_only_under: [P/Relases, P/Elsewhere]\n"
        "projects:\n  - name: P\n    folders: [{name: Releases}]\n"
    )
    report = validate_paths(write(tmp_path, text))
    assert report.errors == () and report.manifest is not None
    (warning,) = report.warnings  # P/Elsewhere is near nothing: an undeclared folder is fine
    assert warning.message == "public_only_under: 'P/Relases' is not a path this manifest declares"
    assert warning.hint.startswith("did you mean 'P/Releases'?")
    assert warning.location is not None
    assert (warning.location.line, warning.location.column) == (3, 23)


def test_an_empty_name_is_one_problem(tmp_path: Path) -> None:
    error = one(tmp_path, project("folders:\n  - name: ''\n"))
    assert (error.message, error.hint) == ("the text is empty", "fill in a value")
    assert str(error).startswith(f"{tmp_path / 'm.yaml'}:5:15: the text is empty (at $.")


def test_name_with_forbidden_characters(tmp_path: Path) -> None:
    doc = {"version": 1, "projects": [{"name": "Tab\tinside"}]}
    with pytest.raises(ManifestErrors) as info:
        build_model(doc)
    (error,) = info.value.errors
    assert error.message == "invalid Synapse name 'Tab\\tinside': character(s) '\\t' not allowed"
    assert error.hint == (
        "names may only contain letters, numbers, spaces, and the characters , _ . - + ( ) '"
    )


def test_names_are_trimmed(tmp_path: Path) -> None:
    manifest = manifest_of(tmp_path, project("folders: [{name: '  Raw  '}]", name="'  P '"))
    assert manifest.projects[0].name == "P"
    assert manifest.projects[0].folders[0].address == "project:P/folder:Raw"


def test_whitespace_only_name(tmp_path: Path) -> None:
    error = one(tmp_path, project(name="'   '"))
    assert error.message == "a name cannot be empty or only whitespace"


@pytest.mark.parametrize(
    ("key", "value", "message", "column"),
    [
        ('"273950"', "view", "permissions cannot be given to the anonymous user (273950)", 7),
        (
            "PUBLIC",
            "download",
            "PUBLIC may only be given view (READ); Synapse rejects any other access for the "
            "public group",
            15,
        ),
        (
            '"273949"',
            "[READ, DOWNLOAD]",
            "273949 may only be given view (READ); Synapse rejects any other access for the "
            "public group",
            17,
        ),
    ],
)
def test_acl_content_rules(tmp_path: Path, key: str, value: str, message: str, column: int) -> None:
    error = one(tmp_path, project(f"acl:\n  self: administer\n  {key}: {value}\n"))
    assert error.message == message
    assert pos(error)[:2] == (6, column)


def test_two_spellings_of_one_principal(tmp_path: Path) -> None:
    errors = errors_in(
        tmp_path,
        project(
            "acl:\n  PUBLIC: view\n  'team:Lab Admins': edit\n  '273949': view\n"
            "  'team:lab-admins': view\n"
        ),
    )
    assert [(pos(e)[:2], e.message.split(" (first")[0]) for e in errors] == [
        ((7, 7), "'273949' and 'PUBLIC' are the same principal"),
        ((8, 7), "'team:lab-admins' and 'team:Lab Admins' are the same principal"),
    ]


def test_bad_principal_from_model_directly() -> None:
    raw = {"version": 1, "projects": [{"name": "P", "acl": {"Public": "view"}}]}
    with pytest.raises(ManifestErrors) as info:
        build_model(raw)
    (error,) = info.value.errors
    assert error.message == "bad principal syntax: 'Public'"
    assert error.hint is not None and error.hint.startswith("did you mean 'PUBLIC'? a principal is")


def test_unknown_level_and_access_type_from_model_directly() -> None:
    raw = {
        "version": 1,
        "projects": [{"name": "P", "acl": {"self": "owner", "user:x": ["READ", "REVIEW"]}}],
    }
    with pytest.raises(ManifestErrors) as info:
        build_model(raw)
    assert [e.message for e in info.value.errors] == [
        "unknown permission level 'owner'",
        "unknown access type 'REVIEW'",
    ]
    assert info.value.errors[0].hint is not None
    assert "view, download, edit, edit_delete, administer" in info.value.errors[0].hint


def test_a_missing_markdown_file_outside_the_folder_is_refused_as_outside(
    tmp_path: Path,
) -> None:
    """`..` out of the folder is the problem whether or not a file is there: not "not found"."""
    error = one(tmp_path, project("wiki:\n  markdown_file: ../../nowhere/home.md\n"))
    assert error.message == (
        "markdown_file '../../nowhere/home.md' points outside the manifest's folder "
        f"{tmp_path.resolve()}"
    )
    assert error.hint is not None and "copy the file next to the manifest" in error.hint
    assert pos(error) == (5, 22, "$.projects[0].wiki.markdown_file")


def test_missing_markdown_file_shows_written_and_resolved_path(tmp_path: Path) -> None:
    error = one(tmp_path, project("wiki:\n  markdown_file: wikis/home.md\n"))
    resolved = (tmp_path / "wikis" / "home.md").resolve()
    assert error.message == f"markdown_file not found: 'wikis/home.md' (resolved to {resolved})"
    assert pos(error) == (5, 22, "$.projects[0].wiki.markdown_file")
    assert error.hint == "markdown_file paths are relative to the manifest file that names them"


def test_markdown_file_is_relative_to_its_own_manifest_file(tmp_path: Path) -> None:
    write(tmp_path, "# Sub\r\nline\r\n", "sub/pages/home.md")
    write(tmp_path, project("wiki: {markdown_file: pages/home.md}"), "sub/m.yaml")
    write(tmp_path, "version: 1\n", "top.yaml")
    manifest = load_manifest(tmp_path)
    wiki = manifest.projects[0].wiki
    assert wiki is not None
    assert wiki.markdown == "# Sub\nline\n"  # CRLF normalised
    assert wiki.markdown_source == "pages/home.md"
    assert wiki.title == ""


def test_both_markdown_and_file_from_model_directly() -> None:
    raw = {
        "version": 1,
        "projects": [{"name": "P", "wiki": {"markdown": "x", "markdown_file": "y"}}],
    }
    with pytest.raises(ManifestErrors) as info:
        build_model(raw)
    assert [e.message for e in info.value.errors] == [
        "a wiki page takes either markdown or markdown_file, not both"
    ]


def test_duplicate_wiki_titles_under_one_parent(tmp_path: Path) -> None:
    error = one(
        tmp_path,
        project(
            "wiki:\n  pages:\n    - title: A\n      pages: [{title: X}]\n"
            "    - title: B\n      pages: [{title: X}]\n    - title: A\n"
        ),
    )
    assert pos(error) == (10, 18, "$.projects[0].wiki.pages[2].title")
    assert error.message.startswith("duplicate wiki page title 'A' under the same page (also at ")
    assert error.message.endswith("m.yaml:6:18)")


def test_duplicate_yaml_key_is_reported_by_validate(tmp_path: Path) -> None:
    error = one(tmp_path, project("description: a\ndescription: b\n"))
    assert pos(error) == (5, 5, "$.projects[0].description")
    assert error.message.endswith(f"already defined at {tmp_path / 'm.yaml'}:4:5")


@pytest.mark.parametrize(
    ("value", "message", "hint_start"),
    [
        (
            "2024-05-01T10:00:00",
            "annotation 'when': timestamp '2024-05-01T10:00:00' has no timezone",
            "add Z (UTC) or an offset such as +02:00 (2024-05-01T10:00:00Z), or quote it",
        ),
        (
            "2024-05-01",
            "annotation 'when': bare date '2024-05-01' is ambiguous as a timestamp (no time and "
            "no timezone)",
            "write 2024-05-01T00:00:00Z for a UTC timestamp, or quote it",
        ),
        (
            "2024-02-30",
            "annotation 'when': '2024-02-30' looks like a date but is not a valid date/time",
            'fix the date, or quote it ("2024-02-30")',
        ),
    ],
)
def test_ambiguous_timestamps(tmp_path: Path, value: str, message: str, hint_start: str) -> None:
    error = one(tmp_path, project(f"annotations:\n  when: {value}\n"))
    assert error.message == message
    assert error.hint is not None and error.hint.startswith(hint_start)
    assert pos(error) == (5, 13, "$.projects[0].annotations.when")


def test_non_homogeneous_list(tmp_path: Path) -> None:
    error = one(tmp_path, project("annotations:\n  mixed: [1, 2, 2.5]\n"))
    assert error.message == "annotation 'mixed' mixes value types: DOUBLE after LONG"
    assert pos(error) == (5, 21, "$.projects[0].annotations.mixed[2]")


def test_wrong_version(tmp_path: Path) -> None:
    error = one(tmp_path, "version: 2\n")
    assert pos(error) == (1, 10, "$.version")


def test_wrong_version_from_model_directly() -> None:
    with pytest.raises(ManifestErrors) as info:
        build_model({"version": True})
    assert [e.message for e in info.value.errors] == ["unsupported manifest version True"]


def test_annotation_limits(tmp_path: Path) -> None:
    text_500 = "x" * 499 + "é"  # 500 UTF-16 units: allowed
    emoji = "x" * 499 + "😀"  # 501 UTF-16 units (Java counts a surrogate pair as 2)
    errors = errors_in(
        tmp_path,
        project(
            f"annotations:\n  ok: '{text_500}'\n  long: '{emoji}'\n"
            f"  big: {2**63}\n  _AccessRequirementIds: 1\n"
        ),
    )
    assert [(pos(e)[:2], e.message) for e in errors] == [
        (
            (6, 13),
            "annotation 'long' has 501 characters of text in total; Synapse allows at most 500 "
            "per key",
        ),
        (
            (7, 12),
            f"annotation 'big': {2**63} does not fit in a Synapse LONG (64-bit signed integer)",
        ),
        ((8, 7), "annotation key '_AccessRequirementIds' is reserved by Synapse"),
    ]


def test_unknown_storage_location(tmp_path: Path) -> None:
    errors = errors_in(
        tmp_path,
        "version: 1\nstorage_locations:\n  lab: {type: external_s3, bucket: lab-data}\nprojects:\n"
        "  - name: P\n    storage: [lab, labb]\n    migrate_existing: {to: other}\n",
    )
    assert [(pos(e), e.message, e.hint) for e in errors] == [
        (
            (6, 20, "$.projects[0].storage[1]"),
            "unknown storage location 'labb'",
            "did you mean 'lab'? defined storage locations: lab",
        ),
        (
            (7, 28, "$.projects[0].migrate_existing.to"),
            "unknown storage location 'other'",
            "defined storage locations: lab",
        ),
    ]


def test_missing_path_is_reported(tmp_path: Path) -> None:
    report = validate_paths(tmp_path / "nope.yaml")
    (error,) = report.errors
    assert error.message == f"manifest not found: {tmp_path / 'nope.yaml'}"
    assert error.location is None


def test_load_manifest_raises_all_errors(tmp_path: Path) -> None:
    write(tmp_path, project("acl: {bob: view}\nfolders: [{name: a}, {name: a}]\n"))
    with pytest.raises(ManifestErrors) as info:
        load_manifest(tmp_path / "m.yaml")
    assert len(info.value.errors) == 1  # schema errors stop the semantic checks of that file
    assert "bad principal syntax" in str(info.value)


# -- the model -----------------------------------------------------------------------------------


def test_annotation_wire_forms(tmp_path: Path) -> None:
    manifest = manifest_of(
        tmp_path,
        project(
            "annotations:\n"
            "  s: text\n  b: TRUE\n  l: -3\n  d: 1.50\n  e: 1e20\n  n: .nan\n"
            "  t: 2024-05-01T00:00:00.1239+02:00\n  yes_is_text: yes\n"
            "  tl: {type: long, value: ['+7', 8]}\n  td: {type: double, value: [3, Infinity]}\n"
            "  tb: {type: boolean, value: 'False'}\n  ts: {type: string, value: [1, true, 2.5]}\n"
            "  tt: {type: timestamp, value: [0, '1970-01-01T00:00:01+00:00']}\n"
        ),
    )
    ann = manifest.projects[0].annotations
    assert ann is not None
    got = {k: (v.type.value, v.values) for k, v in ann.items()}
    assert got == {
        "s": ("STRING", ("text",)),
        "b": ("BOOLEAN", ("true",)),
        "l": ("LONG", ("-3",)),
        "d": ("DOUBLE", ("1.5",)),
        "e": ("DOUBLE", ("1e+20",)),
        "n": ("DOUBLE", ("NaN",)),
        "t": (
            "TIMESTAMP_MS",
            (str(int(dt.datetime(2024, 4, 30, 22, tzinfo=dt.UTC).timestamp()) * 1000 + 123),),
        ),
        "yes_is_text": ("STRING", ("yes",)),
        "tl": ("LONG", ("7", "8")),
        "td": ("DOUBLE", ("3.0", "Infinity")),
        "tb": ("BOOLEAN", ("false",)),
        "ts": ("STRING", ("1", "true", "2.5")),
        "tt": ("TIMESTAMP_MS", ("0", "1000")),
    }


def test_principals() -> None:
    assert parse_principal("PUBLIC") == PrincipalRef(PrincipalKind.PUBLIC, id=273949)
    assert parse_principal("AUTHENTICATED_USERS").id == 273948
    assert parse_principal("007") == PrincipalRef(PrincipalKind.ID, id=7)
    assert parse_principal("team: Lab Admins") == PrincipalRef(
        PrincipalKind.TEAM, name="Lab Admins"
    )
    for text in [
        "self",
        "PUBLIC",
        "AUTHENTICATED_USERS",
        "3350396",
        "user:jdoe",
        "team:Lab Admins",
    ]:
        assert str(parse_principal(text)) == text
    for bad in ["user:", "team:  ", "group:x", "Self", "", "-1"]:
        with pytest.raises(ValueError):
            parse_principal(bad)


def test_permission_levels() -> None:
    assert PERMISSION_LEVELS["view"] == {"READ"}
    assert PERMISSION_LEVELS["download"] == {"READ", "DOWNLOAD"}
    assert PERMISSION_LEVELS["edit"] == {"CREATE", "READ", "DOWNLOAD", "UPDATE"}
    assert PERMISSION_LEVELS["edit_delete"] == {"CREATE", "READ", "DOWNLOAD", "UPDATE", "DELETE"}
    assert PERMISSION_LEVELS["administer"] == {
        "READ", "DOWNLOAD", "UPDATE", "DELETE", "CREATE", "CHANGE_PERMISSIONS", "CHANGE_SETTINGS",
        "MODERATE",
    }  # fmt: skip
    assert all(access <= ENTITY_ACCESS_TYPES for access in PERMISSION_LEVELS.values())
    for level, access in PERMISSION_LEVELS.items():
        assert level_for(access) == level
    assert level_for(frozenset({"READ", "UPDATE"})) is None
    assert level_for(frozenset()) is None


def test_acl_entries_keep_level_for_display(tmp_path: Path) -> None:
    manifest = manifest_of(
        tmp_path, project("acl:\n  self: administer\n  '3350396': [DOWNLOAD, READ]\n")
    )
    acl = manifest.projects[0].acl
    assert isinstance(acl, AclSpec)
    assert [(str(e.principal), e.level, sorted(e.access)) for e in acl.entries] == [
        ("self", "administer", sorted(PERMISSION_LEVELS["administer"])),
        ("3350396", None, ["DOWNLOAD", "READ"]),
    ]
    assert (acl.location.line, acl.location.column) == (5, 7)


def test_walk_order_addresses_and_kinds(tmp_path: Path) -> None:
    manifest = manifest_of(
        tmp_path,
        "version: 1\nprojects:\n  - name: A\n    folders:\n      - name: x\n"
        "        folders: [{name: y}]\n      - name: z\n  - name: B\n",
    )
    assert [(s.kind, s.address) for s in manifest.walk()] == [
        (EntityKind.PROJECT, "project:A"),
        (EntityKind.FOLDER, "project:A/folder:x"),
        (EntityKind.FOLDER, "project:A/folder:x/folder:y"),
        (EntityKind.FOLDER, "project:A/folder:z"),
        (EntityKind.PROJECT, "project:B"),
    ]


def test_unmanaged_fields_are_none(tmp_path: Path) -> None:
    spec = manifest_of(tmp_path, project()).projects[0]
    assert (spec.description, spec.annotations, spec.acl, spec.wiki) == (None, None, None, None)
    assert (spec.storage, spec.migrate_existing, spec.alias) == (None, None, None)


def test_model_is_frozen_and_hashable(tmp_path: Path) -> None:
    manifest = load_manifest(EXAMPLES / "multi-file")
    spec = manifest.projects[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "x"  # type: ignore[misc]
    assert spec.annotations is not None
    with pytest.raises(TypeError):
        spec.annotations["new"] = AnnotationValue(AnnotationType.STRING, ("x",))  # type: ignore[index]
    assert hash(manifest) == hash(load_manifest(EXAMPLES / "multi-file"))
    assert manifest.storage_locations["lab-sts"].sts_enabled is True
    raw = manifest.projects[0].folders[0]
    assert raw.storage == ("lab-bucket",)
    assert raw.migrate_existing is not None and raw.migrate_existing.to == "lab-bucket"


def test_digest_ignores_file_order_key_order_and_layout(tmp_path: Path) -> None:
    a = write(
        tmp_path,
        "version: 1\nprojects:\n  - name: A\n    annotations: {x: 1, y: [a, b]}\n"
        "    folders: [{name: f}, {name: g}]\n    acl: {self: administer, PUBLIC: view}\n",
        "one/a.yaml",
    )
    b = write(tmp_path, "version: 1\nprojects: [{name: B}]\n", "one/b.yaml")
    c = write(
        tmp_path,
        "version: 1\nprojects:\n  - acl:\n      PUBLIC: view\n      self: administer\n"
        "    folders:\n      - name: g\n      - name: f\n"
        "    annotations:\n      y: [a, b]\n      x: 1\n    name: A\n",
        "two/z.yaml",
    )
    d = write(tmp_path, "# B\nversion: 1\nprojects:\n- name: B\n", "two/a.yaml")
    first = load_manifest([a, b]).digest
    assert re.fullmatch(r"[0-9a-f]{64}", first)
    assert load_manifest([d, c]).digest == first
    changed = write(tmp_path, "version: 1\nprojects: [{name: B, description: x}]\n", "b2.yaml")
    assert load_manifest([a, changed]).digest != first
    reordered_values = write(
        tmp_path, (tmp_path / "one/a.yaml").read_text().replace("[a, b]", "[b, a]"), "a2.yaml"
    )
    assert load_manifest([reordered_values, b]).digest != first


def test_files_lists_every_file_read(tmp_path: Path) -> None:
    write(tmp_path, "version: 1\nstorage_locations: {s: {type: synapse_s3}}\n", "a.yaml")
    write(tmp_path, project(), "b.yaml")
    manifest = load_manifest(tmp_path)
    assert [Path(f).name for f in manifest.files] == ["a.yaml", "b.yaml"]


# -- diagnostics ---------------------------------------------------------------------------------


def test_diagnostics_to_json(tmp_path: Path) -> None:
    report = validate_paths([write(tmp_path, project("acl: {self: admin}\n")), tmp_path / "x.yaml"])
    out = diagnostics_to_json(report.errors)
    json.dumps(out)
    assert out == [
        {
            "severity": "error",
            "summary": f"manifest not found: {tmp_path / 'x.yaml'}",
            "detail": f"check the path (resolved to {(tmp_path / 'x.yaml').resolve()})",
            "file": None,
            "line": None,
            "column": None,
            "json_path": None,
        },
        {
            "severity": "error",
            "summary": "'admin' is not a valid permission level",
            "detail": report.errors[1].hint,
            "file": str(tmp_path / "m.yaml"),
            "line": 4,
            "column": 17,
            "json_path": "$.projects[0].acl.self",
        },
    ]
    assert diagnostics_to_json([ManifestErrors(list(report.errors))]) == out


def test_report_str_format(tmp_path: Path) -> None:
    report: ValidationReport = validate_paths(write(tmp_path, project("acl: inherit\n")))
    assert str(report.errors[0]) == (
        f"{tmp_path / 'm.yaml'}:4:10: a project always has its own ACL; `acl: inherit` is only "
        "for folders (at $.projects[0].acl)\n  hint: list the project's ACL entries (keep "
        "`self: administer`), or omit acl to leave it unmanaged"
    )


# -- property: schema-valid documents build a model or fail with ManifestError -------------------

NAMES = st.text(alphabet="aB1 ,_.-+()'\t/", min_size=1, max_size=12)
SCALARS = st.one_of(
    st.text(max_size=30),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.builds(
        YamlTimestamp,
        st.sampled_from(
            ["2024-05-01", "2024-05-01T00:00:00Z", "2024-05-01T00:00:00", "2024-13-45"]
        ),
        st.sampled_from(
            [
                None,
                dt.date(2024, 5, 1),
                dt.datetime(2024, 5, 1),
                dt.datetime(2024, 5, 1, tzinfo=dt.UTC),
            ]
        ),
    ),
)
ANNOTATION = st.one_of(
    SCALARS,
    st.lists(SCALARS, min_size=1, max_size=4),
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["string", "long", "double", "boolean", "timestamp"]),
            "value": st.one_of(SCALARS, st.lists(SCALARS, min_size=1, max_size=3)),
        }
    ),
)
PRINCIPALS = st.sampled_from(
    ["self", "PUBLIC", "AUTHENTICATED_USERS", "273949", "273950", "273948", "1", "user:a",
     "user:A", "team:x y", "team:xy"]
)  # fmt: skip
PERMISSIONS = st.one_of(
    st.sampled_from(list(PERMISSION_LEVELS)),
    st.lists(st.sampled_from(sorted(ENTITY_ACCESS_TYPES)), min_size=1, max_size=3, unique=True),
)
ACL = st.dictionaries(PRINCIPALS, PERMISSIONS, max_size=4)
WIKI_TITLES = st.sampled_from(["A", "B", "a"])


def wiki_pages(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    page: dict[str, st.SearchStrategy[Any]] = {"title": WIKI_TITLES}
    optional: dict[str, st.SearchStrategy[Any]] = {
        "markdown": st.text(max_size=10),
        "markdown_file": st.sampled_from(["missing.md", "../nope.md"]),
    }
    if depth > 0:
        optional["pages"] = st.lists(wiki_pages(depth - 1), max_size=2)
    return st.fixed_dictionaries(page, optional=optional)


def containers(depth: int, *, is_project: bool) -> st.SearchStrategy[dict[str, Any]]:
    optional: dict[str, st.SearchStrategy[Any]] = {
        "description": st.text(max_size=20),
        "annotations": st.dictionaries(
            st.sampled_from(["a", "b", "_accessRequirementIds", "c.d"]), ANNOTATION, max_size=3
        ),
        "acl": ACL if is_project else st.one_of(st.just("inherit"), ACL),
        "wiki": wiki_pages(1),
        "storage": st.one_of(st.sampled_from(["s3", "gone"]), st.just(["s3"])),
        "migrate_existing": st.fixed_dictionaries(
            {"to": st.sampled_from(["s3", "gone"])},
            optional={"versions": st.sampled_from(["latest", "all", "new"])},
        ),
    }
    if is_project:
        optional["alias"] = st.sampled_from(["a_1", "b"])
    if depth > 0:
        optional["folders"] = st.lists(containers(depth - 1, is_project=False), max_size=3)
    return st.fixed_dictionaries({"name": NAMES}, optional=optional)


DOCUMENTS = st.fixed_dictionaries(
    {"version": st.just(1)},
    optional={
        "projects": st.lists(containers(2, is_project=True), max_size=3),
        "storage_locations": st.just({"s3": {"type": "synapse_s3"}}),
    },
)


@pytest.mark.property
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DOCUMENTS)
def test_schema_valid_documents_build_or_raise_manifest_errors(doc: dict[str, Any]) -> None:
    assume(validator().is_valid(doc))
    try:
        manifest = build_model(doc)
    except ManifestErrors as exc:
        assert exc.errors
        assert all(isinstance(e, ManifestError) and e.location for e in exc.errors)
        return
    assert len(list(manifest.walk())) == sum(1 for _ in manifest.walk())
    assert re.fullmatch(r"[0-9a-f]{64}", manifest.digest)
    assert build_model(doc).digest == manifest.digest
    hash(manifest)


STORAGE_HEADER = (
    "version: 1\nstorage_locations:\n"
    "  lab: {type: external_s3, bucket: lab-data}\n"
    "  sts: {type: external_s3, bucket: lab-data, base_key: p, sts_enabled: true}\n"
    "  default: {type: synapse_s3}\n"
)


def test_storage_location_requirements(tmp_path: Path) -> None:
    errors = errors_in(
        tmp_path,
        "version: 1\nstorage_locations:\n"
        "  a: {type: external_s3}\n"
        "  b: {type: external_s3, bucket: Bad_Bucket}\n"
        "  c: {type: synapse_s3, base_key: x}\n"
        "  d: {type: external_object_store, bucket: objects}\n"
        "  e: {type: external_google_cloud, bucket: gcs-data, sts_enabled: true}\n"
        "projects: []\n",
    )
    assert [(pos(e)[:2], e.message) for e in errors] == [
        ((3, 6), "an external_s3 storage location needs a bucket"),
        ((4, 34), "invalid bucket name 'Bad_Bucket'"),
        ((5, 35), "base_key cannot be set on a synapse_s3 location: Synapse chooses it"),
        ((6, 6), "an external_object_store location needs an endpoint_url"),
        (
            (7, 67),
            "STS is only available for synapse_s3 and external_s3 locations, not "
            "external_google_cloud",
        ),
    ]


def test_sts_placement_rules(tmp_path: Path) -> None:
    errors = errors_in(
        tmp_path,
        STORAGE_HEADER + "projects:\n"
        "  - name: P\n"
        "    storage: sts\n"
        "    folders:\n"
        "      - name: A\n"
        "        storage: [sts, lab]\n"
        "      - name: B\n"
        "        storage: sts\n"
        "        folders:\n"
        "          - name: C\n"
        "            storage: lab\n",
    )
    assert [(pos(e)[:2], e.message) for e in errors] == [
        ((8, 14), "STS-enabled storage location 'sts' cannot be a project's upload destination"),
        (
            (11, 18),
            "STS-enabled storage location 'sts' must be the folder's only upload destination",
        ),
        ((16, 22), "cannot set upload destinations inside an STS-enabled folder ('B' uses 'sts')"),
    ]


def test_migration_destination_rules(tmp_path: Path) -> None:
    errors = errors_in(
        tmp_path,
        STORAGE_HEADER + "projects:\n"
        "  - name: P\n"
        "    migrate_existing: {to: default}\n"
        "    folders:\n"
        "      - name: A\n"
        "        migrate_existing: {to: sts}\n"
        "      - name: B\n"
        "        migrate_existing: {to: lab, versions: all}\n",
    )
    assert [(pos(e)[:2], e.message) for e in errors] == [
        (
            (8, 28),
            "'default' is Synapse's default storage (id 1), which Synapse does not let users copy "
            "files into",
        ),
        ((11, 32), "cannot migrate existing files into STS-enabled location 'sts'"),
    ]
    assert "move_files_from" in (errors[1].hint or "")


def test_move_files_from_rules(tmp_path: Path) -> None:
    errors = errors_in(
        tmp_path,
        STORAGE_HEADER + "projects:\n"
        "  - name: P\n"
        "    folders:\n"
        "      - name: Raw Data\n"
        "      - name: Raw Data (STS)\n"
        "        storage: sts\n"
        "        move_files_from: Raw Data\n"
        "      - name: Plain\n"
        "        storage: lab\n"
        "        move_files_from: Raw Data\n"
        "      - name: Both\n"
        "        storage: sts\n"
        "        move_files_from: Raw Data\n"
        "        migrate_existing: {to: lab}\n"
        "      - name: Odd\n"
        "        storage: sts\n"
        "        move_files_from: 'a|b'\n",
    )
    assert [(pos(e)[:2], e.message) for e in errors] == [
        (
            (15, 26),
            "move_files_from moves files into this folder's STS-enabled storage, but the folder "
            "has none",
        ),
        ((18, 26), "use either move_files_from or migrate_existing on a folder, not both"),
        ((22, 26), "invalid folder path 'a|b'"),
    ]


def test_move_files_from_is_in_the_model_and_digest(tmp_path: Path) -> None:
    text = (
        STORAGE_HEADER + "projects:\n  - name: P\n    folders:\n"
        "      - name: S\n        storage: sts\n        move_files_from: ' Raw Data / RNAseq '\n"
    )
    manifest = load_manifest(write(tmp_path, text))
    assert manifest.projects[0].folders[0].move_files_from == "Raw Data/RNAseq"
    other = load_manifest(write(tmp_path, text.replace("RNAseq", "WGS"), "n.yaml"))
    assert other.digest != manifest.digest
