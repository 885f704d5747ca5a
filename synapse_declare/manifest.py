"""Load manifest YAML files into plain data plus a map from JSON paths to ``file:line:col``.

Scalars follow the YAML 1.2 core schema rather than PyYAML's YAML 1.1 defaults, so that what a
person types is what they get:

* only ``true``/``false`` (any letter case) are booleans; ``yes``/``no``/``on``/``off`` are text;
* integers are decimal (``012`` is 12), ``0x1F`` or ``0o17``; ``1:20`` and ``1_000`` stay text;
* floats need a ``.`` or an exponent (``1.5``, ``1e3``), plus ``.inf``/``-.inf``/``.nan``;
* ``null``, ``~`` and an empty value are null;
* ISO 8601 dates and date-times are kept as the text that was written (a :class:`YamlTimestamp`,
  a ``str``), so they are valid wherever text is; annotations turn them into TIMESTAMP_MS.

Duplicate mapping keys, non-text keys, unknown tags, recursive aliases and alias expansions beyond
:data:`MAX_ALIAS_EXPANSIONS` nodes are errors; so are files above :data:`MAX_FILE_BYTES`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from synapse_declare.errors import ManifestError, ManifestErrors, SourceLocation

MAX_FILE_BYTES = 5 * 1024 * 1024
"""Manifest files larger than this are refused before parsing."""

MAX_ALIAS_EXPANSIONS = 100_000
"""How many nodes aliases may add in total (guards against "billion laughs" documents)."""

MAX_DEPTH = 200
"""Deepest nesting of mappings/lists accepted in one document."""

YAML_SUFFIXES = (".yaml", ".yml")

PathPart = str | int
JsonPath = tuple[PathPart, ...]

_TAG = "tag:yaml.org,2002:"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def format_json_path(path: Sequence[PathPart]) -> str:
    """``("projects", 0, "acl", "team:X")`` -> ``$.projects[0].acl['team:X']``."""
    out = ["$"]
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _IDENTIFIER.match(part):
            out.append(f".{part}")
        else:
            escaped = part.replace("\\", "\\\\").replace("'", "\\'")
            out.append(f"['{escaped}']")
    return "".join(out)


class YamlTimestamp(str):
    """A plain YAML scalar that looks like an ISO 8601 date or date-time.

    It *is* the text as written; ``value`` is the parsed ``date``/``datetime`` (naive or aware),
    or ``None`` when the text looks like a timestamp but is not a real date (``2024-13-45``).
    """

    value: dt.date | dt.datetime | None

    def __new__(cls, text: str, value: dt.date | dt.datetime | None) -> YamlTimestamp:
        obj = super().__new__(cls, text)
        obj.value = value
        return obj


@dataclass(slots=True)
class SourceMap:
    """Positions (1-based line, column) of every value, and of every mapping key, in one file."""

    file: str
    path: Path | None = None
    values: dict[JsonPath, tuple[int, int]] = field(default_factory=dict)
    keys: dict[JsonPath, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: JsonPath, *, key: bool = False) -> SourceLocation:
        """Location of the value at ``path`` (or of its key), else of its nearest ancestor."""
        pos = self.keys.get(path) if key else None
        probe = path
        while pos is None:
            pos = self.values.get(probe)
            if not probe:
                break
            probe = probe[:-1]
        line, column = pos if pos is not None else (1, 1)
        return SourceLocation(self.file, line, column, format_json_path(path))

    @property
    def base_dir(self) -> Path:
        """Directory that relative paths in this file (``markdown_file``) are resolved against."""
        return self.path.parent if self.path is not None else Path.cwd()


@dataclass(frozen=True, slots=True)
class LoadedDocument:
    """One parsed manifest file: plain JSON-like ``data`` and where each value came from."""

    file: str
    data: Any
    source: SourceMap
    # After fan-out (fanout.py): where each expanded value was written, when not in ``source``
    # at the same path (a template body, a shifted list index, a substituted key).
    routes: Locator | None = None

    @property
    def locator(self) -> SourceMap | Locator:
        return self.routes if self.routes is not None else self.source


class Locator:
    """Maps JSON paths of a (possibly merged) manifest back to positions in the source files.

    A merged manifest's ``$.projects[3]`` may be ``$.projects[0]`` of the second file; each such
    correspondence is a *route* from a merged path prefix to a file and a file path prefix.
    """

    def __init__(self, default: SourceMap | None = None) -> None:
        self._default = default if default is not None else SourceMap("<manifest>")
        self._routes: dict[JsonPath, tuple[SourceMap | Locator, JsonPath, tuple[str, ...]]] = {}
        self._sources: list[SourceMap] = [] if default is None else [default]

    @classmethod
    def for_source(cls, source: SourceMap) -> Locator:
        return cls(source)

    def add_source(self, source: SourceMap) -> None:
        """Register a file of the manifest (listed in :attr:`files` even if it routes nothing)."""
        if all(s is not source for s in self._sources):
            self._sources.append(source)

    def add_route(
        self,
        merged_prefix: JsonPath,
        source: SourceMap | Locator,
        file_prefix: JsonPath,
        via: tuple[str, ...] = (),
    ) -> None:
        self._routes[merged_prefix] = (source, file_prefix, via)
        if isinstance(source, SourceMap):
            self.add_source(source)
        else:
            for inner in source._sources:
                self.add_source(inner)

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(s.file for s in self._sources)

    def _resolve(self, path: JsonPath) -> tuple[SourceMap | Locator, JsonPath, tuple[str, ...]]:
        for cut in range(len(path), -1, -1):
            route = self._routes.get(path[:cut])
            if route is not None:
                source, prefix, via = route
                return source, prefix + path[cut:], via
        return self._default, path, ()

    def locate(self, path: JsonPath, *, key: bool = False) -> SourceLocation:
        source, file_path, via = self._resolve(path)
        location = source.locate(file_path, key=key)
        if via and not location.via:
            location = dataclasses.replace(location, via=via)
        return location

    def source_for(self, path: JsonPath) -> SourceMap:
        """The file a value was written in (relative paths in it are resolved from there)."""
        source, file_path, _ = self._resolve(path)
        return source.source_for(file_path) if isinstance(source, Locator) else source


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2-core implicit typing; construction is done by :class:`_Builder`."""

    yaml_implicit_resolvers: dict[Any, Any] = {}  # noqa: RUF012 - PyYAML's class-level registry


