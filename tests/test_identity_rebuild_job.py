"""The full rebuild of a workspace's identity graph: it agrees with incremental resolution, and
where the stored people drifted it repairs them — through the job, the API and its record."""

from __future__ import annotations

import random

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from siyu.identity.partition import resolve
from siyu.identity.resolver import stored_people
from siyu.identity.tables import Identity, IdentityMerge
from siyu.identity.verify import rebuild_workspace
from siyu.jobs.worker import Worker
from siyu.storage.scoping import Scope
from siyu.storage.session import Database
from tests.conftest import login, make_actor
from tests.test_identity_partition import N1, N2, P1, POOL, U1, U2, obs
from tests.test_identity_resolver import _ingest


def test_a_rebuild_of_incrementally_resolved_people_changes_nothing(db: Database) -> None:
    a = make_actor(db, "acme")
    rnd = random.Random(7)
    observations = [frozenset(rnd.sample(POOL, rnd.randint(1, 3))) for _ in range(40)]
    people = _ingest(db, a.workspace_id, observations)
    assert people == set(resolve(observations).people)
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        outcome = rebuild_workspace(s)
        assert outcome.repaired == 0 and outcome.changes == [] and outcome.new_profile_ids == []
        assert outcome.people == len(people)
        assert stored_people(s) == people


def test_drifted_people_are_repaired_to_the_rebuilt_partition_and_audited(db: Database) -> None:
    a = make_actor(db, "acme")
    observations = [obs(U1, P1), obs(P1, N1), obs(N2)]
    _ingest(db, a.workspace_id, observations)
    scope = Scope.workspace(a.workspace_id)
    with db.transaction(scope) as s:
        # Drift: N2's identity is pointed at U1's profile, written around the resolver.
        person = s.scalar(select(Identity.profile_id).where(Identity.value == U1.value))
        s.execute(update(Identity).where(Identity.value == N2.value).values(profile_id=person))
    with db.transaction(scope) as s:
        outcome = rebuild_workspace(s)
        assert outcome.repaired == 4
        assert stored_people(s) == set(resolve(observations).people)
        assert any(m.rule.startswith("rebuild:") for m in s.scalars(select(IdentityMerge)))
    with db.transaction(scope) as s:
        assert rebuild_workspace(s).repaired == 0


def test_rebuild_through_the_api_runs_as_a_job_and_reports(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    _ingest(db, a.workspace_id, [obs(U1, P1), obs(P1, N1), obs(N2)])
    queued = client.post("/api/v1/identity/rebuilds", headers=a.bearer)
    assert queued.status_code == 202 and queued.json()["status"] == "queued"
    again = client.post("/api/v1/identity/rebuilds", headers=a.bearer)
    assert again.status_code == 409
    assert Worker(db, lease_seconds=30).run_until_idle() == 1
    [run] = client.get("/api/v1/identity/rebuilds", headers=a.bearer).json()
    assert run["status"] == "done" and run["error"] is None
    assert (run["identifiers"], run["links"], run["people"], run["repaired"]) == (4, 2, 2, 0)
    with db.read(Scope.workspace(a.workspace_id)) as s:
        assert len(stored_people(s)) == 2
    audit = client.get("/api/v1/audit", headers=a.bearer).json()["items"]
    assert audit[0]["action"] == "identity.rebuild"


def test_rebuild_needs_an_admin(client: TestClient, db: Database) -> None:
    from siyu.accounts.contracts import Role

    make_actor(db, "acme")
    analyst = make_actor(db, "acme", Role.ANALYST)
    csrf = login(client, analyst.email)
    assert client.post("/api/v1/identity/rebuilds", headers={"X-CSRF-Token": csrf}).status_code == 403
    assert client.get("/api/v1/identity/rebuilds").status_code == 200


def test_the_rebuild_as_ibis_expressions_finds_the_same_people(db: Database) -> None:
    import ibis

    from siyu.identity.rebuild_ibis import rebuild_on

    a = make_actor(db, "acme")
    rnd = random.Random(11)
    observations = [frozenset(rnd.sample(POOL, rnd.randint(1, 3))) for _ in range(30)]
    people = _ingest(db, a.workspace_id, observations)
    con = ibis.duckdb.connect()
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        outcome = rebuild_workspace(s, engine=lambda r, rules, must, cannot: rebuild_on(con, r, rules, must, cannot))
        assert outcome.repaired == 0 and outcome.people == len(people)


def test_operators_change_the_rules_and_the_stored_people_follow(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    # One phone seen with two unionids: under the default rules (shared above 3) the phone joins
    # one of them and the other unionid stays apart.
    _ingest(db, a.workspace_id, [obs(U1, P1), obs(U2, P1)])
    rules = client.get("/api/v1/identity/rules", headers=a.bearer).json()
    assert rules["customised"] is False
    phone = next(r for r in rules["rules"] if r["kind"] == "phone")
    assert phone == {"kind": "phone", "merges": True, "priority": 80, "max_per_profile": None, "shared_limit": 3}
    phone["shared_limit"] = 1  # a phone seen with two unionids is a shared phone here
    saved = client.put("/api/v1/identity/rules", json={"rules": rules["rules"]}, headers=a.bearer)
    assert saved.status_code == 200 and saved.json()["customised"] is True
    assert saved.json()["rebuild"]["status"] == "queued"
    assert Worker(db, lease_seconds=30).run_until_idle() == 1
    [run] = client.get("/api/v1/identity/rebuilds", headers=a.bearer).json()
    assert run["status"] == "done" and run["shared"] == 1 and run["repaired"] > 0
    with db.read(Scope.workspace(a.workspace_id)) as s:
        assert stored_people(s) == {frozenset({U1}), frozenset({U2})}
        assert s.scalar(select(Identity.shared).where(Identity.value == P1.value)) is True
    assert client.get("/api/v1/identity/rules", headers=a.bearer).json()["rules"] == rules["rules"]


def test_rules_that_cannot_be_understood_are_refused(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    rules = client.get("/api/v1/identity/rules", headers=a.bearer).json()["rules"]
    masked = next(r for r in rules if r["kind"] == "masked_phone")
    masked["merges"] = True
    refused = client.put("/api/v1/identity/rules", json={"rules": rules}, headers=a.bearer)
    assert refused.status_code == 422 and "masked phones" in refused.json()["message"]
    missing = client.put("/api/v1/identity/rules", json={"rules": rules[:3]}, headers=a.bearer)
    assert missing.status_code == 422 and "missing" in missing.json()["message"]
    bad = [dict(r, shared_limit=0) if r["kind"] == "email" else r for r in rules]
    assert client.put("/api/v1/identity/rules", json={"rules": bad}, headers=a.bearer).status_code == 422
    assert client.get("/api/v1/identity/rules", headers=a.bearer).json()["customised"] is False
