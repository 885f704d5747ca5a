"""Presentation of plans and apply results: text (optionally coloured), JSON, Markdown.

Pure functions; every string that leaves here passes through ``redact_text``. Meaning never
depends on colour alone: each change carries its symbol (``+`` create, ``~`` update, ``=`` adopt,
``-`` delete, ``±`` replace, ``→`` migrate).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import IO, Any

from .model import PERMISSION_LEVELS
from .plan import (
    SYMBOLS,
    AccessConsequence,
    Action,
    Change,
    FieldChange,
    Leftover,
    LeftoverKind,
    Plan,
)
from .redact import redact_text
from .resources import registry
from .resources.base import Address

MARKDOWN_LIMIT = 60_000  # GitHub rejects comments over 65,536 characters

COLORS = {
    Action.CREATE: "\x1b[32m",
    Action.UPDATE: "\x1b[33m",
    Action.ADOPT: "\x1b[36m",
    Action.DELETE: "\x1b[31m",
    Action.REPLACE: "\x1b[35m",
    Action.MIGRATE: "\x1b[34m",
    Action.RESTORE: "\x1b[32m",
    Action.NO_OP: "",
}
RESET = "\x1b[0m"
BOLD = "\x1b[1m"


def use_color(mode: str, stream: IO[str]) -> bool:
    """``--color auto|always|never``; auto honours NO_COLOR, TERM=dumb and TTY detection."""
    if mode == "always":
        return True
    if mode == "never":
        return False
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def change_label(change: Change) -> str:
    symbol = SYMBOLS[change.action]
    kind = registry.kind_of(change.resource).label(change.resource)
    where = f" ({change.syn_id})" if change.syn_id else ""
    return f"{symbol} {kind} {_address_display(change.address)}{where}"


def _address_display(address: str) -> str:
    """``project:A/folder:B#wiki/Sub`` → ``"A/B" wiki "Sub"``."""
    parsed = Address.parse(address)
    wiki = parsed.sub or ""
    shown = '"' + parsed.display_path + '"'
    if wiki == "wiki-order":
        return shown + " sub-page order"
    if wiki.startswith("wiki"):
        sub = wiki[len("wiki") :].lstrip("/")
        shown += f" wiki {json.dumps(sub) if sub else '(root)'}"
    return shown


def _value(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, Mapping) and set(value) == {"type", "value"}:
        return f"{json.dumps(value['value'])} ({value['type']})"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "}"
    if isinstance(value, str):
        return json.dumps(value) if not value.startswith("(") else value
    return json.dumps(value)


def render_text(plan: Plan, *, color: bool = False, show_unchanged: bool = False) -> str:
    lines: list[str] = []

    def c(code: str, text: str) -> str:
        return f"{code}{text}{RESET}" if color and code else text

    lines.append(
        f"synapse-declare plan for {plan.target.endpoint} as {plan.target.user_name} "
        f"({plan.target.user_id})"
    )
    lines.append("")
    if plan.partial:
        lines.append(c(BOLD, partial_text(plan)))
        lines.append("")
    if plan.observe:
        lines.append(c(BOLD, OBSERVE_TEXT))
        lines.append("")
    if plan.public_access:
        # Before the changes, in bold red: the one thing a reviewer must not miss.
        lines.append(
            c("\x1b[1;31m", "WARNING: access for everyone (PUBLIC / AUTHENTICATED_USERS):")
        )
        lines.extend(c("\x1b[31m", f"  ! {line}") for line in plan.public_access)
        lines.append("")
    if plan.access_changes:
        lines.append("Effective access this plan changes (after inheritance):")
        lines.extend(f"  {access_change_text(a)}" for a in plan.access_changes)
        lines.append("")
    shown = [ch for ch in plan.changes if show_unchanged or ch.action is not Action.NO_OP]
    if not plan.has_changes:
        lines.append("No changes. Synapse matches the manifest.")
    for change in shown:
        header = f"  {change_label(change)}"
        lines.append(
            c(COLORS[change.action], header) + (f"  # {change.reason}" if change.reason else "")
        )
        acl_header = False
        for item in change.fields:
            acl_line = acl_change_text(item)
            if acl_line is not None:
                if not acl_header:
                    lines.append("      acl:")
                    acl_header = True
                lines.append(f"        {acl_line}")
                continue
            if item.before is None:
                mark = "+"
            elif item.after is None:
                mark = "-"
            else:
                mark = "~"
            if change.action in (Action.CREATE, Action.MIGRATE):
                lines.append(f"      {item.path} = {_value(item.after)}")
            elif change.action is Action.DELETE:
                # What goes with it (files, bytes, sub-folders): shown as is, not as a change.
                lines.append(f"      {item.path} = {_value(item.before)}")
            elif item.before is None:
                lines.append(f"      {mark} {item.path} = {_value(item.after)}")
            else:
                lines.append(
                    f"      {mark} {item.path}: {_value(item.before)} -> {_value(item.after)}"
                )
    if plan.leftovers:
        lines.append("")
        lines.append(f"Left alone ({LEFT_ALONE_WHY}):")
        lines.extend(f"  {leftover_text(item)}" for item in plan.leftovers)
    for warning in plan.warnings:
        lines.append("")
        lines.append(c("\x1b[33m", f"Warning: {warning}"))
    lines.append("")
    lines.append(c(BOLD, summary_line(plan)))
    return redact_text("\n".join(lines)) + "\n"


