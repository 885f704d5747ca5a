"""Preview generation for new S3 file handles (SRS PreviewManagerImpl and TextPreviewGenerator).

Synapse makes previews asynchronously after an S3 file handle is created with
``generatePreview`` (a worker); the emulator makes them at once when the upload completes, so a
client polling for ``previewId`` or ``…/attachmentpreview`` finds it on the first try.

The rules are Synapse's: nothing for an empty file or an empty content type; the generator is
chosen by the MIME type (parameters ignored, lower-cased). Only the text generator is
implemented: ``text/*`` except ``text/csv`` and ``text/tab-separated-values``, plus
``application/x-javascript`` and ``application/x-sh``. The preview is the first 1,500 characters
of the object read as UTF-8 (longer text is cut to 1,497 characters and ``...``, as
``StringUtils.abbreviate``), stored as an ``S3FileHandle`` with ``isPreview: true``, file name
``preview.txt``, content type ``text/plain``, created by the original's creator, in the same
bucket under ``<creator>/<uuid>``. Images, CSV/TSV, PDF, Office and zip files get no preview in
the emulator (their generators need image and document libraries it does not ship).
"""

from __future__ import annotations

import hashlib
import uuid
from typing import TYPE_CHECKING

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
    if not content_type:
        return False
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime in TEXT_EXCLUDED:
        return False
    return mime.startswith("text/") or mime in TEXT_EXTRA


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
    if not handle["content_size"] or not has_text_generator(handle["content_type"]):
        return None
    s3 = storage.s3_client(ctx.emulator)
    # 4 bytes per character at most: this range always holds the characters the preview needs.
    last_byte = 4 * (MAX_CHARACTER_COUNT + 10) - 1
    try:
        obj = s3.get_object(
            Bucket=handle["bucket"], Key=handle["key"], Range=f"bytes=0-{last_byte}"
        )
        body = text_preview(obj["Body"].read()).encode("utf-8")
        key = f"{handle['created_by']}/{uuid.uuid4()}"
        s3.put_object(Bucket=handle["bucket"], Key=key, Body=body, ContentType="text/plain")
    except (ClientError, BotoCoreError):
        return None
    preview_id = files.insert_handle(
        store,
        concrete=S3_FILE_HANDLE,
        created_by=int(handle["created_by"]),
        file_name="preview.txt",
        content_type="text/plain",
        content_md5=hashlib.md5(body).hexdigest(),
        content_size=len(body),
        storage_location_id=None,
        bucket=handle["bucket"],
        key=key,
    )
    store.execute("UPDATE file_handles SET is_preview = 1 WHERE id = ?", (preview_id,))
    store.execute("UPDATE file_handles SET preview_id = ? WHERE id = ?", (preview_id, handle_id))
    return preview_id
