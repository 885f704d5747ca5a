"""HTTP transport to Synapse: sessions, retries, timeouts, typed errors, request counting.

Retry policy, and why:

* **Reads** (GET, and the POSTs Synapse uses for reads — children pages, child lookup, bundles,
  header batches, alias lookups, file-handle batches) are retried by urllib3's ``Retry`` on
  429/500/502/503/504 and on connection errors, with exponential backoff, jitter and
  ``Retry-After`` honoured.
* **Writes** are retried only where the request provably did not take effect: connection
  failures before sending, and 429 (Synapse's throttle filters reject before the controller
  runs). Any other failure after the request was sent (5xx, dropped connection, read timeout)
  raises :class:`AmbiguousWrite`; the caller then reads the object back to learn whether the write
  happened (see ``applier``) instead of sending it twice — a blindly retried ``POST /entity``
  could create a duplicate or answer 409, a retried etag-guarded PUT would answer 412.

A **read timeout** is never retried, for reads or writes: ``--timeout`` bounds how long one
request may take, and retrying would turn that bound into (retries + 1) × timeout. It raises
:class:`~synapse_declare.errors.RequestTimeout` for a read, :class:`AmbiguousWrite` for a write.

Concurrency is bounded by a semaphore sized for Synapse's per-user throttle (3 concurrent
requests), shared by every thread that uses this client.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import Counter
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


@dataclass(frozen=True, slots=True)
class ClientOptions:
    connect_timeout: float = 10.0
    read_timeout: float = 70.0
    max_concurrency: int = 3
    retries: int = 8
    backoff_factor: float = 0.5
    backoff_max: float = 30.0
    backoff_jitter: float = 0.5


class Transport:
    """One authenticated connection pool to a Synapse stack."""

    def __init__(
        self, credentials: Credentials | None, endpoints: Endpoints, options: ClientOptions
    ) -> None:
        self.endpoints = endpoints
        self.options = options
        self._credentials = credentials
        self._slots = threading.BoundedSemaphore(options.max_concurrency)
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
            status_forcelist=(429, 500, 502, 503, 504),
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
            status_forcelist=(429,),
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
        with self._slots:
            try:
                response = session.request(
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
                    f"{method} {path}: no answer from Synapse within "
                    f"{self.options.read_timeout:g}s",
                    hint="the server is slow or stuck; try again later, or raise --timeout",
                ) from None
            except requests.exceptions.RequestException as exc:
                raise errors.TransportError(f"{method} {path}: {_short(exc)}") from None
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
