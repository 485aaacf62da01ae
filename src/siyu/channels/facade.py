"""The channels domain's public face. Senders (campaigns, journeys, playbooks, the console's
test send) hand in :class:`~siyu.channels.ledger.MessageIn` values; the ledger writes each once
by key and the dispatcher sends it at most once. Everything else here reads."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from siyu.accounts.facade import get_workspace
from siyu.channels.accounts import account_row, default_account
from siyu.channels.callbacks import wechat_template_receipt
from siyu.channels.composer import SmsCheck
from siyu.channels.contracts import ChannelKind, Content
from siyu.channels.errors import NoAccountError
from siyu.channels.ledger import WENT_OUT, cancel_source, count_by_status, hold_source, release_source
from siyu.channels.policy import Policy, SkipReason, load_policy
from siyu.channels.prepare import Links, PrepareReport, SendRequest, prepare_send
from siyu.channels.receipts import receipts_of, record_deliveries
from siyu.channels.sending import SendReport, send_messages
from siyu.channels.suppression import suppress_addresses
from siyu.channels.tables import ChannelAccount, Message, Suppression
from siyu.channels.templates import (
    SmsSettings,
    TemplateDraft,
    TemplatePublic,
    check_template,
    draft_of,
    refuse,
    render_for,
    save_template,
    sms_check_for,
    template_row,
    template_to_public,
)
from siyu.channels.templating import Problem
from siyu.channels.words import WordList, word_list
from siyu.core.clock import utcnow
from siyu.core.errors import NotFoundError
from siyu.core.pagination import Page
from siyu.profiles.facade import profile_tag_ids, profile_traits
from siyu.profiles.masking import mask_email, mask_phone
from siyu.segments.facade import memberships
from siyu.segments.library import segment_names
from siyu.storage.keyed import keyed_rows, stored_datetime
from siyu.storage.paging import newest_first
from siyu.storage.scoping import require_workspace
from siyu.tags.facade import tag_refs

__all__ = ["WENT_OUT", "SendReport", "cancel_source", "hold_source", "release_source", "send_messages"]


@dataclass(frozen=True)
class ReceiptPublic:
    kind: str
    at: datetime
    detail: dict[str, Any]


@dataclass(frozen=True)
class MessagePublic:
    id: str
    key: str
    channel: str
    kind: str
    account_id: str | None
    profile_id: str | None
    address: str
    template_id: str | None
    content: dict[str, Any]
    source: str
    status: str
    reason: str
    attempts: int
    provider_id: str
    parts: int
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    receipts: tuple[ReceiptPublic, ...] = ()


def mask_address(channel: str, address: str) -> str:
    if channel == "sms":
        return mask_phone(address)
    if channel == "email":
        return mask_email(address)
    return address


def _public(row: Message, mask: bool, receipts: tuple[ReceiptPublic, ...] = ()) -> MessagePublic:
    return MessagePublic(
        id=row.id,
        key=row.key,
        channel=row.channel,
        kind=row.kind,
        account_id=row.account_id,
        profile_id=row.profile_id,
        address=mask_address(row.channel, row.address) if mask else row.address,
        template_id=row.template_id,
        # Rendered text carries the person's details: masked readers see which template only.
        content={"template": (row.content or {}).get("template", "")} if mask else dict(row.content or {}),
        source=row.source,
        status=row.status,
        reason=row.reason,
        attempts=row.attempts,
        provider_id=row.provider_id,
        parts=row.parts,
        created_at=row.created_at,
        sent_at=row.sent_at,
        delivered_at=row.delivered_at,
        receipts=receipts,
    )


def list_messages(
    scoped: Session,
    *,
    mask: bool,
    channel: str | None = None,
    status: str | None = None,
    source: str | None = None,
    profile_id: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[MessagePublic]:
    stmt = select(Message)
    for column, value in (
        (Message.channel, channel),
        (Message.status, status),
        (Message.source, source),
        (Message.profile_id, profile_id),
    ):
        if value:
            stmt = stmt.where(column == value)
    return newest_first(scoped, stmt, Message.id, cursor=cursor, limit=limit, convert=lambda r: _public(r, mask))


def get_message(scoped: Session, message_id: str, *, mask: bool) -> MessagePublic:
    row = scoped.get(Message, message_id)
    if row is None:
        raise NotFoundError("message not found")
    receipts = tuple(ReceiptPublic(r.kind, r.at, dict(r.detail or {})) for r in receipts_of(scoped, message_id))
    return _public(row, mask, receipts)


# Composed operations for the edges (API, CLI, demo): each loads what the lower modules need.


def workspace_policy(scoped: Session) -> tuple[Policy, str]:
    """The workspace's send policy and its own sensitive words."""
    return load_policy(scoped, get_workspace(scoped, require_workspace(scoped)).timezone)