def _timestamp_regexp() -> re.Pattern[str]:
    for tag, regexp in yaml.SafeLoader.yaml_implicit_resolvers["2"]:
        if tag == _TAG + "timestamp":
            return regexp  # type: ignore[no-any-return]
    raise RuntimeError("PyYAML has no timestamp resolver")  # pragma: no cover


_TIMESTAMP_RE = _timestamp_regexp()
_Loader.add_implicit_resolver(
    _TAG + "bool", re.compile(r"^(?:[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    _TAG + "null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)
_Loader.add_implicit_resolver(
    _TAG + "int",
    re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
_Loader.add_implicit_resolver(
    _TAG + "float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)
_Loader.add_implicit_resolver(_TAG + "timestamp", _TIMESTAMP_RE, list("0123456789"))
_Loader.add_implicit_resolver(_TAG + "merge", re.compile(r"^(?:<<)$"), ["<"])

_SCALAR_TAGS = {_TAG + t for t in ("str", "int", "float", "bool", "null", "timestamp")}

# libyaml's parser, when PyYAML was built with it: ~10x faster composition of the same node tree,
# with the same marks (0-based line and column, counted in characters). It is only used for
# documents it accepts; anything it refuses is parsed again by the pure-Python loader, so every
# error message and position stays exactly what that loader reports. libyaml refuses nesting
# deeper than 1,000 levels itself, so it cannot exhaust the C stack.
LIBYAML: bool = bool(getattr(yaml, "__with_libyaml__", False))
"""Whether manifests are composed by libyaml (positions and errors are the same either way)."""

if LIBYAML:

    class _CLoader(yaml.cyaml.CSafeLoader):
        """libyaml's parser with :class:`_Loader`'s YAML 1.2-core implicit typing."""

        yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers


def _compose_fast(text: str) -> tuple[Any, Node] | None:
    """(loader, root node) composed by libyaml, or None to use the pure-Python loader: libyaml is
    absent, refused the document, or the text has a character only the Python reader rejects."""
    if not LIBYAML or yaml.reader.Reader.NON_PRINTABLE.search(text):
        return None
    loader = _CLoader(text)
    try:
        node = loader.get_single_node()
    except (yaml.YAMLError, RecursionError):
        loader.dispose()
        return None
    if node is None:
        loader.dispose()
        return None
    return loader, node


class _Fatal(Exception):
    """Stops converting a document (alias bomb, recursion, nesting too deep)."""

    def __init__(self, error: ManifestError) -> None:
        super().__init__(error.message)
        self.error = error


def _describe_scalar(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


class _Builder:
    """Turns a composed node tree into plain data, recording positions and collecting errors."""

    def __init__(self, loader: yaml.constructor.SafeConstructor, source: SourceMap) -> None:
        self.loader = loader
        self.source = source
        self.errors: list[ManifestError] = []
        self.expansions = 0
        self.seen: set[int] = set()
        self.active: set[int] = set()

    def _pos(self, node: Node) -> tuple[int, int]:
        return node.start_mark.line + 1, node.start_mark.column + 1

    def _error(self, node: Node, path: JsonPath, message: str, hint: str | None) -> ManifestError:
        line, column = self._pos(node)
        loc = SourceLocation(self.source.file, line, column, format_json_path(path))
        return ManifestError(message, location=loc, hint=hint)

    def build(self, node: Node, path: JsonPath) -> Any:
        ident = id(node)
        if ident in self.active:
            raise _Fatal(
                self._error(
                    node,
                    path,
                    "recursive YAML alias: this node contains itself",
                    "an anchor (&name) cannot be used (*name) inside its own value",
                )
            )
        if ident in self.seen:
            self.expansions += 1
            if self.expansions > MAX_ALIAS_EXPANSIONS:
                raise _Fatal(
                    self._error(
                        node,
                        path,
                        f"YAML aliases expand to more than {MAX_ALIAS_EXPANSIONS} nodes",
                        "the document repeats anchors (*name) too often; write the values out or "
                        "split the manifest",
                    )
                )
        if len(path) > MAX_DEPTH:
            raise _Fatal(self._error(node, path, f"nesting deeper than {MAX_DEPTH} levels", None))
        self.seen.add(ident)
        self.source.values.setdefault(path, self._pos(node))
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        self.active.add(ident)
        try:
            if isinstance(node, SequenceNode):
                if node.tag != _TAG + "seq":
                    self.errors.append(self._unsupported_tag(node, path))
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            assert isinstance(node, MappingNode)
            if node.tag != _TAG + "map":
                self.errors.append(self._unsupported_tag(node, path))
            return self._mapping(node, path)
        finally:
            self.active.discard(ident)

    def _unsupported_tag(self, node: Node, path: JsonPath) -> ManifestError:
        return self._error(
            node,
            path,
            f"unsupported YAML tag {node.tag!r}",
            "manifests use plain YAML: text, numbers, true/false, null, lists and mappings",
        )

    def _scalar(self, node: ScalarNode, path: JsonPath) -> Any:
        tag = node.tag
        text: str = node.value
        if tag == _TAG + "merge":  # `<<` used as a value rather than as a key is just text
            return text
        if tag not in _SCALAR_TAGS:
            self.errors.append(self._unsupported_tag(node, path))
            return text
        try:
            if tag == _TAG + "str":
                return text
            if tag == _TAG + "null":
                return None
            if tag == _TAG + "bool":
                lowered = text.lower()
                if lowered not in ("true", "false"):
                    raise ValueError(text)
                return lowered == "true"
            if tag == _TAG + "int":
                return _parse_int(text)
            if tag == _TAG + "float":
                return _parse_float(text)
            # timestamp
            if not _TIMESTAMP_RE.match(text):
                raise ValueError(text)
            try:
                value = self.loader.construct_yaml_timestamp(node)
            except (ValueError, OverflowError):
                value = None
            return YamlTimestamp(text, value)
        except (ValueError, OverflowError):
            self.errors.append(
                self._error(
                    node,
                    path,
                    f"{text!r} is not a valid {tag.removeprefix(_TAG)}",
                    "remove the explicit tag (!!...) or fix the value",
                )
            )
            return text

    def _key(self, node: Node, path: JsonPath) -> str | None:
        if isinstance(node, ScalarNode):
            value = self._scalar(node, path)
            if isinstance(value, str):
                return str(value)
            shown = node.value
            self.errors.append(
                self._error(
                    node,
                    path,
                    f"mapping keys must be text, but {shown!r} is {_describe_scalar(value)}",
                    f'quote the key: "{shown}":',
                )
            )
            return None
        self.errors.append(
            self._error(
                node,
                path,
                "mapping keys must be text, not a list or mapping",
                "use a plain text key",
            )
        )
        return None

    def _mapping(self, node: MappingNode, path: JsonPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_seen: dict[str, Node] = {}
        merges: list[tuple[Node, Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + "merge":
                merges.append((key_node, value_node))
                continue
            key = self._key(key_node, path)
            if key is None:
                continue
            child = (*path, key)
            if key in first_seen:
                line, column = self._pos(first_seen[key])
                self.errors.append(
                    self._error(
                        key_node,
                        child,
                        f"duplicate key {key!r}: already defined at "
                        f"{self.source.file}:{line}:{column}",
                        "a mapping can hold each key only once; remove or rename one of them",
                    )
                )
                continue
            first_seen[key] = key_node
            self.source.keys[child] = self._pos(key_node)
            result[key] = self.build(value_node, child)
        for key_node, value_node in merges:
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for merged in sources:
                if not isinstance(merged, MappingNode):
                    self.errors.append(
                        self._error(
                            key_node,
                            path,
                            "a merge key (<<) needs a mapping or a list of mappings",
                            "write <<: *anchor where &anchor names a mapping",
                        )
                    )
                    continue
                data = self.build(merged, path)
                for key, value in data.items():
                    result.setdefault(key, value)
        return result


def _parse_int(text: str) -> int:
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)


def _parse_float(text: str) -> float:
    lowered = text.lower()
    if lowered in (".inf", "+.inf"):
        return float("inf")
    if lowered == "-.inf":
        return float("-inf")
    if lowered == ".nan":
        return float("nan")
    return float(text)


def _offset_to_position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def _line_at(text: str, line: int) -> str:
    lines = text.splitlines()
    return lines[line - 1] if 0 < line <= len(lines) else ""


def _yaml_error(file: str, text: str, exc: yaml.YAMLError) -> ManifestError:
    if isinstance(exc, yaml.reader.ReaderError):
        line, column = _offset_to_position(text, exc.position)
        return ManifestError(
            f"character {exc.character!r} is not allowed in YAML",
            location=SourceLocation(file, line, column),
            hint="remove control characters from the file",
        )
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        # The composer words its problem as the second half of its context ("but found ...").
        problem = _plain_tokens(exc.problem or exc.context or "invalid YAML").removeprefix("but ")
        message = f"invalid YAML: {problem}"
        if exc.context and exc.problem and exc.context_mark is not None:
            message += f" ({_plain_tokens(exc.context)} at line {exc.context_mark.line + 1})"
        hint = "check indentation, colons and quoting around this position"
        if "end of an indented block" in problem:
            hint = (
                "this line is indented differently from the entries it belongs with: give it "
                "the same number of spaces as its siblings"
            )
        if "end of the file" in problem and "quoted text" in message:
            hint = "a quote opened there is never closed: add the closing quote"
        elif "end of the file" in problem and "[ ]" in message:
            hint = "a [ or { above is never closed: add the closing ] or }"
        if "\\t" in problem:
            hint = "YAML does not allow tabs for indentation; use spaces"
        elif "expected a single document" in f"{exc.context} {problem}":
            hint = "put one document per file (remove '---' separators) or split the file"
        elif "flow" in str(exc.context) and "${" in _line_at(text, line):
            # `{name: P ${var.x}}`: inside { } or [ ], braces end the value unless quoted.
            hint = 'inside { } or [ ], quote text that contains ${var.…}: {name: "P ${var.x}"}'
        return ManifestError(message, location=SourceLocation(file, line, column), hint=hint)
    return ManifestError(f"invalid YAML: {exc}", location=SourceLocation(file, 1, 1))


# PyYAML names its tokens for parser authors; a manifest author reads what they wrote.
_TOKEN_WORDS = {
    "'<block end>'": "the end of an indented block",  # quoted forms first
    "<block end>": "the end of an indented block",
    "'<block sequence start>'": "a list item ('- ')",
    "'<block entry>'": "a list item ('- ')",
    "'<block mapping start>'": "a 'key: value' line",
    "<block mapping start>": "a 'key: value' line",
    "'<stream end>'": "the end of the file",
    "'<document start>'": "'---'",
    "'<scalar>'": "a value",
    "'?'": "a 'key: value' line",
    "'-'": "a list item ('- ')",
    "end of stream": "end of the file",
    "a quoted scalar": "quoted text",
    "a flow node": "a [ ] or { } value",
    "a flow sequence": "a [ ] list",
    "a flow mapping": "a { } mapping",
    "the node content": "a value",
    "while parsing a block mapping": "in the 'key: value' lines starting",
    "while parsing a block collection": "in the list starting",
    "while parsing": "while reading",
    "while scanning": "while reading",
    "in the stream": "in the file",
}


def _plain_tokens(text: str) -> str:
    for token, words in _TOKEN_WORDS.items():
        text = text.replace(token, words)
    return text


def parse_text(
    text: str, file: str = "<string>", path: Path | None = None
) -> tuple[LoadedDocument | None, list[ManifestError]]:
    """Parse one YAML document; return it (``None`` if unreadable) and all problems found."""
    source = SourceMap(file, path)
    fast = _compose_fast(text)
    if fast is not None:
        return _build(fast[0], fast[1], source, file)
    try:
        loader = _Loader(text)
    except yaml.YAMLError as exc:
        return None, [_yaml_error(file, text, exc)]
    try:
        node = loader.get_single_node()
    except yaml.YAMLError as exc:
        loader.dispose()
        return None, [_yaml_error(file, text, exc)]
    except RecursionError:
        loader.dispose()
        return None, [
            ManifestError(
                "YAML nesting is too deep",
                location=SourceLocation(file, 1, 1),
                hint=f"keep lists and mappings under {MAX_DEPTH} levels deep",
            )
        ]
    if node is None:
        loader.dispose()
        return None, [
            ManifestError(
                "the manifest file is empty",
                location=SourceLocation(file, 1, 1),
                hint="a manifest starts with `version: 1`",
            )
        ]
    return _build(loader, node, source, file)


def _build(
    loader: Any, node: Node, source: SourceMap, file: str
) -> tuple[LoadedDocument | None, list[ManifestError]]:
    """Convert a composed document (either loader) to data; disposes of the loader."""
    try:
        builder = _Builder(loader, source)
        try:
            data = builder.build(node, ())
        except _Fatal as fatal:
            return None, [*builder.errors, fatal.error]
        return LoadedDocument(file, data, source), builder.errors
    finally:
        loader.dispose()


def parse_bytes(
    raw: bytes, file: str = "<bytes>", path: Path | None = None
) -> tuple[LoadedDocument | None, list[ManifestError]]:
    """Like :func:`parse_text` for raw bytes: enforces the size limit and UTF-8."""
    if len(raw) > MAX_FILE_BYTES:
        return None, [_too_large(file, len(raw))]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        prefix = raw[: exc.start].decode("utf-8", errors="replace")
        line, column = _offset_to_position(prefix, len(prefix))
        return None, [
            ManifestError(
                f"the file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
                location=SourceLocation(file, line, column),
                hint="save the manifest as UTF-8 text",
            )
        ]
    return parse_text(text, file, path)


def _too_large(file: str, size: int) -> ManifestError:
    return ManifestError(
        f"the file is too large ({size} bytes; the limit is {MAX_FILE_BYTES} bytes)",
        location=SourceLocation(file, 1, 1),
        hint="split the manifest into several files in one directory",
    )


def load_bytes(raw: bytes, file: str = "<bytes>") -> LoadedDocument:
    """Parse bytes as one manifest document; raise :class:`ManifestErrors` on any problem."""
    doc, errors = parse_bytes(raw, file)
    if errors or doc is None:
        raise ManifestErrors(errors)
    return doc


def load_text(text: str, file: str = "<string>") -> LoadedDocument:
    """Parse text as one manifest document; raise :class:`ManifestErrors` on any problem."""
    doc, errors = parse_text(text, file)
    if errors or doc is None:
        raise ManifestErrors(errors)
    return doc


def read_file(display: str, path: Path) -> tuple[LoadedDocument | None, list[ManifestError]]:
    """Read and parse one manifest file, refusing oversized files before reading them."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return None, [_too_large(display, size)]
        raw = path.read_bytes()
    except OSError as exc:
        return None, [
            ManifestError(
                f"cannot read {display}: {exc.strerror or exc}",
                location=SourceLocation(display, 1, 1),
            )
        ]
    return parse_bytes(raw, display, path.resolve())


def _walk_yaml(directory: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(directory):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if name.endswith(YAML_SUFFIXES) and not name.startswith("."):
                yield Path(root) / name


def discover(
    paths: Sequence[str | os.PathLike[str]],
) -> tuple[list[tuple[str, Path]], list[ManifestError]]:
    """Expand files and directories into ``(display name, path)`` pairs, in a stable order.

    A directory contributes every ``*.yaml``/``*.yml`` below it (hidden files and directories
    skipped), sorted by relative path. A file reached twice is read once.
    """
    found: list[tuple[str, Path]] = []
    errors: list[ManifestError] = []
    seen: set[Path] = set()

    def add(display: str, path: Path) -> None:
        real = path.resolve()
        if real not in seen:
            seen.add(real)
            found.append((display, path))

    for given in paths:
        path = Path(given)
        display = os.fspath(given)
        if path.is_dir():
            members = sorted(_walk_yaml(path), key=lambda p: p.relative_to(path).as_posix())
            if not members:
                errors.append(
                    ManifestError(
                        f"no *.yaml or *.yml files in directory {display}",
                        hint="point at a manifest file or a directory that contains some",
                    )
                )
            for member in members:
                add(os.path.join(display, os.fspath(member.relative_to(path))), member)
        elif path.is_file():
            add(display, path)
        else:
            errors.append(
                ManifestError(
                    f"manifest not found: {display}",
                    hint=f"check the path (resolved to {path.resolve()})",
                )
            )
    return found, errors


def load_documents(
    paths: Sequence[str | os.PathLike[str]],
) -> tuple[list[LoadedDocument], list[ManifestError]]:
    """Read every manifest file under ``paths``; returns the readable documents and all errors."""
    found, errors = discover(paths)
    docs: list[LoadedDocument] = []
    for display, path in found:
        doc, problems = read_file(display, path)
        errors.extend(problems)
        if doc is not None:
            docs.append(doc)
    return docs, errors


def merge_documents(
    docs: Sequence[LoadedDocument],
) -> tuple[dict[str, Any], Locator, list[ManifestError]]:
    """Merge schema-valid documents into one manifest and a :class:`Locator` for it.

    Projects are concatenated in file order (duplicate names are reported by the model);
    a storage location defined in two files is an error citing both.
    """
    locator = Locator(docs[0].source if docs else None)
    projects: list[Any] = []
    teams: list[Any] = []
    storage: dict[str, Any] = {}
    storage_origin: dict[str, SourceLocation] = {}
    errors: list[ManifestError] = []
    policies: Any = None
    policies_origin: SourceLocation | None = None
    for doc in docs:
        data = doc.data
        if data.get("policies") is not None:
            here = doc.locator.locate(("policies",), key=True)
            if policies_origin is not None:
                errors.append(
                    ManifestError(
                        f"policies: is declared twice (first at {policies_origin})",
                        location=here,
                        hint="declare policies: once, in one file of the manifest",
                    )
                )
            else:
                policies_origin = here
                policies = data["policies"]
                locator.add_route(("policies",), doc.locator, ("policies",))
        for j, project in enumerate(data.get("projects") or []):
            locator.add_route(("projects", len(projects)), doc.locator, ("projects", j))
            projects.append(project)
        for name, spec in (data.get("storage_locations") or {}).items():
            here = doc.locator.locate(("storage_locations", name), key=True)
            if name in storage_origin:
                errors.append(
                    ManifestError(
                        f"storage location {name!r} is defined twice "
                        f"(first at {storage_origin[name]})",
                        location=here,
                        hint="define each storage location once, in one file",
                    )
                )
                continue
            storage_origin[name] = here
            locator.add_route(("storage_locations", name), doc.locator, ("storage_locations", name))
            storage[name] = spec
        for j, team in enumerate(data.get("teams") or []):
            locator.add_route(("teams", len(teams)), doc.locator, ("teams", j))
            teams.append(team)
        locator.add_source(doc.source)
    merged: dict[str, Any] = {"version": 1, "projects": projects, "storage_locations": storage}
    if teams:
        merged["teams"] = teams
    if policies is not None:
        merged["policies"] = policies
    return merged, locator, errors
