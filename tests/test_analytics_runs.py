"""Batch runs end to end: queued, run by a worker, logged step by step, results written back —
only what changed on the next run; a failed run keeps the previous results and says why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import ibis
import pytest
from sqlalchemy import select

from siyu.analytics import facade
from siyu.analytics.rule_inputs import coded_snapshot_inputs, kept_by_code, kept_results
from siyu.analytics.snapshots import refresh_snapshots, snapshot_path
from siyu.analytics.tables import ProfileClv, ProfileRfm
from siyu.commerce.contracts import OrderStatus
from siyu.commerce.orders import OrderIn
from siyu.core.clock import utcnow
from siyu.core.errors import ConflictError, ValidationFailedError
from siyu.identity.contracts import IdentifierKind
from siyu.ingest.orders import OrderSync, sync_orders
from siyu.ingest.tables import Event
from siyu.jobs.worker import Worker
from siyu.storage.scoping import Scope
from siyu.storage.session import Database
from tests.conftest import make_actor
from tests.test_analytics_snapshots import age_everything, merge

THRESHOLDS = {"scoring": "thresholds"}


def buy(db: Database, workspace: str, buyer: str, no: str, days_ago: int, fen: int) -> None:
    at = utcnow() - timedelta(days=days_ago)
    order = OrderIn(
        platform="jd",
        order_no=no,
        status=OrderStatus.PAID,
        total_fen=fen,
        paid_fen=fen,
        ordered_at=at,
        buyer_kind="jd_pin",
        buyer_id=buyer,
        buyer_identity_id=None,
        status_at=at,
    )
    with db.transaction(Scope.workspace(workspace)) as s:
        sync_orders(s, [OrderSync(order, IdentifierKind.JD_PIN, buyer)], utcnow())


def run(db: Database, workspace: str, data_dir: Path) -> dict[str, Any]:
    with db.transaction(Scope.workspace(workspace)) as s:
        queued = facade.request_run(s, None, data_dir)
    assert queued.status == "queued"
    Worker(db, lease_seconds=60).run_until_idle()
    with db.read(Scope.workspace(workspace)) as s:
        done = facade.get_run(s, queued.id)
    return {"status": done.status, "error": done.error, "steps": {step["name"]: step for step in done.steps}}


def groups(db: Database, workspace: str) -> dict[str, tuple[int, int, int, str]]:
    with db.read(Scope.workspace(workspace)) as s:
        rows = s.scalars(select(ProfileRfm)).all()
        return {r.profile_id: (r.frequency, r.monetary_fen, r.r_score, r.rfm_group) for r in rows}


def stage_events(db: Database, workspace: str) -> list[tuple[str | None, str]]:
    with db.read(Scope.workspace(workspace)) as s:
        rows = s.scalars(
            select(Event).where(Event.event == "Lifecycle Stage Changed").order_by(Event.timestamp, Event.message_id)
        ).all()
        assert all(r.identity_id for r in rows)
        return sorted([(r.properties["from"], r.properties["to"]) for r in rows], key=lambda p: (p[0] is not None, p))


@pytest.fixture
def shop(db: Database, tmp_path: Path) -> tuple[str, Path]:
    a = make_actor(db, "acme")
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        facade.save_config(
            s,
            rfm=THRESHOLDS,
            lifecycle={},
            options={},
            leads={},
            schedule=None,
            timezone="Asia/Shanghai",
            data_dir=tmp_path,
            actor_id=None,
        )
    buy(db, a.workspace_id, "big", "1", 3, 600_000)
    buy(db, a.workspace_id, "big", "2", 20, 600_000)
    buy(db, a.workspace_id, "small", "3", 200, 2_000)
    return a.workspace_id, tmp_path


def test_a_run_scores_everyone_and_logs_its_steps(db: Database, shop: tuple[str, Path]) -> None:
    ws, data_dir = shop
    outcome = run(db, ws, data_dir)
    assert outcome["status"] == "done" and outcome["error"] is None
    steps = outcome["steps"]
    assert list(steps) == ["transfer", "rfm", "clv", "preferences", "leads", "lifecycle", "write"]
    assert steps["transfer"]["orders_moved"] == 3 and steps["rfm"]["people"] == 2
    assert steps["write"]["replaced"] == 2 and steps["write"]["full"] is True
    assert sorted(groups(db, ws).values()) == [(1, 2_000, 2, "general_retain"), (2, 1_200_000, 5, "important_develop")]
    with db.read(Scope.workspace(ws)) as s:
        matrix = facade.rfm_matrix(s)
    assert matrix.people == 2 and matrix.monetary_fen == 1_202_000
    by_group = {g.group: g for g in matrix.groups}
    assert by_group["important_develop"].name == "重要发展" and by_group["important_develop"].people == 1
    assert len(matrix.groups) == 8 and matrix.as_of is not None
    assert {(c.r_score, c.f_score, c.people) for c in matrix.cells} == {(2, 1, 1), (5, 2, 1)}
    # Lifecycle: twice recently is active (活跃/复购), once 200 days ago is dormant (沉睡).
    assert steps["lifecycle"]["people"] == 2 and steps["write"]["stage_changes"] == 2
    assert stage_events(db, ws) == [(None, "active"), (None, "dormant")]
    with db.read(Scope.workspace(ws)) as s:
        summary = facade.lifecycle_summary(s)
    assert [(st.code, st.name, st.people) for st in summary.stages if st.people] == [
        ("dormant", "沉睡", 1),
        ("active", "活跃/复购", 1),
    ]
    assert {(m.from_stage, m.to_stage, m.people) for m in summary.moves} == {(None, "dormant", 1), (None, "active", 1)}


def test_the_next_run_moves_and_writes_only_what_changed(db: Database, shop: tuple[str, Path]) -> None:
    ws, data_dir = shop
    run(db, ws, data_dir)
    age_everything(db, ws, data_dir)
    buy(db, ws, "small", "4", 1, 3_000)  # the small buyer comes back
    second = run(db, ws, data_dir)["steps"]
    assert second["transfer"]["orders_moved"] == 1  # only the new order crossed over
    assert second["write"] == second["write"] | {"replaced": 1, "deleted": 0, "full": False}
    assert sorted(groups(db, ws).values()) == [(2, 5_000, 5, "general_develop"), (2, 1_200_000, 5, "important_develop")]
    # The small buyer moved from dormant to active: one event, the others unchanged and silent.
    assert second["write"]["stage_changes"] == 1
    assert stage_events(db, ws) == [(None, "active"), (None, "dormant"), ("dormant", "active")]
    third = run(db, ws, data_dir)["steps"]
    assert third["write"]["stage_changes"] == 0 and len(stage_events(db, ws)) == 3


def test_a_failed_run_keeps_the_last_results_and_says_why(
    db: Database, shop: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, data_dir = shop
    run(db, ws, data_dir)
    before = groups(db, ws)
    buy(db, ws, "new", "5", 1, 9_000)

    def broken(*_: object) -> None:
        raise RuntimeError("the engine ran out of memory")

    monkeypatch.setattr("siyu.analytics.runs.scored_rfm", broken)
    failed = run(db, ws, data_dir)
    assert failed["status"] == "failed"
    assert failed["error"] == "rfm: the engine ran out of memory"
    assert list(failed["steps"]) == ["transfer"]
    assert groups(db, ws) == before


def test_one_run_at_a_time(db: Database, shop: tuple[str, Path]) -> None:
    ws, data_dir = shop
    with db.transaction(Scope.workspace(ws)) as s:
        facade.request_run(s, None, data_dir)
    with db.transaction(Scope.workspace(ws)) as s, pytest.raises(ConflictError):
        facade.request_run(s, None, data_dir)


def test_a_bad_rfm_model_is_refused_and_the_old_one_kept(db: Database, shop: tuple[str, Path]) -> None:
    ws, data_dir = shop
    bad = {"scoring": "thresholds", "thresholds": {"frequency": [5, 3, 2, 1]}}
    with db.transaction(Scope.workspace(ws)) as s, pytest.raises(ValidationFailedError) as caught:
        facade.save_config(
            s,
            rfm=bad,
            lifecycle={},
            options={},
            leads={},
            schedule=None,
            timezone="Asia/Shanghai",
            data_dir=data_dir,
            actor_id=None,
        )
    assert caught.value.details == {"path": "thresholds.frequency"}
    with db.read(Scope.workspace(ws)) as s:
        assert facade.get_config(s).rfm.scoring == "thresholds"


def test_the_schedule_queues_a_run_unless_one_is_on_its_way(db: Database, shop: tuple[str, Path]) -> None:
    ws, data_dir = shop
    with db.transaction(Scope.workspace(ws)) as s:
        facade.save_config(
            s,
            rfm=THRESHOLDS,
            lifecycle={},
            options={},
            leads={},
            schedule="0 4 * * *",
            timezone="Asia/Shanghai",
            data_dir=data_dir,
            actor_id=None,
        )
    from siyu.jobs.contracts import JobSpec
    from siyu.jobs.queue import enqueue

    with db.transaction(Scope.unscoped_system()) as s:
        payload = {"data_dir": str(data_dir)}
        enqueue(s, JobSpec(task="analytics.scheduled_run", payload=payload, workspace_id=ws))
        enqueue(s, JobSpec(task="analytics.scheduled_run", payload=payload, workspace_id=ws, idempotency_key="b"))
    Worker(db, lease_seconds=60).run_until_idle()
    with db.read(Scope.workspace(ws)) as s:
        runs = facade.list_runs(s)
    assert [(r.trigger, r.status) for r in runs] == [("schedule", "done")]
    assert datetime.now(UTC) - runs[0].requested_at < timedelta(minutes=5)


def test_clv_is_fitted_and_kept_for_every_buyer(db: Database, shop: tuple[str, Path]) -> None:
    ws, data_dir = shop
    with db.transaction(Scope.workspace(ws)) as s:
        facade.save_config(
            s,
            rfm=THRESHOLDS,
            lifecycle={},
            options={"clv_horizon_days": 30},
            leads={},
            schedule=None,
            timezone="Asia/Shanghai",
            data_dir=data_dir,
            actor_id=None,
        )
    for n in range(40):  # buyers who came back 0 to 4 times, some long ago
        for k in range(n % 5 + 1):
            buy(db, ws, f"buyer{n}", f"c{n}-{k}", 3 + (n * 7 + k * 53) % 600, 5_000 + 1_000 * (n % 7))
    steps = run(db, ws, data_dir)["steps"]
    assert steps["clv"]["people"] == 42 and steps["clv"]["horizon_days"] == 30
    assert {"r", "alpha", "a", "b", "p", "q", "v"} <= set(steps["clv"])
    with db.read(Scope.workspace(ws)) as s:
        rows = s.scalars(select(ProfileClv)).all()
        assert len(rows) == 42
        assert all(0 < r.p_alive <= 1 and r.expected_purchases >= 0 and r.expected_value_fen >= 0 for r in rows)
        loyal = facade.profile_analytics(s, next(r.profile_id for r in rows if r.expected_purchases > 0))
        total_value = sum(r.expected_value_fen for r in rows)
    assert loyal.clv is not None and loyal.clv.horizon_days == 30
    with db.read(Scope.workspace(ws)) as s:
        summary = facade.clv_summary(s)
    assert summary.people == 42 == sum(b.people for b in summary.bands)
    assert summary.expected_value_fen == total_value > 0
    # Nothing changed: the next run rewrites no CLV row.
    again = run(db, ws, data_dir)["steps"]
    assert again["write"]["clv_replaced"] == 0


def test_too_few_buyers_for_clv_is_said_not_failed(db: Database, shop: tuple[str, Path]) -> None:
    ws, data_dir = shop
    outcome = run(db, ws, data_dir)
    assert outcome["status"] == "done"
    assert "at least 10" in outcome["steps"]["clv"]["skipped"]


def test_the_kept_results_carry_the_codes_a_segment_run_reads_them_by(db: Database, shop: tuple[str, Path]) -> None:
    ws, data_dir = shop
    run(db, ws, data_dir)

    def inputs(by_code: bool) -> dict[str, list[tuple[object, ...]]]:
        """The RFM and stage inputs of a segment run, people as ids: coded from the kept copies by
        their codes, or by their ids."""
        con = ibis.duckdb.connect()
        rfm, stages = kept_results(con, data_dir, ws)
        kept = kept_by_code(data_dir, ws) if by_code else {}
        codes = coded_snapshot_inputs(con, data_dir, ws, {"rfm": rfm, "lifecycle": stages}, by_code=kept)
        given = codes.inputs(["rfm", "lifecycle"])
        assert given.rfm is not None and given.lifecycle is not None
        out = {
            name: sorted(
                tuple(r.values()) for r in codes.decoded(table.select("profile_id", column).to_pyarrow()).to_pylist()
            )
            for name, table, column in (("rfm", given.rfm, "rfm_group"), ("lifecycle", given.lifecycle, "stage"))
        }
        con.disconnect()
        return out

    assert set(kept_by_code(data_dir, ws)) == {"rfm", "lifecycle"}
    assert inputs(True) == inputs(False) and len(inputs(True)["rfm"]) == 2
    # The two buyers become one person: the one merged away is in neither input.
    merge(db, ws, "big", "small", kind=IdentifierKind.JD_PIN, scope="jd")
    with db.transaction(Scope.workspace(ws)) as s:
        refresh_snapshots(s, data_dir)
    assert inputs(True) == inputs(False) and len(inputs(True)["rfm"]) == 1
    # People numbered afresh: the copies' codes are of another numbering, and go unused.
    snapshot_path(data_dir, ws, "identities").unlink()
    with db.transaction(Scope.workspace(ws)) as s:
        refresh_snapshots(s, data_dir)
    assert kept_by_code(data_dir, ws) == {}
