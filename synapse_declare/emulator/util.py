"""Small helpers shared by the emulator's endpoint modules: errors, ids, times, names, JSON."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NoReturn
from urllib.parse import unquote

ROOT_ID = 4489
TRASH_ID = 1681355
DEFAULT_STORAGE_LOCATION_ID = 1
ZERO_ETAG = "00000000-0000-0000-0000-000000000000"

# Bootstrap principals (synapse-api.md §4.4).
PUBLIC = 273949
AUTHENTICATED_USERS = 273948
ANONYMOUS = 273950
CERTIFIED_USERS = 3
MIGRATION_ADMIN = 1
ADMINISTRATORS_GROUP = 2
ACT_GROUP = 464532
SAGE_BIONETWORKS = 273957

ERROR_CONCRETE_TYPE = "org.sagebionetworks.repo.model.ErrorResponse"
MODEL = "org.sagebionetworks.repo.model."

NAME_RE = re.compile(r"^[a-zA-Z0-9,_. \-+()']+$")
NAME_MESSAGE = (
    "Names may only contain: letters, numbers, spaces, underscores, hyphens, periods, "
    "plus signs, apostrophes, and parentheses"
)


class SynapseError(Exception):
    """An error answered as Synapse does: ``{"concreteType": ErrorResponse, "reason": ...}``."""

    def __init__(
        self,
        status: int,
        reason: str,
        *,
        error_code: str | None = None,
        headers: Mapping[str, str] | None = None,
        raw: bool = False,
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.error_code = error_code
        self.headers = dict(headers or {})
        # Throttle responses are written by a servlet filter: raw {"reason": ...}, no concreteType.
        self.raw = raw

    def body(self) -> dict[str, Any]:
        if self.raw:
            return {"reason": self.reason}
        body: dict[str, Any] = {"concreteType": ERROR_CONCRETE_TYPE, "reason": self.reason}
        if self.error_code:
            body["errorCode"] = self.error_code
        return body


def bad_request(reason: str) -> NoReturn:
    raise SynapseError(400, reason)


def forbidden(reason: str, *, error_code: str | None = None) -> NoReturn:
    raise SynapseError(403, reason, error_code=error_code)


def not_found(reason: str) -> NoReturn:
    raise SynapseError(404, reason)


def conflict(reason: str) -> NoReturn:
    raise SynapseError(409, reason)


def precondition_failed(reason: str) -> NoReturn:
    raise SynapseError(412, reason)


def require(condition: object, reason: str) -> None:
    if not condition:
        bad_request(reason)


def now() -> str:
    """ISO-8601 UTC with exactly three fraction digits, as the server writes dates."""
    return format_time(datetime.now(UTC))


def format_time(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def new_etag() -> str:
    return str(uuid.uuid4())


def parse_syn_id(value: object) -> int:
    """Accept ``syn123``, ``SYN123``, ``123``, URL-encoded, padded (KeyFactory semantics)."""
    text = unquote(str(value)).strip()
    digits = text[3:] if text.lower().startswith("syn") else text
    if not digits.isdigit():
        bad_request(f"{value} is not a valid Synapse ID.")
    return int(digits)


def syn(node_id: int) -> str:
    return f"syn{node_id}"


def parse_int(value: object, what: str) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        bad_request(f"{what} must be a number: {value}")


def clean(value: Any) -> Any:
    """Drop ``None`` members recursively: the server's JSON writer omits null properties."""
    if isinstance(value, dict):
        return {
            k: clean(v) if isinstance(v, dict | list) else v
            for k, v in value.items()
            if v is not None
        }
    if isinstance(value, list):
        return [clean(v) if isinstance(v, dict | list) else v for v in value]
    return value


def validate_entity_name(name: object) -> str:
    """Trim and check a name per NameValidation; returns the stored (trimmed) name."""
    if not isinstance(name, str):
        bad_request("Name cannot be only whitespace or empty string")
    trimmed = name.strip()
    if not trimmed:
        bad_request("Name cannot be only whitespace or empty string")
    if len(trimmed) > 256:
        bad_request("Name length cannot be longer than 256 characters.")
    if not NAME_RE.match(trimmed):
        bad_request(f"Invalid Name: '{trimmed}'. {NAME_MESSAGE}")
    return trimmed


def paginate_offset(args: Mapping[str, str], *, default_limit: int = 10) -> tuple[int, int]:
    """offset/limit query parameters with Synapse's validation messages."""
    offset = parse_int(args.get("offset", 0), "offset")
    limit = parse_int(args.get("limit", default_limit), "limit")
    if offset < 0:
        bad_request("pagination offset must be 0 or greater")
    if limit < 1:
        bad_request("pagination limit must be 1 or greater")
    return offset, limit


def paginated(results: list[Any], offset: int) -> dict[str, Any]:
    """``PaginatedResults``; caller passes one page (up to limit+1 to detect 'more')."""
    return {"results": results, "totalNumberOfResults": offset + len(results)}


def page_results(items: list[Any], offset: int, limit: int) -> dict[str, Any]:
    """Page a full list with Synapse's estimated total (offset+pageSize+1 when the page is full)."""
    page = items[offset : offset + limit]
    more = len(items) > offset + limit
    total = offset + len(page) + (1 if more else 0)
    return {"results": page, "totalNumberOfResults": total}


def parse_next_page_token(token: object, *, max_limit: int = 50) -> tuple[int, int]:
    """``"<limit>a<offset>"`` tokens (NextPageToken.java)."""
    if token is None:
        return max_limit, 0
    text = str(token)
    match = re.fullmatch(r"(\d+)a(\d+)", text)
    if not match:
        bad_request(f"Unknow token format: {text}")
    limit, offset = int(match.group(1)), int(match.group(2))
    if limit > max_limit:
        bad_request(f"Limit must not exceed: {max_limit}")
    return limit, offset


def next_page_token(limit: int, offset: int) -> str:
    return f"{limit}a{offset + limit}"
