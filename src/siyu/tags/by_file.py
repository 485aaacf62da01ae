"""A manual tag put on (or taken off) the people a file names: CSV, XLSX, JSONL or Parquet with
a column of identifiers — profile ids, phones, emails, member numbers, user ids, unionids… Every
row is accounted for: tagged, already tagged, or rejected with its row number and why."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from siyu.core.errors import ValidationFailedError
from siyu.identity.contracts import Identifier, IdentifierKind
from siyu.identity.errors import InvalidIdentifierError
from siyu.identity.facade import owners_of
from siyu.identity.normalise import clean_cell, normalise
from siyu.ingest.facade import iter_rows
from siyu.profiles.facade import existing_profiles
from siyu.tags.contracts import FileTagged, RejectedRow
from siyu.tags.membership import tag_people, untag_people
from siyu.tags.tables import Tag

MAX_ROWS = 1_000_000
BATCH = 10_000
PROFILE_ID = "profile_id"
# Identifiers a file may name people by (scoped ones — openids — need their app id: not here).
KINDS = (PROFILE_ID, "phone", "email", "member_no", "user_id", "unionid", "taobao_nick", "jd_pin", "douyin_buyer_id")


def tag_by_file(
    scoped: Session, tag: Tag, path: Path, kind: str, column: str | None, actor_id: str | None, *, remove: bool = False
) -> FileTagged:
    """Put ``tag`` on (``remove``: take it off) the people of the file's ``column`` (the first
    column when None), read as identifiers of ``kind``."""
    if kind not in KINDS:
        raise ValidationFailedError(f"identify people by one of {', '.join(KINDS)}", details={"path": "kind"})
    rejected: list[RejectedRow] = []
    total = changed = already = 0
    pending: list[tuple[int, str, str | Identifier]] = []

    def flush() -> None:
        nonlocal changed, already
        found = _resolve(scoped, kind, pending, rejected)
        if found:
            done = (
                untag_people(scoped, tag, found, actor_id)
                if remove
                else tag_people(scoped, tag, found, actor_id, "import")
            )
            changed += done.changed
            already += done.unchanged
        pending.clear()

    for number, row in iter_rows(path):
        total += 1
        if total > MAX_ROWS:
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
            flush()
    flush()
    return FileTagged(total, changed, already, rejected)


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
