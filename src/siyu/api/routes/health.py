"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from siyu.api.deps import DbDep
from siyu.api.schemas import HealthOut
from siyu.storage import migrate

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthOut)
def healthz() -> HealthOut:
    """The process is up."""
    return HealthOut(status="ok")


@router.get("/readyz", response_model=HealthOut, responses={503: {"model": HealthOut}})
def readyz(db: DbDep) -> HealthOut | JSONResponse:
    """The database answers and its schema is at the latest migration."""
    checks: dict[str, str] = {}
    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
        current, head = migrate.current_revision(db.engine), migrate.head_revision()
        checks["migrations"] = "ok" if current == head else f"at {current}, latest is {head}"
    except Exception as exc:  # report, don't crash the probe
        checks["database"] = f"error: {type(exc).__name__}"
    if all(v == "ok" for v in checks.values()):
        return HealthOut(status="ok", checks=checks)
    return JSONResponse(status_code=503, content={"status": "unavailable", "checks": checks})
