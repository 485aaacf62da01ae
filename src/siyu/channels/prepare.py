"""Preparing a send: from the people a sender names to ledger rows, in bulk. For each person —
their address on the channel, the send policy's verdict (consent, suppression, holdouts, one
contact per person, frequency caps, acceptances, quiet hours), then the template rendered for
them. Every person ends as one ledger row: queued (perhaps for a later window) or skipped with
its reason. A dry run gives the same counts without writing: the pre-send interception report."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.channels.accounts import account_row, default_account
from siyu.channels.composer import refusal
from siyu.channels.contracts import ChannelKind, Content, MessageKind
from siyu.channels.errors import TemplateInvalidError
from siyu.channels.ledger import FAILED, SKIPPED, MessageIn
from siyu.channels.policy import ALL, Policy, SkipReason
from siyu.channels.receipts import ADDRESS_KIND, CONSENT_CHANNEL
from siyu.channels.sending import send_messages
from siyu.channels.sms import with_signature
from siyu.channels.suppression import suppressed
from siyu.channels.tables import ChannelAccount, Message, SubscribeAcceptance
from siyu.channels.templates import draft_of, render_for, template_row
from siyu.channels.templating import render
from siyu.channels.unsubscribe import unsubscribe_url
from siyu.channels.words import WordList
from siyu.core.clock import utcnow
from siyu.identity.facade import identities_of_profiles
from siyu.profiles.consent import Purpose, granted
from siyu.profiles.facade import profile_tag_ids, profile_traits
from siyu.segments.facade import global_holdout_members, in_holdout, memberships
from siyu.storage.bulk import fetch_rows
from siyu.storage.scoping import require_workspace
from siyu.tags.facade import tag_refs

SAMPLES = 5
PUSH_KINDS = ("user_id", "anonymous_id")


@dataclass(frozen=True)
class Recipient:
    profile_id: str
    context: Mapping[str, Any] = field(default_factory=dict)  # the triggering event or order


@dataclass(frozen=True)
class SendRequest:
    source: str  # campaign:cmp_…, journey:jr_…, test
    step: str  # with the source and the person, the message's key
    template_id: str
    recipients: Sequence[Recipient]
    campaign: Mapping[str, Any] = field(default_factory=dict)
    holdout_id: str | None = None
    at: datetime | None = None  # when to send; now if not given


@dataclass
class PrepareReport:
    total: int = 0
    queued: int = 0
    delayed: int = 0  # queued for the next quiet-hours window
    written: int = 0  # new ledger rows (a repeated request writes none)
    skipped: Counter[str] = field(default_factory=Counter)
    samples: dict[str, list[str]] = field(default_factory=dict)  # reason → a few people
    channel: str = ""
    account_id: str = ""


@dataclass(frozen=True)
class Links:
    """How links in messages are made: the installation's public URL and secret, and the hook
    that turns a template's link into the one a person gets — a tracked short link, given the
    link and the message's key (left as it is when no hook is set)."""

    public_url: str
    secret_key: str
    shorten: Callable[[str, str], str] | None = None


def _account(scoped: Session, channel: ChannelKind, account_id: str | None) -> ChannelAccount:
    return account_row(scoped, account_id) if account_id else default_account(scoped, channel)


def _addresses(
    scoped: Session, channel: ChannelKind, account: ChannelAccount, ids: Sequence[str]
) -> dict[str, list[tuple[str, str]]]:
    """(identity_id, address) each person may be reached at on the channel, best first."""
    if channel is ChannelKind.WEBHOOK:
        return {p: [("", p)] for p in ids}
    kinds = PUSH_KINDS if channel is ChannelKind.APP_PUSH else (ADDRESS_KIND[channel],)
    scope = {
        ChannelKind.WECHAT_OA: "app_id",
        ChannelKind.MINIPROGRAM: "app_id",
        ChannelKind.WECOM: "corp_id",
    }.get(channel)
    wanted_scope = str((account.settings or {}).get(scope, "")) if scope else ""
    out: dict[str, list[tuple[str, str]]] = {}
    for profile_id, identity_id, _kind, id_scope, value in sorted(
        identities_of_profiles(scoped, ids, kinds), key=lambda r: (r[2] != kinds[0], r[1])
    ):
        if wanted_scope and id_scope != wanted_scope:
            continue
        out.setdefault(profile_id, []).append((identity_id, value))
    return out


