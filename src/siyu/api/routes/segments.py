"""Segments: the library, a live preview of a rule as it is written, static segments (given
their people or frozen from another), members, size history, overlap, and refreshing them."""

from __future__ import annotations

import shutil
import tempfile
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field

from siyu.accounts.audit import record_audit
from siyu.accounts.facade import get_workspace
from siyu.analytics.facade import (
    preview_rule,
    request_run,
    rule_catalog,
    segments_schedule,
    set_segments_schedule,
)
from siyu.api.deps import Admin, Analyst, Operator, ScopedSessionDep, SettingsDep
from siyu.api.errors import COMMON_ERRORS
from siyu.api.paths import SegmentId
from siyu.api.routes.analytics import RunOut
from siyu.api.schemas import PagePublic
from siyu.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from siyu.profiles.facade import profile_summaries
from siyu.segments import facade
from siyu.segments.audiences import ID_TYPES
from siyu.segments.contracts import SegmentDraft, SegmentPublic
from siyu.storage.scoping import require_workspace

router = APIRouter(prefix="/api/v1/segments", tags=["segments"], responses=COMMON_ERRORS)


class SegmentIn(BaseModel):
    name: str = Field(max_length=80)
    kind: Literal["dynamic", "static"] = "dynamic"
    description: str = Field(default="", max_length=500)
    rule: dict[str, Any] | None = Field(default=None, description="for dynamic segments: the rule")
    profile_ids: list[str] | None = Field(
        default=None, max_length=1_000_000, description="for static segments: its people"
    )

    def draft(self) -> SegmentDraft:
        return SegmentDraft(name=self.name, kind=self.kind, description=self.description, rule=self.rule)


class SegmentOut(BaseModel):
    id: str
    name: str
    kind: Literal["dynamic", "static"]
    description: str
    rule: dict[str, Any] | None
    frozen_from: str | None
    people: int
    refreshed_at: datetime | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, segment: SegmentPublic) -> SegmentOut:
        return cls.model_validate(segment.__dict__)


class RuleIn(BaseModel):
    rule: dict[str, Any]


class PersonOut(BaseModel):
    profile_id: str
    display_name: str | None = Field(description="masked for roles that do not see personal data")


class PreviewOut(BaseModel):
    people: int = Field(description="how many people the rule selects")
    everyone: int = Field(description="of the workspace's people")
    sample: list[PersonOut]
    as_of: datetime | None = Field(description="the moment the data counted is current to")
    ms: int


class SegmentMemberOut(BaseModel):
    profile_id: str
    display_name: str | None
    entered_at: datetime


class SizeOut(BaseModel):
    day: date
    people: int
    entered: int
    exited: int


class FreezeIn(BaseModel):
    name: str = Field(max_length=80)


class OverlapOut(BaseModel):
    a: int
    b: int
    both: int


def _people(session: Any, principal: Any, ids: list[str]) -> dict[str, str | None]:
    mask = not principal.role.sees_personal_data
    return {p.id: p.display_name for p in profile_summaries(session, ids, mask=mask)}


def _audit(session: Any, principal: Any, action: str, segment: SegmentPublic) -> None:
    details = {"name": segment.name, "kind": segment.kind}
    record_audit(session, principal, action, target_type="segment", target_id=segment.id, details=details)


@router.get("", response_model=list[SegmentOut])
def list_segments(
    principal: Analyst,
    session: ScopedSessionDep,
    kind: Annotated[Literal["dynamic", "static"] | None, Query()] = None,
) -> list[SegmentOut]:
    return [SegmentOut.of(s) for s in facade.list_segments(session, kind)]


@router.post("", response_model=SegmentOut, status_code=201)
def create_segment(
    body: SegmentIn, principal: Operator, session: ScopedSessionDep, settings: SettingsDep
) -> SegmentOut:
    """A dynamic segment's rule is checked against the workspace's traits, events, tags, groups,
    stages and segments; anything unknown or malformed is refused with its place in the rule. Its
    members come with the next batch run (or POST /refresh)."""
    segment = facade.create_segment(
        session, body.draft(), rule_catalog(session, settings.data_dir), principal.actor_id, body.profile_ids
    )
    record_audit(
        session,
        principal,
        "segment.create",
        target_type="segment",
        target_id=segment.id,
        details={"name": segment.name},
    )
    return SegmentOut.of(segment)


class RejectedListRowOut(BaseModel):
    row: int = Field(description="1-based, the header excluded")
    value: str
    reason: str


class ListOut(BaseModel):
    segment: SegmentOut
    rows: int = Field(description="rows in the file")
    people: int = Field(description="people in the segment (each once)")
    rejected_count: int
    rejected: list[RejectedListRowOut] = Field(description="the first 100 rejected rows")


