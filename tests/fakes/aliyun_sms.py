"""Alibaba Cloud SMS as it answers SendSms and SendBatchSms: signature v1 checked with the
account's secret (SignatureDoesNotMatch, HTTP 400), nonces never reused, numbers validated,
approved templates and their variables checked, the 50-a-day cap per number, signature and
template enforced (isv.BUSINESS_LIMIT_CONTROL). Keeps what it sent, with each SMS's billed size,
so tests can ask for delivery reports and replies."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, quote_plus

from tests.fakes.server import Request, Response

DAILY_CAP = 50
_MOBILE = re.compile(r"1[3-9]\d{9}")


@dataclass
class SentSms:
    biz_id: str
    phone: str
    sign_name: str
    template: str
    params: dict[str, str]
    out_id: str
    text: str
    size: int


def _encode(value: str) -> str:
    # Written apart from the adapter's: form encoding, then the three RFC 3986 fix-ups.
    return quote_plus(value, safe="").replace("+", "%20").replace("*", "%2A").replace("%7E", "~")


def expected_signature(method: str, params: dict[str, str], secret: str) -> str:
    pairs = sorted((k, v) for k, v in params.items() if k != "Signature")
    canonical = "&".join(_encode(k) + "=" + _encode(v) for k, v in pairs)
    string_to_sign = method + "&%2F&" + _encode(canonical)
    return base64.b64encode(hmac.new((secret + "&").encode(), string_to_sign.encode(), hashlib.sha1).digest()).decode()


class FakeAliyunSms:
    def __init__(self, access_key_id: str, access_key_secret: str, templates: dict[str, str]) -> None:
        """``templates``: TemplateCode → text with ${var} placeholders."""
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.templates = templates
        self.sent: list[SentSms] = []
        self.requests = 0
        self.fail_next: list[tuple[int, str]] = []  # (HTTP status, Code) to answer next
        self._nonces: set[str] = set()
        self._lock = threading.Lock()

    def handle(self, request: Request) -> Response:
        params = dict(parse_qsl(request.body.decode(), keep_blank_values=True)) if request.method == "POST" else {}
        params.update(request.query)
        with self._lock:
            self.requests += 1
            if self.fail_next:
                status, code = self.fail_next.pop(0)
                return _answer(status, code, "injected")
            return self._handle(request.method, params)

    def _handle(self, method: str, params: dict[str, str]) -> Response:
        if params.get("AccessKeyId") != self.access_key_id:
            return _answer(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        if not hmac.compare_digest(
            expected_signature(method, params, self.access_key_secret), params.get("Signature", "")
        ):
            return _answer(400, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation.")
        nonce = params.get("SignatureNonce", "")
        if not nonce or nonce in self._nonces:
            return _answer(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
        self._nonces.add(nonce)
        try:
            stamp = datetime.strptime(params.get("Timestamp", ""), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            return _answer(400, "InvalidTimeStamp.Format", "Specified time stamp is not valid.")
        if abs(datetime.now(UTC) - stamp) > timedelta(minutes=15):
            return _answer(400, "InvalidTimeStamp.Expired", "Specified time stamp or date header is expired.")
        action = params.get("Action")
        if action == "SendSms":
            phones = params.get("PhoneNumbers", "").split(",")
            signs = [params.get("SignName", "")] * len(phones)
            values = [json.loads(params.get("TemplateParam") or "{}")] * len(phones)
        elif action == "SendBatchSms":
            phones = json.loads(params.get("PhoneNumberJson", "[]"))
            signs = json.loads(params.get("SignNameJson", "[]"))
            values = json.loads(params.get("TemplateParamJson", "[]"))
            if not len(phones) == len(signs) == len(values) or len(phones) > 100:
                return _answer(200, "isv.INVALID_JSON_PARAM", "JSON arrays differ in length or exceed 100")
        else:
            return _answer(400, "InvalidAction.NotFound", f"Specified api {action} is not found")
        template = self.templates.get(params.get("TemplateCode", ""))
        if template is None:
            return _answer(200, "isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板")
        for phone in phones:
            if not _MOBILE.fullmatch(phone):
                return _answer(200, "isv.MOBILE_NUMBER_ILLEGAL", f"非法手机号: {phone}")
        needed = set(re.findall(r"\$\{(\w+)\}", template))
        for value in values:
            if missing := needed - set(value):
                return _answer(200, "isv.TEMPLATE_MISSING_PARAMETERS", f"模版缺少变量: {sorted(missing)}")
        # The fake's "day" is its lifetime.
        for phone, sign in zip(phones, signs, strict=True):
            count = sum(
                1 for s in self.sent if (s.phone, s.sign_name, s.template) == (phone, sign, params["TemplateCode"])
            )
            if count >= DAILY_CAP:
                return _answer(200, "isv.BUSINESS_LIMIT_CONTROL", "触发天级流控Permits:50")
        biz_id = f"{uuid.uuid4().int % 10**18:018d}^0"
        for phone, sign, value in zip(phones, signs, values, strict=True):
            text = f"【{sign}】" + re.sub(r"\$\{(\w+)\}", lambda m, v=value: str(v[m.group(1)]), template)
            size = 1 if len(text) <= 70 else math.ceil(len(text) / 67)
            self.sent.append(
                SentSms(biz_id, phone, sign, params["TemplateCode"], value, params.get("OutId", ""), text, size)
            )
        return _answer(200, "OK", "OK", BizId=biz_id)

    def delivery_reports(self, *, success: bool = True) -> list[dict[str, object]]:
        """SmsReport bodies for everything sent, as Aliyun would push them."""
        now = datetime.now(UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")
        return [
            {
                "phone_number": s.phone,
                "send_time": now,
                "report_time": now,
                "success": success,
                "err_code": "DELIVERED" if success else "MK:0001",
                "err_msg": "用户接收成功" if success else "空号",
                "sms_size": str(s.size),
                "biz_id": s.biz_id,
                "out_id": s.out_id,
            }
            for s in self.sent
        ]


def _answer(status: int, code: str, message: str, **extra: str) -> Response:
    body = {"Code": code, "Message": message, "RequestId": str(uuid.uuid4()).upper(), **extra}
    return Response(status=status, body=json.dumps(body, ensure_ascii=False).encode())
