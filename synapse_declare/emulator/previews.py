"""Preview generation for new S3 file handles (SRS PreviewManagerImpl, TextPreviewGenerator,
TabCsvPreviewGenerator).

Synapse makes previews asynchronously after an S3 file handle is created with
``generatePreview`` (a worker); the emulator makes them at once when the upload completes, so a
client polling for ``previewId`` or ``…/attachmentpreview`` finds it on the first try.

The rules are Synapse's: nothing for an empty file or an empty content type; the generator is
chosen by the MIME type (parameters ignored, lower-cased):

* text — ``text/*`` except ``text/csv`` and ``text/tab-separated-values``, plus
  ``application/x-javascript`` and ``application/x-sh``: the first 1,500 characters read as UTF-8
  (longer text is cut to 1,497 characters and ``...``, as ``StringUtils.abbreviate``), saved as
  ``preview.txt``, ``text/plain``;
* tables — ``text/csv`` (comma) and ``text/tab-separated-values`` (tab): at most 30 rows of at
  most 20 cells of at most 40 characters, written as CSV with ``&hellip;`` where something was
  cut and ``&#44;`` for commas inside cells, saved as ``preview.csv``, ``text/csv``.

The preview is an ``S3FileHandle`` with ``isPreview: true`` created by the original's creator, in
the same bucket under ``<creator>/<uuid>``. Images, PDF, Office and zip files get no preview in
the emulator (their generators need imaging and document libraries it does not ship).
"""

from __future__ import annotations

import codecs
import hashlib
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from . import files, storage
from .filehandles import S3_FILE_HANDLE

if TYPE_CHECKING:
    from .app import Ctx

SCHEMA = ""

MAX_CHARACTER_COUNT = 1500
TEXT_EXCLUDED = ("text/csv", "text/tab-separated-values")
TEXT_EXTRA = ("application/x-javascript", "application/x-sh")


def has_text_generator(content_type: str | None) -> bool:
    """TextPreviewGenerator.supportsContentType on the parsed, lower-cased MIME type."""
    mime = _mime(content_type)
    if not mime or mime in TEXT_EXCLUDED:
        return False
    return mime.startswith("text/") or mime in TEXT_EXTRA


TAB_CSV = {"text/csv": ",", "text/tab-separated-values": "\t"}
MAX_ROW_COUNT = 30
MAX_COLUMN_COUNT = 20
MAX_CELL_CHARACTER_COUNT = 40
HTML_ELLIPSIS = "&hellip;"
HTML_COMMA = "&#44;"
# The generator marks the end of the stream with this character while it works.
EOF_MARK = "\u001a"


