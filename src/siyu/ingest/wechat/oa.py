"""Official-account callbacks: verify, decrypt, and turn each push into one event on the
follower's profile (identified by the openid of this app). Idempotent under WeChat's retries:
the messageId is the MsgId, or follower + CreateTime + event as WeChat recommends."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siyu.core.errors import ConflictError, NotFoundError
from siyu.identity.contracts import Identifier, IdentifierKind
from siyu.ingest.consents import ConsentSubmission, submit_consents
from siyu.ingest.contracts import EventType, IncomingEvent
from siyu.ingest.events import store_events
from siyu.ingest.wechat.crypto import check_signature, decrypt
from siyu.ingest.wechat.errors import CallbackRejectedError
from siyu.ingest.wechat.tables import WechatApp
from siyu.ingest.wechat.xml import parse
from siyu.profiles.consent import Channel, ConsentStatus, Purpose
from siyu.storage.sealing import seal, unseal


@dataclass(frozen=True)
class AppSecrets:
    workspace_id: str
    kind: str
    app_id: str
    token: str
    aes_key: str | None


def register_app(
    scoped: Session, *, secret_key: str, kind: str, app_id: str, token: str, aes_key: str | None, name: str = ""
) -> WechatApp:
    existing = scoped.scalar(select(WechatApp).where(WechatApp.app_id == app_id))
    row = existing or WechatApp(kind=kind, app_id=app_id)
    row.name, row.token_sealed = name, seal(secret_key, token)
    row.aes_key_sealed = seal(secret_key, aes_key) if aes_key else None
    if existing is None:
        try:
            with scoped.begin_nested():
                scoped.add(row)
        except IntegrityError as exc:
            raise ConflictError("this WeChat app is connected to another workspace") from exc
    scoped.flush()
    return row


def app_secrets(system: Session, app_id: str, secret_key: str) -> AppSecrets:
    """System lookup by app id (a callback carries no workspace)."""
    row = system.scalar(select(WechatApp).where(WechatApp.app_id == app_id))
    if row is None:
        raise NotFoundError("unknown WeChat app")
    aes = unseal(secret_key, row.aes_key_sealed) if row.aes_key_sealed else None
    return AppSecrets(row.workspace_id, row.kind, row.app_id, unseal(secret_key, row.token_sealed), aes)


def verify_url(app: AppSecrets, query: dict[str, str]) -> str:
    """Server configuration check: the echostr comes back verbatim when the signature matches."""
    check_signature(query.get("signature"), app.token, query.get("timestamp", ""), query.get("nonce", ""))
    return query.get("echostr", "")


def open_message(app: AppSecrets, query: dict[str, str], body: bytes) -> dict[str, Any]:
    """The pushed message as fields, after checking signatures and decrypting safe-mode bodies."""
    timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
    check_signature(query.get("signature"), app.token, timestamp, nonce)
    fields = parse(body)
    if query.get("encrypt_type", "raw") == "aes":
        if not app.aes_key:
            raise CallbackRejectedError("encrypted message but no EncodingAESKey is configured")
        encrypted = str(fields.get("Encrypt", ""))
        check_signature(query.get("msg_signature"), app.token, timestamp, nonce, encrypted)
        fields = parse(decrypt(app.aes_key, encrypted, app.app_id))
    return fields


_EVENT_NAMES = {
    "subscribe": "OA Followed",
    "unsubscribe": "OA Unfollowed",
    "scan": "OA QR Scanned",
    "click": "OA Menu Clicked",
    "view": "OA Menu Clicked",
    "templatesendjobfinish": "OA Template Receipt",
    "subscribe_msg_popup_event": "OA Notifications Chosen",
    "subscribe_msg_change_event": "OA Notifications Changed",
    "subscribe_msg_sent_event": "OA Notification Receipt",
}
# Subscription-notification (订阅通知) events and the element holding their <List> items.
_SUBSCRIPTION_LISTS = {
    "subscribe_msg_popup_event": "SubscribeMsgPopupEvent",
    "subscribe_msg_change_event": "SubscribeMsgChangeEvent",
    "subscribe_msg_sent_event": "SubscribeMsgSentEvent",
}


def subscription_choices(fields: dict[str, Any]) -> list[dict[str, str]]:
    """Templates the follower accepted or rejected in a popup or in settings: [{template_id,
    status, scene}] (empty for other messages)."""
    kind = str(fields.get("Event", "")).lower()
    if kind not in ("subscribe_msg_popup_event", "subscribe_msg_change_event"):
        return []
    items = fields.get(_SUBSCRIPTION_LISTS[kind])
    return [
        {
            "template_id": i.get("TemplateId", ""),
            "status": i.get("SubscribeStatusString", ""),
            "scene": i.get("PopupScene", ""),
        }
        for i in (items if isinstance(items, list) else [])
        if i.get("TemplateId")
    ]


def to_event(app: AppSecrets, fields: dict[str, Any]) -> IncomingEvent | None:
    openid = fields.get("FromUserName")
    if not openid:
        raise CallbackRejectedError("message has no FromUserName")
    try:
        created = datetime.fromtimestamp(int(fields.get("CreateTime", "0")), UTC)
    except ValueError as exc:
        raise CallbackRejectedError("CreateTime is not a number") from exc
    msg_type = fields.get("MsgType", "").lower()
    kind = fields.get("Event", "").lower() if msg_type == "event" else msg_type
    properties: dict[str, Any] = {"app_id": app.app_id, "msg_type": msg_type}
    key = fields.get("EventKey", "")
    if kind == "subscribe" and key.startswith("qrscene_"):
        properties["scene"] = key.removeprefix("qrscene_")
    elif kind == "scan":
        properties["scene"] = key
    elif kind in ("click", "view"):
        properties["key"] = key
    elif kind == "templatesendjobfinish":
        status = fields.get("Status", "")
        properties |= {"msg_id": fields.get("MsgID", ""), "status": status, "delivered": status == "success"}
    elif kind in ("subscribe_msg_popup_event", "subscribe_msg_change_event"):
        properties["templates"] = subscription_choices(fields)
    elif kind == "subscribe_msg_sent_event":
        sent = fields.get("SubscribeMsgSentEvent")
        item = sent[0] if isinstance(sent, list) and sent else {}
        status = item.get("ErrorStatus", "")
        properties |= {
            "template_id": item.get("TemplateId", ""),
            "msg_id": item.get("MsgID", ""),
            "status": status,
            "delivered": status == "success",
        }
    elif msg_type == "text":
        properties["content"] = str(fields.get("Content", ""))[:2000]
    name = _EVENT_NAMES.get(kind, "OA Message Received" if msg_type != "event" else f"OA {kind}")
    msg_id = fields.get("MsgId") or fields.get("MsgID")
    message_id = (
        f"wx:{app.app_id}:{msg_id}"
        if msg_id and kind != "templatesendjobfinish"
        else (f"wx:{app.app_id}:{openid}:{int(created.timestamp())}:{kind}")
    )
    return IncomingEvent(
        type=EventType.TRACK,
        message_id=message_id[:100],
        timestamp=created,
        event=name,
        properties=properties,
        context={
            "source": "wechat_oa",
            "identifiers": [{"kind": IdentifierKind.OPENID.value, "scope": app.app_id, "value": openid}],
        },
    )


def receive(scoped: Session, app: AppSecrets, fields: dict[str, Any], received_at: datetime) -> int:
    event = to_event(app, fields)
    stored = store_events(scoped, [event], received_at) if event else 0
    choices = subscription_choices(fields)
    if stored and event is not None and choices:
        # The follower's own choice in WeChat's popup or settings: a consent signal for notifying
        # them on this account, with the templates as proof. Accepting any template grants it;
        # rejecting every one withdraws it.
        accepted = any(c["status"] == "accept" for c in choices)
        openid = event.context["identifiers"][0]
        submit_consents(
            scoped,
            [
                ConsentSubmission(
                    address=Identifier(IdentifierKind.OPENID, openid["scope"], openid["value"]),
                    channel=Channel.WECHAT_OA,
                    purpose=Purpose.MARKETING,
                    status=ConsentStatus.GRANTED if accepted else ConsentStatus.WITHDRAWN,
                    at=event.timestamp,
                    source="wechat_oa:subscribe_msg",
                    proof={
                        # What the person saw and chose: WeChat's own notification prompt.
                        "text": "WeChat subscription-notification prompt (订阅通知)",
                        "text_version": "wechat:subscribe_msg:"
                        + ",".join(c["template_id"] for c in choices if c["status"] == "accept"),
                        "event": fields.get("Event", ""),
                        "message_id": event.message_id,
                        "templates": choices,
                    },
                )
            ],
        )
    return stored
