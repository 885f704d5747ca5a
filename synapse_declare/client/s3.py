"""Talking to S3 directly: reading a migration's destination objects, the owner.txt pre-flight, and
PUTting the presigned part-copy URLs of a Synapse multipart copy.

Three rules hold for everything here:

* **Explicit endpoints.** Every boto3 client is built with an explicit ``endpoint_url`` (the
  storage location's ``endpointUrl``, or the emulator's S3 endpoint); AWS's own S3 endpoint is left
  to boto3 so that its region handling applies.
* **Credentials from the standard AWS chain** (environment, shared config/credentials files, a
  named profile) or passed explicitly; explicit secrets are registered with :mod:`redact`. Nothing
  here reads Synapse credentials, and the Synapse token is never sent to S3: presigned URLs are
  PUT with a separate ``requests`` session that carries no Authorization header.
* **No secrets in messages.** Presigned URLs carry a signature and signed headers; errors built
  here never include a URL or a signed header (the URL is replaced by a short description), and
  :func:`redact.redact_text` masks SigV4 query parameters anywhere else they might surface.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict, Unpack
from urllib.parse import urlparse

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from .. import __version__
from ..errors import ConfigError, PartCopyError, S3AccessError, TransportError
from ..redact import redact_text, register_secret

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CHUNK = 8 * 1024 * 1024
AWS_S3_HOSTS = frozenset({"s3.amazonaws.com", "s3.us-east-1.amazonaws.com"})
OWNER_TXT = "owner.txt"
OWNER_TXT_MAX_LINES = 100  # BucketOwnerVerifierImpl reads the first 100 lines
_URL = re.compile(r"https?://\S+")
_ETAG = re.compile(r"<ETag>(.*?)</ETag>", re.DOTALL)
_ERROR_CODE = re.compile(r"<Code>(.*?)</Code>", re.DOTALL)
_ERROR_MESSAGE = re.compile(r"<Message>(.*?)</Message>", re.DOTALL)


def _scrub(text: str) -> str:
    """A message safe to show: no URL (presigned or not), SigV4 parameters masked."""
    return redact_text(_URL.sub("<url>", text))


def normalise_endpoint(endpoint_url: str | None) -> str | None:
    """``None`` for AWS's global S3 endpoint (boto3 then picks regional endpoints itself);
    otherwise the URL with a scheme (Synapse stores e.g. ``s3.amazonaws.com`` without one)."""
    if not endpoint_url:
        return None
    url = endpoint_url.strip().rstrip("/")
    if "://" not in url:
        url = "https://" + url
    if (urlparse(url).hostname or "") in AWS_S3_HOSTS:
        return None
    return url


class S3Settings(TypedDict, total=False):
    """Where S3 credentials come from; unset → the standard AWS chain."""

    profile: str | None
    region: str | None
    access_key_id: str | None
    secret_access_key: str | None
    session_token: str | None


def make_s3_client(endpoint_url: str | None, **settings: Unpack[S3Settings]) -> S3Client:
    """A boto3 S3 client: explicit endpoint, standard retries, path-style for non-AWS servers."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ProfileNotFound

    register_secret(settings.get("secret_access_key"))
    register_secret(settings.get("session_token"))
    endpoint = normalise_endpoint(endpoint_url)
    try:
        session = boto3.session.Session(
            profile_name=settings.get("profile"),
            region_name=settings.get("region"),
            aws_access_key_id=settings.get("access_key_id"),
            aws_secret_access_key=settings.get("secret_access_key"),
            aws_session_token=settings.get("session_token"),
        )
    except ProfileNotFound as exc:
        raise ConfigError(
            f"AWS profile {settings.get('profile')!r} not found",
            hint="check ~/.aws/config, or pass credentials through AWS_* environment variables",
        ) from exc
    except BotoCoreError as exc:
        raise ConfigError(f"cannot set up AWS credentials: {_scrub(str(exc))}") from exc
    config = Config(
        signature_version="s3v4",
        retries={"max_attempts": 6, "mode": "standard"},
        s3={"addressing_style": "auto" if endpoint is None else "path"},
        user_agent_extra=f"synapse-declare/{__version__}",
    )
    client: S3Client = session.client("s3", endpoint_url=endpoint, config=config)
    return client


