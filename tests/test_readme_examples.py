"""The manifests README.md shows are the first ones a new user copies: each must validate."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from synapse_declare.validate import validate_paths

README = Path(__file__).resolve().parent.parent / "README.md"
_BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.MULTILINE | re.DOTALL)


def manifest_blocks() -> list[tuple[int, str]]:
    """(line, text) of each YAML block that is a manifest on its own: it declares projects or
    teams and uses no template (the fan-out section splits one manifest over two blocks); the
    emulator's users file (`users:`) is not a manifest."""
    text = README.read_text(encoding="utf-8")
    blocks = []
    for match in _BLOCK.finditer(text):
        body = match.group(1)
        if not re.search(r"^(projects|teams):", body, re.MULTILINE) or "use:" in body:
            continue
        if re.search(r"^users:", body, re.MULTILINE):
            continue
        blocks.append((text.count("\n", 0, match.start()) + 2, body))
    return blocks


def test_the_readme_shows_manifests() -> None:
    assert len(manifest_blocks()) >= 3


@pytest.mark.parametrize(
    ("line", "body"),
    [pytest.param(line, body, id=f"README.md:{line}") for line, body in manifest_blocks()],
)
def test_a_readme_manifest_validates(line: int, body: str, tmp_path: Path) -> None:
    if not body.lstrip().startswith(("version:", "# yaml-language-server")):
        body = "version: 1\n" + body
    for name in re.findall(r"markdown_file: (\S+)", body):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("# page\n", encoding="utf-8")
    manifest = tmp_path / "readme.yaml"
    manifest.write_text(body, encoding="utf-8")
    report = validate_paths(manifest)
    assert report.errors == (), (f"README.md:{line}", [str(e) for e in report.errors])
