"""The client's pacing of Synapse's per-user throttles (3 concurrent, N per 60 s), against the
emulator's throttle knobs over HTTP: the budget is spent without provoking a 429, and a request
that waits — for the budget or after a 429 — holds no request slot."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import read_exchanges
from reconcile_support import Workspace

from synapse_declare.auth import Credentials, Endpoints, StackLimits, resolve_limits
from synapse_declare.client.http import ClientOptions, RequestLimiter, Transport
from synapse_declare.emulator import Emulator
from synapse_declare.errors import ConfigError


def _transport(emulator: Emulator, options: ClientOptions) -> Transport:
    endpoints = Endpoints.from_base(emulator.base_url)
    credentials = Credentials(token=emulator.users["alice"], source="test", endpoints=endpoints)
    return Transport(credentials, endpoints, options)


def _profile_calls(emulator: Emulator) -> list[dict[str, Any]]:
    return [e for e in read_exchanges(emulator) if e["path"].endswith("/userProfile")]


def _hammer(transport: Transport, threads: int, calls: int) -> list[BaseException]:
    """``calls`` GET /userProfile spread over ``threads`` threads; the errors raised."""
    errors: list[BaseException] = []
    left = iter(range(calls))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                if next(left, None) is None:
                    return
            try:
                transport.request("GET", "/userProfile")
            except BaseException as exc:
                errors.append(exc)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return errors


def test_pacing_spends_the_budget_without_provoking_a_429(make_emulator: Any) -> None:
    """Ten threads against a stack allowing 3 concurrent and 30 per minute: all 30 requests go
    through at full concurrency with no 429."""
    emulator = make_emulator(max_concurrent=3, max_per_minute=30, latency_ms=30)
    transport = _transport(
        emulator, ClientOptions(max_concurrency=3, max_per_window=30, window_seconds=60)
    )
    try:
        assert _hammer(transport, threads=10, calls=30) == []
    finally:
        transport.close()
    exchanges = _profile_calls(emulator)
    assert len(exchanges) == 30
    assert [e for e in exchanges if e["status"] != 200] == []
    assert transport.throttled == 0
    assert transport.limiter.max_in_flight == 3  # the concurrency budget was used too


@pytest.mark.slow
def test_a_request_over_the_budget_waits_for_the_window_without_a_slot(
    make_emulator: Any,
) -> None:
    """The 13th request within a minute on a stack allowing 12 is not sent (it would be
    refused): it waits, holding no slot, until the first request leaves the window."""
    emulator = make_emulator(max_concurrent=3, max_per_minute=12, latency_ms=20)
    transport = _transport(emulator, ClientOptions(max_per_window=12, window_seconds=60))
    started = time.monotonic()
    errors: list[BaseException] = []
    runner = threading.Thread(target=lambda: errors.extend(_hammer(transport, 4, 13)))
    try:
        runner.start()
        deadline = time.monotonic() + 20
        while len(_profile_calls(emulator)) < 12 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
        assert len(_profile_calls(emulator)) == 12, "the 13th request was sent within the minute"
        assert runner.is_alive()
        assert transport.limiter.in_flight == 0  # waiting for the window holds no slot
        runner.join(timeout=90)
        assert not runner.is_alive()
    finally:
        transport.close()
    assert errors == []
    exchanges = _profile_calls(emulator)
    assert [e["status"] for e in exchanges] == [200] * 13
    assert time.monotonic() - started >= 60


@pytest.mark.slow
def test_a_429_gives_its_slot_back_and_the_stated_limit_is_then_paced(
    make_emulator: Any,
) -> None:
    """A client that does not know the stack's limit (no pacing) meets a 429: it waits without
    its slot, learns the limit from Synapse's answer ("Allowed 4 requests every 60 seconds"),
    and sends the rest when the window has room — a handful of 429s, not one per backoff."""
    emulator = make_emulator(max_per_minute=4, latency_ms=20)
    transport = _transport(
        emulator,
        ClientOptions(max_concurrency=3, max_per_window=0, throttle_backoff_max=0.2),
    )
    started = time.monotonic()
    errors: list[BaseException] = []
    runner = threading.Thread(target=lambda: errors.extend(_hammer(transport, 3, 6)))
    try:
        runner.start()
        deadline = time.monotonic() + 10
        while transport.throttled == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert transport.throttled > 0, "the stack never throttled"
        time.sleep(0.3)  # the requests in flight when the first 429 came back have finished
        samples = []
        for _ in range(20):
            samples.append(transport.limiter.in_flight)
            time.sleep(0.05)
        assert samples == [0] * 20, f"a throttled request held a slot while waiting: {samples}"
        runner.join(timeout=120)
        assert not runner.is_alive()
    finally:
        transport.close()
    assert errors == []
    exchanges = _profile_calls(emulator)
    ok = [e for e in exchanges if e["status"] == 200]
    refused = [e for e in exchanges if e["status"] == 429]
    assert len(ok) == 6
    assert time.monotonic() - started >= 60  # the last two waited for the window
    assert 1 <= len(refused) <= 3, f"{len(refused)} 429s: the stated limit was not paced"


def test_limiter_never_admits_more_than_the_window_allows() -> None:
    """Property of the sliding window on a simulated clock: in any ``window`` seconds at most
    ``per_window`` admissions, and never more than ``concurrency`` at once."""
    now = [0.0]
    limiter = RequestLimiter(2, 5, 10.0, clock=lambda: now[0])
    admitted: list[float] = []
    for step in range(40):
        now[0] = step * 0.7
        # Non-blocking probe: admit only while the limiter would not wait.
        while limiter.in_flight < 2 and _would_admit(limiter, now[0]):
            limiter.acquire()
            admitted.append(now[0])
        while limiter.in_flight:
            limiter.release()
    assert admitted, "nothing was admitted"
    for t in admitted:
        assert len([u for u in admitted if t <= u < t + 10.0]) <= 5
    assert limiter.max_in_flight == 2
    assert len(admitted) >= 5 * int(27.3 // 10)  # and the budget is spent, window after window


def test_a_request_counts_from_its_answer_so_the_window_never_ends_early() -> None:
    """The server logs a request somewhere between its send and its answer: counting it from the
    answer, the next one in a full window waits until the answer's time has left it."""
    now = [0.0]
    limiter = RequestLimiter(1, 1, 10.0, clock=lambda: now[0])
    sent_at = limiter.acquire()
    now[0] = 4.0  # the answer comes back four seconds later
    limiter.release(sent_at)
    now[0] = 12.0  # past the send's window, not the answer's
    assert not _would_admit(limiter, now[0])
    now[0] = 14.0
    assert _would_admit(limiter, now[0])


