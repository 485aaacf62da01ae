"""JSON columns' text: orjson (several times faster than the standard library) where it can,
the standard library where only it can (integers beyond 64 bits, NaN, non-string keys)."""

from __future__ import annotations

import json
from typing import Any

import orjson


class Encoded(str):
    """JSON text encoded ahead of time (outside a transaction); written as it is."""

    __slots__ = ()


def encoded(value: Any) -> Encoded:
    return Encoded(dumps(value))


def dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def loads(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
