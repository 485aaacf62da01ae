"""Fixtures: a migrated database on every backend, an app client, and signed-in actors.

SQLite always; PostgreSQL too when SIYU_TEST_DATABASE_URL is set (CI sets it). Each SQLite test
gets a copy of a freshly migrated file; PostgreSQL is migrated once and emptied between tests.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ibis
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

import siyu.schema
from siyu.accounts import facade
from siyu.accounts.contracts import KeyScope, Principal, Role
from siyu.api.app import create_app
from siyu.core.settings import Settings
from siyu.storage import migrate
from siyu.storage.engine import make_engine
from siyu.storage.scoping import Scope
from siyu.storage.session import Database

PG_URL = os.environ.get("SIYU_TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
TEST_SECRET = "test-secret-" + "x" * 40
PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "siyu.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[Database | None]:
    if not PG_URL:
        yield None
        return
    db = Database(PG_URL)
    migrate.upgrade(db.engine)
    yield db
    db.dispose()


def _truncate_pg(db: Database) -> None:
    tables = ", ".join(t.name for t in siyu.schema.metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} CASCADE"))


@pytest.fixture(params=BACKENDS)
def db(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path, pg_database: Database | None
) -> Iterator[Database]:
    if request.param == "sqlite":
        path = tmp_path / "siyu.db"
        shutil.copy(sqlite_template, path)
        database = Database(f"sqlite:///{path}")
        yield database
        database.dispose()
    else:
        assert pg_database is not None
        _truncate_pg(pg_database)
        yield pg_database
        _truncate_pg(pg_database)


def settings_for(db: Database, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": "test",
        "secret_key": TEST_SECRET,
        "database_url": db.url,
        "login_max_failures": 5,
        "web_dist": Path("/nonexistent"),
        "data_dir": Path(tempfile.mkdtemp(prefix="siyu-data-")),
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def client(db: Database) -> Iterator[TestClient]:
    app = create_app(settings_for(db), db)
    with TestClient(app) as c:
        yield c


@dataclass
class Actor:
    """A workspace with an owner who is signed in, and a full API key."""

    workspace_id: str
    slug: str
    email: str
    user_id: str
    key: str
    ingest_key: str

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def make_actor(db: Database, slug: str, role: Role = Role.OWNER) -> Actor:
    email = f"{slug}-{role.value}@example.com"
    with db.transaction(Scope.unscoped_system()) as system:
        ws = facade.find_workspace_by_slug(system, slug)
        user = facade.create_user(system, email=email, password=PASSWORD, display_name=slug)
        if ws is None:
            ws = facade.create_workspace(system, name=f"Brand {slug}", slug=slug)
    owner = Principal(workspace_id=ws.id, role=Role.OWNER)
    with db.transaction(Scope.workspace(ws.id)) as scoped:
        facade.add_member(scoped, owner, user_id=user.id, role=role)
        key = facade.create_api_key(scoped, owner, name="test", scope=KeyScope.FULL)
        ingest = facade.create_api_key(scoped, owner, name="ingest", scope=KeyScope.INGEST)
    return Actor(ws.id, slug, email, user.id, key.token, ingest.token)


def login(client: TestClient, email: str, password: str = PASSWORD) -> str:
    """Sign the client in; returns the CSRF token for state-changing requests."""
    response = client.post("/api/v1/session/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return str(response.json()["csrf_token"])


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """An Ibis backend on the test PostgreSQL, for the batch expressions' tests (skipped without one)."""
    url = os.environ.get("SIYU_TEST_DATABASE_URL")
    if not url:
        pytest.skip("SIYU_TEST_DATABASE_URL is not set")
    con = ibis.connect(url.replace("postgresql+psycopg://", "postgres://"))
    yield con
    con.disconnect()


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """An Ibis backend on Spark in local mode, for the batch expressions' tests (skipped without pyspark)."""
    if importlib.util.find_spec("pyspark") is None:
        pytest.skip("pyspark is not installed (pip install 'siyu[spark]')")
    from pyspark.sql import SparkSession

    # Python functions (Ibis reads JSON with some) run in this interpreter, which has pandas.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    session = (
        SparkSession.builder.master("local[2]")
        .appName("siyu-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield ibis.pyspark.connect(session)
    session.stop()
