"""add Segment fields to events: traits, group_id, previous_id

Revision ID: 0002_event_segment_fields
Revises: 0001_initial_schema
Create Date: 2026-11-22 11:04:20.553026
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


revision: str = "0002_event_segment_fields"
down_revision: str | None = "0001_initial_schema"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "traits",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=False,
                server_default=sa.text("'{}'"),
            )
        )
        batch_op.add_column(sa.Column("group_id", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("previous_id", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("previous_id")
        batch_op.drop_column("group_id")
        batch_op.drop_column("traits")
