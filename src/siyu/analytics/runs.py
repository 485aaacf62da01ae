"""Batch runs: requested by operators or the schedule, run by workers, logged step by step.

A run (1) brings the workspace's snapshots up to date, reading the store in a read-only
transaction that never holds up writers, (2) computes RFM, CLV, preferences, lead scores,
lifecycle stages and who has each rule and computed tag on in-memory DuckDB through the Ibis
expressions, and (3) writes the results back in one transaction, with an event for every stage
and tag change, so a failed run leaves the previous results in place. Each step's
duration and row counts go into the run's log as it ends, which is what the console shows as
progress; a failure records its error.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.accounts.facade import get_workspace
from siyu.analytics.clv import clv_inputs, score_clv
from siyu.analytics.config import workspace_config
from siyu.analytics.inputs import (
    activity,
    people,
    person_events,
    purchased_items,
    purchases,
    speaking_identities,
)
from siyu.analytics.leads import lead_scores, trait_points
from siyu.analytics.lifecycle import lifecycle
from siyu.analytics.preferences import preferences
from siyu.analytics.rfm import rfm
from siyu.analytics.snapshots import refresh_snapshots, snapshot_dir, snapshot_path
from siyu.analytics.stage_events import announce_stage_changes
from siyu.analytics.tables import AnalyticsRun
from siyu.analytics.writeback import (
    LEAD_COLUMNS,
    PREFERENCE_COLUMNS,
    RFM_COLUMNS,
    held_results,
    keep_results,
    write_clv,
    write_leads,
    write_lifecycle,
    write_preferences,
    write_rfm,
)
from siyu.core.clock import utcnow
from siyu.core.errors import ConflictError, ValidationFailedError
from siyu.jobs.contracts import JobSpec
from siyu.jobs.queue import enqueue
from siyu.rules.compiler import Moment, RuleInputs
from siyu.storage.scoping import require_workspace
from siyu.tags.evaluate import TagSpec, evaluate_tags
from siyu.tags.facade import held_tags, tags_to_evaluate, write_tag_results

TASK = "analytics.run"

Transaction = Callable[[], AbstractContextManager[Session]]


@dataclass(frozen=True)
class RunPublic:
    id: str
    status: str
    trigger: str
    requested_by: str | None
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    as_of: datetime | None
    steps: list[dict[str, Any]]
    duration_ms: int
    error: str | None


def run_to_public(row: AnalyticsRun) -> RunPublic:
    return RunPublic(
        row.id,
        row.status,
        row.trigger,
        row.requested_by,
        row.requested_at,
        row.started_at,
        row.finished_at,
        row.as_of,
        list(row.steps or []),
        row.duration_ms,
        row.error,
    )


def request_run(scoped: Session, actor_id: str | None, data_dir: Path, trigger: str = "manual") -> RunPublic:
    """Queue a run. Refused while another of the workspace's runs is queued or running (a
    scheduled firing then finds that one and adds nothing)."""
    busy = scoped.scalar(select(AnalyticsRun).where(AnalyticsRun.status.in_(["queued", "running"])))
    if busy is not None:
        raise ConflictError("a batch run is already queued or running", details={"run_id": busy.id})
    row = AnalyticsRun(requested_by=actor_id, trigger=trigger, status="queued", steps=[])
    scoped.add(row)
    scoped.flush()
    enqueue(
        scoped,
        JobSpec(
            task=TASK,
            payload={"run_id": row.id, "data_dir": str(data_dir)},
            workspace_id=require_workspace(scoped),
            max_attempts=1,
            idempotency_key=f"{TASK}:{row.id}",
        ),
    )
    return run_to_public(row)


def list_runs(scoped: Session, limit: int = 20) -> list[RunPublic]:
    rows = scoped.scalars(select(AnalyticsRun).order_by(AnalyticsRun.requested_at.desc()).limit(limit))
    return [run_to_public(r) for r in rows]


def last_done_run(scoped: Session) -> AnalyticsRun | None:
    return scoped.scalar(
        select(AnalyticsRun).where(AnalyticsRun.status == "done").order_by(AnalyticsRun.finished_at.desc()).limit(1)
    )


def run_batch(
    read: Transaction, transaction: Transaction, run_id: str, data_dir: Path, as_of: datetime | None = None
) -> None:
    """Run a queued run to its end; the run's record says how it went either way."""
    with transaction() as s:
        row = s.get(AnalyticsRun, run_id)
        if row is None or row.status not in ("queued", "running"):
            return
        row.status, row.started_at, row.error, row.steps = "running", utcnow(), None, []
        row.as_of = as_of or row.started_at
        moment = row.as_of
        config = workspace_config(s)
        last = last_done_run(s)
        last_id = last.id if last is not None else None
        workspace_id = require_workspace(s)
        timezone = get_workspace(s, workspace_id).timezone
        specs = tags_to_evaluate(s)
    started = time.perf_counter()
    log = _Log(transaction, run_id)
    try:
        with log.step("transfer") as counts, read() as r:
            for moved in refresh_snapshots(r, data_dir, timezone=timezone):
                counts[f"{moved.source}_moved"] = moved.rows_moved
                counts[f"{moved.source}_held"] = moved.rows_held
            held = held_tags(r) if specs else None
        con = ibis.duckdb.connect()
        try:
            orders = con.read_parquet(snapshot_path(data_dir, workspace_id, "orders"))
            identities = con.read_parquet(snapshot_path(data_dir, workspace_id, "identities"))
            # Every computation starts from the purchases: join once, keep them in the engine's memory.
            bought = con.create_table("purchases", purchases(orders, identities), temp=True)
            with log.step("rfm") as counts:
                results = rfm(bought, moment, config.rfm).to_pyarrow()
                counts["people"] = results.num_rows
            with log.step("clv") as counts:
                clv = _clv(clv_inputs(bought, moment).to_pyarrow(), config.options.clv_horizon_days, counts)
            items = con.read_parquet(snapshot_path(data_dir, workspace_id, "order_items"))
            products = con.read_parquet(snapshot_path(data_dir, workspace_id, "products"))
            with log.step("preferences") as counts:
                liked = preferences(
                    bought, items, products, moment, timezone, config.options.price_bands_fen
                ).to_pyarrow()
                counts["people"] = liked.num_rows
            events = con.read_parquet(snapshot_path(data_dir, workspace_id, "events"))
            everyone = people(identities)
            traits = con.read_parquet(snapshot_path(data_dir, workspace_id, "traits"))
            # Trait rows of people merged away since are no one's.
            traits = traits.semi_join(everyone, traits.profile_id == everyone.profile_id)
            at = Moment(moment, timezone)
            with log.step("leads") as counts:
                by_traits = trait_points(config.leads, RuleInputs(people=everyone, traits=traits), at)
                scored = lead_scores(person_events(events, identities), moment, config.leads, by_traits).to_pyarrow()
                counts["people"] = scored.num_rows
            with log.step("lifecycle") as counts:
                seen = activity(events, identities)
                stages = lifecycle(everyone, bought, moment, config.lifecycle, seen).to_pyarrow()
                speaker = speaking_identities(identities).to_pyarrow()
                counts["people"] = stages.num_rows
            tagged: dict[str, pa.Table] = {}
            if specs and held is not None:
                with log.step("tags") as counts:
                    results_of = {"rfm": results, "lifecycle": stages, "preferences": liked, "leads": scored}
                    rule_inputs = RuleInputs(
                        people=everyone,
                        traits=traits,
                        purchases=bought,
                        events=person_events(events, identities),
                        items=purchased_items(bought, items, products),
                    )
                    tagged = _evaluate_tags(con, specs, rule_inputs, results_of, at, held)
                    counts["tags"] = len(tagged)
                    counts["holders"] = sum(t.num_rows for t in tagged.values())
        finally:
            con.disconnect()
        results_dir = snapshot_dir(data_dir, workspace_id) / "results"
        rfm_path, lifecycle_path = results_dir / "rfm.parquet", results_dir / "lifecycle.parquet"
        clv_path, liked_path = results_dir / "clv.parquet", results_dir / "preferences.parquet"
        leads_path = results_dir / "leads.parquet"
        with log.step("write") as counts:
            with transaction() as s:
                written = write_rfm(s, results, held_results(rfm_path, last_id), run_id)
                changes = write_lifecycle(s, stages, held_results(lifecycle_path, last_id), moment, run_id)
                valued = write_clv(s, clv, held_results(clv_path, last_id), run_id) if clv is not None else None
                tastes = write_preferences(s, liked, held_results(liked_path, last_id), run_id)
                graded = write_leads(s, scored, held_results(leads_path, last_id), run_id)
                announced = announce_stage_changes(s, changes.moved, speaker, config.lifecycle)
                speakers = dict(
                    zip(*(speaker.column(c).to_pylist() for c in ("profile_id", "identity_id")), strict=True)
                )
                tags_started = time.perf_counter()
                tags_written = write_tag_results(s, tagged, speakers, run_id) if tagged else None
                tags_ms = int((time.perf_counter() - tags_started) * 1000)
                row = s.get(AnalyticsRun, run_id)
                assert row is not None
                row.status, row.finished_at = "done", utcnow()
                row.duration_ms = int((time.perf_counter() - started) * 1000)
            keep_results(rfm_path, results.select(list(RFM_COLUMNS)), run_id)
            keep_results(lifecycle_path, changes.rows, run_id)
            keep_results(liked_path, liked.select(list(PREFERENCE_COLUMNS)), run_id)
            keep_results(leads_path, scored.select(list(LEAD_COLUMNS)), run_id)
            counts.update(preferences_replaced=tastes.replaced, leads_replaced=graded.replaced)
            if clv is not None:
                keep_results(clv_path, clv, run_id)
                counts.update(clv_replaced=valued.replaced if valued is not None else 0)
            counts.update(replaced=written.replaced, deleted=written.deleted, full=written.full)
            counts.update(stage_changes=changes.moved.num_rows, stage_events=announced)
            if tags_written is not None:
                counts.update(tags_added=tags_written.added, tags_removed=tags_written.removed)
                counts.update(tags_revalued=tags_written.revalued, tags_ms=tags_ms)
        log.flush(duration_ms=int((time.perf_counter() - started) * 1000))
    except Exception as exc:
        with transaction() as s:
            row = s.get(AnalyticsRun, run_id)
            if row is not None:
                row.status, row.finished_at, row.error = "failed", utcnow(), f"{log.current}: {exc}"[:2000]
                row.steps = log.steps
                row.duration_ms = int((time.perf_counter() - started) * 1000)
        raise


