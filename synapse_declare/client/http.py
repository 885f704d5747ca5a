"""HTTP transport to Synapse: sessions, retries, timeouts, typed errors, request counting.

Retry policy, and why:

* **Throttles are paced, not provoked.** Synapse allows each user 3 concurrent requests and 600
  requests in any 60 s (synapse-api.md §11.2). A :class:`RequestLimiter` shared by every thread
  of a client holds both limits on this side: a request waits — without a slot — until one of
  the ``max_concurrency`` slots is free *and* fewer than ``max_per_window`` requests were sent in
  the last ``window_seconds`` (plus a small margin: Synapse counts arrivals, we count sends). So
  the whole budget is spent and, for a client alone on its user, no 429 is provoked. A 429 that
  still arrives (another client using the same account) gives its slot back *before* it waits
  (short jittered backoff, capped at ``throttle_backoff_max``), then queues again. A 429 is
  always safe to resend: Synapse's throttle filters reject before any controller runs.
* **Reads** (GET, and the POSTs Synapse uses for reads — children pages, child lookup, bundles,
  header batches, alias lookups, file-handle batches) are retried by urllib3's ``Retry`` on
  500/502/503/504 and on connection errors, with exponential backoff, jitter and
  ``Retry-After`` honoured.
* **Writes** are retried only where the request provably did not take effect: connection
  failures before sending, and 429 (above). Any other failure after the request was sent (5xx,
  dropped connection, read timeout)
  raises :class:`AmbiguousWrite`; the caller then reads the object back to learn whether the write
  happened (see ``applier``) instead of sending it twice — a blindly retried ``POST /entity``
  could create a duplicate or answer 409, a retried etag-guarded PUT would answer 412.

A **read timeout** is never retried, for reads or writes: ``--timeout`` bounds how long one
request may take, and retrying would turn that bound into (retries + 1) × timeout. It raises
:class:`~synapse_declare.errors.RequestTimeout` for a read, :class:`AmbiguousWrite` for a write.

5xx and connection retries happen inside urllib3 while the request keeps its slot (they are rare
and short); only throttle answers are handled here, outside the slot.
"""

from __future__ import annotations

import bisect
import json
import logging
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import ConnectionPool
from urllib3.exceptions import ReadTimeoutError
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from .. import __version__, errors
from ..auth import Credentials, Endpoints

log = logging.getLogger(__name__)

# Synapse's read-only POST endpoints (safe to retry): path regexes after the /repo/v1 prefix.
READ_ONLY_POSTS = tuple(
    re.compile(p)
    for p in (
        r"^/entity/children$",
        r"^/entity/child$",
        r"^/entity/header$",
        r"^/entity/[^/]+/bundle2$",
        r"^/entity/[^/]+/version/\d+/bundle2$",
        r"^/userGroupHeaders/aliases$",
        r"^/principal/alias$",
        r"^/fileHandle/batch$",
    )
)


class _Retry(Retry):
    """urllib3's ``Retry`` that gives up at once on a read timeout (see the module docstring)."""

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Self:
        if isinstance(error, ReadTimeoutError):
            raise error.with_traceback(_stacktrace)
        return super().increment(method, url, response, error, _pool, _stacktrace)


ERROR_TYPES: dict[int, type[errors.ApiError]] = {
    400: errors.BadRequest,
    401: errors.Unauthorized,
    403: errors.Forbidden,
    404: errors.NotFound,
    409: errors.Conflict,
    412: errors.PreconditionFailed,
    429: errors.TooManyRequests,
}


# Synapse's per-user throttles (synapse-api.md §11.2): the defaults of ClientOptions.
SYNAPSE_MAX_CONCURRENT = 3
SYNAPSE_MAX_PER_MINUTE = 600


@dataclass(frozen=True, slots=True)
class ClientOptions:
    connect_timeout: float = 10.0
    read_timeout: float = 70.0
    max_concurrency: int = SYNAPSE_MAX_CONCURRENT
    # Requests per window_seconds; 0 turns pacing off (a stack without a frequency throttle).
    max_per_window: int = SYNAPSE_MAX_PER_MINUTE
    window_seconds: float = 60.0
    # Added to the window: the server counts a request when it arrives, later than we sent it,
    # and that delay jitters; 0.5 s keeps the pacing below the limit at a cost of < 1%.
    window_margin: float = 0.5
    retries: int = 8
    backoff_factor: float = 0.5
    backoff_max: float = 30.0
    backoff_jitter: float = 0.5
    # 429s: resent after a jittered backoff that never exceeds throttle_backoff_max seconds
    # (synapseclient waits up to 30 s, which leaves most of a minute's budget unspent).
    throttle_retries: int = 300  # with the 2 s cap: ~6 minutes of throttling before giving up
    throttle_backoff: float = 0.25
    throttle_backoff_max: float = 2.0


