"""The links page in a real browser: an operator makes a QR code for a package insert, sees the
code drawn, a phone opens it (the redirect lands where it should) and the click is counted."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.test_console_browser import _sign_in, browser, page, server  # noqa: F401 - fixtures

PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 MicroMessenger/8.0.47"


def test_an_operator_makes_a_qr_code_and_sees_its_scans(
    server: tuple[str, str],  # noqa: F811
    page: Page,  # noqa: F811
) -> None:
    base, email = server
    _sign_in(page, base, email)
    page.get_by_role("menuitem", name="链接与二维码").click()
    page.get_by_test_id("link-name").fill("包裹卡-双11")
    page.get_by_test_id("link-target").fill(f"{base}/segments?from=card")
    page.get_by_test_id("create-link").click()
    dialog = page.get_by_test_id("qr-dialog")
    expect(dialog).to_contain_text("/s/")
    image = page.get_by_test_id("qr-image")
    expect(image).to_be_visible()
    page.wait_for_function("() => document.querySelector('[data-testid=qr-image]').naturalWidth > 0")
    code = re.search(r"/s/([0-9A-Za-z]{12})", dialog.inner_text())
    assert code is not None

    phone = page.context.browser.new_context(user_agent=PHONE)  # type: ignore[union-attr]
    scan = phone.new_page()
    scan.goto(f"{base}/s/{code.group(1)}")  # lands on the page (after signing in: it is the console)
    expect(scan).to_have_url(re.compile(r"segments\?from=card.*utm_source=siyu.*utm_medium=offline"))
    phone.close()

    page.reload()
    row = page.get_by_test_id("links-table").locator("tbody tr", has_text="包裹卡-双11")
    expect(row).to_contain_text("二维码")
    expect(row.locator("td").nth(4)).to_have_text("1")
