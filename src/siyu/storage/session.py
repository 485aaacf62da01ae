"""Session factory bound to the configured database; each session carries a Scope."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import lru_cache

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from siyu.core.settings import get_settings
from siyu.storage.engine import make_engine
from siyu.storage.scoping import Scope, set_scope


class Database:
    """An engine plus a session factory; tests build their own, the app uses :func:`get_database`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = make_engine(url)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite: reads on their own connections with deferred BEGIN, so they never queue behind
        # writers. PostgreSQL needs no second pool.
        self._reader = make_engine(url, immediate=False) if self.engine.dialect.name == "sqlite" else self.engine
        self._read_factory = sessionmaker(self._reader, expire_on_commit=False)
        # PostgreSQL: the ingest hot path's own small pool, whose connections plan each prepared
        # statement once. Planning an ingest statement anew costs about as much as running it.
        self._keyed = (
            make_engine(url, generic_plans=True, pool_size=2, max_overflow=8)
            if self.engine.dialect.name == "postgresql"
            else self.engine
        )
        self._keyed_factory = sessionmaker(self._keyed, expire_on_commit=False)

    def session(self, scope: Scope) -> Session:
        session = self._factory()
        set_scope(session, scope)
        return session

    def transaction(self, scope: Scope) -> AbstractContextManager[Session]:
        """A session whose transaction commits on success and rolls back on error."""
        return _transaction(self._factory, scope)

    def keyed_transaction(self, scope: Scope) -> AbstractContextManager[Session]:
        """As :meth:`transaction`, for work whose statements are keyed lookups and bulk writes
        (storing events): on PostgreSQL each statement is planned once, not on every run."""
        return _transaction(self._keyed_factory, scope)

    @contextmanager
    def read(self, scope: Scope) -> Iterator[Session]:
        """A read-only session: its transaction is rolled back at the end."""
        session = self._read_factory()
        set_scope(session, scope)
        try:
            yield session
        finally:
            session.rollback()
            session.close()

    def dispose(self) -> None:
        for engine in {self.engine, self._reader, self._keyed}:
            engine.dispose()


@contextmanager
def _transaction(factory: sessionmaker[Session], scope: Scope) -> Iterator[Session]:
    session = factory()
    set_scope(session, scope)
    try:
        with session.begin():
            yield session
    finally:
        session.close()


@lru_cache(maxsize=1)
def get_database() -> Database:
    return Database(get_settings().database_url)
