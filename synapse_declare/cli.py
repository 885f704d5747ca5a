"""The command line: argument parsing, output streams and exit codes — nothing else.

This is the only module that reads ``sys.argv``, writes to stdout/stderr directly or chooses an
exit code. Exit codes: 0 success; 1 expected error (bad manifest, API error, stale plan, usage
error); 2 ``plan --detailed-exitcode`` with changes; 3 a bug (traceback written to a log file);
130 interrupted.

The imports inside command functions are deliberate: ``--help`` and ``validate`` start without
loading the client, planner, applier or emulator (import-linter still checks them: they hide
no cycle).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from . import __version__
from .client.records import StsCredentials
from .errors import SynapseDeclareError, UsageError
from .plan import DEFAULT_MAX_DELETIONS, Change
from .progress import Progress

if TYPE_CHECKING:
    from .applier import StorageOptions
    from .client.synapse import SynapseAPI
    from .plan import Plan
    from .validate import ValidationReport

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_BUG = 3
EXIT_INTERRUPTED = 130

log = logging.getLogger("synapse_declare")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}", hint=f"see '{self.prog} --help'")


Command = Callable[[argparse.Namespace], int]

EPILOG = """examples:
  synapse-declare demo                                  try everything on a local Synapse
  synapse-declare validate manifests/                   offline checks, no credentials
  synapse-declare plan manifests/ --out plan.json --detailed-exitcode
  synapse-declare apply --plan plan.json                apply exactly the reviewed plan
  synapse-declare sts "My Project/Pipelines" --format shell
  synapse-declare export "My Project" --out manifests/   existing projects as a manifest
  synapse-declare expand manifests/ --var bucket=lab-data    templates and variables expanded
  synapse-declare output manifests/ --format env >> "$GITHUB_ENV"
  synapse-declare access "My Project" --user alice     who reaches what, and through which grant

credentials: --token-file, then ~/.synapseConfig (profiles, [endpoints]), then
SYNAPSE_AUTH_TOKEN. exit codes: 0 ok, 1 error, 2 changes (plan --detailed-exitcode),
3 bug, 130 interrupted."""


def build_parser() -> _Parser:
    parser = _Parser(
        prog="synapse-declare",
        description="Declarative infrastructure for Synapse: validate, plan and apply YAML "
        "manifests of projects, folders, ACLs, wikis, annotations and storage.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging on stderr (-vv: debug)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr")
    parser.add_argument(
        "--log-file", type=Path, help="also write a debug log here (secrets are redacted)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    _register_validate(sub)
    _register_expand(sub)
    _register_plan(sub)
    _register_apply(sub)
    _register_output(sub)
    _register_show(sub)
    _register_schema(sub)
    _register_emulator(sub)
    _register_sts(sub)
    _register_export(sub)
    _register_access(sub)
    _register_demo(sub)
    return parser


def _configure_logging(args: argparse.Namespace, stderr: TextIO) -> None:
    from .redact import RedactingFilter

    root = logging.getLogger("synapse_declare")
    root.handlers.clear()
    root.setLevel(logging.DEBUG)
    root.propagate = False
    level = logging.WARNING
    if args.quiet:
        level = logging.ERROR
    elif args.verbose == 1:
        level = logging.INFO
    elif args.verbose >= 2:
        level = logging.DEBUG
    console = logging.StreamHandler(stderr)
    console.setLevel(level)
    console.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    console.addFilter(RedactingFilter())
    root.addHandler(console)
    if args.log_file:
        try:
            handler = logging.FileHandler(args.log_file, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--log-file {args.log_file}: {exc.strerror or exc}") from exc
        handler.setLevel(logging.DEBUG)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        handler.addFilter(RedactingFilter())
        root.addHandler(handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``synapse-declare`` and ``python -m synapse_declare``."""
    stderr = sys.stderr
    args: argparse.Namespace | None = None
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        _configure_logging(args, stderr)
        handler: Command = args.handler
        return handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=stderr)
        return EXIT_INTERRUPTED
    except SynapseDeclareError as err:
        from .redact import redact_text

        if args is not None and _json_output(args):
            # --json: stdout stays a valid document (or empty); diagnostics are JSON lines.
            for diagnostic in _diagnostics(err):
                print(redact_text(json.dumps(diagnostic)), file=stderr)
        else:
            print(f"error: {redact_text(str(err))}", file=stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        return EXIT_ERROR
    except Exception:
        from .redact import redact_text

        fd, path = tempfile.mkstemp(prefix="synapse-declare-crash-", suffix=".log")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(redact_text(traceback.format_exc()))
        print(
            "error: unexpected internal error (this is a bug in synapse-declare). "
            f"The traceback was written to {path}; please report it.",
            file=stderr,
        )
        return EXIT_BUG


def _json_output(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False)) or getattr(args, "format", None) == "json"


def _diagnostics(err: SynapseDeclareError) -> list[dict[str, object]]:
    """engineering.md §B.3: severity, summary, detail, file, line, column, json_path."""
    from .errors import ManifestError, ManifestErrors, ResolutionErrors
    from .validate import diagnostics_to_json

    if isinstance(err, ManifestErrors):
        return diagnostics_to_json(err.errors)
    if isinstance(err, ManifestError):
        return diagnostics_to_json([err])
    if isinstance(err, ResolutionErrors):
        return [d for each in err.errors for d in _diagnostics(each)]
    location = getattr(err, "location", None)
    return [
        {
            "severity": "error",
            "summary": err.message,
            "detail": err.hint,
            "file": getattr(location, "file", None),
            "line": getattr(location, "line", None),
            "column": getattr(location, "column", None),
            "json_path": getattr(location, "json_path", None),
        }
    ]


# ---------------------------------------------------------------------------------------------
# emulator serve


