"""Run an import: stream rows, convert them with a preset, sync them as orders in chunks, and
account for every row — accepted + rejected = total, each rejection with its row and reason.
Exports with one row per SKU (JD, Douyin) become one order per order number with its items; a
rejected order rejects each of its rows. Re-importing the same file changes nothing (orders come
back "unchanged"); created/updated/unchanged count orders."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from siyu.commerce.orders import ItemIn
from siyu.core.clock import utcnow
from siyu.identity.errors import InvalidIdentifierError
from siyu.ingest.imports.presets import Converted, Preset, RowError, convert
from siyu.ingest.imports.readers import iter_rows
from siyu.ingest.orders import OrderSync, sync_orders

CHUNK_ROWS = 500
REFRESH_FIRST_AT = 10_000


@dataclass
class ImportReport:
    total: int = 0
    accepted: int = 0
    rejected_count: int = 0
    # (row, reason) of rejected rows: all of them, or with ``on_rejected`` those not handed over yet.
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
    refresh_statistics: Callable[[], object] | None = None,
    on_rejected: Callable[[list[tuple[int, str]]], None] | None = None,
) -> ImportReport:
    """``scoped_factory`` opens one workspace-scoped transaction per chunk (committed as it goes,
    so a large file streams in bounded memory and a crash loses at most one chunk of progress —
    re-running the import finishes it without duplicates). ``refresh_statistics`` is called as
    the import grows (after 10,000 rows, 100,000, …) so the planner keeps finding orders by index.
    ``on_rejected`` takes rejected rows as they pile up (a chunk at a time), so that a file of
    mostly bad rows is not held in memory either; without it ``report.rejected`` keeps them all."""
    next_refresh = REFRESH_FIRST_AT
    tz = ZoneInfo(timezone)
    report = ImportReport()
    chunk: list[tuple[list[int], OrderSync]] = []
    group: tuple[list[int], Converted, list[ItemIn]] | None = None  # the order being collected

    def reject(rows: list[tuple[int, str]], *, hand_over: bool = False) -> None:
        report.rejected.extend(rows)
        report.rejected_count += len(rows)
        if on_rejected and report.rejected and (hand_over or len(report.rejected) >= CHUNK_ROWS):
            on_rejected(list(report.rejected))
            report.rejected.clear()

    def flush() -> None:
        nonlocal next_refresh
        if not chunk:
            reject([], hand_over=True)
            return
        with scoped_factory() as scoped:
            outcomes = sync_orders(scoped, [s for _n, s in chunk], utcnow())
        for (numbers, _sync), outcome in zip(chunk, outcomes, strict=True):
            if outcome.result == "rejected":
                reject([(n, outcome.reason or "rejected") for n in numbers])
            else:
                report.accepted += len(numbers)
                setattr(report, outcome.result, getattr(report, outcome.result) + 1)
        chunk.clear()
        reject([], hand_over=True)
        if progress:
            progress(report)
        if refresh_statistics and report.total >= next_refresh:
            refresh_statistics()
            next_refresh *= 10

    def close_group() -> None:
        nonlocal group
        if group is not None:
            numbers, c, items = group
            chunk.append((numbers, OrderSync(replace(c.order, items=items), c.buyer_kind, c.buyer_id)))
            group = None

    for number, row in iter_rows(path, fmt):
        report.total += 1
        try:
            c = convert(row, preset, tz)
        except (RowError, InvalidIdentifierError) as exc:
            reject([(number, str(exc))])
            continue
        if preset.rows_per_item and group is not None and group[1].order.order_no == c.order.order_no:
            group[0].append(number)  # another SKU of the same order: its order columns repeat
            if c.item is not None:
                group[2].append(c.item)
            continue
        close_group()
        if len(chunk) >= CHUNK_ROWS:
            flush()  # between orders, never inside one
        group = ([number], c, [c.item] if c.item is not None else [])
    close_group()
    flush()
    return report
