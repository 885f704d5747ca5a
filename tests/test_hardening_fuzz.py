"""Issue 8: random and schema-shaped manifests fed to `validate` in-process never make it crash
(exit 3) or hang — including adversarial file references (devices, FIFOs, /proc, escapes, huge
files) and malformed endpoint URLs. Bounded examples, so it fits CI."""

from __future__ import annotations

import atexit
import functools
import io
import os
import shutil
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synapse_declare.cli import EXIT_BUG, main
from synapse_declare.files import MAX_MARKDOWN_BYTES

pytestmark = pytest.mark.property

FILES = st.sampled_from(
    [
        "home.md",
        "missing.md",
        "../outside.md",
        "/dev/zero",
        "/proc/self/environ",
        "fifo.md",
        "big.md",
        "link-out.md",
        "link-zero.md",
        "loop.md",
        "dir",
        "",
        "a\x00b",
        "C:\\windows\\win.ini",
    ]
)
URLS = st.one_of(
    st.sampled_from(
        [
            "http://127.0.0.1:9000",
            "https://s3.example.org",
            "ftp://x",
            "https://",
            "http://h:99999",
            "https://k:s@h",
            "http://[::1",
            " http://x",
        ]
    ),
    st.text(max_size=30),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["00123", "1.10", "2024-05-01", "2024-05-01T00:00:00", "0x1F", "1_000"]),
)
JSONISH = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
PRINCIPALS = st.sampled_from(
    ["self", "PUBLIC", "AUTHENTICATED_USERS", "user:a", "team:b", "123", "bad key", "user:"]
)
LEVELS = st.one_of(
    st.sampled_from(["view", "download", "edit", "edit_delete", "administer", "owner"]),
    st.lists(st.sampled_from(["READ", "UPDATE", "CHANGE_PERMISSIONS", "NOPE"]), max_size=3),
)


def pages(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    optional: dict[str, st.SearchStrategy[Any]] = {
        "markdown_file": FILES,
        "markdown": st.text(max_size=10),
    }
    if depth:
        optional["pages"] = st.lists(pages(depth - 1), max_size=3)
    return st.fixed_dictionaries({"title": st.sampled_from(["A", "B", "A "])}, optional=optional)


def containers(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    optional: dict[str, st.SearchStrategy[Any]] = {
        "acl": st.one_of(st.just("inherit"), st.dictionaries(PRINCIPALS, LEVELS, max_size=4)),
        "wiki": pages(2),
        "annotations": st.dictionaries(st.sampled_from(["a", "b.c", "x y"]), JSONISH, max_size=3),
        "storage": st.one_of(st.sampled_from(["s3", "sts", "gone"]), st.just(["s3", "sts"])),
        "migrate_existing": st.fixed_dictionaries({"to": st.sampled_from(["s3", "sts"])}),
        "move_files_from": st.sampled_from(["Raw", "", "a/../b"]),
        "description": st.text(max_size=10),
    }
    if depth:
        optional["folders"] = st.lists(containers(depth - 1), max_size=3)
    return st.fixed_dictionaries({"name": st.text(max_size=12)}, optional=optional)


SHAPED = st.fixed_dictionaries(
    {"version": st.sampled_from([1, 1, 1, 2, "1"])},
    optional={
        "projects": st.lists(containers(2), max_size=3),
        "storage_locations": st.fixed_dictionaries(
            {
                "s3": st.fixed_dictionaries(
                    {"type": st.sampled_from(["external_s3", "synapse_s3", "bogus"])},
                    optional={"bucket": st.text(max_size=10), "endpoint_url": URLS},
                ),
                "sts": st.fixed_dictionaries(
                    {"type": st.just("external_s3"), "bucket": st.just("lab-data")},
                    optional={"sts_enabled": st.booleans(), "endpoint_url": URLS},
                ),
            }
        ),
    },
)


@functools.cache
def _world() -> Path:
    """A manifest folder with every adversarial file the strategies name."""
    root = Path(tempfile.mkdtemp(prefix="sd-fuzz-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    site = root / "site"
    site.mkdir()
    (root / "outside.md").write_text("secret\n", encoding="utf-8")
    (site / "home.md").write_text("# Home\n", encoding="utf-8")
    (site / "dir").mkdir()
    with (site / "big.md").open("wb") as handle:
        handle.truncate(MAX_MARKDOWN_BYTES + 10)
    if hasattr(os, "mkfifo"):
        os.mkfifo(site / "fifo.md")
    (site / "link-out.md").symlink_to(root / "outside.md")
    (site / "link-zero.md").symlink_to("/dev/zero")
    (site / "loop.md").symlink_to(site / "loop.md")
    return site


def _validate(text: str) -> tuple[int, str]:
    path = _world() / "m.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["validate", str(path)])
    return code, err.getvalue()


@settings(
    max_examples=150,
    deadline=10_000,  # any example over 10 s (a read without end, a hang) fails
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(SHAPED)
def test_schema_shaped_manifests_never_crash_or_hang(document: dict[str, Any]) -> None:
    code, err = _validate(yaml.safe_dump(document, allow_unicode=True))
    assert code in (0, 1), err
    assert code != EXIT_BUG
    assert "secret" not in err  # a file outside the folder is never read into a message


@settings(max_examples=150, deadline=10_000, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=200), JSONISH.map(yaml.safe_dump)))
def test_random_text_never_crashes_validate(text: str) -> None:
    code, err = _validate(text)
    assert code in (0, 1), err
