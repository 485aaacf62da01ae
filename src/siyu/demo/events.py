"""Synthetic behaviour: official-account follows and unfollows, WeCom adds, mini-program page
views and add-to-cart, and message link clicks, each from the identity that would report it."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from siyu.demo import arrays as arr
from siyu.demo.people import CHANNELS, MP_APPID, OA_APPID, WECOM_CORPID, PeopleChunk, seconds_before

_TS = pa.timestamp("us", tz="UTC")
EVENT_SCHEMA = pa.schema(
    [
        ("message_id", pa.string()),
        ("type", pa.string()),
        ("event", pa.string()),
        ("person_id", pa.int64()),
        ("identity_kind", pa.string()),
        ("identity_scope", pa.string()),
        ("identity_value", pa.string()),
        ("properties", pa.string()),
        ("timestamp", _TS),
    ]
)
PAGES = ("/pages/index", "/pages/goods/detail", "/pages/category", "/pages/member/center", "/pages/activity/double11")
# (event type, name, channel that reports it, mean count per person in that channel)
_KINDS = (
    ("track", "OA Followed", "oa", 1.0),
    ("track", "OA Unfollowed", "oa", 0.12),
    ("track", "WeCom Contact Added", "wecom", 1.0),
    ("page", "Page Viewed", "miniprogram", 6.0),
    ("track", "Product Added", "miniprogram", 1.5),
    ("track", "Link Clicked", "any", 0.8),
)
_IDENTITY = {
    "oa": ("openid", OA_APPID),
    "wecom": ("wecom_external_userid", WECOM_CORPID),
    "miniprogram": ("openid", MP_APPID),
}


def generate_events(rng: np.random.Generator, chunk: PeopleChunk, skus: pa.Array, until: datetime) -> pa.Table:
    ids = chunk.people.column("person_id").to_numpy()
    identities = chunk.identities
    tables = []
    for k, (etype, name, channel, mean) in enumerate(_KINDS):
        member = np.asarray(
            chunk.channels.any(axis=1) if channel == "any" else chunk.channels[:, CHANNELS.index(channel)]
        )
        counts: np.ndarray
        if mean == 1.0:
            counts = member.astype(np.int64)
        elif mean < 1.0:
            counts = (member & (rng.random(ids.size) < mean)).astype(np.int64)
        else:
            counts = np.asarray(np.where(member, rng.poisson(mean, ids.size), 0))
        person_idx = np.repeat(np.arange(ids.size), counts)
        n = person_idx.size
        if n == 0:
            continue
        joined = chunk.joined_at[person_idx]
        # Follows and adds happen when the person joins; the rest spread over their time with us.
        at = joined if name in ("OA Followed", "WeCom Contact Added") else rng.uniform(0, joined)
        present = counts > 0
        starts = np.asarray(np.cumsum(counts) - counts)[present]
        seq = np.arange(n) - np.repeat(starts, counts[present])
        kind, scope = _IDENTITY.get(channel, ("", ""))
        if channel == "any":
            ident_kind = pa.array(["person"] * n)
            ident_scope = pa.array([""] * n)
            ident_value = pc.cast(pa.array(ids[person_idx]), pa.string())
        else:
            sel = identities.filter(
                pc.and_(pc.equal(identities.column("kind"), kind), pc.equal(identities.column("scope"), scope))
            )
            wanted = pa.table({"person_id": pa.array(ids[person_idx]), "row": pa.array(np.arange(n))})
            joined_ids = wanted.join(sel.select(["person_id", "value"]), "person_id").sort_by("row")
            ident_kind, ident_scope = pa.array([kind] * n), pa.array([scope] * n)
            ident_value = joined_ids.column("value").combine_chunks()
        props = _properties(rng, name, n, skus)
        tables.append(
            pa.table(
                {
                    "message_id": arr.concat("demo-", arr.digits(ids[person_idx], 10), f"-{k}-", arr.digits(seq, 4)),
                    "type": pa.array([etype] * n),
                    "event": pa.array([name] * n),
                    "person_id": pa.array(ids[person_idx]),
                    "identity_kind": ident_kind,
                    "identity_scope": ident_scope,
                    "identity_value": ident_value,
                    "properties": props,
                    "timestamp": seconds_before(until, at),
                }
            ).cast(EVENT_SCHEMA)
        )
    if not tables:
        return EVENT_SCHEMA.empty_table()
    return pa.concat_tables(tables).sort_by("timestamp")


def _properties(rng: np.random.Generator, name: str, n: int, skus: pa.Array) -> pa.Array:
    if name == "Page Viewed":
        return arr.concat('{"path": "', arr.choose(PAGES, rng.integers(0, len(PAGES), n)), '"}')
    if name == "Product Added":
        sku = pc.take(skus, pa.array(rng.integers(0, len(skus), n)))
        return arr.concat('{"sku": "', sku, '", "quantity": 1}')
    if name == "Link Clicked":
        channel = arr.choose(("sms", "wecom", "oa"), rng.integers(0, 3, n))
        return arr.concat('{"channel": "', channel, '"}')
    return pa.array(["{}"] * n)
