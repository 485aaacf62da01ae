"""Identifier normalisation: canonical forms and clear refusals."""

from __future__ import annotations

import random
import re

import phonenumbers
import pytest

from siyu.identity.contracts import Identifier, IdentifierKind
from siyu.identity.errors import InvalidIdentifierError
from siyu.identity.normalise import clean_cell, normalise, normalise_phone

K = IdentifierKind
MP = "wx5d3e8a1b2c4f6a7b"
CORP = "ww1c2d3e4f5a6b7c8d"


@pytest.mark.parametrize(
    ("kind", "raw", "scope", "expected"),
    [
        (K.PHONE, "13812345678", "", Identifier(K.PHONE, "", "+8613812345678")),
        (K.PHONE, "+86 138-1234-5678", "", Identifier(K.PHONE, "", "+8613812345678")),
        (K.PHONE, "8613812345678", "", Identifier(K.PHONE, "", "+8613812345678")),
        (K.PHONE, "'13812345678", "", Identifier(K.PHONE, "", "+8613812345678")),  # Excel text prefix
        (K.PHONE, '="13812345678"', "", Identifier(K.PHONE, "", "+8613812345678")),  # Excel formula
        (K.PHONE, "\t13812345678 ", "", Identifier(K.PHONE, "", "+8613812345678")),  # tab before the id
        (K.PHONE, "１３８１２３４５６７８", "", Identifier(K.PHONE, "", "+8613812345678")),  # full-width
        (K.PHONE, "021-6432 1234", "", Identifier(K.PHONE, "", "+862164321234")),  # Shanghai landline
        (K.PHONE, "+1 650 253 0000", "", Identifier(K.PHONE, "", "+16502530000")),
        (K.PHONE, "138****5678", "tmall", Identifier(K.MASKED_PHONE, "taobao", "138****5678", weak=True)),
        (K.MASKED_PHONE, "+86138****5678", "jd", Identifier(K.MASKED_PHONE, "jd", "138****5678", weak=True)),
        (K.EMAIL, " Li.Na@QQ.com ", "", Identifier(K.EMAIL, "", "li.na@qq.com")),
        (K.EMAIL, "wang@例子.中国", "", Identifier(K.EMAIL, "", "wang@xn--fsqu00a.xn--fiqs8s")),
        (K.OPENID, "oMpAbCdEfGhIjKlMnOpQrStUvWxY", MP, Identifier(K.OPENID, MP, "oMpAbCdEfGhIjKlMnOpQrStUvWxY")),
        (K.UNIONID, "oUn_AbCdEfGhIjKlMnOpQrStUv-1", "", Identifier(K.UNIONID, "", "oUn_AbCdEfGhIjKlMnOpQrStUv-1")),
        (
            K.WECOM_EXTERNAL_USERID,
            "wmExAbCdEfGhIjKlMnOpQrStUvWxYz12",
            CORP,
            Identifier(K.WECOM_EXTERNAL_USERID, CORP, "wmExAbCdEfGhIjKlMnOpQrStUvWxYz12"),
        ),
        (K.TAOBAO_NICK, "甜蜜小兔88", "", Identifier(K.TAOBAO_NICK, "taobao", "甜蜜小兔88")),
        (K.JD_PIN, "\tjd_c0810293f10d", "", Identifier(K.JD_PIN, "jd", "jd_c0810293f10d")),
        (K.DOUYIN_BUYER_ID, "dy123456", "", Identifier(K.DOUYIN_BUYER_ID, "douyin", "dy123456")),
        (K.MEMBER_NO, "m0010000001", "", Identifier(K.MEMBER_NO, "", "M0010000001")),
        (K.ANONYMOUS_ID, "7D897FDB-7DCE", "", Identifier(K.ANONYMOUS_ID, "", "7D897FDB-7DCE")),
    ],
)
def test_canonical_forms(kind: IdentifierKind, raw: str, scope: str, expected: Identifier) -> None:
    assert normalise(kind, raw, scope) == expected


@pytest.mark.parametrize(
    ("kind", "raw", "scope", "reason"),
    [
        (K.PHONE, "12345", "", "not a valid phone number"),
        (K.PHONE, "not a phone", "", "not a phone number"),
        (K.PHONE, "13****78", "", "not in the 138****5678 form"),
        (K.PHONE, "", "", "is empty"),
        (K.EMAIL, "li.na@", "", "not an email address"),
        (K.EMAIL, "no-at-sign", "", "not an email address"),
        (K.OPENID, "oMpAbCdEfGhIjKlMnOpQrStUvWxY", "", "needs the app id"),
        (K.OPENID, "o p e n i d with spaces!!", MP, "characters WeChat ids never contain"),
        (K.WECOM_EXTERNAL_USERID, "wmExAbCdEfGhIjKlMnOpQrStUvWxYz12", "", "needs the WeCom corp id"),
        (K.PHONE, "138****5678", "pinduoduo", "unknown platform"),
        ("fax", "123", "", "unknown identifier kind"),
        (K.USER_ID, "u\x00123", "", "contains a control character"),
        (K.TAOBAO_NICK, "小兔\x1b[0m", "", "contains a control character"),
    ],
)
def test_refusals_say_why(kind: str, raw: str, scope: str, reason: str) -> None:
    with pytest.raises(InvalidIdentifierError, match=re.escape(reason)):
        normalise(kind, raw, scope)


def test_masked_phones_are_weak_and_real_ones_are_not() -> None:
    assert normalise(K.PHONE, "138****5678", "douyin").weak is True
    assert normalise(K.PHONE, "13812345678").weak is False


def test_clean_cell() -> None:
    assert clean_cell('= "  2000123 "') == "2000123"
    assert clean_cell("\u00a0ＡＢＣ\u00a0") == "ABC"


def test_cn_mobiles_normalise_as_the_full_parse_would() -> None:
    """Common CN mobile forms skip phonenumbers' parse: for every number range and each prefix,
    the result (or refusal) is the full parse's."""
    rng = random.Random(7)

    def full(text: str) -> str | None:
        try:
            number = phonenumbers.parse(text, "CN")
        except phonenumbers.NumberParseException:
            return None
        return phonenumbers.format_number(number, 0) if phonenumbers.is_valid_number(number) else None

    def ours(text: str) -> str | None:
        try:
            return normalise_phone(text).value
        except InvalidIdentifierError:
            return None

    checked = 0
    for head in range(1000, 2000):  # every four-digit start, valid ranges or not
        for _ in range(3):
            national = f"{head}{rng.randrange(10**7):07d}"
            for text in (national, f"+86{national}", f"86{national}", f"0086{national}", national[:-1], f"0{national}"):
                assert ours(text) == full(text), text
                checked += 1
    assert checked == 18000
