"""The segment pages in a real browser, on the demo brand: a segment built with a nested,
negated group shows its live count as it is edited, is saved, refreshed and shown with its
members; the export dialog counts an ad audience and who it leaves out."""

from __future__ import annotations

import os
import re

from playwright.sync_api import Page, expect

from tests.test_console_browser import _sign_in, browser, page, server  # noqa: F401 - fixtures


def _count(page: Page) -> int:  # noqa: F811
    text = page.get_by_test_id("preview-people").inner_text()
    return int(text.replace(",", ""))


def test_operator_builds_a_segment_and_sees_the_count(server: tuple[str, str], page: Page) -> None:  # noqa: F811
    base, email = server
    _sign_in(page, base, email)
    # The batch's first run gives the rules RFM and stages to read.
    page.get_by_role("menuitem", name="客户分层").click()
    page.get_by_test_id("run-analytics").click()
    expect(page.get_by_test_id("analytics-runs").get_by_text("完成").first).to_be_visible(timeout=60_000)

    page.get_by_role("menuitem", name="人群").click()
    page.get_by_test_id("new-segment").click()
    page.get_by_test_id("segment-name").fill("高价值非流失")
    first = page.get_by_test_id("condition-0")
    first.get_by_test_id("condition-kind").click()
    page.get_by_role("option", name="RFM 分层", exact=True).click()
    first.get_by_label("RFM 分层").click(force=True)
    page.get_by_role("option", name="重要价值", exact=True).click()
    page.get_by_role("option", name="重要发展", exact=True).click()
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("preview-people")).to_have_text(re.compile(r"^[\d,]+$"), timeout=15_000)
    everyone_valued = _count(page)
    assert everyone_valued > 0

    # A nested group, negated: everyone valued who is not dormant or lost.
    page.get_by_test_id("add-group-").click()
    nested = page.get_by_test_id("condition-1")
    nested.get_by_test_id("condition-kind").click()
    page.get_by_role("option", name="生命周期阶段", exact=True).click()
    nested.get_by_label("生命周期阶段").click(force=True)
    page.get_by_role("option", name="沉睡", exact=True).click()
    page.get_by_role("option", name="流失", exact=True).click()
    page.keyboard.press("Escape")
    nested.get_by_label("排除").first.check()
    expect(page.get_by_test_id("preview-people")).not_to_have_text(str(everyone_valued), timeout=15_000)
    kept = _count(page)
    assert 0 < kept < everyone_valued
    expect(page.get_by_test_id("live-count")).to_contain_text("占全部")

    page.get_by_test_id("save-segment").click()
    expect(page.get_by_test_id("segment-info")).to_contain_text("动态")
    page.get_by_test_id("refresh-segment").click()
    for _ in range(60):  # the refresh is a background run
        page.wait_for_timeout(1000)
        page.reload()
        if page.get_by_test_id("segment-people").inner_text() != "0":
            break
    expect(page.get_by_test_id("segment-people")).to_have_text(str(kept))
    expect(page.get_by_test_id("segment-members").locator("tbody tr").first).to_be_visible()
    expect(page.locator("[data-testid=size-chart] canvas").first).to_be_visible()

    page.get_by_test_id("open-export").click()
    page.get_by_test_id("audience-report").click()
    expect(page.get_by_test_id("audience-result")).to_contain_text("未单独同意投放使用")
    page.keyboard.press("Escape")

    # A holdout for one use, from the list page; the segment is listed with its size.
    page.get_by_role("menuitem", name="人群").click()
    expect(page.get_by_test_id("segments-table")).to_contain_text("高价值非流失")
    page.get_by_test_id("holdout-name").fill("双11对照")
    page.get_by_test_id("create-holdout").click()
    expect(page.get_by_test_id("holdout-row")).to_contain_text("双11对照 · 10%")
    if shot := os.environ.get("SIYU_SCREENSHOT_SEGMENTS"):
        page.screenshot(path=shot, full_page=True)
