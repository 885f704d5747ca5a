"""Fan-out (templates, variables, for_each, expand): pure tests of the expansion, no emulator.

The golden ``tests/fanout/six-centers.expanded.yaml`` is what ``expand examples/fan-out`` must
print; ``tests/fanout/six-centers.handwritten.yaml`` is the same six centers written out by hand,
which must build the identical model. Regenerate the first after an intended change with
``UPDATE_GOLDEN=1 pytest tests/test_fanout.py`` and review the diff.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from synapse_declare.cli import main
from synapse_declare.model import canonical_form
from synapse_declare.schema import validator
from synapse_declare.validate import ValidationReport, validate_paths

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "fan-out"
GOLDEN = Path(__file__).parent / "fanout"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def _canonical(manifest: Any) -> dict[str, Any]:
    return canonical_form(manifest.projects, manifest.storage_locations)


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


def check(root: Path, **kwargs: Any) -> ValidationReport:
    return validate_paths([root], environ=kwargs.pop("environ", {}), **kwargs)


def messages(report: ValidationReport) -> list[str]:
    return [str(e) for e in report.errors]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ---------------------------------------------------------------------------------------------
# The six-center example


def test_example_expands_to_the_golden(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "expand", EXAMPLE)
    assert code == 0, err
    golden = GOLDEN / "six-centers.expanded.yaml"
    if UPDATE:
        golden.write_text(out, encoding="utf-8")
    assert out == golden.read_text(encoding="utf-8")
    assert "warning" not in err


def test_example_builds_the_same_model_as_the_handwritten_manifest() -> None:
    fanned = check(EXAMPLE)
    by_hand = check(GOLDEN / "six-centers.handwritten.yaml")
    assert fanned.ok, messages(fanned)
    assert by_hand.ok, messages(by_hand)
    assert fanned.manifest is not None and by_hand.manifest is not None
    assert len(fanned.manifest.projects) == 6
    assert _canonical(fanned.manifest) == _canonical(by_hand.manifest)


def test_the_expanded_output_is_itself_a_valid_manifest_with_the_same_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "expand", EXAMPLE)
    assert code == 0
    (tmp_path / "expanded.yaml").write_text(out, encoding="utf-8")
    again = check(tmp_path / "expanded.yaml")
    assert again.ok, messages(again)
    original = check(EXAMPLE)
    assert again.manifest is not None and original.manifest is not None
    assert _canonical(again.manifest) == _canonical(original.manifest)


def test_every_example_file_is_valid_against_the_published_schema() -> None:
    """Editors (yaml-language-server) check the raw files, templates and use items included."""
    from synapse_declare.manifest import load_text

    for path in sorted(EXAMPLE.glob("*.yaml")):
        doc = load_text(path.read_text(encoding="utf-8"), str(path))
        problems = [e.message for e in validator().iter_errors(doc.data)]
        assert problems == [], (path.name, problems)


def test_instances_map_every_address_to_its_fan_out_key() -> None:
    report = check(EXAMPLE)
    assert report.expansion is not None
    instances = report.expansion.instances
    assert [i.label for i in instances["project:HTAN Gamma"]] == ["center-project[Gamma]"]
    assert [i.label for i in instances["project:HTAN Gamma/folder:Raw Data"]] == [
        "center-project[Gamma]",
        "standard-folders[Gamma]",
    ]
    assert len(instances) == 6 * 4


# ---------------------------------------------------------------------------------------------
# Variables


BASE = """
version: 1
variables:
  program: HTAN
  count: 3
  sts: true
projects:
  - name: ${var.program} Portal
    annotations:
      n: ${var.count}
      label: n=${var.count}, sts=${var.sts}
      literal: $${var.program}
    wiki:
      title: Home
      markdown: "${toc} ${var.program}"
