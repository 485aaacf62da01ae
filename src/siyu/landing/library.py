"""Landing pages as operators edit them: a layout and its content, checked when saved; published
as numbered versions, each kept word for word (its consent text with it); archived pages answer
404 at their address."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.core.clock import utcnow
from siyu.core.errors import ConflictError, NotFoundError, ValidationFailedError
from siyu.landing.tables import LandingPage, LandingPageVersion

LAYOUTS = ("signup", "coupon", "event")  # 入会, 领券, 活动报名
CODE_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no look-alikes: the address may be typed
CODE_LENGTH = 8
COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
# Each content field: (longest, required).
FIELDS: dict[str, tuple[int, bool]] = {
    "title": (40, True),
    "subtitle": (80, False),
    "body": (1000, False),
    "image_url": (500, False),
    "highlight": (40, False),  # the coupon's value, the event's date…
    "button": (12, True),
    "success": (200, True),
    "consent_text": (500, True),
    "color": (7, False),
}


@dataclass(frozen=True)
class PageDraft:
    name: str
    layout: str
    content: Mapping[str, Any]


@dataclass(frozen=True)
class PagePublic:
    id: str
    code: str
    name: str
    layout: str
    content: dict[str, Any]
    status: str
    version: int
    created_at: datetime
    updated_at: datetime


def page_to_public(row: LandingPage) -> PagePublic:
    return PagePublic(
        row.id,
        row.code,
        row.name,
        row.layout,
        dict(row.content),
        row.status,
        row.version,
        row.created_at,
        row.updated_at,
    )


def problems_of(draft: PageDraft) -> list[tuple[str, str]]:
    """What is wrong with the draft: (where, why) each."""
    problems = []
    if not draft.name.strip() or len(draft.name.strip()) > 80:
        problems.append(("name", "a page needs a name of 1 to 80 characters"))
    if draft.layout not in LAYOUTS:
        problems.append(("layout", f"the layout is one of {', '.join(LAYOUTS)}"))
    for key in draft.content:
        if key not in FIELDS:
            problems.append((f"content.{key}", f"{key!r} is not a page field ({', '.join(FIELDS)})"))
    for key, (longest, required) in FIELDS.items():
        value = draft.content.get(key, "")
        if not isinstance(value, str):
            problems.append((f"content.{key}", "a text"))
        elif required and not value.strip():
            problems.append((f"content.{key}", "required"))
        elif len(value) > longest:
            problems.append((f"content.{key}", f"at most {longest} characters"))
    image = draft.content.get("image_url", "")
    if isinstance(image, str) and image and urlsplit(image).scheme != "https":
        problems.append(("content.image_url", "an image is an https address"))
    color = draft.content.get("color", "")
    if isinstance(color, str) and color and not COLOR.match(color):
        problems.append(("content.color", "a colour is #RRGGBB"))
    return problems


def check(draft: PageDraft) -> None:
    """Refuse the draft, with every problem, unless it is sound."""
    _refuse(problems_of(draft))


def _refuse(problems: list[tuple[str, str]]) -> None:
    if problems:
        raise ValidationFailedError(
            problems[0][1] if problems[0][1] != "required" else f"{problems[0][0]} is required",
            details={"problems": [{"where": w, "message": m} for w, m in problems]},
        )


def page_row(scoped: Session, page_id: str) -> LandingPage:
    row = scoped.scalar(select(LandingPage).where(LandingPage.id == page_id))
    if row is None:
        raise NotFoundError("landing page not found")
    return row


def save_page(scoped: Session, draft: PageDraft, actor_id: str | None, page_id: str | None = None) -> PagePublic:
    """Create a page, or change one's draft (what visitors see changes when it is published)."""
    _refuse(problems_of(draft))
    if page_id is None:
        row = LandingPage(code="".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH)), created_by=actor_id)
        scoped.add(row)
    else:
        row = page_row(scoped, page_id)
        if row.status == "archived":
            raise ConflictError("an archived page cannot be changed")
    row.name, row.layout = draft.name.strip(), draft.layout
    row.content = {k: str(draft.content.get(k, "")) for k in FIELDS}
    scoped.flush()
    return page_to_public(row)


def publish(scoped: Session, page_id: str, actor_id: str | None) -> PagePublic:
    """Publish the draft as the next version (unchanged from the last: nothing new)."""
    row = page_row(scoped, page_id)
    if row.status == "archived":
        raise ConflictError("an archived page cannot be published")
    last = published_version(scoped, row)
    if last is None or (last.layout, dict(last.content)) != (row.layout, dict(row.content)):
        row.version += 1
        scoped.add(
            LandingPageVersion(
                page_id=row.id,
                version=row.version,
                layout=row.layout,
                content=dict(row.content),
                published_at=utcnow(),
                published_by=actor_id,
            )
        )
    row.status = "published"
    scoped.flush()
    return page_to_public(row)


def archive(scoped: Session, page_id: str) -> PagePublic:
    row = page_row(scoped, page_id)
    row.status = "archived"
    scoped.flush()
    return page_to_public(row)


def published_version(scoped: Session, row: LandingPage) -> LandingPageVersion | None:
    if not row.version:
        return None
    return scoped.scalar(
        select(LandingPageVersion).where(
            LandingPageVersion.page_id == row.id, LandingPageVersion.version == row.version
        )
    )


def versions(scoped: Session, page_id: str) -> list[LandingPageVersion]:
    page_row(scoped, page_id)
    return list(
        scoped.scalars(
            select(LandingPageVersion)
            .where(LandingPageVersion.page_id == page_id)
            .order_by(LandingPageVersion.version.desc())
        )
    )


def list_pages(scoped: Session, include_archived: bool = False) -> list[PagePublic]:
    stmt = select(LandingPage).order_by(LandingPage.created_at.desc(), LandingPage.id.desc()).limit(500)
    if not include_archived:
        stmt = stmt.where(LandingPage.status != "archived")
    return [page_to_public(r) for r in scoped.scalars(stmt)]
