"""Short links: the public redirect ``/s/<code>`` (each click logged, a person's first counted,
bots and link previews never), and the console's links and QR codes made by hand."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from siyu.accounts.audit import record_audit
from siyu.api.deps import Analyst, DbDep, Operator, ScopedSessionDep, SettingsDep, client_ip
from siyu.api.errors import COMMON_ERRORS
from siyu.core.clock import utcnow
from siyu.storage.scoping import Scope
from siyu.tracking import facade
from siyu.tracking.facade import LinkCounts, LinkPublic

router = APIRouter(tags=["links"], responses=COMMON_ERRORS)

ChannelName = Literal["", "sms", "email", "wechat_oa", "miniprogram", "wecom", "app_push", "webhook", "offline"]


class LinkIn(BaseModel):
    kind: Literal["qr", "link"] = "qr"
    name: str = Field(max_length=80, description="where it is used: 包裹卡, 门店海报…")
    target: str = Field(max_length=2000, description="the http(s) address it leads to")
    channel: ChannelName = Field(default="", description="the channel it is handed out on (utm_medium)")
    source: str = Field(default="", max_length=100, description="what it belongs to, e.g. campaign:cmp_…")
    utm_campaign: str = Field(default="", max_length=100)
    utm_content: str = Field(default="", max_length=100)


class LinkOut(BaseModel):
    code: str
    kind: str
    name: str
    target: str
    source: str
    channel: str
    short_url: str
    created_at: datetime
    requests: int = Field(description="every request, bots and replays included")
    clicks: int = Field(description="people who opened it, each once")
    bots: int = Field(description="crawlers and link previews")


def _out(link: LinkPublic, public_url: str, counts: dict[str, LinkCounts]) -> LinkOut:
    c = counts[link.code]
    return LinkOut(
        code=link.code,
        kind=link.kind,
        name=link.name,
        target=link.target,
        source=link.source,
        channel=link.channel,
        short_url=facade.short_url(public_url, link.code),
        created_at=link.created_at,
        requests=c.requests,
        clicks=c.clicks,
        bots=c.bots,
    )


@router.get("/s/{code}", include_in_schema=False)
async def follow(code: str, request: Request, db: DbDep, settings: SettingsDep) -> Response:
    """Redirect to where the link leads and log the click. An unknown or altered code is a plain
    404 that counts nothing."""
    user_agent = request.headers.get("user-agent", "")
    ip = client_ip(request) or ""

    def work() -> str | None:
        with db.read(Scope.unscoped_system()) as system:
            link = facade.target_of(system, code)
            if link is None:
                return None
            workspace_id, target = link.workspace_id, link.target
        with db.transaction(Scope.workspace(workspace_id)) as scoped:
            row = facade.link_row(scoped, code)
            facade.record_click(scoped, row, ip=ip, user_agent=user_agent, secret_key=settings.secret_key, at=utcnow())
        return target

    target = await run_in_threadpool(work)
    if target is None:
        return PlainTextResponse("not found", status_code=404)
    return RedirectResponse(
        target, status_code=302, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    )


@router.get("/api/v1/links", response_model=list[LinkOut])
def list_links(
    principal: Analyst,
    session: ScopedSessionDep,
    settings: SettingsDep,
    source: Annotated[str | None, Query(max_length=100)] = None,
) -> list[LinkOut]:
    """Links and QR codes made by hand, newest first, with their clicks."""
    found = facade.list_links(session, source=source)
    counts = facade.link_counts(session, [link.code for link in found])
    return [_out(link, settings.public_url, counts) for link in found]


@router.post("/api/v1/links", response_model=LinkOut, status_code=201)
def create_link(body: LinkIn, principal: Operator, session: ScopedSessionDep, settings: SettingsDep) -> LinkOut:
    """A tracked link for a QR code (a package insert, a poster, a counter) or to share."""
    utm = {
        "utm_source": "siyu",
        "utm_medium": body.channel or ("offline" if body.kind == "qr" else ""),
        "utm_campaign": body.utm_campaign,
        "utm_content": body.utm_content,
    }
    link = facade.create_link(
        session,
        kind=body.kind,
        target=body.target,
        name=body.name,
        channel=body.channel,
        source=body.source,
        utm=utm,
        actor_id=principal.actor_id,
    )
    record_audit(
        session, principal, "link.create", target_type="link", target_id=link.code, details={"name": link.name}
    )
    return _out(link, settings.public_url, facade.link_counts(session, [link.code]))


@router.get("/api/v1/links/{code}", response_model=LinkOut)
def get_link(code: str, principal: Analyst, session: ScopedSessionDep, settings: SettingsDep) -> LinkOut:
    link = facade.get_link(session, code)
    return _out(link, settings.public_url, facade.link_counts(session, [link.code]))


@router.get(
    "/api/v1/links/{code}/qr",
    responses={200: {"content": {"image/svg+xml": {}, "image/png": {}}}},
    response_class=Response,
)
def qr_code(
    code: str,
    principal: Analyst,
    session: ScopedSessionDep,
    settings: SettingsDep,
    format: Literal["svg", "png"] = "svg",
    scale: Annotated[int, Query(ge=1, le=40)] = 8,
) -> Response:
    """The link's QR code: SVG for print, PNG for screens."""
    link = facade.get_link(session, code)
    image = facade.qr_image(facade.short_url(settings.public_url, link.code), format, scale)
    filename = f"qr-{link.code}.{format}"
    return Response(
        image, media_type=facade.MEDIA_TYPES[format], headers={"Content-Disposition": f'inline; filename="{filename}"'}
    )
