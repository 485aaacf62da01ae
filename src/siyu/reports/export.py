"""A campaign's report as a spreadsheet (CSV with a BOM for Excel, or XLSX): one row per variant
and the total, then revenue by channel; money in yuan with two decimals, rates as percentages."""

from __future__ import annotations

import csv
import io

from openpyxl import Workbook

from siyu.reports.campaigns import CampaignReport, Funnel

HEADER = (
    "variant", "audience", "held out", "skipped", "sent", "delivered", "clicked", "page visitors", "page forms",
    "converted", "orders", "revenue (yuan)", "cost (yuan)", "delivery rate", "click rate", "conversion rate", "ROI",
    "P(best) click", "P(best) conversion",
)  # fmt: skip
CHANNEL_HEADER = ("channel", "converted", "orders", "revenue (yuan)")
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def _row(f: Funnel, report: CampaignReport) -> tuple[str, ...]:
    best_click = report.clicks.probability_best.get(f.key)
    best_conversion = report.conversions.probability_best.get(f.key)
    counts = (f.audience, f.held_out, f.skipped, f.sent, f.delivered, f.clicked, f.page_visitors, f.page_forms)
    return (
        f.key, *(str(n) for n in counts), str(f.converted), str(f.orders), _yuan(f.revenue_fen), _yuan(f.cost_fen),
        f"{f.delivery_rate:.2%}", f"{f.click_rate:.2%}", f"{f.conversion_rate:.2%}",
        "" if f.roi is None else f"{f.roi:.2%}",
        "" if best_click is None else f"{best_click:.1%}", "" if best_conversion is None else f"{best_conversion:.1%}",
    )  # fmt: skip


def report_file(report: CampaignReport, fmt: str) -> bytes:
    """The variants and the total, then (after an empty row) revenue by channel."""
    rows: list[tuple[str, ...]] = [_row(f, report) for f in [*report.variants, report.total]]
    rows += [(), CHANNEL_HEADER]
    rows += [(c.channel, str(c.converted), str(c.orders), _yuan(c.revenue_fen)) for c in report.channels]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(HEADER)
        writer.writerows(rows)
        return ("\ufeff" + out.getvalue()).encode()
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title="report")
    sheet.append(HEADER)
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
