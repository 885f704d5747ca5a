"""YAML loading: typing rules, positions, duplicate keys, limits, discovery and merging."""

from __future__ import annotations

import contextlib
import datetime as dt
import math
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synapse_declare import manifest as manifest_module
from synapse_declare.errors import ManifestError, ManifestErrors
from synapse_declare.manifest import (
    MAX_ALIAS_EXPANSIONS,
    MAX_FILE_BYTES,
    LoadedDocument,
    Locator,
    SourceMap,
    YamlTimestamp,
    discover,
    format_json_path,
    load_bytes,
    load_documents,
    load_text,
    merge_documents,
    parse_text,
    read_file,
)


def only_error(text: str) -> ManifestError:
    _, errors = parse_text(text, "m.yaml")
    assert len(errors) == 1, [str(e) for e in errors]
    return errors[0]


# -- scalar typing -------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["true", "True", "TRUE", "tRuE"])
def test_true_in_any_case_is_boolean(text: str) -> None:
    assert load_text(f"v: {text}").data == {"v": True}


@pytest.mark.parametrize("text", ["false", "False", "FALSE", "fAlSe"])
def test_false_in_any_case_is_boolean(text: str) -> None:
    assert load_text(f"v: {text}").data == {"v": False}


@pytest.mark.parametrize("text", ["yes", "no", "on", "off", "Yes", "NO", "On", "OFF", "y", "n"])
def test_yaml11_booleans_stay_text(text: str) -> None:
    value = load_text(f"v: {text}").data["v"]
    assert value == text
    assert type(value) is str


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12", 12),
        ("-7", -7),
        ("012", 12),  # YAML 1.1 would read octal 10
        ("0x1F", 31),
        ("0o17", 15),
        ("1.5", 1.5),
        ("1e3", 1000.0),  # PyYAML's YAML 1.1 would keep this as text
        ("-.inf", float("-inf")),
        ("1:20", "1:20"),  # YAML 1.1 sexagesimal would give 80
        ("1_000", "1_000"),
        ("null", None),
        ("~", None),
        ("", None),
    ],
)
def test_numbers_and_null_follow_yaml_1_2_core(text: str, expected: object) -> None:
    value = load_text(f"v: {text}").data["v"]
    assert value == expected
    assert type(value) is type(expected)


def test_nan() -> None:
    assert math.isnan(load_text("v: .nan").data["v"])


def test_timestamps_are_kept_as_written_text_with_parsed_value() -> None:
    data = load_text(
        "a: 2024-05-01T00:00:00Z\nb: 2024-05-01\nc: 2024-05-01T10:00:00\nd: 2024-13-45"
    ).data
    assert all(isinstance(v, YamlTimestamp) for v in data.values())
    assert data["a"] == "2024-05-01T00:00:00Z"
    assert data["a"].value == dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    assert data["b"].value == dt.date(2024, 5, 1)
    assert data["c"].value == dt.datetime(2024, 5, 1, 10, 0)
    assert data["c"].value.tzinfo is None
    assert data["d"].value is None  # looks like a date but is not one


def test_quoted_values_are_always_text() -> None:
    data = load_text('a: "true"\nb: "12"\nc: "2024-05-01"').data
    assert data == {"a": "true", "b": "12", "c": "2024-05-01"}
    assert not isinstance(data["c"], YamlTimestamp)


# -- positions -----------------------------------------------------------------------------------


def test_every_value_and_key_has_its_position() -> None:
    doc = load_text(
        "version: 1\nprojects:\n  - name: P\n    acl:\n      team:Lab Admins: edit\n", "m.yaml"
    )
    src = doc.source
    assert str(src.locate(("version",))) == "m.yaml:1:10"
    assert str(src.locate(("projects", 0))) == "m.yaml:3:5"
    assert str(src.locate(("projects", 0, "name"))) == "m.yaml:3:11"
    assert str(src.locate(("projects", 0, "acl", "team:Lab Admins"))) == "m.yaml:5:24"
    key = src.locate(("projects", 0, "acl", "team:Lab Admins"), key=True)
    assert (key.line, key.column) == (5, 7)
    assert key.json_path == "$.projects[0].acl['team:Lab Admins']"


