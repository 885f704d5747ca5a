"""Shared fixtures: hermetic environment, emulators over real HTTP, and the conformance gate.

Every exchange any emulator in this session answers is logged (the emulator's ``--request-log``
format) and, when ``../shared/tools`` exists, checked at the end of the session with Synapse's
official models: one non-conformant response fails the run.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from synapse_declare.emulator import Emulator, EmulatorConfig, SeedTeam, SeedUser

REPO = Path(__file__).resolve().parent.parent
SHARED_TOOLS = REPO.parent / "shared" / "tools"
REQUEST_LOG_DIR_ENV = "SYNAPSE_DECLARE_TEST_LOG_DIR"

ALICE, BOB, CAROL = "alice", "bob", "carol"
USERS = [
    SeedUser(ALICE, "alice-token", email="alice@example.org"),
    SeedUser(BOB, "bob-token", email="bob@example.org"),
    SeedUser(CAROL, "carol-token", email="carol@example.org", certified=False),
]
TEAMS = [SeedTeam("Lab Admins", (ALICE,)), SeedTeam("Curators", (ALICE, BOB))]


class ForbiddenHomeAccess(AssertionError):
    """A test read the real ~/.synapseConfig or wrote to the real home directory."""


@pytest.fixture(autouse=True)
def hermetic_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME is a fresh temp dir; SYNAPSE_*/AWS_* variables from the developer's shell are gone."""
    home = tmp_path_factory.mktemp("home")
    for key in list(os.environ):
        if key.startswith(("SYNAPSE_", "AWS_")) and key != REQUEST_LOG_DIR_ENV:
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))
    monkeypatch.setenv("NO_COLOR", "1")
    # boto3 must never find real credentials or config.
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return home


def _log_dir(config: pytest.Config) -> Path:
    existing = getattr(config, "_sd_log_dir", None)
    if existing is not None:
        return Path(existing)
    base = os.environ.get(REQUEST_LOG_DIR_ENV) or tempfile.mkdtemp(prefix="sd-exchanges-")
    path = Path(base) / os.environ.get("PYTEST_XDIST_WORKER", "main")
    path.mkdir(parents=True, exist_ok=True)
    config._sd_log_dir = str(path)  # type: ignore[attr-defined]
    return path


EmulatorFactory = Callable[..., Emulator]


@pytest.fixture
def make_emulator(request: pytest.FixtureRequest) -> Iterator[EmulatorFactory]:
    """Start emulators with the standard users/teams and a request log; stopped after the test."""
    started: list[Emulator] = []
    log_dir = _log_dir(request.config)

    def factory(**overrides: Any) -> Emulator:
        index = len(started)
        name = request.node.nodeid.replace("/", "_").replace("::", "-").replace("[", "_")
        name = "".join(c for c in name if c.isalnum() or c in "-_.")[:150]
        config = EmulatorConfig(
            users=overrides.pop("users", USERS),
            teams=overrides.pop("teams", TEAMS),
            request_log=overrides.pop("request_log", log_dir / f"{name}-{index}.jsonl"),
            **overrides,
        )
        emulator = Emulator(config).start()
        started.append(emulator)
        return emulator

    yield factory
    for emulator in reversed(started):
        emulator.stop()


@pytest.fixture
def emulator(make_emulator: EmulatorFactory) -> Emulator:
    return make_emulator()


