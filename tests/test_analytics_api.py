"""The batch engine through the API: settings refused with where the problem is, roles, runs
queued and logged, and the RFM matrix the run leaves."""

from __future__ import annotations

from fastapi.testclient import TestClient

from siyu.accounts.contracts import Role
from siyu.jobs.worker import Worker
from siyu.storage.session import Database
from tests.conftest import login, make_actor
from tests.test_analytics_runs import buy


def test_settings_defaults_changes_and_refusals(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    got = client.get("/api/v1/analytics/settings", headers=a.bearer).json()
    assert got["rfm"]["scoring"] == "quintile" and got["rfm"]["window_days"] == 365
    assert got["rfm"]["thresholds"]["recency"] == [30, 90, 180, 365]
    assert got["schedule"] == "30 3 * * *"

    assert [st["code"] for st in got["lifecycle"]["stages"]] == [
        "prospect",
        "lost",
        "dormant",
        "loyal",
        "active",
        "new",
    ]
    assert got["options"] == {"clv_horizon_days": 90, "price_bands_fen": [5000, 15000, 30000, 60000]}
    body = {
        "rfm": {**got["rfm"], "scoring": "thresholds", "window_days": 180},
        "lifecycle": got["lifecycle"],
        "options": {"clv_horizon_days": 30, "price_bands_fen": [10000, 50000]},
        "leads": got["leads"],
        "schedule": "0 2 * * 1",
    }
    saved = client.put("/api/v1/analytics/settings", json=body, headers=a.bearer)
    assert saved.status_code == 200, saved.text
    assert saved.json()["rfm"]["window_days"] == 180 and saved.json()["schedule"] == "0 2 * * 1"

    bad = {**body, "rfm": {**body["rfm"], "thresholds": {"monetary": [100, 50, 200, 300]}}, "schedule": None}
    refused = client.put("/api/v1/analytics/settings", json=bad, headers=a.bearer)
    assert refused.status_code == 422
    assert refused.json()["details"] == {"path": "thresholds.monetary"}
    stages = got["lifecycle"]["stages"]
    shadowing = {**body, "lifecycle": {"window_days": 365, "stages": [{**stages[0], "when": []}, *stages[1:]]}}
    refused = client.put("/api/v1/analytics/settings", json=shadowing, headers=a.bearer)
    assert refused.status_code == 422 and refused.json()["details"] == {"path": "stages[0].when"}
    falling = {**body, "options": {"clv_horizon_days": 30, "price_bands_fen": [50000, 10000]}}
    refused = client.put("/api/v1/analytics/settings", json=falling, headers=a.bearer)
    assert refused.status_code == 422 and refused.json()["details"] == {"path": "price_bands_fen"}
    no_points = {**body, "leads": {**got["leads"], "rules": [{"event": "Demo Requested", "points": 0}]}}
    refused = client.put("/api/v1/analytics/settings", json=no_points, headers=a.bearer)
    assert refused.status_code == 422 and refused.json()["details"] == {"path": "rules[0].points"}
    bad_cron = client.put("/api/v1/analytics/settings", json={**body, "schedule": "every night"}, headers=a.bearer)
    assert bad_cron.status_code == 422
    assert client.get("/api/v1/analytics/settings", headers=a.bearer).json() == saved.json()


def test_an_analyst_reads_but_does_not_change_or_run(client: TestClient, db: Database) -> None:
    make_actor(db, "acme")
    analyst = make_actor(db, "acme", Role.ANALYST)
    csrf = login(client, analyst.email)
    assert client.get("/api/v1/analytics/rfm").status_code == 200
    assert client.post("/api/v1/analytics/runs", headers={"X-CSRF-Token": csrf}).status_code == 403
    settings = client.get("/api/v1/analytics/settings").json()
    put = client.put("/api/v1/analytics/settings", json=settings, headers={"X-CSRF-Token": csrf})
    assert put.status_code == 403


def test_a_run_through_the_api(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    buy(db, a.workspace_id, "big", "1", 3, 600_000)
    buy(db, a.workspace_id, "small", "2", 200, 2_000)
    settings = client.get("/api/v1/analytics/settings", headers=a.bearer).json()
    settings["leads"]["rules"] = [{"event": "Order Paid", "points": 40}]  # a paid order is worth 40 points
    assert client.put("/api/v1/analytics/settings", json=settings, headers=a.bearer).status_code == 200
    queued = client.post("/api/v1/analytics/runs", headers=a.bearer)
    assert queued.status_code == 202 and queued.json()["status"] == "queued"
    assert client.post("/api/v1/analytics/runs", headers=a.bearer).status_code == 409
    assert Worker(db, lease_seconds=60).run_until_idle() == 1
    run = client.get(f"/api/v1/analytics/runs/{queued.json()['id']}", headers=a.bearer).json()
    assert run["status"] == "done"
    assert [s["name"] for s in run["steps"]] == ["transfer", "rfm", "clv", "preferences", "leads", "lifecycle", "write"]
    matrix = client.get("/api/v1/analytics/rfm", headers=a.bearer).json()
    assert matrix["people"] == 2 and matrix["monetary_fen"] == 602_000
    assert sum(g["people"] for g in matrix["groups"]) == 2 and len(matrix["groups"]) == 8
    assert sum(c["people"] for c in matrix["cells"]) == 2
    leads = client.get("/api/v1/analytics/leads", headers=a.bearer).json()
    # The order events happened when the orders were paid: 3 days ago (40 × 0.5^(3/30) ≈ 37) → C;
    # 200 days ago (≈ 0.4) → D.
    assert leads["people"] == 2 and {g["grade"]: g["people"] for g in leads["grades"]} == {
        "A": 0,
        "B": 0,
        "C": 1,
        "D": 1,
    }
    value = client.get("/api/v1/analytics/clv", headers=a.bearer).json()
    assert value["horizon_days"] == 90 and value["people"] == 0  # two buyers are too few to fit CLV
    assert [b["label"] for b in value["bands"]] == ["<25%", "25-50%", "50-75%", "75%+"]
    lifecycle = client.get("/api/v1/analytics/lifecycle", headers=a.bearer).json()
    assert lifecycle["people"] == 2 and {m["to_stage"] for m in lifecycle["moves"]} == {"new", "dormant"}
    events = client.get("/api/v1/events", headers=a.bearer).json()["items"]
    changes = [e for e in events if e["event"] == "Lifecycle Stage Changed"]
    assert sorted(e["properties"]["to_name"] for e in changes) == ["新客", "沉睡"]
    assert all(e["profile_id"] for e in changes)  # on the person's profile
    person = client.get(f"/api/v1/profiles/{changes[0]['profile_id']}", headers=a.bearer).json()["analytics"]
    assert person["stage_name"] == changes[0]["properties"]["to_name"] and person["previous_stage_name"] is None
    assert person["rfm"]["rfm_group_name"] and person["rfm"]["frequency"] >= 0
    assert person["lead_grade"] in ("C", "D") and person["lead_score"] > 0
    assert person["preferences"]["top_platform"] == "jd"
    assert person["preferences"]["top_category"] is None  # these orders came without their lines
    audit = client.get("/api/v1/audit", headers=a.bearer).json()["items"]
    assert "analytics.run" in [e["action"] for e in audit]


def test_lead_trait_conditions_must_name_traits_people_have(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    got = client.get("/api/v1/analytics/settings", headers=a.bearer).json()
    retail = {"type": "trait", "key": "industry", "value_type": "string", "op": "eq", "value": "零售"}
    body = {**got, "leads": {**got["leads"], "rules": [*got["leads"]["rules"], {"when": retail, "points": 15}]}}
    refused = client.put("/api/v1/analytics/settings", json=body, headers=a.bearer)
    assert refused.status_code == 422 and refused.json()["details"] == {"path": "rules[4].when"}
    assert "industry" in refused.json()["message"]
    identify = client.post(
        "/v1/identify", json={"userId": "u1", "traits": {"industry": "零售"}}, auth=(a.ingest_key, "")
    )
    assert identify.status_code == 200
    saved = client.put("/api/v1/analytics/settings", json=body, headers=a.bearer)
    assert saved.status_code == 200, saved.text
    assert saved.json()["leads"]["rules"][4]["when"] == retail