def _mime(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


class _Chars:
    """A character stream over UTF-8 chunks (Java's InputStreamReader: bad bytes become U+FFFD);
    ``read`` gives "" at the end, as ``read()`` gives -1."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._position = 0
        self._done = False

    def read(self) -> str:
        while self._position >= len(self._buffer):
            if self._done:
                return ""
            chunk = next(self._chunks, None)
            if chunk is None:
                self._done = True
                self._buffer, self._position = self._decoder.decode(b"", final=True), 0
            else:
                self._buffer, self._position = self._decoder.decode(chunk), 0
        char = self._buffer[self._position]
        self._position += 1
        return char

    def read_line(self) -> None:
        """BufferedReader.readLine: skip to just after the next \n, \r or \r\n."""
        while True:
            char = self.read()
            if char in ("", "\n"):
                return
            if char == "\r":
                if self._position < len(self._buffer) and self._buffer[self._position] == "\n":
                    self._position += 1
                return


def _in_cell(char: str, in_quote: bool, delimiter: str) -> bool:
    if char == "":
        return False
    return in_quote or char not in ("\n", "\r", delimiter)


def _next_cell(chars: _Chars, delimiter: str) -> str:
    out: list[str] = []
    count = 0
    in_quote = False
    char = chars.read()
    while char != "" and count < MAX_CELL_CHARACTER_COUNT and _in_cell(char, in_quote, delimiter):
        if char == '"':
            in_quote = not in_quote
        else:
            out.append(HTML_COMMA if char == "," else " " if char in "\n\r" else char)
            count += 1
        char = chars.read()
    if _in_cell(char, in_quote, delimiter):
        # The cell is longer than the limit: mark the cut and skip to the cell's end.
        out.append(HTML_ELLIPSIS)
        char = chars.read()
        while char != "":
            if char == '"':
                in_quote = not in_quote
            elif not _in_cell(char, in_quote, delimiter):
                break
            char = chars.read()
    out.append("," if char == delimiter else EOF_MARK if char == "" else char)
    return "".join(out)


def _next_row(chars: _Chars, delimiter: str) -> str:
    out = ""
    column = 0
    end_of_line = end_of_file = False
    while column < MAX_COLUMN_COUNT and not end_of_line and not end_of_file:
        cell = _next_cell(chars, delimiter)
        out += cell
        column += 1
        end_of_line = cell.endswith(("\n", "\r"))
        end_of_file = cell.endswith(EOF_MARK)
    if column >= MAX_COLUMN_COUNT:
        out += HTML_ELLIPSIS
        chars.read_line()
    if not end_of_line and not end_of_file:
        out += "\n"
    return out


# Java's String.trim() removes every character up to U+0020, the end-of-stream mark included.
_JAVA_TRIMMED = "".join(chr(code) for code in range(0x21))


def _java_split_count(text: str) -> int:
    """len(text.split(",")) as Java counts it: trailing empty strings are dropped."""
    parts = text.split(",")
    while parts and parts[-1] == "":
        parts.pop()
    return len(parts) if text else 1


def table_preview(chunks: Iterator[bytes], delimiter: str) -> str | None:
    """What TabCsvPreviewGenerator writes: the first rows and cells as CSV, cuts marked; None
    where the generator fails (a file of blank lines leaves nothing to write)."""
    chars = _Chars(chunks)
    out = ""
    line = 0
    end_of_file = False
    last_row = ""
    while line < MAX_ROW_COUNT and not end_of_file:
        last_row = _next_row(chars, delimiter)
        if last_row.strip(_JAVA_TRIMMED):
            out += last_row
        line += 1
        end_of_file = last_row.endswith(EOF_MARK)
    if line >= MAX_ROW_COUNT and last_row:
        # One ellipsis per column of the last row read says that rows were cut.
        out += ",".join([HTML_ELLIPSIS] * _java_split_count(last_row))
    if end_of_file:
        if not out:
            return None
        # Meant to drop the end-of-stream mark; when the last row was blank (the usual final
        # newline) it drops the previous row's newline instead, as Synapse's generator does.
        out = out[:-1]
    return out


def text_preview(data: bytes) -> str:
    """The characters TextPreviewGenerator writes for an object starting with ``data``."""
    text = data.decode("utf-8", errors="replace")[: MAX_CHARACTER_COUNT + 10]
    if len(text) <= MAX_CHARACTER_COUNT:
        return text
    return text[: MAX_CHARACTER_COUNT - 3] + "..."


def generate(ctx: Ctx, handle_id: int) -> int | None:
    """Make the preview of a new S3 file handle; returns the preview's id, or None when Synapse's
    rules give it none (or the object cannot be read, which Synapse's worker also skips)."""
    store = ctx.store
    handle = store.one("SELECT * FROM file_handles WHERE id = ?", (handle_id,))
    if handle is None or handle["concrete_type"] != S3_FILE_HANDLE or handle["is_preview"]:
        return None
    mime = _mime(handle["content_type"])
    delimiter = TAB_CSV.get(mime)
    if not handle["content_size"] or (delimiter is None and not has_text_generator(mime)):
        return None
    s3 = storage.s3_client(ctx.emulator)
    request: dict[str, Any] = {"Bucket": handle["bucket"], "Key": handle["key"]}
    if delimiter is None:
        # 4 bytes per character at most: this range holds every character the preview needs.
        request["Range"] = f"bytes=0-{4 * (MAX_CHARACTER_COUNT + 10) - 1}"
    try:
        stream = s3.get_object(**request)["Body"]
        if delimiter is None:
            body = text_preview(stream.read()).encode("utf-8")
            name, content_type = "preview.txt", "text/plain"
        else:
            table = table_preview(stream.iter_chunks(64 * 1024), delimiter)
            if table is None:
                return None
            body = table.encode("utf-8")
            name, content_type = "preview.csv", "text/csv"
        stream.close()
        key = f"{handle['created_by']}/{uuid.uuid4()}"
        s3.put_object(Bucket=handle["bucket"], Key=key, Body=body, ContentType=content_type)
    except (ClientError, BotoCoreError):
        return None
    preview_id = files.insert_handle(
        store,
        concrete=S3_FILE_HANDLE,
        created_by=int(handle["created_by"]),
        file_name=name,
        content_type=content_type,
        content_md5=hashlib.md5(body).hexdigest(),
        content_size=len(body),
        storage_location_id=None,
        bucket=handle["bucket"],
        key=key,
    )
    store.execute("UPDATE file_handles SET is_preview = 1 WHERE id = ?", (preview_id,))
    store.execute("UPDATE file_handles SET preview_id = ? WHERE id = ?", (preview_id, handle_id))
    return preview_id
