"""A WSGI gateway in front of the embedded moto S3 server: what moto does not enforce itself.

moto's server accepts any credentials and any signature, ignores the signed headers of presigned
URLs and the ``x-amz-copy-source-if-match`` precondition of UploadPartCopy, and its optional IAM
mode is process-wide, breaks presigned URLs and ignores STS session policies (see
docs/emulator.md, "Storage and STS fidelity"). The gateway adds, per emulator:

* **STS credentials** issued by ``GET /entity/{id}/sts``: the session token must match, expired
  credentials get ``ExpiredToken``, the SigV4 signature is verified with the credential's secret,
  and every request is evaluated against Synapse's session policy (ListBucket with the
  ``s3:prefix`` conditions, the read-only or read-write action list on ``bucket/baseKey/*``, and
  the explicit deny on ``bucket/baseKey/owner.txt``); anything else is ``AccessDenied``.
* **Presigned URLs signed with the emulator's own key** (downloads, part uploads, copy parts):
  the signature is verified, so every signed header (e.g. ``x-amz-copy-source``) must be sent,
  and expired URLs are refused.
* ``x-amz-copy-source-if-match`` on any copy is checked against the source object's ETag.

Requests signed with any other key (the emulator's own boto3 calls, tests' clients) pass through.
The gateway is installed lazily, on the first request the storage endpoints answer.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import io
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote, urlparse

from .routing import Route

if TYPE_CHECKING:
    from .app import Ctx
    from .server import Emulator
    from .store import Store

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS sts_credentials (
    access_key_id TEXT PRIMARY KEY,
    secret_access_key TEXT NOT NULL,
    session_token TEXT NOT NULL,
    expires_at REAL NOT NULL,        -- epoch seconds
    bucket TEXT NOT NULL,
    base_key TEXT,
    permission TEXT NOT NULL,        -- read_only | read_write
    user_id INTEGER NOT NULL,
    entity_id INTEGER NOT NULL
);
"""
ROUTES: list[Route] = []

READ_ONLY_ACTIONS = frozenset({"s3:GetObject", "s3:ListBucket"})
READ_WRITE_ACTIONS = READ_ONLY_ACTIONS | {
    "s3:AbortMultipartUpload",
    "s3:DeleteObject",
    "s3:ListMultipartUploadParts",
    "s3:PutObject",
    "s3:ListBucketMultipartUploads",
    "s3:PutObjectAcl",
}
OBJECT_GET_SUBRESOURCES = {
    "acl": "s3:GetObjectAcl",
    "tagging": "s3:GetObjectTagging",
    "attributes": "s3:GetObjectAttributes",
    "legal-hold": "s3:GetObjectLegalHold",
    "retention": "s3:GetObjectRetention",
    "torrent": "s3:GetObjectTorrent",
}
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_AUTH_HEADER = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+),\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+),\s*Signature=(?P<signature>[0-9a-fA-F]+)"
)


@dataclass(frozen=True)
class Grant:
    """One set of STS credentials and the session policy Synapse attached to it."""

    secret: str
    token: str
    expires_at: float
    bucket: str
    base_key: str | None
    permission: str

    @property
    def actions(self) -> frozenset[str]:
        return READ_WRITE_ACTIONS if self.permission == "read_write" else READ_ONLY_ACTIONS


