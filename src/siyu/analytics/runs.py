"""Batch runs: requested by operators or the schedule, run by workers, logged step by step.

A run (1) brings the workspace's snapshots up to date, reading the store in a read-only
transaction that never holds up writers, (2) computes RFM, CLV, preferences, lead scores,
lifecycle stages, who has each rule and computed tag, and who is in each dynamic segment on
in-memory DuckDB through the Ibis expressions, and (3) writes the results back in one
transaction, with an event for every stage, tag and segment change, so a failed run leaves the
previous results in place. A run of scope ``segments`` refreshes only the segments, reading the
other results as the last full run left them. Each step's
duration and row counts go into the run's log as it ends, which is what the console shows as
progress; a failure records its error.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.accounts.facade import get_workspace
from siyu.analytics.clv import clv_inputs, score_clv
from siyu.analytics.config import AnalyticsConfig, workspace_config
from siyu.analytics.inputs import activity, purchase_totals, speaking_identities
from siyu.analytics.leads import lead_scores, trait_points
from siyu.analytics.lifecycle import staged
from siyu.analytics.preferences import preferences
from siyu.analytics.rfm import scored_rfm
from siyu.analytics.rule_inputs import (
    LIFECYCLE_RESULTS,
    READ_IN_PLACE,
    RFM_RESULTS,
    Asked,
    Coded,
    coded_snapshot_inputs,
    kept_by_code,
    kept_results,
    names_a_store,
    snapshot_inputs,
)
from siyu.analytics.snapshots import refresh_snapshots, snapshot_dir, snapshot_path
from siyu.analytics.stage_events import announce_stage_changes
from siyu.analytics.tables import AnalyticsRun
from siyu.analytics.writeback import (
    CODE_COLUMN,
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
from siyu.rules.buckets import seeds_used
from siyu.rules.compiler import Moment, RuleInputs, inputs_needed, recent_purchase_tallies
from siyu.rules.nodes import parse_rule
from siyu.segments.contracts import SegmentSpec
from siyu.segments.evaluate import SegmentChanges, evaluate_segments
from siyu.segments.facade import held_members, segments_to_evaluate, write_segment_results
from siyu.storage.scoping import require_workspace
from siyu.tags.evaluate import TAGS_TABLE, TagSpec, evaluate_tags
from siyu.tags.facade import held_tags, tags_to_evaluate, write_tag_results

TASK = "analytics.run"

Transaction = Callable[[], AbstractContextManager[Session]]


@dataclass(frozen=True)
class RunPublic:
    id: str
    status: str
    trigger: str
    scope: str
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
        row.scope,
        row.requested_by,
        row.requested_at,
        row.started_at,
        row.finished_at,
        row.as_of,
        list(row.steps or []),
        row.duration_ms,
        row.error,
    )


def request_run(
    scoped: Session, actor_id: str | None, data_dir: Path, trigger: str = "manual", scope: str = "full"
) -> RunPublic:
    """Queue a run (``scope`` full, or segments: only the segments refreshed). Refused while
    another of the workspace's runs is queued or running (a scheduled firing then finds that one
    and adds nothing)."""
    if scope not in ("full", "segments"):
        raise ValidationFailedError("a run's scope is full or segments", details={"path": "scope"})
    busy = scoped.scalar(select(AnalyticsRun).where(AnalyticsRun.status.in_(["queued", "running"])))
    if busy is not None:
        raise ConflictError("a batch run is already queued or running", details={"run_id": busy.id})
    row = AnalyticsRun(requested_by=actor_id, trigger=trigger, status="queued", steps=[], scope=scope)
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


def last_done_run(scoped: Session, full: bool = False) -> AnalyticsRun | None:
    """The last run that finished (``full``: of every step, which is what wrote the results)."""
    stmt = select(AnalyticsRun).where(AnalyticsRun.status == "done")
    if full:
        stmt = stmt.where(AnalyticsRun.scope == "full")
    return scoped.scalar(stmt.order_by(AnalyticsRun.finished_at.desc()).limit(1))


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
        last = last_done_run(s, full=True)
        # Segments alone need the results of a full run to read; before any, the run is full.
        if row.scope == "segments" and last is None:
            row.scope = "full"
        job = _Job(
            run_id=run_id,
            scope=row.scope,
            moment=row.as_of,
            config=workspace_config(s),
            last_id=last.id if last is not None else None,
            workspace_id=require_workspace(s),
            timezone=get_workspace(s, require_workspace(s)).timezone,
            tag_specs=tags_to_evaluate(s) if row.scope == "full" else [],
            segment_specs=segments_to_evaluate(s),
            data_dir=data_dir,
        )
    started = time.perf_counter()
    log = _Log(transaction, run_id)
    try:
        with log.step("transfer") as counts, read() as r:
            for moved in refresh_snapshots(r, data_dir, timezone=job.timezone):
                counts[f"{moved.source}_moved"] = moved.rows_moved
                counts[f"{moved.source}_held"] = moved.rows_held
            held = held_tags(r) if job.tag_specs or job.segment_specs else None
            members = held_members(r) if job.segment_specs else None
        con = ibis.duckdb.connect()
        try:
            if job.scope == "full":
                computed = _compute(con, job, log, held)
            else:
                computed = _Computed()
                kept_rfm, kept_stages = kept_results(con, data_dir, job.workspace_id)
                inputs = snapshot_inputs(con, data_dir, job.workspace_id)
                assert held is not None
                tags = con.create_table(TAGS_TABLE, held.select(["profile_id", "tag_id", "value"]), temp=True)
                computed.rule_inputs = replace(inputs, rfm=kept_rfm, lifecycle=kept_stages, tags=tags)
            if job.segment_specs and members is not None:
                with log.step("segments") as counts:
                    if computed.codes is not None:
                        moment = Moment(job.moment, job.timezone)
                        computed.segments = segment_changes(job.segment_specs, computed.codes, moment, members)
                    else:
                        assert computed.rule_inputs is not None
                        computed.segments = _evaluate_segments(con, job, computed.rule_inputs, members)
                    counts["segments"] = len(computed.segments)
                    counts["members"] = sum(c.size for c in computed.segments.values())
        finally:
            con.disconnect()
        with log.step("write") as counts:
            if job.scope == "full":
                _write_full(transaction, job, computed, counts, started)
            else:
                _write_segments_only(transaction, job, computed, counts, started)
        log.flush(duration_ms=int((time.perf_counter() - started) * 1000))
    except Exception as exc:
        with transaction() as s:
            row = s.get(AnalyticsRun, run_id)
            if row is not None:
                row.status, row.finished_at, row.error = "failed", utcnow(), f"{log.current}: {exc}"[:2000]
                row.steps = log.steps
                row.duration_ms = int((time.perf_counter() - started) * 1000)
        raise


@dataclass(frozen=True)
class _Job:
    """What a run works from, read when it starts."""

    run_id: str
    scope: str
    moment: datetime
    config: AnalyticsConfig
    last_id: str | None
    workspace_id: str
    timezone: str
    tag_specs: list[TagSpec]
    segment_specs: list[SegmentSpec]
    data_dir: Path


@dataclass
class _Computed:
    """A run's results, on their way to the store."""

    rfm: pa.Table | None = None
    clv: pa.Table | None = None
    liked: pa.Table | None = None
    scored: pa.Table | None = None
    stages: pa.Table | None = None
    speaker: pa.Table | None = None
    tagged: dict[str, pa.Table] = field(default_factory=dict)
    rule_inputs: RuleInputs | None = None  # a segments-only run's inputs, people as ids
    codes: Coded | None = None  # a full run's inputs, people numbered
    segments: dict[str, SegmentChanges] = field(default_factory=dict)


