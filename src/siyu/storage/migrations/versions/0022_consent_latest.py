"""consent records: index the latest record per address, channel and purpose

Revision ID: 0022_consent_latest
Revises: 0021_channels
Create Date: 2026-11-24 05:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0022_consent_latest"
down_revision: str | None = "0021_channels"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_consent_records_latest", "consent_records", ["identity_id", "channel", "purpose", "at", "id"], unique=False
    )
    op.drop_index("ix_consent_records_identity_id_channel_purpose", table_name="consent_records")


def downgrade() -> None:
    op.create_index(
        "ix_consent_records_identity_id_channel_purpose",
        "consent_records",
        ["identity_id", "channel", "purpose"],
        unique=False,
    )
    op.drop_index("ix_consent_records_latest", table_name="consent_records")
