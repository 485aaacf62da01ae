"""WeChat codes with a scene of their own: an official account's parametric QR code and a WeCom
「联系我」contact way, made through the channel account, with the people who followed, scanned
or added an employee through each (from the callbacks that carried its scene back)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from siyu.accounts.audit import record_audit
from siyu.api.deps import Analyst, DbDep, Operator, ScopedSessionDep, SettingsDep
from siyu.api.errors import COMMON_ERRORS
from siyu.channels import codes
from siyu.channels.tokens import DbTokenStore
from siyu.storage.scoping import Scope
from siyu.tracking.facade import MEDIA_TYPES, qr_image

router = APIRouter(prefix="/api/v1/channels/codes", tags=["channels"], responses=COMMON_ERRORS)


class CodeIn(BaseModel):
    kind: Literal["oa_qr", "wecom_contact"]
    name: str = Field(max_length=80, description="where it is used: 门店海报, 包裹卡, a campaign…")
    account_id: str | None = Field(default=None, max_length=32, description="the channel's default account if null")
    source: str = Field(default="", max_length=100, description="what it belongs to, e.g. campaign:cmp_…")
    permanent: bool = Field(default=False, description="an OA code: permanent, or for `days`")
    days: int = Field(default=30, ge=1, le=30, description="how long a temporary OA code lasts")
    staff: list[str] = Field(default_factory=list, max_length=100, description="a contact way: employees' userids")
    skip_verify: bool = Field(default=True, description="a contact way: add without the employee confirming")


class CodeOut(BaseModel):
    id: str
    kind: Literal["oa_qr", "wecom_contact"]
    name: str
    account_id: str
    scene: str = Field(description="the scene_str (OA) or state (WeCom) the callbacks carry back")
    source: str
    url: str = Field(description="what the QR code encodes")
    expires_at: datetime | None
    created_at: datetime
    sandbox: bool = Field(description="made by a sandbox account: not scannable in WeChat")
    staff: list[str]
    followed: int = Field(description="people who followed the account through it")
    scanned: int = Field(description="followers who scanned it")
    added: int = Field(description="people who added an employee through it")


def _out(c: codes.CodePublic, counts: dict[str, codes.CodeCounts]) -> CodeOut:
    n = counts.get(c.id, codes.CodeCounts(0, 0, 0))
    return CodeOut(
        id=c.id, kind=c.kind, name=c.name, account_id=c.account_id, scene=c.scene, source=c.source,
        url=c.url, expires_at=c.expires_at, created_at=c.created_at, sandbox=c.sandbox, staff=c.staff,
        followed=n.followed, scanned=n.scanned, added=n.added,
    )  # fmt: skip


@router.get("", response_model=list[CodeOut])
def list_codes(
    principal: Analyst,
    session: ScopedSessionDep,
    source: Annotated[str | None, Query(max_length=100)] = None,
) -> list[CodeOut]:
    found = codes.list_codes(session, source)
    counts = codes.code_counts(session, found)
    return [_out(c, counts) for c in found]


@router.post("", response_model=CodeOut, status_code=201)
def create_code(body: CodeIn, principal: Operator, db: DbDep, settings: SettingsDep) -> CodeOut:
    """Make the code with WeChat or WeCom (a sandbox account makes one locally). A provider's
    refusal answers 502 with its error code and message."""
    workspace_id = principal.workspace_id
    request = codes.CodeRequest(
        kind=body.kind, name=body.name, account_id=body.account_id, source=body.source, permanent=body.permanent,
        days=body.days, staff=tuple(body.staff), skip_verify=body.skip_verify,
    )  # fmt: skip
    tokens = DbTokenStore(db, workspace_id, settings.secret_key)
    made = codes.create_code(db, workspace_id, settings.secret_key, request, tokens, principal.actor_id)
    with db.transaction(Scope.workspace(workspace_id)) as session:
        record_audit(session, principal, "code.create", target_type="channel_code", target_id=made.id)
    return _out(made, {})


@router.get(
    "/{code_id}/qr", responses={200: {"content": {"image/svg+xml": {}, "image/png": {}}}}, response_class=Response
)
def qr(
    code_id: str,
    principal: Analyst,
    session: ScopedSessionDep,
    format: Literal["svg", "png"] = "png",
    scale: Annotated[int, Query(ge=1, le=40)] = 8,
) -> Response:
    """The code's QR image (what WeChat's own image shows): SVG for print, PNG for screens."""
    code = codes.get_code(session, code_id)
    filename = f"{code.kind}-{code.scene}.{format}"
    return Response(
        qr_image(code.url, format, scale),
        media_type=MEDIA_TYPES[format],
        headers={"Content-Disposition": f'inline; filename="{filename}"'},
    )