def error_code(exc: BaseException) -> str:
    """An S3 error's code (``AccessDenied``), else its HTTP status, else the exception type."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error") or {}
        code = str(error.get("Code") or "")
        if code:
            return code
        status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        if status:
            return str(status)
    return type(exc).__name__


def _access_error(action: str, bucket: str, key: str, exc: BaseException) -> S3AccessError:
    code = error_code(exc)
    hint = None
    if code in ("NoCredentialsError", "PartialCredentialsError"):
        hint = (
            "give AWS credentials that can read the destination bucket (AWS_ACCESS_KEY_ID / "
            "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or ~/.aws/credentials)"
        )
    elif code in ("403", "AccessDenied", "Forbidden"):
        hint = f"the AWS credentials in use may not read s3://{bucket}/{key}"
    return S3AccessError(
        f"cannot {action} s3://{bucket}/{key}: {code}: {_scrub(str(exc))}", code=code, hint=hint
    )


class DestinationReader:
    """Reads a migration's destination objects to verify them: size by HEAD, MD5 by streaming the
    object through a hash in fixed-size chunks (constant memory, any object size). Never writes."""

    def __init__(self, client: S3Client, *, chunk_size: int = CHUNK) -> None:
        self.client = client
        self.chunk_size = chunk_size

    @classmethod
    def from_settings(
        cls, endpoint_url: str | None, **settings: Unpack[S3Settings]
    ) -> DestinationReader:
        """Credentials come from the standard AWS chain unless given explicitly."""
        return cls(make_s3_client(endpoint_url, **settings))

    def head(self, bucket: str, key: str) -> int:
        """The object's size in bytes."""
        return self.head_etag(bucket, key)[0]

    def head_etag(self, bucket: str, key: str) -> tuple[int, str]:
        """The object's size and ETag (quotes removed): its MD5 for a single-part object,
        ``<md5 of the parts' MD5s>-<parts>`` for a multipart one."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            head = self.client.head_object(Bucket=bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise _access_error("read the size of", bucket, key, exc) from None
        return int(head["ContentLength"]), str(head.get("ETag", "")).strip('"')

    def size_and_md5(self, bucket: str, key: str) -> tuple[int, str]:
        """Stream the object once: (bytes read, hex MD5 of those bytes)."""
        from botocore.exceptions import BotoCoreError, ClientError

        digest = hashlib.md5(usedforsecurity=False)
        size = 0
        try:
            body = self.client.get_object(Bucket=bucket, Key=key)["Body"]
            try:
                for chunk in body.iter_chunks(self.chunk_size):
                    digest.update(chunk)
                    size += len(chunk)
            finally:
                body.close()
        except (ClientError, BotoCoreError) as exc:
            raise _access_error("read", bucket, key, exc) from None
        return size, digest.hexdigest()

    def md5(self, bucket: str, key: str) -> str:
        """Hex MD5 of the object's bytes (never its ETag: multipart ETags are not MD5s)."""
        return self.size_and_md5(bucket, key)[1]


# ---------------------------------------------------------------------------------------------
# owner.txt pre-flight


def sanitise_base_key(base_key: str | None) -> str | None:
    """StorageLocationUtils.sanitizeBaseKey: strip '/', spaces and tabs at both ends."""
    if base_key is None:
        return None
    cleaned = base_key.strip("/ \t")
    return cleaned or None


def owner_txt_key(base_key: str | None) -> str:
    base = sanitise_base_key(base_key)
    return OWNER_TXT if base is None else f"{base}/{OWNER_TXT}"


def owner_tokens(text: str) -> list[str]:
    """The identifiers Synapse reads from owner.txt: first 100 lines, comma-separated,
    trimmed, lower-cased, empty ones dropped."""
    tokens: list[str] = []
    for line in text.splitlines()[:OWNER_TXT_MAX_LINES]:
        tokens.extend(t.strip().lower() for t in line.split(",") if t.strip())
    return tokens


