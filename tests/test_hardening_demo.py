"""The demo (README's first command) runs end to end: it exercises plan output, `sts --format
boto` and the storage path that issue 8 changed, so it must stay green."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from synapse_declare.cli import main


@pytest.mark.slow
def test_the_demo_completes(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["demo", "--workdir", str(tmp_path / "demo")])
    assert code == 0, out.getvalue()[-3000:] + err.getvalue()[-3000:]
    assert "Demo complete: every step behaved as expected." in out.getvalue()
    assert "boto3 wrote and listed with the STS credentials" in out.getvalue()
