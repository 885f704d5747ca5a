"""The one exception tree of synapse-declare.

Every error the tool expects to happen derives from :class:`SynapseDeclareError`; the CLI maps
these to exit code 1 with a one-line message (``cli.py`` is the only place that chooses exit
codes). Anything else reaching the CLI is a bug: exit code 3 and a traceback in a log file.

::

    SynapseDeclareError
    ├── ManifestError            bad input: file:line:col, JSON path, what is wrong, how to fix it
    │   └── ManifestErrors       several located ManifestErrors at once (validate reports all)
    ├── ConfigError              credentials / endpoints / options could not be resolved
    ├── ApiError                 Synapse answered with an error status (never carries secrets)
    │   ├── BadRequest           400
    │   ├── Unauthorized         401
    │   ├── Forbidden            403
    │   ├── NotFound             404
    │   ├── Conflict             409 (name already exists, ...)
    │   ├── PreconditionFailed   412 (stale etag: a concurrent change, never overwritten)
    │   ├── TooManyRequests      429 after the retry budget
    │   └── ServerError          5xx after the retry budget
    ├── TransportError           connection dropped / timed out after the retry budget
    │   └── RequestTimeout       no answer within the read timeout (never retried)
    ├── ResolutionError          a principal or storage location in the manifest is absent
    │   └── ResolutionErrors     several at once (every bad principal of a manifest)
    ├── PlanError                the plan cannot be built or used
    │   ├── StalePlanError       a saved plan no longer matches live Synapse / manifest / target
    │   └── PolicyViolation      the manifest asks for something Synapse (or our guardrails) forbid
    ├── ApplyError               apply stopped part-way (done / failed / not attempted listed)
    ├── LockError                another run holds the journal lock
    └── MigrationError           a storage migration could not proceed
        └── VerificationError    a copied object did not match its source (size / MD5)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class SynapseDeclareError(Exception):
    """Base of every error the tool expects; ``str(err)`` is a complete user-facing message."""

    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


@dataclass(frozen=True, slots=True)
class SourceLocation:
    """Where a value came from in a manifest: ``file:line:col`` (1-based) plus its JSON path."""

    file: str
    line: int
    column: int
    json_path: str = "$"
    # For a value written in a template: each instantiation that led here, outermost first
    # ("in template 'center' instantiated at projects.yaml:4:5 as center[Alpha]").
    via: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class ManifestError(SynapseDeclareError):
    """One problem in a manifest, located at a file position."""

    def __init__(
        self,
        message: str,
        *,
        location: SourceLocation | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.location = location

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        # "$" (the whole document, or a CSV row) locates nothing the file:line:col does not.
        path = (
            f" (at {self.location.json_path})"
            if self.location and self.location.json_path != "$"
            else ""
        )
        text = f"{where}{self.message}{path}"
        if self.location is not None:
            # Innermost first: the template line above, then each use that led to it.
            text += "".join(f"\n  {note}" for note in reversed(self.location.via))
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class ManifestErrors(ManifestError):
    """Several located manifest problems; ``errors`` is sorted by file and position."""

    def __init__(self, errors: Sequence[ManifestError]) -> None:
        self.errors = tuple(errors)
        first = self.errors[0] if self.errors else None
        super().__init__(
            first.message if first else "invalid manifest",
            location=first.location if first else None,
            hint=first.hint if first else None,
        )

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


class ConfigError(SynapseDeclareError):
    """Credentials, endpoints or command-line options could not be resolved."""


class ApiError(SynapseDeclareError):
    """Synapse answered with an error status. ``reason`` is the server's text, truncated."""

    status: int = 0

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        reason: str = "",
        method: str = "",
        path: str = "",
        error_code: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        if status is not None:
            self.status = status
        self.reason = reason
        self.method = method
        self.path = path
        self.error_code = error_code


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class PreconditionFailed(ApiError):
    status = 412


class TooManyRequests(ApiError):
    status = 429


class ServerError(ApiError):
    status = 500


class TransportError(SynapseDeclareError):
    """The connection failed or timed out (after retries, where a retry was safe)."""


