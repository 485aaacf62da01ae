"""Parse and validate Segment HTTP Tracking API calls (track, identify, page, screen, group,
alias, batch) into IncomingEvents. Pure: no I/O. Limits and field rules follow Segment's spec:
32 KB per call, 500 KB per batch request; ``timestamp`` is corrected for the client's clock
skew with ``sentAt`` when the client only sent ``originalTimestamp``.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from datetime import UTC, datetime
from typing import Any

import orjson

from siyu.core.ids import new_id
from siyu.ingest.contracts import EventType, IncomingEvent
from siyu.ingest.errors import InvalidEventError, PayloadTooLargeError

MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_ID_CHARS = 200
MAX_MESSAGE_ID_CHARS = 100
_REQUIRED: dict[EventType, tuple[str, ...]] = {
    EventType.TRACK: ("event",),
    EventType.GROUP: ("groupId",),
    EventType.ALIAS: ("previousId", "userId"),
}


def decode_body(raw: bytes, content_encoding: str | None, limit: int) -> Any:
    """Decompress (gzip or deflate) within ``limit`` bytes and parse JSON."""
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("gzip", "deflate"):
        try:
            if encoding == "gzip":
                with gzip.GzipFile(fileobj=io.BytesIO(raw)) as stream:
                    raw = stream.read(limit + 1)
            else:
                raw = zlib.decompressobj().decompress(raw, limit + 1)
        except (OSError, EOFError, zlib.error) as exc:
            raise InvalidEventError(f"body is not valid {encoding} data") from exc
    elif encoding not in ("", "identity"):
        raise InvalidEventError(f"unsupported Content-Encoding {encoding!r}; use gzip or none")
    if len(raw) > limit:
        raise PayloadTooLargeError(f"body exceeds {limit // 1024} KB", details={"limit_bytes": limit})
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass  # the standard parser names the line and column of the problem (and takes NaN, huge ints)
    try:
        return json.loads(raw)
    except UnicodeDecodeError as exc:
        raise InvalidEventError("body is not UTF-8 text") from exc
    except json.JSONDecodeError as exc:
        raise InvalidEventError(f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc


def parse_call(
    body: Any, received_at: datetime, *, type_: EventType | None = None, defaults: dict[str, Any] | None = None
) -> IncomingEvent:
    """One call. ``type_`` comes from the endpoint (/v1/track) or, in a batch, from ``type``."""
    if not isinstance(body, dict):
        raise InvalidEventError("an event must be a JSON object")
    if _encoded_size(body) > MAX_EVENT_BYTES:
        raise PayloadTooLargeError("event exceeds 32 KB", details={"limit_bytes": MAX_EVENT_BYTES})
    kind = type_ or _event_type(body.get("type"))
    for required in _REQUIRED.get(kind, ()):
        if body.get(required) in (None, ""):
            raise InvalidEventError(f"{kind.value} needs {required}")
    context = {**(defaults or {}).get("context", {}), **_object(body, "context")}
    name = body.get("event") if kind is EventType.TRACK else body.get("name")
    properties = _object(body, "properties")
    if kind is EventType.PAGE and body.get("category") is not None:
        properties = {"category": body.get("category"), **properties}
    return IncomingEvent(
        type=kind,
        message_id=_text(body, "messageId", MAX_MESSAGE_ID_CHARS) or f"srv-{new_id()}",
        timestamp=_timestamp(body, received_at, (defaults or {}).get("sentAt")),
        anonymous_id=_text(body, "anonymousId", MAX_ID_CHARS),
        user_id=_text(body, "userId", MAX_ID_CHARS),
        event=_name(name, "event" if kind is EventType.TRACK else "name"),
        properties=properties,
        traits=_object(body, "traits") or _object(context, "traits"),
        context=context,
        group_id=_text(body, "groupId", MAX_ID_CHARS),
        previous_id=_text(body, "previousId", MAX_ID_CHARS),
    )


def _encoded_size(body: dict[str, Any]) -> int:
    """Bytes of the call as compact UTF-8 JSON."""
    try:
        return len(orjson.dumps(body))
    except TypeError:  # integers beyond 64 bits
        return len(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode())


_TYPES = {t.value: t for t in EventType}


def _event_type(value: Any) -> EventType:
    kind = _TYPES.get(value) if isinstance(value, str) else None
    if kind is not None:
        return kind
    try:
        return EventType(value)
    except ValueError:
        allowed = ", ".join(t.value for t in EventType)
        raise InvalidEventError(f"type must be one of {allowed}; got {value!r}") from None


def _object(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidEventError(f"{key} must be an object")
    return value


def _name(value: Any, key: str) -> str | None:
    """track's event, page's and screen's name."""
    if type(value) is str and 0 < len(value) <= 200:
        return value
    return None if value is None else _text({key: value}, key, 200)


def _text(body: dict[str, Any], key: str, limit: int) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidEventError(f"{key} must be a string")
    text = str(value)
    if len(text) > limit:
        raise InvalidEventError(f"{key} is longer than {limit} characters")
    return text


def _parse_time(body: dict[str, Any], key: str) -> datetime | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidEventError(f"{key} must be an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidEventError(f"{key} is not an ISO 8601 date-time: {value!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _timestamp(body: dict[str, Any], received_at: datetime, batch_sent_at: Any) -> datetime:
    explicit = _parse_time(body, "timestamp")
    if explicit is not None:
        return explicit
    original = _parse_time(body, "originalTimestamp")
    sent = _parse_time(body, "sentAt") or _parse_time({"sentAt": batch_sent_at}, "sentAt")
    if original is not None and sent is not None:
        return received_at - (sent - original)
    return original or received_at
