"""Property-based fuzzing of every API operation from the OpenAPI schema (schemathesis).

Bounded: a few dozen generated requests per operation, authenticated as a workspace owner with
a full API key, against a migrated SQLite database made for this module. No response may be a
server error, and every response must match the schema's declared status codes and bodies.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from siyu.api.app import create_app
from siyu.storage import migrate
from siyu.storage.session import Database
from tests.conftest import make_actor, settings_for

_dir = tempfile.TemporaryDirectory(prefix="siyu-fuzz-")
_db = Database(f"sqlite:///{Path(_dir.name) / 'siyu.db'}")
migrate.upgrade(_db.engine)
_actor = make_actor(_db, "fuzz")
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(settings_for(_db), _db))


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_fails_with_a_server_error(case: schemathesis.Case) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {_actor.key}"},
        checks=[not_a_server_error, status_code_conformance, response_schema_conformance],
    )
