"""The RFM page in a real browser: run the batch on the demo brand, see the eight groups and the
matrix, change the model."""

from __future__ import annotations

import os

from playwright.sync_api import Page, expect

from tests.test_console_browser import _sign_in, browser, page, server  # noqa: F401 - fixtures


def test_operator_runs_the_batch_and_sees_the_rfm_groups(server: tuple[str, str], page: Page) -> None:  # noqa: F811
    base, email = server
    _sign_in(page, base, email)
    page.get_by_role("menuitem", name="客户分层").click()
    page.get_by_test_id("run-analytics").click()
    runs = page.get_by_test_id("analytics-runs")
    expect(runs.get_by_text("完成").first).to_be_visible(timeout=60_000)
    expect(runs.get_by_text("数据搬运").first).to_be_visible()
    groups = page.get_by_test_id("rfm-groups")
    expect(groups.get_by_text("重要价值")).to_be_visible()
    expect(groups.get_by_text("一般挽留")).to_be_visible()
    expect(page.get_by_test_id("rfm-summary")).not_to_contain_text("客户数 0 ")
    expect(page.locator("[data-testid=rfm-heatmap] canvas").first).to_be_visible()
    expect(page.get_by_test_id("clv-summary")).to_contain_text("预期价值")
    expect(page.get_by_test_id("clv-bands").get_by_text("75%+")).to_be_visible()
    expect(page.get_by_test_id("lead-grades").get_by_text("A", exact=True)).to_be_visible()
    stages = page.get_by_test_id("lifecycle-stages")
    expect(stages.get_by_text("活跃/复购")).to_be_visible()
    expect(page.get_by_test_id("lifecycle-moves").get_by_text("（新）").first).to_be_visible()
    # Each person's page shows where the run put them.
    page.get_by_role("menuitem", name="客户档案").click()
    page.get_by_test_id("profiles-table").locator(".el-table__body tr").first.click()
    expect(page.get_by_test_id("profile-analytics")).to_contain_text("生命周期")
    if shot := os.environ.get("SIYU_SCREENSHOT_RFM"):
        page.screenshot(path=shot, full_page=True)


def test_admin_changes_the_rfm_model(server: tuple[str, str], page: Page) -> None:  # noqa: F811
    base, email = server
    _sign_in(page, base, email)
    page.get_by_role("menuitem", name="客户分层").click()
    window = page.get_by_test_id("window-days").locator("input")
    expect(window).to_have_value("365")
    window.fill("180")
    window.blur()
    page.get_by_test_id("scoring-thresholds").click()
    expect(page.get_by_test_id("cut-recency-0").locator("input")).to_have_value("30")
    page.get_by_test_id("save-rfm").click()
    expect(page.get_by_text("已保存，下次计算生效")).to_be_visible()
    page.reload()
    expect(page.get_by_test_id("window-days").locator("input")).to_have_value("180")
    expect(page.get_by_test_id("cut-recency-0")).to_be_visible()


def test_admin_changes_the_lifecycle_model(server: tuple[str, str], page: Page) -> None:  # noqa: F811
    base, email = server
    _sign_in(page, base, email)
    page.get_by_role("menuitem", name="客户分层").click()
    # 流失 (lost) is the second stage: more than 365 days since the last purchase; make it 400.
    expect(page.get_by_test_id("stage-name-1")).to_have_value("流失")
    days = page.get_by_test_id("stage-1-value-0").locator("input")
    expect(days).to_have_value("365")
    days.fill("400")
    days.blur()
    page.get_by_test_id("save-lifecycle").click()
    expect(page.get_by_text("已保存，下次计算生效")).to_be_visible()
    page.reload()
    expect(page.get_by_test_id("stage-1-value-0").locator("input")).to_have_value("400")


def test_admin_changes_a_lead_scoring_rule(server: tuple[str, str], page: Page) -> None:  # noqa: F811
    base, email = server
    _sign_in(page, base, email)
    page.get_by_role("menuitem", name="客户分层").click()
    expect(page.get_by_test_id("rule-event-0")).to_have_value("Demo Requested")
    points = page.get_by_test_id("rule-points-0").locator("input")
    points.fill("45")
    points.blur()
    page.get_by_test_id("save-leads").click()
    expect(page.get_by_text("已保存，下次计算生效")).to_be_visible()
    page.reload()
    expect(page.get_by_test_id("rule-points-0").locator("input")).to_have_value("45")
