"""Landing pages: the public page ``/p/<code>`` (each visit logged, bots marked; its form filed
once per form handed out, the phone and consent recorded with the text the person saw), and
the console's pages — edit, publish a version, archive, their numbers and forms."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field

from siyu.accounts.audit import record_audit
from siyu.api.deps import Analyst, DbDep, Operator, ScopedSessionDep, SettingsDep, client_ip
from siyu.api.errors import COMMON_ERRORS
from siyu.core.clock import utcnow
from siyu.landing import facade
from siyu.landing.facade import Form, FormRefusedError, PageDraft, PagePublic, PageStats
from siyu.storage.scoping import Scope

router = APIRouter(tags=["landing pages"], responses=COMMON_ERRORS)
HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Frame-Options": "SAMEORIGIN"}
Layout = Literal["signup", "coupon", "event"]


class ContentIn(BaseModel):
    title: str = Field(max_length=40)
    subtitle: str = Field(default="", max_length=80)
    body: str = Field(default="", max_length=1000)
    image_url: str = Field(default="", max_length=500, description="https")
    highlight: str = Field(default="", max_length=40, description="the coupon's value, the event's date…")
    button: str = Field(max_length=12)
    success: str = Field(max_length=200, description="shown once the form is sent")
    consent_text: str = Field(max_length=500, description="what the person agrees to; kept with each consent")
    color: str = Field(default="", max_length=7, description="#RRGGBB; the layout's own if empty")


class PageIn(BaseModel):
    name: str = Field(max_length=80)
    layout: Layout
    content: ContentIn


class PageOut(BaseModel):
    id: str
    code: str
    name: str
    layout: Layout
    content: dict[str, str]
    status: Literal["draft", "published", "archived"]
    version: int = Field(description="the published version visitors see; 0 before the first")
    url: str
    created_at: datetime
    updated_at: datetime
    visits: int = Field(description="requests by people, bots apart")
    visitors: int = Field(description="people, each once")
    bots: int
    submissions: int = Field(description="forms sent, each once")
    conversion_rate: float = Field(description="submissions / visitors")


class VersionOut(BaseModel):
    version: int
    layout: str
    content: dict[str, Any]
    published_at: datetime
    published_by: str | None


class SubmissionOut(BaseModel):
    id: str
    version: int = Field(description="the page version, and so the consent text, the person saw")
    profile_id: str | None
    identity_id: str
    utm_campaign: str
    utm_content: str
    at: datetime


def _url(public_url: str, code: str) -> str:
    return f"{public_url.rstrip('/')}/p/{code}"


def _out(p: PagePublic, public_url: str, stats: dict[str, PageStats]) -> PageOut:
    st = stats.get(p.id, PageStats(0, 0, 0, 0))
    return PageOut(
        id=p.id,
        code=p.code,
        name=p.name,
        layout=p.layout,
        content=p.content,
        status=p.status,
        version=p.version,
        url=_url(public_url, p.code),
        created_at=p.created_at,
        updated_at=p.updated_at,
        visits=st.visits,
        visitors=st.visitors,
        bots=st.bots,
        submissions=st.submissions,
        conversion_rate=st.conversion_rate,
    )


def _draft(body: PageIn) -> PageDraft:
    return PageDraft(body.name, body.layout, body.content.model_dump())


@router.get("/p/{code}", include_in_schema=False)
async def show(code: str, request: Request, db: DbDep, settings: SettingsDep) -> Response:
    """The page, with a fresh form token; the visit is logged. Unknown, unpublished or archived:
    a plain 404 that logs nothing."""
    user_agent, ip = request.headers.get("user-agent", ""), client_ip(request) or ""
    utm_campaign = request.query_params.get("utm_campaign", "")[:100]
    utm_content = request.query_params.get("utm_content", "")[:100]

    def work() -> str | None:
        with db.read(Scope.unscoped_system()) as system:
            found = facade.find_published(system, code)
            if found is None:
                return None
            page, version = found
            workspace_id, page_id, number = page.workspace_id, page.id, version.version
            layout, content = version.layout, dict(version.content)
        with db.transaction(Scope.workspace(workspace_id)) as scoped:
            facade.record_visit(
                scoped, page_id, number, ip=ip, user_agent=user_agent, secret_key=settings.secret_key, at=utcnow(),
                utm_campaign=utm_campaign, utm_content=utm_content,
            )  # fmt: skip
        token = facade.form_token(settings.secret_key, code, number)
        return facade.render_page(layout, content, token=token, utm_campaign=utm_campaign, utm_content=utm_content)

    html = await run_in_threadpool(work)
    if html is None:
        return PlainTextResponse("not found", status_code=404)
    return HTMLResponse(html, headers=HEADERS)


@router.post("/p/{code}", include_in_schema=False)
async def send_form(code: str, request: Request, db: DbDep, settings: SettingsDep) -> Response:
    """The page's form: filed once per token (a replay shows the thanks again and files nothing);
    refused with the reason shown on the page (422) when the token, phone or consent is wrong."""
    form_data = await request.form()

    def field(name: str, longest: int) -> str:
        return str(form_data.get(name, ""))[:longest]

    form = Form(
        token=field("token", 100),
        phone=field("phone", 40),
        consent=field("consent", 10) == "yes",
        utm_campaign=field("utm_campaign", 100),
        utm_content=field("utm_content", 100),
    )
    user_agent, ip = request.headers.get("user-agent", ""), client_ip(request) or ""

    def work() -> tuple[int, str] | None:
        with db.read(Scope.unscoped_system()) as system:
            found = facade.find_published(system, code)
            if found is None:
                return None
            workspace_id = found[0].workspace_id
        with db.transaction(Scope.workspace(workspace_id)) as scoped:
            again = facade.find_published(scoped, code)
            if again is None:
                return None
            page, version = again
            layout, content = version.layout, dict(version.content)
            try:
                facade.submit(
                    scoped, page, form, ip=ip, user_agent=user_agent, secret_key=settings.secret_key,
                    at=utcnow(),
                )  # fmt: skip
            except FormRefusedError as refused:
                token = facade.form_token(settings.secret_key, code, version.version)
                html = facade.render_page(
                    layout, content, token=token, phone=form.phone, error=str(refused),
                    utm_campaign=form.utm_campaign, utm_content=form.utm_content,
                )  # fmt: skip
                return 422, html
        return 200, facade.render_page(layout, content, token="", done=True)

    answer = await run_in_threadpool(work)
    if answer is None:
        return PlainTextResponse("not found", status_code=404)
    return HTMLResponse(answer[1], status_code=answer[0], headers=HEADERS)


@router.get("/api/v1/landing-pages", response_model=list[PageOut])
def list_pages(
    principal: Analyst,
    session: ScopedSessionDep,
    settings: SettingsDep,
    archived: Annotated[bool, Query(description="archived pages too")] = False,
) -> list[PageOut]:
    pages = facade.list_pages(session, archived)
    stats = facade.page_stats(session, [p.id for p in pages])
    return [_out(p, settings.public_url, stats) for p in pages]


@router.post("/api/v1/landing-pages", response_model=PageOut, status_code=201)
def create_page(body: PageIn, principal: Operator, session: ScopedSessionDep, settings: SettingsDep) -> PageOut:
    page = facade.save_page(session, _draft(body), principal.actor_id)
    record_audit(session, principal, "landing.create", target_type="landing_page", target_id=page.id)
    return _out(page, settings.public_url, {})


@router.get("/api/v1/landing-pages/{page_id}", response_model=PageOut)
def get_page(page_id: str, principal: Analyst, session: ScopedSessionDep, settings: SettingsDep) -> PageOut:
    page = facade.page_to_public(facade.page_row(session, page_id))
    return _out(page, settings.public_url, facade.page_stats(session, [page.id]))


@router.put("/api/v1/landing-pages/{page_id}", response_model=PageOut)
def update_page(
    page_id: str, body: PageIn, principal: Operator, session: ScopedSessionDep, settings: SettingsDep
) -> PageOut:
    """Change the draft; visitors see it once it is published."""
    page = facade.save_page(session, _draft(body), principal.actor_id, page_id)
    record_audit(session, principal, "landing.update", target_type="landing_page", target_id=page.id)
    return _out(page, settings.public_url, facade.page_stats(session, [page.id]))


@router.post("/api/v1/landing-pages/{page_id}/publish", response_model=PageOut)
def publish(page_id: str, principal: Operator, session: ScopedSessionDep, settings: SettingsDep) -> PageOut:
    """Publish the draft as the next version (its consent text kept word for word with it)."""
    page = facade.publish(session, page_id, principal.actor_id)
    record_audit(
        session, principal, "landing.publish", target_type="landing_page", target_id=page.id,
        details={"version": page.version},
    )  # fmt: skip
    return _out(page, settings.public_url, facade.page_stats(session, [page.id]))


@router.post("/api/v1/landing-pages/{page_id}/archive", response_model=PageOut)
def archive(page_id: str, principal: Operator, session: ScopedSessionDep, settings: SettingsDep) -> PageOut:
    """Take the page down: its address answers 404 from now on."""
    page = facade.archive(session, page_id)
    record_audit(session, principal, "landing.archive", target_type="landing_page", target_id=page.id)
    return _out(page, settings.public_url, facade.page_stats(session, [page.id]))


@router.get("/api/v1/landing-pages/{page_id}/versions", response_model=list[VersionOut])
def versions(page_id: str, principal: Analyst, session: ScopedSessionDep) -> list[VersionOut]:
    return [
        VersionOut(
            version=v.version, layout=v.layout, content=dict(v.content), published_at=v.published_at,
            published_by=v.published_by,
        )
        for v in facade.versions(session, page_id)
    ]  # fmt: skip


@router.get("/api/v1/landing-pages/{page_id}/submissions", response_model=list[SubmissionOut])
def submissions(page_id: str, principal: Analyst, session: ScopedSessionDep) -> list[SubmissionOut]:
    """The forms sent on the page, newest first (who, by profile; the phone is in the profile)."""
    facade.page_row(session, page_id)
    return [
        SubmissionOut(
            id=s.id, version=s.version, profile_id=s.profile_id, identity_id=s.identity_id,
            utm_campaign=s.utm_campaign, utm_content=s.utm_content, at=s.at,
        )
        for s in facade.submissions(session, page_id)
    ]  # fmt: skip


@router.post("/api/v1/landing-pages/preview", response_class=HTMLResponse)
def preview(body: PageIn, principal: Analyst) -> HTMLResponse:
    """The page as a draft would look (nothing is saved or counted); a draft with problems is
    refused with every one."""
    draft = _draft(body)
    facade.check(draft)
    html = facade.render_page(draft.layout, dict(draft.content), token="", done=False)
    return HTMLResponse(html, headers=HEADERS)