class RequestLimiter:
    """Synapse's two per-user throttles enforced on the client: at most ``concurrency`` requests in
    flight and at most ``per_window`` requests started in any ``window`` seconds.

    A caller waits in :meth:`acquire` without holding anything; the send time is recorded when it
    is admitted and moved to the answer's time by :meth:`release`: the server counted the request
    somewhere between the two, so a window counted from the answer never ends early (counted from
    the send, a request the server logged late — a loaded server — met a 429). ``per_window`` 0
    means no frequency limit. Statistics (``admitted``, ``max_in_flight``, ``waited_seconds``)
    are for benchmarks and tests.
    """

    def __init__(
        self,
        concurrency: int,
        per_window: int,
        window: float,
        *,
        margin: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if per_window < 0 or window <= 0:
            raise ValueError("per_window must be >= 0 and window > 0")
        self.concurrency = concurrency
        self.per_window = per_window
        self._window = window
        self.horizon = window + max(0.0, margin)
        self._clock = clock
        self._cond = threading.Condition()
        self._in_flight = 0
        self._sent: list[float] = []  # sorted
        self.admitted = 0
        self.max_in_flight = 0
        self.waited_seconds = 0.0

    def acquire(self) -> float:
        """Wait for room; returns the recorded send time, to give back to :meth:`release`."""
        with self._cond:
            entered = self._clock()
            while True:
                now = self._clock()
                timeout: float | None = None
                expired = bisect.bisect_right(self._sent, now - self.horizon)
                del self._sent[:expired]
                if self._in_flight < self.concurrency:
                    if not self.per_window or len(self._sent) < self.per_window:
                        break
                    # The oldest send leaves the window at this time; nothing can go before.
                    timeout = self._sent[0] + self.horizon - now
                self._cond.wait(timeout)
            self._in_flight += 1
            self.admitted += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            self.waited_seconds += now - entered
            # Recorded even without a frequency limit: when a 429 states one (tighten), the
            # sends already in its window count against it.
            bisect.insort(self._sent, now)
            return now

    def tighten(
        self,
        *,
        concurrency: int | None = None,
        per_window: int | None = None,
        window: float | None = None,
    ) -> bool:
        """Lower the limits to what the server said it enforces (never raises them); True if
        anything changed."""
        with self._cond:
            before = (self.concurrency, self.per_window, self.horizon)
            if concurrency is not None and 1 <= concurrency < self.concurrency:
                self.concurrency = concurrency
            if per_window is not None and per_window >= 1:
                margin = self.horizon - self._window
                if not self.per_window or per_window < self.per_window:
                    self.per_window = per_window
                if window is not None and window > self._window:
                    self._window = window
                    self.horizon = window + margin
            changed = before != (self.concurrency, self.per_window, self.horizon)
            if changed:
                self._cond.notify_all()
            return changed

    def release(self, sent_at: float | None = None) -> None:
        """Give the slot back; ``sent_at`` (what :meth:`acquire` returned) now counts from the
        answer's time."""
        with self._cond:
            self._in_flight -= 1
            if sent_at is not None:
                at = bisect.bisect_left(self._sent, sent_at)
                if at < len(self._sent) and self._sent[at] == sent_at:
                    del self._sent[at]
                bisect.insort(self._sent, self._clock())
            self._cond.notify_all()

    @property
    def in_flight(self) -> int:
        with self._cond:
            return self._in_flight


class Transport:
    """One authenticated connection pool to a Synapse stack."""

    def __init__(
        self, credentials: Credentials | None, endpoints: Endpoints, options: ClientOptions
    ) -> None:
        self.endpoints = endpoints
        self.options = options
        self._credentials = credentials
        self.limiter = RequestLimiter(
            options.max_concurrency,
            options.max_per_window,
            options.window_seconds,
            margin=options.window_margin,
        )
        self.throttled = 0  # 429 answers received (each resent after giving its slot back)
        self.calls: Counter[str] = Counter()
        self._count_lock = threading.Lock()
        pool = max(options.max_concurrency, 4)
        read_retry = _Retry(
            total=options.retries,
            # A refused connection is almost always a wrong endpoint: fail within seconds.
            connect=min(options.retries, 3),
            read=options.retries,
            status=options.retries,
            other=0,
            allowed_methods=frozenset({"GET", "HEAD", "POST"}),
            status_forcelist=(500, 502, 503, 504),
            backoff_factor=options.backoff_factor,
            backoff_max=options.backoff_max,
            backoff_jitter=options.backoff_jitter,
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        write_retry = _Retry(
            total=options.retries,
            connect=min(options.retries, 3),
            read=0,
            status=options.retries,
            other=0,
            allowed_methods=frozenset({"POST", "PUT", "DELETE"}),
            status_forcelist=(),
            backoff_factor=options.backoff_factor,
            backoff_max=options.backoff_max,
            backoff_jitter=options.backoff_jitter,
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        self._read = self._session(read_retry, pool)
        self._write = self._session(write_retry, pool)

    def _session(self, retry: Retry, pool: int) -> requests.Session:
        session = requests.Session()
        adapter = HTTPAdapter(max_retries=retry, pool_connections=pool, pool_maxsize=pool)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers.update(
            {
                "Content-Type": "application/json; charset=UTF-8",
                "Accept": "application/json",
                "User-Agent": f"synapse-declare/{__version__}",
            }
        )
        if self._credentials is not None:
            session.headers["Authorization"] = f"Bearer {self._credentials.token}"
        # Never read ~/.netrc or proxy settings that could redirect a token elsewhere.
        session.trust_env = False
        return session

    def close(self) -> None:
        self._read.close()
        self._write.close()

    def total_calls(self) -> int:
        with self._count_lock:
            return sum(self.calls.values())

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        service: str = "repo",
    ) -> Any:
        """Send one request; returns parsed JSON (or None for an empty body)."""
        base = {
            "repo": self.endpoints.repo,
            "file": self.endpoints.file,
            "auth": self.endpoints.auth,
        }[service]
        url = base + path
        is_read = method in ("GET", "HEAD") or (
            method == "POST" and service != "auth" and any(p.match(path) for p in READ_ONLY_POSTS)
        )
        session = self._read if is_read else self._write
        data = None if body is None else json.dumps(body).encode("utf-8")
        label = f"{method} {_template(path)}"
        with self._count_lock:
            self.calls[label] += 1
        started = time.perf_counter()
        throttled = 0
        while True:
            response = self._send(session, method, path, url, base, data, params, is_read)
            if response.status_code != 429 or throttled >= self.options.throttle_retries:
                break
            # The slot is already given back: wait outside it, then queue again.
            throttled += 1
            with self._count_lock:
                self.throttled += 1
            self._learn_limits(response)
            delay = min(
                self.options.throttle_backoff_max,
                self.options.throttle_backoff * 2 ** (throttled - 1),
            )
            retry_after = _retry_after(response)
            if retry_after is not None:
                delay = max(delay, min(retry_after, 60.0))
            time.sleep(delay * random.uniform(0.5, 1.0))
        log.debug(
            "%s %s -> %s (%.0f ms)",
            method,
            path,
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        if response.status_code >= 400:
            if not is_read and response.status_code >= 500:
                raise errors.AmbiguousWrite(
                    f"{method} {path}: Synapse answered {response.status_code}; outcome unknown",
                    method=method,
                    path=path,
                    status=response.status_code,
                )
            raise _api_error(method, path, response)
        if not response.content.strip():
            return None
        try:
            return response.json()
        except ValueError:
            return response.text

    def _learn_limits(self, response: requests.Response) -> None:
        """Synapse's throttle answers state the limit they enforce; a stack stricter than this
        client's settings (or a per-user override) is then paced at its own limit."""
        try:
            reason = str(response.json().get("reason", ""))
        except (ValueError, AttributeError):
            return
        frequency = _TOO_FREQUENT.search(reason)
        concurrent = _TOO_MANY_CONCURRENT.search(reason)
        changed = False
        if frequency is not None:
            changed = self.limiter.tighten(
                per_window=int(frequency.group(1)), window=float(frequency.group(2))
            )
        elif concurrent is not None:
            changed = self.limiter.tighten(concurrency=int(concurrent.group(1)))
        if changed:
            log.info("Synapse throttled this client (%s); pacing at that limit from now on", reason)

    def _send(
        self,
        session: requests.Session,
        method: str,
        path: str,
        url: str,
        base: str,
        data: bytes | None,
        params: dict[str, Any] | None,
        is_read: bool,
    ) -> requests.Response:
        """One admitted exchange (urllib3 may resend it on a 5xx or connection error while it
        holds its slot); the slot is released before this returns or raises."""
        sent_at = self.limiter.acquire()
        try:
            return session.request(
                method,
                url,
                data=data,
                params=params,
                timeout=(self.options.connect_timeout, self.options.read_timeout),
                allow_redirects=False,
            )
        except requests.exceptions.ConnectionError as exc:
            if not is_read and not _never_sent(exc):
                raise errors.AmbiguousWrite(
                    f"{method} {path}: connection lost after sending; outcome unknown",
                    method=method,
                    path=path,
                    status=None,
                ) from None
            raise errors.TransportError(
                f"{method} {path}: cannot reach Synapse at {base} ({_short(exc)})",
                hint="check --endpoint / [endpoints] in ~/.synapseConfig and your network",
            ) from None
        except requests.exceptions.Timeout:
            if not is_read:
                raise errors.AmbiguousWrite(
                    f"{method} {path}: timed out after sending; outcome unknown",
                    method=method,
                    path=path,
                    status=None,
                ) from None
            raise errors.RequestTimeout(
                f"{method} {path}: no answer from Synapse within {self.options.read_timeout:g}s",
                hint="the server is slow or stuck; try again later, or raise --timeout",
            ) from None
        except requests.exceptions.RequestException as exc:
            raise errors.TransportError(f"{method} {path}: {_short(exc)}") from None
        finally:
            self.limiter.release(sent_at)


# Only Synapse's global throttles (§11.2); per-API rules name a path and are left to backoff.
_TOO_FREQUENT = re.compile(
    r"^Requests are too frequent\. Allowed (\d+) requests every (\d+) seconds"
)
_TOO_MANY_CONCURRENT = re.compile(r"Allowed (\d+) concurrent connections")


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return None if value is None else max(0.0, float(value))
    except ValueError:
        return None


def _never_sent(exc: requests.exceptions.ConnectionError) -> bool:
    """True when the connection failed before the request could reach the server."""
    text = repr(exc)
    return any(
        marker in text
        for marker in (
            "NewConnectionError",
            "Failed to establish",
            "ConnectTimeout",
            "NameResolution",
        )
    )


def _template(path: str) -> str:
    """Collapse ids so call counts group by endpoint."""
    path = re.sub(r"/syn\d+", "/{id}", path)
    return re.sub(r"/\d+", "/{n}", path)


def _short(exc: BaseException) -> str:
    text = str(exc)
    # urllib3 wraps the OS error several times; its "[Errno 111] Connection refused" is the news.
    errno = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if errno:
        return errno.group(1).strip()
    if "timed out" in text.lower():
        return "timed out"
    return text if len(text) < 300 else text[:300] + "..."


def _api_error(method: str, path: str, response: requests.Response) -> errors.ApiError:
    reason = ""
    error_code = None
    try:
        body = response.json()
        if isinstance(body, dict):
            reason = str(body.get("reason", ""))
            error_code = body.get("errorCode")
    except ValueError:
        reason = response.text[:500]
    if len(reason) > 1000:
        reason = reason[:1000] + "..."
    status = response.status_code
    cls = ERROR_TYPES.get(status, errors.ServerError if status >= 500 else errors.ApiError)
    hint = None
    if status == 401:
        hint = "the token was rejected: check SYNAPSE_AUTH_TOKEN / ~/.synapseConfig"
    elif status == 429:
        hint = "Synapse is throttling this user; retry later or lower --parallel"
    return cls(
        f"{method} {path}: {status} {reason or response.reason}",
        status=status,
        reason=reason,
        method=method,
        path=path,
        error_code=error_code,
        hint=hint,
    )
