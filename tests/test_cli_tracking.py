"""``siyu links``, ``siyu pages`` and ``siyu codes`` on a fresh workspace: a QR link and its
image, a landing page published and counted, a sandbox official account code; bad input exits 2
with the reason."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from siyu.accounts.facade import find_workspace_by_slug
from siyu.channels.accounts import AccountIn, save_account
from siyu.channels.contracts import ChannelKind
from siyu.core.settings import get_settings
from siyu.landing.tables import LandingPage
from siyu.storage.scoping import Scope
from siyu.storage.session import Database
from tests.test_cli import app, run, runner, workdir  # noqa: F401 - fixtures


def test_links_pages_and_codes_from_the_command_line(workdir: Path) -> None:  # noqa: F811
    run("migrate")
    run("workspace", "create", "--name", "溪谷美妆", "--slug", "xigu")
    made = run("links", "create", "--workspace", "xigu", "包裹卡", "https://shop.example/x", "--qr-out", "card.svg")
    code = made.split()[0]
    assert "/s/" in made and (workdir / "card.svg").read_bytes().startswith(b"<?xml")
    assert "包裹卡" in run("links", "list", "--workspace", "xigu")
    bad_link = runner.invoke(app, ["links", "create", "--workspace", "xigu", "x", "ftp://nope"])
    assert bad_link.exit_code == 2 and code not in bad_link.output

    content = {"title": "入会领券", "button": "领取", "success": "领取成功", "consent_text": "我同意接收会员短信"}
    (workdir / "page.json").write_text(json.dumps(content, ensure_ascii=False), encoding="utf-8")
    page = run("pages", "create", "--workspace", "xigu", "双11入会", "page.json", "--layout", "coupon", "--publish")
    assert "published v1" in page and "/p/" in page
    listed = run("pages", "list", "--workspace", "xigu")
    assert "双11入会" in listed and "published" in listed
    (workdir / "bad.json").write_text(json.dumps({"title": "x"}), encoding="utf-8")
    refused = runner.invoke(app, ["pages", "create", "--workspace", "xigu", "坏页面", "bad.json"])
    assert refused.exit_code == 2 and "content.button" in refused.output
    db = Database(get_settings().database_url)
    with db.transaction(Scope.unscoped_system()) as system:
        workspace = find_workspace_by_slug(system, "xigu")
        assert workspace is not None
    with db.read(Scope.workspace(workspace.id)) as s:
        assert [p.name for p in s.scalars(select(LandingPage))] == ["双11入会"]

    no_account = runner.invoke(app, ["codes", "create", "--workspace", "xigu", "海报"])
    assert no_account.exit_code == 2 and "no enabled wechat_oa account" in no_account.output
    with db.transaction(Scope.workspace(workspace.id)) as s:
        save_account(s, get_settings().secret_key, AccountIn(ChannelKind.WECHAT_OA, "sandbox", "沙箱", {}, {}))
    db.dispose()
    qr = run("codes", "create", "--workspace", "xigu", "海报", "--qr-out", "poster.png")
    assert "oa_qr scene sy" in qr and "(sandbox)" in qr
    assert (workdir / "poster.png").read_bytes().startswith(b"\x89PNG")
    assert "海报" in run("codes", "list", "--workspace", "xigu")
