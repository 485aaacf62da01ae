"""The WeChat API of an official account and a mini-program, as api.weixin.qq.com answers:
access tokens issued for the right AppID and AppSecret and refused once expired (42001) or
unknown (40001); template messages only to followers (43004) who have not blocked the account
(43019), with a known template (40037), repeats by ``client_msg_id`` sent once; subscribe
messages only against a remaining acceptance (43101), values checked by keyword type (47003);
parametric QR codes with a string scene of 1 to 64 characters, temporary ones for at most
2,592,000 seconds (anything else refused as 40097 invalid args)."""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.server import Request, Response


@dataclass
class SentTemplate:
    msgid: int
    touser: str
    template_id: str
    data: dict[str, Any]
    url: str
    client_msg_id: str


@dataclass
class FakeWechat:
    app_id: str
    app_secret: str
    templates: set[str] = field(default_factory=set)
    followers: set[str] = field(default_factory=set)
    blocked: set[str] = field(default_factory=set)
    # (openid, template_id) → acceptances left (mini-program one-time subscriptions)
    acceptances: Counter[tuple[str, str]] = field(default_factory=Counter)
    sent: list[SentTemplate] = field(default_factory=list)
    subscribe_sent: list[dict[str, Any]] = field(default_factory=list)
    token_fetches: int = 0
    qrcodes: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._tokens: set[str] = set()
        self._by_client_id: dict[str, int] = {}
        self._lock = threading.Lock()
        self._next_msgid = 3717005636572528642

    def expire_tokens(self) -> None:
        self._tokens.clear()

    def handle(self, request: Request) -> Response:
        with self._lock:
            if request.path == "/cgi-bin/token":
                return self._token(request.query)
            token = request.query.get("access_token", "")
            if not token:
                return _err(41001, "access_token missing")
            if token not in self._tokens:
                return _err(42001, "access_token expired")
            body = json.loads(request.body or b"{}")
            if request.path == "/cgi-bin/message/template/send":
                return self._template(body)
            if request.path == "/cgi-bin/message/subscribe/send":
                return self._subscribe(body)
            if request.path == "/cgi-bin/qrcode/create":
                return self._qrcode(body)
            return Response(status=404, body=b"not found", content_type="text/plain")

    def _token(self, query: dict[str, str]) -> Response:
        if query.get("grant_type") != "client_credential":
            return _err(40002, "invalid grant_type")
        if query.get("appid") != self.app_id:
            return _err(40013, "invalid appid")
        if query.get("secret") != self.app_secret:
            return _err(40125, "invalid appsecret")
        self.token_fetches += 1
        token = secrets.token_urlsafe(48)
        self._tokens.add(token)
        return _ok({"access_token": token, "expires_in": 7200})

    def _template(self, body: dict[str, Any]) -> Response:
        client_id = str(body.get("client_msg_id", ""))
        if client_id and client_id in self._by_client_id:
            return _ok({"errcode": 0, "errmsg": "ok", "msgid": self._by_client_id[client_id]})
        openid = str(body.get("touser", ""))
        if not re.fullmatch(r"o[\w-]{20,40}", openid):
            return _err(40003, "invalid openid")
        if body.get("template_id") not in self.templates:
            return _err(40037, "invalid template_id")
        if openid in self.blocked:
            return _err(43019, "require remove blacklist")
        if openid not in self.followers:
            return _err(43004, "require subscribe")
        data = body.get("data") or {}
        if not data or any(not str((v or {}).get("value", "")) for v in data.values()):
            return _err(47003, "argument invalid! data.value empty")
        self._next_msgid += 1
        msgid = self._next_msgid
        self.sent.append(SentTemplate(msgid, openid, body["template_id"], data, str(body.get("url", "")), client_id))
        if client_id:
            self._by_client_id[client_id] = msgid
        return _ok({"errcode": 0, "errmsg": "ok", "msgid": msgid})

    def _subscribe(self, body: dict[str, Any]) -> Response:
        openid, template = str(body.get("touser", "")), str(body.get("template_id", ""))
        if not re.fullmatch(r"o[\w-]{20,40}", openid):
            return _err(40003, "invalid openid")
        if template not in self.templates:
            return _err(40037, "invalid template_id")
        for key, value in (body.get("data") or {}).items():
            text = str((value or {}).get("value", ""))
            if key.startswith("thing") and len(text) > 20:
                return _err(47003, f"argument invalid! data.{key}.value")
        if self.acceptances[(openid, template)] <= 0:
            return _err(43101, "user refuse to accept the msg")
        self.acceptances[(openid, template)] -= 1
        self.subscribe_sent.append(body)
        return _ok({"errcode": 0, "errmsg": "ok", "msgid": len(self.subscribe_sent)})

    def _qrcode(self, body: dict[str, Any]) -> Response:
        action = body.get("action_name")
        scene = (body.get("action_info") or {}).get("scene") or {}
        if action not in ("QR_SCENE", "QR_STR_SCENE", "QR_LIMIT_SCENE", "QR_LIMIT_STR_SCENE"):
            return _err(40097, "invalid args: action_name")
        if action.endswith("STR_SCENE"):
            text = scene.get("scene_str")
            if not isinstance(text, str) or not 1 <= len(text) <= 64:
                return _err(40097, "invalid args: scene_str")
        seconds = body.get("expire_seconds")
        if action.startswith("QR_LIMIT"):
            seconds = None
        elif seconds is None or not 60 <= int(seconds) <= 2_592_000:
            return _err(40097, "invalid args: expire_seconds")
        ticket = secrets.token_urlsafe(40)
        self.qrcodes.append({**body, "ticket": ticket})
        answer: dict[str, Any] = {"ticket": ticket, "url": f"http://weixin.qq.com/q/{secrets.token_urlsafe(16)}"}
        if seconds is not None:
            answer["expire_seconds"] = int(seconds)
        return _ok(answer)

    def scan_event(self, openid: str, scene: str, *, new_follower: bool) -> str:
        """The event WeChat pushes when someone scans a parametric code: subscribe with
        ``qrscene_<scene>`` for a new follower, SCAN with the bare scene for a follower."""
        event, key = ("subscribe", f"qrscene_{scene}") if new_follower else ("SCAN", scene)
        return (
            f"<xml><ToUserName><![CDATA[gh_7f083739789a]]></ToUserName><FromUserName><![CDATA[{openid}]]>"
            f"</FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            f"<Event><![CDATA[{event}]]></Event><EventKey><![CDATA[{key}]]></EventKey>"
            f"<Ticket><![CDATA[TICKET]]></Ticket></xml>"
        )

    def template_receipt(self, sent: SentTemplate, status: str = "success") -> str:
        """The TEMPLATESENDJOBFINISH event WeChat pushes for a sent template message."""
        return (
            f"<xml><ToUserName><![CDATA[gh_7f083739789a]]></ToUserName><FromUserName><![CDATA[{sent.touser}]]>"
            f"</FromUserName><CreateTime>1395658920</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            f"<Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>{sent.msgid}</MsgID>"
            f"<Status><![CDATA[{status}]]></Status></xml>"
        )


def _ok(body: dict[str, Any]) -> Response:
    return Response(body=json.dumps(body).encode())


def _err(code: int, message: str) -> Response:
    return _ok({"errcode": code, "errmsg": f"{message} rid: {secrets.token_hex(8)}"})
