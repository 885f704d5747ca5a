"""Apply-side settings of a storage migration and its per-file report (JSON and CSV)."""

from __future__ import annotations

import csv
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..copypaths import (
    DEFAULT_MD5_MAX,
    DEFAULT_RELAY_MAX,
)
from ..errors import (
    MigrationError,
    VerificationError,
)
from ..units import human_bytes
from .index import MIN_PART_SIZE, MigrationIndex, Strategy

STATUSES = ("migrated", "already", "skipped", "failed", "source_changed", "not_attempted")
VERIFY_MODES = ("auto", "md5", "size", "none")
COPY_PATH_MODES = ("auto", "synapse")


@dataclass(frozen=True, slots=True)
class MigrationOptions:
    continue_on_error: bool = False
    # "auto" (copypaths.verification_plan: MD5 where cheap or proven by the transfer, size and
    # S3's part checksums for large copies), "md5" (stream every copy), "size", "none"
    verify: str = "auto"
    # 0: adaptive (the fewest parts, up to 5 GiB each); else per file max(this, ceil(size/10000))
    part_size: int = 0
    # Copies in flight. Twice the 3 request slots, so that S3 work overlaps other files' REST
    # calls; the client's limiter still keeps REST requests at 3 in flight.
    parallel: int = 6
    copy_path: str = "auto"  # "auto" (direct / relay / Synapse per file) or "synapse" only
    relay_max_bytes: int = DEFAULT_RELAY_MAX  # Synapse-storage files up to this are relayed
    md5_max_bytes: int = DEFAULT_MD5_MAX  # verify="auto": Synapse copies up to this get an MD5
    state_dir: Path = Path(".synapse-declare")  # where journals live
    report_json: Path | None = None
    report_csv: Path | None = None

    def validate(self) -> None:
        if self.verify not in VERIFY_MODES:
            raise MigrationError(
                f"unknown verify mode {self.verify!r}", hint=f"use one of {', '.join(VERIFY_MODES)}"
            )
        if self.copy_path not in COPY_PATH_MODES:
            raise MigrationError(
                f"unknown copy path {self.copy_path!r}",
                hint=f"use one of {', '.join(COPY_PATH_MODES)}",
            )
        if self.part_size and self.part_size < MIN_PART_SIZE:
            raise MigrationError(
                f"part size {self.part_size} is below S3's minimum of {MIN_PART_SIZE} bytes"
            )
        if self.parallel < 1:
            raise MigrationError("parallel must be at least 1")


@dataclass(slots=True)
class ReportRow:
    entity_id: str
    version: int
    name: str
    from_handle: str | None
    to_handle: str | None
    size: int | None
    status: str
    error: str = ""
    new_version: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in REPORT_FIELDS}


# The report's columns, in order: the row's fields as declared.
REPORT_FIELDS = tuple(f.name for f in dataclasses.fields(ReportRow))


@dataclass
class MigrationReport:
    container_id: str
    destination_id: int
    strategy: Strategy
    rows: list[ReportRow] = field(default_factory=list)
    bytes_copied: int = 0
    copies_made: int = 0
    copies_reused: int = 0
    elapsed_seconds: float = 0.0
    journal_path: str | None = None
    continue_on_error: bool = False

    @property
    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for row in self.rows:
            counts[row.status] = counts.get(row.status, 0) + 1
        return counts

    @property
    def ok(self) -> bool:
        """Nothing failed, changed under us, or was left unattempted."""
        counts = self.counts
        return not (counts["failed"] or counts["source_changed"] or counts["not_attempted"])

    @property
    def exit_ok(self) -> bool:
        """Whether apply may exit 0: ``ok``, or failures collected under continue_on_error."""
        return self.ok or (self.continue_on_error and not self.counts["not_attempted"])

    def failures(self) -> list[ReportRow]:
        return [r for r in self.rows if r.status in ("failed", "source_changed", "not_attempted")]

    def summary(self) -> str:
        counts = self.counts
        parts = [f"{counts[s]} {s.replace('_', ' ')}" for s in STATUSES if counts[s]]
        return (
            f"migration of {self.container_id} to storage location {self.destination_id}: "
            f"{', '.join(parts) or 'nothing to do'}; {self.copies_made} copies made "
            f"({human_bytes(self.bytes_copied)}), {self.copies_reused} reused"
        )

    def raise_for_failures(self) -> None:
        """Raise :class:`VerificationError` if a copy failed verification, else
        :class:`MigrationError` if anything failed or changed; do nothing when ``ok``."""
        if self.ok:
            return
        failures = self.failures()
        listed = "; ".join(
            f"{r.entity_id} v{r.version}: {r.status}{' (' + r.error + ')' if r.error else ''}"
            for r in failures[:5]
        )
        more = f" (and {len(failures) - 5} more)" if len(failures) > 5 else ""
        message = f"{self.summary()}. {listed}{more}"
        hint = "nothing was repointed for these items; see the report for every file"
        if any(r.error.startswith("VerificationError") for r in failures):
            raise VerificationError(message, hint=hint)
        raise MigrationError(message, hint=hint)

    def to_json(self) -> dict[str, Any]:
        return {
            "container_id": self.container_id,
            "destination_id": self.destination_id,
            "strategy": self.strategy.value,
            "ok": self.ok,
            "counts": self.counts,
            "bytes_copied": self.bytes_copied,
            "copies_made": self.copies_made,
            "copies_reused": self.copies_reused,
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "journal": self.journal_path,
            "rows": [r.to_json() for r in self.rows],
        }

    def write_json(self, path: Path) -> None:
        _write_atomic(path, json.dumps(self.to_json(), indent=2) + "\n")

    def write_csv(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(REPORT_FIELDS)
            for row in self.rows:
                writer.writerow(
                    ["" if getattr(row, n) is None else getattr(row, n) for n in REPORT_FIELDS]
                )
        tmp.replace(path)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


# ---------------------------------------------------------------------------------------------
# The run (apply side)


def pre_rows(index: MigrationIndex) -> list[ReportRow]:
    rows = [
        ReportRow(
            i.entity_id,
            i.version,
            i.file_name,
            i.file_handle_id,
            i.file_handle_id,
            i.size,
            "already",
        )
        for i in index.already
    ]
    rows += [
        ReportRow(
            s.entity_id, s.version, s.file_name, s.file_handle_id, None, s.size, "skipped", s.reason
        )
        for s in index.skipped
    ]
    return rows


def write_reports(report: MigrationReport, options: MigrationOptions) -> None:
    if options.report_json is not None:
        report.write_json(options.report_json)
    if options.report_csv is not None:
        report.write_csv(options.report_csv)
