"""WeChat: connect official accounts (admins) and receive their callbacks (public, signed)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from siyu.accounts.audit import record_audit
from siyu.api.deps import Admin, DbDep, ScopedSessionDep, SettingsDep
from siyu.api.errors import COMMON_ERRORS
from siyu.core.clock import utcnow
from siyu.ingest.wechat import oa
from siyu.storage.scoping import Scope

router = APIRouter(tags=["wechat"], responses=COMMON_ERRORS)


class WechatAppIn(BaseModel):
    kind: str = Field(pattern="^(oa|miniprogram)$")
    app_id: str = Field(pattern=r"^wx[0-9a-f]{16}$")
    name: str = Field(default="", max_length=100)
    token: str = Field(min_length=3, max_length=32, pattern=r"^[A-Za-z0-9]+$")
    encoding_aes_key: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]{43}$")


class WechatAppOut(BaseModel):
    id: str
    kind: str
    app_id: str
    name: str
    encrypted: bool


@router.put("/api/v1/wechat/apps", response_model=WechatAppOut)
def connect_app(body: WechatAppIn, principal: Admin, session: ScopedSessionDep, settings: SettingsDep) -> WechatAppOut:
    """Connect (or update) an official account or mini-program. Secrets are stored sealed and never
    shown again. Point the app's server URL at /callbacks/wechat/{app_id}."""
    row = oa.register_app(
        session,
        secret_key=settings.secret_key,
        kind=body.kind,
        app_id=body.app_id,
        token=body.token,
        aes_key=body.encoding_aes_key,
        name=body.name,
    )
    record_audit(session, principal, "wechat_app.connect", target_type="wechat_app", target_id=row.app_id)
    return WechatAppOut(
        id=row.id, kind=row.kind, app_id=row.app_id, name=row.name, encrypted=row.aes_key_sealed is not None
    )


def _app(db: DbDep, settings: SettingsDep, app_id: str) -> oa.AppSecrets:
    with db.read(Scope.unscoped_system()) as system:
        return oa.app_secrets(system, app_id, settings.secret_key)


@router.get("/callbacks/wechat/{app_id}", response_class=PlainTextResponse)
def verify(app_id: str, request: Request, db: DbDep, settings: SettingsDep) -> str:
    """WeChat's URL check: echostr back when the signature matches (403 otherwise)."""
    return oa.verify_url(_app(db, settings, app_id), dict(request.query_params))


@router.post("/callbacks/wechat/{app_id}", response_class=PlainTextResponse)
async def receive(app_id: str, request: Request, db: DbDep, settings: SettingsDep) -> str:
    """Pushed events and messages (plain or safe mode). Answers ``success`` once stored; a bad
    signature or body is refused with 403 and nothing is stored."""
    body = await request.body()
    query = dict(request.query_params)

    def work() -> None:
        app = _app(db, settings, app_id)
        fields = oa.open_message(app, query, body)
        with db.transaction(Scope.workspace(app.workspace_id)) as scoped:
            oa.receive(scoped, app, fields, utcnow())

    await run_in_threadpool(work)
    return "success"