def _compute(con: Any, job: _Job, log: _Log, held: pa.Table | None) -> _Computed:
    """Every result of a full run, computed on the engine from the snapshots. People are numbered
    for the run (``Coded``): every computation groups and joins on their integer codes, and each
    result is turned back into ids on its way out."""
    data_dir, workspace_id, moment, config = job.data_dir, job.workspace_id, job.moment, job.config
    out = _Computed()
    rules = [parse_rule(s.rule) for s in job.tag_specs if s.rule is not None]
    codes = coded_snapshot_inputs(con, data_dir, workspace_id, {}, in_place=READ_IN_PLACE, stores=names_a_store(rules))
    # Every computation starts from the purchases: join once, keep them in the engine's memory.
    bought = codes.inputs(["purchases"]).purchases
    assert bought is not None
    everyone = codes.people.select("profile_id")
    coded: dict[str, pa.Table] = {}  # the results, people as codes
    at = Moment(moment, job.timezone)
    with log.step("rfm") as counts:
        # RFM, the lifecycle stages and the rules' recent order aggregates start from the same
        # totals: group the purchases once.
        windows = {config.rfm.window_days, config.lifecycle.window_days}
        tallies = recent_purchase_tallies([*rules, *(parse_rule(s.rule) for s in job.segment_specs)], at)
        grouped = purchase_totals(bought, moment, windows, tallies, first=config.lifecycle.reads_first_purchase)
        totals = con.create_table("purchase_totals", grouped, temp=True)
        counts["order_aggregates"] = len(tallies)  # of rules, totalled here
        coded["rfm"] = scored_rfm(totals, moment, config.rfm).to_pyarrow()
        out.rfm = codes.decoded(coded["rfm"], keep_code=True)  # kept with the codes (``kept_by_code``)
        counts["people"] = out.rfm.num_rows
    with log.step("clv") as counts:
        out.clv = _clv(codes.decoded(clv_inputs(bought, moment).to_pyarrow()), config.options.clv_horizon_days, counts)
    items = con.read_parquet(snapshot_path(data_dir, workspace_id, "order_items"))
    products = con.read_parquet(snapshot_path(data_dir, workspace_id, "products"))
    with log.step("preferences") as counts:
        liked = preferences(bought, items, products, moment, job.timezone, config.options.price_bands_fen)
        coded["preferences"] = liked.to_pyarrow()
        out.liked = codes.decoded(coded["preferences"])
        counts["people"] = out.liked.num_rows
    done = codes.source.events
    assert done is not None
    with log.step("leads") as counts:
        by_traits = trait_points(config.leads, RuleInputs(people=everyone, traits=codes.source.traits), at)
        coded["leads"] = lead_scores(done, moment, config.leads, by_traits).to_pyarrow()
        out.scored = codes.decoded(coded["leads"])
        counts["people"] = out.scored.num_rows
    with log.step("lifecycle") as counts:
        coded["lifecycle"] = staged(everyone, totals, moment, config.lifecycle, activity(done)).to_pyarrow()
        out.stages = codes.decoded(coded["lifecycle"], keep_code=True)
        listed = con.read_parquet(snapshot_path(data_dir, workspace_id, "identities"))  # with their ids
        out.speaker = codes.decoded(speaking_identities(listed.mutate(profile_id=listed.profile_code)).to_pyarrow())
        counts["people"] = out.stages.num_rows
    # The rules read the results where they are, in Arrow: copying them into the engine costs
    # more than every rule's scans of them (at 10M people, 1.3 s against none).
    tables = {name: ibis.memtable(table) for name, table in coded.items()}
    codes.tables.update(rfm=tables["rfm"], lifecycle=tables["lifecycle"], tallies=totals)
    codes.draw(set().union(*(seeds_used(n) for n in rules)))
    inputs = codes.inputs(set().union(*(inputs_needed(n) for n in rules)))
    if held is not None:
        holding = codes.encode(held.select(["profile_id", "tag_id", "value"])).to_pyarrow()
        if job.tag_specs:
            with log.step("tags") as counts:
                tagged = evaluate_tags(con, job.tag_specs, inputs, tables, at, holding, codes.everyone)
                out.tagged = {tag: codes.decoded(members) for tag, members in tagged.items()}
                counts["tags"] = len(out.tagged)
                counts["holders"] = sum(t.num_rows for t in out.tagged.values())
        else:
            con.create_table(TAGS_TABLE, holding, temp=True, overwrite=True)
        codes.tables["tags"] = con.table(TAGS_TABLE)
    out.codes = codes
    return out