@router.post("/file", response_model=ListOut, status_code=201)
def segment_from_file(
    principal: Operator,
    session: ScopedSessionDep,
    name: Annotated[str, Form(max_length=80)],
    file: Annotated[UploadFile, File(description="CSV, XLSX, JSONL or Parquet: one identifier per row")],
    kind: Annotated[str, Form(description="profile_id, phone, email, member_no, user_id, unionid, …")] = "phone",
    column: Annotated[str | None, Form(description="the column of identifiers; the first when empty")] = None,
) -> ListOut:
    """An uploaded list: a static segment of the people the file names (to send a campaign to).
    Every row is accounted for; a file that names nobody known is refused."""
    suffix = Path(file.filename or "list.csv").suffix or ".csv"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"list{suffix}"
        with path.open("wb") as out:
            shutil.copyfileobj(file.file, out)
        done = facade.segment_from_file(
            session, name, path, kind, column or None, principal.actor_id, description=f"上传名单 {file.filename or ''}"
        )
    _audit(session, principal, "segment.file", done.segment)
    return ListOut(
        segment=SegmentOut.of(done.segment),
        rows=done.rows,
        people=done.people,
        rejected_count=len(done.rejected),
        rejected=[RejectedListRowOut(**r.__dict__) for r in done.rejected[:100]],
    )


@router.post("/preview", response_model=PreviewOut)
def preview(body: RuleIn, principal: Analyst, session: ScopedSessionDep, settings: SettingsDep) -> PreviewOut:
    """How many people a rule selects now, and a few of them: the builder's live count."""
    found = preview_rule(session, settings.data_dir, body.rule)
    names = _people(session, principal, found.sample)
    return PreviewOut(
        people=found.people,
        everyone=found.everyone,
        sample=[PersonOut(profile_id=p, display_name=names.get(p)) for p in found.sample],
        as_of=found.as_of,
        ms=found.ms,
    )


@router.post("/refresh", response_model=RunOut, status_code=202)
def refresh(principal: Operator, session: ScopedSessionDep, settings: SettingsDep) -> RunOut:
    """Refresh every dynamic segment now: a batch run of scope ``segments``."""
    return RunOut.of(request_run(session, principal.actor_id, settings.data_dir, scope="segments"))


class ScheduleIO(BaseModel):
    cron: str | None = Field(
        max_length=120, description="cron in the workspace's time zone; null: only after full runs and on demand"
    )
    next_run_at: datetime | None = None


@router.get("/schedule", response_model=ScheduleIO)
def get_schedule(principal: Analyst, session: ScopedSessionDep) -> ScheduleIO:
    """When dynamic segments are refreshed between full batch runs (which refresh them too)."""
    found = segments_schedule(session)
    return ScheduleIO(cron=found.cron if found else None, next_run_at=found.next_run_at if found else None)


@router.put("/schedule", response_model=ScheduleIO)
def put_schedule(body: ScheduleIO, principal: Admin, session: ScopedSessionDep, settings: SettingsDep) -> ScheduleIO:
    timezone = get_workspace(session, require_workspace(session)).timezone
    found = set_segments_schedule(session, body.cron, timezone, settings.data_dir)
    record_audit(session, principal, "segment.schedule", details={"cron": body.cron})
    on = found is not None and found.enabled
    return ScheduleIO(
        cron=found.cron if on and found else None, next_run_at=found.next_run_at if on and found else None
    )


@router.get("/overlap", response_model=OverlapOut)
def overlap(
    principal: Analyst,
    session: ScopedSessionDep,
    a: Annotated[str, Query(max_length=32)],
    b: Annotated[str, Query(max_length=32)],
) -> OverlapOut:
    """How many people are in each of two segments, and in both."""
    found = facade.segment_overlap(session, a, b)
    return OverlapOut(a=found[0], b=found[1], both=found[2])


@router.get("/{segment_id}", response_model=SegmentOut)
def get_segment(segment_id: SegmentId, principal: Analyst, session: ScopedSessionDep) -> SegmentOut:
    return SegmentOut.of(facade.get_segment(session, segment_id))


@router.put("/{segment_id}", response_model=SegmentOut)
def update_segment(
    segment_id: SegmentId, body: SegmentIn, principal: Operator, session: ScopedSessionDep, settings: SettingsDep
) -> SegmentOut:
    segment = facade.update_segment(session, segment_id, body.draft(), rule_catalog(session, settings.data_dir))
    record_audit(
        session,
        principal,
        "segment.update",
        target_type="segment",
        target_id=segment.id,
        details={"name": segment.name},
    )
    return SegmentOut.of(segment)


@router.delete("/{segment_id}", status_code=204)
def delete_segment(segment_id: SegmentId, principal: Operator, session: ScopedSessionDep) -> None:
    facade.delete_segment(session, segment_id)
    record_audit(session, principal, "segment.delete", target_type="segment", target_id=segment_id)


