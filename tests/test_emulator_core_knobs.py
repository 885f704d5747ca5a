"""The emulator's knobs and lifecycle: throttling (§11.2), latency, fault injection, the request
log, persistence across restarts, and ``synapse-declare emulator serve`` as a process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import read_exchanges
from emulator_core_support import (
    ERROR,
    ROOT,
    grant,
    project_body,
    uniq,
    user_id,
)

from synapse_declare.emulator import Emulator
from synapse_declare.emulator.app import redact

# ---------------------------------------------------------------------------------------------
# Throttling: raw {"reason"} bodies, no concreteType, no Retry-After (§11.2)


def test_concurrency_throttle(make_emulator: Any) -> None:
    emu = make_emulator(max_concurrent=1, latency_ms=800)
    barrier = threading.Barrier(2)
    results: list[requests.Response] = []

    def call(token: str | None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        barrier.wait()
        results.append(
            requests.get(emu.repo_endpoint + "/userProfile", headers=headers, timeout=10)
        )

    threads = [threading.Thread(target=call, args=("alice-token",)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200, 429]
    refused = next(r for r in results if r.status_code == 429)
    assert refused.json() == {
        "reason": "Too many concurrent requests. Allowed 1 concurrent connections at any time."
    }
    assert "Retry-After" not in refused.headers
    assert refused.headers["Content-Type"].startswith("application/json")
    # Anonymous callers are not throttled.
    results.clear()
    barrier.reset()
    threads = [threading.Thread(target=call, args=(None,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.status_code for r in results) == [200, 200]


def test_frequency_throttle_is_per_user(make_emulator: Any, api_for: Any) -> None:
    emu = make_emulator(max_per_minute=3)
    alice, bob = api_for(emu, "alice"), api_for(emu, "bob")
    for _ in range(3):
        alice.ok("GET", "/userProfile")
    response = alice.call("GET", "/userProfile")
    assert response.status_code == 429
    assert response.json() == {
        "reason": "Requests are too frequent. Allowed 3 requests every 60 seconds."
    }
    assert bob.ok("GET", "/userProfile")["userName"] == "bob"
    # The knob can be changed on a running emulator.
    emu.knobs.max_per_minute = None
    assert alice.ok("GET", "/userProfile")["userName"] == "alice"


def test_latency_knob(make_emulator: Any, api_for: Any) -> None:
    emu = make_emulator(latency_ms=250)
    alice = api_for(emu, "alice")
    started = time.perf_counter()
    alice.ok("GET", "/userProfile")
    assert time.perf_counter() - started >= 0.25
    emu.knobs.latency_ms = 0
    fastest = 10.0
    for _ in range(3):
        started = time.perf_counter()
        alice.ok("GET", "/userProfile")
        fastest = min(fastest, time.perf_counter() - started)
    assert fastest < 0.25


# ---------------------------------------------------------------------------------------------
# Fault injection: before or after the commit


def _exists(api: Any, name: str) -> bool:
    return bool(api.call("POST", "/entity/child", {"entityName": name}).status_code == 200)


@pytest.mark.parametrize(
    ("kind", "status", "reason", "committed"),
    [
        ("503-before", 503, "Service temporarily unavailable, please try again later.", False),
        ("500-before", 500, "Injected internal error (emulator fault injection)", False),
        ("503-after", 503, "Service temporarily unavailable, please try again later.", True),
        ("500-after", 500, "Injected internal error (emulator fault injection)", True),
    ],
)
def test_fault_statuses(
    make_emulator: Any, api_for: Any, kind: str, status: int, reason: str, committed: bool
) -> None:
    emu = make_emulator(fault_rate=1.0, fault_kinds=[kind])
    alice = api_for(emu, "alice")
    name = uniq()
    before = emu.state_version()
    response = alice.call("POST", "/entity", project_body(name))
    assert response.status_code == status
    assert response.json() == {"concreteType": ERROR, "reason": reason}
    emu.knobs.set_faults(0.0)
    assert _exists(alice, name) is committed
    assert (emu.state_version() > before) is committed


@pytest.mark.parametrize(("kind", "committed"), [("drop-before", False), ("drop-after", True)])
def test_dropped_connections(make_emulator: Any, api_for: Any, kind: str, committed: bool) -> None:
    emu = make_emulator(fault_rate=1.0, fault_kinds=[kind])
    alice = api_for(emu, "alice")
    name = uniq()
    with pytest.raises(requests.ConnectionError):
        alice.call("POST", "/entity", project_body(name))
    emu.knobs.set_faults(0.0)
    assert _exists(alice, name) is committed
    logged = [
        e for e in read_exchanges(emu) if e["method"] == "POST" and e["path"] == "/repo/v1/entity"
    ]
    assert logged[0]["status"] is None and logged[0]["response"] is None


def _outcomes(emu: Emulator, count: int) -> list[str]:
    session = requests.Session()
    session.headers["Authorization"] = "Bearer alice-token"
    outcomes = []
    for _ in range(count):
        try:
            outcomes.append(
                str(session.get(emu.repo_endpoint + "/userProfile", timeout=10).status_code)
            )
        except requests.ConnectionError:
            outcomes.append("drop")
            session = requests.Session()
            session.headers["Authorization"] = "Bearer alice-token"
    return outcomes


def test_faults_are_seeded(make_emulator: Any) -> None:
    first = _outcomes(make_emulator(fault_rate=0.5, fault_seed=7), 24)
    again = _outcomes(make_emulator(fault_rate=0.5, fault_seed=7), 24)
    other = _outcomes(make_emulator(fault_rate=0.5, fault_seed=8), 24)
    assert first == again
    assert first != other
    assert set(first) - {"200"}, "a rate of 0.5 over 24 requests injects faults"
    assert "200" in first
    # Endpoint roots (synapseclient's constructor probe) are never faulted.
    emu = make_emulator(fault_rate=1.0)
    assert requests.get(emu.repo_endpoint, timeout=10).status_code == 200


# ---------------------------------------------------------------------------------------------
# Request log


def test_request_log_format_and_redaction(make_emulator: Any, api_for: Any) -> None:
    emu = make_emulator()
    alice = api_for(emu, "alice")
    project = alice.project(uniq())
    alice.ok("POST", "/entity/children", {"parentId": project["id"], "includeTypes": ["folder"]})
    alice.error(404, "GET", "/entity/syn999999999")
    alice.ok("GET", "/userGroupHeaders", prefix="al", limit=5)
    requests.get(
        emu.repo_endpoint + "/userProfile",
        headers={"Authorization": "Bearer wrong-secret"},
        timeout=10,
    )
    exchanges = read_exchanges(emu)
    for exchange in exchanges:
        assert set(exchange) == {
            "method",
            "path",
            "query",
            "status",
            "request",
            "response",
            "duration_ms",
        }
        assert exchange["path"].startswith("/repo/v1/")
        assert isinstance(exchange["duration_ms"], float | int) and exchange["duration_ms"] >= 0
    create = exchanges[0]
    assert (create["method"], create["path"], create["status"]) == ("POST", "/repo/v1/entity", 201)
    assert create["request"]["name"] == project["name"]
    assert create["response"]["id"] == project["id"]
    assert create["query"] == {}
    missing = next(e for e in exchanges if e["status"] == 404)
    assert missing["request"] is None
    assert missing["response"]["reason"] == "Resource: 'syn999999999' does not exist"
    search = next(e for e in exchanges if e["path"] == "/repo/v1/userGroupHeaders")
    assert search["query"] == {"prefix": "al", "limit": "5"}
    raw = Path(emu.config.request_log).read_text(encoding="utf-8")
    for secret in ("alice-token", "wrong-secret", "Bearer"):
        assert secret not in raw


def test_redaction_of_secrets_and_signatures() -> None:
    body = {
        "accessKeyId": "AKIA",
        "secretAccessKey": "s3cr3t",
        "sessionToken": "tok",
        "nested": [{"preSignedURL": "http://127.0.0.1:1/b/k?X-Amz-Signature=abc"}],
        "signedHeaders": {"x-amz-copy-source": "b/k"},
        "keep": "value",
    }
    assert redact(body) == {
        "accessKeyId": "***",
        "secretAccessKey": "***",
        "sessionToken": "***",
        "nested": [{"preSignedURL": "http://127.0.0.1:1/b/k"}],
        "signedHeaders": {"x-amz-copy-source": "***"},
        "keep": "value",
    }


# ---------------------------------------------------------------------------------------------
# Persistence (--data-dir) in-process


def test_state_survives_restart(make_emulator: Any, api_for: Any, tmp_path: Path) -> None:
    first = make_emulator(data_dir=tmp_path)
    alice = api_for(first, "alice")
    project = alice.project(uniq())
    folder = alice.folder("data", project["id"])
    grant(alice, folder["id"], [(user_id(first, "bob"), ["READ"])])
    annos = alice.ok("GET", f"/entity/{folder['id']}/annotations2")
    annos = alice.ok(
        "PUT",
        f"/entity/{folder['id']}/annotations2",
        {**annos, "annotations": {"n": {"type": "LONG", "value": ["42"]}}},
    )
    root = alice.ok(
        "POST", f"/entity/{project['id']}/wiki", {"title": "Home", "markdown": "# persisted"}
    )
    sub = alice.ok(
        "POST",
        f"/entity/{project['id']}/wiki",
        {"title": "Sub", "markdown": "s", "parentWikiId": root["id"]},
    )
    alice.ok("DELETE", f"/entity/{alice.folder('gone', project['id'])['id']}")
    version = first.state_version()
    first.stop()

    second = make_emulator(data_dir=tmp_path)
    alice2, bob2 = api_for(second, "alice"), api_for(second, "bob")
    assert second.state_version() == version  # re-seeding the same users changes nothing
    assert alice2.ok("GET", f"/entity/{folder['id']}")["etag"] == annos["etag"]
    assert bob2.ok("GET", f"/entity/{folder['id']}")["name"] == "data"
    assert alice2.ok("GET", f"/entity/{folder['id']}/annotations2") == annos
    assert alice2.ok("GET", f"/entity/{project['id']}/wiki")["markdown"] == "# persisted"
    assert (
        alice2.ok("GET", f"/entity/{project['id']}/wiki/{sub['id']}")["parentWikiId"] == root["id"]
    )
    assert len(alice2.ok("GET", "/trashcan/view")["results"]) == 1
    # Id counters continue where they stopped.
    newer = alice2.project(uniq())
    assert int(newer["id"][3:]) > int(folder["id"][3:])


# ---------------------------------------------------------------------------------------------
# `synapse-declare emulator serve` as a process


class Served:
    def __init__(self, process: subprocess.Popen[str], lines: list[str]) -> None:
        self.process = process
        self.lines = lines

    def value(self, label: str) -> str:
        for line in self.lines:
            if line.strip().startswith(label):
                return line.split("=", 1)[1].strip()
        raise AssertionError(f"{label!r} not printed: {self.lines}")

    def stop(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGINT)
        out, _ = self.process.communicate(timeout=30)
        return self.process.returncode, out


def _serve(*args: str) -> Served:
    process = subprocess.Popen(
        [sys.executable, "-m", "synapse_declare", "emulator", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.startswith("Press Ctrl-C"):
            return Served(process, lines)
    process.kill()
    raise AssertionError(f"emulator did not start: {lines}")


@pytest.fixture
def serve() -> Iterator[Any]:
    started: list[Served] = []

    def factory(*args: str) -> Served:
        served = _serve(*args)
        started.append(served)
        return served

    yield factory
    for served in started:
        if served.process.poll() is None:
            served.process.kill()
            served.process.wait(timeout=10)


def test_serve_prints_endpoints_and_demo_token(serve: Any) -> None:
    served = serve()
    repo = served.value("repoEndpoint")
    assert repo.startswith("http://127.0.0.1:") and repo.endswith("/repo/v1")
    assert served.value("fileHandleEndpoint").endswith("/file/v1")
    assert served.value("authEndpoint").endswith("/auth/v1")
    assert served.value("S3/STS endpoint").startswith("http://127.0.0.1:")
    token = served.value("user 'demo' token")
    profile = requests.get(
        repo + "/userProfile", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert profile.json()["userName"] == "demo"
    created = requests.post(
        repo + "/entity",
        json=project_body(uniq()),
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert created.status_code == 201 and created.json()["parentId"] == ROOT
    code, out = served.stop()
    assert code == 0
    assert "emulator stopped" in out


def _users_file(path: Path) -> Path:
    path.write_text(
        "users:\n"
        "  - userName: alice\n"
        "    token: alice-token\n"
        "    email: alice@example.org\n"
        "  - userName: dave\n"
        "    token: dave-token\n"
        "    certified: false\n"
        "teams:\n"
        "  - name: Lab Admins\n"
        "    members: [alice]\n",
        encoding="utf-8",
    )
    return path


def test_serve_with_users_file_and_data_dir_across_processes(serve: Any, tmp_path: Path) -> None:
    users = _users_file(tmp_path / "users.yaml")
    data = tmp_path / "data"
    served = serve("--users", str(users), "--data-dir", str(data))
    assert served.value("users") == "alice, dave"
    repo = served.value("repoEndpoint")
    alice = requests.Session()
    alice.headers["Authorization"] = "Bearer alice-token"
    teams = alice.post(
        repo + "/userGroupHeaders/aliases", json={"list": ["Lab Admins", "dave"]}, timeout=10
    ).json()
    assert [(h["userName"], h["isIndividual"]) for h in teams["list"]] == [
        ("Lab Admins", False),
        ("dave", True),
    ]
    dave_bundle = requests.get(
        repo + "/user/bundle",
        params={"mask": 8},
        headers={"Authorization": "Bearer dave-token"},
        timeout=10,
    )
    assert dave_bundle.json()["isCertified"] is False
    project = alice.post(repo + "/entity", json=project_body(uniq()), timeout=10).json()
    wiki = alice.post(
        f"{repo}/entity/{project['id']}/wiki",
        json={"title": "Home", "markdown": "# across processes"},
        timeout=10,
    )
    assert wiki.status_code == 201
    code, _ = served.stop()
    assert code == 0
    # A new process with the same data dir: entities, and markdown restored into a fresh S3.
    again = serve("--users", str(users), "--data-dir", str(data))
    repo = again.value("repoEndpoint")
    assert alice.get(f"{repo}/entity/{project['id']}", timeout=10).json()["name"] == project["name"]
    assert (
        alice.get(f"{repo}/entity/{project['id']}/wiki", timeout=10).json()["markdown"]
        == "# across processes"
    )
    assert again.stop()[0] == 0


def _serve_users_file(users: Path) -> subprocess.CompletedProcess[str]:
    """``emulator serve --users USERS`` in a child process, expected to refuse the file."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "synapse_declare",
            "emulator",
            "serve",
            "--port",
            "0",
            "--users",
            str(users),
        ],
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
    )


def test_serve_rejects_a_bad_users_file(tmp_path: Path) -> None:
    bad = tmp_path / "users.yaml"
    bad.write_text("users:\n  - userName: alice\n", encoding="utf-8")
    result = _serve_users_file(bad)
    assert result.returncode == 1
    assert f"error: {bad}:2:5: token is required" in result.stderr
    assert "(at users[0])" in result.stderr and "\n  hint: add the user's token" in result.stderr
    assert "Traceback" not in result.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("users: [unclosed\n", encoding="utf-8")
    result = _serve_users_file(broken)
    assert result.returncode == 1
    assert f"error: {broken}:2:1: cannot read users file" in result.stderr
    assert "Traceback" not in result.stderr
