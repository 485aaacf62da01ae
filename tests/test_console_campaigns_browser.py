"""The campaign pages in a real browser, on the demo brand: an operator builds a two-variant SMS
campaign in the wizard (audience, content and variants, time, review with the interception
report), schedules it, and watches it run through the sandbox to completion on its live page;
then a campaign that tests on a share, whose winner the operator chooses, and a weekly one."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.test_console_browser import INGEST_KEYS, _sign_in, browser, page, server  # noqa: F401 - fixtures


def _setup(base: str) -> int:
    """A sandbox SMS account, no quiet hours, two templates and a list of 60 demo customers, of
    whom those with a phone agreed to marketing SMS; returns how many agreed."""
    headers = {"Authorization": f"Bearer {INGEST_KEYS['full']}"}
    account = {"channel": "sms", "provider": "sandbox", "name": "沙箱", "settings": {"sign_name": "溪谷"}}
    assert httpx.post(f"{base}/api/v1/channels/accounts", json=account, headers=headers).status_code == 201
    policy = {"quiet_hours": {}, "caps": [], "sensitive_words": ""}
    assert httpx.put(f"{base}/api/v1/channels/policy", json=policy, headers=headers).status_code == 200
    for name, text in (("双11-A", "双11会员专享 满199减30"), ("双11-B", "{{ campaign.coupon }} 今晚截止")):
        body = {"name": name, "channel": "sms", "kind": "marketing", "body": text + " 拒收请回复R"}
        assert httpx.post(f"{base}/api/v1/templates", json=body, headers=headers).status_code == 201
    people = httpx.get(f"{base}/api/v1/profiles", params={"limit": 60}, headers=headers).json()["items"]
    records = []
    for person in people:
        detail = httpx.get(f"{base}/api/v1/profiles/{person['id']}", headers=headers).json()
        phones = [i["value"] for i in detail["identities"] if i["kind"] == "phone"]
        if phones:
            address = {"kind": "phone", "value": phones[0]}
            records.append(
                {"address": address, "channel": "sms", "purpose": "marketing", "status": "granted"}
                | {"at": "2026-11-01T00:00:00Z", "source": "form", "proof": {"text_version": "v1"}}
            )
    assert httpx.post(f"{base}/api/v1/consents", json={"records": records}, headers=headers).status_code == 201
    body = {"name": "双11名单", "kind": "static", "profile_ids": [p["id"] for p in people]}
    assert httpx.post(f"{base}/api/v1/segments", json=body, headers=headers).status_code == 201
    return len(records)


@pytest.fixture(scope="module")
def reachable(server: tuple[str, str]) -> int:  # noqa: F811
    return _setup(server[0])


def _pick(on: Page, testid: str, option: str | re.Pattern[str]) -> None:
    on.get_by_test_id(testid).click()
    on.get_by_role("option", name=option).last.click()


def test_an_operator_runs_a_two_variant_campaign_from_the_wizard(
    server: tuple[str, str],  # noqa: F811
    page: Page,  # noqa: F811
    reachable: int,
) -> None:
    base, email = server
    assert reachable > 0
    _sign_in(page, base, email)

    page.get_by_role("menuitem", name="营销活动").click()
    page.get_by_test_id("new-campaign").click()
    page.get_by_test_id("campaign-name").fill("双11预热")
    _pick(page, "campaign-segment", re.compile("双11名单"))
    expect(page.get_by_text("当前人群 60 人")).to_be_visible()
    page.get_by_test_id("wizard-next").first.click()

    _pick(page, "variant-template-0", re.compile("双11-A"))
    page.get_by_test_id("add-variant").click()
    _pick(page, "variant-template-1", re.compile("双11-B"))
    page.get_by_role("button", name="平均分配").click()
    expect(page.get_by_text("各版本比例合计 100%")).to_be_visible()
    page.get_by_role("button", name="添加变量").click()
    page.get_by_label("变量名").fill("coupon")
    page.get_by_label("取值").fill("满199减30")
    page.get_by_test_id("wizard-next").nth(1).click()
    guard = page.get_by_test_id("guard-delivery")
    (guard if guard.evaluate("e => e.tagName") == "INPUT" else guard.locator("input")).fill("50")
    page.get_by_test_id("wizard-review").click()

    review = page.get_by_test_id("review-table")
    expect(review).to_contain_text("A")
    expect(review).to_contain_text("B")
    if reachable < 60:
        expect(review).to_contain_text("无该渠道地址")
    expect(page).to_have_url(re.compile(r"/campaigns/cmp_"))
    page.get_by_test_id("campaign-schedule").click()
    campaign_id = page.url.rsplit("/", 1)[-1]
    headers = {"Authorization": f"Bearer {INGEST_KEYS['full']}"}
    saved = httpx.get(f"{base}/api/v1/campaigns/{campaign_id}", headers=headers).json()
    assert saved["guards"]["min_delivery_rate"] == 0.5 and saved["values"] == {"coupon": "满199减30"}

    expect(page.get_by_test_id("campaign-status")).to_have_text("已完成", timeout=60_000)
    expect(page.get_by_test_id("campaign-progress")).to_contain_text("100%")
    statuses = page.get_by_test_id("campaign-statuses")
    # the worker may be busy with the demo's first analytics run
    expect(statuses).to_contain_text(re.compile("已送达|已发送|未送达"), timeout=60_000)
    expect(page.get_by_text("已提交 60 / 60 人")).to_be_visible()
    report = page.get_by_test_id("campaign-report")
    expect(report).to_contain_text("效果报告")
    expect(page.get_by_test_id("report-table")).to_contain_text("合计")
    expect(page.get_by_test_id("report-table").locator("tbody tr")).to_have_count(3)  # A, B and the total
    expect(page.get_by_test_id("report-ab")).to_contain_text("A 为最优的概率")
    expect(page.get_by_test_id("report-ab")).to_contain_text("双比例 z 检验")
    expect(page.get_by_test_id("report-uplift")).to_contain_text("168 小时归因窗口，末次触达")
    expect(page.get_by_test_id("campaign-checkpoints")).to_contain_text("尚未到第一个检查点")

    page.get_by_role("link", name="返回活动列表").click()
    expect(page.get_by_test_id("campaigns-table")).to_contain_text("双11预热")
    expect(page.get_by_test_id("campaigns-table")).to_contain_text("已完成")


def _two_variants(on: Page, name: str) -> None:
    on.get_by_role("menuitem", name="营销活动").click()
    on.get_by_test_id("new-campaign").click()
    on.get_by_test_id("campaign-name").fill(name)
    _pick(on, "campaign-segment", re.compile("双11名单"))
    on.get_by_test_id("wizard-next").first.click()
    _pick(on, "variant-template-0", re.compile("双11-A"))
    on.get_by_test_id("add-variant").click()
    _pick(on, "variant-template-1", re.compile("双11-A"))
    on.get_by_role("button", name="平均分配").click()


def test_a_tested_campaign_waits_for_its_winner_and_a_weekly_one_for_its_day(
    server: tuple[str, str],  # noqa: F811
    page: Page,  # noqa: F811
    reachable: int,
) -> None:
    base, email = server
    headers = {"Authorization": f"Bearer {INGEST_KEYS['full']}"}
    _sign_in(page, base, email)
    _two_variants(page, "先测后发")
    page.get_by_test_id("variant-values-1").fill("coupon=新品试用装")
    page.get_by_test_id("campaign-test").click()
    percent = page.get_by_test_id("test-percent").locator("input")
    percent.fill("50")
    percent.blur()
    page.get_by_test_id("wizard-next").nth(1).click()
    page.get_by_test_id("wizard-review").click()
    expect(page.get_by_test_id("review-table")).to_contain_text("B")
    page.get_by_test_id("campaign-schedule").click()
    campaign_id = page.url.rsplit("/", 1)[-1]
    saved = httpx.get(f"{base}/api/v1/campaigns/{campaign_id}", headers=headers).json()
    assert saved["test"] == {"percent": 50, "metric": "ctr", "hours": 4}
    assert saved["variants"][1]["values"] == {"coupon": "新品试用装"}

    expect(page.get_by_test_id("campaign-status")).to_have_text("测试中", timeout=60_000)
    expect(page.get_by_test_id("campaign-waiting")).to_contain_text("人等待胜出版本", timeout=60_000)
    standing = page.get_by_test_id("campaign-test-standing")
    expect(standing).to_contain_text("暂无显著胜出的版本")
    page.get_by_test_id("choose-winner-B").click()
    page.get_by_role("button", name="确定").or_(page.get_by_role("button", name="OK")).click()
    expect(page.get_by_test_id("campaign-status")).to_have_text("已完成", timeout=60_000)
    expect(page.get_by_test_id("campaign-winner")).to_have_text("B")
    expect(page.get_by_text("已提交 60 / 60 人")).to_be_visible()

    people = httpx.get(f"{base}/api/v1/profiles", params={"limit": 60}, headers=headers).json()["items"]
    phones = []
    for person in people:
        detail = httpx.get(f"{base}/api/v1/profiles/{person['id']}", headers=headers).json()
        phones += [i["value"] for i in detail["identities"] if i["kind"] == "phone"][:1]
    assert len(phones) >= 2
    page.get_by_role("menuitem", name="营销活动").click()
    page.get_by_test_id("new-campaign").click()
    page.get_by_test_id("campaign-name").fill("每周会员日")
    listed = "phone\n" + "\n".join([*phones[:2], "12345"]) + "\n"
    page.get_by_test_id("campaign-list-file").set_input_files(
        files=[{"name": "会员日名单.csv", "mimeType": "text/csv", "buffer": listed.encode()}]
    )
    page.get_by_test_id("campaign-list-upload").click()
    expect(page.get_by_test_id("campaign-list-result")).to_contain_text("名单 3 行：2 人，1 行未匹配")
    expect(page.get_by_text("当前人群 2 人")).to_be_visible()
    page.get_by_test_id("wizard-next").first.click()
    _pick(page, "variant-template-0", re.compile("双11-A"))
    page.get_by_test_id("wizard-next").nth(1).click()
    page.get_by_test_id("campaign-repeat").get_by_text("每周").click()
    page.locator(".el-checkbox").filter(has_text="五").click()
    page.get_by_test_id("wizard-review").click()
    page.get_by_test_id("campaign-schedule").click()
    expect(page.get_by_test_id("campaign-status")).to_have_text("周期发送中", timeout=60_000)
    expect(page.get_by_test_id("campaign-next-at")).not_to_have_text("—")
    expect(page.get_by_test_id("campaign-occurrences")).to_contain_text("尚未发送过")
    weekly = httpx.get(f"{base}/api/v1/campaigns/{page.url.rsplit('/', 1)[-1]}", headers=headers).json()
    assert weekly["recurrence"]["weekdays"] == [1, 5] and weekly["recurrence"]["every"] == "week"
    segment = httpx.get(f"{base}/api/v1/segments/{weekly['segment_id']}", headers=headers).json()
    assert segment["kind"] == "static" and segment["people"] == 2
