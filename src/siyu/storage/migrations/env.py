"""Alembic environment: runs with the connection handed over by siyu.storage.migrate."""

from __future__ import annotations

from alembic import context

import siyu.schema

target_metadata = siyu.schema.metadata


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through `siyu migrate`")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline migrations are not supported; run `siyu migrate`")
run_migrations_online()
