"""Credentials and endpoints, discovered as the Synapse ecosystem does.

Order (synapseclient's, so users get no surprises): command-line flags (``--token-file``,
``--endpoint``), then ``~/.synapseConfig`` (``--config``; profile from ``--profile`` or
``SYNAPSE_PROFILE``: ``[profile NAME]``, else ``[default]``, else ``[authentication]``; endpoints
from ``[endpoints]``), then the ``SYNAPSE_AUTH_TOKEN`` environment variable. Production endpoints
by default. The token is registered for redaction the moment it is read and never printed.
"""

from __future__ import annotations

import configparser
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError
from .redact import register_secret

PRODUCTION_REPO = "https://repo-prod.prod.sagebase.org/repo/v1"
PRODUCTION_AUTH = "https://auth-prod.prod.sagebase.org/auth/v1"
PRODUCTION_FILE = "https://file-prod.prod.sagebase.org/file/v1"
PRODUCTION_PORTAL = "https://www.synapse.org/"


@dataclass(frozen=True, slots=True)
class Endpoints:
    repo: str = PRODUCTION_REPO
    file: str = PRODUCTION_FILE
    auth: str = PRODUCTION_AUTH
    portal: str = PRODUCTION_PORTAL

    @classmethod
    def from_base(cls, url: str) -> Endpoints:
        """``--endpoint``: a server root (``http://host:port``) or a ``…/repo/v1`` URL."""
        base = url.strip().rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise ConfigError(
                f"--endpoint must be an http(s) URL, got {url!r}",
                hint="e.g. --endpoint http://127.0.0.1:8765 for a local emulator",
            )
        for suffix in ("/repo/v1", "/file/v1", "/auth/v1"):
            if base.endswith(suffix):
                base = base[: -len(suffix)]
        return cls(
            repo=f"{base}/repo/v1",
            file=f"{base}/file/v1",
            auth=f"{base}/auth/v1",
            portal=f"{base}/portal/",
        )


@dataclass(frozen=True, slots=True)
class Credentials:
    """A bearer token plus where it came from. ``repr`` never shows the token."""

    token: str = field(repr=False)
    source: str
    endpoints: Endpoints
    username: str | None = None

    def __str__(self) -> str:
        return f"token from {self.source} for {self.endpoints.repo}"


def default_config_path() -> Path:
    return Path(os.path.expanduser("~")) / ".synapseConfig"


def _read_config(path: Path) -> configparser.RawConfigParser | None:
    if not path.exists():
        return None
    parser = configparser.RawConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot parse Synapse config: {exc}") from exc
    return parser


def _config_endpoints(parser: configparser.RawConfigParser | None) -> Endpoints | None:
    if parser is None or not parser.has_section("endpoints"):
        return None
    section = parser["endpoints"]
    repo = section.get("repoendpoint")
    if not repo:
        return None
    base = Endpoints.from_base(repo)
    return Endpoints(
        repo=repo.rstrip("/"),
        file=(section.get("filehandleendpoint") or base.file).rstrip("/"),
        auth=(section.get("authendpoint") or base.auth).rstrip("/"),
        portal=section.get("portalendpoint") or base.portal,
    )


MAX_TOKEN_FILE_BYTES = 64 * 1024


