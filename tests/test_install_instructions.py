"""synapse-declare is not published on PyPI: every install instruction a user can copy (README,
docs/, examples/, and the hints the tool itself prints) installs from a clone or checkout with
``constraints.txt``, never ``pip install synapse-declare`` from a registry."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# `pip install synapse-declare`, `pip install 'synapse-declare[emulator]'`, `pip install -U
# synapse-declare==0.1`: the package named as a requirement rather than a path.
_FROM_REGISTRY = re.compile(r"""pip install\b[^\n]*?(?<![\w./-])["']?synapse-declare(?![\w./-])""")


def _instructions() -> list[tuple[str, str]]:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    files += sorted(p for p in (ROOT / "examples").rglob("*") if p.is_file())
    files += sorted((ROOT / "synapse_declare").rglob("*.py"))
    found = []
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "pip install" in line:
                found.append((f"{path.relative_to(ROOT)}:{number}", line))
    return found


def test_no_instruction_installs_from_a_registry() -> None:
    found = _instructions()
    assert any(where.startswith("docs/ci.md") for where, _ in found)
    bad = [where for where, line in found if _FROM_REGISTRY.search(line)]
    assert bad == [], bad
    unconstrained = [where for where, line in found if "constraints.txt" not in line]
    assert unconstrained == [], unconstrained


def test_the_check_recognises_the_registry_form() -> None:
    for line in (
        "pip install synapse-declare",
        "      - run: pip install 'synapse-declare[emulator]'",
        "pip install -c constraints.txt synapse-declare==0.1.0",
    ):
        assert _FROM_REGISTRY.search(line), line
    for line in (
        "pip install -c constraints.txt .",
        "pip install -c synapse-declare-src/constraints.txt ./synapse-declare-src",
        "in your clone of synapse-declare: pip install -c constraints.txt '.[demo]'",
    ):
        assert not _FROM_REGISTRY.search(line), line
