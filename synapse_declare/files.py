"""Reading the files a manifest names (``markdown_file``), confined and bounded.

A manifest is input that anyone who can open a pull request may edit, and its wiki pages are
published on Synapse. So a file a manifest reads must:

* lie inside the directory tree of the manifest file that names it, after every symlink is
  resolved (an absolute path, a ``..`` escape, or a symlink out of the tree is refused: it is how
  ``/proc/self/environ`` or a CI secret would otherwise be published as a wiki page);
* be a regular file (a FIFO, a device such as ``/dev/zero``, a socket or a directory is refused
  *before* it is opened for reading, so nothing blocks or reads without end);
* hold at most :data:`MAX_MARKDOWN_BYTES`, and is read with that bound whatever ``stat`` said
  (a file that grows while it is read cannot exhaust memory).

Errors are :class:`ConfinedFileError` with a message and a hint; the caller locates them.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

MAX_MARKDOWN_BYTES = 5 * 1024 * 1024
"""Cap on one ``markdown_file``: the manifest file cap. Synapse stores wiki markdown as a
gzipped file handle and documents no smaller limit; anything this size is far beyond a
readable wiki page, and the bound keeps ``validate`` from reading without end."""


@dataclass(frozen=True, slots=True)
class ConfinedFileError(Exception):
    """A manifest-named file that may not be read; ``message`` and ``hint`` are user-facing."""

    message: str
    hint: str


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_confined(
    written: str,
    base_dir: Path,
    *,
    limit: int = MAX_MARKDOWN_BYTES,
    field: str = "markdown_file",
) -> bytes:
    """The bytes of ``written`` (a path relative to ``base_dir``), or :class:`ConfinedFileError`.

    ``base_dir`` is the directory of the manifest file; the file must resolve inside it.
    ``field`` names the manifest key in messages (``markdown_file``, ``for_each``).
    """
    relative = f"{field} paths are relative to the manifest file that names them"
    inside = f"{relative}, and must stay inside its folder"
    if not written.strip():
        raise ConfinedFileError(f"{field} is empty", "give a path such as wikis/home.md")
    if "\x00" in written:
        raise ConfinedFileError(f"{field} contains a NUL character", inside)
    if PurePosixPath(written).is_absolute() or PureWindowsPath(written).is_absolute():
        raise ConfinedFileError(
            f"{field} {written!r} is an absolute path",
            f"{inside}: copy the file next to the manifest and write its relative path",
        )
    root = base_dir.resolve()
    try:
        resolved = (root / written).resolve(strict=True)
    except FileNotFoundError:
        if not (root / written).resolve().is_relative_to(root):
            # Outside the folder is the problem to fix, whether or not something is there.
            raise ConfinedFileError(
                f"{field} {written!r} points outside the manifest's folder {root}",
                f"{inside}: copy the file next to the manifest and write its relative path",
            ) from None
        raise ConfinedFileError(
            f"{field} not found: {written!r} (resolved to {(root / written).resolve()})",
            relative,
        ) from None
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
        raise ConfinedFileError(f"cannot resolve {field} {written!r}: {exc}", inside) from None
    if not resolved.is_relative_to(root):
        via = " (through a symlink)" if ".." not in PurePosixPath(written).parts else ""
        raise ConfinedFileError(
            f"{field} {written!r} resolves to {resolved}, outside the manifest's folder "
            f"{root}{via}",
            f"{inside}; files elsewhere are refused so a manifest cannot publish arbitrary "
            "files of the machine that runs it",
        )
    shown = f"{written!r} (resolved to {resolved})"
    try:
        before = os.stat(resolved)
    except OSError as exc:
        raise ConfinedFileError(f"cannot read {field} {shown}: {exc.strerror}", inside) from None
    if not stat.S_ISREG(before.st_mode):
        raise ConfinedFileError(
            f"{field} {shown} is {_kind(before.st_mode)}", "point it at a regular file"
        )
    too_large = ConfinedFileError(
        f"{field} {shown} is larger than {limit} bytes",
        "split the page into sub-pages",
    )
    if before.st_size > limit:
        raise too_large
    # O_NONBLOCK: if the path was swapped for a FIFO after the stat, open does not wait for a
    # writer; fstat on the opened descriptor then refuses it.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(resolved, flags)
    except OSError as exc:
        raise ConfinedFileError(f"cannot read {field} {shown}: {exc.strerror}", inside) from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise ConfinedFileError(
                f"{field} {shown} changed into a special file while it was read",
                "point it at a regular file",
            )
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise too_large
    return data