def words_for(scoped: Session) -> WordList:
    return word_list(workspace_policy(scoped)[1])


def prepare(scoped: Session, request: SendRequest, links: Links, *, dry_run: bool = False) -> PrepareReport:
    """Prepare a send under the workspace's policy (a dry run is the interception report)."""
    policy, extra_words = workspace_policy(scoped)
    return prepare_send(scoped, request, policy=policy, words=word_list(extra_words), links=links, dry_run=dry_run)


def sms_settings(scoped: Session, account_id: str | None) -> SmsSettings | None:
    """The signature and provider an SMS template sends with (its account, else the default)."""
    try:
        row = account_row(scoped, account_id) if account_id else default_account(scoped, ChannelKind.SMS)
    except (NoAccountError, NotFoundError):
        return None
    return SmsSettings(signature=str((row.settings or {}).get("sign_name", "")), provider=row.provider)


def check_draft(scoped: Session, draft: TemplateDraft, known_traits: Collection[str]) -> list[Problem]:
    sms = sms_settings(scoped, draft.account_id) if draft.channel is ChannelKind.SMS else None
    return check_template(
        draft, known_traits=known_traits, segments=set(segment_names(scoped)), sms=sms, words=words_for(scoped)
    )


def create_template(
    scoped: Session, draft: TemplateDraft, known_traits: Collection[str], actor_id: str | None
) -> TemplatePublic:
    refuse(check_draft(scoped, draft, known_traits))
    return save_template(scoped, draft, actor_id)


def update_template(
    scoped: Session, template_id: str, draft: TemplateDraft, known_traits: Collection[str]
) -> TemplatePublic:
    template_row(scoped, template_id)
    refuse(check_draft(scoped, draft, known_traits))
    return save_template(scoped, draft, None, template_id)


@dataclass(frozen=True)
class Preview:
    content: Content
    sms: SmsCheck | None


def preview_template(
    scoped: Session, template_id: str, profile_id: str, extra: dict[str, Any], links: Links
) -> Preview:
    """The template as this person would get it, with the SMS checks."""
    row = template_row(scoped, template_id)
    draft = draft_of(row)
    traits = profile_traits(scoped, [profile_id])
    if profile_id not in traits:
        raise NotFoundError("profile not found")
    name, person = traits[profile_id]
    refs = tag_refs(scoped)
    context: dict[str, Any] = {
        "profile": {**person, "id": profile_id, "display_name": name or ""},
        "tags": sorted(refs[t].name for t in profile_tag_ids(scoped, [profile_id]).get(profile_id, []) if t in refs),
        "event": {},
        "order": {},
        "campaign": {},
        "brand": {},
        "link": SAMPLE_LINK,
        "unsubscribe_url": f"{links.public_url.rstrip('/')}/u/preview",
        **extra,
    }
    content = render_for(draft, context, memberships(scoped, [profile_id]).get(profile_id, set()))
    sms = None
    if draft.channel is ChannelKind.SMS:
        sms = sms_check_for(draft, content, sms_settings(scoped, row.account_id), words_for(scoped))
    return Preview(content, sms)


SAMPLE_LINK = "https://s.example.cn/s/Ab3dE5g"


def record_wechat_receipt(scoped: Session, app_id: str, fields: dict[str, Any]) -> bool:
    """A TEMPLATESENDJOBFINISH from an official account: the message it reports on is delivered or
    not; ``failed:user block`` also suppresses the follower's openid."""
    rows = scoped.scalars(select(ChannelAccount).where(ChannelAccount.provider == "wechat_oa"))
    account = next((r for r in rows if (r.settings or {}).get("app_id") == app_id), None)
    if account is None:
        return False
    report = wechat_template_receipt(account.id, fields, utcnow())
    if report is None:
        return False
    record_deliveries(scoped, [report])
    if str(fields.get("Status", "")).replace(" ", "").startswith("failed:userblock"):
        suppress_addresses(
            scoped,
            [(ChannelKind.WECHAT_OA.value, str(fields.get("FromUserName", "")), "blocked the account")],
            source="wechat",
        )
    return True


def get_template(scoped: Session, template_id: str) -> TemplatePublic:
    return template_to_public(template_row(scoped, template_id))