def test_missing_path_falls_back_to_nearest_ancestor_but_keeps_its_json_path() -> None:
    doc = load_text("version: 1\nprojects:\n  - name: P\n", "m.yaml")
    loc = doc.source.locate(("projects", 0, "folders", 3))
    assert (loc.line, loc.column) == (3, 5)
    assert loc.json_path == "$.projects[0].folders[3]"


def test_format_json_path() -> None:
    assert format_json_path(()) == "$"
    assert format_json_path(("projects", 0, "acl", "team:A's")) == "$.projects[0].acl['team:A\\'s']"


# -- errors --------------------------------------------------------------------------------------


def test_duplicate_key_cites_both_lines() -> None:
    error = only_error("version: 1\nprojects:\n  - name: A\n    folders: []\n    name: B\n")
    assert error.location is not None
    assert (error.location.line, error.location.column) == (5, 5)
    assert error.location.json_path == "$.projects[0].name"
    assert "duplicate key 'name'" in error.message
    assert error.message == "duplicate key 'name': already defined at m.yaml:3:5"


def test_duplicate_key_keeps_first_value() -> None:
    doc, errors = parse_text("a: 1\na: 2\n")
    assert doc is not None and doc.data == {"a": 1}
    assert len(errors) == 1


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("3350396: edit", "'3350396' is a number"),
        ("true: x", "'true' is a boolean"),
        ("~: x", "'~' is null"),
    ],
)
def test_non_text_keys_are_errors_with_quote_hint(text: str, shown: str) -> None:
    error = only_error(text)
    assert shown in error.message
    assert error.hint is not None and error.hint.startswith('quote the key: "')
    assert error.location is not None and error.location.line == 1


def test_complex_key_is_error() -> None:
    error = only_error("? [a, b]\n: x\n")
    assert "keys must be text" in error.message


@pytest.mark.parametrize(
    "text", ["a: !!binary aGVsbG8=", "a: !custom x", "a: !!set {x}", "a: !!python/name:os.system x"]
)
def test_unsupported_tags(text: str) -> None:
    _, errors = parse_text(text, "m.yaml")
    assert errors
    assert all("tag" in e.message or "invalid YAML" in e.message for e in errors)


def test_invalid_yaml_is_located() -> None:
    error = only_error("version: 1\nprojects:\n  - name: A\n   bad: [\n")
    assert error.message.startswith("invalid YAML")
    assert error.location is not None and error.location.file == "m.yaml"
    assert error.location.line >= 4


def test_tab_indentation_hint() -> None:
    error = only_error("a:\n\tb: 1\n")
    assert error.hint == "YAML does not allow tabs for indentation; use spaces"


def test_empty_file() -> None:
    error = only_error("# only a comment\n")
    assert error.message == "the manifest file is empty"


def test_several_documents_in_one_file() -> None:
    error = only_error("a: 1\n---\nb: 2\n")
    assert "single document" in error.message
    assert error.hint is not None and "one document per file" in error.hint


def test_control_character_is_located() -> None:
    error = only_error("a: 1\nb: x\x01y\n")
    assert error.location is not None
    assert (error.location.line, error.location.column) == (2, 5)


def test_invalid_utf8_is_located() -> None:
    with pytest.raises(ManifestErrors) as info:
        load_bytes(b"a: 1\nb: \xff\n", "m.yaml")
    (error,) = info.value.errors
    assert "not valid UTF-8" in error.message
    assert error.location is not None and (error.location.line, error.location.column) == (2, 4)


def test_utf8_bom_is_accepted() -> None:
    assert load_bytes("\ufeffa: 1".encode()).data == {"a": 1}


def test_alias_bomb_is_refused() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i, name in enumerate("bcdefghij"):
        prev = "abcdefghij"[i]
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    error = only_error("\n".join(lines))
    assert f"more than {MAX_ALIAS_EXPANSIONS} nodes" in error.message


def test_moderate_alias_reuse_is_fine() -> None:
    doc = load_text(
        "acl: &acl {self: administer}\nfolders:\n"
        + "".join(f"  - {{name: f{i}, acl: *acl}}\n" for i in range(200))
    )
    assert doc.data["folders"][199]["acl"] == {"self": "administer"}


