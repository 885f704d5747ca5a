"""Fan-out: variables and templates, expanded before the schema and the model see a manifest.

A coordinating center declares the same recipe for every center: a project, a standard folder
tree, grants for the admin team and the center's team, a wiki. Written out, six centers are
hundreds of lines; with fan-out they are one template and one line (or CSV row) per center::

    variables:
      admin_team: DCC Admins          # a default; --var admin_team=... or
                                      # SYNAPSE_DECLARE_VAR_admin_team=... override it
    templates:
      center:
        parameters:
          name:                       # required (no default)
          team:
          contact: {default: ""}
        project:
          name: HTAN ${var.name}
          acl: {team:${var.admin_team}: admin, team:${var.team}: edit}
          folders:
            - use: standard-folders
      standard-folders:
        folders: [{name: Raw Data}, {name: Processed}]
    projects:
      - use: center
        for_each: centers.csv         # one project per row; the columns are the parameters

Why structured templates and not text templating (Jinja): a template here is YAML, so every
value keeps its file:line:col, the JSON Schema and editor completion keep working (templates and
``use:`` items are in the schema), an error inside an instantiated template names the template
line *and* the use, and no expression language can read files, run code or loop without bound.

Rules:

* ``${var.NAME}`` is replaced in every string and mapping key: names, descriptions, annotation
  values, principals (``team:${var.team}``), inline wiki markdown. Inside a template, its
  parameters are variables too and shadow the manifest's. A string that is exactly one reference
  takes the value's type (``sts_enabled: ${var.sts}`` stays a boolean). ``$${var.x}`` is the
  literal text ``${var.x}``. Any other ``${...}`` is left alone: Synapse's wiki widgets
  (``${toc}``, ``${image?fileName=...}``) use the same braces, which is why references are
  namespaced.
* ``use: NAME`` items stand in the ``projects:`` list (a template with ``project:``) and in
  ``folders:`` lists (a template with ``folder:`` or ``folders:``); ``with:`` gives parameters,
  ``for_each:`` instantiates once per item of an inline list or of a CSV/YAML file in the
  manifest's directory tree. Templates may use templates (a cycle is an error).
* Undefined references, missing or unknown parameters, duplicate definitions and unreadable
  ``for_each`` files are located errors; unused variables, parameters and templates are warnings.

Each instantiation has a *fan-out key* (``center[Alpha]``: the template and the value of its
``key:``, by default of its first parameter), which outputs group ids by.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from synapse_declare import files
from synapse_declare.errors import ManifestError, SourceLocation
from synapse_declare.manifest import (
    MAX_FILE_BYTES,
    JsonPath,
    LoadedDocument,
    Locator,
    SourceMap,
    YamlTimestamp,
    parse_bytes,
)
from synapse_declare.model import java_trim

ENV_PREFIX = "SYNAPSE_DECLARE_VAR_"
"""``SYNAPSE_DECLARE_VAR_bucket=...`` overrides the variable ``bucket``."""

MAX_TEMPLATE_DEPTH = 16
"""Deepest nesting of templates using templates."""

MAX_EXPANDED_NODES = 500_000
"""Values an expansion may produce in total (a for_each over a huge table is refused)."""

MAX_FOR_EACH_ITEMS = 10_000
"""Rows a single ``for_each`` may instantiate."""

FANOUT_KEYS = ("variables", "templates")
"""Top-level keys that exist only before expansion."""

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_NAME_RE = re.compile(rf"^{_NAME}$")
# `$${var.x}` (escaped) or `${var.x}`; group 1 is the escape, group 2 the name.
_REFERENCE = re.compile(rf"\$(\$?)\{{var\.({_NAME})\}}")
_MALFORMED = re.compile(r"(?<!\$)\$\{var\.(?![A-Za-z_][A-Za-z0-9_]*\})[^}]*\}?")
_BARE = re.compile(rf"(?<!\$)\$\{{({_NAME})\}}")
_WHOLE = re.compile(rf"^\$\{{var\.({_NAME})\}}$")

_INSTANCE_MARK = "\0instances"  # cannot clash: YAML keys never hold NUL

_USE_KEYS = frozenset({"use", "with", "for_each", "key"})
_TEMPLATE_KEYS = frozenset({"description", "parameters", "project", "folder", "folders"})
_BODY_KEYS = ("project", "folder", "folders")
_BODY_NAMES = {"project": "a project", "folder": "a folder", "folders": "a list of folders"}


@dataclass(frozen=True, slots=True)
class Instance:
    """One instantiation of a template: its fan-out key and where it was asked for."""

    template: str
    key: str
    location: SourceLocation

    @property
    def label(self) -> str:
        return f"{self.template}[{self.key}]"


@dataclass(frozen=True, slots=True)
class Expansion:
    """The manifest after fan-out: documents without ``variables``/``templates`` and with every
    ``use:`` item replaced, plus what the expansion found out on the way."""

    documents: tuple[LoadedDocument, ...]
    errors: tuple[ManifestError, ...]
    warnings: tuple[ManifestError, ...]
    variables: Mapping[str, Any]
    # Which instantiation produced each expanded project/folder address (outermost first).
    instances: Mapping[str, tuple[Instance, ...]]
    # YAML files read as for_each tables: data, not manifest documents, even when they lie in
    # the manifest's directory.
    data_files: frozenset[Path] = frozenset()

    @property
    def used(self) -> bool:
        """Whether the manifest used fan-out at all (a plain manifest expands to itself)."""
        return bool(self.variables) or bool(self.instances)


@dataclass(slots=True)
class _Template:
    name: str
    source: SourceMap
    path: JsonPath  # ("templates", name)
    parameters: dict[str, tuple[bool, Any]]  # name -> (required, default)
    body_key: str
    body: Any
    used: bool = False
    used_parameters: set[str] = field(default_factory=set)


@dataclass(slots=True)
class _Variable:
    name: str
    value: Any
    location: SourceLocation | None
    used: bool = False


@dataclass(frozen=True, slots=True)
class _Frame:
    """What ``${var.x}`` means at one point of the expansion, and how we got there."""

    scope: Mapping[str, Any]
    template: _Template | None
    via: tuple[str, ...]
    instances: tuple[Instance, ...]
    depth: int


class _Stop(Exception):
    """The expansion exceeded a bound; the error says which."""

    def __init__(self, error: ManifestError) -> None:
        super().__init__(error.message)
        self.error = error


def parse_overrides(items: Sequence[str]) -> dict[str, str]:
    """``["bucket=my-bucket", ...]`` from ``--var``; raises ManifestError for a malformed one."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not _NAME_RE.match(name):
            raise ManifestError(
                f"--var {item!r} is not NAME=VALUE",
                hint="write --var bucket=my-bucket (names are letters, digits and _)",
            )
        out[name] = value
    return out


