"""A page's visitors: each request logged (crawlers and link previews marked, never counted), and
its form — a phone number and the consent box — filed once per form handed out: the phone is
resolved to its person like any identifier, and the consent recorded with the exact text and
version the person saw."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from siyu.core.ids import new_id
from siyu.identity.contracts import IdentifierKind
from siyu.identity.errors import InvalidIdentifierError
from siyu.identity.facade import owners_of
from siyu.identity.normalise import normalise
from siyu.ingest.consents import ConsentSubmission, submit_consents
from siyu.landing.tables import LandingPage, LandingPageVersion, LandingSubmission, LandingVisit
from siyu.profiles.consent import Channel, ConsentStatus, Purpose
from siyu.storage.bulk import append_rows
from siyu.tracking.clicks import is_bot, visitor_of

CONSENT_CHANNEL, CONSENT_PURPOSE = Channel.SMS, Purpose.MARKETING  # the form's phone, for marketing SMS
SUBMISSION_COLUMNS = (
    "id", "page_id", "version", "token", "identity_id", "profile_id", "visitor", "utm_campaign", "utm_content", "at",
)  # fmt: skip


class FormRefusedError(Exception):
    """Why a form was not accepted, in the words the visitor is shown."""


def form_token(secret_key: str, code: str, version: int) -> str:
    """A token for one form: a fresh nonce and the page version it was shown with, signed for
    this page — so the consent is filed with the text the person actually saw."""
    nonce = secrets.token_urlsafe(12)
    return f"{nonce}.{version}.{_signature(secret_key, code, version, nonce)}"


def _signature(secret_key: str, code: str, version: int, nonce: str) -> str:
    message = f"landing|{code}|{version}|{nonce}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()[:20]


def version_of_token(secret_key: str, code: str, token: str) -> int | None:
    """The page version a genuine token was handed out with; None for a forged or altered one."""
    parts = token.split(".")
    if len(token) > 64 or len(parts) != 3 or not parts[0] or not parts[1].isdigit():
        return None
    version = int(parts[1])
    return version if hmac.compare_digest(parts[2], _signature(secret_key, code, version, parts[0])) else None


def find_published(system: Session, code: str) -> tuple[LandingPage, LandingPageVersion] | None:
    """A published page by its address, across workspaces (the caller then works in its own)."""
    page = system.scalar(select(LandingPage).where(LandingPage.code == code))
    if page is None or page.status != "published" or not page.version:
        return None
    version = system.scalar(
        select(LandingPageVersion).where(
            LandingPageVersion.page_id == page.id, LandingPageVersion.version == page.version
        )
    )
    return None if version is None else (page, version)


def _version(scoped: Session, page_id: str, number: int) -> LandingPageVersion | None:
    return scoped.scalar(
        select(LandingPageVersion).where(LandingPageVersion.page_id == page_id, LandingPageVersion.version == number)
    )


def record_visit(
    scoped: Session,
    page_id: str,
    version: int,
    *,
    ip: str,
    user_agent: str,
    secret_key: str,
    at: datetime,
    utm_campaign: str = "",
    utm_content: str = "",
) -> None:
    scoped.add(
        LandingVisit(
            page_id=page_id,
            version=version,
            at=at,
            visitor=visitor_of(secret_key, ip, user_agent),
            bot=is_bot(user_agent),
            utm_campaign=utm_campaign[:100],
            utm_content=utm_content[:100],
        )
    )
    scoped.flush()


@dataclass(frozen=True)
class Form:
    token: str
    phone: str
    consent: bool
    utm_campaign: str = ""
    utm_content: str = ""


def submit(
    scoped: Session,
    page: LandingPage,
    form: Form,
    *,
    ip: str,
    user_agent: str,
    secret_key: str,
    at: datetime,
) -> bool:
    """File the form; True when it is new, False when its token was filed already (a replay or a
    second tap). Raises FormRefusedError, with the reason, when it cannot be accepted."""
    number = version_of_token(secret_key, page.code, form.token)
    version = None if number is None else _version(scoped, page.id, number)
    if version is None:
        raise FormRefusedError("页面已过期，请刷新后重新提交")
    if not form.consent:
        raise FormRefusedError("请先阅读并勾选同意")
    try:
        address = normalise(IdentifierKind.PHONE, form.phone)
    except InvalidIdentifierError:
        raise FormRefusedError("请输入正确的手机号") from None
    proof = {
        "text": version.content.get("consent_text", ""),
        "text_version": f"{page.id}:v{version.version}",
        "page": page.id,
        "page_version": version.version,
        "form": form.token,
        "user_agent": user_agent[:200],
    }
    submission = ConsentSubmission(
        address, CONSENT_CHANNEL, CONSENT_PURPOSE, ConsentStatus.GRANTED, at, f"landing:{page.code}", proof
    )
    # The form and its consent are filed together or not at all: a token already filed (a
    # replay, or a second tap racing the first) rolls both back, so the consent is kept once.
    filing = scoped.begin_nested()
    [identity_id] = submit_consents(scoped, [submission])
    profile_id = owners_of(scoped, [address]).get(address)
    inserted = append_rows(
        scoped,
        LandingSubmission,
        SUBMISSION_COLUMNS,
        [
            (
                new_id("ls_"),
                page.id,
                version.version,
                form.token,
                identity_id,
                profile_id,
                visitor_of(secret_key, ip, user_agent),
                form.utm_campaign[:100],
                form.utm_content[:100],
                at,
            )
        ],
        on_conflict=("page_id", "token"),
    )
    if inserted != 1:
        filing.rollback()
        return False
    filing.commit()
    return True


@dataclass(frozen=True)
class PageStats:
    visits: int  # requests by people (bots apart), replays included
    visitors: int  # distinct people
    bots: int
    submissions: int

    @property
    def conversion_rate(self) -> float:
        return self.submissions / self.visitors if self.visitors else 0.0


def page_stats(scoped: Session, page_ids: Sequence[str]) -> dict[str, PageStats]:
    if not page_ids:
        return {}
    visits = {
        page_id: (int(n or 0), int(people or 0), int(bots or 0))
        for page_id, n, people, bots in scoped.execute(
            select(
                LandingVisit.page_id,
                func.sum(case((LandingVisit.bot, 0), else_=1)),
                func.count(func.distinct(case((LandingVisit.bot, None), else_=LandingVisit.visitor))),
                func.sum(case((LandingVisit.bot, 1), else_=0)),
            )
            .where(LandingVisit.page_id.in_(page_ids))
            .group_by(LandingVisit.page_id)
        )
    }
    sent = dict(
        scoped.execute(
            select(LandingSubmission.page_id, func.count())
            .where(LandingSubmission.page_id.in_(page_ids))
            .group_by(LandingSubmission.page_id)
        ).all()
    )
    return {p: PageStats(*visits.get(p, (0, 0, 0)), int(sent.get(p, 0))) for p in page_ids}


@dataclass(frozen=True)
class CampaignVisits:
    visitors: int  # people, each once per page
    submissions: int


def campaign_visits(scoped: Session, campaign_id: str) -> dict[str, CampaignVisits]:
    """Landing-page visitors and forms that came through the campaign's tracked links, by variant
    (the UTM content its links carry)."""
    people = dict(
        scoped.execute(
            select(LandingVisit.utm_content, func.count(func.distinct(LandingVisit.page_id + LandingVisit.visitor)))
            .where(LandingVisit.utm_campaign == campaign_id, LandingVisit.bot.is_(False))
            .group_by(LandingVisit.utm_content)
        ).all()
    )
    forms = dict(
        scoped.execute(
            select(LandingSubmission.utm_content, func.count())
            .where(LandingSubmission.utm_campaign == campaign_id)
            .group_by(LandingSubmission.utm_content)
        ).all()
    )
    return {v: CampaignVisits(int(people.get(v, 0)), int(forms.get(v, 0))) for v in set(people) | set(forms)}


def submissions(scoped: Session, page_id: str, limit: int = 200) -> list[LandingSubmission]:
    return list(
        scoped.scalars(
            select(LandingSubmission)
            .where(LandingSubmission.page_id == page_id)
            .order_by(LandingSubmission.at.desc())
            .limit(limit)
        )
    )
