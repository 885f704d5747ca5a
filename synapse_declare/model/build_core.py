"""The builders' shared core: source locations, error and warning collection, did-you-mean.

Every per-kind builder (``build_*.py``) takes a :class:`BuildContext`; problems are collected,
never raised one at a time, so that one run reports all of them, each at its own place.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from synapse_declare.errors import ManifestError, SourceLocation
from synapse_declare.manifest import JsonPath, Locator

from .specs import ManifestWarning
from .values import PLAIN_TOKEN_RE


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if not close:
        close = [c for c in choices if c.lower() == word.lower()]
    return f"did you mean {close[0]!r}? " if close else ""


def destination_names(raw: Mapping[str, Any]) -> list[str]:
    """The upload destinations a container names (``storage:`` is one name or a list)."""
    refs = raw.get("storage")
    return [refs] if isinstance(refs, str) else list(refs or [])


def sorted_errors(errors: list[ManifestError]) -> list[ManifestError]:
    """By file and position; problems at one place keep the order they were found in."""

    def key(e: ManifestError) -> tuple[str, int, int]:
        loc = e.location
        return (loc.file, loc.line, loc.column) if loc else ("", 0, 0)

    return sorted(errors, key=key)


class BuildContext:
    """What every builder shares while one manifest is built."""

    def __init__(self, locator: Locator) -> None:
        self.locator = locator
        self.errors: list[ManifestError] = []
        self.warnings: list[ManifestWarning] = []
        self.storage_names: frozenset[str] = frozenset()
        self.storage_specs: dict[str, Mapping[str, Any]] = {}
        self.sts_above: list[str] = []
        """The enclosing STS-enabled folders, innermost last (no destinations may be set below)."""
        self.texts: dict[str, list[str] | None] = {}
        """Each manifest file's lines, read once for :meth:`written` (``None``: unreadable)."""

    def at(self, path: JsonPath, *, key: bool = False) -> SourceLocation:
        return self.locator.locate(path, key=key)

    def error(
        self, path: JsonPath, message: str, hint: str | None = None, *, key: bool = False
    ) -> None:
        self.errors.append(ManifestError(message, location=self.at(path, key=key), hint=hint))

    def warn(self, message: str, location: SourceLocation, hint: str) -> None:
        self.warnings.append(ManifestWarning(message, location, hint))

    def first_seen(
        self, seen: dict[Any, SourceLocation], key: object, path: JsonPath
    ) -> SourceLocation | None:
        """Where ``key`` was met before, if it was; otherwise remember ``path`` as its place."""
        if key in seen:
            return seen[key]
        seen[key] = self.at(path)
        return None

    def written(self, path: JsonPath) -> str | None:
        """The characters of the plain scalar at ``path`` as written in its file, if readable."""
        source = self.locator.source_for(path)
        if source.path is None:
            return None
        key = str(source.path)
        if key not in self.texts:
            try:
                self.texts[key] = source.path.read_text(encoding="utf-8-sig").splitlines()
            except (OSError, UnicodeDecodeError):
                self.texts[key] = None
        lines = self.texts[key]
        loc = self.at(path)
        if lines is None or not 1 <= loc.line <= len(lines):
            return None
        match = PLAIN_TOKEN_RE.match(lines[loc.line - 1][loc.column - 1 :])
        return match.group(0) if match else None
