"""Parse WeChat's XML safely (no entities, no external references)."""

from __future__ import annotations

from typing import Any

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from siyu.ingest.wechat.errors import CallbackRejectedError

MAX_XML_BYTES = 64 * 1024


def parse(body: bytes | str) -> dict[str, Any]:
    """Top-level fields as text; an element with children (``SubscribeMsgPopupEvent`` holding
    repeated ``<List>``) as a list of its children's fields."""
    raw = body.encode() if isinstance(body, str) else body
    if len(raw) > MAX_XML_BYTES:
        raise CallbackRejectedError("message too large")
    try:
        root = ElementTree.fromstring(raw)
    except (ElementTree.ParseError, DefusedXmlException) as exc:
        raise CallbackRejectedError("body is not valid XML") from exc
    return {
        child.tag: [{f.tag: (f.text or "").strip() for f in item} for item in child]
        if len(child)
        else (child.text or "").strip()
        for child in root
    }