def _read_token_file(token_file: Path) -> str:
    """The token in ``token_file``: one line, no spaces. Errors quote the path (so the
    redactor's ``token: <value>`` rule never eats the message of a path ending in "token") and
    never show the file's content."""
    shown = repr(str(token_file))
    hint = "the file should hold only the personal access token, on one line"
    try:
        info = os.stat(token_file)
        if not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            raise ConfigError(f"--token-file {shown} is {kind}", hint=hint)
        with open(token_file, "rb") as handle:
            raw = handle.read(MAX_TOKEN_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read --token-file {shown}: {exc.strerror or exc}") from None
    if len(raw) > MAX_TOKEN_FILE_BYTES:
        raise ConfigError(f"--token-file {shown} is far too large for a token", hint=hint)
    try:
        token = raw.decode("utf-8-sig").strip()
    except UnicodeDecodeError:
        raise ConfigError(
            f"--token-file {shown} is not a text file (not UTF-8)", hint=hint
        ) from None
    if not token:
        raise ConfigError(f"--token-file {shown} is empty", hint=hint)
    if any(c.isspace() or ord(c) < 0x20 for c in token):
        # Register it anyway: the content may be a token plus junk, and must never be shown.
        register_secret(token)
        for part in token.split():
            register_secret(part)
        raise ConfigError(
            f"--token-file {shown} holds more than one word or line (its content is not shown)",
            hint=hint,
        )
    return token


def _config_token(
    parser: configparser.RawConfigParser | None, profile: str | None, path: Path
) -> tuple[str, str, str | None] | None:
    if parser is None:
        if profile and profile != "default":
            raise ConfigError(f"profile {profile!r} requested but {path} does not exist")
        return None
    sections: list[str]
    if profile and profile != "default":
        name = f"profile {profile}"
        if not parser.has_section(name):
            raise ConfigError(
                f"{path}: no [profile {profile}] section",
                hint="add that section with an authtoken line, or drop --profile / SYNAPSE_PROFILE",
            )
        sections = [name]
    else:
        sections = ["default", "authentication"]
    for name in sections:
        if parser.has_section(name):
            token = (parser[name].get("authtoken") or "").strip()
            if token:
                return token, f"{path} [{name}]", parser[name].get("username")
    return None


def resolve_credentials(
    *,
    token_file: Path | None = None,
    endpoint: str | None = None,
    profile: str | None = None,
    config_path: Path | None = None,
    environ: dict[str, str] | None = None,
    require_token: bool = True,
) -> Credentials | None:
    env = dict(os.environ if environ is None else environ)
    profile = profile or env.get("SYNAPSE_PROFILE") or None
    path = config_path or default_config_path()
    parser = _read_config(path)
    endpoints = (
        Endpoints.from_base(endpoint) if endpoint else _config_endpoints(parser) or Endpoints()
    )
    token: str | None = None
    source = ""
    username: str | None = None
    if token_file is not None:
        token = _read_token_file(token_file)
        source = f"--token-file {token_file}"
    if token is None:
        found = _config_token(parser, profile, path)
        if found is not None:
            token, source, username = found
    if token is None and env.get("SYNAPSE_AUTH_TOKEN", "").strip():
        token, source = env["SYNAPSE_AUTH_TOKEN"].strip(), "SYNAPSE_AUTH_TOKEN"
    if token is None:
        if not require_token:
            return None
        raise ConfigError(
            "no Synapse credentials found",
            hint=(
                "set SYNAPSE_AUTH_TOKEN to a personal access token, put an authtoken line in "
                f"the [default] section of {path}, or pass --token-file FILE"
            ),
        )
    register_secret(token)
    return Credentials(token=token, source=source, endpoints=endpoints, username=username)


@dataclass(frozen=True, slots=True)
class StackLimits:
    """The stack's per-user throttles from ``~/.synapseConfig`` (``[synapse-declare]``:
    ``max_concurrent_requests``, ``max_requests_per_minute``); None where not set."""

    max_concurrent: int | None = None
    max_per_minute: int | None = None


def resolve_limits(config_path: Path | None = None) -> StackLimits:
    """Read the throttle settings of the stack this config file points at (its ``[endpoints]``),
    e.g. a dev stack with other limits than production's 3 concurrent and 600 per minute."""
    path = config_path or default_config_path()
    parser = _read_config(path)
    if parser is None or not parser.has_section("synapse-declare"):
        return StackLimits()
    section = parser["synapse-declare"]
    values: dict[str, int | None] = {}
    for key in ("max_concurrent_requests", "max_requests_per_minute"):
        raw = (section.get(key) or "").strip()
        if not raw:
            values[key] = None
            continue
        try:
            value = int(raw)
        except ValueError:
            value = -1
        minimum = 1 if key == "max_concurrent_requests" else 0
        if value < minimum:
            raise ConfigError(
                f"{path} [synapse-declare] {key} = {raw!r}: expected a whole number >= {minimum}",
                hint="max_requests_per_minute = 0 turns pacing off (a stack without that throttle)",
            )
        values[key] = value
    return StackLimits(values["max_concurrent_requests"], values["max_requests_per_minute"])
