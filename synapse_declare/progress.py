"""Progress callbacks: the core reports, the edge (CLI) presents. The base class is a no-op."""

from __future__ import annotations

from .plan import Change


class Progress:
    """Called by the applier from worker threads; implementations must be thread-safe."""

    def start(self, change: Change, index: int, total: int) -> None:
        """A change is about to be applied."""

    def done(self, change: Change, detail: str) -> None:
        """A change was applied (``detail``: e.g. the new Synapse id)."""

    def failed(self, change: Change, error: BaseException) -> None:
        """A change failed; apply stops starting new changes."""

    def note(self, message: str) -> None:
        """Something worth telling the user (a retry, a resolved ambiguity)."""
