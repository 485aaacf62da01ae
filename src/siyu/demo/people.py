"""Synthetic people: who they are, which channels know them, and by which identifiers.

Each person appears in one to four channels. Channels link the way they do in real life:
WeChat surfaces share the unionid, members and authorised mini-program users give a phone,
marketplaces only show a masked phone. A few families share one phone. The true person id is
kept on every row so identity resolution can be scored against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from siyu.demo import arrays as arr
from siyu.demo.vocab import (
    CATALOGUE,
    CITIES,
    EMAIL_DOMAINS,
    GIVEN_FEMALE,
    GIVEN_MALE,
    MOBILE_PREFIXES,
    PINYIN,
    SURNAMES,
)

CHANNELS = ("tmall", "jd", "douyin", "miniprogram", "oa", "wecom", "member")
CHANNEL_WEIGHTS = np.array([0.30, 0.15, 0.20, 0.15, 0.10, 0.06, 0.04])
CHANNEL_COUNT_P = np.array([0.45, 0.30, 0.17, 0.08])
PURCHASE_CHANNELS = ("tmall", "jd", "douyin", "miniprogram", "member")
MP_APPID = "wx5d3e8a1b2c4f6a7b"
OA_APPID = "wx9a8b7c6d5e4f3a2b"
WECOM_CORPID = "ww1c2d3e4f5a6b7c8d"


@dataclass(frozen=True)
class PeopleChunk:
    people: pa.Table
    identities: pa.Table
    channels: np.ndarray  # (n, 7) bool
    joined_at: np.ndarray  # seconds before `until`
    gap_days: np.ndarray  # mean days between purchases
    favourite_category: np.ndarray
    masked_phone: pa.Array


def seconds_before(until: datetime, seconds: np.ndarray) -> pa.Array:
    """UTC timestamps ``seconds`` before ``until``, as an Arrow column."""
    anchor = np.datetime64(until.astimezone(UTC).replace(tzinfo=None), "us")
    values = anchor - (seconds * 1e6).astype("timedelta64[us]")
    return pa.array(values, type=pa.timestamp("us")).cast(pa.timestamp("us", tz="UTC"))


def _channels(rng: np.random.Generator, n: int) -> np.ndarray:
    counts = rng.choice(4, size=n, p=CHANNEL_COUNT_P) + 1
    keys = np.log(rng.random((n, len(CHANNELS)))) / CHANNEL_WEIGHTS  # Gumbel top-k
    order = np.argsort(-keys, axis=1)
    chosen = np.zeros((n, len(CHANNELS)), dtype=bool)
    rows = np.arange(n)
    for k in range(4):
        take = counts > k
        chosen[rows[take], order[take, k]] = True
    return chosen


def _names(rng: np.random.Generator, n: int, male: np.ndarray) -> pa.Array:
    surname = arr.choose(list(SURNAMES), arr.weighted_ranks(rng, n, len(SURNAMES)))
    male_chars, female_chars = list(GIVEN_MALE), list(GIVEN_FEMALE)
    first = pc.if_else(
        pa.array(male),
        arr.choose(male_chars, rng.integers(0, len(male_chars), n)),
        arr.choose(female_chars, rng.integers(0, len(female_chars), n)),
    )
    second = pc.if_else(
        pa.array(rng.random(n) < 0.7),
        pc.if_else(
            pa.array(male),
            arr.choose(male_chars, rng.integers(0, len(male_chars), n)),
            arr.choose(female_chars, rng.integers(0, len(female_chars), n)),
        ),
        pa.array([""] * n),
    )
    return arr.concat(surname, first, second)


def generate_people(rng: np.random.Generator, first_id: int, n: int, until: datetime, history_days: int) -> PeopleChunk:
    ids = np.arange(first_id, first_id + n, dtype=np.int64)
    male = rng.random(n) < 0.35  # a beauty brand's customers are mostly women
    names = _names(rng, n, male)
    phones_raw = arr.concat(
        arr.choose(MOBILE_PREFIXES, rng.integers(0, len(MOBILE_PREFIXES), n)),
        arr.digits(rng.integers(0, 10**8, n), 8),
    )
    # Families sharing one phone: the next person reuses the previous person's number.
    shared = np.flatnonzero(rng.random(n) < 0.005)
    shared = shared[shared > 0]
    source = np.arange(n)
    source[shared] = shared - 1
    phones = pc.take(phones_raw, pa.array(source))
    masked = arr.concat(pc.utf8_slice_codeunits(phones, 0, 3), "****", pc.utf8_slice_codeunits(phones, 7, 11))
    channels = _channels(rng, n)
    has = {c: channels[:, i] for i, c in enumerate(CHANNELS)}
    joined = rng.uniform(0, history_days * 86400, n)
    joined_dt = seconds_before(until, joined)
    city_idx = rng.integers(0, len(CITIES), n)
    pinyin_a = arr.choose(PINYIN, rng.integers(0, len(PINYIN), n))
    pinyin_b = arr.choose(PINYIN, rng.integers(0, len(PINYIN), n))
    email_local = arr.concat(pinyin_a, pinyin_b, arr.digits(rng.integers(0, 10**4, n), 4))
    email = arr.concat(email_local, "@", arr.choose(EMAIL_DOMAINS, rng.integers(0, len(EMAIL_DOMAINS), n)))
    has_email = (has["member"] | has["miniprogram"]) & (rng.random(n) < 0.3)
    member_no = arr.concat("M", arr.digits(ids + 10_000_000, 10))
    unionid = arr.concat("oUn", arr.random_strings(rng, n, 25, arr.WECHAT))
    birthday = pa.array((np.datetime64("1965-01-01") + rng.integers(0, 365 * 40, n)).astype("datetime64[D]"))
    people = pa.table(
        {
            "person_id": ids,
            "name": names,
            "gender": pa.array(np.where(male, "male", "female")),
            "birthday": birthday,
            "province": arr.choose([c[0] for c in CITIES], city_idx),
            "city": arr.choose([c[1] for c in CITIES], city_idx),
            "district": arr.choose([c[2] for c in CITIES], city_idx),
            "phone": phones,
            "email": arr.mask(email, has_email),
            "member_no": arr.mask(member_no, has["member"]),
            "unionid": arr.mask(unionid, has["miniprogram"] | has["oa"] | has["wecom"]),
            "channels": pa.array(channels.astype(np.uint8) @ (1 << np.arange(len(CHANNELS))).astype(np.int64)),
            "joined_at": joined_dt,
        }
    )

    parts: list[pa.Table] = []

    def add(kind: str, scope: str, values: pa.Array, where: np.ndarray, weak: bool = False) -> None:
        idx = np.flatnonzero(where)
        if idx.size == 0:
            return
        take = pa.array(idx)
        parts.append(
            pa.table(
                {
                    "person_id": pa.array(ids[idx]),
                    "kind": pa.array([kind] * idx.size, type=pa.string()),
                    "scope": pa.array([scope] * idx.size, type=pa.string()),
                    "value": pc.take(values, take),
                    "weak": pa.array(np.full(idx.size, weak)),
                    "first_seen_at": pc.take(joined_dt, take),
                }
            )
        )

    nick = arr.concat(pinyin_b, pinyin_a, arr.digits(rng.integers(0, 10**5, n), 5))
    add("taobao_nick", "tmall", nick, has["tmall"])
    add("jd_pin", "jd", arr.concat("jd_", arr.random_strings(rng, n, 12, arr.HEX)), has["jd"])
    add("douyin_buyer_id", "douyin", arr.concat("dy", arr.random_strings(rng, n, 16, arr.DIGITS)), has["douyin"])
    add("openid", MP_APPID, arr.concat("oMp", arr.random_strings(rng, n, 25, arr.WECHAT)), has["miniprogram"])
    add("openid", OA_APPID, arr.concat("oOa", arr.random_strings(rng, n, 25, arr.WECHAT)), has["oa"])
    add(
        "wecom_external_userid",
        WECOM_CORPID,
        arr.concat("wmEx", arr.random_strings(rng, n, 28, arr.WECHAT)),
        has["wecom"],
    )
    wechat_union = has["miniprogram"] | has["oa"] | (has["wecom"] & (rng.random(n) < 0.8))
    add("unionid", "", unionid, wechat_union)
    add("member_no", "", member_no, has["member"])
    gives_phone = has["member"] | (has["miniprogram"] & (rng.random(n) < 0.7)) | (has["tmall"] & (rng.random(n) < 0.3))
    add("phone", "", phones, gives_phone)
    add("email", "", email, has_email)
    for platform in ("tmall", "jd", "douyin"):
        add("masked_phone", platform, masked, has[platform], weak=True)
    identities = pa.concat_tables(parts) if parts else pa.table({})

    gap_days = np.exp(rng.normal(np.log(75), 0.5, n))
    favourite = rng.integers(0, len(CATALOGUE), n)
    return PeopleChunk(people, identities, channels, joined, gap_days, favourite, masked)
