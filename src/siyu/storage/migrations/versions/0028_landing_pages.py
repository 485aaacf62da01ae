"""landing pages

Revision ID: 0028_landing_pages
Revises: 0027_campaign_tests
Create Date: 2026-11-24 11:26:14.885137
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import siyu.storage.base

revision: str = "0028_landing_pages"
down_revision: str | None = "0027_campaign_tests"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "landing_pages",
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("layout", sa.String(length=20), nullable=False),
        sa.Column(
            "content", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=32), nullable=True),
        sa.Column("created_at", siyu.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", siyu.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_landing_pages")),
        sa.UniqueConstraint("code", name=op.f("uq_landing_pages_code")),
    )
    with op.batch_alter_table("landing_pages", schema=None) as batch_op:
        batch_op.create_index("ix_landing_pages_workspace_id_status", ["workspace_id", "status"], unique=False)

    op.create_table(
        "landing_submissions",
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("page_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("identity_id", sa.String(length=32), nullable=False),
        sa.Column("profile_id", sa.String(length=32), nullable=True),
        sa.Column("visitor", sa.String(length=32), nullable=False),
        sa.Column("utm_campaign", sa.String(length=100), nullable=False),
        sa.Column("utm_content", sa.String(length=100), nullable=False),
        sa.Column("at", siyu.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_landing_submissions")),
        sa.UniqueConstraint("page_id", "token", name="uq_landing_submissions_page_id_token"),
    )
    with op.batch_alter_table("landing_submissions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_landing_submissions_workspace_id_page_id_at", ["workspace_id", "page_id", "at"], unique=False
        )

    op.create_table(
        "landing_visits",
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("page_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("at", siyu.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("visitor", sa.String(length=32), nullable=False),
        sa.Column("bot", sa.Boolean(), nullable=False),
        sa.Column("utm_campaign", sa.String(length=100), nullable=False),
        sa.Column("utm_content", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_landing_visits")),
    )
    with op.batch_alter_table("landing_visits", schema=None) as batch_op:
        batch_op.create_index(
            "ix_landing_visits_workspace_id_page_id_at", ["workspace_id", "page_id", "at"], unique=False
        )

    op.create_table(
        "landing_page_versions",
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("page_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("layout", sa.String(length=20), nullable=False),
        sa.Column(
            "content", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("published_at", siyu.storage.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("published_by", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["page_id"],
            ["landing_pages.id"],
            name=op.f("fk_landing_page_versions_page_id_landing_pages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("page_id", "version", name=op.f("pk_landing_page_versions")),
    )


def downgrade() -> None:
    op.drop_table("landing_page_versions")
    with op.batch_alter_table("landing_visits", schema=None) as batch_op:
        batch_op.drop_index("ix_landing_visits_workspace_id_page_id_at")

    op.drop_table("landing_visits")
    with op.batch_alter_table("landing_submissions", schema=None) as batch_op:
        batch_op.drop_index("ix_landing_submissions_workspace_id_page_id_at")

    op.drop_table("landing_submissions")
    with op.batch_alter_table("landing_pages", schema=None) as batch_op:
        batch_op.drop_index("ix_landing_pages_workspace_id_status")

    op.drop_table("landing_pages")
