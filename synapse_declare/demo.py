"""``synapse-declare demo``: the whole workflow against an embedded local Synapse.

Starts an emulator on loopback, then runs the real commands a user would run on the quickstart
manifest: plan → apply → plan (no changes) → an out-of-band change made with the official
``synapseclient`` → plan shows the drift → apply fixes it → plan (no changes). Every step prints
the command it runs. Nothing outside a temporary directory is read or written.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import io
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from .errors import SynapseDeclareError


class DemoError(SynapseDeclareError):
    """A demo step did not behave as the demo expects."""


def _quickstart_dir() -> Path:
    packaged = importlib.resources.files("synapse_declare").joinpath("examples", "quickstart")
    if packaged.is_dir():
        return Path(str(packaged))
    repo = Path(__file__).resolve().parent.parent / "examples" / "quickstart"
    if repo.is_dir():
        return repo
    raise DemoError("the quickstart example is not installed with this copy of synapse-declare")


@contextlib.contextmanager
def _workdir(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    path = Path(tempfile.mkdtemp(prefix="synapse-declare-demo-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def run_demo(
    main: Callable[[Sequence[str]], int], out: TextIO, *, workdir: Path | None = None
) -> int:
    try:
        from .emulator import Emulator, EmulatorConfig
    except ImportError as exc:
        raise DemoError(
            f"the demo needs the emulator extra ({exc.name} is missing)",
            hint="pip install -c constraints.txt 'synapse-declare[demo]'",
        ) from exc
    with _workdir(workdir) as work, Emulator(EmulatorConfig()).start() as emulator:
        manifest_dir = work / "quickstart"
        shutil.copytree(_quickstart_dir(), manifest_dir, dirs_exist_ok=True)
        config = work / "synapseConfig"
        config.write_text(emulator.synapse_config("demo"), encoding="utf-8")
        manifest = str(manifest_dir / "quickstart.yaml")
        common = ["--config", str(config)]
        step = _Stepper(out)
        out.write(
            f"Local Synapse emulator at {emulator.repo_endpoint} (S3 at {emulator.s3_endpoint}).\n"
            f"Credentials and endpoints come from {config} ([authentication], [endpoints]).\n"
        )

        step("Validate the manifest offline")
        step.run(main, ["validate", manifest], expect=0)

        step("Plan: everything is new")
        step.run(main, ["plan", manifest, *common, "--detailed-exitcode"], expect=2)

        step("Apply it (in CI: --auto-approve, or 'apply --plan' of a reviewed plan)")
        step.run(main, ["apply", manifest, *common, "--auto-approve"], expect=0)

        step("Plan again: Synapse matches the manifest")
        step.run(main, ["plan", manifest, *common, "--detailed-exitcode"], expect=0)

        step("Someone edits the project by hand with the official synapseclient")
        for line in _out_of_band_edit(config):
            out.write(f"    {line}\n")

        step("Plan shows exactly that drift")
        step.run(main, ["plan", manifest, *common, "--detailed-exitcode"], expect=2)

        step("Apply puts it back")
        step.run(main, ["apply", manifest, *common, "--auto-approve"], expect=0)

        step("Plan: no changes")
        step.run(main, ["plan", manifest, *common, "--detailed-exitcode"], expect=0)
        out.write("\nDemo complete: every step behaved as expected.\n")
    return 0


class _Stepper:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.number = 0

    def __call__(self, title: str) -> None:
        self.number += 1
        self.out.write(f"\n==> {self.number}. {title}\n")
        self.out.flush()

    def run(self, main: Callable[[Sequence[str]], int], argv: list[str], *, expect: int) -> None:
        shown = " ".join(_shell_word(a) for a in argv)
        self.out.write(f"$ synapse-declare {shown}\n")
        self.out.flush()
        code = main(argv)
        self.out.write(f"(exit code {code})\n")
        if code != expect:
            raise DemoError(f"'synapse-declare {shown}' exited {code}, expected {expect}")


def _shell_word(word: str) -> str:
    return word if word and all(c.isalnum() or c in "-_./=:" for c in word) else repr(word)


def _out_of_band_edit(config: Path) -> list[str]:
    try:
        import synapseclient
    except ImportError as exc:
        raise DemoError(
            "the demo's out-of-band step uses the official synapseclient",
            hint="pip install -c constraints.txt 'synapse-declare[demo]'",
        ) from exc
    # synapseclient logs through its own handlers; keep its chatter out of the demo output.
    quiet = io.StringIO()
    try:
        with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            return _edit_with_synapseclient(synapseclient, config)
    except Exception as exc:
        raise DemoError(f"the out-of-band edit with synapseclient failed: {exc}") from exc


def _edit_with_synapseclient(synapseclient: Any, config: Path) -> list[str]:
    synapseclient.Synapse.allow_client_caching(False)
    syn: Any = synapseclient.Synapse(configPath=str(config), skip_checks=True, silent=True)
    syn.login(silent=True)
    project_id = syn.findEntityId("synapse-declare quickstart")
    annotations = syn.get_annotations(project_id)
    annotations["program"] = ["edited-by-hand"]
    syn.set_annotations(annotations)
    syn.setPermissions(project_id, principalId=273949, accessType=["READ"], warn_if_inherits=False)
    wiki = syn.getWiki(project_id)
    wiki.markdown = wiki.markdown + "\nA line added by hand.\n"
    syn.store(wiki)
    return [
        f"annotation 'program' of {project_id} set to 'edited-by-hand'",
        f"PUBLIC given READ on {project_id}",
        "a line appended to the project's wiki page",
    ]
