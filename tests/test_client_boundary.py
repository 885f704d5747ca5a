"""Every Synapse REST call goes through the client (synapse_declare/client/): nothing else sends
HTTP, names a REST path, or reaches the transport's ``request``. A call outside the client would
bypass its typed results, its rate limiter, its ambiguous-write handling and its redaction."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "synapse_declare"

# Modules allowed to wire the transport up (build a Transport, read its options).
WIRING = {"engine.py", "cli.py"}
HTTP_LIBRARIES = ("requests", "urllib3", "urllib.request", "http.client", "httpx", "aiohttp")
REST_PREFIXES = (
    "/entity",
    "/file/",
    "/fileHandle",
    "/externalFileHandle",
    "/team",
    "/user",
    "/storageLocation",
    "/projectSettings",
    "/trashcan",
    "/membershipInvitation",
    "/membershipRequest",
    "/accessRequirement",
    "/accessApproval",
    "/wiki",
)


def _product_modules() -> list[Path]:
    return sorted(
        p
        for p in PACKAGE.rglob("*.py")
        if p.relative_to(PACKAGE).parts[0] not in ("client", "emulator")
    )


def _name(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def _imports(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(("." * node.level) + node.module)
    return found


HTTP_VERBS = {"get", "post", "put", "delete", "patch", "head", "request", "ok"}


def _rest_paths(tree: ast.AST) -> list[str]:
    """REST paths (string constants, f-string pieces included) passed to an HTTP-verb call:
    ``session.post(f"{repo}/team/...")``, ``api.request("GET", "/entity/...")``."""
    found: list[str] = []
    for call in ast.walk(tree):
        if not (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr in HTTP_VERBS
        ):
            continue
        for arg in [*call.args, *(k.value for k in call.keywords)]:
            for node in ast.walk(arg):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    text = node.value
                    if text.startswith(REST_PREFIXES) or any(
                        f"{service}{prefix}" in text
                        for service in ("/repo/v1", "/file/v1", "/auth/v1")
                        for prefix in REST_PREFIXES
                    ):
                        found.append(text)
    return found


def _transport_calls(tree: ast.AST) -> list[int]:
    """Lines calling ``<something>.t.request(...)`` or ``<something>.transport.request(...)``."""
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "request"
        and isinstance(node.func.value, ast.Attribute)
        and node.func.value.attr in ("t", "transport", "_transport")
    ]


def test_the_checks_can_fail() -> None:
    """The detectors see what they look for (a check that cannot fail is a defect)."""
    sample = ast.parse(
        "import requests\nfrom .client.http import Transport\n"
        'api.t.request("POST", f"/entity/{x}/children")\n'
    )
    assert "requests" in _imports(sample) and ".client.http" in _imports(sample)
    assert _rest_paths(sample) == ["/entity/"]
    assert _rest_paths(ast.parse('s.put(f"{repo}/team/{t}/member/{u}")')) == ["/team/"]
    assert _rest_paths(ast.parse('Forbidden("x", path="/fileHandle/batch")')) == []
    assert _transport_calls(sample) == [3]
    assert any(p.name == "storage.py" for p in _product_modules())
    assert not any("client" in p.parts or "emulator" in p.parts for p in _product_modules())


@pytest.mark.parametrize("path", _product_modules(), ids=_name)
def test_no_module_outside_the_client_calls_synapse_itself(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    assert not _transport_calls(tree), f"{_name(path)} calls the transport directly"
    assert not _rest_paths(tree), f"{_name(path)} names REST paths: {_rest_paths(tree)}"
    http = {i for i in _imports(tree) if i.startswith(HTTP_LIBRARIES)}
    assert not http, f"{_name(path)} imports {sorted(http)}: HTTP belongs in client/"


@pytest.mark.parametrize("path", _product_modules(), ids=_name)
def test_only_the_wiring_reaches_the_transport(path: Path) -> None:
    if path.name in WIRING and path.parent == PACKAGE:
        return
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bad = {
        i
        for i in _imports(tree)
        if i.lstrip(".").startswith(("client.http", "synapse_declare.client.http"))
    }
    assert not bad, f"{_name(path)} imports the HTTP transport: use the client's methods"
