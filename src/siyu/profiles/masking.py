"""Masking of personal data for roles that need not see it (138****1234, l***@qq.com, 王*).

Masking works on values by the kind of key they sit under, recursively, so traits and event
properties from any source are covered without a per-source list.
"""

from __future__ import annotations

import re
from typing import Any

PHONE_KEYS = frozenset({"phone", "mobile", "phone_number", "phonenumber", "tel", "telephone", "receiver_phone"})
EMAIL_KEYS = frozenset({"email", "mail", "email_address"})
NAME_KEYS = frozenset(
    {"name", "first_name", "last_name", "firstname", "lastname", "real_name", "receiver_name", "full_name", "nickname"}
)
ADDRESS_KEYS = frozenset({"address", "street", "receiver_address", "detail_address", "address_detail"})
_DIGITS = re.compile(r"\d")


def mask_phone(value: str) -> str:
    digits = "".join(_DIGITS.findall(value))
    if len(digits) >= 11:
        return f"{digits[-11:-8]}****{digits[-4:]}"
    if len(digits) >= 7:
        return f"{digits[:3]}****{digits[-2:]}"
    return "****"


def mask_email(value: str) -> str:
    local, _, domain = value.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def mask_name(value: str) -> str:
    return value[:1] + "*" * max(len(value) - 1, 1) if value else value


def mask_address(value: str) -> str:
    return value[:6] + "****" if len(value) > 6 else "****"


def _mask_value(key: str, value: Any) -> Any:
    lowered = key.lower()
    if isinstance(value, dict):
        return mask_mapping(value)
    if isinstance(value, list):
        return [_mask_value(key, v) for v in value]
    if not isinstance(value, str):
        return value
    if lowered in PHONE_KEYS:
        return mask_phone(value)
    if lowered in EMAIL_KEYS:
        return mask_email(value)
    if lowered in NAME_KEYS:
        return mask_name(value)
    if lowered in ADDRESS_KEYS:
        return mask_address(value)
    return value


def mask_mapping(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` with personal values masked wherever they appear."""
    return {key: _mask_value(key, value) for key, value in data.items()}
