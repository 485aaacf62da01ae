"""WeCom (企业微信) customer-contact callbacks: adds and deletes of external contacts with their
「联系我」state and welcome code, and customer-group changes. Same WXBizMsgCrypt as official
accounts, with the CorpID as receive id; the URL check's echostr is itself encrypted."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from siyu.identity.contracts import IdentifierKind
from siyu.ingest.contracts import EventType, IncomingEvent
from siyu.ingest.events import store_events
from siyu.ingest.wechat.crypto import check_signature, decrypt
from siyu.ingest.wechat.errors import CallbackRejectedError
from siyu.ingest.wechat.oa import AppSecrets
from siyu.ingest.wechat.xml import parse

CONTACT_EVENTS = {
    "add_external_contact": "WeCom Contact Added",
    "add_half_external_contact": "WeCom Contact Added",
    "edit_external_contact": "WeCom Contact Edited",
    "del_external_contact": "WeCom Contact Removed by Staff",
    "del_follow_user": "WeCom Staff Removed by Contact",
    "transfer_fail": "WeCom Transfer Failed",
    "msg_audit_approved": "WeCom Archive Consent Given",
}


def _aes(app: AppSecrets) -> str:
    if not app.aes_key:
        raise CallbackRejectedError("WeCom callbacks need the EncodingAESKey")
    return app.aes_key


def verify_url(app: AppSecrets, query: dict[str, str]) -> str:
    echostr = query.get("echostr", "")
    check_signature(query.get("msg_signature"), app.token, query.get("timestamp", ""), query.get("nonce", ""), echostr)
    return decrypt(_aes(app), echostr, app.app_id)


def open_message(app: AppSecrets, query: dict[str, str], body: bytes) -> dict[str, str]:
    encrypted = parse(body).get("Encrypt", "")
    check_signature(
        query.get("msg_signature"), app.token, query.get("timestamp", ""), query.get("nonce", ""), encrypted
    )
    return parse(decrypt(_aes(app), encrypted, app.app_id))


def to_event(app: AppSecrets, fields: dict[str, str]) -> IncomingEvent | None:
    try:
        created = datetime.fromtimestamp(int(fields.get("CreateTime", "0")), UTC)
    except ValueError as exc:
        raise CallbackRejectedError("CreateTime is not a number") from exc
    event, change = fields.get("Event", ""), fields.get("ChangeType", "")
    properties: dict[str, Any] = {"corp_id": app.app_id, "change_type": change}
    identifiers: list[dict[str, str]] = []
    if event == "change_external_contact":
        external = fields.get("ExternalUserID", "")
        if not external:
            raise CallbackRejectedError("change_external_contact without ExternalUserID")
        name = CONTACT_EVENTS.get(change, f"WeCom Contact {change}")
        properties |= {
            k: fields[f]
            for k, f in (
                ("staff_user_id", "UserID"),
                ("state", "State"),
                ("welcome_code", "WelcomeCode"),
                ("source", "Source"),
                ("fail_reason", "FailReason"),
            )
            if fields.get(f)
        }
        identifiers = [{"kind": IdentifierKind.WECOM_EXTERNAL_USERID.value, "scope": app.app_id, "value": external}]
        key = f"{change}:{fields.get('UserID', '')}:{external}"
    elif event == "change_external_chat":
        name = "WeCom Group Changed"
        properties |= {
            k: fields[f]
            for k, f in (
                ("chat_id", "ChatId"),
                ("update_detail", "UpdateDetail"),
                ("join_scene", "JoinScene"),
                ("quit_scene", "QuitScene"),
                ("member_change_count", "MemChangeCnt"),
            )
            if fields.get(f)
        }
        key = f"chat:{fields.get('ChatId', '')}:{change}:{fields.get('UpdateDetail', '')}"
    else:
        return None  # other app messages are not customer data
    return IncomingEvent(
        type=EventType.TRACK,
        message_id=f"wecom:{app.app_id}:{key}:{int(created.timestamp())}"[:100],
        timestamp=created,
        event=name,
        properties=properties,
        context={"source": "wecom", "identifiers": identifiers},
    )


def receive(scoped: Session, app: AppSecrets, fields: dict[str, str], received_at: datetime) -> int:
    event = to_event(app, fields)
    return store_events(scoped, [event], received_at) if event else 0
