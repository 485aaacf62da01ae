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
