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
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from .auth import Credentials, Endpoints
from .client.synapse import connect
from .client.teams import TeamsAPI
from .errors import DemoError, SynapseDeclareError


def _example_dir(name: str) -> Path:
    packaged = importlib.resources.files("synapse_declare").joinpath("examples", name)
    if packaged.is_dir():
        return Path(str(packaged))
    repo = Path(__file__).resolve().parent.parent / "examples" / name
    if repo.is_dir():
        return repo
    raise DemoError(f"the {name} example is not installed with this copy of synapse-declare")


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
        from .emulator import Emulator, EmulatorConfig, SeedUser
    except ImportError as exc:
        raise DemoError(
            f"the demo needs the emulator extra ({exc.name} is missing)",
            hint="in your clone of synapse-declare: pip install -c constraints.txt '.[demo]'",
        ) from exc
    # The operator, and a center member to invite in the teams chapter (fresh tokens per run).
    users = [
        SeedUser("demo", secrets.token_urlsafe(24), email="demo@example.org", certified=True),
        SeedUser("jdoe", secrets.token_urlsafe(24), email="jdoe@example.org", certified=True),
    ]
    with _workdir(workdir) as work, Emulator(EmulatorConfig(users=users)).start() as emulator:
        manifest_dir = work / "quickstart"
        shutil.copytree(_example_dir("quickstart"), manifest_dir, dirs_exist_ok=True)
        config = work / "synapseConfig"
        config.write_text(emulator.synapse_config("demo"), encoding="utf-8")
        manifest = str(manifest_dir / "quickstart.yaml")
        step = _Stepper(out, main, ["--config", str(config)])
        out.write(
            f"Local Synapse emulator at {emulator.repo_endpoint} (S3 at {emulator.s3_endpoint}).\n"
            f"Credentials and endpoints come from {config} ([authentication], [endpoints]).\n"
        )

        step("Validate the manifest offline")
        step.run(["validate", manifest], expect=0)

        step("Plan: everything is new")
        step.plan(manifest, expect=2)

        step("Apply it (in CI: --auto-approve, or 'apply --plan' of a reviewed plan)")
        step.apply(manifest)

        step("Plan again: Synapse matches the manifest")
        step.plan(manifest, expect=0)

        step("Someone edits the project by hand with the official synapseclient")
        for line in _out_of_band_edit(config):
            out.write(f"    {line}\n")

        step("Plan shows exactly that drift")
        step.plan(manifest, expect=2)

        step("Apply puts it back")
        step.apply(manifest)

        step("Plan: no changes")
        step.plan(manifest, expect=0)

        _teams_chapter(out, step, emulator, work)
        _storage_chapter(out, step, emulator, work, config)
        out.write("\nDemo complete: every step behaved as expected.\n")
    return 0


class _Stepper:
    """Numbered steps, each running the real CLI with the demo's config and checking its exit
    code."""

    def __init__(
        self, out: TextIO, main: Callable[[Sequence[str]], int], common: Sequence[str]
    ) -> None:
        self.out = out
        self.main = main
        self.common = list(common)
        self.number = 0

    def __call__(self, title: str) -> None:
        self.number += 1
        self.out.write(f"\n==> {self.number}. {title}\n")
        self.out.flush()

    def run(self, argv: list[str], *, expect: int) -> None:
        shown = " ".join(_shell_word(a) for a in argv)
        self.out.write(f"$ synapse-declare {shown}\n")
        self.out.flush()
        code = self.main(argv)
        self.out.write(f"(exit code {code})\n")
        if code != expect:
            raise DemoError(f"'synapse-declare {shown}' exited {code}, expected {expect}")

    def plan(self, manifest: str, *, expect: int) -> None:
        self.run(["plan", manifest, *self.common, "--detailed-exitcode"], expect=expect)

    def apply(self, manifest: str, *options: str) -> None:
        self.run(["apply", manifest, *self.common, "--auto-approve", *options], expect=0)


def _shell_word(word: str) -> str:
    return word if word and all(c.isalnum() or c in "-_./=:" for c in word) else repr(word)