def _evaluate_tags(
    con: Any,
    specs: list[TagSpec],
    inputs: RuleInputs,
    results: dict[str, pa.Table],
    moment: Moment,
    held: pa.Table,
) -> dict[str, pa.Table]:
    """Every rule and computed tag's holders."""
    tables = {
        name: con.create_table(f"{name}_of_run", table, temp=True, overwrite=True) for name, table in results.items()
    }
    inputs = replace(inputs, rfm=tables["rfm"], lifecycle=tables["lifecycle"])
    return evaluate_tags(con, specs, inputs, tables, moment, held)


def _clv(inputs: pa.Table, horizon_days: int, counts: dict[str, Any]) -> pa.Table | None:
    """Everyone's CLV, with the fitted parameters in the step's log; None (and why, in the log)
    when there are too few buyers to fit the models, which leaves the last results as they are."""
    try:
        scored = score_clv(inputs, horizon_days)
    except ValidationFailedError as exc:
        counts["skipped"] = exc.message
        return None
    counts["people"] = scored.table.num_rows
    counts["horizon_days"] = horizon_days
    for name, value in (*scored.purchases.__dict__.items(), *scored.spend.__dict__.items()):
        counts[name] = round(value, 4)
    return scored.table


class _Log:
    """The run's steps, each written to its record as it ends (the console polls them)."""

    def __init__(self, transaction: Transaction, run_id: str) -> None:
        self.transaction, self.run_id = transaction, run_id
        self.steps: list[dict[str, Any]] = []
        self.current = ""

    def step(self, name: str) -> _Step:
        self.current = name
        return _Step(self, name)

    def ended(self, name: str, ms: int, counts: dict[str, Any]) -> None:
        self.steps = [s for s in self.steps if s["name"] != name] + [{"name": name, "ms": ms, **counts}]
        self.flush()

    def flush(self, **fields: Any) -> None:
        with self.transaction() as s:
            row = s.get(AnalyticsRun, self.run_id)
            if row is not None:
                row.steps = list(self.steps)
                for key, value in fields.items():
                    setattr(row, key, value)


class _Step:
    def __init__(self, log: _Log, name: str) -> None:
        self.log, self.name = log, name
        self.counts: dict[str, Any] = {}

    def __enter__(self) -> dict[str, Any]:
        self.started = time.perf_counter()
        return self.counts

    def __exit__(self, kind: object, *_: object) -> None:
        if kind is None:
            self.log.ended(self.name, int((time.perf_counter() - self.started) * 1000), self.counts)
