"""Secrets never appear in output, logs, plan files or exceptions.

Secret values (the Synapse token, STS credentials) are registered when they are discovered;
``redact_text`` replaces them and anything shaped like a bearer token, an AWS secret or a
presigned-URL signature. ``RedactingFilter`` applies it to every log record.
"""

from __future__ import annotations

import logging
import re
import threading

_lock = threading.Lock()
_secrets: set[str] = set()

MASK = "***"
_PATTERNS = [
    # Authorization headers and bearer tokens.
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1" + MASK),
    # Presigned URL signatures and credentials (SigV4 and SigV2 query parameters).
    (
        re.compile(
            r"(?i)([?&](?:X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|Signature|"
            r"AWSAccessKeyId|x-amz-security-token)=)[^&\s\"']+"
        ),
        r"\1" + MASK,
    ),
    # JSON/text fields named like secrets.
    (
        re.compile(
            r"(?i)(\"?(?:secretAccessKey|sessionToken|aws_secret_access_key|aws_session_token|"
            r"authtoken|token)\"?\s*[:=]\s*\"?)[^\"\s,}]+"
        ),
        r"\1" + MASK,
    ),
]


def register_secret(value: str | None) -> None:
    """Remember a secret so every later output redacts it. Short values are ignored."""
    if value and len(value) >= 6:
        with _lock:
            _secrets.add(value)


def redact_text(text: str) -> str:
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record's final message with ``redact_text``."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = redact_text(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True
