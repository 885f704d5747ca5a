"""Issue 8, offline: files a manifest may read are confined and bounded; endpoint URLs are
checked by validate; plain values whose number form loses what was written are warned about.

These run validate in-process and through the real CLI (no network).
"""

from __future__ import annotations

import argparse
import io
import os
import threading
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from synapse_declare.cli import build_parser, main
from synapse_declare.errors import ManifestError
from synapse_declare.files import MAX_MARKDOWN_BYTES
from synapse_declare.validate import validate_paths


def write(root: Path, text: str, name: str = "m.yaml") -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def wiki_manifest(root: Path, markdown_file: str, name: str = "site/m.yaml") -> Path:
    return write(
        root,
        f"version: 1\nprojects:\n  - name: P\n    wiki:\n      markdown_file: {markdown_file!r}\n",
        name,
    )


def the_error(path: Path) -> ManifestError:
    report = validate_paths(path)
    assert report.manifest is None
    assert len(report.errors) == 1, [str(e) for e in report.errors]
    error = report.errors[0]
    assert error.location is not None
    assert (error.location.line, error.location.column) == (5, 22)
    assert error.location.json_path == "$.projects[0].wiki.markdown_file"
    assert error.hint
    return error


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_an_absolute_path_is_refused(tmp_path: Path) -> None:
    error = the_error(wiki_manifest(tmp_path, "/proc/self/environ"))
    assert error.message == "markdown_file '/proc/self/environ' is an absolute path"
    assert "relative to the manifest file" in str(error.hint)


def test_dot_dot_out_of_the_manifest_folder_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "secret\n", "secret.md")
    error = the_error(wiki_manifest(tmp_path, "../secret.md"))
    assert "outside the manifest's folder" in error.message
    assert "secret" not in error.hint.split("refused")[0]  # the hint is about the rule
    # ... while `..` that stays inside the folder is fine.
    write(tmp_path, "ok\n", "site/pages/home.md")
    inside = wiki_manifest(tmp_path, "pages/../pages/home.md")
    assert validate_paths(inside).ok


def test_a_symlink_out_of_the_tree_is_refused_a_symlink_inside_is_fine(tmp_path: Path) -> None:
    outside = write(tmp_path, "TOKEN=abc\n", "elsewhere/env.md")
    link = tmp_path / "site" / "home.md"
    link.parent.mkdir(parents=True)
    link.symlink_to(outside)
    error = the_error(wiki_manifest(tmp_path, "home.md"))
    assert "outside the manifest's folder" in error.message
    assert "(through a symlink)" in error.message
    target = write(tmp_path, "# Home\n", "site/real.md")
    (tmp_path / "site" / "alias.md").symlink_to(target)
    report = validate_paths(wiki_manifest(tmp_path, "alias.md"))
    assert report.ok and report.manifest is not None
    wiki = report.manifest.projects[0].wiki
    assert wiki is not None and wiki.markdown == "# Home\n"


def test_a_device_behind_a_symlink_is_refused_without_reading(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "zero.md").symlink_to("/dev/zero")
    error = the_error(wiki_manifest(tmp_path, "zero.md"))
    assert "outside the manifest's folder" in error.message


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_refused_and_never_waited_on(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    os.mkfifo(tmp_path / "site" / "pipe.md")
    outcome: list[ManifestError] = []
    worker = threading.Thread(
        target=lambda: outcome.append(the_error(wiki_manifest(tmp_path, "pipe.md"))), daemon=True
    )
    worker.start()
    worker.join(timeout=20)
    assert not worker.is_alive(), "validate blocked on a FIFO"
    assert outcome[0].message.endswith("is a FIFO (named pipe)")


def test_a_directory_and_an_oversized_file_are_refused(tmp_path: Path) -> None:
    (tmp_path / "site" / "pages").mkdir(parents=True)
    error = the_error(wiki_manifest(tmp_path, "pages"))
    assert error.message.endswith("is a directory")
    big = tmp_path / "site" / "big.md"
    with big.open("wb") as handle:
        handle.truncate(MAX_MARKDOWN_BYTES + 1)  # sparse: costs no disk
    error = the_error(wiki_manifest(tmp_path, "big.md"))
    assert f"is larger than {MAX_MARKDOWN_BYTES} bytes" in error.message
    assert error.hint == "split the page into sub-pages"


def test_the_cli_reports_a_confinement_error_located_with_exit_1(tmp_path: Path) -> None:
    path = wiki_manifest(tmp_path, "/etc/passwd")
    code, out, err = run_cli("validate", str(path))
    assert code == 1 and out == ""
    assert f"{path}:5:22: markdown_file '/etc/passwd' is an absolute path" in err
    assert "root:" not in err  # nothing of the file was read


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "contains whitespace"),
        ("ftp://s3.example.org", "must start with https:// or http://"),
        ("https://", "has no host name"),
        ("http://host:99999", "is not a valid URL"),
        ("https://key:secret@s3.example.org", "contains credentials"),
        ("https://s3.example.org/?x=1", "has a query or fragment"),
    ],
)
def test_malformed_endpoint_urls_are_refused_by_validate(
    tmp_path: Path, url: str, message: str
) -> None:
    path = write(
        tmp_path,
        "version: 1\nstorage_locations:\n  lab:\n    type: external_s3\n    bucket: lab-data\n"
        f"    endpoint_url: {url!r}\n",
    )
    report = validate_paths(path)
    assert [e.location.line if e.location else None for e in report.errors] == [6]
    (error,) = report.errors
    assert message in error.message
    assert "secret" not in str(error)  # credentials in a URL are never echoed
    assert error.location is not None
    assert error.location.json_path == "$.storage_locations.lab.endpoint_url"


