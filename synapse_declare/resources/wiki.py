"""Wiki pages (matched by title path under the owner's root page) and their sub-page order.

Pages not in the manifest are left alone; title and markdown are managed. The sub-page order is
Synapse's wiki order hint, planned only when the manifest gives an order (two or more siblings).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..client.records import WikiOrderHint, WikiPage
from ..errors import Conflict, PreconditionFailed
from ..model import ContainerSpec, WikiSpec
from ..plan import Action, Change, FieldChange, Resource
from .base import Address, ApplyContext, BundleFlags, Operation, PlanContext, sub_address
from .exporting import Commented, ExportContext, WikiNode, slug
from .payloads import EtagPrior, WikiOrderDesired, WikiPageDesired, WikiPagePrior

if TYPE_CHECKING:
    from ..state import LiveContainer, LiveState


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

    def needs_certification(self, change: Change) -> bool:
        """Synapse lets only certified users create a wiki page, or change a folder's (a
        project's pages are open to its editors); the sub-page order needs no certification."""
        if change.resource is not Resource.WIKI_PAGE:
            return False
        return change.action is Action.CREATE or (
            change.action is Action.UPDATE and Address.parse(change.address).in_folder
        )

    def bundle_flags(self, spec: ContainerSpec, own_acl: bool) -> BundleFlags:
        return BundleFlags(root_wiki=spec.wiki is not None)

    def observe(self, spec: ContainerSpec, live: LiveContainer | None) -> dict[str, str | None]:
        """The root page id, each page's etag, the order hint's etag; and every declared page
        not there yet as absent — one made meanwhile makes the plan stale instead of apply
        adding a second page with the same title."""
        observed: dict[str, str | None] = {}
        if spec.wiki is None or live is None:
            return observed
        observed[sub_address(spec.address, "wiki")] = live.wiki_root_id
        for path, page in sorted(live.wiki_pages.items()):
            observed[sub_address(spec.address, f"wiki/{path}")] = page.etag
        for parts, _page in wiki_paths(spec.wiki):
            key = "/".join(parts)
            if parts and key not in live.wiki_pages:
                observed[sub_address(spec.address, f"wiki/{key}")] = None
        if live.wiki_order is not None:
            observed[sub_address(spec.address, "wiki-order")] = str(live.wiki_order.get("etag"))
        return observed

    def plan(self, spec: ContainerSpec, live: LiveState, ctx: PlanContext) -> list[Change]:
        """The container's pages (root first, depth first), then their order."""
        if spec.wiki is None:
            return []
        current = live.containers.get(spec.address)
        changes: list[Change] = []
        plan_pages(spec, spec.wiki, current, (), changes)
        plan_order(spec, spec.wiki, current, changes)
        return changes

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


def plan_pages(
    owner: ContainerSpec,
    page: WikiSpec,
    live: LiveContainer | None,
    path: tuple[str, ...],
    changes: list[Change],
) -> None:
    """The page at title ``path`` and, depth first, its sub-pages: created, updated (title or
    markdown), or unchanged (apply records the page id its sub-pages hang under)."""
    key = "/".join(path)
    address = sub_address(owner.address, "wiki" + (f"/{key}" if key else ""))
    parent_address = None
    if path:
        parent_key = "/".join(path[:-1])
        parent_address = sub_address(
            owner.address, "wiki" + (f"/{parent_key}" if parent_key else "")
        )
    depends = tuple(a for a in (owner.address, parent_address) if a)
    current = None if live is None else live.wiki_pages.get(key)
    if current is None:
        changes.append(
            Change(
                address=address,
                resource=Resource.WIKI_PAGE,
                action=Action.CREATE,
                syn_id=None,
                fields=(
                    FieldChange("title", None, page.title),
                    FieldChange(
                        "markdown", None, markdown_summary(page.markdown, page.markdown_source)
                    ),
                ),
                depends_on=depends,
                desired=WikiPageDesired(
                    owner.address, parent_address, page.title, page.markdown
                ).to_json(),
                reason="does not exist",
            )
        )
    else:
        fields: list[FieldChange] = []
        if current.title != page.title:
            fields.append(FieldChange("title", current.title, page.title))
        if current.markdown != page.markdown:
            fields.append(
                FieldChange(
                    "markdown",
                    markdown_summary(current.markdown, None),
                    markdown_summary(page.markdown, page.markdown_source),
                )
            )
        changes.append(
            Change(
                address=address,
                resource=Resource.WIKI_PAGE,
                action=Action.UPDATE if fields else Action.NO_OP,
                syn_id=current.id,
                fields=tuple(fields),
                depends_on=depends,
                desired=WikiPageDesired(
                    owner.address, parent_address, page.title, page.markdown
                ).to_json(),
                prior=WikiPagePrior(current.etag, current.raw if fields else None).to_json(),
                reason="differs from the manifest" if fields else "matches the manifest",
            )
        )
    for sub in page.pages:
        plan_pages(owner, sub, live, (*path, sub.title), changes)


