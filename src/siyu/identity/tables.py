"""Identity table: one row per (kind, scope, value) per workspace, pointing at a profile."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.clock import utcnow
from siyu.core.ids import new_id
from siyu.storage.base import Base, WorkspaceScoped


class Identity(WorkspaceScoped, Base):
    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("workspace_id", "kind", "scope", "value"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("idn_"))
    profile_id: Mapped[str] = mapped_column(ForeignKey("profiles.id", ondelete="CASCADE"), index=True)
    # phone, email, openid, unionid, wecom_external_userid, taobao_nick, jd_pin, douyin_buyer_id,
    # member_no, masked_phone …
    kind: Mapped[str] = mapped_column(String(40))
    # The namespace of the value: a WeChat app id for openids, a platform for buyer ids, "" if none.
    scope: Mapped[str] = mapped_column(String(64), default="")
    value: Mapped[str] = mapped_column(String(200))
    # Weak identifiers (masked phones) describe a person but never merge people by themselves.
    weak: Mapped[bool] = mapped_column(Boolean, default=False)
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