"""


def test_variables_substitute_and_a_whole_reference_keeps_its_type(tmp_path: Path) -> None:
    report = check(write(tmp_path, {"m.yaml": BASE}))
    assert report.ok, messages(report)
    assert report.manifest is not None
    project = report.manifest.projects[0]
    assert project.name == "HTAN Portal"
    annotations = project.annotations
    assert annotations is not None
    assert annotations["n"].type.value == "LONG" and annotations["n"].values == ("3",)
    assert annotations["label"].values == ("n=3, sts=true",)
    assert annotations["literal"].values == ("${var.program}",)
    assert project.wiki is not None
    # Synapse's own widgets use ${...} too: left alone.
    assert project.wiki.markdown == "${toc} HTAN"
    assert [str(w) for w in report.warnings] == []


def test_overrides_win_in_order_cli_then_environment_then_default(tmp_path: Path) -> None:
    root = write(tmp_path, {"m.yaml": BASE})
    env = {"SYNAPSE_DECLARE_VAR_program": "GENIE", "SYNAPSE_DECLARE_VAR_unrelated": "x"}
    from_env = check(root, environ=env)
    assert from_env.manifest is not None
    assert from_env.manifest.projects[0].name == "GENIE Portal"
    from_cli = check(root, environ=env, variables={"program": "NF", "count": "7"})
    assert from_cli.manifest is not None
    project = from_cli.manifest.projects[0]
    assert project.name == "NF Portal"
    assert project.annotations is not None
    assert project.annotations["n"].values == ("7",)


def test_an_override_must_match_the_defaults_type(tmp_path: Path) -> None:
    report = check(write(tmp_path, {"m.yaml": BASE}), variables={"count": "many"})
    assert messages(report) == [
        f"{tmp_path / 'm.yaml'}:4:3: --var count: 'many' is not an integer (at $.variables.count)"
        "\n  hint: the default of 'count' is an integer, so its overrides must be too"
    ]


def test_an_override_of_an_undeclared_variable_is_an_error(tmp_path: Path) -> None:
    report = check(write(tmp_path, {"m.yaml": BASE}), variables={"progam": "x"})
    assert len(report.errors) == 1
    assert "no variable 'progam' is declared (did you mean 'program'?)" in messages(report)[0]


def test_a_required_variable_without_a_value_is_located(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {"m.yaml": "version: 1\nvariables:\n  bucket:\nprojects:\n  - name: P ${var.bucket}\n"},
    )
    report = check(root)
    assert len(report.errors) == 1
    error = report.errors[0]
    assert error.location is not None and (error.location.line, error.location.column) == (3, 3)
    assert "variable 'bucket' has no value" in error.message
    assert "--var bucket=VALUE" in str(error.hint)
    assert check(root, variables={"bucket": "b1"}).ok


def test_undefined_reference_is_located_with_did_you_mean(tmp_path: Path) -> None:
    root = write(tmp_path, {"m.yaml": "version: 1\nprojects:\n  - name: P ${var.progrm}\n"})
    report = check(root)
    (error,) = report.errors
    assert error.location is not None and (error.location.line, error.location.column) == (3, 11)
    assert error.message == "${var.progrm} is not defined in this manifest"


def test_bare_reference_to_a_known_name_and_malformed_references(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "m.yaml": """
            version: 1
            variables: {program: HTAN}
            projects:
              - name: P ${program}
              - name: Q ${var.bad name}
            """
        },
    )
    errors = messages(check(root))
    assert len(errors) == 2
    assert "${program} is not a reference" in errors[0] and "${var.program}" in errors[0]
    assert "malformed reference" in errors[1]


def test_unused_variables_are_warnings(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "m.yaml": "version: 1\nvariables: {used: A, spare: B}\n"
            "projects:\n  - name: ${var.used}\n"
        },
    )
    report = check(root)
    assert report.ok
    assert [w.message for w in report.warnings] == ["variable 'spare' is never used"]


def test_a_variable_defined_in_two_files_is_an_error(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "a.yaml": "version: 1\nvariables: {x: 1}\nprojects:\n  - name: P${var.x}\n",
            "b.yaml": "version: 1\nvariables: {x: 2}\n",
        },
    )
    (error,) = check(root).errors
    assert "variable 'x' is defined twice (first at" in error.message
    assert error.location is not None and error.location.file.endswith("b.yaml")


# ---------------------------------------------------------------------------------------------
# Templates


TEMPLATES = """
version: 1
templates:
  lab:
    parameters:
      lab:
      team: {default: Curators}
    project:
      name: Lab ${var.lab}
      acl:
        team:${var.team}: edit
      folders:
        - use: tree
          with: {prefix: "${var.lab}"}
  tree:
    parameters:
      prefix:
    folders:
      - name: ${var.prefix} Raw
        annotations: {stage: raw}
      - name: ${var.prefix} Results
