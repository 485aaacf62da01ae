"""The WeCom customer-contact API as qyapi.weixin.qq.com answers: tokens for the corp id and
secret; welcome codes good for 20 seconds and once (41051 afterwards); mark_tag only on an
employee's own customers (84061) with known tags; mass-send tasks listing in ``fail_list`` the
customers who are not the sender's."""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.server import Request, Response

WELCOME_SECONDS = 20


@dataclass
class FakeWecom:
    corp_id: str
    secret: str
    # employee userid → their customers' external_userids
    customers: dict[str, set[str]] = field(default_factory=dict)
    tags: set[str] = field(default_factory=set)
    welcomes: list[dict[str, Any]] = field(default_factory=list)
    tagged: list[dict[str, Any]] = field(default_factory=list)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    contact_ways: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._tokens: set[str] = set()
        self._codes: dict[str, float] = {}
        self._lock = threading.Lock()

    def issue_welcome_code(self, issued_at: float | None = None) -> str:
        """The WelcomeCode an add_external_contact callback would carry."""
        code = secrets.token_hex(16)
        self._codes[code] = time.time() if issued_at is None else issued_at
        return code

    def handle(self, request: Request) -> Response:
        with self._lock:
            if request.path == "/cgi-bin/gettoken":
                if request.query.get("corpid") != self.corp_id:
                    return _err(40013, "invalid corpid")
                if request.query.get("corpsecret") != self.secret:
                    return _err(40001, "invalid credential")
                token = secrets.token_urlsafe(32)
                self._tokens.add(token)
                return _ok({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200})
            if request.query.get("access_token") not in self._tokens:
                return _err(40014, "invalid access_token")
            body = json.loads(request.body or b"{}")
            route = {
                "/cgi-bin/externalcontact/send_welcome_msg": self._welcome,
                "/cgi-bin/externalcontact/mark_tag": self._mark_tag,
                "/cgi-bin/externalcontact/add_msg_template": self._task,
                "/cgi-bin/externalcontact/add_contact_way": self._contact_way,
            }.get(request.path)
            if route is None:
                return Response(status=404, body=b"not found", content_type="text/plain")
            return route(body)

    def _contact_way(self, body: dict[str, Any]) -> Response:
        """「联系我」: type 1 (one employee) or 2, scene 1 (mini-program) or 2 (QR code), a state of
        at most 30 characters, employees who exist."""
        if body.get("type") not in (1, 2):
            return _err(41037, "missing contact way type")
        if body.get("scene") not in (1, 2):
            return _err(41038, "missing contact way scene")
        users = body.get("user") or []
        if not users or (body["type"] == 1 and len(users) != 1):
            return _err(40058, "invalid user")
        if any(u not in self.customers for u in users):
            return _err(60111, "userid not found")
        if len(str(body.get("state", ""))) > 30 or len(str(body.get("remark", ""))) > 30:
            return _err(40058, "state or remark too long")
        config_id = secrets.token_hex(16)
        self.contact_ways.append({**body, "config_id": config_id})
        answer = {"errcode": 0, "errmsg": "ok", "config_id": config_id}
        if body["scene"] == 2:
            answer["qr_code"] = f"https://wework.qpic.cn/wwpic/{secrets.token_hex(8)}/0"
        return _ok(answer)

    def _welcome(self, body: dict[str, Any]) -> Response:
        code = str(body.get("welcome_code", ""))
        issued = self._codes.pop(code, None)
        if issued is None or time.time() - issued > WELCOME_SECONDS:
            return _err(41051, "externaluser has started chatting")
        if not (body.get("text") or {}).get("content") and not body.get("attachments"):
            return _err(41048, "empty content")
        if len(body.get("attachments") or []) > 9:
            return _err(41094, "too many attachments")
        self.welcomes.append(body)
        return _ok({"errcode": 0, "errmsg": "ok"})

    def _mark_tag(self, body: dict[str, Any]) -> Response:
        add, remove = body.get("add_tag") or [], body.get("remove_tag") or []
        if not add and not remove:
            return _err(40058, "add_tag and remove_tag both empty")
        if body.get("external_userid") not in self.customers.get(str(body.get("userid")), set()):
            return _err(84061, "not external contact")
        if set(add) - self.tags:
            return _err(40068, "invalid tagid")
        self.tagged.append(body)
        return _ok({"errcode": 0, "errmsg": "ok"})

    def _task(self, body: dict[str, Any]) -> Response:
        sender = str(body.get("sender", ""))
        if sender not in self.customers:
            return _err(60111, "invalid userid")
        wanted = list(body.get("external_userid") or [])
        fail = [u for u in wanted if u not in self.customers[sender]]
        msgid = "msg" + secrets.token_hex(8)
        self.tasks.append({**body, "msgid": msgid})
        return _ok({"errcode": 0, "errmsg": "ok", "fail_list": fail, "msgid": msgid})


def _ok(body: dict[str, Any]) -> Response:
    return Response(body=json.dumps(body).encode())


def _err(code: int, message: str) -> Response:
    return _ok({"errcode": code, "errmsg": message})