class RequestTimeout(TransportError):
    """Synapse did not answer within the read timeout (``--timeout``); not retried."""


class _Located:
    """Mixin for errors that point at a place in the manifest (``file:line:col: message``)."""

    message: str
    hint: str | None

    def __init__(
        self, message: str, *, location: SourceLocation | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)  # type: ignore[call-arg]
        self.location = location

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        text = f"{where}{self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class ResolutionError(_Located, SynapseDeclareError):
    """A name in the manifest (user, team, storage location) resolved to nothing or to many."""


class ResolutionErrors(ResolutionError):
    """Every principal of a manifest that did not resolve, each at its own entry."""

    def __init__(self, errors: Sequence[ResolutionError]) -> None:
        self.errors = tuple(errors)
        first = self.errors[0]
        super().__init__(first.message, location=first.location, hint=first.hint)

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


class PlanError(SynapseDeclareError):
    """A plan could not be built, read or used."""


class StalePlanError(PlanError):
    """A saved plan no longer matches live Synapse, the manifest, the endpoint or the user."""


class PolicyViolation(_Located, PlanError):
    """The manifest asks for something Synapse or a guardrail forbids; says what would work."""


class PolicyViolations(PolicyViolation):
    """Every guard or ``policies:`` rule a plan breaks (team membership guards, access
    policies, pruning guards, --no-adopt), each located at the manifest entry that breaks it,
    reported together."""

    def __init__(self, errors: Sequence[PolicyViolation]) -> None:
        self.errors = tuple(errors)
        first = self.errors[0]
        super().__init__(first.message, location=first.location, hint=first.hint)

    @property
    def problems(self) -> tuple[PolicyViolation, ...]:
        return self.errors

    def __str__(self) -> str:
        return "\n".join(PolicyViolation.__str__(e) for e in self.errors)


class PruneRefused(PolicyViolations):
    """Every guard a plan's deletions break (issue 11), each at the container that prunes."""


class AdoptionRefused(PolicyViolations):
    """``--no-adopt``: projects that exist but synapse-declare did not create."""


class ApplyError(SynapseDeclareError):
    """Apply stopped part-way. Lists what was done, what failed and what was not attempted."""

    def __init__(
        self,
        message: str,
        *,
        done: Sequence[str] = (),
        failed: Sequence[str] = (),
        not_attempted: Sequence[str] = (),
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.done = tuple(done)
        self.failed = tuple(failed)
        self.not_attempted = tuple(not_attempted)


class LockError(SynapseDeclareError):
    """Another run holds the lock."""


class MigrationError(SynapseDeclareError):
    """A storage migration could not proceed."""


class VerificationError(MigrationError):
    """A copied object's size or MD5 differs from its source; the entity was not repointed."""


class ExportError(SynapseDeclareError):
    """An export target or output directory that cannot be used; nothing was written."""


class UsageError(SynapseDeclareError):
    """Bad command-line usage (exit 1, never argparse's 2, which means "changes" here)."""


class DemoError(SynapseDeclareError):
    """A demo step did not behave as the demo expects."""


class AmbiguousWrite(TransportError):
    """A write was sent but its outcome is unknown (5xx, dropped connection, read timeout)."""

    def __init__(self, message: str, *, method: str, path: str, status: int | None) -> None:
        super().__init__(message)
        self.method = method
        self.path = path
        self.status = status


class ConflictError(SynapseDeclareError):
    """Someone else changed the object since it was read; nothing was overwritten."""


class S3AccessError(SynapseDeclareError):
    """S3 refused or failed a request (no credentials, access denied, missing object, ...)."""

    def __init__(self, message: str, *, code: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.code = code


class PartCopyError(SynapseDeclareError):
    """S3 refused or failed one part copy. ``expired`` means: fetch fresh presigned URLs."""

    def __init__(self, message: str, *, status: int | None, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code

    @property
    def expired(self) -> bool:
        return self.status == 403 and self.code in ("AccessDenied", "ExpiredToken", "")

    @property
    def source_changed(self) -> bool:
        """The source object's ETag no longer matches the one Synapse signed (412)."""
        return self.status == 412 or self.code == "PreconditionFailed"
