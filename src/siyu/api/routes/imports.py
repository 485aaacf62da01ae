"""File imports: upload an order export (Taobao/Tmall, JD, Douyin, Youzan, or any file with a
column mapping), watch its progress, download the rejected rows with their reasons."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel

from siyu.accounts.audit import record_audit
from siyu.api.deps import Analyst, Operator, ScopedSessionDep, SettingsDep
from siyu.api.errors import COMMON_ERRORS
from siyu.api.paths import ImportId
from siyu.api.schemas import PagePublic
from siyu.core.errors import ValidationFailedError
from siyu.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from siyu.ingest.imports import facade
from siyu.ingest.imports.presets import PRESETS

router = APIRouter(prefix="/api/v1/imports", tags=["imports"], responses=COMMON_ERRORS)


class ImportOut(BaseModel):
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


class PresetOut(BaseModel):
    name: str
    platform: str
    description: str


@router.get("/presets", response_model=list[PresetOut])
def presets(principal: Analyst) -> list[PresetOut]:
    """The marketplace export formats siyu reads without a mapping."""
    return [PresetOut(name=p.name, platform=p.platform, description=p.description) for p in PRESETS.values()]


@router.post("", response_model=ImportOut, status_code=202)
def upload(
    principal: Operator,
    session: ScopedSessionDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="CSV, XLSX, JSONL or Parquet")],
    preset: Annotated[str, Form(description="taobao, jd, douyin, youzan or custom")] = "taobao",
    options: Annotated[str, Form(description='JSON, for custom: {"platform","buyer_kind","mapping"}')] = "{}",
) -> ImportOut:
    """Queue the file; a worker imports it. Poll the import for progress."""
    try:
        parsed: Any = json.loads(options or "{}")
    except json.JSONDecodeError as exc:
        raise ValidationFailedError("options is not valid JSON") from exc
    if not isinstance(parsed, dict):
        raise ValidationFailedError("options must be a JSON object")
    queued = facade.queue_import(
        session,
        data_dir=settings.data_dir,
        filename=file.filename or "upload",
        stream=file.file,
        preset=preset,
        options=parsed,
        created_by=principal.actor_id,
    )
    record_audit(
        session,
        principal,
        "import.queue",
        target_type="import",
        target_id=queued.id,
        details={"filename": queued.filename, "preset": preset},
    )
    return ImportOut(**queued.__dict__)


@router.get("", response_model=PagePublic[ImportOut])
def list_imports(
    principal: Analyst,
    session: ScopedSessionDep,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> PagePublic[ImportOut]:
    page = facade.list_imports(session, cursor=cursor, limit=limit)
    return PagePublic(items=[ImportOut(**i.__dict__) for i in page.items], next_cursor=page.next_cursor)


@router.get("/{import_id}", response_model=ImportOut)
def get_import(import_id: ImportId, principal: Analyst, session: ScopedSessionDep) -> ImportOut:
    return ImportOut(**facade.get_import(session, import_id).__dict__)


@router.get("/{import_id}/rejections.csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
def rejections_csv(import_id: ImportId, principal: Analyst, session: ScopedSessionDep) -> Response:
    """Rejected rows: row number (as in the file, header = 1) and the reason."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["row", "reason"])
    writer.writerows(facade.rejections(session, import_id))
    return Response(
        "\ufeff" + out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{import_id}-rejections.csv"'},
    )
