"""Name and endpoint rules: what Synapse (or boto3) would refuse, checked offline."""

from __future__ import annotations

import re
import urllib.parse

MAX_NAME_LENGTH = 256
NAME_RE = re.compile(r"^[a-zA-Z0-9,_. \-+()']+$")
NAME_CHARACTERS = "letters, numbers, spaces, and the characters , _ . - + ( ) '"
ALIAS_RE = re.compile(r"^[A-Za-z0-9_]+$")
ANNOTATION_KEY_RE = re.compile(r"^[a-zA-Z0-9,_.]+$")
BUCKET_RE = re.compile(r"^(?=.{3,63}$)[a-z0-9][a-z0-9.-]*[a-z0-9]$")
_JAVA_TRIM = "".join(chr(c) for c in range(0x21))


def java_trim(text: str) -> str:
    """Trim like Java's ``String.trim()``, which Synapse applies to names."""
    return text.strip(_JAVA_TRIM)


def synapse_name_problem(name: str) -> tuple[str, str] | None:
    """``(message, hint)`` if Synapse would reject ``name`` (before trimming), else ``None``."""
    trimmed = java_trim(name)
    if not trimmed:
        return "a name cannot be empty or only whitespace", "give the entity a name"
    if len(trimmed) > MAX_NAME_LENGTH:
        return (
            f"name is {len(trimmed)} characters long; Synapse allows at most {MAX_NAME_LENGTH}",
            "shorten the name",
        )
    if not NAME_RE.match(trimmed):
        bad = sorted({c for c in trimmed if not NAME_RE.match(c)})
        shown = " ".join(repr(c) for c in bad)
        return (
            f"invalid Synapse name {trimmed!r}: character(s) {shown} not allowed",
            f"names may only contain {NAME_CHARACTERS}",
        )
    return None


def endpoint_url_problem(url: str) -> tuple[str, str] | None:
    """``(message, hint)`` when ``url`` is not an http(s) URL boto3 can use as an S3 endpoint.

    Checked offline so that plan never meets it first (botocore raises a bare ``ValueError``
    for a malformed endpoint); credentials in the URL are refused, as they would be printed
    wherever the manifest is shown.
    """
    hint = "write the S3-compatible service's URL, e.g. https://s3.example.org or http://host:9000"
    if url != url.strip() or any(c.isspace() or ord(c) < 0x20 for c in url):
        return f"endpoint_url {url!r} contains whitespace or control characters", hint
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"endpoint_url is not a valid URL ({exc})", hint
    if parts.username is not None or parts.password is not None:
        return (
            f"endpoint_url for host {parts.hostname!r} contains credentials",
            "remove user:password@ from the URL; AWS credentials come from the environment or "
            "a profile, never from the manifest",
        )
    if parts.scheme not in ("http", "https"):
        return f"endpoint_url {url!r} must start with https:// or http://", hint
    if not parts.hostname:
        return f"endpoint_url {url!r} has no host name", hint
    if parts.query or parts.fragment:
        return f"endpoint_url {url!r} has a query or fragment", hint
    if port == 0:
        return f"endpoint_url {url!r} has port 0", hint
    return None
