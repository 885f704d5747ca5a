"""Route and Reply: the two types every endpoint module uses (kept free of imports)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Handler = Callable[..., Any]


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # werkzeug rule, e.g. "/repo/v1/entity/<id>"
    handler: Handler


@dataclass
class Reply:
    """A non-default answer: another status, an empty body, text, a redirect."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None
