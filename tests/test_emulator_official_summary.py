"""The official-suite summariser (tests/official_suite/summarize.py): in-scope totals, and a run
fails when its list of known failures is not exact."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

SUITE = Path(__file__).parent / "official_suite"

JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
<testcase classname="tests.integration.synapseclient.integration_test" name="test_ok"/>
<testcase classname="tests.integration.synapseclient.integration_test" name="test_net">
  <failure message="ProxyError"/></testcase>
<testcase classname="tests.integration.synapseclient.models.async.test_x_async.TestAcl"
  name="test_acl[Table]"><failure message="Unknown entity type"/></testcase>
<testcase classname="tests.integration.synapseclient.core.upload.test_sftp_upload" name="test_s">
  <skipped message="SFTP_HOST"/></testcase>
{extra}
</testsuite></testsuites>"""

LISTING = (
    "# comment\n"
    "tests/integration/synapseclient/integration_test.py::test_net\tinternet: a host\n"
    "tests/integration/synapseclient/models/async/test_x_async.py::TestAcl::test_acl[Table]"
    "\tout of scope: TableEntity\n"
)


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("spc_summarize", SUITE / "summarize.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(tmp_path: Path, extra: str, listing: str = LISTING) -> int:
    junit = tmp_path / "junit.xml"
    junit.write_text(JUNIT.format(extra=extra), encoding="utf-8")
    expected = tmp_path / "expected.txt"
    expected.write_text(listing, encoding="utf-8")
    status: int = load().main(junit, expected)
    return status


def test_exact_list_passes_and_counts_in_scope_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(tmp_path, "") == 0
    out = capsys.readouterr().out
    assert (
        "selected files: 4 tests; out of scope: 1; in scope: 3 — 1 passed, 1 failed, 1 skipped"
        in out
    )
    assert (
        "in scope, cannot pass here: tests/integration/synapseclient/integration_test.py::test_net"
        " (internet: a host)" in out
    )
    assert "test_acl[Table]" not in out


def test_unlisted_failure_fails_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    extra = (
        '<testcase classname="tests.integration.synapseutils.test_synapseutils_copy" '
        'name="test_copy"><error message="404"/></testcase>'
    )
    assert run(tmp_path, extra) == 1
    assert (
        "UNEXPECTED FAILURE: tests/integration/synapseutils/test_synapseutils_copy.py::test_copy"
        in capsys.readouterr().out
    )


def test_listed_test_that_passes_fails_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listing = (
        LISTING + "tests/integration/synapseclient/integration_test.py::test_ok\tinternet: x\n"
    )
    assert run(tmp_path, "", listing) == 1
    assert (
        "LISTED BUT PASSED (update expected.txt): "
        "tests/integration/synapseclient/integration_test.py::test_ok" in capsys.readouterr().out
    )


def test_the_committed_list_names_each_test_once_with_a_known_cause() -> None:
    causes = load().expected(SUITE / "expected.txt")
    lines = [
        line
        for line in (SUITE / "expected.txt").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert len(causes) == len(lines)
    allowed = ("out of scope: ", "internet: ", "portal host: ", "gcs: ")
    assert all(cause.startswith(allowed) for cause in causes.values())
