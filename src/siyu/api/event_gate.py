"""The Segment-compatible tracking calls, answered in front of the web framework.

``POST /v1/track`` and its siblings are the busiest endpoints by far: an SDK sends every page
view. Routing, dependency injection, request objects and the framework's middleware would cost
more than storing the event, so :class:`EventGate` — a plain ASGI app in front of the framework
(``SiyuAPI``) — answers these calls itself and passes everything else on. ``routes/segment.py``
documents the same calls in the OpenAPI schema and serves them through the same
:func:`answer_call` when no gate is in front.

Authentication as Segment does it — the write key as the HTTP Basic username (empty password) —
or as a bearer token, or as ``writeKey`` in the body. Bodies may be gzip-compressed. A 200 means
every accepted event is committed; a replayed messageId is accepted and stored nothing new.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import orjson
from fastapi.encoders import jsonable_encoder
from starlette.types import ASGIApp, Receive, Scope, Send

from siyu.api.keycache import KeyCache, lookup_key
from siyu.core.clock import utcnow
from siyu.core.errors import AuthenticationError, SiyuError
from siyu.ingest.contracts import EventType, IncomingEvent, RejectedEvent
from siyu.ingest.errors import InvalidEventError, PayloadTooLargeError
from siyu.ingest.segment import MAX_BATCH_BYTES, MAX_EVENT_BYTES, decode_body, parse_call
from siyu.ingest.writer import EventWriter
from siyu.storage.session import Database

log = logging.getLogger("siyu.api")

CALLS = ("track", "identify", "page", "screen", "group", "alias", "batch")
# analytics.js posts to /v1/t, /v1/i, /v1/p … (the call's first letter), as Segment's API takes.
PATHS = {f"/v1/{call}": call for call in CALLS} | {f"/v1/{call[0]}": call for call in CALLS}
_SLACK = 4096  # a compressed body is never much larger than the limit on what it expands to


@dataclass(frozen=True)
class Services:
    db: Database
    keys: KeyCache
    writer: EventWriter


def write_key(headers: Mapping[str, str], body: Any) -> str:
    scheme, _, value = headers.get("authorization", "").partition(" ")
    value = value.strip()
    if scheme.lower() == "basic" and value:
        try:
            username = base64.b64decode(value, validate=True).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            raise AuthenticationError("malformed Basic authorization header") from None
        if username:
            return username
    if scheme.lower() == "bearer" and value:
        return value
    if isinstance(body, dict) and isinstance(body.get("writeKey"), str) and body["writeKey"]:
        return str(body["writeKey"])
    raise AuthenticationError("send the write key as the Basic auth username, a bearer token or writeKey")


def limit_of(call: str) -> int:
    return MAX_BATCH_BYTES if call == "batch" else MAX_EVENT_BYTES


async def answer_call(services: Services, call: str, headers: Mapping[str, str], raw: bytes, ip: str | None) -> bytes:
    """Store one tracking call; returns the JSON answer. Raises SiyuError for a bad request."""
    body = decode_body(raw, headers.get("content-encoding"), limit_of(call))
    token = write_key(headers, body)
    principal = services.keys.get(token, ip)
    if principal is None:
        principal = await anyio.to_thread.run_sync(lookup_key, services.db, services.keys, token, ip)
    received_at = utcnow()
    rejected: list[RejectedEvent] = []  # filled by parse, on the writer's thread

    def parse() -> list[IncomingEvent]:
        if call == "batch":
            return _batch(body, received_at, rejected)
        return [parse_call(body, received_at, type_=EventType(call))]

    calls = body.get("batch") if call == "batch" and isinstance(body, dict) else None
    size = len(calls) if isinstance(calls, list) else 1
    stored = await services.writer.store(principal.workspace_id, parse, received_at, size)
    return orjson.dumps(
        {
            "success": True,
            "accepted": stored.accepted,
            "duplicates": stored.accepted - stored.new,
            "rejected": [r.__dict__ for r in rejected],
        }
    )


def _batch(body: Any, received_at: Any, rejected: list[RejectedEvent]) -> list[IncomingEvent]:
    """Valid calls of a batch; each invalid one is named by index and reason in ``rejected``."""
    if not isinstance(body, dict) or not isinstance(body.get("batch"), list):
        raise InvalidEventError("a batch body is an object with a `batch` list of calls")
    defaults: dict[str, Any] = {
        "context": body.get("context") if isinstance(body.get("context"), dict) else {},
        "sentAt": body.get("sentAt"),
    }
    events: list[IncomingEvent] = []
    for index, call in enumerate(body["batch"]):
        try:
            events.append(parse_call(call, received_at, defaults=defaults))
        except SiyuError as exc:
            rejected.append(RejectedEvent(index, exc.code, exc.message))
    if not events and rejected:
        raise InvalidEventError("no event in the batch is valid", details=[r.__dict__ for r in rejected])
    return events


def error_body(exc: SiyuError) -> bytes:
    return orjson.dumps({"code": exc.code, "message": exc.message, "details": jsonable_encoder(exc.details)})


# Browsers send tracking calls from the brand's own sites (analytics.js): any origin may call,
# with the write key in the body or an Authorization header; no cookies are involved.
_CORS = [(b"access-control-allow-origin", b"*")]
_PREFLIGHT = [
    *_CORS,
    (b"access-control-allow-methods", b"POST, OPTIONS"),
    (b"access-control-max-age", b"86400"),
    (b"content-length", b"0"),
]
_ALLOWED_HEADERS = b"authorization, content-type, content-encoding, x-retry-count"


class EventGate:
    """ASGI middleware answering ``POST /v1/<call>`` (and its CORS preflight) itself."""

    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        call = PATHS.get(scope["path"]) if scope["type"] == "http" else None
        if call is None or scope["method"] not in ("POST", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            # Whatever headers the SDK means to send (analytics.js adds X-Retry-Count on retries).
            asked = dict(scope["headers"]).get(b"access-control-request-headers", _ALLOWED_HEADERS)
            preflight = [*_PREFLIGHT, (b"access-control-allow-headers", asked)]
            await send({"type": "http.response.start", "status": 204, "headers": preflight})
            await send({"type": "http.response.body", "body": b""})
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        client = scope.get("client")
        status = 200
        try:
            raw = await _read_body(receive, headers, limit_of(call))
            if raw is None:
                return  # the client went away
            payload = await answer_call(self.services, call, headers, raw, client[0] if client else None)
        except SiyuError as exc:
            status, payload = exc.status, error_body(exc)
        except Exception:
            log.exception("storing tracking call %s failed", call)
            status = 500
            payload = orjson.dumps(
                {"code": "internal_error", "message": "an unexpected error occurred", "details": None}
            )
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    *_CORS,
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def refuse_declared_oversize(headers: Mapping[str, str], limit: int) -> PayloadTooLargeError:
    """Raise at once when Content-Length is over the limit; else the error to raise while reading."""
    too_large = PayloadTooLargeError(f"body exceeds {limit // 1024} KB", details={"limit_bytes": limit})
    length = headers.get("content-length", "")
    if length.isdigit() and int(length) > limit + _SLACK:
        raise too_large
    return too_large


async def _read_body(receive: Receive, headers: Mapping[str, str], limit: int) -> bytes | None:
    too_large = refuse_declared_oversize(headers, limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit + _SLACK:
            raise too_large
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks) if len(chunks) != 1 else chunks[0]