def test_a_good_endpoint_url_passes(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "version: 1\nstorage_locations:\n  lab:\n    type: external_s3\n    bucket: lab-data\n"
        "    endpoint_url: http://127.0.0.1:9000\n",
    )
    assert validate_paths(path).ok


def test_lossy_plain_numbers_are_warned_with_the_quoting_fix(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "version: 1\nprojects:\n  - name: P\n    annotations:\n"
        "      zip: 00123\n"
        "      release: 1.10\n"
        "      count: 12\n"
        "      ratio: 0.5\n"
        '      quoted: "00123"\n'
        "      tags: [1.20, 3.5]\n"
        "      text_typed: {type: string, value: 007}\n",
    )
    report = validate_paths(path)
    assert report.ok
    found = {(w.location.line, w.location.column): w for w in report.warnings}
    assert sorted(found) == [(5, 12), (6, 16), (10, 14), (11, 41)]
    zip_warning = found[(5, 12)]
    assert zip_warning.message == (
        "annotation 'zip': 00123 is read as the number 123, which loses how it was written"
    )
    assert zip_warning.hint.startswith('quote it ("00123") to keep it as text')
    assert found[(6, 16)].message.startswith("annotation 'release': 1.10 is read as the number 1.1")
    code, out, err = run_cli("validate", str(path))
    assert code == 0
    assert err.count("warning:") == 4  # each once
    assert f"{path}:5:12: warning: annotation 'zip'" in err
    code, out, _ = run_cli("validate", "--json", str(path))
    assert code == 0
    assert out.count('"severity": "warning"') == 4


def test_public_beyond_view_is_refused_authenticated_users_write_is_warned(tmp_path: Path) -> None:
    refused = write(
        tmp_path,
        "version: 1\nprojects:\n  - name: P\n    acl:\n      self: administer\n"
        "      PUBLIC: download\n",
    )
    report = validate_paths(refused)
    assert [str(e).splitlines()[0] for e in report.errors] == [
        f"{refused}:6:15: PUBLIC may only be given view (READ); Synapse rejects any other access "
        "for the public group (at $.projects[0].acl.PUBLIC)"
    ]
    warned = write(
        tmp_path,
        "version: 1\nprojects:\n  - name: P\n    acl:\n      self: administer\n"
        "      AUTHENTICATED_USERS: edit\n      team:x: download\n",
        "w.yaml",
    )
    report = validate_paths(warned)
    assert report.ok
    (warning,) = report.warnings
    assert (warning.location.line, warning.location.column) == (6, 7)
    assert warning.message.startswith("AUTHENTICATED_USERS is given CREATE, UPDATE: every")
    assert "team:NAME: edit" in warning.hint


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "cannot read --token-file '{path}': No such file or directory"),
        ("", "--token-file '{path}' is empty"),
        ("s3cr3t-part-one\nsecond-line-9z\n", "--token-file '{path}' holds more than one word"),
        ("dir", "--token-file '{path}' is a directory"),
        ("fifo", "--token-file '{path}' is not a regular file"),
    ],
)
def test_token_file_errors_are_whole_and_never_show_the_content(
    tmp_path: Path, content: str | None, expected: str
) -> None:
    # A path ending in "token": the redactor's `token: <value>` rule must not eat the message.
    path = tmp_path / "ci.token"
    if content == "dir":
        path.mkdir()
    elif content == "fifo":
        os.mkfifo(path)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    manifest = write(tmp_path, "version: 1\n")
    code, out, err = run_cli(
        "plan", str(manifest), "--endpoint", "http://127.0.0.1:9", "--token-file", str(path)
    )
    assert code == 1 and out == ""
    assert expected.format(path=path) in err
    assert "***" not in err
    assert "s3cr3t" not in err and "second-line" not in err


def test_a_manifest_given_to_apply_plan_says_what_plan_takes(tmp_path: Path) -> None:
    manifest = write(tmp_path, "version: 1\nprojects: []\n", "m.yaml")
    code, out, err = run_cli("apply", "--plan", str(manifest))
    assert (code, out) == (1, "")
    assert f"{manifest} is not a plan file (invalid JSON:" in err
    assert "hint: --plan takes the file 'synapse-declare plan MANIFEST --out FILE' wrote" in err
    assert "Traceback" not in err


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[Any]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append(((*prefix, name), sub))
                found.extend(_commands(sub, (*prefix, name)))
    return found


def test_every_command_and_sub_command_says_what_it_does_in_its_help() -> None:
    """A new user's first read is `--help`: every command has a description, not only usage."""
    commands = _commands(build_parser())
    assert {" ".join(c) for c, _ in commands} >= {"show", "schema", "emulator serve", "plan"}
    for command, sub in commands:
        code, out, err = run_cli_exit(*command, "--help")
        assert code == 0 and err == "", command
        assert sub.description and sub.description.split()[0] in out, command
    code, out, _ = run_cli_exit("plan", "--help")
    assert "remove more than N own ACLs under folders_inherit: strict" in " ".join(out.split())


def run_cli_exit(*argv: str) -> tuple[int, str, str]:
    """``--help`` ends in SystemExit(0): the code argparse exits with, and what it printed."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err), pytest.raises(SystemExit) as info:
        main(list(argv))
    return int(info.value.code or 0), out.getvalue(), err.getvalue()
