"""Identifier normalisation: one canonical form per identifier kind.

Values arrive from marketplace exports, SDKs and callbacks with the quirks of each (Excel's
leading ``'`` and ``="…"``, tabs before ids, full-width digits, spaces inside phone numbers,
masked receivers). Every kind has one rule; a value that cannot be understood is an error that
says why — never a guess.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import phonenumbers

from siyu.identity.contracts import PLATFORM_OF, Identifier, IdentifierKind
from siyu.identity.errors import InvalidIdentifierError

_EXCEL_FORMULA = re.compile(r'^=\s*"(.*)"$')
# Control characters (NUL among them) are no part of any identifier; stores and drivers differ on
# what they do with them, so they are refused rather than stored.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MASKED_CN_MOBILE = re.compile(r"^(?:\+?86)?(1\d{2})\*{4}(\d{4})$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$")
_WECHAT_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_WECHAT_APPID = re.compile(r"^wx[0-9a-f]{16}$")
_WECOM_CORPID = re.compile(r"^ww[0-9a-zA-Z]{16}$")
_PLATFORM_ALIASES = {
    "tmall": "taobao",
    "taobao": "taobao",
    "tb": "taobao",
    "jd": "jd",
    "jingdong": "jd",
    "douyin": "douyin",
    "dy": "douyin",
    "youzan": "youzan",
}
MAX_VALUE_CHARS = 200
# A CN mobile number, alone or after +86, 86 or 0086: most phones are, and parsing one through
# phonenumbers costs tens of microseconds. The number ranges are phonenumbers' own, so this gives
# what the full parse would; anything else takes the full parse.
_CN_MOBILE = re.compile(r"(?:\+86|0086|86)?(1\d{10})")


def _cn_mobile_ranges() -> re.Pattern[str]:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region("CN")
    pattern = metadata.mobile.national_number_pattern if metadata and metadata.mobile else None
    return re.compile(pattern or "(?!)")  # no metadata: every number takes the full parse


_CN_MOBILE_RANGES = _cn_mobile_ranges()


def clean_cell(raw: object) -> str:
    """Undo spreadsheet and export quirks; NFKC folds full-width characters to ASCII."""
    text = unicodedata.normalize("NFKC", str(raw)).replace("\u00a0", " ").strip().strip("\t").strip()
    match = _EXCEL_FORMULA.match(text)
    if match:
        text = match.group(1).strip()
    if text.startswith("'"):
        text = text[1:].strip()
    return text


def normalise(kind: IdentifierKind | str, raw: object, scope: str = "") -> Identifier:
    """Canonical identifier of ``kind`` for ``raw``; ``scope`` is the app id, corp id or platform."""
    if type(kind) is not IdentifierKind:
        try:
            kind = IdentifierKind(kind)
        except ValueError:
            raise InvalidIdentifierError(f"unknown identifier kind {kind!r}") from None
    return _normalise(kind, raw if type(raw) is str else str(raw), scope)


@lru_cache(maxsize=1 << 16)  # the same visitors and buyers come back again and again
def _normalise(kind: IdentifierKind, raw: str, scope: str) -> Identifier:
    value = clean_cell(raw)
    if not value:
        raise InvalidIdentifierError(f"{kind.value} is empty")
    if len(value) > MAX_VALUE_CHARS:
        raise InvalidIdentifierError(f"{kind.value} is longer than {MAX_VALUE_CHARS} characters")
    if _CONTROL.search(value) or (scope and _CONTROL.search(scope)):
        raise InvalidIdentifierError(f"{kind.value} contains a control character")
    scope = clean_cell(scope) if scope else ""
    match kind:
        case IdentifierKind.PHONE | IdentifierKind.MASKED_PHONE:
            return normalise_phone(value, scope)
        case IdentifierKind.EMAIL:
            return Identifier(kind, "", _email(value))
        case IdentifierKind.OPENID:
            if not _WECHAT_APPID.match(scope):
                raise InvalidIdentifierError("an openid needs the app id it belongs to (wx + 16 hex characters)")
            return Identifier(kind, scope, wechat_id(kind, value))
        case IdentifierKind.UNIONID:
            return Identifier(kind, "", wechat_id(kind, value))
        case IdentifierKind.WECOM_EXTERNAL_USERID:
            if not _WECOM_CORPID.match(scope):
                raise InvalidIdentifierError("an external_userid needs the WeCom corp id it belongs to (ww…)")
            return Identifier(kind, scope, wechat_id(kind, value))
        case (
            IdentifierKind.TAOBAO_NICK
            | IdentifierKind.TAOBAO_OUID
            | IdentifierKind.JD_PIN
            | IdentifierKind.DOUYIN_BUYER_ID
            | IdentifierKind.YOUZAN_BUYER_ID
        ):
            return Identifier(kind, PLATFORM_OF[kind], value)
        case IdentifierKind.MEMBER_NO:
            return Identifier(kind, scope, value.upper())
        case IdentifierKind.USER_ID | IdentifierKind.ANONYMOUS_ID:
            return Identifier(kind, "", value)
    raise AssertionError(kind)  # pragma: no cover - match is exhaustive


def platform_scope(platform: str) -> str:
    """The scope of marketplace identifiers: Tmall and Taobao share buyer accounts."""
    try:
        return _PLATFORM_ALIASES[platform.strip().lower()]
    except KeyError:
        raise InvalidIdentifierError(f"unknown platform {platform!r}") from None


def normalise_phone(value: str, platform: str = "") -> Identifier:
    """CN numbers to E.164 (+8613812345678); masked numbers (138****5678) become weak
    identifiers scoped by the platform that masked them."""
    compact = re.sub(r"[\s\-().]", "", value)
    masked = _MASKED_CN_MOBILE.match(compact)
    if masked:
        scope = platform_scope(platform) if platform else ""
        return Identifier(IdentifierKind.MASKED_PHONE, scope, f"{masked.group(1)}****{masked.group(2)}", weak=True)
    if "*" in compact:
        raise InvalidIdentifierError(f"masked phone {value!r} is not in the 138****5678 form")
    mobile = _CN_MOBILE.fullmatch(compact)
    if mobile and _CN_MOBILE_RANGES.fullmatch(mobile.group(1)):
        return Identifier(IdentifierKind.PHONE, "", "+86" + mobile.group(1))
    try:
        number = phonenumbers.parse(compact, "CN")
    except phonenumbers.NumberParseException as exc:
        raise InvalidIdentifierError(f"{value!r} is not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidIdentifierError(f"{value!r} is not a valid phone number")
    return Identifier(IdentifierKind.PHONE, "", phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def _email(value: str) -> str:
    address = value.lower()
    local, _, domain = address.rpartition("@")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidIdentifierError(f"{value!r} has an invalid domain") from None
    address = f"{local}@{domain}"
    if not _EMAIL.match(address):
        raise InvalidIdentifierError(f"{value!r} is not an email address")
    return address


def wechat_id(kind: IdentifierKind, value: str) -> str:
    """A WeChat-issued id (openid, unionid, external_userid) as given, if it can be one."""
    if not _WECHAT_ID.match(value):
        raise InvalidIdentifierError(f"{kind.value} {value!r} has characters WeChat ids never contain")
    return value
