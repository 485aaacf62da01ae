"""Run an import: stream rows, convert them with a preset, sync them as orders in chunks, and
account for every row — accepted + rejected = total, each rejection with its row and reason.
Re-importing the same file changes nothing (orders come back "unchanged")."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from siyu.core.clock import utcnow
from siyu.identity.errors import InvalidIdentifierError
from siyu.ingest.imports.presets import Preset, RowError, convert
from siyu.ingest.imports.readers import iter_rows
from siyu.ingest.orders import OrderSync, sync_orders

CHUNK_ROWS = 500


@dataclass
class ImportReport:
    total: int = 0
    accepted: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    created: int = 0
    updated: int = 0
    unchanged: int = 0


def run_import(
    scoped_factory: Callable[[], AbstractContextManager[Session]],
    path: Path,
    preset: Preset,
    *,
    timezone: str = "Asia/Shanghai",
    fmt: str | None = None,
    progress: Callable[[ImportReport], None] | None = None,
) -> ImportReport:
    """``scoped_factory`` opens one workspace-scoped transaction per chunk (committed as it goes,
    so a large file streams in bounded memory and a crash loses at most one chunk of progress —
    re-running the import finishes it without duplicates)."""
    tz = ZoneInfo(timezone)
    report = ImportReport()
    chunk: list[tuple[int, OrderSync]] = []

    def flush() -> None:
        if not chunk:
            return
        with scoped_factory() as scoped:
            outcomes = sync_orders(scoped, [s for _n, s in chunk], utcnow())
        for (number, _sync), outcome in zip(chunk, outcomes, strict=True):
            if outcome.result == "rejected":
                report.rejected.append((number, outcome.reason or "rejected"))
            else:
                report.accepted += 1
                setattr(report, outcome.result, getattr(report, outcome.result) + 1)
        chunk.clear()
        if progress:
            progress(report)

    for number, row in iter_rows(path, fmt):
        report.total += 1
        try:
            c = convert(row, preset, tz)
            chunk.append((number, OrderSync(c.order, c.buyer_kind, c.buyer_id)))
        except (RowError, InvalidIdentifierError) as exc:
            report.rejected.append((number, str(exc)))
        if len(chunk) >= CHUNK_ROWS:
            flush()
    flush()
    return report
