"""Migrations: idempotent, reversible, and in step with the models, on every backend."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import siyu.schema
from siyu.storage import migrate
from siyu.storage.session import Database


def test_upgrade_is_idempotent(db: Database) -> None:
    migrate.upgrade(db.engine)
    migrate.upgrade(db.engine)
    assert migrate.current_revision(db.engine) == migrate.head_revision()


def test_models_and_migrations_agree(db: Database) -> None:
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), siyu.schema.metadata)
    assert diff == []


def test_downgrade_and_upgrade_again(tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    migrate.upgrade(db.engine)
    migrate.downgrade(db.engine, "base")
    assert migrate.current_revision(db.engine) is None
    migrate.upgrade(db.engine)
    assert migrate.current_revision(db.engine) == migrate.head_revision()
    db.dispose()


def test_events_derived_before_the_mark_are_marked(tmp_path: object) -> None:
    from pathlib import Path

    from sqlalchemy import text

    assert isinstance(tmp_path, Path)
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    migrate.upgrade(db.engine, "0022_consent_latest")
    stamp = "2026-11-01 00:00:00.000000"
    with db.engine.begin() as conn:
        for n, (message_id, user_id) in enumerate(
            [("tag:t1:p1:added:1", None), ("segment:s1:p1:entered:1", None), ("tag:mine", "u1"), ("m-1", "u1")]
        ):
            conn.execute(
                text(
                    "INSERT INTO events (id, workspace_id, message_id, type, user_id, properties, traits, context,"
                    " timestamp, received_at) VALUES (:id, 'ws', :m, 'track', :u, '{}', '{}', '{}', :t, :t)"
                ),
                {"id": f"evt_{n}", "m": message_id, "u": user_id, "t": stamp},
            )
    migrate.upgrade(db.engine)
    with db.engine.connect() as conn:
        marked = dict(conn.execute(text("SELECT message_id, derived FROM events")).all())
    assert marked == {"tag:t1:p1:added:1": 1, "segment:s1:p1:entered:1": 1, "tag:mine": 0, "m-1": 0}
    db.dispose()
