"""drop lone workspace_id indexes where composite indexes lead with workspace_id

Revision ID: 0011_lone_workspace_indexes
Revises: 0010_imports
Create Date: 2026-11-22 13:17:47.074476
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011_lone_workspace_indexes"
down_revision: str | None = "0010_imports"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_workspace_id"))

    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identities_workspace_id"))

    with op.batch_alter_table("identity_pairs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_pairs_workspace_id"))


def downgrade() -> None:
    with op.batch_alter_table("identity_pairs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_identity_pairs_workspace_id"), ["workspace_id"], unique=False)

    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_identities_workspace_id"), ["workspace_id"], unique=False)

    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_events_workspace_id"), ["workspace_id"], unique=False)
