"""The console in a real browser (system Chromium through Playwright): sign in, see the
dashboard of the demo brand, switch workspace and language."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect, sync_playwright

from siyu.accounts import facade
from siyu.accounts.contracts import Principal, Role
from siyu.api.app import REPO_WEB_DIST, create_app
from siyu.demo.generator import SyntheticBrand
from siyu.demo.seed import seed_brand
from siyu.storage import migrate
from siyu.storage.scoping import Scope
from siyu.storage.session import Database
from tests.conftest import PASSWORD, make_actor, settings_for

CHROMIUM = os.environ.get("SIYU_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]


INGEST_KEYS: dict[str, str] = {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    assert (REPO_WEB_DIST / "index.html").is_file(), "build the console first: cd web && npm run build"
    path = tmp_path_factory.mktemp("browser") / "siyu.db"
    db = Database(f"sqlite:///{path}")
    migrate.upgrade(db.engine)
    owner = make_actor(db, "xigu")
    other = make_actor(db, "senyu")
    with db.transaction(Scope.workspace(other.workspace_id)) as s:
        facade.add_member(
            s, Principal(workspace_id=other.workspace_id, role=Role.OWNER), user_id=owner.user_id, role=Role.VIEWER
        )
    with db.transaction(Scope.workspace(owner.workspace_id)) as s:
        seed_brand(s, SyntheticBrand(seed=11, customers=400, until=datetime.now(UTC)))
    settings = settings_for(db, web_dist=Path(REPO_WEB_DIST), job_poll_seconds=0.2)
    port = _free_port()
    # With the scheduler and a worker, as `siyu serve` runs (imports are jobs).
    config = uvicorn.Config(create_app(settings, db, background=True), host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    INGEST_KEYS["xigu"] = owner.ingest_key
    INGEST_KEYS["full"] = owner.key
    yield f"http://127.0.0.1:{port}", owner.email
    srv.should_exit = True
    thread.join(timeout=10)
    db.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    pg = context.new_page()
    yield pg
    context.close()


def _sign_in(page: Page, base: str, email: str, password: str = PASSWORD) -> None:
    page.goto(base + "/")
    page.get_by_label("邮箱").fill(email)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()


def test_sign_in_and_see_the_dashboard(server: tuple[str, str], page: Page) -> None:
    base, email = server
    _sign_in(page, base, email)
    profiles = page.get_by_test_id("count-profiles").locator(".metric-value")
    expect(profiles).to_have_text("400")
    expect(page.get_by_test_id("count-orders").locator(".metric-value")).not_to_have_text("0")
    expect(page.get_by_text("近 30 天趋势")).to_be_visible()
    expect(page.locator("[data-testid=trend-chart] canvas")).to_have_count(1)
    # The workspace switcher lists both workspaces; the other one is empty.
    page.get_by_test_id("workspace-switcher").click()
    page.get_by_role("option", name="Brand senyu").click()
    expect(profiles).to_have_text("0")
    # English on request.
    page.get_by_role("button", name="English").click()
    expect(page.get_by_test_id("count-profiles").get_by_text("Profiles")).to_be_visible()


def test_wrong_password_shows_an_error_and_stays_on_login(server: tuple[str, str], page: Page) -> None:
    base, email = server
    _sign_in(page, base, email, "not-the-password")
    expect(page.get_by_role("alert")).to_contain_text("email or password is incorrect")
    assert "/login" in page.url


def test_deep_link_requires_sign_in_then_returns(server: tuple[str, str], page: Page) -> None:
    base, email = server
    page.goto(base + "/keys")
    expect(page).to_have_url(f"{base}/login?next=/keys")
    page.get_by_label("邮箱").fill(email)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("heading", name="API 密钥")).to_be_visible()


def test_admin_creates_and_revokes_a_key_and_sees_it_audited(server: tuple[str, str], page: Page) -> None:
    base, email = server
    _sign_in(page, base, email)
    page.get_by_role("menuitem", name="API 密钥").click()
    page.get_by_label("名称").fill("小程序埋点")
    page.get_by_role("button", name="创建密钥").click()
    expect(page.get_by_test_id("new-token")).to_contain_text("wk_")
    row = page.get_by_role("row").filter(has_text="小程序埋点")
    expect(row).to_contain_text("有效")
    row.get_by_role("button", name="吊销").click()
    page.get_by_role("button", name="确定").click()
    expect(row).to_contain_text("已吊销")
    page.get_by_role("menuitem", name="审计日志").click()
    expect(page.get_by_role("cell", name="api_key.revoke").first).to_be_visible()
    expect(page.get_by_role("cell", name="api_key.create").first).to_be_visible()


def test_an_event_sent_with_the_write_key_shows_in_the_event_stream(server: tuple[str, str], page: Page) -> None:
    import base64

    base, email = server
    auth = base64.b64encode(f"{INGEST_KEYS['xigu']}:".encode()).decode()
    sent = page.request.post(
        base + "/v1/track",
        headers={"Authorization": f"Basic {auth}"},
        data={"userId": "browser-test-user", "event": "Coupon Redeemed"},
    )
    assert sent.status == 200
    _sign_in(page, base, email)
    page.get_by_role("menuitem", name="事件流").click()
    page.get_by_label("用户 ID").fill("browser-test-user")
    page.get_by_role("button", name="查询").click()
    table = page.get_by_test_id("events-table")
    expect(table).to_contain_text("Coupon Redeemed")
    expect(table.get_by_role("row")).to_have_count(2)  # header + the one event


def test_a_brand_site_on_another_origin_sends_events_as_analytics_js_does(server: tuple[str, str], page: Page) -> None:
    """From a page of the brand's shop (another origin): the simple request analytics.js makes
    (text/plain, write key in the body) and a preflighted one (JSON with a Basic header)."""
    import base64
    import http.server

    base, _email = server

    class Shop(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = "<h1>溪谷商城</h1>".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    shop = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Shop)  # another origin (port)
    threading.Thread(target=shop.serve_forever, daemon=True).start()
    page.goto(f"http://localhost:{shop.server_address[1]}/")
    key = INGEST_KEYS["xigu"]
    answers = page.evaluate(
        """async ([base, key, auth]) => {
            const simple = await fetch(base + "/v1/page", {
                method: "POST", headers: {"Content-Type": "text/plain"},
                body: JSON.stringify({writeKey: key, anonymousId: "shop-visitor", name: "首页",
                                      messageId: "shop-page-1"}),
            });
            const preflighted = await fetch(base + "/v1/track", {
                method: "POST", headers: {"Content-Type": "application/json", "Authorization": "Basic " + auth},
                body: JSON.stringify({anonymousId: "shop-visitor", event: "Product Viewed", messageId: "shop-t-1"}),
            });
            return [await simple.json(), await preflighted.json()];
        }""",
        [base, key, base64.b64encode(f"{key}:".encode()).decode()],
    )
    shop.shutdown()
    assert answers == [{"success": True, "accepted": 1, "duplicates": 0, "rejected": []}] * 2


ANALYTICS_JS = REPO_WEB_DIST.parent / "node_modules" / "@segment" / "analytics-next" / "dist" / "umd"


def test_the_official_analytics_js_sends_to_siyu_unmodified(server: tuple[str, str], page: Page) -> None:
    """Segment's analytics.js (analytics-next, as published) on a brand's page, pointed at siyu:
    its page, identify and track calls arrive, stitched to one person."""
    import http.server
    import json

    base, _email = server
    key = INGEST_KEYS["xigu"]
    api_host = base.removeprefix("http://") + "/v1"
    settings = {"integrations": {"Segment.io": {"apiKey": key, "apiHost": api_host, "protocol": "http"}}}

    class Shop(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            name = self.path.rsplit("/", 1)[-1].split("?")[0]
            if self.path == "/":
                body, kind = b'<h1>shop</h1><script src="/ajs/index.js"></script>', "text/html"
            elif (ANALYTICS_JS / name).is_file():  # the SDK and the chunks it loads on demand
                body, kind = (ANALYTICS_JS / name).read_bytes(), "application/javascript"
            elif self.path.endswith("/settings"):
                body, kind = json.dumps(settings).encode(), "application/json"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    assert (ANALYTICS_JS / "index.js").is_file(), "install the console's dependencies: cd web && npm ci"
    shop = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Shop)
    threading.Thread(target=shop.serve_forever, daemon=True).start()
    origin = f"http://localhost:{shop.server_address[1]}"
    page.goto(origin + "/")
    delivered = page.evaluate(
        """async ([key, origin, settings]) => {
            const [analytics] = await AnalyticsNext.AnalyticsBrowser.load(
                {writeKey: key, cdnURL: origin, cdnSettings: settings}, {retryQueue: false});
            const results = [
                await analytics.page("Home"),
                await analytics.track("Product Viewed", {sku: "SKU-1", price_fen: 12900}),
                await analytics.identify("ajs-user-1", {phone: "13800138000", name: "小溪"}),
                await analytics.track("Order Completed", {revenue_fen: 12900}),
            ];
            return results.map((ctx) => ctx.failedDelivery() ? String(ctx.failedDelivery().reason) : "delivered");
        }""",
        [key, origin, settings],
    )
    shop.shutdown()
    assert delivered == ["delivered"] * 4
    rows = page.request.get(
        base + "/api/v1/events?person=ajs-user-1", headers={"Authorization": f"Bearer {INGEST_KEYS['full']}"}
    ).json()["items"]
    assert sorted(e["event"] or e["type"] for e in rows) == ["Order Completed", "identify"]
    profile_ids = {e["profile_id"] for e in rows}
    anonymous = page.request.get(
        base + f"/api/v1/events?person={rows[0]['anonymous_id']}",
        headers={"Authorization": f"Bearer {INGEST_KEYS['full']}"},
    ).json()["items"]
    assert len(anonymous) == 4 and {e["profile_id"] for e in anonymous} == profile_ids  # one person
    assert anonymous[0]["context"]["library"]["name"] == "analytics.js"


def test_find_a_person_and_open_their_profile(server: tuple[str, str], page: Page) -> None:
    import base64

    base, email = server
    auth = base64.b64encode(f"{INGEST_KEYS['xigu']}:".encode()).decode()
    sent = page.request.post(
        base + "/v1/identify",
        headers={"Authorization": f"Basic {auth}"},
        data={"userId": "browser-360", "traits": {"phone": "13900001111"}},
    )
    assert sent.status == 200
    _sign_in(page, base, email)
    page.get_by_role("menuitem", name="客户档案").click()
    page.get_by_label("查找").fill("139 0000 1111")
    page.get_by_role("button", name="查找").click()
    rows = page.get_by_test_id("profiles-table").locator(".el-table__body tr")
    expect(rows).to_have_count(1)
    rows.first.click()
    expect(page.get_by_test_id("identities-table")).to_contain_text("+8613900001111")
    expect(page.get_by_test_id("identities-table")).to_contain_text("browser-360")
    expect(page.get_by_test_id("timeline")).to_contain_text("identify")


def test_operator_splits_an_identifier_off_a_profile(server: tuple[str, str], page: Page) -> None:
    import base64

    base, email = server
    auth = {"Authorization": "Basic " + base64.b64encode(f"{INGEST_KEYS['xigu']}:".encode()).decode()}
    page.request.post(base + "/v1/identify", headers=auth, data={"userId": "mum-1", "traits": {"phone": "13700002222"}})
    page.request.post(
        base + "/v1/identify", headers=auth, data={"anonymousId": "son-device-1", "traits": {"phone": "13700002222"}}
    )
    _sign_in(page, base, email)
    page.get_by_role("menuitem", name="客户档案").click()
    page.get_by_label("查找").fill("13700002222")
    page.get_by_role("button", name="查找").click()
    page.get_by_test_id("profiles-table").locator(".el-table__body tr").first.click()
    identities = page.get_by_test_id("identities-table")
    expect(identities).to_contain_text("son-device-1")
    identities.get_by_role("row").filter(has_text="son-device-1").locator(".el-checkbox").click()
    page.get_by_role("button", name="拆分所选").click()
    page.get_by_role("button", name="确定").click()
    expect(identities).not_to_contain_text("son-device-1")
    expect(identities).to_contain_text("mum-1")


def test_orders_page_shows_an_order_with_its_timeline(server: tuple[str, str], page: Page) -> None:
    base, email = server
    _sign_in(page, base, email)
    expect(page.get_by_test_id("count-profiles")).to_be_visible()
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "siyu_csrf")
    body = {
        "orders": [
            {
                "platform": "jd",
                "order_no": "JD-BROWSER-1",
                "store": "京东旗舰店",
                "status": "paid",
                "total_fen": 9900,
                "paid_fen": 9900,
                "ordered_at": "2026-11-20T10:00:00+08:00",
                "buyer": {"kind": "jd_pin", "id": "jd_browser_buyer"},
            }
        ]
    }
    r = page.request.put(base + "/api/v1/orders", data=body, headers={"X-CSRF-Token": csrf})
    assert r.status == 200, r.text()
    page.get_by_role("menuitem", name="订单").click()
    page.get_by_role("cell", name="JD-BROWSER-1").click()
    expect(page.get_by_test_id("order-timeline")).to_contain_text("已付款")
    page.get_by_role("button", name="查看客户档案").click()
    expect(page.get_by_test_id("identities-table")).to_contain_text("jd_browser_buyer")


def test_profile_page_shows_consent(server: tuple[str, str], page: Page) -> None:
    base, email = server
    _sign_in(page, base, email)
    expect(page.get_by_test_id("count-profiles")).to_be_visible()
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "siyu_csrf")
    record = {
        "address": {"kind": "email", "value": "consent.browser@example.com"},
        "channel": "email",
        "purpose": "marketing",
        "status": "granted",
        "at": "2026-11-01T10:00:00+08:00",
        "source": "landing_page",
        "proof": {"text_version": "email-v1"},
    }
    assert (
        page.request.post(base + "/api/v1/consents", data={"records": [record]}, headers={"X-CSRF-Token": csrf}).status
        == 201
    )
    page.get_by_role("menuitem", name="客户档案").click()
    page.get_by_label("查找").fill("consent.browser@example.com")
    page.get_by_role("button", name="查找").click()
    page.get_by_test_id("profiles-table").locator(".el-table__body tr").first.click()
    expect(page.get_by_test_id("consents-table")).to_contain_text("已同意")
    expect(page.get_by_test_id("consents-table")).to_contain_text("landing_page")


def test_upload_an_export_and_watch_it_import(server: tuple[str, str], page: Page, tmp_path: Path) -> None:
    from tests.test_imports import row, taobao_csv

    base, email = server
    path = taobao_csv(
        tmp_path, [row("TB-BROWSER-1", "browser-nick", "交易成功"), row("TB-BROWSER-2", "browser-nick", "火星状态")]
    )
    _sign_in(page, base, email)
    page.get_by_role("menuitem", name="数据导入").click()
    page.get_by_test_id("import-file").set_input_files(str(path))
    page.get_by_role("button", name="上传并导入").click()
    table = page.get_by_test_id("imports-table")
    expect(table).to_contain_text("已完成", timeout=20_000)
    expect(table.get_by_role("link", name="1 ↓")).to_be_visible()


def test_admin_rebuilds_the_identity_graph_and_sees_the_run(server: tuple[str, str], page: Page) -> None:
    base, email = server
    _sign_in(page, base, email)
    page.get_by_role("menuitem", name="身份图谱").click()
    page.get_by_test_id("rebuild").click()
    runs = page.get_by_test_id("rebuilds")
    expect(runs.get_by_text("完成").first).to_be_visible(timeout=30_000)
    # The seeded brand's people were loaded with their links, and everything ingested since was
    # resolved incrementally: the rebuild finds them all and has nothing to repair.
    first = runs.locator(".el-table__body tr").first
    assert int(first.locator("td").nth(4).inner_text()) >= 400  # people (other tests add some)
    expect(first.locator("td").nth(7)).to_have_text("0")  # repaired


def test_admin_changes_a_merge_rule_and_a_rebuild_follows(server: tuple[str, str], page: Page) -> None:
    base, email = server
    _sign_in(page, base, email)
    page.get_by_role("menuitem", name="身份图谱").click()
    rules = page.get_by_test_id("identity-rules")
    expect(rules.get_by_text("微信 unionid")).to_be_visible()
    limit = page.get_by_test_id("shared-limit-email").locator("input")
    expect(limit).to_have_value("3")
    limit.fill("5")
    limit.blur()
    page.get_by_test_id("save-rules").click()
    expect(page.get_by_text("规则已保存，已排队全量重建")).to_be_visible()
    expect(page.get_by_text("已自定义")).to_be_visible()
    page.reload()
    expect(page.get_by_test_id("shared-limit-email").locator("input")).to_have_value("5")
