"""Codes that bring people into WeChat with the campaign or place they came from: an official
account's parametric QR code (带参数二维码, ``qrcode/create`` with a ``scene_str``) and a WeCom
「联系我」contact way (``externalcontact/add_contact_way`` with a ``state``). Each gets a scene
of its own; the follow, scan and add callbacks carry it back, and are counted against it."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.channels.accounts import account_row, default_account, open_account
from siyu.channels.adapters.base import ProviderAccount, TokenStore
from siyu.channels.adapters.wechat_api import app_api
from siyu.channels.adapters.wecom import WecomAdapter
from siyu.channels.contracts import ChannelKind
from siyu.channels.tables import ChannelCode
from siyu.core.clock import utcnow
from siyu.core.errors import NotFoundError, SiyuError, ValidationFailedError
from siyu.ingest import facade as ingest
from siyu.storage.scoping import Scope
from siyu.storage.session import Database

KINDS = {"oa_qr": ChannelKind.WECHAT_OA, "wecom_contact": ChannelKind.WECOM}
SCENE_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"
MAX_TEMP_DAYS = 30  # WeChat keeps a temporary code 2,592,000 seconds at most
# The callbacks that carry a code's scene back, and what each counts.
FOLLOWED, SCANNED, ADDED = "OA Followed", "OA QR Scanned", "WeCom Contact Added"


class CodeProviderError(SiyuError):
    """The provider refused to make the code (its error code and message are given)."""

    code = "provider_refused"
    status = 502


@dataclass(frozen=True)
class CodeRequest:
    kind: str  # oa_qr | wecom_contact
    name: str
    account_id: str | None = None  # the channel's default account if not given
    source: str = ""  # what it belongs to: campaign:cmp_…, store:…
    permanent: bool = False  # an OA code: permanent (100,000 per account) or for ``days``
    days: int = 30
    staff: tuple[str, ...] = ()  # a WeCom contact way: the employees' userids
    skip_verify: bool = True


@dataclass(frozen=True)
class CodePublic:
    id: str
    kind: str
    name: str
    account_id: str
    scene: str
    source: str
    url: str  # what the QR code encodes
    expires_at: datetime | None
    created_at: datetime
    sandbox: bool
    staff: list[str] = field(default_factory=list)


def _public(row: ChannelCode) -> CodePublic:
    return CodePublic(
        row.id, row.kind, row.name, row.account_id, row.scene, row.source, row.url, row.expires_at, row.created_at,
        row.ticket.startswith("sandbox-"), list(row.staff or []),
    )  # fmt: skip


def _check(request: CodeRequest) -> None:
    problems = []
    if request.kind not in KINDS:
        problems.append(("kind", "a code is an official account QR code (oa_qr) or a WeCom contact way"))
    if not request.name.strip() or len(request.name) > 80:
        problems.append(("name", "a code needs a name of 1 to 80 characters"))
    if request.kind == "oa_qr" and not request.permanent and not 1 <= request.days <= MAX_TEMP_DAYS:
        problems.append(("days", f"a temporary code lasts 1 to {MAX_TEMP_DAYS} days"))
    if request.kind == "wecom_contact" and not 1 <= len(request.staff) <= 100:
        problems.append(("staff", "a contact way names 1 to 100 employees (their WeCom userids)"))
    if problems:
        raise ValidationFailedError(
            problems[0][1], details={"problems": [{"where": w, "message": m} for w, m in problems]}
        )


def _scene() -> str:
    """A scene of its own: ``sy`` and ten characters (fits WeCom's 30 and WeChat's 64)."""
    return "sy" + "".join(secrets.choice(SCENE_ALPHABET) for _ in range(10))


def _why(outcome: object) -> str:
    return f"{getattr(outcome, 'code', '')} {getattr(outcome, 'reason', '')}".strip()


def _make(account: ProviderAccount, request: CodeRequest, scene: str, tokens: TokenStore) -> dict[str, Any]:
    """Ask the provider for the code: {ticket, url, expires_at}."""
    if account.provider == "sandbox":
        expires = (
            None if request.permanent or request.kind == "wecom_contact" else utcnow() + timedelta(days=request.days)
        )
        return {"ticket": f"sandbox-{scene}", "url": f"https://weixin.qq.com/q/sandbox-{scene}", "expires_at": expires}
    if request.kind == "oa_qr":
        payload: dict[str, Any] = {
            "action_name": "QR_LIMIT_STR_SCENE" if request.permanent else "QR_STR_SCENE",
            "action_info": {"scene": {"scene_str": scene}},
        }
        if not request.permanent:
            payload["expire_seconds"] = request.days * 86_400
        answer = app_api(account, tokens).post("/cgi-bin/qrcode/create", payload)
        if not isinstance(answer, dict):
            raise CodeProviderError(f"WeChat refused the QR code: {_why(answer)}")
        seconds = answer.get("expire_seconds")
        return {
            "ticket": str(answer.get("ticket", "")),
            "url": str(answer.get("url", "")),
            "expires_at": utcnow() + timedelta(seconds=int(seconds)) if seconds else None,
        }
    payload = {
        "type": 1 if len(request.staff) == 1 else 2,
        "scene": 2,  # a QR code
        "remark": request.name[:30],
        "skip_verify": request.skip_verify,
        "state": scene,
        "user": list(request.staff),
    }
    answer = WecomAdapter(account, tokens).api.post("/cgi-bin/externalcontact/add_contact_way", payload)
    if not isinstance(answer, dict):
        raise CodeProviderError(f"WeCom refused the contact way: {_why(answer)}")
    return {"ticket": str(answer.get("config_id", "")), "url": str(answer.get("qr_code", "")), "expires_at": None}


def create_code(
    db: Database,
    workspace_id: str,
    secret_key: str,
    request: CodeRequest,
    tokens: TokenStore,
    actor_id: str | None,
) -> CodePublic:
    """Make the code with the provider (outside any transaction: a slow provider holds no
    lock), then keep it."""
    _check(request)
    scope = Scope.workspace(workspace_id)
    with db.read(scope) as scoped:
        channel = KINDS[request.kind]
        try:
            row = account_row(scoped, request.account_id) if request.account_id else default_account(scoped, channel)
        except NotFoundError:
            raise ValidationFailedError("no such channel account", details={"path": "account_id"}) from None
        if row.channel != channel.value:
            raise ValidationFailedError(f"the account is not a {channel.value} account", details={"path": "account_id"})
        account = open_account(row, secret_key)
    scene = _scene()
    try:
        made = _make(account, request, scene, tokens)
    except httpx.HTTPError as exc:
        raise CodeProviderError(f"the provider could not be reached: {type(exc).__name__}") from exc
    with db.transaction(scope) as scoped:
        code = ChannelCode(
            kind=request.kind, name=request.name.strip(), account_id=account.id, scene=scene, source=request.source,
            ticket=made["ticket"], url=made["url"], expires_at=made["expires_at"], staff=list(request.staff),
            created_by=actor_id,
        )  # fmt: skip
        scoped.add(code)
        scoped.flush()
        return _public(code)


@dataclass(frozen=True)
class CodeCounts:
    followed: int  # people who followed the account through it (an OA code)
    scanned: int  # followers who scanned it again
    added: int  # people who added an employee through it (a contact way)


def list_codes(scoped: Session, source: str | None = None) -> list[CodePublic]:
    stmt = select(ChannelCode).order_by(ChannelCode.created_at.desc(), ChannelCode.id.desc()).limit(500)
    if source:
        stmt = stmt.where(ChannelCode.source == source)
    return [_public(r) for r in scoped.scalars(stmt)]


def get_code(scoped: Session, code_id: str) -> CodePublic:
    row = scoped.scalar(select(ChannelCode).where(ChannelCode.id == code_id))
    if row is None:
        raise NotFoundError("code not found")
    return _public(row)


def code_counts(scoped: Session, codes: list[CodePublic]) -> dict[str, CodeCounts]:
    """Each code's people, from the callbacks that carried its scene (OA) or state (WeCom)."""
    oa = [c.scene for c in codes if c.kind == "oa_qr"]
    wecom = [c.scene for c in codes if c.kind == "wecom_contact"]
    seen = ingest.people_by_property(scoped, [FOLLOWED, SCANNED], "scene", oa)
    seen |= ingest.people_by_property(scoped, [ADDED], "state", wecom)
    return {
        c.id: CodeCounts(
            seen.get((FOLLOWED, c.scene), 0), seen.get((SCANNED, c.scene), 0), seen.get((ADDED, c.scene), 0)
        )
        for c in codes
    }
