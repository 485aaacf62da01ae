"""The demo brand's tag library: categories, a few tags of each kind, and a manual tag on some
people, so the console's tag pages have something to show once the first batch run is done."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.analytics.facade import rule_catalog
from siyu.profiles.tables import Profile
from siyu.tags import facade
from siyu.tags.contracts import TagDraft

RULES: dict[str, tuple[str, dict[str, Any]]] = {
    "上海女性": (
        "住在上海的女性客户",
        {
            "type": "and",
            "conditions": [
                {"type": "trait", "key": "city", "value_type": "string", "op": "contains", "value": "上海"},
                {"type": "trait", "key": "gender", "value_type": "string", "op": "eq", "value": "female"},
            ],
        },
    ),
    "近 90 天复购": ("最近 90 天买了两次及以上", {"type": "orders", "value": 2, "window": {"days": 90}}),
    "高价值沉睡": (
        "曾经贡献大、最近不再购买：召回的首选",
        {
            "type": "and",
            "conditions": [
                {"type": "rfm_group", "groups": ["important_keep", "important_retain"]},
                {"type": "lifecycle", "stages": ["dormant", "lost"]},
            ],
        },
    ),
}
COMPUTED = {"RFM 分层": "rfm_group", "偏好品类": "top_category", "生命周期阶段": "lifecycle_stage"}
VIP = "门店 VIP"
VIP_PEOPLE = 20


def seed_tags(scoped: Session, data_dir: Path) -> int:
    """Create the demo tags (in a workspace that has none); returns how many."""
    if facade.list_tags(scoped):
        return 0
    catalog = rule_catalog(scoped, data_dir)
    value = facade.create_category(scoped, "价值分层")
    marketing = facade.create_category(scoped, "营销人群")
    store = facade.create_category(scoped, "门店", marketing.id)
    made = 0
    for name, source in COMPUTED.items():
        draft = TagDraft(name, "computed", "每次分析计算后更新", "数据组", value.id, computed={"source": source})
        facade.create_tag(scoped, draft, catalog, None)
        made += 1
    for name, (description, rule) in RULES.items():
        facade.create_tag(scoped, TagDraft(name, "rule", description, "运营部", marketing.id, rule=rule), catalog, None)
        made += 1
    vip = facade.create_tag(scoped, TagDraft(VIP, "manual", "门店登记的 VIP 会员", "门店运营", store.id), catalog, None)
    people = list(scoped.scalars(select(Profile.id).order_by(Profile.id).limit(VIP_PEOPLE)))
    if people:
        facade.tag_people(scoped, vip.id, people, None)
    return made + 1
