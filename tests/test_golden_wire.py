"""Wire golden plans (engineering.md §C.3 #1): one directory per case under ``tests/golden_wire/``.

These run the real CLI against an emulator, so they cover what needs the wire: reading, the
plan's read-only guarantee, and that each golden plan applies and converges. The pure planner
goldens (no emulator, many more cases) are ``tests/golden/`` and ``tests/test_golden.py``.

Each case has ``manifest.yaml`` (plus any markdown files it names), an optional ``setup.yaml``
that prepares live state on a fresh emulator, and the expected ``plan.txt`` / ``plan.json`` —
the exact output of ``synapse-declare plan`` and ``plan --json`` with volatile values (entity
and wiki ids, etags, principal ids, the endpoint, the time, the tool version, the manifest
digest) replaced by stable placeholders.

``setup.yaml`` is a list of steps, run in order:

* ``{apply: FILE}`` — apply that manifest with the real CLI (as alice, ``--auto-approve``);
* ``{lookup: NAME, save: VAR}`` — find a project by name (``${VAR.id}``);
* ``{method, path, body?, as?, save?}`` — one raw REST call (``as`` a user, default alice);
* ``{edit: PATH, set|merge: {...}, as?}`` — GET PATH, replace (``set``) or update (``merge``)
  top-level keys, PUT it back with its etag;
* ``{bucket: NAME, owner_txt: [PREFIX, ...]}`` — a bucket in the embedded S3 with an owner.txt
  naming alice under each prefix;
* ``{file: NAME, parent: ID, content: TEXT, as?, save?}`` — upload a file (multipart, to the
  project's current upload destination) and create its file entity.

Strings may use ``${VAR.key}`` (a saved response's field) and ``${principal.NAME}`` (a seeded
user's or team's principal id); a string that is exactly one placeholder keeps the value's type.

Regenerate the expected files after an intended change with ``UPDATE_GOLDEN=1 pytest
tests/test_golden_wire.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import Api
from reconcile_support import Workspace, lookup
from test_emulator_storage_support import file_entity, upload

from synapse_declare.emulator import Emulator

GOLDEN = Path(__file__).parent / "golden_wire"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "manifest.yaml").exists())
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"

PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][\w]*)\.([^}]+)\}")
UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
SYN_ID = re.compile(r"\bsyn\d+\b")


# ---------------------------------------------------------------------------------------------
# Setup steps


def _substitute(value: Any, saved: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, saved) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, saved) for v in value]
    if not isinstance(value, str):
        return value

    def lookup_value(match: re.Match[str]) -> Any:
        name, key = match.group(1), match.group(2)
        return saved[name][key]

    whole = PLACEHOLDER.fullmatch(value)
    if whole:
        return lookup_value(whole)
    return PLACEHOLDER.sub(lambda m: str(lookup_value(m)), value)


def run_setup(case: Path, emulator: Emulator, ws: Workspace, api_for: Any) -> None:
    setup = case / "setup.yaml"
    if not setup.exists():
        return
    steps = yaml.safe_load(setup.read_text(encoding="utf-8")) or []
    saved: dict[str, Any] = {"principal": dict(emulator.principal_ids)}
    for step in steps:
        user = step.get("as", "alice")
        api: Api = api_for(emulator, user)
        if "apply" in step:
            source = case / step["apply"]
            # Storage manifests name the embedded S3 through a variable (see golden_support).
            s3 = ["--var", f"s3_endpoint={emulator.s3_endpoint}"]
            uses_s3 = "s3_endpoint" in source.read_text(encoding="utf-8")
            result = ws.run(
                "apply", source, "--auto-approve", *(s3 if uses_s3 else []), *ws.connection(user)
            )
            assert result.code == 0, result.err
            continue
        if "bucket" in step:
            s3 = emulator.s3_client()
            s3.create_bucket(Bucket=step["bucket"])
            for prefix in step.get("owner_txt", []):
                s3.put_object(Bucket=step["bucket"], Key=f"{prefix}/owner.txt", Body=b"alice\n")
            continue
        if "file" in step:
            parent = _substitute(step["parent"], saved)
            handle = upload(api, str(step["content"]).encode("utf-8"), step["file"])
            created = file_entity(api, parent, str(handle["id"]), step["file"])
            if "save" in step:
                saved[step["save"]] = created
            continue
        if "lookup" in step:
            found = lookup(api, step["lookup"])
            assert found is not None, step
            saved[step["save"]] = {"id": found}
            continue
        if "edit" in step:
            path = _substitute(step["edit"], saved)
            current = api.ok("GET", path)
            for key, value in _substitute(step.get("set", {}), saved).items():
                current[key] = value
            for key, value in _substitute(step.get("merge", {}), saved).items():
                current[key] = {**current.get(key, {}), **value}
            api.ok("PUT", path, current)
            continue
        answer = api.ok(
            step["method"],
            _substitute(step["path"], saved),
            _substitute(step.get("body"), saved),
        )
        if "save" in step:
            saved[step["save"]] = answer


# ---------------------------------------------------------------------------------------------
# Normalisation


class Normaliser:
    """Replaces volatile values with placeholders numbered by first appearance."""

    def __init__(self, emulator: Emulator, document: dict[str, Any]) -> None:
        self.endpoint = emulator.base_url
        self.principals = {pid: name for name, pid in emulator.principal_ids.items()}
        self.ids: dict[str, str] = {}
        self.etags: dict[str, str] = {}
        self.wiki_ids: dict[str, str] = {}
        text = json.dumps(document)
        for syn_id in SYN_ID.findall(text):
            self.ids.setdefault(syn_id, f"syn<{len(self.ids) + 1}>")
        for etag in UUID.findall(text):
            self.etags.setdefault(etag, f"<etag-{len(self.etags) + 1}>")
        for change in document["changes"]:
            if change["resource"] == "wiki_page" and change["syn_id"]:
                self.wiki_ids.setdefault(change["syn_id"], f"<wiki-{len(self.wiki_ids) + 1}>")
        for key, value in document["observed"].items():
            if key.endswith("#wiki") and value:
                self.wiki_ids.setdefault(value, f"<wiki-{len(self.wiki_ids) + 1}>")

    def principal(self, value: str) -> str:
        pid = int(value)
        return f"<principal:{self.principals[pid]}>" if pid in self.principals else value

    def text(self, text: str) -> str:
        text = text.replace(self.endpoint, "http://emulator")
        text = SYN_ID.sub(lambda m: self.ids.get(m.group(0), m.group(0)), text)
        text = UUID.sub(lambda m: self.etags.get(m.group(0), m.group(0)), text)
        text = re.sub(
            r"\((\d+)\)",
            lambda m: (
                f"({self.wiki_ids[m.group(1)]})"
                if m.group(1) in self.wiki_ids
                else f"({self.principal(m.group(1))})"
            ),
            text,
        )
        return re.sub(r"(?<![\w<])(\d{6,})(?![\w>])", lambda m: self.principal(m.group(1)), text)

    def value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {self.text(k): self.value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, int) and not isinstance(value, bool) and value in self.principals:
            return self.principal(str(value))
        return value

    def document(self, document: dict[str, Any]) -> dict[str, Any]:
        document = self.value(document)
        assert "created_at" not in document, "the stdout plan is deterministic: no timestamp"
        document["tool"]["version"] = "<version>"
        document["manifest"]["digest"] = "<digest>"
        for change in document["changes"]:
            if change["resource"] == "wiki_page" and change["syn_id"]:
                change["syn_id"] = self.wiki_ids.get(change["syn_id"], change["syn_id"])
        for key, value in list(document["observed"].items()):
            if key.endswith("#wiki") and value:
                document["observed"][key] = self.wiki_ids.get(value, value)
        return document


# ---------------------------------------------------------------------------------------------


def _compare(path: Path, actual: str) -> None:
    if UPDATE or not path.exists():
        if not UPDATE:
            pytest.fail(f"{path} is missing; run with UPDATE_GOLDEN=1 to create it")
        path.write_text(actual, encoding="utf-8")
        return
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"{path.name} differs (UPDATE_GOLDEN=1 regenerates it)"


@pytest.mark.parametrize("case_name", CASES)
def test_golden_plan(
    case_name: str,
    make_emulator: Any,
    api_for: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    case = GOLDEN / case_name
    emulator = make_emulator()
    ws = Workspace(emulator, tmp_path / "ws")
    monkeypatch.chdir(case)
    run_setup(case, emulator, ws, api_for)
    before = emulator.state_version()

    as_json = ws.plan("manifest.yaml", "--json")
    assert as_json.code == 0, as_json.err
    as_text = ws.plan("manifest.yaml")
    assert as_text.code == 0, as_text.err
    assert emulator.state_version() == before, "plan wrote to Synapse"

    document = json.loads(as_json.out)
    assert document["format_version"] == "2"
    normaliser = Normaliser(emulator, document)
    _compare(
        case / "plan.json",
        json.dumps(normaliser.document(document), indent=2, ensure_ascii=False) + "\n",
    )
    _compare(case / "plan.txt", normaliser.text(as_text.out))

    if case_name in ("no_change", "unmanaged_left_alone"):
        assert document["applyable"] is False
        assert all(c["action"] == "no-op" for c in document["changes"])
        assert "No changes." in as_text.out

    # Every golden plan also applies, and then there is nothing left to do.
    applied = ws.apply("manifest.yaml")
    assert applied.code == 0, applied.err
    after = ws.plan("manifest.yaml", "--detailed-exitcode")
    assert after.code == 0, after.out


def test_every_case_has_expected_files() -> None:
    """A case without golden files would silently test nothing."""
    assert CASES
    for name in CASES:
        for expected in ("plan.txt", "plan.json"):
            assert (GOLDEN / name / expected).exists() or UPDATE, f"{name}/{expected} missing"
