"""Imports facade: queue a file, run it as a durable job with progress, list rejections."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.core.clock import utcnow
from siyu.core.errors import NotFoundError, ValidationFailedError
from siyu.core.pagination import Page
from siyu.ingest.imports.presets import PRESETS, Preset, custom_preset
from siyu.ingest.imports.readers import detect_format
from siyu.ingest.imports.tables import Import, ImportRejection
from siyu.jobs.contracts import JobSpec
from siyu.jobs.queue import enqueue
from siyu.storage.paging import newest_first
from siyu.storage.scoping import require_workspace

MAX_UPLOAD_BYTES = 2 * 1024**3


@dataclass(frozen=True)
class ImportPublic:
    id: str
    filename: str
    preset: str
    status: str
    total: int
    accepted: int
    rejected: int
    created: int
    updated: int
    unchanged: int
    error: str | None
    created_at: datetime
    finished_at: datetime | None


def to_public(row: Import) -> ImportPublic:
    return ImportPublic(
        row.id,
        row.filename,
        row.preset,
        row.status,
        row.total,
        row.accepted,
        row.rejected,
        row.created,
        row.updated,
        row.unchanged,
        row.error,
        row.created_at,
        row.finished_at,
    )


def preset_for(preset: str, options: dict[str, Any]) -> Preset:
    if preset == "custom":
        mapping = options.get("mapping")
        if not isinstance(mapping, dict) or not mapping:
            raise ValidationFailedError("a custom import needs a mapping of our fields to the file's columns")
        return custom_preset(str(options.get("platform") or "offline"), options.get("buyer_kind"), mapping)
    if preset not in PRESETS:
        raise ValidationFailedError(f"unknown preset {preset!r}; one of {', '.join(PRESETS)} or custom")
    return PRESETS[preset]


def queue_import(
    scoped: Session,
    *,
    data_dir: Path,
    filename: str,
    stream: BinaryIO,
    preset: str,
    options: dict[str, Any],
    created_by: str | None,
) -> ImportPublic:
    """Store the upload under ``data_dir`` and enqueue its processing."""
    preset_for(preset, options)  # refuse a bad preset or mapping before storing anything
    safe_name = Path(filename).name or "upload"
    detect_format(Path(safe_name))
    row = Import(filename=safe_name, path="", preset=preset, options=options, created_by=created_by)
    scoped.add(row)
    scoped.flush()
    target = data_dir / "imports" / require_workspace(scoped) / row.id / safe_name
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as out:
        shutil.copyfileobj(stream, out, length=1024 * 1024)
    if target.stat().st_size > MAX_UPLOAD_BYTES:
        target.unlink()
        raise ValidationFailedError("file is larger than 2 GB")
    row.path = str(target)
    enqueue(
        scoped,
        JobSpec(
            task="ingest.import",
            payload={"import_id": row.id},
            workspace_id=row.workspace_id,
            queue="imports",
            idempotency_key=f"import:{row.id}",
        ),
    )
    return to_public(row)


def list_imports(scoped: Session, *, cursor: str | None, limit: int) -> Page[ImportPublic]:
    return newest_first(scoped, select(Import), Import.id, cursor=cursor, limit=limit, convert=to_public)


def get_import(scoped: Session, import_id: str) -> ImportPublic:
    row = scoped.scalar(select(Import).where(Import.id == import_id))
    if row is None:
        raise NotFoundError("import not found")
    return to_public(row)


def rejections(scoped: Session, import_id: str) -> list[tuple[int, str]]:
    get_import(scoped, import_id)
    rows = scoped.execute(
        select(ImportRejection.row_number, ImportRejection.reason)
        .where(ImportRejection.import_id == import_id)
        .order_by(ImportRejection.row_number)
    ).all()
    return [(int(n), str(r)) for n, r in rows]


def mark(scoped: Session, import_id: str, **values: Any) -> None:
    row = scoped.scalar(select(Import).where(Import.id == import_id))
    if row is not None:
        for key, value in values.items():
            setattr(row, key, value)


def reset_rejections(scoped: Session, import_id: str) -> None:
    """A re-run (after a crash) starts its rejection list afresh; accepted rows are idempotent."""
    for old in scoped.scalars(select(ImportRejection).where(ImportRejection.import_id == import_id)):
        scoped.delete(old)


def add_rejections(scoped: Session, import_id: str, rejected: list[tuple[int, str]]) -> None:
    for number, reason in rejected:
        scoped.add(ImportRejection(import_id=import_id, row_number=number, reason=reason[:2000]))


def finished() -> datetime:
    return utcnow()