"""


def test_templates_in_another_file_with_nested_uses(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "templates.yaml": TEMPLATES,
            "projects.yaml": """
            version: 1
            projects:
              - use: lab
                with: {lab: Alpha}
              - name: Plain
              - use: lab
                for_each:
                  - {lab: Beta, team: Lab Admins}
                  - {lab: Gamma}
            """,
        },
    )
    report = check(root)
    assert report.ok, messages(report)
    assert report.manifest is not None
    assert [p.name for p in report.manifest.projects] == [
        "Lab Alpha",
        "Plain",
        "Lab Beta",
        "Lab Gamma",
    ]
    beta = report.manifest.projects[2]
    assert [f.name for f in beta.folders] == ["Beta Raw", "Beta Results"]
    assert beta.acl is not None and [str(e.principal) for e in beta.acl.entries] == [
        "team:Lab Admins"
    ]
    assert report.expansion is not None
    assert [i.label for i in report.expansion.instances["project:Lab Gamma/folder:Gamma Raw"]] == [
        "lab[Gamma]",
        "tree[Gamma]",
    ]
    assert "project:Plain" not in report.expansion.instances


def test_an_error_inside_a_template_points_at_the_template_line_and_the_use(
    tmp_path: Path,
) -> None:
    root = write(
        tmp_path,
        {
            "templates.yaml": TEMPLATES.replace("edit\n", "edit_everything\n"),
            "projects.yaml": "version: 1\nprojects:\n  - use: lab\n    with: {lab: Alpha}\n",
        },
    )
    (error,) = check(root).errors
    text = str(error)
    first_line = text.splitlines()[0]
    assert first_line.startswith(f"{root / 'templates.yaml'}:10:27: ")
    assert "'edit_everything' is not a valid permission level" in first_line
    assert f"in template 'lab' instantiated at {root / 'projects.yaml'}:3:10 as lab[Alpha]" in text


def test_an_error_in_a_nested_template_names_every_use(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "templates.yaml": TEMPLATES.replace("${var.prefix} Results", "${var.prefx} Results"),
            "projects.yaml": "version: 1\nprojects:\n  - use: lab\n    with: {lab: Alpha}\n",
        },
    )
    (error,) = check(root).errors
    lines = str(error).splitlines()
    assert "${var.prefx} is not defined in template 'tree' (did you mean 'prefix'?)" in lines[0]
    assert lines[1].strip().startswith("in template 'tree' instantiated at")
    assert "templates.yaml:12:16 as tree[Alpha]" in lines[1]
    assert lines[2].strip().startswith("in template 'lab' instantiated at")


def test_missing_and_unknown_parameters_are_located_at_the_use(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "templates.yaml": TEMPLATES,
            "projects.yaml": """
            version: 1
            projects:
              - use: lab
                with: {team: Curators}
              - use: lab
                with: {lab: X, teem: Curators}
            """,
        },
    )
    errors = check(root).errors
    assert [(e.location.line if e.location else 0) for e in errors] == [4, 6]
    assert "template 'lab' needs the parameter lab" in errors[0].message
    assert "template 'lab' has no parameter 'teem' (did you mean 'team'?)" in errors[1].message


def test_unknown_template_wrong_place_and_cycles(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "m.yaml": """
            version: 1
            templates:
              loop:
                folders:
                  - use: loop
              proj:
                project: {name: P}
            projects:
              - use: loops
              - use: loop
              - name: Q
                folders:
                  - use: proj
                  - use: loop
            """
        },
    )
    errors = messages(check(root))
    assert any("no template named 'loops' (did you mean 'loop'?)" in e for e in errors)
    assert any(
        "template 'loop' declares a list of folders, which cannot stand in projects:" in e
        for e in errors
    )
    assert any(
        "template 'proj' declares a project, which cannot stand in folders:" in e for e in errors
    )
    assert any("template 'loop' uses itself (loop → loop)" in e for e in errors)


def test_duplicate_fan_out_keys_are_refused(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "templates.yaml": TEMPLATES,
            "p.yaml": "version: 1\nprojects:\n  - use: lab\n    for_each: [{lab: A}, {lab: A}]\n",
        },
    )
    errors = messages(check(root))
    assert len(errors) == 1 and "instantiated twice with the key 'A'" in errors[0]


def test_unused_templates_and_parameters_are_warnings(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "m.yaml": """
            version: 1
            templates:
              used:
                parameters: {a: , b: {default: 1}}
                project: {name: "P ${var.a}"}
              spare:
                folder: {name: F}
            projects:
              - use: used
                with: {a: x}
            """
        },
    )
    report = check(root)
    assert report.ok, messages(report)
    assert sorted(w.message for w in report.warnings) == [
        "parameter 'b' of template 'used' is never used",
        "template 'spare' is never used",
    ]


# ---------------------------------------------------------------------------------------------
# for_each tables


def test_for_each_from_csv_and_yaml_files(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "templates.yaml": TEMPLATES,
            "labs.csv": "lab,team\nAlpha,Curators\n\nBeta,Lab Admins\n",
            "more.yaml": "- {lab: Gamma}\n",
            "p.yaml": "version: 1\nprojects:\n  - use: lab\n    for_each: labs.csv\n"
            "  - use: lab\n    for_each: more.yaml\n",
        },
    )
    # more.yaml lies in the manifest's directory, but it is read as a table, not as a document.
    report = check(root)
    assert report.ok, messages(report)
    assert report.manifest is not None
    assert [p.name for p in report.manifest.projects] == ["Lab Alpha", "Lab Beta", "Lab Gamma"]


def test_csv_problems_point_into_the_table(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "templates.yaml": TEMPLATES,
            "labs.csv": "lab,team\nAlpha,Curators\nBeta,Lab Admins,extra\n",
            "p.yaml": "version: 1\nprojects:\n  - use: lab\n    for_each: labs.csv\n",
        },
    )
    (error,) = check(root).errors
    assert error.location is not None
    assert error.location.file.endswith("labs.csv") and error.location.line == 3
    assert error.message == "this row has 3 fields; the header has 2 (lab, team)"
    assert error.hint == "quote fields that contain commas"
    assert str(error).startswith(f"{error.location}: this row") and "(at $)" not in str(error)


def test_a_short_csv_row_says_to_fill_every_column(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "templates.yaml": TEMPLATES,
            "labs.csv": "lab,team\nAlpha,Curators\nBeta\n",
            "p.yaml": "version: 1\nprojects:\n  - use: lab\n    for_each: labs.csv\n",
        },
    )
    (error,) = check(root).errors
    assert error.location is not None and error.location.line == 3
    assert error.message == "this row has 1 field; the header has 2 (lab, team)"
    assert error.hint == "give every column a value, empty ones as nothing between commas (a,,c)"


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("/etc/passwd", "is an absolute path"),
        ("../outside.csv", "outside the manifest's folder"),
        ("fifo.csv", "is a FIFO (named pipe)"),
        ("missing.csv", "for_each not found: 'missing.csv'"),
        ("big.csv", "is larger than"),
    ],
)
def test_for_each_files_are_confined_regular_and_bounded(
    tmp_path: Path, reference: str, expected: str
) -> None:
    root = write(
        tmp_path / "m",
        {
            "templates.yaml": TEMPLATES,
            "p.yaml": f"version: 1\nprojects:\n  - use: lab\n    for_each: {reference}\n",
        },
    )
    (tmp_path / "outside.csv").write_text("lab\nX\n", encoding="utf-8")
    os.mkfifo(root / "fifo.csv")  # opening it for reading would block: it must not be opened
    with open(root / "big.csv", "wb") as handle:
        handle.truncate(6 * 1024 * 1024)
    (error,) = check(root).errors
    assert expected in error.message
    assert error.location is not None and error.location.line == 4


def test_a_symlink_out_of_the_manifest_directory_is_refused(tmp_path: Path) -> None:
    root = write(
        tmp_path / "m",
        {
            "templates.yaml": TEMPLATES,
            "p.yaml": "version: 1\nprojects:\n  - use: lab\n    for_each: labs.csv\n",
        },
    )
    (tmp_path / "secret.csv").write_text("lab\nX\n", encoding="utf-8")
    (root / "labs.csv").symlink_to(tmp_path / "secret.csv")
    (error,) = check(root).errors
    assert "outside the manifest's folder" in error.message


def test_runaway_for_each_is_bounded(tmp_path: Path) -> None:
    rows = "\n".join(f"L{i}" for i in range(10_001))
    root = write(
        tmp_path,
        {
            "templates.yaml": TEMPLATES,
            "labs.csv": f"lab\n{rows}\n",
            "p.yaml": "version: 1\nprojects:\n  - use: lab\n    for_each: labs.csv\n",
        },
    )
    (error,) = check(root).errors
    assert "at most 10000 are allowed" in error.message


# ---------------------------------------------------------------------------------------------
# CLI


def test_validate_prints_warnings_and_json_diagnostics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write(
        tmp_path, {"m.yaml": "version: 1\nvariables: {spare: 1}\nprojects:\n  - name: P\n"}
    )
    code, out, err = run_cli(capsys, "validate", root)
    assert code == 0 and out.startswith("ok:")
    assert "warning:" in err and "variable 'spare' is never used" in err
    code, out, _ = run_cli(capsys, "validate", "--json", root)
    import json

    document = json.loads(out)
    assert document["valid"] is True
    assert [d["severity"] for d in document["diagnostics"]] == ["warning"]


def test_cli_var_flag_and_a_malformed_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write(
        tmp_path, {"m.yaml": "version: 1\nvariables: {p: A}\nprojects:\n  - name: ${var.p}\n"}
    )
    code, out, _ = run_cli(capsys, "expand", root, "--var", "p=Zed", "--format", "json")
    assert code == 0 and '"name": "Zed"' in out
    code, _, err = run_cli(capsys, "expand", root, "--var", "p")
    assert code == 1 and "--var 'p' is not NAME=VALUE" in err
    assert "Traceback" not in err


def test_an_unquoted_reference_in_flow_style_gets_a_quoting_hint(tmp_path: Path) -> None:
    root = write(tmp_path, {"m.yaml": "version: 1\nprojects:\n  - {name: P ${var.x}}\n"})
    (error,) = check(root).errors
    assert error.message.startswith("invalid YAML")
    assert (
        error.hint == 'inside { } or [ ], quote text that contains ${var.…}: {name: "P ${var.x}"}'
    )


def test_a_csv_row_with_an_empty_key_is_refused_at_its_line(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "templates.yaml": TEMPLATES,
            "labs.csv": "lab,team\nAlpha,Curators\n,Lab Admins\n",
            "p.yaml": "version: 1\nprojects:\n  - use: lab\n    for_each: labs.csv\n",
        },
    )
    (error,) = check(root).errors
    assert error.location is not None
    assert error.location.file.endswith("labs.csv") and error.location.line == 3
    assert error.message == (
        "this instantiation of template 'lab' has an empty fan-out key (parameter 'lab')"
    )
    assert error.hint is not None and "lab[KEY]" in error.hint
