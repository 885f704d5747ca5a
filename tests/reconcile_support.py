"""Helpers for the reconciler tests (``test_reconcile_*.py``): run the real CLI in-process
against an emulator over HTTP, write manifests, read live state back through raw REST.

Nothing here patches product code: the CLI runs exactly as a user runs it; the only fake is the
emulator, which is the HTTP boundary.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import textwrap
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
from conftest import Api, read_exchanges
from emulator_core_support import ADMIN_SET

from synapse_declare.cli import main
from synapse_declare.emulator import Emulator

PROJECT = "org.sagebionetworks.repo.model.Project"
FOLDER = "org.sagebionetworks.repo.model.Folder"
ROOT = "syn4489"
PUBLIC, AUTHENTICATED = 273949, 273948
ADMIN = frozenset(ADMIN_SET)
MARKER = "synapse_declare_managed"

# Synapse's read-only POSTs (the client's allow-list); anything else that POSTs is a write.
READ_ONLY_POST_SUFFIXES = (
    "/entity/children",
    "/entity/child",
    "/entity/header",
    "/bundle2",
    "/userGroupHeaders/aliases",
    "/principal/alias",
    "/fileHandle/batch",
)


@dataclass
class Result:
    code: int
    out: str
    err: str
    seconds: float

    @property
    def both(self) -> str:
        return self.out + self.err


class Workspace:
    """A temp directory with token files, manifests and a CLI runner bound to one emulator."""

    def __init__(self, emulator: Emulator, root: Path) -> None:
        self.emulator = emulator
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    # -- files ----------------------------------------------------------------------------

    def token_file(self, user: str) -> Path:
        path = self.root / f"token-{user}"
        path.write_text(self.emulator.users.get(user, user) + "\n", encoding="utf-8")
        return path

    def manifest(self, text: str, name: str = "manifest.yaml") -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    def connection(self, user: str = "alice", *, endpoint: str | None = None) -> list[str]:
        return [
            "--endpoint",
            endpoint or self.emulator.base_url,
            "--token-file",
            str(self.token_file(user)),
            "--backoff",
            "0.01",
        ]

    # -- running the CLI --------------------------------------------------------------------

    def run(self, *argv: str | Path, stdin: str | IO[str] = "") -> Result:
        """``main(argv)`` with stdout/stderr captured; stdin is not a terminal unless given."""
        out, err = io.StringIO(), io.StringIO()
        old_stdin = sys.stdin
        sys.stdin = io.StringIO(stdin) if isinstance(stdin, str) else stdin
        started = time.perf_counter()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main([str(a) for a in argv])
        finally:
            sys.stdin = old_stdin
        return Result(code, out.getvalue(), err.getvalue(), time.perf_counter() - started)

    def plan(self, *args: str | Path, user: str = "alice") -> Result:
        return self.run("plan", *args, *self.connection(user))

    def apply(self, *args: str | Path, user: str = "alice") -> Result:
        return self.run("apply", *args, "--auto-approve", *self.connection(user))

    def plan_json(self, manifest: Path, user: str = "alice") -> dict[str, Any]:
        result = self.plan(manifest, "--json", user=user)
        assert result.code == 0, result.err
        return dict(json.loads(result.out))


def actions(plan_document: dict[str, Any]) -> dict[str, str]:
    """address → action of a ``plan --json`` document."""
    return {c["address"]: c["action"] for c in plan_document["changes"]}


def actionable(plan_document: dict[str, Any]) -> dict[str, str]:
    return {a: act for a, act in actions(plan_document).items() if act != "no-op"}


# ---------------------------------------------------------------------------------------------
# Live state through raw REST (independent of the product's client)


def lookup(api: Api, name: str, parent: str | None = None) -> str | None:
    response = api.call("POST", "/entity/child", {"parentId": parent, "entityName": name})
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def children(api: Api, parent: str) -> list[dict[str, Any]]:
    page: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        body: dict[str, Any] = {"parentId": parent, "includeTypes": ["folder", "file"]}
        if token:
            body["nextPageToken"] = token
        answer = api.ok("POST", "/entity/children", body)
        page.extend(answer.get("page", []))
        token = answer.get("nextPageToken")
        if not token:
            return page


def own_acl(api: Api, entity_id: str) -> dict[int, frozenset[str]] | None:
    response = api.call("GET", f"/entity/{entity_id}/acl")
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    return {
        int(e["principalId"]): frozenset(e["accessType"])
        for e in response.json().get("resourceAccess", [])
    }


def annotations(api: Api, entity_id: str) -> dict[str, Any]:
    return dict(api.ok("GET", f"/entity/{entity_id}/annotations2").get("annotations", {}))


def wiki_titles(api: Api, owner_id: str) -> list[tuple[str | None, str]]:
    """(parent title, title) of every wiki page of an entity, sorted."""
    response = api.call("GET", f"/entity/{owner_id}/wikiheadertree", offset=0, limit=50)
    if response.status_code == 404:
        return []
    headers = response.json().get("results", [])
    titles = {h["id"]: h["title"] for h in headers}
    return sorted(
        ((titles.get(h.get("parentId")), h["title"]) for h in headers),
        key=lambda pair: (pair[0] or "", pair[1]),
    )


def tree(api: Api, project_name: str) -> dict[str, Any] | None:
    """A live projection of a project: names, annotation values, own ACLs, wiki titles; every
    folder exactly once (duplicates would show up as lists longer than one)."""
    project_id = lookup(api, project_name)
    if project_id is None:
        return None

    def node(entity_id: str) -> dict[str, Any]:
        kids: dict[str, list[dict[str, Any]]] = {}
        for header in children(api, entity_id):
            kids.setdefault(header["name"], []).append(node(str(header["id"])))
        acl = own_acl(api, entity_id)
        return {
            "annotations": {
                k: v["value"] for k, v in sorted(annotations(api, entity_id).items()) if k != MARKER
            },
            "acl": None if acl is None else {p: sorted(a) for p, a in sorted(acl.items())},
            "wiki": wiki_titles(api, entity_id),
            "children": dict(sorted(kids.items())),
        }

    return node(project_id)


def mutating_exchanges(exchanges: list[dict[str, Any]]) -> list[str]:
    """Requests in a request log that may change state (not GET, not an allow-listed POST)."""
    found = []
    for exchange in exchanges:
        method, path = exchange["method"], exchange["path"]
        if method in ("GET", "HEAD"):
            continue
        if method == "POST" and path.endswith(READ_ONLY_POST_SUFFIXES):
            continue
        found.append(f"{method} {path}")
    return found


@contextlib.contextmanager
def log_window(emulator: Emulator) -> Iterator[list[dict[str, Any]]]:
    """The exchanges an emulator logged while the block ran."""
    before = len(read_exchanges(emulator))
    window: list[dict[str, Any]] = []
    yield window
    window.extend(read_exchanges(emulator)[before:])


@contextlib.contextmanager
def official_client(emulator: Emulator, home: Path, user: str = "alice") -> Iterator[Any]:
    """synapseclient logged in as ``user``, found the way it finds any Synapse: a
    ``~/.synapseConfig`` with the emulator's ``[endpoints]`` (``home`` is the hermetic HOME).
    Its deprecation chatter is silenced for as long as the client is in use."""
    import synapseclient

    config = home / ".synapseConfig"
    config.write_text(emulator.synapse_config(user), encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client = synapseclient.Synapse(
            skip_checks=True, configPath=str(config), cache_client=False, silent=True
        )
        client.login(silent=True)
        yield client


def quiet(call: Any, *args: Any, **kwargs: Any) -> Any:
    """``call(*args, **kwargs)`` with synapseclient's warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call(*args, **kwargs)


def storage_workspace(
    emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    bucket: str,
    owned_prefixes: Sequence[str],
) -> Workspace:
    """A workspace beside a moto bucket whose ``owned_prefixes`` carry alice's ``owner.txt``
    (Synapse's proof of ownership for an external S3 location)."""
    # boto3 (owner.txt pre-flight, verification) reaches moto with any credentials.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    s3 = emulator.s3_client()
    s3.create_bucket(Bucket=bucket)
    for prefix in owned_prefixes:
        s3.put_object(Bucket=bucket, Key=f"{prefix}/owner.txt", Body=b"alice\n")
    return Workspace(emulator, tmp_path / "ws")