def test_recursive_alias_is_refused() -> None:
    error = only_error("a: &a [1, *a]\n")
    assert "recursive YAML alias" in error.message


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    doc, errors = parse_text("a: " + "[" * 5000 + "]" * 5000)
    assert doc is None
    assert len(errors) == 1
    assert "too deep" in errors[0].message or "deeper than" in errors[0].message


def test_merge_keys_with_explicit_override() -> None:
    doc = load_text("base: &b {x: 1, y: 2}\nitem:\n  <<: *b\n  y: 3\n")
    assert doc.data["item"] == {"x": 1, "y": 3}


def test_oversized_file_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    doc, errors = read_file("big.yaml", path)
    assert doc is None
    (error,) = errors
    assert f"the limit is {MAX_FILE_BYTES} bytes" in error.message
    assert error.hint == "split the manifest into several files in one directory"


def test_file_at_the_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    body = b"a: 1\n"
    path.write_bytes(body + b"#" * (MAX_FILE_BYTES - len(body)))
    doc, errors = read_file("ok.yaml", path)
    assert errors == []
    assert doc is not None and doc.data == {"a": 1}


# -- discovery and merging -----------------------------------------------------------------------


def test_discover_directory_recursively_sorted_skipping_hidden(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / ".hidden").mkdir()
    for name in ["b.yaml", "a.yml", "sub/c.yaml", ".hidden/x.yaml", ".dot.yaml", "notes.md"]:
        (tmp_path / name).write_text("version: 1\n")
    found, errors = discover([tmp_path])
    assert errors == []
    assert [Path(d).relative_to(tmp_path).as_posix() for d, _ in found] == [
        "a.yml",
        "b.yaml",
        "sub/c.yaml",
    ]


