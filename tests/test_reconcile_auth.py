"""Credentials and endpoints discovery (engineering.md §B.7) and secret redaction (§C.3 #22).

Discovery is tested as a unit on temp files (HOME is a temp dir: the hermetic fixture); the
redaction tests run every command against an emulator whose user's token is a canary, then
search everything the tool wrote.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import TEAMS
from reconcile_support import Workspace

from synapse_declare.auth import (
    PRODUCTION_REPO,
    Credentials,
    Endpoints,
    resolve_credentials,
)
from synapse_declare.emulator import Emulator, SeedUser
from synapse_declare.errors import ConfigError
from synapse_declare.redact import redact_text

REPO = "http://127.0.0.1:9/repo/v1"


def write_config(home: Path, text: str) -> Path:
    path = home / ".synapseConfig"
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# Discovery order: flags > config profile > SYNAPSE_AUTH_TOKEN


def test_token_file_flag_beats_config_and_environment(hermetic_env: Path) -> None:
    write_config(hermetic_env, "[default]\nauthtoken = from-config\n")
    token_file = hermetic_env / "tok"
    token_file.write_text("  from-flag\n")
    creds = resolve_credentials(token_file=token_file, environ={"SYNAPSE_AUTH_TOKEN": "from-env"})
    assert creds is not None
    assert creds.token == "from-flag"
    assert creds.source == f"--token-file {token_file}"


def test_config_default_profile_beats_environment(hermetic_env: Path) -> None:
    path = write_config(hermetic_env, "[default]\nusername = alice\nauthtoken = from-config\n")
    creds = resolve_credentials(environ={"SYNAPSE_AUTH_TOKEN": "from-env"})
    assert creds is not None
    assert (creds.token, creds.username) == ("from-config", "alice")
    assert creds.source == f"{path} [default]"


def test_legacy_authentication_section(hermetic_env: Path) -> None:
    write_config(hermetic_env, "[authentication]\nauthtoken = legacy-token\n")
    creds = resolve_credentials(environ={})
    assert creds is not None and creds.token == "legacy-token"


def test_environment_when_config_has_no_token(hermetic_env: Path) -> None:
    write_config(hermetic_env, "[endpoints]\nrepoEndpoint = " + REPO + "\n")
    creds = resolve_credentials(environ={"SYNAPSE_AUTH_TOKEN": "from-env"})
    assert creds is not None
    assert (creds.token, creds.source) == ("from-env", "SYNAPSE_AUTH_TOKEN")
    assert creds.endpoints.repo == REPO


def test_environment_without_any_config_file(hermetic_env: Path) -> None:
    creds = resolve_credentials(environ={"SYNAPSE_AUTH_TOKEN": "from-env"})
    assert creds is not None and creds.token == "from-env"
    assert creds.endpoints == Endpoints()
    assert creds.endpoints.repo == PRODUCTION_REPO


def test_profile_from_flag_and_from_environment(hermetic_env: Path) -> None:
    write_config(
        hermetic_env,
        "[default]\nauthtoken = default-token\n\n"
        "[profile staging]\nauthtoken = staging-token\n\n"
        "[profile ci]\nauthtoken = ci-token\n",
    )
    by_env = resolve_credentials(environ={"SYNAPSE_PROFILE": "staging"})
    assert by_env is not None and by_env.token == "staging-token"
    assert by_env.source.endswith("[profile staging]")
    by_flag = resolve_credentials(profile="ci", environ={"SYNAPSE_PROFILE": "staging"})
    assert by_flag is not None and by_flag.token == "ci-token", "the flag wins over the env"
    default = resolve_credentials(profile="default", environ={"SYNAPSE_PROFILE": "staging"})
    assert default is not None and default.token == "default-token"


def test_missing_profile_is_an_error_with_a_hint(hermetic_env: Path) -> None:
    write_config(hermetic_env, "[default]\nauthtoken = default-token\n")
    with pytest.raises(ConfigError, match=r"no \[profile nope\] section") as info:
        resolve_credentials(profile="nope", environ={"SYNAPSE_AUTH_TOKEN": "from-env"})
    assert info.value.hint and "SYNAPSE_PROFILE" in info.value.hint
    (hermetic_env / ".synapseConfig").unlink()
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_credentials(environ={"SYNAPSE_PROFILE": "nope"})


def test_no_credentials_is_an_error_with_a_hint(hermetic_env: Path) -> None:
    with pytest.raises(ConfigError, match="no Synapse credentials found") as info:
        resolve_credentials(environ={})
    assert info.value.hint and "SYNAPSE_AUTH_TOKEN" in info.value.hint
    assert "--token-file" in info.value.hint
    assert resolve_credentials(environ={}, require_token=False) is None


def test_blank_environment_token_is_no_token(hermetic_env: Path) -> None:
    with pytest.raises(ConfigError, match="no Synapse credentials found"):
        resolve_credentials(environ={"SYNAPSE_AUTH_TOKEN": "   "})


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "is empty"), (b"\n  \n", "is empty"), (b"\xff\xfe\x00bad", "token-file")],
    ids=["empty", "blank", "not-utf8"],
)
def test_bad_token_file_is_a_config_error(hermetic_env: Path, content: bytes, message: str) -> None:
    token_file = hermetic_env / "tok"
    token_file.write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        resolve_credentials(token_file=token_file, environ={})
    with pytest.raises(ConfigError, match="No such file"):
        resolve_credentials(token_file=hermetic_env / "missing", environ={})


def test_unparseable_config_is_a_config_error(hermetic_env: Path) -> None:
    write_config(hermetic_env, "this is not an ini file\n[default\n")
    with pytest.raises(ConfigError, match="cannot parse Synapse config"):
        resolve_credentials(environ={"SYNAPSE_AUTH_TOKEN": "t"})


def test_explicit_config_path(hermetic_env: Path, tmp_path: Path) -> None:
    write_config(hermetic_env, "[default]\nauthtoken = home-token\n")
    other = tmp_path / "other.cfg"
    other.write_text("[default]\nauthtoken = other-token\n")
    creds = resolve_credentials(config_path=other, environ={})
    assert creds is not None and creds.token == "other-token"


# ---------------------------------------------------------------------------------------------
# Endpoints: --endpoint > [endpoints] > production


def test_endpoint_flag_beats_config_endpoints(hermetic_env: Path) -> None:
    write_config(
        hermetic_env,
        f"[default]\nauthtoken = t\n\n[endpoints]\nrepoEndpoint = {REPO}\n",
    )
    creds = resolve_credentials(endpoint="http://localhost:8765/repo/v1/", environ={})
    assert creds is not None
    assert creds.endpoints == Endpoints(
        repo="http://localhost:8765/repo/v1",
        file="http://localhost:8765/file/v1",
        auth="http://localhost:8765/auth/v1",
        portal="http://localhost:8765/portal/",
    )
    from_root = resolve_credentials(endpoint="http://localhost:8765", environ={})
    assert from_root is not None and from_root.endpoints == creds.endpoints


def test_config_endpoints_section(hermetic_env: Path) -> None:
    write_config(
        hermetic_env,
        "[default]\nauthtoken = t\n\n[endpoints]\n"
        "repoEndpoint = https://repo-staging.example.org/repo/v1\n"
        "fileHandleEndpoint = https://file-staging.example.org/file/v1/\n",
    )
    creds = resolve_credentials(environ={})
    assert creds is not None
    assert creds.endpoints.repo == "https://repo-staging.example.org/repo/v1"
    assert creds.endpoints.file == "https://file-staging.example.org/file/v1"
    assert creds.endpoints.auth == "https://repo-staging.example.org/auth/v1"


@pytest.mark.parametrize("bad", ["ftp://host/repo/v1", "localhost:8765", ""])
def test_bad_endpoint_is_a_config_error(hermetic_env: Path, bad: str) -> None:
    with pytest.raises(ConfigError, match="must be an http"):
        Endpoints.from_base(bad)


def test_cli_uses_config_file_and_endpoints(
    emulator: Emulator, hermetic_env: Path, tmp_path: Path
) -> None:
    """No flags at all: ~/.synapseConfig (as synapseclient writes it) supplies both."""
    write_config(hermetic_env, emulator.synapse_config("alice"))
    ws = Workspace(emulator, tmp_path)
    manifest = ws.manifest("version: 1\nprojects:\n  - name: From config\n")
    result = ws.run("-v", "plan", manifest)
    assert result.code == 0, result.err
    assert f"plan for {emulator.repo_endpoint} as alice" in result.out
    assert "[authentication]" in result.err, "-v says where the token came from"


# ---------------------------------------------------------------------------------------------
# Secrets never leak (§C.3 #22)

CANARY = "canary-7f3e9a1c5b2d4e6f8a0b-token"
UNKNOWN_CANARY = "canary-unknown-2b4d6f8a0c1e-token"


def test_credentials_repr_and_str_hide_the_token() -> None:
    creds = Credentials(token=CANARY, source="SYNAPSE_AUTH_TOKEN", endpoints=Endpoints())
    assert CANARY not in repr(creds)
    assert CANARY not in str(creds)
    assert CANARY not in repr([creds, {"c": creds}])


@pytest.fixture
def canary_emulator(make_emulator: Any) -> Emulator:
    users = [
        SeedUser("alice", CANARY, email="alice@example.org"),
        SeedUser("bob", "bob-token", email="bob@example.org"),
    ]
    return make_emulator(users=users, teams=TEAMS)  # type: ignore[no-any-return]


def _outputs(ws: Workspace, source: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Run every command that touches the token; return everything the tool wrote."""
    emulator = ws.emulator
    if source == "env":
        monkeypatch.setenv("SYNAPSE_AUTH_TOKEN", CANARY)
    else:
        write_config(Path.home(), emulator.synapse_config("alice"))
    endpoint = ["--endpoint", emulator.base_url, "--backoff", "0.01"]
    log = ws.root / "debug.log"
    manifest = ws.manifest(
        """
        version: 1
        projects:
          - name: Canary
            description: Secrets stay secret.
            annotations: {program: canary}
            acl:
              self: administer
              team:Curators: edit
            wiki: {title: Home, markdown: Hello.}
            folders:
              - name: Data
        """
    )
    texts: list[str] = []

    def run(*argv: str | Path) -> None:
        result = ws.run("-vv", "--log-file", log, *argv)
        texts.extend([result.out, result.err])

    saved = ws.root / "plan.json"
    run("plan", manifest, *endpoint, "--out", saved)
    run("plan", manifest, *endpoint, "--format", "markdown")
    run("plan", manifest, *endpoint, "--json")
    for fmt in ("text", "json", "markdown"):
        run("show", saved, "--format", fmt)
    run("apply", "--plan", saved, *endpoint)
    run("apply", manifest, "--auto-approve", *endpoint)
    # Forced errors: a server failing every request, then an unknown token (401).
    emulator.knobs.set_faults(1.0, 1, ["500-before"])
    run("plan", manifest, *endpoint, "--retries", "1")
    emulator.knobs.set_faults(0.0)
    unknown = ws.root / "unknown-token"
    unknown.write_text(UNKNOWN_CANARY)
    run("plan", manifest, *endpoint, "--token-file", unknown)
    run("apply", manifest, "--auto-approve", *endpoint, "--token-file", unknown)
    texts.append(log.read_text(encoding="utf-8"))
    texts.append(saved.read_text(encoding="utf-8"))
    return texts


@pytest.mark.parametrize("source", ["env", "config"])
def test_canary_token_never_appears(
    canary_emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
) -> None:
    ws = Workspace(canary_emulator, tmp_path)
    texts = _outputs(ws, source, monkeypatch)
    everything = "\n".join(texts)
    assert "Apply complete" in everything, "the run really applied"
    assert "401" in everything and "500" in everything, "the forced errors happened"
    assert "DEBUG" in everything, "the debug log was written"
    for canary in (CANARY, UNKNOWN_CANARY, CANARY[8:30]):
        assert canary not in everything
    # The plan file is a JSON document without any token-shaped field.
    document = json.loads(texts[-1])
    assert not re.search(r"(?i)authori[sz]ation|bearer", json.dumps(document))


def test_tokens_are_redacted_from_text_once_read(hermetic_env: Path) -> None:
    token_file = hermetic_env / "tok"
    token_file.write_text("redact-me-0123456789")
    resolve_credentials(token_file=token_file, environ={})
    assert "redact-me-0123456789" not in redact_text("oops: redact-me-0123456789 leaked")
    assert redact_text("Authorization: Bearer abc.def-ghi") == "Authorization: Bearer ***"
