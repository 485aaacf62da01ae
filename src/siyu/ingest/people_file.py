"""A file that names people: CSV, XLSX, JSONL or Parquet with a column of identifiers — profile
ids, phones, emails, member numbers, user ids, unionids… read in batches of the people found,
every other row rejected with its row number and why."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from siyu.core.errors import ValidationFailedError
from siyu.identity.contracts import Identifier, IdentifierKind
from siyu.identity.errors import InvalidIdentifierError
from siyu.identity.facade import owners_of
from siyu.identity.normalise import clean_cell, normalise
from siyu.ingest.imports.readers import iter_rows
from siyu.profiles.facade import existing_profiles

MAX_ROWS = 1_000_000
BATCH = 10_000
PROFILE_ID = "profile_id"
# Identifiers a file may name people by (scoped ones — openids — need their app id: not here).
KINDS = (PROFILE_ID, "phone", "email", "member_no", "user_id", "unionid", "taobao_nick", "jd_pin", "douyin_buyer_id")


@dataclass(frozen=True)
class RejectedRow:
    row: int  # 1-based, header excluded
    value: str
    reason: str


@dataclass
class FileRows:
    total: int = 0


def people_batches(
    scoped: Session, path: Path, kind: str, column: str | None, rejected: list[RejectedRow], counted: FileRows
) -> Iterator[list[str]]:
    """The people of the file's ``column`` (the first column when None), read as identifiers of
    ``kind``, a batch at a time; rows naming no one go to ``rejected``, and ``counted`` counts
    every row."""
    if kind not in KINDS:
        raise ValidationFailedError(f"identify people by one of {', '.join(KINDS)}", details={"path": "kind"})
    pending: list[tuple[int, str, str | Identifier]] = []
    for number, row in iter_rows(path):
        counted.total += 1
        if counted.total > MAX_ROWS:
            raise ValidationFailedError(f"a file holds at most {MAX_ROWS:,} rows")
        if "__error__" in row:
            rejected.append(RejectedRow(number, "", str(row["__error__"])))
            continue
        if column is not None and column not in row:
            raise ValidationFailedError(f"the file has no column {column!r}", details={"columns": list(row)[:50]})
        raw = clean_cell(row[column] if column is not None else next(iter(row.values()), ""))
        if not raw:
            rejected.append(RejectedRow(number, "", "the cell is empty"))
            continue
        if kind == PROFILE_ID:
            pending.append((number, raw, raw))
        else:
            try:
                pending.append((number, raw, normalise(IdentifierKind(kind), raw)))
            except InvalidIdentifierError as exc:
                rejected.append(RejectedRow(number, raw, str(exc)))
                continue
        if len(pending) >= BATCH:
            yield _resolve(scoped, kind, pending, rejected)
            pending.clear()
    yield _resolve(scoped, kind, pending, rejected)


def _resolve(
    scoped: Session, kind: str, pending: list[tuple[int, str, str | Identifier]], rejected: list[RejectedRow]
) -> list[str]:
    """The people of the pending rows; rows naming no one go to ``rejected``."""
    if not pending:
        return []
    if kind == PROFILE_ID:
        alive = existing_profiles(scoped, [str(p[2]) for p in pending])
        owner = {p: p for p in alive}
    else:
        found = owners_of(scoped, [p[2] for p in pending if isinstance(p[2], Identifier)])
        owner = {str(k): v for k, v in found.items()}
    out: list[str] = []
    for number, raw, key in pending:
        person = owner.get(str(key))
        if person is None:
            rejected.append(RejectedRow(number, raw, "no one has this identifier"))
        else:
            out.append(person)
    return out
