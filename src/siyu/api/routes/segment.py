"""Segment-compatible HTTP Tracking API: the official Segment SDKs work when pointed at siyu.

Authentication as Segment does it — the write key as the HTTP Basic username (empty password) —
or as a bearer token, or as ``writeKey`` in the body. Bodies may be gzip-compressed. A 200 means
every accepted event is committed; a replayed messageId is accepted and stored nothing new.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from datetime import datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from siyu.accounts.contracts import Principal
from siyu.api.deps import bearer_token, cached_key_principal, key_principal
from siyu.api.errors import COMMON_ERRORS
from siyu.core.clock import utcnow
from siyu.core.errors import AuthenticationError, SiyuError
from siyu.ingest.contracts import EventType, IncomingEvent, RejectedEvent
from siyu.ingest.errors import InvalidEventError, PayloadTooLargeError
from siyu.ingest.segment import MAX_BATCH_BYTES, MAX_EVENT_BYTES, decode_body, parse_call
from siyu.ingest.writer import EventWriter

router = APIRouter(prefix="/v1", tags=["events (Segment spec)"], responses=COMMON_ERRORS)
_JSON_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: COMMON_ERRORS[422] | {"description": "the body or an event does not follow the Segment spec"},
    413: COMMON_ERRORS[422] | {"description": "over 32 KB per event or 500 KB per batch"},
}


class RejectedOut(BaseModel):
    index: int
    code: str
    message: str


class IngestOut(BaseModel):
    success: bool
    accepted: int
    duplicates: int
    rejected: list[RejectedOut] = []


def _write_key(request: Request, body: Any) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic" and value:
        try:
            username = base64.b64decode(value.strip(), validate=True).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            raise AuthenticationError("malformed Basic authorization header") from None
        if username:
            return username
    token = bearer_token(request)
    if token:
        return token
    if isinstance(body, dict) and isinstance(body.get("writeKey"), str) and body["writeKey"]:
        return str(body["writeKey"])
    raise AuthenticationError("send the write key as the Basic auth username, a bearer token or writeKey")


async def _principal(request: Request, body: Any) -> Principal:
    token = _write_key(request, body)
    cached = cached_key_principal(request, token)
    return cached if cached is not None else await run_in_threadpool(key_principal, request, token)


async def _read(request: Request, limit: int) -> Any:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit + 4096:
        raise PayloadTooLargeError(f"body exceeds {limit // 1024} KB", details={"limit_bytes": limit})
    raw = await request.body()
    return decode_body(raw, request.headers.get("content-encoding"), limit)


async def _ingest(request: Request, principal: Principal, events: list[IncomingEvent], received_at: datetime) -> int:
    """Hand the events to the process's group-commit writer; returns once they are committed."""
    writer: EventWriter = request.app.state.event_writer
    return await asyncio.wrap_future(writer.submit(principal.workspace_id, events, received_at))


def _answer(accepted: int, duplicates: int, rejected: list[RejectedEvent] | None = None) -> Response:
    """The IngestOut body, serialised directly: these endpoints answer thousands of times a second."""
    body = {
        "success": True,
        "accepted": accepted,
        "duplicates": duplicates,
        "rejected": [r.__dict__ for r in rejected or []],
    }
    return Response(orjson.dumps(body), media_type="application/json")


async def _single(request: Request, type_: EventType) -> Response:
    body = await _read(request, MAX_EVENT_BYTES)
    principal = await _principal(request, body)
    received_at = utcnow()
    event = parse_call(body, received_at, type_=type_)
    stored = await _ingest(request, principal, [event], received_at)
    return _answer(1, 1 - stored)


@router.post("/track", response_model=IngestOut, responses=_ERRORS, openapi_extra=_JSON_BODY)
async def track(request: Request) -> Response:
    """Record an action (``event`` with ``properties``)."""
    return await _single(request, EventType.TRACK)


@router.post("/identify", response_model=IngestOut, responses=_ERRORS, openapi_extra=_JSON_BODY)
async def identify(request: Request) -> Response:
    """Tie a user to their actions and record ``traits`` about them."""
    return await _single(request, EventType.IDENTIFY)


@router.post("/page", response_model=IngestOut, responses=_ERRORS, openapi_extra=_JSON_BODY)
async def page(request: Request) -> Response:
    """Record a web or H5 page view."""
    return await _single(request, EventType.PAGE)


@router.post("/screen", response_model=IngestOut, responses=_ERRORS, openapi_extra=_JSON_BODY)
async def screen(request: Request) -> Response:
    """Record an app or mini-program screen view."""
    return await _single(request, EventType.SCREEN)


@router.post("/group", response_model=IngestOut, responses=_ERRORS, openapi_extra=_JSON_BODY)
async def group(request: Request) -> Response:
    """Associate a user with a group (a company, a community group)."""
    return await _single(request, EventType.GROUP)


@router.post("/alias", response_model=IngestOut, responses=_ERRORS, openapi_extra=_JSON_BODY)
async def alias(request: Request) -> Response:
    """Say that ``previousId`` and ``userId`` are the same person."""
    return await _single(request, EventType.ALIAS)


@router.post("/batch", response_model=IngestOut, responses=_ERRORS, openapi_extra=_JSON_BODY)
async def batch(request: Request) -> Response:
    """Many calls at once (``batch``: a list of calls, each with its ``type``). Valid events are
    stored even when others are rejected; each rejection names its index and reason."""
    body = await _read(request, MAX_BATCH_BYTES)
    principal = await _principal(request, body)
    if not isinstance(body, dict) or not isinstance(body.get("batch"), list):
        raise InvalidEventError("a batch body is an object with a `batch` list of calls")
    received_at = utcnow()
    defaults: dict[str, Any] = {
        "context": body.get("context") if isinstance(body.get("context"), dict) else {},
        "sentAt": body.get("sentAt"),
    }
    events: list[IncomingEvent] = []
    rejected: list[RejectedEvent] = []
    for index, call in enumerate(body["batch"]):
        try:
            events.append(parse_call(call, received_at, defaults=defaults))
        except SiyuError as exc:
            rejected.append(RejectedEvent(index, exc.code, exc.message))
    if not events and rejected:
        raise InvalidEventError("no event in the batch is valid", details=[r.__dict__ for r in rejected])
    stored = await _ingest(request, principal, events, received_at)
    return _answer(len(events), len(events) - stored, rejected)
