"""One error shape for every failure: ``{"code", "message", "details"}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from siyu.core.errors import SiyuError

log = logging.getLogger("siyu.api")


class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any = None


# Every operation may answer with these; declared once so the OpenAPI schema is complete.
COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in (
        (401, "not signed in, or the key or session is not valid"),
        (403, "the role, key scope or CSRF token does not allow this"),
        (404, "no such object in this workspace"),
        (409, "conflicts with the current state"),
        (422, "the request is not valid; details name the fields"),
        (429, "too many requests; see Retry-After"),
    )
}


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"code": code, "message": message, "details": jsonable_encoder(details)}
    return JSONResponse(status_code=status, content=body, headers=headers)


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SiyuError)
    async def _siyu(_request: Request, exc: SiyuError) -> JSONResponse:
        headers = None
        if exc.status == 429 and isinstance(exc.details, dict):
            headers = {"Retry-After": str(exc.details.get("retry_after_seconds", 60))}
        if exc.status >= 500:
            log.error("server error %s: %s", exc.code, exc.message)
        return error_response(exc.status, exc.code, exc.message, exc.details, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "validation_failed", "the request is not valid", _field_errors(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # a body that is not JSON at all (bad bytes, bad syntax)
            return error_response(
                422,
                "validation_failed",
                "the request body is not valid JSON",
                [{"loc": ["body"], "msg": str(exc.detail), "type": "json_invalid"}],
            )
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), None)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return error_response(500, "internal_error", "an unexpected error occurred")
