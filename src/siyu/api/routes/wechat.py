"""WeChat: connect official accounts (admins) and receive their callbacks (public, signed)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from siyu.accounts.audit import record_audit
from siyu.api.deps import Admin, DbDep, ScopedSessionDep, SettingsDep
from siyu.api.errors import COMMON_ERRORS
from siyu.channels.facade import record_wechat_receipt
from siyu.core.clock import utcnow
from siyu.core.errors import NotFoundError, ValidationFailedError
from siyu.ingest.wechat import oa, wecom
from siyu.storage.scoping import Scope

router = APIRouter(tags=["wechat"], responses=COMMON_ERRORS)


class WechatAppIn(BaseModel):
    kind: str = Field(pattern="^(oa|miniprogram|wecom)$")
    app_id: str = Field(pattern=r"^(wx[0-9a-f]{16}|ww[0-9A-Za-z]{16})$", description="app id, or corp id for WeCom")
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
    """Connect (or update) an official account, mini-program or WeCom corp. Secrets are stored
    sealed and never shown again. Point the callback URL at /callbacks/wechat/{app_id} (or
    /callbacks/wecom/{corp_id})."""
    if (body.kind == "wecom") != body.app_id.startswith("ww"):
        raise ValidationFailedError("WeCom uses its corp id (ww…); official accounts their app id (wx…)")
    if body.kind == "wecom" and not body.encoding_aes_key:
        raise ValidationFailedError("WeCom callbacks are always encrypted: give the EncodingAESKey")
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


def _app(db: DbDep, settings: SettingsDep, app_id: str, wecom_corp: bool = False) -> oa.AppSecrets:
    with db.read(Scope.unscoped_system()) as system:
        app = oa.app_secrets(system, app_id, settings.secret_key)
    if (app.kind == "wecom") != wecom_corp:
        raise NotFoundError("unknown WeChat app")
    return app


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
            # A template message's delivery receipt closes its message in the send ledger.
            record_wechat_receipt(scoped, app.app_id, fields)

    await run_in_threadpool(work)
    return "success"


@router.get("/callbacks/wecom/{corp_id}", response_class=PlainTextResponse)
def verify_wecom(corp_id: str, request: Request, db: DbDep, settings: SettingsDep) -> str:
    """WeCom's URL check: the decrypted echostr when msg_signature matches."""
    return wecom.verify_url(_app(db, settings, corp_id, wecom_corp=True), dict(request.query_params))


@router.post("/callbacks/wecom/{corp_id}", response_class=PlainTextResponse)
async def receive_wecom(corp_id: str, request: Request, db: DbDep, settings: SettingsDep) -> str:
    """Customer-contact and customer-group changes. ``success`` once stored; forged → 403."""
    body = await request.body()
    query = dict(request.query_params)

    def work() -> None:
        app = _app(db, settings, corp_id, wecom_corp=True)
        fields = wecom.open_message(app, query, body)
        with db.transaction(Scope.workspace(app.workspace_id)) as scoped:
            wecom.receive(scoped, app, fields, utcnow())

    await run_in_threadpool(work)
    return "success"
