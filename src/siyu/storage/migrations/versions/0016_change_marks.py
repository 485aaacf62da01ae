"""orders and identities: changed_at, set by the database on insert and on every update, for the
batch engine's incremental transfer

Revision ID: 0016_change_marks
Revises: 0015_identity_pairs_unchecked
Create Date: 2026-11-23 18:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from siyu.storage.base import UTCDateTime

revision: str = "0016_change_marks"
down_revision: str | None = "0015_identity_pairs_unchecked"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("orders", "identities")

# PostgreSQL: the statement's own clock (not the transaction's start), so that a long
# transaction's changes are not dated long before they become visible.
PG_FUNCTION = """
CREATE OR REPLACE FUNCTION siyu_mark_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.changed_at := clock_timestamp();
    RETURN NEW;
END
$$
"""


def _sqlite_trigger(table: str) -> str:
    # The format of SQLAlchemy's SQLite datetimes (naive UTC, microseconds). Skipped when the
    # update sets changed_at itself; SQLite triggers do not fire themselves again.
    return (
        f"CREATE TRIGGER {table}_changed_at AFTER UPDATE ON {table} FOR EACH ROW "
        "WHEN NEW.changed_at IS OLD.changed_at BEGIN "
        f"UPDATE {table} SET changed_at = strftime('%Y-%m-%d %H:%M:%f000', 'now') WHERE id = NEW.id; END"
    )


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in TABLES:
        # SQLite adds no column with a non-constant default to a table: it is rebuilt.
        with op.batch_alter_table(table, schema=None, recreate="auto") as batch_op:
            batch_op.add_column(
                sa.Column("changed_at", UTCDateTime(), server_default=sa.text("CURRENT_TIMESTAMP"), nullable=False)
            )
            batch_op.create_index(f"ix_{table}_workspace_id_changed_at", ["workspace_id", "changed_at"], unique=False)
    if postgres:
        op.execute(PG_FUNCTION)
    for table in TABLES:
        if postgres:
            op.execute(
                f"CREATE TRIGGER {table}_changed_at BEFORE UPDATE ON {table} FOR EACH ROW "
                "WHEN (NEW.changed_at IS NOT DISTINCT FROM OLD.changed_at) EXECUTE FUNCTION siyu_mark_changed()"
            )
        else:
            op.execute(_sqlite_trigger(table))


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_changed_at" + (f" ON {table}" if postgres else ""))
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f"ix_{table}_workspace_id_changed_at")
            batch_op.drop_column("changed_at")
    if postgres:
        op.execute("DROP FUNCTION IF EXISTS siyu_mark_changed()")
