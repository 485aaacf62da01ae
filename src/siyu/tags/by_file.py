"""A manual tag put on (or taken off) the people a file names (see ``ingest.people_file``). Every
row is accounted for: tagged, already tagged, or rejected with its row number and why."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from siyu.ingest.people_file import FileRows, RejectedRow, people_batches
from siyu.tags.contracts import FileTagged
from siyu.tags.membership import tag_people, untag_people
from siyu.tags.tables import Tag


def tag_by_file(
    scoped: Session, tag: Tag, path: Path, kind: str, column: str | None, actor_id: str | None, *, remove: bool = False
) -> FileTagged:
    """Put ``tag`` on (``remove``: take it off) the people of the file's ``column`` (the first
    column when None), read as identifiers of ``kind``."""
    rejected: list[RejectedRow] = []
    counted = FileRows()
    changed = already = 0
    for found in people_batches(scoped, path, kind, column, rejected, counted):
        if found:
            done = (
                untag_people(scoped, tag, found, actor_id)
                if remove
                else tag_people(scoped, tag, found, actor_id, "import")
            )
            changed += done.changed
            already += done.unchanged
    return FileTagged(counted.total, changed, already, rejected)