def test_discover_reads_each_file_once(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("version: 1\n")
    found, errors = discover([tmp_path, tmp_path / "a.yaml"])
    assert len(found) == 1 and errors == []


def test_discover_missing_and_empty(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    found, errors = discover([tmp_path / "nope.yaml", tmp_path / "empty"])
    assert found == []
    assert [e.message.split(":")[0] for e in errors] == [
        "manifest not found",
        "no *.yaml or *.yml files in directory " + str(tmp_path / "empty"),
    ]


def test_load_documents_collects_errors_from_every_file(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("a: 1\na: 2\n")
    (tmp_path / "b.yaml").write_text("b: [\n")
    (tmp_path / "c.yaml").write_text("c: 1\n")
    docs, errors = load_documents([tmp_path])
    assert [d.file.rsplit("/", 1)[-1] for d in docs] == ["a.yaml", "c.yaml"]
    assert sorted(e.location.file.rsplit("/", 1)[-1] for e in errors if e.location) == [
        "a.yaml",
        "b.yaml",
    ]


def _doc(text: str, file: str) -> LoadedDocument:
    return load_text(text, file)


def test_merge_routes_locations_back_to_each_file() -> None:
    a = _doc("version: 1\nprojects:\n  - name: A\n", "a.yaml")
    b = _doc("version: 1\nprojects:\n\n  - name: B\n  - name: C\n", "b.yaml")
    merged, locator, errors = merge_documents([a, b])
    assert errors == []
    assert [p["name"] for p in merged["projects"]] == ["A", "B", "C"]
    loc = locator.locate(("projects", 2, "name"))
    assert (loc.file, loc.line, loc.column, loc.json_path) == (
        "b.yaml",
        5,
        11,
        "$.projects[1].name",
    )
    assert locator.files == ("a.yaml", "b.yaml")


def test_merge_reports_storage_location_defined_twice() -> None:
    a = _doc("version: 1\nstorage_locations:\n  s3: {type: synapse_s3}\n", "a.yaml")
    b = _doc("version: 1\n\nstorage_locations:\n  s3: {type: synapse_s3}\n", "b.yaml")
    _, _, errors = merge_documents([a, b])
    (error,) = errors
    assert error.location is not None and str(error.location) == "b.yaml:4:3"
    assert "a.yaml:3:3" in error.message


def test_locator_without_routes_uses_default_source() -> None:
    src = SourceMap("x.yaml", values={(): (2, 1)})
    assert str(Locator(src).locate(("anything",))) == "x.yaml:2:1"


# -- robustness ----------------------------------------------------------------------------------


@pytest.mark.property
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_random_text_raises_only_manifest_errors(text: str) -> None:
    with contextlib.suppress(ManifestError):
        load_text(text)


@pytest.mark.property
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_manifest_errors(raw: bytes) -> None:
    with contextlib.suppress(ManifestError):
        load_bytes(raw)


YAML_TOKENS = st.sampled_from(
    [
        "a",
        ":",
        " ",
        "\n",
        "  ",
        "- ",
        "[",
        "]",
        "{",
        "}",
        ",",
        "&x ",
        "*x",
        "<<: ",
        "!!str ",
        "!!int ",
        "? ",
        "'",
        '"',
        "#",
        "|",
        ">",
        "---",
        "...",
        "2024-01-01",
        "1.5",
        "true",
        "~",
        "%YAML 1.1\n",
        "\t",
        "!t ",
        "&y ",
        "*y",
    ]
)


@pytest.mark.property
@settings(max_examples=400, deadline=None)
@given(st.lists(YAML_TOKENS, max_size=40).map("".join))
def test_yaml_like_text_raises_only_manifest_errors(text: str) -> None:
    with contextlib.suppress(ManifestError):
        load_text(text)


# -- libyaml -------------------------------------------------------------------------------------

EXAMPLES = Path(__file__).parent.parent / "examples"
LIBYAML_SAMPLE = """\
version: 1
defaults: &d {stage: raw, count: 0x1F, ratio: 1.5e3, flag: TRUE, word: yes, none: ~}
projects:
  - name: "Ünïcode — project"
    annotations:
      <<: *d
      released: 2024-05-01T00:00:00Z
      day: 2024-05-01
      bad_day: 2024-13-45
      big: 012
      inf: -.inf
      text: '1:20'
    folders:
      - {name: A, annotations: *d}
      - name: B
        description: |
          two
          lines
"""


@pytest.mark.skipif(not manifest_module.LIBYAML, reason="PyYAML without libyaml")
@pytest.mark.parametrize(
    "text",
    [
        LIBYAML_SAMPLE,
        *(
            p.read_text(encoding="utf-8")
            for p in sorted((Path(__file__).parent.parent / "examples").rglob("*.yaml"))
        ),
    ],
)
def test_libyaml_gives_the_same_data_and_positions_as_the_python_loader(text: str) -> None:
    """The C parser composes the document; data, value positions and key positions are exactly
    those of the pure-Python loader."""
    fast = manifest_module._compose_fast(text)
    assert fast is not None, "libyaml did not compose the document"
    ours, errors = manifest_module._build(fast[0], fast[1], SourceMap("m.yaml"), "m.yaml")
    loader = manifest_module._Loader(text)
    node = loader.get_single_node()
    theirs, their_errors = manifest_module._build(loader, node, SourceMap("m.yaml"), "m.yaml")
    assert ours is not None and theirs is not None
    assert [str(e) for e in errors] == [str(e) for e in their_errors]
    assert repr(ours.data) == repr(theirs.data)
    assert ours.source.values == theirs.source.values
    assert ours.source.keys == theirs.source.keys
    assert parse_text(text, "m.yaml")[0] is not None


@pytest.mark.parametrize(
    "text",
    ["a: 1\n\tb: 2\n", "a: [1, 2\n", "a: 1\na: 2\n", "x: \x07\n", "---\na: 1\n---\nb: 2\n"],
)
def test_errors_are_the_python_loaders_whichever_parser_runs_first(text: str) -> None:
    """A document libyaml refuses (or that only the Python reader refuses) is parsed again by the
    Python loader, so messages and positions are the ones it has always given."""
    _, errors = parse_text(text, "m.yaml")
    loader = manifest_module._Loader
    try:
        python_node = loader(text).get_single_node()
    except yaml.YAMLError as exc:
        expected = [str(manifest_module._yaml_error("m.yaml", text, exc))]
    else:
        assert python_node is not None
        expected = [
            str(e)
            for e in manifest_module._build(
                loader(text), loader(text).get_single_node(), SourceMap("m.yaml"), "m.yaml"
            )[1]
        ]
    assert [str(e) for e in errors] == expected
    assert errors
