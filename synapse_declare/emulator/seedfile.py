"""The ``--users`` file read with the position of every value, so that a bad entry is reported
the way synapse-declare reports a manifest error: ``file:line:col: what (at where)`` and a hint
saying how to fix it.

The emulator imports nothing from the product (the import contract in ``pyproject.toml``: a test
must never pass by shared code), so this is its own small loader over PyYAML's node marks rather
than the manifest's locator. The validators (``principals.parse_users_document``,
``access_requirements.parse_seeds``) raise :class:`SeedProblem` with a path into the document;
only this module knows files and positions.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DocPath = tuple[str | int, ...]


def render_path(path: DocPath) -> str:
    """``("users", 0, "token")`` → ``users[0].token``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


class SeedProblem(ValueError):
    """One problem in a seed document, at ``path`` (and, for a bad key, at ``key`` in it);
    ``str`` is the unlocated form used for documents that are not files (a request body)."""

    def __init__(
        self,
        source: str,
        path: DocPath,
        message: str,
        hint: str | None = None,
        *,
        key: str | None = None,
    ) -> None:
        self.source, self.path, self.message, self.hint, self.key = (
            source,
            path,
            message,
            hint,
            key,
        )
        where = render_path(path)
        text = f"{source}: {where}: {message}" if where else f"{source}: {message}"
        super().__init__(f"{text}\n  hint: {hint}" if hint else text)


def unknown_keys(
    source: str, path: DocPath, given: Iterable[Any], allowed: Iterable[str], what: str
) -> None:
    """Refuse keys outside ``allowed``: the first one is located, the closest allowed key is
    suggested (``tokn`` → ``token``)."""
    known = sorted(allowed)
    extra = sorted(str(k) for k in given if k not in known)
    if not extra:
        return
    close = difflib.get_close_matches(extra[0], known, n=1)
    suggestion = f"did you mean {close[0]!r}? " if close else ""
    raise SeedProblem(
        source,
        path,
        f"unknown key{'s' if len(extra) > 1 else ''} {', '.join(map(repr, extra))}",
        f"{suggestion}{what} takes {', '.join(known)}",
        key=extra[0],
    )


class SeedFileError(ValueError):
    """A located problem in a users file (``file:line:col``, what, how to fix)."""

    def __init__(
        self, file: str, line: int, column: int, message: str, hint: str | None, where: str = ""
    ) -> None:
        self.file, self.line, self.column = file, line, column
        self.message, self.hint, self.where = message, hint, where
        self.located = f"{file}:{line}:{column}: {message}" + (f" (at {where})" if where else "")
        super().__init__(f"{self.located}\n  hint: {hint}" if hint else self.located)


@dataclass(frozen=True)
class _Marks:
    key: yaml.Mark | None  # where the key of a mapping value is written
    value: yaml.Mark


@dataclass(frozen=True)
class SeedFile:
    """A users file's data and the position of each value in it."""

    path: Path
    data: Any
    marks: dict[DocPath, _Marks]

    def locate(self, problem: SeedProblem) -> SeedFileError:
        """The problem at its place in the file: the offending key when it names one, else
        the nearest value the path reaches (an absent key is reported at its mapping)."""
        path = problem.path
        mark: yaml.Mark | None = None
        if problem.key is not None:
            found = self.marks.get((*path, problem.key))
            mark = found.key if found is not None else None
        while mark is None:
            found = self.marks.get(path)
            if found is not None:
                mark = found.value
            elif not path:
                break
            else:
                path = path[:-1]
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        return SeedFileError(
            str(self.path),
            line,
            column,
            problem.message,
            problem.hint,
            render_path(problem.path),
        )


def load(path: Path) -> SeedFile:
    """Read and parse ``path``; a YAML syntax error is located at PyYAML's problem mark."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ValueError(f"{path}: cannot read users file: {reason}") from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        raise SeedFileError(
            str(path),
            line,
            column,
            "cannot read users file: "
            + str(exc.problem or exc.context or "invalid YAML").replace(
                "'<stream end>'", "the end of the file"
            ),
            "fix the YAML syntax here (indentation, closing quotes and brackets)",
        ) from exc
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: cannot read users file: {exc}") from exc
    marks: dict[DocPath, _Marks] = {}
    if node is not None:
        _walk(node, (), None, marks)
    return SeedFile(path, data, marks)


def _walk(
    node: yaml.Node, path: DocPath, key: yaml.Mark | None, out: dict[DocPath, _Marks]
) -> None:
    out[path] = _Marks(key, node.start_mark)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                _walk(value_node, (*path, str(key_node.value)), key_node.start_mark, out)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), None, out)
