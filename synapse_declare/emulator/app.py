"""The emulator's WSGI application: routing, authentication, and the test knobs.

Each endpoint module (``principals``, ``entities``, ``acl``, ...) exposes ``ROUTES`` (a list of
:class:`Route`) and ``SCHEMA`` (its SQLite DDL). This module turns a request into a
:class:`Ctx`, finds the handler, runs it inside one store transaction and writes the JSON answer
exactly as Synapse does (nulls omitted, ``ErrorResponse`` bodies for errors).

Knobs, applied in this order: fault injection *before* the handler, throttling (concurrency and
per-minute, as Synapse's servlet filters), emulated latency (outside the store lock), the handler,
fault injection *after* the commit, the request log.
"""

from __future__ import annotations

import json
import logging
import random
import socket
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit, urlunsplit

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from . import principals
from .routing import Handler, Reply, Route
from .util import ANONYMOUS, MIGRATION_ADMIN, SynapseError, clean

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from .server import Emulator
    from .store import Store


@dataclass
class Ctx:
    """Everything a handler needs about one request."""

    emulator: Emulator
    store: Store
    caller: principals.Caller
    request: Request
    _body: Any = None
    _body_read: bool = False

    @property
    def args(self) -> Any:
        return self.request.args

    @property
    def body(self) -> Any:
        """The parsed JSON body (None when empty); malformed JSON is a 400 as on Synapse."""
        if not self._body_read:
            self._body_read = True
            raw = self.request.get_data()
            if raw.strip():
                charset = self.request.mimetype_params.get("charset", "iso-8859-1")
                try:
                    self._body = json.loads(raw.decode(charset))
                except (ValueError, LookupError) as exc:
                    raise SynapseError(400, f"Could not parse JSON: {exc}") from exc
        return self._body

    def json_body(self) -> dict[str, Any]:
        body = self.body
        if not isinstance(body, dict):
            raise SynapseError(400, "Request body is required and must be a JSON object")
        return body


class _DropConnection(Exception):
    """Raised to make the server close the socket without answering (fault injection)."""


FAULT_KINDS = (
    "503-before",
    "500-before",
    "drop-before",
    "503-after",
    "500-after",
    "drop-after",
)


