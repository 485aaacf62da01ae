"""Message templates: Jinja2 text rendered in a sandbox, variants per segment (千人千面), checked
on save (unknown variables and traits, SMS compliance), previewed for a chosen person."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from siyu.accounts.audit import record_audit
from siyu.analytics.catalog import rule_catalog
from siyu.api.deps import Analyst, Operator, ScopedSessionDep, SettingsDep
from siyu.api.errors import COMMON_ERRORS
from siyu.api.routes.channels import ChannelName
from siyu.channels import facade
from siyu.channels.composer import SmsCheck
from siyu.channels.contracts import ChannelKind, MessageKind
from siyu.channels.errors import TemplateInvalidError
from siyu.channels.prepare import Links
from siyu.channels.templates import (
    SAMPLE_CONTEXT,
    TemplateDraft,
    TemplatePublic,
    Variant,
    delete_template,
    list_templates,
    render_for,
    sms_check_for,
    template_row,
    template_to_public,
)

router = APIRouter(prefix="/api/v1/templates", tags=["templates"], responses=COMMON_ERRORS)


class VariantIO(BaseModel):
    segment_id: str = Field(max_length=32)
    subject: str = Field(default="", max_length=500)
    body: str = Field(default="", max_length=100_000)
    fields: dict[str, str] = Field(default_factory=dict)


class TemplateIn(BaseModel):
    name: str = Field(min_length=1, max_length=80)
    channel: ChannelName
    kind: Literal["marketing", "transactional"]
    body: str = Field(default="", max_length=100_000)
    subject: str = Field(default="", max_length=500)
    fields: dict[str, str] = Field(default_factory=dict, description="provider template keywords → their values")
    link: str = Field(default="", max_length=500)
    provider_template: str = Field(default="", max_length=100, description="the provider's approved template id")
    account_id: str | None = Field(default=None, max_length=32)
    variants: list[VariantIO] = Field(default_factory=list, max_length=20)

    def draft(self) -> TemplateDraft:
        return TemplateDraft(
            name=self.name,
            channel=ChannelKind(self.channel),
            kind=MessageKind(self.kind),
            body=self.body,
            subject=self.subject,
            fields=dict(self.fields),
            link=self.link,
            provider_template=self.provider_template,
            account_id=self.account_id,
            variants=tuple(Variant(v.segment_id, v.subject, v.body, dict(v.fields)) for v in self.variants),
        )


class TemplateOut(BaseModel):
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
    variants: list[VariantIO]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, t: TemplatePublic) -> TemplateOut:
        return cls(
            **{k: v for k, v in t.__dict__.items() if k != "variants"},
            variants=[
                VariantIO(segment_id=v.segment_id, subject=v.subject, body=v.body, fields=dict(v.fields))
                for v in t.variants
            ],
        )


class FindingOut(BaseModel):
    code: str
    level: Literal["error", "warning"]
    message: str


class SmsCheckOut(BaseModel):
    text: str = Field(description="as the person sees it, 【signature】 first")
    length: int = Field(description="characters as billed (links counted as short links)")
    parts: int = Field(description="billed SMS: 70 characters in one, 67 a part beyond")
    findings: list[FindingOut]

    @classmethod
    def of(cls, c: SmsCheck) -> SmsCheckOut:
        return cls(
            text=c.text,
            length=c.length,
            parts=c.parts,
            findings=[FindingOut(code=f.code, level=f.level, message=f.message) for f in c.findings],
        )


class ProblemOut(BaseModel):
    path: str
    message: str


class TemplateCheckOut(BaseModel):
    ok: bool
    problems: list[ProblemOut]
    sms: SmsCheckOut | None = Field(description="the SMS checks on a sample rendering (traits as 会员)")


def _traits(session: Any, settings: Any) -> set[str]:
    return set(rule_catalog(session, settings.data_dir).traits)


@router.get("", response_model=list[TemplateOut])
def templates(principal: Analyst, session: ScopedSessionDep, channel: ChannelName | None = None) -> list[TemplateOut]:
    return [TemplateOut.of(t) for t in list_templates(session, channel)]


@router.post("/check", response_model=TemplateCheckOut)
def check(body: TemplateIn, principal: Operator, session: ScopedSessionDep, settings: SettingsDep) -> TemplateCheckOut:
    """Check a draft as saving would, with the SMS composer's counts on a sample rendering."""
    draft = body.draft()
    problems = facade.check_draft(session, draft, _traits(session, settings))
    sms = None
    if draft.channel is ChannelKind.SMS and not problems:
        sample = render_for(draft, SAMPLE_CONTEXT)
        sms = SmsCheckOut.of(
            sms_check_for(draft, sample, facade.sms_settings(session, draft.account_id), facade.words_for(session))
        )
    found = [ProblemOut(path=p.where, message=p.message) for p in problems]
    return TemplateCheckOut(ok=not problems, problems=found, sms=sms)


@router.post("", response_model=TemplateOut, status_code=201)
def create(body: TemplateIn, principal: Operator, session: ScopedSessionDep, settings: SettingsDep) -> TemplateOut:
    """A template that fails its checks is refused with every problem and where it is."""
    template = facade.create_template(session, body.draft(), _traits(session, settings), principal.actor_id)
    record_audit(session, principal, "template.create", target_type="template", target_id=template.id)
    return TemplateOut.of(template)


@router.get("/{template_id}", response_model=TemplateOut)
def get(template_id: str, principal: Analyst, session: ScopedSessionDep) -> TemplateOut:
    return TemplateOut.of(template_to_public(template_row(session, template_id)))


@router.put("/{template_id}", response_model=TemplateOut)
def update(
    template_id: str, body: TemplateIn, principal: Operator, session: ScopedSessionDep, settings: SettingsDep
) -> TemplateOut:
    template = facade.update_template(session, template_id, body.draft(), _traits(session, settings))
    record_audit(session, principal, "template.update", target_type="template", target_id=template_id)
    return TemplateOut.of(template)


@router.delete("/{template_id}", status_code=204)
def delete(template_id: str, principal: Operator, session: ScopedSessionDep) -> None:
    delete_template(session, template_id)
    record_audit(session, principal, "template.delete", target_type="template", target_id=template_id)


class TemplatePreviewIn(BaseModel):
    profile_id: str = Field(max_length=32)
    event: dict[str, Any] = Field(default_factory=dict, description="the triggering event's properties, if any")
    order: dict[str, Any] = Field(default_factory=dict)


class TemplatePreviewOut(BaseModel):
    subject: str
    text: str
    html: str
    fields: dict[str, str]
    link: str
    sms: SmsCheckOut | None
    error: str = Field(default="", description="why the template cannot be rendered for this person")


@router.post("/{template_id}/preview", response_model=TemplatePreviewOut)
def preview(
    template_id: str, body: TemplatePreviewIn, principal: Operator, session: ScopedSessionDep, settings: SettingsDep
) -> TemplatePreviewOut:
    """The message as this person would get it (the variant of their segment), with SMS checks.
    Operators only: it shows the person's details."""
    links = Links(settings.public_url, settings.secret_key)
    try:
        shown = facade.preview_template(
            session, template_id, body.profile_id, {"event": body.event, "order": body.order}, links
        )
    except TemplateInvalidError as exc:
        return TemplatePreviewOut(subject="", text="", html="", fields={}, link="", sms=None, error=exc.message)
    c = shown.content
    return TemplatePreviewOut(
        subject=c.subject,
        text=c.text,
        html=c.html,
        fields=c.fields,
        link=c.link,
        sms=SmsCheckOut.of(shown.sms) if shown.sms else None,
    )