def acl_change_text(item: FieldChange) -> str | None:
    """``+ team:Curators: edit``, ``- user:jdoe``, ``~ AUTHENTICATED_USERS: view → download``
    for a per-principal ACL field (``acl.<principal>``); ``None`` for any other field."""
    if not item.path.startswith("acl."):
        return None
    principal = item.path[len("acl.") :]
    if item.before is None:
        return f"+ {principal}: {item.after}"
    if item.after is None:
        return f"- {principal}"
    return f"~ {principal}: {item.before} → {item.after}"


def _counted(entities: Sequence[tuple[str, str, str | None]]) -> str:
    counts: dict[str, int] = {}
    for _, kind, _ in entities:
        counts[kind] = counts.get(kind, 0) + 1
    return ", ".join(f"{n} {kind}{'s' if n != 1 else ''}" for kind, n in sorted(counts.items()))


def access_change_text(change: AccessConsequence) -> str:
    """``team:Center A gains DOWNLOAD on 14 folders``; ``PUBLIC gains READ on P/Releases and 3
    folders below it``; a single entity by its path."""
    verb = "gains" if change.gained else "loses"
    entities = change.entities
    first = entities[0][0]
    if len(entities) == 1:
        where = first
    elif all(path.startswith(first + "/") for path, _, _ in entities[1:]):
        where = f"{first} and {_counted(entities[1:])} below it"
    else:
        shown = ", ".join(path for path, _, _ in entities[:3])
        more = ", …" if len(entities) > 3 else ""
        where = f"{_counted(entities)} ({shown}{more})"
    access = frozenset(change.access)
    level = next((name for name, types in PERMISSION_LEVELS.items() if types == access), None)
    what = f"{level} ({', '.join(change.access)})" if level else ", ".join(change.access)
    if level == "administer":
        what = "administer (all access)"
    who = change.principal
    if change.members is not None:
        people = f"{change.members} member{'s' if change.members != 1 else ''}"
        who += f" ({people}, {change.invited} invited)" if change.invited else f" ({people})"
    via = ""
    if change.through:
        via = f" through {', '.join(change.through)}"
        if change.pending_invitation:
            via += " (once the invitation is accepted)"
    return f"{who} {verb} {what} on {where}{via}"


LEFT_ALONE_WHY = "under managed containers, not in the manifest; nothing is done to them"


def leftover_text(item: Leftover) -> str:
    """``· folder "P/Old" (syn12): not in the manifest``."""
    where = f" ({item.syn_id})" if item.syn_id else ""
    return f"· {item.kind.value.replace('_', ' ')} {_leftover_display(item)}{where}: {item.detail}"


def _leftover_display(item: Leftover) -> str:
    parsed = Address.parse(item.address)
    if item.kind is LeftoverKind.ANNOTATION and parsed.sub:
        key = parsed.sub.removeprefix("annotations.")
        return f'"{parsed.display_path}" {json.dumps(key)}'
    if item.kind is LeftoverKind.ACL:
        return f'"{parsed.display_path}"'
    return _address_display(item.address)


OBSERVE_TEXT = "OBSERVE: a drift report; nothing is written, and this plan can never be applied."


def partial_text(plan: Plan) -> str:
    parts = [f"--target {t}" for t in plan.targets] + [f"--exclude {e}" for e in plan.excludes]
    return f"PARTIAL plan ({' '.join(parts)}): the rest of the manifest is not planned."


def summary_line(plan: Plan) -> str:
    counts = plan.summary()
    parts = [
        f"{counts['create']} to create",
        f"{counts['update']} to update",
        f"{counts['adopt']} to adopt",
        f"{counts['delete']} to delete",
    ]
    if counts["migrate"]:
        parts.append(f"{counts['migrate']} to migrate")
    if counts["restore"]:
        parts.append(f"{counts['restore']} to restore from the trash")
    if counts["replace"]:
        parts.append(f"{counts['replace']} to replace")
    left = f"; {len(plan.leftovers)} left alone" if plan.leftovers else ""
    return f"Plan: {', '.join(parts)}; {counts['no-op']} unchanged{left}."