def _recent(
    scoped: Session, ids: Sequence[str], keys: Mapping[str, str], now: datetime, days: int
) -> dict[str, Counter[str]]:
    """Marketing messages each person was sent (or has waiting) in the last ``days``, by channel —
    not counting this request's own messages."""
    since = now - timedelta(days=days)
    out: dict[str, Counter[str]] = {}
    rows = fetch_rows(
        scoped, Message, ("profile_id", "channel", "kind", "status", "created_at", "key"), "profile_id", ids
    )
    for profile_id, channel, kind, status, created_at, key in rows:
        if (
            kind == MessageKind.MARKETING
            and status not in (SKIPPED, FAILED)
            and created_at >= since
            and keys.get(profile_id) != key
        ):
            out.setdefault(profile_id, Counter())[channel] += 1
    return out


def prepare_send(
    scoped: Session, request: SendRequest, *, policy: Policy, words: WordList, links: Links, dry_run: bool = False
) -> PrepareReport:
    template = template_row(scoped, request.template_id)
    draft = draft_of(template)
    channel, kind = draft.channel, draft.kind
    marketing = kind is MessageKind.MARKETING
    account = _account(scoped, channel, template.account_id)
    settings = dict(account.settings or {})
    now = utcnow()
    at = max(request.at or now, now)
    report = PrepareReport(channel=channel.value, account_id=account.id)
    recipients = list({r.profile_id: r for r in reversed(request.recipients)}.values())[::-1]
    ids = [r.profile_id for r in recipients]
    report.total = len(recipients)
    keys = {p: f"{request.source}:{request.step}:{p}" for p in ids}
    verdict: dict[str, str] = {}  # profile → skip reason
    detail: dict[str, str] = {}

    candidates = _addresses(scoped, channel, account, ids)
    every_address = [a for options in candidates.values() for _, a in options]
    blocked = suppressed(scoped, channel.value, every_address) if every_address else set()
    consent_channel = CONSENT_CHANNEL.get(channel)
    consented = (
        granted(
            scoped,
            [i for options in candidates.values() for i, _ in options],
            consent_channel.value,
            Purpose.MARKETING.value,
        )
        if marketing and consent_channel is not None
        else set()
    )
    chosen: dict[str, tuple[str, str]] = {}
    for p in ids:
        options = candidates.get(p, [])
        if not options:
            verdict[p] = SkipReason.NO_ADDRESS
            continue
        open_ = [o for o in options if o[1] not in blocked]
        if not open_:
            verdict[p] = SkipReason.SUPPRESSED
            continue
        if marketing and consent_channel is not None:
            open_ = [o for o in open_ if o[0] in consented]
            if not open_:
                verdict[p] = SkipReason.NO_CONSENT
                continue
        chosen[p] = open_[0]

    if marketing:
        held = global_holdout_members(scoped, list(chosen))
        if request.holdout_id:
            held |= in_holdout(scoped, request.holdout_id, list(chosen))
        for p in held:
            verdict[p] = SkipReason.HOLDOUT

    seen: set[str] = set()
    for p in ids:
        if p in chosen and p not in verdict:
            address = chosen[p][1]
            if address in seen:
                verdict[p] = SkipReason.DUPLICATE_CONTACT
            seen.add(address)

    if marketing and policy.caps:
        live = [p for p in ids if p in chosen and p not in verdict]
        longest = max(c.days for c in policy.caps)
        history = _recent(scoped, live, keys, now, longest) if live else {}
        windows = {
            c.days: _recent(scoped, live, keys, now, c.days) if c.days != longest else history for c in policy.caps
        }
        for p in live:
            for cap in policy.caps:
                counts = windows[cap.days].get(p, Counter())
                sent = sum(counts.values()) if cap.channel == ALL else counts[cap.channel]
                if (cap.channel in (ALL, channel.value)) and sent >= cap.max:
                    verdict[p] = SkipReason.FREQUENCY_CAP
                    detail[p] = f"at most {cap.max} {cap.channel} in {cap.days} days"
                    break

    used: list[tuple[str, str, int]] = []
    if channel is ChannelKind.MINIPROGRAM:
        by_address = {chosen[p][1]: p for p in ids if p in chosen and p not in verdict}
        stock = {
            a: (acc - use)
            for a, t, acc, use in fetch_rows(
                scoped, SubscribeAcceptance, ("address", "template", "accepted", "used"), "address", list(by_address)
            )
            if t == draft.provider_template
        }
        for address, p in by_address.items():
            if stock.get(address, 0) <= 0:
                verdict[p] = SkipReason.NO_ACCEPTANCE
            else:
                used.append((address, draft.provider_template, 1))

    not_before = at
    if marketing:
        when, allowed = policy.send_time(channel.value, at)
        if not allowed:
            for p in ids:
                if p in chosen and p not in verdict:
                    verdict[p] = SkipReason.QUIET_HOURS
        elif when is not None:
            not_before = when

    live_ids = [p for p in ids if p in chosen and p not in verdict]
    traits = profile_traits(scoped, live_ids) if live_ids else {}
    held_tags = profile_tag_ids(scoped, live_ids) if live_ids else {}
    tag_names = {t.id: t.name for t in tag_refs(scoped).values()} if held_tags else {}
    segments = memberships(scoped, live_ids) if draft.variants and live_ids else {}
    signature = str(settings.get("sign_name", ""))
    contents: dict[str, Content] = {}
    by_id = {r.profile_id: r for r in recipients}
    for p in live_ids:
        name, person = traits.get(p, (None, {}))
        address = chosen[p][1]
        context: dict[str, Any] = {
            "profile": {**person, "id": p, "display_name": name or ""},
            "tags": sorted(tag_names.get(t, t) for t in held_tags.get(p, [])),
            "event": {},
            "order": {},
            "campaign": dict(request.campaign),
            "brand": {},
            "link": "",
            "unsubscribe_url": "",
            **dict(by_id[p].context),
        }
        if channel is ChannelKind.EMAIL:
            context["unsubscribe_url"] = unsubscribe_url(
                links.public_url, links.secret_key, require_workspace(scoped), channel.value, address
            )
        try:
            if draft.link:
                link = render(draft.link, context).strip()
                context["link"] = links.shorten(link, keys[p]) if links.shorten else link
            content = render_for(draft, context, segments.get(p, set()))
        except TemplateInvalidError as exc:
            verdict[p], detail[p] = SkipReason.RENDER_FAILED, exc.message
            continue
        if draft.link:
            content = replace(content, link=context["link"])
        if channel is ChannelKind.SMS:
            refused = refusal(content.text, signature=signature, words=words)
            if refused:
                verdict[p], detail[p] = SkipReason.CONTENT_REFUSED, refused
                continue
            content = Content(
                text=with_signature(signature, content.text),
                template=content.template,
                fields=content.fields,
                link=content.link,
                extra={"sign_name": signature} if signature else {},
            )
        if channel is ChannelKind.EMAIL:
            content = Content(
                text=content.text, subject=content.subject, html=content.html, link=content.link,
                extra={"unsubscribe_url": context["unsubscribe_url"]},
            )  # fmt: skip
        contents[p] = content

    items = []
    for p in ids:
        reason = verdict.get(p)
        options = candidates.get(p, [])
        address = chosen[p][1] if p in chosen else (options[0][1] if options else "")
        if reason:
            report.skipped[reason] += 1
            report.samples.setdefault(reason, [])
            if len(report.samples[reason]) < SAMPLES:
                report.samples[reason].append(p)
        else:
            report.queued += 1
            report.delayed += not_before > at
        items.append(
            MessageIn(
                key=keys[p],
                channel=channel,
                kind=kind,
                address=address,
                content=contents.get(p, Content()),
                account_id=account.id,
                profile_id=p,
                template_id=template.id,
                source=request.source,
                not_before=not_before,
                skipped=f"{reason}: {detail[p]}" if reason and p in detail else (reason or ""),
            )
        )
    if dry_run:
        return report
    result = send_messages(scoped, items)
    report.written = result.written
    if used and result.written:
        _use_acceptances(scoped, used)
    return report


def _use_acceptances(scoped: Session, used: list[tuple[str, str, int]]) -> None:
    rows = scoped.execute(
        select(SubscribeAcceptance).where(SubscribeAcceptance.address.in_([a for a, _, _ in used]))
    ).scalars()
    spent = {(a, t) for a, t, _ in used}
    for row in rows:
        if (row.address, row.template) in spent:
            row.used += 1