@dataclass(frozen=True, slots=True)
class OwnerCheck:
    """The result of reading ``[baseKey/]owner.txt`` the way Synapse will when the storage location
    is created. ``checked`` is False when the object could not be read for a reason on our side
    (no AWS credentials here, access denied): then Synapse's own check at apply time decides."""

    bucket: str
    key: str
    checked: bool
    exists: bool
    matches: bool
    matched: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.checked and self.exists and self.matches

    def instruction(self, identifier: str) -> str:
        """What to do about a failed check, for the plan's error text."""
        return (
            f"write the object s3://{self.bucket}/{self.key} containing the line {identifier!r} "
            f"(your Synapse user name or id, or the id of one of your teams), e.g. "
            f"`echo {identifier} | aws s3 cp - s3://{self.bucket}/{self.key}`"
        )


def check_owner_txt(
    bucket: str,
    base_key: str | None,
    identifiers: Iterable[str | int],
    *,
    endpoint_url: str | None,
    profile: str | None = None,
    region: str | None = None,
    client: S3Client | None = None,
) -> OwnerCheck:
    """Does ``owner.txt`` exist and name one of ``identifiers`` (user name, user id, emails,
    team ids)? Mirrors Synapse's BucketOwnerVerifierImpl, with its error texts."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    key = owner_txt_key(base_key)
    wanted = {str(i).strip().lower() for i in identifiers if str(i).strip()}

    def refused(error: str, *, checked: bool = True, exists: bool = False) -> OwnerCheck:
        return OwnerCheck(bucket, key, checked, exists, False, error=error)

    try:
        s3 = client or make_s3_client(endpoint_url, profile=profile, region=region)
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        try:
            # Synapse reads 100 lines; 1 MiB is more than enough and bounds a mistaken object.
            text = body.read(1024 * 1024).decode("utf-8", errors="replace")
        finally:
            body.close()
    except NoCredentialsError:
        return refused(
            f"no AWS credentials here to read s3://{bucket}/{key}; Synapse checks it when "
            "the storage location is created",
            checked=False,
        )
    except ClientError as exc:
        code = error_code(exc)
        if code == "NoSuchBucket":
            return refused(f"Did not find S3 bucket {bucket}")
        if code in ("NoSuchKey", "404"):
            return refused(f"Did not find S3 object at key {key} from bucket {bucket}")
        return refused(
            f"Could not read S3 object at key {key} from bucket {bucket}: {code}",
            checked=code not in ("AccessDenied", "403", "Forbidden"),
        )
    except (BotoCoreError, ConfigError) as exc:
        return refused(
            f"Could not read S3 object at key {key} from bucket {bucket}: {_scrub(str(exc))}",
            checked=False,
        )
    tokens = owner_tokens(text)
    if not tokens:
        return refused(
            f"No user identifier found under key {key} from bucket {bucket}", exists=True
        )
    for token in tokens:
        if token in wanted:
            return OwnerCheck(bucket, key, True, True, True, matched=token)
    return refused(
        f"Could not find a valid user identifier under key {key} from bucket {bucket}",
        exists=True,
    )


# ---------------------------------------------------------------------------------------------
# Presigned URLs: part copies (S3 UploadPartCopy through a URL Synapse signed) and downloads


def _presigned_session(method: str, retries: int, pool: int) -> requests.Session:
    """A session for presigned URLs: no Synapse token and no ~/.netrc (``trust_env`` off: an
    Authorization header from either would break the signature); ``method`` retried on 5xx and
    dropped connections, which is safe for the idempotent requests it is used for."""
    retry = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        other=0,
        allowed_methods=frozenset({method}),
        status_forcelist=(500, 502, 503, 504),
        backoff_factor=0.5,
        backoff_max=20.0,
        backoff_jitter=0.5,
        raise_on_status=False,
    )
    session = requests.Session()
    session.trust_env = False
    adapter = HTTPAdapter(max_retries=retry, pool_connections=pool, pool_maxsize=pool)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class PartCopier:
    """PUTs presigned UploadPartCopy URLs with exactly their signed headers and returns the part
    ETag from S3's XML answer.

    A separate ``requests`` session: no Synapse token, no ~/.netrc (an Authorization header added
    from it would break the signature), proxies only from the environment. An UploadPartCopy
    writes the same bytes into the same part number however often it is sent, so 5xx answers and
    dropped connections are retried; S3 may also answer 200 with an ``<Error>`` body for copies,
    which is treated as a failure.
    """

    def __init__(self, *, pool: int = 8, retries: int = 5, timeout: float = 600.0) -> None:
        self.session = _presigned_session("PUT", retries, pool)
        self.timeout = timeout

    def close(self) -> None:
        self.session.close()

    def copy_part(self, url: str, signed_headers: dict[str, str] | None, *, what: str) -> str:
        """Run one part copy; returns the part's ETag (quotes removed). ``what`` names the part
        in error messages (the URL never appears)."""
        headers = {str(k): str(v) for k, v in (signed_headers or {}).items()}
        proxies = requests.utils.get_environ_proxies(url)
        try:
            response = self.session.put(
                url, data=b"", headers=headers, timeout=(10.0, self.timeout), proxies=proxies
            )
        except requests.exceptions.RequestException as exc:
            raise PartCopyError(
                f"{what}: the copy request to S3 failed: {_scrub(str(exc))}", status=None
            ) from None
        text = response.text
        code_match = _ERROR_CODE.search(text)
        if response.status_code >= 300 or "<Error>" in text:
            code = html.unescape(code_match.group(1)).strip() if code_match else ""
            message_match = _ERROR_MESSAGE.search(text)
            message = html.unescape(message_match.group(1)).strip() if message_match else ""
            raise PartCopyError(
                f"{what}: S3 answered {response.status_code} {code or response.reason}"
                + (f": {_scrub(message)}" if message else ""),
                status=response.status_code,
                code=code,
            )
        match = _ETAG.search(text)
        if match is None:
            raise PartCopyError(f"{what}: S3's answer has no <ETag>", status=response.status_code)
        return html.unescape(match.group(1)).strip().strip('"')


class PresignedDownloader:
    """GETs through presigned download URLs (the relay copy path), bounded to the expected size.

    Its own ``requests`` session: no Synapse token, no ~/.netrc (either would break the
    signature). A GET changes nothing, so 5xx answers and dropped connections are retried.
    """

    def __init__(self, *, pool: int = 8) -> None:
        self.session = _presigned_session("GET", 5, pool)

    def close(self) -> None:
        self.session.close()

    def download(self, url: str, size: int) -> tuple[int, bytes]:
        """The answer's status and, for a 200, its body read up to just past ``size`` bytes (a
        longer object shows as a length mismatch, without reading it all). Raises
        :class:`TransportError` naming only the failure's type when no answer arrived: the URL
        is a secret."""
        try:
            response = self.session.get(url, timeout=(10.0, 300.0), stream=True)
        except requests.exceptions.RequestException as exc:
            raise TransportError(redact_text(type(exc).__name__)) from None
        with response:
            if response.status_code != 200:
                return response.status_code, b""
            chunks: list[bytes] = []
            total = 0
            for chunk in response.iter_content(1024 * 1024):
                chunks.append(chunk)
                total += len(chunk)
                if total > size:
                    break  # more than the handle says: the comparison reports it
            return 200, b"".join(chunks)


def object_key_from_url(url: str, bucket: str) -> str | None:
    """The object key a presigned S3 URL addresses in ``bucket``, or None if the URL is not
    recognisably for that bucket. Handles virtual-hosted (``https://<bucket>.s3…/<key>``) and
    path-style (``https://<endpoint>/<bucket>/<key>``) URLs."""
    from urllib.parse import unquote

    parsed = urlparse(url)
    host = parsed.hostname or ""
    path = parsed.path
    if host.startswith(bucket + ".") and path.startswith("/") and len(path) > 1:
        return unquote(path[1:])
    if re.match(r"^.+\.s3[.-]", host):
        return None  # virtual-hosted on AWS, for another bucket
    prefix = f"/{bucket}/"
    if path.startswith(prefix) and len(path) > len(prefix):
        return unquote(path[len(prefix) :])
    return None


def describe_exception(exc: BaseException) -> str:
    """``Type: message`` with URLs removed and secrets masked (for reports and progress)."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {_scrub(text)}" if text else type(exc).__name__


__all__ = [
    "DestinationReader",
    "OwnerCheck",
    "PartCopier",
    "check_owner_txt",
    "describe_exception",
    "error_code",
    "make_s3_client",
    "normalise_endpoint",
    "object_key_from_url",
    "owner_tokens",
    "owner_txt_key",
]