def env_overrides(environ: Mapping[str, str]) -> dict[str, str]:
    return {
        key[len(ENV_PREFIX) :]: value
        for key, value in environ.items()
        if key.startswith(ENV_PREFIX) and _NAME_RE.match(key[len(ENV_PREFIX) :])
    }


def expand(
    documents: Sequence[LoadedDocument],
    overrides: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Expansion:
    """Expand variables and templates across ``documents`` (the files of one manifest).

    ``overrides`` (``--var``) win over ``environ``'s ``SYNAPSE_DECLARE_VAR_*``, which win over
    the defaults written under ``variables:``.
    """
    return _Expander(documents, overrides or {}, env_overrides(environ or os.environ)).run()


class _Expander:
    def __init__(
        self,
        documents: Sequence[LoadedDocument],
        overrides: Mapping[str, str],
        from_env: Mapping[str, str],
    ) -> None:
        self.documents = documents
        self.overrides = overrides
        self.from_env = from_env
        self.errors: list[ManifestError] = []
        self.warnings: list[ManifestError] = []
        self.variables: dict[str, _Variable] = {}
        self.templates: dict[str, _Template] = {}
        self.nodes = 0
        self.instances: dict[str, tuple[Instance, ...]] = {}
        self.data_files: set[Path] = set()

    # -- collection ------------------------------------------------------------------------

    def run(self) -> Expansion:
        for doc in self.documents:
            if isinstance(doc.data, dict):
                self._collect(doc)
        self._apply_overrides()
        out: list[LoadedDocument] = []
        if not self.errors:
            try:
                for doc in self.documents:
                    out.append(self._expand_document(doc))
                out = [doc for doc in out if not self._is_table(doc)]
                self.instances = _pop_instances(out)
            except _Stop as stop:
                self.errors.append(stop.error)
                out = []
        if not self.errors:
            self._warn_unused()
        variables = {name: var.value for name, var in sorted(self.variables.items())}
        return Expansion(
            documents=tuple(out) if not self.errors else tuple(self.documents),
            errors=tuple(self.errors),
            warnings=tuple(self.warnings),
            variables=variables,
            instances=dict(self.instances),
            data_files=frozenset(self.data_files),
        )

    def _error(
        self,
        source: SourceMap,
        path: JsonPath,
        message: str,
        hint: str | None,
        *,
        key: bool = False,
        via: tuple[str, ...] = (),
    ) -> None:
        location = source.locate(path, key=key)
        if via:
            location = dataclasses.replace(location, via=via)
        self.errors.append(ManifestError(message, location=location, hint=hint))

    def _collect(self, doc: LoadedDocument) -> None:
        data: dict[str, Any] = doc.data
        variables = data.get("variables")
        if variables is not None:
            if not isinstance(variables, dict):
                self._error(
                    doc.source,
                    ("variables",),
                    "variables must be a mapping of NAME: default value",
                    "write `variables: {bucket: my-bucket}`; a null default makes it required",
                )
            else:
                for name, value in variables.items():
                    self._collect_variable(doc.source, name, value)
        templates = data.get("templates")
        if templates is not None:
            if not isinstance(templates, dict):
                self._error(
                    doc.source,
                    ("templates",),
                    "templates must be a mapping of NAME: template",
                    "write `templates: {center: {parameters: {...}, project: {...}}}`",
                )
            else:
                for name, spec in templates.items():
                    self._collect_template(doc.source, name, spec)

    def _collect_variable(self, source: SourceMap, name: str, value: Any) -> None:
        path = ("variables", name)
        if not _NAME_RE.match(name):
            self._error(
                source,
                path,
                f"variable name {name!r} is not valid",
                "use letters, digits and _ (not starting with a digit)",
                key=True,
            )
            return
        here = source.locate(path, key=True)
        if name in self.variables:
            first = self.variables[name].location
            self.errors.append(
                ManifestError(
                    f"variable {name!r} is defined twice (first at {first})",
                    location=here,
                    hint="define each variable once, in one file",
                )
            )
            return
        if isinstance(value, (dict, list)):
            self._error(
                source,
                path,
                f"variable {name!r} must be text, a number or true/false",
                "lists and mappings belong in templates' parameters",
            )
            return
        self.variables[name] = _Variable(name, value, here)

    def _collect_template(self, source: SourceMap, name: str, spec: Any) -> None:
        path: JsonPath = ("templates", name)
        if not _NAME_RE.match(name.replace("-", "_")):
            self._error(
                source,
                path,
                f"template name {name!r} is not valid",
                "use letters, digits, _ and -",
                key=True,
            )
            return
        if name in self.templates:
            first = self.templates[name].source.locate(self.templates[name].path, key=True)
            self._error(
                source,
                path,
                f"template {name!r} is defined twice (first at {first})",
                "define each template once, in one file",
                key=True,
            )
            return
        if not isinstance(spec, dict):
            self._error(
                source,
                path,
                f"template {name!r} must be a mapping",
                "give it `parameters:` and one of `project:`, `folder:` or `folders:`",
            )
            return
        for key in spec:
            if key not in _TEMPLATE_KEYS:
                self._error(
                    source,
                    (*path, key),
                    f"unknown key {key!r} in template {name!r}",
                    "a template has description, parameters and one of project, folder, folders",
                    key=True,
                )
        bodies = [k for k in _BODY_KEYS if k in spec]
        if len(bodies) != 1:
            self._error(
                source,
                path,
                f"template {name!r} needs exactly one of project, folder or folders"
                + (f" (it has {', '.join(bodies)})" if bodies else ""),
                "`project:` for a use in projects:, `folder:`/`folders:` for a use in folders:",
            )
            return
        body_key = bodies[0]
        body = spec[body_key]
        expected = list if body_key == "folders" else dict
        if not isinstance(body, expected):
            self._error(
                source,
                (*path, body_key),
                f"template {name!r}: {body_key} must be "
                + ("a list of folders" if expected is list else f"a {body_key} mapping"),
                None,
            )
            return
        parameters: dict[str, tuple[bool, Any]] = {}
        raw_params = spec.get("parameters")
        if raw_params is not None and not isinstance(raw_params, dict):
            self._error(
                source,
                (*path, "parameters"),
                f"template {name!r}: parameters must be a mapping of NAME: options",
                "write `parameters: {center: , contact: {default: ''}}` (no value: required)",
            )
            return
        for pname, options in (raw_params or {}).items():
            ppath = (*path, "parameters", pname)
            if not _NAME_RE.match(pname):
                self._error(
                    source,
                    ppath,
                    f"parameter name {pname!r} is not valid",
                    "use letters, digits and _",
                    key=True,
                )
                continue
            if options is None:
                parameters[pname] = (True, None)
            elif isinstance(options, dict) and set(options) <= {"default", "description"}:
                if "default" in options:
                    parameters[pname] = (False, options["default"])
                else:
                    parameters[pname] = (True, None)
            else:
                self._error(
                    source,
                    ppath,
                    f"parameter {pname!r} of template {name!r}: expected nothing (required) "
                    "or a mapping with default and/or description",
                    "write `contact: {default: ''}`",
                )
        self.templates[name] = _Template(name, source, path, parameters, body_key, body)

    def _apply_overrides(self) -> None:
        for origin, values in (("--var", self.overrides), (ENV_PREFIX, self.from_env)):
            for name, text in values.items():
                var = self.variables.get(name)
                if var is None:
                    if origin == ENV_PREFIX:
                        continue  # the environment may hold variables for other manifests
                    self.errors.append(
                        ManifestError(
                            f"--var {name}: no variable {name!r} is declared"
                            + _did_you_mean(name, self.variables),
                            hint=f"declare it under `variables:` (e.g. `{name}: null`)",
                        )
                    )
                    continue
                if origin == ENV_PREFIX and name in self.overrides:
                    continue
                var.value = self._coerce(var, text, origin)
        for var in self.variables.values():
            if var.value is None:
                self.errors.append(
                    ManifestError(
                        f"variable {var.name!r} has no value",
                        location=var.location,
                        hint=f"give it a default here, or set --var {var.name}=VALUE or "
                        f"{ENV_PREFIX}{var.name}",
                    )
                )

    def _coerce(self, var: _Variable, text: str, origin: str) -> Any:
        # The default's type decides how an override is read, so `--var sts=false` is a
        # boolean where the manifest wrote `sts: true`, and `--var id=00123` stays text.
        default = var.value
        try:
            if isinstance(default, bool):
                lowered = text.strip().lower()
                if lowered not in ("true", "false"):
                    raise ValueError(text)
                return lowered == "true"
            if isinstance(default, int):
                return int(text)
            if isinstance(default, float):
                return float(text)
        except ValueError:
            kind = {bool: "true or false", int: "an integer", float: "a number"}[type(default)]
            self.errors.append(
                ManifestError(
                    f"{origin}{'' if origin == ENV_PREFIX else ' '}{var.name}: {text!r} is not "
                    f"{kind}",
                    location=var.location,
                    hint=f"the default of {var.name!r} is {kind}, so its overrides must be too",
                )
            )
            return default
        return text

    def _warn_unused(self) -> None:
        for var in self.variables.values():
            if not var.used:
                self.warnings.append(
                    ManifestError(
                        f"variable {var.name!r} is never used",
                        location=var.location,
                        hint=f"reference it as ${{var.{var.name}}} or remove it",
                    )
                )
        for template in self.templates.values():
            where = template.source.locate(template.path, key=True)
            if not template.used:
                self.warnings.append(
                    ManifestError(
                        f"template {template.name!r} is never used",
                        location=where,
                        hint=f"instantiate it with `- use: {template.name}` or remove it",
                    )
                )
                continue
            for pname in sorted(set(template.parameters) - template.used_parameters):
                self.warnings.append(
                    ManifestError(
                        f"parameter {pname!r} of template {template.name!r} is never used",
                        location=template.source.locate(
                            (*template.path, "parameters", pname), key=True
                        ),
                        hint=f"reference it as ${{var.{pname}}} in the template, or remove it",
                    )
                )

    # -- expansion -------------------------------------------------------------------------

    def _expand_document(self, doc: LoadedDocument) -> LoadedDocument:
        data = doc.data
        if not isinstance(data, dict) or not (
            set(FANOUT_KEYS) & set(data) or _mentions_fanout(data)
        ):
            return doc
        routes = Locator(doc.source)
        frame = _Frame(self._global_scope(), None, (), (), 0)
        out: dict[str, Any] = {}
        for key, value in data.items():
            if key in FANOUT_KEYS:
                continue
            if key == "projects" and isinstance(value, list):
                out[key] = self._list(value, doc.source, (key,), (key,), frame, routes, "projects")
            else:
                out[key] = self._value(value, doc.source, (key,), (key,), frame, routes)
        return LoadedDocument(doc.file, out, doc.source, routes)

    def _is_table(self, doc: LoadedDocument) -> bool:
        return doc.source.path is not None and doc.source.path.resolve() in self.data_files

    def _global_scope(self) -> dict[str, Any]:
        return {name: var.value for name, var in self.variables.items()}

    def _count(self, source: SourceMap, path: JsonPath) -> None:
        self.nodes += 1
        if self.nodes > MAX_EXPANDED_NODES:
            raise _Stop(
                ManifestError(
                    f"the expanded manifest has more than {MAX_EXPANDED_NODES} values",
                    location=source.locate(path),
                    hint="split the manifest, or check for_each tables for runaway size",
                )
            )

    def _value(
        self,
        value: Any,
        source: SourceMap,
        src_path: JsonPath,
        out_path: JsonPath,
        frame: _Frame,
        routes: Locator,
    ) -> Any:
        self._count(source, src_path)
        if isinstance(value, str):
            return self._string(value, source, src_path, frame)
        if isinstance(value, list):
            kind = "folders" if src_path and src_path[-1] == "folders" else None
            return self._list(value, source, src_path, out_path, frame, routes, kind)
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, item in value.items():
                new_key = self._key(key, source, (*src_path, key), frame)
                if new_key in out:
                    self._error(
                        source,
                        (*src_path, key),
                        f"after substitution, key {new_key!r} appears twice in this mapping",
                        "two keys became equal once their ${var.…} references were replaced",
                        key=True,
                        via=frame.via,
                    )
                    continue
                if new_key != key:
                    routes.add_route((*out_path, new_key), source, (*src_path, key), frame.via)
                out[new_key] = self._value(
                    item, source, (*src_path, key), (*out_path, new_key), frame, routes
                )
            return out
        return value

    def _key(self, key: str, source: SourceMap, path: JsonPath, frame: _Frame) -> str:
        if "$" not in key:
            return key
        value = self._string(key, source, path, frame, is_key=True)
        return value if isinstance(value, str) else str(value)

    def _list(
        self,
        items: list[Any],
        source: SourceMap,
        src_path: JsonPath,
        out_path: JsonPath,
        frame: _Frame,
        routes: Locator,
        kind: str | None,
    ) -> list[Any]:
        out: list[Any] = []
        for i, item in enumerate(items):
            path = (*src_path, i)
            if kind is not None and isinstance(item, dict) and "use" in item:
                for produced, tsource, tpath, tframe in self._instantiate(
                    item, source, path, frame, kind
                ):
                    index = (*out_path, len(out))
                    routes.add_route(index, tsource, tpath, tframe.via)
                    value = self._value(produced, tsource, tpath, index, tframe, routes)
                    if isinstance(value, dict):
                        # Read back (and removed) by _pop_instances once names are final.
                        value[_INSTANCE_MARK] = tframe.instances
                    out.append(value)
                continue
            index = (*out_path, len(out))
            # Every item gets its own route: earlier use items may have shifted its index.
            routes.add_route(index, source, path, frame.via)
            out.append(self._value(item, source, path, index, frame, routes))
        return out

    def _instantiate(
        self, item: dict[str, Any], source: SourceMap, path: JsonPath, frame: _Frame, kind: str
    ) -> Iterator[tuple[Any, SourceMap, JsonPath, _Frame]]:
        for key in item:
            if key not in _USE_KEYS:
                self._error(
                    source,
                    (*path, key),
                    f"unknown key {key!r} beside use:",
                    "a use item has use, with, for_each and key; put the entity's own fields "
                    "in the template",
                    key=True,
                    via=frame.via,
                )
                return
        name = item["use"]
        use_at = source.locate((*path, "use"))
        if not isinstance(name, str) or name not in self.templates:
            self._error(
                source,
                (*path, "use"),
                f"no template named {name!r}"
                + (_did_you_mean(name, self.templates) if isinstance(name, str) else ""),
                "define it under `templates:` in any file of the manifest",
                via=frame.via,
            )
            return
        template = self.templates[name]
        template.used = True
        if frame.depth >= MAX_TEMPLATE_DEPTH or any(
            inst.template == name for inst in frame.instances
        ):
            chain = " → ".join([*(i.template for i in frame.instances), name])
            self._error(
                source,
                (*path, "use"),
                f"template {name!r} uses itself ({chain})",
                "templates may use other templates, but not in a cycle",
                via=frame.via,
            )
            return
        wanted = "project" if kind == "projects" else "folder"
        if (template.body_key == "project") != (wanted == "project"):
            where = "projects:" if kind == "projects" else "folders:"
            self._error(
                source,
                (*path, "use"),
                f"template {name!r} declares {_BODY_NAMES[template.body_key]}, which cannot "
                f"stand in {where}",
                "use a template with `project:` in projects:, and one with `folder:` or "
                "`folders:` in folders:",
                via=frame.via,
            )
            return
        common = item.get("with", {})
        if not isinstance(common, dict):
            self._error(
                source,
                (*path, "with"),
                "with: must be a mapping of parameters",
                None,
                via=frame.via,
            )
            return
        common = {
            k: self._value(v, source, (*path, "with", k), (), frame, Locator())
            for k, v in common.items()
        }
        rows: list[_Row] = []
        if "for_each" in item:
            rows = self._rows(item["for_each"], source, (*path, "for_each"), frame)
        else:
            rows = [({}, source, (*path, "with"))]
        seen_keys: dict[str, SourceLocation] = {}
        for row, row_source, row_path in rows:
            clash = sorted(set(row) & set(common))
            if clash:
                self._error(
                    row_source,
                    row_path,
                    f"parameter {clash[0]!r} is given both by with: and by this for_each item",
                    "give each parameter in one place",
                    via=frame.via,
                )
                continue
            params = {**common, **row}
            scope = self._bind(template, params, row_source, row_path, frame)
            if scope is None:
                continue
            key = self._fanout_key(item, template, params, source, path, frame)
            if not key.strip():
                # An empty key would make `name[]` addresses and outputs nobody can target;
                # in a hand-kept table it is almost always a forgotten cell.
                column = (
                    "`key:`" if "key" in item else f"parameter {next(iter(template.parameters))!r}"
                )
                self.errors.append(
                    ManifestError(
                        f"this instantiation of template {name!r} has an empty fan-out key "
                        f"({column})",
                        location=_via(row_source.locate(row_path), frame),
                        hint="fill it in: the key names what this row makes "
                        f"({name}[KEY] in plans, --target and outputs)",
                    )
                )
                continue
            if key in seen_keys:
                self.errors.append(
                    ManifestError(
                        f"template {name!r} is instantiated twice with the key {key!r} "
                        f"(first at {seen_keys[key]})",
                        location=_via(row_source.locate(row_path), frame),
                        hint="fan-out keys must be unique: set `key:` on the use item",
                    )
                )
                continue
            seen_keys[key] = row_source.locate(row_path)
            instance = Instance(name, key, use_at)
            note = f"in template {name!r} instantiated at {use_at} as {instance.label}"
            tframe = _Frame(
                {**frame.scope, **scope},
                template,
                (*frame.via, note),
                (*frame.instances, instance),
                frame.depth + 1,
            )
            body_path = (*template.path, template.body_key)
            if template.body_key == "folders":
                for j, folder in enumerate(template.body):
                    if isinstance(folder, dict) and "use" in folder:
                        yield from self._instantiate(
                            folder, template.source, (*body_path, j), tframe, kind
                        )
                    else:
                        yield folder, template.source, (*body_path, j), tframe
            else:
                yield template.body, template.source, body_path, tframe

    def _bind(
        self,
        template: _Template,
        params: dict[str, Any],
        row_source: SourceMap,
        row_path: JsonPath,
        frame: _Frame,
    ) -> dict[str, Any] | None:
        ok = True
        for pname in params:
            if pname not in template.parameters:
                self.errors.append(
                    ManifestError(
                        f"template {template.name!r} has no parameter {pname!r}"
                        + _did_you_mean(pname, template.parameters),
                        location=_via(row_source.locate(row_path), frame),
                        hint="its parameters are "
                        + (", ".join(sorted(template.parameters)) or "none"),
                    )
                )
                ok = False
        missing = [
            p for p, (required, _) in template.parameters.items() if required and p not in params
        ]
        if missing:
            self.errors.append(
                ManifestError(
                    f"template {template.name!r} needs the parameter"
                    f"{'s' if len(missing) > 1 else ''} {', '.join(missing)}",
                    location=_via(row_source.locate(row_path), frame),
                    hint="give "
                    + ", ".join(f"{p}: ..." for p in missing)
                    + " under with: (or as a for_each column)",
                )
            )
            ok = False
        if not ok:
            return None
        return {p: params.get(p, default) for p, (_, default) in template.parameters.items()}

    def _fanout_key(
        self,
        item: dict[str, Any],
        template: _Template,
        params: dict[str, Any],
        source: SourceMap,
        path: JsonPath,
        frame: _Frame,
    ) -> str:
        if "key" in item:
            value = self._string(
                str(item["key"]), source, (*path, "key"), _with_scope(frame, params)
            )
            return str(value)
        if template.parameters:
            first = next(iter(template.parameters))
            return str(params.get(first, template.parameters[first][1]))
        return template.name

    def _rows(self, spec: Any, source: SourceMap, path: JsonPath, frame: _Frame) -> list[_Row]:
        if isinstance(spec, list):
            rows: list[_Row] = []
            for i, row in enumerate(spec):
                if not isinstance(row, dict):
                    self._error(
                        source,
                        (*path, i),
                        "each for_each item must be a mapping of parameters",
                        "write `- {center: Alpha, team: Alpha Team}`",
                        via=frame.via,
                    )
                    continue
                rows.append(
                    (
                        {
                            k: self._value(v, source, (*path, i, k), (), frame, Locator())
                            for k, v in row.items()
                        },
                        source,
                        (*path, i),
                    )
                )
            return self._capped(rows, source, path, frame)
        if isinstance(spec, str):
            return self._capped(self._read_table(spec, source, path, frame), source, path, frame)
        self._error(
            source,
            path,
            "for_each takes a list of parameter mappings or the path of a CSV/YAML file",
            "write `for_each: centers.csv` or `for_each: [{center: Alpha}, ...]`",
            via=frame.via,
        )
        return []

    def _capped(
        self, rows: list[_Row], source: SourceMap, path: JsonPath, frame: _Frame
    ) -> list[_Row]:
        if len(rows) > MAX_FOR_EACH_ITEMS:
            self._error(
                source,
                path,
                f"for_each has {len(rows)} items; at most {MAX_FOR_EACH_ITEMS} are allowed",
                "split the table across several use items",
                via=frame.via,
            )
            return []
        return rows

    def _read_table(
        self, relative: str, source: SourceMap, path: JsonPath, frame: _Frame
    ) -> list[_Row]:
        raw = read_confined(source, relative)
        if isinstance(raw, files.ConfinedFileError):
            self._error(source, path, raw.message, raw.hint, via=frame.via)
            return []
        display = str(Path(os.path.dirname(source.file)) / relative)
        if relative.lower().endswith(".csv"):
            return self._csv_rows(raw, display, source, path, frame)
        if relative.lower().endswith((".yaml", ".yml")):
            self.data_files.add((source.base_dir / relative).resolve())
            doc, errors = parse_bytes(raw, display, source.base_dir / relative)
            self.errors.extend(errors)
            if doc is None:
                return []
            if not isinstance(doc.data, list):
                self.errors.append(
                    ManifestError(
                        "a for_each YAML file must hold a list of parameter mappings",
                        location=doc.source.locate(()),
                        hint="write `- {center: Alpha, team: Alpha Team}` items",
                    )
                )
                return []
            rows: list[_Row] = []
            for i, row in enumerate(doc.data):
                if not isinstance(row, dict):
                    self.errors.append(
                        ManifestError(
                            "each item must be a mapping of parameters",
                            location=doc.source.locate((i,)),
                            hint="write `- {center: Alpha, team: Alpha Team}`",
                        )
                    )
                    continue
                rows.append((row, doc.source, (i,)))
            return rows
        self._error(
            source,
            path,
            f"for_each: {relative!r} is neither .csv nor .yaml",
            _TABLE_HINT,
            via=frame.via,
        )
        return []

    def _csv_rows(
        self, raw: bytes, display: str, source: SourceMap, path: JsonPath, frame: _Frame
    ) -> list[_Row]:
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            self._error(
                source, path, f"for_each: {display} is not UTF-8 text", _TABLE_HINT, via=frame.via
            )
            return []
        # A synthetic SourceMap gives each CSV row its line, so errors point into the table.
        table = SourceMap(display, source.base_dir / Path(display).name)
        reader = csv.reader(io.StringIO(text, newline=""))
        try:
            header = next(reader, None)
            if header is None:
                self._error(
                    source, path, f"for_each: {display} is empty", _TABLE_HINT, via=frame.via
                )
                return []
            columns = [h.strip() for h in header]
            for column in columns:
                if not _NAME_RE.match(column):
                    self.errors.append(
                        ManifestError(
                            f"CSV column {column!r} is not a parameter name",
                            location=SourceLocation(display, 1, 1),
                            hint="the header row names template parameters (letters, digits, _)",
                        )
                    )
                    return []
            rows: list[_Row] = []
            for i, record in enumerate(reader):
                line = reader.line_num
                if not any(cell.strip() for cell in record):
                    continue  # blank lines in a hand-kept table are not rows
                table.values[(i,)] = (line, 1)
                if len(record) != len(columns):
                    fields = "field" if len(record) == 1 else "fields"
                    self.errors.append(
                        ManifestError(
                            f"this row has {len(record)} {fields}; the header has "
                            f"{len(columns)} ({', '.join(columns)})",
                            location=SourceLocation(display, line, 1),
                            hint="quote fields that contain commas"
                            if len(record) > len(columns)
                            else "give every column a value, empty ones as nothing between "
                            "commas (a,,c)",
                        )
                    )
                    continue
                rows.append((dict(zip(columns, record, strict=True)), table, (i,)))
                if len(rows) > MAX_FOR_EACH_ITEMS:
                    break
        except csv.Error as exc:
            self.errors.append(
                ManifestError(
                    f"malformed CSV: {exc}",
                    location=SourceLocation(display, reader.line_num or 1, 1),
                    hint="check the quoting on that line",
                )
            )
            return []
        return rows

    # -- strings ---------------------------------------------------------------------------

    def _string(
        self,
        text: str,
        source: SourceMap,
        path: JsonPath,
        frame: _Frame,
        *,
        is_key: bool = False,
    ) -> Any:
        if "${" not in text:
            return text
        malformed = _MALFORMED.search(text)
        if malformed:
            self._error(
                source,
                path,
                f"malformed reference {malformed.group(0)!r}",
                "write ${var.NAME} (letters, digits and _), or $${var.…} for the literal text",
                key=is_key,
                via=frame.via,
            )
            return text
        in_markdown = bool(path) and path[-1] == "markdown"
        if not in_markdown:
            bare = next(
                (m for m in _BARE.finditer(text) if m.group(1) in frame.scope),
                None,
            )
            if bare:
                self._error(
                    source,
                    path,
                    f"{bare.group(0)} is not a reference",
                    f"write ${{var.{bare.group(1)}}}",
                    key=is_key,
                    via=frame.via,
                )
                return text
        whole = _WHOLE.match(text)
        if whole:
            return self._lookup(whole.group(1), source, path, frame, is_key=is_key, typed=True)

        def replace(match: re.Match[str]) -> str:
            if match.group(1):
                return match.group(0)[1:]
            value = self._lookup(match.group(2), source, path, frame, is_key=is_key, typed=False)
            return _as_text(value)

        return _REFERENCE.sub(replace, text)

    def _lookup(
        self,
        name: str,
        source: SourceMap,
        path: JsonPath,
        frame: _Frame,
        *,
        is_key: bool,
        typed: bool,
    ) -> Any:
        if name not in frame.scope:
            where = f"template {frame.template.name!r}" if frame.template else "this manifest"
            self._error(
                source,
                path,
                f"${{var.{name}}} is not defined in {where}" + _did_you_mean(name, frame.scope),
                (
                    f"add {name!r} to the template's parameters or to `variables:`"
                    if frame.template
                    else f"declare it under `variables:` (e.g. `{name}: value`)"
                ),
                key=is_key,
                via=frame.via,
            )
            return ""
        if frame.template is not None and name in frame.template.parameters:
            frame.template.used_parameters.add(name)
        variable = self.variables.get(name)
        if variable is not None:
            variable.used = True
        value = frame.scope[name]
        if not typed and isinstance(value, (dict, list)):
            self._error(
                source,
                path,
                f"${{var.{name}}} is a list or mapping and cannot be part of a text",
                "use it as the whole value (`members: ${var.members}`)",
                key=is_key,
                via=frame.via,
            )
            return ""
        return value


_Row = tuple[dict[str, Any], SourceMap, JsonPath]
"""Parameters of one for_each item, and where the item was written."""

_TABLE_HINT = (
    "for_each reads a .csv (a header row of parameter names) or a .yaml list of mappings, "
    "inside the manifest's directory"
)


def read_confined(source: SourceMap, relative: str) -> bytes | files.ConfinedFileError:
    """A for_each table named in ``source``, or why it may not be read.

    The same confinement as ``markdown_file`` (files.py): inside the manifest file's folder after
    symlinks, a regular file, at most :data:`MAX_FILE_BYTES`.
    """
    try:
        return files.read_confined(
            relative, source.base_dir, limit=MAX_FILE_BYTES, field="for_each"
        )
    except files.ConfinedFileError as err:
        return err


def _via(location: SourceLocation, frame: _Frame) -> SourceLocation:
    return dataclasses.replace(location, via=frame.via) if frame.via else location


def _with_scope(frame: _Frame, params: Mapping[str, Any]) -> _Frame:
    return _Frame(
        {**frame.scope, **params}, frame.template, frame.via, frame.instances, frame.depth
    )


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def _did_you_mean(word: str, choices: Mapping[str, Any] | Sequence[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _mentions_fanout(data: Any) -> bool:
    """Whether a document without variables/templates still uses ``use:`` items or references
    (it may use templates and variables defined in another file)."""
    if isinstance(data, dict):
        return "use" in data or any(_mentions_fanout(v) or ("${" in k) for k, v in data.items())
    if isinstance(data, list):
        return any(_mentions_fanout(v) for v in data)
    return isinstance(data, str) and "${" in data


def _pop_instances(documents: Sequence[LoadedDocument]) -> dict[str, tuple[Instance, ...]]:
    """Remove the instance marks the expansion left and map each address to its chain."""
    found: dict[str, tuple[Instance, ...]] = {}

    def walk(items: Any, prefix: str, kind: str, inherited: tuple[Instance, ...]) -> None:
        if not isinstance(items, list):
            return
        for item in items:
            if not isinstance(item, dict):
                continue
            chain = item.pop(_INSTANCE_MARK, None) or inherited
            name = item.get("name")
            if not isinstance(name, str):
                continue
            # The model's address (model/): kind:name segments, names trimmed as Synapse does.
            segment = f"{kind}:{java_trim(name)}"
            address = f"{prefix}/{segment}" if prefix else segment
            if chain:
                found[address] = chain
            walk(item.get("folders"), address, "folder", chain)

    for doc in documents:
        if isinstance(doc.data, dict):
            walk(doc.data.get("projects"), "", "project", ())
    return found


class _Dumper(yaml.SafeDumper):
    """Block scalars (``|``) for multi-line text, so expanded markdown reads as written."""


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text and not any(c in text for c in "\r\t") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(text), style=style)


_Dumper.add_representer(str, _represent_str)
for _kind in (YamlTimestamp,):
    _Dumper.add_representer(_kind, _represent_str)


def dump_yaml(data: Any) -> str:
    """YAML a person would write: keys in manifest order, block scalars for multi-line text."""
    return str(yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100))
