"""The consent ledger: grants need proof, the latest record wins, history is kept, and the
profile 360 shows the current state (without proof for masked roles)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from siyu.accounts.contracts import Role
from siyu.profiles.consent import Channel, Purpose, has_consent
from siyu.storage.scoping import Scope
from siyu.storage.session import Database
from tests.conftest import login, make_actor

PHONE = {"kind": "phone", "value": "138 1234 5678"}
PROOF = {"text_version": "sms-marketing-v3", "form": "lp-double11", "ip": "203.0.113.7"}


def consent(status: str, at: str, **over: Any) -> dict[str, Any]:
    body = {
        "address": PHONE,
        "channel": "sms",
        "purpose": "marketing",
        "status": status,
        "at": at,
        "source": "landing_page",
        "proof": PROOF if status == "granted" else {"reply": "TD"},
    }
    body.update(over)
    return body


def test_grant_withdraw_and_late_records(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    r = client.post(
        "/api/v1/consents", json={"records": [consent("granted", "2026-11-01T10:00:00+08:00")]}, headers=a.bearer
    )
    assert r.status_code == 201, r.text
    [identity_id] = r.json()["identity_ids"]
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        assert has_consent(s, identity_id, Channel.SMS, Purpose.MARKETING)
        assert not has_consent(s, identity_id, Channel.SMS, Purpose.AUDIENCE_UPLOAD)  # separate consent
    client.post(
        "/api/v1/consents",
        json={"records": [consent("withdrawn", "2026-11-05T10:00:00+08:00", source="sms_reply")]},
        headers=a.bearer,
    )
    # An older grant synced late does not undo the withdrawal.
    client.post(
        "/api/v1/consents", json={"records": [consent("granted", "2026-11-03T10:00:00+08:00")]}, headers=a.bearer
    )
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        assert not has_consent(s, identity_id, Channel.SMS, Purpose.MARKETING)
    [profile] = client.get("/api/v1/profiles", params={"q": "13812345678"}, headers=a.bearer).json()["items"]
    detail = client.get(f"/api/v1/profiles/{profile['id']}", headers=a.bearer).json()
    [state] = detail["consents"]
    assert (state["channel"], state["purpose"], state["status"], state["source"]) == (
        "sms",
        "marketing",
        "withdrawn",
        "sms_reply",
    )
    viewer = make_actor(db, "acme", role=Role.VIEWER)
    login(client, viewer.email)
    assert client.get(f"/api/v1/profiles/{profile['id']}").json()["consents"][0]["proof"] == {}


def test_a_grant_without_proof_or_with_a_bad_address_is_refused(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    no_proof = client.post(
        "/api/v1/consents",
        json={"records": [consent("granted", "2026-11-01T10:00:00+08:00", proof={})]},
        headers=a.bearer,
    )
    assert no_proof.status_code == 422 and "proof" in no_proof.json()["message"]
    bad = client.post(
        "/api/v1/consents",
        json={
            "records": [
                consent("granted", "2026-11-01T10:00:00+08:00"),
                consent("granted", "2026-11-01T10:00:00+08:00", address={"kind": "phone", "value": "12345"}),
            ]
        },
        headers=a.bearer,
    )
    assert bad.status_code == 422 and bad.json()["message"].startswith("record 1:")
    # Nothing of the refused batch was stored.
    assert client.get("/api/v1/profiles", headers=a.bearer).json()["items"] == []
