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
from siyu.channels.composer import refusals
from siyu.channels.contracts import ChannelKind, Content, MessageKind
from siyu.channels.errors import TemplateInvalidError
from siyu.channels.ledger import FAILED, SKIPPED, MessageBatch, content_to_dict
from siyu.channels.policy import ALL, Policy, SkipReason
from siyu.channels.receipts import ADDRESS_KIND, CONSENT_CHANNEL
from siyu.channels.rendering import Messages, People, render_all, renders_in_bulk
from siyu.channels.sending import send_batch
from siyu.channels.sms import with_signature
from siyu.channels.suppression import suppressed
from siyu.channels.tables import ChannelAccount, SubscribeAcceptance
from siyu.channels.templates import Finish, TemplateDraft, draft_of, render_for, template_parts, template_row
from siyu.channels.templating import render
from siyu.channels.unsubscribe import unsubscribe_url
from siyu.channels.words import WordList
from siyu.core.clock import utcnow
from siyu.core.memory import collector_paused
from siyu.profiles.consent import Purpose, reachable
from siyu.profiles.facade import profile_tag_ids, traits_in_order
from siyu.segments.facade import global_holdout_members, in_holdout, memberships
from siyu.storage.bulk import fetch_rows
from siyu.storage.keyed import keyed_rows
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
    # Stores what ``shorten`` made, with the messages (not called on a dry run).
    flush: Callable[[Session], object] | None = None


def _account(scoped: Session, channel: ChannelKind, account_id: str | None) -> ChannelAccount:
    return account_row(scoped, account_id) if account_id else default_account(scoped, channel)


def _reach(
    scoped: Session, channel: ChannelKind, account: ChannelAccount, ids: Sequence[str], marketing: bool
) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """Who can be reached on the channel, in one statement the database joins: (the address
    chosen for each person who can, the address each person who cannot was looked for at, and
    why they cannot). A person's identifiers are tried best first — the channel's first kind,
    then by age — and the first that is not suppressed and, for marketing, holds consent wins."""
    if channel is ChannelKind.WEBHOOK:
        return {p: p for p in ids}, {}, {}
    kinds = PUSH_KINDS if channel is ChannelKind.APP_PUSH else (ADDRESS_KIND[channel],)
    scope = {
        ChannelKind.WECHAT_OA: "app_id",
        ChannelKind.MINIPROGRAM: "app_id",
        ChannelKind.WECOM: "corp_id",
    }.get(channel)
    wanted_scope = str((account.settings or {}).get(scope, "")) if scope else ""
    consent_channel = CONSENT_CHANNEL.get(channel)
    needs_consent = marketing and consent_channel is not None
    consent = (consent_channel.value, Purpose.MARKETING.value) if needs_consent and consent_channel else None
    rows = reachable(scoped, ids, kinds, consent, scope=wanted_scope or None)
    blocked = suppressed(scoped, channel.value, {r[1] for r in rows})
    best = {row[0]: row for row in rows}
    if len(best) < len(rows):  # some have several: the best of each, by their kind and age
        several = [p for p, n in Counter(r[0] for r in rows).items() if n > 1]
        first_kind = kinds[0]

        def rank(row: tuple[Any, ...]) -> tuple[bool, bool, bool, str]:
            return (row[1] in blocked, needs_consent and not row[2], row[3] != first_kind, row[4])

        for row in sorted(
            reachable(scoped, several, kinds, consent, scope=wanted_scope or None, ranked=True), key=rank, reverse=True
        ):
            best[row[0]] = row
    chosen: dict[str, str] = {}
    unreachable: dict[str, str] = {}
    reasons: dict[str, str] = {}
    for p in ids:
        found = best.get(p)
        if found is None:
            reasons[p] = SkipReason.NO_ADDRESS
        elif found[1] in blocked:
            unreachable[p] = found[1]
            reasons[p] = SkipReason.SUPPRESSED
        elif needs_consent and not found[2]:
            unreachable[p] = found[1]
            reasons[p] = SkipReason.NO_CONSENT
        else:
            chosen[p] = found[1]
    return chosen, unreachable, reasons


_RECENT = """
SELECT m.profile_id, m.channel, {windows}
FROM keys CROSS JOIN messages m {{indexed_by:ix_messages_workspace_id_profile_id_created_at}}
    ON m.workspace_id = :w AND m.profile_id = keys.key
WHERE m.created_at >= :since AND m.kind = :marketing AND m.status NOT IN (:skipped, :failed)
    AND m.key <> (:prefix || m.profile_id)
GROUP BY m.profile_id, m.channel
"""


