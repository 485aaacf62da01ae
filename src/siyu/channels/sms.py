"""Domestic SMS rules every provider bills and reviews by: length with the 【signature】, parts
(70 characters in one SMS, 67 per part beyond), the opt-out a marketing SMS must carry, and which
replies mean "stop"."""

from __future__ import annotations

import math
import re

SINGLE_LIMIT = 70
PART_LIMIT = 67
MAX_LENGTH = 500
# Aliyun requires exactly this at the end of a promotional SMS; Tencent and others accept it.
DEFAULT_OPT_OUT = "拒收请回复R"
OPT_OUT_TEXTS = ("拒收请回复R", "回TD退订", "回T退订", "退订回T", "回N退订", "退订回TD", "退订回N")
# A reply that is one of these, however cased or padded, withdraws the person's consent.
_STOP_REPLY = re.compile(r"(?i)^(r|td|t|n|stop|unsubscribe|退订|取消|拒收|退訂)$")
_TRIM = re.compile(r"[\s\u3000。.!！,，]+")


def with_signature(signature: str, body: str) -> str:
    return f"【{signature}】{body}" if signature else body


def sms_length(text: str) -> int:
    """Every character counts one: Chinese, letters, digits, punctuation, spaces, brackets."""
    return len(text)


def sms_parts(length: int) -> int:
    if length <= 0:
        return 0
    return 1 if length <= SINGLE_LIMIT else math.ceil(length / PART_LIMIT)


def has_opt_out(text: str) -> bool:
    return any(marker in text for marker in OPT_OUT_TEXTS)


def is_stop_reply(text: str) -> bool:
    return bool(_STOP_REPLY.match(_TRIM.sub("", text)))
