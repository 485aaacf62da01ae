"""The tag pages in a real browser: a rule tag refused with the place of its problem, then made,
kept by the batch run and shown with its coverage trend and history; a manual tag given to the
people of a file, every row accounted for."""

from __future__ import annotations

import json
import os
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.test_console_browser import _sign_in, browser, page, server  # noqa: F401 - fixtures


def _new_rule_tag(page: Page, name: str, rule: dict[str, object]) -> None:  # noqa: F811
    page.get_by_test_id("tag-name").fill(name)
    page.get_by_test_id("tag-kind").get_by_text("规则").click()
    editor = page.get_by_test_id("rule-editor")
    if not page.get_by_test_id("rule-json").is_visible():
        editor.get_by_text("编辑 JSON").click()
    page.get_by_test_id("rule-json").fill(json.dumps(rule, ensure_ascii=False))
    page.get_by_test_id("create-tag").click()


def test_operator_makes_a_rule_tag_and_sees_it_kept_by_the_batch(server: tuple[str, str], page: Page) -> None:  # noqa: F811
    base, email = server
    _sign_in(page, base, email)
    page.get_by_role("menuitem", name="标签").click()
    page.get_by_test_id("new-tag").click()
    _new_rule_tag(page, "上海客户", {"type": "and", "conditions": [{"type": "event", "event": "No Such Event"}]})
    expect(page.get_by_test_id("rule-problem")).to_contain_text("conditions.0")
    expect(page.get_by_test_id("rule-problem")).to_contain_text("No Such Event")
    city = {"type": "trait", "key": "city", "value_type": "string", "op": "contains", "value": "上海"}
    page.get_by_test_id("rule-json").fill(json.dumps(city, ensure_ascii=False))
    page.get_by_test_id("create-tag").click()
    expect(page.get_by_test_id("tag-info")).to_contain_text("规则")
    expect(page.get_by_test_id("rule-editor")).to_be_visible()

    page.get_by_role("menuitem", name="客户分层").click()
    page.get_by_test_id("run-analytics").click()
    expect(page.get_by_test_id("analytics-runs").get_by_text("完成").first).to_be_visible(timeout=60_000)
    page.get_by_role("menuitem", name="标签").click()
    page.get_by_test_id("tags-table").get_by_text("上海客户").click()
    expect(page.get_by_test_id("tag-people")).not_to_have_text("0")
    expect(page.locator("[data-testid=coverage-chart] canvas").first).to_be_visible()
    expect(page.get_by_test_id("tag-history").get_by_text("获得").first).to_be_visible()
    if shot := os.environ.get("SIYU_SCREENSHOT_TAGS"):
        page.screenshot(path=shot, full_page=True)


def test_operator_tags_the_people_of_a_file(server: tuple[str, str], page: Page, tmp_path: Path) -> None:  # noqa: F811
    base, email = server
    _sign_in(page, base, email)
    page.get_by_role("menuitem", name="标签").click()
    page.get_by_test_id("new-tag").click()
    page.get_by_test_id("tag-name").fill("门店到访")
    page.get_by_test_id("create-tag").click()
    expect(page.get_by_test_id("tag-info")).to_contain_text("手动")
    people = tmp_path / "people.csv"
    people.write_text("手机号\n13000000000\nnot-a-phone\n", encoding="utf-8")
    page.get_by_test_id("tag-file").set_input_files(str(people))
    page.get_by_test_id("tag-upload").click()
    expect(page.get_by_test_id("file-result")).to_contain_text("共 2 行")
    expect(page.get_by_test_id("file-result")).to_contain_text("拒绝 2")
    expect(page.get_by_text("no one has this identifier")).to_be_visible()
