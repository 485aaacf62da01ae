"""A segment's members as a spreadsheet (CSV or XLSX): id, name, phones, emails, when they
entered. Personal data is masked unless the reader's role may see it; the caller audits the
export."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.core.errors import ValidationFailedError
from siyu.profiles.facade import contacts
from siyu.segments import library
from siyu.segments.tables import SegmentMember

HEADER = ("profile_id", "姓名", "手机号", "邮箱", "进入时间")
XLSX_MAX_ROWS = 1_048_575  # Excel's limit, less the header
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@dataclass(frozen=True)
class MembersFile:
    filename: str
    media_type: str
    content: bytes
    rows: int


def members_file(scoped: Session, segment_id: str, fmt: str, *, mask: bool, timezone: str) -> MembersFile:
    segment = library.get_segment_row(scoped, segment_id)
    if fmt not in MEDIA_TYPES:
        raise ValidationFailedError("export as csv or xlsx", details={"path": "format"})
    entered = dict(
        scoped.execute(
            select(SegmentMember.profile_id, SegmentMember.entered_at).where(SegmentMember.segment_id == segment.id)
        ).all()
    )
    if fmt == "xlsx" and len(entered) > XLSX_MAX_ROWS:
        raise ValidationFailedError(f"{len(entered)} people do not fit in one sheet; export as csv")
    people = sorted(entered)
    found = contacts(scoped, people, mask=mask)
    zone = ZoneInfo(timezone)
    rows = [
        (
            p,
            found[p].display_name,
            " ".join(found[p].phones),
            " ".join(found[p].emails),
            _local(entered[p], zone),
        )
        for p in people
        if p in found
    ]
    content = _csv(rows) if fmt == "csv" else _xlsx(rows, segment.name)
    return MembersFile(f"{segment.id}.{fmt}", MEDIA_TYPES[fmt], content, len(rows))


def _local(at: datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def _csv(rows: Sequence[tuple[str, ...]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    writer.writerows(rows)
    # A BOM, so Excel opens the Chinese as UTF-8.
    return ("\ufeff" + out.getvalue()).encode()


def _xlsx(rows: Sequence[tuple[str, ...]], title: str) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=_sheet_title(title))
    sheet.append(HEADER)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _sheet_title(name: str) -> str:
    cleaned = "".join(" " if c in "[]:*?/\\" else c for c in name).strip()
    return (cleaned or "members")[:31]