class Knobs:
    """Runtime-adjustable test knobs (the Python API and the CLI set the same fields)."""

    def __init__(
        self,
        *,
        latency_ms: float = 0.0,
        max_concurrent: int | None = None,
        max_per_minute: int | None = None,
        fault_rate: float = 0.0,
        fault_seed: int = 0,
        fault_kinds: Iterable[str] = FAULT_KINDS,
    ) -> None:
        self.latency_ms = latency_ms
        self.max_concurrent = max_concurrent
        self.max_per_minute = max_per_minute
        self.lock = threading.Lock()
        self.set_faults(fault_rate, fault_seed, fault_kinds)
        self._in_flight: dict[int, int] = defaultdict(int)
        self._recent: dict[int, deque[float]] = defaultdict(deque)
        # Called with (ctx) before a mutating request runs its handler: lets tests race a write.
        self.before_write: Callable[[Ctx], None] | None = None
        # Called with (method, path) for each request: a fault kind to inject there, or None
        # (then the random draw decides). Lets a test lose the response of one chosen write.
        self.fault_for: Callable[[str, str], str | None] | None = None

    def set_faults(self, rate: float, seed: int = 0, kinds: Iterable[str] = FAULT_KINDS) -> None:
        kinds = tuple(kinds)
        unknown = set(kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds: {sorted(unknown)}; choose from {FAULT_KINDS}")
        with getattr(self, "lock", threading.Lock()):
            self.fault_rate = rate
            self.fault_kinds = kinds
            self._rng = random.Random(seed)

    def draw_fault(self) -> str | None:
        with self.lock:
            if self.fault_rate <= 0:
                return None
            roll = self._rng.random()
            kind = self._rng.choice(self.fault_kinds)
            return kind if roll < self.fault_rate else None

    def enter(self, user_id: int) -> None:
        """Synapse's throttle filters; raises a raw-body 429 as the real filters do."""
        with self.lock:
            if self.max_per_minute is not None:
                window = self._recent[user_id]
                cutoff = time.monotonic() - 60.0
                while window and window[0] < cutoff:
                    window.popleft()
                if len(window) >= self.max_per_minute:
                    raise SynapseError(
                        429,
                        "Requests are too frequent. Allowed "
                        f"{self.max_per_minute} requests every 60 seconds.",
                        raw=True,
                    )
                window.append(time.monotonic())
            if self.max_concurrent is not None:
                if self._in_flight[user_id] >= self.max_concurrent:
                    raise SynapseError(
                        429,
                        "Too many concurrent requests. Allowed "
                        f"{self.max_concurrent} concurrent connections at any time.",
                        raw=True,
                    )
            self._in_flight[user_id] += 1

    def leave(self, user_id: int) -> None:
        with self.lock:
            self._in_flight[user_id] -= 1


SECRET_KEYS = {"secretAccessKey", "sessionToken", "accessKeyId", "token", "secretKey"}
URL_KEYS = {"preSignedURL", "previewPreSignedURL", "uploadPresignedUrl"}


def redact(value: Any) -> Any:
    """What the request log may contain: no STS secrets, no presigned URL signatures."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in SECRET_KEYS and isinstance(item, str):
                out[key] = "***"
            elif key in URL_KEYS and isinstance(item, str):
                parts = urlsplit(item)
                out[key] = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
            elif key == "signedHeaders" and isinstance(item, dict):
                out[key] = {k: "***" for k in item}
            else:
                out[key] = redact(item)
        return out
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


class RequestLog:
    def __init__(self, path: str) -> None:
        self._lock = threading.Lock()
        self._file: TextIO = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":"), sort_keys=True)
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


SYNAPSE_PREFIXES = ("/repo/v1", "/file/v1", "/auth/v1")
ROOT_PATHS = {"/", "/repo/v1", "/file/v1", "/auth/v1", "/portal", "/portal/"}
MUTATING = {"POST", "PUT", "DELETE", "PATCH"}


class SynapseApp:
    """WSGI callable."""

    def __init__(self, emulator: Emulator, routes: Iterable[Route]) -> None:
        self.emulator = emulator
        self.handlers: dict[str, Handler] = {}
        rules = []
        for index, route in enumerate(routes):
            key = f"r{index}"
            self.handlers[key] = route.handler
            rules.append(Rule(route.path, endpoint=key, methods=[route.method]))
            if route.path.startswith(SYNAPSE_PREFIXES) and not route.path.endswith("/"):
                # Synapse's Spring mapping accepts a trailing slash (SPC calls GET /userProfile/).
                rules.append(
                    Rule(
                        route.path + "/", endpoint=key, methods=[route.method], strict_slashes=False
                    )
                )
        self.url_map = Map(rules, strict_slashes=False, merge_slashes=False)
        self.request_log: RequestLog | None = None
        # Requests being handled (any user): stop() waits for them before closing the store,
        # so a slow handler a client gave up on does not fail against a closed database.
        self._busy = 0
        self._idle = threading.Condition()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is being handled; False if some still were after ``timeout``."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout=timeout)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        with self._idle:
            self._busy += 1
        try:
            return self._call(environ, start_response)
        finally:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    def _call(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        started = time.perf_counter()
        path = request.path
        is_synapse = path.startswith(SYNAPSE_PREFIXES)
        knobs = self.emulator.knobs
        fault = None
        if is_synapse and path not in ROOT_PATHS:
            chosen = knobs.fault_for(request.method, path) if knobs.fault_for else None
            fault = chosen or knobs.draw_fault()
        request_json: Any = None
        caller_id = ANONYMOUS
        try:
            if fault == "drop-before":
                raise _DropConnection()
            if fault in ("503-before", "500-before"):
                raise _fault_error(fault)
            response, request_json, caller_id = self._dispatch(request, fault)
        except _DropConnection:
            self._log(request, request_json, None, None, started)
            _drop(environ)
            raise ConnectionResetError("fault injection: connection dropped") from None
        except SynapseError as err:
            response = self._error_response(err)
        except Exception as exc:  # a bug in a handler: answer as Synapse does, with JSON
            log.exception("emulator handler failed for %s %s", request.method, path)
            response = self._error_response(SynapseError(500, f"{type(exc).__name__}: {exc}"))
        status = response.status_code
        response_json = None
        if self.request_log is not None and response.mimetype == "application/json":
            data = response.get_data()
            response_json = json.loads(data) if data.strip() else None
        self._log(request, request_json, status, response_json, started)
        del caller_id
        return response(environ, start_response)

    def _dispatch(self, request: Request, fault: str | None) -> tuple[Response, Any, int]:
        adapter = self.url_map.bind_to_environ(request.environ)
        path = request.path
        if request.method == "GET" and path in ROOT_PATHS:
            # synapseclient probes each endpoint root in its constructor.
            return Response("synapse-declare emulator", mimetype="text/plain"), None, ANONYMOUS
        try:
            endpoint, url_args = adapter.match()
        except MethodNotAllowed:
            raise SynapseError(405, f"Request method '{request.method}' is not supported") from None
        except (NotFound, HTTPException):
            raise SynapseError(
                404,
                f"{request.method} was not found. Please reference API documentation at "
                "https://rest-docs.synapse.org/rest/",
            ) from None
        if request.content_length and request.content_length > 2 * 1024 * 1024:
            raise SynapseError(413, "Request body exceeds the maximum size of 2 MB")
        emulator = self.emulator
        caller = principals.resolve_caller(emulator.store, _bearer(request))
        ctx = Ctx(emulator=emulator, store=emulator.store, caller=caller, request=request)
        # The parsed body is only needed for the request log (handlers parse via ctx.body).
        request_json = _peek_json(request) if self.request_log is not None else None
        throttled = not caller.anonymous and caller.id != MIGRATION_ADMIN
        knobs = emulator.knobs
        if throttled:
            knobs.enter(caller.id)
        try:
            if knobs.latency_ms > 0:
                time.sleep(knobs.latency_ms / 1000.0)
            if request.method in MUTATING and knobs.before_write is not None:
                knobs.before_write(ctx)
            handler = self.handlers[endpoint]
            with emulator.store.transaction():
                result = handler(ctx, **url_args)
        finally:
            if throttled:
                knobs.leave(caller.id)
        if fault == "drop-after":
            raise _DropConnection()
        if fault in ("503-after", "500-after"):
            raise _fault_error(fault)
        return _to_response(result), request_json, caller.id

    def _error_response(self, err: SynapseError) -> Response:
        response = Response(json.dumps(err.body()), status=err.status, mimetype="application/json")
        response.headers["Content-Type"] = "application/json;charset=UTF-8"
        for key, value in err.headers.items():
            response.headers[key] = value
        return response

    def _log(
        self,
        request: Request,
        request_json: Any,
        status: int | None,
        response_json: Any,
        started: float,
    ) -> None:
        if self.request_log is None or not request.path.startswith(SYNAPSE_PREFIXES):
            return
        self.request_log.write(
            {
                "method": request.method,
                "path": request.path,
                "query": {k: v if len(v) > 1 else v[0] for k, v in request.args.lists()},
                "status": status,
                "request": redact(
                    request_json if request_json is not None else _peek_json(request)
                ),
                "response": redact(response_json),
                "duration_ms": round((time.perf_counter() - started) * 1000.0, 3),
            }
        )


def _fault_error(kind: str) -> SynapseError:
    if kind.startswith("503"):
        return SynapseError(503, "Service temporarily unavailable, please try again later.")
    return SynapseError(500, "Injected internal error (emulator fault injection)")


def _drop(environ: dict[str, Any]) -> None:
    sock = environ.get("werkzeug.socket")
    if isinstance(sock, socket.socket):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _bearer(request: Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    session = request.headers.get("sessionToken")
    return session.strip() if session else None


def _peek_json(request: Request) -> Any:
    raw = request.get_data(cache=True)
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _to_response(result: Any) -> Response:
    if isinstance(result, Response):
        return result
    if isinstance(result, Reply):
        if result.body is None:
            response = Response(b"", status=result.status)
            if result.content_type:
                response.headers["Content-Type"] = result.content_type
        elif isinstance(result.body, bytes | str):
            response = Response(
                result.body, status=result.status, mimetype=result.content_type or "text/plain"
            )
        else:
            response = Response(
                json.dumps(clean(result.body)), status=result.status, mimetype="application/json"
            )
            response.headers["Content-Type"] = "application/json;charset=UTF-8"
        for key, value in result.headers.items():
            response.headers[key] = value
        return response
    if result is None:
        return Response(b"", status=200)
    response = Response(json.dumps(clean(result)), status=200, mimetype="application/json")
    response.headers["Content-Type"] = "application/json;charset=UTF-8"
    return response
