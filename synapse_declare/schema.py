"""The published manifest JSON Schema, and schema validation with messages a person can act on.

The source of truth is ``schemas/manifest.schema.json`` in the repository; the wheel ships it as
``synapse_declare/schemas/manifest.schema.json``. Errors from ``jsonschema`` are located in the YAML
(``file:line:col``) and rephrased: what is wrong, and a hint with the allowed values, a "did you
mean", or how to quote a value.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError, best_match, relevance

from synapse_declare.errors import ManifestError
from synapse_declare.manifest import JsonPath, Locator, SourceMap, YamlTimestamp

# A ${var.NAME} reference, replaced before names are checked (fanout.py); not a bad character.
_VAR_REFERENCE = re.compile(r"\$\{var\.[A-Za-z_][A-Za-z0-9_]*\}")

SCHEMA_ID = "https://synapse-declare.dev/schemas/manifest.schema.json"
SCHEMA_RESOURCE = "schemas/manifest.schema.json"


KEYWORD_PRINCIPALS = ("self", "PUBLIC", "AUTHENTICATED_USERS")


def keyword_principal(text: str) -> str | None:
    """The keyword principal ``text`` spells, in any case or mistyped (``public``, ``PUBLIK``):
    such a key means the keyword, not a user or team of that name. None when it is no keyword."""
    by_upper = {k.upper(): k for k in KEYWORD_PRINCIPALS}
    close = difflib.get_close_matches(text.strip().upper(), list(by_upper), 1, 0.8)
    return by_upper[close[0]] if close else None


def _repo_schema_path() -> Path:
    return Path(__file__).resolve().parent.parent / "schemas" / "manifest.schema.json"


def schema_text() -> str:
    """The schema as published (packaged copy; the repository copy in a dev checkout)."""
    packaged = resources.files("synapse_declare").joinpath(SCHEMA_RESOURCE)
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    return _repo_schema_path().read_text(encoding="utf-8")


@functools.cache
def load_schema() -> Mapping[str, Any]:
    """The parsed schema (cached)."""
    schema: dict[str, Any] = json.loads(schema_text())
    return schema


@functools.cache
def validator() -> Draft7Validator:
    return Draft7Validator(load_schema())


_TYPE_WORDS = {
    "string": "text",
    "object": "a mapping (key: value)",
    "array": "a list",
    "boolean": "true or false",
    "integer": "a whole number",
    "number": "a number",
    "null": "nothing",
}


def _expected(types: str | Sequence[str]) -> str:
    names = [types] if isinstance(types, str) else list(types)
    words = [_TYPE_WORDS.get(t, t) for t in names]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _describe(instance: object) -> str:
    if instance is None:
        return "nothing (an empty value)"
    if isinstance(instance, bool):
        return f"the boolean {str(instance).lower()}"
    if isinstance(instance, (int, float)):
        return f"the number {instance!r}"
    if isinstance(instance, YamlTimestamp):
        return f"the date/time {str(instance)!r}"
    if isinstance(instance, str):
        return f"the text {instance!r}"
    if isinstance(instance, list):
        return "a list"
    if isinstance(instance, dict):
        return "a mapping"
    return repr(instance)


def _scalar_text(instance: object) -> str:
    if isinstance(instance, bool):
        return str(instance).lower()
    return str(instance)


def _title(schema: object, fallback: str = "value") -> str:
    if isinstance(schema, Mapping):
        title = schema.get("title")
        if isinstance(title, str):
            return title
    return fallback


def _const_choices(error: ValidationError) -> list[tuple[Any, str]] | None:
    """For ``oneOf`` branches that are all ``const``: the allowed values and their descriptions."""
    branches = error.validator_value
    if error.validator != "oneOf" or not isinstance(branches, list) or not branches:
        return None
    if not all(isinstance(b, Mapping) and "const" in b for b in branches):
        return None
    return [(b["const"], str(b.get("description", ""))) for b in branches]


def _suggest(word: object, choices: Iterable[str]) -> str:
    if not isinstance(word, str):
        return ""
    options = list(choices)
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if not close:
        close = [c for c in options if c.lower() == word.lower()]
    return f"did you mean {close[0]!r}? " if close else ""


def _resolve(schema: Any) -> Any:
    while isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str):
        ref: str = schema["$ref"]
        name = ref.removeprefix("#/definitions/")
        schema = load_schema()["definitions"][name]
    return schema


def _branch_accepts_type(branch: Any, instance: object) -> bool:
    branch = _resolve(branch)
    if not isinstance(branch, Mapping):
        return True
    if "const" in branch:
        const = branch["const"]
        return type(const) is type(instance) or (
            isinstance(const, str) and isinstance(instance, str)
        )
    types = branch.get("type")
    if types is None:
        return True
    names = [types] if isinstance(types, str) else list(types)
    return any(validator().is_type(instance, t) for t in names)


def _best_branch_error(error: ValidationError) -> ValidationError | None:
    """For a failed oneOf/anyOf: the most useful error of the one branch that fits the value.

    jsonschema's own heuristic can pick a branch of the wrong type (a list error for a text
    value); branches are first narrowed to those whose JSON type accepts the instance.
    """
    branches = error.validator_value if isinstance(error.validator_value, list) else []
    fitting = [i for i, b in enumerate(branches) if _branch_accepts_type(b, error.instance)]
    context = list(error.context or [])
    if len(fitting) == 1:
        context = [e for e in context if e.relative_schema_path[0] == fitting[0]]
    if not context:
        return None
    # The deepest error inside the chosen branch is the most specific one.
    deepest = max(len(e.absolute_path) for e in context)
    candidates = [e for e in context if len(e.absolute_path) == deepest]
    best = best_match(candidates, key=relevance)
    return best if best is not error else None


class _Issue:
    __slots__ = ("hint", "key", "message", "path")

    def __init__(self, path: JsonPath, message: str, hint: str | None, *, key: bool) -> None:
        self.path = path
        self.message = message
        self.hint = hint
        self.key = key


def _issues(error: ValidationError) -> list[_Issue]:
    path: JsonPath = tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    instance: Any = error.instance
    kind = error.validator
    rule: Any = error.validator_value
    custom = schema.get("errorMessage") if isinstance(schema.get("errorMessage"), str) else None

    if "propertyNames" in error.schema_path:
        # The instance is a mapping key that failed the key schema.
        key_path = (*path, str(instance))
        message = str(schema.get("patternErrorMessage") or error.message)
        what = _title(schema, "key")
        hint: str | None = None
        if what == "principal":
            hint = (
                "write self, user:NAME, team:NAME, PUBLIC, AUTHENTICATED_USERS, or a numeric id "
                'in quotes such as "3350396"'
            )
            bare = str(instance).strip()
            keyword = keyword_principal(bare)
            if keyword is not None:
                hint = f"did you mean {keyword!r}? " + hint
            elif ":" not in bare and bare and " " not in bare:
                hint = f"did you mean 'user:{bare}' or 'team:{bare}'? " + hint
            return [
                _Issue(key_path, f"bad principal syntax {instance!r}: {message}", hint, key=True)
            ]
        return [_Issue(key_path, f"invalid {what} {instance!r}: {message}", None, key=True)]

    if kind == "additionalProperties" and isinstance(instance, Mapping):
        allowed = list(schema.get("properties", {}))
        extras = [k for k in instance if k not in allowed]
        where = _title(schema, "this mapping")
        return [
            _Issue(
                (*path, k),
                f"unknown key {k!r} in {where}",
                f"{_suggest(k, allowed)}allowed keys: {', '.join(allowed)}",
                key=True,
            )
            for k in extras
        ]

    if kind == "required":
        missing = [k for k in rule if k not in instance]
        name = missing[0] if missing else str(rule)
        prop = schema.get("properties", {}).get(name, {})
        description = prop.get("description") if isinstance(prop, Mapping) else None
        return [
            _Issue(
                path,
                f"{_title(schema, 'mapping')} is missing the required key {name!r}",
                f"add `{name}: ...`" + (f" ({description})" if description else ""),
                key=False,
            )
        ]

    if path and path[-1] == "acl" and instance == "inherit" and kind == "type":
        return [
            _Issue(
                path,
                "a project always has its own ACL; `acl: inherit` is only for folders",
                "list the project's ACL entries (keep `self: administer`), or omit acl to leave "
                "it unmanaged",
                key=False,
            )
        ]

    if kind in ("oneOf", "anyOf"):
        choices = _const_choices(error)
        if choices is not None:
            values = [str(c) for c, _ in choices]
            verbose = len(choices) <= 6  # descriptions help for a few choices, clutter for many
            listed = ", ".join(
                f"{c} ({d.rstrip('.')})" if d and verbose else str(c) for c, d in choices
            )
            what = _title(schema)
            hint = f"{_suggest(instance, values)}allowed: {listed}"
            if what == "permission level":
                hint += "; or a list of access types such as [READ, DOWNLOAD]"
            return [_Issue(path, f"{instance!r} is not a valid {what}", hint, key=False)]
        branch_errors = list(error.context or [])
        if branch_errors and all(
            e.validator == "type" and not e.relative_path for e in branch_errors
        ):
            # No branch accepts this kind of value at all: say what kinds are accepted.
            message = custom or f"{_describe(instance)} is not a valid {_title(schema)}"
            hint = _quote_hint(instance) if instance is not None else "fill in a value"
            return [_Issue(path, message, hint, key=False)]
        best = _best_branch_error(error)
        if best is not None:
            return _issues(best)
        hint = str(schema["description"]) if isinstance(schema.get("description"), str) else None
        return [_Issue(path, custom or f"invalid {_title(schema)}", hint, key=False)]

    if kind == "type":
        expected = rule
        message = f"expected {_expected(expected)}, got {_describe(instance)}"
        hint = None
        wants_text = expected == "string" or (isinstance(expected, list) and "string" in expected)
        about = str(schema["description"]) if isinstance(schema.get("description"), str) else ""
        if wants_text and not isinstance(instance, (list, dict)):
            hint = _quote_hint(instance) if instance is not None else "fill in a value"
        elif expected == "boolean" and _boolean_word_hint(instance, _field(path)):
            hint = _boolean_word_hint(instance, _field(path))
        elif expected == "array" and isinstance(instance, dict):
            # The usual slip: `folders: {name: A}` or entries without their leading `- `.
            hint = "write a list: each entry on its own line starting with `- `"
        elif expected == "object" and isinstance(instance, list):
            hint = "write `key: value` lines here, without a leading `- `"
        elif about:
            hint = about
        return [_Issue(path, message, hint, key=False)]

    if kind == "const":
        message = custom or f"expected {error.validator_value!r}, got {_describe(instance)}"
        value = _scalar_text(error.validator_value)
        field = _field(path)
        hint = f"write `{field}{value}`"
        words = _boolean_word_hint(instance, field)
        if words and isinstance(error.validator_value, str) and _allows_boolean(error.parent):
            # `prune: yes`: the keyword branch of a boolean-or-keyword value (with-files).
            message = f"expected true, false or {value!r}, got {_describe(instance)}"
            hint = f"{words}, or `{field}{value}`"
        return [_Issue(path, message, hint, key=False)]

    if kind == "enum":
        values = [str(v) for v in rule]
        return [
            _Issue(
                path,
                f"{instance!r} is not allowed here",
                f"{_suggest(instance, values)}allowed: {', '.join(values)}",
                key=False,
            )
        ]

    if kind == "pattern":
        if isinstance(instance, str) and not instance and schema.get("minLength"):
            return []  # minLength already says "the text is empty": one problem, one message
        message = str(schema.get("patternErrorMessage") or error.message)
        what = _title(schema, str(path[-1]) if path and isinstance(path[-1], str) else "value")
        return [
            _Issue(
                path,
                f"invalid {what} {instance!r}: {message}",
                _bad_characters(instance, rule) or _missing_prefix(instance, rule),
                key=False,
            )
        ]

    if kind == "not":
        return [_Issue(path, custom or error.message, "keep only one of them", key=False)]

    if kind == "minItems" and isinstance(instance, list) and not instance:
        return [_Issue(path, "the list is empty", "give at least one value", key=False)]
    if kind == "uniqueItems":
        return [
            _Issue(path, "the list contains the same value twice", "remove duplicates", key=False)
        ]
    if kind in ("maxItems", "maxProperties"):
        count = len(instance) if isinstance(instance, (list, dict)) else 0
        return [
            _Issue(
                path,
                f"too many entries ({count}); at most {error.validator_value} allowed",
                None,
                key=False,
            )
        ]
    if kind == "maxLength" and isinstance(instance, str):
        return [
            _Issue(
                path,
                f"text is {len(instance)} characters long; at most {error.validator_value} allowed",
                "shorten it",
                key=False,
            )
        ]
    if kind == "minLength":
        return [_Issue(path, "the text is empty", "fill in a value", key=False)]
    return [_Issue(path, custom or error.message, None, key=False)]


def _bad_characters(instance: object, pattern: object) -> str | None:
    """For a pattern that is a set of allowed characters (Synapse names), which characters of
    ``instance`` it refuses, so the hint says what to change rather than repeating the rule."""
    if not isinstance(instance, str) or not isinstance(pattern, str):
        return None
    text = _VAR_REFERENCE.sub("", instance)
    bad = sorted({c for c in text if not c.isspace() and not re.fullmatch(pattern, c)})
    if not bad or len(bad) == len(set(text) - set(" ")):
        return None  # not a per-character rule: nothing specific to say
    return "remove or replace " + " ".join(repr(c) for c in bad)


def _allows_boolean(parent: object) -> bool:
    """Whether the oneOf/anyOf this error is a branch of (``error.parent``) accepts true/false."""
    schema = getattr(parent, "schema", None)
    if not isinstance(schema, Mapping):
        return False
    branches = [*schema.get("oneOf", []), *schema.get("anyOf", [])]
    return any(isinstance(b, Mapping) and b.get("type") == "boolean" for b in branches)


def _field(path: JsonPath) -> str:
    return f"{path[-1]}: " if path and isinstance(path[-1], str) else ""


def _missing_prefix(instance: object, pattern: object) -> str | None:
    """`DCC Admins` where `team:DCC Admins` is meant (or `jdoe` for `user:jdoe`)."""
    if not isinstance(instance, str) or not isinstance(pattern, str) or ":" in instance:
        return None
    for prefix in ("team:", "user:"):
        if prefix in pattern and instance.strip() and re.search(pattern, prefix + instance):
            return f"did you mean '{prefix}{instance}'?"
    return None


_BOOLEAN_WORDS = frozenset({"yes", "no", "on", "off", "y", "n", "true", "false"})


def _boolean_word_hint(instance: object, field: str) -> str | None:
    """`yes`, `on` or a quoted "false" where a boolean belongs: only bare true/false are."""
    if isinstance(instance, str) and instance.strip().lower() in _BOOLEAN_WORDS:
        return (
            f"only true and false, unquoted, are booleans in a manifest: write `{field}true` "
            f"or `{field}false`"
        )
    return None


def _quote_hint(instance: object) -> str:
    text = _scalar_text(instance)
    return f'quote the value to make it text: "{text}"'


def schema_errors(document: Any, source: SourceMap | Locator) -> list[ManifestError]:
    """Validate one manifest document; every problem, located in its file."""
    raw = sorted(validator().iter_errors(document), key=relevance, reverse=True)
    if not raw:
        return []
    # best_match picks the single most useful error; show it first, then the rest.
    first = best_match(raw, key=relevance)
    ordered = [first, *[e for e in raw if e is not first]] if first is not None else raw
    out: list[ManifestError] = []
    seen: set[tuple[str, str]] = set()
    for error in ordered:
        for issue in _issues(error):
            location = source.locate(issue.path, key=issue.key)
            dedupe = (location.json_path, issue.message)
            if dedupe in seen:
                continue
            seen.add(dedupe)
            out.append(ManifestError(issue.message, location=location, hint=issue.hint))
    return out


def check_schema() -> None:
    """Raise ``jsonschema.SchemaError`` if the shipped schema is not a valid draft-07 schema."""
    Draft7Validator.check_schema(load_schema())
