"""Sizes and durations as people read them, in one place (plans, migration reports, progress)."""

from __future__ import annotations


def human_bytes(size: int) -> str:
    """``1536`` → ``1.5 KiB`` (binary units; whole bytes below 1 KiB)."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def human_seconds(seconds: float) -> str:
    """A rough duration: ``~40 s``, ``~12 min``, ``~2.5 h``."""
    if seconds < 90:
        return f"~{max(1, round(seconds))} s"
    if seconds < 5400:
        return f"~{round(seconds / 60)} min"
    return f"~{seconds / 3600:.1f} h"