@contextlib.contextmanager
def _official_client(
    config: Path, *, needed: str, failure: str, cache_root: Path | None = None
) -> Iterator[tuple[Any, Any]]:
    """``(synapseclient, a client logged in with the demo's config)``; its chatter is kept out
    of the demo output (it logs through its own handlers), and whatever it raises becomes a
    DemoError that starts with ``failure``."""
    try:
        import synapseclient
    except ImportError as exc:
        raise DemoError(
            needed,
            hint="in your clone of synapse-declare: pip install -c constraints.txt '.[demo]'",
        ) from exc
    quiet = io.StringIO()
    try:
        with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            synapseclient.Synapse.allow_client_caching(False)
            cache = {} if cache_root is None else {"cache_root_dir": str(cache_root)}
            syn: Any = synapseclient.Synapse(
                configPath=str(config), skip_checks=True, silent=True, **cache
            )
            syn.login(silent=True)
            yield synapseclient, syn
    except Exception as exc:
        raise DemoError(f"{failure}: {exc}") from exc


def _out_of_band_edit(config: Path) -> list[str]:
    with _official_client(
        config,
        needed="the demo's out-of-band step uses the official synapseclient",
        failure="the out-of-band edit with synapseclient failed",
    ) as (_, syn):
        project_id = syn.findEntityId("synapse-declare quickstart")
        annotations = syn.get_annotations(project_id)
        annotations["program"] = ["edited-by-hand"]
        syn.set_annotations(annotations)
        syn.setPermissions(
            project_id, principalId=273949, accessType=["READ"], warn_if_inherits=False
        )
        wiki = syn.getWiki(project_id)
        wiki.markdown = wiki.markdown + "\nA line added by hand.\n"
        syn.store(wiki)
    return [
        f"annotation 'program' of {project_id} set to 'edited-by-hand'",
        f"PUBLIC given READ on {project_id}",
        "a line appended to the project's wiki page",
    ]


def _chapter(out: TextIO, work: Path, example: str, title: str) -> Path:
    """The chapter's heading, and a copy of its example manifest directory to work in."""
    out.write(f"\n---- {title} ----\n")
    manifest_dir = work / example
    shutil.copytree(_example_dir(example), manifest_dir, dirs_exist_ok=True)
    return manifest_dir


def _teams_chapter(out: TextIO, step: _Stepper, emulator: Any, work: Path) -> None:
    """A center team granted access in the same manifest; its member is invited, accepts as
    themself, and the next plan is empty."""
    manifest_dir = _chapter(
        out, work, "teams", "Teams: a center team, an invitation, its acceptance"
    )
    manifest = str(manifest_dir / "teams.yaml")

    step("Plan: the team first, jdoe invited (Synapse adds only those who asked), the ACL")
    step.plan(manifest, expect=2)

    step("Apply")
    step.apply(manifest)

    step("Plan: the pending invitation is not drift")
    step.plan(manifest, expect=0)

    step("jdoe accepts the invitation with their own token")
    jdoe = connect(
        Credentials(
            emulator.users["jdoe"], "the demo's jdoe", Endpoints.from_base(emulator.repo_endpoint)
        )
    )
    try:
        team_id = jdoe.headers_by_alias(["Center A Contributors"])[0]["ownerId"]
        # Joining a team one was invited to is how Synapse accepts the invitation.
        TeamsAPI(jdoe.t).add_member(str(team_id), str(emulator.principal_ids["jdoe"]))
    except (SynapseDeclareError, IndexError) as exc:
        raise DemoError(f"jdoe could not accept the invitation: {exc}") from exc
    out.write(f"    jdoe joined team {team_id} (Center A Contributors)\n")

    step("Plan: jdoe is a member, as declared: no changes")
    step.plan(manifest, expect=0)


STORAGE_PROJECT = "synapse-declare storage demo"