def _register_emulator(sub: argparse._SubParsersAction[_Parser]) -> None:
    emulator = sub.add_parser(
        "emulator",
        help="run the local Synapse emulator",
        description="A local Synapse that speaks the real REST API (needs the 'emulator' extra).",
    )
    emulator_sub = emulator.add_subparsers(dest="emulator_command", metavar="COMMAND")
    emulator_sub.required = True
    serve = emulator_sub.add_parser(
        "serve",
        help="serve the Synapse REST API and an S3/STS endpoint on loopback until interrupted",
        description="Serve the Synapse REST API and an S3/STS endpoint on loopback until "
        "interrupted, printing the endpoints to point synapse-declare or synapseclient at "
        "(--endpoint http://127.0.0.1:PORT) and, without --users, the token of the user 'demo'.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="loopback address (default 127.0.0.1)")
    serve.add_argument(
        "--port", type=int, default=8765, help="REST port (default 8765; 0 = any free port)"
    )
    serve.add_argument("--s3-port", type=int, default=0, help="S3/STS port (default: any free)")
    serve.add_argument("--data-dir", type=Path, help="persist state here across restarts")
    serve.add_argument(
        "--users", type=Path, help="YAML file of users, teams and access requirements to seed"
    )
    serve.add_argument("--latency-ms", type=float, default=0.0, help="added to every request")
    serve.add_argument(
        "--max-concurrent", type=int, help="per-user concurrent requests (429 above)"
    )
    serve.add_argument(
        "--max-per-minute", type=int, help="per-user requests per minute (429 above)"
    )
    serve.add_argument("--fault-rate", type=float, default=0.0, help="fraction of requests failed")
    serve.add_argument("--fault-seed", type=int, default=0, help="seed of the fault sequence")
    serve.add_argument("--request-log", type=Path, help="write one JSON line per exchange here")
    serve.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    try:
        from .emulator import Emulator, EmulatorConfig
        from .emulator.seedfile import SeedFileError
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise UsageError(
            f"the emulator needs the 'emulator' extra ({exc.name} is missing)",
            hint="in your clone of synapse-declare: pip install -c constraints.txt '.[emulator]'",
        ) from exc
    if not 0.0 <= args.fault_rate <= 1.0:
        raise UsageError("--fault-rate must be between 0 and 1")
    config = EmulatorConfig(
        host=args.host,
        port=args.port,
        s3_port=args.s3_port,
        data_dir=args.data_dir,
        users_file=args.users,
        latency_ms=args.latency_ms,
        max_concurrent=args.max_concurrent,
        max_per_minute=args.max_per_minute,
        fault_rate=args.fault_rate,
        fault_seed=args.fault_seed,
        request_log=args.request_log,
    )
    try:
        emulator = Emulator(config).start()
    except SeedFileError as exc:
        # Located like a manifest error: file:line:col, what (at where), how to fix.
        raise UsageError(exc.located, hint=exc.hint) from exc
    except (ValueError, OSError) as exc:
        raise UsageError(f"cannot start the emulator: {exc}") from exc
    stop = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        del signum, frame
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    out = sys.stdout
    print("Local Synapse emulator ready", file=out)
    print(f"  repoEndpoint       = {emulator.repo_endpoint}", file=out)
    print(f"  fileHandleEndpoint = {emulator.file_endpoint}", file=out)
    print(f"  authEndpoint       = {emulator.auth_endpoint}", file=out)
    print(f"  portalEndpoint     = {emulator.portal_endpoint}", file=out)
    print(f"  S3/STS endpoint    = {emulator.s3_endpoint}", file=out)
    if args.data_dir:
        print(f"  data dir           = {args.data_dir}", file=out)
    if not args.users:
        # The emulator's demo user is local to this machine; printing its token is the point.
        print(f"  user 'demo' token  = {emulator.users['demo']}", file=out)
    else:
        print(f"  users              = {', '.join(sorted(emulator.users))}", file=out)
    print("Press Ctrl-C to stop.", file=out, flush=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    print("emulator stopped", file=out)
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# validate, schema


def _register_validate(sub: argparse._SubParsersAction[_Parser]) -> None:
    parser = sub.add_parser(
        "validate",
        help="check manifests offline (schema and semantics); no credentials needed",
        description="Check manifests offline. Prints every problem as file:line:col: message.",
    )
    _add_paths(parser)
    parser.add_argument("--json", action="store_true", help="print diagnostics as JSON")
    _add_variables(parser)
    parser.set_defaults(handler=_validate)


def _add_paths(parser: argparse.ArgumentParser, nargs: str = "+") -> None:
    parser.add_argument("paths", nargs=nargs, type=Path, help="manifest files or directories")


def _add_variables(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--var",
        dest="variables",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a manifest variable (repeatable; overrides SYNAPSE_DECLARE_VAR_NAME and the "
        "manifest's default)",
    )


def _report(args: argparse.Namespace, paths: Sequence[Path]) -> ValidationReport:
    """Validate with the command's --var values; print fan-out warnings once, on stderr."""
    from .fanout import parse_overrides
    from .validate import validate_paths

    return validate_paths(list(paths), variables=parse_overrides(args.variables))


def _load(args: argparse.Namespace, paths: Sequence[Path]) -> ValidationReport:
    """The manifest for plan/apply/output: errors raised, warnings printed once."""
    from .errors import ManifestErrors

    report = _report(args, paths)
    if report.errors or report.manifest is None:
        raise ManifestErrors(report.errors)
    for warning in report.warnings:
        print(str(warning), file=sys.stderr)
    return report


def _validate(args: argparse.Namespace) -> int:
    import json

    from .validate import diagnostics_to_json, warnings_to_json

    report = _report(args, args.paths)
    if args.json:
        print(
            json.dumps(
                {
                    "valid": report.ok,
                    "files": list(report.files),
                    "diagnostics": diagnostics_to_json(report.errors)
                    + warnings_to_json(report.warnings),
                },
                indent=2,
            )
        )
        return EXIT_OK if report.ok else EXIT_ERROR
    for warning in report.warnings:
        print(str(warning), file=sys.stderr)
    if report.ok:
        assert report.manifest is not None
        containers = list(report.manifest.walk())
        projects = len(report.manifest.projects)
        print(
            f"ok: {len(report.files)} file(s), {projects} project(s), "
            f"{len(containers) - projects} folder(s)"
            + (f", {len(report.manifest.teams)} team(s)" if report.manifest.teams else "")
        )
        return EXIT_OK
    for error in report.errors:
        print(str(error), file=sys.stderr)
    print(f"{len(report.errors)} error(s) in {len(report.files)} file(s)", file=sys.stderr)
    return EXIT_ERROR


def _register_expand(sub: argparse._SubParsersAction[_Parser]) -> None:
    parser = sub.add_parser(
        "expand",
        help="print the manifest with templates and variables expanded (what plan sees)",
        description="Expand templates, for_each tables and ${var.NAME} references and print "
        "the resulting manifest as YAML (or JSON). Offline; no credentials needed.",
    )
    _add_paths(parser)
    parser.add_argument("--format", choices=("yaml", "json"), default="yaml")
    _add_variables(parser)
    parser.set_defaults(handler=_expand)


def _expand(args: argparse.Namespace) -> int:
    from .errors import ManifestErrors
    from .manifest import merge_documents

    report = _report(args, args.paths)
    if report.errors or report.expansion is None:
        raise ManifestErrors(report.errors)
    for warning in report.warnings:
        print(str(warning), file=sys.stderr)
    from .fanout import dump_yaml

    merged, _, _ = merge_documents(list(report.expansion.documents))
    if not merged.get("storage_locations"):
        merged.pop("storage_locations", None)
    if args.format == "json":
        sys.stdout.write(json.dumps(merged, indent=2, ensure_ascii=False, default=str) + "\n")
    else:
        sys.stdout.write(dump_yaml(merged))
    return EXIT_OK


def _register_output(sub: argparse._SubParsersAction[_Parser]) -> None:
    parser = sub.add_parser(
        "output",
        help="print the Synapse ids of everything the manifest declares (reads, never writes)",
        description="Read the ids of every declared project, folder and storage location and "
        "print them by address and by fan-out key, for CI to commit or pass on. Entities not "
        "created yet are null.",
    )
    _add_paths(parser)
    parser.add_argument("--format", choices=("json", "yaml", "env"), default="json")
    _add_variables(parser)
    _add_connection(parser)
    parser.set_defaults(handler=_output)


def _output(args: argparse.Namespace) -> int:
    from .outputs import read_outputs, render_outputs

    report = _load(args, args.paths)
    assert report.manifest is not None
    with _session(args) as api:
        instances = report.expansion.instances if report.expansion is not None else {}
        outputs = read_outputs(api, report.manifest, instances)
    sys.stdout.write(render_outputs(outputs, args.format))
    return EXIT_OK


def _register_schema(sub: argparse._SubParsersAction[_Parser]) -> None:
    parser = sub.add_parser(
        "schema",
        help="print the manifest JSON Schema (draft-07)",
        description="Print the JSON Schema manifests are checked against (also "
        "schemas/manifest.schema.json), for editors through the yaml-language-server modeline "
        "and for other tools.",
    )
    parser.set_defaults(handler=_schema)


def _schema(args: argparse.Namespace) -> int:
    from .schema import schema_text

    del args
    sys.stdout.write(schema_text())
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# plan, apply, show


def _add_connection(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--endpoint",
        help="Synapse server root or repo URL (default: ~/.synapseConfig [endpoints], else "
        "production)",
    )
    group.add_argument("--profile", help="~/.synapseConfig profile (default: SYNAPSE_PROFILE)")
    group.add_argument("--config", type=Path, help="Synapse config file (default ~/.synapseConfig)")
    group.add_argument("--token-file", type=Path, help="read the access token from this file")
    group.add_argument(
        "--parallel",
        type=int,
        default=None,
        help="concurrent requests (default: ~/.synapseConfig [synapse-declare] "
        "max_concurrent_requests, else 3: Synapse allows 3 per user)",
    )
    group.add_argument(
        "--max-requests-per-minute",
        type=int,
        default=None,
        help="pace requests to this many per 60 s (default: ~/.synapseConfig [synapse-declare] "
        "max_requests_per_minute, else Synapse's 600; 0: no pacing)",
    )
    group.add_argument("--timeout", type=float, default=70.0, help="read timeout in seconds")
    group.add_argument("--retries", type=int, default=8, help=argparse.SUPPRESS)
    group.add_argument("--backoff", type=float, default=0.5, help=argparse.SUPPRESS)


def _connect(args: argparse.Namespace) -> object:
    from .auth import resolve_credentials
    from .client.http import ClientOptions
    from .engine import connect

    _resolve_limits(args)
    credentials = resolve_credentials(
        token_file=args.token_file,
        endpoint=args.endpoint,
        profile=args.profile,
        config_path=args.config,
    )
    assert credentials is not None
    log.info("using %s", credentials)
    return connect(
        credentials,
        ClientOptions(
            read_timeout=args.timeout,
            max_concurrency=args.parallel,
            max_per_window=args.max_requests_per_minute,
            retries=args.retries,
            backoff_factor=args.backoff,
        ),
    )


@contextlib.contextmanager
def _session(args: argparse.Namespace) -> Iterator[SynapseAPI]:
    """The command's connected client, closed however the command ends."""
    from .client.synapse import SynapseAPI

    api = _connect(args)
    assert isinstance(api, SynapseAPI)
    try:
        yield api
    finally:
        api.t.close()


def _resolve_limits(args: argparse.Namespace) -> None:
    """Flags first, then the config file's [synapse-declare] section, then Synapse's limits;
    written back into ``args`` so apply's copy concurrency follows the same value."""
    from .auth import resolve_limits
    from .client.http import SYNAPSE_MAX_CONCURRENT, SYNAPSE_MAX_PER_MINUTE

    if args.parallel is None or args.max_requests_per_minute is None:
        limits = resolve_limits(args.config)
        if args.parallel is None:
            args.parallel = limits.max_concurrent or SYNAPSE_MAX_CONCURRENT
        if args.max_requests_per_minute is None:
            args.max_requests_per_minute = (
                SYNAPSE_MAX_PER_MINUTE if limits.max_per_minute is None else limits.max_per_minute
            )
    if args.parallel < 1:
        raise UsageError("--parallel must be at least 1")
    if args.max_requests_per_minute < 0:
        raise UsageError("--max-requests-per-minute must be 0 (no pacing) or more")


def _add_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format", choices=("text", "json", "markdown"), default="text", help="output format"
    )
    _add_json_shorthand(parser)
    parser.add_argument(
        "--color", choices=("auto", "always", "never"), default="auto", help="colour the output"
    )
    parser.add_argument(
        "--show-unchanged", action="store_true", help="also list entities with no changes"
    )


def _add_json_shorthand(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="shorthand for --format json")


def _print_plan(plan: object, args: argparse.Namespace) -> None:
    from .plan import Plan
    from .render import render_json, render_markdown, render_text, use_color

    assert isinstance(plan, Plan)
    fmt = "json" if args.json else args.format
    if fmt == "json":
        sys.stdout.write(render_json(plan))
    elif fmt == "markdown":
        sys.stdout.write(render_markdown(plan))
    else:
        sys.stdout.write(
            render_text(
                plan,
                color=use_color(args.color, sys.stdout),
                show_unchanged=args.show_unchanged,
            )
        )
    sys.stdout.flush()


PROGRESS_AFTER_SECONDS = 1.5
PROGRESS_EVERY_SECONDS = 2.0


class _ReadingProgress:
    """``reading Synapse: 120 requests, 3 s…`` on stderr while a plan reads for longer than
    :data:`PROGRESS_AFTER_SECONDS` (a large tree or a slow link), so a quiet terminal is never
    mistaken for a hang; nothing at all for a quick plan, and nothing with ``--quiet``."""

    def __init__(self, api: object, *, quiet: bool) -> None:
        self.api = api
        self.quiet = quiet
        self.stop = threading.Event()
        self.spoke = False
        self.thread = threading.Thread(target=self._run, name="plan-progress", daemon=True)
        self.started = 0.0

    def _calls(self) -> int:
        transport = getattr(self.api, "t", None)
        total = getattr(transport, "total_calls", None)
        return int(total()) if callable(total) else 0

    def _run(self) -> None:
        wait = PROGRESS_AFTER_SECONDS
        while not self.stop.wait(wait):
            elapsed = time.monotonic() - self.started
            calls = self._calls()
            print(
                f"reading Synapse: {calls} request{'' if calls == 1 else 's'}, {elapsed:.0f} s…",
                file=sys.stderr,
                flush=True,
            )
            self.spoke = True
            wait = PROGRESS_EVERY_SECONDS

    def __enter__(self) -> _ReadingProgress:
        self.started = time.monotonic()
        if not self.quiet:
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()
        if self.spoke and exc[0] is None:
            elapsed = time.monotonic() - self.started
            print(
                f"read Synapse in {elapsed:.1f} s ({self._calls()} requests)",
                file=sys.stderr,
                flush=True,
            )


def _add_max_removals(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-removals",
        type=int,
        default=5,
        metavar="N",
        help="refuse a plan that removes more than N team members in one run (default 5)",
    )


def _register_plan(sub: argparse._SubParsersAction[_Parser]) -> None:
    parser = sub.add_parser(
        "plan",
        help="show what apply would change (reads Synapse, never writes)",
        description="Diff the manifest against live Synapse and print the changes.",
    )
    _add_paths(parser)
    parser.add_argument("--out", type=Path, help="save the plan here for 'apply --plan'")
    _add_variables(parser)
    _add_max_removals(parser)
    parser.add_argument(
        "--audit-public",
        action="store_true",
        help="report PUBLIC / AUTHENTICATED_USERS grants on every entity under the managed "
        "projects (one listing per folder), not only on those the plan reads",
    )
    parser.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 0 when there are no changes, 2 when there are, 1 on error",
    )
    _add_plan_options(parser)
    parser.add_argument(
        "--observe",
        action="store_true",
        help="drift check for schedules: report what differs, exit 2 when anything does; a "
        "plan saved with it can never be applied",
    )
    parser.set_defaults(handler=_plan)


def _add_plan_options(parser: _Parser) -> None:
    """The options plan and apply share, in the order their --help lists them."""
    _add_output(parser)
    _add_connection(parser)
    _add_max_deletions(parser)
    _add_targeting(parser)
    _add_no_adopt(parser)


def _add_no_adopt(parser: _Parser) -> None:
    parser.add_argument(
        "--no-adopt",
        action="store_true",
        help="create only: a declared project that already exists and that synapse-declare "
        "did not create is an error (by default it is adopted, shown as '=')",
    )


def _add_targeting(parser: _Parser) -> None:
    for flag, what in (("--target", "only"), ("--exclude", "all but")):
        parser.add_argument(
            flag,
            action="append",
            default=[],
            metavar="ADDRESS",
            help=f"plan {what} this (repeatable): project:P, project:P/folder:F, a path P/F, "
            "or kind:folder; what the selection depends on is pulled in",
        )


def _instances(patterns: list[str], report: Any) -> tuple[str, ...]:
    """Fan-out keys (``template[key]``) in --target/--exclude, as the addresses they made."""
    from .targeting import resolve_instances

    expansion = report.expansion
    return resolve_instances(patterns, expansion.instances if expansion is not None else {})


def _add_max_deletions(parser: _Parser) -> None:
    parser.add_argument(
        "--max-deletions",
        type=_non_negative,
        default=DEFAULT_MAX_DELETIONS,
        metavar="N",
        help="refuse a plan that would prune more than N folders, or remove more than N own "
        f"ACLs under folders_inherit: strict (default {DEFAULT_MAX_DELETIONS} each); pruned "
        "folders go to Synapse's trash",
    )


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _plan(args: argparse.Namespace) -> int:
    from .engine import plan_manifest
    from .plan import save_plan

    report = _load(args, args.paths)
    assert report.manifest is not None
    with _session(args) as api:
        with _ReadingProgress(api, quiet=args.quiet):
            plan = plan_manifest(
                api,
                report.manifest,
                audit_public=args.audit_public,
                max_removals=args.max_removals,
                max_deletions=args.max_deletions,
                targets=_instances(args.target, report),
                excludes=_instances(args.exclude, report),
                adopt=not args.no_adopt,
            )
        if args.observe:
            plan = dataclasses.replace(plan, observe=True)
    plan = _with_variables(plan, report)
    _print_plan(plan, args)
    if args.out:
        save_plan(plan, args.out)
        print(
            f"Plan saved to {args.out}; apply it with: synapse-declare apply --plan {args.out}",
            file=sys.stderr,
        )
    if (args.detailed_exitcode or args.observe) and plan.has_changes:
        return EXIT_CHANGES
    return EXIT_OK


def _register_apply(sub: argparse._SubParsersAction[_Parser]) -> None:
    parser = sub.add_parser(
        "apply",
        help="make Synapse match the manifest (or apply a saved plan)",
        description="Plan, ask for approval, and apply. With --plan, apply a saved, reviewed "
        "plan: refused without any change if Synapse, the manifest, the endpoint or the user "
        "differ from when it was made.",
    )
    _add_paths(parser, nargs="*")
    parser.add_argument("--plan", dest="plan_file", type=Path, help="a plan saved by 'plan --out'")
    parser.add_argument("--auto-approve", action="store_true", help="apply without asking (for CI)")
    _add_variables(parser)
    _add_max_removals(parser)
    parser.add_argument(
        "--outputs",
        type=Path,
        metavar="FILE",
        help="after a successful apply, write the ids of everything declared here "
        "(format by suffix: .json, .yaml/.yml, .env)",
    )
    migration = parser.add_argument_group("storage migrations")
    migration.add_argument(
        "--continue-on-error",
        action="store_true",
        help="collect failed files in the migration report instead of stopping",
    )
    migration.add_argument(
        "--verify",
        choices=("auto", "md5", "size", "none"),
        default="auto",
        help="check each copy before repointing: auto (default: MD5 proven by the transfer or "
        "streamed for copies up to 64 MiB, size and S3's part checksums above), md5 (stream "
        "and hash every copy), size, or none",
    )
    migration.add_argument(
        "--copy-path",
        choices=("auto", "synapse"),
        default="auto",
        help="auto (default): into your own S3 bucket, copy external-S3 files in S3 with your "
        "AWS credentials and relay small Synapse-storage files through this machine (3 calls "
        "per file instead of 6); synapse: always Synapse's server-side multipart copy",
    )
    migration.add_argument(
        "--relay-max-mib",
        type=int,
        default=16,
        help="with --copy-path auto, relay Synapse-storage files up to this size (default 16)",
    )
    migration.add_argument(
        "--state-dir",
        type=Path,
        default=Path(".synapse-declare"),
        help="where migration journals live (a killed run resumes from them)",
    )
    migration.add_argument("--report-json", type=Path, help="write the per-file report as JSON")
    migration.add_argument("--report-csv", type=Path, help="write the per-file report as CSV")
    migration.add_argument(
        "--part-size-mib",
        type=int,
        default=0,
        help="multipart copy part size (>= 5 MiB; default 0: adaptive, the fewest parts of up "
        "to 5 GiB)",
    )
    _add_plan_options(parser)
    parser.set_defaults(handler=_apply)


def _apply(args: argparse.Namespace) -> int:
    from .applier import ApplyInterrupted, apply_plan
    from .engine import plan_manifest
    from .errors import ApplyError, StalePlanError
    from .plan import load_plan, stale_reasons
    from .preflight import check_verify_access
    from .render import render_apply_summary

    if args.plan_file and args.paths:
        raise UsageError("give either manifest paths or --plan FILE, not both")
    if not args.plan_file and not args.paths:
        raise UsageError("nothing to apply", hint="give manifest paths, or --plan FILE")
    if args.outputs is not None:
        _outputs_format(args.outputs)  # refuse a bad suffix before anything is written
    saved = load_plan(args.plan_file) if args.plan_file else None
    paths = [Path(p) for p in saved.manifest_files] if saved else list(args.paths)
    if saved is not None and saved.observe:
        raise UsageError(
            "this plan was made with --observe: a drift report, never applied",
            hint="plan again without --observe to make a plan to apply",
        )
    if saved is not None:
        if args.target or args.exclude:
            raise UsageError(
                "--target/--exclude cannot change a saved plan",
                hint="a saved partial plan applies exactly its part; plan again to change it",
            )
        if args.variables:
            raise UsageError(
                "--var cannot change a saved plan",
                hint="the plan keeps the variables it was made with; plan again to change them",
            )
        # The plan's variables, not the environment's: apply exactly what was reviewed.
        args.variables = [f"{k}={_var_text(v)}" for k, v in saved.variables.items()]
    report = _load(args, paths)
    assert report.manifest is not None
    manifest = report.manifest
    with _session(args) as api:
        with _ReadingProgress(api, quiet=args.quiet):
            # A saved plan is checked against the same reads it was made with.
            plan = plan_manifest(
                api,
                manifest,
                audit_public=bool(saved and saved.audit_public),
                max_removals=args.max_removals,
                max_deletions=args.max_deletions,
                targets=saved.targets if saved else _instances(args.target, report),
                excludes=saved.excludes if saved else _instances(args.exclude, report),
                adopt=not args.no_adopt,
                now=saved.made_at if saved else None,
            )
        plan = _with_variables(plan, report)
        if saved is not None:
            reasons = stale_reasons(saved, plan)
            if reasons:
                raise StalePlanError(
                    _stale_summary(reasons),
                    hint="run 'synapse-declare plan --out FILE' again and review it",
                )
        else:
            _print_plan(plan, args)
        if not plan.has_changes:
            print("Nothing to apply.", file=sys.stderr)
            if args.outputs is not None:
                _write_outputs(api, report, args.outputs)
            return EXIT_OK
        check_verify_access(plan, manifest, args.verify)
        if saved is None and not args.auto_approve:
            if not sys.stdin.isatty():
                raise UsageError(
                    "refusing to apply without approval: no terminal to ask on",
                    hint="review the plan above and pass --auto-approve, or apply a saved plan "
                    "with --plan FILE",
                )
            try:
                answer = input("Apply these changes? Only 'yes' is accepted: ").strip()
            except EOFError:
                # Ctrl-D or a closed stdin is an answer too: not "yes".
                print("", file=sys.stderr)
                answer = ""
            if answer != "yes":
                print("Apply cancelled; nothing was changed.", file=sys.stderr)
                return EXIT_ERROR
        try:
            result = apply_plan(
                api,
                plan,
                progress=PlainProgress(sys.stderr),
                parallel=args.parallel,
                storage=_storage_options(args),
            )
        except ApplyInterrupted as stop:
            done = stop.result
            sys.stderr.write(render_apply_summary(len(done.done), done.failed, done.not_attempted))
            print("interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        if result.ok and args.outputs is not None:
            _write_outputs(api, report, args.outputs)
    sys.stderr.write(render_apply_summary(len(result.done), result.failed, result.not_attempted))
    if not result.ok:
        raise ApplyError(
            f"apply stopped: {len(result.done)} done, {len(result.failed)} failed, "
            f"{len(result.not_attempted)} not attempted",
            done=[a for a, _ in result.done],
            failed=[a for a, _ in result.failed],
            not_attempted=result.not_attempted,
        )
    return EXIT_OK


STALE_SHOWN = 5


def _stale_summary(reasons: Sequence[str]) -> str:
    """The count and the first few reasons: a moved project can make hundreds of objects stale,
    and the first few say what happened."""
    shown = list(reasons[:STALE_SHOWN])
    if len(reasons) > STALE_SHOWN:
        shown.append(f"… and {len(reasons) - STALE_SHOWN} more")
    noun = "difference" if len(reasons) == 1 else "differences"
    return (
        f"the saved plan is stale ({len(reasons)} {noun} from Synapse now); nothing was "
        "changed:\n  - " + "\n  - ".join(shown)
    )


def _var_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _with_variables(plan: Plan, report: ValidationReport) -> Plan:
    """The plan with the manifest's resolved variables (saved plans re-expand with them)."""
    import dataclasses

    if report.expansion is None or not report.expansion.variables:
        return plan
    return dataclasses.replace(plan, variables=dict(report.expansion.variables))


def _outputs_format(path: Path) -> str:
    suffix = path.suffix.lower()
    formats = {".json": "json", ".yaml": "yaml", ".yml": "yaml", ".env": "env"}
    if suffix not in formats:
        raise UsageError(
            f"--outputs {path}: unknown format {suffix or '(no suffix)'}",
            hint="name the file *.json, *.yaml or *.env",
        )
    return formats[suffix]


def _write_outputs(api: SynapseAPI, report: ValidationReport, path: Path) -> None:
    from .outputs import read_outputs, render_outputs

    assert report.manifest is not None
    instances = report.expansion.instances if report.expansion is not None else {}
    text = render_outputs(read_outputs(api, report.manifest, instances), _outputs_format(path))
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--outputs {path}: {exc.strerror or exc}") from exc
    print(f"Outputs written to {path}", file=sys.stderr)


def _storage_options(args: argparse.Namespace) -> StorageOptions:
    from .applier import StorageOptions
    from .migration import MigrationOptions

    options = MigrationOptions(
        continue_on_error=args.continue_on_error,
        verify=args.verify,
        part_size=args.part_size_mib * 1024 * 1024,
        # Twice the request slots: S3 work of some copies overlaps REST calls of others.
        parallel=2 * args.parallel,
        copy_path=args.copy_path,
        relay_max_bytes=args.relay_max_mib * 1024 * 1024,
        state_dir=args.state_dir,
        report_json=args.report_json,
        report_csv=args.report_csv,
    )
    options.validate()
    return StorageOptions(migration=options)


def _register_show(sub: argparse._SubParsersAction[_Parser]) -> None:
    parser = sub.add_parser(
        "show",
        help="print a saved plan",
        description="Print a plan saved by 'plan --out' without reading Synapse: text, JSON, or "
        "Markdown to post on a pull request.",
    )
    parser.add_argument("plan_file", type=Path, help="a plan saved by 'plan --out'")
    _add_output(parser)
    parser.set_defaults(handler=_show)


def _show(args: argparse.Namespace) -> int:
    from .plan import load_plan

    _print_plan(load_plan(args.plan_file), args)
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# demo


def _register_demo(sub: argparse._SubParsersAction[_Parser]) -> None:
    parser = sub.add_parser(
        "demo",
        help="run the whole workflow against an embedded local Synapse",
        description="Starts a local Synapse emulator and runs validate, plan, apply, drift "
        "detection and repair on the quickstart manifest, then a declared team with an "
        "invitation, your own bucket, a verified storage migration and an STS folder. Touches "
        "nothing outside a temp dir.",
    )
    parser.add_argument("--workdir", type=Path, help="keep the demo's files here")
    parser.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(main, sys.stdout, workdir=args.workdir)


# ---------------------------------------------------------------------------------------------
# sts


_AWS_S3_ENDPOINTS = ("https://s3.amazonaws.com", "https://s3.amazonaws.com/")


def _sts_endpoint(api: object, entity_id: str) -> str | None:
    """The S3 endpoint of the folder's storage when it is not AWS's (an S3-compatible store):
    boto3 must be pointed at it, or the credentials are tried against AWS."""
    from .client.synapse import SynapseAPI
    from .errors import ApiError, Forbidden

    assert isinstance(api, SynapseAPI)
    try:
        destination = api.upload_destination(entity_id)
    except ApiError:
        return None  # the credentials are still useful; boto3 then needs the endpoint given
    location_id = destination.get("storageLocationId")
    if location_id is None or "External" not in str(destination.get("concreteType")):
        return None
    try:
        # Synapse leaves endpointUrl out of an ExternalS3UploadDestination; the location has it.
        location = api.get_storage_location(int(location_id))
    except Forbidden:
        print(
            f"note: storage location {location_id} belongs to another user, so its endpoint "
            "is not shown; if it is not AWS S3, give boto3 its endpoint_url yourself",
            file=sys.stderr,
        )
        return None
    endpoint = location.get("endpointUrl")
    if not endpoint or str(endpoint) in _AWS_S3_ENDPOINTS:
        return None
    return str(endpoint)


def _sts_credentials(api: object, entity_id: str, permission: str, target: str) -> StsCredentials:
    """STS credentials, with Synapse's refusals explained (what to change, where)."""
    from .client.synapse import SynapseAPI
    from .errors import ApiError, BadRequest, Forbidden

    assert isinstance(api, SynapseAPI)
    try:
        return api.sts_credentials(entity_id, permission)
    except BadRequest as err:
        reason = err.reason
        if "project setting" in reason or "STS-enabled storage location" in reason:
            raise ApiError(
                f"{target} ({entity_id}) is not in an STS-enabled folder",
                status=400,
                hint="STS credentials exist only for a folder whose upload destination is an "
                "STS-enabled location: in the manifest, give the folder `storage: <location with "
                "sts_enabled: true>` and apply, then ask for that folder (or anything inside it)",
            ) from err
        if "write access is not allowed" in reason:
            raise ApiError(
                f"{target} ({entity_id}) uses Synapse's own storage, where STS is read-only",
                status=400,
                hint="use --permission read_only, or an external_s3 location (your bucket) with "
                "sts_enabled: true for read_write",
            ) from err
        raise
    except Forbidden as err:
        need = "DOWNLOAD" if permission == "read_only" else "DOWNLOAD, UPDATE, CREATE and DELETE"
        raise ApiError(
            f"you may not get {permission} STS credentials for {target} ({entity_id})",
            status=403,
            hint=f"{permission} needs {need} on the folder: ask its administrator, or use "
            "--permission read_only",
        ) from err


def _register_export(sub: argparse._SubParsersAction[_Parser]) -> None:
    parser = sub.add_parser(
        "export",
        help="write existing projects as a manifest directory (reads Synapse, never writes)",
        description="Read existing projects (or folders) and write the manifest a person would "
        "have written: one YAML file per project, wiki pages as .md files beside it. Its plan "
        "shows only the adoption of each project (=). Files are listed, not exported.",
    )
    parser.add_argument(
        "targets",
        nargs="+",
        metavar="TARGET",
        help="a project name, a Synapse id (project or folder), or 'Project/Folder/...'",
    )
    parser.add_argument("--out", type=Path, help="the directory to write (new or empty)")
    parser.add_argument(
        "--stdout", action="store_true", help="print the one project's YAML instead of writing"
    )
    parser.add_argument("--force", action="store_true", help="replace a non-empty --out")
    parser.add_argument(
        "--max-entities",
        type=int,
        default=None,
        help="refuse a target with more entities than this (default 5000)",
    )
    _add_connection(parser)
    parser.set_defaults(handler=_export)


def _export(args: argparse.Namespace) -> int:
    from .export import DEFAULT_MAX_ENTITIES, export_projects, write_export

    if args.stdout == (args.out is not None):
        raise UsageError("export needs exactly one of --out DIR or --stdout")
    if args.out is not None and args.out.is_dir() and any(args.out.iterdir()) and not args.force:
        # Refused before reading Synapse: the same check write_export makes.
        raise UsageError(
            f"--out {args.out} is not empty; nothing was written",
            hint="choose an empty or new directory, or pass --force to replace its contents",
        )
    cap = DEFAULT_MAX_ENTITIES if args.max_entities is None else args.max_entities
    if cap < 1:
        raise UsageError("--max-entities must be at least 1")
    with _session(args) as api, _ReadingProgress(api, quiet=args.quiet):
        result = export_projects(api, args.targets, max_entities=cap, inline_wiki=args.stdout)
    if args.stdout:
        if len(result.projects) != 1:
            raise UsageError(
                f"--stdout prints one project; these targets are {len(result.projects)} "
                "projects: use --out DIR"
            )
        sys.stdout.write(result.files[result.projects[0].manifest])
    else:
        write_export(result, args.out, force=args.force)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if not args.quiet:
        for project in result.projects:
            where = "stdout" if args.stdout else str(args.out / project.manifest)
            print(
                f"Exported {project.name} ({project.syn_id}): {project.containers} "
                f"container(s) to {where}; {project.files} file(s) listed, not exported",
                file=sys.stderr,
            )
        if result.teams:
            print("Teams declared with their members: " + ", ".join(result.teams), file=sys.stderr)
        if result.references:
            print(
                "Teams left as team:NAME references (you do not manage them, so their membership "
                "is not exported): " + ", ".join(result.references),
                file=sys.stderr,
            )
        print(
            "Plan it to review: it shows each project as adopted (=) and nothing else.",
            file=sys.stderr,
        )
    return EXIT_OK


def _register_sts(sub: argparse._SubParsersAction[_Parser]) -> None:
    parser = sub.add_parser(
        "sts",
        help="print temporary AWS credentials for an STS-enabled folder (stdout only)",
        description="Get STS credentials for an STS-enabled folder (or anything inside one). "
        'Only the credentials go to stdout, so `eval "$(synapse-declare sts ...)"` and '
        "`boto3.client('s3', **json.loads(...))` work; they never appear in logs.",
    )
    parser.add_argument(
        "entity", help="a Synapse id (syn123) or a path: 'Project name/Folder/Subfolder'"
    )
    parser.add_argument(
        "--permission",
        choices=("read_only", "read_write"),
        default="read_only",
        help="read_only needs DOWNLOAD; read_write also UPDATE, CREATE and DELETE",
    )
    parser.add_argument(
        "--format",
        choices=("shell", "json", "boto"),
        default="shell",
        help="shell: export lines for eval; json: Synapse's response; boto: boto3 client kwargs",
    )
    _add_connection(parser)
    parser.set_defaults(handler=_sts)


def _sts(args: argparse.Namespace) -> int:
    import json
    import re
    import shlex

    from .errors import NotFound
    from .state import whoami

    with _session(args) as api:
        whoami(api)  # a non-Synapse --endpoint is named as such, not a confusing 404 later
        target = args.entity.strip()
        if re.fullmatch(r"(?i)syn\d+", target):
            entity_id = target
        else:
            parent: str | None = None
            found: str | None = None
            for name in [p for p in target.split("/") if p]:
                found = api.lookup_child(parent, name)
                if found is None:
                    raise NotFound(
                        f"{target!r}: no entity named {name!r} there",
                        status=404,
                        hint="give a Synapse id (syn123) or the exact path 'Project/Folder'",
                    )
                parent = found
            if found is None:
                raise UsageError("give a Synapse id or a path such as 'Project/Folder'")
            entity_id = found
        creds = _sts_credentials(api, entity_id, args.permission, target)
        endpoint_url = _sts_endpoint(api, entity_id)
    if args.format == "json":
        sys.stdout.write(json.dumps(creds, indent=2) + "\n")
    elif args.format == "boto":
        boto = {
            "aws_access_key_id": creds["accessKeyId"],
            "aws_secret_access_key": creds["secretAccessKey"],
            "aws_session_token": creds["sessionToken"],
        }
        if endpoint_url:
            boto["endpoint_url"] = endpoint_url
        sys.stdout.write(json.dumps(boto, indent=2) + "\n")
    else:
        location = f"s3://{creds['bucket']}" + (
            f"/{creds['baseKey']}" if creds.get("baseKey") else ""
        )
        lines = [
            f"export SYNAPSE_STS_S3_LOCATION={shlex.quote(location)}",
            f"export AWS_ACCESS_KEY_ID={shlex.quote(creds['accessKeyId'])}",
            f"export AWS_SECRET_ACCESS_KEY={shlex.quote(creds['secretAccessKey'])}",
            f"export AWS_SESSION_TOKEN={shlex.quote(creds['sessionToken'])}",
        ]
        if endpoint_url:
            # boto3 >= 1.28 and the AWS CLI v2 read the S3 endpoint from this variable.
            lines.append(f"export AWS_ENDPOINT_URL_S3={shlex.quote(endpoint_url)}")
        sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
    print(
        f"STS {args.permission} credentials for {entity_id}, expiring {creds.get('expiration')}",
        file=sys.stderr,
    )
    return EXIT_OK


class PlainProgress(Progress):  # presentation: the only printing progress, at the edge
    """Line-based progress on stderr: ``[3/12] + folder 'P/Raw' ... ok (syn123, 40 ms)``."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self._lock = threading.Lock()
        self._started: dict[str, float] = {}
        self._finished = 0
        self._total = 0

    def start(self, change: Change, index: int, total: int) -> None:
        del index
        with self._lock:
            self._started[change.address] = time.perf_counter()
            self._total = total

    def done(self, change: Change, detail: str) -> None:
        self._line(change, f"ok ({detail})" if detail else "ok")

    def failed(self, change: Change, error: BaseException) -> None:
        self._line(change, f"FAILED: {str(error).splitlines()[0]}")

    def note(self, message: str) -> None:
        with self._lock:
            print(f"  note: {message}", file=self.stream, flush=True)

    def _line(self, change: Change, outcome: str) -> None:
        from .render import change_label  # the CLI defers heavy imports until a command runs

        with self._lock:
            started = self._started.pop(change.address, time.perf_counter())
            self._finished += 1
            index = f"[{self._finished}/{self._total}]"
            elapsed = (time.perf_counter() - started) * 1000
            print(
                f"{index} {change_label(change)} ... {outcome} [{elapsed:.0f} ms]",
                file=self.stream,
                flush=True,
            )


# ---------------------------------------------------------------------------------------------
# access


def _register_access(sub: argparse._SubParsersAction[_Parser]) -> None:
    parser = sub.add_parser(
        "access",
        help="report effective access after inheritance and teams (read-only)",
        description="What each principal can do on every entity under the targets, as Synapse "
        "decides it (benefactor inheritance, team membership, PUBLIC, AUTHENTICATED_USERS, "
        "certification, the creator's settings right), and through which ACL entry. Never "
        "writes. csv and markdown default to the access-review scope: projects, top-level "
        "folders and every entity with its own ACL.",
    )
    parser.add_argument(
        "targets",
        nargs="+",
        metavar="TARGET",
        help="a project name, a path 'Project/Folder', a syn id, or manifest files/directories "
        "(every project they declare)",
    )
    who = parser.add_mutually_exclusive_group()
    who.add_argument("--user", metavar="NAME", help="only what this user can reach, and how")
    who.add_argument("--team", metavar="NAME", help="only what this team's grants reach")
    parser.add_argument(
        "--format",
        choices=("text", "json", "csv", "markdown"),
        default="text",
        help="output format (csv/markdown: the periodic access-review export)",
    )
    _add_json_shorthand(parser)
    parser.add_argument(
        "--scope",
        choices=("all", "review"),
        help="every entity, or projects + top-level folders + entities with their own ACL "
        "(default: all for text/json, review for csv/markdown)",
    )
    parser.add_argument(
        "--no-requirements",
        action="store_true",
        help="skip the access-requirement listing (one call per entity)",
    )
    _add_variables(parser)
    _add_connection(parser)
    parser.set_defaults(handler=_access)


def _access_targets(args: argparse.Namespace) -> list[Any]:
    """Manifest paths become one target per declared project (located); the rest as given."""
    from .access import TargetSpec

    targets: list[TargetSpec] = []
    manifests = [
        Path(t) for t in args.targets if Path(t).is_dir() or Path(t).suffix in (".yaml", ".yml")
    ]
    missing = [p for p in manifests if not p.exists()]
    if missing:
        raise UsageError(
            f"{missing[0]}: no such manifest file",
            hint="a TARGET ending in .yaml/.yml is read as a manifest; give an existing file",
        )
    if manifests:
        report = _load(args, manifests)
        assert report.manifest is not None
        targets.extend(TargetSpec(p.name, p.location) for p in report.manifest.projects)
    manifest_texts = {str(p) for p in manifests}
    targets.extend(TargetSpec(t) for t in args.targets if t not in manifest_texts)
    return targets


def _access(args: argparse.Namespace) -> int:
    from .access import effective_access, read_access_world, resolve_team, resolve_user
    from .access_report import RENDERERS, ReportRequest, Scope
    from .state import whoami

    fmt = "json" if args.json else args.format
    scope = Scope(args.scope or ("review" if fmt in ("csv", "markdown") else "all"))
    targets = _access_targets(args)
    with _session(args) as api:
        whoami(api)  # a non-Synapse --endpoint is named as such, not a confusing 404 later
        focus = None
        if args.user:
            focus = resolve_user(api, args.user)
        elif args.team:
            focus = resolve_team(api, args.team)
        with _ReadingProgress(api, quiet=args.quiet):
            world, stats = read_access_world(
                api,
                targets,
                users=[focus] if focus is not None and args.user else [],
                requirements=not args.no_requirements,
            )
    report = effective_access(world, users=[focus] if focus is not None and args.user else [])
    request = ReportRequest(tuple(t.text for t in targets), focus, scope)
    sys.stdout.write(RENDERERS[fmt](report, stats, request))
    sys.stdout.flush()
    return EXIT_OK
