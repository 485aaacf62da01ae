"""Providers' pushes, parsed into receipts. Aliyun and Tencent sign neither delivery reports
nor replies, so their callback URLs carry a secret of their own (an HMAC of the account id with
the installation's secret): a request without it changes nothing. WeChat's template receipts
arrive signed through the official-account callback."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from siyu.channels.contracts import ChannelKind
from siyu.channels.receipts import DeliveryReport, Inbound
from siyu.core.errors import NotFoundError, ValidationFailedError

CHINA = ZoneInfo("Asia/Shanghai")


def callback_secret(secret_key: str, account_id: str) -> str:
    return hmac.new(f"siyu-callback:{secret_key}".encode(), account_id.encode(), hashlib.sha256).hexdigest()[:32]


def check_callback_secret(secret_key: str, account_id: str, given: str) -> None:
    if not hmac.compare_digest(callback_secret(secret_key, account_id).encode(), given.encode()):
        raise NotFoundError("unknown callback")


def _china_time(value: Any, fallback: datetime) -> datetime:
    try:
        return datetime.strptime(str(value), "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA).astimezone(UTC)
    except ValueError:
        return fallback


def _mainland(number: Any) -> str:
    digits = str(number or "").strip()
    return digits if digits.startswith("+") else f"+86{digits}"


def _items(body: Any) -> list[dict[str, Any]]:
    items = body if isinstance(body, list) else [body]
    if not all(isinstance(i, dict) for i in items):
        raise ValidationFailedError("a callback body is a JSON object or an array of them")
    return items


def aliyun_reports(account_id: str, body: Any, now: datetime) -> list[DeliveryReport]:
    """SmsReport: [{phone_number, success, err_code, biz_id, out_id, report_time…}]. ``out_id``
    is our message id when we sent one SMS; batch sends share it, so the number decides."""
    out = []
    for r in _items(body):
        phone = _mainland(r.get("phone_number"))
        out.append(
            DeliveryReport(
                dedupe_key=f"aliyun:{r.get('biz_id')}:{phone}:{r.get('err_code')}:{r.get('report_time')}",
                channel=ChannelKind.SMS,
                delivered=r.get("success") in (True, "true") and str(r.get("err_code", "DELIVERED")) == "DELIVERED",
                at=_china_time(r.get("report_time"), now),
                account_id=account_id,
                provider_id=str(r.get("biz_id", "")),
                address=phone,
                detail={k: r.get(k) for k in ("err_code", "err_msg", "sms_size", "out_id")},
            )
        )
    return out


def aliyun_replies(body: Any, now: datetime) -> list[Inbound]:
    """SmsUp: [{phone_number, content, send_time, dest_code, sequence_id, sign_name}]."""
    return [
        Inbound(
            dedupe_key=f"aliyun-up:{r.get('sequence_id') or ''}:{r.get('phone_number')}:{r.get('send_time')}",
            channel=ChannelKind.SMS,
            address=_mainland(r.get("phone_number")),
            at=_china_time(r.get("send_time"), now),
            text=str(r.get("content", "")),
            source="sms_reply",
            detail={"sign_name": r.get("sign_name", ""), "dest_code": r.get("dest_code", "")},
        )
        for r in _items(body)
    ]


def tencent_reports(account_id: str, body: Any, now: datetime) -> list[DeliveryReport]:
    """Status callback: [{mobile, nationcode, report_status, errmsg, sid, user_receive_time}]."""
    out = []
    for r in _items(body):
        phone = f"+{r.get('nationcode') or '86'}{r.get('mobile')}"
        out.append(
            DeliveryReport(
                dedupe_key=f"tencent:{r.get('sid')}:{r.get('report_status')}:{r.get('user_receive_time')}",
                channel=ChannelKind.SMS,
                delivered=r.get("report_status") == "SUCCESS",
                at=_china_time(r.get("user_receive_time"), now),
                account_id=account_id,
                provider_id=str(r.get("sid", "")),
                address=phone,
                detail={k: r.get(k) for k in ("errmsg", "description")},
            )
        )
    return out


def tencent_replies(body: Any, now: datetime) -> list[Inbound]:
    """Reply callback: {mobile, nationcode, text, sign, time (Unix seconds), extend}."""
    out = []
    for r in _items(body):
        try:
            at = datetime.fromtimestamp(int(r.get("time", 0)), UTC)
        except (TypeError, ValueError):
            at = now
        out.append(
            Inbound(
                dedupe_key=f"tencent-up:{r.get('mobile')}:{r.get('time')}:{r.get('text')}",
                channel=ChannelKind.SMS,
                address=f"+{r.get('nationcode') or '86'}{r.get('mobile')}",
                at=at,
                text=str(r.get("text", "")),
                source="sms_reply",
                detail={"sign": r.get("sign", ""), "extend": r.get("extend", "")},
            )
        )
    return out


def wechat_template_receipt(account_id: str, fields: dict[str, Any], now: datetime) -> DeliveryReport | None:
    """A TEMPLATESENDJOBFINISH event: Status ``success``, or ``failed:user block`` and the like."""
    if str(fields.get("Event", "")).upper() != "TEMPLATESENDJOBFINISH":
        return None
    status = str(fields.get("Status", ""))
    msgid = str(fields.get("MsgID") or fields.get("MsgId") or "")
    try:
        at = datetime.fromtimestamp(int(fields.get("CreateTime", 0)), UTC)
    except (TypeError, ValueError):
        at = now
    return DeliveryReport(
        dedupe_key=f"wechat:{msgid}:{status}",
        channel=ChannelKind.WECHAT_OA,
        delivered=status == "success",
        at=at,
        account_id=account_id,
        provider_id=msgid,
        detail={"status": status},
    )