def _evaluate_segments(con: Any, job: _Job, inputs: RuleInputs, members: pa.Table) -> dict[str, SegmentChanges]:
    by_id = {name: getattr(inputs, name) for name in ("rfm", "lifecycle", "tags") if getattr(inputs, name) is not None}
    asked = Asked.of(parse_rule(s.rule) for s in job.segment_specs)
    by_code = kept_by_code(job.data_dir, job.workspace_id)  # the kept results, if by today's codes
    codes = coded_snapshot_inputs(con, job.data_dir, job.workspace_id, by_id, asked, READ_IN_PLACE, by_code=by_code)
    return segment_changes(job.segment_specs, codes, Moment(job.moment, job.timezone), members)


def segment_changes(
    specs: list[SegmentSpec], codes: Coded, moment: Moment, members: pa.Table
) -> dict[str, SegmentChanges]:
    """Every dynamic segment's changes from ``members`` (profile_id, segment_id: who is in each
    now), over inputs coded once for all of them."""
    nodes = [parse_rule(s.rule) for s in specs]
    seeds = set().union(*(seeds_used(n) for n in nodes))
    codes.draw(seeds)
    drawn = {seed: codes.buckets_by_code(seed) for seed in seeds}  # the bitmaps read buckets as arrays
    needed = codes.inputs(set().union(*(inputs_needed(n) for n in nodes)) - {"buckets"})
    held, gone = _coded_members(codes, members)
    return evaluate_segments(specs, needed, moment, codes.everyone, held, codes.ids_of, gone, drawn)