def _sub_pages(page: WikiSpec, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Title paths of every sub-page, depth first, in manifest order."""
    found: list[tuple[str, ...]] = []
    for sub in page.pages:
        found.append((*path, sub.title))
        found.extend(_sub_pages(sub, (*path, sub.title)))
    return found


def plan_order(
    owner: ContainerSpec, wiki: WikiSpec, live: LiveContainer | None, changes: list[Change]
) -> None:
    """Sub-pages in the manifest's order, through Synapse's wiki order hint (``idList``: the
    web UI lists sibling pages in its order). Pages not in the manifest keep their relative
    order after the manifest's."""
    if not orders_siblings(wiki):
        return
    paths = _sub_pages(wiki)
    addresses = [sub_address(owner.address, "wiki/" + "/".join(p)) for p in paths]
    hint = live.wiki_order if live is not None else None
    ids = [
        live.wiki_pages["/".join(p)].id if live and "/".join(p) in live.wiki_pages else None
        for p in paths
    ]
    current = [str(i) for i in (hint or {}).get("idList") or []]
    known = [i for i in ids if i is not None]
    in_live_order = [i for i in current if i in set(known)]
    matches = None not in ids and in_live_order == known
    titles = ["/".join(p) for p in paths]
    before = None
    if current:
        by_id = {i: t for i, t in zip(ids, titles, strict=True) if i is not None}
        before = [by_id[i] for i in in_live_order]
    changes.append(
        Change(
            address=sub_address(owner.address, "wiki-order"),
            resource=Resource.WIKI_ORDER,
            action=Action.NO_OP if matches else (Action.UPDATE if hint else Action.CREATE),
            syn_id=None,
            fields=() if matches else (FieldChange("order", before, titles),),
            depends_on=(owner.address, *addresses),
            desired=WikiOrderDesired(
                owner.address,
                tuple(addresses),
                # Ids the manifest does not describe stay, after its pages, in their order.
                tuple(i for i in current if i not in set(known)),
            ).to_json(),
            prior=EtagPrior(hint.get("etag") if hint else None).to_json(),
            reason="matches the manifest" if matches else "sub-pages in the manifest's order",
        )
    )


def markdown_summary(markdown: str, source: str | None) -> str:
    """What a plan shows for markdown: its origin, size and a digest (never the text itself)."""
    lines = markdown.count("\n") + (1 if markdown and not markdown.endswith("\n") else 0)
    digest = hashlib.sha256(markdown.encode("utf-8")).hexdigest()[:12]
    origin = f"{source}, " if source else ""
    size = len(markdown.encode("utf-8"))
    plural = "" if lines == 1 else "s"
    return f"({origin}{lines} line{plural}, {size} bytes, sha256 {digest})"


def orders_siblings(wiki: WikiSpec) -> bool:
    """Whether the manifest gives an order to compare: some page has two or more sub-pages."""
    return len(wiki.pages) > 1 or any(orders_siblings(page) for page in wiki.pages)


def wiki_paths(
    spec: WikiSpec, prefix: tuple[str, ...] = ()
) -> Iterable[tuple[tuple[str, ...], WikiSpec]]:
    """Every page with its title path (the root's is empty), depth first."""
    yield prefix, spec
    for page in spec.pages:
        yield from wiki_paths(page, (*prefix, page.title))


WIKI = WikiKind()
