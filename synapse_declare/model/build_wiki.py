"""The wiki builder: a page, its markdown (inline or from a confined file), its sub-pages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from synapse_declare.errors import SourceLocation
from synapse_declare.files import ConfinedFileError, read_confined
from synapse_declare.manifest import JsonPath

from .build_core import BuildContext
from .specs import WikiSpec


def build_wiki(ctx: BuildContext, raw: Mapping[str, Any], path: JsonPath) -> WikiSpec:
    title = raw.get("title", "")
    markdown = raw.get("markdown")
    source = raw.get("markdown_file")
    if markdown is not None and source is not None:
        ctx.error(
            (*path, "markdown_file"),
            "a wiki page takes either markdown or markdown_file, not both",
            "keep one of them",
            key=True,
        )
    elif source is not None:
        markdown = _read_markdown(ctx, source, (*path, "markdown_file"))
    pages: list[WikiSpec] = []
    seen: dict[str, SourceLocation] = {}
    for i, item in enumerate(raw.get("pages") or []):
        ppath: JsonPath = (*path, "pages", i)
        page = build_wiki(ctx, item, ppath)
        earlier = ctx.first_seen(seen, page.title, (*ppath, "title"))
        if earlier is not None:
            ctx.error(
                (*ppath, "title"),
                f"duplicate wiki page title {page.title!r} under the same page (also at {earlier})",
                "sub-pages are matched by title; give each sub-page of a page its own title",
            )
        pages.append(page)
    return WikiSpec(
        title=title,
        markdown=markdown or "",
        pages=tuple(pages),
        location=ctx.at(path),
        markdown_source=source,
    )


def _read_markdown(ctx: BuildContext, written: str, path: JsonPath) -> str | None:
    """``markdown_file``: read inside the manifest's folder, UTF-8, CRLF normalised to LF."""
    base = ctx.locator.source_for(path).base_dir
    try:
        data = read_confined(written, base)
    except ConfinedFileError as problem:
        ctx.error(path, problem.message, problem.hint)
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        ctx.error(path, f"markdown_file {written!r} is not UTF-8 text", "save it as UTF-8")
        return None
    return text.replace("\r\n", "\n")
