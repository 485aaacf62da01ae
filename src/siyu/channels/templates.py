"""The template library: a message for one channel, with variants for segments (千人千面),
checked on save — every variable and trait it names must exist, every segment a variant targets
too, and an SMS must pass the composer's checks (signature, opt-out, length, sensitive words) —
and rendered for a person into the :class:`Content` an adapter sends."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from html import unescape
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siyu.channels.composer import SmsCheck, check_sms
from siyu.channels.contracts import ChannelKind, Content, MessageKind
from siyu.channels.errors import TemplateInvalidError, TemplateNotFoundError
from siyu.channels.tables import MessageTemplate
from siyu.channels.templating import Problem, check_source, fill_provider_variables, render
from siyu.channels.words import WordList
from siyu.core.errors import ConflictError

MAX_VARIANTS = 20
# Channels whose messages are a provider template and its variables.
PROVIDER_TEMPLATED = frozenset({ChannelKind.WECHAT_OA, ChannelKind.MINIPROGRAM})


@dataclass(frozen=True)
class Variant:
    segment_id: str
    subject: str = ""
    body: str = ""
    fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TemplateDraft:
    name: str
    channel: ChannelKind
    kind: MessageKind
    body: str = ""
    subject: str = ""
    fields: Mapping[str, str] = field(default_factory=dict)
    link: str = ""
    provider_template: str = ""
    account_id: str | None = None
    variants: tuple[Variant, ...] = ()


@dataclass(frozen=True)
class TemplatePublic:
    id: str
    name: str
    channel: str
    kind: str
    body: str
    subject: str
    fields: dict[str, str]
    link: str
    provider_template: str
    account_id: str | None
    variants: tuple[Variant, ...]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class SmsSettings:
    """What the SMS checks need from the account the template sends through."""

    signature: str
    provider: str


def template_to_public(row: MessageTemplate) -> TemplatePublic:
    return TemplatePublic(
        id=row.id,
        name=row.name,
        channel=row.channel,
        kind=row.kind,
        body=row.body,
        subject=row.subject,
        fields=dict(row.fields or {}),
        link=row.link,
        provider_template=row.provider_template,
        account_id=row.account_id,
        variants=tuple(Variant(**v) for v in (row.variants or {}).get("items", [])),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class _Sample(dict[str, Any]):
    """Stands in for a person when a template is checked: any trait reads as a short value."""

    def __missing__(self, key: str) -> str:
        return "会员"


SAMPLE_CONTEXT: dict[str, Any] = {
    "profile": _Sample(),
    "tags": [],
    "event": _Sample(),
    "order": _Sample(),
    "campaign": _Sample(),
    "link": "https://s.example.cn/s/Ab3dE5g",
    "unsubscribe_url": "https://s.example.cn/u/token",
    "brand": _Sample(),
}


def template_parts(draft: TemplateDraft) -> list[tuple[str, str, str, Mapping[str, str]]]:
    """(where, subject, body, fields) of the base and each variant."""
    out = [("", draft.subject, draft.body, draft.fields)]
    out += [(f"variants[{i}].", v.subject, v.body, v.fields) for i, v in enumerate(draft.variants)]
    return out


def check_template(
    draft: TemplateDraft,
    *,
    known_traits: Collection[str],
    segments: Collection[str],
    sms: SmsSettings | None,
    words: WordList,
) -> list[Problem]:
    problems: list[Problem] = []
    if not draft.name.strip():
        problems.append(Problem("name", "a template needs a name"))
    html = draft.channel is ChannelKind.EMAIL
    if len(draft.variants) > MAX_VARIANTS:
        problems.append(Problem("variants", f"at most {MAX_VARIANTS} variants"))
    for i, variant in enumerate(draft.variants):
        if variant.segment_id not in segments:
            problems.append(Problem(f"variants[{i}].segment_id", f"no segment {variant.segment_id}"))
    if draft.channel in PROVIDER_TEMPLATED and not draft.provider_template:
        problems.append(Problem("provider_template", "give the approved template id (template_id)"))
    if draft.link:
        problems += check_source(draft.link, "link", known_traits)
    for where, subject, body, fields in template_parts(draft):
        if draft.channel is ChannelKind.EMAIL and not subject.strip():
            problems.append(Problem(f"{where}subject", "an email needs a subject"))
        if draft.channel not in PROVIDER_TEMPLATED and draft.channel is not ChannelKind.WEBHOOK and not body.strip():
            problems.append(Problem(f"{where}body", "the message has no text"))
        if draft.channel in PROVIDER_TEMPLATED and not fields:
            problems.append(Problem(f"{where}fields", "give a value for each of the template's keywords"))
        problems += check_source(subject, f"{where}subject", known_traits)
        problems += check_source(body, f"{where}body", known_traits, html=html)
        for key, value in fields.items():
            problems += check_source(value, f"{where}fields.{key}", known_traits)
    if problems or draft.channel is not ChannelKind.SMS:
        return problems
    for where, _subject, body, fields in template_parts(draft):
        sample = render_content(draft, body, fields, "", SAMPLE_CONTEXT)
        check = check_sms(
            sample.text,
            signature=sms.signature if sms else "",
            marketing=draft.kind is MessageKind.MARKETING,
            provider=sms.provider if sms else "",
            words=words,
        )
        problems += [Problem(f"{where}body", f.message) for f in check.findings if f.level == "error"]
    return problems


def render_content(
    draft: TemplateDraft,
    body: str,
    fields: Mapping[str, str],
    subject: str,
    context: Mapping[str, Any],
    finish: Finish | None = None,
) -> Content:
    rendered_fields = {k: render(v, context).strip() for k, v in fields.items()} if fields else {}
    text = render(body, context)
    if draft.channel is ChannelKind.SMS:
        text = (fill_provider_variables(text, rendered_fields) if rendered_fields else text).strip()
    html = ""
    if draft.channel is ChannelKind.EMAIL:
        html = render(body, context, html=True)
        text = html_to_text(html)
    if finish is None:
        finish = Finish(link=render(draft.link, context).strip() if draft.link else "")
    return Content(
        text=finish.prefix + text,
        subject=render(subject, context).strip() if subject else "",
        html=html,
        template=draft.provider_template,
        fields=rendered_fields,
        link=finish.link,
        extra=finish.extra,
    )


@dataclass(frozen=True)
class Finish:
    """What a sender adds to a rendered message: the link as it goes out (shortened), a prefix
    for the text (an SMS's 【signature】) and channel extras."""

    link: str = ""
    prefix: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def html_to_text(html: str) -> str:
    """The plain-text part of an email: the HTML's text, with line breaks where blocks end."""
    blocks = re.sub(r"(?i)<br\s*/?>|</(p|div|h[1-6]|li|tr)>", "\n", html)
    return unescape(re.sub(r"<[^>]+>", "", blocks)).strip()


def render_for(
    draft: TemplateDraft, context: Mapping[str, Any], segment_ids: Collection[str] = (), finish: Finish | None = None
) -> Content:
    """The content for one person: the first variant whose segment holds them, else the base."""
    for variant in draft.variants:
        if variant.segment_id in segment_ids:
            return render_content(draft, variant.body, variant.fields, variant.subject, context, finish)
    return render_content(draft, draft.body, draft.fields, draft.subject, context, finish)


def draft_of(row: MessageTemplate) -> TemplateDraft:
    t = template_to_public(row)
    return TemplateDraft(
        name=t.name,
        channel=ChannelKind(t.channel),
        kind=MessageKind(t.kind),
        body=t.body,
        subject=t.subject,
        fields=t.fields,
        link=t.link,
        provider_template=t.provider_template,
        account_id=t.account_id,
        variants=t.variants,
    )


def sms_check_for(draft: TemplateDraft, content: Content, sms: SmsSettings | None, words: WordList) -> SmsCheck:
    return check_sms(
        content.text,
        signature=sms.signature if sms else "",
        marketing=draft.kind is MessageKind.MARKETING,
        provider=sms.provider if sms else "",
        words=words,
    )


def refuse(problems: Sequence[Problem]) -> None:
    if problems:
        raise TemplateInvalidError(
            f"the template is not valid: {problems[0].where}: {problems[0].message}",
            details={"problems": [{"path": p.where, "message": p.message} for p in problems]},
        )


def list_templates(scoped: Session, channel: str | None = None) -> list[TemplatePublic]:
    stmt = select(MessageTemplate).order_by(MessageTemplate.name)
    if channel:
        stmt = stmt.where(MessageTemplate.channel == channel)
    return [template_to_public(r) for r in scoped.scalars(stmt)]


def template_row(scoped: Session, template_id: str) -> MessageTemplate:
    row = scoped.get(MessageTemplate, template_id)
    if row is None:
        raise TemplateNotFoundError("template not found")
    return row


def save_template(
    scoped: Session, draft: TemplateDraft, actor_id: str | None, template_id: str | None = None
) -> TemplatePublic:
    """Store a draft already checked with :func:`check_template`."""
    row = template_row(scoped, template_id) if template_id else MessageTemplate(created_by=actor_id)
    row.name = draft.name.strip()
    row.channel = draft.channel.value
    row.kind = draft.kind.value
    row.body = draft.body
    row.subject = draft.subject
    row.fields = dict(draft.fields)
    row.link = draft.link
    row.provider_template = draft.provider_template
    row.account_id = draft.account_id
    row.variants = {"items": [dict(v.__dict__, fields=dict(v.fields)) for v in draft.variants]}
    if template_id is None:
        scoped.add(row)
    try:
        with scoped.begin_nested():
            scoped.flush()
    except IntegrityError:
        raise ConflictError(f"a template is already named {draft.name!r}") from None
    return template_to_public(row)


def delete_template(scoped: Session, template_id: str) -> None:
    scoped.delete(template_row(scoped, template_id))
