"""Progress callbacks: the core reports, the edge (CLI) presents. The base class is a no-op."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

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


class PlainProgress(Progress):
    """Line-based progress on stderr: ``[3/12] + folder 'P/Raw' ... ok (syn123, 40 ms)``."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self._lock = threading.Lock()
        self._started: dict[str, float] = {}
        self._finished = 0
        self._total = 0

    def start(self, change: Change, index: int, total: int) -> None:
        del index
        with self._lock:
            self._started[change.address] = time.perf_counter()
            self._total = total

    def done(self, change: Change, detail: str) -> None:
        self._line(change, f"ok ({detail})" if detail else "ok")

    def failed(self, change: Change, error: BaseException) -> None:
        self._line(change, f"FAILED: {str(error).splitlines()[0]}")

    def note(self, message: str) -> None:
        with self._lock:
            print(f"  note: {message}", file=self.stream, flush=True)

    def _line(self, change: Change, outcome: str) -> None:
        from .render import change_label

        with self._lock:
            started = self._started.pop(change.address, time.perf_counter())
            self._finished += 1
            index = f"[{self._finished}/{self._total}]"
            elapsed = (time.perf_counter() - started) * 1000
            print(
                f"{index} {change_label(change)} ... {outcome} [{elapsed:.0f} ms]",
                file=self.stream,
                flush=True,
            )
