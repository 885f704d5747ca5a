"""The manifest model: frozen, I/O-free specs the planner diffs against live Synapse.

:func:`build_model` turns schema-valid manifest data into a :class:`Manifest` and runs the
semantic checks that mirror Synapse's own validators (names, annotations, ACL content), so that a
plan never proposes something Synapse would reject. It collects every problem and raises them
together as :class:`~synapse_declare.errors.ManifestErrors`.

Semantics worth knowing:

* Names are trimmed like Java's ``String.trim()`` (characters <= U+0020), then checked.
* Plain annotation values infer their type: text -> STRING, ``true``/``false`` -> BOOLEAN,
  whole number -> LONG, decimal -> DOUBLE, date-time *with* timezone -> TIMESTAMP_MS. A date-time
  without timezone, or a bare date, is an error (ambiguous); quote it to keep it as text. Plain
  lists must hold values of one inferred type (``[1, 2.5]`` is an error; write ``1.0``).
* Wire forms (``AnnotationValue.values``) are the strings Synapse stores: LONG ``"3"``, DOUBLE
  ``repr(float)`` (``"1.5"``, ``"1e+20"``) or ``"NaN"``/``"Infinity"``/``"-Infinity"``, BOOLEAN
  ``"true"``/``"false"``, TIMESTAMP_MS epoch milliseconds (sub-millisecond digits truncated).
* Markdown read from ``markdown_file`` has CRLF line ends normalised to LF (so a Windows checkout
  does not change the plan); a page with neither ``markdown`` nor ``markdown_file`` is empty.
* A root wiki page without ``title`` has the title ``""``.
* The digest covers everything the plan depends on (not file names or positions), with folders,
  projects, wiki sub-pages, ACL entries and annotation keys in sorted order.

Layout: :mod:`.specs` (the dataclasses and enums), :mod:`.principals` (principal forms,
permission levels), :mod:`.values` (annotation value inference and coercion), :mod:`.names`
(name and endpoint rules), :mod:`.teams` (declared teams), :mod:`.canonical` (canonical form and
digest); the builders, one per kind, share :mod:`.build_core` and are composed by
:func:`~.build.build_model`. Every name is re-exported here: import from
``synapse_declare.model``.
"""

from __future__ import annotations

from .build import build_model
from .canonical import canonical_form
from .names import (
    ALIAS_RE,
    ANNOTATION_KEY_RE,
    BUCKET_RE,
    MAX_NAME_LENGTH,
    NAME_CHARACTERS,
    NAME_RE,
    endpoint_url_problem,
    java_trim,
    synapse_name_problem,
)
from .principals import (
    ANONYMOUS_ID,
    AUTHENTICATED_USERS_ID,
    ENTITY_ACCESS_TYPES,
    PERMISSION_LEVELS,
    PRINCIPAL_FORMS,
    PUBLIC_ID,
    PrincipalKind,
    PrincipalRef,
    level_for,
    parse_principal,
)
from .specs import (
    INHERIT,
    MANIFEST_VERSION,
    MAX_DESCRIPTION_LENGTH,
    MIGRATION_VERSIONS,
    AclEntry,
    AclSpec,
    AnnotationType,
    AnnotationValue,
    ContainerSpec,
    EntityKind,
    FrozenMap,
    Inherit,
    Manifest,
    ManifestWarning,
    MigrationSpec,
    Prune,
    StorageLocationSpec,
    WikiSpec,
)
from .teams import PERSON_FORMS, MembershipMode, Person, TeamSpec, parse_person
from .values import (
    MAX_ANNOTATION_KEYS,
    MAX_ANNOTATION_VALUES,
    MAX_STRING_ANNOTATION_CHARS,
    RESERVED_ANNOTATION_KEYS,
    ValueProblem,
    infer_plain,
)

# The names resources/exporting.py imports (from before the model became a package).
_infer_plain = infer_plain
_ValueProblem = ValueProblem

__all__ = [
    "ALIAS_RE",
    "ANNOTATION_KEY_RE",
    "ANONYMOUS_ID",
    "AUTHENTICATED_USERS_ID",
    "BUCKET_RE",
    "ENTITY_ACCESS_TYPES",
    "INHERIT",
    "MANIFEST_VERSION",
    "MAX_ANNOTATION_KEYS",
    "MAX_ANNOTATION_VALUES",
    "MAX_DESCRIPTION_LENGTH",
    "MAX_NAME_LENGTH",
    "MAX_STRING_ANNOTATION_CHARS",
    "MIGRATION_VERSIONS",
    "NAME_CHARACTERS",
    "NAME_RE",
    "PERMISSION_LEVELS",
    "PERSON_FORMS",
    "PRINCIPAL_FORMS",
    "PUBLIC_ID",
    "RESERVED_ANNOTATION_KEYS",
    "AclEntry",
    "AclSpec",
    "AnnotationType",
    "AnnotationValue",
    "ContainerSpec",
    "EntityKind",
    "FrozenMap",
    "Inherit",
    "Manifest",
    "ManifestWarning",
    "MembershipMode",
    "MigrationSpec",
    "Person",
    "PrincipalKind",
    "PrincipalRef",
    "Prune",
    "StorageLocationSpec",
    "TeamSpec",
    "ValueProblem",
    "WikiSpec",
    "build_model",
    "canonical_form",
    "endpoint_url_problem",
    "infer_plain",
    "java_trim",
    "level_for",
    "parse_person",
    "parse_principal",
    "synapse_name_problem",
]