@pytest.fixture(scope="module")
def shared_emulator(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    """One emulator per test module, for read-mostly tests that create their own projects."""
    log_dir = _log_dir(request.config)
    name = "".join(c for c in request.node.nodeid if c.isalnum() or c in "-_.")[:150]
    emulator = Emulator(
        EmulatorConfig(users=USERS, teams=TEAMS, request_log=log_dir / f"{name}-module.jsonl")
    ).start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def emu(shared_emulator: Emulator) -> Emulator:
    """The module's emulator (tests create uniquely named projects in it)."""
    return shared_emulator


@pytest.fixture
def alice(emu: Emulator) -> Api:
    return Api(emu, emu.users[ALICE])


@pytest.fixture
def bob(emu: Emulator) -> Api:
    return Api(emu, emu.users[BOB])


@pytest.fixture
def carol(emu: Emulator) -> Api:
    return Api(emu, emu.users[CAROL])


@pytest.fixture
def project(alice: Api) -> dict[str, Any]:
    """A fresh project of alice's in the module's emulator."""
    return alice.project(f"Test project {uuid.uuid4().hex[:12]}")


class Api:
    """A thin raw-HTTP helper for emulator behaviour tests (not the product client)."""

    def __init__(self, emulator: Emulator, token: str | None) -> None:
        self.emulator = emulator
        self.session = requests.Session()
        self.session.headers["Content-Type"] = "application/json; charset=UTF-8"
        if token is not None:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def _url(self, path: str) -> str:
        if path.startswith("http"):
            return path
        if path.startswith(("/repo/", "/file/", "/auth/", "/emulator/")):
            return self.emulator.base_url + path
        return self.emulator.repo_endpoint + path

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> requests.Response:
        return self.session.request(
            method, self._url(path), json=body, params=params or None, timeout=30
        )

    def ok(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        response = self.call(method, path, body, **params)
        assert response.status_code < 300, (response.status_code, response.text)
        return response.json() if response.content.strip() else None

    def error(
        self, expected_status: int, method: str, path: str, body: Any = None, **params: Any
    ) -> str:
        response = self.call(method, path, body, **params)
        assert response.status_code == expected_status, (response.status_code, response.text)
        reason: str = response.json()["reason"]
        return reason

    def project(self, name: str) -> dict[str, Any]:
        return dict(
            self.ok(
                "POST",
                "/entity",
                {"concreteType": "org.sagebionetworks.repo.model.Project", "name": name},
            )
        )

    def folder(self, name: str, parent: str) -> dict[str, Any]:
        return dict(
            self.ok(
                "POST",
                "/entity",
                {
                    "concreteType": "org.sagebionetworks.repo.model.Folder",
                    "name": name,
                    "parentId": parent,
                },
            )
        )


@pytest.fixture
def api_for() -> Callable[[Emulator, str | None], Api]:
    def factory(emulator: Emulator, user: str | None = ALICE) -> Api:
        return Api(emulator, emulator.users[user] if user is not None else None)

    return factory


# ---------------------------------------------------------------------------------------------
# Conformance gate


def pytest_configure(config: pytest.Config) -> None:
    """The controller gives this run its own exchange-log folder (workers inherit it), so
    concurrent pytest runs never share or delete each other's logs."""
    if os.environ.get("PYTEST_XDIST_WORKER") or os.environ.get(REQUEST_LOG_DIR_ENV):
        return
    root = Path(tempfile.mkdtemp(prefix="synapse-declare-exchanges-"))
    os.environ[REQUEST_LOG_DIR_ENV] = str(root)
    config._sd_owned_log_root = str(root)  # type: ignore[attr-defined]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return  # workers' logs are checked by the controller
    owned = getattr(session.config, "_sd_owned_log_root", None)
    base = os.environ.get(REQUEST_LOG_DIR_ENV)
    roots = [Path(base)] if base else []
    try:
        _check_conformance(session, roots)
    finally:
        if owned:
            shutil.rmtree(owned, ignore_errors=True)


def _conformance_checker() -> Any | None:
    """The shared conformance checker (``../shared/tools``), or None where it is absent."""
    if not SHARED_TOOLS.exists():
        return None
    sys.path.insert(0, str(SHARED_TOOLS))
    try:
        import synapse_conformance as sc
    finally:
        sys.path.pop(0)
    return sc


def conforms(model: str, body: Any, *, strict: bool = False) -> list[str]:
    """Synapse's own model check of one document (for exchanges kept out of the request log);
    no errors where the checker is absent."""
    sc = _conformance_checker()
    if sc is None:
        return []
    errors: list[str] = sc.validate(model, body, strict=strict)
    return errors


def _check_conformance(session: pytest.Session, roots: list[Path]) -> None:
    sc = _conformance_checker()
    if sc is None:
        return
    files = sorted({f for root in roots for f in root.glob("**/*.jsonl")})
    if not files:
        return
    checked = 0
    failures: list[str] = []
    for file in files:
        with file.open(encoding="utf-8") as handle:
            summary = sc.check_exchange_log(handle)
        checked += summary["checked"]
        for endpoint, errors in summary["errors"].items():
            failures.extend(f"{file.name}: {endpoint}: {e}" for e in errors[:5])
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            f"conformance: {checked} exchanges in {len(files)} logs checked against Synapse's "
            f"models, {len(failures)} errors"
        )
        for line in failures[:50]:
            reporter.write_line(f"  {line}")
    if failures:
        session.exitstatus = 1


def read_exchanges(emulator: Emulator) -> list[dict[str, Any]]:
    """The request log of an emulator started by the fixtures, parsed."""
    path = emulator.config.request_log
    assert path is not None
    return [
        json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line
    ]
