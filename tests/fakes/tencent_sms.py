"""Tencent Cloud SMS as it answers SendSms (2021-01-11): the TC3-HMAC-SHA256 Authorization
header checked (AuthFailure.SignatureFailure), stale timestamps refused
(AuthFailure.SignatureExpire), and a status per number: numbers on the blacklist, malformed
numbers and unknown templates fail one by one, as the real service reports them."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from tests.fakes.server import Request, Response

_MOBILE = re.compile(r"\+861[3-9]\d{9}")


@dataclass
class SentSms:
    serial_no: str
    phone: str
    template: str
    params: list[str]
    text: str
    fee: int
    session_context: str


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def expected_authorization(secret_id: str, secret_key: str, headers: dict[str, str], body: bytes) -> str:
    timestamp = int(headers["x-tc-timestamp"])
    date = time.strftime("%Y-%m-%d", time.gmtime(timestamp))
    canonical = (
        "POST\n/\n\n"
        + f"content-type:{headers['content-type']}\nhost:{headers['host']}\n\n"
        + "content-type;host\n"
        + hashlib.sha256(body).hexdigest()
    )
    scope = f"{date}/sms/tc3_request"
    string_to_sign = f"TC3-HMAC-SHA256\n{timestamp}\n{scope}\n" + hashlib.sha256(canonical.encode()).hexdigest()
    key = _hmac(_hmac(_hmac(("TC3" + secret_key).encode(), date), "sms"), "tc3_request")
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return f"TC3-HMAC-SHA256 Credential={secret_id}/{scope}, SignedHeaders=content-type;host, Signature={signature}"


class FakeTencentSms:
    def __init__(self, secret_id: str, secret_key: str, sdk_app_id: str, templates: dict[str, str]) -> None:
        """``templates``: TemplateId → text with {1}, {2}… placeholders."""
        self.secret_id = secret_id
        self.secret_key = secret_key
        self.sdk_app_id = sdk_app_id
        self.templates = templates
        self.blacklist: set[str] = set()
        self.sent: list[SentSms] = []
        self.fail_next: list[str] = []  # request-level error codes to answer next
        self._lock = threading.Lock()

    def handle(self, request: Request) -> Response:
        with self._lock:
            return self._handle(request)

    def _handle(self, request: Request) -> Response:
        h = request.headers
        if self.fail_next:
            return _error(self.fail_next.pop(0), "injected")
        if h.get("x-tc-action") != "SendSms" or h.get("x-tc-version") != "2021-01-11":
            return _error("InvalidAction", "action or version not supported")
        if not h.get("x-tc-region"):
            return _error("MissingParameter", "X-TC-Region is required")
        try:
            timestamp = int(h.get("x-tc-timestamp", ""))
        except ValueError:
            return _error("AuthFailure.InvalidAuthorization", "bad timestamp")
        if abs(time.time() - timestamp) > 300:
            return _error("AuthFailure.SignatureExpire", "signature expired")
        if not h.get("authorization", "").startswith(f"TC3-HMAC-SHA256 Credential={self.secret_id}/"):
            return _error("AuthFailure.SecretIdNotFound", "SecretId not found")
        if not hmac.compare_digest(
            expected_authorization(self.secret_id, self.secret_key, h, request.body), h.get("authorization", "")
        ):
            return _error("AuthFailure.SignatureFailure", "The provided credentials could not be validated.")
        body = json.loads(request.body)
        if body.get("SmsSdkAppId") != self.sdk_app_id:
            return _error("InvalidParameterValue.SdkAppIdNotExist", "SdkAppId not exist")
        numbers = body.get("PhoneNumberSet") or []
        if not 1 <= len(numbers) <= 200:
            return _error("LimitExceeded.PhoneNumberCountLimit", "1 to 200 numbers per request")
        template = self.templates.get(str(body.get("TemplateId")))
        params = [str(p) for p in body.get("TemplateParamSet") or []]
        statuses = []
        for number in numbers:
            status = {"PhoneNumber": number, "SessionContext": body.get("SessionContext", ""), "IsoCode": "CN"}
            if not _MOBILE.fullmatch(number):
                code, message = "InvalidParameterValue.IncorrectPhoneNumber", "incorrect phone number"
            elif template is None:
                code, message = "FailedOperation.TemplateIncorrectOrUnapproved", "template unapproved or not exist"
            elif len(params) != template.count("{"):
                code, message = "InvalidParameterValue.TemplateParameterFormatError", "template params mismatch"
            elif number in self.blacklist:
                code, message = "FailedOperation.PhoneNumberInBlacklist", "phone number in blacklist"
            else:
                text = f"【{body.get('SignName')}】" + re.sub(
                    r"\{(\d+)\}", lambda m: params[int(m.group(1)) - 1], template
                )
                fee = 1 if len(text) <= 70 else math.ceil(len(text) / 67)
                serial = f"2433:{uuid.uuid4().int % 10**20}"
                self.sent.append(
                    SentSms(serial, number, str(body["TemplateId"]), params, text, fee, body.get("SessionContext", ""))
                )
                statuses.append({**status, "SerialNo": serial, "Fee": fee, "Code": "Ok", "Message": "send success"})
                continue
            statuses.append({**status, "SerialNo": "", "Fee": 0, "Code": code, "Message": message})
        return Response(
            body=json.dumps({"Response": {"SendStatusSet": statuses, "RequestId": str(uuid.uuid4())}}).encode()
        )

    def status_reports(self, *, success: bool = True) -> list[dict[str, str]]:
        now = datetime.now(UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")
        return [
            {
                "user_receive_time": now,
                "nationcode": "86",
                "mobile": s.phone[3:],
                "report_status": "SUCCESS" if success else "FAIL",
                "errmsg": "DELIVRD" if success else "MK:0005",
                "description": "用户短信送达成功" if success else "用户短信送达失败",
                "sid": s.serial_no,
            }
            for s in self.sent
        ]


def _error(code: str, message: str) -> Response:
    body = {"Response": {"Error": {"Code": code, "Message": message}, "RequestId": str(uuid.uuid4())}}
    return Response(body=json.dumps(body).encode())
