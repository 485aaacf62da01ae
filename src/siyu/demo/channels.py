"""The demo brand's channels: sandbox accounts for every channel (nothing leaves the machine;
receipts, replies and clicks are simulated), a few templates — one with a version for the
high-value segment — and a first send of each kind through the send policy, so the ledger
shows messages delivered and messages skipped with their reasons."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.channels import accounts
from siyu.channels import facade as channels
from siyu.channels.contracts import ChannelKind, MessageKind
from siyu.channels.prepare import Links, Recipient, SendRequest
from siyu.channels.templates import TemplateDraft, Variant, list_templates
from siyu.identity.tables import Identity
from siyu.segments.library import list_segments

SIGNATURE = "溪谷美妆"
MEMBER_DAY = "{{ profile.display_name | default('亲爱的会员', true) }}，本周六会员日全场 8 折，积分加倍。拒收请回复R"
FIRST_SEND = 300
SANDBOXES = {
    ChannelKind.SMS: {"sign_name": SIGNATURE, "delay_seconds": "3"},
    ChannelKind.EMAIL: {"delay_seconds": "5"},
    ChannelKind.WECHAT_OA: {"delay_seconds": "2"},
    ChannelKind.WECOM: {"delay_seconds": "2"},
    ChannelKind.APP_PUSH: {"delay_seconds": "2"},
}


def seed_channels(scoped: Session, links: Links) -> int:
    """Accounts, templates and a first send (in a workspace without templates); returns how many
    messages the first sends wrote."""
    if list_templates(scoped):
        return 0
    for channel, settings in SANDBOXES.items():
        accounts.save_account(
            scoped,
            links.secret_key,
            accounts.AccountIn(channel, "sandbox", f"沙箱·{channel.value}", settings, {}),
        )
    segments = {s.name: s.id for s in list_segments(scoped)}
    vip = segments.get("短信可达的高价值客户")
    drafts = [
        TemplateDraft(
            name="会员日提醒",
            channel=ChannelKind.SMS,
            kind=MessageKind.MARKETING,
            body=MEMBER_DAY,
            variants=(
                (Variant(vip, body="尊敬的金卡会员，本周六会员日专享 7 折并赠小样一份。拒收请回复R"),) if vip else ()
            ),
        ),
        TemplateDraft(
            name="发货通知",
            channel=ChannelKind.SMS,
            kind=MessageKind.TRANSACTIONAL,
            body="您的订单已发货，请留意查收。",
        ),
        TemplateDraft(
            name="会员月刊",
            channel=ChannelKind.EMAIL,
            kind=MessageKind.MARKETING,
            subject="{{ profile.display_name | default('会员', true) }}，本月新品与会员礼遇",
            body="<h2>本月新品</h2><p>秋冬修护系列上新，会员专享试用装。</p>",
        ),
    ]
    made = {d.name: channels.create_template(scoped, d, set(), None).id for d in drafts}
    people = list(
        scoped.scalars(
            select(Identity.profile_id)
            .where(Identity.kind == "phone", Identity.profile_id.is_not(None), Identity.weak.is_(False))
            .order_by(Identity.id)
            .limit(FIRST_SEND)
        )
    )
    written = 0
    for name, step in (("发货通知", "first"), ("会员日提醒", "first")):
        report = channels.prepare(
            scoped,
            SendRequest(
                source="send:demo",
                step=f"{name}:{step}",
                template_id=made[name],
                recipients=[Recipient(p) for p in people if p],
            ),
            links,
        )
        written += report.written
    return written
