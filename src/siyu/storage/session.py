"""Session factory bound to the configured database; each session carries a Scope."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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

    def session(self, scope: Scope) -> Session:
        session = self._factory()
        set_scope(session, scope)
        return session

    @contextmanager
    def transaction(self, scope: Scope) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error."""
        session = self.session(scope)
        try:
            with session.begin():
                yield session
        finally:
            session.close()

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
        self.engine.dispose()
        if self._reader is not self.engine:
            self._reader.dispose()


@lru_cache(maxsize=1)
def get_database() -> Database:
    return Database(get_settings().database_url)
