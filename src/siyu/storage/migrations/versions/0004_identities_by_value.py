"""index identities by value: lookups go by the nearly unique value

Revision ID: 0004_identities_by_value
Revises: 0003_identity_graph
Create Date: 2026-11-22 11:36:59.416744
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op


revision: str = "0004_identities_by_value"
down_revision: str | None = "0003_identity_graph"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.create_index("ix_identities_workspace_id_value", ["workspace_id", "value"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.drop_index("ix_identities_workspace_id_value")
