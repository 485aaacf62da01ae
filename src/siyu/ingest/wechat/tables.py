"""WeChat apps a workspace connected (official accounts, mini-programs), with sealed secrets."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from siyu.core.clock import utcnow
from siyu.core.ids import new_id
from siyu.storage.base import Base, WorkspaceScoped


class WechatApp(WorkspaceScoped, Base):
    __tablename__ = "wechat_apps"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("wxa_"))
    kind: Mapped[str] = mapped_column(String(16))  # oa | miniprogram
    # Callbacks are routed by app id, so an app belongs to exactly one workspace.
    app_id: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    token_sealed: Mapped[str] = mapped_column(Text)
    aes_key_sealed: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
