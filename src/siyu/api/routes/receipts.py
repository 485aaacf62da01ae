"""Public endpoints providers and people reach: SMS delivery reports and replies (Aliyun,
Tencent), and one-click unsubscribe links (RFC 8058). SMS callbacks carry the account's
callback secret in their path; a request without it is a plain 404 and changes nothing."""

from __future__ import annotations

import html
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse

from siyu.api.deps import DbDep, SettingsDep
from siyu.api.errors import COMMON_ERRORS
from siyu.channels.callbacks import (
    aliyun_replies,
    aliyun_reports,
    check_callback_secret,
    tencent_replies,
    tencent_reports,
)
from siyu.channels.contracts import ChannelKind
from siyu.channels.receipts import Inbound, record_deliveries, record_inbound
from siyu.channels.tables import ChannelAccount
from siyu.channels.unsubscribe import read_token
from siyu.core.clock import utcnow
from siyu.core.errors import NotFoundError, ValidationFailedError
from siyu.core.ids import new_id
from siyu.storage.scoping import Scope

router = APIRouter(tags=["receipts"], responses=COMMON_ERRORS)

VENDORS = {"aliyun": "aliyun_sms", "tencent": "tencent_sms"}


def _workspace_of(db: Any, vendor: str, account_id: str) -> str:
    with db.read(Scope.unscoped_system()) as system:
        row = system.get(ChannelAccount, account_id)
        if row is None or row.provider != VENDORS.get(vendor):
            raise NotFoundError("unknown callback")
        return str(row.workspace_id)


async def _json(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError:
        raise ValidationFailedError("the callback body is not JSON") from None


@router.post("/callbacks/sms/{vendor}/{account_id}/{secret}/{kind}")
async def sms_callback(
    vendor: str, account_id: str, secret: str, kind: str, request: Request, db: DbDep, settings: SettingsDep
) -> JSONResponse:
    """Delivery reports (``report`` / ``status``) and replies (``reply``) as the provider pushes
    them; each is stored once however often the provider retries it."""
    check_callback_secret(settings.secret_key, account_id, secret)
    body = await _json(request)

    def work() -> None:
        workspace_id = _workspace_of(db, vendor, account_id)
        now = utcnow()
        with db.transaction(Scope.workspace(workspace_id)) as scoped:
            match (vendor, kind):
                case ("aliyun", "report"):
                    record_deliveries(scoped, aliyun_reports(account_id, body, now))
                case ("tencent", "status"):
                    record_deliveries(scoped, tencent_reports(account_id, body, now))
                case ("aliyun", "reply"):
                    record_inbound(scoped, aliyun_replies(body, now))
                case ("tencent", "reply"):
                    record_inbound(scoped, tencent_replies(body, now))
                case _:
                    raise NotFoundError("unknown callback")

    await run_in_threadpool(work)
    if vendor == "aliyun":
        return JSONResponse({"code": 0, "msg": "接收成功"})
    return JSONResponse({"result": 0, "errmsg": "OK"})


_PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem;color:#222}}
button{{font-size:1rem;padding:.6rem 1.4rem;border:0;border-radius:6px;background:#c0392b;color:#fff}}</style>
</head><body><h1>{title}</h1>{body}</body></html>"""


@router.get("/u/{token}", response_class=HTMLResponse)
def unsubscribe_page(token: str, settings: SettingsDep) -> HTMLResponse:
    """The page an unsubscribe link opens: one button, no sign-in."""
    _, channel, address = read_token(settings.secret_key, token)
    shown = html.escape(address)
    form = (
        f"<p>不再向 <b>{shown}</b> 发送营销{'邮件' if channel == 'email' else '消息'}。</p>"
        f'<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
        f'<button type="submit">确认退订</button></form>'
    )
    return HTMLResponse(_PAGE.format(title="退订", body=form))


@router.post("/u/{token}", response_class=HTMLResponse)
async def unsubscribe(token: str, request: Request, db: DbDep, settings: SettingsDep) -> HTMLResponse:
    """RFC 8058 one-click: the mailbox provider (or the page's button) POSTs
    ``List-Unsubscribe=One-Click``; the address is suppressed and marketing consent withdrawn at
    once. No cookie, no sign-in; a tampered token is a plain 404."""
    workspace_id, channel, address = read_token(settings.secret_key, token)
    await request.body()

    def work() -> None:
        with db.transaction(Scope.workspace(workspace_id)) as scoped:
            record_inbound(
                scoped,
                [
                    Inbound(
                        dedupe_key=f"unsubscribe:{channel}:{address}:{new_id()}",
                        channel=ChannelKind(channel),
                        address=address,
                        at=utcnow(),
                        kind="unsubscribe",
                        source="one_click",
                        detail={"ip": request.client.host if request.client else ""},
                    )
                ],
            )

    await run_in_threadpool(work)
    return HTMLResponse(_PAGE.format(title="已退订", body="<p>您已退订，之后不会再收到此类消息。</p>"))