def _storage_chapter(out: TextIO, step: _Stepper, emulator: Any, work: Path, config: Path) -> None:
    """External bucket, migration of existing files, and an STS folder used through boto3."""
    manifest_dir = _chapter(
        out, work, "storage", "Storage: your own bucket, a verified migration, an STS folder"
    )
    manifest_path = manifest_dir / "storage.yaml"
    text = manifest_path.read_text(encoding="utf-8")
    manifest_path.write_text(
        text.replace("https://s3.amazonaws.com", emulator.s3_endpoint), encoding="utf-8"
    )
    manifest = str(manifest_path)
    # boto3 (owner.txt pre-flight, verification) reaches the embedded S3 with these; moto
    # accepts any credentials. They are the demo's own, set only in this process.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "demo-access-key")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "demo-secret-key")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

    step("The lab's bucket, with owner.txt naming the Synapse user (boto3 on the embedded S3)")
    s3 = emulator.s3_client()
    s3.create_bucket(Bucket="demo-lab-data")
    s3.put_object(Bucket="demo-lab-data", Key="portal/owner.txt", Body=b"demo\n")
    s3.put_object(Bucket="demo-lab-data", Key="pipelines/owner.txt", Body=b"demo\n")
    out.write("    s3://demo-lab-data/portal/owner.txt and pipelines/owner.txt contain 'demo'\n")

    step("Existing data in Synapse storage, uploaded with synapseclient (one file has 2 versions)")
    for line in _existing_files(config, work):
        out.write(f"    {line}\n")

    step("Plan: two storage locations, upload destinations, and a migration with counts")
    step.plan(manifest, expect=2)

    step("Apply: copy (relayed or server-side), verify size and MD5, repoint; sources are kept")
    report = work / "migration-report.csv"
    state_dir = work / "state"
    step.apply(manifest, "--state-dir", str(state_dir), "--report-csv", str(report))
    rows = report.read_text(encoding="utf-8").splitlines()
    out.write(f"    per-file report: {report.name} ({len(rows) - 1} rows)\n")

    step("Plan: no changes")
    step.plan(manifest, expect=0)

    step("Pipelines use the STS folder directly: credentials on stdout, then boto3")
    argv = [
        "sts",
        f"{STORAGE_PROJECT}/Pipelines",
        "--permission",
        "read_write",
        "--format",
        "boto",
        *step.common,
    ]
    out.write("$ synapse-declare " + " ".join(_shell_word(a) for a in argv) + "\n")
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        code = step.main(argv)
    if code != 0:
        raise DemoError(f"'synapse-declare sts' exited {code}")
    credentials = json.loads(captured.getvalue())
    out.write(
        "    (credentials printed on stdout only; not shown here; they carry the location's "
        "endpoint_url)\n"
    )
    import boto3

    # `--format boto` includes the S3-compatible endpoint of the location: nothing to add.
    sts_s3 = boto3.client("s3", region_name="us-east-1", **credentials)
    sts_s3.put_object(Bucket="demo-lab-data", Key="pipelines/run-1/output.txt", Body=b"result\n")
    listed = sts_s3.list_objects_v2(Bucket="demo-lab-data", Prefix="pipelines/run-1/")
    keys = [item["Key"] for item in listed.get("Contents", [])]
    out.write(f"    boto3 wrote and listed with the STS credentials: {keys}\n")


def _existing_files(config: Path, work: Path) -> list[str]:
    files = work / "existing-files"
    files.mkdir(exist_ok=True)
    with _official_client(
        config,
        needed="the demo uses the official synapseclient to create existing data",
        failure="creating the existing files with synapseclient failed",
        cache_root=work / "cache",
    ) as (synapseclient, syn):
        project = syn.store(synapseclient.Project(STORAGE_PROJECT))
        raw = syn.store(synapseclient.Folder("Raw Data", parent=project))
        stored = []
        for index in range(3):
            path = files / f"sample-{index}.csv"
            path.write_text("id,value\n" + "".join(f"{i},{i * index}\n" for i in range(200)))
            stored.append(syn.store(synapseclient.File(str(path), parent=raw)))
        path = files / "sample-0.csv"
        path.write_text(path.read_text() + "200,0\n")
        syn.store(synapseclient.File(str(path), parent=raw))
    return [f"{f.name} ({f.id}) in Synapse storage" for f in stored] + [
        "sample-0.csv updated: version 2"
    ]
