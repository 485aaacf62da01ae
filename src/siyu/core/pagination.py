"""Opaque cursors for keyset pagination over time-sortable ids."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Generic, TypeVar

from siyu.core.errors import ValidationFailedError

T = TypeVar("T")


DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def encode_cursor(last_id: str) -> str:
    raw = json.dumps({"after": last_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        after = data["after"]
        if not isinstance(after, str):
            raise TypeError
        return after
    except (ValueError, KeyError, TypeError) as exc:
        raise ValidationFailedError(
            "cursor is not valid; pass the next_cursor of a previous page",
            details=[{"loc": ["query", "cursor"], "msg": "invalid cursor"}],
        ) from exc


def check_limit(limit: int) -> int:
    if limit < 1 or limit > MAX_LIMIT:
        raise ValidationFailedError(
            f"limit must be between 1 and {MAX_LIMIT}",
            details=[{"loc": ["query", "limit"], "msg": f"must be 1..{MAX_LIMIT}"}],
        )
    return limit


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None
