"""The module layering, checked mechanically (what import-linter would enforce).

cli → render, applier, migration → planner, state → plan, model, schema, manifest → client →
auth, journal, progress, redact, errors. The emulator is an independent fake of Synapse: it
imports nothing from the product, so the product can never pass a test by sharing code with it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "synapse_declare"


def imports_of(path: Path) -> set[str]:
    """Absolute names of the synapse_declare modules ``path`` imports (lazy imports included)."""
    module = path.relative_to(PACKAGE.parent).with_suffix("").as_posix().replace("/", ".")
    package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
                names = [f"{target}.{a.name}" for a in node.names] + [target]
            else:
                names = [node.module or ""]
            found.update(n for n in names if n.startswith("synapse_declare"))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("synapse_declare"))
    return found


def layer(name: str) -> str:
    """``synapse_declare.client.http.Transport`` → ``client``."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def modules(glob: str) -> list[Path]:
    return sorted(PACKAGE.glob(glob))


def test_the_check_sees_imports() -> None:
    """Guard against a check that cannot fail: known imports are found."""
    assert "synapse_declare.planner" in imports_of(PACKAGE / "engine.py")
    assert layer("synapse_declare.client.http.Transport") == "client"
    assert "synapse_declare.emulator.nodes" in imports_of(PACKAGE / "emulator" / "entities.py")


@pytest.mark.parametrize("path", modules("**/*.py"), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_the_edge_imports_the_cli(path: Path) -> None:
    if path.name in ("cli.py", "__main__.py"):
        return
    assert not {i for i in imports_of(path) if layer(i) == "cli"}


@pytest.mark.parametrize("path", modules("client/*.py"), ids=lambda p: p.name)
def test_the_client_knows_nothing_of_plans(path: Path) -> None:
    forbidden = ("planner", "applier", "render", "state", "cli", "migration", "storage", "demo")
    bad = {i for i in imports_of(path) if layer(i) in forbidden}
    assert not bad, f"{path.name} imports {sorted(bad)}"


@pytest.mark.parametrize("path", modules("emulator/*.py"), ids=lambda p: p.name)
def test_the_emulator_is_independent_of_the_product(path: Path) -> None:
    bad = {i for i in imports_of(path) if not i.startswith("synapse_declare.emulator")}
    assert not bad, f"emulator/{path.name} imports {sorted(bad)}"


@pytest.mark.parametrize(
    "name",
    [
        "planner.py",
        "plan.py",
        *(str(p.relative_to(PACKAGE)) for p in modules("model/*.py")),
        "manifest.py",
        "schema.py",
        "validate.py",
    ],
)
def test_pure_layers_do_no_presentation(name: str) -> None:
    bad = {i for i in imports_of(PACKAGE / name) if layer(i) in ("render", "cli", "progress")}
    assert not bad, f"{name} imports {sorted(bad)}"


BASE = "synapse_declare.resources.base"


@pytest.mark.parametrize("path", modules("model/*.py"), ids=lambda p: p.name)
def test_the_model_reads_nothing_live(path: Path) -> None:
    """A manifest becomes a model offline: no builder reaches the client, the state reader, the
    planner or the applier (the resource kinds only for ``resources.base``'s addresses)."""
    live = ("client", "state", "planner", "applier", "storage", "migration", "engine", "cli")
    bad = {
        i
        for i in imports_of(path)
        if layer(i) in live or (layer(i) == "resources" and not i.startswith(BASE))
    }
    assert not bad, f"model/{path.name} imports {sorted(bad)}"


def test_the_model_check_sees_imports() -> None:
    """Guard against a check that cannot fail: the container builder's imports are seen."""
    found = imports_of(PACKAGE / "model" / "build_container.py")
    assert "synapse_declare.resources.base" in found
    assert "synapse_declare.model.build_acl" in found
    assert len(modules("model/*.py")) > 10
