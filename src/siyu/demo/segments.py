"""The demo brand's consents, segments and global control group: most people with a phone agreed
to marketing SMS and some to audience upload (a deterministic share, so every seeding is the
same), a few dynamic segments of mixed conditions, and 5 % of people held out of campaigns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.analytics.facade import rule_catalog
from siyu.core.clock import utcnow
from siyu.identity.tables import Identity
from siyu.profiles.consent import Channel, ConsentIn, ConsentStatus, Purpose, record_consents
from siyu.rules.buckets import bucket_of
from siyu.segments import facade
from siyu.segments.contracts import SegmentDraft

SMS_SHARE_BP = 7_000
ADS_SHARE_BP = 3_500
GLOBAL_HOLDOUT_BP = 500
PROOF = {"text_version": "demo-2026-01", "text": "我同意接收品牌的优惠短信，回复 R 可退订"}
SEGMENTS: dict[str, tuple[str, dict[str, Any]]] = {
    "短信可达的高价值客户": (
        "重要价值、重要发展客户中同意接收营销短信的人：大促短信的首选",
        {
            "type": "and",
            "conditions": [
                {"type": "rfm_group", "groups": ["important_value", "important_develop"]},
                {"type": "reachable", "channel": "sms"},
            ],
        },
    ),
    "加购未买": (
        "最近 30 天加购过、却没有下单的人",
        {
            "type": "and",
            "conditions": [
                {"type": "event", "event": "Product Added", "window": {"days": 30}},
                {"type": "not", "condition": {"type": "orders", "value": 1, "window": {"days": 30}}},
            ],
        },
    ),
    "沉睡待召回": (
        "沉睡或流失、但曾买过两次以上",
        {
            "type": "and",
            "conditions": [
                {"type": "lifecycle", "stages": ["dormant", "lost"]},
                {"type": "orders", "value": 2},
            ],
        },
    ),
    "A/B 测试 10%": ("随机且稳定的 10% 人群", {"type": "bucket", "seed": "demo-ab", "from": 0, "to": 1000}),
}


def seed_segments(scoped: Session, data_dir: Path) -> int:
    """Consents, segments and the global control group (in a workspace without segments);
    returns how many segments were made."""
    if facade.list_segments(scoped):
        return 0
    _seed_consents(scoped)
    catalog = rule_catalog(scoped, data_dir)
    for name, (description, rule) in SEGMENTS.items():
        facade.create_segment(scoped, SegmentDraft(name, "dynamic", description, rule), catalog, None)
    facade.set_global_share(scoped, GLOBAL_HOLDOUT_BP, None)
    return len(SEGMENTS)


def _seed_consents(scoped: Session) -> None:
    phones = scoped.execute(
        select(Identity.id, Identity.profile_id).where(
            Identity.kind == "phone", Identity.profile_id.is_not(None), Identity.weak.is_(False)
        )
    ).all()
    at = utcnow()
    records = []
    for identity_id, owner in phones:
        profile_id = str(owner)
        if bucket_of("demo-sms", profile_id) < SMS_SHARE_BP:
            records.append(_granted(identity_id, Channel.SMS, Purpose.MARKETING, at))
        if bucket_of("demo-ads", profile_id) < ADS_SHARE_BP:
            records.append(_granted(identity_id, Channel.ADS, Purpose.AUDIENCE_UPLOAD, at))
    record_consents(scoped, records)


def _granted(identity_id: str, channel: Channel, purpose: Purpose, at: Any) -> ConsentIn:
    return ConsentIn(identity_id, channel, purpose, ConsentStatus.GRANTED, at, "demo: 会员注册", PROOF)