@router.post("/{segment_id}/freeze", response_model=SegmentOut, status_code=201)
def freeze(segment_id: SegmentId, body: FreezeIn, principal: Operator, session: ScopedSessionDep) -> SegmentOut:
    """A static snapshot of the segment's members now."""
    segment = facade.freeze_segment(session, segment_id, body.name, principal.actor_id)
    record_audit(
        session,
        principal,
        "segment.freeze",
        target_type="segment",
        target_id=segment.id,
        details={"from": segment_id, "people": segment.people},
    )
    return SegmentOut.of(segment)


@router.get("/{segment_id}/members", response_model=PagePublic[SegmentMemberOut])
def members(
    segment_id: SegmentId,
    principal: Analyst,
    session: ScopedSessionDep,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> PagePublic[SegmentMemberOut]:
    page = facade.segment_members(session, segment_id, cursor, limit)
    names = _people(session, principal, [m.profile_id for m in page.items])
    return PagePublic(
        items=[
            SegmentMemberOut(profile_id=m.profile_id, display_name=names.get(m.profile_id), entered_at=m.entered_at)
            for m in page.items
        ],
        next_cursor=page.next_cursor,
    )


@router.get("/{segment_id}/sizes", response_model=list[SizeOut])
def sizes(
    segment_id: SegmentId, principal: Analyst, session: ScopedSessionDep, days: Annotated[int, Query(ge=1, le=730)] = 90
) -> list[SizeOut]:
    return [SizeOut(**p.__dict__) for p in facade.segment_sizes(session, segment_id, days)]


class AudienceReportOut(BaseModel):
    platform: str
    id_type: str
    members: int
    included: int = Field(description="people in the file")
    ids: int = Field(description="lines (a person may bring several identifiers)")
    excluded: dict[str, int] = Field(description="people left out, by reason")


@router.get(
    "/{segment_id}/export",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}, "application/vnd.ms-excel": {}}}},
)
def export(
    segment_id: SegmentId,
    principal: Analyst,
    session: ScopedSessionDep,
    format: Annotated[Literal["csv", "xlsx"], Query()] = "csv",
) -> Response:
    """The members as a spreadsheet: id, name, phones, emails, when they entered. Personal data is
    masked unless the reader's role may see it; every export is in the audit log."""
    mask = not principal.role.sees_personal_data
    timezone = get_workspace(session, require_workspace(session)).timezone
    done = facade.members_file(session, segment_id, format, mask=mask, timezone=timezone)
    record_audit(
        session,
        principal,
        "segment.export",
        target_type="segment",
        target_id=segment_id,
        details={"format": format, "rows": done.rows, "masked": mask},
    )
    return Response(
        done.content,
        media_type=done.media_type,
        headers={"Content-Disposition": f'attachment; filename="{done.filename}"'},
    )


PlatformQuery = Annotated[
    Literal["tencent", "oceanengine"], Query(description="tencent (腾讯广告) or oceanengine (巨量引擎)")
]
IdTypeQuery = Annotated[str, Query(max_length=40, description=f"by platform: {ID_TYPES}")]
AppIdQuery = Annotated[str | None, Query(max_length=64, description="for WX_OPENID: the app the openids belong to")]


@router.get("/{segment_id}/audience/report", response_model=AudienceReportOut)
def audience_report(
    segment_id: SegmentId,
    principal: Operator,
    session: ScopedSessionDep,
    platform: PlatformQuery,
    id_type: IdTypeQuery,
    app_id: AppIdQuery = None,
) -> AudienceReportOut:
    """Who an audience file would hold, and who it would leave out and why — before exporting."""
    done = facade.audience_file(session, segment_id, platform, id_type, app_id)
    return AudienceReportOut(
        platform=done.platform,
        id_type=done.id_type,
        members=done.members,
        included=done.included,
        ids=done.ids,
        excluded=done.excluded,
    )


@router.get("/{segment_id}/audience", response_class=Response, responses={200: {"content": {"application/zip": {}}}})
def audience(
    segment_id: SegmentId,
    principal: Operator,
    session: ScopedSessionDep,
    platform: PlatformQuery,
    id_type: IdTypeQuery,
    app_id: AppIdQuery = None,
) -> Response:
    """The audience file to upload to the ad platform (a zip, hashed as the platform specifies),
    holding only people with audience-upload consent; the counts are in the X-Audience-* headers
    and the audit log."""
    done = facade.audience_file(session, segment_id, platform, id_type, app_id)
    record_audit(
        session,
        principal,
        "segment.audience_export",
        target_type="segment",
        target_id=segment_id,
        details={"platform": platform, "id_type": id_type, "included": done.included, "excluded": done.excluded},
    )
    excluded = ";".join(f"{k}={v}" for k, v in done.excluded.items())
    return Response(
        done.content,
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{done.filename}"',
            "X-Audience-Included": str(done.included),
            "X-Audience-Excluded": excluded,  # reasons are plain ASCII
        },
    )
