"""campaign tests (then the winner) and recurrence

Revision ID: 0027_campaign_tests
Revises: 0026_links
Create Date: 2026-11-24 11:10:26.527833
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from siyu.storage.base import UTCDateTime

revision: str = "0027_campaign_tests"
down_revision: str | None = "0026_links"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("test", JSON, nullable=False, server_default=sa.text("'{}'")))
        batch_op.add_column(sa.Column("phase", sa.String(length=8), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("winner", sa.String(length=8), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("decided_at", UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("recurrence", JSON, nullable=False, server_default=sa.text("'{}'")))
        batch_op.add_column(sa.Column("parent_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("next_at", UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_campaigns_parent_id"), ["parent_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaigns_parent_id"))
        for column in ("next_at", "parent_id", "recurrence", "decided_at", "winner", "phase", "test"):
            batch_op.drop_column(column)