def check_saved_template(scoped: Session, template_id: str, known_traits: Collection[str]) -> list[Problem]:
    """A saved template checked again as saving would (the words, signature or traits it relies
    on may have changed since)."""
    return check_draft(scoped, draft_of(template_row(scoped, template_id)), known_traits)


def check_account(scoped: Session, template: TemplatePublic) -> str | None:
    """Why the template could not be sent now for want of an account (None: it can)."""
    try:
        row = account_row(scoped, template.account_id) if template.account_id else None
        if row is None:
            row = default_account(scoped, ChannelKind(template.channel))
    except (NoAccountError, NotFoundError) as exc:
        return str(exc)
    return None if row.enabled else f"the {template.channel} account {row.name} is turned off"


@dataclass(frozen=True)
class SourceSummary:
    """A source's messages by status, and its skipped ones by reason."""

    statuses: dict[str, int]
    skipped: dict[str, int]


def source_summary(scoped: Session, source: str) -> SourceSummary:
    reasons = scoped.execute(
        select(Message.reason, func.count())
        .where(Message.source == source, Message.status == "skipped")
        .group_by(Message.reason)
    )
    skipped: dict[str, int] = {}
    for reason, n in reasons:  # "frequency_cap: at most 3 sms in 7 days" counts as frequency_cap
        word = str(reason).split(":", 1)[0]
        skipped[word] = skipped.get(word, 0) + int(n)
    return SourceSummary(count_by_status(scoped, source), skipped)


def statuses_by_profile(scoped: Session, source: str) -> dict[str, tuple[str, str]]:
    """Each person's message of the source (the one that got furthest): (status, skip reason
    word)."""
    rows = scoped.execute(select(Message.profile_id, Message.status, Message.reason).where(Message.source == source))
    best: dict[str, tuple[str, str]] = {}
    for p, status, reason in rows:  # with a fallback a person has several: the one that got furthest
        if p and (p not in best or _RANK.get(status, 0) > _RANK.get(best[p][0], 0)):
            best[str(p)] = (status, reason.split(":", 1)[0] if status == "skipped" else "")
    return best


_RANK = {"skipped": 0, "failed": 1, "queued": 2, "held": 2, "sending": 3, "sent": 4, "undelivered": 4, "delivered": 5}


_SENT_TO = """
SELECT m.profile_id, m.source, m.sent_at, m.channel
FROM keys CROSS JOIN messages AS m {indexed_by:ix_messages_workspace_id_profile_id_created_at}
  ON m.workspace_id = :w AND m.profile_id = keys.key
WHERE m.created_at >= :since AND m.sent_at IS NOT NULL AND m.source LIKE :prefix
"""


def went_out(
    scoped: Session, profile_ids: Sequence[str], since: datetime, prefix: str = "campaign:"
) -> list[tuple[str, str, datetime, str]]:
    """(person, source, sent at, channel) of these people's messages from sources starting with
    ``prefix`` written since ``since`` that went out: the touches attribution weighs."""
    rows = keyed_rows(scoped, _SENT_TO, list(profile_ids), {"since": since, "prefix": prefix + "%"})
    return [(p, src, stored_datetime(at), channel) for p, src, at, channel in rows]


def opt_outs(scoped: Session, source: str) -> int:
    """The source's messages whose address was suppressed after the message went out (a stop
    reply, an unsubscribe, a complaint)."""
    stmt = (
        select(func.count())
        .select_from(Message)
        .join(Suppression, (Suppression.channel == Message.channel) & (Suppression.address == Message.address))
        .where(Message.source == source, Message.sent_at.is_not(None), Suppression.created_at >= Message.sent_at)
    )
    return int(scoped.scalar(stmt) or 0)


_OUT_OF_REACH = (SkipReason.NO_ADDRESS, SkipReason.NO_CONSENT, SkipReason.SUPPRESSED, SkipReason.NO_ACCEPTANCE)
_SKIPPED_BY_KEY = """
SELECT m.profile_id, m.reason
FROM keys CROSS JOIN messages AS m ON m.workspace_id = :w AND m.key = keys.key
WHERE m.status = 'skipped'
"""


def unreachable(scoped: Session, key_prefix: str, profile_ids: Sequence[str]) -> set[str]:
    """Of these people, those whose message keyed ``key_prefix + person`` was skipped because the
    channel cannot reach them (no address, no consent, suppressed, no acceptance): the ones a
    fallback channel should try."""
    rows = keyed_rows(scoped, _SKIPPED_BY_KEY, [key_prefix + p for p in profile_ids])
    return {str(p) for p, reason in rows if str(reason).split(":", 1)[0] in _OUT_OF_REACH}