def render_json(plan: Plan) -> str:
    document = plan.to_json()
    # Same live state, same bytes: the time of planning stays in saved plan files only.
    document.pop("created_at", None)
    # Users and machines read the plan document; the applier-only payloads stay in plan files.
    for change in document["changes"]:
        change.pop("desired", None)
        change.pop("prior", None)
    return redact_text(json.dumps(document, indent=2, sort_keys=False)) + "\n"


def render_markdown(plan: Plan, *, limit: int = MARKDOWN_LIMIT) -> str:
    head = [
        "<!-- synapse-declare-plan -->",
        f"### synapse-declare plan: {summary_line(plan)}",
        "",
    ]
    # Warnings come first, so that a size-capped comment never loses them; access for everyone
    # right under the heading, before anything else.
    if plan.public_access:
        head.append("> [!WARNING]")
        head.append("> **Access for everyone (PUBLIC / AUTHENTICATED_USERS):**")
        head.extend(f"> - {_md(line)}" for line in plan.public_access)
        head.append("")
    if plan.access_changes:
        head.append("**Effective access this plan changes** (after inheritance):")
        head.extend(f"- {_md(access_change_text(a))}" for a in plan.access_changes)
        head.append("")
    head.extend([f"Target: `{plan.target.endpoint}` as `{plan.target.user_name}`", ""])
    if plan.partial:
        head.extend([f"> **{_md(partial_text(plan))}**", ""])
    if plan.observe:
        head.extend([f"> **{OBSERVE_TEXT}**", ""])
    for warning in plan.warnings:
        head.extend([f"> **Warning:** {_md(warning)}", ""])
    left = _markdown_leftovers(plan)
    if not plan.has_changes:
        head.append("No changes. Synapse matches the manifest.")
        return redact_text("\n".join([*head, *left])) + "\n"
    body: list[str] = ["| | resource | id | changes |", "|---|---|---|---|"]
    for change in plan.actionable:
        fields = "<br>".join(
            f"acl `{_md(acl_line)}`"
            if (acl_line := acl_change_text(f)) is not None
            else f"`{f.path}`: {_md(_value(f.before))} → {_md(_value(f.after))}"
            if change.action not in (Action.CREATE, Action.DELETE)
            else f"`{f.path}` = {_md(_value(_shown(change, f)))}"
            for f in change.fields
        )
        body.append(
            f"| `{SYMBOLS[change.action]}` {change.action.value} | "
            f"{_md(_address_display(change.address))} | {change.syn_id or ''} | {fields} |"
        )
    body.extend(left)
    text = "\n".join([*head, *body, ""])
    if len(text) > limit:
        kept: list[str] = []
        size = len("\n".join(head)) + 400
        for line in body:
            if size + len(line) + 1 > limit:
                break
            kept.append(line)
            size += len(line) + 1
        omitted = len(body) - len(kept)
        text = "\n".join(
            head
            + kept
            + [
                "",
                f"*… {omitted} more rows omitted to fit a pull-request comment; "
                "see the full plan in the job log or the saved plan file.*",
            ]
        )
    return redact_text(text) + "\n"


def _shown(change: Change, item: FieldChange) -> Any:
    """A created thing shows what it will be; a deleted one what goes with it."""
    return item.before if change.action is Action.DELETE else item.after


def _markdown_leftovers(plan: Plan) -> list[str]:
    if not plan.leftovers:
        return []
    return [
        "",
        f"**Left alone** ({len(plan.leftovers)}; {LEFT_ALONE_WHY}):",
        "",
        *(f"- {_md(leftover_text(item).removeprefix('· '))}" for item in plan.leftovers),
    ]


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_apply_summary(done: int, failed: list[tuple[str, str]], not_attempted: list[str]) -> str:
    lines = [
        f"Apply complete: {done} changed, {len(failed)} failed, {len(not_attempted)} not attempted."
    ]
    if failed or not_attempted:
        lines[0] = (
            f"Apply stopped: {done} done, {len(failed)} failed, {len(not_attempted)} not attempted."
        )
    for address, error in failed:
        lines.append(f"  failed: {_address_display(address)}: {error}")
    for address in not_attempted:
        lines.append(f"  not attempted: {_address_display(address)}")
    if failed or not_attempted:
        # No promise that a re-run converges: that holds only for transient failures (timeouts,
        # throttling, server errors), and plan already refuses what Synapse refuses predictably.
        lines.append(
            "Run 'synapse-declare plan' to see what remains. A failure caused by the network or "
            "by Synapse being unavailable clears on a re-run; any other needs the cause above "
            "fixed first."
        )
    return redact_text("\n".join(lines)) + "\n"
