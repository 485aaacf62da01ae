"""The send policy, rule by rule: each person becomes one ledger row, queued or skipped with
the reason — no address, no consent, suppressed, holdout, frequency cap, quiet hours, no
acceptance, render failed, content refused — and a dry run counts the same without writing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from siyu.channels import accounts
from siyu.channels.acceptances import record_acceptances, remaining
from siyu.channels.contracts import ChannelKind, MessageKind
from siyu.channels.ledger import count_by_status
from siyu.channels.policy import Cap, Policy, QuietHours, policy_from_dict
from siyu.channels.prepare import Links, PrepareReport, Recipient, SendRequest, prepare_send
from siyu.channels.suppression import suppress_addresses
from siyu.channels.tables import Message
from siyu.channels.templates import TemplateDraft, save_template
from siyu.channels.unsubscribe import read_token
from siyu.channels.words import word_list
from siyu.core.errors import ValidationFailedError
from siyu.segments import facade as segments
from siyu.storage.scoping import Scope
from siyu.storage.session import Database
from tests.conftest import TEST_SECRET, Actor, make_actor

LINKS = Links("https://crm.brand.example", TEST_SECRET)
SHANGHAI = ZoneInfo("Asia/Shanghai")
APP = "wx1234567890abcdef"


@dataclass
class Brand:
    actor: Actor
    people: dict[str, str]  # user id → profile id
    sms_template: str


def person(
    client: TestClient, a: Actor, user: str, traits: dict[str, Any], consent: dict[str, str] | None = None
) -> str:
    r = client.post("/v1/identify", json={"userId": user, "traits": traits}, auth=(a.ingest_key, ""))
    assert r.status_code == 200, r.text
    if consent:
        record = {
            "address": consent, "channel": "email" if consent["kind"] == "email" else "sms", "purpose": "marketing",
            "status": "granted", "at": "2026-11-01T00:00:00Z", "source": "form", "proof": {"text_version": "v1"},
        }  # fmt: skip
        assert client.post("/api/v1/consents", json={"records": [record]}, headers=a.bearer).status_code == 201
    found = client.get("/api/v1/profiles", params={"q": user}, headers=a.bearer).json()["items"]
    return str(found[0]["id"])


def template(db: Database, a: Actor, name: str, channel: ChannelKind, kind: MessageKind, **parts: Any) -> str:
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        return save_template(s, TemplateDraft(name=name, channel=channel, kind=kind, **parts), None).id


@pytest.fixture
def brand(client: TestClient, db: Database) -> Brand:
    a = make_actor(db, "acme")
    people = {}
    for i, user in enumerate(["ok1", "ok2", "ok3", "noconsent", "blocked"]):
        phone = f"1380013800{i}"
        consent = None if user == "noconsent" else {"kind": "phone", "value": phone}
        people[user] = person(client, a, user, {"phone": phone, "name": f"会员{i}", "points": 100 * i}, consent)
    people["nophone"] = person(client, a, "nophone", {"name": "无号"})
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        accounts.save_account(
            s, TEST_SECRET, accounts.AccountIn(ChannelKind.SMS, "sandbox", "sms", {"sign_name": "私域美妆"}, {})
        )
        suppress_addresses(s, [("sms", "+8613800138004", "replied R")], source="test")
    sms = template(
        db,
        a,
        "积分",
        ChannelKind.SMS,
        MessageKind.MARKETING,
        body="{{ profile.name }}，积分{{ profile.points }}将到期 拒收请回复R",
    )
    return Brand(a, people, sms)


def prepare(
    db: Database, b: Brand, who: list[str], *, policy: Policy | None = None, dry_run: bool = False, **req: Any
) -> PrepareReport:
    request = SendRequest(
        source=req.pop("source", "test"), step=req.pop("step", "1"), template_id=req.pop("template_id", b.sms_template),
        recipients=[Recipient(b.people[w]) for w in who], **req,
    )  # fmt: skip
    with db.transaction(Scope.workspace(b.actor.workspace_id)) as s:
        return prepare_send(
            s, request, policy=policy or Policy(quiet_hours={}), words=word_list(""), links=LINKS, dry_run=dry_run
        )


def rows(db: Database, b: Brand) -> dict[str, Message]:
    with db.read(Scope.workspace(b.actor.workspace_id)) as s:
        by_profile = {m.profile_id: m for m in s.scalars(select(Message).order_by(Message.id))}
        s.expunge_all()  # kept as read, after the read-only transaction ends
    return {user: by_profile[p] for user, p in b.people.items() if p in by_profile}


def test_consent_suppression_and_address_each_skip_with_their_reason(db: Database, brand: Brand) -> None:
    everyone = ["ok1", "ok2", "noconsent", "blocked", "nophone", "ok1"]
    dry = prepare(db, brand, everyone, dry_run=True)
    assert (dry.total, dry.queued, dict(dry.skipped)) == (5, 2, {"no_consent": 1, "suppressed": 1, "no_address": 1})
    with db.read(Scope.workspace(brand.actor.workspace_id)) as s:
        assert count_by_status(s) == {}  # a dry run writes nothing
    report = prepare(db, brand, everyone)
    assert (report.queued, report.written, dict(report.skipped)) == (2, 5, dict(dry.skipped))
    got = rows(db, brand)
    assert {u: (m.status, m.reason) for u, m in got.items()} == {
        "ok1": ("queued", ""),
        "ok2": ("queued", ""),
        "noconsent": ("skipped", "no_consent"),
        "blocked": ("skipped", "suppressed"),
        "nophone": ("skipped", "no_address"),
    }
    assert got["ok1"].content["text"] == "【私域美妆】会员0，积分0将到期 拒收请回复R"
    assert (got["ok1"].address, got["ok1"].key) == ("+8613800138000", f"test:1:{brand.people['ok1']}")
    again = prepare(db, brand, everyone)  # the same request again writes nothing new
    assert (again.written, again.queued) == (0, 2)


def test_transactional_messages_need_no_consent_but_respect_suppression(db: Database, brand: Brand) -> None:
    notice = template(db, brand.actor, "发货", ChannelKind.SMS, MessageKind.TRANSACTIONAL, body="您的订单已发货")
    report = prepare(db, brand, ["ok1", "noconsent", "blocked"], template_id=notice)
    assert (report.queued, dict(report.skipped)) == (2, {"suppressed": 1})


def test_holdouts_set_people_aside_from_marketing(db: Database, brand: Brand) -> None:
    with db.transaction(Scope.workspace(brand.actor.workspace_id)) as s:
        holdout = segments.create_holdout(s, "双11 对照组", 5000, "", None)
        held = segments.in_holdout(s, holdout.id, [brand.people[u] for u in ("ok1", "ok2", "ok3")])
    report = prepare(db, brand, ["ok1", "ok2", "ok3"], holdout_id=holdout.id)
    assert report.skipped["holdout"] == len(held) and report.queued == 3 - len(held)
    with db.transaction(Scope.workspace(brand.actor.workspace_id)) as s:
        segments.set_global_share(s, 5000, None)
        global_held = segments.global_holdout_members(s, [brand.people[u] for u in ("ok1", "ok2", "ok3")])
    assert prepare(db, brand, ["ok1", "ok2", "ok3"], step="2", dry_run=True).skipped["holdout"] == len(global_held)


def test_frequency_caps_count_marketing_across_sources(db: Database, brand: Brand) -> None:
    capped = Policy(quiet_hours={}, caps=(Cap("sms", 2, 7), Cap("*", 5, 30)))
    assert prepare(db, brand, ["ok1", "ok2"], policy=capped, source="campaign:a").queued == 2
    assert prepare(db, brand, ["ok1"], policy=capped, source="journey:b").queued == 1
    third = prepare(db, brand, ["ok1", "ok2"], policy=capped, source="campaign:c")
    assert (third.queued, dict(third.skipped)) == (1, {"frequency_cap": 1})
    with db.read(Scope.workspace(brand.actor.workspace_id)) as s:
        reasons = {m.reason for m in s.scalars(select(Message).where(Message.source == "campaign:c"))}
    assert reasons == {"", "frequency_cap: at most 2 sms in 7 days"}
    repeat = prepare(db, brand, ["ok1", "ok2"], policy=capped, source="campaign:a")  # a request's own messages
    assert repeat.queued == 2  # do not count against it
    notice = template(db, brand.actor, "发货", ChannelKind.SMS, MessageKind.TRANSACTIONAL, body="您的订单已发货")
    assert prepare(db, brand, ["ok1"], policy=capped, template_id=notice, source="x").queued == 1


def test_quiet_hours_delay_to_the_next_window_or_drop(db: Database, brand: Brand) -> None:
    tomorrow = datetime.now(SHANGHAI).date() + timedelta(days=1)
    night = datetime.combine(tomorrow, time(23, 30), SHANGHAI).astimezone(UTC)
    delay = Policy(quiet_hours={"sms": QuietHours(time(9), time(20), "delay")}, caps=())
    report = prepare(db, brand, ["ok1"], policy=delay, at=night)
    assert (report.queued, report.delayed) == (1, 1)
    not_before = rows(db, brand)["ok1"].not_before.astimezone(SHANGHAI)
    assert (not_before.date(), not_before.time()) == (tomorrow + timedelta(days=1), time(9))
    drop = Policy(quiet_hours={"sms": QuietHours(time(9), time(20), "drop")}, caps=())
    assert dict(prepare(db, brand, ["ok2"], policy=drop, at=night, step="2").skipped) == {"quiet_hours": 1}
    noon = datetime.combine(tomorrow, time(12), SHANGHAI).astimezone(UTC)
    assert prepare(db, brand, ["ok3"], policy=drop, at=noon, step="3").delayed == 0
    across_midnight = QuietHours(time(22), time(2))
    assert across_midnight.allows(datetime(2026, 1, 1, 23, tzinfo=SHANGHAI))
    assert not across_midnight.allows(datetime(2026, 1, 1, 12, tzinfo=SHANGHAI))


def test_render_failures_and_refused_content_are_skipped_per_person(
    client: TestClient, db: Database, brand: Brand
) -> None:
    needs_city = template(
        db, brand.actor, "城市", ChannelKind.SMS, MessageKind.MARKETING, body="{{ profile.city }}门店开业 拒收请回复R"
    )
    person(client, brand.actor, "ok1", {"city": "上海"})
    report = prepare(db, brand, ["ok1", "ok2"], template_id=needs_city)
    assert (report.queued, dict(report.skipped)) == (1, {"render_failed": 1})
    assert "city" in rows(db, brand)["ok2"].reason
    person(client, brand.actor, "ok3", {"name": "贷款专员"})
    refused = prepare(db, brand, ["ok3"], step="2")
    assert dict(refused.skipped) == {"content_refused": 1}
    assert "贷款" in rows(db, brand)["ok3"].reason


def test_miniprogram_messages_spend_acceptances(client: TestClient, db: Database, brand: Brand) -> None:
    a = brand.actor
    openid = "oia2TjuEGTNoeX76QEjQNrcURxG8"
    body = {"userId": "ok1", "context": {"identifiers": [{"kind": "openid", "scope": APP, "value": openid}]}}
    assert client.post("/v1/identify", json=body, auth=(a.ingest_key, "")).status_code == 200
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        accounts.save_account(
            s, TEST_SECRET, accounts.AccountIn(ChannelKind.MINIPROGRAM, "sandbox", "mp", {"app_id": APP}, {})
        )
        record_acceptances(s, [(openid, "TPL_SHIP")])
    shipped = template(
        db, a, "发货通知", ChannelKind.MINIPROGRAM, MessageKind.TRANSACTIONAL,
        provider_template="TPL_SHIP", fields={"thing1": "您的订单已发货"},
    )  # fmt: skip
    first = prepare(db, brand, ["ok1", "ok2"], template_id=shipped)
    assert (first.queued, dict(first.skipped)) == (1, {"no_address": 1})
    second = prepare(db, brand, ["ok1"], template_id=shipped, step="2")
    assert dict(second.skipped) == {"no_acceptance": 1}
    with db.read(Scope.workspace(a.workspace_id)) as s:
        assert remaining(s, openid, "TPL_SHIP") == 0


def test_marketing_email_carries_a_working_unsubscribe_link(client: TestClient, db: Database) -> None:
    a = make_actor(db, "mail")
    profile = person(
        client, a, "u1", {"email": "wang@example.com", "name": "王"}, {"kind": "email", "value": "wang@example.com"}
    )
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        accounts.save_account(s, TEST_SECRET, accounts.AccountIn(ChannelKind.EMAIL, "sandbox", "mail", {}, {}))
    news = template(
        db, a, "月刊", ChannelKind.EMAIL, MessageKind.MARKETING, subject="{{ profile.name }}的月刊", body="<p>新品</p>"
    )
    b = Brand(a, {"u1": profile}, news)
    assert prepare(db, b, ["u1"]).queued == 1
    content = rows(db, b)["u1"].content
    assert content["subject"] == "王的月刊"
    url = content["extra"]["unsubscribe_url"]
    assert url.startswith("https://crm.brand.example/u/")
    assert read_token(TEST_SECRET, url.rsplit("/", 1)[1]) == (a.workspace_id, "email", "wang@example.com")


def test_policy_settings_are_checked() -> None:
    policy = policy_from_dict(
        {
            "quiet_hours": {"sms": {"start": "08:00", "end": "21:30", "action": "drop"}},
            "caps": [{"channel": "*", "max": 3, "days": 7}],
        },
        "Asia/Shanghai",
    )
    assert policy.to_dict()["quiet_hours"]["sms"] == {"start": "08:00", "end": "21:30", "action": "drop"}
    for bad in (
        {"quiet_hours": {"fax": {"start": "08:00", "end": "20:00"}}},
        {"quiet_hours": {"sms": {"start": "8am", "end": "20:00"}}},
        {"quiet_hours": {"sms": {"start": "08:00", "end": "08:00"}}},
        {"caps": [{"channel": "sms", "max": -1, "days": 7}]},
        {"caps": [{"channel": "sms", "max": 2, "days": 0}]},
        {"limits": []},
    ):
        with pytest.raises(ValidationFailedError):
            policy_from_dict(bad, "Asia/Shanghai")


def test_links_go_through_the_shortening_hook(db: Database, brand: Brand) -> None:
    promo = template(
        db, brand.actor, "活动", ChannelKind.SMS, MessageKind.MARKETING,
        body="会员日详情 {{ link }} 拒收请回复R", link="https://brand.example/day?u={{ profile.id }}",
    )  # fmt: skip
    seen: list[tuple[str, str]] = []

    def shorten(url: str, key: str) -> str:
        seen.append((url, key))
        return f"https://s.example/{len(seen)}"

    request = SendRequest(source="test", step="1", template_id=promo, recipients=[Recipient(brand.people["ok1"])])
    with db.transaction(Scope.workspace(brand.actor.workspace_id)) as s:
        links = Links(LINKS.public_url, TEST_SECRET, shorten=shorten)
        prepare_send(s, request, policy=Policy(quiet_hours={}, caps=()), words=word_list(""), links=links)
    message = rows(db, brand)["ok1"]
    assert seen == [(f"https://brand.example/day?u={brand.people['ok1']}", message.key)]
    assert message.content["link"] == "https://s.example/1"
    assert message.content["text"] == "【私域美妆】会员日详情 https://s.example/1 拒收请回复R"


def test_a_person_is_reached_at_their_first_address_that_is_open(
    client: TestClient, db: Database, brand: Brand
) -> None:
    # Two phones each: the first suppressed (or without consent), the second consented.
    a = brand.actor
    for user, first in (("two_a", "13900139001"), ("two_b", "13900139003")):
        brand.people[user] = person(client, a, user, {"phone": first, "name": user, "points": 1})
        second = str(int(first) + 1)
        assert (
            client.post(
                "/v1/identify", json={"userId": user, "traits": {"phone": second}}, auth=(a.ingest_key, "")
            ).status_code
            == 200
        )
        record = {
            "address": {"kind": "phone", "value": second}, "channel": "sms", "purpose": "marketing",
            "status": "granted", "at": "2026-11-01T00:00:00Z", "source": "form", "proof": {"text_version": "v1"},
        }  # fmt: skip
        assert client.post("/api/v1/consents", json={"records": [record]}, headers=a.bearer).status_code == 201
    with db.transaction(Scope.workspace(a.workspace_id)) as s:
        suppress_addresses(s, [("sms", "+8613900139001", "replied R")], source="test")
    report = prepare(db, brand, ["two_a", "two_b"])
    assert (report.queued, dict(report.skipped)) == (2, {})
    got = rows(db, brand)
    assert (got["two_a"].address, got["two_b"].address) == ("+8613900139002", "+8613900139004")


def test_a_send_stores_the_same_messages_rendered_at_once_or_one_by_one(
    db: Database, brand: Brand, monkeypatch: pytest.MonkeyPatch
) -> None:
    promo = template(
        db, brand.actor, "会员日", ChannelKind.SMS, MessageKind.MARKETING,
        body="{{ profile.name }}，积分{{ profile.points | default('0') }} {{ link }} 拒收请回复R",
        link="https://brand.example/day?u={{ profile.id }}",
    )  # fmt: skip
    who = ["ok1", "ok2", "ok3", "noconsent", "blocked", "nophone"]
    contents = []
    for step in ("1", "2"):
        first = prepare(db, brand, who, template_id=promo, step=step)
        assert (first.queued, first.written) == (3, 6)
        contents.append({user: (m.content, m.status, m.reason) for user, m in rows(db, brand).items()})
        monkeypatch.setattr("siyu.channels.prepare.renders_in_bulk", lambda draft: False)
    assert contents[0] == contents[1]
    assert contents[0]["ok1"][0] == {
        "text": "【私域美妆】会员0，积分0 https://brand.example/day?u=" + brand.people["ok1"] + " 拒收请回复R",
        "link": "https://brand.example/day?u=" + brand.people["ok1"],
        "extra": {"sign_name": "私域美妆"},
    }