def _recent(
    scoped: Session, ids: Sequence[str], prefix: str, now: datetime, days: Sequence[int]
) -> dict[int, dict[str, Counter[str]]]:
    """Marketing messages each person was sent (or has waiting) in each of the last ``days``,
    by channel — not counting this request's own messages (their keys start with ``prefix``)."""
    windows = sorted(set(days))
    params: dict[str, Any] = {f"since{d}": now - timedelta(days=d) for d in windows}
    params |= {
        "since": now - timedelta(days=windows[-1]),
        "marketing": MessageKind.MARKETING.value,
        "skipped": SKIPPED,
        "failed": FAILED,
        "prefix": prefix,
    }
    sql = _RECENT.format(
        windows=", ".join(f"SUM(CASE WHEN m.created_at >= :since{d} THEN 1 ELSE 0 END)" for d in windows)
    )
    out: dict[int, dict[str, Counter[str]]] = {d: {} for d in windows}
    for profile_id, channel, *counts in keyed_rows(scoped, sql, ids, params):
        for d, n in zip(windows, counts, strict=True):
            if n:
                out[d].setdefault(profile_id, Counter())[channel] += int(n)
    return out


def prepare_send(
    scoped: Session, request: SendRequest, *, policy: Policy, words: WordList, links: Links, dry_run: bool = False
) -> PrepareReport:
    """Every person in the request, through the policy and the template, into the ledger (or,
    for a dry run, only counted)."""
    with collector_paused():
        return _prepare(scoped, request, policy, words, links, dry_run)


def _prepare(
    scoped: Session, request: SendRequest, policy: Policy, words: WordList, links: Links, dry_run: bool
) -> PrepareReport:
    template = template_row(scoped, request.template_id)
    draft = draft_of(template)
    channel, kind = draft.channel, draft.kind
    marketing = kind is MessageKind.MARKETING
    account = _account(scoped, channel, template.account_id)
    now = utcnow()
    at = max(request.at or now, now)
    report = PrepareReport(channel=channel.value, account_id=account.id)
    recipients = {r.profile_id: r for r in reversed(request.recipients)}
    ids = list(recipients)[::-1]
    report.total = len(ids)
    prefix = f"{request.source}:{request.step}:"
    detail: dict[str, str] = {}

    chosen, unreachable, verdict = _reach(scoped, channel, account, ids, marketing)

    if marketing and chosen:
        held = global_holdout_members(scoped, list(chosen))
        if request.holdout_id:
            held |= in_holdout(scoped, request.holdout_id, list(chosen))
        for p in held:
            verdict[p] = SkipReason.HOLDOUT

    seen: set[str] = set()
    for p, address in chosen.items():
        if p not in verdict:
            if address in seen:
                verdict[p] = SkipReason.DUPLICATE_CONTACT
            seen.add(address)

    if marketing and policy.caps:
        live = [p for p in chosen if p not in verdict]
        windows = _recent(scoped, live, prefix, now, [c.days for c in policy.caps]) if live else {}
        caps = [c for c in policy.caps if c.channel in (ALL, channel.value)]
        for p in live:
            for cap in caps:
                counts = windows[cap.days].get(p)
                sent = (sum(counts.values()) if cap.channel == ALL else counts[cap.channel]) if counts else 0
                if sent >= cap.max:
                    verdict[p] = SkipReason.FREQUENCY_CAP
                    detail[p] = f"at most {cap.max} {cap.channel} in {cap.days} days"
                    break

    used: list[tuple[str, str, int]] = []
    if channel is ChannelKind.MINIPROGRAM:
        by_address = {a: p for p, a in chosen.items() if p not in verdict}
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
            for p in chosen:
                verdict.setdefault(p, SkipReason.QUIET_HOURS)
        elif when is not None:
            not_before = when

    live_ids = [p for p in chosen if p not in verdict]
    signature = str((account.settings or {}).get("sign_name", "")) if channel is ChannelKind.SMS else ""
    made = _render(scoped, draft, live_ids, chosen, recipients, request, prefix, links, signature)
    for p, why in made.failed.items():
        detail[p], verdict[p] = why, SkipReason.RENDER_FAILED
    if channel is ChannelKind.SMS:
        people = list(made.bodies)
        problems = refusals(list(made.bodies.values()), signature=signature, words=words)
        for p, problem in zip(people, problems, strict=True):
            if problem:
                detail[p], verdict[p] = problem, SkipReason.CONTENT_REFUSED

    delayed = not_before > at
    for p in ids:
        reason = verdict.get(p)
        if reason:
            report.skipped[reason] += 1
            samples = report.samples.setdefault(reason, [])
            if len(samples) < SAMPLES:
                samples.append(p)
    report.queued = report.total - sum(report.skipped.values())
    report.delayed = report.queued if delayed else 0
    if dry_run:
        return report
    skipped = [(f"{reason}: {detail[p]}" if p in detail else reason) if (reason := verdict.get(p)) else "" for p in ids]
    batch = MessageBatch(
        channel=channel,
        kind=kind,
        account_id=account.id,
        template_id=template.id,
        source=request.source,
        not_before=not_before,
        keys=[prefix + p for p in ids],
        addresses=[chosen.get(p) or unreachable.get(p, "") for p in ids],
        contents=[made.stored(p) if p in made.bodies and p not in verdict else {} for p in ids],
        profile_ids=ids,
        skipped=skipped,
    )
    result = send_batch(scoped, batch)
    if links.flush is not None:
        links.flush(scoped)
    report.written = result.written
    if used and result.written:
        _use_acceptances(scoped, used)
    return report


