"""Short links and QR codes: the redirect counts a person's first click once however often it is
replayed, never counts bots or link previews, answers unknown and altered codes with a plain
404 that counts nothing; a campaign's messages each carry their own short link with UTM
parameters, minted once however often the send is prepared; QR codes come as SVG and PNG."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from defusedxml import ElementTree
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from siyu.campaigns.abtest import Arm, chi_square, two_proportion_z
from siyu.campaigns.run import run_campaign, variant_of
from siyu.channels.adapters.base import MemoryTokenStore
from siyu.channels.dispatch import Dispatcher
from siyu.channels.prepare import Links
from siyu.channels.tables import Message
from siyu.storage.scoping import Scope
from siyu.storage.session import Database
from siyu.tracking.clicks import is_bot
from siyu.tracking.links import LinkMinter, message_code, with_utm
from siyu.tracking.tables import Link, LinkClick
from tests.conftest import TEST_SECRET, make_actor
from tests.test_campaigns import Brand, brand, create, worker_settings  # noqa: F401 - fixtures

PHONE_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 MicroMessenger/8.0.47"
PUBLIC = "http://testserver"


def follow(client: TestClient, url_or_code: str, ua: str = PHONE_UA) -> Any:
    path = urlsplit(url_or_code).path if url_or_code.startswith("http") else f"/s/{url_or_code}"
    return client.get(path, headers={"User-Agent": ua}, follow_redirects=False)


def test_codes_are_keyed_stable_and_utm_never_overrides_the_link() -> None:
    a = message_code(TEST_SECRET, "ws_1", "campaign:cmp_1:1:pf_1", "https://shop.example/p")
    assert a == message_code(TEST_SECRET, "ws_1", "campaign:cmp_1:1:pf_1", "https://shop.example/p")
    assert len(a) == 12 and a.isalnum()
    assert a != message_code(TEST_SECRET, "ws_1", "campaign:cmp_1:1:pf_2", "https://shop.example/p")
    assert a != message_code("another secret", "ws_1", "campaign:cmp_1:1:pf_1", "https://shop.example/p")
    got = with_utm("https://shop.example/p?utm_source=douyin&x=1", {"utm_source": "siyu", "utm_medium": "sms"})
    assert parse_qs(urlsplit(got).query) == {"utm_source": ["douyin"], "x": ["1"], "utm_medium": ["sms"]}
    assert is_bot("TelegramBot (like TwitterBot)") and is_bot("Mozilla/5.0 (compatible; Bytespider)") and is_bot("")
    assert is_bot("facebookexternalhit/1.1") and is_bot("python-httpx/0.27") and not is_bot(PHONE_UA)


def test_a_qr_link_redirects_and_counts_each_person_once(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    body = {"name": "包裹卡", "target": "https://shop.example/join?from=card", "utm_campaign": "insert-2026"}
    made = client.post("/api/v1/links", json=body, headers=a.bearer)
    assert made.status_code == 201, made.text
    link = made.json()
    assert link["short_url"].endswith(f"/s/{link['code']}") and link["clicks"] == 0
    target = urlsplit(link["target"])
    assert parse_qs(target.query) == {
        "from": ["card"], "utm_source": ["siyu"], "utm_medium": ["offline"], "utm_campaign": ["insert-2026"]
    }  # fmt: skip

    first = follow(client, link["code"])
    assert first.status_code == 302 and first.headers["location"] == link["target"]
    assert first.headers["cache-control"] == "no-store"
    assert follow(client, link["code"]).status_code == 302  # a replay: redirected, counted once
    assert follow(client, link["code"], "Mozilla/5.0 (Linux; Android 14) Chrome/126 Mobile").status_code == 302
    assert follow(client, link["code"], "TelegramBot (like TwitterBot)").status_code == 302  # a preview
    got = client.get(f"/api/v1/links/{link['code']}", headers=a.bearer).json()
    assert (got["requests"], got["clicks"], got["bots"]) == (4, 2, 1)

    altered = link["code"][:-1] + ("A" if link["code"][-1] != "A" else "B")
    for code in (altered, "nothing", "x" * 12, "Bcode%3Cscript%3E"):
        missing = client.get(f"/s/{code}", headers={"User-Agent": PHONE_UA}, follow_redirects=False)
        assert missing.status_code == 404 and missing.text == "not found"
    with db.read(Scope.workspace(a.workspace_id)) as s:
        assert s.scalar(select(func.count()).select_from(LinkClick)) == 4
    assert [x["code"] for x in client.get("/api/v1/links", headers=a.bearer).json()] == [link["code"]]

    refused = client.post("/api/v1/links", json={**body, "target": "javascript:alert(1)"}, headers=a.bearer)
    assert refused.status_code == 422 and refused.json()["details"]["path"] == "target"


def test_qr_codes_come_as_svg_and_png(client: TestClient, db: Database) -> None:
    a = make_actor(db, "acme")
    link = client.post("/api/v1/links", json={"name": "门店海报", "target": "https://shop.example/"}, headers=a.bearer)
    code = link.json()["code"]
    svg = client.get(f"/api/v1/links/{code}/qr", headers=a.bearer)
    assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
    root = ElementTree.fromstring(svg.content)
    assert root.tag.endswith("svg") and int(float(root.get("width"))) >= 21 * 8
    png = client.get(f"/api/v1/links/{code}/qr", params={"format": "png", "scale": 4}, headers=a.bearer)
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG\r\n\x1a\n")
    other = make_actor(db, "other")
    assert client.get(f"/api/v1/links/{code}/qr", headers=other.bearer).status_code == 404


def test_each_campaign_message_carries_its_own_short_link(
    client: TestClient,
    db: Database,
    brand: Brand,  # noqa: F811
) -> None:
    h = brand.actor.bearer
    body = "{{ profile.name }}，会场 {{ link }} 拒收请回复R"
    template = {"name": "双11-链接", "channel": "sms", "kind": "marketing", "body": body}
    template["link"] = "https://shop.example/1111?sku=S1"
    made = client.post("/api/v1/templates", json=template, headers=h)
    assert made.status_code == 201, made.text
    variants = [{"key": "A", "template_id": made.json()["id"], "share": 100}]
    c = create(client, brand, variants=variants)
    assert client.post(f"/api/v1/campaigns/{c['id']}/schedule", headers=h).status_code == 200
    links = Links(PUBLIC, TEST_SECRET)
    assert run_campaign(db, brand.actor.workspace_id, c["id"], links).status == "completed"
    with db.read(Scope.workspace(brand.actor.workspace_id)) as s:
        texts = {
            m.profile_id: m.content["text"]
            for m in s.scalars(select(Message).where(Message.source == f"campaign:{c['id']}"))
        }
        rows = {r.profile_id: (r.code, r.target, r.message_key) for r in s.scalars(select(Link))}
    assert set(rows) == set(brand.people) == set(texts)
    for person, (code, target, key) in rows.items():
        assert f"{PUBLIC}/s/{code}" in texts[person] and key == f"campaign:{c['id']}:1:{person}"
        query = parse_qs(urlsplit(target).query)
        assert query["sku"] == ["S1"] and query["utm_campaign"] == [c["id"]] and query["utm_medium"] == ["sms"]
    again = LinkMinter(PUBLIC, TEST_SECRET, brand.actor.workspace_id, source=f"campaign:{c['id']}", channel="sms")
    person = brand.people[0]
    with db.transaction(Scope.workspace(brand.actor.workspace_id)) as s:
        again(rows[person][1], rows[person][2])
        assert again.save(s) == 0  # the same message's link is minted once
    code = rows[person][0]
    assert follow(client, code).status_code == 302 and follow(client, code).status_code == 302
    assert client.get(f"/api/v1/campaigns/{c['id']}/progress", headers=h).json()["clicked"] == 1


def test_the_campaign_report_counts_each_variants_funnel_and_compares_them(
    client: TestClient,
    db: Database,
    brand: Brand,  # noqa: F811
) -> None:
    h = brand.actor.bearer
    ids = []
    for key in ("A", "B"):
        t = {"name": f"链接-{key}", "channel": "sms", "kind": "marketing", "body": "会场 {{ link }} 拒收请回复R"}
        t["link"] = f"https://shop.example/{key}"
        ids.append(client.post("/api/v1/templates", json=t, headers=h).json()["id"])
    variants = [{"key": "A", "template_id": ids[0], "share": 50}, {"key": "B", "template_id": ids[1], "share": 50}]
    c = create(client, brand, variants=variants)
    client.post(f"/api/v1/campaigns/{c['id']}/schedule", headers=h)
    run_campaign(db, brand.actor.workspace_id, c["id"], Links(PUBLIC, TEST_SECRET))
    Dispatcher(db, brand.actor.workspace_id, TEST_SECRET, MemoryTokenStore()).run()
    with db.read(Scope.workspace(brand.actor.workspace_id)) as s:
        codes = {r.profile_id: r.code for r in s.scalars(select(Link))}
    drawn = {p: variant_of(c["id"], c["variants"], p) for p in brand.people}
    a_people = [p for p in brand.people if drawn[p] == "A"]
    b_people = [p for p in brand.people if drawn[p] == "B"]
    assert a_people and b_people
    for p in a_people[:2]:
        follow(client, codes[p])
    follow(client, codes[a_people[0]])  # again: counted once
    follow(client, codes[b_people[0]], "TelegramBot (like TwitterBot)")  # a preview: never counted
    report = client.get(f"/api/v1/campaigns/{c['id']}/report", headers=h).json()
    funnels = {f["key"]: f for f in report["variants"]}
    assert (funnels["A"]["audience"], funnels["A"]["sent"], funnels["A"]["clicked"]) == (
        len(a_people),
        len(a_people),
        2,
    )
    assert (funnels["B"]["audience"], funnels["B"]["sent"], funnels["B"]["clicked"]) == (
        len(b_people),
        len(b_people),
        0,
    )
    assert report["total"]["clicked"] == 2 and report["total"]["audience"] == len(brand.people)
    _, p = two_proportion_z(Arm("A", len(a_people), 2), Arm("B", len(b_people), 0))
    assert report["comparison"]["z_tests"][0]["p_value"] == pytest.approx(p)
    _, chi2_p, _ = chi_square([Arm("A", len(a_people), 2), Arm("B", len(b_people), 0)])
    assert report["comparison"]["probability_best"]["A"] > 0.5
    assert report["comparison"]["significant"] == (chi2_p < 0.05)
