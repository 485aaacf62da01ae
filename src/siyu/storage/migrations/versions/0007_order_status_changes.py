"""order status changes: the status timeline of each order

Revision ID: 0007_order_status_changes
Revises: 0006_trait_observations
Create Date: 2026-11-22 12:00:26.213790
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


import siyu.storage.base

revision: str = "0007_order_status_changes"
down_revision: str | None = "0006_trait_observations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "order_status_changes",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("order_id", sa.String(length=32), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("at", siyu.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", siyu.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_order_status_changes_order_id_orders"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_status_changes")),
    )
    with op.batch_alter_table("order_status_changes", schema=None) as batch_op:
        batch_op.create_index("ix_order_status_changes_order_id_at", ["order_id", "at"], unique=False)
        batch_op.create_index(batch_op.f("ix_order_status_changes_workspace_id"), ["workspace_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("order_status_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_status_changes_workspace_id"))
        batch_op.drop_index("ix_order_status_changes_order_id_at")

    op.drop_table("order_status_changes")
