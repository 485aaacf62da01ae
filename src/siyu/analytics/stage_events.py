"""Every lifecycle stage change becomes an event on the person — "Lifecycle Stage Changed" with
from and to — so that journeys can start on it. One per person and run: the messageId names the
person and the moment, so writing the same change again adds nothing."""

from __future__ import annotations

import duckdb
import pyarrow as pa
from sqlalchemy.orm import Session

from siyu.analytics.lifecycle import StageModel
from siyu.core.clock import ensure_utc, utcnow
from siyu.ingest.facade import DerivedEvent, append_derived_events

EVENT = "Lifecycle Stage Changed"
SOURCE = "analytics.lifecycle"


def announce_stage_changes(scoped: Session, moved: pa.Table, speaker: pa.Table, model: StageModel) -> int:
    """Record an event for each person in ``moved`` (profile_id, stage, previous_stage, since),
    under their identifier in ``speaker`` (profile_id, identity_id). Returns how many were new."""
    if moved.num_rows == 0:
        return 0
    con = duckdb.connect()
    try:
        con.register("moved", moved)
        con.register("speaker", speaker)
        rows = con.sql(
            "SELECT m.profile_id, m.stage, m.previous_stage, m.since, s.identity_id "
            "FROM moved m JOIN speaker s USING (profile_id)"
        ).fetchall()
    finally:
        con.close()
    events = [
        DerivedEvent(
            message_id=f"lifecycle:{profile_id}:{ensure_utc(since).isoformat()}",
            event=EVENT,
            identity_id=identity_id,
            properties={
                "from": previous,
                "to": stage,
                "from_name": model.name_of(previous) if previous else None,
                "to_name": model.name_of(stage),
            },
            timestamp=ensure_utc(since),
            source=SOURCE,
        )
        for profile_id, stage, previous, since, identity_id in rows
    ]
    return append_derived_events(scoped, events, utcnow())
