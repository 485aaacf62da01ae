"""events: mark the events siyu derives itself

Revision ID: 0023_derived_events
Revises: 0022_consent_latest
Create Date: 2026-11-24 06:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023_derived_events"
down_revision: str | None = "0022_consent_latest"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The message ids derived events have always been given (segments, tags, lifecycle stages).
DERIVED_PREFIXES = ("segment:", "tag:", "lifecycle:")


def upgrade() -> None:
    # A column with a constant default: added in place, the rows are not rewritten.
    op.add_column("events", sa.Column("derived", sa.Boolean(), server_default=sa.false(), nullable=False))
    derived = " OR ".join(f"message_id LIKE '{prefix}%'" for prefix in DERIVED_PREFIXES)
    op.execute(f"UPDATE events SET derived = true WHERE ({derived}) AND user_id IS NULL AND anonymous_id IS NULL")


def downgrade() -> None:
    with op.batch_alter_table("events") as batch_op:
        batch_op.drop_column("derived")
