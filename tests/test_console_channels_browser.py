"""The channel pages in a real browser: an admin connects a sandbox SMS account, writes a
marketing template whose live checks ask for the opt-out, saves it, reads the interception
report for a segment, sends, and finds the messages and a suppressed address on the channel
page."""

from __future__ import annotations

import os
import re

import httpx
from playwright.sync_api import Page, expect

from tests.test_console_browser import INGEST_KEYS, _sign_in, browser, page, server  # noqa: F401 - fixtures


def _static_segment(base: str) -> int:
    """A list of 40 people, of whom those with a phone agreed to marketing SMS; returns how many."""
    headers = {"Authorization": f"Bearer {INGEST_KEYS['full']}"}
    people = httpx.get(f"{base}/api/v1/profiles", params={"limit": 40}, headers=headers).json()["items"]
    records = []
    for person in people:
        detail = httpx.get(f"{base}/api/v1/profiles/{person['id']}", headers=headers).json()
        phones = [i["value"] for i in detail["identities"] if i["kind"] == "phone"]
        if phones:
            records.append(
                {
                    "address": {"kind": "phone", "value": phones[0]},
                    "channel": "sms",
                    "purpose": "marketing",
                    "status": "granted",
                    "at": "2026-11-01T00:00:00Z",
                    "source": "form",
                    "proof": {"text_version": "v1"},
                }
            )
    assert httpx.post(f"{base}/api/v1/consents", json={"records": records}, headers=headers).status_code == 201
    body = {"name": "短信测试名单", "kind": "static", "profile_ids": [p["id"] for p in people]}
    created = httpx.post(f"{base}/api/v1/segments", json=body, headers=headers)
    assert created.status_code == 201, created.text
    return len(records)


def test_admin_sets_up_sms_writes_a_template_and_sends(server: tuple[str, str], page: Page) -> None:  # noqa: F811
    base, email = server
    reachable = _static_segment(base)
    assert reachable > 0
    _sign_in(page, base, email)

    page.get_by_role("menuitem", name="渠道").click()
    page.get_by_role("button", name="添加账号").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("名称", exact=True).fill("沙箱短信")
    dialog.get_by_label("SMS signature 签名").fill("溪谷")
    dialog.get_by_role("button", name="保存").click()
    expect(page.get_by_test_id("accounts")).to_contain_text("沙箱短信")
    page.get_by_role("tab", name="发送策略").click()
    expect(page.get_by_label("开始").first).to_have_value("09:00")

    page.get_by_role("menuitem", name="消息模板").click()
    page.get_by_role("button", name="新建模板").click()
    page.get_by_label("模板名称").fill("会员日")
    page.get_by_label("正文", exact=True).fill("{{ profile.display_name | default('会员', true) }}，会员日全场 8 折")
    checks = page.get_by_test_id("checks")
    expect(checks).to_contain_text("拒收请回复R", timeout=10_000)  # the opt-out is required
    page.get_by_label("正文", exact=True).fill(
        "{{ profile.display_name | default('会员', true) }}，会员日全场 8 折 拒收请回复R"
    )
    expect(page.get_by_test_id("sms-sample")).to_have_text("【溪谷】会员，会员日全场 8 折 拒收请回复R", timeout=10_000)
    expect(checks).to_contain_text("计费 1 条")
    page.get_by_role("button", name="保存").click()
    expect(page).to_have_url(re.compile(r"/templates/tpl_"))

    page.get_by_role("combobox", name="发送人群").click(force=True)
    page.get_by_role("option", name=re.compile("短信测试名单")).click()
    page.get_by_role("button", name="拦截报告").click()
    report = page.get_by_test_id("report")
    expect(report).to_contain_text("共 40 人")
    expect(report).to_contain_text(f"可发送 {reachable} 人")
    if reachable < 40:
        expect(report).to_contain_text("无该渠道地址")
    page.get_by_role("button", name="立即发送").click()
    expect(page.get_by_text(f"已提交发送：{reachable} 人")).to_be_visible()

    page.get_by_role("menuitem", name="渠道").click()
    page.get_by_role("tab", name="发送记录").click()
    messages = page.get_by_test_id("messages")
    expect(messages.locator("tbody tr")).to_have_count(40)
    expect(messages).to_contain_text("send:snd_")
    page.get_by_role("tab", name="屏蔽名单").click()
    page.get_by_label("地址（每行一个）").fill("13800138000")
    page.get_by_label("原因", exact=True).fill("客户投诉")
    page.get_by_role("button", name="加入屏蔽名单").click()
    expect(page.get_by_test_id("suppressions")).to_contain_text("+8613800138000")
    expect(page.get_by_test_id("suppressions")).to_contain_text("客户投诉")
    if shot := os.environ.get("SIYU_SCREENSHOT_CHANNELS"):
        page.screenshot(path=shot, full_page=True)