class Denied(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _glob(pattern: str, value: str) -> bool:
    """IAM's wildcard matching: ``*`` is any run of characters, ``?`` any one."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


def policy_allows(grant: Grant, action: str, resource: str, prefix: str | None) -> bool:
    """Synapse's STS session policy (sts-policy-template.json) for one action on one resource."""
    base = grant.base_key or ""
    folder = f"{grant.bucket}/{base}" if base else grant.bucket
    owner_txt = f"{folder}/owner.txt"
    if resource == owner_txt:
        return False  # DenyOwnerTxt: s3:* on the ownership marker
    if action.startswith("s3:ListBucket") and resource == grant.bucket and prefix is not None:
        # ListParentBuckets (s3:prefix == folder) and ListBucketAccess (s3:prefix like folder/*)
        if prefix == base or _glob(f"{base}/*" if base else "*", prefix):
            return True
    return action in grant.actions and (resource == folder or _glob(f"{folder}/*", resource))


def _first(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _copy_source(value: str) -> tuple[str, str]:
    path = unquote(urlparse(value).path).lstrip("/")
    bucket, _, key = path.partition("/")
    return bucket, key


def requested_actions(
    method: str,
    bucket: str | None,
    key: str | None,
    query: dict[str, list[str]],
    headers: dict[str, str],
) -> list[tuple[str, str, str | None]]:
    """The IAM actions (with resource and s3:prefix) one S3 REST request needs."""
    if not bucket:
        return [("s3:ListAllMyBuckets", "*", None)]
    if key is None:
        prefix = _first(query, "prefix")
        if method in ("GET", "HEAD"):
            if "uploads" in query:
                return [("s3:ListBucketMultipartUploads", bucket, prefix)]
            if "versions" in query:
                return [("s3:ListBucketVersions", bucket, prefix)]
            known = {
                "list-type",
                "prefix",
                "delimiter",
                "max-keys",
                "marker",
                "continuation-token",
                "start-after",
                "fetch-owner",
                "encoding-type",
                "x-id",
            }
            others = [q for q in query if q not in known and not q.startswith("X-Amz-")]
            if others:
                return [(f"s3:GetBucket-{others[0]}", bucket, None)]
            return [("s3:ListBucket", bucket, prefix)]
        return [(f"s3:{method.title()}Bucket", bucket, None)]
    resource = f"{bucket}/{key}"
    if method in ("GET", "HEAD"):
        if "uploadId" in query:
            return [("s3:ListMultipartUploadParts", resource, None)]
        for name, action in OBJECT_GET_SUBRESOURCES.items():
            if name in query:
                return [(action, resource, None)]
        return [("s3:GetObject", resource, None)]
    if method == "PUT":
        needed: list[tuple[str, str, str | None]]
        if "acl" in query:
            needed = [("s3:PutObjectAcl", resource, None)]
        elif "tagging" in query:
            needed = [("s3:PutObjectTagging", resource, None)]
        else:
            needed = [("s3:PutObject", resource, None)]
        copy = headers.get("x-amz-copy-source")
        if copy:
            src_bucket, src_key = _copy_source(copy)
            needed.append(("s3:GetObject", f"{src_bucket}/{src_key}", None))
        return needed
    if method == "POST":
        if "restore" in query:
            return [("s3:RestoreObject", resource, None)]
        if "select" in query:
            return [("s3:GetObject", resource, None)]
        return [("s3:PutObject", resource, None)]
    if method == "DELETE":
        if "uploadId" in query:
            return [("s3:AbortMultipartUpload", resource, None)]
        if "tagging" in query:
            return [("s3:DeleteObjectTagging", resource, None)]
        return [("s3:DeleteObject", resource, None)]
    return [(f"s3:{method.title()}Object", resource, None)]


# ---------------------------------------------------------------------------------------------
# SigV4 verification (header and query authentication)


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def _canonical_query(raw_query: str, *, drop_signature: bool) -> str:
    pairs: list[tuple[str, str]] = []
    for part in raw_query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        name, value = unquote(name), unquote(value)
        if drop_signature and name == "X-Amz-Signature":
            continue
        pairs.append((quote(name, safe="-_.~"), quote(value, safe="-_.~")))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def expected_signature(
    *,
    secret: str,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: dict[str, str],
    signed_headers: list[str],
    amz_date: str,
    scope: str,
    payload_hash: str,
    query_auth: bool,
) -> str:
    canonical_headers = "".join(
        f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in signed_headers
    )
    canonical = "\n".join(
        [
            method,
            quote(unquote(raw_path), safe="/~"),
            _canonical_query(raw_query, drop_signature=query_auth),
            canonical_headers,
            ";".join(signed_headers),
            payload_hash,
        ]
    )
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    date, region, service, terminal = [*scope.split("/"), "", "", ""][:4]
    key = _hmac(f"AWS4{secret}".encode(), date)
    for part in (region, service, terminal):
        key = _hmac(key, part)
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


@dataclass
class Signed:
    access_key: str
    scope: str
    signed_headers: list[str]
    signature: str
    amz_date: str
    query_auth: bool
    expires: int | None
    token: str | None


def parse_signature(headers: dict[str, str], query: dict[str, list[str]]) -> Signed | None:
    if _first(query, "X-Amz-Algorithm") == "AWS4-HMAC-SHA256":
        credential = _first(query, "X-Amz-Credential") or ""
        access_key, _, scope = credential.partition("/")
        expires = _first(query, "X-Amz-Expires")
        return Signed(
            access_key=access_key,
            scope=scope,
            signed_headers=(_first(query, "X-Amz-SignedHeaders") or "").split(";"),
            signature=_first(query, "X-Amz-Signature") or "",
            amz_date=_first(query, "X-Amz-Date") or "",
            query_auth=True,
            expires=int(expires) if expires and expires.isdigit() else None,
            token=_first(query, "X-Amz-Security-Token"),
        )
    match = _AUTH_HEADER.match(headers.get("authorization", ""))
    if match is None:
        return None
    access_key, _, scope = match.group("credential").partition("/")
    return Signed(
        access_key=access_key,
        scope=scope,
        signed_headers=match.group("signed").split(";"),
        signature=match.group("signature"),
        amz_date=headers.get("x-amz-date", ""),
        query_auth=False,
        expires=None,
        token=headers.get("x-amz-security-token"),
    )


def _epoch(amz_date: str) -> float | None:
    try:
        return datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------
# The gateway


def _environ_headers(environ: dict[str, Any]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in environ.items():
        if name.startswith("HTTP_"):
            headers[name[5:].replace("_", "-").lower()] = str(value)
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = str(environ["CONTENT_TYPE"])
    if environ.get("CONTENT_LENGTH"):
        headers["content-length"] = str(environ["CONTENT_LENGTH"])
    return headers


class Gateway:
    """WSGI middleware wrapped around moto's application for one emulator."""

    def __init__(self, app: Any, own_key: str, own_secret: str, s3: Any) -> None:
        self.app = app
        self.own_key = own_key
        self.own_secret = own_secret
        self.s3 = s3
        self.lock = threading.Lock()
        self.grants: dict[str, Grant] = {}

    def grant(self, access_key: str, grant: Grant) -> None:
        with self.lock:
            self.grants[access_key] = grant

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        try:
            self._check(environ, method)
        except Denied as denied:
            return self._error(denied, method, start_response)
        result: Iterable[bytes] = self.app(environ, start_response)
        return result

    # -- checks

    def _check(self, environ: dict[str, Any], method: str) -> None:
        raw = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or "")
        if not raw:
            raw = quote(str(environ.get("PATH_INFO", "/")))
            if environ.get("QUERY_STRING"):
                raw += "?" + str(environ["QUERY_STRING"])
        if "://" in raw.split("?", 1)[0]:
            raw = raw.split("://", 1)[1].partition("/")[2]
            raw = "/" + raw
        raw_path, _, raw_query = raw.partition("?")
        query = parse_qs(raw_query, keep_blank_values=True)
        headers = _environ_headers(environ)
        signed = parse_signature(headers, query)
        if signed is not None:
            with self.lock:
                grant = self.grants.get(signed.access_key)
            if grant is not None:
                self._check_sts(environ, method, raw_path, raw_query, query, headers, signed, grant)
            elif signed.access_key == self.own_key and signed.query_auth:
                self._check_signature(method, raw_path, raw_query, headers, signed, self.own_secret)
        if method == "PUT" and headers.get("x-amz-copy-source-if-match"):
            self._check_copy_precondition(headers)

    def _check_signature(
        self,
        method: str,
        raw_path: str,
        raw_query: str,
        headers: dict[str, str],
        signed: Signed,
        secret: str,
    ) -> None:
        if signed.query_auth:
            start = _epoch(signed.amz_date)
            if start is None or signed.expires is None:
                raise Denied(403, "AuthorizationQueryParametersError", "Invalid presigned URL")
            if time.time() > start + signed.expires:
                raise Denied(403, "AccessDenied", "Request has expired")
            payload = UNSIGNED_PAYLOAD
        else:
            payload = headers.get("x-amz-content-sha256", EMPTY_SHA256)
        expected = expected_signature(
            secret=secret,
            method=method,
            raw_path=raw_path,
            raw_query=raw_query,
            headers=headers,
            signed_headers=signed.signed_headers,
            amz_date=signed.amz_date,
            scope=signed.scope,
            payload_hash=payload,
            query_auth=signed.query_auth,
        )
        if not hmac.compare_digest(expected, signed.signature.lower()):
            raise Denied(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. "
                "Check your key and signing method.",
            )

    def _check_sts(
        self,
        environ: dict[str, Any],
        method: str,
        raw_path: str,
        raw_query: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        signed: Signed,
        grant: Grant,
    ) -> None:
        if signed.token != grant.token:
            raise Denied(
                403, "InvalidToken", "The provided token is malformed or otherwise invalid."
            )
        if time.time() >= grant.expires_at:
            raise Denied(400, "ExpiredToken", "The provided token has expired.")
        self._check_signature(method, raw_path, raw_query, headers, signed, grant.secret)
        path = unquote(raw_path).lstrip("/")
        bucket, sep, key = path.partition("/")
        object_key: str | None = key if sep and key else None
        if method == "POST" and object_key is None and "delete" in query:
            keys = self._delete_keys(environ)
            needed: list[tuple[str, str, str | None]] = [
                ("s3:DeleteObject", f"{bucket}/{k}", None) for k in keys
            ]
        else:
            needed = requested_actions(method, bucket or None, object_key, query, headers)
        for action, resource, prefix in needed:
            if not policy_allows(grant, action, resource, prefix):
                raise Denied(403, "AccessDenied", "Access Denied")

    def _delete_keys(self, environ: dict[str, Any]) -> list[str]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        text = body.decode("utf-8", errors="replace")
        return [html.unescape(k) for k in re.findall(r"<Key>(.*?)</Key>", text, flags=re.DOTALL)]

    def _check_copy_precondition(self, headers: dict[str, str]) -> None:
        bucket, key = _copy_source(headers.get("x-amz-copy-source", ""))
        wanted = headers["x-amz-copy-source-if-match"].strip().strip('"')
        try:
            etag = str(self.s3.head_object(Bucket=bucket, Key=key)["ETag"]).strip('"')
        except Exception:
            return
        if etag != wanted:
            raise Denied(
                412,
                "PreconditionFailed",
                "At least one of the pre-conditions you specified did not hold",
            )

    @staticmethod
    def _error(denied: Denied, method: str, start_response: Callable[..., Any]) -> list[bytes]:
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{denied.code}</Code><Message>{html.escape(denied.message)}</Message>"
            f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>"
        ).encode()
        reasons = {400: "Bad Request", 403: "Forbidden", 412: "Precondition Failed"}
        status = f"{denied.status} {reasons.get(denied.status, 'Error')}"
        payload = b"" if method == "HEAD" else body
        start_response(
            status,
            [("Content-Type", "application/xml"), ("Content-Length", str(len(payload)))],
        )
        return [payload]


def ensure_gateway(emulator: Emulator) -> Gateway | None:
    """Install the gateway in front of this emulator's moto server (once); None if impossible."""
    moto = getattr(emulator, "_moto", None)
    server = getattr(moto, "_server", None)
    if server is None:
        return None
    app = getattr(server, "app", None)
    if isinstance(app, Gateway):
        return app
    from .server import S3_ACCESS_KEY, S3_SECRET_KEY

    gateway = Gateway(app, S3_ACCESS_KEY, S3_SECRET_KEY, emulator.s3_client())
    for access_key, grant in load_grants(emulator.store).items():
        gateway.grant(access_key, grant)
    server.app = gateway
    return gateway


def load_grants(store: Store) -> dict[str, Grant]:
    with store.lock:
        rows = store.all("SELECT * FROM sts_credentials WHERE expires_at > ?", (time.time(),))
    return {
        str(r["access_key_id"]): Grant(
            secret=str(r["secret_access_key"]),
            token=str(r["session_token"]),
            expires_at=float(r["expires_at"]),
            bucket=str(r["bucket"]),
            base_key=r["base_key"],
            permission=str(r["permission"]),
        )
        for r in rows
    }


def guarded(routes: list[Route]) -> list[Route]:
    """Routes whose handlers first make sure the gateway is installed."""

    def wrap(handler: Callable[..., Any]) -> Callable[..., Any]:
        def run(ctx: Ctx, **kwargs: Any) -> Any:
            ensure_gateway(ctx.emulator)
            return handler(ctx, **kwargs)

        run.__name__ = getattr(handler, "__name__", "handler")
        run.__qualname__ = getattr(handler, "__qualname__", "handler")
        return run

    return [Route(r.method, r.path, wrap(r.handler)) for r in routes]