@dataclass
class _Made:
    """The messages of a send: each person's text without the signature (what the SMS checks
    read), and how their content is stored. Most are rendered in bulk (``bulk``, by their position
    in ``ids``), the rest one by one (``contents``)."""

    prefix: str
    shared: dict[str, Any]  # the parts every message has (the provider template, extras)
    bodies: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # person → why rendering failed
    contents: dict[str, Content] = field(default_factory=dict)
    bulk: Messages | None = None
    ids: Sequence[str] = ()  # the bulk's people, in order
    _index: dict[str, int] | None = None

    def stored(self, p: str) -> dict[str, Any]:
        """The person's content as the ledger stores it (``content_to_dict``)."""
        if p in self.contents:
            return content_to_dict(self.contents[p])
        assert self.bulk is not None
        if self._index is None:
            self._index = {p: i for i, p in enumerate(self.ids)}
        i = self._index[p]
        parts = {
            "text": self.prefix + self.bodies[p],
            "subject": self.bulk.subjects[i],
            "fields": self.bulk.fields[i],
            "link": self.bulk.links[i],
        }
        return {k: v for k, v in parts.items() if v} | self.shared


def _render(
    scoped: Session,
    draft: TemplateDraft,
    ids: Sequence[str],
    chosen: Mapping[str, str],
    recipients: Mapping[str, Recipient],
    request: SendRequest,
    prefix: str,
    links: Links,
    signature: str,
) -> _Made:
    """The content for each person, or why their rendering fails; an SMS signed. Only what the
    template reads is looked up: tags when it names them, segments when it has variants. A
    template of plain values is rendered for everyone at once (:mod:`siyu.channels.rendering`);
    whoever it leaves, and every other template, person by person."""
    channel = draft.channel
    signed = Finish(prefix=with_signature(signature, ""), extra={"sign_name": signature} if signature else {})
    shared = {k: v for k, v in (("template", draft.provider_template), ("extra", signed.extra)) if v}
    made = _Made(prefix=signed.prefix, shared=shared)
    if not ids:
        return made
    parts = template_parts(draft)
    sources = " ".join([draft.link, *(" ".join([sub, body, *fields.values()]) for _w, sub, body, fields in parts)])
    names, traits = traits_in_order(scoped, ids)
    held_tags = profile_tag_ids(scoped, ids) if "tags" in sources else {}
    tag_names = {t.id: t.name for t in tag_refs(scoped).values()} if held_tags else {}
    segments = memberships(scoped, ids) if draft.variants else {}
    workspace_id = require_workspace(scoped)
    base: dict[str, Any] = {
        "profile": {},
        "tags": [],
        "event": {},
        "order": {},
        "campaign": dict(request.campaign),
        "brand": {},
        "link": "",
        "unsubscribe_url": "",
    }
    alone: Sequence[int] = range(len(ids))
    if renders_in_bulk(draft):
        contexts = any(r.context for r in recipients.values())
        people = People(ids, names, traits, [recipients[p].context for p in ids] if contexts else None)
        shorten = links.shorten
        made.bulk = bulk = render_all(
            draft, people, segments, base, (lambda link, p: shorten(link, prefix + p)) if shorten else None
        )
        made.ids = ids
        made.bodies = dict(zip(ids, bulk.texts, strict=True))  # type: ignore[arg-type]
        alone = [i for i, t in enumerate(bulk.texts) if t is None] if None in bulk.texts else []
        for i in alone:
            del made.bodies[ids[i]]
    nothing: set[str] = set()
    for i in alone:
        p = ids[i]
        context = base.copy()
        context["profile"] = {**traits[i], "id": p, "display_name": names[i]}
        if held_tags:
            context["tags"] = sorted(tag_names.get(t, t) for t in held_tags.get(p, []))
        extra = recipients[p].context
        if extra:
            context.update(extra)
        try:
            finish = signed
            if draft.link:
                link = render(draft.link, context).strip()
                context["link"] = link = links.shorten(link, prefix + p) if links.shorten else link
                finish = replace(signed, link=link)
            if channel is ChannelKind.EMAIL:
                url = unsubscribe_url(links.public_url, links.secret_key, workspace_id, channel.value, chosen[p])
                context["unsubscribe_url"] = url
                finish = Finish(link=finish.link, extra={"unsubscribe_url": url})
            content = made.contents[p] = render_for(draft, context, segments.get(p, nothing), finish)
            made.bodies[p] = content.text[len(signed.prefix) :]
        except TemplateInvalidError as exc:
            made.failed[p] = exc.message
    return made


def _use_acceptances(scoped: Session, used: list[tuple[str, str, int]]) -> None:
    rows = scoped.execute(
        select(SubscribeAcceptance).where(SubscribeAcceptance.address.in_([a for a, _, _ in used]))
    ).scalars()
    spent = {(a, t) for a, t, _ in used}
    for row in rows:
        if (row.address, row.template) in spent:
            row.used += 1