def _would_admit(limiter: RequestLimiter, now: float) -> bool:
    recent = [t for t in limiter._sent if t > now - limiter.horizon]
    return len(recent) < limiter.per_window


def test_stack_limits_come_from_the_synapse_config(tmp_path: Path) -> None:
    config = tmp_path / "synapseConfig"
    config.write_text(
        "[synapse-declare]\nmax_concurrent_requests = 2\nmax_requests_per_minute = 120\n",
        encoding="utf-8",
    )
    limits = resolve_limits(config)
    assert (limits.max_concurrent, limits.max_per_minute) == (2, 120)
    config.write_text("[synapse-declare]\nmax_requests_per_minute = lots\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="max_requests_per_minute"):
        resolve_limits(config)
    assert resolve_limits(tmp_path / "absent") == StackLimits(None, None)


def test_the_stack_limits_of_the_config_file_pace_the_cli(
    make_emulator: Any, tmp_path: Path
) -> None:
    """A stack allowing 1 concurrent request, declared in the config file's [synapse-declare]
    section: apply runs its independent changes without provoking a single 429 (with the
    default of 3 the same apply is throttled: test_apply_converges_under_concurrency_throttle)."""
    emulator = make_emulator(max_concurrent=1, latency_ms=20)
    ws = Workspace(emulator, tmp_path)
    config = tmp_path / "synapseConfig"
    config.write_text("[synapse-declare]\nmax_concurrent_requests = 1\n", encoding="utf-8")
    manifest = ws.manifest(
        """
        version: 1
        projects:
          - name: Paced by the config
            folders: [{name: A}, {name: B}, {name: C}, {name: D}, {name: E}, {name: F}]
        """
    )
    result = ws.run("apply", manifest, "--auto-approve", "--config", config, *ws.connection())
    assert result.code == 0, result.err
    exchanges = read_exchanges(emulator)
    assert len([e for e in exchanges if e["method"] == "POST"]) >= 6
    assert [e for e in exchanges if e["status"] == 429] == []
