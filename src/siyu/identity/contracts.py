"""Types that cross the identity boundary."""

from __future__ import annotations

import enum
from typing import NamedTuple


class IdentifierKind(enum.StrEnum):
    PHONE = "phone"
    MASKED_PHONE = "masked_phone"
    EMAIL = "email"
    OPENID = "openid"  # scoped by the WeChat app id (official account or mini-program)
    UNIONID = "unionid"  # one per person across a WeChat open platform account
    WECOM_EXTERNAL_USERID = "wecom_external_userid"  # scoped by the WeCom corp id
    TAOBAO_NICK = "taobao_nick"
    TAOBAO_OUID = "taobao_ouid"
    JD_PIN = "jd_pin"
    DOUYIN_BUYER_ID = "douyin_buyer_id"
    YOUZAN_BUYER_ID = "youzan_buyer_id"
    MEMBER_NO = "member_no"
    USER_ID = "user_id"  # the brand's own user id (Segment userId)
    ANONYMOUS_ID = "anonymous_id"  # a device or browser id (Segment anonymousId)

    # Hash as the str it equals, in C: Enum's own __hash__ is a Python call (and hashes the
    # member's name, not the value it compares equal to). Identifiers are hashed millions of times.
    __hash__ = str.__hash__


# The kind a stored text names, without a call to the Enum (rows are converted by the thousand).
KIND_OF: dict[str, IdentifierKind] = {kind.value: kind for kind in IdentifierKind}


# Marketplace buyer ids are only unique within their platform.
PLATFORM_OF = {
    IdentifierKind.TAOBAO_NICK: "taobao",
    IdentifierKind.TAOBAO_OUID: "taobao",
    IdentifierKind.JD_PIN: "jd",
    IdentifierKind.DOUYIN_BUYER_ID: "douyin",
    IdentifierKind.YOUZAN_BUYER_ID: "youzan",
}


class Identifier(NamedTuple):
    """A normalised identifier: equal people-facing values compare equal. (A named tuple: resolution
    hashes and compares millions of them, and a tuple does that in C.)"""

    kind: IdentifierKind
    scope: str
    value: str
    # Weak identifiers describe a person but never merge people by themselves (masked phones).
    weak: bool = False
