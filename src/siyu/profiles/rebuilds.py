"""Full identity rebuilds of a workspace, requested by operators and run by workers.

A run rebuilds the whole partition in one pass, re-solves the people that differ from it,
folds merged and split profiles as ingest does, and keeps a record of what it found.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.core.clock import utcnow
from siyu.core.errors import ConflictError
from siyu.identity.rebuild import rebuild
from siyu.identity.tables import IdentityRebuild
from siyu.identity.verify import Engine, rebuild_workspace
from siyu.jobs.contracts import JobSpec
from siyu.jobs.queue import enqueue
from siyu.profiles.facade import apply_identity_outcome
from siyu.storage.scoping import require_workspace

TASK = "identity.rebuild"


@dataclass(frozen=True)
class RebuildRun:
    id: str
    status: str
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    identifiers: int
    links: int
    people: int
    shared: int
    conflicts: int
    repaired: int
    duration_ms: int
    error: str | None


def _public(row: IdentityRebuild) -> RebuildRun:
    return RebuildRun(
        id=row.id,
        status=row.status,
        requested_at=row.requested_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        identifiers=row.identifiers,
        links=row.links,
        people=row.people,
        shared=row.shared,
        conflicts=row.conflicts,
        repaired=row.repaired,
        duration_ms=row.duration_ms,
        error=row.error,
    )


def request_rebuild(scoped: Session, actor_id: str | None, *, wait_for_busy: bool = True) -> RebuildRun:
    """Queue a rebuild. While another one of this workspace is queued it is refused — or, with
    ``wait_for_busy=False``, that queued one is returned (it has not started, so it will see
    everything committed before it runs); while one is running, a new one is queued after it."""
    busy = scoped.scalar(select(IdentityRebuild).where(IdentityRebuild.status.in_(["queued", "running"])))
    if busy is not None and wait_for_busy:
        raise ConflictError("an identity rebuild is already queued or running", details={"rebuild_id": busy.id})
    if busy is not None and busy.status == "queued":
        return _public(busy)
    row = IdentityRebuild(requested_by=actor_id, status="queued")
    scoped.add(row)
    scoped.flush()
    enqueue(
        scoped,
        JobSpec(
            task=TASK,
            payload={"rebuild_id": row.id},
            workspace_id=require_workspace(scoped),
            max_attempts=1,
            idempotency_key=f"{TASK}:{row.id}",
        ),
    )
    return _public(row)


def list_rebuilds(scoped: Session, limit: int = 20) -> list[RebuildRun]:
    rows = scoped.scalars(select(IdentityRebuild).order_by(IdentityRebuild.requested_at.desc()).limit(limit))
    return [_public(r) for r in rows]


def run_rebuild(
    transaction: Callable[[], AbstractContextManager[Session]], rebuild_id: str, engine: Engine = rebuild
) -> None:
    """Run a queued rebuild: one transaction for the rebuild and its repairs, so a failure
    changes no one; the run record says how it went either way."""
    with transaction() as s:
        row = s.get(IdentityRebuild, rebuild_id)
        if row is None or row.status not in ("queued", "running"):
            return
        row.status, row.started_at, row.error = "running", utcnow(), None
    started = time.perf_counter()
    try:
        with transaction() as s:
            outcome = rebuild_workspace(s, engine=engine)
            apply_identity_outcome(s, outcome.new_profile_ids, outcome.changes)
            row = s.get(IdentityRebuild, rebuild_id)
            assert row is not None
            row.identifiers, row.links, row.people = outcome.identifiers, outcome.links, outcome.people
            row.shared, row.conflicts, row.repaired = outcome.shared, outcome.conflicts, outcome.repaired
            row.status, row.finished_at = "done", utcnow()
            row.duration_ms = int((time.perf_counter() - started) * 1000)
    except Exception as exc:
        with transaction() as s:
            row = s.get(IdentityRebuild, rebuild_id)
            if row is not None:
                row.status, row.finished_at, row.error = "failed", utcnow(), str(exc)[:2000]
                row.duration_ms = int((time.perf_counter() - started) * 1000)
        raise