def _coded_members(codes: Coded, members: pa.Table) -> tuple[pa.Table, pa.Table]:
    """The memberships of people who are there, by code (profile_id, segment_id), and those of
    people who are not any more (merged away, erased), by id: one join of the members to the
    people (not a set of everyone's ids, which at 10M people takes 1.5 s to build)."""
    listed = ibis.memtable(members.select(["profile_id", "segment_id"]))
    people = codes.people
    joined = listed.left_join(people, listed.profile_id == people.key)
    found = joined.select(code=people.profile_id, id=listed.profile_id, segment_id=listed.segment_id).to_pyarrow()
    there = pc.is_valid(found.column("code"))
    held = found.filter(there).select(["code", "segment_id"]).rename_columns(["profile_id", "segment_id"])
    gone = found.filter(pc.invert(there)).select(["id", "segment_id"]).rename_columns(["profile_id", "segment_id"])
    return held, gone


def _write_full(transaction: Transaction, job: _Job, out: _Computed, counts: dict[str, Any], started: float) -> None:
    """Every result into the store in one transaction; then the copies of what it holds."""
    assert out.rfm is not None and out.stages is not None and out.liked is not None and out.scored is not None
    assert out.speaker is not None
    run_id, last_id = job.run_id, job.last_id
    results_dir = snapshot_dir(job.data_dir, job.workspace_id) / "results"
    rfm_path, lifecycle_path = results_dir / RFM_RESULTS, results_dir / LIFECYCLE_RESULTS
    clv_path, liked_path = results_dir / "clv.parquet", results_dir / "preferences.parquet"
    leads_path = results_dir / "leads.parquet"
    speakers = dict(zip(*(out.speaker.column(c).to_pylist() for c in ("profile_id", "identity_id")), strict=True))
    with transaction() as s:
        written = write_rfm(s, out.rfm, held_results(rfm_path, last_id), run_id)
        changes = write_lifecycle(s, out.stages, held_results(lifecycle_path, last_id), job.moment, run_id)
        valued = write_clv(s, out.clv, held_results(clv_path, last_id), run_id) if out.clv is not None else None
        tastes = write_preferences(s, out.liked, held_results(liked_path, last_id), run_id)
        graded = write_leads(s, out.scored, held_results(leads_path, last_id), run_id)
        announced = announce_stage_changes(s, changes.moved, out.speaker, job.config.lifecycle)
        tags_started = time.perf_counter()
        tags_written = write_tag_results(s, out.tagged, speakers, run_id) if out.tagged else None
        tags_ms = int((time.perf_counter() - tags_started) * 1000)
        segments_started = time.perf_counter()
        segments_written = write_segment_results(s, out.segments, speakers, run_id) if out.segments else None
        segments_ms = int((time.perf_counter() - segments_started) * 1000)
        _finish(s, run_id, started)
    numbering = out.codes.numbering if out.codes is not None else None
    keep_results(rfm_path, out.rfm.select([*RFM_COLUMNS, CODE_COLUMN]), run_id, numbering)
    keep_results(lifecycle_path, changes.rows, run_id, numbering)
    keep_results(liked_path, out.liked.select(list(PREFERENCE_COLUMNS)), run_id)
    keep_results(leads_path, out.scored.select(list(LEAD_COLUMNS)), run_id)
    counts.update(preferences_replaced=tastes.replaced, leads_replaced=graded.replaced)
    if out.clv is not None:
        keep_results(clv_path, out.clv, run_id)
        counts.update(clv_replaced=valued.replaced if valued is not None else 0)
    counts.update(replaced=written.replaced, deleted=written.deleted, full=written.full)
    counts.update(stage_changes=changes.moved.num_rows, stage_events=announced)
    if tags_written is not None:
        counts.update(tags_added=tags_written.added, tags_removed=tags_written.removed)
        counts.update(tags_revalued=tags_written.revalued, tags_ms=tags_ms)
    if segments_written is not None:
        counts.update(segments_entered=segments_written.entered, segments_exited=segments_written.exited)
        counts.update(segments_ms=segments_ms)


def _write_segments_only(
    transaction: Transaction, job: _Job, out: _Computed, counts: dict[str, Any], started: float
) -> None:
    with transaction() as s:
        written = write_segment_results(s, out.segments, None, job.run_id) if out.segments else None
        _finish(s, job.run_id, started)
    if written is not None:
        counts.update(segments_entered=written.entered, segments_exited=written.exited)


def _finish(scoped: Session, run_id: str, started: float) -> None:
    row = scoped.get(AnalyticsRun, run_id)
    assert row is not None
    row.status, row.finished_at = "done", utcnow()
    row.duration_ms = int((time.perf_counter() - started) * 1000)


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
