"""wechat apps: connected official accounts and mini-programs, secrets sealed

Revision ID: 0009_wechat_apps
Revises: 0008_consent_records
Create Date: 2026-11-22 12:14:10.599748
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


import siyu.storage.base

revision: str = "0009_wechat_apps"
down_revision: str | None = "0008_consent_records"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "wechat_apps",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("app_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_sealed", sa.Text(), nullable=False),
        sa.Column("aes_key_sealed", sa.Text(), nullable=True),
        sa.Column("created_at", siyu.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wechat_apps")),
        sa.UniqueConstraint("app_id", name=op.f("uq_wechat_apps_app_id")),
    )
    with op.batch_alter_table("wechat_apps", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_wechat_apps_workspace_id"), ["workspace_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("wechat_apps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wechat_apps_workspace_id"))

    op.drop_table("wechat_apps")
