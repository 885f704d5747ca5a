"""Wiki pages (matched by title path under the owner's root page) and their sub-page order."""

from __future__ import annotations

from typing import Any

from ..client.records import WikiOrderHint, WikiPage
from ..errors import Conflict, PreconditionFailed
from ..model import ContainerSpec
from ..plan import Action, Change, Resource
from .base import ApplyContext, BundleFlags, Operation
from .exporting import Commented, ExportContext, WikiNode, slug
from .payloads import EtagPrior, WikiOrderDesired, WikiPageDesired, WikiPagePrior


class WikiKind:
    name = "wiki"
    resources = (Resource.WIKI_PAGE, Resource.WIKI_ORDER)
    operations = frozenset({Operation.PLAN, Operation.APPLY, Operation.EXPORT})

    def label(self, resource: Resource) -> str:
        return "wiki page" if resource is Resource.WIKI_PAGE else "wiki"

    def export(
        self, ctx: ExportContext, root: WikiNode, folder: str | None, where: str
    ) -> tuple[Any, dict[str, str]]:
        """A wiki tree as manifest data whose markdown lives in ``folder/*.md`` files (paths
        relative to the manifest), and those files' contents; inline markdown when ``folder``
        is None."""
        files: dict[str, str] = {}

        def page(node: WikiNode, directory: str, name: str, path: str) -> Any:
            data: dict[str, Any] = {"title": node.title}
            if folder is None:
                data["markdown"] = node.markdown
            else:
                file = f"{directory}/{name}.md"
                files[file] = node.markdown
                data["markdown_file"] = file
            if node.pages:
                taken: set[str] = set()
                sub_dir = f"{directory}/{name}" if directory != folder or name != "home" else folder
                if sub_dir == folder:
                    taken.add("home")
                data["pages"] = [
                    page(child, sub_dir, slug(child.title, taken), f"{path}/{child.title}")
                    for child in node.pages
                ]
            if node.attachments:
                names = ", ".join(node.attachments)
                message = ctx.warn(
                    f"{where} wiki {path or '(root)'}",
                    f"{len(node.attachments)} attachment(s) not exported ({names}): a manifest "
                    "holds markdown only; they stay on the live page",
                )
                return Commented(data, (message,))
            return data

        return page(root, folder or "", "home", ""), files

    def bundle_flags(self, spec: ContainerSpec, own_acl: bool) -> BundleFlags:
        return BundleFlags(root_wiki=spec.wiki is not None)

    def record_existing(self, ctx: ApplyContext, change: Change) -> None:
        if change.syn_id is None:
            return
        with ctx.lock:
            if change.resource is Resource.WIKI_PAGE:
                ctx.wiki_ids[change.address] = change.syn_id
            else:
                ctx.ids[change.address] = change.syn_id

    def apply(self, ctx: ApplyContext, change: Change) -> str:
        if change.resource is Resource.WIKI_ORDER:
            return self.set_order(ctx, change)
        if change.action is Action.CREATE:
            return self.create(ctx, change)
        return self.update(ctx, change)

    def create(self, ctx: ApplyContext, change: Change) -> str:
        desired = WikiPageDesired.from_json(change.desired)
        owner_id = ctx.id_of(desired.owner)
        with ctx.lock:
            parent_wiki = ctx.wiki_ids[desired.parent] if desired.parent else None
        title, markdown = desired.title, desired.markdown

        def attempt() -> WikiPage:
            try:
                return ctx.api.create_wiki(owner_id, title, markdown, parent_wiki)
            except Conflict as err:
                raise ctx.conflict(change, "a root wiki page appeared") from err

        def check() -> WikiPage | None:
            for header in ctx.api.wiki_headers(owner_id):
                if header.get("parentId") == parent_wiki and header.get("title") == title:
                    page = ctx.api.get_wiki(owner_id, str(header["id"]))
                    if page.get("markdown") == markdown:
                        return page
                    raise ctx.conflict(change, f"a page titled {title!r} appeared")
            return None

        page = ctx.resolve(f"create {change.address}", attempt, check)
        with ctx.lock:
            ctx.wiki_ids[change.address] = str(page["id"])
        return f"wiki {page['id']}"

    def update(self, ctx: ApplyContext, change: Change) -> str:
        desired = WikiPageDesired.from_json(change.desired)
        prior = WikiPagePrior.from_json(change.prior)
        owner_id = ctx.id_of(desired.owner)
        page = {
            **dict(prior.page or {}),
            "title": desired.title,
            "markdown": desired.markdown,
            "etag": prior.etag,
        }

        def attempt() -> WikiPage:
            try:
                return ctx.api.update_wiki(owner_id, page)
            except PreconditionFailed as err:
                raise ctx.conflict(change, "the wiki page changed (412)") from err

        def check() -> WikiPage | None:
            current = ctx.api.get_wiki(owner_id, str(page["id"]))
            if (
                current.get("title") == page["title"]
                and current.get("markdown") == page["markdown"]
            ):
                return current
            if current.get("etag") == prior.etag:
                return None
            raise ctx.conflict(change, "the wiki page changed while its update was unconfirmed")

        result = ctx.resolve(f"update {change.address}", attempt, check)
        with ctx.lock:
            ctx.wiki_ids[change.address] = str(result["id"])
        return f"wiki {result['id']}"

    def set_order(self, ctx: ApplyContext, change: Change) -> str:
        """Put the owner's wiki order hint; etag-guarded (the plan's, or for a root this apply
        created, the one read now)."""
        desired = WikiOrderDesired.from_json(change.desired)
        owner_id = ctx.id_of(desired.owner)
        with ctx.lock:
            pages = [ctx.wiki_ids[a] for a in desired.pages]
        wanted = [*pages, *desired.others]
        prior = EtagPrior.from_json(change.prior).etag
        etag = prior if prior is not None else ctx.api.wiki_order_hint(owner_id).get("etag")
        body = {"ownerId": owner_id, "ownerObjectType": "ENTITY", "idList": wanted, "etag": etag}

        def attempt() -> WikiOrderHint:
            try:
                return ctx.api.put_wiki_order_hint(owner_id, body)
            except PreconditionFailed as err:
                raise ctx.conflict(change, "the wiki page order changed (412)") from err

        def check() -> WikiOrderHint | None:
            current = ctx.api.wiki_order_hint(owner_id)
            if [str(i) for i in current.get("idList") or []] == wanted:
                return current
            if current.get("etag") == etag:
                return None
            raise ctx.conflict(change, "the wiki page order changed while unconfirmed")

        ctx.resolve(f"order wiki pages of {change.address}", attempt, check)
        return f"{len(pages)} page(s) ordered"


WIKI = WikiKind()
