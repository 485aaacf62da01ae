"""channel codes

Revision ID: 0029_channel_codes
Revises: 0028_landing_pages
Create Date: 2026-11-24 11:34:33.743478
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import siyu.storage.base

revision: str = "0029_channel_codes"
down_revision: str | None = "0028_landing_pages"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "channel_codes",
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("scene", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("ticket", sa.String(length=200), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column(
            "staff", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("expires_at", siyu.storage.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=32), nullable=True),
        sa.Column("created_at", siyu.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_codes")),
        sa.UniqueConstraint("workspace_id", "scene", name=op.f("uq_channel_codes_workspace_id_scene")),
    )
    with op.batch_alter_table("channel_codes", schema=None) as batch_op:
        batch_op.create_index("ix_channel_codes_workspace_id_source", ["workspace_id", "source"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("channel_codes", schema=None) as batch_op:
        batch_op.drop_index("ix_channel_codes_workspace_id_source")

    op.drop_table("channel_codes")
