"""Offline manifest validation: YAML loading, JSON Schema, semantic checks. No credentials needed.

:func:`validate_paths` reports *every* problem in every file; :func:`load_manifest` is the same
but returns the :class:`~synapse_declare.model.Manifest` or raises
:class:`~synapse_declare.errors.ManifestErrors`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from synapse_declare.errors import ManifestError, ManifestErrors, SourceLocation
from synapse_declare.fanout import Expansion, expand
from synapse_declare.manifest import LoadedDocument, discover, merge_documents, read_file
from synapse_declare.model import Manifest, ManifestWarning, build_model
from synapse_declare.schema import load_schema, schema_errors

PathArg = str | os.PathLike[str]


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """Outcome of validating a manifest: the files read, all errors, and the model if valid."""

    files: tuple[str, ...]
    errors: tuple[ManifestError, ...]
    manifest: Manifest | None
    warnings: tuple[ManifestWarning, ...] = ()
    expansion: Expansion | None = None

    @property
    def ok(self) -> bool:
        return not self.errors


def _as_list(paths: PathArg | Sequence[PathArg]) -> list[PathArg]:
    if isinstance(paths, (str, os.PathLike)):
        return [paths]
    return list(paths)


def _flatten(errors: Iterable[ManifestError]) -> list[ManifestError]:
    out: list[ManifestError] = []
    for error in errors:
        if isinstance(error, ManifestErrors):
            out.extend(_flatten(error.errors))
        else:
            out.append(error)
    return out


def validate_paths(
    paths: PathArg | Sequence[PathArg],
    *,
    variables: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> ValidationReport:
    """Validate the manifest made of ``paths`` (files and/or directories).

    ``variables`` (``--var``) and ``environ`` (``SYNAPSE_DECLARE_VAR_*``; default: the process
    environment) override the manifest's variables; see :mod:`synapse_declare.fanout`.

    Files that fail the schema are reported and left out of the semantic checks (their shape is
    unknown); semantic checks, including cross-file ones, run over all the others. Templates
    and variables are expanded first (across all files), so the schema and the model judge
    what plan will see, and a problem inside an instantiated template is located at the
    template's line and at the use.

    Order of ``errors``: paths that cannot be found; then file by file (in the order read) the
    YAML problems by position; then fan-out problems; then file by file the schema problems
    with jsonschema's ``best_match`` first and the rest by decreasing relevance; then
    cross-file and semantic problems by file and position. So the first error is always the
    most useful one to fix first.
    """
    found, errors = discover(_as_list(paths))
    files = tuple(display for display, _ in found)
    parsed: list[LoadedDocument] = []
    reading: dict[str, list[ManifestError]] = {}
    for display, path in found:
        doc, problems = read_file(display, path)
        reading[display] = problems
        if doc is not None:
            parsed.append(doc)
    expansion = expand(parsed, variables, environ)
    if expansion.errors:
        problems = [p for display in files for p in reading[display]]
        ordered = tuple(_flatten([*errors, *problems, *_by_position(expansion.errors, files)]))
        return ValidationReport(files, ordered, None, _warnings(expansion), expansion)
    expanded = {doc.file: doc for doc in expansion.documents}
    valid: list[LoadedDocument] = []
    for display in files:
        # File by file, as a person reads them: its YAML problems, then its schema problems.
        errors.extend(reading[display])
        doc = expanded.get(display)
        if doc is None:
            continue
        stranger = _not_a_manifest(doc)
        shape_problems = [stranger] if stranger else schema_errors(doc.data, doc.locator)
        errors.extend(shape_problems)
        if not shape_problems:
            valid.append(doc)
    manifest: Manifest | None = None
    if valid:
        merged, locator, merge_problems = merge_documents(valid)
        errors.extend(merge_problems)
        try:
            manifest = build_model(merged, locator)
        except ManifestErrors as exc:
            errors.extend(_by_position(exc.errors, files))
    elif not errors:
        errors.append(ManifestError("no manifest files given", hint="pass a file or directory"))
    ordered = tuple(_flatten(errors))
    warnings = _warnings(expansion) + (manifest.warnings if manifest is not None else ())
    return ValidationReport(files, ordered, None if ordered else manifest, warnings, expansion)


def _not_a_manifest(doc: LoadedDocument) -> ManifestError | None:
    """One error, not one per key, for another tool's YAML in a manifest directory (the
    emulator's users file beside the manifests is the usual one): no `version:` and top-level
    keys no manifest has."""
    if not isinstance(doc.data, Mapping) or "version" in doc.data:
        return None
    known = set(load_schema().get("properties", {}))
    foreign = sorted(str(k) for k in doc.data if k not in known)
    if not foreign:
        return None
    named = ", ".join(repr(k) for k in foreign)
    which = f"key {named} is not a" if len(foreign) == 1 else f"keys {named} are not"
    return ManifestError(
        "not a synapse-declare manifest: it has no `version: 1` and its top-level "
        f"{which} manifest key{'' if len(foreign) == 1 else 's'}",
        location=SourceLocation(doc.file, 1, 1),
        hint="every *.yaml and *.yml file in a directory given to synapse-declare is part of "
        "the manifest: keep other YAML (an emulator users file, CI settings) elsewhere, or give "
        "the manifest files by name",
    )


def _warnings(expansion: Expansion) -> tuple[ManifestWarning, ...]:
    return tuple(
        ManifestWarning(w.message, w.location, w.hint or "")
        for w in expansion.warnings
        if w.location is not None
    )


def _by_position(errors: Iterable[ManifestError], files: tuple[str, ...]) -> list[ManifestError]:
    rank = {name: i for i, name in enumerate(files)}

    def key(error: ManifestError) -> tuple[int, int, int]:
        loc = error.location
        if loc is None:
            return (-1, 0, 0)
        return (rank.get(loc.file, len(rank)), loc.line, loc.column)

    return sorted(errors, key=key)


def load_manifest(
    paths: PathArg | Sequence[PathArg],
    *,
    variables: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Manifest:
    """Validate and return the manifest; raise :class:`ManifestErrors` listing every problem."""
    report = validate_paths(paths, variables=variables, environ=environ)
    if report.errors or report.manifest is None:
        raise ManifestErrors(report.errors)
    return report.manifest


def warnings_to_json(warnings: Iterable[ManifestWarning]) -> list[dict[str, object]]:
    """The ``--json`` form of manifest warnings: as :func:`diagnostics_to_json`, severity
    ``"warning"``."""
    return [
        {
            "severity": "warning",
            "summary": w.message,
            "detail": w.hint,
            "file": w.location.file,
            "line": w.location.line,
            "column": w.location.column,
            "json_path": w.location.json_path,
        }
        for w in warnings
    ]


def diagnostics_to_json(errors: Iterable[ManifestError]) -> list[dict[str, object]]:
    """JSON-able diagnostics for ``--json`` output, one dict per error.

    Keys: ``severity`` ("error"), ``summary`` (the message), ``detail`` (the hint or ``None``),
    ``file``, ``line``, ``column`` (1-based) and ``json_path``; location keys are ``None`` for
    problems that are not inside a file (such as a path that does not exist).
    """
    out: list[dict[str, object]] = []
    for error in _flatten(errors):
        loc = error.location
        out.append(
            {
                "severity": "error",
                "summary": error.message,
                "detail": error.hint,
                "file": loc.file if loc else None,
                "line": loc.line if loc else None,
                "column": loc.column if loc else None,
                "json_path": loc.json_path if loc else None,
            }
        )
    return out
