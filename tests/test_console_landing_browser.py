"""Landing pages in a real browser: an operator makes a coupon page in the console, sees its
preview, publishes it; a customer opens it on a phone-sized screen, is refused without the
consent tick, then sends their number; the console counts the visitor and the form and the
customer's profile holds the consent with the text they saw."""

from __future__ import annotations

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.test_console_browser import INGEST_KEYS, _sign_in, browser, page, server  # noqa: F401 - fixtures

CONSENT = "我同意接收溪谷会员短信，可回复 R 退订"


def test_an_operator_publishes_a_page_and_a_customer_signs_up_on_it(
    server: tuple[str, str],  # noqa: F811
    page: Page,  # noqa: F811
    browser: Browser,  # noqa: F811
) -> None:
    base, email = server
    _sign_in(page, base, email)
    page.get_by_role("menuitem", name="落地页").click()
    page.get_by_test_id("new-page").click()
    page.get_by_test_id("page-name").fill("双11领券页")
    page.get_by_test_id("page-editor").get_by_text("领券", exact=True).click()
    page.get_by_test_id("page-title").fill("入会领 30 元券")
    page.get_by_test_id("page-highlight").fill("¥30")
    page.get_by_test_id("page-consent_text").fill(CONSENT)
    expect(page.frame_locator("[data-testid=page-preview]").get_by_text("入会领 30 元券")).to_be_visible()
    page.get_by_test_id("page-publish").click()
    table = page.get_by_test_id("pages-table")
    expect(table).to_contain_text("双11领券页")
    expect(table).to_contain_text("已发布")
    headers = {"Authorization": f"Bearer {INGEST_KEYS['full']}"}
    [made] = [p for p in httpx.get(f"{base}/api/v1/landing-pages", headers=headers).json() if p["name"] == "双11领券页"]
    assert made["version"] == 1 and made["layout"] == "coupon"

    phone = browser.new_context(
        viewport={"width": 390, "height": 844}, locale="zh-CN", user_agent="Mozilla/5.0 (iPhone) Mobile"
    )
    customer = phone.new_page()
    customer.goto(f"{base}/p/{made['code']}?utm_campaign=cmp_demo&utm_content=A")
    expect(customer.get_by_role("heading", name="入会领 30 元券")).to_be_visible()
    customer.get_by_label("手机号").fill("13912345678")
    customer.evaluate("document.querySelector('form').noValidate = true")  # let the server refuse it
    customer.get_by_role("button", name="立即提交").click()
    expect(customer.get_by_role("alert")).to_have_text("请先阅读并勾选同意")
    customer.get_by_text(CONSENT).click()
    customer.get_by_role("button", name="立即提交").click()
    expect(customer.get_by_role("status")).to_contain_text("提交成功")
    phone.close()

    page.reload()
    expect(page.get_by_test_id(f"page-forms-{made['code']}")).to_have_text("1")
    page.get_by_test_id(f"page-forms-{made['code']}").click()
    submissions = page.get_by_test_id("page-submissions")
    expect(submissions).to_contain_text("cmp_demo")
    expect(submissions).to_contain_text("v1")
    profile_id = httpx.get(f"{base}/api/v1/landing-pages/{made['id']}/submissions", headers=headers).json()[0][
        "profile_id"
    ]
    profile = httpx.get(f"{base}/api/v1/profiles/{profile_id}", headers=headers).json()
    assert profile["consents"][0]["proof"]["text"] == CONSENT


def test_an_operator_makes_an_official_account_qr_code(
    server: tuple[str, str],  # noqa: F811
    page: Page,  # noqa: F811
) -> None:
    base, email = server
    headers = {"Authorization": f"Bearer {INGEST_KEYS['full']}"}
    account = {"channel": "wechat_oa", "provider": "sandbox", "name": "服务号沙箱", "settings": {}}
    assert httpx.post(f"{base}/api/v1/channels/accounts", json=account, headers=headers).status_code == 201
    _sign_in(page, base, email)
    page.get_by_role("menuitem", name="链接与二维码").click()
    page.get_by_test_id("code-name").fill("门店海报")
    page.get_by_test_id("create-code").click()
    dialog = page.get_by_test_id("code-dialog")
    expect(dialog).to_contain_text("场景值：sy")
    expect(dialog.locator("img")).not_to_have_js_property("naturalWidth", 0)  # the image loaded
    page.keyboard.press("Escape")
    table = page.get_by_test_id("codes-table")
    expect(table).to_contain_text("门店海报")
    expect(table).to_contain_text("公众号带参二维码")
    expect(table).to_contain_text("沙箱")
