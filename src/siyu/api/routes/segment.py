"""Segment-compatible HTTP Tracking API, as documented in the OpenAPI schema.

In a running server :class:`siyu.api.event_gate.EventGate` answers these calls before routing;
these routes describe them and answer through the same code when no gate is in front.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from siyu.api.deps import client_ip
from siyu.api.errors import COMMON_ERRORS
from siyu.api.event_gate import Services, answer_call, limit_of, refuse_declared_oversize

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


async def _answer(request: Request, call: str) -> Response:
    refuse_declared_oversize(request.headers, limit_of(call))
    state = request.app.state
    services = Services(state.db, state.key_cache, state.event_writer)
    payload = await answer_call(services, call, request.headers, await request.body(), client_ip(request))
    return Response(payload, media_type="application/json")


@router.post("/track", response_model=IngestOut, responses=_ERRORS, openapi_extra=_JSON_BODY)
async def track(request: Request) -> Response:
    """Record an action (``event`` with ``properties``)."""
    return await _answer(request, "track")


@router.post("/identify", response_model=IngestOut, responses=_ERRORS, openapi_extra=_JSON_BODY)
async def identify(request: Request) -> Response:
    """Tie a user to their actions and record ``traits`` about them."""
    return await _answer(request, "identify")


@router.post("/page", response_model=IngestOut, responses=_ERRORS, openapi_extra=_JSON_BODY)
async def page(request: Request) -> Response:
    """Record a web or H5 page view."""
    return await _answer(request, "page")


@router.post("/screen", response_model=IngestOut, responses=_ERRORS, openapi_extra=_JSON_BODY)
async def screen(request: Request) -> Response:
    """Record an app or mini-program screen view."""
    return await _answer(request, "screen")


@router.post("/group", response_model=IngestOut, responses=_ERRORS, openapi_extra=_JSON_BODY)
async def group(request: Request) -> Response:
    """Associate a user with a group (a company, a community group)."""
    return await _answer(request, "group")


@router.post("/alias", response_model=IngestOut, responses=_ERRORS, openapi_extra=_JSON_BODY)
async def alias(request: Request) -> Response:
    """Say that ``previousId`` and ``userId`` are the same person."""
    return await _answer(request, "alias")


@router.post("/batch", response_model=IngestOut, responses=_ERRORS, openapi_extra=_JSON_BODY)
async def batch(request: Request) -> Response:
    """Many calls at once (``batch``: a list of calls, each with its ``type``). Valid events are
    stored even when others are rejected; each rejection names its index and reason."""
    return await _answer(request, "batch")
