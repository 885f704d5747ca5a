"""The command line: argument parsing, output streams and exit codes — nothing else.

This is the only module that reads ``sys.argv``, writes to stdout/stderr directly or chooses an
exit code. Exit codes: 0 success; 1 expected error (bad manifest, API error, stale plan, usage
error); 2 ``plan --detailed-exitcode`` with changes; 3 a bug (traceback written to a log file);
130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn, TextIO

from . import __version__
from .errors import SynapseDeclareError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_BUG = 3
EXIT_INTERRUPTED = 130

log = logging.getLogger("synapse_declare")


class UsageError(SynapseDeclareError):
    """Bad command-line usage (exit 1, never argparse's 2, which means "changes" here)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}", hint=f"see '{self.prog} --help'")


Command = Callable[[argparse.Namespace], int]


def build_parser() -> _Parser:
    parser = _Parser(
        prog="synapse-declare",
        description="Declarative infrastructure for Synapse: validate, plan and apply YAML "
        "manifests of projects, folders, ACLs, wikis, annotations and storage.",
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
    _register_emulator(sub)
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
        handler = logging.FileHandler(args.log_file, encoding="utf-8")
        handler.setLevel(logging.DEBUG)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        handler.addFilter(RedactingFilter())
        root.addHandler(handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``synapse-declare`` and ``python -m synapse_declare``."""
    stderr = sys.stderr
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
    )
    serve.add_argument("--host", default="127.0.0.1", help="loopback address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="REST port (0 = any free port)")
    serve.add_argument("--s3-port", type=int, default=0, help="S3/STS port (default: any free)")
    serve.add_argument("--data-dir", type=Path, help="persist state here across restarts")
    serve.add_argument("--users", type=Path, help="YAML file of users and teams to seed")
    serve.add_argument("--latency-ms", type=float, default=0.0, help="added to every request")
    serve.add_argument("--max-concurrent", type=int, help="per-user concurrent requests (429 above)")
    serve.add_argument("--max-per-minute", type=int, help="per-user requests per minute (429 above)")
    serve.add_argument("--fault-rate", type=float, default=0.0, help="fraction of requests failed")
    serve.add_argument("--fault-seed", type=int, default=0, help="seed of the fault sequence")
    serve.add_argument("--request-log", type=Path, help="write one JSON line per exchange here")
    serve.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    try:
        from .emulator import Emulator, EmulatorConfig
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise UsageError(
            f"the emulator needs the 'emulator' extra ({exc.name} is missing)",
            hint="pip install 'synapse-declare[emulator]'",
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
